package kernels

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/perturb/perturb/nets/precision"
)

// float is the element type of a CPU device.
type float interface{ ~float32 | ~float64 }

// cpuBuf is a CPU buffer.
type cpuBuf[T float] struct{ d []T }

func (b *cpuBuf[T]) Len() int { return len(b.d) }

// CPU is the CPU twin of the GPU device: every operation in plain Go (and
// gonum's pure-Go BLAS for the products), in the arithmetic of the graph
// package's CPU kernels (graph/batchops.go), so that running a batched
// graph through graph's walker on a CPU device reproduces gorgonia's
// TapeMachine.
type CPU[T float] struct{}

// NewCPU returns the CPU twin in dtype dt.
func NewCPU(dt DType) Device {
	if dt == F64 {
		return CPU[float64]{}
	}
	return CPU[float32]{}
}

// Name is "cpu float32" or "cpu float64".
func (CPU[T]) Name() string { return "cpu " + CPU[T]{}.DType().String() }

// DType is the element type T.
func (CPU[T]) DType() DType {
	var z T
	if _, ok := any(z).(float64); ok {
		return F64
	}
	return F32
}

// Alloc returns a zeroed buffer.
func (CPU[T]) Alloc(n int) (Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu: alloc of %d elements", n)
	}
	return &cpuBuf[T]{d: make([]T, n)}, nil
}

// Free drops the buffer.
func (CPU[T]) Free(b Buffer) error {
	_, err := buf[T](b)
	return err
}

// View returns the first n elements of b, sharing its memory.
func (CPU[T]) View(b Buffer, n int) (Buffer, error) {
	d, err := buf[T](b)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > len(d) {
		return nil, fmt.Errorf("cpu: view of %d elements of a buffer of %d", n, len(d))
	}
	return &cpuBuf[T]{d: d[:n:n]}, nil
}

// Data returns the elements of a buffer of a CPU device (tests).
func Data[T float](b Buffer) []T { return b.(*cpuBuf[T]).d }

func buf[T float](b Buffer) ([]T, error) {
	c, ok := b.(*cpuBuf[T])
	if !ok {
		return nil, fmt.Errorf("cpu: buffer %T of another device or dtype", b)
	}
	return c.d, nil
}

// bufs converts the buffers, failing on the first foreign one.
func bufs[T float](bs ...Buffer) ([][]T, error) {
	out := make([][]T, len(bs))
	for i, b := range bs {
		d, err := buf[T](b)
		if err != nil {
			return nil, fmt.Errorf("operand %d: %w", i, err)
		}
		out[i] = d
	}
	return out, nil
}

// Upload copies src into dst[off:].
func (CPU[T]) Upload(dst Buffer, off int, src []float64) error {
	d, err := buf[T](dst)
	if err != nil {
		return err
	}
	if off < 0 || off+len(src) > len(d) {
		return fmt.Errorf("cpu: upload of %d elements at %d into %d", len(src), off, len(d))
	}
	for i, v := range src {
		d[off+i] = T(v)
	}
	return nil
}

// Upload32 copies src into dst[off:].
func (CPU[T]) Upload32(dst Buffer, off int, src []float32) error {
	d, err := buf[T](dst)
	if err != nil {
		return err
	}
	if off < 0 || off+len(src) > len(d) {
		return fmt.Errorf("cpu: upload of %d elements at %d into %d", len(src), off, len(d))
	}
	for i, v := range src {
		d[off+i] = T(v)
	}
	return nil
}

// Download copies src[off:off+len(dst)] into dst.
func (CPU[T]) Download(dst []float64, src Buffer, off int) error {
	s, err := buf[T](src)
	if err != nil {
		return err
	}
	if off < 0 || off+len(dst) > len(s) {
		return fmt.Errorf("cpu: download of %d elements at %d from %d", len(dst), off, len(s))
	}
	for i := range dst {
		dst[i] = float64(s[off+i])
	}
	return nil
}

// Fill sets every element to v.
func (CPU[T]) Fill(b Buffer, v float64) error {
	d, err := buf[T](b)
	if err != nil {
		return err
	}
	for i := range d {
		d[i] = T(v)
	}
	return nil
}

// Copy copies n elements.
func (CPU[T]) Copy(dst Buffer, dstOff int, src Buffer, srcOff, n int) error {
	bs, err := bufs[T](dst, src)
	if err != nil {
		return err
	}
	if dstOff < 0 || srcOff < 0 || dstOff+n > len(bs[0]) || srcOff+n > len(bs[1]) {
		return fmt.Errorf("cpu: copy of %d elements from %d of %d to %d of %d", n, srcOff, len(bs[1]), dstOff, len(bs[0]))
	}
	copy(bs[0][dstOff:dstOff+n], bs[1][srcOff:srcOff+n])
	return nil
}

// Gemm runs the products one batch entry at a time through gonum's BLAS.
func (CPU[T]) Gemm(g Gemm, c, a, b Buffer) error {
	bs, err := bufs[T](c, a, b)
	if err != nil {
		return err
	}
	cs, as, bb := bs[0], bs[1], bs[2]
	if g.Batch < 1 || g.M < 1 || g.N < 1 || g.K < 1 {
		return fmt.Errorf("cpu: gemm of sizes %+v", g)
	}
	need := func(n, stride, size int) int { return (g.Batch-1)*stride + size }
	if len(as) < need(len(as), g.StrideA, g.M*g.K) || len(bb) < need(len(bb), g.StrideB, g.K*g.N) || len(cs) < need(len(cs), g.StrideC, g.M*g.N) {
		return fmt.Errorf("cpu: gemm %+v on buffers of %d, %d, %d", g, len(as), len(bb), len(cs))
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	lda, ldb := g.K, g.N
	if g.TransA {
		tA, lda = blas.Trans, g.M
	}
	if g.TransB {
		tB, ldb = blas.Trans, g.K
	}
	impl := gonum.Implementation{}
	for i := 0; i < g.Batch; i++ {
		ai := as[i*g.StrideA : i*g.StrideA+g.M*g.K]
		bi := bb[i*g.StrideB : i*g.StrideB+g.K*g.N]
		ci := cs[i*g.StrideC : i*g.StrideC+g.M*g.N]
		if g.Beta == 0 {
			clear(ci) // C is not read
		}
		switch ai := any(ai).(type) {
		case []float64:
			impl.Dgemm(tA, tB, g.M, g.N, g.K, g.Alpha, ai, lda, any(bi).([]float64), ldb, g.Beta, any(ci).([]float64), g.N)
		case []float32:
			impl.Sgemm(tA, tB, g.M, g.N, g.K, float32(g.Alpha), ai, lda, any(bi).([]float32), ldb, float32(g.Beta), any(ci).([]float32), g.N)
		}
	}
	return nil
}

// tanhT is tanh in T (float32 through float64, as graph's kernels do).
func tanhT[T float](x T) T { return T(math.Tanh(float64(x))) }
func expT[T float](x T) T  { return T(math.Exp(float64(x))) }
func logT[T float](x T) T  { return T(math.Log(float64(x))) }

// BiasAct finishes a dense layer in place.
func (CPU[T]) BiasAct(z Buffer, batch, m, n int, s float64, bias Buffer, cm, act bool) error {
	bs, err := bufs[T](z, bias)
	if err != nil {
		return err
	}
	zs, bi := bs[0], bs[1]
	nb := n
	if cm {
		nb = m
	}
	if len(zs) != batch*m*n || len(bi) != batch*nb {
		return fmt.Errorf("cpu: bias of %d for %d×%d×%d outputs of %d", len(bi), batch, m, n, len(zs))
	}
	st := T(s)
	for t := 0; t < batch; t++ {
		bt := bi[t*nb : (t+1)*nb]
		for r := 0; r < m; r++ {
			row := zs[(t*m+r)*n : (t*m+r+1)*n]
			for j, v := range row {
				var o T
				if cm {
					o = T(st*v) + bt[r]
				} else {
					o = T(st*v) + bt[j]
				}
				if act {
					o = tanhT(o)
				}
				row[j] = o
			}
		}
	}
	return nil
}

// same returns an error unless every buffer has n elements.
func same[T float](name string, n int, bs ...[]T) error {
	for i, b := range bs {
		if len(b) != n {
			return fmt.Errorf("cpu: %s operand %d of %d elements, want %d", name, i, len(b), n)
		}
	}
	return nil
}

// Unary applies f.
func (CPU[T]) Unary(f Unary, out, in Buffer) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	if err := same("unary", len(o), x); err != nil {
		return err
	}
	for i, v := range x {
		switch f {
		case Neg:
			o[i] = -v
		case Exp:
			o[i] = expT(v)
		case Tanh:
			o[i] = tanhT(v)
		default:
			return fmt.Errorf("cpu: unary function %d", f)
		}
	}
	return nil
}

// Binary applies f.
func (CPU[T]) Binary(f Binary, out, a, b Buffer) error {
	bs, err := bufs[T](out, a, b)
	if err != nil {
		return err
	}
	o, x, y := bs[0], bs[1], bs[2]
	if err := same("binary", len(o), x, y); err != nil {
		return err
	}
	for i := range o {
		switch f {
		case Add:
			o[i] = x[i] + y[i]
		case Sub:
			o[i] = x[i] - y[i]
		case Mul:
			o[i] = x[i] * y[i]
		default:
			return fmt.Errorf("cpu: binary function %d", f)
		}
	}
	return nil
}

// TanhBack sets (1 − t²) ⊙ g.
func (CPU[T]) TanhBack(out, t, g Buffer) error {
	bs, err := bufs[T](out, t, g)
	if err != nil {
		return err
	}
	if err := same("tanhback", len(bs[0]), bs[1], bs[2]); err != nil {
		return err
	}
	for i, v := range bs[1] {
		bs[0][i] = (1 - v*v) * bs[2][i]
	}
	return nil
}

// TanhBack2 sets −2 t ⊙ g ⊙ h.
func (CPU[T]) TanhBack2(out, t, g, h Buffer) error {
	bs, err := bufs[T](out, t, g, h)
	if err != nil {
		return err
	}
	if err := same("tanhback2", len(bs[0]), bs[1], bs[2], bs[3]); err != nil {
		return err
	}
	for i, v := range bs[1] {
		bs[0][i] = -2 * v * bs[2][i] * bs[3][i]
	}
	return nil
}

// Sum reduces the middle axis in increasing order.
func (CPU[T]) Sum(out, in Buffer, outer, mid, inner int) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	if len(o) != outer*inner || len(x) != outer*mid*inner {
		return fmt.Errorf("cpu: sum of %d into %d for (%d, %d, %d)", len(x), len(o), outer, mid, inner)
	}
	for a := 0; a < outer; a++ {
		for i := 0; i < inner; i++ {
			var s T
			for j := 0; j < mid; j++ {
				s += x[(a*mid+j)*inner+i]
			}
			o[a*inner+i] = s
		}
	}
	return nil
}

// Repeat broadcasts along a new middle axis.
func (CPU[T]) Repeat(out, in Buffer, outer, reps, inner int) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	if len(x) != outer*inner || len(o) != outer*reps*inner {
		return fmt.Errorf("cpu: repeat of %d into %d for (%d, %d, %d)", len(x), len(o), outer, reps, inner)
	}
	for a := 0; a < outer; a++ {
		for r := 0; r < reps; r++ {
			copy(o[(a*reps+r)*inner:(a*reps+r+1)*inner], x[a*inner:(a+1)*inner])
		}
	}
	return nil
}

// Im2col writes the patch matrices.
func (CPU[T]) Im2col(c Conv, cols, images Buffer) error {
	bs, err := bufs[T](cols, images)
	if err != nil {
		return err
	}
	if len(bs[0]) != c.ColsLen() || len(bs[1]) != c.ImagesLen() {
		return fmt.Errorf("cpu: im2col %+v of %d images into %d", c, len(bs[1]), len(bs[0]))
	}
	patches(c, bs[0], bs[1], false)
	return nil
}

// Col2im sums the patch matrices back into images.
func (CPU[T]) Col2im(c Conv, images, cols Buffer) error {
	bs, err := bufs[T](images, cols)
	if err != nil {
		return err
	}
	if len(bs[1]) != c.ColsLen() || len(bs[0]) != c.ImagesLen() {
		return fmt.Errorf("cpu: col2im %+v of %d into %d images", c, len(bs[1]), len(bs[0]))
	}
	patches(c, bs[1], bs[0], true)
	return nil
}

// ImageIndex is the index in the images of patch entry (t, f, q) of c's
// patch matrices: trial t, patch value f = (ch·Size + ky)·Size + kx,
// position q = j·h'·w' + y·w' + x, reading pixel (y·Stride + ky − Pad,
// x·Stride + kx − Pad) of channel ch of image j; it is −1 when that pixel
// is padding (outside the image). The GPU kernels compute the same map.
func (c Conv) ImageIndex(t, f, q int) int {
	oh, ow := c.Out()
	p := oh * ow
	j, yx := q/p, q%p
	y, x := yx/ow, yx%ow
	ch, k := f/(c.Size*c.Size), f%(c.Size*c.Size)
	ky, kx := k/c.Size, k%c.Size
	iy, ix := y*c.Stride+ky-c.Pad, x*c.Stride+kx-c.Pad
	if iy < 0 || iy >= c.H || ix < 0 || ix >= c.W {
		return -1
	}
	sT, sJ, sC := c.Images*c.C*c.H*c.W, c.C*c.H*c.W, c.H*c.W
	if c.CBHW {
		sJ, sC = c.H*c.W, c.Images*c.H*c.W
	}
	return t*sT + j*sJ + ch*sC + iy*c.W + ix
}

// patches copies images into cols (0 for padding) or, with back, sums cols
// into images (cleared first; entries on the padding are dropped), visiting
// the patch entries of each pixel in increasing (f, q) order per trial, as
// graph's CPU kernel does.
func patches[T float](c Conv, cols, images []T, back bool) {
	if back {
		clear(images)
	}
	oh, ow := c.Out()
	q := c.Images * oh * ow
	f := c.C * c.Size * c.Size
	for t := 0; t < c.Trials; t++ {
		for fi := 0; fi < f; fi++ {
			row := cols[(t*f+fi)*q : (t*f+fi+1)*q]
			for qi := range row {
				i := c.ImageIndex(t, fi, qi)
				switch {
				case i < 0:
					if !back {
						row[qi] = 0
					}
				case back:
					images[i] += row[qi]
				default:
					row[qi] = images[i]
				}
			}
		}
	}
}

// Flatten permutes channel-major maps into rows (or back).
func (CPU[T]) Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	n := c * images * p
	if err := same("flatten", trials*n, bs[0], bs[1]); err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	for t := 0; t < trials; t++ {
		for ch := 0; ch < c; ch++ {
			for j := 0; j < images; j++ {
				for i := 0; i < p; i++ {
					m := t*n + (ch*images+j)*p + i
					r := t*n + (j*p+i)*c + ch
					if inverse {
						o[m] = x[r]
					} else {
						o[r] = x[m]
					}
				}
			}
		}
	}
	return nil
}

// LogSoftmax is the row-wise log-softmax.
func (CPU[T]) LogSoftmax(out, in Buffer, rows, c int) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	if err := same("logsoftmax", rows*c, bs[0], bs[1]); err != nil {
		return err
	}
	LogSoftmaxRows(bs[0], bs[1], c)
	return nil
}

// LogSoftmaxRows sets out to the log-softmax of every row of length c of
// x, shifted by the row's maximum (a NaN row stays NaN), with exp and log
// in float64: the arithmetic of the CPU engine's batched op (graph) and of
// the CPU twin alike.
func LogSoftmaxRows[T float](out, x []T, c int) {
	for r := 0; r+c <= len(x); r += c {
		row, o := x[r:r+c], out[r:r+c]
		m := row[0]
		for _, v := range row[1:] {
			if v > m {
				m = v
			}
		}
		var sum T
		for j, v := range row {
			o[j] = v - m
			sum += expT(o[j])
		}
		ls := logT(sum)
		for j := range o {
			o[j] -= ls
		}
	}
}

// LogSoftmaxBack is the log-softmax's adjoint.
func (CPU[T]) LogSoftmaxBack(out, y, g Buffer, rows, c int) error {
	bs, err := bufs[T](out, y, g)
	if err != nil {
		return err
	}
	if err := same("logsoftmaxback", rows*c, bs[0], bs[1], bs[2]); err != nil {
		return err
	}
	LogSoftmaxAdjoint(bs[0], bs[1], bs[2], c)
	return nil
}

// LogSoftmaxAdjoint sets out to the adjoint of the row-wise log-softmax
// y = LogSoftmaxRows(x) for the output adjoint g, rows of length c:
// out = g − exp(y)·Σ_row g.
func LogSoftmaxAdjoint[T float](out, y, g []T, c int) {
	for r := 0; r+c <= len(y); r += c {
		var sum T
		for _, v := range g[r : r+c] {
			sum += v
		}
		for j := r; j < r+c; j++ {
			out[j] = g[j] - expT(y[j])*sum
		}
	}
}

// CrossEntropy sets each row's loss and correctness.
func (CPU[T]) CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error {
	bs, err := bufs[T](loss, correct, logits, labels)
	if err != nil {
		return err
	}
	ls, cs, zs, ys := bs[0], bs[1], bs[2], bs[3]
	if len(ls) != trials*rows || len(cs) != trials*rows || len(zs) != trials*rows*c || len(ys) != rows {
		return fmt.Errorf("cpu: cross-entropy of %d logits, %d labels into %d, %d for %d×%d×%d", len(zs), len(ys), len(ls), len(cs), trials, rows, c)
	}
	for i := 0; i < trials*rows; i++ {
		z := zs[i*c : (i+1)*c]
		lab := int(ys[i%rows])
		m, arg := z[0], 0
		for j, v := range z[1:] {
			if v > m {
				m, arg = v, j+1
			}
		}
		var s T
		for _, v := range z {
			s += expT(v - m)
		}
		if lab < 0 || lab >= c {
			ls[i], cs[i] = T(math.NaN()), 0
			continue
		}
		ls[i] = m + logT(s) - z[lab]
		cs[i] = 0
		if arg == lab {
			cs[i] = 1
		}
	}
	return nil
}

// Gather copies pool rows and one-hot labels.
func (CPU[T]) Gather(x, y, pool, labels Buffer, idx []int32, dim, classes int) error {
	bs, err := bufs[T](x, y, pool, labels)
	if err != nil {
		return err
	}
	xs, ys, ps, lb := bs[0], bs[1], bs[2], bs[3]
	if len(xs) != len(idx)*dim || len(ys) != len(idx)*classes || len(ps) != len(lb)*dim {
		return fmt.Errorf("cpu: gather of %d rows of %d into %d, %d from a pool of %d", len(idx), dim, len(xs), len(ys), len(ps))
	}
	clear(ys)
	for i, r := range idx {
		if r < 0 || int(r) >= len(lb) {
			return fmt.Errorf("cpu: gather row %d outside the pool of %d", r, len(lb))
		}
		copy(xs[i*dim:(i+1)*dim], ps[int(r)*dim:(int(r)+1)*dim])
		ys[i*classes+int(lb[r])] = 1
	}
	return nil
}

// Moments sums the rows and their squares.
func (CPU[T]) Moments(sum, sq, x Buffer, rows, cols int) error {
	bs, err := bufs[T](sum, sq, x)
	if err != nil {
		return err
	}
	if len(bs[0]) != cols || len(bs[1]) != cols || len(bs[2]) != rows*cols {
		return fmt.Errorf("cpu: moments of %d for %d×%d", len(bs[2]), rows, cols)
	}
	for j := 0; j < cols; j++ {
		var s, q T
		for i := 0; i < rows; i++ {
			v := bs[2][i*cols+j]
			s += v
			q += v * v
		}
		bs[0][j], bs[1][j] = s, q
	}
	return nil
}

// TanhJet propagates Taylor coefficients through tanh.
func (CPU[T]) TanhJet(t, z Buffer, d, n int) error {
	bs, err := bufs[T](t, z)
	if err != nil {
		return err
	}
	if err := same("tanhjet", (d+1)*n, bs[0], bs[1]); err != nil {
		return err
	}
	ts, zs := bs[0], bs[1]
	u := make([]T, d+1)
	for e := 0; e < n; e++ {
		tanhJet(ts, zs, u, d, n, e)
	}
	return nil
}

// tanhJet is the recurrence for element e (u is scratch of d+1).
func tanhJet[T float](ts, zs, u []T, d, n, e int) {
	ts[e] = tanhT(zs[e])
	u[0] = 1 - ts[e]*ts[e]
	for k := 1; k <= d; k++ {
		var s T
		for j := 1; j <= k; j++ {
			s += T(j) * zs[j*n+e] * u[k-j]
		}
		ts[k*n+e] = s / T(k)
		var q T
		for i := 0; i <= k; i++ {
			q += ts[i*n+e] * ts[(k-i)*n+e]
		}
		u[k] = -q
	}
}

// Round rounds to the format through nets/precision.
func (CPU[T]) Round(b Buffer, f Format) error {
	d, err := buf[T](b)
	if err != nil {
		return err
	}
	var pf precision.Format
	switch f {
	case BF16:
		pf = precision.BFloat16
	case FP16:
		pf = precision.Float16
	case TF32:
		pf = precision.TF32
	default:
		return fmt.Errorf("cpu: rounding format %d", f)
	}
	for i, v := range d {
		d[i] = T(pf.Round32(float32(v)))
	}
	return nil
}

// SetTF32 reports that the CPU has no TF32 mode.
func (CPU[T]) SetTF32(bool) (bool, error) { return false, nil }

// Sync does nothing: the CPU runs synchronously.
func (CPU[T]) Sync() error { return nil }

// Close does nothing.
func (CPU[T]) Close() error { return nil }
