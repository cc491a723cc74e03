package kernels

import (
	"fmt"

	"github.com/perturb/perturb/nets/fastmath"
	"github.com/perturb/perturb/nets/precision"
)

// float is the element type of a CPU device.
type float interface{ ~float32 | ~float64 }

// cpuBuf is a CPU buffer.
type cpuBuf[T float] struct{ d []T }

func (b *cpuBuf[T]) Len() int { return len(b.d) }

// CPU is the CPU device and twin of the GPU device: every operation in Go,
// the products through gonum's registered BLAS (OpenBLAS under graph's
// openblas build tag, see cpu_gemm.go), in the arithmetic of the graph
// package's CPU kernels (graph/batchops.go) up to the float32 tanh and exp
// (nets/fastmath's vector kernels, a few ulp, see cpu_elem.go), so that
// running a batched graph through graph's walker on a CPU device
// reproduces gorgonia's TapeMachine. Large operations are spread over
// GOMAXPROCS goroutines (SetWorkers), with results independent of the
// split (cpu_par.go).
type CPU[T float] struct {
	workers int // 0: the SetWorkers default
	// exact computes the float32 tanh and exp in float64 and rounds them
	// (math.Tanh, math.Exp), as the CUDA kernels do when compiled for the
	// CPU (kernels/cudaemu), instead of the vector kernels.
	exact bool
	// uniform sends every product with a small side through the
	// micro-kernel (WithUniformProducts).
	uniform bool
}

// NewExactCPU is NewCPU with the float32 tanh and exp correctly rounded
// from float64 (no vector approximations): the reference of the CUDA
// emulation's parity tests, and the twin as it was before the vector
// kernels. Float64 devices are the same either way.
func NewExactCPU(dt DType) Device {
	if dt == F64 {
		return CPU[float64]{exact: true}
	}
	return CPU[float32]{exact: true}
}

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
	convert(d[off:off+len(src)], src)
	return nil
}

// convert sets dst[i] = T(src[i]) (len(dst) = len(src)): float64 ↔
// float32 through nets/fastmath's vector conversions (bitwise Go's), a
// copy where the types agree.
func convert[T float, S float](dst []T, src []S) {
	switch d := any(dst).(type) {
	case []float32:
		switch s := any(src).(type) {
		case []float64:
			fastmath.Narrow32(d, s)
			return
		case []float32:
			copy(d, s)
			return
		}
	case []float64:
		switch s := any(src).(type) {
		case []float32:
			fastmath.Widen32(d, s)
			return
		case []float64:
			copy(d, s)
			return
		}
	}
	panic("cpu: convert between unknown float types")
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
	convert(d[off:off+len(src)], src)
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
	convert(dst, s[off:off+len(dst)])
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

// same returns an error unless every buffer has n elements.
func same[T float](name string, n int, bs ...[]T) error {
	for i, b := range bs {
		if len(b) != n {
			return fmt.Errorf("cpu: %s operand %d of %d elements, want %d", name, i, len(b), n)
		}
	}
	return nil
}

// binaryOps maps Binary to fastmath's operations.
var binaryOps = [...]int{Add: fastmath.OpAdd, Sub: fastmath.OpSub, Mul: fastmath.OpMul}

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
	x, y = x[:len(o)], y[:len(o)] // one bounds check per slice
	if o32, ok := any(o).([]float32); ok && f <= Mul {
		fastmath.Binary32(binaryOps[f], o32, any(x).([]float32), any(y).([]float32))
		return nil
	}
	switch f {
	case Add:
		for i := range o {
			o[i] = x[i] + y[i]
		}
	case Sub:
		for i := range o {
			o[i] = x[i] - y[i]
		}
	case Mul:
		for i := range o {
			o[i] = x[i] * y[i]
		}
	default:
		return fmt.Errorf("cpu: binary function %d", f)
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
	tv, o, gv := bs[1], bs[0][:len(bs[1])], bs[2][:len(bs[1])]
	if o32, ok := any(o).([]float32); ok {
		fastmath.TanhBack32(o32, any(tv).([]float32), any(gv).([]float32))
		return nil
	}
	for i, v := range tv {
		o[i] = (1 - T(v*v)) * gv[i]
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
	tv, o, gv, hv := bs[1], bs[0][:len(bs[1])], bs[2][:len(bs[1])], bs[3][:len(bs[1])]
	if o32, ok := any(o).([]float32); ok {
		fastmath.TanhBack2_32(o32, any(tv).([]float32), any(gv).([]float32), any(hv).([]float32))
		return nil
	}
	for i, v := range tv {
		o[i] = T(T(-2*v)*gv[i]) * hv[i]
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
	if inner == 1 && outer >= 8 {
		// Eight sums at a time, each in its own order: eight independent
		// chains of additions rather than one (bitwise the same). A last
		// partial block overlaps the one before (its sums computed twice,
		// alike).
		for a := 0; a < outer; a += 8 {
			a = min(a, outer-8)
			r := x[a*mid : (a+8)*mid]
			var s0, s1, s2, s3, s4, s5, s6, s7 T
			for j := range mid {
				v := r[j : j+7*mid+1]
				s0 += v[0]
				s1 += v[mid]
				s2 += v[2*mid]
				s3 += v[3*mid]
				s4 += v[4*mid]
				s5 += v[5*mid]
				s6 += v[6*mid]
				s7 += v[7*mid]
			}
			o[a], o[a+1], o[a+2], o[a+3], o[a+4], o[a+5], o[a+6], o[a+7] = s0, s1, s2, s3, s4, s5, s6, s7
		}
		return nil
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
// graph's CPU kernel does: the element-by-element reference of the device's
// im2col and col2im (cpu_conv.go), which the tests compare with it bitwise.
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
	if d32, ok := any(d).([]float32); ok {
		precision.RoundSlice(pf, d32) // the format's loop, inlined per element
		return nil
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

// HostView returns a buffer of dev that is the host slice itself, without
// a copy, when dev is a CPU device (or a kernels.WithWorkers view of one)
// of the slice's dtype: x32 for F32, x64 for F64 (the other may be nil).
// The device must only read it: graph.UploadData uses it for the data
// pool, which the programs gather from and never write. It reports false
// for any other device.
func HostView(dev Device, x32 []float32, x64 []float64) (Buffer, bool) {
	switch dev.(type) {
	case CPU[float32]:
		if x32 != nil {
			return &cpuBuf[float32]{d: x32}, true
		}
	case CPU[float64]:
		if x64 != nil {
			return &cpuBuf[float64]{d: x64}, true
		}
	}
	return nil, false
}
