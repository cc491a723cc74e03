package report

import (
	"bytes"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/study/noise"
)

// noiseStudy measures a small noise study (a scan, a width sweep, per-layer
// gradients and low-precision training of a tiny MLP on random 6×6
// images) and writes it into dir.
func noiseStudy(t *testing.T, dir string) *noise.File {
	t.Helper()
	a, err := nets.NewSized("mlp", 1, 6, 6, 10, nets.Size{Width: 8, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := a.Init(1)
	var theta []float64
	for _, p := range v {
		theta = append(theta, p...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200
	ex := noise.Examples{X: make([]float64, n*36), Y: make([]uint8, n), Desc: "200 random images"}
	for i := range ex.X {
		ex.X[i] = r.NormFloat64()
	}
	for i := range ex.Y {
		ex.Y[i] = uint8(r.IntN(10))
	}
	formats := []precision.Format{precision.Float64, precision.Float32, precision.BFloat16}
	set := noise.Settings{Directions: 3, Steps: 16, HMin: 1e-8, Precisions: formats}
	sc, err := noise.Run(a, 1, theta, ex, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.Width, sc.Depth = 8, 2
	sw, err := noise.RunSweep("mlp", "width", 2, []int{4, 8, 16}, [3]int{1, 6, 6}, 10, 1, ex,
		noise.Settings{Directions: 3, Steps: 10, HMin: 1e-8, HMax: 1e-2, Precisions: formats[:2]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := noise.RunGrads(a, 1, theta, ex, formats, 0, noise.EngineAuto)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := noise.RunTraining(a, theta, ex, ex, noise.TrainSettings{Seed: 1, Init: 1, N: 4, Batch: 2, Epochs: 1, Etas: []float64{0.1},
		Trials: 1, Formats: []precision.Format{precision.Float32}, Checkpoints: []int{1}, TrCExamples: 20})
	if err != nil {
		t.Fatal(err)
	}
	f := &noise.File{ConfigName: "noise-study", Data: "random", Examples: ex.Desc, Command: "perturb noise test.toml", Settings: set,
		Scans: []*noise.Scan{sc}, Sweeps: []*noise.Sweep{sw}, Grads: []*noise.Grads{gr}, Training: tr}
	if err := noise.Write(dir, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestNoiseSections renders a run's stored noise study into report
// sections: the tables must hold the study's numbers, every figure must
// be a PNG that decodes, and the verdicts must follow from the numbers.
func TestNoiseSections(t *testing.T) {
	run := t.TempDir()
	f := noiseStudy(t, filepath.Join(run, NoiseDir))
	cfg, err := config.Parse("test.toml", sharpTestConfig)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(run, "report")
	b := &builder{run: &Run{Dir: run, Config: cfg}, dir: out}
	if err := b.noise(); err != nil {
		t.Fatal(err)
	}
	if len(b.sections) != 4 {
		t.Fatalf("%d sections, want scans, sweep, gradients and training", len(b.sections))
	}
	scan := b.sections[0]
	if scan.Title != "Floating-point noise: noise-study" || len(scan.Table) != 1+3 {
		t.Fatalf("scan section %q, %d table rows", scan.Title, len(scan.Table))
	}
	f32 := f.Scans[0].Precisions[1]
	if row := scan.Table[2]; row[3] != "float32" || row[7] != fmt.Sprintf("%.2g", f32.Floor) || row[13] != f32.Dist.Kind {
		t.Errorf("float32 row %v, floor %v kind %s", row, f32.Floor, f32.Dist.Kind)
	}
	// The note's claim: float32 floor within 10× of 1e-8, float64's of 1e-15.
	f64 := f.Scans[0].Precisions[0]
	want := f32.Floor >= 1e-9 && f32.Floor <= 1e-7 && f64.Floor >= 1e-16 && f64.Floor <= 1e-14
	if len(scan.Verdicts) == 0 || scan.Verdicts[0].Agrees != want || !strings.Contains(scan.Verdicts[0].Result, fmt.Sprintf("float32 %.2g", f32.Floor)) {
		t.Errorf("verdicts %+v (floors %v, %v)", scan.Verdicts, f32.Floor, f64.Floor)
	}
	sweep := b.sections[1]
	fit := f.Sweeps[0].Fits[0]
	if len(sweep.Verdicts) != 1 || sweep.Verdicts[0].Agrees != (fit.Lo <= 0.5 && fit.Hi >= 0.5) ||
		sweep.Table[1][5] != fmt.Sprintf("%.3f ± %.3f", fit.Exponent, fit.SE) {
		t.Errorf("sweep section %+v, fit %+v", sweep, fit)
	}
	grads := b.sections[2]
	gl := f.Grads[0].Layers
	if len(grads.Table) != 1+len(gl) || grads.Table[0][5] != "bf16" || grads.Table[1][5] != fmt.Sprintf("%.3g", gl[0].RelErr[1]) {
		t.Errorf("gradient table %v", grads.Table)
	}
	if len(grads.Verdicts) != 2 || grads.Verdicts[1].Agrees != (gl[0].RelErr[1] > gl[len(gl)-1].RelErr[1]) {
		t.Errorf("gradient verdicts %+v", grads.Verdicts)
	}
	tr := b.sections[3]
	if len(tr.Table) != 1+len(f.Training.Points) || tr.Table[1][3] != fmt.Sprintf("%.3g", f.Training.Points[0].WeightDrift) {
		t.Errorf("training table %v", tr.Table)
	}
	var figs []string
	for _, s := range b.sections {
		figs = append(figs, s.Figures...)
	}
	if len(figs) != 1+2+1+1+1 {
		t.Errorf("figures %v: want the noise plot, 2 histograms, the sweep, gradients and training", figs)
	}
	for _, fig := range figs {
		raw, err := os.ReadFile(filepath.Join(out, fig))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", fig, err)
		}
		if bd := img.Bounds(); bd.Dx() < 200 || bd.Dy() < 150 {
			t.Errorf("%s: %v", fig, bd)
		}
	}
	var md bytes.Buffer
	if err := (&Report{Title: "t", Sections: b.sections}).Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "](noise-noise-study/noise-mlp-w8-d2-init1.png)") {
		t.Errorf("markdown has no link to the noise plot:\n%s", md.String())
	}
	// A run without a study gets no section; a broken study is an error.
	b2 := &builder{run: &Run{Dir: t.TempDir(), Config: cfg}, dir: out}
	if err := b2.noise(); err != nil || len(b2.sections) != 0 {
		t.Errorf("no study: %v, %d sections", err, len(b2.sections))
	}
	os.WriteFile(filepath.Join(run, NoiseDir, noise.FileName), []byte("{"), 0o644)
	if err := b.noise(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged noise.json: %v", err)
	}
}

// TestNoiseReport reads a noise output folder directly.
func TestNoiseReport(t *testing.T) {
	dir := t.TempDir()
	noiseStudy(t, dir)
	if !IsNoiseDir(dir) || IsNoiseDir(t.TempDir()) {
		t.Fatal("IsNoiseDir")
	}
	out := t.TempDir()
	rep, err := NoiseReport([]string{dir}, out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Title != "Report: floating-point noise, noise-study" || len(rep.Sections) != 4 {
		t.Errorf("report %q with %d sections", rep.Title, len(rep.Sections))
	}
	if _, err := os.Stat(filepath.Join(out, "noise-noise-study", "train-drift.png")); err != nil {
		t.Error(err)
	}
}
