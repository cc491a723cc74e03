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
	"errors"
	"fmt"
	"os"
	"runtime"
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
	// Launcher runs the one-launch operations through launch.
	kernels.Launcher
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
	d.Launcher = kernels.Launcher{Launch: d.launch}
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
	for _, f := range kernels.KernelNames {
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

// compile compiles the kernels' source (kernels.Source) with NVRTC for
// compute capability major.minor (kernels.NVRTCOptions) and returns the
// PTX.
func compile(major, minor int) (string, error) {
	ptx, _, err := compileLog(major, minor)
	return ptx, err
}

// compileLog is compile returning NVRTC's log too (warnings on success):
// the NVRTC check (nvrtc_test.go, make cuda-check) needs no GPU.
func compileLog(major, minor int) (ptx, log string, err error) {
	src, err := kernels.Source()
	if err != nil {
		return "", "", err
	}
	prog, err := nvrtc.CreateProgram(src, "perturb.cu")
	if err != nil {
		return "", "", fmt.Errorf("nvrtc: create program: %w", err)
	}
	defer prog.Destroy()
	opts := kernels.NVRTCOptions(major, minor)
	cerr := prog.Compile(opts...)
	log, lerr := prog.GetLog()
	if cerr != nil {
		return "", log, fmt.Errorf("nvrtc: compile with %v: %w\n%s", opts, cerr, log)
	}
	if lerr != nil {
		return "", "", fmt.Errorf("nvrtc: log: %w", lerr)
	}
	if ptx, err = prog.GetPTX(); err != nil {
		return "", log, fmt.Errorf("nvrtc: PTX: %w", err)
	}
	return ptx, log, nil
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
		if errors.Is(err, cu.OutOfMemory) {
			return fmt.Errorf("cuMemAlloc of %d float32: %w (%w)", n, kernels.ErrOutOfMemory, err)
		}
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

// launch checks the operands bs, plans the launch from their lengths
// (kernels/launch.go, shared with the CUDA emulator kernels/cudaemu) and
// runs it.
func (d *Device) launch(plan func(lens []int) (kernels.Launch, error), bs ...kernels.Buffer) error {
	p, n, err := ptrs(bs...)
	if err != nil {
		return err
	}
	l, err := plan(n)
	if err != nil {
		return fmt.Errorf("cudev: %w", err)
	}
	return d.exec(l, p)
}

// exec runs the planned launch l on the operands' device pointers p (each
// parameter passed as 8 bytes, as cu's Launch copies) with l's grid and
// block, and checks the launch (and, in debug mode, the execution).
func (d *Device) exec(l kernels.Launch, p []*cu.DevicePtr) error {
	params := make([]unsafe.Pointer, len(l.Args))
	for i, a := range l.Args {
		switch a.Kind {
		case kernels.ArgBuffer:
			if a.Operand < 0 || a.Operand >= len(p) {
				return fmt.Errorf("cudev: kernel %s argument %d: operand %d of %d", l.Kernel, i, a.Operand, len(p))
			}
			params[i] = unsafe.Pointer(p[a.Operand])
		case kernels.ArgIndices:
			ip := d.idx
			params[i] = unsafe.Pointer(&ip)
		case kernels.ArgInt:
			v := a.Int
			params[i] = unsafe.Pointer(&v)
		case kernels.ArgFloat:
			v := a.Float
			params[i] = unsafe.Pointer(&v)
		default:
			return fmt.Errorf("cudev: kernel %s argument %d of kind %v", l.Kernel, i, a.Kind)
		}
	}
	fn, ok := d.fns[l.Kernel]
	if !ok {
		return fmt.Errorf("cudev: no kernel %s", l.Kernel)
	}
	grid := l.Grid(d.sms)
	return d.do(func() error {
		if err := fn.Launch(grid, 1, 1, kernels.LaunchBlock, 1, 1, 0, cu.Stream{}, params); err != nil {
			return fmt.Errorf("launch %s: %w", l.Kernel, err)
		}
		if d.debug {
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("kernel %s: %w", l.Kernel, err)
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

// Gather copies pool rows and one-hot labels on the device; the indices go
// through a scratch buffer grown as needed.
func (d *Device) Gather(x, y, pool, labels kernels.Buffer, idx []int32, dim, classes int) error {
	p, l, err := ptrs(x, y, pool, labels)
	if err != nil {
		return err
	}
	lc, err := kernels.GatherLaunch(l, idx, dim, classes)
	if err != nil {
		return fmt.Errorf("cudev: %w", err)
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
	return d.exec(lc, p)
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
