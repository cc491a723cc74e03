package trials

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// polyMul multiplies polynomials (coefficients, lowest first).
func polyMul(a, b []float64) []float64 {
	out := make([]float64, len(a)+len(b)-1)
	for i := range a {
		for j := range b {
			out[i+j] += a[i] * b[j]
		}
	}
	return out
}

// TestTaylorMeanEstimationExact: on Mean Estimation, θ_{t+1} =
// (1 − ηH)θ_t − ηS x̄_t is a polynomial in η; running that recurrence in
// exact polynomial arithmetic and squaring gives the test loss H θ_T²/2
// as a polynomial, whose first four coefficients Taylor mode must match.
func TestTaylorMeanEstimationExact(t *testing.T) {
	c := mustConfig(t, `name = "me"
seed = 3
dtype = "float64"
[trials]
count = 3
n = 6
etas = [0.1]
[[model]]
name = "mean-estimation"
inits = [0]
h = 1.5
s = 0.8
start = [2.0]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 3
reshuffle = true
[[optimizer]]
name = "gd"
steps = 4
`)
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, s := 1.5, 0.8
	for _, tr := range Plan(c) {
		got, err := r.Taylor(tr)
		if err != nil {
			t.Fatal(err)
		}
		sched, _ := schedule(c, tr)
		set := r.Samples(tr)
		theta := []float64{2.0}
		for _, b := range sched {
			xbar := 0.0
			for _, j := range b {
				xbar += set[j].X / float64(len(b))
			}
			// θ ← θ − η(Hθ + S x̄): multiply by (1 − Hη), add −S x̄ η.
			theta = polyMul(theta, []float64{1, -h})
			theta[1] -= s * xbar
		}
		want := polyMul(theta, theta)
		for k := range got {
			if w := h * want[k] / 2; !(math.Abs(got[k]-w) <= 1e-12*(1+math.Abs(w))) {
				t.Errorf("%v: c%d = %.15g, exact %.15g", tr, k, got[k], w)
			}
		}
	}
}

// TestTaylorMatchesSimulation: for single trials on Gauss, Archimedes and
// the logistic model, the simulated test loss at small η differs from the
// order-3 polynomial by much less than the cubic term, and from the
// order-2 polynomial by about the cubic term: c₁, c₂ and c₃ are right.
func TestTaylorMatchesSimulation(t *testing.T) {
	landCfg := `name = "tl"
seed = 9
dtype = "float64"
[trials]
count = 2
n = 6
etas = [0.1]
[[model]]
name = "gauss"
inits = [0]
start = [0.5]
[[model]]
name = "archimedes"
inits = [0]
start = [0.6, -0.3, 0.7]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 2
reshuffle = true
[[optimizer]]
name = "gd"
steps = 5
`
	imgCfg := strings.Replace(base, "inits = [0, 2]", "inits = [2]", 1)
	for _, tc := range []struct {
		name, cfg string
		image     bool
		eta       float64
	}{{"landscapes", landCfg, false, 0.01}, {"logistic", imgCfg, true, 0.002}} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustConfig(t, tc.cfg)
			var r *Runner
			var err error
			if tc.image {
				r, err = NewRunner(c, smallPool(t, 40))
			} else {
				r, err = NewRunner(c, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, tr := range Plan(c) {
				key := fmt.Sprint(tr.Model, tr.Init, tr.Opt.Label, tr.Index)
				if seen[key] {
					continue
				}
				seen[key] = true
				co, err := r.Taylor(tr)
				if err != nil {
					t.Fatal(err)
				}
				eta := tc.eta
				tr.Eta = eta
				row, err := r.RunOne(tr)
				if err != nil {
					t.Fatal(err)
				}
				p2 := co[0] + co[1]*eta + co[2]*eta*eta
				cubic := co[3] * eta * eta * eta
				res3, res2 := row.TestLoss-p2-cubic, row.TestLoss-p2
				t.Logf("%s: c = %.6g; at eta %g: order-3 residual %.2g, cubic term %.2g", key, co, eta, res3, cubic)
				if !(math.Abs(res3) <= 0.1*math.Abs(cubic)) || !(math.Abs(res2-cubic) <= 0.1*math.Abs(cubic)) {
					t.Errorf("%s: residuals %.3g (order 3), %.3g (order 2) against a cubic term %.3g", key, res3, res2, cubic)
				}
			}
		})
	}
}
