//go:build gpu

// Package cudev is the GPU implementation of kernels.Device (build tag
// gpu; never gorgonia's cuda tag): one CUDA context per process (the
// device's primary context, which cuBLAS shares), device memory allocated
// by the callers once per batch shape, the products through cuBLAS's
// strided-batched SGEMM, and every other operation through the kernels of
// kernels/*.cu, compiled at Open with NVRTC for the device's compute
// capability and loaded with the driver API of gorgonia.org/cu.
//
// cuBLAS is called through this package's own cgo (cublas.go):
// gorgonia.org/cu/blas has no strided-batched GEMM, no math-mode switch
// (TF32) and keeps its handle unexported.
package cudev

/*
#cgo LDFLAGS: -lcublas -lcuda -ldl
#include <cuda.h>
#include <cublas_v2.h>

int perturb_cuinit_status(void);

static int perturb_sgemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
	CUdeviceptr a, int lda, long long sa, CUdeviceptr b, int ldb, long long sb, float beta,
	CUdeviceptr c, int ldc, long long sc, int batch) {
	// Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
	return (int)cublasSgemmStridedBatched(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
		n, m, k, &alpha, (const float *)b, ldb, sb, (const float *)a, lda, sa, &beta, (float *)c, ldc, sc, batch);
}

static int perturb_blas_create(cublasHandle_t *h) { return (int)cublasCreate(h); }
static int perturb_blas_destroy(cublasHandle_t h) { return (int)cublasDestroy(h); }
static int perturb_blas_math(cublasHandle_t h, int tf32) {
	return (int)cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}
*/
import "C"

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"gorgonia.org/cu"
	"gorgonia.org/cu/nvrtc"

	"github.com/perturb/perturb/kernels"
)

// Probe says whether a CUDA device can be used: nil, or an error saying
// what is missing (the driver's initialisation status, no device).
func Probe() error {
	if st := C.perturb_cuinit_status(); st != 0 {
		return fmt.Errorf("the CUDA driver did not initialise (cuInit: CUresult %d%s)", int(st), initHint(int(st)))
	}
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("counting CUDA devices: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("the CUDA driver sees no device")
	}
	return nil
}

func initHint(st int) string {
	switch st {
	case 100:
		return ": no CUDA-capable device"
	case 35:
		return ": the driver is older than this CUDA build"
	case 999:
		return ": unknown error, often no kernel module (nvidia.ko) loaded"
	case 34:
		return ": CUDA stub library, no driver"
	}
	return ""
}

// Device is a CUDA device. Methods lock the calling goroutine to its OS
// thread and make the primary context current for the call.
type Device struct {
	dev   cu.Device
	ctx   cu.CUContext
	mod   cu.Module
	fns   map[string]cu.Function
	blas  C.cublasHandle_t
	name  string
	sms   int
	idx   cu.DevicePtr // scratch for Gather's row indices
	nidx  int
	tf32  bool
	debug bool
}

// buf is device memory of n float32 (a view shares another buffer's).
type buf struct {
	p    cu.DevicePtr
	n    int
	view bool
}

func (b *buf) Len() int { return b.n }

var _ kernels.Device = (*Device)(nil)

// Open probes the driver, retains device ordinal's primary context,
// compiles the kernels with NVRTC for its compute capability and creates
// the cuBLAS handle. With PERTURB_GPU_SYNC=1 (the parity tests set Debug)
// every launch is followed by a synchronisation and its error checked.
func Open(ordinal int) (*Device, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	d := &Device{fns: map[string]cu.Function{}, debug: os.Getenv("PERTURB_GPU_SYNC") == "1"}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	if d.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("CUDA device %d: %w", ordinal, err)
	}
	if d.ctx, err = d.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("retain the primary context of device %d: %w", ordinal, err)
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("make the context current: %w", err)
	}
	major, minor, err := d.dev.ComputeCapability()
	if err != nil {
		return nil, err
	}
	if d.sms, err = d.dev.Attribute(cu.MultiprocessorCount); err != nil {
		return nil, fmt.Errorf("multiprocessor count: %w", err)
	}
	name, _ := d.dev.Name()
	d.name = fmt.Sprintf("%s (sm_%d%d)", name, major, minor)
	ptx, err := compile(major, minor)
	if err != nil {
		return nil, err
	}
	if d.mod, err = cu.LoadData(ptx); err != nil {
		return nil, fmt.Errorf("load the kernels' PTX: %w", err)
	}
	for _, f := range []string{"fill", "bias_act", "unary", "binary", "tanh_back", "tanh_back2", "sum_mid", "repeat_mid",
		"im2col", "col2im", "flatten", "log_softmax", "log_softmax_back", "cross_entropy", "gather", "moments", "tanh_jet", "round_to"} {
		fn, err := d.mod.Function(f)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", f, err)
		}
		d.fns[f] = fn
	}
	if st := C.perturb_blas_create(&d.blas); st != 0 {
		return nil, fmt.Errorf("cublasCreate: status %d", int(st))
	}
	return d, nil
}

// compile compiles every embedded .cu source with NVRTC for compute
// capability major.minor and returns the PTX.
func compile(major, minor int) (string, error) {
	var src strings.Builder
	err := fs.WalkDir(kernels.Sources, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := kernels.Sources.ReadFile(path)
		src.Write(b)
		src.WriteString("\n")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the kernel sources: %w", err)
	}
	prog, err := nvrtc.CreateProgram(src.String(), "perturb.cu")
	if err != nil {
		return "", fmt.Errorf("nvrtc: create program: %w", err)
	}
	defer prog.Destroy()
	arch := fmt.Sprintf("--gpu-architecture=compute_%d%d", major, minor)
	if err := prog.Compile(arch, "--std=c++11"); err != nil {
		log, _ := prog.GetLog()
		return "", fmt.Errorf("nvrtc: compile for %s: %w\n%s", arch, err, log)
	}
	ptx, err := prog.GetPTX()
	if err != nil {
		return "", fmt.Errorf("nvrtc: PTX: %w", err)
	}
	return ptx, nil
}

// do runs f on a locked OS thread with the context current.
func (d *Device) do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("make the context current: %w", err)
	}
	return f()
}

// Name is the device's name and architecture.
func (d *Device) Name() string { return d.name }

// DType is float32: every kernel works in float32.
func (d *Device) DType() kernels.DType { return kernels.F32 }

// Alloc allocates n float32 of device memory.
func (d *Device) Alloc(n int) (kernels.Buffer, error) {
	var b *buf
	err := d.do(func() error {
		p, err := cu.MemAlloc(int64(max(n, 1)) * 4)
		if err != nil {
			return fmt.Errorf("cuMemAlloc of %d float32: %w", n, err)
		}
		b = &buf{p: p, n: n}
		return nil
	})
	return b, err
}

func dbuf(b kernels.Buffer) (*buf, error) {
	g, ok := b.(*buf)
	if !ok {
		return nil, fmt.Errorf("cudev: buffer %T of another device", b)
	}
	return g, nil
}

// Free releases device memory.
func (d *Device) Free(b kernels.Buffer) error {
	g, err := dbuf(b)
	if err != nil {
		return err
	}
	if g.view {
		return fmt.Errorf("cudev: Free of a view (free the buffer it views)")
	}
	return d.do(func() error { return cu.MemFree(g.p) })
}

// View returns the first n elements of b, sharing its memory.
func (d *Device) View(b kernels.Buffer, n int) (kernels.Buffer, error) {
	g, err := dbuf(b)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > g.n {
		return nil, fmt.Errorf("cudev: view of %d elements of a buffer of %d", n, g.n)
	}
	return &buf{p: g.p, n: n, view: true}, nil
}

// Upload converts src to float32 and copies it to dst[off:].
func (d *Device) Upload(dst kernels.Buffer, off int, src []float64) error {
	f := make([]float32, len(src))
	for i, v := range src {
		f[i] = float32(v)
	}
	return d.Upload32(dst, off, f)
}

// Upload32 copies src to dst[off:].
func (d *Device) Upload32(dst kernels.Buffer, off int, src []float32) error {
	g, err := dbuf(dst)
	if err != nil {
		return err
	}
	if off < 0 || off+len(src) > g.n {
		return fmt.Errorf("cudev: upload of %d at %d into %d", len(src), off, g.n)
	}
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		return cu.MemcpyHtoD(g.p+cu.DevicePtr(4*off), unsafe.Pointer(&src[0]), int64(4*len(src)))
	})
}

// Download copies src[off:off+len(dst)] into dst.
func (d *Device) Download(dst []float64, src kernels.Buffer, off int) error {
	g, err := dbuf(src)
	if err != nil {
		return err
	}
	if off < 0 || off+len(dst) > g.n {
		return fmt.Errorf("cudev: download of %d at %d from %d", len(dst), off, g.n)
	}
	if len(dst) == 0 {
		return nil
	}
	f := make([]float32, len(dst))
	err = d.do(func() error {
		return cu.MemcpyDtoH(unsafe.Pointer(&f[0]), g.p+cu.DevicePtr(4*off), int64(4*len(f)))
	})
	for i, v := range f {
		dst[i] = float64(v)
	}
	return err
}

// Copy copies n elements on the device.
func (d *Device) Copy(dst kernels.Buffer, dstOff int, src kernels.Buffer, srcOff, n int) error {
	a, err := dbuf(dst)
	if err != nil {
		return err
	}
	b, err := dbuf(src)
	if err != nil {
		return err
	}
	if dstOff < 0 || srcOff < 0 || dstOff+n > a.n || srcOff+n > b.n {
		return fmt.Errorf("cudev: copy of %d from %d of %d to %d of %d", n, srcOff, b.n, dstOff, a.n)
	}
	return d.do(func() error {
		return cu.MemcpyDtoD(a.p+cu.DevicePtr(4*dstOff), b.p+cu.DevicePtr(4*srcOff), int64(4*n))
	})
}

// launch runs kernel f over n elements (grid-stride) with the arguments,
// each a *cu.DevicePtr, *int64 or *float64 (8 bytes, as cu's Launch
// copies), and checks the launch (and, in debug mode, the execution).
func (d *Device) launch(f string, n int, args ...any) error {
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case *cu.DevicePtr:
			params[i] = unsafe.Pointer(a)
		case *int64:
			params[i] = unsafe.Pointer(a)
		case *float64:
			params[i] = unsafe.Pointer(a)
		default:
			return fmt.Errorf("cudev: kernel %s argument %d of type %T", f, i, a)
		}
	}
	const block = 256
	grid := min(max((n+block-1)/block, 1), 32*max(d.sms, 1))
	return d.do(func() error {
		if err := d.fns[f].Launch(grid, 1, 1, block, 1, 1, 0, cu.Stream{}, params); err != nil {
			return fmt.Errorf("launch %s: %w", f, err)
		}
		if d.debug {
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("kernel %s: %w", f, err)
			}
		}
		return nil
	})
}

// ptrs returns the device pointers of bs.
func ptrs(bs ...kernels.Buffer) ([]*cu.DevicePtr, []int, error) {
	ps, ns := make([]*cu.DevicePtr, len(bs)), make([]int, len(bs))
	for i, b := range bs {
		g, err := dbuf(b)
		if err != nil {
			return nil, nil, fmt.Errorf("operand %d: %w", i, err)
		}
		p := g.p
		ps[i], ns[i] = &p, g.n
	}
	return ps, ns, nil
}

func i64(v int) *int64       { x := int64(v); return &x }
func f64(v float64) *float64 { return &v }
func b64(v bool) *int64 {
	if v {
		return i64(1)
	}
	return i64(0)
}

func sizes(name string, got []int, want ...int) error {
	for i, w := range want {
		if got[i] != w {
			return fmt.Errorf("cudev: %s operand %d has %d elements, want %d", name, i, got[i], w)
		}
	}
	return nil
}

// Fill sets every element to v.
func (d *Device) Fill(b kernels.Buffer, v float64) error {
	p, n, err := ptrs(b)
	if err != nil {
		return err
	}
	return d.launch("fill", n[0], p[0], i64(n[0]), f64(v))
}

// Gemm is cuBLAS's SgemmStridedBatched (TF32 tensor cores when switched
// on).
func (d *Device) Gemm(g kernels.Gemm, c, a, b kernels.Buffer) error {
	p, n, err := ptrs(c, a, b)
	if err != nil {
		return err
	}
	if n[1] < (g.Batch-1)*g.StrideA+g.M*g.K || n[2] < (g.Batch-1)*g.StrideB+g.K*g.N || n[0] < (g.Batch-1)*g.StrideC+g.M*g.N {
		return fmt.Errorf("cudev: gemm %+v on buffers of %d, %d, %d", g, n[1], n[2], n[0])
	}
	lda, ldb := g.K, g.N
	if g.TransA {
		lda = g.M
	}
	if g.TransB {
		ldb = g.K
	}
	return d.do(func() error {
		st := C.perturb_sgemm(d.blas, C.int(btoi(g.TransA)), C.int(btoi(g.TransB)), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha),
			C.CUdeviceptr(*p[1]), C.int(lda), C.longlong(g.StrideA), C.CUdeviceptr(*p[2]), C.int(ldb), C.longlong(g.StrideB), C.float(g.Beta),
			C.CUdeviceptr(*p[0]), C.int(g.N), C.longlong(g.StrideC), C.int(g.Batch))
		if st != 0 {
			return fmt.Errorf("cublasSgemmStridedBatched %+v: status %d", g, int(st))
		}
		if d.debug {
			return cu.Synchronize()
		}
		return nil
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BiasAct finishes a dense layer in place.
func (d *Device) BiasAct(z kernels.Buffer, batch, m, n int, s float64, bias kernels.Buffer, cm, act bool) error {
	p, l, err := ptrs(z, bias)
	if err != nil {
		return err
	}
	nb := n
	if cm {
		nb = m
	}
	if err := sizes("bias_act", l, batch*m*n, batch*nb); err != nil {
		return err
	}
	return d.launch("bias_act", batch*m*n, p[0], p[1], i64(batch), i64(m), i64(n), f64(s), b64(cm), b64(act))
}

// Unary applies f elementwise.
func (d *Device) Unary(f kernels.Unary, out, in kernels.Buffer) error {
	p, l, err := ptrs(out, in)
	if err != nil {
		return err
	}
	if err := sizes("unary", l, l[0], l[0]); err != nil {
		return err
	}
	return d.launch("unary", l[0], p[0], p[1], i64(l[0]), i64(int(f)))
}

// Binary applies f elementwise.
func (d *Device) Binary(f kernels.Binary, out, a, b kernels.Buffer) error {
	p, l, err := ptrs(out, a, b)
	if err != nil {
		return err
	}
	if err := sizes("binary", l, l[0], l[0], l[0]); err != nil {
		return err
	}
	return d.launch("binary", l[0], p[0], p[1], p[2], i64(l[0]), i64(int(f)))
}

// TanhBack sets (1 − t²) ⊙ g.
func (d *Device) TanhBack(out, t, g kernels.Buffer) error {
	p, l, err := ptrs(out, t, g)
	if err != nil {
		return err
	}
	if err := sizes("tanh_back", l, l[0], l[0], l[0]); err != nil {
		return err
	}
	return d.launch("tanh_back", l[0], p[0], p[1], p[2], i64(l[0]))
}

// TanhBack2 sets −2 t ⊙ g ⊙ h.
func (d *Device) TanhBack2(out, t, g, h kernels.Buffer) error {
	p, l, err := ptrs(out, t, g, h)
	if err != nil {
		return err
	}
	if err := sizes("tanh_back2", l, l[0], l[0], l[0], l[0]); err != nil {
		return err
	}
	return d.launch("tanh_back2", l[0], p[0], p[1], p[2], p[3], i64(l[0]))
}

// Sum reduces the middle axis.
func (d *Device) Sum(out, in kernels.Buffer, outer, mid, inner int) error {
	p, l, err := ptrs(out, in)
	if err != nil {
		return err
	}
	if err := sizes("sum_mid", l, outer*inner, outer*mid*inner); err != nil {
		return err
	}
	return d.launch("sum_mid", outer*inner, p[0], p[1], i64(outer), i64(mid), i64(inner))
}

// Repeat broadcasts along a middle axis.
func (d *Device) Repeat(out, in kernels.Buffer, outer, reps, inner int) error {
	p, l, err := ptrs(out, in)
	if err != nil {
		return err
	}
	if err := sizes("repeat_mid", l, outer*reps*inner, outer*inner); err != nil {
		return err
	}
	return d.launch("repeat_mid", outer*reps*inner, p[0], p[1], i64(outer), i64(reps), i64(inner))
}

// convArgs are the geometry arguments of the im2col and col2im kernels,
// in their order (trials, images, c, h, w, size, stride, pad, cbhw).
func convArgs(c kernels.Conv) []any {
	return []any{i64(c.Trials), i64(c.Images), i64(c.C), i64(c.H), i64(c.W), i64(c.Size), i64(c.Stride), i64(c.Pad), b64(c.CBHW)}
}

// Im2col writes the patch matrices.
func (d *Device) Im2col(c kernels.Conv, cols, images kernels.Buffer) error {
	p, l, err := ptrs(cols, images)
	if err != nil {
		return err
	}
	if err := sizes("im2col", l, c.ColsLen(), c.ImagesLen()); err != nil {
		return err
	}
	return d.launch("im2col", c.ColsLen(), append([]any{p[0], p[1]}, convArgs(c)...)...)
}

// Col2im sums the patch matrices into images, one thread per pixel.
func (d *Device) Col2im(c kernels.Conv, images, cols kernels.Buffer) error {
	p, l, err := ptrs(images, cols)
	if err != nil {
		return err
	}
	if err := sizes("col2im", l, c.ImagesLen(), c.ColsLen()); err != nil {
		return err
	}
	return d.launch("col2im", c.ImagesLen(), append([]any{p[0], p[1]}, convArgs(c)...)...)
}

// Flatten permutes maps and rows.
func (d *Device) Flatten(out, in kernels.Buffer, trials, c, images, pp int, inverse bool) error {
	p, l, err := ptrs(out, in)
	if err != nil {
		return err
	}
	n := trials * c * images * pp
	if err := sizes("flatten", l, n, n); err != nil {
		return err
	}
	return d.launch("flatten", n, p[0], p[1], i64(trials), i64(c), i64(images), i64(pp), b64(inverse))
}

// LogSoftmax is the row-wise log-softmax.
func (d *Device) LogSoftmax(out, in kernels.Buffer, rows, c int) error {
	p, l, err := ptrs(out, in)
	if err != nil {
		return err
	}
	if err := sizes("log_softmax", l, rows*c, rows*c); err != nil {
		return err
	}
	return d.launch("log_softmax", rows, p[0], p[1], i64(rows), i64(c))
}

// LogSoftmaxBack is its adjoint.
func (d *Device) LogSoftmaxBack(out, y, g kernels.Buffer, rows, c int) error {
	p, l, err := ptrs(out, y, g)
	if err != nil {
		return err
	}
	if err := sizes("log_softmax_back", l, rows*c, rows*c, rows*c); err != nil {
		return err
	}
	return d.launch("log_softmax_back", rows, p[0], p[1], p[2], i64(rows), i64(c))
}

// CrossEntropy is the fused per-row loss and correctness.
func (d *Device) CrossEntropy(loss, correct, logits, labels kernels.Buffer, trials, rows, c int) error {
	p, l, err := ptrs(loss, correct, logits, labels)
	if err != nil {
		return err
	}
	if err := sizes("cross_entropy", l, trials*rows, trials*rows, trials*rows*c, rows); err != nil {
		return err
	}
	return d.launch("cross_entropy", trials*rows, p[0], p[1], p[2], p[3], i64(trials), i64(rows), i64(c))
}

// Gather copies pool rows and one-hot labels on the device; the indices go
// through a scratch buffer grown as needed.
func (d *Device) Gather(x, y, pool, labels kernels.Buffer, idx []int32, dim, classes int) error {
	p, l, err := ptrs(x, y, pool, labels)
	if err != nil {
		return err
	}
	if err := sizes("gather", l, len(idx)*dim, len(idx)*classes, l[3]*dim); err != nil {
		return err
	}
	for _, r := range idx {
		if r < 0 || int(r) >= l[3] {
			return fmt.Errorf("cudev: gather row %d outside the pool of %d", r, l[3])
		}
	}
	if len(idx) == 0 {
		return nil
	}
	err = d.do(func() error {
		if d.nidx < len(idx) {
			if d.nidx > 0 {
				if err := cu.MemFree(d.idx); err != nil {
					return err
				}
			}
			var err error
			if d.idx, err = cu.MemAlloc(int64(4 * len(idx))); err != nil {
				return fmt.Errorf("cuMemAlloc of %d indices: %w", len(idx), err)
			}
			d.nidx = len(idx)
		}
		return cu.MemcpyHtoD(d.idx, unsafe.Pointer(&idx[0]), int64(4*len(idx)))
	})
	if err != nil {
		return err
	}
	ip := d.idx
	return d.launch("gather", len(idx)*max(dim, classes), p[0], p[1], p[2], p[3], &ip, i64(len(idx)), i64(dim), i64(classes))
}

// Moments sums rows and squares per column.
func (d *Device) Moments(sum, sq, x kernels.Buffer, rows, cols int) error {
	p, l, err := ptrs(sum, sq, x)
	if err != nil {
		return err
	}
	if err := sizes("moments", l, cols, cols, rows*cols); err != nil {
		return err
	}
	return d.launch("moments", cols, p[0], p[1], p[2], i64(rows), i64(cols))
}

// TanhJet propagates Taylor coefficients through tanh (degree ≤ 15).
func (d *Device) TanhJet(t, z kernels.Buffer, deg, n int) error {
	if deg < 0 || deg > 15 {
		return fmt.Errorf("cudev: tanh jet of degree %d (at most 15)", deg)
	}
	p, l, err := ptrs(t, z)
	if err != nil {
		return err
	}
	if err := sizes("tanh_jet", l, (deg+1)*n, (deg+1)*n); err != nil {
		return err
	}
	return d.launch("tanh_jet", n, p[0], p[1], i64(deg), i64(n))
}

// Round rounds to bf16, fp16 or tf32.
func (d *Device) Round(b kernels.Buffer, f kernels.Format) error {
	p, l, err := ptrs(b)
	if err != nil {
		return err
	}
	return d.launch("round_to", l[0], p[0], i64(l[0]), i64(int(f)))
}

// SetTF32 switches cuBLAS between TF32 tensor-core math and strict float32.
func (d *Device) SetTF32(on bool) (bool, error) {
	err := d.do(func() error {
		if st := C.perturb_blas_math(d.blas, C.int(btoi(on))); st != 0 {
			return fmt.Errorf("cublasSetMathMode: status %d", int(st))
		}
		return nil
	})
	if err == nil {
		d.tf32 = on
	}
	return err == nil, err
}

// TF32 reports whether TF32 math is on.
func (d *Device) TF32() bool { return d.tf32 }

// Sync waits for the device and returns the first asynchronous error.
func (d *Device) Sync() error { return d.do(cu.Synchronize) }

// Close destroys the cuBLAS handle, unloads the kernels and releases the
// primary context.
func (d *Device) Close() error {
	return d.do(func() error {
		if d.nidx > 0 {
			cu.MemFree(d.idx)
			d.nidx = 0
		}
		if st := C.perturb_blas_destroy(d.blas); st != 0 {
			return fmt.Errorf("cublasDestroy: status %d", int(st))
		}
		if err := d.mod.Unload(); err != nil {
			return err
		}
		return d.dev.ReleasePrimaryCtx()
	})
}
