package summary

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/perturb/perturb/trials/results"
)

// SubsetGain is the measured gain of the subset estimate of the test loss
// (config key trials.test) for one model and learning rate, pooled over
// the inits and optimisers of the run.
//
// In each cell (init, optimiser) with n ok trials, the variance of the
// stored estimates across trials is V_s = V_e + E[SE²]: the exact loss's
// trial-to-trial variance V_e plus the subset noise, whose mean the
// stored standard errors estimate without bias. So V_e ≈ V_s − mean(SE²).
// Per trial, the subset run cost C_s = mean(Seconds); an exact run would
// have cost C_e = mean(Seconds − TestSeconds) + P, P the mean worker-seconds
// of the exact pool loss of the checked trials (Row.PoolSeconds) of the
// model. The effective speed-up, the factor by which the subset estimate
// reaches a given standard error of a cell mean faster, is
//
//	S = (C_e / C_s) · (V_e / V_s).
//
// With c₀ the per-trial cost outside the test loss, c_t = TestSeconds/M
// the cost per subset example and v = M·mean(SE²) the per-example
// variance, the subset size minimising the cost of a given error,
// (c₀ + c_t M)(V_e + v/M), is M* = √(c₀ v / (c_t V_e)).
type SubsetGain struct {
	Model string
	Eta   float64
	// M is the subset size (one per model and η; rows of several sizes
	// are not pooled).
	M int
	// Trials is the number of ok subset-estimated trials pooled.
	Trials int
	// VarSubset and MeanSE2 are V_s and mean(SE²), averaged over cells;
	// VarExact = VarSubset − MeanSE2.
	VarSubset, MeanSE2, VarExact float64
	// CostSubset and CostExact are C_s and C_e in worker-seconds per trial.
	CostSubset, CostExact float64
	// Speedup is S; NaN when VarExact ≤ 0 or a cost is unmeasured.
	Speedup float64
	// BestM is M* and BestSpeedup the speed-up it would give.
	BestM       float64
	BestSpeedup float64
}

// SubsetCheck compares subset estimates with the exact pool loss on the
// trials that were checked (Row.PoolTestLoss) for one model.
type SubsetCheck struct {
	Model  string
	Checks int
	// Subsets is the number of distinct subsets among the checks: one per
	// (init, trial index), shared by the index's optimisers and η, so the
	// checks' errors are correlated and Subsets, not Checks, sets how
	// precise MeanZ and Ratio are.
	Subsets int
	// MeanZ is the mean of (estimate − exact)/SE over the checks and
	// MeanZSE its standard error; about 0 for an unbiased estimate.
	MeanZ, MeanZSE float64
	// Ratio is mean((estimate − exact)²) / mean(SE²): about 1 when the
	// standard errors are right.
	Ratio float64
}

// subsetM parses the M of an estimator name "subset:M[:control]"; 0 for
// another estimator.
func subsetM(est string) int {
	rest, ok := strings.CutPrefix(est, "subset:")
	if !ok {
		return 0
	}
	m, _ := strconv.Atoi(strings.SplitN(rest, ":", 2)[0])
	return m
}

type gainKey struct {
	model string
	eta   uint64
	m     int
}

type gainCell struct {
	init int
	opt  string
}

// SubsetGains measures the subset estimator's effective speed-up per
// model and learning rate (see SubsetGain) from the rows of one run; nil
// when no row is subset-estimated.
func SubsetGains(rows []results.Row) []SubsetGain {
	pool := map[string][]float64{} // model -> PoolSeconds of checked rows
	cells := map[gainKey]map[gainCell][]results.Row{}
	for _, r := range rows {
		m := subsetM(r.Estimator())
		if m == 0 || !isOK(r) {
			continue
		}
		if r.PoolSeconds > 0 {
			pool[r.Model] = append(pool[r.Model], r.PoolSeconds)
		}
		k := gainKey{r.Model, etaBits(r.Eta), m}
		if cells[k] == nil {
			cells[k] = map[gainCell][]results.Row{}
		}
		c := gainCell{r.Init, r.Optimizer}
		cells[k][c] = append(cells[k][c], r)
	}
	var out []SubsetGain
	for k, cs := range cells {
		g := SubsetGain{Model: k.model, Eta: math.Float64frombits(k.eta), M: k.m}
		var nc int
		var rest, test, sec float64
		for _, rs := range cs {
			g.Trials += len(rs)
			for _, r := range rs {
				sec += r.Seconds
				test += r.TestSeconds
				rest += r.Seconds - r.TestSeconds
			}
			if len(rs) < 2 {
				continue
			}
			xs := make([]float64, len(rs))
			var se2 float64
			for i, r := range rs {
				xs[i] = r.TestLoss
				se2 += r.TestSE * r.TestSE
			}
			_, sd := meanSD(xs)
			g.VarSubset += sd * sd
			g.MeanSE2 += se2 / float64(len(rs))
			nc++
		}
		n := float64(g.Trials)
		g.CostSubset = sec / n
		p := mean(pool[k.model])
		g.CostExact = rest/n + p
		g.VarSubset /= float64(nc)
		g.MeanSE2 /= float64(nc)
		g.VarExact = g.VarSubset - g.MeanSE2
		g.Speedup, g.BestM, g.BestSpeedup = math.NaN(), math.NaN(), math.NaN()
		if g.VarExact > 0 && g.CostSubset > 0 && p > 0 {
			g.Speedup = g.CostExact / g.CostSubset * g.VarExact / g.VarSubset
			c0, ct := rest/n, test/n/float64(k.m)
			v := float64(k.m) * g.MeanSE2
			if ct > 0 {
				g.BestM = math.Sqrt(c0 * v / (ct * g.VarExact))
				g.BestSpeedup = g.CostExact / (c0 + ct*g.BestM) * g.VarExact / (g.VarExact + v/g.BestM)
			}
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b SubsetGain) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.M, b.M), cmp.Compare(a.Eta, b.Eta))
	})
	return out
}

// SubsetChecks compares the subset estimates of the checked trials with
// their exact pool losses, per model; nil when no trial was checked.
func SubsetChecks(rows []results.Row) []SubsetCheck {
	type acc struct {
		z, d2, se2 []float64
		subsets    map[[2]int]bool
	}
	by := map[string]*acc{}
	for _, r := range rows {
		if subsetM(r.Estimator()) == 0 || !isOK(r) || !finite(r.PoolTestLoss) || r.TestSE <= 0 {
			continue
		}
		a := by[r.Model]
		if a == nil {
			a = &acc{subsets: map[[2]int]bool{}}
			by[r.Model] = a
		}
		a.subsets[[2]int{r.Init, r.Trial}] = true
		d := r.TestLoss - r.PoolTestLoss
		a.z = append(a.z, d/r.TestSE)
		a.d2 = append(a.d2, d*d)
		a.se2 = append(a.se2, r.TestSE*r.TestSE)
	}
	var out []SubsetCheck
	for m, a := range by {
		c := SubsetCheck{Model: m, Checks: len(a.z), Subsets: len(a.subsets), MeanZSE: math.NaN()}
		var sd float64
		c.MeanZ, sd = meanSD(a.z)
		if len(a.z) >= 2 {
			// Conservative for correlated checks: as if only the distinct
			// subsets were independent.
			c.MeanZSE = sd / math.Sqrt(float64(c.Subsets))
		}
		c.Ratio = mean(a.d2) / mean(a.se2)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b SubsetCheck) int { return cmp.Compare(a.Model, b.Model) })
	return out
}
