package sharp

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// TraceOptions configures the stochastic estimators (Trace and, in
// Measure, tr(H C)). Zero values select the defaults.
type TraceOptions struct {
	// RelSE is the target standard error relative to the estimate's
	// magnitude; default 0.05. A trial stops drawing probes once it is
	// met (after MinProbes).
	RelSE float64
	// MinProbes is the least number of probes per trial, so that the
	// standard error itself is estimated well; default 10 (at least 2).
	MinProbes int
	// MaxProbes bounds the probes per trial; default 100.
	MaxProbes int
}

func (o TraceOptions) withDefaults() TraceOptions {
	if o.RelSE <= 0 {
		o.RelSE = 0.05
	}
	if o.MinProbes <= 0 {
		o.MinProbes = 10
	}
	o.MinProbes = max(o.MinProbes, 2)
	if o.MaxProbes <= 0 {
		o.MaxProbes = 100
	}
	o.MaxProbes = max(o.MaxProbes, o.MinProbes)
	return o
}

// Estimate is a stochastic estimate with its standard error.
type Estimate struct {
	Value  float64
	StdErr float64
	// Probes is the number of probes (Hessian-vector products) used.
	Probes int
	// Converged reports whether StdErr ≤ RelSE·|Value| was reached (always
	// true for an exact value, StdErr 0).
	Converged bool
}

// meanSE accumulates probe values.
type meanSE struct {
	n        int
	mean, m2 float64
}

func (a *meanSE) add(x float64) {
	a.n++
	d := x - a.mean
	a.mean += d / float64(a.n)
	a.m2 += d * (x - a.mean)
}

// se is the standard error of the mean, sd/√n.
func (a *meanSE) se() float64 {
	if a.n < 2 {
		return math.Inf(1)
	}
	return math.Sqrt(a.m2 / float64(a.n-1) / float64(a.n))
}

// Trace estimates tr A_k for every trial by Hutchinson's estimator,
// deflated by the Lanczos basis of eig[k] when eig is not nil.
//
// For any orthonormal Q (n×m) and P = I − Q Qᵀ,
//
//	tr A = tr(Qᵀ A Q) + tr(P A P),
//
// and for a probe z of independent Rademacher entries (E z zᵀ = I),
// E zᵀ P A P z = tr(P A P). With Q the Lanczos basis, tr(Qᵀ A Q) = Σ α_j is
// known from the iteration, and the probes only see A with its largest
// eigen-directions (the ones Lanczos found) projected out, which cuts the
// variance 2‖PAP‖²_F − 2Σ(PAP)²_ii of a probe. Q comes from a start vector
// independent of the probes, so the estimate is unbiased given Q. Its
// standard error is the probes' sample standard deviation over √p. When Q
// spans R^n (small models) the trace is Σ α_j exactly, with StdErr 0.
//
// Each trial draws probes from rngs[k] until its standard error is at most
// RelSE·|estimate| (and at least MinProbes) or MaxProbes is reached; trials
// advance in lockstep, one batched Apply per probe.
func Trace(op Operator, rngs []*rand.Rand, eig []Eigen, opts TraceOptions) ([]Estimate, error) {
	k, n := op.Len(), op.Dim()
	if len(rngs) != k || (eig != nil && len(eig) != k) {
		panic(fmt.Sprintf("sharp: %d streams and %d Lanczos results for %d trials", len(rngs), len(eig), k))
	}
	opts = opts.withDefaults()
	base := make([]float64, k)
	acc := make([]meanSE, k)
	done := make([]bool, k)
	out := make([]Estimate, k)
	for i := range base {
		if eig == nil {
			continue
		}
		for _, a := range eig[i].alpha {
			base[i] += a
		}
		if len(eig[i].basis) == n {
			done[i] = true
			out[i] = Estimate{Value: base[i], Converged: true}
		}
	}
	v, w := matrix(k, n), matrix(k, n)
	for p := 0; p < opts.MaxProbes; p++ {
		active := false
		for i := range v {
			if done[i] {
				clear(v[i])
				continue
			}
			active = true
			for j := range v[i] {
				v[i][j] = float64(2*int(rngs[i].Uint64()&1) - 1)
			}
			if eig != nil {
				for range 2 {
					for _, q := range eig[i].basis {
						axpy(-dot(q, v[i]), q, v[i])
					}
				}
			}
		}
		if !active {
			break
		}
		if err := op.Apply(w, v); err != nil {
			return nil, err
		}
		for i := range v {
			if done[i] {
				continue
			}
			acc[i].add(dot(v[i], w[i]))
			val, se := base[i]+acc[i].mean, acc[i].se()
			out[i] = Estimate{Value: val, StdErr: se, Probes: acc[i].n}
			if acc[i].n >= opts.MinProbes && se <= opts.RelSE*math.Abs(val) {
				out[i].Converged = true
				done[i] = true
			}
		}
	}
	return out, nil
}
