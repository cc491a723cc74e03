package stats

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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
//
// The order-η³ statistics, with a = e^{−h}, g_x = (1 − x²a)/2,
// H_x = x²a/2, J_x = −x²a/2, d_x = a(1 − x²)/2 and E x² = 1, E x⁴ = 3,
// E x⁶ = 15:
//
//	E[(H_x G)²]          = G² a² E x⁴/4                    = 3G²a²/4
//	E[G H_x H d_x]       = G (a/2)(a²/4) E[x²(1 − x²)]     = −G a³/4
//	G H ∇tr C            = G (a/2)(−a²)                    = −G a³/2
//	E[J_x(d_x, G, G)]    = G² (−a²/4) E[x²(1 − x²)]        = G² a²/2
//	E[G H_x H_x g_x]     = G (a²/8) E[x⁴ − a x⁶]           = G a² (3 − 15a)/8
//	E[g_x H H_x g_x]     = (a²/16) E[x² − 2a x⁴ + a² x⁶]   = a² (1 − 6a + 15a²)/16
//	E[J_x(g_x, g_x, G)]  = −G (a/8) E[x² − 2a x⁴ + a² x⁶]  = −G a (1 − 6a + 15a²)/8
func TestGaussClosedForms(t *testing.T) {
	l, err := landscape.New("gauss", landscape.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	h := 0.3
	e := math.Exp(-h)
	G, H, C, J, S := (1-e)/2, e/2, e*e/2, -e/2, -e*e*e
	q := 1 - 6*e + 15*e*e
	want := map[string]float64{
		GG: G * G, TrC: C, GHG: G * H * G, GHHG: G * H * H * G, TrHC: H * C, TrHHC: H * H * C,
		GGradTrC: G * -e * e, JGGG: J * G * G * G, CJG: C * J * G, SJ: S * J,
		GHxHxG: 3 * G * G * e * e / 4, GHxHdx: -G * e * e * e / 4, GHGradTrC: -G * e * e * e / 2,
		JxdGG: G * G * e * e / 2, GHxHxgx: G * e * e * (3 - 15*e) / 8, GxHHxgx: e * e * q / 16,
		Jxgxgx: -G * e * q / 8, GxHxgx: e * q / 8,
	}
	if len(want) != len(Names) {
		t.Fatalf("closed forms for %d statistics, Names has %d", len(want), len(Names))
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
		w, ok := want[est.Name]
		if !ok {
			t.Fatalf("no closed form for %s", est.Name)
		}
		t.Logf("%-12s %10.5f ± %.5f  (exact %10.5f)", est.Name, est.Value, est.StdErr, w)
		if !(math.Abs(est.Value-w) <= 4*est.StdErr) || !(est.StdErr <= 0.2*math.Abs(w)) {
			t.Errorf("%s = %.5g ± %.2g, exact %.5g", est.Name, est.Value, est.StdErr, w)
		}
	}
}

// TestSummarizeCov checks the covariance of two statistics over four
// groups against the hand computation: x = (1, 2, 3, 6), y = (2, 4, 3, 7)
// have means 3 and 4, deviations (−2, −1, 0, 3) and (−2, 0, −1, 3), sums
// of products Sxx = Syy = 14, Sxy = 13, so Cov = [[14, 13], [13, 14]]/12;
// and, on random values in Names order, that the diagonal is the squared
// standard errors of Summarize and the matrix is symmetric.
func TestSummarizeCov(t *testing.T) {
	cov := SummarizeCov([][]float64{{1, 2}, {2, 4}, {3, 3}, {6, 7}})
	want := [][]float64{{14.0 / 12, 13.0 / 12}, {13.0 / 12, 14.0 / 12}}
	for j := range want {
		for k := range want[j] {
			if math.Abs(cov[j][k]-want[j][k]) > 1e-15 {
				t.Errorf("Cov[%d][%d] = %.17g, want %.17g", j, k, cov[j][k], want[j][k])
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	groups := make([][]float64, 50)
	for g := range groups {
		groups[g] = make([]float64, len(Names))
		common := r.NormFloat64()
		for j := range groups[g] {
			groups[g][j] = float64(j) + common + r.NormFloat64()*float64(j+1)
		}
	}
	cov = SummarizeCov(groups)
	for j, est := range Summarize(groups) {
		if math.Sqrt(cov[j][j]) != est.StdErr {
			t.Errorf("%s: sqrt(Cov) = %.17g, StdErr = %.17g", est.Name, math.Sqrt(cov[j][j]), est.StdErr)
		}
		for k := range cov {
			if cov[j][k] != cov[k][j] {
				t.Errorf("Cov[%d][%d] = %g, Cov[%d][%d] = %g", j, k, cov[j][k], k, j, cov[k][j])
			}
		}
	}
	// The shared term makes neighbours correlated: Cov[0][1] ≈ 1/50.
	if c := cov[0][1]; !(c > 0.005 && c < 0.04) {
		t.Errorf("Cov[0][1] = %g, want about 0.02", c)
	}
	if one := SummarizeCov([][]float64{{1, 2}}); !math.IsNaN(one[0][1]) {
		t.Errorf("one group: Cov = %v, want NaN", one)
	}
}

// TestReadOldFile: a stats.json written before the order-η³ statistics
// and the covariance existed still reads; its statistics are found, the
// new ones are reported missing and Cov is nil.
func TestReadOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	old := `{"config_name": "q", "config_hash": "abc", "entries": [{"model": "gauss", "init": 0,
  "dtype": "float64", "block": 16, "samples": 128, "seconds": 0.1,
  "estimates": [{"name": "|G|^2", "value": 0.5, "stderr": 0.01, "groups": 2}]}]}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := f.Get("gauss", 0, GG); !ok || e.Value != 0.5 {
		t.Errorf("|G|^2: %+v, %v", e, ok)
	}
	if _, ok := f.Get("gauss", 0, Jxgxgx); ok {
		t.Errorf("%s found in a file without it", Jxgxgx)
	}
	if f.Entries[0].Cov != nil {
		t.Errorf("Cov = %v, want nil", f.Entries[0].Cov)
	}
}

// TestGroupUnbiasedExactly computes the exact expectation of Group's
// values when the data are a two-point distribution (x = 0.5 with
// probability 0.3, x = 2 otherwise) on Gauss at h = 0.3, by summing over
// all 2¹² assignments of the 12 samples of a group with S = 3 (where a
// wrong S−1 or S(S−1)(S−2) factor shifts a statistic by a third or more),
// and compares with the population values computed directly from the
// per-sample g(x), H(x), J(x): every statistic must agree to rounding.
func TestGroupUnbiasedExactly(t *testing.T) {
	l, err := landscape.New("gauss", landscape.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	h := 0.3
	a := math.Exp(-h)
	xs, ps := []float64{0.5, 2}, []float64{0.3, 0.7}
	gx := func(x float64) float64 { return (1 - x*x*a) / 2 }
	hx := func(x float64) float64 { return x * x * a / 2 }
	jx := func(x float64) float64 { return -x * x * a / 2 }
	E := func(f func(x float64) float64) (s float64) {
		for k, x := range xs {
			s += ps[k] * f(x)
		}
		return s
	}
	G, H, J := E(gx), E(hx), E(jx)
	dx := func(x float64) float64 { return gx(x) - G }
	C := E(func(x float64) float64 { return dx(x) * dx(x) })
	S := E(func(x float64) float64 { return dx(x) * dx(x) * dx(x) })
	grad := 2 * E(func(x float64) float64 { return hx(x) * dx(x) })
	want := map[string]float64{
		GG: G * G, TrC: C, GHG: G * H * G, GHHG: G * H * H * G, TrHC: H * C, TrHHC: H * H * C,
		GGradTrC: G * grad, JGGG: J * G * G * G, CJG: C * J * G, SJ: S * J,
		GHxHxG:    E(func(x float64) float64 { return hx(x) * hx(x) * G * G }),
		GHxHdx:    E(func(x float64) float64 { return G * hx(x) * H * dx(x) }),
		GHGradTrC: G * H * grad,
		JxdGG:     E(func(x float64) float64 { return jx(x) * dx(x) * G * G }),
		GHxHxgx:   E(func(x float64) float64 { return G * hx(x) * hx(x) * gx(x) }),
		GxHHxgx:   E(func(x float64) float64 { return gx(x) * H * hx(x) * gx(x) }),
		Jxgxgx:    E(func(x float64) float64 { return jx(x) * gx(x) * gx(x) * G }),
		GxHxgx:    E(func(x float64) float64 { return gx(x) * hx(x) * gx(x) }),
	}
	const s = 3
	o := gaussOracle{l, h}
	mean := make([]float64, len(Names))
	for bits := 0; bits < 1<<(Blocks*s); bits++ {
		var blocks [Blocks][]nets.Sample
		w := 1.0
		for n := 0; n < Blocks*s; n++ {
			k := bits >> n & 1
			blocks[n/s] = append(blocks[n/s], nets.Sample{X: xs[k]})
			w *= ps[k]
		}
		v, err := Group(o, blocks)
		if err != nil {
			t.Fatal(err)
		}
		for j := range mean {
			mean[j] += w * v[j]
		}
	}
	for j, name := range Names {
		w, ok := want[name]
		if !ok {
			t.Fatalf("no population value for %s", name)
		}
		t.Logf("%-14s E Group = %13.10f, population %13.10f", name, mean[j], w)
		if !(math.Abs(mean[j]-w) <= 1e-12*(1+math.Abs(w))) || w == 0 {
			t.Errorf("%s: E Group = %.15g, population %.15g", name, mean[j], w)
		}
	}
}
