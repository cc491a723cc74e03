package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/perturb/perturb/trials/study/sharp"
)

// orient orders a pair of optimisers for display: the reference (SGD)
// first, else config order.
func (d *sharpData) orient(i, j int) (string, string) {
	a, b := d.opts[i], d.opts[j]
	if b == d.ref {
		return b, a
	}
	return a, b
}

// sharpPaired is the section of the paired differences between optimisers
// on the same training sets, with the verdicts.
func (b *builder) sharpPaired(d *sharpData, model, loss string) (Section, error) {
	c := b.run.Config
	ms := d.measures(model, loss)
	sec := Section{Title: fmt.Sprintf("%s: %s — paired differences between optimisers on the %s", c.Name, model, lossText[loss])}
	sec.Text = append(sec.Text, fmt.Sprintf("For each pair A − B of optimisers and each η, over the training sets both measured (same initialisation and trial index): the mean of ΔA − ΔB, the difference of the changes end − init, with its 95%% Student-t interval; * marks an interval that excludes 0. The initial values are common to A and B, so ΔA − ΔB is the difference of the values at the end. The first optimiser of a pair is %s where it takes part.", d.ref))
	head := []string{"η", "A − B", "N", "Δ test loss"}
	for _, m := range ms {
		head = append(head, "Δ "+measureLabel[m])
	}
	sec.Table = [][]string{head}
	for _, eta := range d.etas {
		for i := range d.opts {
			for j := i + 1; j < len(d.opts); j++ {
				a, bb := d.orient(i, j)
				var first, test sharp.Dist
				ok := false
				for _, m := range ms { // the measure with the most pairs
					if x, t, has := d.pair(model, loss, m, eta, a, bb); has && (!ok || x.N > first.N) {
						first, test, ok = x, t, true
					}
				}
				if !ok {
					continue
				}
				row := []string{fmt.Sprint(eta), a + " − " + bb, fmt.Sprint(first.N), fmtDistSig(test)}
				for _, m := range ms {
					x, _, ok := d.pair(model, loss, m, eta, a, bb)
					if !ok {
						row = append(row, "—")
						continue
					}
					s := fmtDistSig(x)
					if x.N != first.N {
						s += fmt.Sprintf(" (N=%d)", x.N)
					}
					row = append(row, s)
				}
				sec.Table = append(sec.Table, row)
			}
		}
	}
	for _, m := range ms {
		f := d.pairedFigure(model, loss, m)
		if !figDrawable(f) {
			continue
		}
		png, err := b.save(f, fmt.Sprintf("%s-%s-sharp-%s-%s-paired", c.Name, model, loss, m))
		if err != nil {
			return sec, err
		}
		sec.Figures = append(sec.Figures, png)
	}
	for _, m := range noiseMeasures {
		if !slices.Contains(ms, m) {
			continue
		}
		sec.Verdicts = append(sec.Verdicts, d.sgdBelowGD(model, loss, m)...)
		sec.Verdicts = append(sec.Verdicts, d.flatterGeneralises(model, loss, m)...)
	}
	return sec, nil
}

// sgdBelowGD tests, per η, that SGD ends with a lower measure than GD on
// the same training sets (Corollary 3: SGD moves away from regions of
// high noise relative to GD).
func (d *sharpData) sgdBelowGD(model, loss, m string) []Verdict {
	if d.ref == "" || d.gd == "" || d.ref == d.gd {
		return nil
	}
	var out []Verdict
	for _, eta := range d.etas {
		x, _, ok := d.pair(model, loss, m, eta, d.ref, d.gd)
		sx, _, _ := d.decide(model, loss, m, eta, d.ref, d.gd)
		if !ok || x.N < 2 {
			continue
		}
		var res string
		switch sx {
		case -1:
			res = fmt.Sprintf("%s lower", d.ref)
		case 1:
			res = fmt.Sprintf("%s higher (the opposite)", d.ref)
		default:
			res = "inconclusive (the interval contains 0, or the difference is rounding-sized)"
		}
		out = append(out, Verdict{
			Claim: fmt.Sprintf("%s ends with a lower %s than %s on the %s (%s, η = %g; Corollary 3: SGD moves away from high-C regions)",
				d.ref, measureLabel[m], d.gd, lossText[loss], model, eta),
			Test:         fmt.Sprintf("paired difference Δ%s − Δ%s over %d training sets, 95%% t interval below 0 and the mean beyond rounding (relative %g)", d.ref, d.gd, x.N, d.eps),
			Result:       fmt.Sprintf("%s: %s", fmtDist(x), res),
			Agrees:       sx < 0,
			Inconclusive: sx == 0,
		})
	}
	return out
}

// flatterGeneralises tests, per η, that among the pairs of optimisers
// whose changes of the measure differ (95% interval of the paired
// difference excludes 0), the one ending lower also ends with the lower
// test loss: it agrees when more such pairs have a test-loss difference
// of the same sign with its interval excluding 0 than of the opposite
// sign. (The pairs share optimisers, so they are not independent tests;
// the counts describe, they give no p-value.)
func (d *sharpData) flatterGeneralises(model, loss, m string) []Verdict {
	var out []Verdict
	for _, eta := range d.etas {
		var agree, contra, undecided []string
		pairs := 0
		for i := range d.opts {
			for j := i + 1; j < len(d.opts); j++ {
				a, bb := d.orient(i, j)
				sx, st, ok := d.decide(model, loss, m, eta, a, bb)
				if !ok {
					continue
				}
				pairs++
				if sx == 0 {
					continue
				}
				name := a + " − " + bb
				switch {
				case st == sx:
					agree = append(agree, name)
				case st == -sx:
					contra = append(contra, name)
				default:
					undecided = append(undecided, name)
				}
			}
		}
		if pairs == 0 {
			continue
		}
		differ := len(agree) + len(contra) + len(undecided)
		res := fmt.Sprintf("%d of %d pairs differ in %s", differ, pairs, measureLabel[m])
		if differ == 0 {
			res += ": inconclusive"
		} else {
			res += fmt.Sprintf("; the flatter one has the lower test loss in %d%s, the higher in %d%s, undecided in %d",
				len(agree), nameList(agree), len(contra), nameList(contra), len(undecided))
		}
		out = append(out, Verdict{
			Claim: fmt.Sprintf("of two optimisers, the one ending with the lower %s on the %s also ends with the lower test loss (%s, η = %g)",
				measureLabel[m], lossText[loss], model, eta),
			Test:         fmt.Sprintf("sign agreement of the paired differences ΔA − ΔB of %s and of the test loss, over the pairs whose %s difference has a 95%% t interval excluding 0; agrees when more of them have a test-loss interval excluding 0 on the same side than on the opposite side; differences within a relative %g (rounding) count as none", measureLabel[m], measureLabel[m], d.eps),
			Result:       res,
			Agrees:       len(agree) > len(contra),
			Inconclusive: len(agree) == len(contra),
		})
	}
	return out
}

// nameList formats names as " (a, b)", or "" for none.
func nameList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// sharpRelations is the section of the relation between a measure's
// change and the test-loss change across trials, with the scatter plots.
func (b *builder) sharpRelations(d *sharpData, model, loss string) (Section, error) {
	c := b.run.Config
	sec := Section{Title: fmt.Sprintf("%s: %s — sharpness change on the %s against test-loss change", c.Name, model, lossText[loss])}
	sec.Text = append(sec.Text, "Across the measured trials of one η: Pearson's r between a measure's change and the test-loss change, with its 95% interval (Fisher's z), and the least-squares slope of the test-loss change on the measure's change with its 95% t interval; per optimiser, and for all optimisers together (\"all\", the fitted line in the figures). The optimisers were trained on the same training sets, so the points of \"all\" are not independent and its intervals are too narrow; within one optimiser the trials are independent. Across trials, a measure's change and the test-loss change both follow how far training went, so a correlation here need not mean that flatness causes generalisation: the paired differences compare optimisers on equal training sets.")
	sec.Table = [][]string{{"measure", "η", "optimizer", "N", "r [95%]", "slope [95%]"}}
	ms := d.measures(model, loss)
	for _, m := range ms {
		for _, eta := range d.etas {
			for _, o := range append(append([]string{}, d.opts...), "") {
				r, ok := d.relations[chKey{model, loss, m, o, eta}]
				if !ok {
					continue
				}
				name := o
				if o == "" {
					name = "all"
				}
				sec.Table = append(sec.Table, []string{measureLabel[m], fmt.Sprint(eta), name, fmt.Sprint(r.N),
					fmtValCI(r.R, r.RLo, r.RHi), fmtValCI(r.Slope, r.SlopeLo, r.SlopeHi)})
			}
		}
	}
	for _, m := range ms {
		for _, eta := range d.etas {
			f := d.scatterFigure(model, loss, m, eta)
			if !figDrawable(f) {
				continue
			}
			png, err := b.save(f, fmt.Sprintf("%s-%s-sharp-%s-%s-eta%g-scatter", c.Name, model, loss, m, eta))
			if err != nil {
				return sec, err
			}
			sec.Figures = append(sec.Figures, png)
		}
	}
	return sec, nil
}

// fmtValCI formats a value with its interval, "—" when undefined.
func fmtValCI(v, lo, hi float64) string {
	switch {
	case v != v:
		return "—"
	case lo != lo || hi != hi:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.3g [%.3g, %.3g]", v, lo, hi)
}
