package trials

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// smallPool is a synthetic 28×28 grey pool of n examples.
func smallPool(t testing.TB, n int) *data.Pool {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	px := make([]uint8, n*784)
	lb := make([]uint8, n)
	for i := range lb {
		lb[i] = uint8(r.IntN(10))
		for j := 0; j < 784; j++ {
			// Class-dependent mean so the models can learn something.
			px[i*784+j] = uint8(min(255, r.IntN(128)+int(lb[i])*12*(j%7)/6))
		}
	}
	p, err := data.NewPool("synthetic", 1, 28, 28, 10, px, lb)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const base = `name = "t"
seed = 42
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 3
n = 6
etas = [0.05, 0.5]
[[model]]
name = "logistic"
inits = [0, 2]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 2
reshuffle = true
[[optimizer]]
name = "gd"
steps = 3
`

// collect is a Recorder that keeps rows in memory.
type collect struct {
	mu   sync.Mutex
	rows []results.Row
}

func (c *collect) Record(r results.Row) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, r)
	return nil
}

// runAll runs every trial of c on pool (nil for landscapes) with s,
// requires one row per trial and returns the rows by key.
func runAll(t *testing.T, c *config.Config, pool *data.Pool, s Settings) map[results.Key]results.Row {
	t.Helper()
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	if err := r.Run(context.Background(), &col, s); err != nil {
		t.Fatal(err)
	}
	if len(col.rows) != c.NumTrials() {
		t.Fatalf("K=%d workers=%d: %d rows for %d trials", s.K, s.Workers, len(col.rows), c.NumTrials())
	}
	return col.byKey()
}

func (c *collect) byKey() map[results.Key]results.Row {
	m := map[results.Key]results.Row{}
	for _, r := range c.rows {
		m[r.Key()] = r
	}
	return m
}

// refLogisticSGD is an independent float64 implementation of the
// logistic model's SGD: z = s·xW + b, softmax cross-entropy, gradient
// ∂l/∂W = s·xᵀ(p − y), ∂l/∂b = p − y, averaged over the batch.
func refLogisticSGD(pool *data.Pool, w0 []float64, s float64, rows [][]int, eta float64) (w, b []float64) {
	x := pool.Float64()
	w = slices.Clone(w0)
	b = make([]float64, 10)
	for _, batch := range rows {
		gw := make([]float64, len(w))
		gb := make([]float64, 10)
		for _, n := range batch {
			xn := x[n*784 : (n+1)*784]
			z := make([]float64, 10)
			for k := range z {
				for i, v := range xn {
					z[k] += v * w[i*10+k]
				}
				z[k] = s*z[k] + b[k]
			}
			m := slices.Max(z)
			sum := 0.0
			for k := range z {
				z[k] = math.Exp(z[k] - m)
				sum += z[k]
			}
			for k := range z {
				d := z[k] / sum
				if k == int(pool.Labels[n]) {
					d--
				}
				d /= float64(len(batch))
				gb[k] += d
				for i, v := range xn {
					gw[i*10+k] += s * v * d
				}
			}
		}
		for i := range w {
			w[i] -= eta * gw[i]
		}
		for k := range b {
			b[k] -= eta * gb[k]
		}
	}
	return w, b
}

func refLoss(pool *data.Pool, w, b []float64, s float64, idx []int) float64 {
	x := pool.Float64()
	total := 0.0
	for _, n := range idx {
		z := make([]float64, 10)
		for k := range z {
			for i := 0; i < 784; i++ {
				z[k] += x[n*784+i] * w[i*10+k]
			}
			z[k] = s*z[k] + b[k]
		}
		m := slices.Max(z)
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - m)
		}
		total += m + math.Log(sum) - z[pool.Labels[n]]
	}
	return total / float64(len(idx))
}

// TestSGDMatchesReference runs SGD (batch 2, 2 epochs, reshuffled) and GD
// through the runner and compares train and test losses with the plain-Go
// reference fed the same training set and epoch orders.
func TestSGDMatchesReference(t *testing.T) {
	pool := smallPool(t, 40)
	c := mustConfig(t, base)
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	a := r.models["logistic"].arch
	all := make([]int, pool.Len())
	for i := range all {
		all[i] = i
	}
	for _, tr := range []Trial{
		{Model: "logistic", Init: 2, Opt: c.Optimizers[0], Eta: 0.5, Index: 1},
		{Model: "logistic", Init: 0, Opt: c.Optimizers[1], Eta: 0.5, Index: 2},
	} {
		row, err := r.RunOne(tr)
		if err != nil {
			t.Fatal(err)
		}
		set := TrainingSet(c, tr, pool.Len())
		var batches [][]int
		for e := 0; e < tr.Opt.Epochs; e++ {
			order := epochOrder(c, tr, set, e)
			for i := 0; i < len(order); i += tr.Opt.Batch {
				batches = append(batches, order[i:i+tr.Opt.Batch])
			}
		}
		if len(batches) != tr.Opt.Steps {
			t.Fatalf("%v: %d batches for %d steps", tr, len(batches), tr.Opt.Steps)
		}
		init, _ := a.Init(tr.Init)
		s := a.Params[0].Scale
		w, b := refLogisticSGD(pool, init[0], s, batches, tr.Eta)
		if want := refLoss(pool, w, b, s, set); !(math.Abs(row.TrainLoss-want) <= 1e-12) {
			t.Errorf("%v: train loss %.15g, reference %.15g", tr, row.TrainLoss, want)
		}
		if want := refLoss(pool, w, b, s, all); !(math.Abs(row.TestLoss-want) <= 1e-12) {
			t.Errorf("%v: test loss %.15g, reference %.15g", tr, row.TestLoss, want)
		}
		if want := refLoss(pool, init[0], make([]float64, 10), s, all); !(math.Abs(row.InitTestLoss-want) <= 1e-12) {
			t.Errorf("%v: initial test loss %.15g, reference %.15g", tr, row.InitTestLoss, want)
		}
		if row.TestLoss >= row.InitTestLoss {
			t.Errorf("%v: test loss %v did not fall from %v", tr, row.TestLoss, row.InitTestLoss)
		}
	}
}

// TestReshuffle checks the epoch orders: epoch 0 is the draw order, later
// epochs are permutations of the same multiset, different from the draw
// order, and without reshuffle every epoch repeats it.
func TestReshuffle(t *testing.T) {
	c := mustConfig(t, base)
	tr := Trial{Model: "logistic", Init: 0, Opt: c.Optimizers[0], Index: 0}
	set := TrainingSet(c, tr, 1000)
	e1 := epochOrder(c, tr, set, 1)
	if !slices.Equal(epochOrder(c, tr, set, 0), set) || slices.Equal(e1, set) {
		t.Fatalf("orders: draw %v epoch1 %v", set, e1)
	}
	s1, s0 := slices.Clone(e1), slices.Clone(set)
	slices.Sort(s1)
	slices.Sort(s0)
	if !slices.Equal(s0, s1) {
		t.Fatalf("epoch 1 %v is not a permutation of %v", e1, set)
	}
	tr.Opt.Reshuffle = false
	if !slices.Equal(epochOrder(c, tr, set, 1), set) {
		t.Fatal("without reshuffle epoch 1 differs from the draw order")
	}
}

// TestDeterminismAndOrder runs the whole plan with 1 and 3 workers and then
// trial by trial in reverse order: every row must be bitwise identical, and
// optimisers and learning rates must share training sets (same draws for
// every optimiser and eta of a (init, trial)).
func TestDeterminismAndOrder(t *testing.T) {
	pool := smallPool(t, 30)
	c := mustConfig(t, base)
	one, three := runAll(t, c, pool, Settings{Workers: 1}), runAll(t, c, pool, Settings{Workers: 3})
	r, _ := NewRunner(c, pool)
	plan := Plan(c)
	slices.Reverse(plan)
	rev := map[results.Key]results.Row{}
	for _, tr := range plan {
		row, err := r.RunOne(tr)
		if err != nil {
			t.Fatal(err)
		}
		rev[row.Key()] = row
	}
	for k, a := range one {
		for name, other := range map[string]map[results.Key]results.Row{"3 workers": three, "reverse order": rev} {
			if !closeRows(a, other[k], 1e-12) {
				t.Fatalf("%s: row %v differs:\n%+v\n%+v", name, k, a, other[k])
			}
		}
	}
	// Same training set for both optimisers: GD's initial train loss is not
	// stored, so compare the draws directly.
	tr0 := Trial{Model: "logistic", Init: 2, Opt: c.Optimizers[0], Eta: 0.05, Index: 1}
	tr1 := Trial{Model: "logistic", Init: 2, Opt: c.Optimizers[1], Eta: 0.5, Index: 1}
	if !slices.Equal(TrainingSet(c, tr0, 30), TrainingSet(c, tr1, 30)) {
		t.Fatal("optimisers or learning rates see different training sets")
	}
	tr2 := tr0
	tr2.Index = 2
	if slices.Equal(TrainingSet(c, tr0, 30), TrainingSet(c, tr2, 30)) {
		t.Fatal("trials 1 and 2 share a training set")
	}
}

// TestDivergenceIsRecorded runs float32 SGD with an absurd learning rate:
// the trial must be recorded as diverged, not crash the sweep, while the
// sane learning rate in the same sweep is ok.
func TestDivergenceIsRecorded(t *testing.T) {
	pool := smallPool(t, 20)
	c := mustConfig(t, `name = "d"
seed = 1
dtype = "float32"
[data]
set = "fashion-mnist"
[trials]
count = 2
n = 4
etas = [0.1, 1e37]
[[model]]
name = "logistic"
inits = [1]
[[optimizer]]
name = "sgd"
epochs = 3
`)
	r, _ := NewRunner(c, pool)
	var col collect
	if err := r.Run(context.Background(), &col, Settings{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	for _, row := range col.rows {
		want := results.StatusOK
		if row.Eta > 1 {
			want = results.StatusDiverged
		}
		if row.Status != want {
			t.Errorf("eta %g: status %q, want %q (test loss %v)", row.Eta, row.Status, want, row.TestLoss)
		}
		if want == results.StatusDiverged && !math.IsNaN(row.TestLoss) {
			t.Errorf("diverged trial has test loss %v, want NaN", row.TestLoss)
		}
	}
}

// TestSkip checks that trials already stored are not run again.
func TestSkip(t *testing.T) {
	pool := smallPool(t, 20)
	c := mustConfig(t, base)
	r, _ := NewRunner(c, pool)
	skip := map[results.Key]bool{}
	for i, tr := range Plan(c) {
		if i%2 == 0 {
			skip[r.key(tr)] = true
		}
	}
	var col collect
	if err := r.Run(context.Background(), &col, Settings{Workers: 2, Skip: skip}); err != nil {
		t.Fatal(err)
	}
	if len(col.rows) != c.NumTrials()-len(skip) {
		t.Fatalf("ran %d trials, want %d", len(col.rows), c.NumTrials()-len(skip))
	}
	for _, row := range col.rows {
		if skip[row.Key()] {
			t.Fatalf("ran skipped trial %v", row.Key())
		}
	}
}

// TestOnly checks that Settings.Only runs exactly the listed trials, with
// the rows the whole plan gives them, and that Skip still applies.
func TestOnly(t *testing.T) {
	pool := smallPool(t, 20)
	c := mustConfig(t, base)
	r, _ := NewRunner(c, pool)
	var all collect
	if err := r.Run(context.Background(), &all, Settings{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	want := map[results.Key]results.Row{}
	for _, row := range all.rows {
		want[row.Key()] = row
	}
	plan := Plan(c)
	only := []Trial{plan[len(plan)-1], plan[1], plan[2]}
	tests := []struct {
		name string
		skip map[results.Key]bool
		n    int
	}{
		{"only", nil, 3},
		{"only less skip", map[results.Key]bool{r.key(plan[1]): true}, 2},
		{"empty", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := only
			if tc.n == 0 {
				list = []Trial{}
			}
			var col collect
			if err := r.Run(context.Background(), &col, Settings{Workers: 2, K: 2, Only: list, Skip: tc.skip}); err != nil {
				t.Fatal(err)
			}
			if len(col.rows) != tc.n {
				t.Fatalf("ran %d trials, want %d", len(col.rows), tc.n)
			}
			for _, row := range col.rows {
				w, ok := want[row.Key()]
				// The same trial in another batch: equal to rounding (the
				// evaluation's sums depend on the batch's shape).
				close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
				if !ok || tc.skip[row.Key()] || row.Status != w.Status || !close(row.TestLoss, w.TestLoss) || !close(row.TrainLoss, w.TrainLoss) || row.TestAcc != w.TestAcc {
					t.Errorf("row %v: %+v, want %+v from the whole plan", row.Key(), row.Results(), w.Results())
				}
			}
		})
	}
}

// TestCIFARShapedConvnet runs the convnet through the runner on a small
// 3×32×32 pool (CIFAR-10's shape) in float32: SGD must lower the train loss.
func TestCIFARShapedConvnet(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	n := 12
	px := make([]uint8, n*3072)
	lb := make([]uint8, n)
	for i := range lb {
		lb[i] = uint8(i % 10)
		for j := 0; j < 3072; j++ {
			px[i*3072+j] = uint8(r.IntN(100) + 15*int(lb[i])*(j/1024))
		}
	}
	pool, err := data.NewPool("cifar-10", 3, 32, 32, 10, px, lb)
	if err != nil {
		t.Fatal(err)
	}
	c := mustConfig(t, `name = "c"
seed = 2
dtype = "float32"
[data]
set = "cifar-10"
[trials]
count = 1
n = 4
etas = [0.2]
[[model]]
name = "convnet"
inits = [1]
[[optimizer]]
name = "gd"
steps = 20
`)
	runner, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	tr := Plan(c)[0]
	row, err := runner.RunOne(tr)
	if err != nil {
		t.Fatal(err)
	}
	a := runner.models["convnet"].arch
	init, _ := a.Init(1)
	ev := graph.NewEvaluator(a, runner.dt, 4)
	before, _, err := ev.Mean(graph.NewParams(a, init, runner.dt), runner.data, TrainingSet(c, tr, n))
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != results.StatusOK || !(row.TrainLoss < 0.9*before) {
		t.Fatalf("GD on the convnet: train loss %v from %v (status %s)", row.TrainLoss, before, row.Status)
	}
}

const imageKConfig = `name = "kimg"
seed = 5
dtype = "%s"
[data]
set = "fashion-mnist"
[trials]
count = 5
n = 4
etas = [0.05, 0.3]
[[model]]
name = "logistic"
inits = [0, 1]
[[model]]
name = "convnet"
inits = [2]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 2
reshuffle = true
[[optimizer]]
name = "gdc"
steps = 2
[[optimizer]]
name = "sde"
batch = 2
refine = 2
[[optimizer]]
name = "igr"
steps = 2
[[optimizer]]
name = "smith"
batch = 2
steps = 2
`

// TestImageResultsIndependentOfK runs every optimiser on both image models
// with K = 1 (one trial per graph) and K = 64 (whole groups in one graph,
// two workers) and compares rows: identities, statuses and initial losses
// exactly, losses to float tolerance: the initialisations and training
// sets are the same bits (TestDeterminismAndOrder checks the draws), but a
// batched product's rounding, and the evaluator's chunking of the pool
// sums, may depend on K and on the memory budget per worker.
func TestImageResultsIndependentOfK(t *testing.T) {
	pool := smallPool(t, 40)
	for _, tc := range []struct {
		dtype string
		tol   float64
	}{{"float64", 1e-11}, {"float32", 2e-5}} {
		c := mustConfig(t, fmt.Sprintf(imageKConfig, tc.dtype))
		one, many := runAll(t, c, pool, Settings{K: 1, Workers: 1}), runAll(t, c, pool, Settings{K: 64, Workers: 2})
		worst := 0.0
		for key, a := range one {
			b := many[key]
			if a.Status != results.StatusOK || !closeRows(a, b, tc.tol) {
				t.Errorf("%s %v: K=1 %+v\nK=64 %+v", tc.dtype, key, a, b)
			}
			for _, p := range [][2]float64{{a.TestLoss, b.TestLoss}, {a.TrainLoss, b.TrainLoss}, {a.InitTestLoss, b.InitTestLoss}} {
				worst = max(worst, math.Abs(p[0]-p[1])/math.Abs(p[0]))
			}
		}
		t.Logf("%s: %d trials, largest relative difference between K=1 and K=64: %.2g", tc.dtype, len(one), worst)
	}
}

// closeRows reports whether a and b are the same trial with the same
// settings, status, weights and accuracies, and losses equal to relative
// tolerance tol (NaN equal to NaN).
func closeRows(a, b results.Row, tol float64) bool {
	for _, p := range [][2]*float64{{&a.InitTestLoss, &b.InitTestLoss}, {&a.TestLoss, &b.TestLoss}, {&a.TrainLoss, &b.TrainLoss}, {&a.PoolTestLoss, &b.PoolTestLoss}} {
		x, y := *p[0], *p[1]
		if math.IsNaN(x) != math.IsNaN(y) || (!math.IsNaN(x) && !(math.Abs(x-y) <= tol*math.Abs(x))) {
			return false
		}
		*p[0], *p[1] = 0, 0
	}
	return sameRow(a, b)
}

const walkedConfig = `name = "walked"
seed = 11
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 3
n = 6
etas = [0.1]
[[model]]
name = "mlp"
width = 7
depth = 3
inits = [1]
[[model]]
name = "convnet"
label = "convnet-d3"
width = 4
depth = 3
inits = [2]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 2
reshuffle = true
`

// TestRunnerWalkedModels runs, end to end, models the retired pool
// evaluator did not cover (a tanh mlp and a convnet with a padded third convolution):
// their test losses go through the walker on the CPU twin. Every trial
// finishes; the initial test loss is graph.Net's mean over the pool (to
// 1e-12); and every row is bitwise the same with K = 1 on one worker and
// K = 3 on two (the walked evaluation adds per-example losses in example
// order).
func TestRunnerWalkedModels(t *testing.T) {
	pool := smallPool(t, 30)
	c := mustConfig(t, walkedConfig)
	one, many := runAll(t, c, pool, Settings{K: 1, Workers: 1}), runAll(t, c, pool, Settings{K: 3, Workers: 2})
	runner, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, pool.Len())
	for i := range all {
		all[i] = i
	}
	worst := 0.0
	for key, a := range one {
		if a.Status != results.StatusOK || !finite(a.TestLoss) || !finite(a.TrainLoss) || a.TestAcc < 0 || a.TestAcc > 1 {
			t.Errorf("%v: %+v", key, a)
		}
		if b := many[key]; !sameRow(a, b) {
			t.Errorf("%v: K=1 %+v\nK=3 %+v", key, a, b)
		}
		m := runner.models[a.Model]
		init, err := m.arch.Init(a.Init)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := graph.NewEvaluator(m.arch, runner.dt, 8).Mean(graph.NewParams(m.arch, init, runner.dt), runner.data, all)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(a.InitTestLoss-want) > 1e-12*want {
			t.Errorf("%v: initial test loss %.15g, graph.Net %.15g", key, a.InitTestLoss, want)
		}
		worst = max(worst, math.Abs(a.InitTestLoss-want)/want)
	}
	// The device path on the CPU twin runs the same graphs through the
	// walker for training too.
	dev := runOn(t, c, pool, kernels.NewCPU(kernels.F64), Settings{Workers: 2})
	worstDev := 0.0
	for key, a := range one {
		if d := rowDiff(t, "device", a, dev[key]); !(d <= 1e-9) {
			t.Errorf("%v: device path differs by %.2g:\nCPU    %+v\ndevice %+v", key, d, a, dev[key])
		} else {
			worstDev = max(worstDev, d)
		}
	}
	t.Logf("%d rows; initial test losses within %.1e of graph.Net; device path (CPU twin) within %.1e", len(one), worst, worstDev)
}
