package trials

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/nets/seed"
	"github.com/perturb/perturb/trials/optim"
	"github.com/perturb/perturb/trials/study/sharp"
)

// BenchmarkSharpnessVsTestLoss measures the speed goal of the sharpness
// measures on the real Fashion-MNIST (skipped without it): a batch of K
// float32 trials of a model ($PERTURB_SHARP_MODEL, default convnet; K =
// $PERTURB_SHARP_K, default 64; initialisation 1, SGD with batch 1 over
// N = 10 points at eta 0.05) is trained, then
// timed in one process: (a) the batch's full-pool test-loss evaluation
// (70,000 images, the runner's evaluator) and (b) the sharpness at the end
// on a 1,000-image subset of the pool: the top eigenvalue to 1e-3
// relative (Lanczos) and the trace to 5% standard error (Hutchinson
// deflated by the Lanczos basis), as the runner computes them. It reports
// the ratio (b)/(a) of the wall times measured in the run, the ratio of
// the process's CPU times (user and system; less sensitive to other
// processes on a shared machine), and the mean Lanczos iterations and
// trace probes ($PERTURB_SHARP_MEASURES, e.g. "lambda,tr_h,tr_c,tr_hc",
// times other measures):
//
//	go test -tags openblas -run '^$' -bench SharpnessVsTestLoss -benchtime 1x ./trials/
func BenchmarkSharpnessVsTestLoss(b *testing.B) {
	pool, err := data.Load("fashion-mnist", "")
	if err != nil {
		b.Skipf("needs the real Fashion-MNIST: %v", err)
	}
	k := 64
	if s := os.Getenv("PERTURB_SHARP_K"); s != "" {
		if k, err = strconv.Atoi(s); err != nil || k < 1 {
			b.Fatalf("PERTURB_SHARP_K=%q: want a positive whole number", s)
		}
	}
	model := "convnet"
	if s := os.Getenv("PERTURB_SHARP_MODEL"); s != "" {
		model = s
	}
	measures := `"lambda", "tr_h"`
	if s := os.Getenv("PERTURB_SHARP_MEASURES"); s != "" {
		measures = `"` + strings.ReplaceAll(s, ",", `", "`) + `"`
	}
	c := mustConfig(b, fmt.Sprintf(`name = "sharp-bench"
seed = 1
dtype = "float32"
[data]
set = "fashion-mnist"
[trials]
count = %d
n = 10
etas = [0.05]
[[model]]
name = "%s"
inits = [1]
[[optimizer]]
name = "sgd"
batch = 1
[sharpness]
measures = [%s]
at = ["end"]
on = ["pool"]
subset = 1000
tol = 1e-3
trace_se = 0.05
max_iter = 100
max_probes = 100
`, k, model, measures))
	r, err := NewRunner(c, pool)
	if err != nil {
		b.Fatal(err)
	}
	w := r.newWorker(DefaultMaxBytes, runtime.NumCPU())
	st, err := w.init(model, 1)
	if err != nil {
		b.Fatal(err)
	}
	ob := &optim.Batch{Backend: w.backend(model)}
	var ids [][4]uint64
	var sets [][]nets.Sample
	for _, t := range Plan(c) {
		ob.Theta = append(ob.Theta, slices.Clone(st.theta))
		ob.Eta = append(ob.Eta, t.Eta)
		ob.Sets = append(ob.Sets, r.Samples(t))
		ids = append(ids, [4]uint64{1, uint64(t.Index), pointEnd, lossPool})
		sets = append(sets, r.poolSubset(model))
	}
	ob.Order = func(i, e int) []int { return nil }
	ob.Noise = func(i int) *rand.Rand { return seed.New(seed.SDENoise, 0, uint64(i)) }
	if _, err := optim.Run(c.Optimizers[0].Spec(), ob); err != nil {
		b.Fatal(err)
	}
	loss, acc := make([]float64, k), make([]float64, k)
	var ms []*sharp.Measures
	var tTest, tSharp time.Duration
	var cTest, cSharp float64
	b.ResetTimer()
	for range b.N {
		t0, c0 := time.Now(), processCPU()
		if err := w.testLoss(model, ob.Theta, loss, acc); err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), processCPU()
		if ms, err = w.measure(model, ob.Theta, sets, ids); err != nil {
			b.Fatal(err)
		}
		tTest += t1.Sub(t0)
		tSharp += time.Since(t1)
		cTest += c1 - c0
		cSharp += processCPU() - c1
	}
	var iters, probes, conv, tconv, hcProbes float64
	for _, m := range ms {
		iters += float64(m.LanczosIter) / float64(k)
		if m.LanczosConverged {
			conv += 1 / float64(k)
		}
		if m.TrH != nil {
			probes += float64(m.TrH.Probes) / float64(k)
			if m.TrH.Converged {
				tconv += 1 / float64(k)
			}
		}
		if m.TrHC != nil {
			hcProbes += float64(m.TrHC.Probes) / float64(k)
		}
	}
	ratio := tSharp.Seconds() / tTest.Seconds()
	b.ReportMetric(ratio, "sharpness/testloss")
	b.ReportMetric(cSharp/cTest, "cpu-sharpness/testloss")
	b.ReportMetric(tTest.Seconds()/float64(b.N), "testloss-s")
	b.ReportMetric(tSharp.Seconds()/float64(b.N), "sharpness-s")
	b.ReportMetric(iters, "lanczos-iters")
	b.ReportMetric(probes, "trace-probes")
	b.Logf("K=%d, measures %s: test loss over the pool %.2fs (CPU %.2fs), sharpness on 1000 images %.2fs (CPU %.2fs), ratio %.2f (CPU time %.2f); Lanczos %.1f iterations (%.0f%% converged), trace %.1f probes (%.0f%% at 5%%), tr(HC) %.1f terms; trial 0: λ1 %.5g, tr H %.5g, tr C %.5g, tr(HC) %.5g",
		k, measures, tTest.Seconds()/float64(b.N), cTest/float64(b.N), tSharp.Seconds()/float64(b.N), cSharp/float64(b.N), ratio, cSharp/cTest,
		iters, 100*conv, probes, 100*tconv, hcProbes,
		ms[0].Value(sharp.Lambda), ms[0].Value(sharp.TrH), ms[0].Value(sharp.TrC), ms[0].Value(sharp.TrHC))
}

// processCPU is the CPU time (user and system) of the process so far, in
// seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
