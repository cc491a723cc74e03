package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	kblas "github.com/perturb/perturb/nets/blas"
	"io"
	"math"
	"runtime"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

func init() {
	register(&command{
		name:  "bench",
		args:  "[--json] [--data DIR] [--k K] [--gemm N] [--device auto|cpu|gpu] [--device-k K]",
		short: "measure BLAS, batched and unbatched trial throughput",
		long: `Measures, in one process, on the real Fashion-MNIST pool (float32):

  gemm        an N×N×N float32 matrix product (default 2048) through the
              BLAS in use (OpenBLAS when built with -tags openblas, else
              gonum's pure Go) on every core, in GFLOP/s;
  batched     K trials (N = 10 training points, SGD with batch 1 for one
              epoch, T = 10, then the exact full-pool test loss) advanced
              together by the batched engine, in trials per second;
  unbatched   the same kind of trial run alone through the single-trial
              gorgonia graph and chunked gorgonia evaluator;
  eval        the batched test-loss evaluation of K trials, in dense
              GFLOP/s: the floating-point operations a dense forward pass
              over the pool needs (2·in·out per example per layer product),
              divided by the time taken (the better of two calls; it is
              the runner's test loss, the walker on the CPU device).

--json prints one object with gemm_gflops and, per model (logistic,
convnet), trials_per_s_batched, trials_per_s_unbatched, speedup and
eval_gflops; on a GPU (a gpu build with a usable device), "gpu" adds
cuBLAS SGEMM (gemm_gflops, gemm_gflops_tf32) and, per model,
trials_per_s_batched and eval_gflops measured on the device.`,
		run: benchCmd,
	})
}

// modelBench is one model's measurements.
type modelBench struct {
	K                    int     `json:"k"`
	TrialsPerSBatched    float64 `json:"trials_per_s_batched"`
	TrialsPerSUnbatched  float64 `json:"trials_per_s_unbatched"`
	Speedup              float64 `json:"speedup"`
	EvalGFLOPs           float64 `json:"eval_gflops"`
	EvalSeconds          float64 `json:"eval_seconds"`
	DenseFLOPsPerExample float64 `json:"dense_flops_per_example"`
	UnbatchedTrials      int     `json:"unbatched_trials"`
}

type benchReport struct {
	BLAS       string                 `json:"blas"`
	GemmN      int                    `json:"gemm_n"`
	GemmGFLOPs float64                `json:"gemm_gflops"`
	Models     map[string]*modelBench `json:"models"`
	// GPU holds the measurements on the GPU (--device gpu, or auto with a
	// usable device in a gpu build).
	GPU *deviceBench `json:"gpu,omitempty"`
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["bench"]
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object")
	dataDir := fs.String("data", "", "Fashion-MNIST folder (default: $PERTURB_FASHION_MNIST or the Debian folder)")
	k := fs.Int("k", 0, "trials per batch (default: the runner's choice)")
	deviceK := fs.Int("device-k", 256, "trials per program on the GPU (--device gpu)")
	n := fs.Int("gemm", 2048, "size of the square matrix product")
	device := deviceFlag(fs)
	if _, err := parse(c, fs, args, 0, stderr); err != nil {
		return err
	}
	dev, err := selectDevice(*device, stderr)
	if err != nil {
		return err
	}
	if dev != nil {
		defer dev.Close()
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	rep := benchReport{BLAS: kblas.Name(), GemmN: *n, Models: map[string]*modelBench{}}
	rep.GemmGFLOPs = benchGemm(*n)
	logf("gemm %d³ float32 (%s): %.1f GFLOP/s", *n, rep.BLAS, rep.GemmGFLOPs)
	pool, err := data.Load("fashion-mnist", *dataDir)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		init int
	}{{"logistic", 0}, {"convnet", 1}} {
		mb, err := benchModel(pool, m.name, m.init, *k, logf)
		if err != nil {
			return fmt.Errorf("bench %s: %w", m.name, err)
		}
		rep.Models[m.name] = mb
	}
	if dev != nil {
		if rep.GPU, err = benchDevice(dev, pool, 4096, *deviceK, logf); err != nil {
			return fmt.Errorf("bench on %s: %w", dev.Name(), err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "BLAS %s: gemm %d³ float32 %.1f GFLOP/s\n", rep.BLAS, rep.GemmN, rep.GemmGFLOPs)
	fmt.Fprintf(stdout, "%-9s %5s %14s %16s %8s %12s %10s\n", "model", "K", "batched tr/s", "unbatched tr/s", "speedup", "eval GFLOP/s", "eval/gemm")
	for _, name := range []string{"logistic", "convnet"} {
		m := rep.Models[name]
		fmt.Fprintf(stdout, "%-9s %5d %14.2f %16.3f %8.1f %12.1f %10.2f\n", name, m.K, m.TrialsPerSBatched, m.TrialsPerSUnbatched,
			m.Speedup, m.EvalGFLOPs, m.EvalGFLOPs/rep.GemmGFLOPs)
	}
	if g := rep.GPU; g != nil {
		fmt.Fprintf(stdout, "GPU %s: gemm %d³ float32 %.1f GFLOP/s, TF32 %.1f\n", g.Device, g.GemmN, g.GemmGFLOPs, g.GemmGFLOPsTF32)
		for _, name := range []string{"logistic", "convnet"} {
			m := g.Models[name]
			fmt.Fprintf(stdout, "%-9s %5d %14.2f %16s %8s %12.1f %10.2f\n", name, m.K, m.TrialsPerSBatched, "", "", m.EvalGFLOPs, m.EvalOverGemm)
		}
	}
	return nil
}

// benchGemm times C = A·B for n×n float32 matrices, best of three.
func benchGemm(n int) float64 {
	mk := func() blas32.General {
		g := blas32.General{Rows: n, Cols: n, Stride: n, Data: make([]float32, n*n)}
		for i := range g.Data {
			g.Data[i] = float32(i%7) * 0.25
		}
		return g
	}
	a, b, cm := mk(), mk(), mk()
	// The whole machine, like the evaluation (one worker per CPU): let a
	// threaded BLAS use every core for this one product.
	prev := kblas.SetThreads(runtime.NumCPU())
	defer kblas.SetThreads(prev)
	best := 0.0
	for range 3 {
		start := time.Now()
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, b, 0, cm)
		best = max(best, 2*float64(n)*float64(n)*float64(n)/time.Since(start).Seconds()/1e9)
	}
	return best
}

const benchConfig = `name = "bench"
seed = 1
dtype = "float32"
[data]
set = "fashion-mnist"
[trials]
count = %d
n = 10
etas = [0.01]
[[model]]
name = "%s"
inits = [%d]
[[optimizer]]
name = "sgd"
batch = 1
epochs = 1
`

// discard is a Recorder that counts rows.
type discard struct{ n int }

func (d *discard) Record(results.Row) error { d.n++; return nil }

func benchModel(pool *data.Pool, name string, init, k int, logf func(string, ...any)) (*modelBench, error) {
	arch, err := nets.New(name, pool.Channels, pool.Height, pool.Width, pool.Classes)
	if err != nil {
		return nil, err
	}
	mb := &modelBench{K: k, DenseFLOPsPerExample: arch.DenseFLOPs()}
	if mb.K == 0 {
		mb.K = trials.AutoK(config.Model{Name: name}, trials.DefaultMaxBytes)
	}
	cfg, err := config.Parse("bench.toml", fmt.Sprintf(benchConfig, mb.K, name, init))
	if err != nil {
		return nil, err
	}
	runner, err := trials.NewRunner(cfg, pool)
	if err != nil {
		return nil, err
	}
	// Warm up: the initialisation's own pool loss is computed once per run.
	if _, err := runner.RunOne(trials.Plan(cfg)[0]); err != nil {
		return nil, err
	}
	var rec discard
	start := time.Now()
	if err := runner.Run(context.Background(), &rec, trials.Settings{Workers: 1, K: mb.K}); err != nil {
		return nil, err
	}
	mb.TrialsPerSBatched = float64(rec.n) / time.Since(start).Seconds()
	logf("%s: %d trials batched in one batch: %.2f trials/s", name, rec.n, mb.TrialsPerSBatched)

	// The evaluation alone: K parameter vectors through the runner's test
	// loss (the walked forward pass on the CPU device).
	vals, err := arch.Init(init)
	if err != nil {
		return nil, err
	}
	var flat []float64
	for _, v := range vals {
		flat = append(flat, v...)
	}
	gd := &graph.Data{X32: pool.Float32(), Y: pool.Labels, Dim: pool.Dim(), Classes: pool.Classes}
	dd, err := graph.UploadData(kernels.NewCPU(kernels.F32), gd)
	if err != nil {
		return nil, err
	}
	defer dd.Close()
	ev, err := graph.NewDeviceTestLoss(arch, dd, mb.K, pool.Len())
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	theta := make([][]float64, mb.K)
	for i := range theta {
		theta[i] = flat
	}
	loss, acc := make([]float64, mb.K), make([]float64, mb.K)
	// The best of two calls: the first also pays for first-touch
	// allocations (buffers, scratch) that a run makes once.
	mb.EvalSeconds = math.Inf(1)
	for range 2 {
		start = time.Now()
		if err := ev.TestLoss(theta, loss, acc); err != nil {
			return nil, err
		}
		mb.EvalSeconds = min(mb.EvalSeconds, time.Since(start).Seconds())
	}
	mb.EvalGFLOPs = float64(mb.K) * float64(pool.Len()) * mb.DenseFLOPsPerExample / mb.EvalSeconds / 1e9
	logf("%s: evaluation of %d trials on %d examples: %.2fs, %.1f dense GFLOP/s", name, mb.K, pool.Len(), mb.EvalSeconds, mb.EvalGFLOPs)

	// Unbatched: one trial at a time through the single-trial graph.
	mb.UnbatchedTrials = 1
	if name == "logistic" {
		mb.UnbatchedTrials = 3
	}
	sec, err := unbatchedTrials(arch, pool, gd, vals, mb.UnbatchedTrials)
	if err != nil {
		return nil, err
	}
	mb.TrialsPerSUnbatched = float64(mb.UnbatchedTrials) / sec
	mb.Speedup = mb.TrialsPerSBatched / mb.TrialsPerSUnbatched
	logf("%s: %d trials unbatched: %.3f trials/s (speedup %.1f)", name, mb.UnbatchedTrials, mb.TrialsPerSUnbatched, mb.Speedup)
	return mb, nil
}

// unbatchedTrials runs count trials (10 SGD steps of batch 1, then the
// chunked pool loss) through the single-trial gorgonia graph and returns
// the seconds taken.
func unbatchedTrials(arch *nets.Arch, pool *data.Pool, d *graph.Data, init [][]float64, count int) (float64, error) {
	net, err := graph.Compile(arch, tensor.Float32, 1, true)
	if err != nil {
		return 0, err
	}
	defer net.Close()
	ev := graph.NewEvaluator(arch, tensor.Float32, graph.DefaultChunk(arch))
	defer ev.Close()
	start := time.Now()
	for t := 0; t < count; t++ {
		p := graph.NewParams(arch, init, tensor.Float32)
		for s := 0; s < 10; s++ {
			_, g, err := net.Grad(p, d, []int{(t*10 + s) * 7 % pool.Len()})
			if err != nil {
				return 0, err
			}
			p.Step(0.01, g)
		}
		if _, _, err := ev.Mean(p, d, nil); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}
