package graph

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/perturb/perturb/nets"
)

// PoolEvaluator computes the exact test loss of many trials of one image
// model at once: for every trial the mean softmax cross-entropy and the
// accuracy over all examples of a pool (or selected rows). It is a
// hand-written forward pass, independent of gorgonia, that evaluates the K
// trials of a call together with dense level-3 BLAS products through gonum's
// blas32 (float32 models) or blas64 (float64) packages, so whatever BLAS is
// registered there is used (see UseFastBLAS and the openblas build tag).
//
// The pool is streamed in chunks of examples, several chunks at a time on
// Workers goroutines, each with its own buffers:
//
//   - logistic: one product (chunk × D)·(D × K·C) of the chunk's examples
//     with the K trials' weight matrices side by side, then the per-(example,
//     trial) log-sum-exp;
//   - convnet: the im2col matrix of the chunk's images is built once and
//     multiplied by the first-layer kernels of up to peConvGroup trials side
//     by side (the K trials in groups of peConvGroup); then per trial the
//     im2col of its first-layer output, the second convolution and the two
//     dense layers, tanh after every layer but the last.
//
// Products and activations run in the model's dtype (the dtype of the
// Data); float32 uses a rational tanh approximation within a few ulp of
// math.Tanh (fastmath.go), float64 uses math.Tanh. Each trial's loss is
// accumulated in float64: per example in order within a chunk, and the
// chunks' partial sums in chunk order, so a trial's result does not depend
// on the other trials of the call, on K or on the goroutine scheduling, and
// on the chunk size only through float64 summation order and the rounding
// of the BLAS products.
//
// A PoolEvaluator keeps its buffers between calls and is not safe for
// concurrent use.
type PoolEvaluator struct {
	arch    *nets.Arch
	data    *Data
	opts    PoolOptions
	model   peModel
	workers []peWorker
}

// PoolOptions configures a PoolEvaluator. Zero values select the defaults.
type PoolOptions struct {
	// MaxBytes bounds the memory of the evaluation buffers of one call (all
	// workers' chunk buffers plus the trials' converted parameters); the
	// automatic chunk size is the largest that fits. Default 1 GiB.
	MaxBytes int64
	// Chunk is the number of examples a worker evaluates at a time; 0 picks
	// it automatically (see ChunkSize). A larger value than MaxBytes allows
	// is reduced.
	Chunk int
	// Workers is the number of goroutines evaluating chunks in parallel;
	// default runtime.NumCPU().
	Workers int
}

// DefaultPoolMaxBytes is the default PoolOptions.MaxBytes, 1 GiB.
const DefaultPoolMaxBytes int64 = 1 << 30

const (
	// peChunkCap caps the automatic chunk size: beyond a few hundred
	// examples the buffers outgrow the caches without making the products
	// faster.
	peChunkCap = 256
	// peConvGroup is the number of convnet trials whose first-layer kernels
	// are multiplied with the shared im2col matrix in one product.
	peConvGroup = 16
)

// peModel is one architecture's batched forward pass.
type peModel interface {
	// pack converts the K trials' parameters to the model's dtype and
	// layout; it is called before the workers of a call start.
	pack(theta [][]float64)
	// perExample is the bytes of one worker's buffers per example of a
	// chunk, for k trials.
	perExample(k int) int64
	// fixedBytes is the bytes of the packed parameters of k trials.
	fixedBytes(k int) int64
	newWorker() peWorker
}

// peWorker evaluates chunks of examples for every packed trial.
type peWorker interface {
	// run evaluates the n examples rows (or with rows == nil from, from+1,
	// ...) for every trial k, setting sums[k] to the summed loss and
	// correct[k] to the number of correctly classified examples.
	run(from int, rows []int, n int, sums []float64, correct []int64)
}

// NewPoolEvaluator returns an evaluator of arch (logistic or convnet) over
// the examples of d, in d's dtype.
func NewPoolEvaluator(arch *nets.Arch, d *Data, opts PoolOptions) (*PoolEvaluator, error) {
	if d.Dim != arch.Dim() || d.Classes != arch.Classes {
		return nil, fmt.Errorf("pool evaluator %s: data has %d values and %d classes per example, model wants %d and %d",
			arch.Name, d.Dim, d.Classes, arch.Dim(), arch.Classes)
	}
	if (d.X32 == nil) == (d.X64 == nil) {
		return nil, fmt.Errorf("pool evaluator %s: data must have exactly one of X32 and X64", arch.Name)
	}
	if n := max(len(d.X32), len(d.X64)); n != d.Len()*d.Dim {
		return nil, fmt.Errorf("pool evaluator %s: %d values for %d examples of %d", arch.Name, n, d.Len(), d.Dim)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultPoolMaxBytes
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Chunk < 0 {
		return nil, fmt.Errorf("pool evaluator %s: negative chunk size %d", arch.Name, opts.Chunk)
	}
	e := &PoolEvaluator{arch: arch, data: d, opts: opts}
	var err error
	if d.X32 != nil {
		e.model, err = newPEModel[float32](arch, d, d.X32)
	} else {
		e.model, err = newPEModel[float64](arch, d, d.X64)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func newPEModel[T float](arch *nets.Arch, d *Data, x []T) (peModel, error) {
	switch arch.Name {
	case "logistic":
		return newPELogistic(arch, d, x)
	case "convnet":
		return newPEConvnet(arch, d, x)
	}
	return nil, fmt.Errorf("pool evaluator: unsupported model %q (supported: logistic, convnet)", arch.Name)
}

// Options returns the options in effect (defaults filled in).
func (e *PoolEvaluator) Options() PoolOptions { return e.opts }

// BytesPerChunk is the size in bytes of one worker's buffers for a chunk of
// chunk examples and k trials. Per example of a chunk, with S the size of
// the dtype (4 or 8), D the input size and C the classes:
//
//   - logistic: (D + k·C)·S: the gathered examples (used for row lists) and
//     the k trials' logits (Fashion-MNIST float32: 3,136 + 40·k bytes);
//   - convnet (Fashion-MNIST shapes): (144·25 + 16·250 + 160 + 10 + C)·S for
//     the shared first-layer im2col matrix and one trial's second layer,
//     plus 1,440·S per trial of a first-layer group of min(k, 16) trials
//     (float32: 31,120 + 5,760·min(k, 16) bytes).
//
// A call of k trials needs Workers·BytesPerChunk(k, chunk) plus
// FixedBytes(k); ChunkSize picks the chunk so that this stays below
// MaxBytes.
func (e *PoolEvaluator) BytesPerChunk(k, chunk int) int64 {
	return int64(chunk) * e.model.perExample(k)
}

// FixedBytes is the size in bytes of the k trials' parameters converted to
// the model's dtype and layout (k·NumParams·S, plus small bias tiles).
func (e *PoolEvaluator) FixedBytes(k int) int64 { return e.model.fixedBytes(k) }

// ChunkSize returns the chunk size a call of k trials over total examples
// uses: Options().Chunk if set, else the largest chunk (at most 256, and at
// most an equal share of the examples per worker) whose buffers keep
// Workers·BytesPerChunk(k, chunk) + FixedBytes(k) within MaxBytes. It fails
// when not even a chunk of one example fits.
func (e *PoolEvaluator) ChunkSize(k, total int) (int, error) {
	workers := int64(min(e.opts.Workers, max(total, 1)))
	budget := e.opts.MaxBytes - e.model.fixedBytes(k)
	fit := budget / (workers * e.model.perExample(k))
	if fit < 1 {
		return 0, fmt.Errorf("pool evaluator %s: %d trials need %d bytes per example and worker plus %d, more than MaxBytes %d allows with %d workers; evaluate fewer trials at once",
			e.arch.Name, k, e.model.perExample(k), e.model.fixedBytes(k), e.opts.MaxBytes, workers)
	}
	chunk := e.opts.Chunk
	if chunk == 0 {
		chunk = min(peChunkCap, (total+int(workers)-1)/int(workers))
	}
	return int(min(int64(max(chunk, 1)), fit)), nil
}

// TestLoss sets loss[k] and acc[k] to the mean cross-entropy and the
// accuracy (arg-max of the logits, ties to the lowest class) of theta[k]
// over every example of the pool. theta[k] holds trial k's parameters
// flattened in the order of arch.Params, as float64 values representable in
// the model's dtype. A trial whose parameters are not finite gets NaN loss
// (or an arbitrary accuracy) without affecting the others. It implements
// optim.TestLosser.
func (e *PoolEvaluator) TestLoss(theta [][]float64, loss, acc []float64) error {
	return e.Mean(theta, nil, loss, acc)
}

// Mean is TestLoss over the examples rows of the pool (repetitions count
// repeatedly), or over all of them when rows is nil.
func (e *PoolEvaluator) Mean(theta [][]float64, rows []int, loss, acc []float64) error {
	k := len(theta)
	if k == 0 {
		return nil
	}
	if len(loss) < k || len(acc) < k {
		return fmt.Errorf("pool evaluator %s: %d trials but %d losses and %d accuracies", e.arch.Name, k, len(loss), len(acc))
	}
	np := e.arch.NumParams()
	for i, t := range theta {
		if len(t) != np {
			return fmt.Errorf("pool evaluator %s: trial %d has %d parameters, want %d", e.arch.Name, i, len(t), np)
		}
	}
	total := e.data.Len()
	if rows != nil {
		total = len(rows)
		for _, r := range rows {
			if r < 0 || r >= e.data.Len() {
				return fmt.Errorf("pool evaluator %s: row %d out of range [0, %d)", e.arch.Name, r, e.data.Len())
			}
		}
	}
	if total == 0 {
		return fmt.Errorf("pool evaluator %s: no examples", e.arch.Name)
	}
	chunk, err := e.ChunkSize(k, total)
	if err != nil {
		return err
	}
	nChunks := (total + chunk - 1) / chunk
	workers := min(e.opts.Workers, nChunks)
	for len(e.workers) < workers {
		e.workers = append(e.workers, e.model.newWorker())
	}
	e.model.pack(theta)
	sums := make([]float64, nChunks*k)
	correct := make([]int64, nChunks*k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(wk peWorker) {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= nChunks {
					return
				}
				from := c * chunk
				n := min(chunk, total-from)
				var rs []int
				if rows != nil {
					rs = rows[from : from+n]
				}
				wk.run(from, rs, n, sums[c*k:(c+1)*k], correct[c*k:(c+1)*k])
			}
		}(e.workers[w])
	}
	wg.Wait()
	for j := 0; j < k; j++ {
		s, c := 0.0, int64(0)
		for ch := 0; ch < nChunks; ch++ {
			s += sums[ch*k+j]
			c += correct[ch*k+j]
		}
		loss[j] = s / float64(total)
		acc[j] = float64(c) / float64(total)
	}
	return nil
}

// peGemm sets c = a·b for row-major a (m × k, stride lda), b (k × n, stride
// ldb) and c (m × n, stride ldc) through the registered blas32 or blas64
// implementation.
func peGemm[T float](m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		blas32.Implementation().Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1,
			a, lda, any(b).([]float32), ldb, 0, any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1,
			a, lda, any(b).([]float64), ldb, 0, any(c).([]float64), ldc)
	}
}

// peScorer scores logits rows: the cross-entropy and arg-max of
// z·s + b (rounded to the dtype as gorgonia's graph does) against labels.
type peScorer[T float] struct {
	l []float64 // scratch, one row of logits
}

// score returns the loss of one example with raw logits z (before scale s
// and bias b) and label y, and whether its arg-max (ties to the lowest
// class) is y. The log-sum-exp runs in float64.
func (sc *peScorer[T]) score(z []T, s T, b []T, y int) (float64, bool) {
	l := sc.l[:len(b)]
	z = z[:len(b)]
	for c := range l {
		l[c] = float64(T(z[c]*s) + b[c])
	}
	best := 0
	for c := 1; c < len(l); c++ {
		if l[c] > l[best] {
			best = c
		}
	}
	m := l[best]
	sum := 0.0
	for _, v := range l {
		sum += math.Exp(v - m)
	}
	return math.Log(sum) - (l[y] - m), best == y
}

// peRow returns the example index of the i-th example of a chunk.
func peRow(from int, rows []int, i int) int {
	if rows != nil {
		return rows[i]
	}
	return from + i
}

// peSlab carves buffers out of one allocation that is kept between calls
// and grown only when a call needs more.
type peSlab[T float] struct {
	buf []T
	off int
}

func (s *peSlab[T]) reset(n int) {
	if cap(s.buf) < n {
		s.buf = make([]T, n)
	}
	s.buf = s.buf[:cap(s.buf)]
	s.off = 0
}

func (s *peSlab[T]) take(n int) []T {
	b := s.buf[s.off : s.off+n : s.off+n]
	s.off += n
	return b
}

func peSizeOf[T float]() int64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}
