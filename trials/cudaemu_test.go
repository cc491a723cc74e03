package trials

import (
	"errors"
	"fmt"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudaemu"
)

// TestCUDAEmulationTrialPath runs the float32 sweep of
// TestDevicePathMatchesCPU (logistic and convnet, sgd and gd, three
// learning rates: training, initial and final test loss, train loss)
// through the device path twice: on perturb.cu's kernels compiled for the
// CPU (kernels/cudaemu, launched as the GPU device launches them) and on
// the float32 CPU twin. Every row must be the same bit for bit.
func TestCUDAEmulationTrialPath(t *testing.T) {
	emu, err := cudaemu.Open(cudaemu.Options{SMs: 1, Workers: 1})
	if errors.Is(err, cudaemu.ErrNoCompiler) {
		t.Skipf("CUDA emulation skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	pool := smallPool(t, 30)
	c := mustConfig(t, fmt.Sprintf(deviceConfig, "float32"))
	want := runOn(t, c, pool, kernels.NewExactCPU(kernels.F32), Settings{Workers: 2})
	got := runOn(t, c, pool, emu, Settings{Workers: 2})
	if len(got) != len(want) {
		t.Fatalf("%d rows on the emulator, %d on the CPU twin", len(got), len(want))
	}
	for key, a := range want {
		b, ok := got[key]
		if !ok {
			t.Fatalf("%v: no emulator row", key)
		}
		if !sameRow(a, b) {
			t.Errorf("%v differs:\nCPU twin %+v\nemulated %+v", key, a, b)
		}
	}
	t.Logf("%d rows equal bit for bit on %s and the CPU twin", len(want), emu.Name())
}
