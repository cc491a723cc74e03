package trials

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// TestSubsetCombine checks the estimate and its standard error against
// direct formulas: equal groups give the mean of the group means and
// sd(group means)/√G; unequal groups weight the means by size.
func TestSubsetCombine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		m        []float64
		b        []int
		mean, se float64
	}{
		{"equal", []float64{1, 2, 3, 4}, []int{0, 5, 10, 15, 20}, 2.5, math.Sqrt(5 * (2.25 + 0.25 + 0.25 + 2.25) / (3 * 20.0))},
		{"unequal", []float64{1, 3}, []int{0, 1, 4}, 2.5, math.Sqrt((1*1.5*1.5 + 3*0.5*0.5) / (1 * 4.0))},
		{"one group", []float64{7}, []int{0, 3}, 7, math.NaN()},
	} {
		mean, se := subsetCombine(tc.m, tc.b)
		if math.Abs(mean-tc.mean) > 1e-14 || !(math.Abs(se-tc.se) < 1e-14 || math.IsNaN(se) && math.IsNaN(tc.se)) {
			t.Errorf("%s: (%g, %g), want (%g, %g)", tc.name, mean, se, tc.mean, tc.se)
		}
	}
	// The equal-group standard error is sd(group means)/√G: with group
	// means 1..4 (sample variance 5/3) that is √(5/3)/2.
	if _, se := subsetCombine([]float64{1, 2, 3, 4}, []int{0, 5, 10, 15, 20}); math.Abs(se-math.Sqrt(5.0/3)/2) > 1e-14 {
		t.Errorf("equal groups: se %g, want %g", se, math.Sqrt(5.0/3)/2)
	}
	for _, m := range []int{1, 7, 10, 2000, 2003} {
		b := subsetGroupBounds(m)
		if b[0] != 0 || b[len(b)-1] != m || len(b)-1 != min(m, subsetGroups) {
			t.Errorf("bounds of %d: %v", m, b)
		}
	}
}

const subsetConfig = `name = "subset"
seed = 9
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 150
n = 4
etas = [0.3, 1.0]
%s
[[model]]
name = "logistic"
inits = [1]
[[optimizer]]
name = "sgd"
batch = 1
epochs = 1
[[optimizer]]
name = "gd"
steps = 4
`

// TestSubsetEstimator runs the same trials with the exact pool loss and
// with subset estimates (M = 20 of a 400-example pool, with and without
// the control variate) and checks, over 600 trials per estimator:
//   - unbiasedness: the mean of (estimate − exact) is within 4 standard
//     errors of 0 (averaged per trial index first: the four trials of an
//     index share their subset, so only the 150 indices are independent);
//   - the variance: the variance of (estimate − exact) matches the mean
//     stored TestSE² (the prediction σ²/M) within 25%, and the control
//     variate lowers it;
//   - paired differences: GD − SGD of the estimates agrees with GD − SGD
//     of the exact losses (same trials) within 4 standard errors, with a
//     far smaller variance than the unpaired estimates (the subset is
//     shared);
//   - the checked trials (index a multiple of poolCheckEvery) carry the
//     exact loss;
//   - the estimates and their standard errors are the same bit for bit
//     with K = 1 on one worker and K = 16 on two.
func TestSubsetEstimator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1800 trials")
	}
	pool := smallPool(t, 400)
	exact := runAll(t, mustConfig(t, fmt.Sprintf(subsetConfig, "")), pool, Settings{Workers: 2})
	var prevVar float64
	for _, control := range []string{"none", "init"} {
		c := mustConfig(t, fmt.Sprintf(subsetConfig, fmt.Sprintf("test = { subset = 20, control = %q }", control)))
		sub := runAll(t, c, pool, Settings{K: 16, Workers: 2})
		var d, se2 []float64
		perIndex := make([]float64, c.Trials.Count)
		for k, r := range sub {
			perIndex[k.Trial] += (r.TestLoss - exact[k].TestLoss) / 4
			e := exact[k]
			if r.Status != results.StatusOK || !strings.HasPrefix(r.TestEstimator, "subset:20") {
				t.Fatalf("%v: status %s estimator %q", k, r.Status, r.TestEstimator)
			}
			d = append(d, r.TestLoss-e.TestLoss)
			se2 = append(se2, r.TestSE*r.TestSE)
			if checked := k.Trial%poolCheckEvery == 0; checked != !math.IsNaN(r.PoolTestLoss) || checked && math.Abs(r.PoolTestLoss-e.TestLoss) > 1e-12 {
				t.Errorf("%v: pool check %g, exact %g", k, r.PoolTestLoss, e.TestLoss)
			}
			if !(r.Seconds > 0 && r.TestSeconds > 0 && r.TestSeconds <= r.Seconds) {
				t.Errorf("%v: seconds %g, test seconds %g", k, r.Seconds, r.TestSeconds)
			}
		}
		_, v := meanVar(d)
		predicted, _ := meanVar(se2)
		mean, vi := meanVar(perIndex)
		sm := math.Sqrt(vi / float64(len(perIndex)))
		t.Logf("control %s: estimate − exact %.3g ± %.2g; variance %.3g, predicted (mean SE²) %.3g", control, mean, sm, v, predicted)
		if math.Abs(mean) > 4*sm {
			t.Errorf("control %s: biased: mean of estimate − exact %g ± %g", control, mean, sm)
		}
		if r := v / predicted; r < 0.75 || r > 1.25 {
			t.Errorf("control %s: variance of estimate − exact %g, mean SE² %g (ratio %.2f)", control, v, predicted, r)
		}
		if control == "init" && !(v < prevVar) {
			t.Errorf("the control variate did not lower the variance: %g with, %g without", v, prevVar)
		}
		prevVar = v
		// Paired differences GD − SGD at each eta.
		for _, eta := range c.Trials.Etas {
			var ds, de []float64
			for k, r := range sub {
				if k.Optimizer != "gd" || k.Eta != eta {
					continue
				}
				ks := k
				ks.Optimizer = "sgd"
				ds = append(ds, r.TestLoss-sub[ks].TestLoss)
				de = append(de, exact[k].TestLoss-exact[ks].TestLoss)
			}
			diff := make([]float64, len(ds))
			for i := range ds {
				diff[i] = ds[i] - de[i]
			}
			m, vd := meanVar(diff)
			_, vs := meanVar(ds)
			if math.Abs(m) > 4*math.Sqrt(vd/float64(len(diff))) {
				t.Errorf("control %s eta %g: GD − SGD estimate − exact %g ± %g", control, eta, m, math.Sqrt(vd/float64(len(diff))))
			}
			if !(vd < v/2) {
				t.Errorf("control %s eta %g: paired difference's subset noise %g not far below the unpaired %g", control, eta, vd, v)
			}
			_ = vs
		}
		if control == "init" {
			again := runAll(t, c, pool, Settings{K: 1, Workers: 1})
			for k, r := range sub {
				if r.TestLoss != again[k].TestLoss || !closeRows(r, again[k], 1e-12) {
					t.Fatalf("%v: K=16 on two workers %+v\nK=1 on one %+v", k, r, again[k])
				}
			}
		}
	}
}

func meanVar(x []float64) (mean, v float64) {
	x = slices.Clone(x)
	for _, e := range x {
		mean += e
	}
	mean /= float64(len(x))
	for _, e := range x {
		v += (e - mean) * (e - mean)
	}
	return mean, v / float64(len(x)-1)
}
