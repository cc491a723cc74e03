// Package landscape implements the artificial loss landscapes of the
// paper's appendix C.1: Gauss, Archimedes and Mean Estimation (plain and
// with a projected l2 coefficient). Every landscape is a distribution over
// losses l_x(θ) indexed by a datum x ~ N(0, 1); the pool is unlimited, so a
// training point is a nets.Sample whose X field holds x (Row is unused).
//
// A *Landscape implements optim.Backend and optim.TestLosser: gradients
// and Hessian-vector products are closed-form (derived below, per
// landscape), the test loss is the exact expectation over x, and all
// arithmetic is float64. A float32 landscape only rounds the weights (in
// Round), like a float32 image model stores them.
//
// # Gauss ("gauss", weight h)
//
// Fitting N(0, σ²) to standard normal data with h = log σ²:
//
//	l_x(h)    = (h + x² e^{-h}) / 2
//	∂l/∂h     = (1 − x² e^{-h}) / 2
//	∂²l/∂h²   =  x² e^{-h} / 2
//	∂³l/∂h³   = −x² e^{-h} / 2
//	L(h)      = E l_x(h) = (h + e^{-h}) / 2      (E x² = 1)
//
// At h = 0: G = 0, H = 1/2, C = Var((1 − x²)/2) = 2/4 = 1/2,
// S = E[((1 − x²)/2)³] = −E[(x² − 1)³]/8 = −1 and J = −1/2.
//
// # Archimedes ("archimedes", weights u, v, z)
//
//	l_x = Hq(θ)/2 + x·Sq(θ)
//	Hq  = u² + v² + p²,               p = cos z·u + sin z·v
//	Sq  = cos(z − π/4)·u + sin(z − π/4)·v
//
// With q = −sin z·u + cos z·v (so ∂p/∂z = q, ∂q/∂z = −p) and
// r = −sin(z − π/4)·u + cos(z − π/4)·v (so ∂Sq/∂z = r, ∂r/∂z = −Sq):
//
//	∂l/∂u = u + p cos z + x cos(z − π/4)
//	∂l/∂v = v + p sin z + x sin(z − π/4)
//	∂l/∂z = p q + x r
//
//	∂²l/∂u²  = 1 + cos² z          ∂²l/∂u∂v = cos z sin z
//	∂²l/∂v²  = 1 + sin² z
//	∂²l/∂u∂z = q cos z − p sin z − x sin(z − π/4)
//	∂²l/∂v∂z = q sin z + p cos z + x cos(z − π/4)
//	∂²l/∂z²  = q² − p² − x Sq
//
// and L(θ) = Hq(θ)/2 since E x = 0.
//
// # Mean Estimation ("mean-estimation", weight θ; H, S > 0)
//
//	l_x = H θ²/2 + x S θ,   ∂l/∂θ = H θ + x S,   ∂²l/∂θ² = H,
//	L(θ) = H θ²/2.
//
// # Mean Estimation with l2 ("mean-estimation-l2", weights θ, λ)
//
//	l_x = (H + λ) θ²/2 + x S θ,   λ ≥ 0 (kept by Round's projection)
//	∂l/∂θ = (H + λ) θ + x S,      ∂l/∂λ = θ²/2
//	∂²l/∂θ² = H + λ,  ∂²l/∂θ∂λ = θ,  ∂²l/∂λ² = 0
//
// The penalty λθ²/2 is a training device (the paper's hyperparameter
// selection experiment): the test loss is the UNREGULARISED L(θ) = H θ²/2,
// whatever λ.
package landscape

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/seed"
)

// Names lists the landscapes New accepts.
var Names = []string{"gauss", "archimedes", "mean-estimation", "mean-estimation-l2"}

// IsLandscape reports whether name is one of Names.
func IsLandscape(name string) bool { return slices.Contains(Names, name) }

// Options configures a landscape.
type Options struct {
	// H and S are Mean Estimation's curvature and gradient noise scale
	// (both > 0). They must be left zero for Gauss and Archimedes.
	H, S float64
	// Start is the weight vector of initialisation 0, of length NumParams;
	// nil means the origin. For "mean-estimation-l2" its λ must be ≥ 0.
	Start []float64
}

// Landscape is one configured artificial landscape.
type Landscape struct {
	name    string
	weights []string
	h, s    float64
	start   []float64
	float32 bool
}

// weightNames gives each landscape's weights, in their flat order.
var weightNames = map[string][]string{
	"gauss":              {"h"},
	"archimedes":         {"u", "v", "z"},
	"mean-estimation":    {"theta"},
	"mean-estimation-l2": {"theta", "lambda"},
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// New returns the landscape name configured by opt. If float32 is true,
// Round rounds every weight to float32 (computation stays float64).
func New(name string, opt Options, float32 bool) (*Landscape, error) {
	w, ok := weightNames[name]
	if !ok {
		return nil, fmt.Errorf("landscape: unknown landscape %q (known: %s)", name, strings.Join(Names, ", "))
	}
	l := &Landscape{name: name, weights: w, h: opt.H, s: opt.S, float32: float32}
	if l.isMeanEstimation() {
		if !finite(opt.H) || !finite(opt.S) {
			return nil, fmt.Errorf("landscape %s: H = %v and S = %v must be finite", name, opt.H, opt.S)
		}
		if opt.H <= 0 || opt.S <= 0 {
			return nil, fmt.Errorf("landscape %s: H = %v and S = %v must both be > 0", name, opt.H, opt.S)
		}
	} else if opt.H != 0 || opt.S != 0 {
		return nil, fmt.Errorf("landscape %s: options H and S apply only to mean-estimation landscapes; leave them zero", name)
	}
	l.start = make([]float64, len(w))
	if opt.Start != nil {
		if len(opt.Start) != len(w) {
			return nil, fmt.Errorf("landscape %s: Start has %d values, want %d (%s)", name, len(opt.Start), len(w), strings.Join(w, ", "))
		}
		for i, v := range opt.Start {
			if !finite(v) {
				return nil, fmt.Errorf("landscape %s: Start %s = %v is not finite", name, w[i], v)
			}
		}
		copy(l.start, opt.Start)
	}
	if name == "mean-estimation-l2" && l.start[1] < 0 {
		return nil, fmt.Errorf("landscape %s: Start lambda = %v must be >= 0", name, l.start[1])
	}
	return l, nil
}

func (l *Landscape) isMeanEstimation() bool { return strings.HasPrefix(l.name, "mean-estimation") }

// Name returns the landscape's name, one of Names.
func (l *Landscape) Name() string { return l.name }

// Weights returns the names of the weights in their flat order, e.g.
// ["u", "v", "z"] for Archimedes.
func (l *Landscape) Weights() []string { return slices.Clone(l.weights) }

// NumParams is the number of weights.
func (l *Landscape) NumParams() int { return len(l.weights) }

// signature names the landscape and its options (exact float bits), so
// initialisation k of two different configurations are unrelated draws.
func (l *Landscape) signature() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	var b strings.Builder
	b.WriteString("landscape/" + l.name)
	if l.isMeanEstimation() {
		b.WriteString("/H=" + f(l.h) + "/S=" + f(l.s))
	}
	b.WriteString("/start")
	for _, v := range l.start {
		b.WriteString("/" + f(v))
	}
	return b.String()
}

// Init returns the weights of initialisation id: id 0 is Start, id k > 0
// is Start plus the k-th standard-normal vector, drawn from
// seed.New(seed.Init, seed.StringID(signature), k) where the signature
// names the landscape and all its options. The result is passed through
// Round (float32 rounding, λ projection), so it is always admissible.
func (l *Landscape) Init(id int) ([]float64, error) {
	if id < 0 {
		return nil, fmt.Errorf("landscape %s: initialisation id %d is negative; use 0 (Start) or k > 0 (Start plus the k-th Gaussian draw)", l.name, id)
	}
	out := slices.Clone(l.start)
	if id > 0 {
		r := seed.New(seed.Init, seed.StringID(l.signature()), uint64(id))
		for i := range out {
			out[i] += r.NormFloat64()
		}
	}
	l.Round(out)
	return out, nil
}

// Samples returns n training points with X = r.NormFloat64() and Row = -1.
func Samples(r *rand.Rand, n int) []nets.Sample {
	out := make([]nets.Sample, n)
	for i := range out {
		out[i] = nets.Sample{Row: -1, X: r.NormFloat64()}
	}
	return out
}

// Loss returns l_x(theta); theta must have NumParams values.
func (l *Landscape) Loss(theta []float64, x float64) float64 {
	switch l.name {
	case "gauss":
		return (theta[0] + x*x*math.Exp(-theta[0])) / 2
	case "archimedes":
		return l.testLoss(theta) + x*archS(theta)
	case "mean-estimation":
		return l.h*theta[0]*theta[0]/2 + x*l.s*theta[0]
	default: // mean-estimation-l2
		return (l.h+theta[1])*theta[0]*theta[0]/2 + x*l.s*theta[0]
	}
}

// archS is Archimedes' Sq(θ) = cos(z − π/4)·u + sin(z − π/4)·v.
func archS(theta []float64) float64 {
	s, c := math.Sincos(theta[2] - math.Pi/4)
	return c*theta[0] + s*theta[1]
}

// testLoss is the exact expectation of l_x over x ~ N(0, 1).
func (l *Landscape) testLoss(theta []float64) float64 {
	switch l.name {
	case "gauss":
		return (theta[0] + math.Exp(-theta[0])) / 2
	case "archimedes":
		u, v := theta[0], theta[1]
		s, c := math.Sincos(theta[2])
		p := c*u + s*v
		return (u*u + v*v + p*p) / 2
	default: // the l2 penalty is not part of the test loss
		return l.h * theta[0] * theta[0] / 2
	}
}

// SampleGrad sets g (length NumParams) to ∇l_x(theta).
func (l *Landscape) SampleGrad(theta []float64, x float64, g []float64) {
	switch l.name {
	case "gauss":
		g[0] = (1 - x*x*math.Exp(-theta[0])) / 2
	case "archimedes":
		u, v := theta[0], theta[1]
		s, c := math.Sincos(theta[2])
		s4, c4 := math.Sincos(theta[2] - math.Pi/4)
		p, q, r := c*u+s*v, -s*u+c*v, -s4*u+c4*v
		g[0] = u + p*c + x*c4
		g[1] = v + p*s + x*s4
		g[2] = p*q + x*r
	case "mean-estimation":
		g[0] = l.h*theta[0] + x*l.s
	default:
		g[0] = (l.h+theta[1])*theta[0] + x*l.s
		g[1] = theta[0] * theta[0] / 2
	}
}

// hess returns ∇²l_x(theta) in the top-left NumParams block.
func (l *Landscape) hess(theta []float64, x float64) (h [3][3]float64) {
	switch l.name {
	case "gauss":
		h[0][0] = x * x * math.Exp(-theta[0]) / 2
	case "archimedes":
		u, v := theta[0], theta[1]
		s, c := math.Sincos(theta[2])
		s4, c4 := math.Sincos(theta[2] - math.Pi/4)
		p, q := c*u+s*v, -s*u+c*v
		h[0][0], h[0][1], h[1][1] = 1+c*c, c*s, 1+s*s
		h[0][2] = q*c - p*s - x*s4
		h[1][2] = q*s + p*c + x*c4
		h[2][2] = q*q - p*p - x*(c4*u+s4*v)
		h[1][0], h[2][0], h[2][1] = h[0][1], h[0][2], h[1][2]
	case "mean-estimation":
		h[0][0] = l.h
	default:
		h[0][0], h[0][1], h[1][0] = l.h+theta[1], theta[0], theta[0]
	}
	return h
}

// Hessian returns the dense NumParams×NumParams matrix ∇²l_x(theta).
func (l *Landscape) Hessian(theta []float64, x float64) [][]float64 {
	h := l.hess(theta, x)
	n := l.NumParams()
	out := make([][]float64, n)
	for i := range out {
		out[i] = slices.Clone(h[i][:n])
	}
	return out
}

// checkTheta checks that every theta[k] has NumParams values.
func (l *Landscape) checkTheta(theta [][]float64) error {
	for k, t := range theta {
		if len(t) != l.NumParams() {
			return fmt.Errorf("landscape %s: theta[%d] has %d values, want %d", l.name, k, len(t), l.NumParams())
		}
	}
	return nil
}

// Grad implements optim.Backend: loss[k] is the mean of Loss over pts[k]
// and grad[k] the mean of SampleGrad. Every pts[k] must be non-empty.
func (l *Landscape) Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error {
	K := len(theta)
	if len(pts) != K || len(loss) != K || len(grad) != K {
		return fmt.Errorf("landscape %s: Grad got %d theta, %d pts, %d loss, %d grad", l.name, K, len(pts), len(loss), len(grad))
	}
	if err := l.checkTheta(theta); err != nil {
		return err
	}
	var g [3]float64
	n := l.NumParams()
	for k, t := range theta {
		if len(pts[k]) == 0 {
			return fmt.Errorf("landscape %s: Grad got no samples for trial %d", l.name, k)
		}
		if len(grad[k]) != n {
			return fmt.Errorf("landscape %s: grad[%d] has %d values, want %d", l.name, k, len(grad[k]), n)
		}
		clear(grad[k])
		sum := 0.0
		for _, p := range pts[k] {
			sum += l.Loss(t, p.X)
			l.SampleGrad(t, p.X, g[:n])
			for i := range n {
				grad[k][i] += g[i]
			}
		}
		m := float64(len(pts[k]))
		loss[k] = sum / m
		for i := range n {
			grad[k][i] /= m
		}
	}
	return nil
}

// HVP implements optim.Backend: out[k] = Σ_n ∇²l_{x_n}(theta[k]) · v[k],
// summed (not averaged) over pts[k].
func (l *Landscape) HVP(theta [][]float64, pts [][]nets.Sample, v [][]float64, out [][]float64) error {
	K := len(theta)
	if len(pts) != K || len(v) != K || len(out) != K {
		return fmt.Errorf("landscape %s: HVP got %d theta, %d pts, %d v, %d out", l.name, K, len(pts), len(v), len(out))
	}
	if err := l.checkTheta(theta); err != nil {
		return err
	}
	n := l.NumParams()
	for k, t := range theta {
		if len(v[k]) != n || len(out[k]) != n {
			return fmt.Errorf("landscape %s: HVP trial %d has v of %d and out of %d values, want %d", l.name, k, len(v[k]), len(out[k]), n)
		}
		var sum [3][3]float64
		for _, p := range pts[k] {
			h := l.hess(t, p.X)
			for i := range n {
				for j := range n {
					sum[i][j] += h[i][j]
				}
			}
		}
		for i := range n {
			out[k][i] = 0
			for j := range n {
				out[k][i] += sum[i][j] * v[k][j]
			}
		}
	}
	return nil
}

// Round implements optim.Backend: it projects λ onto λ ≥ 0
// ("mean-estimation-l2") and, for a float32 landscape, rounds every weight
// to the nearest float32. NaN weights are left NaN.
func (l *Landscape) Round(theta []float64) {
	if l.name == "mean-estimation-l2" && theta[1] <= 0 {
		theta[1] = 0 // also turns −0 into +0
	}
	if l.float32 {
		for i, v := range theta {
			theta[i] = float64(float32(v))
		}
	}
}

// TestLoss implements optim.TestLosser: loss[k] is the exact expectation
// E_x l_x(theta[k]) (for "mean-estimation-l2" the unregularised H θ²/2),
// and acc[k] is NaN (a landscape has no accuracy).
func (l *Landscape) TestLoss(theta [][]float64, loss, acc []float64) error {
	if len(loss) != len(theta) || len(acc) != len(theta) {
		return fmt.Errorf("landscape %s: TestLoss got %d theta, %d loss, %d acc", l.name, len(theta), len(loss), len(acc))
	}
	if err := l.checkTheta(theta); err != nil {
		return err
	}
	for k, t := range theta {
		loss[k] = l.testLoss(t)
		acc[k] = math.NaN()
	}
	return nil
}

// errNotMeanEstimation is the panic value of the Mean Estimation oracles on
// another landscape.
var errNotMeanEstimation = errors.New("landscape: the Mean Estimation oracles need the \"mean-estimation\" landscape")

// meanEstimationCoeffs returns a = 1 − ηH and c_n = Σ_t a^{T−1−t} ·
// count_t(n)/|batch_t| for n < nPoints. It panics on a landscape other than
// "mean-estimation", an empty batch or an index outside [0, nPoints).
func (l *Landscape) meanEstimationCoeffs(eta float64, nPoints int, schedule [][]int) (a float64, c []float64) {
	if l.name != "mean-estimation" {
		panic(errNotMeanEstimation)
	}
	a = 1 - eta*l.h
	c = make([]float64, nPoints)
	w := 1.0 // a^{T−1−t}, walking t down from T−1
	for t := len(schedule) - 1; t >= 0; t-- {
		b := schedule[t]
		if len(b) == 0 {
			panic(fmt.Sprintf("landscape: Mean Estimation schedule step %d is an empty batch", t))
		}
		for _, n := range b {
			if n < 0 || n >= nPoints {
				panic(fmt.Sprintf("landscape: Mean Estimation schedule step %d uses point %d, outside [0, %d)", t, n, nPoints))
			}
			c[n] += w / float64(len(b))
		}
		w *= a
	}
	return a, c
}

// MeanEstimationFinal returns the exact θ_T of (S)GD on "mean-estimation"
// with learning rate eta, from theta0, on training data xs, where step t
// averages the gradients of the points schedule[t] (an index may repeat and
// counts with its multiplicity). Since ∇l_x(θ) = Hθ + xS,
//
//	θ_{t+1} = (1 − ηH) θ_t − ηS mean_{n∈batch_t} x_n,
//
// and unrolling gives θ_T = a^T θ0 − ηS Σ_n c_n x_n with a = 1 − ηH and
// c_n = Σ_t a^{T−1−t} count_t(n)/|batch_t|. The result ignores float32
// rounding. It panics on any other landscape, on an empty batch and on an
// index outside xs.
func (l *Landscape) MeanEstimationFinal(theta0, eta float64, xs []float64, schedule [][]int) float64 {
	a, c := l.meanEstimationCoeffs(eta, len(xs), schedule)
	sum := 0.0
	for n, x := range xs {
		sum += c[n] * x
	}
	return math.Pow(a, float64(len(schedule)))*theta0 - eta*l.s*sum
}

// MeanEstimationExpectedTestLoss returns E[H θ_T²/2] over n iid N(0, 1)
// training points, θ_T as in MeanEstimationFinal: since θ_T is a^T θ0 plus
// a centred Gaussian of variance η²S² Σ_n c_n²,
//
//	E L(θ_T) = H/2 · (a^{2T} θ0² + η² S² Σ_n c_n²).
//
// It panics on any other landscape, on an empty batch and on an index
// outside [0, n).
func (l *Landscape) MeanEstimationExpectedTestLoss(theta0, eta float64, n int, schedule [][]int) float64 {
	a, c := l.meanEstimationCoeffs(eta, n, schedule)
	sum := 0.0
	for _, cn := range c {
		sum += cn * cn
	}
	aT := math.Pow(a, float64(len(schedule)))
	return l.h / 2 * (aT*aT*theta0*theta0 + eta*eta*l.s*l.s*sum)
}
