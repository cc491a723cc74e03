package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// EtaPoint is a measured mean at a learning rate with its standard error;
// its 95% interval is Mean ± 1.96·SE (none when SE is 0 or NaN).
type EtaPoint struct {
	Eta, Mean, SE float64
}

// Prediction is one order of a prediction that is a function of η (a
// polynomial, in perturb's reports).
type Prediction struct {
	// Order (1, 2 or 3) picks the line's colour and names it in the
	// legend.
	Order int
	// At returns the prediction and its standard error at η; a NaN value
	// leaves η out.
	At func(eta float64) (value, se float64)
}

// EtaGroup is one optimiser (of one run): its measured points and its
// predictions.
type EtaGroup struct {
	// Label names the group in the legend ("SGD", "quickstart SGD").
	Label string
	// Dash is the line style of the group's predictions, an index into
	// Dashes: 0 solid, 1 dashed, 2 dotted, 3 dash-dot, ...
	// (see DashFor).
	Dash int
	// Color is the colour of the group's markers and error bars, an index
	// into GroupPalette; its marker shape is glyphs[Color].
	Color int
	// T is the number of steps η is multiplied by for the ηT limit (the
	// optimiser's steps times its η scale); 0 means no limit.
	T float64
	// Measured are the measured means with their standard errors.
	Measured []EtaPoint
	// Predictions are drawn on the dense η grid where ηT ≤ EtaTLimit, and
	// compared with the measured points in the residual panel.
	Predictions []Prediction
}

// EtaFigure is a measured quantity against η (a log axis) with the
// predictions of order 1, 2 and 3 drawn as smooth curves, and below it a
// residual panel: z = (measured − predicted)/√(se² + se_pred²) per order
// at the measured η, with guide lines at ±1.96.
//
// Colours go by order (OrderColor), line styles by group (optimiser),
// markers by group. The y-range of the main panel is set by the measured
// points and their intervals alone, with a margin; predictions are clipped
// to it, so a prediction far outside where it holds never flattens the
// data.
type EtaFigure struct {
	// Title and YLabel are the main panel's texts; the x label is η.
	Title, YLabel string
	// Groups are the optimisers (or runs × optimisers) shown.
	Groups []EtaGroup
	// EtaTLimit, when positive, draws a group's predictions (and its
	// residuals) only where η·T ≤ EtaTLimit.
	EtaTLimit float64
	// GridPoints is the number of log-spaced η values the predictions are
	// evaluated at over the measured η range; 0 means 200.
	GridPoints int
	// NoResiduals leaves out the residual panel.
	NoResiduals bool
	// Notes are lines of text added at the end of the legend.
	Notes []string
}

// Dashes are the line styles of EtaGroup.Dash: solid, dashed, dotted,
// dash-dot, long dashes, dash-dot-dot.
var Dashes = [][]vg.Length{
	nil,
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1.5), vg.Points(2)},
	{vg.Points(6), vg.Points(2), vg.Points(1.5), vg.Points(2)},
	{vg.Points(11), vg.Points(4)},
	{vg.Points(6), vg.Points(2), vg.Points(1.5), vg.Points(2), vg.Points(1.5), vg.Points(2)},
}

// DashFor returns the conventional dash style of an optimiser: solid for
// sgd, dashed for gd, and for the others dotted, dash-dot, ... in the order
// given by others (the index of the optimiser among the non-sgd, non-gd
// ones).
func DashFor(name string, others int) int {
	switch name {
	case "sgd":
		return 0
	case "gd":
		return 1
	}
	return 2 + others%(len(Dashes)-2)
}

// OrderColor is the colour of the order-k predictions (k = 1, 2, 3):
// blue, orange, green.
func OrderColor(k int) color.RGBA {
	switch k {
	case 1:
		return Palette[0]
	case 2:
		return Palette[1]
	case 3:
		return Palette[2]
	}
	return Palette[7]
}

// GroupPalette are the marker colours of EtaGroup.Color: black, red,
// purple, brown, pink, grey, olive, cyan (none of them an order colour).
var GroupPalette = []color.RGBA{
	{0x00, 0x00, 0x00, 0xff},
	Palette[3], Palette[4], Palette[5], Palette[6], Palette[7], Palette[8], Palette[9],
}

// groupColor is the i-th marker colour of GroupPalette, cycling.
func groupColor(i int) color.RGBA {
	return GroupPalette[((i%len(GroupPalette))+len(GroupPalette))%len(GroupPalette)]
}

// zCap is the largest |z| the residual axis shows; points beyond are drawn
// at the edge.
const zCap = 10

// EtaRange returns the measured η range of the figure (positive, finite
// η of all groups).
func (f EtaFigure) EtaRange() (lo, hi float64, ok bool) {
	s := newSpan()
	for _, g := range f.Groups {
		for _, m := range g.Measured {
			if m.Eta > 0 && finite(m.Eta) {
				s.add(m.Eta)
			}
		}
	}
	return s.lo, s.hi, s.lo <= s.hi
}

// within reports whether η is inside the ηT limit of group g.
func (f EtaFigure) within(g EtaGroup, eta float64) bool {
	if f.EtaTLimit <= 0 || g.T <= 0 {
		return true
	}
	return eta*g.T <= f.EtaTLimit*(1+1e-12)
}

// PredictionGrid returns the η values at which group i's predictions are
// drawn: GridPoints log-spaced values over the measured η range, those
// with ηT beyond the limit left out and the limit itself (η = limit/T)
// added when it falls inside the range, so a curve ends exactly there.
func (f EtaFigure) PredictionGrid(i int) []float64 {
	lo, hi, ok := f.EtaRange()
	if !ok {
		return nil
	}
	n := f.GridPoints
	if n <= 0 {
		n = 200
	}
	g := f.Groups[i]
	var xs []float64
	if lo == hi || n < 2 {
		xs = []float64{lo}
	} else {
		xs = samples(lo, hi, n, true)
	}
	var out []float64
	for _, x := range xs {
		if f.within(g, x) {
			out = append(out, x)
		}
	}
	if f.EtaTLimit > 0 && g.T > 0 {
		if end := f.EtaTLimit / g.T; end > lo && end < hi && (len(out) == 0 || end > out[len(out)-1]) {
			out = append(out, end)
		}
	}
	return out
}

// etaRendered holds the parts of a rendered EtaFigure.
type etaRendered struct {
	main, resid *plot.Plot
	legend      plot.Legend
}

// yRange is the main panel's y range: the measured means and their 95%
// intervals, widened by 8% of the range each side. Without any measured
// point it falls back to the predictions at the measured η.
func (f EtaFigure) yRange() (lo, hi float64) {
	s := newSpan()
	for _, g := range f.Groups {
		for _, m := range g.Measured {
			if !finite(m.Mean) || !(m.Eta > 0) {
				continue
			}
			s.add(m.Mean)
			if finite(m.SE) {
				s.add(m.Mean-1.96*m.SE, m.Mean+1.96*m.SE)
			}
		}
	}
	if s.lo > s.hi {
		for _, g := range f.Groups {
			for _, p := range g.Predictions {
				for _, m := range g.Measured {
					if v, _ := p.At(m.Eta); finite(v) && f.within(g, m.Eta) {
						s.add(v)
					}
				}
			}
		}
	}
	s.widen(false)
	d := 0.08 * (s.hi - s.lo)
	return s.lo - d, s.hi + d
}

// residual is one z value of the residual panel.
type residual struct {
	eta, z float64
	order  int
}

// residuals returns the z values of group g at its measured η within the
// ηT limit.
func (f EtaFigure) residuals(g EtaGroup) []residual {
	var out []residual
	for _, p := range g.Predictions {
		for _, m := range g.Measured {
			if !finite(m.Mean) || !(m.Eta > 0) || !f.within(g, m.Eta) {
				continue
			}
			v, se := p.At(m.Eta)
			se0 := m.SE
			if !finite(se0) {
				se0 = 0
			}
			if !finite(se) {
				se = 0
			}
			s := math.Hypot(se0, se)
			if !finite(v) || s == 0 {
				continue
			}
			out = append(out, residual{m.Eta, (m.Mean - v) / s, p.Order})
		}
	}
	return out
}

// render builds the two panels and the legend.
func (f EtaFigure) render() (*etaRendered, error) {
	lo, hi, ok := f.EtaRange()
	if !ok {
		return nil, fmt.Errorf("plots: figure %q: no measured point with a positive η", f.Title)
	}
	for i, g := range f.Groups {
		for _, p := range g.Predictions {
			if p.At == nil {
				return nil, fmt.Errorf("plots: figure %q: group %d (%q): prediction of order %d has no At", f.Title, i, g.Label, p.Order)
			}
		}
	}
	xlo, xhi := lo/math.Pow(hi/lo, 0.04), hi*math.Pow(hi/lo, 0.04)
	if lo == hi {
		xlo, xhi = lo/1.5, hi*1.5
	}
	ylo, yhi := f.yRange()

	r := &etaRendered{main: newPlot(f.Title, "η", f.YLabel)}
	m := r.main
	m.X.Scale, m.X.Tick.Marker = plot.LogScale{}, logTicks{}
	li := legendInfo{orders: map[int]bool{}, drawn: map[int]bool{}, off: map[int][]string{}}
	// Bands get fainter the more groups overlay theirs.
	predicted := 0
	for _, g := range f.Groups {
		if len(g.Predictions) > 0 {
			predicted++
		}
	}
	bandAlpha := uint8(max(10, 2*0x26/(predicted+1)))
	for i, g := range f.Groups {
		grid := f.PredictionGrid(i)
		for _, p := range g.Predictions {
			var line, up, down plotter.XYs
			banded := false
			for _, x := range grid {
				v, se := p.At(x)
				if !finite(v) {
					continue
				}
				line = append(line, plotter.XY{X: x, Y: v})
				if !finite(se) {
					se = 0
				}
				banded = banded || se > 0
				up = append(up, plotter.XY{X: x, Y: v + 1.96*se})
				down = append(down, plotter.XY{X: x, Y: v - 1.96*se})
			}
			if len(line) == 0 {
				continue
			}
			li.orders[p.Order], li.drawn[i] = true, true
			visible := false
			for _, q := range line {
				visible = visible || (q.Y >= ylo && q.Y <= yhi)
			}
			if !visible {
				li.off[p.Order] = append(li.off[p.Order], g.Label)
			}
			c := OrderColor(p.Order)
			if banded && len(line) > 1 {
				ring := append(plotter.XYs{}, up...)
				for j := len(down) - 1; j >= 0; j-- {
					ring = append(ring, down[j])
				}
				m.Add(&plotter.Polygon{XYs: []plotter.XYs{ring}, Color: translucent(c, bandAlpha)})
			}
			sty := draw.LineStyle{Color: c, Width: vg.Points(1.6), Dashes: Dashes[g.Dash%len(Dashes)]}
			if len(line) == 1 {
				m.Add(&plotter.Scatter{XYs: line, GlyphStyle: draw.GlyphStyle{Color: c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}})
			} else {
				m.Add(&plotter.Line{XYs: line, LineStyle: sty})
			}
		}
	}
	// Groups measured at the same η are dodged apart a little along η.
	dodge := f.dodge(xlo, xhi)
	for gi, g := range f.Groups {
		c := groupColor(g.Color)
		shift := math.Pow(dodge, float64(gi)-float64(len(f.Groups)-1)/2)
		bars := &intervalBars{style: draw.LineStyle{Color: c, Width: vg.Points(1)}, capWidth: vg.Points(4)}
		var xys plotter.XYs
		for _, q := range g.Measured {
			if !finite(q.Mean) || !(q.Eta > 0) || !finite(q.Eta) {
				continue
			}
			x := q.Eta * shift
			xys = append(xys, plotter.XY{X: x, Y: q.Mean})
			if finite(q.SE) && q.SE > 0 {
				bars.bars = append(bars.bars, interval{x, q.Mean, q.Mean - 1.96*q.SE, q.Mean + 1.96*q.SE})
			}
		}
		if len(xys) == 0 {
			continue
		}
		m.Add(bars, &plotter.Scatter{XYs: xys, GlyphStyle: groupGlyph(g)})
	}
	m.X.Min, m.X.Max = xlo, xhi
	m.Y.Min, m.Y.Max = ylo, yhi
	if !f.NoResiduals {
		r.resid, li.beyond = f.residualPlot(xlo, xhi)
		if r.resid != nil {
			// The η label and tick labels go under the residual panel.
			m.X.Label.Text = ""
			m.X.Tick.Marker = unlabelled{logTicks{}}
		}
	}
	li.resid = r.resid != nil
	r.legend = f.legend(li)
	return r, nil
}

// dodge is the factor along η between neighbouring groups' markers: none
// for one group, else 0.7% of the η axis's log range per group (at most 3%
// in all).
func (f EtaFigure) dodge(xlo, xhi float64) float64 {
	n := len(f.Groups)
	if n < 2 {
		return 1
	}
	return math.Pow(xhi/xlo, math.Min(0.007, 0.03/float64(n-1)))
}

// groupGlyph is the marker style of group g.
func groupGlyph(g EtaGroup) draw.GlyphStyle {
	return draw.GlyphStyle{Color: groupColor(g.Color), Radius: vg.Points(3), Shape: glyphs[((g.Color%len(glyphs))+len(glyphs))%len(glyphs)]}
}

// residualPlot draws the z values of every group, coloured by order with
// the group's marker, dodged a little along η per group and order so that
// they do not hide each other; nil when there are none.
// beyond counts the z values drawn at the edge for being beyond ±zCap.
func (f EtaFigure) residualPlot(xlo, xhi float64) (p *plot.Plot, beyond int) {
	p = newPlot("", "η", "z")
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	// Each (group, order) has its own slot along η, 0.5% of the log
	// range apart (at most 4% in all).
	slots := 3 * len(f.Groups)
	dodge := math.Pow(xhi/xlo, math.Min(0.005, 0.04/float64(max(1, slots-1))))
	zmax, n := 2.5, 0
	for _, g := range f.Groups {
		for _, r := range f.residuals(g) {
			if finite(r.z) {
				zmax = math.Max(zmax, math.Abs(r.z)*1.08)
			}
		}
	}
	zmax = math.Min(zmax, zCap)
	for gi, g := range f.Groups {
		res := f.residuals(g)
		sort.SliceStable(res, func(a, b int) bool { return res[a].order < res[b].order })
		byOrder := map[int]plotter.XYs{}
		var ordersSeen []int
		for _, r := range res {
			z := r.z
			if math.IsNaN(z) {
				continue
			}
			if math.Abs(z) > zCap {
				z = math.Copysign(zmax*0.97, z)
				beyond++
			}
			if _, ok := byOrder[r.order]; !ok {
				ordersSeen = append(ordersSeen, r.order)
			}
			byOrder[r.order] = append(byOrder[r.order], plotter.XY{X: r.eta * math.Pow(dodge, float64(3*gi+r.order-1)-float64(slots-1)/2), Y: z})
			n++
		}
		for _, k := range ordersSeen {
			sty := groupGlyph(g)
			sty.Color = OrderColor(k)
			p.Add(&plotter.Scatter{XYs: byOrder[k], GlyphStyle: sty})
		}
	}
	if n == 0 {
		return nil, 0
	}
	for _, y := range []float64{-1.96, 0, 1.96} {
		sty := draw.LineStyle{Color: color.RGBA{0x60, 0x60, 0x60, 0xff}, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}}
		if y == 0 {
			sty = draw.LineStyle{Color: color.RGBA{0xa0, 0xa0, 0xa0, 0xff}, Width: vg.Points(0.6)}
		}
		p.Add(&plotter.Line{XYs: plotter.XYs{{X: xlo, Y: y}, {X: xhi, Y: y}}, LineStyle: sty})
	}
	p.X.Min, p.X.Max = xlo, xhi
	p.Y.Min, p.Y.Max = -zmax, zmax
	p.Y.Tick.Marker = zTicks{}
	return p, beyond
}

// zTicks marks the residual axis at 0 and ±1.96, labelled when the axis
// reaches less than ±6, and otherwise labels 0 and the multiples of 5.
type zTicks struct{}

// Ticks implements plot.Ticker.
func (zTicks) Ticks(lo, hi float64) []plot.Tick {
	t := []plot.Tick{{Value: -1.96}, {Value: 0, Label: "0"}, {Value: 1.96}}
	if hi < 6 {
		t[0].Label, t[2].Label = "-1.96", "1.96"
		return t
	}
	for v := 5.0; v <= hi; v += 5 {
		t = append(t, plot.Tick{Value: v, Label: fmt.Sprint(v)}, plot.Tick{Value: -v, Label: fmt.Sprint(-v)})
	}
	return t
}

// unlabelled wraps a ticker and drops its labels (for a panel whose x axis
// is labelled by the panel below).
type unlabelled struct{ plot.Ticker }

// Ticks implements plot.Ticker.
func (u unlabelled) Ticks(lo, hi float64) []plot.Tick {
	t := u.Ticker.Ticks(lo, hi)
	for i := range t {
		t[i].Label = ""
	}
	return t
}
