package noise

import (
	"os"
	"testing"
	"time"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/nets/precision"
)

// fashionTest returns the first n test images of the real Fashion-MNIST,
// skipping the test or benchmark when the dataset is not installed.
func fashionTest(tb testing.TB, n int) Examples {
	if _, err := os.Stat(data.DefaultFashionDir); err != nil {
		tb.Skipf("no Fashion-MNIST at %s", data.DefaultFashionDir)
	}
	p, err := data.Load("fashion-mnist", data.DefaultFashionDir)
	if err != nil {
		tb.Fatal(err)
	}
	x, dim := p.Float64(), p.Dim()
	from := p.Len() - 10000
	return Examples{X: x[from*dim : (from+n)*dim], Y: p.Labels[from : from+n]}
}

// BenchmarkScanConvnet times a noise scan of the paper's convnet (4
// directions × 10 h × 4 precisions over 1,000 test images, so 4 × 81
// evaluations) and reports it per image evaluation (ns/image-eval) and
// relative to a float32 evaluation of 8 unrelated parameter vectors timed
// in the same run (float32-evals: the scan's time in units of one float32
// parameter vector's evaluation), which is less sensitive to the load of
// the machine. The full default scan (10 directions × 40 h over the
// 10,000 test images) is 4 × 801 evaluations of 10 times as many images.
func BenchmarkScanConvnet(b *testing.B) {
	ex := fashionTest(b, 1000)
	a, err := nets.NewSized("convnet", 1, 28, 28, 10, nets.Size{})
	if err != nil {
		b.Fatal(err)
	}
	theta, _ := initVector(a, 1)
	s := Settings{Directions: 4, Steps: 10, Precisions: []precision.Format{precision.Float64, precision.Float32, precision.BFloat16, precision.Float16}}
	// The unit: float32 losses of 8 vectors far apart (nothing shared).
	e, _, err := NewEvaluator(EngineWalker, a, precision.Float32, ex.X, ex.Y, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	thetas := Directions(a, 1, 99, 8)
	for i := range thetas {
		for p := range thetas[i] {
			thetas[i][p] = theta[p] + thetas[i][p]
		}
	}
	dst := make([]float64, 8)
	var unit, scan time.Duration
	evals := 0
	for b.Loop() {
		t0 := time.Now()
		if err := e.Losses(thetas, dst); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		sc, err := Run(a, 1, theta, ex, s, nil)
		if err != nil {
			b.Fatal(err)
		}
		unit += t1.Sub(t0)
		scan += time.Since(t1)
		evals += sc.Evaluations
	}
	b.ReportMetric(float64(scan.Nanoseconds())/float64(evals*len(ex.Y)), "ns/image-eval")
	b.ReportMetric(scan.Seconds()/(unit.Seconds()/8), "float32-evals")
	b.ReportMetric(float64(evals)/float64(b.N), "evals/op")
}
