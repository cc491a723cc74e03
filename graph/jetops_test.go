package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// tanhRef is coefficient k of tanh(z(t)) by Faà di Bruno's formula with
// tanh's first three derivatives d1 = q = 1 − y², d2 = −2yq and
// d3 = q(6y² − 2): y_1 = d1 z_1, y_2 = d1 z_2 + d2 z_1²/2,
// y_3 = d1 z_3 + d2 z_1 z_2 + d3 z_1³/6.
func tanhRef(z [4]float64, k int) float64 {
	y := math.Tanh(z[0])
	q := 1 - y*y
	d1, d2, d3 := q, -2*y*q, q*(6*y*y-2)
	switch k {
	case 1:
		return d1 * z[1]
	case 2:
		return d1*z[2] + d2*z[1]*z[1]/2
	}
	return d1*z[3] + d2*z[1]*z[2] + d3*z[1]*z[1]*z[1]/6
}

// lseRef is coefficient k of logsumexp(z(t)) by the cumulants of the
// tilt under p = softmax(z_0): L_1 = E z_1, L_2 = E z_2 + Var z_1/2,
// L_3 = E z_3 + Cov(z_1, z_2) + E(z_1 − E z_1)³/6.
func lseRef(z [4][]float64, k int) float64 {
	if k == 0 {
		return logSumExp(z[0])
	}
	lse := logSumExp(z[0])
	var m [4]float64
	p := make([]float64, len(z[0]))
	for c := range p {
		p[c] = math.Exp(z[0][c] - lse)
		for n := 1; n <= 3; n++ {
			m[n] += p[c] * z[n][c]
		}
	}
	var v1, c12, k3 float64
	for c := range p {
		d1, d2 := z[1][c]-m[1], z[2][c]-m[2]
		v1 += p[c] * d1 * d1
		c12 += p[c] * d1 * d2
		k3 += p[c] * d1 * d1 * d1
	}
	switch k {
	case 1:
		return m[1]
	case 2:
		return m[2] + v1/2
	}
	return m[3] + c12 + k3/6
}

// tanhRule runs tanhSeries for coefficient k.
func tanhRule(z [4]float64, k int) float64 {
	var y, q [4]float64
	y[0] = math.Tanh(z[0])
	tanhSeries(&y, &q, &z, k)
	return y[k]
}

// lseRule runs lseSeries for coefficient k (mask: which z_n are set).
func lseRule(w *lseScratch, z [4][]float64, k int) float64 {
	for n := range z {
		w.zs[n] = n <= k
		copy(w.z[n], z[n])
	}
	l0 := lseSeries(w, k)
	if k == 0 {
		return l0
	}
	return w.l[k]
}

// TestJetRules checks every propagation rule of jetops.go against a slow
// reference, in one table: the tanh and log-sum-exp recurrences (and
// tanh's unrolled closed form, which the forward op runs) against
// Faà di Bruno's formula and the cumulant formulas (1e-14 relative; 1e-12
// for logits of size 1000, whose softmax is only known to 1000·ε), and
// their reverse sweeps against central differences of the recurrences
// with respect to every input (step 1e-6, 1e-8 relative to the largest
// adjoint). Inputs: random series with coefficients of size 1 (and, for
// the log-sum-exp, logits shifted by 1000, which the max shift must
// absorb).
func TestJetRules(t *testing.T) {
	const C = 5
	randSeries := func(r *rand.Rand, shift float64) [4][]float64 {
		var z [4][]float64
		for n := range z {
			z[n] = randomVec(C, r)
		}
		for c := range z[0] {
			z[0][c] += shift
		}
		return z
	}
	rules := []struct {
		name  string
		check func(t *testing.T, r *rand.Rand, k int) (err, scale float64)
		tol   float64
	}{
		{"tanh", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			var z [4]float64
			for n := range z {
				z[n] = r.NormFloat64()
			}
			got, want := tanhRule(z, k), tanhRef(z, k)
			return math.Abs(got - want), math.Abs(want)
		}, 1e-14},
		{"tanh, closed form", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			var z [4]float64
			for n := range z {
				z[n] = r.NormFloat64()
			}
			got, want := tanhCoeff(k, math.Tanh(z[0]), z[1], z[2], z[3]), tanhRef(z, k)
			return math.Abs(got - want), math.Abs(want)
		}, 1e-14},
		{"tanh adjoint", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			var z [4]float64
			for n := range z {
				z[n] = r.NormFloat64()
			}
			var y, q, dz [4]float64
			y[0] = math.Tanh(z[0])
			tanhSeries(&y, &q, &z, k)
			g := r.NormFloat64()
			dy0 := tanhSeriesAdjoint(&y, &q, &z, k, g, &dz)
			// Differences with respect to y_0 (through z_0 = atanh y_0)
			// and to z_1..z_k.
			const h = 1e-6
			f := func(y0 float64, z [4]float64) float64 {
				var y, q [4]float64
				y[0] = y0
				tanhSeries(&y, &q, &z, k)
				return g * y[k]
			}
			err := math.Abs(dy0 - (f(y[0]+h, z)-f(y[0]-h, z))/(2*h))
			scale := math.Abs(dy0)
			for n := 1; n <= k; n++ {
				zp, zm := z, z
				zp[n] += h
				zm[n] -= h
				fd := (f(y[0], zp) - f(y[0], zm)) / (2 * h)
				err = math.Max(err, math.Abs(dz[n]-fd))
				scale = math.Max(scale, math.Abs(dz[n]))
			}
			return err, scale
		}, 1e-8},
		{"logsumexp", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			z := randSeries(r, 0)
			w := newLSEScratch(C)
			got, want := lseRule(w, z, k), lseRef(z, k)
			return math.Abs(got - want), math.Abs(want)
		}, 1e-14},
		{"logsumexp shifted by 1000", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			z := randSeries(r, 1000)
			w := newLSEScratch(C)
			got, want := lseRule(w, z, k), lseRef(z, k)
			return math.Abs(got - want), math.Abs(want)
		}, 1e-12}, // z_0 − logsumexp(z_0) is rounded to 1000·ε in both
		{"logsumexp adjoint", func(t *testing.T, r *rand.Rand, k int) (float64, float64) {
			z := randSeries(r, 0)
			w := newLSEScratch(C)
			lseRule(w, z, k)
			g := r.NormFloat64()
			lseSeriesAdjoint(w, k, g)
			const h = 1e-6
			var err, scale float64
			for n := 0; n <= k; n++ {
				for c := range C {
					zp, zm := z, z
					zp[n] = append([]float64(nil), z[n]...)
					zm[n] = append([]float64(nil), z[n]...)
					zp[n][c] += h
					zm[n][c] -= h
					v := newLSEScratch(C)
					fd := g * (lseRule(v, zp, k) - lseRule(v, zm, k)) / (2 * h)
					err = math.Max(err, math.Abs(w.dz[n][c]-fd))
					scale = math.Max(scale, math.Abs(w.dz[n][c]))
				}
			}
			return err, scale
		}, 1e-8},
	}
	for _, rule := range rules {
		t.Run(rule.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(101, 102))
			for k := 0; k <= jetOrder; k++ {
				if k == 0 && rule.name[:4] == "tanh" {
					continue // y_0 = tanh(z_0) is the affine op's
				}
				worst := 0.0
				for trial := range 20 {
					err, scale := rule.check(t, r, k)
					if err > rule.tol*scale {
						t.Errorf("order %d, trial %d: error %.3g, scale %.3g", k, trial, err, scale)
					}
					if scale > 0 {
						worst = math.Max(worst, err/scale)
					}
				}
				t.Logf("order %d: max relative error %.2g", k, worst)
			}
		})
	}
}

// TestJetKernelsMasked checks the ops' handling of zero coefficients: a
// tanhJetKernel or lseJetKernel given only some coefficients equals the
// one given all, with zeros for the others, on tensors of both dtypes.
func TestJetKernelsMasked(t *testing.T) {
	r := rand.New(rand.NewPCG(111, 112))
	shape := []int{2, 3, 4}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		mk := func(zero bool) *tensor.Dense {
			x := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
			if !zero {
				setVec(x, 0, randomVec(24, r))
			}
			return x
		}
		get := func(x *tensor.Dense) []float64 {
			out := make([]float64, x.Shape().TotalSize())
			getVec(out, x, 0)
			return out
		}
		z := []*tensor.Dense{mk(false), mk(false), mk(false), mk(false)}
		zero := mk(true)
		for _, mask := range []jetMask{0b0010, 0b0110, 0b1010, 0b1110} {
			var in, full []*tensor.Dense
			in = append(in, z[0])
			full = append(full, z[0])
			for n := 1; n <= 3; n++ {
				if mask.has(n) {
					in = append(in, z[n])
					full = append(full, z[n])
				} else {
					full = append(full, zero)
				}
			}
			for _, tc := range []struct {
				name       string
				part, all  kernel
				outPartial *tensor.Dense
				outFull    *tensor.Dense
			}{
				{"tanh", tanhJetKernel{3, mask}, tanhJetKernel{3, 0b1110}, mk(true), mk(true)},
				{"logsumexp", lseJetKernel{3, mask}, lseJetKernel{3, 0b1110},
					tensor.New(tensor.Of(dt), tensor.WithShape(2, 3)), tensor.New(tensor.Of(dt), tensor.WithShape(2, 3))},
			} {
				if err := tc.part.run(tc.outPartial, in); err != nil {
					t.Fatal(err)
				}
				if err := tc.all.run(tc.outFull, full); err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(get(tc.outPartial), get(tc.outFull)); d != 0 {
					t.Errorf("%v %s mask %v: differs from the full series by %.3g", dt, tc.name, mask, d)
				}
			}
		}
	}
}
