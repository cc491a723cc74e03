package predict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/trials/analysis/stats"
)

// toy is a loss whose data x takes K values with probabilities p[x]:
// l_x(θ) = a_x·θ + ½θᵀM_xθ + (1/6)T_x(θ,θ,θ) on θ ∈ R^d, expanded at θ₀ = 0,
// so g_x = a_x, H_x = M_x and J_x = T_x there. Training sets of N slots
// can be enumerated exactly (K^N of them), which makes the expected Taylor
// coefficients exact.
type toy struct {
	d int
	p []float64
	a [][]float64
	m [][][]float64
	t [][][][]float64
}

func newToy(rng *rand.Rand, k, d int) *toy {
	o := &toy{d: d}
	var sum float64
	for range k {
		w := 0.5 + rng.Float64()
		o.p = append(o.p, w)
		sum += w
		a := make([]float64, d)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		o.a = append(o.a, a)
		m := sq(d)
		for i := range d {
			for j := 0; j <= i; j++ {
				m[i][j] = rng.NormFloat64()
				m[j][i] = m[i][j]
			}
		}
		o.m = append(o.m, m)
		t := make([][][]float64, d)
		for i := range t {
			t[i] = sq(d)
		}
		for i := range d {
			for j := 0; j <= i; j++ {
				for l := 0; l <= j; l++ {
					v := rng.NormFloat64()
					for _, q := range [][3]int{{i, j, l}, {i, l, j}, {j, i, l}, {j, l, i}, {l, i, j}, {l, j, i}} {
						t[q[0]][q[1]][q[2]] = v
					}
				}
			}
		}
		o.t = append(o.t, t)
	}
	for i := range o.p {
		o.p[i] /= sum
	}
	return o
}

func sq(d int) [][]float64 {
	m := make([][]float64, d)
	for i := range m {
		m[i] = make([]float64, d)
	}
	return m
}

func mv(m [][]float64, v []float64) []float64 {
	out := make([]float64, len(v))
	for i := range m {
		for j := range v {
			out[i] += m[i][j] * v[j]
		}
	}
	return out
}

func dotv(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func jvv(t [][][]float64, u, v []float64) []float64 {
	out := make([]float64, len(u))
	for i := range t {
		for j := range u {
			for l := range v {
				out[i] += t[i][j][l] * u[j] * v[l]
			}
		}
	}
	return out
}

// population returns G, H, J.
func (o *toy) population() (g []float64, h [][]float64, j [][][]float64) {
	g = make([]float64, o.d)
	h = sq(o.d)
	j = make([][][]float64, o.d)
	for i := range j {
		j[i] = sq(o.d)
	}
	for x, p := range o.p {
		for i := range o.d {
			g[i] += p * o.a[x][i]
			for k := range o.d {
				h[i][k] += p * o.m[x][i][k]
				for l := range o.d {
					j[i][k][l] += p * o.t[x][i][k][l]
				}
			}
		}
	}
	return g, h, j
}

// exactStats computes every statistic the predictions use from the
// distribution.
func (o *toy) exactStats() Estimates {
	G, H, J := o.population()
	e := func(f func(x int) float64) float64 {
		s := 0.0
		for x, p := range o.p {
			s += p * f(x)
		}
		return s
	}
	d := func(x int) []float64 {
		out := make([]float64, o.d)
		for i := range out {
			out[i] = o.a[x][i] - G[i]
		}
		return out
	}
	HG := mv(H, G)
	// ∇tr C = 2 E[H_x d_x]
	grad := make([]float64, o.d)
	for x, p := range o.p {
		for i, v := range mv(o.m[x], d(x)) {
			grad[i] += 2 * p * v
		}
	}
	vals := map[string]float64{
		stats.GG:       dotv(G, G),
		stats.TrC:      e(func(x int) float64 { return dotv(d(x), d(x)) }),
		stats.GHG:      dotv(G, HG),
		stats.GHHG:     dotv(HG, HG),
		stats.TrHC:     e(func(x int) float64 { return dotv(d(x), mv(H, d(x))) }),
		stats.TrHHC:    e(func(x int) float64 { return dotv(mv(H, d(x)), mv(H, d(x))) }),
		stats.GGradTrC: dotv(G, grad),
		stats.JGGG:     dotv(jvv(J, G, G), G),
		stats.CJG:      e(func(x int) float64 { return dotv(jvv(J, d(x), d(x)), G) }),
		stats.SJ:       e(func(x int) float64 { return dotv(jvv(J, d(x), d(x)), d(x)) }),
		GHxHxG:         e(func(x int) float64 { v := mv(o.m[x], G); return dotv(v, v) }),
		GHxHdx:         e(func(x int) float64 { return dotv(mv(o.m[x], G), mv(H, d(x))) }),
		GHGradTrC:      dotv(HG, grad),
		JxdGG:          e(func(x int) float64 { return dotv(jvv(o.t[x], G, G), d(x)) }),
		GHxHxgx:        e(func(x int) float64 { return dotv(mv(o.m[x], G), mv(o.m[x], o.a[x])) }),
		GxHHxgx:        e(func(x int) float64 { return dotv(mv(H, o.a[x]), mv(o.m[x], o.a[x])) }),
		Jxgxgx:         e(func(x int) float64 { return dotv(jvv(o.t[x], o.a[x], o.a[x]), G) }),
		GxHxgx:         e(func(x int) float64 { return dotv(o.a[x], mv(o.m[x], o.a[x])) }),
	}
	var est Estimates
	for k, v := range vals {
		est.Est = append(est.Est, stats.Estimate{Name: k, Value: v})
	}
	return est
}

// coeffs runs the Taylor-mode recurrences of one training set (slot n
// holds data value set[n]) through schedule s and returns the test-loss
// coefficients c₁..c₃ and the training-loss coefficients c₁, c₂.
func (o *toy) coeffs(s Schedule, set []int) (test [3]float64, train [2]float64) {
	G, H, J := o.population()
	dd := o.d
	b1, b2, b3 := make([]float64, dd), make([]float64, dd), make([]float64, dd)
	for _, w := range s.W {
		gt := make([]float64, dd)
		ht := sq(dd)
		jt := make([][][]float64, dd)
		for i := range jt {
			jt[i] = sq(dd)
		}
		for n, wn := range w {
			x := set[n]
			for i := range dd {
				gt[i] += wn * o.a[x][i]
				for k := range dd {
					ht[i][k] += wn * o.m[x][i][k]
					for l := range dd {
						jt[i][k][l] += wn * o.t[x][i][k][l]
					}
				}
			}
		}
		h1, h2, jj := mv(ht, b1), mv(ht, b2), jvv(jt, b1, b1)
		for i := range dd {
			b3[i] -= h2[i] + jj[i]/2
			b2[i] -= h1[i]
			b1[i] -= gt[i]
		}
	}
	test[0] = dotv(G, b1)
	test[1] = dotv(G, b2) + dotv(b1, mv(H, b1))/2
	test[2] = dotv(G, b3) + dotv(b1, mv(H, b2)) + dotv(jvv(J, b1, b1), b1)/6
	// Training loss: the mean over the slots.
	for _, x := range set {
		fn := float64(len(set))
		train[0] += dotv(o.a[x], b1) / fn
		train[1] += (dotv(o.a[x], b2) + dotv(b1, mv(o.m[x], b1))/2) / fn
	}
	return test, train
}

// expect averages coeffs over every training set of n slots.
func (o *toy) expect(s Schedule) (test [3]float64, gap [2]float64) {
	n, k := s.N, len(o.p)
	set := make([]int, n)
	total := 1
	for range n {
		total *= k
	}
	for idx := range total {
		p := 1.0
		for i, r := 0, idx; i < n; i, r = i+1, r/k {
			set[i] = r % k
			p *= o.p[set[i]]
		}
		te, tr := o.coeffs(s, set)
		for i := range test {
			test[i] += p * te[i]
		}
		for i := range gap {
			gap[i] += p * (te[i] - tr[i])
		}
	}
	return test, gap
}

func schedules(t *testing.T) map[string]Schedule {
	out := map[string]Schedule{}
	must := func(name string, s Schedule, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out[name] = s
	}
	s, err := SGD(4, 1, 1, nil)
	must("sgd(4,1,1)", s, err)
	s, err = SGD(4, 2, 3, nil)
	must("sgd(4,2,3)", s, err)
	s, err = SGD(4, 1, 3, func(e int) []int { return [][]int{nil, {2, 0, 3, 1}, {1, 3, 0, 2}}[e] })
	must("sgd(4,1,3) reshuffled", s, err)
	s, err = SGD(4, 4, 2, nil)
	must("sgd(4,4,2)", s, err)
	s, err = GD(4, 5)
	must("gd(4,5)", s, err)
	s, err = GD(3, 1)
	must("gd(3,1)", s, err)
	return out
}

// TestPredictionsExact: on a distribution with every derivative and every
// coincidence pattern nonzero, the predicted coefficients equal the exact
// expectation (all training sets enumerated) of the Taylor-mode
// coefficients, for SGD and GD schedules with repeated points, several
// epochs and reshuffling.
func TestPredictionsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	o := newToy(rng, 3, 2)
	est := o.exactStats()
	for name, s := range schedules(t) {
		t.Run(name, func(t *testing.T) {
			want, wantGap := o.expect(s)
			c := Count(s)
			pred := TestLoss(c)
			gap := GenGap(c, s.N)
			for k := range 3 {
				got, _, err := est.Eval(pred[k])
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(got-want[k]) > 1e-10*(1+math.Abs(want[k])) {
					t.Errorf("c%d = %.12g, exact %.12g (%s)", k+1, got, want[k], pred[k])
				}
				if want[k] == 0 {
					t.Errorf("c%d is zero: the test cannot fail", k+1)
				}
			}
			for k := range 2 {
				got, _, err := est.Eval(gap[k])
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(got-wantGap[k]) > 1e-10*(1+math.Abs(wantGap[k])) {
					t.Errorf("gap c%d = %.12g, exact %.12g", k+1, got, wantGap[k])
				}
			}
		})
	}
}

// TestOrder2IsProposition2: the counts reproduce stats.Prop2 (written
// independently from the closed-form counts) for any (N, B, E).
func TestOrder2IsProposition2(t *testing.T) {
	est := Estimates{}
	for i, name := range stats.Names {
		est.Est = append(est.Est, stats.Estimate{Name: name, Value: 0.3 + 0.7*float64(i), StdErr: 0.1})
	}
	for _, tc := range [][4]int{{10, 1, 1, 0}, {10, 2, 3, 0}, {10, 2, 3, 1}, {12, 3, 4, 1}, {10, 10, 10, 0}, {7, 7, 1, 0}} {
		n, b, e := tc[0], tc[1], tc[2]
		c, err := ExpectedCounts(n, b, e, tc[3] == 1, 50, 1)
		if err != nil {
			t.Fatal(err)
		}
		p := TestLoss(c)
		c1, _, c2, _, err := stats.Prop2(n, b, e, est.Est)
		if err != nil {
			t.Fatal(err)
		}
		g1, _, _ := est.Eval(p[0])
		g2, _, _ := est.Eval(p[1])
		if math.Abs(g1-c1) > 1e-9*math.Abs(c1) || math.Abs(g2-c2) > 1e-9*math.Abs(c2) {
			t.Errorf("(N,B,E)=(%d,%d,%d): c1 %g vs Prop2 %g, c2 %g vs %g", n, b, e, g1, c1, g2, c2)
		}
	}
}

// TestEvalCovariance: the standard error of a form uses the covariance.
func TestEvalCovariance(t *testing.T) {
	est := Estimates{
		Est: []stats.Estimate{{Name: "a", Value: 1, StdErr: 2}, {Name: "b", Value: 3, StdErr: 1}},
		Cov: [][]float64{{4, -1.5}, {-1.5, 1}},
	}
	v, se, err := est.Eval(Linear{"a": 2, "b": -1})
	if err != nil {
		t.Fatal(err)
	}
	// Var = 4·4 + 1·1 − 2·2·(−1.5)·1 = 16 + 1 + 6 = 23.
	if v != -1 || math.Abs(se-math.Sqrt(23)) > 1e-12 {
		t.Errorf("value %g se %g, want −1 and √23", v, se)
	}
	if _, _, err := est.Eval(Linear{"c": 1}); err == nil {
		t.Error("a missing statistic gave no error")
	}
}

func ExampleTestLoss() {
	c := Count(must(SGD(10, 1, 1, nil)))
	p := TestLoss(c)
	fmt.Println(p[0])
	fmt.Println(p[1])
	// Output:
	// -10·[|G|^2]
	// 95·[G.H.G] + 5·[tr(H C)]
}

func must(s Schedule, err error) Schedule {
	if err != nil {
		panic(err)
	}
	return s
}
