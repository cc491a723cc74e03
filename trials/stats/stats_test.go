package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
)

// gaussOracle is the Gauss landscape l_x(h) = (h + x² e^{−h})/2 at one h,
// with its Taylor coefficients along v written out:
// c₀ = l, c₁ = v(1 − x²e^{−h})/2, c₂ = v²x²e^{−h}/4, c₃ = −v³x²e^{−h}/12.
type gaussOracle struct {
	l *landscape.Landscape
	h float64
}

func (o gaussOracle) NumParams() int { return 1 }

func (o gaussOracle) Grads(s []nets.Sample, out [][]float64) error {
	for i, x := range s {
		o.l.SampleGrad([]float64{o.h}, x.X, out[i])
	}
	return nil
}

func (o gaussOracle) HVPs(v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	for k := range v {
		out[k][0] = 0
		for _, x := range sets[k] {
			out[k][0] += o.l.Hessian([]float64{o.h}, x.X)[0][0] * v[k][0] / float64(len(sets[k]))
		}
	}
	return nil
}

func (o gaussOracle) Jets(v [][]float64, sets [][]nets.Sample, out [][4]float64) error {
	e := math.Exp(-o.h)
	for k := range v {
		out[k] = [4]float64{}
		a := v[k][0]
		for _, x := range sets[k] {
			n := float64(len(sets[k]))
			x2 := x.X * x.X
			out[k][0] += (o.h + x2*e) / 2 / n
			out[k][1] += a * (1 - x2*e) / 2 / n
			out[k][2] += a * a * x2 * e / 4 / n
			out[k][3] += -a * a * a * x2 * e / 12 / n
		}
	}
	return nil
}

// TestGaussClosedForms estimates every statistic on Gauss at h = 0.3 from
// 4000 groups and compares with the closed forms: G = (1 − e^{−h})/2,
// H = e^{−h}/2, C = e^{−2h}/2, J = −e^{−h}/2, S = −e^{−3h},
// ∇tr C = −e^{−2h}; each within 4 standard errors, and the standard
// errors small enough for the test to mean something.
func TestGaussClosedForms(t *testing.T) {
	l, err := landscape.New("gauss", landscape.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	h := 0.3
	e := math.Exp(-h)
	G, H, C, J, S := (1-e)/2, e/2, e*e/2, -e/2, -e*e*e
	want := map[string]float64{
		GG: G * G, TrC: C, GHG: G * H * G, GHHG: G * H * H * G, TrHC: H * C, TrHHC: H * H * C,
		GGradTrC: G * -e * e, JGGG: J * G * G * G, CJG: C * J * G, SJ: S * J,
	}
	o := gaussOracle{l, h}
	r := rand.New(rand.NewPCG(1, 2))
	const groups, s = 4000, 8
	var vals [][]float64
	for g := 0; g < groups; g++ {
		var blocks [Blocks][]nets.Sample
		for b := range blocks {
			blocks[b] = landscape.Samples(r, s)
		}
		v, err := Group(o, blocks)
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
	}
	for _, est := range Summarize(vals) {
		w := want[est.Name]
		t.Logf("%-12s %10.5f ± %.5f  (exact %10.5f)", est.Name, est.Value, est.StdErr, w)
		if !(math.Abs(est.Value-w) <= 4*est.StdErr) || !(est.StdErr <= 0.2*math.Abs(w)) {
			t.Errorf("%s = %.5g ± %.2g, exact %.5g", est.Name, est.Value, est.StdErr, w)
		}
	}
}
