package plots

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// poly returns a prediction c1 η + c2 η² + c3 η³ truncated at order k,
// with a standard error of 5% of |value|.
func poly(k int, c ...float64) Prediction {
	return Prediction{Order: k, At: func(eta float64) (float64, float64) {
		v := 0.0
		for i := 0; i < k; i++ {
			v += c[i] * math.Pow(eta, float64(i+1))
		}
		return v, 0.05 * math.Abs(v)
	}}
}

// etaFigure is a figure like the report's: SGD (T = 10) and GD (T = 10)
// with measured points at η = 0.01 … 1 and an order-3 term that reaches
// −160 at η = 1.
func etaFigure() EtaFigure {
	etas := []float64{0.01, 0.03, 0.1, 0.3, 1}
	c := []float64{-2, 3, -161}
	var groups []EtaGroup
	for i, name := range []string{"sgd", "gd", "gdc"} {
		g := EtaGroup{Label: name, Dash: DashFor(name, 0), Color: i, T: 10}
		for _, eta := range etas {
			m := -2*eta + 2.5*eta*eta + 0.01*float64(i)
			g.Measured = append(g.Measured, EtaPoint{Eta: eta, Mean: m, SE: 0.02 + 0.05*eta})
		}
		if name != "gdc" {
			for k := 1; k <= 3; k++ {
				g.Predictions = append(g.Predictions, poly(k, c...))
			}
		}
		groups = append(groups, g)
	}
	return EtaFigure{Title: "logistic init 0: test-loss change", YLabel: "test loss − initial", Groups: groups, EtaTLimit: 1}
}

// keep returns a folder for figures: $PERTURB_FIG_DIR (to look at them)
// or a temporary one.
func keep(t *testing.T) string {
	if d := os.Getenv("PERTURB_FIG_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

func TestEtaGridRespectsLimit(t *testing.T) {
	f := etaFigure()
	for _, limit := range []float64{0.05, 0.3, 1, 100} {
		f.EtaTLimit = limit
		for i, g := range f.Groups {
			grid := f.PredictionGrid(i)
			if limit >= 10 && len(grid) != 200 {
				t.Errorf("limit %g: %d grid points, want 200", limit, len(grid))
			}
			for j, x := range grid {
				if x*g.T > limit*(1+1e-12) {
					t.Errorf("limit %g: grid point %g has ηT = %g beyond the limit", limit, x, x*g.T)
				}
				if j > 0 && !(x > grid[j-1]) {
					t.Errorf("limit %g: grid not increasing at %d", limit, j)
				}
			}
			if limit < 0.1 {
				if len(grid) != 0 {
					t.Errorf("limit %g below the measured range: grid %v, want none", limit, grid)
				}
				continue
			}
			if limit < 10 && (len(grid) == 0 || math.Abs(grid[len(grid)-1]-limit/g.T) > 1e-12) {
				t.Errorf("limit %g: grid ends at %v, want ηT = limit exactly", limit, grid)
			}
		}
	}
	// A limit below the measured range draws no curve and no residual.
	f.EtaTLimit = 0.01
	if grid := f.PredictionGrid(0); len(grid) != 0 {
		t.Errorf("limit below range: grid %v, want none", grid)
	}
	e, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	if e.Residual != nil {
		t.Error("residual panel drawn with no η within the limit")
	}
}

func TestEtaYRangeFromData(t *testing.T) {
	f := etaFigure()
	f.EtaTLimit = 0 // draw the predictions everywhere: −160 at η = 1
	if v, _ := f.Groups[0].Predictions[2].At(1); v > -150 {
		t.Fatalf("order-3 prediction at η = 1 is %g, want about −160", v)
	}
	e, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range f.Groups {
		for _, m := range g.Measured {
			lo, hi = math.Min(lo, m.Mean-1.96*m.SE), math.Max(hi, m.Mean+1.96*m.SE)
		}
	}
	ymin, ymax := e.Main.Y.Min, e.Main.Y.Max
	if ymin > lo || ymax < hi {
		t.Errorf("y range [%g, %g] does not hold the measured intervals [%g, %g]", ymin, ymax, lo, hi)
	}
	if margin := 0.2 * (hi - lo); ymin < lo-margin || ymax > hi+margin {
		t.Errorf("y range [%g, %g] is wider than the data [%g, %g] plus a margin: set by a prediction?", ymin, ymax, lo, hi)
	}
	if e.Residual == nil {
		t.Fatal("no residual panel")
	}
	if e.Residual.Y.Min > -1.96 || e.Residual.Y.Max < 1.96 || e.Residual.Y.Max > zCap {
		t.Errorf("residual range [%g, %g], want ±1.96 inside and at most ±%d", e.Residual.Y.Min, e.Residual.Y.Max, zCap)
	}
}

func TestEtaSave(t *testing.T) {
	dir := keep(t)
	for name, f := range map[string]EtaFigure{"eta": etaFigure(), "eta-noresid": func() EtaFigure {
		f := etaFigure()
		f.NoResiduals = true
		return f
	}()} {
		pngPath, svgPath, err := f.Save(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if pngPath != filepath.Join(dir, name+".png") || svgPath != filepath.Join(dir, name+".svg") {
			t.Errorf("paths %q %q", pngPath, svgPath)
		}
		data, err := os.ReadFile(pngPath)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("decoding %s: %v", pngPath, err)
		}
		if b := img.Bounds(); b.Dx() < 900 || b.Dy() < 600 {
			t.Errorf("PNG is %v, want at least 900×600", b)
		}
		checkSVG(t, svgPath, "order 3", "sgd", "gdc", "ηT ≤ 1")
		pdf, err := os.ReadFile(filepath.Join(dir, name+".pdf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Errorf("%s.pdf does not start with %%PDF-", name)
		}
	}
}

func TestEtaRenderErrors(t *testing.T) {
	if _, err := (EtaFigure{Title: "empty"}).Render(); err == nil {
		t.Error("a figure without points rendered")
	}
	f := etaFigure()
	f.Groups[0].Predictions[0].At = nil
	if _, err := f.Render(); err == nil {
		t.Error("a prediction without At rendered")
	}
}

// TestFigureDataRange: with DataRange a line far outside the data (a
// prediction of −160) does not set the y axis; without it, it does.
func TestFigureDataRange(t *testing.T) {
	meas := Series{Label: "measured", Points: []Point{{X: 0.1, Y: -0.2, Lo: -0.25, Hi: -0.15}, {X: 1, Y: -0.5, Lo: -0.6, Hi: -0.4}}}
	line := Series{Label: "order 3", Points: []Point{{X: 0.1, Y: -0.21}, {X: 0.5, Y: -20}, {X: 1, Y: -160}}}
	f := Figure{Title: "wild", LogX: true, Measured: []Series{meas}, Lines: []Series{line}, DataRange: true}
	p, _, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	if p.Y.Min < -0.61 || p.Y.Max > -0.14 {
		t.Errorf("DataRange: y [%g, %g], want the measured [-0.6, -0.15]", p.Y.Min, p.Y.Max)
	}
	f.DataRange = false
	if p, _, err = f.Render(); err != nil {
		t.Fatal(err)
	}
	if p.Y.Min > -160 {
		t.Errorf("without DataRange: y min %g, want the line's -160", p.Y.Min)
	}
}

// TestEtaDeterministic saves the same EtaFigure twice and compares the
// PNG and SVG bytes (the PDF holds its creation time).
func TestEtaDeterministic(t *testing.T) {
	var files [2][2][]byte
	for run := range 2 {
		p, s, err := etaFigure().Save(t.TempDir(), "eta")
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
			t.Errorf("%s differs between two saves of the same figure", ext)
		}
	}
}

// TestPairLines: with PairLines a line takes its measured series' colour,
// so a figure of one measured series and one line uses one palette colour.
func TestPairLines(t *testing.T) {
	count := func(pair bool) int {
		f := Figure{Title: "pair", LogX: true, PairLines: pair,
			Measured: []Series{{Label: "E = 2 measured", Points: []Point{{X: 0.01, Y: 1}, {X: 0.1, Y: 2}}}},
			Lines:    []Series{{Label: "E = 2 order 3", Points: []Point{{X: 0.01, Y: 1.1}, {X: 0.05, Y: 1.5}, {X: 0.1, Y: 2.1}}}}}
		p, _, err := f.Save(t.TempDir(), "pair")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				if c := Palette[1]; uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bb>>8) == c.B {
					n++
				}
			}
		}
		return n
	}
	if n := count(false); n < 20 {
		t.Errorf("without PairLines the line's own colour has %d pixels, want many", n)
	}
	if n := count(true); n != 0 {
		t.Errorf("with PairLines the second palette colour has %d pixels, want 0", n)
	}
}
