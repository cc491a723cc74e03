package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// TestDeviceEvalBitwise checks that the float32 test loss on kernels.CPU
// does not depend, bitwise, on the shared first-layer input (sharedInput
// against K gathered copies), on the number of trials evaluated together
// (K = 1 against K = 5) or on the number of workers (1 against 3); that
// the chunk length changes it only by float32 rounding; and that it agrees
// with the float64 device to float32 accuracy.
func TestDeviceEvalBitwise(t *testing.T) {
	d32 := walkData(tensor.Float32, 77)
	d64 := walkData(tensor.Float64, 77)
	for _, name := range []string{"logistic", "convnet"} {
		arch, err := nets.New(name, 1, 28, 28, 10)
		if err != nil {
			t.Fatal(err)
		}
		const k = 5
		_, theta := peTrials(arch, k, true, rand.New(rand.NewPCG(5, 6)))
		run := func(d *Data, dt kernels.DType, k, chunk int, share bool, workers int) ([]float64, []float64) {
			t.Helper()
			defer func(s bool, w int) { evalShareInput = s; kernels.SetWorkers(w) }(evalShareInput, kernels.SetWorkers(workers))
			evalShareInput = share
			dd, err := UploadData(kernels.NewCPU(dt), d)
			if err != nil {
				t.Fatal(err)
			}
			defer dd.Close()
			ev, err := NewDeviceEval(arch, dd, k, chunk)
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			if share && ev.lanes[0][0].shared == nil {
				t.Fatalf("%s: the evaluation does not share its input", name)
			}
			loss, acc := make([]float64, k), make([]float64, k)
			if err := ev.TestLoss(theta[:k], loss, acc); err != nil {
				t.Fatal(err)
			}
			return loss, acc
		}
		wl, wa := run(d32, kernels.F32, k, 30, true, 2)
		same := func(what string, l, a []float64) {
			t.Helper()
			for i := range l {
				if l[i] != wl[i] || a[i] != wa[i] {
					t.Fatalf("%s %s trial %d: loss %v acc %v, want %v %v (bitwise)", name, what, i, l[i], a[i], wl[i], wa[i])
				}
			}
		}
		l, a := run(d32, kernels.F32, k, 30, false, 2)
		same("K copies", l, a)
		l, a = run(d32, kernels.F32, k, 30, true, 1)
		same("1 worker", l, a)
		l, a = run(d32, kernels.F32, k, 30, true, 3)
		same("3 workers", l, a)
		// The chunk length changes the shapes of the BLAS calls, and
		// OpenBLAS's rounding with them: a few float32 ulp per example.
		l, a = run(d32, kernels.F32, k, 77, true, 2)
		for i := range l {
			if math.Abs(l[i]-wl[i]) > 1e-6*math.Max(1, wl[i]) {
				t.Errorf("%s trial %d: loss %v in one chunk, %v in chunks of 30", name, i, l[i], wl[i])
			}
		}
		l, a = run(d32, kernels.F32, 1, 30, true, 2)
		same("K=1", l, a)
		l, a = run(d64, kernels.F64, k, 30, true, 2)
		for i := range l {
			if math.Abs(l[i]-wl[i]) > 1e-5*math.Max(1, l[i]) || math.Abs(a[i]-wa[i]) > 2.0/77 {
				t.Errorf("%s trial %d: float32 loss %v acc %v, float64 %v %v", name, i, wl[i], wa[i], l[i], a[i])
			}
		}
	}
}
