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

// Point is a measured (or predicted) mean Y at X with its 95% interval
// [Lo, Hi]. Lo = Hi = 0 means "no interval" (as does a NaN end, for that
// end); otherwise the interval must contain Y (up to a relative 1e-9).
type Point struct {
	X, Y, Lo, Hi float64
}

// Series is one curve: a legend label and its points.
type Series struct {
	Label  string
	Points []Point
}

// XYErr is a scatter point (X, Y) with intervals [XLo, XHi] and [YLo, YHi].
// As for [Point], a zero interval (both ends 0) or a NaN end means none.
type XYErr struct {
	X, XLo, XHi float64
	Y, YLo, YHi float64
}

// ScatterSeries is one set of scatter points drawn with one colour and
// marker, for "A against B" plots.
type ScatterSeries struct {
	Label  string
	Points []XYErr
}

// Figure describes one plot. The zero value of every field means "none" or
// "off"; a figure needs at least one point or one fit to be drawn.
type Figure struct {
	// Title, XLabel and YLabel are the plot's texts.
	Title, XLabel, YLabel string
	// LogX and LogY make the axes logarithmic; points that are not
	// positive on a log axis are dropped and counted (see RenderInfo).
	LogX, LogY bool
	// IntegerX marks whole numbers on a linear x axis only (layer
	// indices, sizes).
	IntegerX bool
	// Measured series are drawn as markers with vertical 95% error bars.
	Measured []Series
	// Lines are predictions, drawn as lines through (X, Y) in order of X;
	// when some Lo or Hi differs from Y, the band between them is shaded.
	Lines []Series
	// Scatter series are drawn as markers with error bars in x and y.
	Scatter []ScatterSeries
	// Diagonal draws the line y = x over the part of the plot where both
	// coordinates are in range.
	Diagonal bool
	// EqualAxes gives both axes the same range (the union of the two);
	// it needs LogX == LogY.
	EqualAxes bool
	// Fits are power laws drawn as dashed lines over [XMin, XMax],
	// labelled by Fit.String.
	Fits []Fit
	// DataRange lets only the measured and scatter points with their
	// intervals (and the fits) set the axes when there are any; Lines are
	// clipped to that range, so a prediction far outside where it holds
	// cannot flatten the data.
	DataRange bool
	// PairLines gives Lines[i] the colour of Measured[i] (a prediction
	// beside its measurement) instead of a colour of its own.
	PairLines bool
}

// RenderInfo says what a figure could not show as given.
type RenderInfo struct {
	// Dropped counts points left out: a non-finite coordinate, or a
	// non-positive coordinate on a log axis.
	Dropped int
	// NonPositive counts the dropped points that were dropped for being
	// non-positive on a log axis.
	NonPositive int
	// Clipped counts intervals whose lower end is not positive on a log
	// axis; their bars run to the axis edge.
	Clipped int
}

// cpt is a cleaned point of any kind; the clip flags mark lower interval
// ends a log axis cannot show, replaced by the axis floor once it is known.
type cpt struct {
	x, xlo, xhi, y, ylo, yhi float64
	clipX, clipY             bool
}

// Save draws the figure and writes it as dir/name.png (900×600 pixels) and
// dir/name.svg (6×4 inch), creating dir if needed; each file is written to a
// temporary file and renamed into place. It returns the two paths. Use
// Render to learn how many points were dropped.
func (f Figure) Save(dir, name string) (pngPath, svgPath string, err error) {
	p, _, err := f.Render()
	if err != nil {
		return "", "", err
	}
	return savePlot(p, dir, name)
}

// Render builds the gonum plot of the figure without writing anything, and
// reports the points it dropped. It returns an error for a figure with
// nothing to draw, an interval that does not contain its point, an infinite
// interval end, an invalid fit, or EqualAxes with LogX ≠ LogY.
func (f Figure) Render() (*plot.Plot, RenderInfo, error) {
	var info RenderInfo
	fail := func(format string, a ...any) (*plot.Plot, RenderInfo, error) {
		return nil, info, fmt.Errorf("plots: figure %q: "+format, append([]any{f.Title}, a...)...)
	}
	if f.EqualAxes && f.LogX != f.LogY {
		return fail("EqualAxes needs both axes linear or both logarithmic")
	}

	// Clean every point.
	total := 0
	clean := func(kind, label string, pts []cpt) ([]cpt, error) {
		var out []cpt
		for i, q := range pts {
			total++
			if !finite(q.x) || !finite(q.y) {
				info.Dropped++
				continue
			}
			if (f.LogX && q.x <= 0) || (f.LogY && q.y <= 0) {
				info.Dropped++
				info.NonPositive++
				continue
			}
			var err error
			if q.xlo, q.xhi, err = checkInterval(q.x, q.xlo, q.xhi); err != nil {
				return nil, fmt.Errorf("%s series %q point %d: x %w", kind, label, i, err)
			}
			if q.ylo, q.yhi, err = checkInterval(q.y, q.ylo, q.yhi); err != nil {
				return nil, fmt.Errorf("%s series %q point %d: y %w", kind, label, i, err)
			}
			if f.LogX && q.xlo <= 0 {
				q.clipX = true
				info.Clipped++
			}
			if f.LogY && q.ylo <= 0 {
				q.clipY = true
				info.Clipped++
			}
			out = append(out, q)
		}
		return out, nil
	}
	fromSeries := func(s Series) []cpt {
		out := make([]cpt, len(s.Points))
		for i, p := range s.Points {
			out[i] = cpt{x: p.X, y: p.Y, ylo: p.Lo, yhi: p.Hi}
		}
		return out
	}
	measured := make([][]cpt, len(f.Measured))
	lines := make([][]cpt, len(f.Lines))
	scatter := make([][]cpt, len(f.Scatter))
	var err error
	for i, s := range f.Measured {
		if measured[i], err = clean("measured", s.Label, fromSeries(s)); err != nil {
			return fail("%w", err)
		}
	}
	for i, s := range f.Lines {
		if lines[i], err = clean("line", s.Label, fromSeries(s)); err != nil {
			return fail("%w", err)
		}
		sort.SliceStable(lines[i], func(a, b int) bool { return lines[i][a].x < lines[i][b].x })
	}
	for i, s := range f.Scatter {
		pts := make([]cpt, len(s.Points))
		for j, p := range s.Points {
			pts[j] = cpt{x: p.X, xlo: p.XLo, xhi: p.XHi, y: p.Y, ylo: p.YLo, yhi: p.YHi}
		}
		if scatter[i], err = clean("scatter", s.Label, pts); err != nil {
			return fail("%w", err)
		}
	}
	for i, ft := range f.Fits {
		if ft.N == 0 || !finite(ft.Slope) || !finite(ft.Intercept) || !finite(ft.XMin) || !finite(ft.XMax) ||
			!(ft.XMin > 0) || ft.XMin > ft.XMax {
			return fail("fit %d (%q): want finite slope and intercept, N > 0 and 0 < XMin ≤ XMax, got %+v", i, ft.Label, ft)
		}
	}

	// Data ranges.
	xr, yr := newSpan(), newSpan()
	kept := 0
	rangeGroups := [][][]cpt{measured, lines, scatter}
	if f.DataRange && (countPts(measured)+countPts(scatter) > 0) {
		rangeGroups = [][][]cpt{measured, scatter}
		kept += countPts(lines)
	}
	for _, group := range rangeGroups {
		for _, pts := range group {
			for _, q := range pts {
				kept++
				xr.add(q.x, q.xhi)
				yr.add(q.y, q.yhi)
				if !q.clipX {
					xr.add(q.xlo)
				}
				if !q.clipY {
					yr.add(q.ylo)
				}
			}
		}
	}
	for _, ft := range f.Fits {
		xr.add(ft.XMin, ft.XMax)
		yr.add(ft.Eval(ft.XMin), ft.Eval(ft.XMax))
	}
	if kept == 0 && len(f.Fits) == 0 {
		if total > 0 {
			return fail("nothing to draw: all %d points were dropped (%d not positive on a log axis, %d not finite)",
				total, info.NonPositive, info.Dropped-info.NonPositive)
		}
		return fail("nothing to draw: no points and no fits")
	}
	xr.widen(f.LogX)
	yr.widen(f.LogY)
	xFloor, yFloor := xr.floor(f.LogX), yr.floor(f.LogY)
	if info.Clipped > 0 {
		for _, group := range [][][]cpt{measured, lines, scatter} {
			for _, pts := range group {
				for j := range pts {
					if pts[j].clipX {
						pts[j].xlo = xFloor
						xr.add(xFloor)
					}
					if pts[j].clipY {
						pts[j].ylo = yFloor
						yr.add(yFloor)
					}
				}
			}
		}
	}
	if f.EqualAxes {
		xr.add(yr.lo, yr.hi)
		yr = xr
	}

	p := newPlot(f.Title, f.XLabel, f.YLabel)
	if f.LogX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	} else if f.IntegerX {
		p.X.Tick.Marker = linTicks{integer: true}
	}
	if f.LogY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}

	// Plotters, in drawing order: diagonal, bands, lines, fits, measured,
	// scatter. Colours go by series: measured, lines, scatter, fits.
	type entry struct {
		label  string
		thumbs []plot.Thumbnailer
	}
	var legend []entry
	addLegend := func(label string, th ...plot.Thumbnailer) {
		if label != "" {
			legend = append(legend, entry{label, th})
		}
	}
	var diagonal *plotter.Line
	if f.Diagonal {
		lo, hi := math.Max(xr.lo, yr.lo), math.Min(xr.hi, yr.hi)
		if lo < hi {
			n := 2
			if f.LogX != f.LogY {
				n = 65
			}
			xs := samples(lo, hi, n, f.LogX)
			xys := make(plotter.XYs, len(xs))
			for i, x := range xs {
				xys[i] = plotter.XY{X: x, Y: x}
			}
			diagonal = &plotter.Line{XYs: xys, LineStyle: draw.LineStyle{
				Color: color.Gray{0x40}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(2), vg.Points(2)},
			}}
			p.Add(diagonal)
		}
	}

	ci := len(f.Measured) // colour index of the first line series
	if f.PairLines {
		ci = 0
	}
	// Bands fade with the number of lines overlaying theirs.
	bandAlpha := uint8(max(0x14, 2*0x40/(len(lines)+1)))
	for i, pts := range lines {
		c := seriesColor(ci + i)
		if len(pts) == 0 {
			continue
		}
		var th []plot.Thumbnailer
		banded := false
		for _, q := range pts {
			banded = banded || q.ylo != q.y || q.yhi != q.y
		}
		if banded {
			ring := make(plotter.XYs, 0, 2*len(pts))
			for _, q := range pts {
				ring = append(ring, plotter.XY{X: q.x, Y: q.yhi})
			}
			for j := len(pts) - 1; j >= 0; j-- {
				ring = append(ring, plotter.XY{X: pts[j].x, Y: pts[j].ylo})
			}
			band := &plotter.Polygon{XYs: []plotter.XYs{ring}, Color: translucent(c, bandAlpha)}
			p.Add(band)
			th = append(th, band)
		}
		xys := make(plotter.XYs, len(pts))
		for j, q := range pts {
			xys[j] = plotter.XY{X: q.x, Y: q.y}
		}
		line := &plotter.Line{XYs: xys, LineStyle: draw.LineStyle{Color: c, Width: vg.Points(1.5)}}
		p.Add(line)
		th = append(th, line)
		if len(pts) == 1 {
			dot := &plotter.Scatter{XYs: xys, GlyphStyle: draw.GlyphStyle{Color: c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}}
			p.Add(dot)
		}
		addLegend(f.Lines[i].Label, th...)
	}
	lineLegend := legend
	legend = nil

	ci = len(f.Measured) + len(f.Lines) + len(f.Scatter) // first fit colour
	var fitLegend []entry
	for i, ft := range f.Fits {
		n := 2
		if !(f.LogX && f.LogY) {
			n = 65
		}
		xs := samples(ft.XMin, ft.XMax, n, f.LogX)
		xys := make(plotter.XYs, len(xs))
		for j, x := range xs {
			xys[j] = plotter.XY{X: x, Y: ft.Eval(x)}
		}
		line := &plotter.Line{XYs: xys, LineStyle: draw.LineStyle{
			Color: seriesColor(ci + i), Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(6), vg.Points(3)},
		}}
		p.Add(line)
		fitLegend = append(fitLegend, entry{ft.String(), []plot.Thumbnailer{line}})
	}

	markers := func(pts []cpt, k int, xbars bool) *plotter.Scatter {
		c := seriesColor(k)
		sty := draw.LineStyle{Color: c, Width: vg.Points(1)}
		ybars := &intervalBars{style: sty, capWidth: vg.Points(4)}
		xb := &intervalBars{style: sty, capWidth: vg.Points(4), horizontal: true}
		xys := make(plotter.XYs, len(pts))
		for j, q := range pts {
			xys[j] = plotter.XY{X: q.x, Y: q.y}
			ybars.bars = append(ybars.bars, interval{q.x, q.y, q.ylo, q.yhi})
			xb.bars = append(xb.bars, interval{q.x, q.y, q.xlo, q.xhi})
		}
		p.Add(ybars)
		if xbars {
			p.Add(xb)
		}
		sc := &plotter.Scatter{XYs: xys, GlyphStyle: draw.GlyphStyle{
			Color: c, Radius: vg.Points(3), Shape: glyphs[k%len(glyphs)],
		}}
		p.Add(sc)
		return sc
	}
	for i, pts := range measured {
		if len(pts) > 0 {
			addLegend(f.Measured[i].Label, markers(pts, i, false))
		}
	}
	legend = append(legend, lineLegend...)
	for i, pts := range scatter {
		if len(pts) > 0 {
			addLegend(f.Scatter[i].Label, markers(pts, len(f.Measured)+len(f.Lines)+i, true))
		}
	}
	legend = append(legend, fitLegend...)
	if diagonal != nil {
		addLegend("y = x", diagonal)
	}
	switch {
	case info.NonPositive > 0 && info.NonPositive == info.Dropped:
		addLegend(fmt.Sprintf("%d %s ≤ 0 not shown", info.Dropped, plural(info.Dropped, "point", "points")))
	case info.Dropped > 0:
		addLegend(fmt.Sprintf("%d %s not shown (≤ 0 on log axis or not finite)", info.Dropped, plural(info.Dropped, "point", "points")))
	}
	for _, e := range legend {
		p.Legend.Add(e.label, e.thumbs...)
	}

	// p.Add widened the axes to the data; set them to the computed ranges.
	p.X.Min, p.X.Max = xr.lo, xr.hi
	p.Y.Min, p.Y.Max = yr.lo, yr.hi
	placeLegend(p, [][][]cpt{measured, lines, scatter}, len(legend))
	return p, info, nil
}

// checkInterval normalises the interval [lo, hi] of v: both zero, or a NaN end,
// means no interval (on that side); an infinite end or an interval not
// containing v (beyond a relative 1e-9 of rounding) is an error.
func checkInterval(v, lo, hi float64) (float64, float64, error) {
	if lo == 0 && hi == 0 {
		return v, v, nil
	}
	if math.IsNaN(lo) {
		lo = v
	}
	if math.IsNaN(hi) {
		hi = v
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 0, 0, fmt.Errorf("interval [%g, %g] of %g has an infinite end", lo, hi, v)
	}
	// Forgive rounding: an end past v by a relative 1e-9 is taken as v.
	tol := 1e-9 * math.Abs(v)
	if lo > v+tol || hi < v-tol {
		return 0, 0, fmt.Errorf("interval [%g, %g] does not contain %g", lo, hi, v)
	}
	return math.Min(lo, v), math.Max(hi, v), nil
}

// span is the range of the values added to it; on a log axis only the
// positive values count.
type span struct{ lo, hi float64 }

func newSpan() span { return span{math.Inf(1), math.Inf(-1)} }

func (s *span) add(vs ...float64) {
	for _, v := range vs {
		s.lo, s.hi = math.Min(s.lo, v), math.Max(s.hi, v)
	}
}

// widen makes an empty or one-point span a proper range.
func (s *span) widen(log bool) {
	switch {
	case s.lo > s.hi: // nothing added
		s.lo, s.hi = 1, 10
		if !log {
			s.lo = 0
		}
	case s.lo < s.hi:
	case log:
		s.lo, s.hi = s.lo/2, s.hi*2
	case s.lo == 0:
		s.lo, s.hi = -1, 1
	default:
		d := math.Abs(s.lo) / 10
		s.lo, s.hi = s.lo-d, s.hi+d
	}
}

// floor returns where a clipped lower interval end is drawn: on a log axis
// 5% of the log range below the smallest value, else the smallest value.
func (s span) floor(log bool) float64 {
	if !log {
		return s.lo
	}
	return s.lo / math.Pow(s.hi/s.lo, 0.05)
}

// samples returns n values from lo to hi, evenly spaced in log x when log.
func samples(lo, hi float64, n int, log bool) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		t := float64(i) / float64(n-1)
		if log {
			xs[i] = lo * math.Pow(hi/lo, t)
		} else {
			xs[i] = lo + t*(hi-lo)
		}
	}
	xs[0], xs[n-1] = lo, hi
	return xs
}

// placeLegend puts the legend of entries lines in the corner (a box of 40%
// of each axis) holding the fewest data inside the axes (markers, points
// along their error bars, and lines, each line weighing as five markers),
// preferring top right, top left, bottom right, bottom left on ties, inset
// a little from the axes. When every corner holds data, the y axis grows
// upwards by the legend's height (about 6.5% of the axis per entry), so
// that the legend sits above the data in the top right corner instead of
// over them.
func placeLegend(p *plot.Plot, groups [][][]cpt, entries int) {
	var counts [4]float64 // top right, top left, bottom right, bottom left
	add := func(x, y, w float64) {
		nx, ny := p.X.Norm(x), p.Y.Norm(y)
		if nx < 0 || nx > 1 || ny < 0 || ny > 1 {
			return // outside the axes (a clipped line)
		}
		top, bottom := ny > 0.6, ny < 0.4
		right, left := nx > 0.6, nx < 0.4
		switch {
		case top && right:
			counts[0] += w
		case top && left:
			counts[1] += w
		case bottom && right:
			counts[2] += w
		case bottom && left:
			counts[3] += w
		}
	}
	for gi, group := range groups {
		for _, pts := range group {
			for _, q := range pts {
				if gi == 1 {
					// A line weighs as much as five markers spread along it,
					// however densely it is sampled.
					add(q.x, q.y, 5/float64(len(pts)))
					continue
				}
				add(q.x, q.y, 1)
				// Error bars: four points along each, half a marker each.
				for k := 1; k <= 4; k++ {
					t := float64(k) / 5
					if q.ylo != q.y || q.yhi != q.y {
						add(q.x, interp(q.ylo, q.yhi, t, p.Y.Scale), 0.5)
					}
					if q.xlo != q.x || q.xhi != q.x {
						add(interp(q.xlo, q.xhi, t, p.X.Scale), q.y, 0.5)
					}
				}
			}
		}
	}
	best := 0
	for i := 1; i < 4; i++ {
		if counts[i] < counts[best] {
			best = i
		}
	}
	if counts[best] > 0 && entries > 0 {
		growTop(&p.Y, min(0.6, 0.065*float64(entries)+0.04))
		best = 0
	}
	p.Legend.Top = best < 2
	p.Legend.Left = best == 1 || best == 3
	inset := vg.Points(6)
	p.Legend.XOffs, p.Legend.YOffs = -inset, -inset
	if p.Legend.Left {
		p.Legend.XOffs = inset
	}
	if !p.Legend.Top {
		p.Legend.YOffs = inset
	}
}

// growTop raises a's maximum so that its old range takes at most the
// lower 1 − f of the axis (evenly in log on a log scale, up to a power of
// ten there, so that the top is a labelled tick).
func growTop(a *plot.Axis, f float64) {
	if _, ok := a.Scale.(plot.LogScale); ok && a.Min > 0 && a.Max > a.Min {
		a.Max = math.Pow(10, math.Ceil(math.Log10(a.Min*math.Pow(a.Max/a.Min, 1/(1-f)))))
		return
	}
	if a.Max > a.Min {
		a.Max = a.Min + (a.Max-a.Min)/(1-f)
	}
}

// interp returns the point a fraction t of the way from lo to hi, evenly in
// log on a log scale.
func interp(lo, hi, t float64, sc plot.Normalizer) float64 {
	if _, ok := sc.(plot.LogScale); ok && lo > 0 && hi > 0 {
		return lo * math.Pow(hi/lo, t)
	}
	return lo + t*(hi-lo)
}

// countPts is the number of points in the series.
func countPts(series [][]cpt) int {
	n := 0
	for _, pts := range series {
		n += len(pts)
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
