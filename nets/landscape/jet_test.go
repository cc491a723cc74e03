package landscape

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/perturb/perturb/nets"
)

func dotv(x, y []float64) float64 {
	s := 0.0
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

func unit(n, i int) []float64 {
	e := make([]float64, n)
	e[i] = 1
	return e
}

// randomDir draws a direction of size about 1.
func randomDir(n int, r *rand.Rand) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

// TestJetGaussValues checks Gauss's jet at h = 0.3 along a = 0.7 for
// x = 1.2 against values computed independently (E = x² e^{−h}/2: c_0 =
// h/2 + E, c_1 = a/2 − Ea, c_2 = Ea²/2, c_3 = −Ea³/6; covectors 1/2 − E,
// Ea, −Ea²/2, Ea³/6), to 1e-15.
func TestJetGaussValues(t *testing.T) {
	l := mustNew(t, "gauss", Options{}, false)
	theta, v, x := []float64{0.3}, []float64{0.7}, 1.2
	want := [4]float64{0.6833891188908369, -0.023372383223585813, 0.13068033412825503, -0.030492077963259496}
	wantCov := [4]float64{-0.033389118890836844, 0.3733723832235858, -0.13068033412825503, 0.030492077963259496}
	got := l.Jet(theta, v, x)
	for m := range 4 {
		if !near(got[m], want[m], 1e-15) {
			t.Errorf("c_%d = %.17g, want %.17g", m, got[m], want[m])
		}
		g := []float64{0}
		l.JetCovector(m, theta, v, x, g)
		if !near(g[0], wantCov[m], 1e-15) {
			t.Errorf("∇c_%d = %.17g, want %.17g", m, g[0], wantCov[m])
		}
	}
}

// TestThirdFD checks the closed-form third derivatives (Third) entry by
// entry against central differences (step 1e-5) of the closed-form
// Hessian of landscape.go: ∂³l/∂θ_i∂θ_j∂θ_k ≈ (H_ij(θ + εe_k) −
// H_ij(θ − εe_k))/(2ε), to 1e-8.
func TestThirdFD(t *testing.T) {
	const eps = 1e-5
	r := rand.New(rand.NewPCG(201, 202))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		worst := 0.0
		for range 30 {
			th := randomPoint(l, r)
			x := 2 * r.NormFloat64()
			for k := range n {
				p, m := slices.Clone(th), slices.Clone(th)
				p[k] += eps
				m[k] -= eps
				hp, hm := l.Hessian(p, x), l.Hessian(m, x)
				for i := range n {
					for j := range n {
						fd := (hp[i][j] - hm[i][j]) / (2 * eps)
						got := l.Third(th, x, unit(n, i), unit(n, j), unit(n, k))
						if !near(got, fd, 1e-8) {
							t.Errorf("%s θ=%v x=%v: ∂³l/∂%d∂%d∂%d = %v, finite difference %v", c.name, th, x, i, j, k, got, fd)
						}
						worst = math.Max(worst, math.Abs(got-fd)/(1+math.Abs(got)))
					}
				}
			}
		}
		t.Logf("%s: max |Third − fd| / (1 + |Third|) = %.2g", c.name, worst)
	}
}

// TestJetClosedForms checks the jets against the closed-form loss and
// derivatives: c_0 = Loss, c_1 = SampleGrad·v, c_2 = vᵀ Hessian v/2,
// c_3 = Third(v, v, v)/6, and the covectors ∇c_0 = SampleGrad, ∇c_1 =
// Hessian·v, ∇c_2 = Third(v, v, ·)/2, to 1e-13 relative (1 + |value|).
func TestJetClosedForms(t *testing.T) {
	r := rand.New(rand.NewPCG(203, 204))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		for range 50 {
			th := randomPoint(l, r)
			v := randomDir(n, r)
			x := 2 * r.NormFloat64()
			g := make([]float64, n)
			l.SampleGrad(th, x, g)
			h := l.Hessian(th, x)
			hv := make([]float64, n)
			for i := range n {
				hv[i] = dotv(h[i], v)
			}
			jvv := make([]float64, n)
			for i := range n {
				jvv[i] = l.Third(th, x, v, v, unit(n, i)) / 2
			}
			jet := l.Jet(th, v, x)
			want := [4]float64{l.Loss(th, x), dotv(g, v), dotv(v, hv) / 2, l.Third(th, x, v, v, v) / 6}
			for m := range 4 {
				if !near(jet[m], want[m], 1e-13) {
					t.Errorf("%s θ=%v v=%v x=%v: c_%d = %.17g, want %.17g", c.name, th, v, x, m, jet[m], want[m])
				}
			}
			for m, w := range [][]float64{g, hv, jvv} {
				got := make([]float64, n)
				l.JetCovector(m, th, v, x, got)
				for i := range n {
					if !near(got[i], w[i], 1e-13) {
						t.Errorf("%s θ=%v v=%v x=%v: ∇c_%d[%d] = %.17g, want %.17g", c.name, th, v, x, m, i, got[i], w[i])
					}
				}
			}
		}
	}
}

// stencil returns weights a_i (i = −m..m) with Σ_i a_i p(i) = the
// coefficient of t^k of every polynomial p of degree ≤ 2m (Gaussian
// elimination on the transposed Vandermonde system).
func stencil(m, k int) []float64 {
	n := 2*m + 1
	A := make([][]float64, n)
	for p := range n {
		A[p] = make([]float64, n+1)
		for i := range n {
			A[p][i] = math.Pow(float64(i-m), float64(p))
		}
		if p == k {
			A[p][n] = 1
		}
	}
	for col := range n {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(A[r][col]) > math.Abs(A[piv][col]) {
				piv = r
			}
		}
		A[col], A[piv] = A[piv], A[col]
		for r := range n {
			if r != col {
				f := A[r][col] / A[col][col]
				for c := col; c <= n; c++ {
					A[r][c] -= f * A[col][c]
				}
			}
		}
	}
	a := make([]float64, n)
	for i := range a {
		a[i] = A[i][n] / A[i][i]
	}
	return a
}

// TestJetFiniteDifferences checks the coefficients against 11-point
// central finite differences of Loss along a unit v with step 0.07
// (truncation O(h^10), largest for Archimedes; rounding about
// 1e-16/h³·Σ|weights|, largest for c_3: both near 1e-9, logged), to
// 1e-10, 1e-9 and 1e-8 relative to 1 + |c_k| for k = 1, 2, 3; the
// covector of order 3 against the 5-point difference (step 1e-3) of the
// covector of order 2 along v, whose derivative is 3 times it, to 1e-10;
// and the identity v·∇c_m = (m+1) c_{m+1} to 1e-13.
func TestJetFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(205, 206))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		var worst [5]float64
		for range 30 {
			th := randomPoint(l, r)
			v := randomDir(n, r)
			nv := math.Sqrt(dotv(v, v))
			for i := range v {
				v[i] /= nv
			}
			x := 2 * r.NormFloat64()
			jet := l.Jet(th, v, x)
			const m, h = 5, 0.07
			var f [2*m + 1]float64
			for i := range f {
				s := float64(i-m) * h
				p := slices.Clone(th)
				for j := range p {
					p[j] += s * v[j]
				}
				f[i] = l.Loss(p, x)
			}
			for k := 1; k <= 3; k++ {
				fd := 0.0
				for i, a := range stencil(m, k) {
					fd += a * f[i]
				}
				fd /= math.Pow(h, float64(k))
				if tol := [4]float64{0, 1e-10, 1e-9, 1e-8}[k]; !near(jet[k], fd, tol) {
					t.Errorf("%s θ=%v v=%v x=%v: c_%d = %.17g, finite difference %.17g", c.name, th, v, x, k, jet[k], fd)
				}
				worst[k] = math.Max(worst[k], math.Abs(jet[k]-fd)/(1+math.Abs(jet[k])))
			}
			// Order 3 against d/dt of order 2.
			const e = 1e-3
			cov := func(m int, s float64) []float64 {
				p := slices.Clone(th)
				for j := range p {
					p[j] += s * v[j]
				}
				g := make([]float64, n)
				l.JetCovector(m, p, v, x, g)
				return g
			}
			c3 := cov(3, 0)
			a, b, cc, d := cov(2, -2*e), cov(2, -e), cov(2, e), cov(2, 2*e)
			for j := range n {
				fd := (a[j] - 8*b[j] + 8*cc[j] - d[j]) / (12 * e) / 3
				if !near(c3[j], fd, 1e-10) {
					t.Errorf("%s θ=%v v=%v x=%v: ∇c_3[%d] = %.17g, finite difference %.17g", c.name, th, v, x, j, c3[j], fd)
				}
				worst[4] = math.Max(worst[4], math.Abs(c3[j]-fd)/(1+math.Abs(c3[j])))
			}
			for k := 0; k < 3; k++ {
				got, want := dotv(v, cov(k, 0)), float64(k+1)*jet[k+1]
				if !near(got, want, 1e-13) {
					t.Errorf("%s θ=%v v=%v x=%v: v·∇c_%d = %.17g, %d c_%d = %.17g", c.name, th, v, x, k, got, k+1, k+1, want)
				}
			}
		}
		t.Logf("%s: max |jet − fd| / (1 + |jet|): c_1 %.2g, c_2 %.2g, c_3 %.2g, ∇c_3 %.2g", c.name, worst[1], worst[2], worst[3], worst[4])
	}
}

// TestJetBatched checks Coeffs and Covector against Jet and JetCovector,
// pair by pair with weights, and their errors on mismatched lengths.
func TestJetBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(207, 208))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		th := randomPoint(l, r)
		const K = 3
		dirs := make([][]float64, K)
		pts := make([][]nets.Sample, K)
		pairs := 0
		for k := range K {
			dirs[k] = randomDir(n, r)
			pts[k] = Samples(r, 2+k) // unequal lengths are allowed
			pairs += len(pts[k])
		}
		out := make([][4]float64, pairs)
		if err := l.Coeffs(th, dirs, pts, out); err != nil {
			t.Fatal(err)
		}
		w := randomDir(pairs, r)
		for order := range 4 {
			cov := make([][]float64, K)
			for k := range cov {
				cov[k] = make([]float64, n)
			}
			if err := l.Covector(order, th, dirs, pts, w, cov); err != nil {
				t.Fatal(err)
			}
			i := 0
			for k := range K {
				want := make([]float64, n)
				for _, s := range pts[k] {
					if order == 0 && out[i] != l.Jet(th, dirs[k], s.X) {
						t.Errorf("%s: Coeffs[%d] = %v, Jet %v", c.name, i, out[i], l.Jet(th, dirs[k], s.X))
					}
					g := make([]float64, n)
					l.JetCovector(order, th, dirs[k], s.X, g)
					for j := range n {
						want[j] += w[i] * g[j]
					}
					i++
				}
				for j := range n {
					if !near(cov[k][j], want[j], 1e-14) {
						t.Errorf("%s: order %d covector %d[%d] = %v, want %v", c.name, order, k, j, cov[k][j], want[j])
					}
				}
			}
		}
		// Order 0 without directions: per-sample gradients summed.
		cov := [][]float64{make([]float64, n)}
		if err := l.Covector(0, th, nil, pts[:1], nil, cov); err != nil {
			t.Fatal(err)
		}
		g, want := make([]float64, n), make([]float64, n)
		for _, s := range pts[0] {
			l.SampleGrad(th, s.X, g)
			for j := range n {
				want[j] += g[j]
			}
		}
		for j := range n {
			if !near(cov[0][j], want[j], 1e-14) {
				t.Errorf("%s: order-0 covector %v, Σ gradients %v", c.name, cov[0], want)
			}
		}
		if err := l.Coeffs(th, dirs, pts, out[:1]); err == nil {
			t.Errorf("%s: Coeffs accepted too few outputs", c.name)
		}
		if err := l.Coeffs(th, dirs[:1], pts, out); err == nil {
			t.Errorf("%s: Coeffs accepted too few directions", c.name)
		}
		if err := l.Covector(4, th, dirs, pts, nil, make([][]float64, K)); err == nil {
			t.Errorf("%s: Covector accepted order 4", c.name)
		}
		if err := l.Covector(1, th, dirs, pts, w[:1], make([][]float64, K)); err == nil {
			t.Errorf("%s: Covector accepted too few weights", c.name)
		}
	}
}
