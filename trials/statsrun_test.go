package trials

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/trials/stats"
)

// exactLandscapeStats computes every statistic of a landscape at theta by
// Gauss–Hermite quadrature over x ~ N(0, 1): 30 nodes integrate
// polynomials in x up to degree 59 exactly, and every per-sample quantity
// of the landscapes (gradients, Hessians, third derivatives, and their
// products up to degree 3) is a polynomial in x.
func exactLandscapeStats(l *landscape.Landscape, theta []float64) map[string]float64 {
	const q = 30
	xs, ws := make([]float64, q), make([]float64, q)
	quad.Hermite{}.FixedLocations(xs, ws, math.Inf(-1), math.Inf(1))
	p := l.NumParams()
	e := func(i int) []float64 { v := make([]float64, p); v[i] = 1; return v }
	G, HG := make([]float64, p), make([]float64, p) // HG = E[H_x g_x]
	H := make([][]float64, p)
	J := make([][][]float64, p)
	for i := range H {
		H[i] = make([]float64, p)
		J[i] = make([][]float64, p)
		for j := range J[i] {
			J[i][j] = make([]float64, p)
		}
	}
	type point struct {
		w float64
		g []float64
	}
	var pts []point
	for n := range xs {
		x, w := xs[n]*math.Sqrt2, ws[n]/math.Sqrt(math.Pi)
		g := make([]float64, p)
		l.SampleGrad(theta, x, g)
		h := l.Hessian(theta, x)
		for i := 0; i < p; i++ {
			G[i] += w * g[i]
			for j := 0; j < p; j++ {
				H[i][j] += w * h[i][j]
				HG[i] += w * h[i][j] * g[j]
				for k := 0; k < p; k++ {
					J[i][j][k] += w * l.Third(theta, x, e(i), e(j), e(k))
				}
			}
		}
		pts = append(pts, point{w, g})
	}
	C := make([][]float64, p)
	for i := range C {
		C[i] = make([]float64, p)
	}
	S := make([][][]float64, p)
	for i := range S {
		S[i] = make([][]float64, p)
		for j := range S[i] {
			S[i][j] = make([]float64, p)
		}
	}
	for _, pt := range pts {
		for i := 0; i < p; i++ {
			for j := 0; j < p; j++ {
				C[i][j] += pt.w * (pt.g[i] - G[i]) * (pt.g[j] - G[j])
				for k := 0; k < p; k++ {
					S[i][j][k] += pt.w * (pt.g[i] - G[i]) * (pt.g[j] - G[j]) * (pt.g[k] - G[k])
				}
			}
		}
	}
	mv := func(m [][]float64, v []float64) []float64 {
		out := make([]float64, p)
		for i := range m {
			for j := range v {
				out[i] += m[i][j] * v[j]
			}
		}
		return out
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	HGv := mv(H, G)
	var trC, trHC, trHHC, jggg, cjg, sj float64
	HH := make([][]float64, p)
	for i := range HH {
		HH[i] = make([]float64, p)
		for j := range HH[i] {
			for k := 0; k < p; k++ {
				HH[i][j] += H[i][k] * H[k][j]
			}
		}
	}
	for i := 0; i < p; i++ {
		trC += C[i][i]
		for j := 0; j < p; j++ {
			trHC += H[i][j] * C[j][i]
			trHHC += HH[i][j] * C[j][i]
			for k := 0; k < p; k++ {
				jggg += J[i][j][k] * G[i] * G[j] * G[k]
				cjg += C[i][j] * J[i][j][k] * G[k]
				sj += S[i][j][k] * J[i][j][k]
			}
		}
	}
	gradTrC := make([]float64, p) // 2(E[H_x g_x] − H G)
	for i := range gradTrC {
		gradTrC[i] = 2 * (HG[i] - HGv[i])
	}
	return map[string]float64{
		stats.GG: dot(G, G), stats.TrC: trC, stats.GHG: dot(G, HGv), stats.GHHG: dot(HGv, HGv),
		stats.TrHC: trHC, stats.TrHHC: trHHC, stats.GGradTrC: dot(G, gradTrC),
		stats.JGGG: jggg, stats.CJG: cjg, stats.SJ: sj,
	}
}

// TestLandscapeStatsClosedForms estimates every statistic on each
// landscape through Runner.Stats and compares with the exact values.
func TestLandscapeStatsClosedForms(t *testing.T) {
	for _, tc := range []struct{ model, opts string }{
		{"gauss", "start = [0.4]"},
		{"archimedes", "start = [0.6, -0.3, 0.7]"},
		{"mean-estimation", "h = 2.0\ns = 0.5\nstart = [1.5]"},
		{"mean-estimation-l2", "h = 1.0\ns = 0.7\nstart = [0.8, 0.3]"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			c := mustConfig(t, fmt.Sprintf(`name = "st"
seed = 5
dtype = "float64"
[trials]
count = 1
n = 4
etas = [0.1]
[[model]]
name = %q
inits = [0]
%s
[[optimizer]]
name = "sgd"
batch = 1
`, tc.model, tc.opts))
			r, err := NewRunner(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			theta, err := r.InitTheta(tc.model, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := exactLandscapeStats(r.models[tc.model].land, theta)
			est, err := r.Stats(context.Background(), tc.model, 0, 3000, 8, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range est {
				w := want[e.Name]
				t.Logf("%-12s %11.5g ± %.2g  exact %11.5g", e.Name, e.Value, e.StdErr, w)
				// Statistics that vanish exactly (e.g. S on symmetric
				// noise) must come out within 4 standard errors of 0.
				if !(math.Abs(e.Value-w) <= 4*e.StdErr+1e-12*(1+math.Abs(w))) {
					t.Errorf("%s = %.5g ± %.2g, exact %.5g", e.Name, e.Value, e.StdErr, w)
				}
			}
		})
	}
}

// TestStatsIndependentOfWorkers: the estimate is a function of the config,
// the model, the initialisation and the number of groups only.
func TestStatsIndependentOfWorkers(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Stats(context.Background(), "archimedes", 1, 40, 6, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Stats(context.Background(), "archimedes", 1, 40, 6, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("%s: %+v with 1 worker, %+v with 3", a[i].Name, a[i], b[i])
		}
	}
}

// exactPoolStats computes every statistic over a whole pool, the
// distribution training sets are drawn from, with the oracle's exact
// per-sample derivatives (population moments: every row weighs 1/P).
func exactPoolStats(t *testing.T, o stats.Oracle, pool []nets.Sample) map[string]float64 {
	t.Helper()
	p, n := o.NumParams(), len(pool)
	g := make([][]float64, n)
	for i := range g {
		g[i] = make([]float64, p)
	}
	if err := o.Grads(pool, g); err != nil {
		t.Fatal(err)
	}
	G := make([]float64, p)
	for _, gi := range g {
		for j := range G {
			G[j] += gi[j] / float64(n)
		}
	}
	d := make([][]float64, n)
	for i := range d {
		d[i] = make([]float64, p)
		for j := range d[i] {
			d[i][j] = g[i][j] - G[j]
		}
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	// H G, H d_i (over the pool) and H_i d_i (own sample).
	vs := [][]float64{G}
	sets := [][]nets.Sample{pool}
	for i := range d {
		vs = append(vs, d[i], d[i])
		sets = append(sets, pool, pool[i:i+1])
	}
	hv := make([][]float64, len(vs))
	for i := range hv {
		hv[i] = make([]float64, p)
	}
	if err := o.HVPs(vs, sets, hv); err != nil {
		t.Fatal(err)
	}
	// c3 of G, and per i of d_i + G, d_i − G, d_i, over the pool.
	dirs := [][]float64{G}
	for i := range d {
		plus, minus := make([]float64, p), make([]float64, p)
		for j := range plus {
			plus[j], minus[j] = d[i][j]+G[j], d[i][j]-G[j]
		}
		dirs = append(dirs, plus, minus, d[i])
	}
	jsets := make([][]nets.Sample, len(dirs))
	for i := range jsets {
		jsets[i] = pool
	}
	jets := make([][4]float64, len(dirs))
	if err := o.Jets(dirs, jsets, jets); err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{stats.GG: dot(G, G), stats.GHG: dot(G, hv[0]), stats.GHHG: dot(hv[0], hv[0]), stats.JGGG: 6 * jets[0][3]}
	for i := range d {
		hd, hid := hv[1+2*i], hv[2+2*i]
		fn := float64(n)
		m[stats.TrC] += dot(d[i], d[i]) / fn
		m[stats.TrHC] += dot(d[i], hd) / fn
		m[stats.TrHHC] += dot(hd, hd) / fn
		m[stats.GGradTrC] += 2 * dot(G, hid) / fn
		m[stats.CJG] += (jets[1+3*i][3] - jets[2+3*i][3] - 2*jets[0][3]) / fn
		m[stats.SJ] += 6 * jets[3+3*i][3] / fn
	}
	return m
}

// TestImageStatsAgainstPool estimates the statistics of the logistic
// model (float64, at a Gaussian initialisation) on a 40-example pool and
// compares them with their exact values over the pool.
func TestImageStatsAgainstPool(t *testing.T) {
	pool := smallPool(t, 40)
	c := mustConfig(t, strings.Replace(base, "inits = [0, 2]", "inits = [2]", 1))
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	theta, err := r.InitTheta("logistic", 2)
	if err != nil {
		t.Fatal(err)
	}
	o, err := r.Oracle("logistic", theta)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOracle(o)
	all := make([]nets.Sample, pool.Len())
	for i := range all {
		all[i] = nets.Sample{Row: i}
	}
	want := exactPoolStats(t, o, all)
	est, err := r.Stats(context.Background(), "logistic", 2, 400, 5, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range est {
		w := want[e.Name]
		t.Logf("%-12s %11.5g ± %.2g  exact %11.5g", e.Name, e.Value, e.StdErr, w)
		if !(math.Abs(e.Value-w) <= 4*e.StdErr) || !(e.StdErr < 0.5*math.Abs(w)) {
			t.Errorf("%s = %.5g ± %.2g, exact %.5g", e.Name, e.Value, e.StdErr, w)
		}
	}
}
