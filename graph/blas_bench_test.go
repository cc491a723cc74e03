package graph

import (
	kblas "github.com/perturb/perturb/nets/blas"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// BenchmarkSgemm2048 measures one 2048³ float32 product through blas32 with
// the registered BLAS (nets/blas.Name) and reports GFLOP/s (2·2048³ per product).
func BenchmarkSgemm2048(b *testing.B) {
	const n = 2048
	a, c, d := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%13) - 6.5 // no zeros: gonum skips them
		c[i] = float32(i%11) - 5.5
	}
	impl := blas32.Implementation()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		impl.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, c, n, 0, d, n)
	}
	b.ReportMetric(2*n*n*n/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
	b.Logf("%s BLAS", kblas.Name())
}
