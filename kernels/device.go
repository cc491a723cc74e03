// Package kernels is perturb's device layer: the primitive operations that
// the batched trial graphs, the test-loss evaluation, the jets and the
// estimators need, behind one interface (Device) with two implementations:
//
//   - CPU, the "CPU twin" of every kernel, in pure Go, in float32 or
//     float64, always built and tested (against independent float64
//     references, and, through graph's walker, against gorgonia's
//     TapeMachine on the real model graphs);
//   - the GPU device of package kernels/cudev (build tag gpu, never
//     gorgonia's cuda tag), which runs the same operations through the CUDA
//     driver API of gorgonia.org/cu, cuBLAS strided-batched GEMM and the CUDA
//     C kernels of this folder (*.cu, embedded in the binary and compiled at
//     start with NVRTC for the device's architecture).
//
// Every tensor is row-major and contiguous. Every operation writes every
// element of its output (the GPU parity tests poison outputs first to check
// that), and computes each trial's slice with arithmetic that does not
// depend on the number of trials, so a trial's results are independent of
// K on either device.
package kernels

import (
	"embed"
	"errors"
	"fmt"

	// The BLAS every CPU product of the program uses (OpenBLAS with the
	// openblas build tag), registered at initialisation.
	_ "github.com/perturb/perturb/nets/blas"
)

// Sources holds the CUDA C sources of the kernels (kernels/*.cu), compiled
// at start by the GPU device with NVRTC.
//
//go:embed *.cu
var Sources embed.FS

// DType is the element type of a device's buffers.
type DType int

// The element types.
const (
	F32 DType = iota
	F64
)

func (d DType) String() string {
	switch d {
	case F32:
		return "float32"
	case F64:
		return "float64"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	if d == F64 {
		return 8
	}
	return 4
}

// ErrOutOfMemory is wrapped by Alloc's error when the device has no room
// for the buffer. Callers that pad work to a capacity (graph's
// DeviceBackend, DeviceTestLoss) lower their capacity on it, so that the
// runner's retry with half the trials asks for less memory.
var ErrOutOfMemory = errors.New("device out of memory")

// Buffer is a contiguous array of Len elements of a device's dtype in the
// device's memory. Buffers are allocated once (per batch shape) and reused.
type Buffer interface {
	Len() int
}

// Gemm is a strided-batched row-major matrix product: for b < Batch,
//
//	C[b] = Alpha·op(A[b])·op(B[b]) + Beta·C[b],
//
// op(A) of M×K and op(B) of K×N, A[b] starting at element b·StrideA of its
// buffer (likewise B, C); a stride of 0 shares one matrix between the
// batch. With Beta = 0, C is not read (NaNs in it do not propagate).
type Gemm struct {
	Batch, M, N, K            int
	TransA, TransB            bool
	Alpha, Beta               float64
	StrideA, StrideB, StrideC int
}

// Strided returns g with the dense strides of its operands (M·K, K·N, M·N).
func (g Gemm) Strided() Gemm {
	g.StrideA, g.StrideB, g.StrideC = g.M*g.K, g.K*g.N, g.M*g.N
	return g
}

// Conv is the geometry of a batched im2col (see Device.Im2col): Trials ×
// Images images of C channels of H×W pixels, square patches of Size with
// Stride, and Pad pixels of zeros on every side of each image (a patch
// entry that falls on the padding reads 0, and its adjoint is dropped).
// With CBHW the images are a convolution's channel-major maps (Trials, C,
// Images·H·W) rather than (Trials·Images, C, H, W).
type Conv struct {
	Trials, Images    int
	C, H, W           int
	Size, Stride, Pad int
	CBHW              bool
}

// Out is the output size (h', w') = ((H + 2·Pad − Size)/Stride + 1,
// likewise W).
func (c Conv) Out() (int, int) {
	return (c.H+2*c.Pad-c.Size)/c.Stride + 1, (c.W+2*c.Pad-c.Size)/c.Stride + 1
}

// ColsLen is the length of the patch matrices (Trials, C·Size², Images·h'·w').
func (c Conv) ColsLen() int {
	oh, ow := c.Out()
	return c.Trials * c.C * c.Size * c.Size * c.Images * oh * ow
}

// ImagesLen is the length of the images.
func (c Conv) ImagesLen() int { return c.Trials * c.Images * c.C * c.H * c.W }

// Unary is an elementwise function of one operand.
type Unary int

// The unary functions.
const (
	Neg Unary = iota
	Exp
	Tanh
)

// Binary is an elementwise function of two operands of one shape.
type Binary int

// The binary functions.
const (
	Add Binary = iota
	Sub
	Mul
)

// Format is a rounding format of Device.Round.
type Format int

// The formats of the precision study.
const (
	BF16 Format = iota
	FP16
	TF32
)

// Device runs the primitive operations. Lengths are checked by the callers
// (graph's walker); a Device returns an error for a failed device call or
// launch, never panics for one. A Device is not safe for concurrent use.
type Device interface {
	// Name says what runs the operations (e.g. "cpu float64", "NVIDIA H100
	// (sm_90)").
	Name() string
	// DType is the element type of the device's buffers.
	DType() DType
	// Alloc returns a buffer of n elements (contents undefined), or an
	// error wrapping ErrOutOfMemory when the device has no room for it.
	Alloc(n int) (Buffer, error)
	// Free releases a buffer (not a view).
	Free(b Buffer) error
	// View returns a buffer of the first n elements of b, sharing its
	// memory (valid while b is; not to be freed): the walker reuses a
	// larger free buffer for a smaller node.
	View(b Buffer, n int) (Buffer, error)
	// Upload copies src (converted to the dtype) into dst[off:].
	Upload(dst Buffer, off int, src []float64) error
	// Upload32 copies src into dst[off:] (no conversion for F32 devices).
	Upload32(dst Buffer, off int, src []float32) error
	// Download copies src[off:off+len(dst)] into dst.
	Download(dst []float64, src Buffer, off int) error
	// Fill sets every element of b to v.
	Fill(b Buffer, v float64) error
	// Copy copies n elements of src[srcOff:] to dst[dstOff:].
	Copy(dst Buffer, dstOff int, src Buffer, srcOff, n int) error

	// Gemm computes the strided-batched product g (cuBLAS
	// SgemmStridedBatched on the GPU).
	Gemm(g Gemm, c, a, b Buffer) error
	// BiasAct finishes a dense layer in place on z (batch, m, n):
	// z ← round(s·z) + bias, then tanh when act; the bias is (batch, n)
	// added to every row, or with cm (channel-major) (batch, m) added to
	// every column.
	BiasAct(z Buffer, batch, m, n int, s float64, bias Buffer, cm, act bool) error
	// Unary sets out = f(in) elementwise.
	Unary(f Unary, out, in Buffer) error
	// Binary sets out = a f b elementwise.
	Binary(f Binary, out, a, b Buffer) error
	// TanhBack sets out = (1 − t²) ⊙ g.
	TanhBack(out, t, g Buffer) error
	// TanhBack2 sets out = −2 t ⊙ g ⊙ h.
	TanhBack2(out, t, g, h Buffer) error
	// Sum sets out[o, i] = Σ_j in[o, j, i] for in of shape (outer, mid,
	// inner), summing j in increasing order.
	Sum(out, in Buffer, outer, mid, inner int) error
	// Repeat sets out[o, r, i] = in[o, i] for r < reps.
	Repeat(out, in Buffer, outer, reps, inner int) error
	// Im2col writes the channel-major patch matrices of c's images (see
	// graph's im2colKernel for the layout).
	Im2col(c Conv, cols, images Buffer) error
	// Col2im is Im2col's adjoint: it sums the patch matrices back into
	// images (cleared first), each pixel's entries in a fixed order.
	Col2im(c Conv, images, cols Buffer) error
	// Flatten turns channel-major maps (trials, c, images·p) into rows
	// (trials, images, p·c), or back with inverse.
	Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error
	// LogSoftmax sets every row of length c of out to the log-softmax of
	// the row of in, shifted by the row's own maximum.
	LogSoftmax(out, in Buffer, rows, c int) error
	// LogSoftmaxBack sets out = g − exp(y) Σ_j g_j row by row.
	LogSoftmaxBack(out, y, g Buffer, rows, c int) error
	// CrossEntropy is the fused log-sum-exp cross-entropy of the test-loss
	// evaluation: for each trial k < trials and each of its rows r < rows,
	// with logits z = logits[k, r, :] of length c and label labels[r] (a
	// class index stored as a float), it sets loss[k·rows + r] =
	// logsumexp(z) − z_label and correct[k·rows + r] to 1 when the label is
	// z's first maximum, else 0. Sum then gives each trial's totals in a
	// fixed order.
	CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error
	// Gather copies the pool rows idx (trial after trial) into x
	// (len(idx), dim) and sets y (len(idx), classes) to their one-hot
	// labels; pool is (N, dim), labels (N) as floats.
	Gather(x, y, pool, labels Buffer, idx []int32, dim, classes int) error
	// TanhJet sets the Taylor coefficients t_0..t_d of tanh(z) from those
	// of z, both (d+1, n) (coefficient-major): t_0 = tanh z_0 and, with
	// u = 1 − t², k t_k = Σ_{j=1..k} j z_j u_{k−j}, u_k = δ_k0 − Σ_i t_i
	// t_{k−i}: the jets' elementwise recurrence through the activation.
	TanhJet(t, z Buffer, d, n int) error
	// Round rounds every element of b to the format (round to nearest,
	// ties to even), as nets/precision.Round32 does.
	Round(b Buffer, f Format) error
	// SetTF32 switches cuBLAS's TF32 tensor-core mode for the products
	// (no effect on the CPU, which has none); it reports whether the
	// device honours it.
	SetTF32(on bool) (bool, error)
	// Sync waits for queued work and returns the first asynchronous error.
	Sync() error
	// Close releases the device.
	Close() error
}
