package summary

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// subsetRows simulates a subset-estimated run: exact losses with
// trial-to-trial variance ve, estimates adding noise of variance s2 (and
// a bias of bias standard errors), stored with TestSE = √s2; every
// checkEvery-th trial also stores the exact loss at poolSec seconds.
func subsetRows(ve, s2, bias float64, checkEvery int) []results.Row {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []results.Row
	for _, eta := range []float64{0.1, 0.2} {
		for _, opt := range []string{"sgd", "gd"} {
			for t := range 2000 {
				exact := 1 + math.Sqrt(ve)*rng.NormFloat64()
				r := results.Row{Model: "convnet", Optimizer: opt, Eta: eta, Init: 1, Trial: t, DType: "float32",
					Status: results.StatusOK, TestEstimator: "subset:500", TestSE: math.Sqrt(s2),
					TestLoss:     exact + math.Sqrt(s2)*(bias+rng.NormFloat64()),
					PoolTestLoss: math.NaN(), Seconds: 0.01, TestSeconds: 0.004}
				if t%checkEvery == 0 {
					r.PoolTestLoss, r.PoolSeconds = exact, 0.5
				}
				rows = append(rows, r)
			}
		}
	}
	return rows
}

func TestSubsetGains(t *testing.T) {
	const ve, s2 = 1e-4, 2e-5
	gs := SubsetGains(subsetRows(ve, s2, 0, 50))
	if len(gs) != 2 {
		t.Fatalf("got %d gains, want one per eta (2)", len(gs))
	}
	// C_e = 0.006 + 0.5, C_s = 0.01; M* = √(c₀ v / (c_t V_e)) with
	// c₀ = 0.006, c_t = 0.004/500, v = 500 s2.
	want := (0.506 / 0.01) * ve / (ve + s2)
	c0, ct, v := 0.006, 0.004/500, 500*s2
	wantM := math.Sqrt(c0 * v / (ct * ve))
	for _, g := range gs {
		if g.M != 500 || g.Trials != 4000 {
			t.Errorf("eta %g: M %d trials %d, want 500 and 4000", g.Eta, g.M, g.Trials)
		}
		if math.Abs(g.MeanSE2-s2) > 1e-12 || math.Abs(g.CostExact-0.506) > 1e-9 || math.Abs(g.CostSubset-0.01) > 1e-9 {
			t.Errorf("eta %g: mean SE² %g cost exact %g subset %g", g.Eta, g.MeanSE2, g.CostExact, g.CostSubset)
		}
		if math.Abs(g.VarExact/ve-1) > 0.12 || math.Abs(g.Speedup/want-1) > 0.12 {
			t.Errorf("eta %g: V_e %.3g (want %.3g), speed-up %.3g (want %.3g)", g.Eta, g.VarExact, ve, g.Speedup, want)
		}
		if math.Abs(g.BestM/wantM-1) > 0.1 || !(g.BestSpeedup >= g.Speedup*0.999) {
			t.Errorf("eta %g: M* %.0f (want %.0f), speed-up there %.3g (at M: %.3g)", g.Eta, g.BestM, wantM, g.BestSpeedup, g.Speedup)
		}
	}
}

func TestSubsetChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bias   float64
		biased bool
	}{
		{"unbiased", 0, false},
		{"biased by one standard error", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := SubsetChecks(subsetRows(1e-4, 2e-5, tc.bias, 20))
			if len(cs) != 1 || cs[0].Checks != 400 || cs[0].Subsets != 100 {
				t.Fatalf("checks %+v, want one model with 400", cs)
			}
			c := cs[0]
			if got := math.Abs(c.MeanZ) > 4*c.MeanZSE; got != tc.biased {
				t.Errorf("mean z %.3f ± %.3f: flagged %v, want %v", c.MeanZ, c.MeanZSE, got, tc.biased)
			}
			if want := 1 + tc.bias*tc.bias; math.Abs(c.Ratio/want-1) > 0.25 {
				t.Errorf("ratio %.3f, want about %.1f", c.Ratio, want)
			}
		})
	}
}
