package kernels

import (
	"slices"
	"strings"
	"testing"
)

// TestLaunchGrid: one thread per work item in blocks of LaunchBlock, at
// least one block, at most 32 per multiprocessor.
func TestLaunchGrid(t *testing.T) {
	for _, c := range []struct{ n, sms, want int }{
		{0, 132, 1}, {1, 132, 1}, {256, 132, 1}, {257, 132, 2}, {1 << 20, 132, 4096}, {1 << 30, 132, 4224},
		{1 << 20, 1, 32}, {1 << 20, 0, 32},
	} {
		if g := (Launch{N: c.n}).Grid(c.sms); g != c.want {
			t.Errorf("grid of %d items on %d SMs: %d, want %d", c.n, c.sms, g, c.want)
		}
	}
}

// TestLaunchPlans: every kernel has a plan, plans name known kernels with
// their operands first, and wrong operand lengths are errors.
func TestLaunchPlans(t *testing.T) {
	conv := Conv{Trials: 2, Images: 3, C: 2, H: 6, W: 6, Size: 3, Stride: 1}
	must := func(l Launch, err error) Launch {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	plans := []Launch{
		FillLaunch(5, 1),
		must(BiasActLaunch([]int{24, 8}, 2, 3, 4, 1, false, true)),
		must(UnaryLaunch([]int{5, 5}, Exp)),
		must(BinaryLaunch([]int{5, 5, 5}, Mul)),
		must(TanhBackLaunch([]int{5, 5, 5})),
		must(TanhBack2Launch([]int{5, 5, 5, 5})),
		must(SumLaunch([]int{6, 24}, 2, 4, 3)),
		must(RepeatLaunch([]int{24, 6}, 2, 4, 3)),
		must(Im2colLaunch([]int{conv.ColsLen(), conv.ImagesLen()}, conv)),
		must(Col2imLaunch([]int{conv.ImagesLen(), conv.ColsLen()}, conv)),
		must(FlattenLaunch([]int{48, 48}, 2, 3, 4, 2, true)),
		must(LogSoftmaxLaunch([]int{30, 30}, 3, 10)),
		must(LogSoftmaxBackLaunch([]int{30, 30, 30}, 3, 10)),
		must(CrossEntropyLaunch([]int{6, 6, 60, 3}, 2, 3, 10)),
		must(GatherLaunch([]int{8, 20, 12, 3}, []int32{0, 2}, 4, 10)),
		must(TanhJetLaunch([]int{12, 12}, 2, 4)),
		RoundLaunch(5, FP16),
	}
	var seen []string
	for _, l := range plans {
		if !slices.Contains(KernelNames, l.Kernel) {
			t.Errorf("plan for unknown kernel %s", l.Kernel)
		}
		seen = append(seen, l.Kernel)
		if len(l.Args) == 0 || l.Args[0] != (Arg{Kind: ArgBuffer, Operand: 0}) {
			t.Errorf("%s: first argument %+v, want operand 0", l.Kernel, l.Args)
		}
	}
	for _, k := range KernelNames {
		if !slices.Contains(seen, k) {
			t.Errorf("kernel %s has no plan in this test", k)
		}
	}
	for _, err := range []error{
		func() error { _, err := UnaryLaunch([]int{5, 4}, Neg); return err }(),
		func() error { _, err := Im2colLaunch([]int{conv.ColsLen() - 1, conv.ImagesLen()}, conv); return err }(),
		func() error { _, err := GatherLaunch([]int{8, 20, 12, 3}, []int32{0, 3}, 4, 10); return err }(),
		func() error { _, err := TanhJetLaunch([]int{68, 68}, 16, 4); return err }(),
	} {
		if err == nil {
			t.Error("bad operands: no error")
		}
	}
	if _, err := SumLaunch([]int{6, 23}, 2, 4, 3); err == nil || !strings.Contains(err.Error(), "sum_mid operand 1 has 23 elements, want 24") {
		t.Errorf("sum_mid on a short input: %v", err)
	}
}

// TestSource: the kernels' text is perturb.cu's, with every kernel.
func TestSource(t *testing.T) {
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range KernelNames {
		if !strings.Contains(src, "__global__ void "+k+"(") {
			t.Errorf("no kernel %s in the source", k)
		}
	}
}
