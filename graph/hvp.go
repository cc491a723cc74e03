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

// HVPEvaluator computes Hessian-vector products of the summed loss of an
// image model (logistic, convnet of depth 2) for many trials at once by a
// hand-written pass in the style of PoolEvaluator: level-3 BLAS products
// through gonum's blas32/blas64 (OpenBLAS under the openblas build tag),
// im2col and its adjoint, independent of gorgonia. It computes what
// BatchNet of kind BatchHVP (and ImageBackend.HVP) computes,
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
	part    []float64 // per work item partial sums
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
}

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
}

// hvWorker evaluates one trial's chunks; it is one goroutine's.
type hvWorker interface {
	// load converts a trial's parameters and direction (flat, in the order
	// of Arch.Params) to the worker's dtype and layout.
	load(theta, v []float64)
	// add adds the product over the examples rows (at most Chunk) of the
	// loaded trial to acc (flat, in the order of Arch.Params).
	add(rows []int, acc []float64)
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

// HVP sets out[k] = Σ_{r ∈ rows[k]} ∇²l(theta[k]; example r) · v[k] for
// every trial k: theta[k], v[k] and out[k] are flat in the order of
// arch.Params (theta and v are rounded to the dtype), rows[k] are example
// indices of the data (any number, repetitions allowed; none gives zero).
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
	for j := range theta {
		first[j] = -1
		if allZero(v[j]) {
			continue
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
					wk.add(rs[lo:min(lo+e.opts.Chunk, it.hi)], acc)
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

// hvGemm sets c = alpha·op(a)·op(b) + beta·c for row-major matrices, op
// the transpose where tA (tB) is set: op(a) is m × k, op(b) k × n, c
// m × n. It goes through the registered blas32 or blas64 implementation.
func hvGemm[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float32:
		blas32.Implementation().Sgemm(ta, tb, m, n, k, float32(alpha),
			a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(ta, tb, m, n, k, float64(alpha),
			a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// hvSoftmax computes, for n examples of cls classes, the loss reverse
// δ = p − e_y and its tangent δ̇ = p ⊙ ż − p·(pᵀ ż) in float64 from the
// logits z = T(s·zr) + b and tangents ż = T(s·dr) + vb (zr, dr raw
// products, rows of cls), writing δ to zr and δ̇ to dr (rounded to T) and
// adding Σ δ̇ per class to gb. The labels are y[rows[i]]. p is the
// softmax of z shifted by its maximum.
func hvSoftmax[T float](zr, dr []T, n, cls int, s T, b, vb []T, y []uint8, rows []int, p []float64, gb []float64) {
	for i := 0; i < n; i++ {
		z, d := zr[i*cls:(i+1)*cls], dr[i*cls:(i+1)*cls]
		m := math.Inf(-1)
		for c := range p {
			p[c] = float64(T(s*z[c]) + b[c])
			m = max(m, p[c])
		}
		if math.IsInf(m, 0) || math.IsNaN(m) {
			m = 0 // let the NaN or Inf through
		}
		sum := 0.0
		for c := range p {
			p[c] = math.Exp(p[c] - m)
			sum += p[c]
		}
		q := 0.0
		for c := range p {
			p[c] /= sum
			q += p[c] * float64(T(s*d[c])+vb[c])
		}
		yi := int(y[rows[i]])
		for c := range p {
			dd := p[c] * (float64(T(s*d[c])+vb[c]) - q)
			gb[c] += dd
			d[c] = T(dd)
			e := p[c]
			if c == yi {
				e--
			}
			z[c] = T(e)
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

// hvBack sets, for a tanh layer with activation a and tangent ad, the
// reverse δ = (1 − a²) ⊙ g and its tangent δ̇ = (1 − a²) ⊙ gd − 2 a ⊙ ad ⊙ g
// in place of g and gd, and adds Σ δ̇ per column (width w) to gb.
func hvBack[T float](g, gd, a, ad []T, w int, gb []float64) {
	for i := 0; i < len(g); i += w {
		gg, gdd, aa, add := g[i:i+w], gd[i:i+w], a[i:i+w], ad[i:i+w]
		for j := range w {
			d := 1 - aa[j]*aa[j]
			x := gg[j]
			dd := d*gdd[j] - 2*aa[j]*add[j]*x
			gg[j] = d * x
			gdd[j] = dd
			gb[j] += float64(dd)
		}
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
