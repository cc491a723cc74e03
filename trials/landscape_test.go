package trials

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/trials/results"
)

const meanEstConfig = `name = "me"
seed = 7
dtype = "float64"
[trials]
count = 40
n = 4
etas = [0.05, 0.2]
[[model]]
name = "mean-estimation"
inits = [0]
h = 0.5
s = 2.0
start = [3.0]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 3
[[optimizer]]
name = "gd"
steps = 5
[[optimizer]]
name = "gdc"
steps = 5
[[optimizer]]
name = "igr"
steps = 5
[[optimizer]]
name = "smith"
batch = 2
steps = 5
`

// TestMeanEstimationClosedForm runs every deterministic optimiser on Mean
// Estimation through the runner and checks each trial's final weight and
// test loss against the closed form of the linear dynamics. On this
// landscape trĈ does not depend on θ, so GDC equals GD; IGR and Smith's
// modified losses rescale the gradient by (1 + ηH/2) (H constant, and
// every minibatch gradient has the same slope H).
func TestMeanEstimationClosedForm(t *testing.T) {
	c := mustConfig(t, meanEstConfig)
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	if err := r.Run(context.Background(), &col, Settings{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if len(col.rows) != c.NumTrials() {
		t.Fatalf("%d rows, want %d", len(col.rows), c.NumTrials())
	}
	l, err := landscape.New("mean-estimation", c.Models[0].Options(), false)
	if err != nil {
		t.Fatal(err)
	}
	const h = 0.5
	for _, row := range col.rows {
		tr := Trial{Model: row.Model, Init: row.Init, Index: row.Trial, Eta: row.Eta}
		for _, o := range c.Optimizers {
			if o.Label == row.Optimizer {
				tr.Opt = o
			}
		}
		set := r.Samples(tr)
		xs := make([]float64, len(set))
		for i, s := range set {
			xs[i] = s.X
		}
		var schedule [][]int
		eta := row.Eta
		switch tr.Opt.Name {
		case "sgd":
			for e := 0; e < tr.Opt.Epochs; e++ {
				schedule = append(schedule, []int{0, 1}, []int{2, 3})
			}
		default:
			for s := 0; s < tr.Opt.Steps; s++ {
				schedule = append(schedule, []int{0, 1, 2, 3})
			}
		}
		if tr.Opt.Name == "igr" || tr.Opt.Name == "smith" {
			// θ ← θ − η(1 + ηH/2)∇L: GD with learning rate η(1 + ηH/2).
			eta *= 1 + eta*h/2
		}
		want := l.MeanEstimationFinal(3, eta, xs, schedule)
		if len(row.Weights) != 1 || !(math.Abs(row.Weights[0]-want) <= 1e-12*(1+math.Abs(want))) {
			t.Errorf("%v: final weights %v, closed form %.15g", row.Key(), row.Weights, want)
		}
		if wantLoss := h * want * want / 2; !(math.Abs(row.TestLoss-wantLoss) <= 1e-12*(1+wantLoss)) {
			t.Errorf("%v: test loss %.15g, closed form %.15g", row.Key(), row.TestLoss, wantLoss)
		}
		if row.InitTestLoss != h*9/2 || row.Status != results.StatusOK || row.DivergedStep != -1 {
			t.Errorf("%v: init loss %g status %s step %d", row.Key(), row.InitTestLoss, row.Status, row.DivergedStep)
		}
	}
	// The trial mean of the SGD test loss agrees with its expectation.
	var mean, sq float64
	var n int
	for _, row := range col.rows {
		if row.Optimizer == "sgd" && row.Eta == 0.2 {
			mean += row.TestLoss
			sq += row.TestLoss * row.TestLoss
			n++
		}
	}
	mean /= float64(n)
	se := math.Sqrt((sq/float64(n) - mean*mean) / float64(n-1))
	var schedule [][]int
	for e := 0; e < 3; e++ {
		schedule = append(schedule, []int{0, 1}, []int{2, 3})
	}
	want := l.MeanEstimationExpectedTestLoss(3, 0.2, 4, schedule)
	if !(math.Abs(mean-want) <= 4*se) {
		t.Errorf("SGD mean test loss %.5g ± %.2g, expectation %.5g", mean, se, want)
	}
}

const independenceConfig = `name = "k"
seed = 11
dtype = "float32"
[trials]
count = 70
n = 4
etas = [0.1, 0.3]
[[model]]
name = "archimedes"
inits = [0, 1]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 1
epochs = 2
reshuffle = true
[[optimizer]]
name = "sde"
batch = 2
refine = 4
[[optimizer]]
name = "gdc"
steps = 3
`

// TestResultsIndependentOfK runs the same landscape config with K = 1,
// K = 64 and automatic K, with different worker counts, and requires
// identical rows: a trial's result depends only on the config and its
// identity.
func TestResultsIndependentOfK(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	ref := runAll(t, c, nil, Settings{K: 1, Workers: 1})
	for _, tc := range []struct{ k, workers int }{{64, 2}, {0, 3}} {
		got := runAll(t, c, nil, Settings{K: tc.k, Workers: tc.workers})
		for key, want := range ref {
			if g := got[key]; !sameRow(g, want) {
				t.Errorf("K=%d workers=%d: %v\n got %+v\nwant %+v", tc.k, tc.workers, key, g, want)
			}
		}
	}
	// Archimedes records (u, v, z); SGD moves them.
	for key, row := range ref {
		if key.Model == "archimedes" && (len(row.Weights) != 3 || row.Weights[2] == 0) {
			t.Errorf("%v: weights %v", key, row.Weights)
		}
	}
}

// sameRow compares rows bitwise, NaN equal to NaN.
func sameRow(a, b results.Row) bool {
	fa := []float64{a.InitTestLoss, a.InitTestAcc, a.TestLoss, a.TestAcc, a.TrainLoss, a.TestSE, a.PoolTestLoss}
	fb := []float64{b.InitTestLoss, b.InitTestAcc, b.TestLoss, b.TestAcc, b.TrainLoss, b.TestSE, b.PoolTestLoss}
	fa, fb = append(fa, a.Weights...), append(fb, b.Weights...)
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if math.Float64bits(fa[i]) != math.Float64bits(fb[i]) && !(math.IsNaN(fa[i]) && math.IsNaN(fb[i])) {
			return false
		}
	}
	a.Weights, b.Weights = nil, nil
	a.InitTestLoss, a.InitTestAcc, a.TestLoss, a.TestAcc, a.TrainLoss, a.TestSE, a.PoolTestLoss = 0, 0, 0, 0, 0, 0, 0
	b.InitTestLoss, b.InitTestAcc, b.TestLoss, b.TestAcc, b.TrainLoss, b.TestSE, b.PoolTestLoss = 0, 0, 0, 0, 0, 0, 0
	// Timings are measurements of the machine, not of the trial.
	a.Seconds, a.TestSeconds, a.PoolSeconds = 0, 0, 0
	b.Seconds, b.TestSeconds, b.PoolSeconds = 0, 0, 0
	return reflect.DeepEqual(a, b)
}

// TestLandscapeDivergence: a huge eta on Gauss diverges (exp(−h) blows up)
// and is recorded with its step; the other trials are unaffected.
func TestLandscapeDivergence(t *testing.T) {
	text := strings.Replace(strings.Replace(independenceConfig, "etas = [0.1, 0.3]", "etas = [0.1, 1e30]", 1), "count = 70", "count = 3", 1)
	c := mustConfig(t, text)
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	if err := r.Run(context.Background(), &col, Settings{K: 8}); err != nil {
		t.Fatal(err)
	}
	var diverged int
	for _, row := range col.rows {
		switch {
		case row.Eta == 1e30 && row.Status == results.StatusDiverged:
			diverged++
			if row.DivergedStep < 0 || !math.IsNaN(row.TestLoss) {
				t.Errorf("%v: diverged at step %d with test loss %g", row.Key(), row.DivergedStep, row.TestLoss)
			}
		case row.Eta == 0.1 && (row.Status != results.StatusOK || !finite(row.TestLoss)):
			t.Errorf("%v: small eta recorded as %s, test loss %g", row.Key(), row.Status, row.TestLoss)
		}
	}
	if diverged == 0 {
		t.Error("no trial with eta = 1e30 diverged")
	}
}
