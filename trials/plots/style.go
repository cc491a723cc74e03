package plots

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Palette is the ten series colours, in the order series take them (the
// "Tableau 10" colours, the default cycle of matplotlib).
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x7f, 0x7f, 0x7f, 0xff}, // grey
	{0xbc, 0xbd, 0x22, 0xff}, // olive
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
}

// glyphs are the marker shapes, taken in turn like the colours; seven
// shapes and ten colours give seventy distinct (colour, shape) pairs.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{},
	draw.SquareGlyph{},
	draw.TriangleGlyph{},
	draw.RingGlyph{},
	draw.BoxGlyph{},
	draw.PyramidGlyph{},
	draw.CrossGlyph{},
}

// seriesColor returns the colour of the i-th series.
func seriesColor(i int) color.RGBA { return Palette[i%len(Palette)] }

// translucent returns c with alpha a (premultiplied, as color.RGBA wants).
func translucent(c color.RGBA, a uint8) color.RGBA {
	f := func(v uint8) uint8 { return uint8(uint16(v) * uint16(a) / 0xff) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), a}
}

// Page size and resolution of saved figures.
const (
	// Width and Height are the size of a saved figure.
	Width  = 6 * vg.Inch
	Height = 4 * vg.Inch
	// DPI is the resolution of saved PNG files: 6×4 inch is 900×600
	// pixels.
	DPI = 150
)

// sansFont is the typeface of all text: Liberation Sans (bundled with gonum
// plot), metric-compatible with Arial.
var sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot returns an empty plot with the package's fonts and sizes: 13 pt
// title, 11 pt axis labels, 10 pt tick labels and legend.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansFont, 13)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sansFont, 11)
		a.Tick.Label.Font = font.From(sansFont, 10)
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = linTicks{}, linTicks{}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.TextStyle.Font = font.From(sansFont, 10)
	p.Legend.ThumbnailWidth = vg.Points(18)
	p.Legend.Padding = vg.Points(2)
	return p
}

// linTicks places labelled ticks on a linear axis at the multiples of a
// step 1, 2, 2.5 or 5 times a power of ten, the step that gives closest to
// six labels (the fewer on a tie), with an unlabelled tick halfway between.
// Labels show the digits the step needs ("0.25", "1.0", "20"), in
// exponent form for steps below 1e-4 or values reaching 1e6. It replaces plot.DefaultTicks,
// which labels as few as three ticks and pads every label to a common
// precision ("0.00", "25.00", "50.00"). With integer set (an axis of
// whole numbers, such as layer indices) the step is a whole 1, 2 or 5
// times a power of ten and no tick falls between whole numbers.
type linTicks struct{ integer bool }

// Ticks implements plot.Ticker.
func (lt linTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	e := int(math.Floor(math.Log10((hi - lo) / 6)))
	best, bestM, bestE, bestDist := 0.0, 0.0, 0, math.MaxInt
	for ee := e - 1; ee <= e+1; ee++ {
		for _, m := range []float64{1, 2, 2.5, 5} {
			step := m * math.Pow10(ee)
			if lt.integer && (step < 1 || m == 2.5) {
				continue
			}
			n := int(math.Floor(hi/step)) - int(math.Ceil(lo/step)) + 1
			if n < 2 {
				continue
			}
			d := n - 6
			if d < 0 {
				d = -d
			}
			if d < bestDist || (d == bestDist && step > best) {
				best, bestM, bestE, bestDist = step, m, ee, d
			}
		}
	}
	if best == 0 {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	decimals := -bestE
	if bestM == 2.5 {
		decimals++
	}
	big := math.Max(math.Abs(lo), math.Abs(hi)) >= 1e6
	var ticks []plot.Tick
	half := best / 2
	for k := int(math.Ceil(lo / half)); float64(k)*half <= hi; k++ {
		v := float64(k) * half
		if k == 0 {
			v = 0 // not -0
		}
		t := plot.Tick{Value: v}
		if k%2 == 0 {
			t.Label = linLabel(v, bestE, decimals, big)
		} else if lt.integer && v != math.Trunc(v) {
			continue
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// linLabel formats a tick value of an axis with the given step exponent
// and number of decimals (places after the point, negative for steps of
// tens and more): fixed-point, or for steps below 1e-4 or on a big axis
// (reaching 1e6), the exponent form with the digits the step needs.
func linLabel(v float64, stepExp, decimals int, big bool) string {
	if stepExp >= -4 && !big {
		return strconv.FormatFloat(v, 'f', max(0, decimals), 64)
	}
	if v == 0 {
		return "0"
	}
	sig := int(math.Floor(math.Log10(math.Abs(v)))) + decimals + 1
	return strconv.FormatFloat(v, 'g', max(1, sig), 64)
}

// logTicks places ticks on a log axis at m·10^e for m = 1…9. It labels the
// powers of ten when at least two are in range (every k-th decade when more
// than eight are), otherwise the ticks at m = 1, 2 and 5, otherwise all
// ticks in range; with fewer than two ticks in range (a range narrower than
// the gap between ticks) it falls back to plot.DefaultTicks. It replaces
// plot.LogTicks, which loses the ticks below the first power of ten when the
// axis starts below 1 (it truncates log10 toward zero) and labels nothing
// on an axis spanning less than a decade.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) || math.IsInf(hi, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	type cand struct{ m, e int }
	var in []cand
	e0, e1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	const tol = 1e-9
	for e := e0; e <= e1; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(e)
			if v >= lo*(1-tol) && v <= hi*(1+tol) {
				in = append(in, cand{m, e})
			}
		}
	}
	if len(in) < 2 {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	count := func(keep func(c cand) bool) int {
		k := 0
		for _, c := range in {
			if keep(c) {
				k++
			}
		}
		return k
	}
	decades := count(func(c cand) bool { return c.m == 1 })
	step := max(1, (decades+7)/8)
	label := func(c cand) bool { return c.m == 1 && ((c.e%step)+step)%step == 0 }
	switch {
	case decades >= 2:
	case count(func(c cand) bool { return c.m == 1 || c.m == 2 || c.m == 5 }) >= 2:
		label = func(c cand) bool { return c.m == 1 || c.m == 2 || c.m == 5 }
	default:
		label = func(cand) bool { return true }
	}
	ticks := make([]plot.Tick, len(in))
	for i, c := range in {
		ticks[i].Value = float64(c.m) * math.Pow10(c.e)
		if label(c) {
			ticks[i].Label = tickLabel(c.m, c.e)
		}
	}
	return ticks
}

// tickLabel formats m·10^e exactly: plain decimals for 1e-3 ≤ value < 1e5,
// "me±e" otherwise ("1e-6", "5e7").
func tickLabel(m, e int) string {
	if e >= -3 && e <= 4 {
		return strconv.FormatFloat(float64(m)*math.Pow10(e), 'f', max(0, -e), 64)
	}
	return strconv.Itoa(m) + "e" + strconv.Itoa(e)
}
