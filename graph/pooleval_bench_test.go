package graph

import (
	"fmt"
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

// peDenseFLOPs is 2·Σ_layers rows·in·out, the dense floating-point
// operations of the products of one example's forward pass (rows: output
// positions of a convolution, 1 for a dense layer).
func peDenseFLOPs(a *nets.Arch) float64 {
	p := a.Params
	if a.Name == "logistic" {
		return 2 * float64(p[0].Shape[0]*p[0].Shape[1])
	}
	out := func(n int) int { return (n-peKernel)/peStride + 1 }
	p1 := out(a.Height) * out(a.Width)
	p2 := out(out(a.Height)) * out(out(a.Width))
	return 2 * float64(p1*p[0].Size()+p2*p[2].Size()+p[4].Size()+p[6].Size())
}

// BenchmarkPoolEvaluator measures one TestLoss of K float32 trials over
// 70,000 Fashion-MNIST-shaped examples with the default options, and
// reports trials per second and the effective rate of the dense products.
// Run with -tags openblas for OpenBLAS.
func BenchmarkPoolEvaluator(b *testing.B) {
	for _, model := range nets.Names {
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
				b.ReportMetric(peDenseFLOPs(a)*float64(d.Len()*k)/sec/1e9, "GFLOP/s")
				b.ReportMetric(0, "ns/op")
				b.Logf("%s BLAS, chunk %d, %d workers", BLASName(), must(e.ChunkSize(k, d.Len())), e.Options().Workers)
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
