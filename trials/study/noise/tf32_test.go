package noise

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudaemu"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

// tf32Eval returns the loss of theta and a gradient in tf32 on gpu (nil:
// the CPU emulation), and what computed them.
func tf32Eval(t *testing.T, a *nets.Arch, x []float64, y []uint8, theta []float64, gpu kernels.Device) (float64, []float64, string) {
	t.Helper()
	e, used, err := NewEvaluatorOn(EngineAuto, a, precision.TF32, x, y, 2, gpu)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	if used != EngineWalker {
		t.Fatalf("tf32 on engine %s, want walker", used)
	}
	loss := make([]float64, 1)
	if err := e.Losses([][]float64{theta}, loss); err != nil {
		t.Fatal(err)
	}
	g := make([]float64, len(theta))
	if _, err := e.Grad(theta, g); err != nil {
		t.Fatal(err)
	}
	return loss[0], g, e.(interface{ Device() string }).Device()
}

// relDiff is |a − b| / |b| for scalars, or in norm for vectors.
func relDiff(a, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	return math.Sqrt(d / n)
}

// TestTF32Emulation runs tf32 through the walker on the CPU emulation
// (kernels.TF32Products): its loss and gradient differ from float32's by
// about tf32's unit roundoff (2^-11) and no more than a few times it, the
// parameters stay float32 (not rounded to tf32), and the retired emulate
// engine is refused with the fix.
func TestTF32Emulation(t *testing.T) {
	for _, name := range []string{"logistic", "convnet"} {
		a, x, y, theta := engineCase(t, name, 1, 28, 28, nets.Size{}, 64)
		l32e, _, err := NewEvaluator(EngineWalker, a, precision.Float32, x, y, 2)
		if err != nil {
			t.Fatal(err)
		}
		l32, g32 := make([]float64, 1), make([]float64, len(theta))
		if err := l32e.Losses([][]float64{theta}, l32); err != nil {
			t.Fatal(err)
		}
		if _, err := l32e.Grad(theta, g32); err != nil {
			t.Fatal(err)
		}
		l32e.Close()
		l, g, dev := tf32Eval(t, a, x, y, theta, nil)
		if !strings.Contains(dev, "tf32 products (emulated)") {
			t.Errorf("%s: device %q", name, dev)
		}
		u := precision.TF32.UnitRoundoff()
		dl, dg := math.Abs(l-l32[0])/l32[0], relDiff(g, g32)
		t.Logf("%s on %s: loss %.8g (float32 %.8g, %.2g relative), gradient %.2g relative; tf32's u = %.2g", name, dev, l, l32[0], dl, dg, u)
		if !(dl > 0 && dl < 4*u) || !(dg > 0 && dg < 16*u) {
			t.Errorf("%s: tf32 differs from float32 by %.2g (loss) and %.2g (gradient), want between 0 and a few u = %.2g", name, dl, dg, u)
		}
		for i, v := range g {
			if float64(float32(v)) != v {
				t.Fatalf("%s: gradient %d = %v is not a float32", name, i, v)
			}
		}
	}
	// A small scan: the tf32 result says what computed it.
	a, x, y, theta := engineCase(t, "logistic", 1, 28, 28, nets.Size{}, 32)
	sc, err := Run(a, 0, theta, Examples{X: x, Y: y}, Settings{Directions: 2, Steps: 8, HMin: 1e-6, HMax: 1e-1, Precisions: []precision.Format{precision.Float32, precision.TF32}, Workers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := sc.Precisions[1]; r.Format != precision.TF32 || !strings.Contains(r.Device, "tf32 products (emulated)") || sc.Precisions[0].Device != "" || !(r.Floor > 0) {
		t.Errorf("scan results: %v on %q (floor %g), %v on %q", r.Format, r.Device, r.Floor, sc.Precisions[0].Format, sc.Precisions[0].Device)
	}
	if err := (Settings{Precisions: []precision.Format{precision.TF32}, Engine: "emulate"}).Check(); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Errorf("the retired emulate engine: %v", err)
	}
	if err := (Settings{Precisions: []precision.Format{precision.TF32}}).Check(); err != nil {
		t.Errorf("tf32 on the default engine: %v", err)
	}
}

// TestTF32CUDAEmulation runs tf32 with the CUDA emulator as the GPU (it
// does not honour SetTF32, so the walker wraps it in
// kernels.TF32Products): the loss and gradient agree closely with the
// CPU emulation's (the two differ in their float32 tanh and summation
// orders, which move an operand across a tf32 rounding boundary now and
// then, not in what is rounded to tf32).
func TestTF32CUDAEmulation(t *testing.T) {
	emu, err := cudaemu.Open(cudaemu.Options{SMs: 1, Workers: 1})
	if errors.Is(err, cudaemu.ErrNoCompiler) {
		t.Skipf("CUDA emulation skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	a, x, y, theta := engineCase(t, "convnet", 1, 28, 28, nets.Size{}, 32)
	lc, gc, _ := tf32Eval(t, a, x, y, theta, nil)
	le, ge, dev := tf32Eval(t, a, x, y, theta, emu)
	dl, dg := math.Abs(le-lc)/lc, relDiff(ge, gc)
	t.Logf("%s: loss %.8g (CPU emulation %.8g, %.2g relative), gradient %.2g relative", dev, le, lc, dl, dg)
	if !strings.Contains(dev, "CUDA emulator") || !(dl < 1e-5) || !(dg < 1e-4) {
		t.Errorf("on %s: loss %.2g and gradient %.2g relative from the CPU emulation", dev, dl, dg)
	}
}
