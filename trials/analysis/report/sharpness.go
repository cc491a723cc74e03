package report

import (
	"fmt"
	"math"
	"slices"

	"github.com/perturb/perturb/trials/study/sharp"
)

// measureLabel names a sharpness measure in tables and figures.
var measureLabel = map[string]string{
	sharp.Lambda: "λ1",
	sharp.TrH:    "tr H",
	sharp.TrC:    "tr Ĉ",
	sharp.TrHC:   "tr(HĈ)",
}

// noiseMeasures are the measures the paper's claims weigh by the noise C:
// the verdicts test these.
var noiseMeasures = []string{sharp.TrC, sharp.TrHC}

// lossText describes the loss a measure was taken on.
var lossText = map[string]string{
	"train": "training loss",
	"pool":  "pool loss",
}

// chKey identifies one optimiser's cell of a measure; an empty opt in a
// relation means all optimisers together.
type chKey struct {
	model, loss, measure, opt string
	eta                       float64
}

// sharpData is a run's sharpness analysis indexed for the report, with the
// models, learning rates and optimisers (in config order) that have data.
type sharpData struct {
	an        *sharp.Analysis
	changes   map[chKey]sharp.Change
	relations map[chKey]sharp.Relation
	paired    map[[2]chKey]sharp.Paired // keyed by (A, B) cell keys
	models    []string
	etas      []float64
	opts      []string // optimiser labels, config order
	ref, gd   string   // SGD and GD labels, "" when absent
	// eps is the relative size below which a paired difference counts as
	// rounding (negligible), whatever its interval: about the dtype's
	// precision times a few hundred steps.
	eps float64
}

// roundingEps is the relative size of a negligible difference per dtype.
var roundingEps = map[string]float64{"float32": 1e-5, "float64": 1e-9}

// decide returns the signs of the paired differences a − b of the
// measure's change and of the test-loss change (ciSign), each 0 when the
// difference is negligible: its mean within eps of the larger of the two
// cells' mean end values (for the test loss, of their mean changes).
func (d *sharpData) decide(model, loss, m string, eta float64, a, b string) (sx, st int, ok bool) {
	x, t, ok := d.pair(model, loss, m, eta, a, b)
	if !ok || x.N < 2 {
		return 0, 0, false
	}
	ca, cb := d.changes[chKey{model, loss, m, a, eta}], d.changes[chKey{model, loss, m, b, eta}]
	sx, st = ciSign(x), ciSign(t)
	if math.Abs(x.Mean) <= d.eps*math.Max(math.Abs(ca.End.Mean), math.Abs(cb.End.Mean)) {
		sx = 0
	}
	if math.Abs(t.Mean) <= d.eps*math.Max(math.Abs(ca.TestLossDelta.Mean), math.Abs(cb.TestLossDelta.Mean)) {
		st = 0
	}
	return sx, st, true
}

func newSharpData(an *sharp.Analysis, optOrder []string, sgd, gd string) *sharpData {
	d := &sharpData{an: an, changes: map[chKey]sharp.Change{}, relations: map[chKey]sharp.Relation{},
		paired: map[[2]chKey]sharp.Paired{}}
	have := map[string]bool{}
	for _, c := range an.Changes {
		d.changes[chKey{c.Model, c.Loss, c.Measure, c.Optimizer, c.Eta}] = c
		if !slices.Contains(d.models, c.Model) {
			d.models = append(d.models, c.Model)
		}
		if !slices.Contains(d.etas, c.Eta) {
			d.etas = append(d.etas, c.Eta)
		}
		have[c.Optimizer] = true
	}
	slices.Sort(d.etas)
	for _, o := range optOrder {
		if have[o] {
			d.opts = append(d.opts, o)
			delete(have, o)
		}
	}
	var rest []string // labels not in the config (not for a loaded run)
	for o := range have {
		rest = append(rest, o)
	}
	slices.Sort(rest)
	d.opts = append(d.opts, rest...)
	for _, r := range an.Relations {
		d.relations[chKey{r.Model, r.Loss, r.Measure, r.Optimizer, r.Eta}] = r
	}
	for _, p := range an.Paired {
		a := chKey{p.Model, p.Loss, p.Measure, p.A, p.Eta}
		b := chKey{p.Model, p.Loss, p.Measure, p.B, p.Eta}
		d.paired[[2]chKey{a, b}] = p
	}
	if slices.Contains(d.opts, sgd) {
		d.ref = sgd
	} else if len(d.opts) > 0 {
		d.ref = d.opts[0]
	}
	if slices.Contains(d.opts, gd) {
		d.gd = gd
	}
	return d
}

// pair returns the paired differences a − b of the measure's change and of
// the test-loss change on the same training sets.
func (d *sharpData) pair(model, loss, measure string, eta float64, a, b string) (delta, test sharp.Dist, ok bool) {
	ka, kb := chKey{model, loss, measure, a, eta}, chKey{model, loss, measure, b, eta}
	if p, ok := d.paired[[2]chKey{ka, kb}]; ok {
		return p.Delta, p.TestLossDelta, true
	}
	if p, ok := d.paired[[2]chKey{kb, ka}]; ok {
		return negDist(p.Delta), negDist(p.TestLossDelta), true
	}
	return sharp.Dist{}, sharp.Dist{}, false
}

// negDist is the Dist of the negated sample.
func negDist(d sharp.Dist) sharp.Dist {
	n := d
	n.Mean, n.Lo, n.Hi = -d.Mean, -d.Hi, -d.Lo
	n.Min, n.Q1, n.Median, n.Q3, n.Max = -d.Max, -d.Q3, -d.Median, -d.Q1, -d.Min
	n.Values = make([]float64, len(d.Values))
	for i, v := range d.Values {
		n.Values[i] = -v
	}
	return n
}

// ciSign is +1 when d's 95% interval lies above 0, −1 below, 0 when it
// contains 0 or is undefined.
func ciSign(d sharp.Dist) int {
	switch {
	case d.N < 2 || math.IsNaN(d.Lo) || math.IsNaN(d.Hi):
		return 0
	case d.Lo > 0:
		return 1
	case d.Hi < 0:
		return -1
	}
	return 0
}

// fmtDist formats a mean with its 95% interval, or "—" for no data.
func fmtDist(d sharp.Dist) string {
	switch {
	case d.N == 0 || math.IsNaN(d.Mean):
		return "—"
	case math.IsNaN(d.Lo):
		return fmt.Sprintf("%.3g (n=%d)", d.Mean, d.N)
	}
	return fmt.Sprintf("%.3g [%.3g, %.3g]", d.Mean, d.Lo, d.Hi)
}

// fmtDistSig is fmtDist with a star when the interval excludes 0.
func fmtDistSig(d sharp.Dist) string {
	if ciSign(d) != 0 {
		return fmtDist(d) + " *"
	}
	return fmtDist(d)
}

// sharpness adds the sections of the run's sharpness records (issue 9,
// docs/sharpness.md): per model and loss, the change of each measure from
// initialisation to the end per optimiser and η, its distribution, the
// paired differences between optimisers on the same training sets, the
// relation of the change to the test-loss change, and verdicts on the
// claims that SGD ends lower in tr Ĉ and tr(HĈ) than GD and that the
// optimiser ending flatter with respect to C also ends with lower test
// loss.
func (b *builder) sharpness() error {
	an, err := sharp.Analyze(b.run.Rows)
	if err != nil {
		return fmt.Errorf("sharpness: %w", err)
	}
	if len(an.Changes) == 0 {
		return nil
	}
	c := b.run.Config
	var order []string
	sgd, gd := "", ""
	for _, o := range c.Optimizers {
		order = append(order, o.Label)
		if o.Name == "sgd" && sgd == "" {
			sgd = o.Label
		}
		if o.Name == "gd" && gd == "" {
			gd = o.Label
		}
	}
	d := newSharpData(an, order, sgd, gd)
	d.eps = roundingEps[c.DType]
	for _, model := range d.models {
		for _, loss := range sharp.Losses {
			if !d.hasLoss(model, loss) {
				continue
			}
			for _, f := range []func(*sharpData, string, string) (Section, error){
				b.sharpChanges, b.sharpDists, b.sharpPaired, b.sharpRelations,
			} {
				sec, err := f(d, model, loss)
				if err != nil {
					return fmt.Errorf("sharpness %s %s: %w", model, loss, err)
				}
				if len(sec.Table) > 1 || len(sec.Figures) > 0 {
					b.sections = append(b.sections, sec)
				}
			}
		}
	}
	return nil
}

func (d *sharpData) hasLoss(model, loss string) bool {
	for k := range d.changes {
		if k.model == model && k.loss == loss {
			return true
		}
	}
	return false
}

// measures lists the measures present for (model, loss), in report order.
func (d *sharpData) measures(model, loss string) []string {
	var out []string
	for _, m := range sharp.MeasureNames {
		for k := range d.changes {
			if k.model == model && k.loss == loss && k.measure == m {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// sharpChanges is the section of the mean changes end − init per optimiser
// and η, with the figures of the change against η.
func (b *builder) sharpChanges(d *sharpData, model, loss string) (Section, error) {
	c := b.run.Config
	ms := d.measures(model, loss)
	sec := Section{Title: fmt.Sprintf("%s: %s — sharpness change on the %s, initialisation to end", c.Name, model, lossText[loss])}
	sec.Text = append(sec.Text, fmt.Sprintf("Per optimiser and η: the mean change end − init over the measured trials of each measure on the %s (docs/sharpness.md), with its 95%% Student-t interval, beside the same trials' test-loss change. N is the number of measured training sets (a measure whose count differs says so). λ1 is left out of a trial whose Lanczos iteration did not converge.", lossText[loss]))
	if loss == "pool" {
		sec.Text = append(sec.Text, "The pool measures at initialisation are one estimate shared by all trials of an initialisation, so the error of a stochastic one (tr H, tr(HĈ)) shifts every optimiser's change alike; the paired differences below cancel it.")
	}
	head := []string{"η", "optimizer", "N", "Δ test loss"}
	for _, m := range ms {
		head = append(head, "Δ "+measureLabel[m])
	}
	sec.Table = [][]string{head}
	for _, eta := range d.etas {
		for _, o := range d.opts {
			var first sharp.Change
			ok := false
			for _, m := range ms { // the measure with the most trials
				if ch, has := d.changes[chKey{model, loss, m, o, eta}]; has && (!ok || ch.Delta.N > first.Delta.N) {
					first, ok = ch, true
				}
			}
			if !ok {
				continue
			}
			row := []string{fmt.Sprint(eta), o, fmt.Sprint(first.Delta.N), fmtDist(first.TestLossDelta)}
			for _, m := range ms {
				ch, ok := d.changes[chKey{model, loss, m, o, eta}]
				if !ok {
					row = append(row, "—")
					continue
				}
				s := fmtDist(ch.Delta)
				if ch.Delta.N != first.Delta.N {
					s += fmt.Sprintf(" (N=%d)", ch.Delta.N)
				}
				row = append(row, s)
			}
			sec.Table = append(sec.Table, row)
		}
	}
	for _, m := range ms {
		for _, kind := range []string{"mean", "quartiles"} {
			f := d.changeFigure(model, loss, m, kind)
			if !figDrawable(f) {
				continue
			}
			png, err := b.save(f, fmt.Sprintf("%s-%s-sharp-%s-%s-%s", c.Name, model, loss, m, kind))
			if err != nil {
				return sec, err
			}
			sec.Figures = append(sec.Figures, png)
		}
	}
	return sec, nil
}

// sharpDists is the section of the distributions: init and end means and
// the quartiles of the change.
func (b *builder) sharpDists(d *sharpData, model, loss string) (Section, error) {
	sec := Section{Title: fmt.Sprintf("%s: %s — distributions of the sharpness change on the %s", b.run.Config.Name, model, lossText[loss])}
	sec.Text = append(sec.Text, "Per measure, η and optimiser: the mean at initialisation and at the end, and the distribution of the per-trial change end − init (mean ± s.e., standard deviation, minimum, quartiles, maximum).")
	sec.Table = [][]string{{"measure", "η", "optimizer", "N", "init", "end", "Δ mean ± s.e.", "Δ sd", "Δ min", "Δ Q1", "Δ median", "Δ Q3", "Δ max"}}
	g := func(x float64) string { return fmt.Sprintf("%.3g", x) }
	for _, m := range d.measures(model, loss) {
		for _, eta := range d.etas {
			for _, o := range d.opts {
				ch, ok := d.changes[chKey{model, loss, m, o, eta}]
				if !ok {
					continue
				}
				x := ch.Delta
				sec.Table = append(sec.Table, []string{measureLabel[m], fmt.Sprint(eta), o, fmt.Sprint(x.N), g(ch.Init.Mean), g(ch.End.Mean),
					fmtPM(x.Mean, x.SE), g(x.SD), g(x.Min), g(x.Q1), g(x.Median), g(x.Q3), g(x.Max)})
			}
		}
	}
	return sec, nil
}
