package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/fastmath"
)

// TestDeviceEvalBitwise checks that the float32 test loss on kernels.CPU
// does not depend, bitwise, on the shared first-layer input (sharedInput
// against K gathered copies), on the number of trials evaluated together
// (K = 1 against K = 5), on the number of workers (1 against 3) or on the
// chunk length (with AVX2: the micro-kernel's rounding does not depend on
// shapes); and that it agrees with the float64 device to float32
// accuracy.
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
		// Every product of the evaluation has a small side (channels,
		// classes, or the chunk itself), so it goes through the micro-kernel,
		// whose rounding does not depend on the shapes: the chunk length does
		// not change the result either.
		for _, c := range []int{7, 77} {
			if !fastmath.HaveAVX2 {
				break
			}
			l, a = run(d32, kernels.F32, k, c, true, 2)
			same(fmt.Sprintf("chunks of %d", c), l, a)
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

// TestDeviceEvalMean checks the mean over a list of pool rows (any order,
// with repeats) against the whole-pool test loss of a pool made of those
// rows: bitwise in float32 with AVX2 (per-example values do not depend on
// the chunk), with shared input and K copies, one and three workers; the
// remainder chunk's program is compiled on first use.
func TestDeviceEvalMean(t *testing.T) {
	d := walkData(tensor.Float32, 60)
	rows := []int{5, 59, 5, 0, 17, 33, 33, 33, 2, 41, 58, 12, 7, 7, 30, 1, 19, 44, 23}
	sub := &Data{Dim: d.Dim, Classes: d.Classes}
	for _, r := range rows {
		sub.X32 = append(sub.X32, d.X32[r*d.Dim:(r+1)*d.Dim]...)
		sub.Y = append(sub.Y, d.Y[r])
	}
	tol := 0.0
	if !fastmath.HaveAVX2 {
		tol = 1e-6
	}
	for _, name := range []string{"logistic", "convnet"} {
		arch, err := nets.New(name, 1, 28, 28, 10)
		if err != nil {
			t.Fatal(err)
		}
		const k = 3
		_, theta := peTrials(arch, k, true, rand.New(rand.NewPCG(7, 8)))
		// open returns a test loss of capacity k over d, closed at the
		// end of the test.
		open := func(d *Data) *DeviceTestLoss {
			t.Helper()
			dd, err := UploadData(kernels.NewCPU(kernels.F32), d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dd.Close() })
			ev, err := NewDeviceTestLoss(arch, dd, k, 8)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ev.Close() })
			return ev
		}
		eval := func(d *Data, rows []int, share bool, workers int) ([]float64, []float64) {
			t.Helper()
			defer func(s bool, w int) { evalShareInput = s; kernels.SetWorkers(w) }(evalShareInput, kernels.SetWorkers(workers))
			evalShareInput = share
			ev := open(d)
			loss, acc := make([]float64, k), make([]float64, k)
			if err := ev.Mean(theta[:k], rows, loss, acc); err != nil {
				t.Fatal(err)
			}
			if rows != nil { // a second call reuses the remainder's program
				l2, a2 := make([]float64, k), make([]float64, k)
				if err := ev.Mean(theta[:k], rows, l2, a2); err != nil {
					t.Fatal(err)
				}
				for i := range l2 {
					if l2[i] != loss[i] || a2[i] != acc[i] {
						t.Fatalf("%s: second call trial %d: %v %v, first %v %v", name, i, l2[i], a2[i], loss[i], acc[i])
					}
				}
			}
			return loss, acc
		}
		wl, wa := eval(sub, nil, true, 2)
		for _, c := range []struct {
			share   bool
			workers int
		}{{true, 1}, {true, 3}, {false, 2}} {
			l, a := eval(d, rows, c.share, c.workers)
			for i := range l {
				if math.Abs(l[i]-wl[i]) > tol*wl[i] || a[i] != wa[i] {
					t.Errorf("%s shared %v, %d workers, trial %d: mean over rows %v (acc %v), pool of those rows %v (%v)", name, c.share, c.workers, i, l[i], a[i], wl[i], wa[i])
				}
			}
		}
		// A short call (2 of a capacity of 3) runs an evaluation of exactly
		// 2 trials on the CPU, bitwise the padded one's values.
		ev := open(d)
		full, fa := make([]float64, k), make([]float64, k)
		short, sa := make([]float64, 2), make([]float64, 2)
		if err := ev.Mean(theta[:k], rows, full, fa); err != nil {
			t.Fatal(err)
		}
		if err := ev.Mean(theta[:2], rows, short, sa); err != nil {
			t.Fatal(err)
		}
		if ev.exact[2] == nil {
			t.Errorf("%s: a call of 2 trials did not use an evaluation of 2", name)
		}
		for i := range short {
			if short[i] != full[i] || sa[i] != fa[i] {
				t.Errorf("%s trial %d: %v %v in a call of 2, %v %v in a call of 3", name, i, short[i], sa[i], full[i], fa[i])
			}
		}
		if err := func() error {
			dd, err := UploadData(kernels.NewCPU(kernels.F32), d)
			if err != nil {
				return err
			}
			defer dd.Close()
			ev, err := NewDeviceEval(arch, dd, k, 8)
			if err != nil {
				return err
			}
			defer ev.Close()
			return ev.Mean(theta[:k], []int{3, 60}, make([]float64, k), make([]float64, k))
		}(); err == nil || !strings.Contains(err.Error(), "row 60 outside the pool of 60") {
			t.Errorf("%s: row outside the pool: error %v", name, err)
		}
	}
}
