package noise

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

// Evaluator is what the measurements need of one model in one precision
// over a fixed set of examples: the mean loss of many parameter vectors
// and the gradient of the mean loss at one.
type Evaluator interface {
	// Losses sets dst[k] to the mean loss of thetas[k] (parameters rounded
	// to the precision); a vector's value does not depend on the others.
	Losses(thetas [][]float64, dst []float64) error
	// Grad sets grad to the gradient of the mean loss at theta, rounded to
	// the precision, and returns the mean loss.
	Grad(theta, grad []float64) (float64, error)
	// GradRows is Grad over the examples rows only (in their order).
	GradRows(theta []float64, rows []int, grad []float64) (float64, error)
	// Close releases the evaluator's buffers.
	Close() error
}

// Engine selects what computes the losses and gradients.
type Engine string

// The engines.
const (
	// EngineWalker runs the model's batched graph through graph's walker
	// on the CPU device: kernels.NewCPU(F64) for float64, NewCPU(F32) for
	// float32, and kernels.Rounding(NewCPU(F32), BF16 or FP16) for bf16 and
	// fp16 (see kernels.Rounding for what is rounded where). tf32 runs on
	// a GPU given to NewEvaluatorOn with cuBLAS's TF32 tensor-core
	// products switched on (Device.SetTF32), or else on
	// kernels.TF32Products(NewCPU(F32)), the emulation: the products'
	// operands rounded to tf32, everything else float32. One engine for
	// every model the walker supports.
	EngineWalker Engine = "walker"
	// EngineAuto is the walker, the one engine (the hand-written
	// nets/emulate it replaced is retired: the default scan cost no more
	// through the walker, 270 s against 279 s and 236 s against 271 s in
	// the other order on one 2-core machine; docs/precision.md, "Speed").
	EngineAuto Engine = ""
)

// NewEvaluator returns an evaluator of arch in precision f over the
// examples x (rows of arch.Dim() values) with labels y, on engine e, with
// workers goroutines (default: one per CPU). It also returns the engine
// used. It computes on the CPU (NewEvaluatorOn with no GPU).
func NewEvaluator(e Engine, a *nets.Arch, f precision.Format, x []float64, y []uint8, workers int) (Evaluator, Engine, error) {
	return NewEvaluatorOn(e, a, f, x, y, workers, nil)
}

// NewEvaluatorOn is NewEvaluator with a GPU (a float32 kernels.Device, or
// nil) for tf32: the walker computes tf32 on it with SetTF32(true) (one
// worker; the switch is turned off again by Close), or, on a device that
// does not honour the switch (the CUDA emulator), through
// kernels.TF32Products on it. Without a GPU, tf32 is the CPU emulation.
// The other precisions ignore gpu.
func NewEvaluatorOn(e Engine, a *nets.Arch, f precision.Format, x []float64, y []uint8, workers int, gpu kernels.Device) (Evaluator, Engine, error) {
	if f != precision.TF32 {
		gpu = nil
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	switch e {
	case EngineAuto, EngineWalker:
		ev, err := newWalker(a, f, x, y, workers, gpu)
		if err != nil {
			return nil, e, err
		}
		return ev, EngineWalker, nil
	}
	return nil, e, fmt.Errorf("engine %q: want walker (nets/emulate is retired)", e)
}

// walker evaluates through graph's walker. Each worker has its own device
// and copy of the examples; Losses splits the distinct parameter vectors
// between the workers, Grad the chunks of examples.
type walker struct {
	arch *nets.Arch
	f    precision.Format
	// rest is the format of the values at rest: f, but float32 for tf32
	// (only the products' operands are tf32).
	rest    precision.Format
	n       int
	workers []*walkWorker
	chunk   int
	// gpu is the GPU whose TF32 switch Close turns off, or nil.
	gpu kernels.Device
	// devName says what computes (Device).
	devName string
}

// Device says what computes the walker's losses and gradients.
func (w *walker) Device() string { return w.devName }

type walkWorker struct {
	dev  kernels.Device
	data *graph.DeviceData
	// part holds one chunk of the examples at a time, by chunk length
	// (copied from data before each evaluation).
	part  map[int]*graph.DeviceData
	evals map[[2]int]*graph.DeviceEval // by (number of trials, chunk length)
	nets  map[int]*graph.DeviceNet     // gradient programs by batch size
}

// evalImages is the number of images of a loss evaluation's chunk (the
// same for every number of trials, so that a vector's loss does not depend
// on how many are evaluated with it). The mean loss is summed in float64
// in two levels: the per-example losses of each
// chunk in example order (graph.DeviceEval), then the chunks' sums in
// order. A single running sum over all the examples would add a rounding
// error of about u·N·L per example, which dominates the float64 floor.
const evalImages = 100

// maxTrials is the largest number of parameter vectors in one loss
// program.
const maxTrials = 32

// gradChunk is the largest batch of a gradient program; the examples are
// split into chunks of powers of two (see walker.Grad).
const gradChunk = 256

// device returns the device of precision f (a worker's own).
func device(f precision.Format) (kernels.Device, error) {
	switch f {
	case precision.TF32:
		return kernels.TF32Products(kernels.NewCPU(kernels.F32)), nil
	case precision.Float64:
		return kernels.NewCPU(kernels.F64), nil
	case precision.Float32:
		return kernels.NewCPU(kernels.F32), nil
	case precision.BFloat16:
		return kernels.Rounding(kernels.NewCPU(kernels.F32), kernels.BF16), nil
	case precision.Float16:
		return kernels.Rounding(kernels.NewCPU(kernels.F32), kernels.FP16), nil
	}
	return nil, fmt.Errorf("precision %s has no device", f)
}

// gpuTF32 returns gpu with its TF32 products switched on, or
// kernels.TF32Products on it when it does not honour the switch; on
// reports whether the switch was turned on.
func gpuTF32(gpu kernels.Device) (dev kernels.Device, on bool, err error) {
	if gpu.DType() != kernels.F32 {
		return nil, false, fmt.Errorf("tf32 on %s: the device computes in %s, tf32 needs float32", gpu.Name(), gpu.DType())
	}
	ok, err := gpu.SetTF32(true)
	if err != nil {
		return nil, false, fmt.Errorf("switch on TF32 on %s: %w", gpu.Name(), err)
	}
	if !ok {
		return kernels.TF32Products(gpu), false, nil
	}
	return gpu, true, nil
}

func newWalker(a *nets.Arch, f precision.Format, x []float64, y []uint8, workers int, gpu kernels.Device) (_ *walker, err error) {
	n := len(y)
	if n == 0 || len(x) != n*a.Dim() {
		return nil, fmt.Errorf("walker %s: %d values for %d examples of %d", a.Name, len(x), n, a.Dim())
	}
	w := &walker{arch: a, f: f, rest: f, n: n, chunk: min(evalImages, n)}
	if f == precision.TF32 {
		w.rest = precision.Float32
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	d := &graph.Data{X64: x, Y: y, Dim: a.Dim(), Classes: a.Classes}
	if gpu != nil {
		workers = 1 // the GPU runs one program at a time
	}
	for range min(workers, 64) {
		var dev kernels.Device
		if gpu != nil {
			var on bool
			if dev, on, err = gpuTF32(gpu); err != nil {
				return nil, fmt.Errorf("walker %s: %w", a.Name, err)
			}
			if on {
				w.gpu = gpu
				w.devName = "cuBLAS TF32 tensor-core products on " + gpu.Name()
			}
		} else if dev, err = device(f); err != nil {
			return nil, err
		}
		if w.devName == "" {
			w.devName = dev.Name()
		}
		dd, err := graph.UploadData(dev, d)
		if err != nil {
			return nil, fmt.Errorf("walker %s %s: %w", a.Name, f, err)
		}
		w.workers = append(w.workers, &walkWorker{dev: dev, data: dd, part: map[int]*graph.DeviceData{}, evals: map[[2]int]*graph.DeviceEval{}, nets: map[int]*graph.DeviceNet{}})
	}
	// Check that the walker maps the model's graphs.
	if _, err := w.workers[0].eval(a, 1, w.chunk); err != nil {
		return nil, fmt.Errorf("walker %s %s: %w", a.Name, f, err)
	}
	if _, err := w.workers[0].net(a, 1); err != nil {
		return nil, fmt.Errorf("walker %s %s gradient: %w", a.Name, f, err)
	}
	return w, nil
}

// eval returns the evaluation of k trials over a chunk of n examples
// (ww.part[n]).
func (ww *walkWorker) eval(a *nets.Arch, k, n int) (*graph.DeviceEval, error) {
	if e, ok := ww.evals[[2]int{k, n}]; ok {
		return e, nil
	}
	// Keep the programs of at most three (trials, length) pairs.
	if len(ww.evals) >= 3 {
		for kk, e := range ww.evals {
			if err := e.Close(); err != nil {
				return nil, err
			}
			delete(ww.evals, kk)
		}
	}
	pd, ok := ww.part[n]
	if !ok {
		pd = &graph.DeviceData{Dev: ww.dev, N: n, Dim: ww.data.Dim, Classes: ww.data.Classes}
		var err error
		if pd.X, err = ww.dev.Alloc(n * pd.Dim); err != nil {
			return nil, fmt.Errorf("chunk of %d examples: %w", n, err)
		}
		if pd.Y, err = ww.dev.Alloc(n); err != nil {
			ww.dev.Free(pd.X)
			return nil, fmt.Errorf("chunk of %d labels: %w", n, err)
		}
		ww.part[n] = pd
	}
	e, err := graph.NewDeviceEval(a, pd, k, n)
	if err != nil {
		return nil, err
	}
	ww.evals[[2]int{k, n}] = e
	return e, nil
}

// losses adds to sums[j] the summed loss of thetas[j] over the examples,
// chunk by chunk (see evalImages).
func (ww *walkWorker) losses(a *nets.Arch, chunk int, thetas [][]float64, sums []float64) error {
	k := len(thetas)
	loss, acc := make([]float64, k), make([]float64, k)
	for from := 0; from < ww.data.N; from += chunk {
		n := min(chunk, ww.data.N-from)
		ev, err := ww.eval(a, k, n)
		if err != nil {
			return err
		}
		pd := ww.part[n]
		if err := ww.dev.Copy(pd.X, 0, ww.data.X, from*pd.Dim, n*pd.Dim); err != nil {
			return fmt.Errorf("copy examples %d to %d: %w", from, from+n, err)
		}
		if err := ww.dev.Copy(pd.Y, 0, ww.data.Y, from, n); err != nil {
			return fmt.Errorf("copy labels %d to %d: %w", from, from+n, err)
		}
		if err := ev.TestLoss(thetas, loss, acc); err != nil {
			return fmt.Errorf("examples %d to %d: %w", from, from+n, err)
		}
		for j, l := range loss {
			sums[j] += l * float64(n)
		}
	}
	return nil
}

func (ww *walkWorker) net(a *nets.Arch, b int) (*graph.DeviceNet, error) {
	if d, ok := ww.nets[b]; ok {
		return d, nil
	}
	d, err := graph.NewDeviceNet(a, ww.data, 1, b, graph.BatchGrad)
	if err != nil {
		return nil, err
	}
	ww.nets[b] = d
	return d, nil
}

// Close frees every worker's programs and data.
func (w *walker) Close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, ww := range w.workers {
		for _, e := range ww.evals {
			keep(e.Close())
		}
		for _, pd := range ww.part {
			keep(pd.Close())
		}
		for _, d := range ww.nets {
			keep(d.Close())
		}
		keep(ww.data.Close())
		if t, ok := ww.dev.(*kernels.TF32Device); ok {
			keep(t.Release()) // the scratch; the device itself is left open
		}
	}
	w.workers = nil
	if w.gpu != nil {
		if _, err := w.gpu.SetTF32(false); err != nil {
			keep(fmt.Errorf("switch off TF32 on %s: %w", w.gpu.Name(), err))
		}
		w.gpu = nil
	}
	return first
}

// key is the bits of theta rounded to the precision of the values at
// rest.
func (w *walker) key(theta []float64, buf []byte) string {
	buf = buf[:0]
	for _, v := range theta {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(w.rest.Round(v)))
	}
	return string(buf)
}

// Losses evaluates the distinct rounded vectors once each (vectors that
// round to the same parameters, common in bf16 and fp16 at small
// perturbations, have the same loss), split into contiguous groups, one
// per worker.
func (w *walker) Losses(thetas [][]float64, dst []float64) error {
	if len(dst) < len(thetas) {
		return fmt.Errorf("walker %s: %d losses for %d parameter vectors", w.arch.Name, len(dst), len(thetas))
	}
	np := w.arch.NumParams()
	first := make([]int, len(thetas))
	seen := map[string]int{}
	var distinct []int
	var buf []byte
	for i, t := range thetas {
		if len(t) != np {
			return fmt.Errorf("walker %s: parameter vector %d has %d values, want %d", w.arch.Name, i, len(t), np)
		}
		k := w.key(t, buf)
		if j, ok := seen[k]; ok {
			first[i] = j
			continue
		}
		seen[k], first[i] = i, i
		distinct = append(distinct, i)
	}
	// Pieces of at most maxTrials vectors, of nearly equal sizes, taken
	// by the workers in turn.
	pieces := (len(distinct) + maxTrials - 1) / maxTrials
	nw := min(len(w.workers), pieces)
	errs := make([]error, nw)
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range nw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := int(next.Add(1) - 1)
				if p >= pieces {
					return
				}
				idx := distinct[p*len(distinct)/pieces : (p+1)*len(distinct)/pieces]
				th := make([][]float64, len(idx))
				for j, i := range idx {
					th[j] = thetas[i]
				}
				sums := make([]float64, len(idx))
				if err := w.workers[g].losses(w.arch, w.chunk, th, sums); err != nil {
					errs[g] = fmt.Errorf("walker %s %s: %w", w.arch.Name, w.f, err)
					return
				}
				for j, i := range idx {
					dst[i] = sums[j] / float64(w.n)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for i := range thetas {
		dst[i] = dst[first[i]]
	}
	return nil
}

// chunks splits n examples into consecutive chunks of powers of two, at
// most gradChunk each: the gradient graph's mean carries the factor 1/B,
// which is then exact in every format.
func chunks(n int) [][2]int {
	var out [][2]int
	for from := 0; from < n; {
		b := gradChunk
		for b > n-from {
			b /= 2
		}
		out = append(out, [2]int{from, b})
		from += b
	}
	return out
}

// Grad computes the gradient of the mean loss over chunks of the examples
// of power-of-two sizes up to 256 (each the gradient of its chunk's mean
// loss, computed on the device in the precision), combines them in
// float64 in example order weighted by the chunks' sizes, and rounds the
// result to the precision. The loss is the mean of the per-example losses
// (rounded to the precision in bf16 and fp16: in the gradient graph they
// are intermediate values).
func (w *walker) Grad(theta, grad []float64) (float64, error) {
	np := w.arch.NumParams()
	if len(theta) != np || len(grad) != np {
		return 0, fmt.Errorf("walker %s: %d parameters and %d gradient values, want %d", w.arch.Name, len(theta), len(grad), np)
	}
	cs := chunks(w.n)
	gs := make([][]float64, len(cs))
	ls := make([]float64, len(cs))
	errs := make([]error, len(w.workers))
	var wg sync.WaitGroup
	for g, ww := range w.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := g; c < len(cs); c += len(w.workers) {
				from, b := cs[c][0], cs[c][1]
				dn, err := ww.net(w.arch, b)
				if err != nil {
					errs[g] = fmt.Errorf("walker %s %s gradient: %w", w.arch.Name, w.f, err)
					return
				}
				rows := make([]int, b)
				for i := range rows {
					rows[i] = from + i
				}
				gs[c] = make([]float64, np)
				loss := make([]float64, 1)
				if err := dn.Grad([][]float64{theta}, [][]int{rows}, loss, [][]float64{gs[c]}); err != nil {
					errs[g] = fmt.Errorf("walker %s %s gradient: %w", w.arch.Name, w.f, err)
					return
				}
				ls[c] = loss[0]
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	clear(grad)
	loss := 0.0
	for c, g := range gs {
		wt := float64(cs[c][1]) / float64(w.n)
		for i, v := range g {
			grad[i] += wt * v
		}
		loss += wt * ls[c]
	}
	precision.RoundSlice(w.rest, grad)
	return loss, nil
}

// GradRows is the gradient of the mean loss over the examples rows, one
// program of batch len(rows) on the first worker, rounded to the
// precision. Its 1/B is rounded to the format too (exact for B a power of
// two, such as SGD's B = 1).
func (w *walker) GradRows(theta []float64, rows []int, grad []float64) (float64, error) {
	np := w.arch.NumParams()
	if len(theta) != np || len(grad) != np || len(rows) == 0 {
		return 0, fmt.Errorf("walker %s: %d parameters, %d gradient values and %d rows, want %d, %d and some", w.arch.Name, len(theta), len(grad), len(rows), np, np)
	}
	for _, r := range rows {
		if r < 0 || r >= w.n {
			return 0, fmt.Errorf("walker %s: row %d of %d examples", w.arch.Name, r, w.n)
		}
	}
	dn, err := w.workers[0].net(w.arch, len(rows))
	if err != nil {
		return 0, fmt.Errorf("walker %s %s gradient: %w", w.arch.Name, w.f, err)
	}
	loss := make([]float64, 1)
	if err := dn.Grad([][]float64{theta}, [][]int{rows}, loss, [][]float64{grad}); err != nil {
		return 0, fmt.Errorf("walker %s %s gradient: %w", w.arch.Name, w.f, err)
	}
	precision.RoundSlice(w.rest, grad)
	return loss[0], nil
}
