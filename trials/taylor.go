package trials

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/integrate/quad"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
)

// Taylor mode through training.
//
// Every trajectory of SGD or GD starts at θ₀ whatever η, so the iterates
// are power series in η around θ₀: θ_t = θ₀ + η b¹_t + η² b²_t + η³ b³_t
// + O(η⁴). Expanding the step θ_{t+1} = θ_t − η ḡ_t(θ_t), with ḡ_t, H̄_t
// and J̄_t the batch-β_t means at θ₀,
//
//	ḡ_t(θ_t) = ḡ_t + H̄_t(η b¹_t + η² b²_t) + ½ J̄_t(η b¹_t, η b¹_t) + O(η³),
//
// and matching powers of η gives the exact recurrences (b^k_0 = 0)
//
//	b¹_{t+1} = b¹_t − ḡ_t
//	b²_{t+1} = b²_t − H̄_t b¹_t
//	b³_{t+1} = b³_t − H̄_t b²_t − ½ J̄_t(b¹_t, b¹_t, ·).
//
// With A_k = b^k_T, the final test loss L(θ₀ + ηA₁ + η²A₂ + η³A₃) has the
// coefficients
//
//	c₀ = L(θ₀)
//	c₁ = ∇L·A₁
//	c₂ = ∇L·A₂ + ½ A₁ᵀ H A₁
//	c₃ = ∇L·A₃ + A₁ᵀ H A₂ + J(A₁, A₁, A₁)/6,
//
// read off test-loss jets along A₁, A₂, A₃ and A₁ ± A₂ (A₁ᵀHA₂ by
// polarisation: (c₂(A₁+A₂) − c₂(A₁−A₂))/2). All of this is exact in
// arithmetic: a trial's test loss is c₀ + c₁η + c₂η² + c₃η³ + O(η⁴).
// Averaging the coefficients over training sets estimates those of the
// expected test loss.

// seriesOracle adds third-order covectors to the statistics oracle.
type seriesOracle interface {
	HVPs(v [][]float64, sets [][]nets.Sample, out [][]float64) error
	Grads(samples []nets.Sample, out [][]float64) error
	// JVV sets out[k] to the mean over sets[k] of J_n(v[k], v[k], ·)/2.
	JVV(v [][]float64, sets [][]nets.Sample, out [][]float64) error
	// TestJets sets out[k] to the Taylor coefficients of the test loss
	// along v[k]: the mean over the pool (rows nil) or over the pool rows
	// listed in rows (repeats counted), for Runner.SetTaylorSubset. A
	// landscape has no pool and takes rows nil only.
	TestJets(v [][]float64, rows []int, out [][4]float64) error
	NumParams() int
}

func (o landOracle) JVV(v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	return o.l.Covector(2, o.theta, v, sets, meanWeights(sets), out)
}

func meanWeights(sets [][]nets.Sample) []float64 {
	var w []float64
	for _, set := range sets {
		for range set {
			w = append(w, 1/float64(len(set)))
		}
	}
	return w
}

// TestJets of a landscape: the expectation over x ~ N(0, 1) of the
// per-sample jets, by 12-node Gauss–Hermite quadrature (exact: the jets
// are polynomials of degree at most 2 in x). For mean-estimation-l2 the
// test loss is the unregularised H θ²/2, whose jets along (v_θ, v_λ) are
// (Hθ²/2, Hθv_θ, Hv_θ²/2, 0).
func (o landOracle) TestJets(v [][]float64, rows []int, out [][4]float64) error {
	if rows != nil {
		return fmt.Errorf("test-loss jets of landscape %s over %d pool rows: a landscape has no pool", o.l.Name(), len(rows))
	}
	if o.l.Name() == "mean-estimation-l2" {
		h := o.h
		for k := range v {
			th, d := o.theta[0], v[k][0]
			out[k] = [4]float64{h * th * th / 2, h * th * d, h * d * d / 2, 0}
		}
		return nil
	}
	const q = 12
	xs, ws := make([]float64, q), make([]float64, q)
	quad.Hermite{}.FixedLocations(xs, ws, math.Inf(-1), math.Inf(1))
	for k := range v {
		out[k] = [4]float64{}
		for i := range xs {
			c := o.l.Jet(o.theta, v[k], xs[i]*math.Sqrt2)
			for j := range c {
				out[k][j] += ws[i] / math.Sqrt(math.Pi) * c[j]
			}
		}
	}
	return nil
}

func (o *imageOracle) JVV(v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	return o.meanCovector(2, v, sets, out)
}

// poolChunk is the number of pool rows per test-loss jet call.
const poolChunk = 500

// TestJets of an image model: the mean over the whole pool (rows nil) or
// over rows, in chunks of poolChunk.
func (o *imageOracle) TestJets(v [][]float64, rows []int, out [][4]float64) error {
	n := len(rows)
	if rows == nil {
		n = o.r.data.Len()
	}
	if n == 0 {
		return fmt.Errorf("test-loss jets over no pool rows")
	}
	for k := range out {
		out[k] = [4]float64{}
	}
	res := make([][4]float64, len(v)*min(poolChunk, n))
	dirRows := make([][]int, len(v))
	for start := 0; start < n; start += poolChunk {
		b := min(poolChunk, n-start)
		j, err := o.get(len(v), b)
		if err != nil {
			return err
		}
		for k := range dirRows {
			dirRows[k] = dirRows[k][:0]
			for i := start; i < start+b; i++ {
				if rows != nil {
					dirRows[k] = append(dirRows[k], rows[i])
				} else {
					dirRows[k] = append(dirRows[k], i)
				}
			}
		}
		if err := j.Coeffs(o.theta, v, dirRows, res[:len(v)*b]); err != nil {
			return err
		}
		for k := range v {
			for i := 0; i < b; i++ {
				for c := range out[k] {
					out[k][c] += res[k*b+i][c] / float64(n)
				}
			}
		}
	}
	return nil
}

// schedule lists the batches (indices into the training set) that trial
// t's optimiser visits, in order. Only sgd and gd are supported.
func schedule(c *config.Config, t Trial) ([][]int, error) {
	n := c.Trials.N
	spec := t.Opt.Spec()
	var out [][]int
	switch spec.Name {
	case "gd":
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		for range spec.Steps {
			out = append(out, all)
		}
	case "sgd":
		for e := 0; e < spec.Epochs; e++ {
			order := epochPerm(c, t, n, e)
			for j := 0; j < n/spec.Batch; j++ {
				b := make([]int, spec.Batch)
				for i := range b {
					b[i] = j*spec.Batch + i
					if order != nil {
						b[i] = order[b[i]]
					}
				}
				out = append(out, b)
			}
		}
	default:
		return nil, fmt.Errorf("taylor: optimizer %s (%s) is not supported; Taylor mode covers sgd and gd", t.Opt.Label, spec.Name)
	}
	return out, nil
}

// Taylor returns the coefficients c₀..c₃ of trial t's final test loss as
// a power series in η (t.Eta is ignored): exact, by Taylor mode through
// the optimiser's steps (see the comment above seriesOracle). With a
// Taylor subset (SetTaylorSubset) the test loss is t's subset estimate,
// whose coefficients are unbiased for the pool's.
func (r *Runner) Taylor(t Trial) ([4]float64, error) {
	theta, err := r.InitTheta(t.Model, t.Init)
	if err != nil {
		return [4]float64{}, err
	}
	o, err := r.Oracle(t.Model, theta)
	if err != nil {
		return [4]float64{}, err
	}
	defer closeOracle(o)
	c, _, err := r.taylor(o, t)
	return c, err
}

// SetTaylorSubset makes Taylor and TaylorMean read the test-loss jets of
// a training set off its own subset of m pool examples (m = 0: the whole
// pool, the default), with the control variate at θ₀, as "perturb run"
// estimates the test loss under trials.test = { subset = m } (testloss.go):
// trial t's test loss is estimated by
//
//	L̂(θ_T) = L(θ₀) + (1/m) Σ_{x ∈ S_t} [l_x(θ_T) − l_x(θ₀)],
//
// S_t = TestSubset(t), the same subset for every optimiser of the trial
// index. Its η-series has c₀ = L(θ₀), the exact pool loss at the
// initialisation (computed once per initialisation), and c_k (k ≥ 1) the
// subset means of the per-example jet coefficients, each unbiased over
// the draw of S_t for the pool's c_k. The draw's noise is independent
// across training sets, so it is inside the spread of the coefficients
// over sets that TaylorMean's standard errors measure (TaylorStats.SubsetSE
// is its part). A jet pass costs m/pool of the pool's (the convnet: about
// 50 s per set on the pool).
//
// Landscapes have no pool: SetTaylorSubset refuses m > 0 when the config
// has a landscape model. Call it before Taylor or TaylorMean, not while
// they run.
func (r *Runner) SetTaylorSubset(m int) error {
	if m < 0 {
		return fmt.Errorf("taylor subset %d: give a positive number of pool examples per training set, or 0 for the whole pool", m)
	}
	if m > 0 {
		for _, cm := range r.cfg.Models {
			if cm.IsLandscape() {
				return fmt.Errorf("a taylor subset of %d pool examples needs image models, but model %q is a landscape, which has no pool (its test-loss jets are exact and cheap); use the whole pool (subset 0)", m, cm.Name)
			}
		}
	}
	r.taylorSubset = m
	return nil
}

// TaylorSubset returns the subset size set by SetTaylorSubset (0: the
// whole pool).
func (r *Runner) TaylorSubset() int { return r.taylorSubset }

// taylorRows returns the pool rows of t's test-loss jets: nil for the
// whole pool, else t's subset.
func (r *Runner) taylorRows(t Trial) []int {
	if r.taylorSubset == 0 {
		return nil
	}
	return TestSubset(r.cfg, t, r.taylorSubset, r.data.Len())
}

// taylor is Taylor with an oracle at t's initialisation, with the
// standard errors of the coefficients over the draw of t's subset (zero
// over the pool).
func (r *Runner) taylor(o stats.Oracle, t Trial) (c, se [4]float64, err error) {
	var loss0 float64
	rows := r.taylorRows(t)
	if rows != nil {
		st, err := r.newWorker(DefaultMaxBytes, 1).init(t.Model, t.Init)
		if err != nil {
			return c, se, err
		}
		loss0 = st.loss
	}
	return r.taylorOn(o.(seriesOracle), t, rows, loss0)
}

// taylorOn is taylor with the test-loss jets over rows (nil: the pool)
// and, for rows, the exact pool loss loss0 at the initialisation as c₀:
// with the control variate l_x(θ₀), the subset's c₀ is
// loss0 + mean_x [l_x(θ₀) − l_x(θ₀)] = loss0. Over rows, the jets run on
// the G = min(10, M) groups of subsetGroupBounds, and c₁..c₃ and their
// standard errors over the draw come from the group means by
// subsetCombine, as perturb run's subset estimates do (testloss.go).
func (r *Runner) taylorOn(so seriesOracle, t Trial, rows []int, loss0 float64) (c, se [4]float64, err error) {
	dirs, err := r.taylorDirections(so, t)
	if err != nil {
		return c, se, err
	}
	j := make([][4]float64, len(dirs))
	if rows == nil {
		if err := so.TestJets(dirs, nil, j); err != nil {
			return c, se, err
		}
		return taylorCoeffs(j), se, nil
	}
	b := subsetGroupBounds(len(rows))
	var groups [4][]float64
	for g := 0; g+1 < len(b); g++ {
		if err := so.TestJets(dirs, rows[b[g]:b[g+1]], j); err != nil {
			return c, se, err
		}
		cg := taylorCoeffs(j)
		for k := 1; k < len(groups); k++ {
			groups[k] = append(groups[k], cg[k])
		}
	}
	c[0] = loss0
	for k := 1; k < len(groups); k++ {
		c[k], se[k] = subsetCombine(groups[k], b)
	}
	return c, se, nil
}

// taylorDirections runs the recurrences for t and returns the directions
// of the test-loss jets: A₁, A₂, A₃, A₁ + A₂ and A₁ − A₂.
func (r *Runner) taylorDirections(so seriesOracle, t Trial) ([][]float64, error) {
	sched, err := schedule(r.cfg, t)
	if err != nil {
		return nil, err
	}
	set := r.Samples(t)
	p := so.NumParams()
	g := make([][]float64, len(set))
	for i := range g {
		g[i] = make([]float64, p)
	}
	if err := so.Grads(set, g); err != nil {
		return nil, err
	}
	b1, b2, b3 := make([]float64, p), make([]float64, p), make([]float64, p)
	hv := [][]float64{make([]float64, p), make([]float64, p)}
	jvv := [][]float64{make([]float64, p)}
	for _, batch := range sched {
		pts := make([]nets.Sample, len(batch))
		for i, j := range batch {
			pts[i] = set[j]
		}
		if err := so.HVPs([][]float64{b1, b2}, [][]nets.Sample{pts, pts}, hv); err != nil {
			return nil, err
		}
		if err := so.JVV([][]float64{b1}, [][]nets.Sample{pts}, jvv); err != nil {
			return nil, err
		}
		fb := float64(len(batch))
		for _, j := range batch {
			for i := range b1 {
				b1[i] -= g[j][i] / fb
			}
		}
		for i := range b2 {
			b3[i] -= hv[1][i] + jvv[0][i]
			b2[i] -= hv[0][i]
		}
	}
	plus, minus := make([]float64, p), make([]float64, p)
	for i := range plus {
		plus[i], minus[i] = b1[i]+b2[i], b1[i]-b2[i]
	}
	return [][]float64{b1, b2, b3, plus, minus}, nil
}

// taylorCoeffs combines the test-loss jets along taylorDirections into
// c₀..c₃ (linear in the jets, so a subset mean of per-example jets gives
// the subset mean of per-example coefficients).
func taylorCoeffs(j [][4]float64) [4]float64 {
	return [4]float64{
		j[0][0],
		j[0][1],
		j[1][1] + j[0][2],
		j[2][1] + (j[3][2]-j[4][2])/2 + j[0][3],
	}
}

// TaylorStats is the mean and standard error of the Taylor coefficients
// of the final test loss over training sets.
type TaylorStats struct {
	Sets     int
	Mean, SE [4]float64
	// SubsetSE is the part of SE from the draws of the sets' subsets
	// (SetTaylorSubset; 0 over the pool): √(Σ_i se_i²)/sets, with se_i set
	// i's standard error over its draw. The draws are independent of each
	// other and of the training sets, so SubsetSE²/SE² estimates the
	// share of the subsets in the variance of the mean.
	SubsetSE [4]float64
	NBE      [3]int // N, B, E of the optimiser (GD: B = N, E = T)
	// PerSet are the coefficients of each training set (trial index i),
	// for paired differences between optimisers on the same sets.
	PerSet [][4]float64
}

// NBE returns the (N, B, E) of an sgd or gd optimiser for Proposition 2.
func NBE(c *config.Config, o config.Optimizer) ([3]int, error) {
	n := c.Trials.N
	spec := o.Spec()
	switch spec.Name {
	case "sgd":
		return [3]int{n, spec.Batch, spec.Epochs}, nil
	case "gd":
		return [3]int{n, n, spec.Steps}, nil
	}
	return [3]int{}, fmt.Errorf("optimizer %s (%s): Proposition 2 covers sgd and gd", o.Label, spec.Name)
}

// TaylorMean averages the Taylor coefficients of trials 0..sets−1 of
// (model, init, optimiser) over their training sets, running workers
// trials at a time (0: one per CPU); progress, if set, is called after
// each trial.
func (r *Runner) TaylorMean(model string, init int, opt config.Optimizer, sets, workers int, progress func(done, total int)) (TaylorStats, error) {
	st := TaylorStats{Sets: sets}
	nbe, err := NBE(r.cfg, opt)
	if err != nil {
		return st, err
	}
	st.NBE = nbe
	theta, err := r.InitTheta(model, init)
	if err != nil {
		return st, err
	}
	cs, ses := make([][4]float64, sets), make([][4]float64, sets)
	err = r.eachWithOracle(context.Background(), model, theta, sets, workers, func(o stats.Oracle, i int) (err error) {
		cs[i], ses[i], err = r.taylor(o, Trial{Model: model, Init: init, Opt: opt, Index: i})
		return err
	}, progress)
	if err != nil {
		return st, err
	}
	for k := range st.Mean {
		st.Mean[k], st.SE[k] = stats.MeanSE(sets, func(i int) float64 { return cs[i][k] })
		var v float64
		for i := range ses {
			v += ses[i][k] * ses[i][k]
		}
		st.SubsetSE[k] = math.Sqrt(v) / float64(sets)
	}
	st.PerSet = cs
	return st, nil
}
