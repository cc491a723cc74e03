package plots

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Layout of an EtaFigure page: a plot column of Width, the main panel
// MainHeight and the residual panel ResidHeight tall, and the legend in a
// column to the right as wide as its longest entry.
const (
	mainHeight  = 4 * vg.Inch
	residHeight = 1.7 * vg.Inch
	legendGap   = 10 // points between the plot column and the legend
	legendRight = 8  // points right of the legend's longest entry
)

// legendInfo is what the legend says about the rendered panels.
type legendInfo struct {
	orders map[int]bool     // orders with a curve drawn
	drawn  map[int]bool     // groups (by index) with a curve drawn
	off    map[int][]string // order → groups whose curve is wholly off the axes
	resid  bool             // a residual panel is drawn
	beyond int              // z values drawn at the residual panel's edge
}

// legend builds the legend: one entry per group (its marker, and its line
// style when it has a curve), one per order drawn (its colour and band),
// notes on the curves wholly outside the y-range and on the ηT limit,
// f.Notes, and what the residual panel shows.
func (f EtaFigure) legend(li legendInfo) plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sansFont, 10)
	l.ThumbnailWidth = vg.Points(26)
	l.Padding = vg.Points(3)
	l.Top, l.Left = true, true
	grey := color.RGBA{0x30, 0x30, 0x30, 0xff}
	hasPred := false
	for i, g := range f.Groups {
		hasPred = hasPred || len(g.Predictions) > 0
		th := []plot.Thumbnailer{}
		if li.drawn[i] {
			th = append(th, &plotter.Line{LineStyle: draw.LineStyle{Color: grey, Width: vg.Points(1.4), Dashes: Dashes[g.Dash%len(Dashes)]}})
		}
		th = append(th, &plotter.Scatter{GlyphStyle: groupGlyph(g)})
		l.Add(g.Label, th...)
	}
	switch {
	case len(li.orders) > 0:
		l.Add("")
		for k := 1; k <= 3; k++ {
			if !li.orders[k] {
				continue
			}
			c := OrderColor(k)
			l.Add(fmt.Sprintf("order %d ± 1.96 se", k),
				&plotter.Polygon{Color: translucent(c, 0x26)},
				&plotter.Line{LineStyle: draw.LineStyle{Color: c, Width: vg.Points(2)}})
		}
		// One note per set of groups: "orders 1, 3 off the axes: sgd".
		var sets []string
		orders := map[string][]string{}
		for k := 1; k <= 3; k++ {
			if len(li.off[k]) > 0 {
				set := strings.Join(li.off[k], ", ")
				if _, ok := orders[set]; !ok {
					sets = append(sets, set)
				}
				orders[set] = append(orders[set], fmt.Sprint(k))
			}
		}
		for _, set := range sets {
			word := "order"
			if len(orders[set]) > 1 {
				word = "orders"
			}
			l.Add(fmt.Sprintf("%s %s off the axes: %s", word, strings.Join(orders[set], ", "), set))
		}
		if f.EtaTLimit > 0 {
			l.Add(fmt.Sprintf("curves where ηT ≤ %g", f.EtaTLimit))
		}
	case hasPred && f.EtaTLimit > 0:
		l.Add("")
		l.Add("no predictions drawn:")
		l.Add(fmt.Sprintf("ηT > %g at every measured η", f.EtaTLimit))
	}
	if len(f.Notes) > 0 {
		l.Add("")
		for _, n := range f.Notes {
			l.Add(n)
		}
	}
	if li.resid {
		l.Add("")
		l.Add("below: z = (meas − pred)/se")
		if li.beyond > 0 {
			l.Add(fmt.Sprintf("%d |z| > %d drawn at the edge", li.beyond, zCap))
		}
	}
	return l
}

// EtaPanels is a rendered EtaFigure: its panels and legend, ready to draw.
type EtaPanels struct {
	// Main is the measured quantity against η with the predictions.
	Main *plot.Plot
	// Residual is the z panel; nil when left out or when there is no
	// residual to show.
	Residual *plot.Plot
	// Legend is drawn right of the panels.
	Legend plot.Legend
}

// Render builds the panels of the figure without writing anything. It
// returns an error for a figure without a measured point at a positive η,
// or a prediction without At.
func (f EtaFigure) Render() (*EtaPanels, error) {
	r, err := f.render()
	if err != nil {
		return nil, err
	}
	return &EtaPanels{Main: r.main, Residual: r.resid, Legend: r.legend}, nil
}

// Size returns the page size of the panels: Width plus the legend column
// wide, mainHeight (plus residHeight with a residual panel) tall.
func (e *EtaPanels) Size() (w, h vg.Length) {
	h = mainHeight
	if e.Residual != nil {
		h += residHeight
	}
	return Width + e.legendWidth() + vg.Points(legendGap+legendRight), h
}

// legendWidth is the width of the legend's longest entry.
func (e *EtaPanels) legendWidth() vg.Length {
	r := e.Legend.Rectangle(draw.Canvas{})
	return r.Max.X - r.Min.X
}

// Draw draws the panels on c: the main panel over the residual panel in
// the left column, their data areas aligned, and the legend to the right
// at the top of the main panel's data area.
func (e *EtaPanels) Draw(c draw.Canvas) {
	lw := e.legendWidth() + vg.Points(legendGap+legendRight)
	col := draw.Crop(c, 0, -lw, 0, 0)
	mainC, residC := col, col
	if e.Residual != nil {
		split := c.Min.Y + (c.Max.Y-c.Min.Y)*residHeight/(mainHeight+residHeight)
		mainC = draw.Crop(col, 0, 0, split-c.Min.Y, 0)
		residC = draw.Crop(col, 0, 0, 0, split-c.Max.Y)
		// Align the left and right edges of the data areas.
		dm, dr := e.Main.DataCanvas(mainC), e.Residual.DataCanvas(residC)
		left := max(dm.Min.X, dr.Min.X)
		right := min(dm.Max.X, dr.Max.X)
		mainC = draw.Crop(mainC, left-dm.Min.X, right-dm.Max.X, 0, 0)
		residC = draw.Crop(residC, left-dr.Min.X, right-dr.Max.X, 0, 0)
	}
	e.Main.Draw(mainC)
	if e.Residual != nil {
		e.Residual.Draw(residC)
	}
	dm := e.Main.DataCanvas(mainC)
	lc := draw.Crop(c, c.Max.X-c.Min.X-lw+vg.Points(legendGap), 0, 0, dm.Max.Y-c.Max.Y)
	e.Legend.Draw(lc)
}

// Save draws the figure and writes it as dir/name.png (at DPI), dir/name.svg
// and dir/name.pdf, creating dir if needed; each file is written to a
// temporary file and renamed into place. It returns the PNG and SVG paths.
func (f EtaFigure) Save(dir, name string) (pngPath, svgPath string, err error) {
	e, err := f.Render()
	if err != nil {
		return "", "", err
	}
	w, h := e.Size()
	return savePage(w, h, e.Draw, dir, name)
}
