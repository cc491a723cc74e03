package graph

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/perturb/perturb/nets"
)

// HVPEvaluator computes Hessian-vector products of the summed loss of an
// image model (logistic, convnet of depth 2) for many trials at once by a
// hand-written pass (the style of the retired pool evaluator): level-3 BLAS products
// through gonum's blas32/blas64 (OpenBLAS under the openblas build tag),
// im2col and its adjoint, independent of gorgonia. It computes what
// BatchNet of kind BatchHVP (DeviceBackend.HVP) computes,
//
//	out[k] = Σ_{r ∈ rows[k]} ∇²l(theta[k]; x_r) · v[k],
//
// the sum (not the mean) over trial k's examples, repetitions counting
// repeatedly, with l the softmax cross-entropy of the logits.
//
// # Derivation
//
// Every layer is z = s·(a W) + b (a convolution on the im2col matrix X of
// its input maps, one row per output position), a = tanh(z) except after
// the last layer, whose z are the logits; l = logsumexp(z) − z_y. Let a
// dot denote the directional derivative along V = (V_W, V_b) of every
// layer (Pearlmutter's R-operator) and δ = ∂l/∂z. The four passes are:
//
//   - forward: z_l = s_l·(a_{l−1} W_l) + b_l, a_l = tanh z_l (a_0 = X1,
//     the im2col of the images; a_1 enters layer 2 as X2 = im2col(a_1));
//   - tangent: ż_l = s_l·(ȧ_{l−1} W_l + a_{l−1} V_{W,l}) + V_{b,l},
//     ȧ_l = (1 − a_l²) ⊙ ż_l, with ȧ_0 = 0 (the inputs do not move) and
//     Ẋ2 = im2col(ȧ_1);
//   - reverse of the loss: δ_L = p − e_y with p = softmax z_L, then
//     ∂a_{l−1} = s_l·δ_l W_lᵀ (through col2im, the adjoint of im2col, for
//     the convolution) and δ_{l−1} = (1 − a_{l−1}²) ⊙ ∂a_{l−1};
//   - reverse of the tangent: δ̇_L = p ⊙ ż_L − p·(pᵀż_L), the softmax
//     Jacobian times ż_L; ∂ȧ_{l−1} = s_l·(δ̇_l W_lᵀ + δ_l V_{W,l}ᵀ) and
//     δ̇_{l−1} = (1 − a_{l−1}²) ⊙ ∂ȧ_{l−1} − 2 a_{l−1} ⊙ ȧ_{l−1} ⊙ ∂a_{l−1}.
//
// The gradient is ∇_{W_l} l = s_l·a_{l−1}ᵀ δ_l and ∇_{b_l} l = Σ δ_l, so
// the product is their directional derivative:
//
//	(H v)_{W_l} = s_l·(ȧ_{l−1}ᵀ δ_l + a_{l−1}ᵀ δ̇_l),   (H v)_{b_l} = Σ_rows δ̇_l,
//
// summed over the rows (examples, and output positions of a convolution).
// The weight sums are products whose inner dimension is the rows of a
// chunk; the loss gradient itself is never formed.
//
// # Arithmetic and reproducibility
//
// Products and activations run in the dtype of the Data (float32 tanh by
// the fast kernel of fastmath.go, float64 by math.Tanh); the softmax and its
// Jacobian are computed per example in float64 from the rounded logits and
// tangents. Each trial is evaluated on its own: its examples are taken in
// chunks of Chunk consecutive examples of rows[k], the chunks' products
// (in the dtype) are added in float64 in chunk order within segments of
// Segment examples, and the segments' sums in segment order. So a trial's
// product depends only on theta[k], v[k], rows[k], the dtype and the two
// sizes: never on the other trials, on K, on the number of workers or on
// the scheduling. A trial whose direction is exactly zero gets a zero
// product without any evaluation (even where its Hessian is not finite);
// a NaN or Inf in one trial stays in that trial.
//
// An HVPEvaluator keeps its buffers between calls and is not safe for
// concurrent use.
type HVPEvaluator struct {
	arch    *nets.Arch
	data    *Data
	opts    HVPOptions
	model   hvModel
	workers []hvWorker
	part    []float64  // per work item partial sums
	cache   []*hvCache // per trial position of the last call
}

// HVPOptions configures an HVPEvaluator. Zero values select the defaults.
type HVPOptions struct {
	// Chunk is the number of examples of a trial evaluated at a time:
	// default 8 for the convnet (about 560 KiB of float32 buffers, within
	// a core's L2 cache; 4 to 16 were about as fast, 32 and 64 slower),
	// 128 for the logistic model.
	Chunk int
	// Segment is the number of examples whose chunks one work item adds
	// (a multiple of Chunk; default the multiple of Chunk nearest 256).
	Segment int
	// Workers is the number of goroutines; default runtime.NumCPU(). Work
	// items are (trial, segment) pairs.
	Workers int
	// CacheBytes bounds the memory that keeps trials' primal values (the
	// forward pass and the loss reverse, which do not depend on the
	// direction) from one call to the next: default
	// DefaultHVPCacheBytes, negative for none. See HVP.
	CacheBytes int64
}

// DefaultHVPCacheBytes is the default HVPOptions.CacheBytes, 256 MiB.
const DefaultHVPCacheBytes int64 = 256 << 20

// Default chunk sizes and segment length of an HVPEvaluator.
const (
	hvConvChunk     = 8
	hvLogisticChunk = 128
	hvSegment       = 256
)

// hvModel is one architecture's Hessian-vector product.
type hvModel interface {
	defaultChunk() int
	newWorker() hvWorker
	// cacheBytes is the size of the primal values of n examples (0: the
	// model keeps none).
	cacheBytes(n int) int64
	// newCache returns a cache for n examples.
	newCache(n int) *hvCache
}

// hvCache holds one trial's primal values for its examples between calls:
// t ([]T) and p, laid out by the model, valid for the parameters theta
// and examples rows.
type hvCache struct {
	t     any
	p     []float64
	n     int
	theta []float64
	rows  []int
}

// matches reports whether the cache is for theta and rows.
func (c *hvCache) matches(theta []float64, rows []int) bool {
	if c == nil || len(rows) != c.n || !slices.Equal(rows, c.rows) {
		return false
	}
	for i, x := range theta {
		if math.Float64bits(x) != math.Float64bits(c.theta[i]) {
			return false
		}
	}
	return true
}

// hvWorker evaluates one trial's chunks; it is one goroutine's.
type hvWorker interface {
	// load converts a trial's parameters and direction (flat, in the order
	// of Arch.Params) to the worker's dtype and layout.
	load(theta, v []float64)
	// add adds the product over the examples rows (at most Chunk) of the
	// loaded trial to acc (flat, in the order of Arch.Params). With a
	// cache c, rows are the trial's examples lo, lo+1, ... of c, whose
	// primal values are read from c when have is set and written to it
	// otherwise; with c nil they are computed in scratch space.
	add(rows []int, acc []float64, c *hvCache, lo int, have bool)
}

// NewHVPEvaluator returns an evaluator of arch (logistic, or convnet of the
// paper's depth 2, any width) over the examples of d, in d's dtype.
func NewHVPEvaluator(arch *nets.Arch, d *Data, opts HVPOptions) (*HVPEvaluator, error) {
	if d.Dim != arch.Dim() || d.Classes != arch.Classes {
		return nil, fmt.Errorf("hvp evaluator %s: data has %d values and %d classes per example, model wants %d and %d",
			arch.Name, d.Dim, d.Classes, arch.Dim(), arch.Classes)
	}
	if (d.X32 == nil) == (d.X64 == nil) {
		return nil, fmt.Errorf("hvp evaluator %s: data must have exactly one of X32 and X64", arch.Name)
	}
	if n := max(len(d.X32), len(d.X64)); n != d.Len()*d.Dim {
		return nil, fmt.Errorf("hvp evaluator %s: %d values for %d examples of %d", arch.Name, n, d.Len(), d.Dim)
	}
	if opts.Chunk < 0 || opts.Segment < 0 {
		return nil, fmt.Errorf("hvp evaluator %s: negative chunk %d or segment %d", arch.Name, opts.Chunk, opts.Segment)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultHVPCacheBytes
	}
	e := &HVPEvaluator{arch: arch, data: d}
	var err error
	if d.X32 != nil {
		e.model, err = newHVModel[float32](arch, d, d.X32)
	} else {
		e.model, err = newHVModel[float64](arch, d, d.X64)
	}
	if err != nil {
		return nil, err
	}
	if opts.Chunk == 0 {
		opts.Chunk = e.model.defaultChunk()
	}
	if opts.Segment == 0 {
		opts.Segment = max(1, (hvSegment+opts.Chunk/2)/opts.Chunk) * opts.Chunk
	}
	if opts.Segment%opts.Chunk != 0 {
		return nil, fmt.Errorf("hvp evaluator %s: segment %d is not a multiple of the chunk %d", arch.Name, opts.Segment, opts.Chunk)
	}
	e.opts = opts
	return e, nil
}

func newHVModel[T float](arch *nets.Arch, d *Data, x []T) (hvModel, error) {
	switch arch.Name {
	case "logistic":
		m, err := newPELogistic(arch, d, x)
		if err != nil {
			return nil, fmt.Errorf("hvp evaluator: %w", err)
		}
		return &hvLogistic[T]{m: m}, nil
	case "convnet":
		m, err := newPEConvnet(arch, d, x)
		if err != nil {
			return nil, fmt.Errorf("hvp evaluator: %w", err)
		}
		return &hvConvnet[T]{m: m}, nil
	}
	return nil, fmt.Errorf("hvp evaluator: unsupported model %q (supported: logistic, convnet)", arch.Name)
}

// Options returns the options in effect (defaults filled in).
func (e *HVPEvaluator) Options() HVPOptions { return e.opts }

// DropCache releases the primal values kept for the next call (the next
// call recomputes them; no result changes).
func (e *HVPEvaluator) DropCache() {
	clear(e.cache)
	e.cache = e.cache[:0]
}

// CacheBytes is the memory that keeping one trial's primal values for n
// examples takes (0 where the model keeps none): Fashion-MNIST convnet,
// 12,960 bytes per example in float32, twice that in float64.
func (e *HVPEvaluator) CacheBytes(n int) int64 { return e.model.cacheBytes(n) }

// HVP sets out[k] = Σ_{r ∈ rows[k]} ∇²l(theta[k]; example r) · v[k] for
// every trial k: theta[k], v[k] and out[k] are flat in the order of
// arch.Params (theta and v are rounded to the dtype), rows[k] are example
// indices of the data (any number, repetitions allowed; none gives zero).
//
// The primal values of a trial (forward pass, softmax and loss reverse)
// do not depend on the direction: they are kept, within CacheBytes in
// trial order, and reused by the next call whose trial at the same
// position has bitwise the same theta and rows (as in the iterations of
// Lanczos and Hutchinson). Reused values are the values a recomputation
// would give, so caching never changes a result.
func (e *HVPEvaluator) HVP(theta [][]float64, rows [][]int, v, out [][]float64) error {
	k := len(theta)
	if len(rows) != k || len(v) != k || len(out) != k {
		return fmt.Errorf("hvp evaluator %s: %d parameter vectors, %d row lists, %d directions and %d outputs",
			e.arch.Name, k, len(rows), len(v), len(out))
	}
	np, n := e.arch.NumParams(), e.data.Len()
	for j := range theta {
		if len(theta[j]) != np || len(v[j]) != np || len(out[j]) != np {
			return fmt.Errorf("hvp evaluator %s: trial %d has %d parameters, %d direction and %d output values, want %d",
				e.arch.Name, j, len(theta[j]), len(v[j]), len(out[j]), np)
		}
		for _, r := range rows[j] {
			if r < 0 || r >= n {
				return fmt.Errorf("hvp evaluator %s: trial %d: row %d out of range [0, %d)", e.arch.Name, j, r, n)
			}
		}
	}
	type item struct{ trial, lo, hi, part int }
	var items []item
	first := make([]int, k) // first item of each trial, -1 for none
	seg := e.opts.Segment
	for len(e.cache) < k {
		e.cache = append(e.cache, nil)
	}
	clear(e.cache[k:])
	e.cache = e.cache[:k]
	have := make([]bool, k)
	var used int64
	for j := range theta {
		first[j] = -1
		if allZero(v[j]) {
			if c := e.cache[j]; c != nil {
				used += e.model.cacheBytes(c.n) // kept for the next call
			}
			continue
		}
		if c := e.cache[j]; c.matches(theta[j], rows[j]) {
			have[j] = true
			used += e.model.cacheBytes(c.n)
		} else if need := e.model.cacheBytes(len(rows[j])); need > 0 && used+need <= e.opts.CacheBytes {
			if c == nil || c.n != len(rows[j]) {
				c = e.model.newCache(len(rows[j]))
				c.n = len(rows[j])
				e.cache[j] = c
			}
			c.theta = append(c.theta[:0], theta[j]...)
			c.rows = append(c.rows[:0], rows[j]...)
			used += need
		} else {
			e.cache[j] = nil
		}
		first[j] = len(items)
		for lo := 0; lo < len(rows[j]); lo += seg {
			items = append(items, item{j, lo, min(lo+seg, len(rows[j])), len(items)})
		}
	}
	if cap(e.part) < len(items)*np {
		e.part = make([]float64, len(items)*np)
	}
	part := e.part[:len(items)*np]
	clear(part)
	workers := min(e.opts.Workers, len(items))
	for len(e.workers) < workers {
		e.workers = append(e.workers, e.model.newWorker())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(wk hvWorker) {
			defer wg.Done()
			loaded := -1
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				it := items[i]
				if it.trial != loaded {
					wk.load(theta[it.trial], v[it.trial])
					loaded = it.trial
				}
				acc := part[it.part*np : (it.part+1)*np]
				rs := rows[it.trial]
				for lo := it.lo; lo < it.hi; lo += e.opts.Chunk {
					wk.add(rs[lo:min(lo+e.opts.Chunk, it.hi)], acc, e.cache[it.trial], lo, have[it.trial])
				}
			}
		}(e.workers[w])
	}
	wg.Wait()
	for j := range theta {
		o := out[j]
		clear(o)
		if first[j] < 0 {
			continue
		}
		for i := first[j]; i < len(items) && items[i].trial == j; i++ {
			for q, x := range part[i*np : (i+1)*np] {
				o[q] += x
			}
		}
	}
	return nil
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// hvSoftmax sets p (n rows of cls) to the softmax, in float64, of the
// logits z = T(s·zr) + b of the raw products zr, shifted by their maximum.
func hvSoftmax[T float](p []float64, zr []T, n, cls int, s T, b []T) {
	for i := 0; i < n; i++ {
		z, pp := zr[i*cls:(i+1)*cls], p[i*cls:(i+1)*cls]
		m := math.Inf(-1)
		for c := range pp {
			pp[c] = float64(T(s*z[c]) + b[c])
			m = max(m, pp[c])
		}
		if math.IsInf(m, 0) {
			m = 0 // let the Inf through as NaN
		}
		sum := 0.0
		for c := range pp {
			pp[c] = math.Exp(pp[c] - m)
			sum += pp[c]
		}
		for c := range pp {
			pp[c] /= sum
		}
	}
}

// hvDelta sets d to the loss reverse δ = p − e_y of n examples, rounded to
// T; the labels are y[rows[i]].
func hvDelta[T float](d []T, p []float64, n, cls int, y []uint8, rows []int) {
	for i := 0; i < n; i++ {
		yi := int(y[rows[i]])
		for c, pc := range p[i*cls : (i+1)*cls] {
			if c == yi {
				pc--
			}
			d[i*cls+c] = T(pc)
		}
	}
}

// hvJacobian replaces the raw tangent products t of n examples' logits by
// δ̇ = p ⊙ ż − p·(pᵀ ż), ż = T(s·t) + vb, computed in float64 and rounded
// to T, and adds Σ δ̇ per class to gb.
func hvJacobian[T float](t []T, p []float64, n, cls int, s T, vb []T, gb []float64) {
	for i := 0; i < n; i++ {
		d, pp := t[i*cls:(i+1)*cls], p[i*cls:(i+1)*cls]
		q := 0.0
		for c := range pp {
			q += pp[c] * float64(T(s*d[c])+vb[c])
		}
		for c := range pp {
			dd := pp[c] * (float64(T(s*d[c])+vb[c]) - q)
			gb[c] += dd
			d[c] = T(dd)
		}
	}
}

// hvTangent sets t[i] = (1 − a[i]²)·(T(s·t[i]) + vb[i mod len(vb)]): the
// tangent of a tanh layer from its raw product t and activation a.
func hvTangent[T float](t, a []T, s T, vb []T) {
	w := len(vb)
	for i := 0; i < len(t); i += w {
		tt, aa := t[i:i+w], a[i:i+w]
		for j, b := range vb {
			tt[j] = (1 - aa[j]*aa[j]) * (T(s*tt[j]) + b)
		}
	}
}

// hvScaleTanh sets dst = (1 − a²) ⊙ g: a tanh layer's reverse δ from the
// reverse g of its activation a.
func hvScaleTanh[T float](dst, g, a []T) {
	for i, x := range g {
		d := 1 - a[i]*a[i]
		dst[i] = d * x
	}
}

// hvBack sets, for a tanh layer with activation a, tangent ad and loss
// reverse g of its activation, the tangent reverse
// δ̇ = (1 − a²) ⊙ gd − 2 a ⊙ ad ⊙ g in place of gd (the tangent of g),
// adding Σ δ̇ per column (width w) to gb, and δ = (1 − a²) ⊙ g to dst
// unless dst is nil (as hvScaleTanh).
func hvBack[T float](dst, gd, g, a, ad []T, w int, gb []float64) {
	for i := 0; i < len(g); i += w {
		gg, gdd, aa, add := g[i:i+w], gd[i:i+w], a[i:i+w], ad[i:i+w]
		for j := range w {
			d := 1 - aa[j]*aa[j]
			x := gg[j]
			dd := d*gdd[j] - 2*aa[j]*add[j]*x
			gdd[j] = dd
			gb[j] += float64(dd)
		}
	}
	if dst != nil {
		hvScaleTanh(dst, g, a)
	}
}

// hvWiden adds src to dst.
func hvWiden[T float](dst []float64, src []T) {
	for i, x := range src {
		dst[i] += float64(x)
	}
}

// hvConvert sets dst to src rounded to T.
func hvConvert[T float](dst []T, src []float64) {
	for i, x := range src {
		dst[i] = T(x)
	}
}
