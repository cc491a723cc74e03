package stats

import (
	"fmt"
	"math"
)

// Prop2 returns the order-η and order-η² coefficients of the expected
// test loss of SGD with N training points, batch size B and E epochs
// (T = E·N/B steps; GD is B = N, E = T), from the estimated statistics,
// by the re-derived Proposition 2 (../shared/notes/theory.md):
//
//	E L(θ_T) = L − η T |G|²
//	         + η² [ T(T − ½) G·H·G + E²N/(2B²) tr(HC) + N E(E−1)/(4B²) G·∇tr C ] + O(η³).
//
// Derivation (the Taylor-mode recurrences of trials.Taylor, averaged): with
// A₁ = −Σ_t ḡ_t and A₂ = Σ_{s<t} H̄_t ḡ_s, c₁ = G·E A₁ = −T|G|² and
// c₂ = G·E A₂ + ½ E[A₁ᵀHA₁]. Batches s < t share m_st training points
// (only across epochs; Σ_{s<t} m_st = N E(E−1)/2, however the epochs are
// ordered), and for a shared point E[H_x g_x] = HG + ½∇tr C, so
// G·E A₂ = T(T−1)/2 G·H·G + N E(E−1)/(2B²) · ½ G·∇tr C. Every training
// point enters A₁ E times with weight 1/B, so Cov A₁ = E²N/B² C and
// ½E[A₁ᵀHA₁] = ½T² G·H·G + E²N/(2B²) tr(HC). Training points are iid
// draws, so distinct draws are independent even when they coincide.
//
// The standard errors combine the statistics' standard errors as if they
// were independent (they come from the same groups, so this is an
// approximation).
func Prop2(n, b, e int, est []Estimate) (c1, c1se, c2, c2se float64, err error) {
	get := map[string]Estimate{}
	for _, x := range est {
		get[x.Name] = x
	}
	for _, name := range []string{GG, GHG, TrHC, GGradTrC} {
		if _, ok := get[name]; !ok {
			return 0, 0, 0, 0, fmt.Errorf("stats: Proposition 2 needs %s", name)
		}
	}
	if b < 1 || n%b != 0 || e < 1 {
		return 0, 0, 0, 0, fmt.Errorf("stats: Proposition 2 needs B dividing N and E ≥ 1 (N=%d, B=%d, E=%d)", n, b, e)
	}
	fn, fb, fe := float64(n), float64(b), float64(e)
	t := fe * fn / fb
	c1 = -t * get[GG].Value
	c1se = t * get[GG].StdErr
	terms := []struct {
		coef float64
		x    Estimate
	}{
		{t * (t - 0.5), get[GHG]},
		{fe * fe * fn / (2 * fb * fb), get[TrHC]},
		{fn * fe * (fe - 1) / (4 * fb * fb), get[GGradTrC]},
	}
	var v float64
	for _, tm := range terms {
		c2 += tm.coef * tm.x.Value
		v += tm.coef * tm.coef * tm.x.StdErr * tm.x.StdErr
	}
	return c1, c1se, c2, math.Sqrt(v), nil
}
