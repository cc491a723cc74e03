package sharp

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perturb/perturb/trials/results"
)

// Losses names the two losses a Point measures, in report order.
var Losses = []string{"train", "pool"}

// Dist summarises a sample of values: its mean with the standard error
// and the 95% confidence interval of the mean (Student's t with n−1
// degrees of freedom), the standard deviation and the quartiles (linear
// interpolation between order statistics).
type Dist struct {
	N               int
	Mean, SE        float64
	Lo, Hi          float64 // 95% interval of the mean; NaN for N < 2
	SD              float64
	Min, Q1, Median float64
	Q3, Max         float64
	Values          []float64 // the sample, in the order of (init, trial index)
}

// Summarize returns the Dist of xs.
func Summarize(xs []float64) Dist {
	d := Dist{N: len(xs), Values: slices.Clone(xs)}
	nan := math.NaN()
	d.Mean, d.SE, d.Lo, d.Hi, d.SD = nan, nan, nan, nan, nan
	d.Min, d.Q1, d.Median, d.Q3, d.Max = nan, nan, nan, nan, nan
	if d.N == 0 {
		return d
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	d.Mean = sum / float64(d.N)
	s := slices.Clone(xs)
	sort.Float64s(s)
	q := func(p float64) float64 {
		h := p * float64(len(s)-1)
		i := int(math.Floor(h))
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (h-float64(i))*(s[i+1]-s[i])
	}
	d.Min, d.Q1, d.Median, d.Q3, d.Max = s[0], q(0.25), q(0.5), q(0.75), s[len(s)-1]
	if d.N < 2 {
		return d
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - d.Mean) * (x - d.Mean)
	}
	d.SD = math.Sqrt(ss / float64(d.N-1))
	d.SE = d.SD / math.Sqrt(float64(d.N))
	t := tQuantile(d.N - 1)
	d.Lo, d.Hi = d.Mean-t*d.SE, d.Mean+t*d.SE
	return d
}

// tQuantile is the 0.975 quantile of Student's t with nu degrees of freedom.
func tQuantile(nu int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(nu)}.Quantile(0.975)
}

// Change is one cell's (model, eta, optimiser) distribution of a measure on
// one loss at initialisation, at the end, and of its change end − init per
// trial, with the same trials' change of test loss.
type Change struct {
	Model     string
	Eta       float64
	Optimizer string
	Loss      string // "train" or "pool"
	Measure   string // one of MeasureNames
	Init, End Dist
	Delta     Dist // end − init, per trial
	// TestLossDelta is the trials' test loss minus their initial test loss.
	TestLossDelta Dist
}

// Paired is the paired comparison of two optimisers on the same training
// sets (same model, initialisation and trial index): per training set, the
// difference A − B of the measure's change, and of the test-loss change.
type Paired struct {
	Model         string
	Eta           float64
	Loss, Measure string
	A, B          string // optimiser labels
	Delta         Dist   // ΔA − ΔB of the measure
	TestLossDelta Dist   // ΔA − ΔB of the test loss
}

// Relation is the linear relation, across trials, between a measure's
// change (X) and the test loss's change (Y), for one optimiser or (with
// Optimizer "") all optimisers of a (model, eta) together.
type Relation struct {
	Model         string
	Eta           float64
	Optimizer     string
	Loss, Measure string
	N             int
	// R is Pearson's correlation, with its 95% interval by Fisher's z
	// (atanh r ± 1.96/√(N−3)); NaN where undefined (N < 4 or no spread).
	R, RLo, RHi float64
	// Slope and Intercept are the least-squares line Y = Intercept +
	// Slope·X, Slope with its standard error and 95% interval (t with N−2
	// degrees of freedom).
	Slope, SlopeSE, SlopeLo, SlopeHi, Intercept float64
	// X and Y are the points, in row order.
	X, Y []float64
}

// Analysis is what Analyze finds in a run's rows.
type Analysis struct {
	Changes   []Change
	Paired    []Paired
	Relations []Relation
}

// obs is one measured trial's values for one (loss, measure).
type obs struct {
	init, end, dLoss float64
}

type cellKey struct {
	model, opt, loss, measure string
	eta                       float64
}

type pairKey struct {
	init, trial int
}

// Analyze summarises the sharpness records of a run's rows: rows without a
// record, diverged rows and measures missing at either point (λ of a
// trial whose Lanczos did not converge) are left out of each statistic.
// Trace and tr(HĈ) estimates that stopped at max_probes before their
// target standard error are kept: they are unbiased, only less precise
// (their records say converged: false). Cells are ordered by model, loss,
// measure, eta and optimiser (optimisers in the order of their labels).
// The error reports a record that does not parse.
func Analyze(rows []results.Row) (*Analysis, error) {
	data := map[cellKey]map[pairKey]obs{}
	for _, r := range rows {
		if r.Sharpness == nil || r.Status != results.StatusOK {
			continue
		}
		rec, err := Decode(r.Sharpness)
		if err != nil {
			return nil, fmt.Errorf("row %v: %w", r.Key(), err)
		}
		if rec.Init == nil || rec.End == nil {
			continue
		}
		for _, loss := range Losses {
			mi, me := rec.Init.Train, rec.End.Train
			if loss == "pool" {
				mi, me = rec.Init.Pool, rec.End.Pool
			}
			if mi == nil || me == nil {
				continue
			}
			for _, name := range MeasureNames {
				a, b := mi.Value(name), me.Value(name)
				if !finite(a) || !finite(b) || !finite(r.TestLoss) || !finite(r.InitTestLoss) {
					continue
				}
				k := cellKey{r.Model, r.Optimizer, loss, name, r.Eta}
				if data[k] == nil {
					data[k] = map[pairKey]obs{}
				}
				data[k][pairKey{r.Init, r.Trial}] = obs{a, b, r.TestLoss - r.InitTestLoss}
			}
		}
	}
	keys := make([]cellKey, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	order := func(a, b cellKey) int {
		switch {
		case a.model != b.model:
			return cmpStr(a.model, b.model)
		case a.loss != b.loss:
			return slices.Index(Losses, a.loss) - slices.Index(Losses, b.loss)
		case a.measure != b.measure:
			return slices.Index(MeasureNames, a.measure) - slices.Index(MeasureNames, b.measure)
		case a.eta != b.eta:
			if a.eta < b.eta {
				return -1
			}
			return 1
		}
		return cmpStr(a.opt, b.opt)
	}
	slices.SortFunc(keys, order)
	an := &Analysis{}
	// groups of cells sharing (model, loss, measure, eta)
	for lo := 0; lo < len(keys); {
		hi := lo
		g := keys[lo]
		for hi < len(keys) && keys[hi].model == g.model && keys[hi].loss == g.loss && keys[hi].measure == g.measure && keys[hi].eta == g.eta {
			hi++
		}
		var allX, allY []float64
		for _, k := range keys[lo:hi] {
			ps := sortedPairs(data[k])
			var in, en, d, dl []float64
			for _, p := range ps {
				o := data[k][p]
				in, en, d, dl = append(in, o.init), append(en, o.end), append(d, o.end-o.init), append(dl, o.dLoss)
			}
			an.Changes = append(an.Changes, Change{Model: k.model, Eta: k.eta, Optimizer: k.opt, Loss: k.loss, Measure: k.measure,
				Init: Summarize(in), End: Summarize(en), Delta: Summarize(d), TestLossDelta: Summarize(dl)})
			an.Relations = append(an.Relations, relate(k, k.opt, d, dl))
			allX, allY = append(allX, d...), append(allY, dl...)
		}
		if hi-lo > 1 {
			an.Relations = append(an.Relations, relate(g, "", allX, allY))
		}
		for i := lo; i < hi; i++ {
			for j := i + 1; j < hi; j++ {
				a, b := data[keys[i]], data[keys[j]]
				var dd, dl []float64
				for _, p := range sortedPairs(a) {
					ob, ok := b[p]
					if !ok {
						continue
					}
					oa := a[p]
					dd = append(dd, (oa.end-oa.init)-(ob.end-ob.init))
					dl = append(dl, oa.dLoss-ob.dLoss)
				}
				an.Paired = append(an.Paired, Paired{Model: g.model, Eta: g.eta, Loss: g.loss, Measure: g.measure,
					A: keys[i].opt, B: keys[j].opt, Delta: Summarize(dd), TestLossDelta: Summarize(dl)})
			}
		}
		lo = hi
	}
	return an, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedPairs(m map[pairKey]obs) []pairKey {
	out := make([]pairKey, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b pairKey) int {
		if a.init != b.init {
			return a.init - b.init
		}
		return a.trial - b.trial
	})
	return out
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// relate fits Y on X by least squares and correlates them:
//
//	Sxx = Σ(x−x̄)², Syy = Σ(y−ȳ)², Sxy = Σ(x−x̄)(y−ȳ),
//	slope = Sxy/Sxx, intercept = ȳ − slope·x̄, r = Sxy/√(Sxx·Syy),
//	SE(slope) = √(SSE/(N−2)/Sxx), SSE = Syy − slope·Sxy.
func relate(k cellKey, opt string, x, y []float64) Relation {
	nan := math.NaN()
	r := Relation{Model: k.model, Eta: k.eta, Optimizer: opt, Loss: k.loss, Measure: k.measure, N: len(x),
		R: nan, RLo: nan, RHi: nan, Slope: nan, SlopeSE: nan, SlopeLo: nan, SlopeHi: nan, Intercept: nan,
		X: slices.Clone(x), Y: slices.Clone(y)}
	n := float64(len(x))
	if len(x) < 2 {
		return r
	}
	var xm, ym float64
	for i := range x {
		xm += x[i] / n
		ym += y[i] / n
	}
	var sxx, syy, sxy float64
	for i := range x {
		sxx += (x[i] - xm) * (x[i] - xm)
		syy += (y[i] - ym) * (y[i] - ym)
		sxy += (x[i] - xm) * (y[i] - ym)
	}
	if sxx > 0 {
		r.Slope = sxy / sxx
		r.Intercept = ym - r.Slope*xm
		if len(x) > 2 {
			sse := max(syy-r.Slope*sxy, 0)
			r.SlopeSE = math.Sqrt(sse / (n - 2) / sxx)
			t := tQuantile(len(x) - 2)
			r.SlopeLo, r.SlopeHi = r.Slope-t*r.SlopeSE, r.Slope+t*r.SlopeSE
		}
	}
	if sxx > 0 && syy > 0 {
		r.R = sxy / math.Sqrt(sxx*syy)
		if len(x) > 3 {
			z, h := math.Atanh(min(max(r.R, -1+1e-15), 1-1e-15)), 1.959963984540054/math.Sqrt(n-3)
			r.RLo, r.RHi = math.Tanh(z-h), math.Tanh(z+h)
		}
	}
	return r
}
