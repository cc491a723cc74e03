package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/results"
)

// fakeGPU makes the "GPU" the CPU twin in float32 (or none) for a test.
func fakeGPU(t *testing.T, dev kernels.Device) {
	t.Helper()
	old := gpuOpener
	gpuOpener = func() (kernels.Device, string) {
		if dev == nil {
			return nil, "no usable GPU: cuInit: CUresult 100: no CUDA-capable device"
		}
		return dev, ""
	}
	t.Cleanup(func() { gpuOpener = old })
}

// TestRunDevice runs perturb run with --device gpu and auto against a fake
// GPU (the float32 CPU twin): the one-line message says where the trials
// run, and the stored results equal those of --device cpu to float32
// rounding; a float64 config, or no GPU, is an error with --device gpu and
// a fallback with auto.
func TestRunDevice(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg32 := write(t, dir, "tiny32.toml", strings.Replace(tiny, `dtype = "float64"`, `dtype = "float32"`, 1))
	cfg64 := write(t, dir, "tiny64.toml", tiny)
	run := func(dev kernels.Device, args ...string) (int, string) {
		fakeGPU(t, dev)
		code, _, stderr := perturb(t, append([]string{"run"}, args...)...)
		return code, stderr
	}
	cpuOut, gpuOut := filepath.Join(dir, "cpu"), filepath.Join(dir, "gpu")
	if code, stderr := run(nil, cfg32, "--out", cpuOut, "--k", "1", "--device", "cpu"); code != 0 {
		t.Fatalf("--device cpu exited %d: %s", code, stderr)
	}
	code, stderr := run(kernels.CPU[float32]{}, cfg32, "--out", gpuOut, "--k", "1", "--device", "gpu")
	if code != 0 || !strings.Contains(stderr, "device: GPU cpu float32 (--device gpu): image-model trials") {
		t.Fatalf("--device gpu exited %d: %s", code, stderr)
	}
	compareRunDirs(t, cpuOut, gpuOut, 1e-5)

	for _, tc := range []struct {
		name string
		dev  kernels.Device
		args []string
		code int
		want string
	}{
		{"float64 gpu", kernels.CPU[float32]{}, []string{cfg64, "--device", "gpu"}, 1, "config tiny is float64 and the GPU cpu float32 computes in float32"},
		{"float64 auto", kernels.CPU[float32]{}, []string{cfg64, "--device", "auto"}, 0, "device: CPU (config tiny is float64, the GPU cpu float32 computes in float32; GPU left idle)"},
		{"no GPU gpu", nil, []string{cfg32, "--device", "gpu"}, 1, "--device gpu: no usable GPU: cuInit: CUresult 100"},
		{"no GPU auto", nil, []string{cfg32, "--device", "auto"}, 0, "device: CPU (no usable GPU: cuInit: CUresult 100"},
		{"bad mode", nil, []string{cfg32, "--device", "tpu"}, 2, `--device "tpu": want auto, cpu or gpu`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			code, stderr := run(tc.dev, append(tc.args, "--out", out, "--k", "1")...)
			if (code == 0) != (tc.code == 0) || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant %q", code, tc.code, stderr, tc.want)
			}
		})
	}
}

// TestStatsDevice runs perturb stats and perturb taylor with --device
// gpu against fake GPUs: the float64 CPU twin (its results equal those of
// --device cpu to 1e-10) and the float32 one, which a float64 config
// leaves idle, staying on the CPU with a message.
func TestStatsDevice(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "tiny.toml", tiny)
	statsOf := func(dev kernels.Device, mode, want string) *stats.File {
		t.Helper()
		fakeGPU(t, dev)
		out := filepath.Join(dir, mode+fmt.Sprint(dev != nil))
		code, _, stderr := perturb(t, "stats", cfg, "--out", out, "--samples", "256", "--block", "8", "--workers", "2", "--device", mode)
		if code != 0 || !strings.Contains(stderr, want) {
			t.Fatalf("stats --device %s exited %d, stderr:\n%s\nwant %q", mode, code, stderr, want)
		}
		f, err := stats.ReadFile(filepath.Join(out, stats.FileName))
		if err != nil {
			t.Fatal(err)
		}
		code, _, stderr = perturb(t, "taylor", cfg, "--stats", out, "--sets", "2", "--workers", "2", "--device", mode)
		if code != 0 || (dev != nil && !strings.Contains(stderr, strings.Replace(want, "the estimators' jets", "the jets", 1))) {
			t.Fatalf("taylor --device %s exited %d, stderr:\n%s", mode, code, stderr)
		}
		return f
	}
	want := statsOf(nil, "cpu", "")
	got := statsOf(kernels.CPU[float64]{}, "gpu", "device: GPU cpu float64 (--device gpu): the estimators' jets")
	worst := 0.0
	for i, e := range want.Entries {
		for j, w := range e.Estimates {
			g := got.Entries[i].Estimates[j]
			d := math.Abs(w.Value-g.Value) / math.Max(math.Abs(w.Value), 1e-300)
			if g.Name != w.Name || !(d <= 1e-10) {
				t.Fatalf("%s: %s %.17g on the device, %s %.17g on the CPU", e.Model, g.Name, g.Value, w.Name, w.Value)
			}
			worst = max(worst, d)
		}
	}
	t.Logf("%d estimates: largest relative difference %.2g", len(want.Entries[0].Estimates), worst)
	statsOf(kernels.CPU[float32]{}, "gpu", "device: CPU (config tiny is float64, the GPU cpu float32 computes in float32; GPU left idle)")
	fakeGPU(t, nil)
	if code, _, stderr := perturb(t, "stats", cfg, "--device", "gpu"); code == 0 || !strings.Contains(stderr, "CUresult 100") {
		t.Fatalf("--device gpu without a GPU: exit %d, %s", code, stderr)
	}
}

// compareRunDirs checks that two run directories hold the same trials with
// the same status and losses equal to relative tolerance tol.
func compareRunDirs(t *testing.T, a, b string, tol float64) {
	t.Helper()
	_, ra, err := results.ReadRows(filepath.Join(a, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, rb, err := results.ReadRows(filepath.Join(b, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(ra) == 0 || len(ra) != len(rb) {
		t.Fatalf("%s holds %d rows, %s %d", a, len(ra), b, len(rb))
	}
	byKey := map[results.Key]results.Row{}
	for _, r := range rb {
		byKey[r.Key()] = r
	}
	worst := 0.0
	for _, x := range ra {
		y, ok := byKey[x.Key()]
		if !ok || x.Status != y.Status {
			t.Fatalf("%v: status %q, other run %q (found %v)", x.Key(), x.Status, y.Status, ok)
		}
		for _, p := range [][2]float64{{x.TestLoss, y.TestLoss}, {x.TrainLoss, y.TrainLoss}, {x.InitTestLoss, y.InitTestLoss}} {
			d := math.Abs(p[0]-p[1]) / math.Abs(p[0])
			if !(d <= tol) {
				t.Fatalf("%v: losses %v and %v differ by %.2g relative", x.Key(), p[0], p[1], d)
			}
			worst = max(worst, d)
		}
	}
	t.Logf("%d rows, largest relative loss difference %.2g", len(ra), worst)
}
