package graph

import (
	"fmt"
	kblas "github.com/perturb/perturb/nets/blas"
	"github.com/perturb/perturb/nets/fastmath"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/perturb/perturb/nets"
)

var peBench struct {
	once sync.Once
	d    *Data
}

// peBenchData is 70,000 synthetic Fashion-MNIST-shaped float32 examples
// (standard-normal pixels, uniform labels), made once per test binary.
func peBenchData(a *nets.Arch) *Data {
	peBench.once.Do(func() {
		peBench.d = to32(randomData(a, 70000, rand.New(rand.NewPCG(1, 1))))
	})
	return peBench.d
}

// BenchmarkPoolEvaluator measures one TestLoss of K float32 trials over
// 70,000 Fashion-MNIST-shaped examples with the default options, and
// reports trials per second and the effective rate of the dense products.
// Run with -tags openblas for OpenBLAS.
func BenchmarkPoolEvaluator(b *testing.B) {
	for _, model := range poolModels {
		for _, k := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/float32/K=%d", model, k), func(b *testing.B) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				d := peBenchData(a)
				e, err := NewPoolEvaluator(a, d, PoolOptions{})
				if err != nil {
					b.Fatal(err)
				}
				_, flat := peTrials(a, k, true, rand.New(rand.NewPCG(3, 4)))
				loss, acc := make([]float64, k), make([]float64, k)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := e.TestLoss(flat, loss, acc); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(k)/sec, "trials/s")
				b.ReportMetric(a.DenseFLOPs()*float64(d.Len()*k)/sec/1e9, "GFLOP/s")
				b.Logf("%s BLAS, chunk %d, %d workers", kblas.Name(), peMust(e.ChunkSize(k, d.Len())), e.Options().Workers)
			})
		}
	}
}

// BenchmarkPoolEvaluatorKernels measures what the assembly kernels change,
// for 16 float32 trials: "fast" is the default (AVX2 tanh and exp, SSE
// patch copies), "portable" the pure-Go fallbacks (the rational tanh and
// math.Exp in float64, copy), "math" the portable path with math.Tanh.
func BenchmarkPoolEvaluatorKernels(b *testing.B) {
	for _, model := range poolModels {
		for _, variant := range []string{"fast", "portable", "math"} {
			b.Run(model+"/"+variant, func(b *testing.B) {
				avx, patch, ref := fastmath.HaveAVX2, peHavePatchCopy, peMathTanh32
				defer func() { fastmath.HaveAVX2, peHavePatchCopy, peMathTanh32 = avx, patch, ref }()
				if variant != "fast" {
					fastmath.HaveAVX2, peHavePatchCopy = false, false
				}
				peMathTanh32 = variant == "math"
				a, _ := nets.New(model, 1, 28, 28, 10)
				d := peBenchData(a)
				e, err := NewPoolEvaluator(a, d, PoolOptions{})
				if err != nil {
					b.Fatal(err)
				}
				const k = 16
				_, flat := peTrials(a, k, true, rand.New(rand.NewPCG(3, 4)))
				loss, acc := make([]float64, k), make([]float64, k)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := e.TestLoss(flat, loss, acc); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(k)/sec, "trials/s")
				b.ReportMetric(a.DenseFLOPs()*float64(d.Len()*k)/sec/1e9, "GFLOP/s")
			})
		}
	}
}

func peMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
