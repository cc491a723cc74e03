package sharp

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/optim"
)

// Problem is the empirical loss of K trials, each at its own point on its
// own sample set: L_k(θ) = (1/M) Σ_{x ∈ Sets[k]} l_x(θ), evaluated at
// Theta[k] through a batched backend (optim.Backend: graph.DeviceBackend or
// a landscape). It is an Operator for the Hessians H_k = ∇²L_k(Theta[k]).
//
// A Problem is not safe for concurrent use (nor is its backend).
type Problem struct {
	Backend optim.Backend
	Theta   [][]float64
	// Sets holds each trial's M samples (the same M for every trial; M ≥ 2
	// for the gradient-noise measures).
	Sets [][]nets.Sample
	// Chunk is the number of samples per backend Hessian-vector call
	// (bounding the memory of an image graph at about K·Chunk examples);
	// 0 means all M at once.
	Chunk int
	// GradChunk is the number of per-sample gradients per backend call;
	// 0 means 1024.
	GradChunk int
	// Pad rounds the number of trials of every backend call up to a power
	// of two (repeating trial 0), so that an image backend, which compiles
	// one graph per shape, compiles few.
	Pad bool
	// PadGradOnly limits Pad to the per-sample gradients, for a backend
	// whose Hessian-vector products cost nothing for absent trials and
	// compile nothing per shape (graph.DeviceBackend with HVPChunk).
	PadGradOnly bool
}

// Len is the number of trials.
func (p *Problem) Len() int { return len(p.Theta) }

// Dim is the number of weights.
func (p *Problem) Dim() int { return p.Backend.NumParams() }

// samples returns M, checking that every set has it.
func (p *Problem) samples() (int, error) {
	if len(p.Sets) != len(p.Theta) {
		return 0, fmt.Errorf("sharp: %d sample sets for %d trials", len(p.Sets), len(p.Theta))
	}
	m := len(p.Sets[0])
	for k, s := range p.Sets {
		if len(s) != m || m == 0 {
			return 0, fmt.Errorf("sharp: trial %d has %d samples, trial 0 has %d (need the same M ≥ 1)", k, len(s), m)
		}
	}
	return m, nil
}

func nextPow2(k int) int {
	p := 1
	for p < k {
		p *= 2
	}
	return p
}

// Apply sets dst[k] = H_k v[k] = (1/M) Σ_x ∇²l_x(Theta[k]) v[k], summing the
// backend's per-chunk sums in chunk order (so a trial's result does not
// depend on K).
func (p *Problem) Apply(dst, v [][]float64) error {
	m, err := p.samples()
	if err != nil {
		return err
	}
	k, n := p.Len(), p.Dim()
	kp := k
	if p.Pad && !p.PadGradOnly {
		kp = nextPow2(k)
	}
	chunk := p.Chunk
	if chunk <= 0 || chunk > m {
		chunk = m
	}
	theta, pts, vs, out := make([][]float64, kp), make([][]nets.Sample, kp), make([][]float64, kp), matrix(kp, n)
	zero := make([]float64, n)
	for i := range kp {
		if i < k {
			theta[i], vs[i] = p.Theta[i], v[i]
		} else {
			theta[i], vs[i] = p.Theta[0], zero
		}
	}
	for i := range k {
		clear(dst[i])
	}
	for lo := 0; lo < m; lo += chunk {
		hi := min(lo+chunk, m)
		for i := range kp {
			src := 0 // padding repeats trial 0
			if i < k {
				src = i
			}
			pts[i] = p.Sets[src][lo:hi]
		}
		if err := p.Backend.HVP(theta, pts, vs, out); err != nil {
			return fmt.Errorf("Hessian-vector products: %w", err)
		}
		for i := range k {
			axpy(1, out[i], dst[i])
		}
	}
	for i := range k {
		for j := range dst[i] {
			dst[i][j] /= float64(m)
		}
	}
	return nil
}

// pair names sample i of trial k.
type pair struct{ k, i int }

// grads calls f(k, i, ∇l_{x_i}(Theta[k])) for every pair, in order, from
// backend calls of at most GradChunk single-sample "trials".
func (p *Problem) grads(pairs []pair, f func(k, i int, g []float64)) error {
	gc := p.GradChunk
	if gc <= 0 {
		gc = 1024
	}
	n := p.Dim()
	for lo := 0; lo < len(pairs); lo += gc {
		part := pairs[lo:min(lo+gc, len(pairs))]
		kp := len(part)
		if p.Pad {
			kp = min(nextPow2(kp), max(gc, kp))
		}
		theta, pts, loss, g := make([][]float64, kp), make([][]nets.Sample, kp), make([]float64, kp), matrix(kp, n)
		for j := range kp {
			q := part[min(j, len(part)-1)]
			theta[j] = p.Theta[q.k]
			pts[j] = p.Sets[q.k][q.i : q.i+1]
		}
		if err := p.Backend.Grad(theta, pts, loss, g); err != nil {
			return fmt.Errorf("per-sample gradients: %w", err)
		}
		for j, q := range part {
			f(q.k, q.i, g[j])
		}
	}
	return nil
}

// noise returns, per trial, the mean gradient ḡ over the set and
// tr Ĉ = Σ_i |g_i − ḡ|²/(M − 1), the unbiased sample covariance's trace
// (accumulated in sample order by Welford's update, which avoids the
// cancellation of Σ|g_i|² − M|ḡ|²).
func (p *Problem) noise() (mean [][]float64, trC []float64, err error) {
	m, err := p.samples()
	if err != nil {
		return nil, nil, err
	}
	if m < 2 {
		return nil, nil, fmt.Errorf("sharp: the gradient covariance needs at least 2 samples, got %d", m)
	}
	k := p.Len()
	mean, m2, count := matrix(k, p.Dim()), make([]float64, k), make([]int, k)
	var pairs []pair
	for t := range k {
		for i := range m {
			pairs = append(pairs, pair{t, i})
		}
	}
	err = p.grads(pairs, func(t, _ int, g []float64) {
		count[t]++
		s := 0.0
		for j, x := range g {
			d := x - mean[t][j]
			mean[t][j] += d / float64(count[t])
			s += d * (x - mean[t][j])
		}
		m2[t] += s
	})
	if err != nil {
		return nil, nil, err
	}
	trC = make([]float64, k)
	for t := range k {
		trC[t] = m2[t] / float64(m-1)
	}
	return mean, trC, nil
}

// noiseSharpness estimates tr(H_k Ĉ_k) = (1/(M−1)) Σ_i d_iᵀ H_k d_i with
// d_i = g_i − ḡ, from the samples i in a random order drawn from rngs[k]:
// after p of them, the estimate is M/(M−1) times their mean of d_iᵀ H d_i,
// with standard error M/(M−1)·sd/√p·√(1 − p/M) (sampling without
// replacement from the M terms); exact (standard error 0) when p = M.
// Stopping follows opts as in Trace.
func (p *Problem) noiseSharpness(mean [][]float64, rngs []*rand.Rand, opts TraceOptions) ([]Estimate, error) {
	m, err := p.samples()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	k, n := p.Len(), p.Dim()
	order := make([][]int, k)
	for t := range order {
		order[t] = rngs[t].Perm(m)
	}
	acc := make([]meanSE, k)
	done := make([]bool, k)
	out := make([]Estimate, k)
	fm := float64(m)
	v, w := matrix(k, n), matrix(k, n)
	for r := 0; r < min(m, opts.MaxProbes); r++ {
		var pairs []pair
		for t := range k {
			clear(v[t])
			if !done[t] {
				pairs = append(pairs, pair{t, order[t][r]})
			}
		}
		if len(pairs) == 0 {
			break
		}
		err := p.grads(pairs, func(t, _ int, g []float64) {
			for j := range g {
				v[t][j] = g[j] - mean[t][j]
			}
		})
		if err != nil {
			return nil, err
		}
		if err := p.Apply(w, v); err != nil {
			return nil, err
		}
		for _, q := range pairs {
			t := q.k
			acc[t].add(dot(v[t], w[t]))
			c := acc[t].n
			val := fm / (fm - 1) * acc[t].mean
			se := 0.0
			if c < m {
				se = fm / (fm - 1) * acc[t].se() * math.Sqrt(1-float64(c)/fm)
			}
			out[t] = Estimate{Value: val, StdErr: se, Probes: c}
			if c == m || c >= opts.MinProbes && se <= opts.RelSE*math.Abs(val) {
				out[t].Converged = true
				done[t] = true
			}
		}
	}
	return out, nil
}

// Options selects the measures of Measure.
type Options struct {
	// Lambda asks for the largest eigenvalues of H (Lanczos).
	Lambda bool
	// TrH asks for tr H (Hutchinson, deflated by the Lanczos basis).
	TrH bool
	// TrC asks for tr Ĉ, the trace of the per-sample gradients' sample
	// covariance (exact over the M samples).
	TrC bool
	// TrHC asks for tr(H Ĉ), the noise-weighted sharpness.
	TrHC    bool
	Lanczos LanczosOptions
	Trace   TraceOptions
}

// Result is one trial's measures; the fields not asked for are nil.
type Result struct {
	Eigen          *Eigen
	TrH, TrC, TrHC *Estimate
	// Samples is M.
	Samples int
}

// Measure computes the measures opts asks for at every trial of p, with
// rngs[k] trial k's random stream (it draws three independent sub-streams
// from it: the Lanczos start, the Hutchinson probes and the order of the
// tr(H C) samples, so each trial's result depends only on its own point,
// samples and stream). tr H needs the Lanczos basis, so asking for it
// runs Lanczos too.
func Measure(p *Problem, rngs []*rand.Rand, opts Options) ([]Result, error) {
	m, err := p.samples()
	if err != nil {
		return nil, err
	}
	k := p.Len()
	if len(rngs) != k {
		panic(fmt.Sprintf("sharp: %d random streams for %d trials", len(rngs), k))
	}
	var lz, hu, no []*rand.Rand
	for _, r := range rngs {
		lz = append(lz, rand.New(rand.NewPCG(r.Uint64(), r.Uint64())))
		hu = append(hu, rand.New(rand.NewPCG(r.Uint64(), r.Uint64())))
		no = append(no, rand.New(rand.NewPCG(r.Uint64(), r.Uint64())))
	}
	out := make([]Result, k)
	for t := range out {
		out[t].Samples = m
	}
	if opts.Lambda || opts.TrH {
		eig, err := Lanczos(p, lz, opts.Lanczos)
		if err != nil {
			return nil, err
		}
		if opts.TrH {
			tr, err := Trace(p, hu, eig, opts.Trace)
			if err != nil {
				return nil, err
			}
			for t := range out {
				out[t].TrH = &tr[t]
			}
		}
		if opts.Lambda {
			for t := range out {
				e := eig[t]
				e.basis, e.alpha = nil, nil
				out[t].Eigen = &e
			}
		}
	}
	if opts.TrC || opts.TrHC {
		mean, trC, err := p.noise()
		if err != nil {
			return nil, err
		}
		if opts.TrC {
			for t := range out {
				out[t].TrC = &Estimate{Value: trC[t], Probes: m, Converged: true}
			}
		}
		if opts.TrHC {
			hc, err := p.noiseSharpness(mean, no, opts.Trace)
			if err != nil {
				return nil, err
			}
			for t := range out {
				out[t].TrHC = &hc[t]
			}
		}
	}
	return out, nil
}
