package report

import (
	"fmt"
	"math"

	"github.com/perturb/perturb/trials/plots"
	"github.com/perturb/perturb/trials/study/sharp"
)

// etaJitter offsets the i-th of n optimisers along a log η axis by a few
// percent, so that their intervals at one η do not hide each other.
func etaJitter(eta float64, i, n int) float64 {
	return eta * math.Exp(0.035*(float64(i)-float64(n-1)/2))
}

// figDrawable reports whether a figure has a finite point to draw (Render
// refuses one that has none).
func figDrawable(f plots.Figure) bool {
	for _, g := range [][]plots.Series{f.Measured, f.Lines} {
		for _, s := range g {
			for _, p := range s.Points {
				if sharpFinite(p.X) && sharpFinite(p.Y) && (!f.LogX || p.X > 0) && (!f.LogY || p.Y > 0) {
					return true
				}
			}
		}
	}
	for _, s := range f.Scatter {
		for _, p := range s.Points {
			if sharpFinite(p.X) && sharpFinite(p.Y) {
				return true
			}
		}
	}
	return false
}

func sharpFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// distPoint is a Dist's mean with its 95% interval (kind "mean") or its
// median with the quartiles (kind "quartiles") at x; an undefined interval
// is drawn as none.
func distPoint(x float64, d sharp.Dist, kind string) plots.Point {
	if kind == "quartiles" {
		return plots.Point{X: x, Y: d.Median, Lo: d.Q1, Hi: d.Q3}
	}
	p := plots.Point{X: x, Y: d.Mean, Lo: d.Lo, Hi: d.Hi}
	if !sharpFinite(p.Lo) || !sharpFinite(p.Hi) {
		p.Lo, p.Hi = math.NaN(), math.NaN()
	}
	return p
}

// changeFigure draws the change end − init of a measure against η per
// optimiser: means with 95% intervals, or medians with quartiles.
func (d *sharpData) changeFigure(model, loss, m, kind string) plots.Figure {
	what := "mean, 95% interval"
	if kind == "quartiles" {
		what = "median, quartiles"
	}
	f := plots.Figure{
		Title:  fmt.Sprintf("%s %s loss: change of %s (%s)", model, loss, measureLabel[m], what),
		XLabel: "η (optimisers offset for legibility)", YLabel: measureLabel[m] + " end − init", LogX: true,
	}
	for i, o := range d.opts {
		s := plots.Series{Label: o}
		for _, eta := range d.etas {
			ch, ok := d.changes[chKey{model, loss, m, o, eta}]
			if !ok || ch.Delta.N == 0 {
				continue
			}
			s.Points = append(s.Points, distPoint(etaJitter(eta, i, len(d.opts)), ch.Delta, kind))
		}
		if len(s.Points) > 0 {
			f.Measured = append(f.Measured, s)
		}
	}
	return f
}

// pairedFigure draws the paired differences Δref − ΔB of a measure against
// η, for every other optimiser B.
func (d *sharpData) pairedFigure(model, loss, m string) plots.Figure {
	f := plots.Figure{
		Title:  fmt.Sprintf("%s %s loss: paired difference of the %s change", model, loss, measureLabel[m]),
		XLabel: "η (pairs offset for legibility)", YLabel: fmt.Sprintf("Δ%s − ΔB (95%% interval)", d.ref), LogX: true,
	}
	i := 0
	for _, o := range d.opts {
		if o == d.ref {
			continue
		}
		s := plots.Series{Label: d.ref + " − " + o}
		for _, eta := range d.etas {
			x, _, ok := d.pair(model, loss, m, eta, d.ref, o)
			if !ok || x.N == 0 {
				continue
			}
			s.Points = append(s.Points, distPoint(etaJitter(eta, i, len(d.opts)-1), x, "mean"))
		}
		i++
		if len(s.Points) > 0 {
			f.Measured = append(f.Measured, s)
		}
	}
	return f
}

// scatterFigure draws each measured trial's change of a measure against
// its test-loss change at one η, per optimiser (r with its interval in the
// legend), with the least-squares line of all optimisers together.
func (d *sharpData) scatterFigure(model, loss, m string, eta float64) plots.Figure {
	f := plots.Figure{
		Title:  fmt.Sprintf("%s %s loss, η = %g: test loss against %s", model, loss, eta, measureLabel[m]),
		XLabel: measureLabel[m] + " end − init", YLabel: "test loss end − init",
	}
	for _, o := range d.opts {
		r, ok := d.relations[chKey{model, loss, m, o, eta}]
		if !ok || r.N == 0 {
			continue
		}
		// Measured series without intervals, so that each optimiser keeps
		// the colour it has in the other figures.
		s := plots.Series{Label: o + ": r " + fmtValCI(r.R, r.RLo, r.RHi)}
		for i := range r.X {
			s.Points = append(s.Points, plots.Point{X: r.X[i], Y: r.Y[i]})
		}
		f.Measured = append(f.Measured, s)
	}
	all, ok := d.relations[chKey{model, loss, m, "", eta}]
	if !ok && len(d.opts) == 1 {
		all, ok = d.relations[chKey{model, loss, m, d.opts[0], eta}]
	}
	if ok && sharpFinite(all.Slope) && sharpFinite(all.Intercept) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range all.X {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		line := plots.Series{Label: fmt.Sprintf("all: slope %s, r %s", fmtValCI(all.Slope, all.SlopeLo, all.SlopeHi), fmtValCI(all.R, all.RLo, all.RHi))}
		for _, x := range []float64{lo, hi} {
			y := all.Intercept + all.Slope*x
			line.Points = append(line.Points, plots.Point{X: x, Y: y})
		}
		f.Lines = append(f.Lines, line)
	}
	return f
}
