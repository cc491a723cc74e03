// Package optim runs perturb's optimisers on a batch of K trials through a
// Backend: SGD and GD, GDC (GD plus the covariance regulariser), SDE (the
// paper's stochastic-differential-equation approximation of SGD), and GD on
// two modified losses (implicit gradient regularisation and the SGD
// modified loss of Smith et al.).
//
// Every trial of a batch shares the optimiser and its settings; each has its
// own parameters, learning rate, training set and random streams, and its
// trajectory depends on nothing else, so results do not depend on K.
//
// # Updates
//
// With per-sample losses l_n, the training loss L = (1/N) Σ_n l_n, g_n =
// ∇l_n(θ), ḡ = (1/N) Σ_n g_n and H_n = ∇²l_n(θ):
//
//	sgd    θ ← θ − η (1/B) Σ_{n ∈ batch_t} g_n               T = E·N/B steps
//	gd     θ ← θ − η ḡ                                       T steps
//	gdc    θ ← θ − η (ḡ + ∇R),  R = η (N−1)/(4N) trĈ,
//	       trĈ = (1/(N−1)) Σ_n |g_n − ḡ|²,
//	       ∇R = (η/(2N)) Σ_n H_n (g_n − ḡ)
//	igr    θ ← θ − η ∇(L + (η/4)|∇L|²) = θ − η (ḡ + (η/2)(1/N) Σ_n H_n ḡ)
//	smith  θ ← θ − η ∇(L + (η/(4m)) Σ_j |∇L_j|²)
//	         = θ − η (ḡ + (η/(2m)) Σ_j (1/B) Σ_{n ∈ batch j} H_n ∇L_j)
//	sde    R substeps per SGD step:
//	       θ ← θ − (η/R) ḡ + (η/√(R·B)) (1/√(N−1)) Σ_n (g_n − ḡ) ξ_n
//	       with population: θ ← θ − (η/R) G(θ) + (η/√(R·B)) Σ_q √w_q (g_{x_q} − G) ξ_q
//	       (G and the noise from the data distribution by quadrature)
//	stic   GD on (θ, λ) of L + gap(λ) (Mean Estimation with l2, see stic.go)
//
// Derivations. GDC: |g_n − ḡ|² has gradient 2(H_n − H̄)(g_n − ḡ), and
// Σ_n H̄ (g_n − ḡ) = H̄ Σ_n (g_n − ḡ) = 0, so ∇R = η(N−1)/(4N) ·
// (2/(N−1)) Σ_n H_n (g_n − ḡ) = (η/(2N)) Σ_n H_n (g_n − ḡ). IGR and Smith:
// ∇|∇F|² = 2 ∇²F ∇F, with ∇²L_j = (1/B) Σ_{n∈j} H_n for the j-th of the
// m = N/B minibatches (consecutive batches of the training set in draw
// order, i.e. the first epoch of SGD with the same B), and ∇L = (1/m) Σ_j
// ∇L_j. SDE: one SGD step moves by −η times a batch mean whose mean is ḡ
// and whose covariance is C/B, so over the same time the SDE drifts by
// −η ḡ and diffuses with covariance η² C/B; split into R equal substeps,
// each drifts by −(η/R) ḡ and adds Gaussian noise of covariance η² C/(R B).
// With C estimated by the training points' unbiased covariance
// Ĉ = (1/(N−1)) Σ_n (g_n − ḡ)(g_n − ḡ)ᵀ, the vector Σ_n (g_n − ḡ) ξ_n/√(N−1)
// with independent standard normal ξ_n has covariance exactly Ĉ, so no
// matrix square root is needed. The paper uses R = 16.
//
// Every Hessian-vector product is exact (Backend.HVP: a forward tangent
// pass differentiated once), never a finite difference.
//
// # Arithmetic
//
// Parameters are float64 vectors; after every update Backend.Round rounds
// them to the model's dtype (and projects constrained parameters), so a
// float32 model's state is always float32. The update itself is computed in
// float64 and rounded once.
package optim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/perturb/perturb/nets"
)

// Names lists the optimisers Run knows.
var Names = []string{"sgd", "gd", "gdc", "sde", "igr", "smith", "stic"}

// Spec is an optimiser and its settings. Steps is the number of updates
// (SGD-equivalent steps for SDE): E·N/B for sgd and sde, the number of
// full-batch steps otherwise.
type Spec struct {
	Name      string
	Batch     int // sgd, sde: batch size B; smith: minibatch size of the modified loss
	Epochs    int // sgd, sde
	Steps     int
	Reshuffle bool // sgd: a fresh order every epoch after the first
	Refine    int  // sde: substeps per SGD step (the paper: 16)
	// Population (sde): drift and noise from the data distribution
	// (Backend must implement Population) instead of the training set.
	Population bool
}

// Check reports whether s can run on training sets of n points.
func (s Spec) Check(n int) error {
	switch s.Name {
	case "sgd", "sde":
		if s.Batch < 1 || n%s.Batch != 0 {
			return fmt.Errorf("%s: batch size %d must divide n = %d", s.Name, s.Batch, n)
		}
		if s.Epochs < 1 || s.Steps != s.Epochs*n/s.Batch {
			return fmt.Errorf("%s: steps %d must equal epochs %d · n/batch", s.Name, s.Steps, s.Epochs)
		}
		if s.Name == "sde" {
			if n < 2 && !s.Population {
				return fmt.Errorf("sde: needs n >= 2 training points to estimate the gradient covariance (n = %d)", n)
			}
			if s.Refine < 1 {
				return fmt.Errorf("sde: refine %d must be at least 1", s.Refine)
			}
		}
	case "gd", "gdc", "igr", "smith", "stic":
		if s.Steps < 1 {
			return fmt.Errorf("%s: steps %d must be at least 1", s.Name, s.Steps)
		}
		if s.Name == "gdc" && n < 2 {
			return fmt.Errorf("gdc: the covariance regulariser needs n >= 2 training points (n = %d)", n)
		}
		if s.Name == "smith" && (s.Batch < 1 || n%s.Batch != 0) {
			return fmt.Errorf("smith: minibatch size %d must divide n = %d", s.Batch, n)
		}
	default:
		return fmt.Errorf("unknown optimizer %q", s.Name)
	}
	return nil
}

// Batch is K trials of one model and optimiser.
type Batch struct {
	Backend Backend
	// Theta holds each trial's parameters; Run updates them in place.
	Theta [][]float64
	// Eta is each trial's learning rate.
	Eta []float64
	// Sets holds each trial's N training samples in draw order.
	Sets [][]nets.Sample
	// Order, if set, returns the order (indices into Sets[k]) in which
	// trial k visits its training set in epoch e >= 1 (sgd with
	// reshuffle); epoch 0 and every epoch without it use draw order.
	Order func(k, epoch int) []int
	// Noise returns trial k's stream of SDE noise (one per trial, drawn in
	// order: N standard normals per substep).
	Noise func(k int) *rand.Rand
}

// Result reports, per trial, the step (0-based) at which its loss or its
// parameters first became NaN or infinite, or -1. A diverged trial's
// parameters are left as they were when it diverged and no longer updated.
type Result struct {
	Diverged []int
}

// Run trains every trial of b with s.
func Run(s Spec, b *Batch) (Result, error) {
	k := len(b.Theta)
	if len(b.Eta) != k || len(b.Sets) != k {
		return Result{}, fmt.Errorf("optim: %d trials but %d etas and %d training sets", k, len(b.Eta), len(b.Sets))
	}
	if k == 0 {
		return Result{}, nil
	}
	n := len(b.Sets[0])
	if err := s.Check(n); err != nil {
		return Result{}, err
	}
	r := &runner{s: s, b: b, k: k, n: n, p: b.Backend.NumParams()}
	r.res.Diverged = make([]int, k)
	for i := range r.res.Diverged {
		r.res.Diverged[i] = -1
	}
	r.dir = matrix(k, r.p)
	r.loss = make([]float64, k)
	var err error
	switch s.Name {
	case "sgd":
		err = r.sgd()
	case "gd":
		err = r.steps(r.gd)
	case "gdc":
		err = r.steps(r.gdc)
	case "igr":
		err = r.steps(r.igr)
	case "smith":
		err = r.steps(r.smith)
	case "sde":
		if s.Population {
			err = r.sdePopulation()
		} else {
			err = r.sde()
		}
	case "stic":
		err = r.steps(r.stic)
	}
	return r.res, err
}

type runner struct {
	s       Spec
	b       *Batch
	k, n, p int
	res     Result
	dir     [][]float64 // per-trial update direction of the current step
	loss    []float64
}

func matrix(rows, cols int) [][]float64 {
	m := make([][]float64, rows)
	back := make([]float64, rows*cols)
	for i := range m {
		m[i] = back[i*cols : (i+1)*cols : (i+1)*cols]
	}
	return m
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// apply performs θ_k ← θ_k − scale_k·dir_k for every live trial, rounds,
// and marks trials whose loss or new parameters are not finite.
func (r *runner) apply(step int, scale func(k int) float64) {
	for k := range r.b.Theta {
		if r.res.Diverged[k] >= 0 {
			continue
		}
		th := r.b.Theta[k]
		a := scale(k)
		ok := finite(r.loss[k])
		for j, d := range r.dir[k] {
			th[j] -= a * d
		}
		r.b.Backend.Round(th)
		for _, v := range th {
			ok = ok && finite(v)
		}
		if !ok {
			r.res.Diverged[k] = step
		}
	}
}

func (r *runner) eta(k int) float64 { return r.b.Eta[k] }

// pick returns, per trial, the samples idx (indices into its set).
func (r *runner) pick(idx func(k int) []int) [][]nets.Sample {
	out := make([][]nets.Sample, r.k)
	for k := range out {
		ix := idx(k)
		out[k] = make([]nets.Sample, len(ix))
		for i, j := range ix {
			out[k][i] = r.b.Sets[k][j]
		}
	}
	return out
}

func (r *runner) sgd() error {
	perEpoch := r.n / r.s.Batch
	orders := make([][]int, r.k)
	step := 0
	for e := 0; e < r.s.Epochs; e++ {
		for k := range orders {
			orders[k] = nil
			if e > 0 && r.s.Reshuffle && r.b.Order != nil {
				orders[k] = r.b.Order(k, e)
			}
		}
		for j := 0; j < perEpoch; j++ {
			pts := r.pick(func(k int) []int {
				ix := make([]int, r.s.Batch)
				for i := range ix {
					ix[i] = j*r.s.Batch + i
					if orders[k] != nil {
						ix[i] = orders[k][ix[i]]
					}
				}
				return ix
			})
			if err := r.b.Backend.Grad(r.b.Theta, pts, r.loss, r.dir); err != nil {
				return fmt.Errorf("sgd step %d: %w", step, err)
			}
			r.apply(step, r.eta)
			step++
		}
	}
	return nil
}

// steps runs s.Steps full-batch updates whose direction f computes.
func (r *runner) steps(f func() error) error {
	for t := 0; t < r.s.Steps; t++ {
		if err := f(); err != nil {
			return fmt.Errorf("%s step %d: %w", r.s.Name, t, err)
		}
		r.apply(t, r.eta)
	}
	return nil
}

func (r *runner) all() [][]nets.Sample { return r.b.Sets }

func (r *runner) gd() error {
	return r.b.Backend.Grad(r.b.Theta, r.all(), r.loss, r.dir)
}

// groups computes, for every trial and every group of its training set
// (consecutive groups of size g in draw order), the mean loss and gradient
// of the group: one Backend.Grad over K·(N/g) replicas of the parameters.
// It returns the replicated parameters and samples (for HVP calls on the
// same groups) and the group gradients, indexed k·(N/g) + j.
func (r *runner) groups(g int) (theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64, err error) {
	m := r.n / g
	theta = make([][]float64, r.k*m)
	pts = make([][]nets.Sample, r.k*m)
	for k := 0; k < r.k; k++ {
		for j := 0; j < m; j++ {
			theta[k*m+j] = r.b.Theta[k]
			pts[k*m+j] = r.b.Sets[k][j*g : (j+1)*g]
		}
	}
	loss = make([]float64, r.k*m)
	grad = matrix(r.k*m, r.p)
	err = r.b.Backend.Grad(theta, pts, loss, grad)
	return theta, pts, loss, grad, err
}

// meanGroups sets r.loss and r.dir to the per-trial means of group values.
func (r *runner) meanGroups(m int, loss []float64, grad [][]float64) {
	for k := 0; k < r.k; k++ {
		r.loss[k] = 0
		clear(r.dir[k])
		for j := 0; j < m; j++ {
			r.loss[k] += loss[k*m+j] / float64(m)
			for i, v := range grad[k*m+j] {
				r.dir[k][i] += v / float64(m)
			}
		}
	}
}

func (r *runner) gdc() error {
	theta, pts, loss, g, err := r.groups(1)
	if err != nil {
		return err
	}
	r.meanGroups(r.n, loss, g)
	// v_n = g_n − ḡ, then Σ_n H_n v_n per trial.
	for k := 0; k < r.k; k++ {
		for j := 0; j < r.n; j++ {
			for i := range g[k*r.n+j] {
				g[k*r.n+j][i] -= r.dir[k][i]
			}
		}
	}
	hv := matrix(r.k*r.n, r.p)
	if err := r.b.Backend.HVP(theta, pts, g, hv); err != nil {
		return err
	}
	for k := 0; k < r.k; k++ {
		c := r.eta(k) / (2 * float64(r.n))
		for j := 0; j < r.n; j++ {
			for i, v := range hv[k*r.n+j] {
				r.dir[k][i] += c * v
			}
		}
	}
	return nil
}

func (r *runner) igr() error {
	if err := r.gd(); err != nil {
		return err
	}
	hv := matrix(r.k, r.p)
	if err := r.b.Backend.HVP(r.b.Theta, r.all(), r.dir, hv); err != nil {
		return err
	}
	for k := 0; k < r.k; k++ {
		c := r.eta(k) / (2 * float64(r.n))
		for i, v := range hv[k] {
			r.dir[k][i] += c * v
		}
	}
	return nil
}

func (r *runner) smith() error {
	b := r.s.Batch
	m := r.n / b
	theta, pts, loss, g, err := r.groups(b)
	if err != nil {
		return err
	}
	r.meanGroups(m, loss, g)
	hv := matrix(r.k*m, r.p)
	if err := r.b.Backend.HVP(theta, pts, g, hv); err != nil {
		return err
	}
	for k := 0; k < r.k; k++ {
		c := r.eta(k) / (2 * float64(m) * float64(b))
		for j := 0; j < m; j++ {
			for i, v := range hv[k*m+j] {
				r.dir[k][i] += c * v
			}
		}
	}
	return nil
}

func (r *runner) sde() error {
	if r.b.Noise == nil {
		return fmt.Errorf("sde: no noise streams")
	}
	rng := make([]*rand.Rand, r.k)
	for k := range rng {
		rng[k] = r.b.Noise(k)
	}
	xi := make([]float64, r.n)
	noise := make([]float64, r.p)
	sub := r.s.Refine
	noiseScale := 1 / math.Sqrt(float64(sub*r.s.Batch)*float64(r.n-1))
	for t := 0; t < r.s.Steps; t++ {
		for u := 0; u < sub; u++ {
			_, _, loss, g, err := r.groups(1)
			if err != nil {
				return fmt.Errorf("sde step %d substep %d: %w", t, u, err)
			}
			r.meanGroups(r.n, loss, g)
			// dir = ḡ/R − (1/√(R·B·(N−1))) Σ_n (g_n − ḡ) ξ_n, applied with scale η.
			for k := 0; k < r.k; k++ {
				for j := range xi {
					xi[j] = rng[k].NormFloat64()
				}
				clear(noise)
				for j := 0; j < r.n; j++ {
					for i, v := range g[k*r.n+j] {
						noise[i] += (v - r.dir[k][i]) * xi[j]
					}
				}
				for i := range r.dir[k] {
					r.dir[k][i] = r.dir[k][i]/float64(sub) - noiseScale*noise[i]
				}
			}
			r.apply(t, r.eta)
		}
	}
	return nil
}
