package plots

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// encodePage draws a w×h page with drawPage as PNG (at DPI), SVG and PDF
// (fonts embedded).
func encodePage(w, h vg.Length, drawPage func(draw.Canvas)) (pngData, svgData, pdfData []byte, err error) {
	ic := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))
	drawPage(draw.New(ic))
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: ic}).WriteTo(&pb); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding PNG: %w", err)
	}
	sc := vgsvg.New(w, h)
	drawPage(draw.New(sc))
	var sb bytes.Buffer
	if _, err := sc.WriteTo(&sb); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding SVG: %w", err)
	}
	pc := vgpdf.New(w, h)
	drawPage(draw.New(pc))
	var fb bytes.Buffer
	if _, err := pc.WriteTo(&fb); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding PDF: %w", err)
	}
	return pb.Bytes(), sb.Bytes(), fb.Bytes(), nil
}

// savePlot writes p as dir/name.png, dir/name.svg and dir/name.pdf,
// creating dir if needed. It returns the PNG and SVG paths.
func savePlot(p *plot.Plot, dir, name string) (pngPath, svgPath string, err error) {
	return savePage(Width, Height, func(c draw.Canvas) { drawPlot(p, c) }, dir, name)
}

// drawPlot draws p on c. On a logarithmic y axis it draws the y label
// itself, centred on the data area: gonum/plot (v0.17) reserves the
// label's space around the arithmetic mean of the axis range, which on a
// log axis lies near the top, and so pads the top of the plot with a band
// as high as half the label is long.
func drawPlot(p *plot.Plot, c draw.Canvas) {
	if _, ok := p.Y.Scale.(plot.LogScale); !ok || p.Y.Label.Text == "" {
		p.Draw(c)
		return
	}
	label := p.Y.Label.Text
	p.Y.Label.Text = ""
	defer func() { p.Y.Label.Text = label }()
	sty := p.Y.Label.TextStyle
	h := sty.Height(label)
	descent := sty.FontExtents().Descent
	inner := draw.Crop(c, h+p.Y.Label.Padding, 0, 0, 0)
	sty.Rotation += math.Pi / 2
	dc := p.DataCanvas(inner)
	c.FillText(sty, vg.Point{X: c.Min.X + h - descent, Y: dc.Center().Y}, label)
	p.Draw(inner)
}

// savePage writes the w×h page drawn by drawPage as dir/name.png,
// dir/name.svg and dir/name.pdf, creating dir if needed. All three images
// are encoded before any file is touched, and each file is written to a
// temporary file in dir and renamed into place. It returns the PNG and SVG
// paths (the PDF is beside them).
func savePage(w, h vg.Length, drawPage func(draw.Canvas), dir, name string) (pngPath, svgPath string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", "", fmt.Errorf("plots: invalid figure name %q: want a file name without extension or directory", name)
	}
	pngData, svgData, pdfData, err := encodePage(w, h, drawPage)
	if err != nil {
		return "", "", fmt.Errorf("plots: saving %q: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("plots: saving %q: %w", name, err)
	}
	pngPath = filepath.Join(dir, name+".png")
	svgPath = filepath.Join(dir, name+".svg")
	for _, f := range []struct {
		path string
		data []byte
	}{{pngPath, pngData}, {svgPath, svgData}, {filepath.Join(dir, name+".pdf"), pdfData}} {
		if err := writeAtomic(f.path, f.data); err != nil {
			return "", "", fmt.Errorf("plots: saving %q: %w", name, err)
		}
	}
	return pngPath, svgPath, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory, renamed over path once complete, so that path holds either its
// old content or all of data.
func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	return nil
}
