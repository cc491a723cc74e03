package trials

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/config"
)

// taylorSubsetConfig: the logistic model, float64, a training set of 4,
// SGD reshuffled over two epochs and GD.
var taylorSubsetConfig = strings.Replace(strings.Replace(base, "inits = [0, 2]", "inits = [2]", 1), "n = 6", "n = 4", 1)

// perExample returns the per-example coefficients c_x (taylorCoeffs of
// the jets of pool row x along dirs) of every pool row, straight from the
// graph.
func perExample(t *testing.T, o *imageOracle, dirs [][]float64) [][4]float64 {
	t.Helper()
	n := o.r.data.Len()
	j, err := o.get(len(dirs), n)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]int, len(dirs))
	for k := range rows {
		for x := 0; x < n; x++ {
			rows[k] = append(rows[k], x)
		}
	}
	res := make([][4]float64, len(dirs)*n)
	if err := j.Coeffs(o.theta, dirs, rows, res); err != nil {
		t.Fatal(err)
	}
	out := make([][4]float64, n)
	jx := make([][4]float64, len(dirs))
	for x := range out {
		for k := range dirs {
			jx[k] = res[k*n+x]
		}
		out[x] = taylorCoeffs(jx)
	}
	return out
}

func closeTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// TestTaylorSubsetExact checks the subset coefficients against
// independent computations on a 60-image pool, for one trial per
// optimiser:
//   - the pool's coefficients (TestJets over the pool) are the mean of
//     the per-example coefficients from the graph;
//   - a subset's c₁..c₃ are the means of the per-example coefficients
//     over its rows, repeats counted (a permutation of the pool, the pool
//     ten times over across jet chunks, a draw with replacement, one
//     example);
//   - a subset's c₀ is exactly the pool loss at θ₀ (the control variate),
//     which equals the pool jets' c₀;
//   - a subset's standard errors are subsetCombine's of the group means
//     of the per-example coefficients.
func TestTaylorSubsetExact(t *testing.T) {
	const n = 60
	c := mustConfig(t, taylorSubsetConfig)
	r, st, io := taylorSubsetSetup(t, c, n)
	rng := rand.New(rand.NewPCG(1, 2))
	tens := make([]int, 10*n)
	for i := range tens {
		tens[i] = (i * 7) % n
	}
	draw := make([]int, 37)
	for i := range draw {
		draw[i] = rng.IntN(n)
	}
	draw[5], draw[9] = draw[3], draw[3]
	for _, opt := range c.Optimizers {
		tr := Trial{Model: "logistic", Init: 2, Opt: opt, Index: 1}
		dirs, err := r.taylorDirections(io, tr)
		if err != nil {
			t.Fatal(err)
		}
		cx := perExample(t, io, dirs)
		j := make([][4]float64, len(dirs))
		if err := io.TestJets(dirs, nil, j); err != nil {
			t.Fatal(err)
		}
		pool := taylorCoeffs(j)
		var mean [4]float64
		for _, v := range cx {
			for k := range mean {
				mean[k] += v[k] / n
			}
		}
		for k := range pool {
			if !closeTo(pool[k], mean[k], 1e-12) {
				t.Errorf("%s: pool c%d = %.15g, mean of per-example %.15g", tr.Opt.Label, k, pool[k], mean[k])
			}
		}
		if !closeTo(st.loss, pool[0], 1e-12) {
			t.Errorf("%s: pool loss at θ₀ %.15g, pool jets' c0 %.15g", tr.Opt.Label, st.loss, pool[0])
		}
		for _, tc := range []struct {
			name string
			rows []int
		}{
			{"permutation", rng.Perm(n)},
			{"pool ten times", tens},
			{"draw with repeats", draw},
			{"one example", []int{17}},
		} {
			got, se, err := r.taylorOn(io, tr, tc.rows, st.loss)
			if err != nil {
				t.Fatal(err)
			}
			var want, wantSE [4]float64
			for _, x := range tc.rows {
				for k := range want {
					want[k] += cx[x][k] / float64(len(tc.rows))
				}
			}
			// The standard error over the draw: group means of the
			// per-example coefficients over subsetGroupBounds.
			b := subsetGroupBounds(len(tc.rows))
			for k := 1; k < 4; k++ {
				var gm []float64
				for g := 0; g+1 < len(b); g++ {
					var m float64
					for _, x := range tc.rows[b[g]:b[g+1]] {
						m += cx[x][k] / float64(b[g+1]-b[g])
					}
					gm = append(gm, m)
				}
				_, wantSE[k] = subsetCombine(gm, b)
				if !(closeTo(se[k], wantSE[k], 1e-9) || math.IsNaN(se[k]) && math.IsNaN(wantSE[k])) {
					t.Errorf("%s %s: standard error of c%d %.15g, from the per-example group means %.15g", tr.Opt.Label, tc.name, k, se[k], wantSE[k])
				}
			}
			want[0] = st.loss
			if got[0] != st.loss {
				t.Errorf("%s %s: c0 = %.15g, not the pool loss at θ₀ %.15g", tr.Opt.Label, tc.name, got[0], st.loss)
			}
			for k := 1; k < 4; k++ {
				if !closeTo(got[k], want[k], 1e-12) {
					t.Errorf("%s %s: c%d = %.15g, mean of per-example %.15g", tr.Opt.Label, tc.name, k, got[k], want[k])
				}
			}
			if len(tc.rows)%n == 0 {
				for k := range got {
					if !closeTo(got[k], pool[k], 1e-12) {
						t.Errorf("%s %s: c%d = %.15g, pool %.15g", tr.Opt.Label, tc.name, k, got[k], pool[k])
					}
				}
			}
		}
	}
}

// TestTaylorSubsetUnbiased compares, for the GD optimiser on 700
// training sets of a 200-image pool, the coefficients read off each set's
// own subset of M = 10 examples (SetTaylorSubset) with the pool's on the
// same set:
//   - the mean over sets of subset − pool is within 4 standard errors of
//     0 for c₁, c₂ and c₃ (each set's subset is an independent draw);
//   - its variance over sets is the predicted mean of σ²_set/M, with σ²
//     the pool variance of the per-example coefficients, to a ratio in
//     [0.75, 1.3] (its estimate over 700 sets of heavy-tailed products
//     scatters by about 10%);
//   - the sets' squared standard errors over their draws (from the
//     group means; nine degrees of freedom each, heavy-tailed) average
//     to the same prediction, to a ratio in [0.8, 1.25];
//   - c₀ is the pool loss at θ₀ for every set;
//   - TaylorMean with the subset on two workers gives the mean of the
//     per-set values, its standard error includes the subset noise
//     (larger than the pool's), and SubsetSE is √(Σ se²)/sets.
func TestTaylorSubsetUnbiased(t *testing.T) {
	if testing.Short() {
		t.Skip("700 training sets")
	}
	const n, m, sets = 200, 10, 700
	c := mustConfig(t, taylorSubsetConfig)
	r, st, io := taylorSubsetSetup(t, c, n)
	gd := c.Optimizers[1]
	d := make([][]float64, 4)
	var predicted [4]float64
	sub, subSE := make([][4]float64, sets), make([][4]float64, sets)
	pool := make([][4]float64, sets)
	for i := 0; i < sets; i++ {
		tr := Trial{Model: "logistic", Init: 2, Opt: gd, Index: i}
		for _, mm := range []int{0, m} {
			if err := r.SetTaylorSubset(mm); err != nil {
				t.Fatal(err)
			}
			cs, se, err := r.taylor(io, tr)
			if err != nil {
				t.Fatal(err)
			}
			if mm == 0 {
				pool[i] = cs
			} else {
				sub[i], subSE[i] = cs, se
			}
		}
		if sub[i][0] != st.loss {
			t.Fatalf("set %d: c0 = %.15g, pool loss at θ₀ %.15g", i, sub[i][0], st.loss)
		}
		dirs, err := r.taylorDirections(io, tr)
		if err != nil {
			t.Fatal(err)
		}
		cx := perExample(t, io, dirs)
		for k := 1; k < 4; k++ {
			d[k] = append(d[k], sub[i][k]-pool[i][k])
			var s1, s2 float64
			for _, v := range cx {
				s1 += v[k] / n
				s2 += v[k] * v[k] / n
			}
			predicted[k] += (s2 - s1*s1) / m / sets
		}
	}
	for k := 1; k < 4; k++ {
		mean, v := meanVar(d[k])
		se := math.Sqrt(v / sets)
		var se2 float64
		for i := range subSE {
			se2 += subSE[i][k] * subSE[i][k] / sets
		}
		t.Logf("c%d: subset − pool %.3g ± %.2g; variance %.3g, predicted %.3g, mean se² %.3g", k, mean, se, v, predicted[k], se2)
		if math.Abs(mean) > 4*se {
			t.Errorf("c%d: subset − pool %g ± %g: biased", k, mean, se)
		}
		if ratio := v / predicted[k]; ratio < 0.75 || ratio > 1.3 {
			t.Errorf("c%d: variance of subset − pool %g, predicted σ²/M %g (ratio %.2f)", k, v, predicted[k], ratio)
		}
		if ratio := se2 / predicted[k]; ratio < 0.8 || ratio > 1.25 {
			t.Errorf("c%d: mean squared standard error over the draw %g, predicted σ²/M %g (ratio %.2f)", k, se2, predicted[k], ratio)
		}
	}
	if err := r.SetTaylorSubset(m); err != nil {
		t.Fatal(err)
	}
	ts, err := r.TaylorMean("logistic", 2, gd, sets, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range ts.Mean {
		ms, vs := meanVar(column(sub, k))
		_, vp := meanVar(column(pool, k))
		if !closeTo(ts.Mean[k], ms, 1e-12) || !closeTo(ts.SE[k], math.Sqrt(vs/sets), 1e-9) {
			t.Errorf("TaylorMean c%d = %g ± %g, per-set mean %g ± %g", k, ts.Mean[k], ts.SE[k], ms, math.Sqrt(vs/sets))
		}
		var se2 float64
		for i := range subSE {
			se2 += subSE[i][k] * subSE[i][k]
		}
		if want := math.Sqrt(se2) / sets; !closeTo(ts.SubsetSE[k], want, 1e-9) {
			t.Errorf("TaylorMean c%d: subset part of the standard error %g, want %g", k, ts.SubsetSE[k], want)
		}
		if k > 0 && !(vs > vp) {
			t.Errorf("c%d: spread over sets with the subset %g, not above the pool's %g", k, vs, vp)
		}
	}
}

func column(x [][4]float64, k int) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v[k]
	}
	return out
}

// TestSetTaylorSubsetErrors: negative sizes and landscapes are refused
// with the fix; 0 is always accepted.
func TestSetTaylorSubsetErrors(t *testing.T) {
	img, err := NewRunner(mustConfig(t, taylorSubsetConfig), smallPool(t, 20))
	if err != nil {
		t.Fatal(err)
	}
	land, err := NewRunner(mustConfig(t, `name = "l"
seed = 1
dtype = "float64"
[trials]
count = 2
n = 4
etas = [0.1]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "gd"
steps = 2
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *Runner
		m    int
		want string // "" for no error
	}{
		{"image, 0", img, 0, ""},
		{"image, 5", img, 5, ""},
		{"image, -1", img, -1, "positive number"},
		{"landscape, 0", land, 0, ""},
		{"landscape, 5", land, 5, "has no pool"},
	} {
		err := tc.r.SetTaylorSubset(tc.m)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if err == nil && tc.r.TaylorSubset() != tc.m {
			t.Errorf("%s: TaylorSubset %d", tc.name, tc.r.TaylorSubset())
		}
	}
	o, err := land.Oracle("gauss", []float64{0.5})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.(seriesOracle).TestJets([][]float64{{1}}, []int{0}, make([][4]float64, 1)); err == nil || !strings.Contains(err.Error(), "no pool") {
		t.Errorf("landscape TestJets over rows: %v", err)
	}
}

// taylorSubsetSetup is a runner of c on a synthetic pool of n images, the
// state of its logistic init 2 and an image oracle at that init (closed
// when the test ends).
func taylorSubsetSetup(t *testing.T, c *config.Config, n int) (*Runner, *initState, *imageOracle) {
	t.Helper()
	r, err := NewRunner(c, smallPool(t, n))
	if err != nil {
		t.Fatal(err)
	}
	theta, err := r.InitTheta("logistic", 2)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.newWorker(DefaultMaxBytes, 1).init("logistic", 2)
	if err != nil {
		t.Fatal(err)
	}
	o, err := r.Oracle("logistic", theta)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOracle(o) })
	return r, st, o.(*imageOracle)
}
