package optim

import (
	"fmt"
	"math"
)

// STIC (the paper's Corollary 2 regulariser, figure 9 right) tunes an l2
// coefficient λ ≥ 0 by descent. The model has a weight θ (parameter 0)
// and the coefficient λ (parameter 1), with training loss
// L̂(θ, λ) = (1/N) Σ_n l_n(θ, λ), as on the landscape mean-estimation-l2
// (l_x = (H + λ)θ²/2 + xSθ). STIC runs GD on
//
//	F(θ, λ) = L̂(θ, λ) + gap(λ),   gap = (Ĉ/N) (1 − e^{−ηT h}) / h,
//
// the generalisation gap that Corollary 2 predicts for T steps of GD at
// rate η on a quadratic with curvature h = ∂²L̂/∂θ² (= H + λ) and
// gradient noise Ĉ = Σ_n (∂_θ l_n − ∂_θ L̂)²/(N − 1) (unbiased). Then
//
//	∂gap/∂λ = (Ĉ/N) · (a h e^{−a h} − (1 − e^{−a h}))/h² · ∂h/∂λ,  a = ηT,
//
// with ∂h/∂λ = ∂³L̂/∂θ²∂λ = 1 on Mean Estimation (which is why STIC is
// defined for that model only). The update is θ ← θ − η ∂L̂/∂θ,
// λ ← max(0, λ − η(∂L̂/∂λ + ∂gap/∂λ)) (the projection is Backend.Round's).
func (r *runner) stic() error {
	if r.p != 2 {
		return fmt.Errorf("stic needs a model with one weight and one l2 coefficient (mean-estimation-l2); this one has %d parameters", r.p)
	}
	if r.n < 2 {
		return fmt.Errorf("stic estimates the gradient noise from the training points and needs n >= 2 (n = %d)", r.n)
	}
	theta, pts, loss, g, err := r.groups(1)
	if err != nil {
		return err
	}
	r.meanGroups(r.n, loss, g)
	// h = ∂²L̂/∂θ²: the θ component of the mean Hessian applied to e_θ.
	e := make([][]float64, r.k)
	for k := range e {
		e[k] = []float64{1, 0}
	}
	hv := matrix(r.k, r.p)
	if err := r.b.Backend.HVP(r.b.Theta, r.all(), e, hv); err != nil {
		return err
	}
	_ = theta
	_ = pts
	for k := 0; k < r.k; k++ {
		var c float64
		for j := 0; j < r.n; j++ {
			d := g[k*r.n+j][0] - r.dir[k][0]
			c += d * d / float64(r.n-1)
		}
		h := hv[k][0] / float64(r.n)
		r.dir[k][1] += c / float64(r.n) * gapSlope(r.eta(k)*float64(r.s.Steps), h)
	}
	return nil
}

// gapSlope is d/dh of (1 − e^{−a h})/h, continued to h → 0 (where it is
// −a²/2) and finite for every h (for h < 0 the gap grows with a).
func gapSlope(a, h float64) float64 {
	x := a * h
	if math.Abs(x) < 1e-4 {
		// (1 − e^{−x})/x = 1 − x/2 + x²/6 − …, so the slope in h is a²(−1/2 + x/3).
		return a * a * (-0.5 + x/3)
	}
	return (x*math.Exp(-x) - (1 - math.Exp(-x))) / (h * h)
}
