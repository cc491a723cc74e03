package kernels

import "fmt"

// TF32Device is what TF32Products returns: a device whose matrix products take
// their operands rounded to TF32, as cuBLAS's TF32 tensor-core mode
// (CUBLAS_TF32_TENSOR_OP_MATH, Device.SetTF32) does on the GPU.
type TF32Device struct {
	Device
	on     bool
	sa, sb Buffer // scratch copies of the operands
}

// TF32Products returns dev (a float32 device) as one whose Gemm rounds
// copies of its A and B operands to TF32 (10 explicit significand bits,
// float32's exponent range; to nearest, ties to even, by dev.Round) and
// multiplies them in dev's float32 arithmetic, accumulating in float32:
// the emulation of cuBLAS's TF32 tensor-core products on a device that
// has none (the CPU twin, the CUDA emulator). Every other operation, and
// every value at rest, stays in float32: unlike Rounding(dev, TF32),
// which rounds every result, only the products' inputs are rounded. The
// switch starts on; SetTF32(false) makes the products strict float32
// again (and SetTF32 reports that it is honoured).
//
// The emulation models the format, not the bits of a GPU: the hardware's
// conversion of the operands may round differently at ties (or truncate,
// on some architectures), and cuBLAS sums the products in its own order.
// The scratch copies are device memory, freed by Release or Close; a
// TF32Device is not safe for concurrent use (wrap it in Serial).
func TF32Products(dev Device) *TF32Device { return &TF32Device{Device: dev, on: true} }

// Name says what runs the products.
func (t *TF32Device) Name() string {
	if !t.on {
		return t.Device.Name()
	}
	return t.Device.Name() + " with tf32 products (emulated)"
}

// SetTF32 switches the rounding of the products' operands.
func (t *TF32Device) SetTF32(on bool) (bool, error) {
	t.on = on
	return true, nil
}

// scratch returns a scratch buffer of at least n elements in *b,
// reallocating it when it is too small.
func (t *TF32Device) scratch(b *Buffer, n int) (Buffer, error) {
	if *b != nil && (*b).Len() < n {
		if err := t.Device.Free(*b); err != nil {
			return nil, fmt.Errorf("tf32 products: free the scratch: %w", err)
		}
		*b = nil
	}
	if *b == nil {
		s, err := t.Device.Alloc(n)
		if err != nil {
			return nil, fmt.Errorf("tf32 products: scratch of %d elements: %w", n, err)
		}
		*b = s
	}
	return t.Device.View(*b, n)
}

// rounded copies the first n elements of src into a scratch buffer and
// rounds them to TF32.
func (t *TF32Device) rounded(b *Buffer, src Buffer, n int, what string) (Buffer, error) {
	s, err := t.scratch(b, n)
	if err != nil {
		return nil, err
	}
	if err := t.Device.Copy(s, 0, src, 0, n); err != nil {
		return nil, fmt.Errorf("tf32 products: copy operand %s: %w", what, err)
	}
	if err := t.Device.Round(s, TF32); err != nil {
		return nil, fmt.Errorf("tf32 products: round operand %s: %w", what, err)
	}
	return s, nil
}

// extent is the number of elements a strided-batched operand spans.
func extent(batch, stride, size, have int) int {
	n := size
	if batch > 1 {
		n += (batch - 1) * stride
	}
	return min(n, have)
}

// Gemm multiplies the TF32-rounded operands (while the switch is on).
func (t *TF32Device) Gemm(g Gemm, c, a, b Buffer) error {
	if !t.on {
		return t.Device.Gemm(g, c, a, b)
	}
	ra, err := t.rounded(&t.sa, a, extent(g.Batch, g.StrideA, g.M*g.K, a.Len()), "A")
	if err != nil {
		return err
	}
	rb, err := t.rounded(&t.sb, b, extent(g.Batch, g.StrideB, g.K*g.N, b.Len()), "B")
	if err != nil {
		return err
	}
	return t.Device.Gemm(g, c, ra, rb)
}

// Release frees the scratch buffers (the device stays open and usable;
// the next product allocates them again).
func (t *TF32Device) Release() error {
	var first error
	for _, b := range []*Buffer{&t.sa, &t.sb} {
		if *b != nil {
			if err := t.Device.Free(*b); err != nil && first == nil {
				first = fmt.Errorf("tf32 products: free the scratch: %w", err)
			}
			*b = nil
		}
	}
	return first
}

// Close releases the scratch buffers and closes the wrapped device.
func (t *TF32Device) Close() error {
	err := t.Release()
	if cerr := t.Device.Close(); err == nil {
		err = cerr
	}
	return err
}
