package plots

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fullFigure uses every kind of element: measured series, a banded line, a
// scatter series, a fit and the diagonal.
func fullFigure(logx, logy bool) Figure {
	var meas, pred []Point
	var xs, ys []float64
	for i := 1; i <= 8; i++ {
		x := 0.01 * math.Pow(2, float64(i))
		y := 3 * x * x * (1 + 0.05*float64(i%3-1))
		meas = append(meas, Point{X: x, Y: y, Lo: 0.8 * y, Hi: 1.2 * y})
		pred = append(pred, Point{X: x, Y: 3 * x * x, Lo: 2.7 * x * x, Hi: 3.3 * x * x})
		xs, ys = append(xs, x), append(ys, y)
	}
	fit, err := FitPowerLaw(xs, ys, nil)
	if err != nil {
		panic(err)
	}
	fit.Label = "SGD"
	return Figure{
		Title: "test loss against learning rate", XLabel: "eta", YLabel: "excess loss",
		LogX: logx, LogY: logy,
		Measured: []Series{{Label: "SGD", Points: meas}, {Label: "GD", Points: []Point{{X: 0.1, Y: 0.05}, {X: 0.5, Y: 0.7, Lo: 0.6, Hi: 0.75}}}},
		Lines:    []Series{{Label: "theory", Points: pred}},
		Scatter:  []ScatterSeries{{Label: "pairs", Points: []XYErr{{X: 0.2, XLo: 0.15, XHi: 0.25, Y: 0.2, YLo: 0.1, YHi: 0.3}}}},
		Fits:     []Fit{fit},
		Diagonal: true,
	}
}

func TestSave(t *testing.T) {
	fitOnly := Figure{Title: "fit only", LogX: true, LogY: true,
		Fits: []Fit{{Label: "law", Slope: -1, SlopeSE: 0.02, Intercept: 0, N: 5, XMin: 0.1, XMax: 10}}}
	tests := []struct {
		name    string
		fig     Figure
		palette []int    // palette colours that must appear
		texts   []string // texts the SVG must hold
	}{
		{"linear", fullFigure(false, false), []int{0, 4}, []string{"slope 2.", "theory", "y = x"}},
		{"loglog", fullFigure(true, true), []int{0, 4}, []string{"slope 2.", "theory", "y = x", ">0.1<", ">1<"}},
		{"semilogy", fullFigure(false, true), []int{0, 4}, []string{"slope 2.", "pairs"}},
		{"fit only", fitOnly, []int{0}, []string{"law: slope -1.00 ± 0.02"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "figs") // Save creates it
			pngPath, svgPath, err := tc.fig.Save(dir, "fig")
			if err != nil {
				t.Fatal(err)
			}
			if pngPath != filepath.Join(dir, "fig.png") || svgPath != filepath.Join(dir, "fig.svg") {
				t.Errorf("paths %q %q", pngPath, svgPath)
			}
			checkPNG(t, pngPath, tc.palette...)
			checkSVG(t, svgPath, tc.texts...)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 3 {
				t.Errorf("dir holds %d entries, want the 3 figures (PNG, SVG, PDF; no temporary files left)", len(entries))
			}
		})
	}
}

// checkPNG decodes the file and checks its size, that it is not one colour,
// and that the given palette colours appear.
func checkPNG(t *testing.T, path string, palette ...int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if b := img.Bounds(); b != image.Rect(0, 0, 900, 600) {
		t.Fatalf("PNG bounds %v, want 900×600", b)
	}
	colours := map[[3]uint32]int{}
	for y := 0; y < 600; y += 2 {
		for x := 0; x < 900; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	if len(colours) < 10 {
		t.Errorf("PNG has %d distinct colours, want many", len(colours))
	}
	for _, c := range palette {
		want := [3]uint32{uint32(Palette[c].R), uint32(Palette[c].G), uint32(Palette[c].B)}
		if colours[want] < 5 {
			t.Errorf("palette colour %d %v appears in %d sampled pixels, want ≥ 5", c, want, colours[want])
		}
	}
}

// checkSVG parses the file as XML and checks its root, its size and that
// it contains the given texts.
func checkSVG(t *testing.T, path string, texts ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root, elems := "", 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elems++
		}
	}
	if root != "svg" || elems < 50 {
		t.Errorf("SVG root <%s> with %d elements, want <svg> with ≥ 50", root, elems)
	}
	for _, want := range texts {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("SVG lacks the text %q", want)
		}
	}
}

// TestDeterministic saves the same figures twice and compares the bytes.
func TestDeterministic(t *testing.T) {
	h, err := Histogram("noise", "z", []float64{-1, 0, 0.5, 2, 0.1, -0.3}, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	savers := map[string]func(dir string) (string, string, error){
		"figure":    func(dir string) (string, string, error) { return fullFigure(true, true).Save(dir, "f") },
		"histogram": func(dir string) (string, string, error) { return h.Save(dir, "h") },
	}
	for _, name := range []string{"figure", "histogram"} {
		t.Run(name, func(t *testing.T) {
			var files [2][2][]byte
			for run := range 2 {
				p, s, err := savers[name](t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				for k, path := range []string{p, s} {
					if files[run][k], err = os.ReadFile(path); err != nil {
						t.Fatal(err)
					}
				}
			}
			for k, ext := range []string{"PNG", "SVG"} {
				if !bytes.Equal(files[0][k], files[1][k]) {
					t.Errorf("%s differs between two saves of the same %s (%d vs %d bytes)", ext, name, len(files[0][k]), len(files[1][k]))
				}
			}
		})
	}
}

func TestLogAxesDrop(t *testing.T) {
	pts := []Point{
		{X: 1, Y: 2, Lo: 1, Hi: 3},
		{X: 2, Y: 4, Lo: -1, Hi: 9},  // lower end clipped on log y
		{X: 0, Y: 5},                 // x = 0: dropped on log x
		{X: 3, Y: -2, Lo: -3, Hi: 0}, // y < 0: dropped on log y
		{X: 4, Y: 0},                 // y = 0: dropped on log y
		{X: math.NaN(), Y: 1},        // not finite: dropped everywhere
		{X: 5, Y: 10, Lo: 0, Hi: 20}, // lower end 0 clipped on log y
	}
	tests := []struct {
		name                          string
		logx, logy                    bool
		dropped, nonPositive, clipped int // per series; the figure has two
	}{
		{name: "linear", dropped: 1},
		{name: "logx", logx: true, dropped: 2, nonPositive: 1},
		{name: "logy", logy: true, dropped: 3, nonPositive: 2, clipped: 2},
		{name: "loglog", logx: true, logy: true, dropped: 4, nonPositive: 3, clipped: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Figure{Title: tc.name, LogX: tc.logx, LogY: tc.logy,
				Measured: []Series{{Label: "m", Points: pts}},
				Lines:    []Series{{Label: "l", Points: pts}},
			}
			p, info, err := f.Render()
			if err != nil {
				t.Fatal(err)
			}
			want := RenderInfo{Dropped: 2 * tc.dropped, NonPositive: 2 * tc.nonPositive, Clipped: 2 * tc.clipped}
			if info != want {
				t.Errorf("info %+v, want %+v", info, want)
			}
			if tc.logy && !(p.Y.Min > 0 && p.Y.Min < 1) {
				t.Errorf("log y axis starts at %g, want in (0, 1): below the lowest value 1, positive", p.Y.Min)
			}
			if tc.logx && p.X.Min != 1 {
				t.Errorf("log x axis starts at %g, want 1", p.X.Min)
			}
			_, svgPath, err := f.Save(t.TempDir(), "drop")
			if err != nil {
				t.Fatal(err)
			}
			svg, err := os.ReadFile(svgPath)
			if err != nil {
				t.Fatal(err)
			}
			if note := fmt.Sprintf("%d points not shown", 2*tc.dropped); !bytes.Contains(svg, []byte(note)) {
				t.Errorf("SVG lacks the legend note %q", note)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name    string
		fig     Figure
		wantErr string
	}{
		{"empty", Figure{Title: "e"}, "no points and no fits"},
		{"empty series", Figure{Measured: []Series{{Label: "a"}}, Diagonal: true}, "no points and no fits"},
		{"all dropped", Figure{LogY: true, Measured: []Series{{Points: []Point{{X: 1, Y: 0}, {X: 2, Y: -1}}}}}, "all 2 points were dropped (2 not positive"},
		{"interval excludes y by rounding only", Figure{Measured: []Series{{Points: []Point{{X: 1, Y: 5, Lo: 5 + 1e-14, Hi: 6}}}}}, ""},
		{"interval excludes y", Figure{Measured: []Series{{Label: "a", Points: []Point{{X: 1, Y: 5, Lo: 6, Hi: 7}}}}}, `measured series "a" point 0: y interval [6, 7] does not contain 5`},
		{"infinite end", Figure{Scatter: []ScatterSeries{{Label: "s", Points: []XYErr{{X: 1, XLo: math.Inf(-1), XHi: 2, Y: 1}}}}}, "infinite end"},
		{"bad fit", Figure{Fits: []Fit{{Slope: 1, N: 3, XMin: 0, XMax: 1}}}, "fit 0"},
		{"equal axes mixed", Figure{LogX: true, EqualAxes: true, Measured: []Series{{Points: []Point{{X: 1, Y: 1}}}}}, "EqualAxes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := tc.fig.Save(dir, "x")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("failed Save left %d files", len(entries))
			}
		})
	}
	if _, _, err := fullFigure(false, false).Save(t.TempDir(), "a/b"); err == nil {
		t.Error("Save with name a/b succeeded, want an error")
	}
}

// TestEqualAxesDiagonal checks that EqualAxes gives both axes the union
// range and that a one-point figure still gets a proper range.
func TestEqualAxesDiagonal(t *testing.T) {
	tests := []struct {
		name           string
		log            bool
		pts            []XYErr
		wantLo, wantHi float64
	}{
		{"linear", false, []XYErr{{X: 1, Y: 2}, {X: 3, Y: 5, YLo: 4, YHi: 6}}, 1, 6},
		{"log", true, []XYErr{{X: 0.1, Y: 2}, {X: 3, XLo: 1, XHi: 30, Y: 5}}, 0.1, 30},
		{"one point log", true, []XYErr{{X: 4, Y: 4}}, 2, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Figure{LogX: tc.log, LogY: tc.log, EqualAxes: true, Diagonal: true,
				Scatter: []ScatterSeries{{Label: "s", Points: tc.pts}}}
			p, _, err := f.Render()
			if err != nil {
				t.Fatal(err)
			}
			if p.X.Min != tc.wantLo || p.X.Max != tc.wantHi || p.Y.Min != tc.wantLo || p.Y.Max != tc.wantHi {
				t.Errorf("x [%g, %g] y [%g, %g], want both [%g, %g]", p.X.Min, p.X.Max, p.Y.Min, p.Y.Max, tc.wantLo, tc.wantHi)
			}
		})
	}
}

func TestLegendCorner(t *testing.T) {
	up := []Point{{X: 1, Y: 1}, {X: 2, Y: 2}, {X: 3, Y: 3}, {X: 4, Y: 4}, {X: 5, Y: 5}}
	down := []Point{{X: 1, Y: 5}, {X: 2, Y: 4}, {X: 3, Y: 3}, {X: 4, Y: 2}, {X: 5, Y: 1}}
	corners := []Point{{X: 1, Y: 1}, {X: 1, Y: 5}, {X: 3, Y: 3}, {X: 5, Y: 1}, {X: 5, Y: 5}}
	tests := []struct {
		name      string
		pts       []Point
		top, left bool
		grown     bool // the y axis grew above the data for the legend
	}{
		{"increasing: top left", up, true, true, false},
		{"decreasing: top right", down, true, false, false},
		{"every corner taken: top right, above the data", corners, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := Figure{Measured: []Series{{Label: "a", Points: tc.pts}}}.Render()
			if err != nil {
				t.Fatal(err)
			}
			if p.Legend.Top != tc.top || p.Legend.Left != tc.left {
				t.Errorf("legend top=%v left=%v, want top=%v left=%v", p.Legend.Top, p.Legend.Left, tc.top, tc.left)
			}
			// The data's top at most 1 − 0.105 of the axis when grown (one
			// entry), at the top otherwise (a margin of a few percent).
			if top := p.Y.Norm(5); (top < 0.9) != tc.grown {
				t.Errorf("the data's top at %.3g of the y axis (grown: %v)", top, tc.grown)
			}
		})
	}
}

func TestLinTicks(t *testing.T) {
	tests := []struct {
		lo, hi     float64
		integer    bool
		wantLabels string
		wantTicks  int
	}{
		{0.08, 1.13, false, "0.2 0.4 0.6 0.8 1.0", 11},
		{0, 23.6, false, "0 5 10 15 20", 10},
		{-1.9, 1.9, false, "-1.5 -1.0 -0.5 0.0 0.5 1.0 1.5", 15},
		{0, 1e-5, false, "0 2e-06 4e-06 6e-06 8e-06 1e-05", 11},
		{3e6, 4e6, false, "3e+06 3.2e+06 3.4e+06 3.6e+06 3.8e+06 4e+06", 11},
		// Whole numbers only (layer indices): no 2.5, no ticks at halves.
		{1, 17, true, "2 4 6 8 10 12 14 16", 17},
		{1, 4, true, "1 2 3 4", 4},
	}
	for _, tc := range tests {
		ticks := linTicks{integer: tc.integer}.Ticks(tc.lo, tc.hi)
		var labels []string
		for _, tk := range ticks {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, " "); got != tc.wantLabels || len(ticks) != tc.wantTicks {
			t.Errorf("[%g, %g]: %d ticks labelled %q, want %d labelled %q", tc.lo, tc.hi, len(ticks), got, tc.wantTicks, tc.wantLabels)
		}
	}
}

func TestLogTicks(t *testing.T) {
	tests := []struct {
		lo, hi     float64
		wantLabels []string
		wantTicks  int
	}{
		{1, 1000, []string{"1", "10", "100", "1000"}, 28},
		{2, 8, []string{"2", "5"}, 7},
		{0.003, 0.5, []string{"0.01", "0.1"}, 7 + 9 + 5},
		{1e-7, 1e-5, []string{"1e-7", "1e-6", "1e-5"}, 19},
		{1.1, 1.9, nil, 0}, // no tick m·10^e in range: linear fallback
	}
	for _, tc := range tests {
		ticks := logTicks{}.Ticks(tc.lo, tc.hi)
		var labels []string
		for _, tk := range ticks {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if tc.wantLabels == nil {
			if len(labels) < 2 {
				t.Errorf("[%g, %g]: fallback labels %q, want at least 2", tc.lo, tc.hi, labels)
			}
			continue
		}
		if strings.Join(labels, " ") != strings.Join(tc.wantLabels, " ") || len(ticks) != tc.wantTicks {
			t.Errorf("[%g, %g]: %d ticks labelled %q, want %d labelled %q", tc.lo, tc.hi, len(ticks), labels, tc.wantTicks, tc.wantLabels)
		}
	}
}
