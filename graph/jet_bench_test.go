package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// BenchmarkJets measures one batched jet evaluation on Fashion-MNIST-shaped
// random examples (1×28×28, 10 classes), initialisation 1, per model and
// dtype: Coeffs for K = 16 directions × B = 16 samples (256 jets of order
// 3), the covectors of orders 1 and 2 for the same batch, and the
// per-sample covector of order 1 (64 samples, one direction each), on
// gorgonia's TapeMachine ("tape") and by the walker on the CPU device
// ("cpudev", NewDeviceJets). The ns/jet metric is the time per
// (direction, sample) pair.
func BenchmarkJets(b *testing.B) {
	cases := []struct {
		name  string
		k, n  int
		order int // −1: Coeffs
	}{
		{"coeffs", 16, 16, -1},
		{"covector1", 16, 16, 1},
		{"covector2", 16, 16, 2},
		{"persample1", 64, 1, 1},
	}
	for _, model := range nets.Names {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			for _, tc := range cases {
				for _, on := range []string{"tape", "cpudev"} {
					b.Run(fmt.Sprintf("%s/%v/%s/%s/K=%d/B=%d", model, dt, on, tc.name, tc.k, tc.n), func(b *testing.B) {
						a, _ := nets.New(model, 1, 28, 28, 10)
						r := rand.New(rand.NewPCG(1, 1))
						d := randomData(a, 1000, r)
						if dt == tensor.Float32 {
							d = to32(d)
						}
						vals, _ := a.Init(1)
						var theta []float64
						for _, v := range vals {
							theta = append(theta, v...)
						}
						dirs := make([][]float64, tc.k)
						rows := make([][]int, tc.k)
						for k := range dirs {
							dirs[k] = randomVec(len(theta), r)
							rows[k] = sampleRows(randomSamples(tc.n, d.Len(), r))
						}
						var j *Jets
						var err error
						if on == "tape" {
							j, err = NewJets(a, dt, d, tc.k, tc.n)
						} else {
							dd := kernels.F64
							if dt == tensor.Float32 {
								dd = kernels.F32
							}
							j, err = NewDeviceJets(a, dt, d, tc.k, tc.n, kernels.NewCPU(dd))
						}
						if err != nil {
							b.Fatal(err)
						}
						defer j.Close()
						out := make([][4]float64, tc.k*tc.n)
						cov := matrix(tc.k, len(theta))
						run := func() error {
							if tc.order < 0 {
								return j.Coeffs(theta, dirs, rows, out)
							}
							return j.Covector(tc.order, theta, dirs, rows, nil, cov)
						}
						if err := run(); err != nil { // compile outside the timing
							b.Fatal(err)
						}
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if err := run(); err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.k*tc.n), "ns/jet")
					})
				}
			}
		}
	}
}
