package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Hist is the histogram of a sample, made by [Histogram]: equal-width bins
// from the smallest to the largest finite value, counts on the y axis, and
// optionally the fitted normal density scaled to counts.
type Hist struct {
	// Title and XLabel are the plot's texts; the y axis is "count".
	Title, XLabel string
	// Edges are the bin boundaries, len(Counts)+1 of them, increasing.
	// Bin i holds the values in [Edges[i], Edges[i+1]), the last bin
	// also its right edge.
	Edges []float64
	// Counts are the number of values in each bin; they sum to N.
	Counts []int
	// N is the number of finite values binned and Dropped the number of
	// non-finite values left out.
	N, Dropped int
	// Mean and SD are the sample mean and standard deviation (divisor
	// N − 1; 0 when N = 1) of the binned values.
	Mean, SD float64
	// Normal draws the normal density with Mean and SD, scaled by
	// N × bin width so that it is comparable with the counts.
	Normal bool
}

// Histogram bins the finite values into bins equal-width bins spanning
// their range (bins = 0 picks Sturges' ⌈log2 N⌉ + 1); non-finite values are
// dropped and counted. When all values are equal the bins span value ± 0.5.
// normalOverlay draws the normal density of the sample's mean and standard
// deviation over the bars. It returns an error when there is no finite
// value or bins is negative.
func Histogram(title, xlabel string, values []float64, bins int, normalOverlay bool) (*Hist, error) {
	if bins < 0 {
		return nil, fmt.Errorf("plots: histogram %q: negative number of bins %d", title, bins)
	}
	h := &Hist{Title: title, XLabel: xlabel, Normal: normalOverlay}
	lo, hi := math.Inf(1), math.Inf(-1)
	var sum float64
	for _, v := range values {
		if !finite(v) {
			h.Dropped++
			continue
		}
		h.N++
		sum += v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if h.N == 0 {
		return nil, fmt.Errorf("plots: histogram %q: no finite values among %d", title, len(values))
	}
	h.Mean = sum / float64(h.N)
	if h.N > 1 {
		var ss float64
		for _, v := range values {
			if finite(v) {
				ss += (v - h.Mean) * (v - h.Mean)
			}
		}
		h.SD = math.Sqrt(ss / float64(h.N-1))
	}
	if bins == 0 {
		bins = int(math.Ceil(math.Log2(float64(h.N)))) + 1
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	w := (hi - lo) / float64(bins)
	h.Edges = make([]float64, bins+1)
	for i := range h.Edges {
		h.Edges[i] = lo + float64(i)*w
	}
	h.Edges[bins] = hi
	h.Counts = make([]int, bins)
	for _, v := range values {
		if !finite(v) {
			continue
		}
		i := min(bins-1, max(0, int((v-lo)/w)))
		// Rounding in (v−lo)/w can put a value one bin off its edges.
		for i > 0 && v < h.Edges[i] {
			i--
		}
		for i < bins-1 && v >= h.Edges[i+1] {
			i++
		}
		h.Counts[i]++
	}
	return h, nil
}

// Render builds the gonum plot of the histogram without writing anything.
func (h *Hist) Render() (*plot.Plot, error) {
	if len(h.Counts) == 0 || len(h.Edges) != len(h.Counts)+1 {
		return nil, fmt.Errorf("plots: histogram %q: %d counts and %d edges, want n ≥ 1 counts and n+1 edges",
			h.Title, len(h.Counts), len(h.Edges))
	}
	p := newPlot(h.Title, h.XLabel, "count")
	hb := &plotter.Histogram{
		Width:     (h.Edges[len(h.Edges)-1] - h.Edges[0]) / float64(len(h.Counts)),
		FillColor: translucent(Palette[0], 0x99),
		LineStyle: draw.LineStyle{Color: Palette[0], Width: vg.Points(0.75)},
	}
	ymax := 0.0
	for i, c := range h.Counts {
		hb.Bins = append(hb.Bins, plotter.HistogramBin{Min: h.Edges[i], Max: h.Edges[i+1], Weight: float64(c)})
		ymax = math.Max(ymax, float64(c))
	}
	p.Add(hb)
	p.Legend.Add(fmt.Sprintf("N = %d", h.N), hb)
	if h.Normal && h.SD > 0 {
		scale := float64(h.N) * hb.Width
		xs := samples(h.Edges[0], h.Edges[len(h.Edges)-1], 129, false)
		xys := make(plotter.XYs, len(xs))
		for i, x := range xs {
			z := (x - h.Mean) / h.SD
			xys[i] = plotter.XY{X: x, Y: scale * math.Exp(-z*z/2) / (h.SD * math.Sqrt(2*math.Pi))}
			ymax = math.Max(ymax, xys[i].Y)
		}
		line := &plotter.Line{XYs: xys, LineStyle: draw.LineStyle{Color: Palette[3], Width: vg.Points(1.5)}}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("normal: mean %.3g, sd %.3g", h.Mean, h.SD), line)
	}
	if h.Dropped > 0 {
		p.Legend.Add(fmt.Sprintf("%d non-finite %s not shown", h.Dropped, plural(h.Dropped, "value", "values")))
	}
	p.X.Min, p.X.Max = h.Edges[0], h.Edges[len(h.Edges)-1]
	p.Y.Min, p.Y.Max = 0, ymax*1.25 // headroom for the legend
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), -vg.Points(6)
	return p, nil
}

// Save draws the histogram and writes dir/name.png and dir/name.svg like
// [Figure.Save], returning the two paths.
func (h *Hist) Save(dir, name string) (pngPath, svgPath string, err error) {
	p, err := h.Render()
	if err != nil {
		return "", "", err
	}
	return savePlot(p, dir, name)
}
