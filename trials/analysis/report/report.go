package report

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perturb/perturb/trials/analysis/predict"
	"github.com/perturb/perturb/trials/analysis/summary"
	"github.com/perturb/perturb/trials/config"
)

// Options tune the tests behind the verdicts.
type Options struct {
	// EtaTLimit: prediction claims are tested at the learning rates with
	// η·T at most this (the paper: order 3 holds through ηT ≈ 1).
	EtaTLimit float64
	// Stderr receives the notes for the terminal (a run without
	// statistics, and how to get them); nil means os.Stderr.
	Stderr io.Writer
}

// Verdict is the outcome of one claim's test.
type Verdict struct {
	Claim  string
	Test   string
	Result string
	Agrees bool
	// Inconclusive marks a test whose data decide neither way (an
	// interval containing 0, no decided pairs); Agrees is then false and
	// the claim counts as neither agreeing nor disagreeing.
	Inconclusive bool
	// Facts are the test's numbers for report.json (nil: only the words;
	// see jsonout.go).
	Facts *Facts
}

// Word is the verdict's word in reports: agrees, disagrees or
// inconclusive.
func (v Verdict) Word() string {
	switch {
	case v.Inconclusive:
		return "inconclusive"
	case v.Agrees:
		return "agrees"
	}
	return "disagrees"
}

// Tally counts the verdicts of rep by outcome.
func (r *Report) Tally() (agree, disagree, inconclusive int) {
	for _, s := range r.Sections {
		for _, v := range s.Verdicts {
			switch {
			case v.Inconclusive:
				inconclusive++
			case v.Agrees:
				agree++
			default:
				disagree++
			}
		}
	}
	return agree, disagree, inconclusive
}

// TallyText is the tally in words, e.g. "5 of 7 claims agree, 1
// disagrees, 1 inconclusive".
func (r *Report) TallyText() string {
	a, d, i := r.Tally()
	t := fmt.Sprintf("%d of %d claims agree", a, a+d+i)
	if d > 0 || i > 0 {
		t += fmt.Sprintf(", %d disagree", d)
	}
	if i > 0 {
		t += fmt.Sprintf(", %d inconclusive", i)
	}
	return t
}

// Section is one part of a report.
type Section struct {
	Title    string
	Text     []string
	Table    [][]string // first row: header
	Figures  []string   // PNG paths relative to the report
	Verdicts []Verdict
}

// Report is the comparison of runs with the theory.
type Report struct {
	Title    string
	Sections []Section
	// Gains are the measured gains of the subset test-loss estimate of the
	// runs that used it (summary.SubsetGains).
	Gains []summary.SubsetGain
}

// Build analyses the runs and saves figures into dir.
func Build(runs []*Run, dir string, opt Options) (*Report, error) {
	if opt.EtaTLimit <= 0 {
		opt.EtaTLimit = 1
	}
	rep := &Report{Title: "perturb report"}
	var names []string
	for _, r := range runs {
		names = append(names, r.Config.Name)
	}
	rep.Title = "Report: " + strings.Join(names, ", ")
	for _, r := range runs {
		one := oneDType(r)
		b := &builder{run: one, ix: newIndex(one.Rows), dir: dir, opt: opt}
		if err := b.build(); err != nil {
			return nil, fmt.Errorf("report %s: %w", r.Dir, err)
		}
		b.warnMissingStats(opt.Stderr)
		rep.Sections = append(rep.Sections, b.sections...)
		if s, ok := dtypeSection(r); ok {
			rep.Sections = append(rep.Sections, s)
		}
		if s, ok := subsetSection(one); ok {
			rep.Sections = append(rep.Sections, s)
			rep.Gains = append(rep.Gains, summary.SubsetGains(one.Rows)...)
		}
	}
	return rep, nil
}

type builder struct {
	run      *Run
	ix       *index
	dir      string
	opt      Options
	sections []Section
	// missingStats are the "model init k" plotted without predictions.
	missingStats []string
}

func (b *builder) build() error {
	c := b.run.Config
	for _, m := range c.Models {
		for _, init := range m.Inits {
			est, ok := b.estimates(m.Key(), init)
			switch {
			case m.Name == "archimedes":
				if err := b.archimedes(m, init); err != nil {
					return err
				}
			case strings.HasPrefix(m.Name, "mean-estimation"):
				// handled across models below
			}
			if !ok {
				if !strings.HasPrefix(m.Name, "mean-estimation") && m.Name != "archimedes" {
					if err := b.measuredOnly(m, init); err != nil {
						return err
					}
				}
				continue
			}
			if err := b.predictions(m, init, est); err != nil {
				return err
			}
			if err := b.differences(m, init, est); err != nil {
				return err
			}
			if err := b.epochs(m, init, est); err != nil {
				return err
			}
			if m.Name == "gauss" {
				if err := b.sde(m, init, est); err != nil {
					return err
				}
			}
		}
	}
	if err := b.meanEstimation(); err != nil {
		return err
	}
	if err := b.sharpness(); err != nil {
		return err
	}
	return b.noise()
}

// estimates returns the statistics of (model, init), with their
// covariance when stats.json has it.
func (b *builder) estimates(model string, init int) (predict.Estimates, bool) {
	return statsOf(b.run, model, init)
}

// schedulePoly is the test-loss polynomial of an sgd or gd optimiser at
// its own learning rate (η times its eta_scale).
func schedulePoly(c *config.Config, o config.Optimizer) (predict.Polynomial, predict.Counts, bool, error) {
	var cnt predict.Counts
	switch o.Name {
	case "sgd":
		var err error
		cnt, err = predict.ExpectedCounts(c.Trials.N, o.Batch, o.Epochs, o.Reshuffle, 2000, 1)
		if err != nil {
			return predict.Polynomial{}, cnt, false, err
		}
	case "gd":
		s, err := predict.GD(c.Trials.N, o.Steps)
		if err != nil {
			return predict.Polynomial{}, cnt, false, err
		}
		cnt = predict.Count(s)
	default:
		return predict.Polynomial{}, cnt, false, nil
	}
	return predict.TestLoss(cnt).ScaleEta(o.Scale()), cnt, true, nil
}

// zcrit is the two-sided normal quantile for a family of m tests at
// level 5% (Bonferroni).
func zcrit(m int) float64 {
	if m < 1 {
		m = 1
	}
	return distuv.UnitNormal.Quantile(1 - 0.025/float64(m))
}

func fmtPM(v, se float64) string {
	if math.IsNaN(se) || se == 0 {
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.4g ± %.2g", v, se)
}

// fmtZ is the z-score of measured s against the prediction v ± se.
func fmtZ(s sample, v, se float64) string {
	return fmt.Sprintf("%+.2f", (s.Mean-v)/math.Hypot(s.SE, se))
}

// agreement tests measured against predicted values at the points with
// ok[i]: every |z| below the Bonferroni bound. It returns the verdict and
// the largest x through which all points agree (in order of x).
func agreement(meas []sample, pred, predSE []float64, ok []bool, xs []float64) (agrees bool, through float64, worst float64, m int) {
	for i := range meas {
		if ok[i] {
			m++
		}
	}
	zc := zcrit(m)
	agrees, through = true, math.NaN()
	prefix := true
	for i := range meas {
		z := (meas[i].Mean - pred[i]) / math.Hypot(meas[i].SE, predSE[i])
		if !ok[i] {
			continue
		}
		if math.Abs(z) > math.Abs(worst) || math.IsNaN(z) {
			worst = z
		}
		if math.IsNaN(z) || math.Abs(z) > zc {
			agrees = false
			prefix = false
		}
		if prefix {
			through = xs[i]
		}
	}
	return agrees, through, worst, m
}

// predictions compares each sgd/gd optimiser's measured test-loss change
// with the order-1/2/3 predictions, and the generalisation gap with its
// order-1/2 prediction.
func (b *builder) predictions(m config.Model, init int, est predict.Estimates) error {
	c := b.run.Config
	sec := Section{Title: fmt.Sprintf("%s: %s, init %d — test loss against η", c.Name, m.Key(), init)}
	sec.Text = append(sec.Text, fmt.Sprintf("Measured: mean change of the test loss from initialisation over the trials, with its 95%% interval. Predicted: the expected change to order 1, 2 and 3 in η from the statistics in stats.json (docs/predictions.md), ± its standard error. Verdicts test |z| = |measured − predicted| / √(se² + se_pred²) below the Bonferroni bound at 5%% over the learning rates with ηT ≤ %g.", b.opt.EtaTLimit))
	sec.Table = [][]string{{"optimizer", "η", "ηT", "trials", "measured", "order 1", "order 2", "order 3", "z (order 2)", "z (order 3)", "gap measured", "gap order 2"}}
	any := false
	for oi, o := range c.Optimizers {
		poly, cnt, ok, err := schedulePoly(c, o)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		gapPoly := predict.GenGap(cnt, c.Trials.N).ScaleEta(o.Scale())
		any = true
		var meas, gapMeas []sample
		var pred [3][]float64
		var predSE [3][]float64
		var gapPred, gapPredSE []float64
		var okT []bool
		var xs []float64
		for _, eta := range b.ix.etas {
			key := cellKey{m.Key(), o.Label, init, eta}
			s := b.ix.measure(key, testChange)
			if s.N == 0 {
				continue
			}
			g := b.ix.measure(key, genGap)
			meas, gapMeas, xs = append(meas, s), append(gapMeas, g), append(xs, eta)
			etaT := eta * o.Scale() * float64(o.Steps)
			okT = append(okT, etaT <= b.opt.EtaTLimit)
			row := []string{o.Label, fmt.Sprint(eta), fmt.Sprintf("%.3g", etaT), fmt.Sprint(s.N), fmtPM(s.Mean, s.SE)}
			for k := 0; k < 3; k++ {
				v, se, err := est.Eval(poly.At(eta, k+1))
				if err != nil {
					return err
				}
				pred[k], predSE[k] = append(pred[k], v), append(predSE[k], se)
				row = append(row, fmtPM(v, se))
			}
			gv, gse, err := est.Eval(gapPoly.At(eta, 2))
			if err != nil {
				gv, gse = math.NaN(), math.NaN()
			}
			gapPred, gapPredSE = append(gapPred, gv), append(gapPredSE, gse)
			last := len(pred[0]) - 1
			row = append(row, fmtZ(s, pred[1][last], predSE[1][last]), fmtZ(s, pred[2][last], predSE[2][last]), fmtPM(g.Mean, g.SE), fmtPM(gv, gse))
			sec.Table = append(sec.Table, row)
		}
		if len(meas) == 0 {
			continue
		}
		for k := 0; k < 3; k++ {
			ag, through, worst, n := agreement(meas, pred[k], predSE[k], okT, xs)
			if n == 0 {
				continue
			}
			res := fmt.Sprintf("worst z %+.2f over %d learning rates (bound %.2f)", worst, n, zcrit(n))
			if !math.IsNaN(through) {
				res += fmt.Sprintf("; agrees through η = %g (ηT = %.3g)", through, through*o.Scale()*float64(o.Steps))
			}
			sec.Verdicts = append(sec.Verdicts, Verdict{
				Claim:  fmt.Sprintf("%s (%s, init %d): the order-%d prediction of the expected test loss holds for ηT ≤ %g", o.Label, m.Key(), init, k+1, b.opt.EtaTLimit),
				Test:   "Bonferroni z-test per learning rate",
				Result: res, Agrees: ag,
				Facts: zFacts(fmt.Sprintf("order%d.test_loss.%s", k+1, o.Label), meas, pred[k], predSE[k], okT, xs).on(m.Key(), init, b.opt.EtaTLimit, o.Label),
			})
		}
		if ag, _, worst, n := agreement(gapMeas, gapPred, gapPredSE, okT, xs); n > 0 && !math.IsNaN(gapPred[0]) {
			sec.Verdicts = append(sec.Verdicts, Verdict{
				Claim:  fmt.Sprintf("%s (%s, init %d): the order-2 prediction of the generalisation gap holds for ηT ≤ %g (Corollary 2, un-resummed)", o.Label, m.Key(), init, b.opt.EtaTLimit),
				Test:   "Bonferroni z-test per learning rate",
				Result: fmt.Sprintf("worst z %+.2f over %d learning rates", worst, n), Agrees: ag,
				Facts: zFacts("order2.gen_gap."+o.Label, gapMeas, gapPred, gapPredSE, okT, xs).on(m.Key(), init, b.opt.EtaTLimit, o.Label),
			})
		}
		_ = oi
	}
	if !any {
		return nil
	}
	// The figures show every optimiser measured (the predictions only for
	// sgd and gd), the curves cut at the ηT limit.
	for _, q := range []struct {
		quantity
		title string
	}{{lossQuantity, "test-loss change"}, {gapQuantity, "generalisation gap"}} {
		color := 0
		groups, err := etaGroups(etaSource{run: b.run, ix: b.ix}, m.Key(), init, q.quantity, &color)
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			continue // no finished trial to draw
		}
		f := etaFigure(fmt.Sprintf("%s init %d: %s", m.Key(), init, q.title), q.quantity, groups, b.opt.EtaTLimit)
		png, err := b.save(f, fmt.Sprintf("%s-%s-init%d-%s", c.Name, m.Key(), init, q.name))
		if err != nil {
			return err
		}
		sec.Figures = append(sec.Figures, png)
	}
	b.sections = append(b.sections, sec)
	return nil
}

// figure is a figure that saves itself as PNG, SVG and PDF.
type figure interface {
	Save(dir, name string) (pngPath, svgPath string, err error)
}

// save writes f into the report's folder as name (sanitised) and returns
// the PNG's path relative to the report.
func (b *builder) save(f figure, name string) (string, error) {
	png, _, err := f.Save(b.dir, sanitize(name))
	if err != nil {
		return "", fmt.Errorf("figure %s: %w", name, err)
	}
	rel, err := filepath.Rel(b.dir, png)
	if err != nil {
		return png, nil
	}
	return rel, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// findOpt returns the first optimiser satisfying f.
func findOpt(c *config.Config, f func(o config.Optimizer) bool) (config.Optimizer, bool) {
	for _, o := range c.Optimizers {
		if f(o) {
			return o, true
		}
	}
	return config.Optimizer{}, false
}

// Markdown writes the report.
func (r *Report) Markdown(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n\n", r.Title)
	sb.WriteString("Throughout, a ± b gives b as one standard error (s.e.) of a; intervals in brackets are 95% confidence intervals (95% CI).\n\n")
	var all []Verdict
	for _, s := range r.Sections {
		all = append(all, s.Verdicts...)
	}
	if len(all) > 0 {
		fmt.Fprintf(&sb, "## Verdicts\n\n%s with the measurements.\n\n| claim | test | result | verdict |\n| --- | --- | --- | --- |\n", r.TallyText())
		for _, v := range all {
			fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", v.Claim, v.Test, v.Result, v.Word())
		}
		sb.WriteString("\n")
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&sb, "## %s\n\n", s.Title)
		for _, t := range s.Text {
			sb.WriteString(t + "\n\n")
		}
		if len(s.Table) > 1 {
			sb.WriteString("| " + strings.Join(s.Table[0], " | ") + " |\n|")
			for range s.Table[0] {
				sb.WriteString(" --- |")
			}
			sb.WriteString("\n")
			for _, row := range s.Table[1:] {
				sb.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
			sb.WriteString("\n")
		}
		for _, f := range s.Figures {
			fmt.Fprintf(&sb, "![%s](%s)\n\n", strings.TrimSuffix(filepath.Base(f), ".png"), f)
		}
		for _, v := range s.Verdicts {
			fmt.Fprintf(&sb, "- **%s**: %s — %s (%s).\n", v.Word(), v.Claim, v.Result, v.Test)
		}
		if len(s.Verdicts) > 0 {
			sb.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
