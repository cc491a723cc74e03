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
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/perturb/perturb/nets"
)

// PoolEvaluator computes the exact test loss of many trials of one image
// model at once: for every trial the mean softmax cross-entropy and the
// accuracy over all examples of a pool (or selected rows). It is a
// hand-written forward pass, independent of gorgonia, that evaluates the K
// trials of a call together with dense level-3 BLAS products through gonum's
// blas32 (float32 models) or blas64 (float64) packages, so whatever BLAS is
// registered there is used (see package nets/blas and the openblas build tag).
//
// The pool is streamed in chunks of examples, several chunks at a time on
// Workers goroutines, each with its own buffers:
//
//   - logistic: one product (chunk × D)·(D × K·C) of the chunk's examples
//     with the K trials' weight matrices side by side, then the per-(example,
//     trial) log-sum-exp;
//   - convnet: the im2col matrix of the chunk's images is built once and
//     multiplied by the first-layer kernels of up to 8 trials side by side
//     (the K trials in groups of 8, so that a chunk's buffers stay in a
//     core's L2 cache); then per trial the im2col of its first-layer
//     output, the second convolution and the two dense layers, tanh after
//     every layer but the last.
//
// Products and activations run in the model's dtype (the dtype of the
// Data). float32 uses AVX2 kernels for tanh (a rational approximation
// within a few ulp of math.Tanh) and for the exponentials of the
// log-sum-exp (within an ulp of math.Exp), see fastmath.go, with pure-Go
// fallbacks on other CPUs; float64 uses math.Tanh and math.Exp. Each
// trial's loss is accumulated in float64 in a fixed order (per example in
// order within a chunk, the chunks' sums in chunk order within a segment of
// consecutive chunks, the segments' sums in segment order), so a trial's
// result does not depend on the other trials of the call, on K, on the
// number of workers or on the goroutine scheduling, and on the chunk size
// only through float64 summation order and the rounding of the BLAS
// products.
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
	// workers' chunk buffers plus the trials' converted parameters): the
	// chunk size is reduced until they fit (see ChunkSize). Default 1 GiB.
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
	// peChunkCap caps the chunk size.
	peChunkCap = 4096
	// peConvGroup is the number of convnet trials whose first-layer kernels
	// are multiplied with the shared im2col matrix in one product.
	peConvGroup = 8
	// peCacheBytes is the size of one worker's convnet buffers the
	// automatic chunk aims at, to keep them in a core's L2 cache (chunks of
	// 4 to 32 examples were fastest, larger ones up to 2.5 times slower).
	peCacheBytes = 640 << 10
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
	// autoChunk is the fastest chunk size for k trials.
	autoChunk(k int) int
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

// PoolSupports returns nil when NewPoolEvaluator can evaluate arch (the
// logistic model and convnets with the paper's two strided convolutions),
// and otherwise the error NewPoolEvaluator would give, so that a run can
// refuse such a model before training anything.
func PoolSupports(arch *nets.Arch) error {
	_, err := newPEModel[float64](arch, &Data{Dim: arch.Dim(), Classes: arch.Classes}, nil)
	return err
}

// Options returns the options in effect (defaults filled in).
func (e *PoolEvaluator) Options() PoolOptions { return e.opts }

// BytesPerChunk is the size in bytes of one worker's buffers for a chunk of
// chunk examples and k trials. Per example of a chunk, with S the size of
// the dtype (4 or 8), D the input size and C the classes:
//
//   - logistic: (D + k·C)·S for the gathered examples (used for row lists)
//     and the k trials' logits, plus k·(C+1)·4 of log-sum-exp scratch for
//     float32 (Fashion-MNIST float32: 3,136 + 84·k bytes; float64: 6,272 +
//     80·k bytes);
//   - convnet (Fashion-MNIST shapes): (144·25 + 16·250 + 160 + 10 + C)·S
//     for the shared first-layer im2col matrix and one trial's later
//     layers, (C+1)·4 of scratch for float32, plus 1,440·S per trial of a
//     first-layer group of min(k, 8) trials (float32: 31,164 +
//     5,760·min(k, 8) bytes; float64: 62,240 + 11,520·min(k, 8) bytes).
//
// A call of k trials needs at most Workers·BytesPerChunk(k, chunk) plus
// FixedBytes(k); ChunkSize picks the chunk so that this stays within
// MaxBytes. (The partial sums, 16·k bytes for each of at most
// max(256, chunks/64) segments of chunks, are not counted.)
func (e *PoolEvaluator) BytesPerChunk(k, chunk int) int64 {
	return int64(chunk) * e.model.perExample(k)
}

// FixedBytes is the size in bytes of the k trials' parameters converted to
// the model's dtype and layout (k·NumParams·S, plus small bias tiles).
func (e *PoolEvaluator) FixedBytes(k int) int64 { return e.model.fixedBytes(k) }

// ChunkSize returns the chunk size a call of k trials over total examples
// uses: Options().Chunk if set, else the fastest measured for the model
// (logistic: 64 examples for one trial, 256 for more; convnet: about 640
// KiB of buffers, 8 examples for 8 trials or more, 17 for one); at most an
// equal share of the examples per worker, and reduced where needed so that
// Workers·BytesPerChunk(k, chunk) + FixedBytes(k) stays within MaxBytes.
// It fails when not even a chunk of one example fits.
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
		chunk = min(e.model.autoChunk(k), (total+int(workers)-1)/int(workers))
	}
	return int(min(int64(min(max(chunk, 1), peChunkCap)), fit)), nil
}

// TestLoss sets loss[k] and acc[k] to the mean cross-entropy and the
// accuracy (arg-max of the logits, ties to the lowest class) of theta[k]
// over every example of the pool. theta[k] holds trial k's parameters
// flattened in the order of arch.Params, as float64 values (rounded to the
// model's dtype). A NaN parameter gives its trial a NaN loss (and an
// arbitrary accuracy), an infinite one a NaN or infinite loss; the other
// trials of the call are unaffected. It implements optim.TestLosser.
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
	// Workers take segments of per consecutive chunks; a segment's partial
	// sums add its chunks' sums in chunk order, and the segments' partials
	// are added in segment order: a fixed order that depends on the chunk
	// size but not on the workers, with partial sums for at most about 256
	// segments (or nChunks/64) instead of one per chunk.
	per := min(max(nChunks/256, 1), 64)
	nSeg := (nChunks + per - 1) / per
	workers := min(e.opts.Workers, nSeg)
	for len(e.workers) < workers {
		e.workers = append(e.workers, e.model.newWorker())
	}
	e.model.pack(theta)
	sums := make([]float64, nSeg*k)
	correct := make([]int64, nSeg*k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(wk peWorker) {
			defer wg.Done()
			cs, cc := make([]float64, k), make([]int64, k)
			for {
				sg := int(next.Add(1) - 1)
				if sg >= nSeg {
					return
				}
				ss, sc := sums[sg*k:(sg+1)*k], correct[sg*k:(sg+1)*k]
				for c := sg * per; c < min((sg+1)*per, nChunks); c++ {
					from := c * chunk
					n := min(chunk, total-from)
					var rs []int
					if rows != nil {
						rs = rows[from : from+n]
					}
					wk.run(from, rs, n, cs, cc)
					for j := range ss {
						ss[j] += cs[j]
						sc[j] += cc[j]
					}
				}
			}
		}(e.workers[w])
	}
	wg.Wait()
	for j := 0; j < k; j++ {
		s, c := 0.0, int64(0)
		for sg := 0; sg < nSeg; sg++ {
			s += sums[sg*k+j]
			c += correct[sg*k+j]
		}
		loss[j] = s / float64(total)
		acc[j] = float64(c) / float64(total)
	}
	return nil
}

// peGemm sets c = a·b for row-major a (m × k, stride lda) and c (m × n,
// stride ldc) through the registered blas32 or blas64 implementation. b is
// k × n (stride ldb), or with transB its transpose n × k.
func peGemm[T float](transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	tb := blas.NoTrans
	if transB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float32:
		blas32.Implementation().Sgemm(blas.NoTrans, tb, m, n, k, 1,
			a, lda, any(b).([]float32), ldb, 0, any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(blas.NoTrans, tb, m, n, k, 1,
			a, lda, any(b).([]float64), ldb, 0, any(c).([]float64), ldc)
	}
}

// peTransB reports whether a product with n output columns and inner
// dimension k should take its right operand transposed. Gonum's pure-Go
// gemm runs a·b as one axpy of length n per element of a, which is slow
// for the models' 10-wide layers (about 3 GFLOP/s for 256×250 · 250×10),
// and a·bᵀ as dot products of length k (about 10 GFLOP/s). Optimised BLAS
// libraries (OpenBLAS) do as well or better without the transpose.
func peTransB[T float](n, k int) bool {
	var native bool
	var z T
	if _, ok := any(z).(float32); ok {
		_, native = blas32.Implementation().(gonum.Implementation)
	} else {
		_, native = blas64.Implementation().(gonum.Implementation)
	}
	return native && n <= 32 && k >= 100
}

// peScorer scores blocks of logits: the cross-entropy and arg-max of
// z·s + b (the product rounded to the dtype before the bias is added, as in
// gorgonia's graph) against the labels. It is one worker's, with scratch
// space.
type peScorer[T float] struct {
	l  []float64 // one row of logits (float64 path)
	d  []float32 // logits minus their row maximum, then their exp (float32 path)
	dy []float32 // the label's logit minus the row maximum
}

// peScoreBytes is the scratch space of peScorer.block per example and
// trial.
func peScoreBytes[T float](cls int) int64 {
	if peSizeOf[T]() == 4 {
		return int64(cls+1) * 4
	}
	return 0
}

// block scores n examples of k trials: trial j's raw logits of example i
// (before the scale s and the bias b[j·cls:]) are z[i·ldz+j·cls:][:cls],
// the example's label is y[peRow(from, rows, i)]. It adds each example's
// loss to sums[j], in example order, and counts correct arg-maxes (ties
// to the lowest class) in correct[j]. The log-sum-exp subtracts the row
// maximum; float64 runs in float64 with math.Exp, float32 computes the
// exponentials with peExp32 and sums them and takes the log in float64.
func (sc *peScorer[T]) block(z []T, ldz, n, k, cls int, s T, b []T, y []uint8, from int, rows []int, sums []float64, correct []int64) {
	if z32, ok := any(z).([]float32); ok {
		sc.block32(z32, ldz, n, k, cls, float32(s), any(b).([]float32), y, from, rows, sums, correct)
		return
	}
	if len(sc.l) < cls {
		sc.l = make([]float64, cls)
	}
	l := sc.l[:cls]
	for i := 0; i < n; i++ {
		yi := int(y[peRow(from, rows, i)])
		for j := 0; j < k; j++ {
			zz, bb := z[i*ldz+j*cls:][:cls], b[j*cls:][:cls]
			for c := range l {
				l[c] = float64(T(zz[c]*s) + bb[c])
			}
			best := 0
			for c := 1; c < cls; c++ {
				if l[c] > l[best] {
					best = c
				}
			}
			m := l[best]
			sum := 0.0
			for _, v := range l {
				sum += math.Exp(v - m)
			}
			sums[j] += math.Log(sum) - (l[yi] - m)
			if best == yi {
				correct[j]++
			}
		}
	}
}

func (sc *peScorer[T]) block32(z []float32, ldz, n, k, cls int, s float32, b []float32, y []uint8, from int, rows []int, sums []float64, correct []int64) {
	if cap(sc.d) < n*k*cls {
		sc.d = make([]float32, n*k*cls)
		sc.dy = make([]float32, n*k)
	}
	d, dy := sc.d[:n*k*cls], sc.dy[:n*k]
	for i := 0; i < n; i++ {
		yi := int(y[peRow(from, rows, i)])
		for j := 0; j < k; j++ {
			zz, bb := z[i*ldz+j*cls:][:cls], b[j*cls:][:cls]
			l := d[(i*k+j)*cls:][:cls]
			best := 0
			for c := range l {
				l[c] = float32(zz[c]*s) + bb[c]
				if l[c] > l[best] {
					best = c
				}
			}
			m := l[best]
			for c := range l {
				l[c] -= m
			}
			dy[i*k+j] = l[yi]
			if best == yi {
				correct[j]++
			}
		}
	}
	peExp32(d)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			sum := 0.0
			for _, v := range d[(i*k+j)*cls:][:cls] {
				sum += float64(v)
			}
			sums[j] += math.Log(sum) - float64(dy[i*k+j])
		}
	}
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
