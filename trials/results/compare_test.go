package results

import (
	"math"
	"testing"
)

func TestCompare(t *testing.T) {
	nan := math.NaN()
	row := func(trial int, loss float64, w ...float64) Row {
		return Row{Model: "gauss", Optimizer: "sgd", Eta: 0.1, Trial: trial, DType: "float64", Status: StatusOK,
			TestLoss: loss, TrainLoss: 1, InitTestLoss: 2, DivergedStep: -1, Weights: w}
	}
	diverged := row(0, nan)
	diverged.Status, diverged.DivergedStep = StatusDiverged, 3
	for _, tc := range []struct {
		name                 string
		a, b                 []Row
		tol                  float64
		onlyA, onlyB, differ int
		maxRel               float64
	}{
		{"equal", []Row{row(0, 1, 1, 2)}, []Row{row(0, 1, 1, 2)}, 0, 0, 0, 0, 0},
		{"within tol", []Row{row(0, 1)}, []Row{row(0, 1+1e-12)}, 1e-9, 0, 0, 0, 1e-12},
		{"beyond tol", []Row{row(0, 1)}, []Row{row(0, 1+1e-6)}, 1e-9, 0, 0, 1, 1e-6},
		{"weight differs", []Row{row(0, 1, 1, 2)}, []Row{row(0, 1, 1, 2.5)}, 1e-9, 0, 0, 1, 0.2},
		{"weight count differs", []Row{row(0, 1, 1)}, []Row{row(0, 1, 1, 2)}, 1e-9, 0, 0, 1, 0},
		{"NaN equals NaN", []Row{diverged}, []Row{diverged}, 0, 0, 0, 0, 0},
		{"NaN vs number", []Row{diverged}, []Row{row(0, 1)}, 1, 0, 0, 3, math.Inf(1)},
		{"only in one", []Row{row(0, 1), row(1, 1)}, []Row{row(1, 1), row(2, 1), row(3, 1)}, 0, 1, 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.a, tc.b, tc.tol)
			if len(c.OnlyA) != tc.onlyA || len(c.OnlyB) != tc.onlyB || len(c.Differences) != tc.differ ||
				!(math.Abs(c.MaxRel-tc.maxRel) <= 1e-4*tc.maxRel || c.MaxRel == tc.maxRel) {
				t.Fatalf("got only %d/%d, %d differences %+v, max rel %g", len(c.OnlyA), len(c.OnlyB), len(c.Differences), c.Differences, c.MaxRel)
			}
			if c.Same() != (tc.onlyA+tc.onlyB+tc.differ == 0) {
				t.Errorf("Same() = %v", c.Same())
			}
		})
	}
}
