package report

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/study/noise"
)

// NoiseDir is the folder of a run directory where `perturb noise` stores
// its study by default (runs/NAME/noise).
const NoiseDir = "noise"

// IsNoiseDir reports whether dir holds a noise study (noise.json) and no
// trials (results.sqlite): an output folder of `perturb noise`.
func IsNoiseDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, noise.FileName)); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "results.sqlite"))
	return errors.Is(err, os.ErrNotExist)
}

// noise adds the sections of the floating-point noise study stored with
// the run (RUN/noise/noise.json, issue 6), when there is one.
func (b *builder) noise() error {
	dir := filepath.Join(b.run.Dir, NoiseDir)
	if _, err := os.Stat(filepath.Join(dir, noise.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	f, err := noise.Read(dir)
	if err != nil {
		return err
	}
	secs, err := noiseSections(f, dir, b.dir)
	if err != nil {
		return err
	}
	if f.ConfigName != b.run.Config.Name {
		secs[0].Text = append(secs[0].Text, fmt.Sprintf("This study was made with config %s, stored with run %s.", f.ConfigName, b.run.Config.Name))
	}
	b.sections = append(b.sections, secs...)
	return nil
}

// NoiseReport is the report of noise studies alone: the output folders of
// `perturb noise` in dirs, with figures drawn into out.
func NoiseReport(dirs []string, out string) (*Report, error) {
	rep := &Report{}
	var names []string
	for _, d := range dirs {
		f, err := noise.Read(d)
		if err != nil {
			return nil, err
		}
		secs, err := noiseSections(f, d, out)
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", d, err)
		}
		rep.Sections = append(rep.Sections, secs...)
		names = append(names, f.ConfigName)
	}
	rep.Title = "Report: floating-point noise, " + strings.Join(names, ", ")
	return rep, nil
}

// noiseSections draws f's plots into a folder of the report (out) and
// returns its sections: the scans, the width and depth sweeps with the
// √n conjecture's verdict, the per-layer gradient errors with the
// earlier-layers-noisier verdict, and low-precision training.
func noiseSections(f *noise.File, src, out string) ([]Section, error) {
	sub := sanitize("noise-" + f.ConfigName)
	figs, err := noise.Draw(filepath.Join(out, sub), f)
	if err != nil {
		return nil, fmt.Errorf("noise study %s: %w", src, err)
	}
	rel := func(name string) string { return filepath.Join(sub, name) }
	main := Section{
		Title: "Floating-point noise: " + f.ConfigName,
		Text: []string{
			fmt.Sprintf("From %s (`%s`): losses over %s of %s; %d directions, %d values of h from %.3g to %.3g; %.0f s.",
				filepath.Join(src, noise.FileName), f.Command, f.Examples, f.Data, f.Settings.Directions, f.Settings.Steps, f.Settings.HMin, f.Settings.HMax, f.Seconds),
			noise.Method,
		},
		Table: noise.ScanTable(f),
	}
	for _, names := range figs.Scans {
		for _, n := range names {
			main.Figures = append(main.Figures, rel(n))
		}
	}
	for _, s := range f.Scans {
		var f64, f32 *noise.Result
		for i := range s.Precisions {
			switch s.Precisions[i].Format {
			case precision.Float64:
				f64 = &s.Precisions[i]
			case precision.Float32:
				f32 = &s.Precisions[i]
			}
		}
		if f64 == nil || f32 == nil || !(f64.Floor > 0) || !(f32.Floor > 0) {
			continue
		}
		// The seed note: float32's second difference is noisy at about
		// 1e-8, float64's at about 1e-15 (order of magnitude each).
		ok := within(f32.Floor, 1e-8, 10) && within(f64.Floor, 1e-15, 10)
		main.Verdicts = append(main.Verdicts, Verdict{
			Claim:  fmt.Sprintf("the second difference of the full loss carries noise of about 1e-8 in float32 and 1e-15 in float64 (%s)", s.Model),
			Test:   "measured floors within a factor of 10 of 1e-8 and 1e-15",
			Result: fmt.Sprintf("float32 %.2g, float64 %.2g; crossovers h = %.2g and %.2g", f32.Floor, f64.Floor, f32.Crossover, f64.Crossover),
			Agrees: ok,
		})
		if f32.Dist.Kind != "too few points" && f32.Dist.Kind != "no noise-dominated h" {
			main.Verdicts = append(main.Verdicts, Verdict{
				Claim:  fmt.Sprintf("float32's noise is Gaussian, not quantisation (%s)", s.Model),
				Test:   "Jarque–Bera p ≥ 0.01 over the floor's errors, not mostly exact zeros or few distinct values",
				Result: fmt.Sprintf("%s: skewness %.2f, excess kurtosis %.2f, p = %.2g over %d errors", f32.Dist.Kind, f32.Dist.Skewness, f32.Dist.Kurtosis, f32.Dist.P, f32.Dist.N),
				Agrees: f32.Dist.Kind == "gaussian",
			})
		}
	}
	secs := []Section{main}
	if len(f.Sweeps) > 0 {
		sw := Section{
			Title: "Floating-point noise against width and depth: " + f.ConfigName,
			Text:  []string{"Noise floor ∝ size^exponent, fitted on log-log axes weighted by the floors' standard errors; 95% t-intervals."},
			Table: noise.SweepTable(f),
		}
		for i, s := range f.Sweeps {
			sw.Figures = append(sw.Figures, rel(figs.Sweeps[i]))
			for _, fit := range s.Fits {
				if fit.Format == precision.Float64 || math.IsNaN(fit.Lo) {
					continue
				}
				sw.Verdicts = append(sw.Verdicts, Verdict{
					Claim:  fmt.Sprintf("the %v noise floor grows like √%s (%s, %s %v)", fit.Format, s.Axis, s.Model, s.Axis, s.X),
					Test:   "95% interval of the fitted exponent contains 0.5",
					Result: fmt.Sprintf("exponent %.2f, 95%% [%.2f, %.2f]", fit.Exponent, fit.Lo, fit.Hi),
					Agrees: fit.Lo <= 0.5 && 0.5 <= fit.Hi,
				})
			}
		}
		secs = append(secs, sw)
	}
	if len(f.Grads) > 0 {
		g := Section{
			Title: "Gradient error per layer: " + f.ConfigName,
			Text:  []string{"Relative error |g_P − g_64| / |g_64| of each layer's gradient (weights and bias), layer 1 nearest the input."},
			Table: [][]string{{"model", "layer", "params", "|g_64|"}},
		}
		seen := map[precision.Format]bool{}
		for _, gr := range f.Grads {
			for _, p := range gr.Formats {
				if !seen[p] {
					seen[p] = true
					g.Table[0] = append(g.Table[0], p.String())
				}
			}
		}
		for _, gr := range f.Grads {
			name := gr.Model
			if gr.Width > 0 || gr.Depth > 0 {
				name = fmt.Sprintf("%s (width %d, depth %d)", gr.Model, gr.Width, gr.Depth)
			}
			for _, l := range gr.Layers {
				row := []string{name, fmt.Sprintf("%d %s", l.Index, l.Layer), fmt.Sprint(l.Params), fmt.Sprintf("%.3g", l.Norm64)}
				for _, col := range g.Table[0][4:] {
					v := "—"
					for fi, p := range gr.Formats {
						if p.String() == col {
							v = fmt.Sprintf("%.3g", l.RelErr[fi])
						}
					}
					row = append(row, v)
				}
				g.Table = append(g.Table, row)
			}
			if len(gr.Layers) < 2 {
				continue
			}
			first, last := gr.Layers[0], gr.Layers[len(gr.Layers)-1]
			for fi, p := range gr.Formats {
				g.Verdicts = append(g.Verdicts, Verdict{
					Claim:  fmt.Sprintf("earlier layers' gradients are noisier (%s, %v)", name, p),
					Test:   "relative error of layer 1 above that of the last layer",
					Result: fmt.Sprintf("layer 1 %.2g, layer %d %.2g", first.RelErr[fi], last.Index, last.RelErr[fi]),
					Agrees: first.RelErr[fi] > last.RelErr[fi],
				})
			}
		}
		g.Figures = append(g.Figures, rel(figs.Grads))
		secs = append(secs, g)
	}
	if t := f.Training; t != nil {
		tr := Section{
			Title: "Training in low precision: " + f.ConfigName,
			Text: []string{fmt.Sprintf("%s from init %d: SGD with N = %d, B = %d, %d epoch(s), %d trials per η, trained in float64 and in each precision from the same start and training sets; drift |θ_P − θ_64| against the SGD noise η·√(T·tr C/B), tr C = %.4g at θ0; test loss in float64 over %d examples.",
				t.Model, t.Init, t.N, t.Batch, t.Epochs, t.Trials, t.TrC, t.Examples)},
			Table:   [][]string{{"precision", "η", "T", "weight drift", "test-loss drift", "SGD noise", "drift / noise"}},
			Figures: []string{rel(figs.Training)},
		}
		for _, p := range t.Points {
			tr.Table = append(tr.Table, []string{p.Format.String(), fmt.Sprintf("%g", p.Eta), fmt.Sprint(p.T), fmt.Sprintf("%.3g", p.WeightDrift),
				fmt.Sprintf("%.3g", p.LossDrift), fmt.Sprintf("%.3g", p.NoiseScale), fmt.Sprintf("%.3g", p.Ratio)})
		}
		secs = append(secs, tr)
	}
	return secs, nil
}

// within reports whether x is within a factor k of want.
func within(x, want, k float64) bool { return x >= want/k && x <= want*k }
