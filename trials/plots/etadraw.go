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
)

// legend builds the legend: one entry per group (its marker and line
// style), one per order (its colour and band), a note on the ηT limit, and
// one on the curves wholly outside the y-range (off[k] lists the groups
// whose order-k curve is), and with a residual panel (resid) what it shows
// and how many of its z values (beyond) are drawn at its edge.
func (f EtaFigure) legend(orders map[int]bool, off map[int][]string, resid bool, beyond int) plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sansFont, 10)
	l.ThumbnailWidth = vg.Points(26)
	l.Padding = vg.Points(3)
	l.Top, l.Left = true, true
	grey := color.RGBA{0x30, 0x30, 0x30, 0xff}
	hasPred := false
	for _, g := range f.Groups {
		th := []plot.Thumbnailer{}
		if len(g.Predictions) > 0 {
			hasPred = true
			th = append(th, &plotter.Line{LineStyle: draw.LineStyle{Color: grey, Width: vg.Points(1.4), Dashes: Dashes[g.Dash%len(Dashes)]}})
		}
		th = append(th, &plotter.Scatter{GlyphStyle: groupGlyph(g)})
		l.Add(g.Label, th...)
	}
	if hasPred {
		l.Add("")
		for k := 1; k <= 3; k++ {
			if !orders[k] {
				continue
			}
			c := OrderColor(k)
			l.Add(fmt.Sprintf("order %d ± 1.96 se", k),
				&plotter.Polygon{Color: translucent(c, 0x26)},
				&plotter.Line{LineStyle: draw.LineStyle{Color: c, Width: vg.Points(2)}})
		}
		for k := 1; k <= 3; k++ {
			if len(off[k]) > 0 {
				l.Add(fmt.Sprintf("order %d off the axes: %s", k, strings.Join(off[k], ", ")))
			}
		}
		if f.EtaTLimit > 0 {
			l.Add(fmt.Sprintf("curves where ηT ≤ %g", f.EtaTLimit))
		}
	}
	if resid {
		l.Add("")
		l.Add("below: z = (meas − pred)/se")
		if beyond > 0 {
			l.Add(fmt.Sprintf("%d |z| > %d drawn at the edge", beyond, zCap))
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
	return Width + e.legendWidth() + vg.Points(legendGap), h
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
	lw := e.legendWidth() + vg.Points(legendGap)
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
