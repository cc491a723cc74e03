package noise

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/plots"
)

// FileName is the name of the results file in an output folder.
const FileName = "noise.json"

// File is everything `perturb noise` measured.
type File struct {
	ConfigName string `json:"config_name"`
	ConfigHash string `json:"config_hash"`
	Data       string `json:"data"`
	// Examples says which examples the losses average over.
	Examples string    `json:"examples"`
	Command  string    `json:"command"`
	Settings Settings  `json:"settings"`
	Scans    []*Scan   `json:"scans"`
	Sweeps   []*Sweep  `json:"sweeps,omitempty"`
	Grads    []*Grads  `json:"grads,omitempty"`
	Training *Training `json:"training,omitempty"`
	Seconds  float64   `json:"seconds"`
	Load     string    `json:"load,omitempty"`
}

// Write writes f into dir: noise.json, CSV tables, PNG and SVG plots and
// the Markdown section noise.md (see Section).
func Write(dir string, f *File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("noise output: %w", err)
	}
	b, err := json.MarshalIndent(jsonSafe(f), "", " ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, FileName), append(b, '\n')); err != nil {
		return err
	}
	md, err := render(dir, f)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "noise.md"), []byte(md))
}

// Read reads dir/noise.json.
func Read(dir string) (*File, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("read noise results: %w; run perturb noise CONFIG --out %s first", err, dir)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w; the file is damaged, run perturb noise again", filepath.Join(dir, FileName), err)
	}
	return &f, nil
}

// Section reads dir/noise.json, (re)draws its plots into dir and returns
// the Markdown section of the report, with image links relative to dir.
func Section(dir string) (string, error) {
	f, err := Read(dir)
	if err != nil {
		return "", err
	}
	return render(dir, f)
}

// jsonSafe replaces NaN and ±Inf (which JSON cannot hold) by a
// marshalled copy through a float wrapper.
func jsonSafe(f *File) any {
	b, err := json.Marshal(f)
	if err == nil {
		return json.RawMessage(b)
	}
	// Fall back on a NaN-free copy.
	var c File = *f
	c.Scans = nil
	for _, s := range f.Scans {
		c.Scans = append(c.Scans, cleanScan(s))
	}
	c.Sweeps = nil
	for _, sw := range f.Sweeps {
		cs := *sw
		cs.Scans = nil
		for _, s := range sw.Scans {
			cs.Scans = append(cs.Scans, cleanScan(s))
		}
		c.Sweeps = append(c.Sweeps, &cs)
	}
	for i, sw := range c.Sweeps {
		cs := *sw
		cs.Fits = nil
		for _, fit := range sw.Fits {
			// A fit with a non-finite number is no fit (as for bf16).
			if finite(fit.Exponent, fit.SE, fit.Lo, fit.Hi, fit.Intercept) {
				cs.Fits = append(cs.Fits, fit)
			}
		}
		c.Sweeps[i] = &cs
	}
	c.Grads = nil
	for _, g := range f.Grads {
		cg := *g
		cg.Layers = append([]LayerGrad(nil), g.Layers...)
		for i := range cg.Layers {
			l := &cg.Layers[i]
			l.Norm64 = clean(l.Norm64)
			l.RelErr = cleanSlice(l.RelErr)
		}
		c.Grads = append(c.Grads, &cg)
	}
	if f.Training != nil {
		t := *f.Training
		t.TrC = clean(t.TrC)
		t.Points = append([]TrainPoint(nil), t.Points...)
		for i := range t.Points {
			p := &t.Points[i]
			for _, x := range []*float64{&p.WeightDrift, &p.LossDrift, &p.Loss64, &p.LossP, &p.NoiseScale, &p.Ratio, &p.RatioStep} {
				*x = clean(*x)
			}
		}
		c.Training = &t
	}
	return &c
}

// finite reports whether every x is finite.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// clean is x, or −1 (an impossible value of the non-negative quantities
// it is used on: floors, drifts, errors, norms) when x is not finite.
func clean(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1
	}
	return x
}

func cleanSlice(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = clean(v)
	}
	return out
}

// cleanScan stores NaN and ±Inf as −1 (noise values are never negative).
func cleanScan(s *Scan) *Scan {
	c := *s
	c.Signal = cleanSlice(s.Signal)
	c.Curvature = cleanSlice(s.Curvature)
	c.Precisions = nil
	for _, r := range s.Precisions {
		r.Noise = cleanSlice(r.Noise)
		r.Floor, r.Crossover, r.CrossoverFormula, r.Loss = clean(r.Floor), clean(r.Crossover), clean(r.CrossoverFormula), clean(r.Loss)
		r.LossBias, r.LossNoise = clean(r.LossBias), clean(r.LossNoise)
		var errs [][]float64
		for _, e := range r.Errors {
			errs = append(errs, cleanSlice(e))
		}
		r.Errors = errs
		d := r.Dist
		d.Mean, d.Skewness, d.Kurtosis, d.JarqueBera, d.P = clean(d.Mean), clean(d.Skewness), clean(d.Kurtosis), clean(d.JarqueBera), clean(d.P)
		d.Values = cleanSlice(d.Values)
		r.Dist = d
		c.Precisions = append(c.Precisions, r)
	}
	return &c
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeCSV(path string, rows [][]string) error {
	var b strings.Builder
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return writeAtomic(path, []byte(b.String()))
}

func g(x float64) string {
	if x < 0 && x == -1 || math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

// sig formats x with 2 significant digits for tables ("—" for none).
func sig(x float64) string {
	if math.IsNaN(x) || x == -1 || math.IsInf(x, 0) {
		return "—"
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

func scanName(s *Scan) string {
	n := s.Model
	if s.Width > 0 || s.Depth > 0 {
		n += fmt.Sprintf("-w%d-d%d", s.Width, s.Depth)
	}
	return fmt.Sprintf("%s-init%d", n, s.Init)
}

// Figures names the PNG plots Draw wrote (file names in its folder), by
// part of the study.
type Figures struct {
	// Scans[i] are scan i's plots: the noise against h, then the
	// histograms of the float64 and float32 noise.
	Scans [][]string
	// Sweeps[i] is sweep i's floor against width or depth.
	Sweeps []string
	// Grads is the per-layer gradient error ("" without gradients).
	Grads string
	// Training is the drift of low-precision SGD ("" without training).
	Training string
}

// Draw writes the CSV tables and the PNG and SVG plots of f into dir and
// returns the PNGs' names.
func Draw(dir string, f *File) (Figures, error) {
	var figs Figures
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return figs, fmt.Errorf("noise plots: %w", err)
	}
	for _, s := range f.Scans {
		name := scanName(s)
		if err := scanOutputs(dir, name, s); err != nil {
			return figs, err
		}
		names := []string{"noise-" + name + ".png"}
		for _, r := range s.Precisions {
			h := fmt.Sprintf("hist-%s-%v.png", name, r.Format)
			if (r.Format == precision.Float32 || r.Format == precision.Float64) && exists(filepath.Join(dir, h)) {
				names = append(names, h)
			}
		}
		figs.Scans = append(figs.Scans, names)
	}
	for _, sw := range f.Sweeps {
		name := fmt.Sprintf("sweep-%s-%s", sw.Model, sw.Axis)
		if err := sweepOutputs(dir, name, sw); err != nil {
			return figs, err
		}
		figs.Sweeps = append(figs.Sweeps, name+".png")
	}
	if len(f.Grads) > 0 {
		if err := gradOutputs(dir, f.Grads); err != nil {
			return figs, err
		}
		figs.Grads = "grad-layers.png"
	}
	if f.Training != nil {
		if err := trainingOutputs(dir, f.Training); err != nil {
			return figs, err
		}
		figs.Training = "train-drift.png"
	}
	return figs, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// render writes the CSVs and plots of f into dir and returns the Markdown.
func render(dir string, f *File) (string, error) {
	figs, err := Draw(dir, f)
	if err != nil {
		return "", err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "## Floating-point noise of the loss\n\n")
	fmt.Fprintf(&md, "Config %s (%.12s), %s; losses over %s. Command: `%s`. %d directions, %d values of h from %.3g to %.3g. Time %.0f s%s.\n\n",
		f.ConfigName, f.ConfigHash, f.Data, f.Examples, f.Command, f.Settings.Directions, f.Settings.Steps, f.Settings.HMin, f.Settings.HMax, f.Seconds, loadNote(f.Load))
	md.WriteString(Method + "\n\n")
	md.WriteString("| model | init | params | precision | loss | loss bias | loss noise | D noise floor | crossover h | h from √(floor/rms f'') | skew | excess kurtosis | JB p | looks like | floor from rounding θ alone |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range ScanTable(f)[1:] {
		md.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	md.WriteString("\n")
	md.WriteString(deviceNote(f))
	for i, s := range f.Scans {
		name := scanName(s)
		for k, png := range figs.Scans[i] {
			if k == 0 {
				fmt.Fprintf(&md, "![noise against h, %s](%s)\n\n", name, png)
			} else {
				fmt.Fprintf(&md, "![noise distribution, %s](%s)\n", name, png)
			}
		}
		md.WriteString("\n")
	}
	if len(f.Sweeps) > 0 {
		md.WriteString("### Noise floor against width and depth\n\n| model | axis | fixed | sizes | precision | exponent | 95% interval |\n|---|---|---|---|---|---|---|\n")
		for _, row := range SweepTable(f)[1:] {
			md.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
		md.WriteString("\n")
		for i, sw := range f.Sweeps {
			fmt.Fprintf(&md, "![floor against %s, %s](%s)\n", sw.Axis, sw.Model, figs.Sweeps[i])
		}
		md.WriteString("\n")
	}
	if len(f.Grads) > 0 {
		md.WriteString("### Gradient error per layer\n\nRelative error |g_P − g_64| / |g_64| of each layer's gradient (weights and bias), layer 1 nearest the input.\n\n")
		for _, gr := range f.Grads {
			fmt.Fprintf(&md, "%s, init %d, %d examples:\n\n| layer | params | |g_64| |", displayName(&Scan{Model: gr.Model, Width: gr.Width, Depth: gr.Depth}), gr.Init, gr.Examples)
			for _, p := range gr.Formats {
				fmt.Fprintf(&md, " %v |", p)
			}
			md.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(gr.Formats)) + "\n")
			for _, l := range gr.Layers {
				fmt.Fprintf(&md, "| %d %s | %d | %.3g |", l.Index, l.Layer, l.Params, l.Norm64)
				for _, e := range l.RelErr {
					fmt.Fprintf(&md, " %.3g |", e)
				}
				md.WriteString("\n")
			}
			md.WriteString("\n")
		}
		fmt.Fprintf(&md, "![gradient error by layer](%s)\n\n", figs.Grads)
	}
	if f.Training != nil {
		md.WriteString(trainingMarkdown(f.Training))
	}
	return md.String(), nil
}

// Method is a one-paragraph statement of what the tables measure.
const Method = "Second difference D(h) = f(θ) − 2f(θ+hv) + f(θ+2hv) along random unit directions v; noise = rms over v of D_P − D_64 (float64: D_64 minus its smooth fit, for h < 1e-5); floor = median noise where it exceeds the signal rms D_64 and the perturbation survives rounding; crossover = the h above which the signal exceeds the noise; the distribution of the noise at the floor's h is tested for normality by Jarque–Bera (p ≥ 0.01: gaussian) after ruling out quantisation (mostly exact zeros or few distinct values)."

// deviceNote says what computed the scans' tf32 results (one line per
// distinct device), or "".
func deviceNote(f *File) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, s := range f.Scans {
		for _, r := range s.Precisions {
			if r.Device != "" && !seen[r.Device] {
				seen[r.Device] = true
				fmt.Fprintf(&b, "%v computed by %s.\n", r.Format, r.Device)
			}
		}
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// ScanTable is the scans' results, one row per model and precision, with
// a header row: model, init, params, precision, loss, loss bias, loss
// noise, floor, crossover, √(floor/rms f”), skewness, excess kurtosis,
// Jarque–Bera p-value, verdict.
func ScanTable(f *File) [][]string {
	rows := [][]string{{"model", "init", "params", "precision", "loss", "loss bias", "loss noise", "D noise floor", "crossover h", "h from √(floor/rms f'')", "skew", "excess kurtosis", "JB p", "looks like", "floor from rounding θ alone"}}
	for _, s := range f.Scans {
		for _, r := range s.Precisions {
			rows = append(rows, []string{displayName(s), strconv.Itoa(s.Init), strconv.Itoa(s.Params), r.Format.String(), fmt.Sprintf("%.6g", r.Loss),
				sig(r.LossBias), sig(r.LossNoise), sig(r.Floor), sig(r.Crossover), sig(r.CrossoverFormula), sig(r.Dist.Skewness), sig(r.Dist.Kurtosis), sig(r.Dist.P), r.Dist.Kind, sig(r.RoundingFloor)})
		}
	}
	return rows
}

// SweepTable is the fitted exponents of the sweeps with a header row.
func SweepTable(f *File) [][]string {
	rows := [][]string{{"model", "axis", "fixed", "sizes", "precision", "exponent", "95% interval"}}
	for _, sw := range f.Sweeps {
		for _, fit := range sw.Fits {
			rows = append(rows, []string{sw.Model, sw.Axis, strconv.Itoa(sw.Fixed), fmt.Sprint(sw.X), fit.Format.String(),
				fmt.Sprintf("%.3f ± %.3f", fit.Exponent, fit.SE), fmt.Sprintf("[%.3f, %.3f]", fit.Lo, fit.Hi)})
		}
	}
	return rows
}

func loadNote(l string) string {
	if l == "" {
		return ""
	}
	return " (load average at the end: " + l + ")"
}

func displayName(s *Scan) string {
	if s.Width > 0 || s.Depth > 0 {
		return fmt.Sprintf("%s (width %d, depth %d)", s.Model, s.Width, s.Depth)
	}
	return s.Model
}

func scanOutputs(dir, name string, s *Scan) error {
	rows := [][]string{{"h", "signal_rms"}}
	for _, r := range s.Precisions {
		rows[0] = append(rows[0], "noise_"+r.Format.String(), "moved_"+r.Format.String())
	}
	for i, h := range s.H {
		row := []string{g(h), g(s.Signal[i])}
		for _, r := range s.Precisions {
			row = append(row, g(r.Noise[i]), g(r.Moved[i]))
		}
		rows = append(rows, row)
	}
	if err := writeCSV(filepath.Join(dir, "noise-"+name+".csv"), rows); err != nil {
		return err
	}
	fig := plots.Figure{Title: "Noise of the second difference, " + displayName(s), XLabel: "h", YLabel: "rms of D_64 and of D_P − D_ref", LogX: true, LogY: true}
	sig := plots.Series{Label: "signal |D_64|"}
	for i, h := range s.H {
		if s.Signal[i] > 0 {
			sig.Points = append(sig.Points, plots.Point{X: h, Y: s.Signal[i]})
		}
	}
	fig.Lines = append(fig.Lines, sig)
	for _, r := range s.Precisions {
		ser := plots.Series{Label: "noise " + r.Format.String()}
		for i, h := range s.H {
			if v := r.Noise[i]; v > 0 && !math.IsNaN(v) {
				ser.Points = append(ser.Points, plots.Point{X: h, Y: v})
			}
		}
		if len(ser.Points) > 0 {
			fig.Measured = append(fig.Measured, ser)
		}
	}
	if _, _, err := fig.Save(dir, "noise-"+name); err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	for _, r := range s.Precisions {
		if r.Format != precision.Float32 && r.Format != precision.Float64 {
			continue
		}
		var vals []float64
		for _, v := range r.Dist.Values {
			if !math.IsNaN(v) && v != -1 {
				vals = append(vals, v)
			}
		}
		if len(vals) < 2 {
			continue
		}
		h, err := plots.Histogram(fmt.Sprintf("%s %v: noise / floor (%s)", displayName(s), r.Format, r.Dist.Kind), "(D_P − D_ref) / floor", vals, 20, true)
		if err != nil {
			return err
		}
		if _, _, err := h.Save(dir, fmt.Sprintf("hist-%s-%v", name, r.Format)); err != nil {
			return err
		}
	}
	return nil
}

func sweepOutputs(dir, name string, sw *Sweep) error {
	rows := [][]string{{sw.Axis, "params"}}
	for _, r := range sw.Scans[0].Precisions {
		rows[0] = append(rows[0], "floor_"+r.Format.String())
	}
	fig := plots.Figure{Title: fmt.Sprintf("Noise floor of %s against %s (%s %d)", sw.Model, sw.Axis, other(sw.Axis), sw.Fixed),
		XLabel: sw.Axis, YLabel: "noise floor of D(h)", LogX: true, LogY: true}
	for pi, r := range sw.Scans[0].Precisions {
		ser := plots.Series{Label: r.Format.String()}
		for i, sc := range sw.Scans {
			if v := sc.Precisions[pi].Floor; v > 0 {
				se := v / math.Sqrt(2*float64(max(sc.Precisions[pi].Dist.N, 1)))
				ser.Points = append(ser.Points, plots.Point{X: float64(sw.X[i]), Y: v, Lo: math.Max(v-1.96*se, v/10), Hi: v + 1.96*se})
			}
		}
		fig.Measured = append(fig.Measured, ser)
	}
	for _, fit := range sw.Fits {
		fig.Fits = append(fig.Fits, plots.Fit{Label: fit.Format.String(), Slope: fit.Exponent, SlopeSE: fit.SE, Intercept: fit.Intercept, N: fit.N,
			XMin: float64(sw.X[0]), XMax: float64(sw.X[len(sw.X)-1])})
	}
	for i, sc := range sw.Scans {
		row := []string{strconv.Itoa(sw.X[i]), strconv.Itoa(sw.Params[i])}
		for _, r := range sc.Precisions {
			row = append(row, g(r.Floor))
		}
		rows = append(rows, row)
	}
	if err := writeCSV(filepath.Join(dir, name+".csv"), rows); err != nil {
		return err
	}
	_, _, err := fig.Save(dir, name)
	return err
}

func other(axis string) string {
	if axis == "width" {
		return "depth"
	}
	return "width"
}

func gradOutputs(dir string, gs []*Grads) error {
	rows := [][]string{{"model", "width", "depth", "init", "layer_index", "layer", "params", "norm64", "format", "rel_err"}}
	fig := plots.Figure{Title: "Relative gradient error by layer", XLabel: "layer (1 = nearest the input)", YLabel: "|g_P − g_64| / |g_64|", LogY: true, IntegerX: true}
	for _, gr := range gs {
		for fi, f := range gr.Formats {
			ser := plots.Series{Label: fmt.Sprintf("%s %v", displayName(&Scan{Model: gr.Model, Width: gr.Width, Depth: gr.Depth}), f)}
			for _, l := range gr.Layers {
				rows = append(rows, []string{gr.Model, strconv.Itoa(gr.Width), strconv.Itoa(gr.Depth), strconv.Itoa(gr.Init), strconv.Itoa(l.Index), l.Layer,
					strconv.Itoa(l.Params), g(l.Norm64), f.String(), g(l.RelErr[fi])})
				if l.RelErr[fi] > 0 {
					ser.Points = append(ser.Points, plots.Point{X: float64(l.Index), Y: l.RelErr[fi]})
				}
			}
			fig.Lines = append(fig.Lines, ser)
		}
	}
	if err := writeCSV(filepath.Join(dir, "grad-layers.csv"), rows); err != nil {
		return err
	}
	_, _, err := fig.Save(dir, "grad-layers")
	return err
}
