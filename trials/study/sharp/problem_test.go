package sharp

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
)

func normalSamples(r *rand.Rand, m int) []nets.Sample {
	return landscape.Samples(r, m)
}

// moments returns the sample mean and the unbiased sample variance of the
// X of s.
func moments(s []nets.Sample) (mean, v float64) {
	for _, x := range s {
		mean += x.X / float64(len(s))
	}
	for _, x := range s {
		v += (x.X - mean) * (x.X - mean) / float64(len(s)-1)
	}
	return mean, v
}

// exactOpts asks for every measure with the noise sum over all M samples
// (so tr(HĈ) is exact) and Lanczos over the whole space.
var exactOpts = Options{Lambda: true, TrH: true, TrC: true, TrHC: true,
	Lanczos: LanczosOptions{Count: 1, Tol: 1e-10}, Trace: TraceOptions{MinProbes: 1 << 20, MaxProbes: 1 << 20}}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol*max(1, math.Abs(want))) {
		t.Errorf("%s = %.15g, want %.15g (tol %.1g)", what, got, want, tol)
	}
}

// TestMeanEstimationClosedForm checks every measure on Mean Estimation
// (l_x = Hθ²/2 + xSθ, H = 2, S = 3) at θ = 0.7 for two trials of 40
// samples: the Hessian is H whatever the samples, so λ = tr H = 2
// exactly; g_x = Hθ + xS, so tr Ĉ = S²·s²_x (s²_x the samples' unbiased
// variance) and tr(HĈ) = H S² s²_x, to 1e-12.
func TestMeanEstimationClosedForm(t *testing.T) {
	l, err := landscape.New("mean-estimation", landscape.Options{H: 2, S: 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	sets := [][]nets.Sample{normalSamples(r, 40), normalSamples(r, 40)}
	p := &Problem{Backend: l, Theta: [][]float64{{0.7}, {-1.3}}, Sets: sets}
	res, err := Measure(p, streams(2, 1), exactOpts)
	if err != nil {
		t.Fatal(err)
	}
	for k, m := range res {
		_, v := moments(sets[k])
		near(t, "λ", m.Eigen.Values[0], 2, 1e-14)
		near(t, "tr H", m.TrH.Value, 2, 1e-14)
		near(t, "tr C", m.TrC.Value, 9*v, 1e-12)
		near(t, "tr(HC)", m.TrHC.Value, 18*v, 1e-12)
		if m.TrHC.StdErr != 0 || m.TrH.StdErr != 0 || !m.Eigen.Converged {
			t.Errorf("trial %d: exact measures reported with errors: %+v", k, m)
		}
	}
}

// archimedes returns the closed-form mean Hessian over samples with mean
// xm, and the gradient's x-coefficient b (g_x = g_0 + x b), from the
// formulas in package landscape's documentation.
func archimedes(theta []float64, xm float64) (*mat.SymDense, []float64) {
	u, v, z := theta[0], theta[1], theta[2]
	s, c := math.Sincos(z)
	s4, c4 := math.Sincos(z - math.Pi/4)
	p, q := c*u+s*v, -s*u+c*v
	sq := c4*u + s4*v
	h := mat.NewSymDense(3, []float64{
		1 + c*c, c * s, q*c - p*s - xm*s4,
		c * s, 1 + s*s, q*s + p*c + xm*c4,
		q*c - p*s - xm*s4, q*s + p*c + xm*c4, q*q - p*p - xm*sq,
	})
	return h, []float64{c4, s4, -s4*u + c4*v}
}

// TestArchimedesClosedForm checks the measures on Archimedes at θ =
// (0.3, −0.5, 0.8) against the closed forms: with x̄ and s²_x the samples'
// mean and unbiased variance, H̄ = H(θ; x̄) (the Hessian is affine in x),
// Ĉ = s²_x b bᵀ, so tr Ĉ = s²_x|b|² and tr(H̄Ĉ) = s²_x bᵀH̄b; λ and tr H
// are H̄'s (n = 3, so Lanczos spans the space and is exact). To 1e-12 on 50
// samples; and on 20,000 samples within 5/√M of the population values
// (x̄ = 0, s²_x = 1).
func TestArchimedesClosedForm(t *testing.T) {
	l, err := landscape.New("archimedes", landscape.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	theta := []float64{0.3, -0.5, 0.8}
	r := rand.New(rand.NewPCG(2, 2))
	for _, m := range []int{50, 20000} {
		set := normalSamples(r, m)
		xm, v := moments(set)
		tol := 1e-12
		if m > 1000 {
			xm, v, tol = 0, 1, 5/math.Sqrt(float64(m))
		}
		h, b := archimedes(theta, xm)
		var e mat.EigenSym
		e.Factorize(h, false)
		ev := e.Values(nil)
		var hb mat.VecDense
		hb.MulVec(h, mat.NewVecDense(3, b))
		bb := b[0]*b[0] + b[1]*b[1] + b[2]*b[2]
		opts := exactOpts
		opts.TrHC = m < 1000 // the exact sum costs M products
		res, err := Measure(&Problem{Backend: l, Theta: [][]float64{theta}, Sets: [][]nets.Sample{set}}, streams(1, 3), opts)
		if err != nil {
			t.Fatal(err)
		}
		got := res[0]
		near(t, "λ", got.Eigen.Values[0], ev[2], tol)
		near(t, "tr H", got.TrH.Value, mat.Trace(h), tol)
		near(t, "tr C", got.TrC.Value, v*bb, tol)
		if opts.TrHC {
			near(t, "tr(HC)", got.TrHC.Value, v*mat.Dot(&hb, mat.NewVecDense(3, b)), tol)
		}
	}
}

// smallLogistic is the logistic model on 4×4 single-channel inputs with 5
// classes (85 weights) and m random float64 examples.
// The backend is the walker on the float64 CPU device.
func smallLogistic(m int, r *rand.Rand) (*graph.DeviceBackend, *nets.Arch) {
	a, err := nets.New("logistic", 1, 4, 4, 5)
	if err != nil {
		panic(err)
	}
	d := &graph.Data{Dim: 16, Classes: 5}
	for i := 0; i < m; i++ {
		d.Y = append(d.Y, uint8(r.IntN(5)))
		for j := 0; j < 16; j++ {
			d.X64 = append(d.X64, r.NormFloat64()+0.3*float64(int(d.Y[i])-2)*float64(j%3))
		}
	}
	dd, err := graph.UploadData(kernels.CPU[float64]{}, d)
	if err != nil {
		panic(err)
	}
	be, err := graph.NewDeviceBackend(a, dd, 1)
	if err != nil {
		panic(err)
	}
	return be, a
}

// denseReference forms H (central differences of the backend's mean
// gradient, step 1e-5) and Ĉ (per-sample gradients) densely.
func denseReference(t *testing.T, be *graph.DeviceBackend, theta []float64, set []nets.Sample) (h, c *mat.SymDense) {
	n := len(theta)
	grad := func(th []float64, s []nets.Sample) []float64 {
		g := [][]float64{make([]float64, n)}
		if err := be.Grad([][]float64{th}, [][]nets.Sample{s}, []float64{0}, g); err != nil {
			t.Fatal(err)
		}
		return g[0]
	}
	cols := mat.NewDense(n, n, nil)
	const eps = 1e-5
	for j := range n {
		tp, tm := append([]float64(nil), theta...), append([]float64(nil), theta...)
		tp[j] += eps
		tm[j] -= eps
		gp, gm := grad(tp, set), grad(tm, set)
		for i := range n {
			cols.Set(i, j, (gp[i]-gm[i])/(2*eps))
		}
	}
	h = mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			h.SetSym(i, j, (cols.At(i, j)+cols.At(j, i))/2)
		}
	}
	m := len(set)
	gs := make([][]float64, m)
	mean := make([]float64, n)
	for i := range set {
		gs[i] = grad(theta, set[i:i+1])
		axpy(1/float64(m), gs[i], mean)
	}
	c = mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			s := 0.0
			for _, g := range gs {
				s += (g[i] - mean[i]) * (g[j] - mean[j])
			}
			c.SetSym(i, j, s/float64(m-1))
		}
	}
	return h, c
}

// TestLogisticDense checks the measures of the logistic model (85
// weights, float64) on 60 examples against the dense float64 Hessian and
// covariance: λ1 and λ2 to 1e-6 relative (Lanczos tolerance 1e-8, the
// finite-difference reference good to about 1e-8); tr C and the exact
// tr(HĈ) to 1e-7; tr H by Hutchinson (Lanczos stopped after 12 vectors,
// so the probes are needed) and tr(HĈ) from 12 of the 60 samples within 4
// standard errors, each standard error positive. Two trials at different
// points run as one batch.
func TestLogisticDense(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	be, a := smallLogistic(60, r)
	set := make([]nets.Sample, 60)
	for i := range set {
		set[i] = nets.Sample{Row: i}
	}
	var thetas [][]float64
	for range 2 {
		th := make([]float64, a.NumParams())
		for i := range th {
			th[i] = r.NormFloat64()
		}
		thetas = append(thetas, th)
	}
	p := &Problem{Backend: be, Theta: thetas, Sets: [][]nets.Sample{set, set}, Chunk: 25, GradChunk: 16, Pad: true}
	exact, err := Measure(p, streams(2, 5), Options{Lambda: true, TrC: true, TrHC: true,
		Lanczos: LanczosOptions{Count: 2, Tol: 1e-8}, Trace: TraceOptions{MinProbes: 60, MaxProbes: 60}})
	if err != nil {
		t.Fatal(err)
	}
	stoch, err := Measure(p, streams(2, 6), Options{TrH: true, TrHC: true,
		Lanczos: LanczosOptions{MaxIter: 12}, Trace: TraceOptions{RelSE: 0.02, MinProbes: 12, MaxProbes: 12}})
	if err != nil {
		t.Fatal(err)
	}
	for k, th := range thetas {
		h, c := denseReference(t, be, th, set)
		var e mat.EigenSym
		e.Factorize(h, false)
		ev := e.Values(nil)
		n := len(ev)
		var hc mat.Dense
		hc.Mul(h, c)
		trHC := mat.Trace(&hc)
		near(t, "λ1", exact[k].Eigen.Values[0]/ev[n-1], 1, 1e-6)
		near(t, "λ2", exact[k].Eigen.Values[1]/ev[n-2], 1, 1e-6)
		near(t, "tr C", exact[k].TrC.Value/mat.Trace(c), 1, 1e-7)
		near(t, "tr(HC) exact", exact[k].TrHC.Value/trHC, 1, 1e-7)
		for name, c := range map[string]struct {
			e     *Estimate
			exact float64
		}{"tr H": {stoch[k].TrH, mat.Trace(h)}, "tr(HC)": {stoch[k].TrHC, trHC}} {
			if !(c.e.StdErr > 0) || math.Abs(c.e.Value-c.exact) > 4*c.e.StdErr {
				t.Errorf("trial %d %s = %.6g ± %.3g (%d probes), exact %.6g", k, name, c.e.Value, c.e.StdErr, c.e.Probes, c.exact)
			}
			t.Logf("trial %d %s = %.6g ± %.3g (%d probes), exact %.6g", k, name, c.e.Value, c.e.StdErr, c.e.Probes, c.exact)
		}
		t.Logf("trial %d: λ1 %.10g (dense %.10g) in %d iterations", k, exact[k].Eigen.Values[0], ev[n-1], exact[k].Eigen.Iterations)
	}
}
