package kernels

import (
	"fmt"
	"io/fs"
	"strings"
)

// This file is the launch plan of the CUDA kernels of perturb.cu: for each
// Device operation that runs a kernel, which kernel, over how many work
// items, with which arguments in which order, after the same size checks.
// The GPU device (kernels/cudev) and the CUDA emulator that runs the very
// text of perturb.cu on the CPU (kernels/cudaemu) both launch from these
// plans, so the emulator's parity tests check the launches the GPU makes.

// LaunchBlock is the number of threads of every block of every launch.
const LaunchBlock = 256

// KernelNames lists the kernels of perturb.cu that the devices load.
var KernelNames = []string{"fill", "bias_act", "unary", "binary", "tanh_back", "tanh_back2", "sum_mid", "repeat_mid",
	"im2col", "col2im", "flatten", "log_softmax", "log_softmax_back", "cross_entropy", "gather", "tanh_jet", "round_to"}

// ArgKind is the kind of a kernel parameter. Every parameter is 8 bytes
// (gorgonia.org/cu's Launch copies 8 bytes per parameter).
type ArgKind int

// The parameter kinds.
const (
	// ArgBuffer is a float* to the memory of operand Arg.Operand.
	ArgBuffer ArgKind = iota
	// ArgIndices is an int* to Gather's row indices, which the device
	// copies to its memory before the launch.
	ArgIndices
	// ArgInt is a long long, Arg.Int.
	ArgInt
	// ArgFloat is a double, Arg.Float.
	ArgFloat
)

func (k ArgKind) String() string {
	switch k {
	case ArgBuffer:
		return "buffer"
	case ArgIndices:
		return "indices"
	case ArgInt:
		return "int"
	case ArgFloat:
		return "float"
	}
	return fmt.Sprintf("ArgKind(%d)", int(k))
}

// Arg is one kernel parameter.
type Arg struct {
	Kind    ArgKind
	Operand int // ArgBuffer: index of the operand in the operation's buffers
	Int     int64
	Float   float64
}

// Launch is one kernel launch: Kernel over N work items (its grid-stride
// loops cover them with any grid), with Args in the kernel's parameter
// order.
type Launch struct {
	Kernel string
	N      int
	Args   []Arg
}

// Grid is the number of blocks of LaunchBlock threads for a device of sms
// multiprocessors: one thread per work item, at most 32 blocks per
// multiprocessor (the grid-stride loops do the rest), at least one.
func (l Launch) Grid(sms int) int {
	return min(max((l.N+LaunchBlock-1)/LaunchBlock, 1), 32*max(sms, 1))
}

func bufArg(i int) Arg       { return Arg{Kind: ArgBuffer, Operand: i} }
func intArg(v int) Arg       { return Arg{Kind: ArgInt, Int: int64(v)} }
func floatArg(v float64) Arg { return Arg{Kind: ArgFloat, Float: v} }
func boolArg(v bool) Arg {
	if v {
		return intArg(1)
	}
	return intArg(0)
}

// bufArgs returns buffer arguments for operands 0..n-1.
func bufArgs(n int) []Arg {
	a := make([]Arg, n)
	for i := range a {
		a[i] = bufArg(i)
	}
	return a
}

// checkLens returns an error unless operand i has want[i] elements.
func checkLens(kernel string, got []int, want ...int) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d operands, want %d", kernel, len(got), len(want))
	}
	for i, w := range want {
		if got[i] != w {
			return fmt.Errorf("%s operand %d has %d elements, want %d", kernel, i, got[i], w)
		}
	}
	return nil
}

// plan returns the launch of kernel over n items after checking the
// operands' lengths lens against want; the arguments are the operands in
// order, then scalars.
func plan(kernel string, n int, lens, want []int, scalars ...Arg) (Launch, error) {
	if err := checkLens(kernel, lens, want...); err != nil {
		return Launch{}, err
	}
	return Launch{Kernel: kernel, N: n, Args: append(bufArgs(len(lens)), scalars...)}, nil
}

// FillLaunch plans Fill of a buffer of n elements (operand 0).
func FillLaunch(n int, v float64) Launch {
	return Launch{Kernel: "fill", N: n, Args: []Arg{bufArg(0), intArg(n), floatArg(v)}}
}

// BiasActLaunch plans BiasAct on operands (z, bias) of lengths lens.
func BiasActLaunch(lens []int, batch, m, n int, s float64, cm, act bool) (Launch, error) {
	nb := n
	if cm {
		nb = m
	}
	return plan("bias_act", batch*m*n, lens, []int{batch * m * n, batch * nb},
		intArg(batch), intArg(m), intArg(n), floatArg(s), boolArg(cm), boolArg(act))
}

// UnaryLaunch plans Unary on operands (out, in).
func UnaryLaunch(lens []int, f Unary) (Launch, error) {
	if len(lens) != 2 {
		return Launch{}, fmt.Errorf("unary: %d operands, want 2", len(lens))
	}
	return plan("unary", lens[0], lens, []int{lens[0], lens[0]}, intArg(lens[0]), intArg(int(f)))
}

// BinaryLaunch plans Binary on operands (out, a, b).
func BinaryLaunch(lens []int, f Binary) (Launch, error) {
	if len(lens) != 3 {
		return Launch{}, fmt.Errorf("binary: %d operands, want 3", len(lens))
	}
	return plan("binary", lens[0], lens, []int{lens[0], lens[0], lens[0]}, intArg(lens[0]), intArg(int(f)))
}

// TanhBackLaunch plans TanhBack on operands (out, t, g).
func TanhBackLaunch(lens []int) (Launch, error) {
	if len(lens) != 3 {
		return Launch{}, fmt.Errorf("tanh_back: %d operands, want 3", len(lens))
	}
	return plan("tanh_back", lens[0], lens, []int{lens[0], lens[0], lens[0]}, intArg(lens[0]))
}

// TanhBack2Launch plans TanhBack2 on operands (out, t, g, h).
func TanhBack2Launch(lens []int) (Launch, error) {
	if len(lens) != 4 {
		return Launch{}, fmt.Errorf("tanh_back2: %d operands, want 4", len(lens))
	}
	return plan("tanh_back2", lens[0], lens, []int{lens[0], lens[0], lens[0], lens[0]}, intArg(lens[0]))
}

// SumLaunch plans Sum on operands (out, in): one thread per output.
func SumLaunch(lens []int, outer, mid, inner int) (Launch, error) {
	return plan("sum_mid", outer*inner, lens, []int{outer * inner, outer * mid * inner}, intArg(outer), intArg(mid), intArg(inner))
}

// RepeatLaunch plans Repeat on operands (out, in).
func RepeatLaunch(lens []int, outer, reps, inner int) (Launch, error) {
	return plan("repeat_mid", outer*reps*inner, lens, []int{outer * reps * inner, outer * inner}, intArg(outer), intArg(reps), intArg(inner))
}

// convArgs are the geometry arguments of im2col and col2im.
func convArgs(c Conv) []Arg {
	return []Arg{intArg(c.Trials), intArg(c.Images), intArg(c.C), intArg(c.H), intArg(c.W), intArg(c.Size), intArg(c.Stride), intArg(c.Pad), boolArg(c.CBHW)}
}

// Im2colLaunch plans Im2col on operands (cols, images): one thread per
// patch entry.
func Im2colLaunch(lens []int, c Conv) (Launch, error) {
	return plan("im2col", c.ColsLen(), lens, []int{c.ColsLen(), c.ImagesLen()}, convArgs(c)...)
}

// Col2imLaunch plans Col2im on operands (images, cols): one thread per
// pixel.
func Col2imLaunch(lens []int, c Conv) (Launch, error) {
	return plan("col2im", c.ImagesLen(), lens, []int{c.ImagesLen(), c.ColsLen()}, convArgs(c)...)
}

// FlattenLaunch plans Flatten on operands (out, in).
func FlattenLaunch(lens []int, trials, c, images, p int, inverse bool) (Launch, error) {
	n := trials * c * images * p
	return plan("flatten", n, lens, []int{n, n}, intArg(trials), intArg(c), intArg(images), intArg(p), boolArg(inverse))
}

// LogSoftmaxLaunch plans LogSoftmax on operands (out, in): one thread per
// row.
func LogSoftmaxLaunch(lens []int, rows, c int) (Launch, error) {
	return plan("log_softmax", rows, lens, []int{rows * c, rows * c}, intArg(rows), intArg(c))
}

// LogSoftmaxBackLaunch plans LogSoftmaxBack on operands (out, y, g).
func LogSoftmaxBackLaunch(lens []int, rows, c int) (Launch, error) {
	return plan("log_softmax_back", rows, lens, []int{rows * c, rows * c, rows * c}, intArg(rows), intArg(c))
}

// CrossEntropyLaunch plans CrossEntropy on operands (loss, correct,
// logits, labels): one thread per row.
func CrossEntropyLaunch(lens []int, trials, rows, c int) (Launch, error) {
	return plan("cross_entropy", trials*rows, lens, []int{trials * rows, trials * rows, trials * rows * c, rows},
		intArg(trials), intArg(rows), intArg(c))
}

// GatherLaunch plans Gather on operands (x, y, pool, labels) with the row
// indices idx (an ArgIndices parameter after the operands), after checking
// that every index is a row of the pool. The device skips the launch when
// idx is empty.
func GatherLaunch(lens []int, idx []int32, dim, classes int) (Launch, error) {
	if len(lens) != 4 {
		return Launch{}, fmt.Errorf("gather: %d operands, want 4", len(lens))
	}
	if err := checkLens("gather", lens, len(idx)*dim, len(idx)*classes, lens[3]*dim, lens[3]); err != nil {
		return Launch{}, err
	}
	for _, r := range idx {
		if r < 0 || int(r) >= lens[3] {
			return Launch{}, fmt.Errorf("gather row %d outside the pool of %d", r, lens[3])
		}
	}
	args := append(bufArgs(4), Arg{Kind: ArgIndices}, intArg(len(idx)), intArg(dim), intArg(classes))
	return Launch{Kernel: "gather", N: len(idx) * max(dim, classes), Args: args}, nil
}

// TanhJetLaunch plans TanhJet of degree deg ≤ 15 on operands (t, z): one
// thread per element.
func TanhJetLaunch(lens []int, deg, n int) (Launch, error) {
	if deg < 0 || deg > 15 {
		return Launch{}, fmt.Errorf("tanh jet of degree %d (at most 15)", deg)
	}
	return plan("tanh_jet", n, lens, []int{(deg + 1) * n, (deg + 1) * n}, intArg(deg), intArg(n))
}

// RoundLaunch plans Round of a buffer of n elements (operand 0).
func RoundLaunch(n int, f Format) Launch {
	return Launch{Kernel: "round_to", N: n, Args: []Arg{bufArg(0), intArg(n), intArg(int(f))}}
}

// Source returns the CUDA C text of the kernels: every embedded .cu file
// (Sources) in path order, each followed by a newline. It is the text the
// GPU device compiles with NVRTC and the CUDA emulator with the system C++
// compiler.
func Source() (string, error) {
	var src strings.Builder
	err := fs.WalkDir(Sources, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := Sources.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		src.Write(b)
		src.WriteString("\n")
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the kernel sources: %w", err)
	}
	return src.String(), nil
}

// NVRTCOptions are the options with which the GPU device compiles Source
// with NVRTC for compute capability major.minor.
func NVRTCOptions(major, minor int) []string {
	return []string{fmt.Sprintf("--gpu-architecture=compute_%d%d", major, minor), "--std=c++11"}
}

// WrapCPU returns a buffer of the CPU device CPU[T] over d (sharing its
// memory): a device that keeps its buffers in host memory (the CUDA
// emulator) runs the CPU twin's operations on them through it.
func WrapCPU[T float](d []T) Buffer { return &cpuBuf[T]{d: d} }
