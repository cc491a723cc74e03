package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/nets"
)

// toy is a two-weight model with non-constant curvature and analytic
// derivatives:
//
//	l_x(θ) = exp(a θ0 x) + ½ θ1² (1 + x²) + θ0 θ1 x
//	∇l     = (a x e + θ1 x,  θ1 (1 + x²) + θ0 x),   e = exp(a θ0 x)
//	∇²l    = [[a² x² e, x], [x, 1 + x²]]
type toy struct{ a float64 }

func (m toy) loss(th []float64, x float64) float64 {
	return math.Exp(m.a*th[0]*x) + 0.5*th[1]*th[1]*(1+x*x) + th[0]*th[1]*x
}

func (m toy) grad(th []float64, x float64) [2]float64 {
	e := math.Exp(m.a * th[0] * x)
	return [2]float64{m.a*x*e + th[1]*x, th[1]*(1+x*x) + th[0]*x}
}

func (m toy) hess(th []float64, x float64) [2][2]float64 {
	e := math.Exp(m.a * th[0] * x)
	return [2][2]float64{{m.a * m.a * x * x * e, x}, {x, 1 + x*x}}
}

func (m toy) NumParams() int { return 2 }

func (m toy) Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error {
	for k, th := range theta {
		loss[k] = 0
		grad[k][0], grad[k][1] = 0, 0
		for _, p := range pts[k] {
			g := m.grad(th, p.X)
			loss[k] += m.loss(th, p.X) / float64(len(pts[k]))
			grad[k][0] += g[0] / float64(len(pts[k]))
			grad[k][1] += g[1] / float64(len(pts[k]))
		}
	}
	return nil
}

func (m toy) HVP(theta [][]float64, pts [][]nets.Sample, v [][]float64, out [][]float64) error {
	for k, th := range theta {
		out[k][0], out[k][1] = 0, 0
		for _, p := range pts[k] {
			h := m.hess(th, p.X)
			out[k][0] += h[0][0]*v[k][0] + h[0][1]*v[k][1]
			out[k][1] += h[1][0]*v[k][0] + h[1][1]*v[k][1]
		}
	}
	return nil
}

func (m toy) Round([]float64) {}

func samples(r *rand.Rand, n int) []nets.Sample {
	s := make([]nets.Sample, n)
	for i := range s {
		s[i] = nets.Sample{Row: -1, X: r.NormFloat64()}
	}
	return s
}

// reference implements each update rule for one trial the plain way:
// dense Hessians, explicit sums, no batching and no replicas.
func reference(m toy, s Spec, th []float64, eta float64, xs []float64) []float64 {
	th = append([]float64(nil), th...)
	n := len(xs)
	meanGrad := func(idx []int) [2]float64 {
		var g [2]float64
		for _, i := range idx {
			gi := m.grad(th, xs[i])
			g[0] += gi[0] / float64(len(idx))
			g[1] += gi[1] / float64(len(idx))
		}
		return g
	}
	hessOf := func(idx []int) [2][2]float64 {
		var h [2][2]float64
		for _, i := range idx {
			hi := m.hess(th, xs[i])
			for a := 0; a < 2; a++ {
				for b := 0; b < 2; b++ {
					h[a][b] += hi[a][b] / float64(len(idx))
				}
			}
		}
		return h
	}
	mv := func(h [2][2]float64, v [2]float64) [2]float64 {
		return [2]float64{h[0][0]*v[0] + h[0][1]*v[1], h[1][0]*v[0] + h[1][1]*v[1]}
	}
	rng := func(a, b int) []int {
		var o []int
		for i := a; i < b; i++ {
			o = append(o, i)
		}
		return o
	}
	all := rng(0, n)
	step := func(d [2]float64) { th[0] -= eta * d[0]; th[1] -= eta * d[1] }
	switch s.Name {
	case "sgd":
		for e := 0; e < s.Epochs; e++ {
			for b := 0; b < n; b += s.Batch {
				step(meanGrad(rng(b, b+s.Batch)))
			}
		}
	case "gd":
		for t := 0; t < s.Steps; t++ {
			step(meanGrad(all))
		}
	case "gdc":
		for t := 0; t < s.Steps; t++ {
			g := meanGrad(all)
			d := g
			for i := range xs {
				gi := m.grad(th, xs[i])
				hv := mv(m.hess(th, xs[i]), [2]float64{gi[0] - g[0], gi[1] - g[1]})
				d[0] += eta / (2 * float64(n)) * hv[0]
				d[1] += eta / (2 * float64(n)) * hv[1]
			}
			step(d)
		}
	case "igr":
		for t := 0; t < s.Steps; t++ {
			g := meanGrad(all)
			hv := mv(hessOf(all), g)
			step([2]float64{g[0] + eta/2*hv[0], g[1] + eta/2*hv[1]})
		}
	case "smith":
		mb := n / s.Batch
		for t := 0; t < s.Steps; t++ {
			d := meanGrad(all)
			for j := 0; j < mb; j++ {
				idx := rng(j*s.Batch, (j+1)*s.Batch)
				hv := mv(hessOf(idx), meanGrad(idx))
				d[0] += eta / (2 * float64(mb)) * hv[0]
				d[1] += eta / (2 * float64(mb)) * hv[1]
			}
			step(d)
		}
	}
	return th
}

// TestAgainstReference runs every deterministic optimiser on a batch of
// trials with different etas and training sets and compares each trial with
// the plain single-trial implementation.
func TestAgainstReference(t *testing.T) {
	m := toy{a: 0.7}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 6
	specs := []Spec{
		{Name: "sgd", Batch: 1, Epochs: 1, Steps: 6},
		{Name: "sgd", Batch: 2, Epochs: 3, Steps: 9},
		{Name: "gd", Batch: n, Epochs: 4, Steps: 4},
		{Name: "gdc", Batch: n, Epochs: 4, Steps: 4},
		{Name: "igr", Batch: n, Epochs: 4, Steps: 4},
		{Name: "smith", Batch: 2, Steps: 4},
		{Name: "smith", Batch: 3, Steps: 4},
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			const k = 4
			b := &Batch{Backend: m}
			for i := 0; i < k; i++ {
				b.Theta = append(b.Theta, []float64{0.3 * r.NormFloat64(), r.NormFloat64()})
				b.Eta = append(b.Eta, 0.05*float64(i+1))
				b.Sets = append(b.Sets, samples(r, n))
			}
			var want [][]float64
			for i := range b.Theta {
				xs := make([]float64, n)
				for j, p := range b.Sets[i] {
					xs[j] = p.X
				}
				want = append(want, reference(m, s, b.Theta[i], b.Eta[i], xs))
			}
			res, err := Run(s, b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if res.Diverged[i] != -1 {
					t.Fatalf("trial %d diverged at %d", i, res.Diverged[i])
				}
				for j := range want[i] {
					if d := math.Abs(b.Theta[i][j] - want[i][j]); !(d <= 1e-12*(1+math.Abs(want[i][j]))) {
						t.Errorf("trial %d weight %d = %.15g, reference %.15g", i, j, b.Theta[i][j], want[i][j])
					}
				}
			}
		})
	}
}

// TestGDCGradientIsGradientOfR checks ∇R = (η/(2N)) Σ H_n (g_n − ḡ) against
// central finite differences of R(θ) = η (N−1)/(4N) trĈ(θ).
func TestGDCGradientIsGradientOfR(t *testing.T) {
	m := toy{a: 0.9}
	r := rand.New(rand.NewPCG(3, 4))
	const n, eta = 5, 0.3
	set := samples(r, n)
	th := []float64{0.4, -0.8}
	regulariser := func(th []float64) float64 {
		var g [][2]float64
		var mean [2]float64
		for _, p := range set {
			gi := m.grad(th, p.X)
			g = append(g, gi)
			mean[0] += gi[0] / n
			mean[1] += gi[1] / n
		}
		var tr float64
		for _, gi := range g {
			tr += (gi[0]-mean[0])*(gi[0]-mean[0]) + (gi[1]-mean[1])*(gi[1]-mean[1])
		}
		tr /= n - 1
		return eta * (n - 1) / (4 * n) * tr
	}
	// GDC's direction minus GD's is ∇R: one step of each from the same θ.
	step := func(name string) []float64 {
		b := &Batch{Backend: m, Theta: [][]float64{append([]float64(nil), th...)}, Eta: []float64{eta}, Sets: [][]nets.Sample{set}}
		if _, err := Run(Spec{Name: name, Batch: n, Epochs: 1, Steps: 1}, b); err != nil {
			t.Fatal(err)
		}
		return b.Theta[0]
	}
	gdc, gd := step("gdc"), step("gd")
	const h = 1e-5
	for i := range th {
		p, q := append([]float64(nil), th...), append([]float64(nil), th...)
		p[i] += h
		q[i] -= h
		fd := (regulariser(p) - regulariser(q)) / (2 * h)
		got := (gd[i] - gdc[i]) / eta
		if !(math.Abs(got-fd) <= 1e-7*(1+math.Abs(fd))) {
			t.Errorf("∂R/∂θ%d = %.10g, finite difference %.10g", i, got, fd)
		}
	}
	if gdc[0] == gd[0] && gdc[1] == gd[1] {
		t.Fatal("GDC equals GD: the regulariser had no effect on a model with non-constant curvature")
	}
}

// meanEst is the Mean Estimation landscape l_x = H θ²/2 + x S θ.
type meanEst struct{ h, s float64 }

func (m meanEst) NumParams() int { return 1 }

func (m meanEst) Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error {
	for k, th := range theta {
		loss[k], grad[k][0] = 0, 0
		for _, p := range pts[k] {
			loss[k] += (m.h*th[0]*th[0]/2 + p.X*m.s*th[0]) / float64(len(pts[k]))
			grad[k][0] += (m.h*th[0] + p.X*m.s) / float64(len(pts[k]))
		}
	}
	return nil
}

func (m meanEst) HVP(theta [][]float64, pts [][]nets.Sample, v [][]float64, out [][]float64) error {
	for k := range theta {
		out[k][0] = float64(len(pts[k])) * m.h * v[k][0]
	}
	return nil
}

func (m meanEst) Round([]float64) {}

// TestSDEMoments runs many SDE trials on one Mean Estimation training set
// with independent noise. Given the training set, SDE on this linear model
// is a Gaussian AR(1) process with R·T substeps θ ← a θ − (η/R) S x̄ + ε,
// a = 1 − ηH/R, Var ε = η² S² s²/(R B) (s² the unbiased sample variance), so
//
//	E θ = a^{RT} θ0 − (η/R) S x̄ Σ_{j<RT} a^j,
//	Var θ = η² S² s²/(R B) Σ_{j<RT} a^{2j}.
func TestSDEMoments(t *testing.T) {
	m := meanEst{h: 2, s: 3}
	r := rand.New(rand.NewPCG(5, 6))
	const n, trials, eta, theta0 = 4, 4000, 0.1, 1.0
	s := Spec{Name: "sde", Batch: 2, Epochs: 2, Steps: 4, Refine: 16}
	set := samples(r, n)
	b := &Batch{Backend: m, Noise: func(k int) *rand.Rand { return rand.New(rand.NewPCG(7, uint64(k))) }}
	for i := 0; i < trials; i++ {
		b.Theta = append(b.Theta, []float64{theta0})
		b.Eta = append(b.Eta, eta)
		b.Sets = append(b.Sets, set)
	}
	if _, err := Run(s, b); err != nil {
		t.Fatal(err)
	}
	var xbar, s2 float64
	for _, p := range set {
		xbar += p.X / n
	}
	for _, p := range set {
		s2 += (p.X - xbar) * (p.X - xbar) / (n - 1)
	}
	R := float64(s.Refine)
	a := 1 - eta*m.h/R
	var sumA, sumA2 float64
	for j := 0; j < s.Refine*s.Steps; j++ {
		sumA += math.Pow(a, float64(j))
		sumA2 += math.Pow(a, float64(2*j))
	}
	wantMean := math.Pow(a, R*float64(s.Steps))*theta0 - eta/R*m.s*xbar*sumA
	wantVar := eta * eta * m.s * m.s * s2 / (R * float64(s.Batch)) * sumA2
	var mean, v float64
	for _, th := range b.Theta {
		mean += th[0] / trials
	}
	for _, th := range b.Theta {
		v += (th[0] - mean) * (th[0] - mean) / (trials - 1)
	}
	se := math.Sqrt(wantVar / trials)
	if !(math.Abs(mean-wantMean) <= 4*se) {
		t.Errorf("mean θ_T = %.6g, want %.6g ± %.2g", mean, wantMean, se)
	}
	// The sample variance of Gaussian data has relative sd √(2/(M−1)).
	if rel := math.Abs(v/wantVar - 1); !(rel <= 4*math.Sqrt(2.0/(trials-1))) {
		t.Errorf("Var θ_T = %.6g, want %.6g (relative error %.3f)", v, wantVar, rel)
	}
}

// TestDivergenceRecorded checks that a trial with a huge eta is marked
// diverged at a step and the others in the batch are unaffected.
func TestDivergenceRecorded(t *testing.T) {
	m := toy{a: 1.5}
	r := rand.New(rand.NewPCG(9, 9))
	set := samples(r, 4)
	mk := func(etas ...float64) *Batch {
		b := &Batch{Backend: m}
		for _, e := range etas {
			b.Theta = append(b.Theta, []float64{1, 1})
			b.Eta = append(b.Eta, e)
			b.Sets = append(b.Sets, set)
		}
		return b
	}
	s := Spec{Name: "gd", Batch: 4, Epochs: 50, Steps: 50}
	b := mk(0.01, 1e6, 0.02)
	res, err := Run(s, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diverged[1] < 0 {
		t.Fatalf("eta 1e6 not recorded as diverged (θ = %v)", b.Theta[1])
	}
	alone := mk(0.01, 0.02)
	if _, err := Run(s, alone); err != nil {
		t.Fatal(err)
	}
	for i, j := range []int{0, 2} {
		if res.Diverged[j] != -1 {
			t.Errorf("trial %d diverged", j)
		}
		for p := range b.Theta[j] {
			if b.Theta[j][p] != alone.Theta[i][p] {
				t.Errorf("trial %d changed by its diverging neighbour: %v vs %v", j, b.Theta[j], alone.Theta[i])
			}
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		s  Spec
		n  int
		ok bool
	}{
		{Spec{Name: "gdc", Steps: 3}, 1, false},
		{Spec{Name: "gdc", Steps: 3}, 2, true},
		{Spec{Name: "sde", Batch: 1, Epochs: 1, Steps: 1, Refine: 16}, 1, false},
		{Spec{Name: "sde", Batch: 1, Epochs: 1, Steps: 2, Refine: 0}, 2, false},
		{Spec{Name: "sgd", Batch: 3, Epochs: 1, Steps: 1}, 4, false},
		{Spec{Name: "smith", Batch: 3, Steps: 1}, 4, false},
		{Spec{Name: "adam", Steps: 1}, 4, false},
	}
	for _, tc := range tests {
		if err := tc.s.Check(tc.n); (err == nil) != tc.ok {
			t.Errorf("%+v with n=%d: err = %v", tc.s, tc.n, err)
		}
	}
}
