package plots

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// interval is one error bar: the point (x, y) and the ends lo ≤ hi of its
// interval along the bar's direction.
type interval struct{ x, y, lo, hi float64 }

// intervalBars draws error bars from absolute interval ends. gonum's
// YErrorBars and XErrorBars take offsets from the centre and compute
// y − (y − lo), which can round a small positive lo to zero and make a log
// axis panic; drawing from the ends themselves cannot.
type intervalBars struct {
	bars       []interval
	horizontal bool // bars along x (lo, hi are x values) instead of y
	style      draw.LineStyle
	capWidth   vg.Length
}

// Plot implements plot.Plotter.
func (b *intervalBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, iv := range b.bars {
		if iv.lo == iv.hi {
			continue
		}
		if b.horizontal {
			y := trY(iv.y)
			x0, x1 := trX(iv.lo), trX(iv.hi)
			c.StrokeLines(b.style, c.ClipLinesX([]vg.Point{{X: x0, Y: y}, {X: x1, Y: y}})...)
			for _, x := range []vg.Length{x0, x1} {
				if c.Contains(vg.Point{X: x, Y: y}) {
					c.StrokeLine2(b.style, x, y-b.capWidth/2, x, y+b.capWidth/2)
				}
			}
			continue
		}
		x := trX(iv.x)
		y0, y1 := trY(iv.lo), trY(iv.hi)
		c.StrokeLines(b.style, c.ClipLinesY([]vg.Point{{X: x, Y: y0}, {X: x, Y: y1}})...)
		for _, y := range []vg.Length{y0, y1} {
			if c.Contains(vg.Point{X: x, Y: y}) {
				c.StrokeLine2(b.style, x-b.capWidth/2, y, x+b.capWidth/2, y)
			}
		}
	}
}

// DataRange implements plot.DataRanger.
func (b *intervalBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, iv := range b.bars {
		x0, x1, y0, y1 := iv.x, iv.x, iv.lo, iv.hi
		if b.horizontal {
			x0, x1, y0, y1 = iv.lo, iv.hi, iv.y, iv.y
		}
		xmin, xmax = math.Min(xmin, x0), math.Max(xmax, x1)
		ymin, ymax = math.Min(ymin, y0), math.Max(ymax, y1)
	}
	return xmin, xmax, ymin, ymax
}

// GlyphBoxes implements plot.GlyphBoxer, so that the caps at the edges of
// the data range are not cut off.
func (b *intervalBars) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	half := b.capWidth / 2
	w := b.style.Width / 2
	rect := vg.Rectangle{Min: vg.Point{X: -half, Y: -w}, Max: vg.Point{X: half, Y: w}}
	if b.horizontal {
		rect = vg.Rectangle{Min: vg.Point{X: -w, Y: -half}, Max: vg.Point{X: w, Y: half}}
	}
	var bs []plot.GlyphBox
	for _, iv := range b.bars {
		if b.horizontal {
			y := p.Y.Norm(iv.y)
			bs = append(bs,
				plot.GlyphBox{X: p.X.Norm(iv.lo), Y: y, Rectangle: rect},
				plot.GlyphBox{X: p.X.Norm(iv.hi), Y: y, Rectangle: rect})
			continue
		}
		x := p.X.Norm(iv.x)
		bs = append(bs,
			plot.GlyphBox{X: x, Y: p.Y.Norm(iv.lo), Rectangle: rect},
			plot.GlyphBox{X: x, Y: p.Y.Norm(iv.hi), Rectangle: rect})
	}
	return bs
}
