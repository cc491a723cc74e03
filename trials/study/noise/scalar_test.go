package noise

import (
	"math"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

// scalarLoss is the mean loss of a (any family: dense layers, convolutions
// with or without padding) over the examples x with labels y, with every
// value rounded to f the way kernels.Rounding rounds the walker's, one
// scalar at a time: inputs and parameters rounded; each output's product
// accumulated in float64 and rounded to float32 (a float32 accumulator's
// result up to its own summation error, which moves a value of f only
// when it lies next to a rounding boundary); round(s·z + round(b)) for the
// fused layer, round(tanh(·)) after it; each example's loss computed in
// float64 from the rounded logits and rounded to float32; their mean in
// float64. For f = Float64 nothing is rounded.
//
// The layouts are the model's definition (nets.Arch.Forward): a
// convolution's weight row is (c·K + ky)·K + kx, its input and output
// maps are channel-major (c, y, x), and the first dense layer after a
// convolution reads the maps in (y, x, c) order.
func scalarLoss(a *nets.Arch, f precision.Format, theta, x []float64, y []uint8) float64 {
	layers, err := a.Layers()
	if err != nil {
		panic(err)
	}
	off := []int{0}
	for _, p := range a.Params {
		off = append(off, off[len(off)-1]+p.Size())
	}
	r := f.Round
	acc32 := func(v float64) float64 {
		if f == precision.Float64 {
			return v
		}
		return float64(float32(v))
	}
	sum := 0.0
	for i := range y {
		h := make([]float64, a.Dim())
		for j := range h {
			h[j] = r(x[i*a.Dim()+j])
		}
		maps := 0 // the channels of h when it holds a convolution's maps
		for _, l := range layers {
			w := func(row, o int) float64 { return r(theta[off[l.W]+row*l.Out+o]) }
			out := func(z float64, o int) float64 {
				v := r(acc32(z)*l.Scale + r(theta[off[l.B]+o]))
				if l.Tanh {
					v = r(math.Tanh(v))
				}
				return v
			}
			if l.Conv {
				z := make([]float64, l.Out*l.OutH*l.OutW)
				for o := 0; o < l.Out; o++ {
					for oy := 0; oy < l.OutH; oy++ {
						for ox := 0; ox < l.OutW; ox++ {
							acc := 0.0
							for c := 0; c < l.InC; c++ {
								for ky := 0; ky < l.K; ky++ {
									for kx := 0; kx < l.K; kx++ {
										iy, ix := oy*l.Stride+ky-l.Pad, ox*l.Stride+kx-l.Pad
										if iy < 0 || ix < 0 || iy >= l.InH || ix >= l.InW {
											continue
										}
										acc += h[(c*l.InH+iy)*l.InW+ix] * w((c*l.K+ky)*l.K+kx, o)
									}
								}
							}
							z[(o*l.OutH+oy)*l.OutW+ox] = out(acc, o)
						}
					}
				}
				h, maps = z, l.Out
				continue
			}
			if maps > 0 { // (c, y, x) maps to the dense layer's (y, x, c) row
				prev, hw := h, len(h)/maps
				h = make([]float64, len(prev))
				for ch := 0; ch < maps; ch++ {
					for p := 0; p < hw; p++ {
						h[p*maps+ch] = prev[ch*hw+p]
					}
				}
				maps = 0
			}
			z := make([]float64, l.Out)
			for o := range z {
				acc := 0.0
				for k := 0; k < l.In; k++ {
					acc += h[k] * w(k, o)
				}
				z[o] = out(acc, o)
			}
			h = z
		}
		mx := h[0]
		for _, v := range h {
			mx = max(mx, v)
		}
		s := 0.0
		for _, v := range h {
			s += math.Exp(v - mx)
		}
		sum += acc32(math.Log(s) - (h[y[i]] - mx))
	}
	return sum / float64(len(y))
}

// TestWalkerMatchesScalarReference compares the walker's losses (the
// rounding CPU device for bf16 and fp16) with scalarLoss on a tiny MLP
// (exactly: the same numbers of the format, so the losses agree to the
// float32 rounding of the per-example losses), and on logistic regression,
// the paper's convnet and a depth-3 convnet (with its padded 3×3 layer) to
// engineTol (a float32 sum that differs from the reference's lands on the
// other side of a rounding boundary now and then); every low-precision
// loss differs from float64's by at most 50 units of the format's
// roundoff, and by something.
func TestWalkerMatchesScalarReference(t *testing.T) {
	for _, c := range []struct {
		name    string
		c, h, w int
		s       nets.Size
		n       int
		exact   bool
	}{
		{"mlp", 1, 4, 4, nets.Size{Width: 5, Depth: 2}, 11, true},
		{"logistic", 1, 28, 28, nets.Size{}, 20, false},
		{"convnet", 1, 28, 28, nets.Size{}, 12, false},
		{"convnet", 1, 28, 28, nets.Size{Width: 6, Depth: 3}, 8, false},
	} {
		a, x, y, theta := engineCase(t, c.name, c.c, c.h, c.w, c.s, c.n)
		ref64 := scalarLoss(a, precision.Float64, theta, x, y)
		for _, f := range []precision.Format{precision.Float64, precision.Float32, precision.BFloat16, precision.Float16} {
			e, used, err := NewEvaluator(EngineAuto, a, f, x, y, 2)
			if err != nil {
				t.Fatalf("%s %s: %v", c.name, f, err)
			}
			if used != EngineWalker {
				t.Fatalf("%s %s: engine %s, want the walker", c.name, f, used)
			}
			got := make([]float64, 1)
			if err := e.Losses([][]float64{theta}, got); err != nil {
				t.Fatalf("%s %s: %v", c.name, f, err)
			}
			e.Close()
			want := scalarLoss(a, f, theta, x, y)
			tol, _ := engineTol(f)
			if c.exact && f != precision.Float64 {
				tol = 1e-6
			}
			d := math.Abs(got[0] - want)
			t.Logf("%s %s: walker %.10g, scalar reference %.10g (relative %.2g); float64 %.10g", a.Name, f, got[0], want, d/want, ref64)
			if !(d <= tol*want) {
				t.Errorf("%s %s: loss %.10g, scalar reference %.10g (relative %.2g > %.2g)", a.Name, f, got[0], want, d/want, tol)
			}
			if f == precision.Float64 {
				continue
			}
			if d64 := math.Abs(got[0] - ref64); d64 == 0 || d64 > 50*f.UnitRoundoff()*ref64 {
				t.Errorf("%s %s: loss %.10g differs from float64's %.10g by %.3g (unit roundoff %.3g)", a.Name, f, got[0], ref64, d64, f.UnitRoundoff())
			}
		}
	}
}

// TestGradNoiseShrinksWithPrecision checks the walker's gradients in each
// format against its float64 gradient (which graph's tests check against
// finite differences): the relative difference is above a sixty-fourth of
// the format's unit roundoff and below eight of them in bf16 and fp16 (64
// in float32, whose error comes from the sums, the convnet's first layer
// summing 144 positions of 64 examples, rather than from rounding the
// values), and shrinks from bf16 to fp16 to float32.
func TestGradNoiseShrinksWithPrecision(t *testing.T) {
	for _, name := range []string{"logistic", "convnet"} {
		a, x, y, theta := engineCase(t, name, 1, 28, 28, nets.Size{}, 64)
		grad := func(f precision.Format) []float64 {
			e, _, err := NewEvaluator(EngineAuto, a, f, x, y, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			g := make([]float64, len(theta))
			if _, err := e.Grad(theta, g); err != nil {
				t.Fatalf("%s %s: %v", name, f, err)
			}
			return g
		}
		g64 := grad(precision.Float64)
		prev := math.Inf(1)
		for _, f := range []precision.Format{precision.BFloat16, precision.Float16, precision.Float32} {
			g := grad(f)
			var dn, n float64
			for i := range g {
				dn += (g[i] - g64[i]) * (g[i] - g64[i])
				n += g64[i] * g64[i]
			}
			rel, u := math.Sqrt(dn/n), f.UnitRoundoff()
			t.Logf("%s %s: gradient relative difference %.3g (%.2g unit roundoffs)", name, f, rel, rel/u)
			hi := 8.0
			if f == precision.Float32 {
				hi = 64
			}
			if !(rel > u/64 && rel < hi*u) || !(rel < prev) {
				t.Errorf("%s %s: gradient relative difference %.3g, unit roundoff %.3g (previous format %.3g)", name, f, rel, u, prev)
			}
			prev = rel
		}
	}
}
