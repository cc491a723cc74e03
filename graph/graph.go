// Package graph compiles perturb's models into gorgonia graphs and runs
// them: the mean softmax cross-entropy of a batch, its gradient with respect
// to every stored parameter (one reverse-mode Grad), and chunked evaluation
// of the loss and accuracy over a whole data pool.
//
// A Net is compiled for one architecture, dtype and batch size, and owns its
// gorgonia graph, tape machine and input buffers; it is not safe for
// concurrent use. Give each worker its own.
package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// Data is a row-major matrix of examples with labels, in one dtype: exactly
// one of X64 and X32 is set.
type Data struct {
	X64     []float64
	X32     []float32
	Y       []uint8
	Dim     int
	Classes int
}

// Len is the number of examples.
func (d *Data) Len() int { return len(d.Y) }

// DType is the dtype of the examples.
func (d *Data) DType() tensor.Dtype {
	if d.X32 != nil {
		return tensor.Float32
	}
	return tensor.Float64
}

// Params holds the stored parameter tensors of one model instance, in the
// order of its Arch.Params.
type Params []*tensor.Dense

// NewParams converts stored values (as returned by nets.Arch.Init) to dt.
func NewParams(a *nets.Arch, vals [][]float64, dt tensor.Dtype) Params {
	p := make(Params, len(a.Params))
	for i, spec := range a.Params {
		var backing interface{}
		switch dt {
		case tensor.Float32:
			b := make([]float32, len(vals[i]))
			for j, v := range vals[i] {
				b[j] = float32(v)
			}
			backing = b
		default:
			b := make([]float64, len(vals[i]))
			copy(b, vals[i])
			backing = b
		}
		p[i] = tensor.New(tensor.WithShape(spec.Shape...), tensor.WithBacking(backing))
	}
	return p
}

// Clone returns a deep copy.
func (p Params) Clone() Params {
	q := make(Params, len(p))
	for i, t := range p {
		q[i] = t.Clone().(*tensor.Dense)
	}
	return q
}

// float is the element type of a dtype the models run in.
type float interface{ float32 | float64 }

// Step performs p ← p − eta·g in p's dtype, for every tensor.
func (p Params) Step(eta float64, g []tensor.Tensor) {
	for i, t := range p {
		switch dst := t.Data().(type) {
		case []float64:
			axpy(dst, -eta, g[i].Data().([]float64))
		case []float32:
			axpy(dst, float32(-eta), g[i].Data().([]float32))
		}
	}
}

func axpy[T float](dst []T, a T, x []T) {
	for j := range dst {
		dst[j] += a * x[j]
	}
}

// Finite reports whether every stored value is finite.
func (p Params) Finite() bool {
	for _, v := range p.Flat() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// Flat returns all parameters as one float64 vector (for tests and records).
func (p Params) Flat() []float64 {
	var out []float64
	for _, t := range p {
		switch d := t.Data().(type) {
		case []float64:
			out = append(out, d...)
		case []float32:
			for _, v := range d {
				out = append(out, float64(v))
			}
		}
	}
	return out
}

// Net is a model compiled for one batch size and dtype.
type Net struct {
	Arch   *nets.Arch
	Batch  int
	DType  tensor.Dtype
	g      *G.ExprGraph
	vm     G.VM
	x, y   *G.Node
	params []*G.Node
	logits *G.Node
	losses *G.Node // per-example cross-entropy, (batch)
	loss   *G.Node // mean of losses
	grads  []*G.Node
	xbuf   *tensor.Dense
	ybuf   *tensor.Dense
}

// Compile builds the graph of arch for batch examples of dtype dt. With
// withGrad, it also builds the gradient of the mean loss with respect to
// every parameter.
func Compile(arch *nets.Arch, dt tensor.Dtype, batch int, withGrad bool) (*Net, error) {
	if batch < 1 {
		return nil, fmt.Errorf("compile %s: batch size %d < 1", arch.Name, batch)
	}
	n := &Net{Arch: arch, Batch: batch, DType: dt, g: G.NewGraph()}
	n.xbuf = tensor.New(tensor.Of(dt), tensor.WithShape(batch, arch.Dim()))
	n.ybuf = tensor.New(tensor.Of(dt), tensor.WithShape(batch, arch.Classes))
	n.x = G.NewMatrix(n.g, dt, G.WithShape(batch, arch.Dim()), G.WithName("x"), G.WithValue(n.xbuf))
	n.y = G.NewMatrix(n.g, dt, G.WithShape(batch, arch.Classes), G.WithName("y"), G.WithValue(n.ybuf))
	for _, p := range arch.Params {
		n.params = append(n.params, G.NewTensor(n.g, dt, len(p.Shape), G.WithShape(p.Shape...), G.WithName(p.Name)))
	}
	var err error
	if n.logits, err = arch.Forward(n.x, n.params); err != nil {
		return nil, fmt.Errorf("compile %s: %w", arch.Name, err)
	}
	if n.losses, err = CrossEntropy(n.logits, n.y); err != nil {
		return nil, fmt.Errorf("compile %s: %w", arch.Name, err)
	}
	if n.loss, err = G.Mean(n.losses); err != nil {
		return nil, fmt.Errorf("compile %s: %w", arch.Name, err)
	}
	if withGrad {
		if n.grads, err = G.Grad(n.loss, n.params...); err != nil {
			return nil, fmt.Errorf("compile %s: gradient: %w", arch.Name, err)
		}
	}
	n.vm = G.NewTapeMachine(n.g)
	return n, nil
}

// CrossEntropy returns the per-example softmax cross-entropy
// −Σ_k y_k log softmax(z)_k of logits z against one-hot targets y. It uses
// this package's row-wise log-softmax, not G.LogSoftMax, whose kernel in
// gorgonia.org/tensor v0.9.24 shifts every row by the first element of the
// whole matrix (see logSoftmaxKernel): one extreme example would ruin the
// loss of every other example of its chunk.
func CrossEntropy(logits, y *G.Node) (*G.Node, error) {
	lsm, err := logSoftmax(logits)
	if err != nil {
		return nil, err
	}
	prod, err := G.HadamardProd(y, lsm)
	if err != nil {
		return nil, err
	}
	s, err := G.Sum(prod, 1)
	if err != nil {
		return nil, err
	}
	return G.Neg(s)
}

// Close releases the machine.
func (n *Net) Close() error { return n.vm.Close() }

// load copies the examples rows[i] (or, with rows == nil, the contiguous
// examples from, from+1, ...) of d into the input buffers.
func (n *Net) load(d *Data, rows []int, from int) {
	switch xs := n.xbuf.Data().(type) {
	case []float64:
		gather(xs, n.ybuf.Data().([]float64), d.X64, d, rows, from)
	case []float32:
		gather(xs, n.ybuf.Data().([]float32), d.X32, d, rows, from)
	}
}

// gather fills xs with the selected rows of src and ys with their one-hot
// labels.
func gather[T float](xs, ys, src []T, d *Data, rows []int, from int) {
	clear(ys)
	for i := 0; i < len(ys)/d.Classes; i++ {
		r := from + i
		if rows != nil {
			r = rows[i]
		}
		copy(xs[i*d.Dim:(i+1)*d.Dim], src[r*d.Dim:(r+1)*d.Dim])
		ys[i*d.Classes+int(d.Y[r])] = 1
	}
}

func (n *Net) run(p Params) error {
	if len(p) != len(n.params) {
		panic(fmt.Sprintf("graph: %d parameter tensors for %d parameters", len(p), len(n.params)))
	}
	for i, t := range p {
		if err := G.Let(n.params[i], t); err != nil {
			return err
		}
	}
	defer n.vm.Reset()
	return n.vm.RunAll()
}

// Grad returns the mean loss of the examples rows of d at p and its
// gradient with respect to every parameter. The gradient tensors belong to
// the Net and are overwritten by the next call. The Net must have been
// compiled withGrad and len(rows) must equal its batch size.
func (n *Net) Grad(p Params, d *Data, rows []int) (float64, []tensor.Tensor, error) {
	if n.grads == nil {
		panic("graph: Grad on a Net compiled without gradients")
	}
	if len(rows) != n.Batch {
		panic(fmt.Sprintf("graph: %d rows for batch size %d", len(rows), n.Batch))
	}
	n.load(d, rows, 0)
	if err := n.run(p); err != nil {
		return math.NaN(), nil, fmt.Errorf("gradient of %s: %w", n.Arch.Name, err)
	}
	gs := make([]tensor.Tensor, len(n.grads))
	for i, g := range n.grads {
		gs[i] = g.Value().(tensor.Tensor)
	}
	return scalarValue(n.loss.Value()), gs, nil
}

// Eval returns the summed loss and the number of correctly classified
// examples (arg-max of the logits, ties to the lowest class) of batch
// examples of d: rows, or with rows == nil the contiguous block from from.
func (n *Net) Eval(p Params, d *Data, rows []int, from int) (lossSum float64, correct int, err error) {
	n.load(d, rows, from)
	if err := n.run(p); err != nil {
		return math.NaN(), 0, fmt.Errorf("loss of %s: %w", n.Arch.Name, err)
	}
	switch ls := n.losses.Value().Data().(type) {
	case []float64:
		lossSum, correct = score(ls, n.logits.Value().Data().([]float64), d, rows, from)
	case []float32:
		lossSum, correct = score(ls, n.logits.Value().Data().([]float32), d, rows, from)
	}
	return lossSum, correct, nil
}

// score sums the per-example losses in float64 and counts the examples
// whose arg-max logit (ties to the lowest class) is the label.
func score[T float](losses, logits []T, d *Data, rows []int, from int) (sum float64, correct int) {
	k := d.Classes
	for i, l := range losses {
		sum += float64(l)
		z := logits[i*k : (i+1)*k]
		best := 0
		for c := 1; c < k; c++ {
			if z[c] > z[best] {
				best = c
			}
		}
		r := from + i
		if rows != nil {
			r = rows[i]
		}
		if best == int(d.Y[r]) {
			correct++
		}
	}
	return sum, correct
}

func scalarValue(v G.Value) float64 {
	switch x := v.Data().(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case []float64:
		return x[0]
	case []float32:
		return float64(x[0])
	}
	panic(fmt.Sprintf("graph: unexpected scalar value %T", v.Data()))
}
