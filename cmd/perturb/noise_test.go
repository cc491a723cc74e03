package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/study/noise"
)

const noiseCfg = `name = "noise-test"
seed = 1
dtype = "float64"

[data]
set = "fashion-mnist"

[trials]
count = 2
n = 4
etas = [0.1]

[[model]]
name = "mlp"
inits = [1]
width = 8
depth = 1

[[optimizer]]
name = "sgd"
batch = 2
`

// TestNoiseCommand runs perturb noise end to end on the real
// Fashion-MNIST with small settings: a scan, a width sweep, per-layer
// gradients and low-precision training, and checks the outputs and the
// numbers that must hold whatever the draw (float64's floor far below
// float32's, three fitted widths, drift positive).
func TestNoiseCommand(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "n.toml", noiseCfg)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := perturb(t, "noise", cfg, "--out", out, "--directions", "3", "--steps", "16", "--hmin", "1e-8",
		"--examples", "300", "--precisions", "float64,float32,bf16", "--widths", "4,8,16", "--sweep-examples", "200",
		"--sweep-steps", "8", "--sweep-directions", "3", "--sweep-precisions", "float64,float32", "--grads",
		"--train", "--train-trials", "1", "--train-examples", "100", "--train-precisions", "float32,bf16")
	if code != 0 {
		t.Fatalf("noise exited %d:\n%s%s", code, stdout, stderr)
	}
	f, err := noise.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Scans) != 1 || len(f.Sweeps) != 1 || len(f.Grads) != 1 || f.Training == nil {
		t.Fatalf("file: %d scans, %d sweeps, %d grads, training %v", len(f.Scans), len(f.Sweeps), len(f.Grads), f.Training != nil)
	}
	p := f.Scans[0].Precisions
	if len(p) != 3 || !(p[0].Floor > 0 && p[0].Floor < 1e-3*p[1].Floor) {
		t.Errorf("floors float64 %v, float32 %v", p[0].Floor, p[1].Floor)
	}
	// float32 is noise-dominated on the sweep's grid (1e-6 .. 1e-2) at
	// every width, so it is fitted over all three; float64 is fitted only
	// where its floor reaches the grid (through the walker it does for
	// these tiny mlps over 200 images, through nets/emulate it did not).
	sw := f.Sweeps[0]
	fitted := map[string]int{}
	for _, fit := range sw.Fits {
		fitted[fit.Format.String()] = fit.N
	}
	if sw.Axis != "width" || len(sw.Scans) != 3 || fitted["float32"] != 3 || len(sw.Fits) > 2 {
		t.Errorf("sweep %+v", sw)
	}
	if f.Training.Points[0].WeightDrift <= 0 {
		t.Errorf("training drift %+v", f.Training.Points[0])
	}
	for _, name := range []string{"noise.md", "noise-mlp-w8-d1-init1.png", "sweep-mlp-width.svg", "grad-layers.png", "train-drift.png", "train-drift.csv"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout, "mlp width sweep [4 8 16]: float32 floor ∝ width^") {
		t.Errorf("stdout:\n%s", stdout)
	}
	md, err := noise.Section(out)
	if err != nil || !strings.Contains(md, "### Training in low precision") {
		t.Errorf("section: %v\n%s", err, md)
	}
	// perturb report reads the noise folder directly.
	code, stdout, stderr = perturb(t, "report", out, "--out", filepath.Join(dir, "rep"))
	if code != 0 {
		t.Fatalf("report exited %d:\n%s%s", code, stdout, stderr)
	}
	rep, err := os.ReadFile(filepath.Join(dir, "rep", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Report: floating-point noise, noise-test", "## Floating-point noise against width and depth: noise-test",
		"](noise-noise-test/grad-layers.png)", fmt.Sprintf("| mlp (width 8, depth 1) | 1 | %d | float32 |", f.Scans[0].Params)} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report.md lacks %q:\n%s", want, rep)
		}
	}
}

func TestNoiseBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "n.toml", noiseCfg)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--precisions", "fp8"}, `--precisions: unknown precision "fp8"; use one of float64, float32, tf32, bf16, fp16`},
		{[]string{"--engine", "emulate"}, `--engine "emulate": the walker is the only engine (nets/emulate, the hand-written passes, is retired`},
		{[]string{"--precisions", "tf32", "--device", "tpu"}, `--device "tpu": want auto, cpu or gpu`},
		{[]string{"--widths", "8,x"}, `--widths "8,x": "x" is not a positive whole number`},
		{[]string{"--directions", "1"}, "1 directions: need at least 2"},
		{[]string{"--hmin", "1", "--hmax", "0.1"}, "--hmin 1 --hmax 0.1: h range [1, 0.1]: need 0 < hmin < hmax"},
		{[]string{"--steps", "1"}, "--steps 1 --hmin 1e-09 --hmax 0.1: 1 h values: need at least 2"},
		{[]string{"--widths", "4", "--sweep-directions", "1"}, "--sweep-directions 1 --sweep-steps 12"},
		{[]string{"--examples", "0"}, `--examples "0": use test, pool or a number of test images from 1 to 10000`},
	} {
		code, _, stderr := perturb(t, append([]string{"noise", cfg, "--out", filepath.Join(dir, "x")}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
	bad := write(t, dir, "b.toml", strings.Replace(noiseCfg, "depth = 1", "depth = 100", 1))
	code, _, stderr := perturb(t, "noise", bad)
	if code == 0 || !strings.Contains(stderr, `(key "model[0].depth"): depth 100 out of range; use 1 to 64`) {
		t.Errorf("depth 100: exit %d, %s", code, stderr)
	}
}
