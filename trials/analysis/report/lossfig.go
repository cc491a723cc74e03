package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/perturb/perturb/trials/analysis/predict"
	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/plots"
	"github.com/perturb/perturb/trials/results"
)

// quantity is a measured quantity of the η figures: the per-trial value
// and, for an optimiser with a schedule, its prediction polynomial and the
// orders drawn.
type quantity struct {
	name, ylabel string
	value        func(results.Row) float64
	// poly returns the prediction polynomial of o in c, false when o has
	// none.
	poly   func(c *config.Config, o config.Optimizer) (predict.Polynomial, bool, error)
	orders []int
}

// lossQuantity is the test-loss change, predicted to order 1, 2 and 3.
var lossQuantity = quantity{
	name: "loss", ylabel: "test loss − initial", value: testChange, orders: []int{1, 2, 3},
	poly: func(c *config.Config, o config.Optimizer) (predict.Polynomial, bool, error) {
		p, _, ok, err := schedulePoly(c, o)
		return p, ok, err
	},
}

// gapQuantity is the generalisation gap, predicted to order 2.
var gapQuantity = quantity{
	name: "gap", ylabel: "test − train loss", value: genGap, orders: []int{2},
	poly: func(c *config.Config, o config.Optimizer) (predict.Polynomial, bool, error) {
		_, cnt, ok, err := schedulePoly(c, o)
		if !ok || err != nil {
			return predict.Polynomial{}, false, err
		}
		return predict.GenGap(cnt, c.Trials.N).ScaleEta(o.Scale()), true, nil
	},
}

// etaSource is one run's contribution to an η figure.
type etaSource struct {
	run   *Run
	ix    *index
	label string // prefix of the group labels ("" for a single run)
}

// etaGroups returns one group per optimiser of src with measured values
// of q at (model, init): its label, the conventional dash of the
// optimiser, the next marker colour (*color, advanced), ηT's T, and the
// predictions of q's orders when src's run has statistics for (model,
// init) and the optimiser a schedule polynomial.
func etaGroups(src etaSource, model string, init int, q quantity, color *int) ([]plots.EtaGroup, error) {
	c := src.run.Config
	est, haveStats := statsOf(src.run, model, init)
	var groups []plots.EtaGroup
	// The first sgd is solid and the first gd dashed; every other
	// optimiser takes the next style not yet used (dotted, dash-dot, ...).
	used := map[int]bool{}
	next := 2
	for _, o := range c.Optimizers {
		dash := plots.DashFor(o.Name, 0)
		if dash >= 2 || used[dash] {
			dash, next = next, 2+(next-1)%(len(plots.Dashes)-2)
		}
		used[dash] = true
		label := o.Label
		if src.label != "" {
			label = src.label + " " + o.Label
		}
		g := plots.EtaGroup{Label: label, Dash: dash, Color: *color, T: o.Scale() * float64(o.Steps)}
		for _, eta := range src.ix.etas {
			s := src.ix.measure(cellKey{model, o.Label, init, eta}, q.value)
			if s.N == 0 {
				continue
			}
			g.Measured = append(g.Measured, plots.EtaPoint{Eta: eta, Mean: s.Mean, SE: s.SE})
		}
		if len(g.Measured) == 0 {
			continue
		}
		*color++
		if haveStats {
			poly, ok, err := q.poly(c, o)
			if err != nil {
				return nil, err
			}
			if ok {
				for _, k := range q.orders {
					g.Predictions = append(g.Predictions, plots.Prediction{Order: k, At: evalAt(est, poly, k)})
				}
			}
		}
		groups = append(groups, g)
	}
	return groups, nil
}

// evalAt returns the order-k prediction of poly as a function of η (NaN
// where the statistics cannot evaluate it).
func evalAt(est predict.Estimates, poly predict.Polynomial, k int) func(float64) (float64, float64) {
	return func(eta float64) (float64, float64) {
		v, se, err := est.Eval(poly.At(eta, k))
		if err != nil {
			return math.NaN(), math.NaN()
		}
		return v, se
	}
}

// statsOf returns the statistics of (model, init) in r's stats.json.
func statsOf(r *Run, model string, init int) (predict.Estimates, bool) {
	if r.Stats == nil {
		return predict.Estimates{}, false
	}
	for _, e := range r.Stats.Entries {
		if e.Model == model && e.Init == init {
			return predict.Estimates{Est: e.Estimates, Cov: entryCov(e)}, true
		}
	}
	return predict.Estimates{}, false
}

// etaFigure is the figure of q against η for the groups.
func etaFigure(title string, q quantity, groups []plots.EtaGroup, limit float64) plots.EtaFigure {
	return plots.EtaFigure{Title: title, YLabel: q.ylabel, Groups: groups, EtaTLimit: limit}
}

// measuredOnly is the section of a (model, init) without statistics: the
// measured test-loss change against η, and how to get the predictions.
func (b *builder) measuredOnly(m config.Model, init int) error {
	c := b.run.Config
	sec := Section{
		Title: fmt.Sprintf("%s: %s, init %d — test loss against η (measured only)", c.Name, m.Key(), init),
		Text: []string{fmt.Sprintf("No statistics for this model in %s, so no predictions: run `%s` first.",
			filepath.Join(b.run.Dir, stats.FileName), statsHint(b.run))},
	}
	color := 0
	groups, err := etaGroups(etaSource{run: b.run, ix: b.ix}, m.Key(), init, lossQuantity, &color)
	if err != nil {
		return err
	}
	if len(groups) > 0 {
		f := etaFigure(fmt.Sprintf("%s init %d: test-loss change", m.Key(), init), lossQuantity, groups, b.opt.EtaTLimit)
		f.Notes = []string{"no statistics: no predictions", "(perturb stats, see report)"}
		png, err := b.save(f, fmt.Sprintf("%s-%s-init%d-loss", c.Name, m.Key(), init))
		if err != nil {
			return err
		}
		sec.Figures = append(sec.Figures, png)
	}
	b.sections = append(b.sections, sec)
	b.missingStats = append(b.missingStats, fmt.Sprintf("%s init %d", m.Key(), init))
	return nil
}

// statsHint is the command that writes r's stats.json from the config
// stored in the run's folder (perturb stats RUN), or from the config the
// run was made with when the folder holds none.
func statsHint(r *Run) string {
	if _, err := os.Stat(filepath.Join(r.Dir, "config.toml")); err != nil {
		return fmt.Sprintf("perturb stats CONFIG --out %s", r.Dir)
	}
	return "perturb stats " + r.Dir
}

// warnMissingStats tells w (nil: standard error) which models of the run
// were plotted without predictions and how to get them.
func (b *builder) warnMissingStats(w io.Writer) {
	if len(b.missingStats) == 0 {
		return
	}
	if w == nil {
		w = os.Stderr
	}
	what := "has no " + stats.FileName
	if b.run.Stats != nil {
		what = "has no statistics for " + joinList(b.missingStats)
	}
	fmt.Fprintf(w, "report: %s %s: plotted the measured test loss against η without predictions; for the order-1/2/3 predictions run\n  %s\nand run the report again.\n",
		b.run.Dir, what, statsHint(b.run))
}

func joinList(xs []string) string {
	s := ""
	for i, x := range xs {
		switch {
		case i == 0:
		case i == len(xs)-1:
			s += " and "
		default:
			s += ", "
		}
		s += x
	}
	return s
}

// denseLine samples the prediction f on 200 log-spaced η over the
// measured range [etas[0], etas[len−1]], keeping those with η·T ≤ limit
// (T ≤ 0: all), as a line for a plots.Figure: |value| without a band when
// abs (for log axes), else the value with a band of ±1.96 se. Points where
// f is NaN are left out.
func denseLine(label string, etas []float64, T, limit float64, f func(float64) (float64, float64), abs bool) plots.Series {
	s := plots.Series{Label: label}
	if len(etas) == 0 {
		return s
	}
	lo, hi := etas[0], etas[0]
	for _, e := range etas {
		lo, hi = math.Min(lo, e), math.Max(hi, e)
	}
	if !(lo > 0) {
		return s
	}
	fig := plots.EtaFigure{Groups: []plots.EtaGroup{{T: T, Measured: []plots.EtaPoint{{Eta: lo}, {Eta: hi}}}}, EtaTLimit: limit}
	if T <= 0 {
		fig.EtaTLimit = 0
	}
	for _, eta := range fig.PredictionGrid(0) {
		v, se := f(eta)
		switch {
		case math.IsNaN(v):
		case abs:
			s.Points = append(s.Points, plots.Point{X: eta, Y: math.Abs(v)})
		default:
			s.Points = append(s.Points, plots.Point{X: eta, Y: v, Lo: v - 1.96*se, Hi: v + 1.96*se})
		}
	}
	return s
}
