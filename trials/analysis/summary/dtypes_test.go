package summary

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// TestDTypePairs checks the paired dtype differences: B − A with A the
// wider dtype (float64), matched by trial within (model, optimizer, eta,
// init), diverged and unmatched trials left out, none for one dtype.
func TestDTypePairs(t *testing.T) {
	tests := []struct {
		name  string
		rows  []results.Row
		want  []DTypePair // Mean, Lo, Hi checked; NaN bounds when Pairs < 2
		empty bool
	}{
		{name: "one dtype", rows: []results.Row{row("m", "sgd", 0.1, 0, 0, "float64", 1), row("m", "gd", 0.1, 0, 0, "float64", 2)}, empty: true},
		{name: "paired", rows: []results.Row{
			row("m", "sgd", 0.1, 0, 0, "float32", 1.5), row("m", "sgd", 0.1, 0, 0, "float64", 1),
			row("m", "sgd", 0.1, 0, 1, "float64", 2), row("m", "sgd", 0.1, 0, 1, "float32", 2.5),
			row("m", "sgd", 0.1, 0, 2, "float64", 3), // unmatched
			diverged(row("m", "sgd", 0.1, 0, 3, "float32", 0)), row("m", "sgd", 0.1, 0, 3, "float64", 3),
			row("m", "sgd", 0.2, 0, 0, "float32", 1), row("m", "sgd", 0.2, 0, 0, "float64", 2),
		}, want: []DTypePair{
			{Model: "m", Optimizer: "sgd", Eta: 0.1, A: "float64", B: "float32", Pairs: 2, Mean: 0.5, Lo: 0.5, Hi: 0.5},
			{Model: "m", Optimizer: "sgd", Eta: 0.2, A: "float64", B: "float32", Pairs: 1, Mean: -1, Lo: math.NaN(), Hi: math.NaN()},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DTypePairs(tc.rows)
			if tc.empty {
				if len(got) != 0 {
					t.Fatalf("got %+v, want none", got)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			same := func(a, b float64) bool { return (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-12 }
			for i, w := range tc.want {
				g := got[i]
				if g.Model != w.Model || g.Optimizer != w.Optimizer || g.Eta != w.Eta || g.Init != w.Init ||
					g.A != w.A || g.B != w.B || g.Pairs != w.Pairs || !same(g.Mean, w.Mean) || !same(g.Lo, w.Lo) || !same(g.Hi, w.Hi) {
					t.Errorf("pair %d: got %+v\nwant %+v", i, g, w)
				}
			}
			s := Summarize(tc.rows)
			var tab, js, csv bytes.Buffer
			if err := WriteTable(&tab, s); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, s); err != nil {
				t.Fatal(err)
			}
			if err := WriteDTypePairsCSV(&csv, s); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(tab.String(), "paired dtype differences") {
				t.Errorf("table lacks the dtype section:\n%s", tab.String())
			}
			var j struct {
				DTypePairs []map[string]any `json:"dtype_pairs"`
			}
			if err := json.Unmarshal(js.Bytes(), &j); err != nil || len(j.DTypePairs) != len(tc.want) {
				t.Errorf("json dtype_pairs %v (%v)", j.DTypePairs, err)
			}
			if n := strings.Count(csv.String(), "\n"); n != len(tc.want)+1 {
				t.Errorf("csv has %d lines:\n%s", n, csv.String())
			}
		})
	}
}
