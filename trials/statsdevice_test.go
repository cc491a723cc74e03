package trials

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudaemu"
	"github.com/perturb/perturb/nets/data"
)

// statsOn returns every group's statistics of the logistic model at init
// 2 (40 groups of four blocks of 5 samples, 2 workers) and the Taylor
// coefficients of the first sgd trial, on dev (nil: the CPU path, with
// tape the jets on gorgonia's TapeMachine) for a config of dtype dt.
func statsOn(t *testing.T, pool *data.Pool, dt string, dev kernels.Device, tape bool) ([][]float64, [4]float64) {
	t.Helper()
	text := strings.Replace(base, "inits = [0, 2]", "inits = [2]", 1)
	text = strings.Replace(text, `dtype = "float64"`, `dtype = "`+dt+`"`, 1)
	c := mustConfig(t, text)
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	r.tapeJets = tape
	if dev != nil {
		if err := r.UseDevice(dev); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	vals, err := r.StatsGroups(context.Background(), "logistic", 2, 40, 5, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	co, err := r.Taylor(Plan(c)[0])
	if err != nil {
		t.Fatal(err)
	}
	return vals, co
}

// compareStats checks that two runs' group values and Taylor coefficients
// agree to tol, relative to the largest magnitude of each statistic over
// the groups (single groups' values can be near zero), and returns the
// largest such difference.
func compareStats(t *testing.T, what string, a, b [][]float64, ca, cb [4]float64, tol float64) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d groups against %d", what, len(a), len(b))
	}
	worst := 0.0
	for s := range a[0] {
		scale := 0.0
		for g := range a {
			scale = math.Max(scale, math.Abs(a[g][s]))
		}
		for g := range a {
			d := math.Abs(a[g][s]-b[g][s]) / math.Max(scale, 1e-300)
			if !(d <= tol) {
				t.Fatalf("%s: group %d statistic %d: %.17g against %.17g (%.2g relative)", what, g, s, a[g][s], b[g][s], d)
			}
			worst = math.Max(worst, d)
		}
	}
	for i := range ca {
		d := math.Abs(ca[i]-cb[i]) / math.Max(math.Abs(ca[i]), 1e-300)
		if !(d <= tol) {
			t.Fatalf("%s: Taylor coefficient %d: %.17g against %.17g (%.2g relative)", what, i, ca[i], cb[i], d)
		}
		worst = math.Max(worst, d)
	}
	return worst
}

// TestStatsDevicePathMatchesCPU estimates the statistics and a Taylor
// prediction of the logistic model (float64) through the device path on
// the CPU twin and through the CPU path (both the jets compiled by the
// walker, graph.NewDeviceJets, on one goroutine and on the CPU device's
// share of the CPUs) against the jets on gorgonia's TapeMachine, the
// reference: every group's values agree to 1e-10.
func TestStatsDevicePathMatchesCPU(t *testing.T) {
	pool := smallPool(t, 40)
	want, cw := statsOn(t, pool, "float64", nil, true)
	for _, tc := range []struct {
		what string
		dev  kernels.Device
	}{{"device path", kernels.CPU[float64]{}}, {"CPU path", nil}} {
		got, cg := statsOn(t, pool, "float64", tc.dev, false)
		worst := compareStats(t, tc.what+" against the TapeMachine", want, got, cw, cg, 1e-10)
		t.Logf("%s: %d groups × %d statistics and 4 Taylor coefficients: largest relative difference %.2g", tc.what, len(want), len(want[0]), worst)
	}
}

// TestStatsCUDAEmulation estimates the float32 statistics and a Taylor
// prediction through the device path on perturb.cu's kernels compiled
// for the CPU (kernels/cudaemu) and on the exact float32 CPU twin: they
// agree to float32 rounding (the estimators difference values that are
// themselves float32).
func TestStatsCUDAEmulation(t *testing.T) {
	emu, err := cudaemu.Open(cudaemu.Options{SMs: 1, Workers: 1})
	if errors.Is(err, cudaemu.ErrNoCompiler) {
		t.Skipf("CUDA emulation skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	pool := smallPool(t, 40)
	want, cw := statsOn(t, pool, "float32", kernels.NewExactCPU(kernels.F32), false)
	got, cg := statsOn(t, pool, "float32", emu, false)
	worst := compareStats(t, "CUDA emulation against the exact CPU twin", want, got, cw, cg, 1e-4)
	t.Logf("%s: largest relative difference %.2g", emu.Name(), worst)
}
