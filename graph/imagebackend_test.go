package graph

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// ImageBackend, the tests' reference backend (gorgonia's TapeMachine; the
// runner uses the walker, DeviceBackend), evaluates an image model (any of nets.Arch.Layers: logistic,
// mlp, convnets of any size) for a batch of K trials at once through BatchNets: it implements optim.Backend. Graphs
// are compiled on first use for each (K, samples per trial, kind) and
// cached, so a run that keeps K and the batch size fixed compiles at most
// two. Trial k's results depend only on theta[k] and its samples: never on
// K, on the other trials or on their finiteness.
//
// An ImageBackend is not safe for concurrent use: give each worker its own.
type ImageBackend struct {
	Arch  *nets.Arch
	DType tensor.Dtype
	Data  *Data
	nets  map[batchKey]*BatchNet
	rows  [][]int
}

// NewImageBackend returns a backend for arch in dtype dt whose samples are
// rows of d; d must hold examples of dtype dt.
func NewImageBackend(arch *nets.Arch, dt tensor.Dtype, d *Data) *ImageBackend {
	if d.DType() != dt {
		panic(fmt.Sprintf("graph: %v data for a %v backend", d.DType(), dt))
	}
	if d.Dim != arch.Dim() || d.Classes != arch.Classes {
		panic(fmt.Sprintf("graph: data of dimension %d and %d classes for %s on %d inputs and %d classes",
			d.Dim, d.Classes, arch.Name, arch.Dim(), arch.Classes))
	}
	return &ImageBackend{Arch: arch, DType: dt, Data: d, nets: map[batchKey]*BatchNet{}}
}

// NumParams is the number of scalars of the model.
func (e *ImageBackend) NumParams() int { return e.Arch.NumParams() }

// net returns the cached BatchNet for K trials of b samples, compiling it
// on first use.
func (e *ImageBackend) net(k, b int, kind BatchKind) (*BatchNet, error) {
	key := batchKey{k, b, kind}
	if n, ok := e.nets[key]; ok {
		return n, nil
	}
	n, err := CompileBatch(e.Arch, e.DType, k, b, kind)
	if err != nil {
		return nil, err
	}
	e.nets[key] = n
	return n, nil
}

// prepare converts the samples of K trials to pool rows and returns the
// net of kind for them.
func (e *ImageBackend) prepare(theta [][]float64, pts [][]nets.Sample, kind BatchKind) (*BatchNet, [][]int, error) {
	k := len(theta)
	if len(pts) != k {
		return nil, nil, fmt.Errorf("%s: %d parameter vectors but %d sample lists", e.Arch.Name, k, len(pts))
	}
	if k == 0 {
		return nil, nil, nil
	}
	b := len(pts[0])
	if b == 0 {
		return nil, nil, fmt.Errorf("%s: trials without samples", e.Arch.Name)
	}
	if cap(e.rows) < k {
		e.rows = make([][]int, k)
	}
	rows := e.rows[:k]
	n := e.Data.Len()
	for i, p := range pts {
		if len(p) != b {
			return nil, nil, fmt.Errorf("%s: trial %d has %d samples, trial 0 has %d", e.Arch.Name, i, len(p), b)
		}
		if cap(rows[i]) < b {
			rows[i] = make([]int, b)
		}
		rows[i] = rows[i][:b]
		for j, s := range p {
			if s.Row < 0 || s.Row >= n {
				return nil, nil, fmt.Errorf("%s: trial %d sample %d: row %d outside the pool of %d", e.Arch.Name, i, j, s.Row, n)
			}
			rows[i][j] = s.Row
		}
	}
	net, err := e.net(k, b, kind)
	return net, rows, err
}

// vectors returns an error unless every vs[k] (k < K) has the model's
// length.
func (e *ImageBackend) vectors(what string, k int, vs [][]float64) error {
	if len(vs) != k {
		return fmt.Errorf("%s: %d %s vectors for %d trials", e.Arch.Name, len(vs), what, k)
	}
	np := e.NumParams()
	for i, v := range vs {
		if len(v) != np {
			return fmt.Errorf("%s: %s vector %d has length %d, want %d", e.Arch.Name, what, i, len(v), np)
		}
	}
	return nil
}

// Grad sets loss[k] to the mean loss of theta[k] over the pool rows
// pts[k][n].Row and grad[k] to its gradient.
func (e *ImageBackend) Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error {
	k := len(theta)
	if err := e.vectors("parameter", k, theta); err != nil {
		return err
	}
	if err := e.vectors("gradient", k, grad); err != nil {
		return err
	}
	if len(loss) != k {
		return fmt.Errorf("%s: %d losses for %d trials", e.Arch.Name, len(loss), k)
	}
	net, rows, err := e.prepare(theta, pts, BatchGrad)
	if err != nil || net == nil {
		return err
	}
	return net.Grad(theta, e.Data, rows, loss, grad)
}

// HVP sets out[k] = Σ_n ∇²l(theta[k]; pts[k][n]) · v[k].
func (e *ImageBackend) HVP(theta [][]float64, pts [][]nets.Sample, v, out [][]float64) error {
	k := len(theta)
	for _, c := range []struct {
		what string
		vs   [][]float64
	}{{"parameter", theta}, {"direction", v}, {"output", out}} {
		if err := e.vectors(c.what, k, c.vs); err != nil {
			return err
		}
	}
	net, rows, err := e.prepare(theta, pts, BatchHVP)
	if err != nil || net == nil {
		return err
	}
	return net.HVP(theta, e.Data, rows, v, out)
}

// Round rounds theta to the backend's dtype (float32 values for float32;
// float64 is unchanged). The image models have no constrained parameters.
func (e *ImageBackend) Round(theta []float64) {
	if e.DType == tensor.Float32 {
		for i, v := range theta {
			theta[i] = float64(float32(v))
		}
	}
}

// Close releases every compiled graph.
func (e *ImageBackend) Close() error {
	for key, n := range e.nets {
		n.Close()
		delete(e.nets, key)
	}
	return nil
}
