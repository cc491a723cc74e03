package landscape

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/optim"
)

var (
	_ optim.Backend    = (*Landscape)(nil)
	_ optim.TestLosser = (*Landscape)(nil)
)

// cases is one configured instance of every landscape.
var cases = []struct {
	name string
	opt  Options
}{
	{"gauss", Options{}},
	{"archimedes", Options{}},
	{"mean-estimation", Options{H: 1.3, S: 0.7}},
	{"mean-estimation-l2", Options{H: 0.8, S: 1.9}},
}

func mustNew(t *testing.T, name string, opt Options, f32 bool) *Landscape {
	t.Helper()
	l, err := New(name, opt, f32)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// randomPoint draws an admissible weight vector (λ ≥ 0 for the l2 variant).
func randomPoint(l *Landscape, r *rand.Rand) []float64 {
	th := make([]float64, l.NumParams())
	for i := range th {
		th[i] = r.NormFloat64()
	}
	l.Round(th)
	if l.name == "mean-estimation-l2" {
		th[1] = math.Abs(th[1]) + 0.1
	}
	return th
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(a)+math.Abs(b)) }

func TestNamesAndWeights(t *testing.T) {
	want := map[string][]string{
		"gauss": {"h"}, "archimedes": {"u", "v", "z"},
		"mean-estimation": {"theta"}, "mean-estimation-l2": {"theta", "lambda"},
	}
	for _, c := range cases {
		if !IsLandscape(c.name) {
			t.Errorf("IsLandscape(%q) = false", c.name)
		}
		l := mustNew(t, c.name, c.opt, false)
		if l.Name() != c.name || !slices.Equal(l.Weights(), want[c.name]) || l.NumParams() != len(want[c.name]) {
			t.Errorf("%s: Name %q Weights %v NumParams %d", c.name, l.Name(), l.Weights(), l.NumParams())
		}
	}
	if len(Names) != len(cases) || IsLandscape("logistic") || IsLandscape("") {
		t.Errorf("Names = %v; IsLandscape accepts non-landscapes", Names)
	}
}

func TestNewErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		opt  Options
		want string // substring of the error
	}{
		{"logistic", Options{}, "unknown landscape"},
		{"mean-estimation", Options{H: 0, S: 1}, "must both be > 0"},
		{"mean-estimation", Options{H: 1, S: -1}, "must both be > 0"},
		{"mean-estimation-l2", Options{H: -1, S: 1}, "must both be > 0"},
		{"mean-estimation", Options{H: nan, S: 1}, "finite"},
		{"mean-estimation", Options{H: 1, S: inf}, "finite"},
		{"gauss", Options{H: 1}, "apply only to mean-estimation"},
		{"archimedes", Options{S: 1}, "apply only to mean-estimation"},
		{"archimedes", Options{Start: []float64{0, 0}}, "Start has 2 values, want 3"},
		{"gauss", Options{Start: []float64{}}, "Start has 0 values, want 1"},
		{"gauss", Options{Start: []float64{nan}}, "not finite"},
		{"archimedes", Options{Start: []float64{0, -inf, 0}}, "not finite"},
		{"mean-estimation-l2", Options{H: 1, S: 1, Start: []float64{1, -0.5}}, "lambda"},
	}
	for _, tt := range tests {
		_, err := New(tt.name, tt.opt, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %+v) error = %v, want one containing %q", tt.name, tt.opt, err, tt.want)
		}
	}
	for _, c := range cases {
		if _, err := New(c.name, c.opt, true); err != nil {
			t.Errorf("New(%q) valid: %v", c.name, err)
		}
	}
}

// TestDerivativesFD checks SampleGrad against central differences of Loss
// and Hessian against central differences of SampleGrad.
func TestDerivativesFD(t *testing.T) {
	const eps = 1e-5
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		for range 50 {
			th := randomPoint(l, r)
			x := 2 * r.NormFloat64()
			g := make([]float64, n)
			l.SampleGrad(th, x, g)
			h := l.Hessian(th, x)
			gp, gm := make([]float64, n), make([]float64, n)
			for i := range n {
				p, m := slices.Clone(th), slices.Clone(th)
				p[i] += eps
				m[i] -= eps
				fd := (l.Loss(p, x) - l.Loss(m, x)) / (2 * eps)
				if !near(g[i], fd, 1e-7) {
					t.Errorf("%s θ=%v x=%v: grad[%d] = %v, finite difference %v", c.name, th, x, i, g[i], fd)
				}
				l.SampleGrad(p, x, gp)
				l.SampleGrad(m, x, gm)
				for j := range n {
					fd := (gp[j] - gm[j]) / (2 * eps)
					if !near(h[j][i], fd, 1e-7) {
						t.Errorf("%s θ=%v x=%v: Hessian[%d][%d] = %v, finite difference %v", c.name, th, x, j, i, h[j][i], fd)
					}
				}
			}
		}
	}
}

// TestHVP checks HVP against the sum of per-sample Hessians times v and
// against a central difference of Grad along v (times the sample count).
func TestHVP(t *testing.T) {
	const eps = 1e-5
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		const K, B = 3, 7
		theta, v, out := make([][]float64, K), make([][]float64, K), make([][]float64, K)
		pts := make([][]nets.Sample, K)
		for k := range K {
			theta[k] = randomPoint(l, r)
			v[k] = randomPoint(l, r)
			out[k] = make([]float64, n)
			pts[k] = Samples(r, B)
		}
		if err := l.HVP(theta, pts, v, out); err != nil {
			t.Fatal(err)
		}
		for k := range K {
			want := make([]float64, n)
			for _, p := range pts[k] {
				h := l.Hessian(theta[k], p.X)
				for i := range n {
					for j := range n {
						want[i] += h[i][j] * v[k][j]
					}
				}
			}
			tp, tm := slices.Clone(theta[k]), slices.Clone(theta[k])
			for i := range n {
				tp[i] += eps * v[k][i]
				tm[i] -= eps * v[k][i]
			}
			gp, gm := [][]float64{make([]float64, n)}, [][]float64{make([]float64, n)}
			loss := []float64{0}
			if err := l.Grad([][]float64{tp}, pts[k:k+1], loss, gp); err != nil {
				t.Fatal(err)
			}
			if err := l.Grad([][]float64{tm}, pts[k:k+1], loss, gm); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				fd := B * (gp[0][i] - gm[0][i]) / (2 * eps)
				if !near(out[k][i], want[i], 1e-12) || !near(out[k][i], fd, 1e-6) {
					t.Errorf("%s trial %d: HVP[%d] = %v, Σ Hessian·v = %v, finite difference %v", c.name, k, i, out[k][i], want[i], fd)
				}
			}
		}
		if err := l.HVP(theta, pts[:1], v, out); err == nil {
			t.Errorf("%s: HVP accepted mismatched lengths", c.name)
		}
	}
}

// TestGrad checks that Grad's loss and gradient are the means of Loss and
// SampleGrad, and that a trial's result does not depend on its batch.
func TestGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		n := l.NumParams()
		const K, B = 4, 5
		theta, grad := make([][]float64, K), make([][]float64, K)
		pts, loss := make([][]nets.Sample, K), make([]float64, K)
		for k := range K {
			theta[k] = randomPoint(l, r)
			grad[k] = make([]float64, n)
			pts[k] = Samples(r, B)
		}
		if err := l.Grad(theta, pts, loss, grad); err != nil {
			t.Fatal(err)
		}
		for k := range K {
			wl, wg, g := 0.0, make([]float64, n), make([]float64, n)
			for _, p := range pts[k] {
				wl += l.Loss(theta[k], p.X) / B
				l.SampleGrad(theta[k], p.X, g)
				for i := range n {
					wg[i] += g[i] / B
				}
			}
			if !near(loss[k], wl, 1e-13) {
				t.Errorf("%s trial %d: loss %v, mean Loss %v", c.name, k, loss[k], wl)
			}
			for i := range n {
				if !near(grad[k][i], wg[i], 1e-13) {
					t.Errorf("%s trial %d: grad[%d] %v, mean SampleGrad %v", c.name, k, i, grad[k][i], wg[i])
				}
			}
			one, g1 := []float64{0}, [][]float64{make([]float64, n)}
			if err := l.Grad(theta[k:k+1], pts[k:k+1], one, g1); err != nil {
				t.Fatal(err)
			}
			if one[0] != loss[k] || !slices.Equal(g1[0], grad[k]) {
				t.Errorf("%s trial %d: result depends on the batch", c.name, k)
			}
		}
		bad := [][]float64{make([]float64, n+1)}
		if err := l.Grad(bad, pts[:1], loss[:1], grad[:1]); err == nil {
			t.Errorf("%s: Grad accepted a theta of the wrong length", c.name)
		}
		if err := l.Grad(theta[:1], [][]nets.Sample{{}}, loss[:1], grad[:1]); err == nil {
			t.Errorf("%s: Grad accepted an empty batch", c.name)
		}
	}
}

// meanSE returns the sample mean of f over xs and its standard error.
func meanSE(xs []float64, f func(x float64) float64) (mean, se float64) {
	var s, s2 float64
	for _, x := range xs {
		v := f(x)
		s += v
		s2 += v * v
	}
	n := float64(len(xs))
	mean = s / n
	return mean, math.Sqrt((s2/n - mean*mean) / n)
}

func draws(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 99))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	return xs
}

// TestTestLossMonteCarlo checks the closed-form test loss against a Monte
// Carlo mean of Loss over 200k draws of x.
func TestTestLossMonteCarlo(t *testing.T) {
	xs := draws(7, 200_000)
	r := rand.New(rand.NewPCG(8, 9))
	for _, c := range cases {
		l := mustNew(t, c.name, c.opt, false)
		for range 3 {
			th := randomPoint(l, r)
			if l.name == "mean-estimation-l2" {
				th[1] = 0 // the MC of Loss includes the penalty; see below
			}
			loss, acc := []float64{0}, []float64{0}
			if err := l.TestLoss([][]float64{th}, loss, acc); err != nil {
				t.Fatal(err)
			}
			mean, se := meanSE(xs, func(x float64) float64 { return l.Loss(th, x) })
			if math.Abs(loss[0]-mean) > 5*se {
				t.Errorf("%s θ=%v: TestLoss %v, Monte Carlo %v ± %v", c.name, th, loss[0], mean, se)
			}
			if !math.IsNaN(acc[0]) {
				t.Errorf("%s: acc = %v, want NaN", c.name, acc[0])
			}
		}
	}
	// The l2 variant's test loss ignores the penalty: H θ²/2 for any λ.
	l := mustNew(t, "mean-estimation-l2", Options{H: 0.8, S: 1.9}, false)
	loss, acc := []float64{0}, []float64{0}
	if err := l.TestLoss([][]float64{{1.5, 3}}, loss, acc); err != nil {
		t.Fatal(err)
	}
	if want := 0.8 * 1.5 * 1.5 / 2; !near(loss[0], want, 1e-15) {
		t.Errorf("mean-estimation-l2 TestLoss = %v, want the unregularised %v", loss[0], want)
	}
	if err := l.TestLoss([][]float64{{1, 0}}, loss, acc[:0]); err == nil {
		t.Error("TestLoss accepted mismatched lengths")
	}
}

// TestGaussStatistics checks theory.md's statistics of Gauss at h = 0:
// G = 0, H = 1/2, C = 1/2, S = −1, J = −1/2.
func TestGaussStatistics(t *testing.T) {
	l := mustNew(t, "gauss", Options{}, false)
	xs := draws(10, 200_000)
	h0 := []float64{0}
	grad := func(x float64) float64 {
		g := []float64{0}
		l.SampleGrad(h0, x, g)
		return g[0]
	}
	// third is the analytic third derivative −x² e^{-h}/2, checked here
	// against a central difference of the Hessian.
	third := func(h, x float64) float64 { return -x * x * math.Exp(-h) / 2 }
	for _, x := range []float64{-2, 0.3, 1.7} {
		for _, h := range []float64{-1, 0, 0.5} {
			fd := (l.Hessian([]float64{h + 1e-5}, x)[0][0] - l.Hessian([]float64{h - 1e-5}, x)[0][0]) / 2e-5
			if !near(third(h, x), fd, 1e-7) {
				t.Errorf("third derivative at h=%v x=%v: %v, finite difference %v", h, x, third(h, x), fd)
			}
		}
	}
	G, seG := meanSE(xs, grad)
	H, seH := meanSE(xs, func(x float64) float64 { return l.Hessian(h0, x)[0][0] })
	C, seC := meanSE(xs, func(x float64) float64 { d := grad(x) - G; return d * d })
	S, seS := meanSE(xs, func(x float64) float64 { d := grad(x) - G; return d * d * d })
	J, seJ := meanSE(xs, func(x float64) float64 { return third(0, x) })
	for _, s := range []struct {
		name           string
		got, se, exact float64
	}{
		{"G", G, seG, 0}, {"H", H, seH, 0.5}, {"C", C, seC, 0.5}, {"S", S, seS, -1}, {"J", J, seJ, -0.5},
	} {
		if math.Abs(s.got-s.exact) > 5*s.se {
			t.Errorf("Gauss %s at h=0: Monte Carlo %v ± %v, theory %v", s.name, s.got, s.se, s.exact)
		}
	}
}

// randomSchedule returns T steps over n points: batches of random sizes
// (1..n) drawn with replacement, so indices may repeat within a batch.
func randomSchedule(r *rand.Rand, n, T int) [][]int {
	s := make([][]int, T)
	for t := range s {
		s[t] = make([]int, 1+r.IntN(n))
		for i := range s[t] {
			s[t][i] = r.IntN(n)
		}
	}
	return s
}

// schedules returns SGD (B=1, shuffled epochs), GD and random schedules.
func schedules(r *rand.Rand, n int) map[string][][]int {
	var sgd, gd [][]int
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	for range 3 {
		for _, i := range r.Perm(n) {
			sgd = append(sgd, []int{i})
		}
		gd = append(gd, all, all)
	}
	return map[string][][]int{"sgd": sgd, "gd": gd, "random": randomSchedule(r, n, 11), "empty": nil}
}

// TestMeanEstimationFinal checks the closed form against running the
// update θ ← θ − η·(batch-mean gradient) with Grad.
func TestMeanEstimationFinal(t *testing.T) {
	l := mustNew(t, "mean-estimation", Options{H: 1.3, S: 0.7}, false)
	r := rand.New(rand.NewPCG(11, 12))
	const n = 5
	for name, sched := range schedules(r, n) {
		for _, eta := range []float64{0.05, 0.4, 1.7} {
			theta0 := r.NormFloat64()
			pool := Samples(r, n)
			xs := make([]float64, n)
			for i, p := range pool {
				xs[i] = p.X
			}
			th := []float64{theta0}
			for _, b := range sched {
				batch := make([]nets.Sample, len(b))
				for i, j := range b {
					batch[i] = pool[j]
				}
				g := [][]float64{{0}}
				if err := l.Grad([][]float64{th}, [][]nets.Sample{batch}, []float64{0}, g); err != nil {
					t.Fatal(err)
				}
				th[0] -= eta * g[0][0]
			}
			if got := l.MeanEstimationFinal(theta0, eta, xs, sched); !near(got, th[0], 1e-12) {
				t.Errorf("%s η=%v: MeanEstimationFinal %v, simulation %v", name, eta, got, th[0])
			}
		}
	}
}

// TestMeanEstimationExpectedTestLoss checks the closed form against a Monte
// Carlo over training sets of MeanEstimationFinal's test loss.
func TestMeanEstimationExpectedTestLoss(t *testing.T) {
	l := mustNew(t, "mean-estimation", Options{H: 1.3, S: 0.7}, false)
	r := rand.New(rand.NewPCG(13, 14))
	const n, M = 4, 100_000
	for name, sched := range schedules(r, n) {
		for _, eta := range []float64{0.1, 0.9} {
			theta0 := 0.6
			want := l.MeanEstimationExpectedTestLoss(theta0, eta, n, sched)
			xs := make([]float64, n)
			var s, s2 float64
			for range M {
				for i := range xs {
					xs[i] = r.NormFloat64()
				}
				th := l.MeanEstimationFinal(theta0, eta, xs, sched)
				v := l.h * th * th / 2
				s += v
				s2 += v * v
			}
			mean := s / M
			se := math.Sqrt((s2/M - mean*mean) / M)
			if math.Abs(mean-want) > 5*se+1e-15 {
				t.Errorf("%s η=%v: expected test loss %v, Monte Carlo %v ± %v", name, eta, want, mean, se)
			}
		}
	}
}

func TestMeanEstimationOraclePanics(t *testing.T) {
	me := mustNew(t, "mean-estimation", Options{H: 1, S: 1}, false)
	l2 := mustNew(t, "mean-estimation-l2", Options{H: 1, S: 1}, false)
	for name, f := range map[string]func(){
		"other landscape": func() { l2.MeanEstimationFinal(0, 0.1, []float64{1}, [][]int{{0}}) },
		"other landscape (expected)": func() {
			l2.MeanEstimationExpectedTestLoss(0, 0.1, 1, [][]int{{0}})
		},
		"index out of range": func() { me.MeanEstimationFinal(0, 0.1, []float64{1}, [][]int{{1}}) },
		"negative index":     func() { me.MeanEstimationExpectedTestLoss(0, 0.1, 2, [][]int{{-1}}) },
		"empty batch":        func() { me.MeanEstimationFinal(0, 0.1, []float64{1}, [][]int{{0}, {}}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestRound(t *testing.T) {
	f64 := mustNew(t, "mean-estimation-l2", Options{H: 1, S: 1}, false)
	f32 := mustNew(t, "mean-estimation-l2", Options{H: 1, S: 1}, true)
	tests := []struct {
		l        *Landscape
		in, want []float64
	}{
		{f64, []float64{0.1, 0.3}, []float64{0.1, 0.3}},
		{f64, []float64{-0.1, -0.3}, []float64{-0.1, 0}},
		{f64, []float64{-0.1, math.Copysign(0, -1)}, []float64{-0.1, 0}},
		{f32, []float64{0.1, 0.3}, []float64{float64(float32(0.1)), float64(float32(0.3))}},
		{f32, []float64{-0.1, -2}, []float64{float64(float32(-0.1)), 0}},
	}
	for _, tt := range tests {
		got := slices.Clone(tt.in)
		tt.l.Round(got)
		if !slices.Equal(got, tt.want) || math.Signbit(got[1]) {
			t.Errorf("Round(%v) float32=%v = %v, want %v", tt.in, tt.l.float32, got, tt.want)
		}
	}
	if float64(float32(0.1)) == 0.1 {
		t.Fatal("test is vacuous: 0.1 is a float32")
	}
	a := mustNew(t, "archimedes", Options{}, true)
	th := []float64{0.1, -0.2, math.Pi}
	a.Round(th)
	for i, v := range th {
		if v != float64(float32(v)) || math.Abs(v-[]float64{0.1, -0.2, math.Pi}[i]) > 1e-7 {
			t.Errorf("archimedes float32 Round: θ[%d] = %v", i, v)
		}
	}
}

func TestInit(t *testing.T) {
	start := map[string][]float64{
		"gauss": {0.25}, "archimedes": {1, -2, 0.5},
		"mean-estimation": {3}, "mean-estimation-l2": {-1, 0.5},
	}
	for _, c := range cases {
		opt := c.opt
		opt.Start = start[c.name]
		l := mustNew(t, c.name, opt, false)
		i0, err := l.Init(0)
		if err != nil || !slices.Equal(i0, opt.Start) {
			t.Errorf("%s: Init(0) = %v, %v; want Start %v", c.name, i0, err, opt.Start)
		}
		i0[0] = 42 // must not alias Start
		if i0, _ := l.Init(0); i0[0] == 42 {
			t.Errorf("%s: Init(0) aliases Start", c.name)
		}
		a, _ := l.Init(1)
		b, _ := mustNew(t, c.name, opt, false).Init(1)
		d, _ := l.Init(2)
		if !slices.Equal(a, b) {
			t.Errorf("%s: Init(1) not deterministic: %v, %v", c.name, a, b)
		}
		if slices.Equal(a, d) || a[0] == d[0] || a[0] == opt.Start[0] {
			t.Errorf("%s: Init(1) = %v, Init(2) = %v, Start %v", c.name, a, d, opt.Start)
		}
		if _, err := l.Init(-1); err == nil {
			t.Errorf("%s: Init(-1) gave no error", c.name)
		}
		lz := mustNew(t, c.name, c.opt, true) // origin start, float32
		for k := range 20 {
			th, _ := lz.Init(k)
			for _, v := range th {
				if v != float64(float32(v)) {
					t.Errorf("%s float32: Init(%d) = %v not float32", c.name, k, th)
				}
			}
			if c.name == "mean-estimation-l2" && th[1] < 0 {
				t.Errorf("%s: Init(%d) = %v has λ < 0", c.name, k, th)
			}
		}
	}
	// Different options give unrelated draws.
	a, _ := mustNew(t, "mean-estimation", Options{H: 1, S: 1}, false).Init(1)
	b, _ := mustNew(t, "mean-estimation", Options{H: 2, S: 1}, false).Init(1)
	if a[0] == b[0] {
		t.Errorf("Init(1) is the same for H=1 and H=2: %v", a)
	}
}

func TestSamples(t *testing.T) {
	r1, r2 := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	s := Samples(r1, 50)
	if len(s) != 50 {
		t.Fatalf("len = %d", len(s))
	}
	for i, p := range s {
		if p.Row != -1 || p.X != r2.NormFloat64() {
			t.Errorf("sample %d = %+v", i, p)
		}
	}
}
