package trials

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/analysis/stats"
)

const prop2Optimizers = `
[[optimizer]]
label = "sgd-b1"
name = "sgd"
batch = 1
[[optimizer]]
label = "sgd-b2-e3"
name = "sgd"
batch = 2
epochs = 3
reshuffle = true
[[optimizer]]
name = "gd"
steps = 4
`

// exactEstimates turns exact statistics into estimates with zero error.
func exactEstimates(m map[string]float64) []stats.Estimate {
	var out []stats.Estimate
	for _, n := range stats.Names {
		out = append(out, stats.Estimate{Name: n, Value: m[n]})
	}
	return out
}

// checkProp2 compares the Taylor-mode mean coefficients over sets
// training sets with Proposition 2 evaluated on est (the statistics and
// their errors), for every optimiser of c: the difference must lie within
// 4 combined standard errors.
func checkProp2(t *testing.T, r *Runner, model string, init, sets int, est []stats.Estimate) {
	t.Helper()
	for _, o := range r.cfg.Optimizers {
		ts, err := r.TaylorMean(model, init, o, sets, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, b, e := ts.NBE[0], ts.NBE[1], ts.NBE[2]
		p1, p1se, p2, p2se, err := stats.Prop2(n, b, e, est)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s (N=%d B=%d E=%d): c1 %.5g ± %.2g vs Prop 2 %.5g ± %.2g; c2 %.5g ± %.2g vs %.5g ± %.2g",
			model, o.Label, n, b, e, ts.Mean[1], ts.SE[1], p1, p1se, ts.Mean[2], ts.SE[2], p2, p2se)
		for _, x := range []struct {
			name           string
			got, se, p, ps float64
		}{{"c1", ts.Mean[1], ts.SE[1], p1, p1se}, {"c2", ts.Mean[2], ts.SE[2], p2, p2se}} {
			if !(math.Abs(x.got-x.p) <= 4*math.Hypot(x.se, x.ps)+1e-12) {
				t.Errorf("%s %s %s: Taylor mode %.6g ± %.2g, Proposition 2 %.6g ± %.2g", model, o.Label, x.name, x.got, x.se, x.p, x.ps)
			}
		}
	}
}

// TestProp2Landscapes validates the order-η² formula against Taylor mode
// through training on Gauss and Archimedes, with the exact statistics
// (quadrature) and with estimated ones, for SGD B=1, SGD B=2 with three
// reshuffled epochs, and GD.
func TestProp2Landscapes(t *testing.T) {
	for _, tc := range []struct{ model, opts string }{
		{"gauss", "start = [0.4]"},
		{"archimedes", "start = [0.6, -0.3, 0.7]"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			c := mustConfig(t, fmt.Sprintf(`name = "p2"
seed = 21
dtype = "float64"
[trials]
count = 1
n = 6
etas = [0.1]
[[model]]
name = %q
inits = [0]
%s
%s`, tc.model, tc.opts, prop2Optimizers))
			r, err := NewRunner(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			theta, _ := r.InitTheta(tc.model, 0)
			exact := exactEstimates(exactLandscapeStats(r.models[tc.model].land, theta))
			checkProp2(t, r, tc.model, 0, 4000, exact)
			est, err := r.Stats(t.Context(), tc.model, 0, 4000, 8, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkProp2(t, r, tc.model, 0, 4000, est)
		})
	}
}

// TestProp2Logistic does the same on the logistic model over a 40-image
// pool (the pool is the distribution), with the exact pool statistics.
func TestProp2Logistic(t *testing.T) {
	pool := smallPool(t, 40)
	c := mustConfig(t, strings.Replace(strings.SplitN(base, "[[optimizer]]", 2)[0], "inits = [0, 2]", "inits = [2]", 1)+prop2Optimizers)
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	theta, _ := r.InitTheta("logistic", 2)
	o, err := r.Oracle("logistic", theta)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOracle(o)
	all := make([]nets.Sample, pool.Len())
	for i := range all {
		all[i] = nets.Sample{Row: i}
	}
	checkProp2(t, r, "logistic", 2, 300, exactEstimates(exactPoolStats(t, o, all)))
}
