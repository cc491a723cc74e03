package report

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// TestLeadingExponentClaim: the "GD − SGD is of order η²" verdict fits the
// leading exponent with its first correction, so a precise GD − SGD of
// 3η²(1 + 8η), whose plain log-log slope is resolved away from 2, agrees,
// and one of 3η^2.5 disagrees.
func TestLeadingExponentClaim(t *testing.T) {
	tests := []struct {
		name  string
		diff  func(eta float64) float64
		agree bool
	}{
		{"eta2 with an eta3 term", func(e float64) float64 { return 3 * e * e * (1 + 8*e) }, true},
		{"eta2.5", func(e float64) float64 { return 3 * math.Pow(e, 2.5) }, false},
	}
	text := strings.Replace(lossTestConfig, "etas  = [0.02, 0.05, 0.2]", "etas  = [0.005, 0.01, 0.02, 0.03, 0.05, 0.08]", 1)
	text = strings.Replace(text, "count = 8", "count = 64", 1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("lead.toml", fmt.Sprintf(text, "lead", "float64"))
			if err != nil {
				t.Fatal(err)
			}
			var rows []results.Row
			for _, o := range []string{"sgd", "gd"} {
				for _, eta := range c.Trials.Etas {
					for i := range 64 {
						loss := 2 - eta + 0.01*math.Sin(float64(3*i+1))
						if o == "gd" {
							loss += tc.diff(eta) * (1 + 0.01*math.Cos(float64(7*i+2)))
						}
						rows = append(rows, results.Row{Model: "gauss", Optimizer: o, Eta: eta, Init: 0, Trial: i, DType: "float64",
							Status: results.StatusOK, InitTestLoss: 2, TestLoss: loss, TrainLoss: loss - 0.1})
					}
				}
			}
			r := &Run{Dir: filepath.Join(t.TempDir(), "lead"), Config: c, Rows: rows}
			e := stats.Entry{Model: "gauss", Init: 0, DType: "float64"}
			for _, n := range stats.Names {
				e.Estimates = append(e.Estimates, stats.Estimate{Name: n, Value: 1, StdErr: 0.1, Groups: 16})
			}
			r.Stats = &stats.File{ConfigName: "lead", Entries: []stats.Entry{e}}
			rep, err := Build([]*Run{r}, t.TempDir(), Options{EtaTLimit: 1, Stderr: &bytes.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			var v *Verdict
			for i := range rep.Sections {
				for j := range rep.Sections[i].Verdicts {
					if strings.Contains(rep.Sections[i].Verdicts[j].Claim, "is of order η²") {
						v = &rep.Sections[i].Verdicts[j]
					}
				}
			}
			if v == nil {
				t.Fatal("no order-η² verdict")
			}
			if !strings.Contains(v.Result, "exponent") || v.Agrees != tc.agree {
				t.Errorf("verdict %v (%s), want agrees = %v with the leading-exponent fit", v.Agrees, v.Result, tc.agree)
			}
			if tc.agree && !strings.Contains(v.Result, "plain log-log slope") {
				t.Errorf("result %q does not give the plain slope", v.Result)
			}
		})
	}
}
