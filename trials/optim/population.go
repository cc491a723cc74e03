package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Population is implemented by backends whose data distribution is known
// (the landscapes, x ~ N(0, 1)). PopulationGrad sets mean[k] = E_x
// ∇l_x(theta[k]) and dev[k][q] = √w_q (∇l_{x_q}(theta[k]) − mean[k]) for
// the Nodes() quadrature nodes x_q with weights w_q, chosen so that the
// mean and the covariance Σ_q dev_q dev_qᵀ are exact (Gauss–Hermite
// quadrature integrates the polynomial gradients exactly).
type Population interface {
	Nodes() int
	PopulationGrad(theta [][]float64, mean [][]float64, dev [][][]float64) error
}

// sdePopulation is the SDE of online SGD: drift by the expected gradient
// G(θ) and Gaussian noise of the data's gradient covariance C(θ), over R
// substeps per SGD step: θ ← θ − (η/R) G + (η/√(R·B)) Σ_q dev_q ξ_q, with
// Σ_q dev_q ξ_q of covariance exactly C(θ). It uses no training set.
func (r *runner) sdePopulation() error {
	pop, ok := r.b.Backend.(Population)
	if !ok {
		return fmt.Errorf("sde with population = true needs a model whose data distribution is known (a landscape)")
	}
	if r.b.Noise == nil {
		return fmt.Errorf("sde: no noise streams")
	}
	rng := make([]*rand.Rand, r.k)
	for k := range rng {
		rng[k] = r.b.Noise(k)
	}
	q := pop.Nodes()
	dev := make([][][]float64, r.k)
	for k := range dev {
		dev[k] = matrix(q, r.p)
	}
	sub := r.s.Refine
	scale := 1 / math.Sqrt(float64(sub*r.s.Batch))
	for t := 0; t < r.s.Steps; t++ {
		for u := 0; u < sub; u++ {
			if err := pop.PopulationGrad(r.b.Theta, r.dir, dev); err != nil {
				return fmt.Errorf("sde step %d substep %d: %w", t, u, err)
			}
			for k := 0; k < r.k; k++ {
				for i := range r.dir[k] {
					r.dir[k][i] /= float64(sub)
				}
				for _, d := range dev[k] {
					xi := rng[k].NormFloat64()
					for i, v := range d {
						r.dir[k][i] -= scale * v * xi
					}
				}
				r.loss[k] = 0
			}
			r.apply(t, r.eta)
		}
	}
	return nil
}
