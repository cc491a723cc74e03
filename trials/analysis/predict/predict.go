// Package predict turns the landscape statistics of package trials/analysis/stats
// into the perturbative theory's predictions: the expected test loss (and
// generalisation gap) after T steps of SGD or GD as a polynomial in η to
// orders 1, 2 and 3, and the differences the paper's corollaries name.
//
// # Derivation
//
// Every trajectory starts at θ₀, so θ_T = θ₀ + ηA₁ + η²A₂ + η³A₃ + O(η⁴)
// with (trials/taylor.go derives the recurrences; ḡ_t, H̄_t, J̄_t are the
// step's weighted means at θ₀, B_t = Σ_{r<t} ḡ_r)
//
//	A₁ = −Σ_t ḡ_t
//	A₂ = Σ_{s<t} H̄_t ḡ_s
//	A₃ = −Σ_{r<s<t} H̄_t H̄_s ḡ_r − ½ Σ_t J̄_t(B_t, B_t)
//
// and the test loss L(θ_T) = L + ηc₁ + η²c₂ + η³c₃ + O(η⁴) with
//
//	c₁ = G·A₁,  c₂ = G·A₂ + ½A₁ᵀHA₁,  c₃ = G·A₃ + A₁ᵀHA₂ + J(A₁,A₁,A₁)/6.
//
// Write the steps as weights on training slots (Schedule): ḡ_t = Σ_n
// W[t][n] g_n and so on, where the slots hold independent draws from the
// pool. Then every term is a sum over slot tuples of a schedule weight
// times the expectation of a product of per-sample derivatives, and that
// expectation depends only on which slots of the tuple coincide (draws in
// distinct slots are independent, even when they happen to be the same
// pool point). So
//
//	E c₃ = −Σ Q_mkn E[G·H_m H_k g_n] − ½ Σ R_mkn E[J_m(g_k, g_n, G)]
//	       − Σ a_j P_mn E[g_jᵀ H H_m g_n] − (1/6) Σ a_j a_k a_n E[J(g_j, g_k, g_n)]
//
// with the arrays of Counts, and each expectation is one of the estimated
// statistics (d_x = g_x − G, ∇tr C = 2E[H_x d_x]):
//
//	E[G·H_m H_k g_n]:  distinct G·H·H·G;  m=k G.Hx.Hx.G;  m=n G·H·H·G + G.Hx.H.dx;
//	                   k=n G·H·H·G + ½G·H·∇tr C;  all equal G.Hx.Hx.gx
//	E[J_m(g_k,g_n,G)]: distinct J(G,G,G);  k=n C:J·G + J(G,G,G);
//	                   m=k or m=n J(G,G,G) + Jx(dx,G,G);  all equal Jx(gx,gx,G)
//	E[g_jᵀ H H_m g_n]: distinct G·H·H·G;  j=m G·H·H·G + G.Hx.H.dx;
//	                   j=n tr(HHC) + G·H·H·G;  m=n G·H·H·G + ½G·H·∇tr C;  all gx.H.Hx.gx
//	E[J(g_j,g_k,g_n)]: distinct J(G,G,G);  two equal C:J·G + J(G,G,G);
//	                   all equal S:J + 3 C:J·G + J(G,G,G)
//
// (for example E[Gᵀ H_x H g_x] = Gᵀ E[H_x] H G + E[Gᵀ H_x H d_x], and
// E[H_x g_x] = HG + ½∇tr C). Orders 1 and 2 in the same way give
// Proposition 2 for any schedule (tested against stats.Prop2):
//
//	E c₁ = −T|G|²
//	E c₂ = (ΣP + ½T²) G·H·G + ½Σa_n² tr(HC) + ½(Σ_n P_nn) G·∇tr C
//
// The training loss L̂(θ_T) expands the same way with ĝ = (1/N)Σ_j g_j and
// Ĥ = (1/N)Σ_j H_j in place of G and H, which adds the slot j of the
// training mean to each tuple; E L̂(θ₀) = L, so the generalisation gap
// (test minus training loss) is
//
//	gap₁ = (T/N) tr C
//	gap₂ = c₂ − E[ĝ·A₂ + ½A₁ᵀĤA₁]
//
// where the second expectation has the patterns of E[g_jᵀ H_m g_n]
// (distinct G·H·G; j=m or m=n G·H·G + ½G·∇tr C; j=n tr(HC) + G·H·G;
// all equal gx.Hx.gx) and of E[g_mᵀ H_j g_n] (m=n tr(HC) + G·H·G; j=m or
// j=n G·H·G + ½G·∇tr C; all equal gx.Hx.gx).
//
// Each predicted coefficient is a linear form in the statistics (Linear),
// so its standard error, and that of any difference of predictions, comes
// exactly from the covariance matrix of the estimates.
package predict

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/perturb/perturb/trials/analysis/stats"
)

// Names of the statistics the predictions use beyond stats.Names' first
// ten (package stats estimates them).
const (
	GHxHxG    = stats.GHxHxG
	GHxHdx    = stats.GHxHdx
	GHGradTrC = stats.GHGradTrC
	JxdGG     = stats.JxdGG
	GHxHxgx   = stats.GHxHxgx
	GxHHxgx   = stats.GxHHxgx
	Jxgxgx    = stats.Jxgxgx
	GxHxgx    = stats.GxHxgx
)

// Linear is a linear form in the statistics: Σ coef[name] · statistic.
type Linear map[string]float64

func (l Linear) add(name string, w float64) {
	if w != 0 {
		l[name] += w
	}
}

// Plus returns a + w·b.
func (l Linear) Plus(w float64, b Linear) Linear {
	out := Linear{}
	for k, v := range l {
		out.add(k, v)
	}
	for k, v := range b {
		out.add(k, w*v)
	}
	return out
}

// Scale returns w·l.
func (l Linear) Scale(w float64) Linear { return Linear{}.Plus(w, l) }

// String shows the form with its terms in a fixed order.
func (l Linear) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%.6g·[%s]", l[k], k))
	}
	return strings.Join(parts, " + ")
}

// Estimates is a set of estimated statistics with the covariance matrix
// of the estimates (nil: the statistics are treated as independent, with
// the variances StdErr²).
type Estimates struct {
	Est []stats.Estimate
	Cov [][]float64
}

// Eval returns the value of l and its standard error.
func (e Estimates) Eval(l Linear) (value, se float64, err error) {
	idx := map[string]int{}
	for i, x := range e.Est {
		idx[x.Name] = i
	}
	type term struct {
		i int
		w float64
	}
	var terms []term
	var missing []string
	for k, w := range l {
		i, ok := idx[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		terms = append(terms, term{i, w})
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return 0, 0, fmt.Errorf("predict: the statistics file lacks %s; re-estimate with the current perturb stats", strings.Join(missing, ", "))
	}
	var v float64
	for _, a := range terms {
		value += a.w * e.Est[a.i].Value
		for _, b := range terms {
			var c float64
			switch {
			case e.Cov != nil:
				c = e.Cov[a.i][b.i]
			case a.i == b.i:
				c = e.Est[a.i].StdErr * e.Est[a.i].StdErr
			}
			v += a.w * b.w * c
		}
	}
	return value, math.Sqrt(math.Max(v, 0)), nil
}

// Polynomial is a prediction c₁η + c₂η² + c₃η³ (relative to the loss at
// initialisation), each coefficient a linear form in the statistics.
type Polynomial [3]Linear

// At returns the prediction at η truncated after order k (1, 2 or 3), as
// one linear form.
func (p Polynomial) At(eta float64, k int) Linear {
	out := Linear{}
	pow := 1.0
	for i := 0; i < k; i++ {
		pow *= eta
		out = out.Plus(pow, p[i])
	}
	return out
}

// ScaleEta returns the polynomial of the same optimiser run at η·s
// (coefficient k multiplied by s^k).
func (p Polynomial) ScaleEta(s float64) Polynomial {
	return Polynomial{p[0].Scale(s), p[1].Scale(s * s), p[2].Scale(s * s * s)}
}

// Minus returns p − q.
func (p Polynomial) Minus(q Polynomial) Polynomial {
	return Polynomial{p[0].Plus(-1, q[0]), p[1].Plus(-1, q[1]), p[2].Plus(-1, q[2])}
}

// TestLoss returns the expected test loss's coefficients for a schedule
// with counts c (see the package documentation for the derivation).
func TestLoss(c Counts) Polynomial {
	c1 := Linear{stats.GG: -c.T}
	c2 := Linear{}
	c2.add(stats.GHG, c.PTot+c.T*c.T/2)
	c2.add(stats.TrHC, c.SumA2/2)
	c2.add(stats.GGradTrC, c.PDia/2)

	c3 := Linear{}
	// −Σ Q E[G·H_m H_k g_n]
	q := c.Q
	c3.add(stats.GHHG, -(q.D + q.P13 + q.P23))
	c3.add(GHxHxG, -q.P12)
	c3.add(GHxHdx, -q.P13)
	c3.add(GHGradTrC, -q.P23/2)
	c3.add(GHxHxgx, -q.All)
	// −½ Σ R E[J_m(g_k, g_n, G)]
	r := c.R
	c3.add(stats.JGGG, -(r.D+r.P23+r.P12+r.P13)/2)
	c3.add(stats.CJG, -r.P23/2)
	c3.add(JxdGG, -(r.P12+r.P13)/2)
	c3.add(Jxgxgx, -r.All/2)
	// −Σ a_j P_mn E[g_jᵀ H H_m g_n]
	ap := c.AP
	c3.add(stats.GHHG, -(ap.D + ap.P12 + ap.P13 + ap.P23))
	c3.add(GHxHdx, -ap.P12)
	c3.add(stats.TrHHC, -ap.P13)
	c3.add(GHGradTrC, -ap.P23/2)
	c3.add(GxHHxgx, -ap.All)
	// −(1/6) Σ a a a E[J(g, g, g)]
	a := c.AAA
	pairs := a.P12 + a.P13 + a.P23
	c3.add(stats.JGGG, -(a.D+pairs+a.All)/6)
	c3.add(stats.CJG, -(pairs+3*a.All)/6)
	c3.add(stats.SJ, -a.All/6)
	return Polynomial{c1, c2, c3}
}

// GenGap returns the expected generalisation gap's (test minus training
// loss) coefficients of orders 1 and 2 (the third is left empty).
func GenGap(c Counts, n int) Polynomial {
	fn := float64(n)
	g1 := Linear{stats.TrC: c.T / fn}
	// E[ĝ·A₂]: weights (1/N)·1_j ⊗ P_mn.
	tr := Linear{}
	p := patterns(c.PTot, c.PTot/fn, c.PTot/fn, c.PDia, c.PDia/fn)
	tr.add(stats.GHG, p.D+p.P12+p.P13+p.P23)
	tr.add(stats.GGradTrC, (p.P12+p.P23)/2)
	tr.add(stats.TrHC, p.P13)
	tr.add(GxHxgx, p.All)
	// ½E[A₁ᵀĤA₁]: weights (1/N)·1_j ⊗ a_m a_n.
	q := patterns(c.T*c.T, c.T*c.T/fn, c.T*c.T/fn, c.SumA2, c.SumA2/fn)
	tr.add(stats.GHG, (q.D+q.P12+q.P13+q.P23)/2)
	tr.add(stats.GGradTrC, (q.P12+q.P13)/4)
	tr.add(stats.TrHC, q.P23/2)
	tr.add(GxHxgx, q.All/2)
	g2 := TestLoss(c)[1].Plus(-1, tr)
	return Polynomial{g1, g2, Linear{}}
}
