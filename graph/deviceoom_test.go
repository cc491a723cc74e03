package graph

import (
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// programElements is the device memory, in elements, of a gradient
// program for k trials of b samples of arch (measured on the CPU twin).
func programElements(t *testing.T, arch *nets.Arch, d *Data, k, b int) int64 {
	t.Helper()
	dev := kernels.Count(kernels.NewCPU(kernels.F64))
	dd, err := UploadData(dev, d)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	base := dev.Stats().Live
	n, err := NewDeviceNet(arch, dd, k, b, BatchGrad)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	return dev.Stats().Live - base
}

// TestDeviceOutOfMemoryHalves checks the out-of-memory path: on a device
// with room for the program of about 2 trials, a DeviceBackend of capacity
// 8 fails the 8-trial call with kernels.ErrOutOfMemory and lowers its
// capacity, so the runner's retry with halves (emulated here) succeeds
// with programs the device can hold, and every trial's loss and gradient
// equal bitwise those computed without a limit. DeviceTestLoss halves its
// capacity by itself and returns the same losses.
func TestDeviceOutOfMemoryHalves(t *testing.T) {
	const k, b = 8, 3
	d := walkData(tensor.Float64, 30)
	arch, err := nets.New("convnet", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	theta, _, pts := backendCase(t, arch, d, k, b, 5)
	np := arch.NumParams()

	free, err := UploadData(kernels.NewCPU(kernels.F64), d)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewDeviceBackend(arch, free, k)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	wantLoss, wantGrad := make([]float64, k), zeros(k, np)
	if err := ref.Grad(theta, pts, wantLoss, wantGrad); err != nil {
		t.Fatal(err)
	}

	two := programElements(t, arch, d, 2, b)
	four := programElements(t, arch, d, 4, b)
	if four <= two*3/2 {
		t.Fatalf("program memory does not grow with the trials (%d elements for 2, %d for 4): the test cannot tell the capacities apart", two, four)
	}
	counted := kernels.Count(kernels.NewCPU(kernels.F64))
	dd0, err := UploadData(counted, d)
	if err != nil {
		t.Fatal(err)
	}
	data := counted.Stats().Live
	dd0.Close()
	dev := kernels.Limit(kernels.NewCPU(kernels.F64), data+two*3/2)
	dd, err := UploadData(dev, d)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	be, err := NewDeviceBackend(arch, dd, k)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()

	loss, grad := make([]float64, k), zeros(k, np)
	var run func(lo, hi int) error
	run = func(lo, hi int) error { // the runner's runSplitting, in short
		err := be.Grad(theta[lo:hi], pts[lo:hi], loss[lo:hi], grad[lo:hi])
		if err == nil || hi-lo == 1 {
			return err
		}
		if !errors.Is(err, kernels.ErrOutOfMemory) {
			t.Errorf("trials %d..%d: %v, want an error wrapping kernels.ErrOutOfMemory", lo, hi, err)
		}
		h := (lo + hi) / 2
		if err := run(lo, h); err != nil {
			return err
		}
		return run(h, hi)
	}
	if err := run(0, k); err != nil {
		t.Fatalf("halving down to single trials did not fit: %v", err)
	}
	if dev.Failures() == 0 || be.Cap > 2 {
		t.Errorf("%d allocations refused, capacity %d: the limit did not bite as planned", dev.Failures(), be.Cap)
	}
	for i := range theta {
		if loss[i] != wantLoss[i] {
			t.Errorf("trial %d: loss %v after halving, %v without a limit", i, loss[i], wantLoss[i])
		}
		for j := range grad[i] {
			if grad[i][j] != wantGrad[i][j] {
				t.Fatalf("trial %d: gradient[%d] %v after halving, %v without a limit", i, j, grad[i][j], wantGrad[i][j])
			}
		}
	}

	// The test loss lowers its own capacity.
	refEval, err := NewDeviceTestLoss(arch, free, k, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer refEval.Close()
	wl, wa := make([]float64, k), make([]float64, k)
	if err := refEval.TestLoss(theta, wl, wa); err != nil {
		t.Fatal(err)
	}
	be.Close()
	ev, err := NewDeviceTestLoss(arch, dd, k, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	gl, ga := make([]float64, k), make([]float64, k)
	if err := ev.TestLoss(theta, gl, ga); err != nil {
		t.Fatalf("test loss under the limit: %v", err)
	}
	if ev.Cap == k {
		t.Errorf("test loss kept its capacity %d under a limit of %d elements", ev.Cap, data+two*3/2)
	}
	for i := range theta {
		if gl[i] != wl[i] || ga[i] != wa[i] {
			t.Errorf("trial %d: test loss %v, accuracy %v under the limit; %v, %v without", i, gl[i], ga[i], wl[i], wa[i])
		}
	}
}
