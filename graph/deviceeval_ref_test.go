package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/fastmath"
)

// peTrials returns k parameter sets of a: initialisation j+1 moved by
// Gaussian noise so that biases and every layer matter, each as per-tensor
// values and as a flat vector, rounded to float32 when f32.
func peTrials(a *nets.Arch, k int, f32 bool, r *rand.Rand) (vals [][][]float64, flat [][]float64) {
	for j := 0; j < k; j++ {
		v, err := a.Init(j + 1)
		if err != nil {
			panic(err)
		}
		var fl []float64
		for i := range v {
			for n := range v[i] {
				v[i][n] += 0.3 * r.NormFloat64()
				if f32 {
					v[i][n] = float64(float32(v[i][n]))
				}
			}
			fl = append(fl, v[i]...)
		}
		vals = append(vals, v)
		flat = append(flat, fl)
	}
	return vals, flat
}

func peRelDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300)
}

// poolModels are the two models of the paper.
var poolModels = []string{"logistic", "convnet"}

// TestDeviceEvalMatchesGorgonia checks every trial's loss and accuracy
// through DeviceTestLoss on the CPU device against graph.Evaluator (the
// single-trial gorgonia graph on the TapeMachine), for every model family
// (logistic, the paper's convnet, the mlp, a depth-3 convnet, the CIFAR-10
// convnet shape) in both dtypes, over the whole pool (chunks of 8 and a
// remainder) and over a row list with repetitions, with and without the
// assembly kernels.
func TestDeviceEvalMatchesGorgonia(t *testing.T) {
	avx, avx512 := fastmath.HaveAVX2, fastmath.HaveAVX512
	defer func() { fastmath.HaveAVX2, fastmath.HaveAVX512 = avx, avx512 }()
	for _, portable := range []bool{false, true} {
		fastmath.HaveAVX2, fastmath.HaveAVX512 = avx && !portable, avx512 && !portable
		deviceEvalMatchesGorgonia(t, portable)
	}
}

func deviceEvalMatchesGorgonia(t *testing.T, portable bool) {
	cases := []struct {
		model   string
		size    nets.Size
		c, h, w int
		n       int
	}{
		{"logistic", nets.Size{}, 1, 28, 28, 45},
		{"convnet", nets.Size{}, 1, 28, 28, 45},
		{"mlp", nets.Size{Width: 16, Depth: 2}, 1, 28, 28, 45},
		{"convnet", nets.Size{Width: 6, Depth: 3}, 1, 28, 28, 29},
		{"convnet", nets.Size{}, 3, 32, 32, 13},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			name := fmt.Sprintf("%s-%d-%d/%s/portable=%v", tc.model, tc.size.Width, tc.size.Depth, dt, portable)
			if tc.c == 3 {
				name += "/cifar"
			}
			t.Run(name, func(t *testing.T) {
				a, err := nets.NewSized(tc.model, tc.c, tc.h, tc.w, 10, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(21, uint64(tc.n)))
				d := randomData(a, tc.n, r)
				f32 := dt == tensor.Float32
				kd, tol := kernels.F64, 1e-10
				if f32 {
					d, kd, tol = to32(d), kernels.F32, 1e-5
				}
				vals, flat := peTrials(a, 3, f32, r)
				dd, err := UploadData(kernels.NewCPU(kd), d)
				if err != nil {
					t.Fatal(err)
				}
				defer dd.Close()
				e, err := NewDeviceTestLoss(a, dd, 3, 8)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				ref := NewEvaluator(a, dt, 10)
				defer ref.Close()
				rows := []int{4, 0, 4, tc.n - 1, 7, 7, 7, 2, 11, 3, 9}
				for _, rs := range [][]int{nil, rows} {
					loss, acc := make([]float64, 3), make([]float64, 3)
					if err := e.Mean(flat, rs, loss, acc); err != nil {
						t.Fatal(err)
					}
					for j := range vals {
						wl, wa, err := ref.Mean(NewParams(a, vals[j], dt), d, rs)
						if err != nil {
							t.Fatal(err)
						}
						if rel := math.Abs(loss[j]-wl) / math.Abs(wl); rel > tol || acc[j] != wa {
							t.Errorf("rows %v trial %d: loss %.15g acc %v, gorgonia %.15g %v (rel %.2g)",
								rs != nil, j, loss[j], acc[j], wl, wa, rel)
						}
					}
				}
			})
		}
	}
}
