package noise

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

// engineCase returns model name of c channels of h×w images (size s),
// n random examples and its parameters of initialisation 1 with random
// biases (engineTheta).
func engineCase(t *testing.T, name string, c, h, w int, s nets.Size, n int) (a *nets.Arch, x []float64, y []uint8, theta []float64) {
	t.Helper()
	a, err := nets.NewSized(name, c, h, w, 10, s)
	if err != nil {
		t.Fatal(err)
	}
	x, y = engineData(a, n)
	return a, x, y, engineTheta(t, a)
}

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
// (rounding) CPU device and the scalar reference (scalarLoss), relative to
// the loss (and to the gradient's norm, where a test has a reference
// gradient). float64 and float32 differ only in the products' summation
// order and the tanh (math against fastmath), so by a few units of the
// last place; bf16 and fp16 apply the same roundings at the same places
// (kernels.Rounding), and the different float32 sums move a value across
// a rounding boundary of the format now and then, by one unit u of the
// format: the loss, an average over examples and outputs of such flips,
// moves by a small fraction of u.
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

// TestEngineAuto: the default engine is the walker, its losses are the
// scalar reference's within engineTol, and other engines are refused.
func TestEngineAuto(t *testing.T) {
	for _, c := range []struct {
		name string
		s    nets.Size
	}{{"logistic", nets.Size{}}, {"mlp", nets.Size{Width: 12, Depth: 2}}} {
		a, x, y, theta := engineCase(t, c.name, 1, 28, 28, c.s, 40)
		e, used, err := NewEvaluator(EngineAuto, a, precision.BFloat16, x, y, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: engine %s", c.name, used)
		if used != EngineWalker {
			t.Errorf("%s on engine %s, want the walker (the default)", c.name, used)
		}
		got := make([]float64, 1)
		if err := e.Losses([][]float64{theta}, got); err != nil {
			t.Fatal(err)
		}
		want := scalarLoss(a, precision.BFloat16, theta, x, y)
		if tl, _ := engineTol(precision.BFloat16); math.Abs(got[0]-want) > tl*want {
			t.Errorf("%s: loss %v, scalar reference %v", c.name, got[0], want)
		}
		for _, eng := range []Engine{"gpu", "emulate"} {
			if _, _, err := NewEvaluator(eng, a, precision.BFloat16, x, y, 1); err == nil {
				t.Errorf("engine %s accepted", eng)
			}
		}
		e.Close()
	}
}
