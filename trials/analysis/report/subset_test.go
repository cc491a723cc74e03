package report

import (
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/analysis/summary"
)

// TestSubsetInReport: a run whose rows are subset estimates gets the
// speed-up section and report.json's "subset" with the same numbers as
// summary.SubsetGains; a run of exact rows gets neither.
func TestSubsetInReport(t *testing.T) {
	for _, subset := range []bool{false, true} {
		r := lossRun(t, "sub", "float64", true)
		if subset {
			for i := range r.Rows {
				row := &r.Rows[i]
				row.TestEstimator, row.TestSE = "subset:100", 0.001*(1+0.1*math.Cos(float64(row.Trial)))
				row.Seconds, row.TestSeconds = 0.01, 0.002
				row.PoolTestLoss = math.NaN()
				if row.Trial == 0 {
					row.PoolTestLoss, row.PoolSeconds = row.TestLoss+0.0005, 0.3
				}
			}
		}
		rep, err := Build([]*Run{r}, t.TempDir(), Options{Stderr: &strings.Builder{}})
		if err != nil {
			t.Fatal(err)
		}
		var section bool
		for _, s := range rep.Sections {
			section = section || strings.HasPrefix(s.Title, "Subset estimate of the test loss")
		}
		js := rep.JSONData().Subset
		if section != subset || (len(js) > 0) != subset {
			t.Fatalf("subset rows %v: section %v, report.json subset entries %d", subset, section, len(js))
		}
		if !subset {
			continue
		}
		gs := summary.SubsetGains(r.Rows)
		if len(js) != len(gs) || len(gs) != len(r.Config.Trials.Etas) {
			t.Fatalf("report.json has %d gains, summary %d, etas %d", len(js), len(gs), len(r.Config.Trials.Etas))
		}
		for i, g := range gs {
			j := js[i]
			if j.Model != g.Model || j.Eta != g.Eta || j.M != 100 || float64(j.VarSubset) != g.VarSubset || float64(j.CostExact) != g.CostExact {
				t.Errorf("gain %d: report.json %+v, summary %+v", i, j, g)
			}
			if math.Abs(float64(j.CostExact)-(0.008+0.3)) > 1e-12 {
				t.Errorf("gain %d: exact cost %v, want 0.308", i, j.CostExact)
			}
		}
	}
}
