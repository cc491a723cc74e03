package graph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
)

// Custom gorgonia operations of the batched graphs (BatchNet).
//
// Why not gorgonia's own: (1) gorgonia's tape machine frees every register
// on Reset, so each run allocates (and zeroes) a fresh output for every
// operation, megabytes per call for K = 64 trials, which cost more than the
// arithmetic; these ops keep their output tensor and overwrite it on every
// run. (2) G.BatchedMatMul works in v0.9.18 (its symbolic derivative is
// right), but it slices its operands into freshly allocated views for every
// trial on every run, and gonum's GEMM starts goroutines for a 784×10 outer
// product; bmm calls the BLAS of tensor.WhichBLAS (the one graph.Net uses,
// OpenBLAS with the openblas build tag) on sub-slices, in blocks small
// enough for gonum to stay serial (workers already run one per CPU).
// (3) G.LogSoftMax is wrong across rows (see logSoftmaxKernel). (4) Fusing
// the scale, bias and tanh into the product saves passes and buffers, and
// im2col can write the channel-major patch matrices that make the
// convolution products fast (see affineKernel) and read the previous
// layer's maps without a transposition. (5) G.Grad builds the adjoint of
// every input of an op, also of the data; BatchNet compiles only what its
// outputs need (G.CompileFunction).
//
// Every op computes each trial's slice with the same arithmetic whatever
// the number of trials, so results do not depend on K, and nothing mixes
// values of different trials (a NaN stays in its trial).

// kernel is the computation of one custom op.
type kernel interface {
	// name identifies the kernel and its settings (hashing, printing).
	name() string
	// dims gives the numbers of dimensions of the inputs and the output.
	dims() (in []int, out int)
	// shape is the output shape for the input shapes.
	shape(in []tensor.Shape) (tensor.Shape, error)
	// run overwrites out with the result. All tensors are row-major,
	// contiguous and of one dtype.
	run(out *tensor.Dense, in []*tensor.Dense) error
}

// diffKernel is a kernel that gorgonia can differentiate.
type diffKernel interface {
	kernel
	// diff returns the adjoint of every input for the output adjoint grad.
	diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error)
}

// customOp is a gorgonia Op running a kernel. Each node gets its own
// customOp, which owns the node's output tensor and reuses it on every run
// of the machine (the value of a node is only needed until the end of the
// run, and outputs are read between runs), so a run allocates nothing.
type customOp struct {
	k   kernel
	out *tensor.Dense
}

// apply adds a node computing k from the inputs.
func apply(k kernel, in ...*G.Node) (*G.Node, error) {
	return G.ApplyOp(&customOp{k: k}, in...)
}

func (op *customOp) Arity() int {
	in, _ := op.k.dims()
	return len(in)
}

func (op *customOp) Type() hm.Type {
	in, out := op.k.dims()
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, 0, len(in)+1)
	for _, d := range in {
		ts = append(ts, G.TensorType{Dims: d, Of: a})
	}
	ts = append(ts, G.TensorType{Dims: out, Of: a})
	return hm.NewFnType(ts...)
}

func (op *customOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	shapes := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%s: input %d has no shape", op.k.name(), i)
		}
		shapes[i] = s
	}
	return op.k.shape(shapes)
}

// Do computes the kernel into the op's own output tensor.
func (op *customOp) Do(vals ...G.Value) (G.Value, error) {
	in, shapes, err := op.inputs(vals)
	if err != nil {
		return nil, err
	}
	s, err := op.k.shape(shapes)
	if err != nil {
		return nil, err
	}
	dt := in[0].Dtype()
	if op.out == nil || op.out.Dtype() != dt || op.out.Shape().TotalSize() != s.TotalSize() {
		op.out = tensor.New(tensor.Of(dt), tensor.WithShape(s.Clone()...))
	} else if !op.out.Shape().Eq(s) {
		// A later gorgonia Reshape may have reshaped it in place.
		if err := op.out.Reshape(s...); err != nil {
			return nil, err
		}
	}
	if err := op.k.run(op.out, in); err != nil {
		return nil, fmt.Errorf("%s: %w", op.k.name(), err)
	}
	return op.out, nil
}

// UsePreallocDo computes the kernel into prealloc (a register the machine
// reuses).
func (op *customOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	in, shapes, err := op.inputs(vals)
	if err != nil {
		return nil, err
	}
	s, err := op.k.shape(shapes)
	if err != nil {
		return nil, err
	}
	out, err := rowMajor(prealloc)
	if err != nil || out.Dtype() != in[0].Dtype() || out.Shape().TotalSize() != s.TotalSize() {
		return op.Do(vals...)
	}
	if !out.Shape().Eq(s) {
		if err := out.Reshape(s...); err != nil {
			return nil, err
		}
	}
	if err := op.k.run(out, in); err != nil {
		return nil, fmt.Errorf("%s: %w", op.k.name(), err)
	}
	return out, nil
}

func (op *customOp) inputs(vals []G.Value) ([]*tensor.Dense, []tensor.Shape, error) {
	dims, _ := op.k.dims()
	if len(vals) != len(dims) {
		return nil, nil, fmt.Errorf("%s: %d inputs, want %d", op.k.name(), len(vals), len(dims))
	}
	in := make([]*tensor.Dense, len(vals))
	shapes := make([]tensor.Shape, len(vals))
	for i, v := range vals {
		t, err := rowMajor(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: input %d: %w", op.k.name(), i, err)
		}
		if i > 0 && t.Dtype() != in[0].Dtype() {
			return nil, nil, fmt.Errorf("%s: inputs of dtypes %v and %v", op.k.name(), in[0].Dtype(), t.Dtype())
		}
		in[i], shapes[i] = t, t.Shape()
	}
	return in, shapes, nil
}

func (op *customOp) ReturnsPtr() bool      { return true }
func (op *customOp) CallsExtern() bool     { return false }
func (op *customOp) OverwritesInput() int  { return -1 }
func (op *customOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "perturb.%s", op.k.name()) }
func (op *customOp) String() string        { return op.k.name() }

func (op *customOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// DiffWRT reports every input differentiable for differentiable kernels.
func (op *customOp) DiffWRT(inputs int) []bool {
	_, ok := op.k.(diffKernel)
	d := make([]bool, inputs)
	for i := range d {
		d[i] = ok
	}
	return d
}

// SymDiff returns the adjoints of the inputs. Adjoints that nothing needs
// (of the data, of the directions) are built but left out of the compiled
// program (CompileFunction keeps only what the outputs need).
func (op *customOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	k, ok := op.k.(diffKernel)
	if !ok {
		return nil, fmt.Errorf("%s is not differentiable", op.k.name())
	}
	return k.diff(inputs, output, grad)
}

// rowMajor returns v as a dense tensor with contiguous row-major data.
func rowMajor(v G.Value) (*tensor.Dense, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("want a dense tensor, got %T", v)
	}
	if t.IsMaterializable() || !t.DataOrder().IsRowMajor() {
		return nil, fmt.Errorf("operand of shape %v is a view", t.Shape())
	}
	return t, nil
}

// data returns the backing slices of ts as []T.
func data[T float](ts []*tensor.Dense) [][]T {
	out := make([][]T, len(ts))
	for i, t := range ts {
		out[i] = t.Data().([]T)
	}
	return out
}

// dispatch runs f64 or f32 on the backing data of out and in.
func dispatch(out *tensor.Dense, in []*tensor.Dense, f64 func(out []float64, in [][]float64), f32 func(out []float32, in [][]float32)) error {
	switch o := out.Data().(type) {
	case []float64:
		f64(o, data[float64](in))
	case []float32:
		f32(o, data[float32](in))
	default:
		return fmt.Errorf("unsupported data %T", out.Data())
	}
	return nil
}

func want3(s tensor.Shape, what string) error {
	if len(s) != 3 {
		return fmt.Errorf("%s of shape %v: want 3 dimensions", what, s)
	}
	return nil
}

// gemm sets c = alpha·op(a)·op(b) + beta·c for row-major matrices (m×k
// times k×n) through tensor.WhichBLAS. For gonum's pure-Go BLAS it calls
// blocks of at most 64 rows and 192 columns of c, which gonum computes
// serially (it starts goroutines from 4 blocks of 64×64 on): each element of
// c gets exactly the same arithmetic either way.
func gemm[T float](ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	impl := tensor.WhichBLAS()
	tA, tB := blas.NoTrans, blas.NoTrans
	if ta {
		tA = blas.Trans
	}
	if tb {
		tB = blas.Trans
	}
	call := func(m, n int, a, b, c []T) {
		switch a := any(a).(type) {
		case []float64:
			impl.Dgemm(tA, tB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
		case []float32:
			impl.Sgemm(tA, tB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		}
	}
	if _, ok := impl.(gonum.Implementation); !ok || (m <= 64 && n <= 192) {
		call(m, n, a, b, c)
		return
	}
	const rows, cols = 64, 192
	for i := 0; i < m; i += rows {
		mi := min(rows, m-i)
		// Rows i.. of op(a): row i of a, or column i of aᵀ.
		var ai []T
		if ta {
			ai = a[i:]
		} else {
			ai = a[i*lda:]
		}
		for j := 0; j < n; j += cols {
			nj := min(cols, n-j)
			var bj []T
			if tb {
				bj = b[j*ldb:]
			} else {
				bj = b[j:]
			}
			call(mi, nj, ai, bj, c[i*ldc+j:])
		}
	}
}

// bmmKernel is a batched matrix product of 3-tensors: for every slice k,
// C[k] = alpha·op(A[k])·op(B[k]), op transposing where asked.
type bmmKernel struct {
	transA, transB bool
	alpha          float64
}

// bmm returns the node of alpha·op(a)·op(b), slice by slice.
func bmm(a, b *G.Node, transA, transB bool, alpha float64) (*G.Node, error) {
	return apply(bmmKernel{transA, transB, alpha}, a, b)
}

func (k bmmKernel) name() string {
	return fmt.Sprintf("bmm(%t,%t,%g)", k.transA, k.transB, k.alpha)
}

func (k bmmKernel) dims() ([]int, int) { return []int{3, 3}, 3 }

// sizes returns the batch size and the m×k and k×n dimensions of the
// product of operands of shapes sa and sb.
func (k bmmKernel) sizes(sa, sb tensor.Shape) (batch, m, inner, n int, err error) {
	if err := want3(sa, "batched product operand"); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := want3(sb, "batched product operand"); err != nil {
		return 0, 0, 0, 0, err
	}
	batch, m, inner = sa[0], sa[1], sa[2]
	if k.transA {
		m, inner = inner, m
	}
	kb, n := sb[1], sb[2]
	if k.transB {
		kb, n = n, kb
	}
	if sb[0] != batch || kb != inner {
		return 0, 0, 0, 0, fmt.Errorf("%s: incompatible shapes %v and %v", k.name(), sa, sb)
	}
	return batch, m, inner, n, nil
}

func (k bmmKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	batch, m, _, n, err := k.sizes(in[0], in[1])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{batch, m, n}, nil
}

func (k bmmKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	batch, m, inner, n, err := k.sizes(in[0].Shape(), in[1].Shape())
	if err != nil {
		return err
	}
	return dispatch(out, in,
		func(c []float64, in [][]float64) { bmmRun(k, batch, m, inner, n, c, in[0], in[1]) },
		func(c []float32, in [][]float32) { bmmRun(k, batch, m, inner, n, c, in[0], in[1]) })
}

func bmmRun[T float](k bmmKernel, batch, m, inner, n int, c, a, b []T) {
	lda, ldb := inner, n
	if k.transA {
		lda = m
	}
	if k.transB {
		ldb = inner
	}
	for i := 0; i < batch; i++ {
		gemm(k.transA, k.transB, m, n, inner, T(k.alpha),
			a[i*m*inner:(i+1)*m*inner], lda, b[i*inner*n:(i+1)*inner*n], ldb, 0, c[i*m*n:(i+1)*m*n], n)
	}
}

// diff returns, for C = α·op(A)·op(B) and its adjoint dC:
//
//	C = α A B:    dA = α dC Bᵀ,   dB = α Aᵀ dC
//	C = α A Bᵀ:   dA = α dC B,    dB = α dCᵀ A
//	C = α Aᵀ B:   dA = α B dCᵀ,   dB = α A dC
//	C = α Aᵀ Bᵀ:  dA = α Bᵀ dCᵀ,  dB = α dCᵀ Aᵀ
func (k bmmKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	a, b, al := in[0], in[1], k.alpha
	var da, db *G.Node
	var err error
	switch {
	case !k.transA && !k.transB:
		if da, err = bmm(grad, b, false, true, al); err == nil {
			db, err = bmm(a, grad, true, false, al)
		}
	case !k.transA && k.transB:
		if da, err = bmm(grad, b, false, false, al); err == nil {
			db, err = bmm(grad, a, true, false, al)
		}
	case k.transA && !k.transB:
		if da, err = bmm(b, grad, false, true, al); err == nil {
			db, err = bmm(a, grad, false, false, al)
		}
	default:
		if da, err = bmm(b, grad, true, true, al); err == nil {
			db, err = bmm(grad, a, true, true, al)
		}
	}
	if err != nil {
		return nil, err
	}
	return G.Nodes{da, db}, nil
}

// affineKernel is a dense layer for K trials. For inputs x_1, W_1, …,
// x_p, W_p, b with W_i (K, in_i, out) and b (K, out), in the row layout
// (cm false) x_i is (K, m, in_i) and, per trial k,
//
//	z[k] = s·(x_1[k] W_1[k] + … + x_p[k] W_p[k]) + b[k]   (b added to every row),
//
// of shape (K, m, out), and in the channel-major layout (cm true) x_i is
// (K, in_i, m) and
//
//	z[k] = s·(W_1[k]ᵀ x_1[k] + … + W_p[k]ᵀ x_p[k]) + b[k]   (b[k]_c added to row c),
//
// of shape (K, out, m): the same layer on transposed activations. Then tanh
// when act. One pair is nets' dense layer (the scaled product is rounded,
// then the bias added, as graph.Net does); two pairs are its tangent
// s·(ẋ W + x V_W) + V_b. The convolutions use the channel-major layout:
// their products are then (channels × patch entries)·(patch entries ×
// positions), which gonum's GEMM runs about twice as fast as the
// (positions × patch entries)·(patch entries × channels) of the row layout.
type affineKernel struct {
	s     float64
	pairs int
	act   bool
	cm    bool
}

// affine returns the node of the layer; in is x_1, W_1, …, b.
func affine(s float64, act, cm bool, in ...*G.Node) (*G.Node, error) {
	return apply(affineKernel{s: s, pairs: (len(in) - 1) / 2, act: act, cm: cm}, in...)
}

func (k affineKernel) name() string {
	return fmt.Sprintf("affine(%g,%d,%t,%t)", k.s, k.pairs, k.act, k.cm)
}

func (k affineKernel) dims() ([]int, int) {
	d := make([]int, 0, 2*k.pairs+1)
	for i := 0; i < k.pairs; i++ {
		d = append(d, 3, 3)
	}
	return append(d, 2), 3
}

// product returns the kernel of pair i's product and its operands.
func (k affineKernel) product(x, w tensor.Shape) (tensor.Shape, error) {
	if k.cm {
		return bmmKernel{transA: true}.shape([]tensor.Shape{w, x})
	}
	return bmmKernel{}.shape([]tensor.Shape{x, w})
}

func (k affineKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	var out tensor.Shape
	for i := 0; i < k.pairs; i++ {
		s, err := k.product(in[2*i], in[2*i+1])
		if err != nil {
			return nil, err
		}
		if out != nil && !out.Eq(s) {
			return nil, fmt.Errorf("%s: products of shapes %v and %v", k.name(), out, s)
		}
		out = s
	}
	b, c := in[2*k.pairs], out[2]
	if k.cm {
		c = out[1]
	}
	if len(b) != 2 || b[0] != out[0] || b[1] != c {
		return nil, fmt.Errorf("%s: bias of shape %v for output %v", k.name(), b, out)
	}
	return out, nil
}

func (k affineKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	s := out.Shape()
	inner := make([]int, k.pairs)
	for i := range inner {
		inner[i] = in[2*i+1].Shape()[1]
	}
	return dispatch(out, in,
		func(c []float64, in [][]float64) { affineRun(k, s[0], s[1], s[2], inner, c, in, math.Tanh) },
		func(c []float32, in [][]float32) { affineRun(k, s[0], s[1], s[2], inner, c, in, tanh32) })
}

func tanh32(x float32) float32 { return float32(math.Tanh(float64(x))) }

// affineRun computes the (m × n) output of every trial.
func affineRun[T float](k affineKernel, batch, m, n int, inner []int, c []T, in [][]T, tanh func(T) T) {
	s := T(k.s)
	bias := in[2*k.pairs]
	nb := n // bias length
	if k.cm {
		nb = m
	}
	for t := 0; t < batch; t++ {
		ct := c[t*m*n : (t+1)*m*n]
		for i, l := range inner {
			xs := m * l // per-trial sizes of x_i and W_i
			if k.cm {
				xs = l * n
			}
			x, w := in[2*i][t*xs:(t+1)*xs], in[2*i+1][t*l*nb:(t+1)*l*nb]
			beta := T(1)
			if i == 0 {
				beta = 0
			}
			if k.cm {
				gemm(true, false, m, n, l, 1, w, m, x, n, beta, ct, n)
			} else {
				gemm(false, false, m, n, l, 1, x, l, w, n, beta, ct, n)
			}
		}
		bt := bias[t*nb : (t+1)*nb]
		for r := 0; r < m; r++ {
			row := ct[r*n : (r+1)*n]
			for j, v := range row {
				// The conversion keeps s·v a rounded product (no fused
				// multiply-add), as in graph.Net.
				var z T
				if k.cm {
					z = T(s*v) + bt[r]
				} else {
					z = T(s*v) + bt[j]
				}
				if k.act {
					z = tanh(z)
				}
				row[j] = z
			}
		}
	}
}

// diff back-propagates through tanh (with the output t: dz = (1 − t²) dt)
// and the products: in the row layout dx_i = s·dz W_iᵀ, dW_i = s·x_iᵀ dz
// and db sums dz over rows; in the channel-major layout dx_i = s·W_i dz,
// dW_i = s·x_i dzᵀ and db sums dz over columns.
func (k affineKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dz := grad
	var err error
	if k.act {
		if dz, err = tanhBack(out, grad); err != nil {
			return nil, err
		}
	}
	res := make(G.Nodes, 0, len(in))
	for i := 0; i < k.pairs; i++ {
		x, w := in[2*i], in[2*i+1]
		var dx, dw *G.Node
		if k.cm {
			if dx, err = bmm(w, dz, false, false, k.s); err == nil {
				dw, err = bmm(x, dz, false, true, k.s)
			}
		} else {
			if dx, err = bmm(dz, w, false, true, k.s); err == nil {
				dw, err = bmm(x, dz, true, false, k.s)
			}
		}
		if err != nil {
			return nil, err
		}
		res = append(res, dx, dw)
	}
	db, err := apply(sumKernel{axis: 1 + b2i(k.cm)}, dz)
	if err != nil {
		return nil, err
	}
	return append(res, db), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sumKernel sums a (K, m, n) tensor over axis 1 (rows: (K, n)) or axis 2
// (columns: (K, m)).
type sumKernel struct{ axis int }

func (k sumKernel) name() string       { return fmt.Sprintf("sum%d", k.axis) }
func (k sumKernel) dims() ([]int, int) { return []int{3}, 2 }

func (k sumKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := want3(in[0], "sum input"); err != nil {
		return nil, err
	}
	if k.axis == 2 {
		return tensor.Shape{in[0][0], in[0][1]}, nil
	}
	return tensor.Shape{in[0][0], in[0][2]}, nil
}

func (k sumKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	s := in[0].Shape()
	return dispatch(out, in,
		func(o []float64, in [][]float64) { sumRun(k.axis, o, in[0], s[0], s[1], s[2]) },
		func(o []float32, in [][]float32) { sumRun(k.axis, o, in[0], s[0], s[1], s[2]) })
}

func sumRun[T float](axis int, out, x []T, batch, m, n int) {
	if axis == 2 {
		for i := range out {
			var s T
			for _, v := range x[i*n : (i+1)*n] {
				s += v
			}
			out[i] = s
		}
		return
	}
	for t := 0; t < batch; t++ {
		o := out[t*n : (t+1)*n]
		clear(o)
		for r := 0; r < m; r++ {
			for j, v := range x[(t*m+r)*n : (t*m+r+1)*n] {
				o[j] += v
			}
		}
	}
}

// tanhBackKernel maps (t, g) to (1 − t²) ⊙ g: the adjoint of tanh's input
// for output t and output adjoint g, and equally the tangent of tanh's
// output for the input tangent g.
type tanhBackKernel struct{}

func tanhBack(t, g *G.Node) (*G.Node, error) { return apply(tanhBackKernel{}, t, g) }

func (tanhBackKernel) name() string       { return "tanhback" }
func (tanhBackKernel) dims() ([]int, int) { return []int{3, 3}, 3 }

func (k tanhBackKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	return in[0].Clone(), nil
}

func sameShapes(name string, in []tensor.Shape) error {
	for _, s := range in[1:] {
		if !s.Eq(in[0]) {
			return fmt.Errorf("%s: shapes %v and %v", name, in[0], s)
		}
	}
	return nil
}

func (k tanhBackKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { tanhBackRun(o, in[0], in[1]) },
		func(o []float32, in [][]float32) { tanhBackRun(o, in[0], in[1]) })
}

func tanhBackRun[T float](out, t, g []T) {
	for i, v := range t {
		out[i] = (1 - v*v) * g[i]
	}
}

// diff: for f = (1 − t²) g and adjoint h, dt = −2 t g h and dg = (1 − t²) h.
func (k tanhBackKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dt, err := apply(tanhBack2Kernel{}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	dg, err := tanhBack(in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dt, dg}, nil
}

// tanhBack2Kernel maps (t, g, h) to −2 t ⊙ g ⊙ h.
type tanhBack2Kernel struct{}

func (tanhBack2Kernel) name() string       { return "tanhback2" }
func (tanhBack2Kernel) dims() ([]int, int) { return []int{3, 3, 3}, 3 }

func (k tanhBack2Kernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	return in[0].Clone(), nil
}

func (k tanhBack2Kernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { tanhBack2Run(o, in[0], in[1], in[2]) },
		func(o []float32, in [][]float32) { tanhBack2Run(o, in[0], in[1], in[2]) })
}

func tanhBack2Run[T float](out, t, g, h []T) {
	for i, v := range t {
		out[i] = -2 * v * g[i] * h[i]
	}
}

// logSoftmaxKernel is the log-softmax of every row of a matrix (N, C). It
// replaces G.LogSoftMax, whose kernel in gorgonia.org/tensor v0.9.24
// (softMaxLastDimF64/F32) starts every row's running maximum at the FIRST
// ELEMENT OF THE WHOLE MATRIX (xArr[0]) instead of the row's: a NaN in row 0
// then turns every row into NaN, a logit of 1000 in row 0 underflows every
// other row's exponentials (exp(z − 1000) = 0, so log Σ = −Inf), and in
// general a row's rounding depends on row 0. Rows are trial samples here, so
// that would couple the trials of a batch. This kernel shifts each row by
// its own maximum and runs in the calling goroutine (the tensor kernel
// starts one goroutine per row).
type logSoftmaxKernel struct{}

// logSoftmax returns the row-wise log-softmax of the matrix x.
func logSoftmax(x *G.Node) (*G.Node, error) { return apply(logSoftmaxKernel{}, x) }

func (logSoftmaxKernel) name() string       { return "logsoftmax" }
func (logSoftmaxKernel) dims() ([]int, int) { return []int{2}, 2 }

func (k logSoftmaxKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if len(in[0]) != 2 {
		return nil, fmt.Errorf("%s: want a matrix, got %v", k.name(), in[0])
	}
	return in[0].Clone(), nil
}

func (k logSoftmaxKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	c := in[0].Shape()[1]
	return dispatch(out, in,
		func(o []float64, in [][]float64) { kernels.LogSoftmaxRows(o, in[0], c) },
		func(o []float32, in [][]float32) { kernels.LogSoftmaxRows(o, in[0], c) })
}

// diff: dx = g − softmax(x) Σ_j g_j row by row, with softmax = exp(output).
func (k logSoftmaxKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	d, err := apply(logSoftmaxBackKernel{}, out, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// logSoftmaxBackKernel maps (y = log-softmax(x), g) to g − exp(y) Σ_j g_j,
// row by row.
type logSoftmaxBackKernel struct{}

func (logSoftmaxBackKernel) name() string       { return "logsoftmaxback" }
func (logSoftmaxBackKernel) dims() ([]int, int) { return []int{2, 2}, 2 }

func (k logSoftmaxBackKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	return logSoftmaxKernel{}.shape(in[:1])
}

func (k logSoftmaxBackKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	c := in[0].Shape()[1]
	return dispatch(out, in,
		func(o []float64, in [][]float64) { kernels.LogSoftmaxAdjoint(o, in[0], in[1], c) },
		func(o []float32, in [][]float32) { kernels.LogSoftmaxAdjoint(o, in[0], in[1], c) })
}
