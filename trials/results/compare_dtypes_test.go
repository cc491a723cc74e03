package results

import "testing"

// TestCompareDTypes pairs rows across dtypes by identity: the selection
// by dtype, the relabelling, and trials only one dtype holds.
func TestCompareDTypes(t *testing.T) {
	mk := func(trial int, dt string, loss float64) Row {
		return Row{ConfigHash: "h", Model: "m", Optimizer: "sgd", Eta: 0.1, Trial: trial, DType: dt, Status: StatusOK, TestLoss: loss}
	}
	rows := []Row{mk(0, "float64", 1), mk(0, "float32", 1.5), mk(1, "float64", 2), mk(1, "float32", 2), mk(2, "float64", 3)}
	tests := []struct {
		name         string
		da, db       string
		common, only int
		maxRel       float64
	}{
		{"64 vs 32", "float64", "float32", 2, 1, 0.5 / 1.5},
		{"32 vs 64", "float32", "float64", 2, 1, 0.5 / 1.5},
		{"64 vs 64", "float64", "float64", 3, 0, 0},
	}
	for _, tc := range tests {
		c := CompareDTypes(rows, rows, tc.da, tc.db, 1)
		only := len(c.OnlyA) + len(c.OnlyB)
		if c.Common != tc.common || only != tc.only || c.MaxRel != tc.maxRel {
			t.Errorf("%s: common %d, only %d, max rel %v; want %d, %d, %v", tc.name, c.Common, only, c.MaxRel, tc.common, tc.only, tc.maxRel)
		}
		for _, k := range append(c.OnlyA, c.OnlyB...) {
			if k.DType != tc.da {
				t.Errorf("%s: key %v not in %s", tc.name, k, tc.da)
			}
		}
	}
}
