package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestReportJSONMatchesMarkdown: report.json of a small synthetic run
// (gauss, sgd, gd and gdc at three η, with statistics) holds every
// verdict of report.md with its word, and its numbers are those the
// Markdown prints: worst z, slope and interval, counts, the measured
// points.
func TestReportJSONMatchesMarkdown(t *testing.T) {
	r := lossRun(t, "jsonrun", "float64", true)
	// GD − SGD of about 3η² and GDC − SGD of about 0.3η², with noise, so
	// that the slope is fitted and GDC is compared with GD.
	for i := range r.Rows {
		row := &r.Rows[i]
		scale := map[string]float64{"sgd": 0, "gd": 3, "gdc": 0.3}[row.Optimizer]
		row.TestLoss += scale * row.Eta * row.Eta * (1 + 0.05*math.Cos(float64(row.Trial)))
	}
	rep, err := Build([]*Run{r}, t.TempDir(), Options{EtaTLimit: 0.5, Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	var md, js bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := rep.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var f JSONFile
	if err := json.Unmarshal(js.Bytes(), &f); err != nil {
		t.Fatalf("report.json does not parse: %v\n%s", err, js.String())
	}
	text := md.String()
	a, d, i := rep.Tally()
	if f.Schema != JSONSchema || f.Agree != a || f.Disagree != d || f.Inconclusive != i {
		t.Errorf("schema %d, tally %d/%d/%d; want %d, %d/%d/%d", f.Schema, f.Agree, f.Disagree, f.Inconclusive, JSONSchema, a, d, i)
	}
	if len(f.Tests) != a+d+i {
		t.Fatalf("%d tests in report.json, %d verdicts in the report", len(f.Tests), a+d+i)
	}
	ids := map[string]JSONTest{}
	for _, x := range f.Tests {
		key := fmt.Sprintf("%s/%s/%d", x.ID, x.Model, x.Init)
		if _, dup := ids[key]; dup {
			t.Errorf("test %s twice", key)
		}
		ids[x.ID] = x
		line := fmt.Sprintf("- **%s**: %s — %s (%s).", x.Verdict, x.Claim, x.Result, x.Test)
		if !strings.Contains(text, line) {
			t.Errorf("report.md lacks the verdict line %q", line)
		}
		if !math.IsNaN(float64(x.WorstZ)) {
			if z := fmt.Sprintf("worst z %+.2f", float64(x.WorstZ)); !strings.Contains(x.Result, z) {
				t.Errorf("%s: result %q, want %q", x.ID, x.Result, z)
			}
		}
		for _, p := range x.Points {
			if cell := "| " + fmtPM(float64(p.Measured), float64(p.SE)) + " |"; !strings.Contains(text, cell) {
				t.Errorf("%s: report.md lacks the measurement %q at η = %g", x.ID, cell, float64(p.Eta))
			}
		}
	}
	for _, id := range []string{"order1.test_loss.sgd", "order2.test_loss.sgd", "order3.test_loss.sgd", "order3.test_loss.gd",
		"order2.gen_gap.sgd", "gd_minus_sgd.order2", "gd_minus_sgd.order3", "gd_minus_sgd.slope", "gdc_minus_sgd.closer", "gdc_minus_sgd.zero"} {
		x, ok := ids[id]
		if !ok {
			t.Errorf("report.json lacks %s", id)
			continue
		}
		if x.Model != "gauss" || x.Init != 0 {
			t.Errorf("%s: model %q init %d, want gauss 0", id, x.Model, x.Init)
		}
	}
	o3 := ids["order3.test_loss.sgd"]
	// ηT = 0.2, 0.5 and 2: the limit 0.5 tests the first two.
	if float64(o3.EtaTLimit) != 0.5 || len(o3.Etas) != 2 || o3.Etas[0] != 0.02 || o3.Etas[1] != 0.05 || len(o3.Points) != 3 {
		t.Errorf("order3.test_loss.sgd: limit %g, tested η %v, %d points; want 0.5, [0.02 0.05], 3", float64(o3.EtaTLimit), o3.Etas, len(o3.Points))
	}
	if w := float64(o3.WorstEta); w != 0.02 && w != 0.05 {
		t.Errorf("worst η %g is not a tested η", w)
	}
	if b := fmt.Sprintf("(bound %.2f)", float64(o3.Bound)); !strings.Contains(o3.Result, b) {
		t.Errorf("result %q lacks %q", o3.Result, b)
	}
	if x := ids["gd_minus_sgd.slope"]; true {
		// Three η: too few for the leading-exponent fit, so the plain
		// log-log slope over all η (TestLeadingExponentClaim has more).
		want := fmt.Sprintf("slope %.2f, 95%% CI [%.2f, %.2f]", float64(x.Estimate), float64(x.CILo), float64(x.CIHi))
		if !strings.Contains(x.Result, want) || math.IsNaN(float64(x.SE)) {
			t.Errorf("slope result %q, JSON gives %q (s.e. %g)", x.Result, want, float64(x.SE))
		}
		if !math.IsNaN(float64(x.EtaTLimit)) || !strings.Contains(js.String(), `"eta_t_limit": null`) {
			t.Errorf("slope: η·T limit %g, want null", float64(x.EtaTLimit))
		}
	}
	if x := ids["gdc_minus_sgd.closer"]; x.Count == nil || x.Of == nil || !strings.Contains(x.Result, fmt.Sprintf("%d of %d learning rates", *x.Count, *x.Of)) {
		t.Errorf("gdc_minus_sgd.closer: counts %v/%v, result %q", x.Count, x.Of, x.Result)
	}
}

// TestSlug: verdicts without facts get ids from their claims.
func TestSlug(t *testing.T) {
	if got, want := slug("GDC matches SGD (η = 0.5; Corollary 3)"), "gdc_matches_sgd_0.5_corollary_3"; got != want {
		t.Errorf("slug = %q, want %q", got, want)
	}
}
