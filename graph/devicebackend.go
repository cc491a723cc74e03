package graph

import (
	"errors"
	"fmt"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// DefaultDeviceNets is the number of compiled programs a DeviceBackend
// keeps (least recently used first out).
const DefaultDeviceNets = 6

// DeviceBackend evaluates an image model (any family: logistic, mlp,
// convnets of any size) for a batch of K trials on a kernels.Device: it implements optim.Backend through
// DeviceNets (the tests' ImageBackend runs the same BatchNets on
// gorgonia's TapeMachine). A call
// with at most Cap trials runs on the program for Cap trials, the missing
// trials padded with zero parameters and trial 0's samples (their results
// are dropped), so the short last batch of a group, a retried half batch
// and the train loss of the surviving trials reuse the programs (and the
// device memory) of the full batches. A call with more trials (gdc, smith
// and sde replicate each trial per sample or minibatch) runs on a program
// for exactly that many. Programs are compiled on first use for each
// (trials, samples per trial, kind), their device buffers allocated then,
// once, and kept for later calls; at most MaxNets are kept.
//
// A trial's results depend only on its parameters and samples: each kernel
// computes a trial's slice with arithmetic that does not depend on the
// number of trials (on the CPU twin exactly; on a GPU see docs/gpu.md).
//
// A DeviceBackend is not safe for concurrent use: give each worker its
// own (and its device serialised, kernels.Serial, when they share one).
type DeviceBackend struct {
	Arch *nets.Arch
	Data *DeviceData
	// Cap is the number of trials calls with fewer are padded to.
	Cap int
	// MaxNets is the number of programs kept (DefaultDeviceNets when 0).
	MaxNets int
	// HVPChunk, on a CPU device, is the number of samples per trial of
	// the programs of a Hessian-vector product of more: their chunks run
	// as separate programs on the device's goroutines (hvpchunks.go). 0:
	// one program for all the samples.
	HVPChunk int
	// HVPBytes bounds the memory of the chunk programs kept for reruns
	// (DefaultHVPBytes when 0).
	HVPBytes int64

	nets map[batchKey]*deviceEntry
	tick int64
	zero []float64
	// scratch for padded calls
	rows     [][]int
	theta, v [][]float64
	out      [][]float64
	scratch  [][]float64 // owned output vectors of padded trials
	loss     []float64
	chunks   chunkedHVP
}

type batchKey struct {
	k, b int
	kind BatchKind
}

type deviceEntry struct {
	net  *DeviceNet
	used int64
}

// NewDeviceBackend returns a backend for arch on data's device whose calls
// of at most capTrials trials are padded to capTrials.
func NewDeviceBackend(arch *nets.Arch, data *DeviceData, capTrials int) (*DeviceBackend, error) {
	if data.Dim != arch.Dim() || data.Classes != arch.Classes {
		return nil, fmt.Errorf("device backend: data of dimension %d and %d classes for %s on %d inputs and %d classes",
			data.Dim, data.Classes, arch.Name, arch.Dim(), arch.Classes)
	}
	return &DeviceBackend{Arch: arch, Data: data, Cap: max(capTrials, 1), nets: map[batchKey]*deviceEntry{}}, nil
}

// NumParams is the number of scalars of the model.
func (e *DeviceBackend) NumParams() int { return e.Arch.NumParams() }

// Programs returns the number of compiled programs kept.
func (e *DeviceBackend) Programs() int { return len(e.nets) }

// net returns the program for k trials of b samples, compiling it on
// first use and evicting the least recently used beyond MaxNets.
func (e *DeviceBackend) net(k, b int, kind BatchKind) (*DeviceNet, error) {
	key := batchKey{k, b, kind}
	e.tick++
	if en, ok := e.nets[key]; ok {
		en.used = e.tick
		return en.net, nil
	}
	limit := e.MaxNets
	if limit <= 0 {
		limit = DefaultDeviceNets
	}
	for len(e.nets) >= limit {
		var old batchKey
		oldest := int64(-1)
		for k, en := range e.nets {
			if oldest < 0 || en.used < oldest {
				old, oldest = k, en.used
			}
		}
		if err := e.nets[old].net.Close(); err != nil {
			return nil, fmt.Errorf("%s: release the program for %d trials of %d samples: %w", e.Arch.Name, old.k, old.b, err)
		}
		delete(e.nets, old)
	}
	n, err := NewDeviceNet(e.Arch, e.Data, k, b, kind)
	if errors.Is(err, kernels.ErrOutOfMemory) {
		// Make room and ask for less next time: the runner retries the
		// batch as halves, which must not be padded back to this size.
		if cerr := e.Close(); cerr != nil {
			return nil, fmt.Errorf("%w; releasing the programs after it: %v", err, cerr)
		}
		e.Cap = max(1, min(e.Cap, k)/2)
		return nil, fmt.Errorf("%s: %d trials of %d samples do not fit on %s (capacity lowered to %d trials): %w",
			e.Arch.Name, k, b, e.Data.Dev.Name(), e.Cap, err)
	}
	if err != nil {
		return nil, err
	}
	e.nets[key] = &deviceEntry{net: n, used: e.tick}
	return n, nil
}

// prepare checks the call and returns the pool rows padded to the
// program's trial count kk.
func (e *DeviceBackend) prepare(theta [][]float64, pts [][]nets.Sample, vecs map[string][][]float64) (rows [][]int, kk, b int, err error) {
	k := len(theta)
	if len(pts) != k {
		return nil, 0, 0, fmt.Errorf("%s: %d parameter vectors but %d sample lists", e.Arch.Name, k, len(pts))
	}
	np := e.NumParams()
	for what, vs := range vecs {
		if len(vs) != k {
			return nil, 0, 0, fmt.Errorf("%s: %d %s vectors for %d trials", e.Arch.Name, len(vs), what, k)
		}
		for i, v := range vs {
			if len(v) != np {
				return nil, 0, 0, fmt.Errorf("%s: %s vector %d has length %d, want %d", e.Arch.Name, what, i, len(v), np)
			}
		}
	}
	if k == 0 {
		return nil, 0, 0, nil
	}
	b = len(pts[0])
	if b == 0 {
		return nil, 0, 0, fmt.Errorf("%s: trials without samples", e.Arch.Name)
	}
	kk = max(k, e.Cap)
	if cap(e.rows) < kk {
		e.rows = make([][]int, kk)
	}
	rows = e.rows[:kk]
	n := e.Data.N
	for i := range rows {
		p := pts[0]
		if i < k {
			p = pts[i]
		}
		if len(p) != b {
			return nil, 0, 0, fmt.Errorf("%s: trial %d has %d samples, trial 0 has %d", e.Arch.Name, i, len(p), b)
		}
		if cap(rows[i]) < b {
			rows[i] = make([]int, b)
		}
		rows[i] = rows[i][:b]
		for j, s := range p {
			if s.Row < 0 || s.Row >= n {
				return nil, 0, 0, fmt.Errorf("%s: trial %d sample %d: row %d outside the pool of %d", e.Arch.Name, i, j, s.Row, n)
			}
			rows[i][j] = s.Row
		}
	}
	return rows, kk, b, nil
}

// pad returns vs extended to kk vectors with zero vectors (shared, read
// only) or, with scratch, with scratch vectors (outputs).
func (e *DeviceBackend) pad(vs [][]float64, kk int, store *[][]float64, scratch bool) [][]float64 {
	if len(vs) == kk {
		return vs
	}
	np := e.NumParams()
	if len(e.zero) != np {
		e.zero = make([]float64, np)
	}
	if cap(*store) < kk {
		*store = make([][]float64, kk)
	}
	out := (*store)[:kk]
	copy(out, vs)
	for i := len(vs); i < kk; i++ {
		if !scratch {
			out[i] = e.zero
			continue
		}
		for len(e.scratch) <= i {
			e.scratch = append(e.scratch, make([]float64, np))
		}
		out[i] = e.scratch[i]
	}
	return out
}

// Grad sets loss[k] to the mean loss of theta[k] over the pool rows
// pts[k][n].Row and grad[k] to its gradient.
func (e *DeviceBackend) Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error {
	rows, kk, b, err := e.prepare(theta, pts, map[string][][]float64{"parameter": theta, "gradient": grad})
	if err != nil || kk == 0 {
		return err
	}
	k := len(theta)
	if len(loss) != k {
		return fmt.Errorf("%s: %d losses for %d trials", e.Arch.Name, len(loss), k)
	}
	net, err := e.net(kk, b, BatchGrad)
	if err != nil {
		return err
	}
	th := e.pad(theta, kk, &e.theta, false)
	g := e.pad(grad, kk, &e.out, true)
	ls := loss
	if kk != k {
		if cap(e.loss) < kk {
			e.loss = make([]float64, kk)
		}
		ls = e.loss[:kk]
	}
	if err := net.Grad(th, rows, ls, g); err != nil {
		return err
	}
	copy(loss, ls[:k])
	return nil
}

// HVP sets out[k] = Σ_n ∇²l(theta[k]; pts[k][n]) · v[k]. A call at
// the parameters and samples of the previous HVP call of the same shape
// (a new direction, as in Lanczos) reruns only the steps that depend on
// the direction (see DeviceNet), with the same results.
func (e *DeviceBackend) HVP(theta [][]float64, pts [][]nets.Sample, v, out [][]float64) error {
	rows, kk, b, err := e.prepare(theta, pts, map[string][][]float64{"parameter": theta, "direction": v, "output": out})
	if err != nil || kk == 0 {
		return err
	}
	if e.HVPChunk > 0 && b > e.HVPChunk && kernels.HostWorkers(e.Data.Dev) > 0 {
		return e.hvpChunked(theta, rows, v, out, b)
	}
	th, vs, os := e.pad(theta, kk, &e.theta, false), e.pad(v, kk, &e.v, false), e.pad(out, kk, &e.out, true)
	net, err := e.net(kk, b, BatchHVP)
	if err != nil {
		return err
	}
	return net.HVP(th, rows, vs, os)
}

// Round rounds theta to the device's dtype (float32 values on a float32
// device; float64 is unchanged). The image models have no constrained
// parameters.
func (e *DeviceBackend) Round(theta []float64) {
	if e.Data.Dev.DType() == kernels.F32 {
		for i, v := range theta {
			theta[i] = float64(float32(v))
		}
	}
}

// Close releases every program and its device memory.
func (e *DeviceBackend) Close() error {
	first := e.CloseChunks()
	for key, en := range e.nets {
		if err := en.net.Close(); err != nil && first == nil {
			first = err
		}
		delete(e.nets, key)
	}
	return first
}

// DeviceTestLoss is the test loss of image-model trials on a device
// (DeviceEval) for any number of trials: groups of Cap trials, the last
// padded with zero parameters (results dropped), so one compiled program
// serves every call.
type DeviceTestLoss struct {
	// Cap is the number of trials per program; it halves (down to 1)
	// each time the device runs out of memory.
	Cap   int
	eval  *DeviceEval
	arch  *nets.Arch
	data  *DeviceData
	chunk int
	np    int
	zero  []float64
	// exact holds, on a CPU device, evaluations of exactly n < Cap trials
	// (compiled on first use): there a padded trial costs as much as a
	// real one, and a trial's result does not depend on K.
	exact map[int]*DeviceEval
	cpu   bool
}

// NewDeviceTestLoss prepares the test loss of arch's trials over data's
// whole pool, capTrials at a time in chunks of chunk examples. The result
// depends on neither (per-example values are added on the host in example
// order).
func NewDeviceTestLoss(arch *nets.Arch, data *DeviceData, capTrials, chunk int) (*DeviceTestLoss, error) {
	capTrials, chunk = max(capTrials, 1), max(chunk, 1)
	ev, err := NewDeviceEval(arch, data, capTrials, chunk)
	for errors.Is(err, kernels.ErrOutOfMemory) && capTrials > 1 {
		capTrials = max(1, capTrials/2)
		ev, err = NewDeviceEval(arch, data, capTrials, chunk)
	}
	if err != nil {
		return nil, fmt.Errorf("device test loss of %s (%d trials, chunks of %d): %w", arch.Name, capTrials, chunk, err)
	}
	_, cpu := kernels.WithWorkers(data.Dev, 1)
	return &DeviceTestLoss{Cap: capTrials, eval: ev, arch: arch, data: data, chunk: chunk, np: arch.NumParams(), zero: make([]float64, arch.NumParams()), cpu: cpu}, nil
}

// evalOf returns the evaluation for a call of n trials: the padded one of
// Cap trials, or on a CPU device one of exactly n.
func (t *DeviceTestLoss) evalOf(n int) (*DeviceEval, int, error) {
	if !t.cpu || n >= t.Cap {
		return t.eval, t.Cap, nil
	}
	if e, ok := t.exact[n]; ok {
		return e, n, nil
	}
	e, err := NewDeviceEval(t.arch, t.data, n, t.chunk)
	if err != nil {
		return nil, 0, fmt.Errorf("device test loss of %s (%d trials, chunks of %d): %w", t.arch.Name, n, t.chunk, err)
	}
	if t.exact == nil {
		t.exact = map[int]*DeviceEval{}
	}
	t.exact[n] = e
	return e, n, nil
}

// TestLoss sets loss[k] and acc[k] to the mean loss and accuracy of
// theta[k] over the whole pool.
func (t *DeviceTestLoss) TestLoss(theta [][]float64, loss, acc []float64) error {
	return t.Mean(theta, nil, loss, acc)
}

// Mean sets loss[k] and acc[k] to the mean loss and accuracy of theta[k]
// over the pool rows (nil: the whole pool; see DeviceEval.Mean).
func (t *DeviceTestLoss) Mean(theta [][]float64, rows []int, loss, acc []float64) error {
	if len(loss) < len(theta) || len(acc) < len(theta) {
		return fmt.Errorf("device test loss: %d trials but %d losses and %d accuracies", len(theta), len(loss), len(acc))
	}
	th := make([][]float64, t.Cap)
	l, a := make([]float64, t.Cap), make([]float64, t.Cap)
	for lo := 0; lo < len(theta); lo += t.Cap {
		hi := min(lo+t.Cap, len(theta))
		copy(th, theta[lo:hi])
		for i := hi - lo; i < t.Cap; i++ {
			th[i] = t.zero
		}
		for i, v := range th[:hi-lo] {
			if len(v) != t.np {
				return fmt.Errorf("device test loss: trial %d has %d parameters, want %d", lo+i, len(v), t.np)
			}
		}
		ev, k, err := t.evalOf(hi - lo)
		if err != nil {
			return err
		}
		err = ev.Mean(th[:k], rows, l[:k], a[:k])
		if errors.Is(err, kernels.ErrOutOfMemory) && t.Cap > 1 {
			// Start again with half the trials per program.
			if err := t.shrink(); err != nil {
				return err
			}
			return t.Mean(theta, rows, loss, acc)
		}
		if err != nil {
			return err
		}
		copy(loss[lo:hi], l)
		copy(acc[lo:hi], a)
	}
	return nil
}

// shrink replaces the evaluation by one for half as many trials, after
// the device ran out of memory.
func (t *DeviceTestLoss) shrink() error {
	if err := t.eval.Close(); err != nil {
		return fmt.Errorf("device test loss: release the evaluation of %d trials: %w", t.Cap, err)
	}
	t.Cap = max(1, t.Cap/2)
	ev, err := NewDeviceEval(t.arch, t.data, t.Cap, t.chunk)
	if err != nil {
		t.eval = nil
		return fmt.Errorf("device test loss of %s (%d trials, chunks of %d): %w", t.arch.Name, t.Cap, t.chunk, err)
	}
	t.eval = ev
	return nil
}

// Close releases the device buffers.
func (t *DeviceTestLoss) Close() error {
	var first error
	for n, e := range t.exact {
		if err := e.Close(); err != nil && first == nil {
			first = err
		}
		delete(t.exact, n)
	}
	if t.eval == nil {
		return first
	}
	if err := t.eval.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// Elements is the number of device elements the evaluation allocated (its
// programs and buffers; the pool not included): about Cap·chunk times the
// elements one example of one trial needs, which callers measure with a
// small chunk to size the real one.
func (t *DeviceTestLoss) Elements() int64 {
	var n int64
	for _, lane := range t.eval.lanes {
		for _, p := range lane {
			if p != nil {
				n += p.prog.Elements() + int64(p.y.Len()+p.loss.Len()+p.corr.Len()+p.labels.Len())
			}
		}
	}
	return n
}
