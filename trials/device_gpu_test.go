//go:build gpu

package trials

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudev"
	"github.com/perturb/perturb/trials/results"
)

// openGPU returns the CUDA device in debug mode (a synchronisation and an
// error check after every launch), wrapped to count its allocations, or
// skips the test when there is none.
func openGPU(t *testing.T) *kernels.Counting {
	t.Helper()
	if err := cudev.Probe(); err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
	os.Setenv("PERTURB_GPU_SYNC", "1")
	d, err := cudev.Open(0)
	if err != nil {
		t.Fatalf("open the GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return kernels.Count(d)
}

// TestGPUTrialPath is TestDevicePathMatchesCPU, TestDevicePathIndependentOfK,
// TestDevicePathDivergence and TestDevicePathMemory on the real GPU: the
// float32 sweep (logistic and convnet, sgd and gd, three learning rates)
// through the device path against the CPU path (same statuses, losses to
// 1e-3 relative: cuBLAS sums in other orders than the CPU, amplified by the
// steps; the largest difference is logged), bitwise the same rows for K =
// 1 and K = 64, divergence recorded, and no more device memory for five
// batches of a shape than for one, all freed at the end.
func TestGPUTrialPath(t *testing.T) {
	dev := openGPU(t)
	t.Logf("device %s", dev.Name())
	pool := smallPool(t, 30)
	c := mustConfig(t, fmt.Sprintf(deviceConfig, "float32"))
	cpu := runOn(t, c, pool, nil, Settings{Workers: 2})
	gpu := runOn(t, c, pool, dev, Settings{Workers: 2})
	worst := 0.0
	for key, a := range cpu {
		b, ok := gpu[key]
		if !ok {
			t.Fatalf("%v: no GPU row", key)
		}
		if a.Status != b.Status || a.DivergedStep != b.DivergedStep {
			t.Fatalf("%v: CPU status %q step %d, GPU %q step %d", key, a.Status, a.DivergedStep, b.Status, b.DivergedStep)
		}
		for _, p := range [][2]float64{{a.InitTestLoss, b.InitTestLoss}, {a.TestLoss, b.TestLoss}, {a.TrainLoss, b.TrainLoss}} {
			d := math.Abs(p[0]-p[1]) / math.Abs(p[0])
			if !(d <= 1e-3) {
				t.Errorf("%v: CPU loss %v, GPU %v (%.2g relative)", key, p[0], p[1], d)
			}
			worst = math.Max(worst, d)
		}
		if math.Abs(a.TestAcc-b.TestAcc) > 2.0/30 {
			t.Errorf("%v: CPU accuracy %v, GPU %v", key, a.TestAcc, b.TestAcc)
		}
	}
	t.Logf("%d trials: largest relative loss difference GPU vs CPU %.2g", len(cpu), worst)

	// K-independence on the GPU: the programs for 1 and for 64 trials.
	// cuBLAS chooses its algorithm by the batch count, so on the GPU a
	// trial's losses depend on K at float32 rounding (seen on an H200:
	// under 1e-7 relative), not bitwise as on the CPU.
	one := runOn(t, c, pool, dev, Settings{K: 1, Workers: 1})
	worstK := 0.0
	for key, a := range one {
		if d := rowDiff(t, "GPU K=1 against K=64", a, gpu[key]); !(d <= 1e-5) {
			t.Errorf("GPU K=1 and K=64 differ by %.2g relative for %v:\n%+v\n%+v", d, key, a, gpu[key])
		} else {
			worstK = math.Max(worstK, d)
		}
	}
	t.Logf("GPU K=1 against K=64: largest relative loss difference %.2g", worstK)

	// Divergence.
	div := mustConfig(t, strings.NewReplacer("etas = [0.02, 0.1, 0.4]", "etas = [0.1, 1e39]").Replace(fmt.Sprintf(deviceConfig, "float32")))
	for key, row := range runOn(t, div, pool, dev, Settings{Workers: 1}) {
		if want := map[bool]string{true: results.StatusDiverged, false: results.StatusOK}[row.Eta > 1]; row.Status != want {
			t.Errorf("%v: status %q, want %q", key, row.Status, want)
		}
	}

	// Memory: five batches of each shape allocate what one does.
	var stats [2]kernels.Stats
	for i, count := range []string{"count = 1", "count = 5"} {
		cc := mustConfig(t, strings.Replace(fmt.Sprintf(deviceConfig, "float32"), "count = 3", count, 1))
		before := dev.Stats()
		runOn(t, cc, pool, dev, Settings{K: 1, Workers: 1})
		after := dev.Stats()
		stats[i] = kernels.Stats{Allocs: after.Allocs - before.Allocs, Frees: after.Frees - before.Frees, Live: after.Live - before.Live}
		if stats[i].Live != 0 || stats[i].Allocs != stats[i].Frees {
			t.Errorf("%s: %d elements left allocated on the GPU", count, stats[i].Live)
		}
	}
	if stats[0].Allocs != stats[1].Allocs {
		t.Errorf("GPU allocations: %d for 1 batch per shape, %d for 5", stats[0].Allocs, stats[1].Allocs)
	}
	t.Logf("GPU allocations per run: %d (1 and 5 batches per shape); peak %d float32", stats[1].Allocs, dev.Stats().Peak)
}
