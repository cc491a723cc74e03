package sharp

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Operator is K symmetric linear maps A_k on R^n applied together (one per
// trial), so that a backend can evaluate all K products in one batched
// computation. Apply sets dst[k] = A_k v[k] for every k < Len(); the
// result for k must depend only on v[k] (never on the other trials).
type Operator interface {
	// Len is the number of trials K.
	Len() int
	// Dim is n, the length of every vector.
	Dim() int
	// Apply sets dst[k] = A_k v[k].
	Apply(dst, v [][]float64) error
}

// LanczosOptions configures Lanczos. Zero values select the defaults.
type LanczosOptions struct {
	// Count is the number of largest (algebraic) eigenvalues wanted;
	// default 1.
	Count int
	// Tol is the relative tolerance: an eigenvalue is accepted when its
	// residual bound is at most Tol·|θ| (see Lanczos); default 1e-3.
	Tol float64
	// MaxIter bounds the Krylov dimension (the number of products per
	// trial); default 100, and never more than n.
	MaxIter int
}

func (o LanczosOptions) withDefaults(n int) LanczosOptions {
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.Tol <= 0 {
		o.Tol = 1e-3
	}
	if o.MaxIter <= 0 {
		o.MaxIter = 100
	}
	o.MaxIter = min(o.MaxIter, n)
	o.Count = min(o.Count, n)
	return o
}

// Eigen is one trial's result of Lanczos.
type Eigen struct {
	// Values are the Count largest eigenvalues, descending; NaN where the
	// iteration did not converge.
	Values []float64
	// Ritz are the Count largest Ritz values at the last iteration (the
	// estimates, also when they did not converge) and Bounds their
	// residual bounds: some eigenvalue of A lies within Bounds[j] of
	// Ritz[j].
	Ritz, Bounds []float64
	// Iterations is the number of products A·v the trial used.
	Iterations int
	// Converged reports whether every wanted Ritz value met the tolerance.
	Converged bool
	// Err is a *NotConvergedError when Converged is false.
	Err error

	// basis holds the orthonormal Lanczos vectors q_0..q_{m−1} and alpha
	// the diagonal of T = Qᵀ A Q, so that tr(Qᵀ A Q) = Σ alpha (used to
	// deflate Hutchinson's estimator).
	basis [][]float64
	alpha []float64
}

// NotConvergedError reports a Lanczos iteration that stopped at MaxIter
// before its residual bounds met the tolerance.
type NotConvergedError struct {
	Iterations int
	Ritz       float64 // the largest Ritz value
	Bound      float64 // its residual bound
	Tol        float64
}

func (e *NotConvergedError) Error() string {
	return fmt.Sprintf("Lanczos did not converge in %d iterations: largest Ritz value %.6g with residual bound %.3g > tol·|θ| = %.3g "+
		"(raise sharpness.max_iter or sharpness.tol)", e.Iterations, e.Ritz, e.Bound, e.Tol*math.Abs(e.Ritz))
}

// ErrNotConverged is matched by every *NotConvergedError (errors.Is).
var ErrNotConverged = errors.New("sharp: Lanczos did not converge")

// Is makes errors.Is(err, ErrNotConverged) true.
func (e *NotConvergedError) Is(target error) bool { return target == ErrNotConverged }

// lanczosState is one trial's iteration.
type lanczosState struct {
	q           [][]float64 // orthonormal basis
	alpha, beta []float64   // T's diagonal and off-diagonal (beta[j] couples q_j, q_{j+1})
	next        []float64   // q_m, the vector to multiply next
	done        bool
	res         Eigen
	rng         *rand.Rand
}

// Lanczos estimates the Count largest eigenvalues of each A_k by the
// Lanczos iteration with full reorthogonalisation, from a start vector of
// independent N(0,1) entries drawn from rngs[k] (one stream per trial, so
// a trial's result depends only on its own operator and stream, not on K).
//
// After m steps, with Q_m = [q_0 … q_{m−1}] orthonormal and T_m = Q_mᵀ A Q_m
// tridiagonal (α on the diagonal, β off it), the Lanczos relation
//
//	A Q_m = Q_m T_m + β_{m−1} q_m e_mᵀ
//
// gives for each eigenpair (θ, s) of T_m and y = Q_m s the residual
// A y − θ y = β_{m−1} s_{m−1} q_m, of norm r = |β_{m−1} s_{m−1}|. Since A is
// symmetric, some eigenvalue of A lies within r of θ (Parlett, The Symmetric
// Eigenvalue Problem, Thm 4.5.1). A trial converges when r ≤ Tol·|θ| for
// each of its Count largest Ritz values: then each is within that relative
// distance of an eigenvalue of A. (That the eigenvalue is the largest one
// rests on the random start having a component along its eigenvector, which
// holds with probability one; a Ritz value converges to the top of the
// spectrum from below.) A trial that reaches MaxIter first is reported as
// not converged, with its Values NaN and its Ritz values and bounds kept
// for diagnosis, never as an answer.
//
// If β vanishes (the Krylov space is invariant under A) before the space
// is all of R^n, the iteration continues from a fresh random vector
// orthogonal to the basis, with β = 0 in T; once m = n, T is similar to A
// and its eigenvalues are exact.
//
// All trials advance in lockstep, one batched Apply per step; a trial that
// has converged is given zero vectors from then on. The error is non-nil
// only when Apply fails.
func Lanczos(op Operator, rngs []*rand.Rand, opts LanczosOptions) ([]Eigen, error) {
	k, n := op.Len(), op.Dim()
	if len(rngs) != k {
		panic(fmt.Sprintf("sharp: %d random streams for %d trials", len(rngs), k))
	}
	opts = opts.withDefaults(n)
	st := make([]*lanczosState, k)
	for i := range st {
		s := &lanczosState{rng: rngs[i]}
		s.next = randomUnit(s.rng, n, nil)
		st[i] = s
	}
	v, w := matrix(k, n), matrix(k, n)
	for iter := 0; iter < opts.MaxIter; iter++ {
		active := false
		for i, s := range st {
			if s.done {
				clear(v[i])
				continue
			}
			active = true
			copy(v[i], s.next)
		}
		if !active {
			break
		}
		if err := op.Apply(w, v); err != nil {
			return nil, err
		}
		for i, s := range st {
			if !s.done {
				s.step(w[i], n, opts)
			}
		}
	}
	out := make([]Eigen, k)
	for i, s := range st {
		if !s.done {
			s.finish(opts, false)
		}
		out[i] = s.res
	}
	return out, nil
}

// step takes one Lanczos step given w = A q_m.
func (s *lanczosState) step(w []float64, n int, opts LanczosOptions) {
	q := s.next
	m := len(s.q)
	a := dot(q, w)
	axpy(-a, q, w)
	if m > 0 {
		axpy(-s.beta[m-1], s.q[m-1], w)
	}
	s.q = append(s.q, q)
	s.alpha = append(s.alpha, a)
	// Full reorthogonalisation, twice ("twice is enough", Parlett).
	for range 2 {
		for _, b := range s.q {
			axpy(-dot(b, w), b, w)
		}
	}
	b := math.Sqrt(dot(w, w))
	scale := 0.0
	for _, x := range s.alpha {
		scale = max(scale, math.Abs(x))
	}
	for _, x := range s.beta {
		scale = max(scale, math.Abs(x))
	}
	m++
	if m == n {
		s.beta = append(s.beta, 0)
		s.finish(opts, true)
		return
	}
	if b <= 1e-12*max(scale, math.SmallestNonzeroFloat64) {
		// Invariant subspace: restart orthogonally, T stays block diagonal.
		s.beta = append(s.beta, 0)
		s.next = randomUnit(s.rng, n, s.q)
		return
	}
	s.beta = append(s.beta, b)
	s.next = make([]float64, n)
	for i := range w {
		s.next[i] = w[i] / b
	}
	if m >= opts.Count && s.converged(opts) {
		s.finish(opts, false)
	}
}

// ritz returns the Ritz values of T (descending) and their residual
// bounds |β_{m−1} s_{m−1}|.
func (s *lanczosState) ritz() (vals, bounds []float64) {
	m := len(s.alpha)
	t := mat.NewSymDense(m, nil)
	for i := 0; i < m; i++ {
		t.SetSym(i, i, s.alpha[i])
		if i+1 < m {
			t.SetSym(i, i+1, s.beta[i])
		}
	}
	var e mat.EigenSym
	if !e.Factorize(t, true) {
		nan := make([]float64, m)
		for i := range nan {
			nan[i] = math.NaN()
		}
		return nan, nan
	}
	ev := e.Values(nil) // ascending
	var vec mat.Dense
	e.VectorsTo(&vec)
	last := s.beta[m-1]
	vals, bounds = make([]float64, m), make([]float64, m)
	for j := 0; j < m; j++ {
		src := m - 1 - j
		vals[j] = ev[src]
		bounds[j] = math.Abs(last * vec.At(m-1, src))
	}
	return vals, bounds
}

func (s *lanczosState) converged(opts LanczosOptions) bool {
	vals, bounds := s.ritz()
	for j := 0; j < opts.Count; j++ {
		if !(bounds[j] <= opts.Tol*math.Abs(vals[j])) {
			return false
		}
	}
	return true
}

// finish records the result; exact is set when the basis spans R^n.
func (s *lanczosState) finish(opts LanczosOptions, exact bool) {
	s.done = true
	vals, bounds := s.ritz()
	if exact {
		clear(bounds)
	}
	c := min(opts.Count, len(vals))
	r := Eigen{Ritz: vals[:c], Bounds: bounds[:c], Iterations: len(s.alpha), Values: make([]float64, c), basis: s.q, alpha: s.alpha}
	r.Converged = true
	for j := 0; j < c; j++ {
		if !(bounds[j] <= opts.Tol*math.Abs(vals[j])) {
			r.Converged = false
		}
	}
	if r.Converged {
		copy(r.Values, vals[:c])
	} else {
		for j := range r.Values {
			r.Values[j] = math.NaN()
		}
		r.Err = &NotConvergedError{Iterations: r.Iterations, Ritz: vals[0], Bound: bounds[0], Tol: opts.Tol}
	}
	s.res = r
	s.next = nil
}

// randomUnit returns a unit vector of N(0,1) entries from r, orthogonalised
// against the orthonormal vectors basis.
func randomUnit(r *rand.Rand, n int, basis [][]float64) []float64 {
	for {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		for range 2 {
			for _, b := range basis {
				axpy(-dot(b, v), b, v)
			}
		}
		if nv := math.Sqrt(dot(v, v)); nv > 1e-8 {
			for i := range v {
				v[i] /= nv
			}
			return v
		}
	}
}

func dot(x, y []float64) float64 {
	s := 0.0
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// axpy sets y += a·x.
func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func matrix(r, c int) [][]float64 {
	out := make([][]float64, r)
	for i := range out {
		out[i] = make([]float64, c)
	}
	return out
}
