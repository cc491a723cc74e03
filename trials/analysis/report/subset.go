package report

import (
	"fmt"
	"math"
	"strconv"

	"github.com/perturb/perturb/trials/analysis/summary"
)

// subsetSection states the measured gain of the subset estimate of the
// test loss in run r (summary.SubsetGains, summary.SubsetChecks), or false
// when no row of r is subset-estimated.
func subsetSection(r *Run) (Section, bool) {
	gs := summary.SubsetGains(r.Rows)
	if len(gs) == 0 {
		return Section{}, false
	}
	s := Section{
		Title: "Subset estimate of the test loss: effective speed-up (" + r.Config.Name + ")",
		Text: []string{
			"Each trial's test loss was estimated on its own M pool examples with the control variate at the initialisation (docs/statistics.md). " +
				"The variance of the estimates across trials, V_s, is the exact loss's V_e plus the subset noise, estimated by the mean squared standard error: V_e = V_s − mean(SE²). " +
				"The cost per trial is measured in worker-seconds: C_s as run, C_e with the exact pool loss of the checked trials in place of the subset's. " +
				"The effective speed-up (C_e/C_s)·(V_e/V_s) is how much faster the subset estimate reaches a given standard error of a cell's mean. " +
				"M* = √(c₀v/(c_t V_e)) is the subset size that would maximise it (c₀ the cost outside the test loss, c_t per subset example, v = M·mean(SE²) the per-example variance).",
		},
		Table: [][]string{{"model", "η", "M", "trials", "V_s", "mean SE²", "V_e", "C_s (ms)", "C_e (ms)", "speed-up", "M*", "speed-up at M*"}},
	}
	for _, g := range gs {
		s.Table = append(s.Table, []string{g.Model, strconv.FormatFloat(g.Eta, 'g', -1, 64), strconv.Itoa(g.M), strconv.Itoa(g.Trials),
			fmt.Sprintf("%.3g", g.VarSubset), fmt.Sprintf("%.3g", g.MeanSE2), fmt.Sprintf("%.3g", g.VarExact),
			fmt.Sprintf("%.3g", 1e3*g.CostSubset), fmt.Sprintf("%.3g", 1e3*g.CostExact),
			fmt.Sprintf("%.3g", g.Speedup), fmt.Sprintf("%.0f", g.BestM), fmt.Sprintf("%.3g", g.BestSpeedup)})
	}
	for _, c := range summary.SubsetChecks(r.Rows) {
		se := "–"
		if !math.IsNaN(c.MeanZSE) {
			se = fmt.Sprintf("%.2f", c.MeanZSE)
		}
		s.Text = append(s.Text, fmt.Sprintf("%s: %d trials were also evaluated on the whole pool, on %d distinct subsets (a trial index's optimisers and learning rates share one, so their errors are correlated). "+
			"(estimate − exact)/SE has mean %.2f ± %s s.e. (0 for an unbiased estimate; the s.e. counts only the distinct subsets as independent), "+
			"and mean((estimate − exact)²)/mean(SE²) = %.2f (1 when the standard errors are right, within about ±%.0f%% (two s.e.) for this many subsets).",
			c.Model, c.Checks, c.Subsets, c.MeanZ, se, c.Ratio, 200*math.Sqrt(2/float64(max(c.Subsets, 1)))))
	}
	return s, true
}
