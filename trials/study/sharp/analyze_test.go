package sharp

import (
	"fmt"
	"math"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// TestSummarize checks a Dist against hand values: 1, 2, 3, 4 has mean
// 2.5, SD √(5/3), SE √(5/3)/2 and 95% interval 2.5 ± 3.182446305284263·SE
// (t with 3 degrees of freedom), quartiles 1.75, 2.5, 3.25.
func TestSummarize(t *testing.T) {
	d := Summarize([]float64{4, 1, 3, 2})
	se := math.Sqrt(5.0/3) / 2
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mean", d.Mean, 2.5}, {"sd", d.SD, math.Sqrt(5.0 / 3)}, {"se", d.SE, se},
		{"lo", d.Lo, 2.5 - 3.182446305284263*se}, {"hi", d.Hi, 2.5 + 3.182446305284263*se},
		{"q1", d.Q1, 1.75}, {"median", d.Median, 2.5}, {"q3", d.Q3, 3.25}, {"min", d.Min, 1}, {"max", d.Max, 4},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %.15g, want %.15g", c.name, c.got, c.want)
		}
	}
}

// sharpRow makes a row whose pool λ goes from 10 to 10 + dl and whose test
// loss goes from 1 to 1 + dt.
func sharpRow(opt string, trial int, dl, dt float64) results.Row {
	rec := Record{
		Init: &Point{Pool: &Measures{Samples: 5, Lambda: []Num{10}, TrC: &Stat{Value: 2}}},
		End:  &Point{Pool: &Measures{Samples: 5, Lambda: []Num{Num(10 + dl)}, TrC: &Stat{Value: 3}}},
	}
	b, err := rec.Encode()
	if err != nil {
		panic(err)
	}
	return results.Row{Model: "m", Optimizer: opt, Eta: 0.1, Init: 1, Trial: trial, DType: "float64",
		Status: results.StatusOK, InitTestLoss: 1, TestLoss: 1 + dt, Sharpness: b}
}

// TestAnalyze checks the change distributions, the paired differences and
// the regression on synthetic rows: optimiser "a" changes λ by 1 + 0.1 i
// and "b" by 0.5 + 0.1 i on training set i, so the paired difference is
// 0.5 with no spread; the test-loss change is 2Δλ + 0.3 for "a" (slope 2,
// intercept 0.3, r = 1) and −Δλ for "b"; a diverged row and a row without
// a record are left out; tr C changes by 1 everywhere.
func TestAnalyze(t *testing.T) {
	var rows []results.Row
	for i := range 6 {
		da, db := 1+0.1*float64(i), 0.5+0.1*float64(i)
		rows = append(rows, sharpRow("a", i, da, 2*da+0.3), sharpRow("b", i, db, -db))
	}
	bad := sharpRow("b", 6, 100, 100)
	bad.Status = results.StatusDiverged
	none := sharpRow("a", 7, 100, 100)
	none.Sharpness = nil
	rows = append(rows, bad, none)
	an, err := Analyze(rows)
	if err != nil {
		t.Fatal(err)
	}
	find := func(what string, ok bool) {
		if !ok {
			t.Fatalf("%s missing", what)
		}
	}
	var ca, cc *Change
	for i, c := range an.Changes {
		if c.Optimizer == "a" && c.Measure == Lambda {
			ca = &an.Changes[i]
		}
		if c.Optimizer == "b" && c.Measure == TrC {
			cc = &an.Changes[i]
		}
	}
	find("change a λ", ca != nil)
	find("change b tr C", cc != nil)
	if ca.Delta.N != 6 || math.Abs(ca.Delta.Mean-1.25) > 1e-12 || math.Abs(ca.TestLossDelta.Mean-2.8) > 1e-12 || ca.Loss != "pool" {
		t.Errorf("change a: %+v", ca.Delta)
	}
	if cc.Delta.N != 6 || cc.Delta.Mean != 1 || cc.Delta.SD != 0 {
		t.Errorf("change b tr C: %+v", cc.Delta)
	}
	var p *Paired
	for i := range an.Paired {
		if an.Paired[i].Measure == Lambda {
			p = &an.Paired[i]
		}
	}
	find("paired λ", p != nil)
	if p.A != "a" || p.B != "b" || p.Delta.N != 6 || math.Abs(p.Delta.Mean-0.5) > 1e-12 || math.Abs(p.Delta.Hi-0.5) > 1e-12 {
		t.Errorf("paired: %+v", p.Delta)
	}
	// ΔL_a − ΔL_b = 2 da + 0.3 + db = 2.8 + 0.3 i; mean over i = 0..5 is 3.55.
	if math.Abs(p.TestLossDelta.Mean-3.55) > 1e-12 {
		t.Errorf("paired test loss %v, want 3.55", p.TestLossDelta.Mean)
	}
	got := map[string]Relation{}
	for _, r := range an.Relations {
		if r.Measure == Lambda {
			got[r.Optimizer] = r
		}
	}
	ra, rb, all := got["a"], got["b"], got[""]
	if math.Abs(ra.Slope-2) > 1e-12 || math.Abs(ra.Intercept-0.3) > 1e-12 || math.Abs(ra.R-1) > 1e-12 || ra.SlopeSE > 1e-12 || ra.N != 6 {
		t.Errorf("relation a: %+v", ra)
	}
	if math.Abs(rb.Slope+1) > 1e-12 || math.Abs(rb.R+1) > 1e-12 {
		t.Errorf("relation b: %+v", rb)
	}
	if all.N != 12 || !(all.RLo < all.R && all.R < all.RHi) || fmt.Sprint(all.SlopeSE) == "NaN" {
		t.Errorf("pooled relation: %+v", all)
	}
}
