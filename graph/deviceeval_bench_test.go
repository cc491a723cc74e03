package graph

import (
	"fmt"
	kblas "github.com/perturb/perturb/nets/blas"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	netsdata "github.com/perturb/perturb/nets/data"
)

// BenchmarkDeviceEvalVsGemm measures, in one process (the machine is
// shared, so only ratios within one run are meaningful):
//
//   - gemm: a float32 2048³ product through the registered BLAS with one
//     BLAS thread per CPU (as perturb bench's gemm_gflops), best of 3,
//     before and after the evaluations;
//   - eval: the walker's test loss (NewDeviceTestLoss on kernels.CPU
//     float32) of K = 64 trials over the whole real Fashion-MNIST pool
//     (70,000 images), convnet and logistic, best of $PERTURB_BENCH_REPS
//     (default 2) (the hand-written pool evaluator it replaced is retired:
//     docs/engine.md keeps their last measurements side by side);
//
// and logs each rate in dense GFLOP/s (nets.Arch.DenseFLOPs per example)
// with the ratio to the gemm rate. Run it with
//
//	go test -tags openblas -run '^$' -bench DeviceEvalVsGemm -benchtime 1x ./graph/
//
// $PERTURB_EVAL_CHUNK sets the evaluation's chunk (default: the pool,
// which NewDeviceEval caps for the CPU's caches), $PERTURB_BENCH_POOL the
// number of examples (default all), $PERTURB_BENCH_MODELS the models
// (default convnet,logistic). Each line is also printed as it is
// measured. It skips without the data set.
func BenchmarkDeviceEvalVsGemm(b *testing.B) {
	pool, err := netsdata.LoadFashionMNIST("")
	if err != nil {
		b.Skipf("no Fashion-MNIST: %v", err)
	}
	n := min(envInt("PERTURB_BENCH_POOL", pool.Len()), pool.Len())
	d := &Data{X32: pool.Float32()[:n*pool.Dim()], Y: pool.Labels[:n], Dim: pool.Dim(), Classes: pool.Classes}
	chunk, reps := envInt("PERTURB_EVAL_CHUNK", n), envInt("PERTURB_BENCH_REPS", 2)
	const k = 64
	for b.Loop() {
		gemm0 := benchGemm2048()
		logf(b, "gemm 2048³ float32 (%s, %d threads): %.1f GFLOP/s", kblas.Name(), runtime.NumCPU(), gemm0)
		rates := map[string]float64{}
		models := []string{"convnet", "logistic"}
		if m := os.Getenv("PERTURB_BENCH_MODELS"); m != "" {
			models = strings.Split(m, ",")
		}
		for _, model := range models {
			a, err := nets.New(model, 1, 28, 28, 10)
			if err != nil {
				b.Fatal(err)
			}
			_, theta := peTrials(a, k, true, rand.New(rand.NewPCG(3, 4)))
			flops := a.DenseFLOPs() * float64(d.Len()*k)
			dd, err := UploadData(kernels.NewCPU(kernels.F32), d)
			if err != nil {
				b.Fatal(err)
			}
			ev, err := NewDeviceTestLoss(a, dd, k, chunk)
			if err != nil {
				b.Fatal(err)
			}
			chunk := ev.eval.lanes[0][0].rows
			loss, acc := make([]float64, k), make([]float64, k)
			sec := bestOf(reps, func() {
				if err := ev.TestLoss(theta, loss, acc); err != nil {
					b.Fatal(err)
				}
			})
			rates[model+" eval"] = flops / sec / 1e9
			logf(b, "%s walker eval K=%d chunk %d: %.2f s, %.1f GFLOP/s, loss[0] %.6f acc[0] %.4f", model, k, chunk, sec, flops/sec/1e9, loss[0], acc[0])
			ev.Close()
			dd.Close()
		}
		gemm1 := benchGemm2048()
		gemm := max(gemm0, gemm1)
		logf(b, "gemm again: %.1f GFLOP/s; ratios to the best gemm %.1f:", gemm1, gemm)
		for _, model := range models {
			name := model + " eval"
			logf(b, "  %-14s %6.1f GFLOP/s  %.3f of gemm", name, rates[name], rates[name]/gemm)
			b.ReportMetric(rates[name]/gemm, model+"_eval/gemm")
		}
		b.ReportMetric(gemm, "gemm_GFLOP/s")
	}
}

// logf logs to the benchmark and prints at once (the runs are long).
func logf(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// benchGemm2048 is the best of three float32 2048³ products through the
// registered BLAS with one thread per CPU, in GFLOP/s.
func benchGemm2048() float64 {
	const n = 2048
	mk := func() blas32.General {
		g := blas32.General{Rows: n, Cols: n, Stride: n, Data: make([]float32, n*n)}
		for i := range g.Data {
			g.Data[i] = float32(i%7) * 0.25
		}
		return g
	}
	a, bm, c := mk(), mk(), mk()
	prev := kblas.SetThreads(runtime.NumCPU())
	defer kblas.SetThreads(prev)
	sec := bestOf(3, func() { blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, bm, 0, c) })
	return 2 * n * n * n / sec / 1e9
}

// bestOf runs f n times (at least once) and returns the shortest time in
// seconds.
func bestOf(n int, f func()) float64 {
	best := 0.0
	for i := 0; i < max(n, 1); i++ {
		start := time.Now()
		f()
		if s := time.Since(start).Seconds(); i == 0 || s < best {
			best = s
		}
	}
	return best
}

// envInt is the integer in $name, else def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
