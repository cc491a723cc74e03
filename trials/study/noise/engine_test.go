package noise

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

func engineData(a *nets.Arch, n int) ([]float64, []uint8) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, n*a.Dim())
	for i := range x {
		x[i] = r.NormFloat64()
	}
	y := make([]uint8, n)
	for i := range y {
		y[i] = uint8(r.IntN(a.Classes))
	}
	return x, y
}

func engineTheta(t *testing.T, a *nets.Arch) []float64 {
	v, err := a.Init(1)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, p := range v {
		out = append(out, p...)
	}
	r := rand.New(rand.NewPCG(1, 9))
	o := 0
	for _, p := range a.Params {
		if p.Bias { // non-zero biases, so that their gradients are tested
			for j := 0; j < p.Size(); j++ {
				out[o+j] = 0.3 * r.NormFloat64()
			}
		}
		o += p.Size()
	}
	return out
}

// engineTol is the agreement required between the walker on the
// (rounding) CPU device and nets/emulate, relative to the loss and to the
// gradient's norm. float64 and float32 differ only in the products'
// summation order (gonum's Go BLAS against OpenBLAS) and the tanh (math
// against fastmath), so by a few units of the last place; bf16 and fp16
// apply the same roundings at the same places (kernels.Rounding), and the
// different float32 sums move a value across a rounding boundary of the
// format now and then, by one unit u of the format: the loss, an average
// over examples and outputs of such flips, moves by a small fraction of u,
// the gradient (and its rounding of the mean over the examples, which the
// walker computes from per-chunk gradients rounded to the format) by up to
// about u in relative norm.
func engineTol(f precision.Format) (loss, grad float64) {
	switch f {
	case precision.Float64:
		return 1e-13, 1e-12
	case precision.Float32:
		return 1e-6, 1e-5
	}
	u := f.UnitRoundoff()
	return u / 4, 2 * u
}

// TestWalkerMatchesEmulate compares the losses and gradients of the
// walker (graph.DeviceEval and graph.DeviceNet on kernels.NewCPU, or
// kernels.Rounding of it for bf16 and fp16) with nets/emulate's.
func TestWalkerMatchesEmulate(t *testing.T) {
	for _, name := range []string{"logistic", "convnet"} {
		a, err := nets.NewSized(name, 1, 28, 28, 10, nets.Size{})
		if err != nil {
			t.Fatal(err)
		}
		x, y := engineData(a, 300)
		theta := engineTheta(t, a)
		r := rand.New(rand.NewPCG(5, 6))
		th2, th3 := append([]float64(nil), theta...), append([]float64(nil), theta...)
		for i := range th2 {
			d := r.NormFloat64()
			th2[i] += 1e-3 * d
			th3[i] += 2e-3 * d
		}
		for _, f := range []precision.Format{precision.Float64, precision.Float32, precision.BFloat16, precision.Float16} {
			w, used, err := NewEvaluator(EngineWalker, a, f, x, y, 2)
			if err != nil {
				t.Fatalf("%s %s: %v", name, f, err)
			}
			if used != EngineWalker {
				t.Fatalf("%s %s: engine %s", name, f, used)
			}
			e, _, err := NewEvaluator(EngineEmulate, a, f, x, y, 2)
			if err != nil {
				t.Fatal(err)
			}
			tl, tg := engineTol(f)
			lw, le := make([]float64, 4), make([]float64, 4)
			vs := [][]float64{theta, th2, th3, theta}
			if err := w.Losses(vs, lw); err != nil {
				t.Fatalf("%s %s: %v", name, f, err)
			}
			if err := e.Losses(vs, le); err != nil {
				t.Fatal(err)
			}
			one := make([]float64, 1)
			if err := w.Losses(vs[:1], one); err != nil {
				t.Fatal(err)
			}
			if math.Float64bits(one[0]) != math.Float64bits(lw[0]) || lw[3] != lw[0] {
				t.Errorf("%s %s: θ's loss %v alone, %v and %v in a batch", name, f, one[0], lw[0], lw[3])
			}
			for k := range vs {
				if d := math.Abs(lw[k] - le[k]); d > tl*le[k] {
					t.Errorf("%s %s: loss %d walker %.10g, emulate %.10g (relative %.2g > %.2g)", name, f, k, lw[k], le[k], d/le[k], tl)
				}
			}
			gw, ge := make([]float64, len(theta)), make([]float64, len(theta))
			lgw, err := w.Grad(theta, gw)
			if err != nil {
				t.Fatalf("%s %s gradient: %v", name, f, err)
			}
			lge, err := e.Grad(theta, ge)
			if err != nil {
				t.Fatal(err)
			}
			var dn, n float64
			for i := range gw {
				if math.IsNaN(gw[i]) {
					t.Fatalf("%s %s: NaN gradient at %d", name, f, i)
				}
				dn += (gw[i] - ge[i]) * (gw[i] - ge[i])
				n += ge[i] * ge[i]
			}
			rel := math.Sqrt(dn / n)
			t.Logf("%s %s: loss walker %.10g emulate %.10g (relative %.2g); gradient relative difference %.2g (gradient loss %.8g, %.8g)",
				name, f, lw[0], le[0], math.Abs(lw[0]-le[0])/le[0], rel, lgw, lge)
			if rel > tg {
				t.Errorf("%s %s: gradient relative difference %.2g > %.2g", name, f, rel, tg)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestEngineAuto: the default engine is the walker, and its losses are
// emulate's within engineTol.
func TestEngineAuto(t *testing.T) {
	for _, c := range []struct {
		name string
		s    nets.Size
	}{{"logistic", nets.Size{}}, {"mlp", nets.Size{Width: 12, Depth: 2}}} {
		a, err := nets.NewSized(c.name, 1, 28, 28, 10, c.s)
		if err != nil {
			t.Fatal(err)
		}
		x, y := engineData(a, 40)
		theta := engineTheta(t, a)
		e, used, err := NewEvaluator(EngineAuto, a, precision.BFloat16, x, y, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: engine %s", c.name, used)
		if used != EngineWalker {
			t.Errorf("%s on engine %s, want the walker (the default)", c.name, used)
		}
		ref, _, err := NewEvaluator(EngineEmulate, a, precision.BFloat16, x, y, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, want := make([]float64, 1), make([]float64, 1)
		if err := e.Losses([][]float64{theta}, got); err != nil {
			t.Fatal(err)
		}
		if err := ref.Losses([][]float64{theta}, want); err != nil {
			t.Fatal(err)
		}
		if tl, _ := engineTol(precision.BFloat16); math.Abs(got[0]-want[0]) > tl*want[0] {
			t.Errorf("%s: loss %v, walker %v", c.name, got[0], want[0])
		}
		if _, _, err := NewEvaluator("gpu", a, precision.BFloat16, x, y, 1); err == nil {
			t.Errorf("engine gpu accepted")
		}
		e.Close()
	}
}
