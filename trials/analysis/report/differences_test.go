package report

import (
	"math"
	"strings"
	"testing"
)

// TestGDCOrderTwoVerdict: the claim that GDC − SGD vanishes to order 2
// agrees when the paired differences are noise and is rejected when GDC
// carries an offset, and the table shows both z columns.
func TestGDCOrderTwoVerdict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset float64
		agrees bool
	}{
		{"noise only", 0, true},
		{"offset", 0.01, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lossRun(t, "diffs", "float64", true)
			for i := range r.Rows {
				row := &r.Rows[i]
				switch row.Optimizer {
				case "gd":
					row.TestLoss += 0.001 * math.Cos(float64(5*row.Trial+2))
				case "gdc":
					row.TestLoss += tc.offset + 0.001*math.Cos(float64(7*row.Trial+3))
				}
			}
			rep, err := Build([]*Run{r}, t.TempDir(), Options{EtaTLimit: 10, Stderr: &strings.Builder{}})
			if err != nil {
				t.Fatal(err)
			}
			var found, table bool
			for _, s := range rep.Sections {
				if len(s.Table) > 0 && strings.Join(s.Table[0], "|") == "η|GD − SGD measured|order 2|order 3|z (order 2)|z (order 3)|GDC − SGD measured|z (0, order 2)" {
					table = true
				}
				for _, v := range s.Verdicts {
					if strings.HasPrefix(v.Claim, "GDC − SGD") {
						found = true
						if v.Agrees != tc.agrees {
							t.Errorf("%s: %s (%s), want agrees = %v", v.Claim, v.Word(), v.Result, tc.agrees)
						}
					}
				}
			}
			if !found || !table {
				t.Errorf("verdict found %v, table found %v", found, table)
			}
		})
	}
}
