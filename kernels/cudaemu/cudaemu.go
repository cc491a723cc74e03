//go:build cgo

// Package cudaemu runs perturb's CUDA kernels on the CPU: the very text
// NVRTC compiles (kernels.Source, i.e. kernels/perturb.cu), compiled by the
// system C++ compiler after an emulation header (csrc/emu.h) that supplies
// __global__, threadIdx, blockIdx, blockDim, gridDim, __syncthreads, the
// atomics and the intrinsics, into a shared library loaded with dlopen.
// Device is a kernels.Device that launches each kernel exactly as the GPU
// device (kernels/cudev) does, from the launch plans of kernels/launch.go
// (kernel, grid and block, arguments in order as 8-byte slots), with its
// buffers in host memory; the products, which the GPU runs in cuBLAS, run
// in the CPU twin's float32 GEMM. It is a test device: the parity tests run
// the kernels and the walker's programs on it against kernels.CPU without
// a GPU (docs/gpu.md).
package cudaemu

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*emu_launch_fn)(const char *, int, int, const uint64_t *, const char *, int, int, char *, int);
typedef const char *(*emu_signature_fn)(const char *);

static int emu_call_launch(void *f, const char *name, int grid, int block, const uint64_t *args, const char *kinds,
	int workers, int fibers, char *err, int errn) {
	return ((emu_launch_fn)f)(name, grid, block, args, kinds, workers, fibers, err, errn);
}
static const char *emu_call_signature(void *f, const char *name) { return ((emu_signature_fn)f)(name); }
*/
import "C"

import (
	"embed"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/perturb/perturb/kernels"
)

//go:embed csrc/emu.h csrc/emu.cc csrc/selftest.cu
var csrc embed.FS

// ErrNoCompiler is returned (wrapped) by Open when no C++ compiler is
// found ($CXX, c++, g++, clang++).
var ErrNoCompiler = errors.New("no C++ compiler")

// Compiler returns the C++ compiler: $CXX when set, else the first of
// c++, g++ and clang++ on the PATH.
func Compiler() (string, error) {
	if cxx := os.Getenv("CXX"); cxx != "" {
		p, err := exec.LookPath(cxx)
		if err != nil {
			return "", fmt.Errorf("%w: $CXX=%s: %v", ErrNoCompiler, cxx, err)
		}
		return p, nil
	}
	for _, c := range []string{"c++", "g++", "clang++"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w on the PATH (c++, g++, clang++; or set CXX)", ErrNoCompiler)
}

// library is the loaded emulator.
type library struct {
	launch, signature unsafe.Pointer
	barriers          bool // the source uses __syncthreads: fiber mode
}

var (
	loadOnce sync.Once
	loaded   *library
	loadErr  error
)

// load builds and loads the emulator once per process.
func load() (*library, error) {
	loadOnce.Do(func() { loaded, loadErr = build() })
	return loaded, loadErr
}

// build writes kernels.Source as perturb.cu next to csrc's emu.h, emu.cc
// and selftest.cu (the emulator's own test kernels) in a temporary folder, compiles them into a shared library with
// -ffp-contract=off (no fused multiply-adds: every __fmul_rn, __fadd_rn
// rounds), warnings as errors, and loads it.
func build() (*library, error) {
	cxx, err := Compiler()
	if err != nil {
		return nil, err
	}
	src, err := kernels.Source()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cudaemu")
	if err != nil {
		return nil, fmt.Errorf("cudaemu: %w", err)
	}
	defer os.RemoveAll(dir)
	files := map[string][]byte{"perturb.cu": []byte(src)}
	for _, f := range []string{"emu.h", "emu.cc", "selftest.cu"} {
		if files[f], err = csrc.ReadFile("csrc/" + f); err != nil {
			return nil, fmt.Errorf("cudaemu: %w", err)
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("cudaemu: %w", err)
		}
	}
	so := filepath.Join(dir, "libcudaemu.so")
	cmd := exec.Command(cxx, "-std=c++20", "-O2", "-fPIC", "-shared", "-pthread", "-ffp-contract=off",
		"-Wall", "-Wextra", "-Werror", "-o", so, "emu.cc")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cudaemu: compile the kernels with %s: %w\n%s", cxx, err, out)
	}
	cso := C.CString(so)
	defer C.free(unsafe.Pointer(cso))
	h := C.dlopen(cso, C.RTLD_NOW|C.RTLD_LOCAL)
	if h == nil {
		return nil, fmt.Errorf("cudaemu: dlopen: %s", C.GoString(C.dlerror()))
	}
	lib := &library{barriers: strings.Contains(src, "__syncthreads")}
	for _, s := range []struct {
		name string
		p    *unsafe.Pointer
	}{{"emu_launch", &lib.launch}, {"emu_signature", &lib.signature}} {
		cn := C.CString(s.name)
		*s.p = C.dlsym(h, cn)
		C.free(unsafe.Pointer(cn))
		if *s.p == nil {
			return nil, fmt.Errorf("cudaemu: no symbol %s in the library", s.name)
		}
	}
	return lib, nil
}

// Options configure a Device.
type Options struct {
	// SMs is the number of multiprocessors the launch geometry assumes
	// (kernels.Launch.Grid: at most 32 blocks each); a small number makes
	// the grid-stride loops wrap. 1 when 0.
	SMs int
	// Workers is the number of OS threads that run a launch's blocks. 1
	// when 0.
	Workers int
	// Fibers runs every launch in fiber mode (each CUDA thread of a block
	// in its own fiber, switched at __syncthreads), which is otherwise
	// used only when the kernels' source mentions __syncthreads.
	Fibers bool
}

// guard is the number of elements before and after every allocation that
// are checked after each launch (a write outside a buffer is an error).
const guard = 64

// guardBits is the guards' value: a NaN, so that a read outside a buffer
// spoils the result.
const guardBits = 0x7fa5a5a5

// alloc is an allocation in C memory with guards.
type alloc struct {
	raw   unsafe.Pointer
	n     int
	freed bool
}

func (a *alloc) data() unsafe.Pointer { return unsafe.Add(a.raw, 4*guard) }

func (a *alloc) guards() ([]uint32, []uint32) {
	all := unsafe.Slice((*uint32)(a.raw), a.n+2*guard)
	return all[:guard], all[guard+a.n:]
}

// buf is a buffer (or a view) of n float32.
type buf struct {
	a    *alloc
	n    int
	view bool
}

func (b *buf) Len() int { return b.n }

func (b *buf) f32() []float32 {
	if b.n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(b.a.data()), b.n)
}

// Device is the emulated GPU: the kernels of perturb.cu compiled for the
// CPU. It is not safe for concurrent use.
type Device struct {
	// Launcher runs the one-launch operations through launch.
	kernels.Launcher
	lib  *library
	opt  Options
	idx  unsafe.Pointer // Gather's row indices
	nidx int
	err  *C.char
}

var _ kernels.Device = (*Device)(nil)

// Open builds the emulator (once per process) and returns a device; the
// error wraps ErrNoCompiler when there is no C++ compiler.
func Open(opt Options) (*Device, error) {
	lib, err := load()
	if err != nil {
		return nil, err
	}
	for _, k := range kernels.KernelNames {
		cn := C.CString(k)
		s := C.emu_call_signature(lib.signature, cn)
		C.free(unsafe.Pointer(cn))
		if s == nil {
			return nil, fmt.Errorf("cudaemu: kernel %s of kernels.KernelNames is not in the emulator's table (csrc/emu.cc)", k)
		}
	}
	opt.SMs, opt.Workers = max(opt.SMs, 1), max(opt.Workers, 1)
	d := &Device{lib: lib, opt: opt, err: (*C.char)(C.malloc(1024))}
	d.Launcher = kernels.Launcher{Launch: d.launch}
	return d, nil
}

// Name says what runs the kernels.
func (d *Device) Name() string {
	mode := ""
	if d.lib.barriers || d.opt.Fibers {
		mode = ", fibers"
	}
	return fmt.Sprintf("CUDA emulator (perturb.cu on the CPU, %d SMs, %d workers%s)", d.opt.SMs, d.opt.Workers, mode)
}

// DType is float32, as on the GPU.
func (d *Device) DType() kernels.DType { return kernels.F32 }

// Alloc allocates n float32 between guards, NaN-filled (the contents of
// fresh device memory are undefined).
func (d *Device) Alloc(n int) (kernels.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("cudaemu: alloc of %d elements", n)
	}
	raw := C.malloc(C.size_t(4 * (n + 2*guard)))
	if raw == nil {
		return nil, fmt.Errorf("cudaemu: malloc of %d float32", n)
	}
	a := &alloc{raw: raw, n: n}
	all := unsafe.Slice((*uint32)(raw), n+2*guard)
	for i := range all {
		all[i] = guardBits
	}
	return &buf{a: a, n: n}, nil
}

func dbuf(b kernels.Buffer) (*buf, error) {
	g, ok := b.(*buf)
	if !ok {
		return nil, fmt.Errorf("cudaemu: buffer %T of another device", b)
	}
	if g.a.freed {
		return nil, fmt.Errorf("cudaemu: use of a freed buffer")
	}
	return g, nil
}

// Free releases a buffer.
func (d *Device) Free(b kernels.Buffer) error {
	g, err := dbuf(b)
	if err != nil {
		return err
	}
	if g.view {
		return fmt.Errorf("cudaemu: Free of a view (free the buffer it views)")
	}
	if err := checkGuards(g.a); err != nil {
		return fmt.Errorf("cudaemu: free: %w", err)
	}
	g.a.freed = true
	C.free(g.a.raw)
	return nil
}

// View returns the first n elements of b, sharing its memory.
func (d *Device) View(b kernels.Buffer, n int) (kernels.Buffer, error) {
	g, err := dbuf(b)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > g.n {
		return nil, fmt.Errorf("cudaemu: view of %d elements of a buffer of %d", n, g.n)
	}
	return &buf{a: g.a, n: n, view: true}, nil
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
		return fmt.Errorf("cudaemu: upload of %d at %d into %d", len(src), off, g.n)
	}
	copy(g.f32()[off:], src)
	return nil
}

// Download copies src[off:off+len(dst)] into dst.
func (d *Device) Download(dst []float64, src kernels.Buffer, off int) error {
	g, err := dbuf(src)
	if err != nil {
		return err
	}
	if off < 0 || off+len(dst) > g.n {
		return fmt.Errorf("cudaemu: download of %d at %d from %d", len(dst), off, g.n)
	}
	for i, v := range g.f32()[off : off+len(dst)] {
		dst[i] = float64(v)
	}
	return nil
}

// Copy copies n elements (cuMemcpyDtoD on the GPU).
func (d *Device) Copy(dst kernels.Buffer, dstOff int, src kernels.Buffer, srcOff, n int) error {
	a, err := dbuf(dst)
	if err != nil {
		return err
	}
	b, err := dbuf(src)
	if err != nil {
		return err
	}
	if n < 0 || dstOff < 0 || srcOff < 0 || dstOff+n > a.n || srcOff+n > b.n {
		return fmt.Errorf("cudaemu: copy of %d from %d of %d to %d of %d", n, srcOff, b.n, dstOff, a.n)
	}
	if n > 0 {
		copy(a.f32()[dstOff:dstOff+n], b.f32()[srcOff:srcOff+n])
	}
	return nil
}

// checkGuards returns an error if a kernel wrote outside allocation a, and
// restores its guards.
func checkGuards(a *alloc) error {
	lo, hi := a.guards()
	var bad []string
	for i, v := range lo {
		if v != guardBits {
			bad = append(bad, fmt.Sprintf("[%d]", i-guard))
			lo[i] = guardBits
		}
	}
	for i, v := range hi {
		if v != guardBits {
			bad = append(bad, fmt.Sprintf("[%d]", a.n+i))
			hi[i] = guardBits
		}
	}
	if len(bad) > 0 {
		if len(bad) > 8 {
			bad = append(bad[:8], "…")
		}
		return fmt.Errorf("write outside a buffer of %d elements, at %s", a.n, strings.Join(bad, " "))
	}
	return nil
}

// launch checks the operands, plans the launch from their lengths
// (kernels/launch.go, as the GPU device does) and runs it.
func (d *Device) launch(plan func(lens []int) (kernels.Launch, error), bs ...kernels.Buffer) error {
	gs, lens, err := bufs(bs...)
	if err != nil {
		return err
	}
	l, err := plan(lens)
	if err != nil {
		return fmt.Errorf("cudaemu: %w", err)
	}
	return d.exec(l, gs)
}

func bufs(bs ...kernels.Buffer) ([]*buf, []int, error) {
	gs, lens := make([]*buf, len(bs)), make([]int, len(bs))
	for i, b := range bs {
		g, err := dbuf(b)
		if err != nil {
			return nil, nil, fmt.Errorf("operand %d: %w", i, err)
		}
		gs[i], lens[i] = g, g.n
	}
	return gs, lens, nil
}

// Launch runs the planned launch l on the operands bs: the Device
// operations' path, open to the emulator's own test kernels
// (csrc/selftest.cu).
func (d *Device) Launch(l kernels.Launch, bs ...kernels.Buffer) error {
	gs, _, err := bufs(bs...)
	if err != nil {
		return err
	}
	return d.exec(l, gs)
}

// exec runs the planned launch l on the operands gs with the GPU's grid
// (for Options.SMs multiprocessors) and block, each argument an 8-byte
// slot, and checks the operands' guards afterwards.
func (d *Device) exec(l kernels.Launch, gs []*buf) error {
	if d.err == nil {
		return fmt.Errorf("cudaemu: launch %s on a closed device", l.Kernel)
	}
	args := make([]C.uint64_t, len(l.Args)+1)
	kinds := make([]byte, len(l.Args))
	for i, a := range l.Args {
		switch a.Kind {
		case kernels.ArgBuffer:
			if a.Operand < 0 || a.Operand >= len(gs) {
				return fmt.Errorf("cudaemu: kernel %s argument %d: operand %d of %d", l.Kernel, i, a.Operand, len(gs))
			}
			args[i], kinds[i] = C.uint64_t(uintptr(gs[a.Operand].a.data())), 'p'
		case kernels.ArgIndices:
			args[i], kinds[i] = C.uint64_t(uintptr(d.idx)), 'x'
		case kernels.ArgInt:
			args[i], kinds[i] = C.uint64_t(uint64(a.Int)), 'i'
		case kernels.ArgFloat:
			args[i], kinds[i] = C.uint64_t(math.Float64bits(a.Float)), 'd'
		default:
			return fmt.Errorf("cudaemu: kernel %s argument %d of kind %v", l.Kernel, i, a.Kind)
		}
	}
	name, ks := C.CString(l.Kernel), C.CString(string(kinds))
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(ks))
	fibers := 0
	if d.lib.barriers || d.opt.Fibers {
		fibers = 1
	}
	var errs []error
	if C.emu_call_launch(d.lib.launch, name, C.int(l.Grid(d.opt.SMs)), C.int(kernels.LaunchBlock), &args[0], ks,
		C.int(d.opt.Workers), C.int(fibers), d.err, 1024) != 0 {
		errs = append(errs, fmt.Errorf("cudaemu: launch %s: %s", l.Kernel, C.GoString(d.err)))
	}
	for i, g := range gs {
		if err := checkGuards(g.a); err != nil {
			errs = append(errs, fmt.Errorf("cudaemu: kernel %s operand %d: %w", l.Kernel, i, err))
		}
	}
	return errors.Join(errs...)
}

// Gemm runs the CPU twin's float32 product on the buffers' memory (cuBLAS
// is not emulated).
func (d *Device) Gemm(g kernels.Gemm, c, a, b kernels.Buffer) error {
	gs, _, err := bufs(c, a, b)
	if err != nil {
		return err
	}
	w := make([]kernels.Buffer, 3)
	for i, x := range gs {
		w[i] = kernels.WrapCPU(x.f32())
	}
	if err := (kernels.CPU[float32]{}).Gemm(g, w[0], w[1], w[2]); err != nil {
		return fmt.Errorf("cudaemu: %w", err)
	}
	return nil
}

// WithUniformProducts returns the emulator with its products routed as on
// kernels.WithUniformProducts's CPU device (graph's DeviceEval asks for
// it), so that the emulator's test loss stays the CPU twin's bit for bit.
func (d *Device) WithUniformProducts() kernels.Device { return uniformDevice{d} }

// uniformDevice is the emulator with the CPU twin's uniform routing of
// products.
type uniformDevice struct{ *Device }

// uniformCPU is the CPU device whose products uniformDevice runs.
var uniformCPU, _ = kernels.WithUniformProducts(kernels.NewCPU(kernels.F32))

// Gemm runs uniformCPU's product on the buffers' memory.
func (d uniformDevice) Gemm(g kernels.Gemm, c, a, b kernels.Buffer) error {
	gs, _, err := bufs(c, a, b)
	if err != nil {
		return err
	}
	w := make([]kernels.Buffer, 3)
	for i, x := range gs {
		w[i] = kernels.WrapCPU(x.f32())
	}
	if err := uniformCPU.Gemm(g, w[0], w[1], w[2]); err != nil {
		return fmt.Errorf("cudaemu: %w", err)
	}
	return nil
}

// Gather copies pool rows and one-hot labels; the indices go through a
// scratch array, as on the GPU.
func (d *Device) Gather(x, y, pool, labels kernels.Buffer, idx []int32, dim, classes int) error {
	gs, lens, err := bufs(x, y, pool, labels)
	if err != nil {
		return err
	}
	l, err := kernels.GatherLaunch(lens, idx, dim, classes)
	if err != nil {
		return fmt.Errorf("cudaemu: %w", err)
	}
	if len(idx) == 0 {
		return nil
	}
	if d.nidx < len(idx) {
		C.free(d.idx)
		if d.idx = C.malloc(C.size_t(4 * len(idx))); d.idx == nil {
			d.nidx = 0
			return fmt.Errorf("cudaemu: malloc of %d indices", len(idx))
		}
		d.nidx = len(idx)
	}
	copy(unsafe.Slice((*int32)(d.idx), len(idx)), idx)
	return d.exec(l, gs)
}

// SetTF32 reports that the emulator has no TF32 mode (it is cuBLAS's).
func (d *Device) SetTF32(bool) (bool, error) { return false, nil }

// Sync does nothing: launches run synchronously.
func (d *Device) Sync() error { return nil }

// Close frees the index scratch (the library stays loaded).
func (d *Device) Close() error {
	C.free(d.idx)
	d.idx, d.nidx = nil, 0
	C.free(unsafe.Pointer(d.err))
	d.err = nil
	return nil
}
