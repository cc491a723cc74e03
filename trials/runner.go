package trials

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/nets/seed"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/optim"
	"github.com/perturb/perturb/trials/results"
)

// Recorder receives finished trials. Record may be called from several
// goroutines at once.
type Recorder interface {
	Record(results.Row) error
}

// DefaultMaxBytes is the default memory budget of a run's working buffers
// (compiled graphs and evaluation chunks, all workers together).
const DefaultMaxBytes = 3 << 30

// Settings controls how trials run; they never change the results.
type Settings struct {
	// Workers is the number of trial batches run in parallel; 0 means one
	// per CPU.
	Workers int
	// K is the number of trials advanced together in one batch; 0 chooses
	// it from the model and the memory budget (see AutoK).
	K int
	// MaxBytes bounds the working memory of all workers together; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Shard restricts the run to one shard of the plan; the zero Shard
	// runs every trial.
	Shard Shard
	// Skip lists trials already recorded (a resumed run).
	Skip map[results.Key]bool
	// Only, if not nil, lists the trials to run (trials of the plan, as
	// Plan gives them) in place of the whole plan: a few trials of a large
	// sweep without planning it (the wall-time calibration). Skip still
	// applies.
	Only []Trial
	// Progress, if set, is called after every finished batch with the
	// number of trials done and the total to run (from one goroutine at a
	// time).
	Progress func(done, total int)
	// Log, if set, receives notes on retried batches (from one goroutine
	// at a time).
	Log func(msg string)
}

// Runner runs the trials of one config.
type Runner struct {
	cfg    *config.Config
	hash   string
	dt     tensor.Dtype
	data   *graph.Data // nil when every model is a landscape
	models map[string]*model

	dev *runnerDevice // image models on a device (UseDevice), or nil
	// walk is the pool on the CPU twin, uploaded once, for the training
	// steps and the test loss without a device (cpuBackend, imageEval).
	walk struct {
		once sync.Once
		data *graph.DeviceData
		err  error
	}

	// subs are the per-dtype runners of a multi-dtype sweep
	// (NewSweepRunner), in DTypes order; nil for a single dtype.
	subs []*Runner

	mu       sync.Mutex
	inits    map[initKey]*initState
	controls map[controlKey]*controlState // subset estimates' control variates (testloss.go)
	sharp    sharpState                   // sharpness at initialisation and the pool subset (sharpness.go)

	// tapeJets runs the jets of the image oracles on gorgonia's
	// TapeMachine instead of the walker (set by tests: the reference).
	tapeJets bool

	// taylorSubset is M of the test-loss jets of Taylor mode (0: the
	// whole pool; SetTaylorSubset).
	taylorSubset int
}

// model is one config model: an image architecture or a landscape.
type model struct {
	arch *nets.Arch           // image models
	land *landscape.Landscape // landscapes
}

func (m *model) numParams() int {
	if m.land != nil {
		return m.land.NumParams()
	}
	return m.arch.NumParams()
}

type initKey struct {
	model string
	init  int
}

// initState is an initialisation's flat parameters and test loss, computed
// once per run by whichever worker needs them first.
type initState struct {
	once      sync.Once
	theta     []float64 // never modified: trials train a copy
	loss, acc float64
	err       error
}

// NewRunner prepares c's models; pool may be nil when every model is a
// landscape.
func NewRunner(c *config.Config, pool *data.Pool) (*Runner, error) {
	if len(c.DTypes) > 1 {
		return nil, fmt.Errorf("config %s has dtypes %v: a Runner of statistics or predictions runs one dtype; make one per dtype with c.ForDType, or run the sweep with NewSweepRunner", c.Name, c.DTypes)
	}
	r := &Runner{cfg: c, hash: c.Hash(), models: map[string]*model{}, inits: map[initKey]*initState{}, dt: tensor.Float64}
	if c.DType == "float32" {
		r.dt = tensor.Float32
	}
	if c.NeedsData() {
		if pool == nil {
			return nil, fmt.Errorf("config %s has image models but no data pool was loaded", c.Name)
		}
		r.data = &graph.Data{Y: pool.Labels, Dim: pool.Dim(), Classes: pool.Classes}
		if r.dt == tensor.Float32 {
			r.data.X32 = pool.Float32()
		} else {
			r.data.X64 = pool.Float64()
		}
	}
	for _, m := range c.Models {
		if m.IsLandscape() {
			l, err := landscape.New(m.Name, m.Options(), r.dt == tensor.Float32)
			if err != nil {
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			r.models[m.Key()] = &model{land: l}
			continue
		}
		a, err := nets.NewSized(m.Name, pool.Channels, pool.Height, pool.Width, pool.Classes, m.Size())
		if err != nil {
			return nil, fmt.Errorf("model %s on %s: %w", m.Name, pool.Name, err)
		}
		r.models[m.Key()] = &model{arch: a}
	}
	if err := r.checkSharpness(); err != nil {
		return nil, err
	}
	return r, nil
}

// AutoK is the number of trials per batch Run uses for a model when
// Settings.K is 0: enough to amortise the per-operation cost of a graph
// run (about 3 µs per op) over many trials, small enough that a batch's
// training graph (about K·B·20 kB for the convnet) and its share of the
// evaluation buffers stay within budget.
func AutoK(m config.Model, maxBytesPerWorker int64) int {
	if m.IsLandscape() {
		return 1024
	}
	k := 64
	// The evaluator needs at least one example per trial in a chunk; keep
	// room for chunks of ≥ 256 examples at about 8 kB per example·trial.
	for k > 1 && int64(k)*256*8<<10 > maxBytesPerWorker {
		k /= 2
	}
	return k
}

// batch is up to K trials of one (model, init, optimiser).
type batch struct {
	model  string
	init   int
	opt    config.Optimizer
	trials []Trial
}

// batches groups the trials to run by (model, init, optimiser), in plan
// order, and cuts each group into batches of at most k(model) trials.
func batches(todo []Trial, k func(model string) int) []batch {
	type gk struct {
		model string
		init  int
		label string
	}
	var order []gk
	groups := map[gk][]Trial{}
	for _, t := range todo {
		g := gk{t.Model, t.Init, t.Opt.Label}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], t)
	}
	var out []batch
	for _, g := range order {
		ts := groups[g]
		size := max(k(g.model), 1)
		for i := 0; i < len(ts); i += size {
			b := ts[i:min(i+size, len(ts))]
			out = append(out, batch{model: g.model, init: g.init, opt: b[0].Opt, trials: b})
		}
	}
	return out
}

// worker holds one goroutine's backends and evaluators.
type worker struct {
	r        *Runner
	maxBytes int64
	threads  int // the worker's share of the CPUs
	backends map[string]optim.Backend
	batchK   func(model string) int // trials per batch (device padding), nil: AutoK
	dev      *workerDevice          // device programs (device.go)
	// walks are the test-loss programs on the CPU twin (imageEval).
	walks map[string]*graph.DeviceTestLoss
}

func (r *Runner) newWorker(maxBytes int64, threads int) *worker {
	return &worker{r: r, maxBytes: maxBytes, threads: max(threads, 1), backends: map[string]optim.Backend{}}
}

func (w *worker) backend(name string) optim.Backend {
	if b, ok := w.backends[name]; ok {
		return b
	}
	m := w.r.models[name]
	var b optim.Backend
	switch {
	case m.land != nil:
		b = m.land
	case w.r.dev != nil:
		b = w.deviceBackend(name, m.arch)
	default:
		b = w.cpuBackend(m.arch)
	}
	w.backends[name] = b
	return b
}

// testLoss sets the test loss and accuracy of each theta: the landscape's
// own, else the walked forward pass over the pool on the device or the
// CPU twin.
func (w *worker) testLoss(name string, theta [][]float64, loss, acc []float64) error {
	if l := w.r.models[name].land; l != nil {
		return l.TestLoss(theta, loss, acc)
	}
	e, err := w.imageEval(name)
	if err != nil {
		return err
	}
	return e.TestLoss(theta, loss, acc)
}

// trainLoss sets the mean loss of each theta over its training set: the
// loss output of the backend's gradient program.
func (w *worker) trainLoss(name string, theta [][]float64, sets [][]nets.Sample, loss []float64) error {
	grad := make([][]float64, len(theta))
	for k := range grad {
		grad[k] = make([]float64, len(theta[k]))
	}
	return w.backend(name).Grad(theta, sets, loss, grad)
}

// init returns initialisation id of a model (shared: do not modify) with
// its test loss and accuracy, computed once per run.
func (w *worker) init(name string, id int) (*initState, error) {
	w.r.mu.Lock()
	k := initKey{name, id}
	st, ok := w.r.inits[k]
	if !ok {
		st = &initState{}
		w.r.inits[k] = st
	}
	w.r.mu.Unlock()
	st.once.Do(func() {
		m := w.r.models[name]
		if m.land != nil {
			st.theta, st.err = m.land.Init(id)
		} else {
			var vals [][]float64
			vals, st.err = m.arch.Init(id)
			for _, v := range vals {
				st.theta = append(st.theta, v...)
			}
		}
		if st.err != nil {
			return
		}
		w.backend(name).Round(st.theta)
		loss, acc := []float64{0}, []float64{0}
		st.err = w.testLoss(name, [][]float64{st.theta}, loss, acc)
		st.loss, st.acc = loss[0], acc[0]
	})
	return st, st.err
}

// TrainingSet returns the pool indices of trial t's training set (image
// models): N draws with replacement from the stream seed.TrainSet keyed by
// (seed, init, trial).
func TrainingSet(c *config.Config, t Trial, poolLen int) []int {
	return seed.Draw(seed.New(seed.TrainSet, c.Seed, uint64(t.Init), uint64(t.Index)), c.Trials.N, poolLen)
}

// TestSubset returns the pool indices of trial t's test subset (image
// models, config key trials.test): m draws with replacement from the
// stream seed.TestSubset keyed by (seed, init, trial). It is independent
// of the trial's training set and shared by every optimiser, learning
// rate and dtype of the trial.
func TestSubset(c *config.Config, t Trial, m, poolLen int) []int {
	return seed.Draw(seed.New(seed.TestSubset, c.Seed, uint64(t.Init), uint64(t.Index)), m, poolLen)
}

// Samples returns trial t's training samples: pool rows for image models,
// N standard-normal draws from the same stream for landscapes.
func (r *Runner) Samples(t Trial) []nets.Sample {
	if r.models[t.Model].land != nil {
		return landscape.Samples(seed.New(seed.TrainSet, r.cfg.Seed, uint64(t.Init), uint64(t.Index)), r.cfg.Trials.N)
	}
	rows := TrainingSet(r.cfg, t, r.data.Len())
	out := make([]nets.Sample, len(rows))
	for i, row := range rows {
		out[i] = nets.Sample{Row: row}
	}
	return out
}

// epochOrder returns the training set in the order epoch e visits it.
func epochOrder(c *config.Config, t Trial, set []int, e int) []int {
	perm := epochPerm(c, t, len(set), e)
	if perm == nil {
		return set
	}
	out := make([]int, len(set))
	for i, j := range perm {
		out[i] = set[j]
	}
	return out
}

// epochPerm is the permutation of the training set that epoch e uses, or
// nil for draw order (epoch 0, or no reshuffle): seed.Shuffle keyed by
// (seed, init, trial, epoch).
func epochPerm(c *config.Config, t Trial, n, e int) []int {
	if e == 0 || !t.Opt.Reshuffle {
		return nil
	}
	return seed.New(seed.Shuffle, c.Seed, uint64(t.Init), uint64(t.Index), uint64(e)).Perm(n)
}

// run executes one batch and returns its rows in the batch's order.
func (w *worker) run(b batch) ([]results.Row, error) {
	c := w.r.cfg
	init, err := w.init(b.model, b.init)
	if err != nil {
		return nil, fmt.Errorf("%s init %d: %w", b.model, b.init, err)
	}
	k := len(b.trials)
	start := time.Now()
	ob := &optim.Batch{Backend: w.backend(b.model)}
	for _, t := range b.trials {
		ob.Theta = append(ob.Theta, slices.Clone(init.theta))
		ob.Eta = append(ob.Eta, t.Eta*t.Opt.Scale())
		ob.Sets = append(ob.Sets, w.r.Samples(t))
	}
	ob.Order = func(i, e int) []int { return epochPerm(c, b.trials[i], c.Trials.N, e) }
	ob.Noise = func(i int) *rand.Rand {
		t := b.trials[i]
		return seed.New(seed.SDENoise, c.Seed, uint64(t.Init), uint64(t.Index))
	}
	res, err := optim.Run(b.opt.Spec(), ob)
	if err != nil {
		return nil, fmt.Errorf("%s init %d %s: %w", b.model, b.init, b.opt.Label, err)
	}
	// Measure the trials that did not diverge.
	var live []int
	for i := range b.trials {
		if res.Diverged[i] < 0 {
			live = append(live, i)
		}
	}
	nan := math.NaN()
	testLoss, testAcc, trainLoss := make([]float64, k), make([]float64, k), make([]float64, k)
	testSE, poolLoss, poolSec := make([]float64, k), make([]float64, k), make([]float64, k)
	for i := range testLoss {
		testLoss[i], testAcc[i], trainLoss[i], poolLoss[i] = nan, nan, nan, nan
	}
	subset := c.Trials.Test != nil && w.r.models[b.model].land == nil
	var testSec float64
	if len(live) > 0 {
		theta := make([][]float64, len(live))
		sets := make([][]nets.Sample, len(live))
		lt := make([]Trial, len(live))
		for j, i := range live {
			theta[j], sets[j], lt[j] = ob.Theta[i], ob.Sets[i], b.trials[i]
		}
		tl, ta, tr, ts := make([]float64, len(live)), make([]float64, len(live)), make([]float64, len(live)), make([]float64, len(live))
		testStart := time.Now()
		if subset {
			err = w.subsetTestLoss(lt, init, theta, tl, ta, ts)
		} else {
			err = w.testLoss(b.model, theta, tl, ta)
		}
		if err != nil {
			return nil, fmt.Errorf("%s init %d %s: test loss: %w", b.model, b.init, b.opt.Label, err)
		}
		testSec = w.coreSeconds(testStart)
		if subset {
			if err := w.poolCheck(lt, theta, live, poolLoss, poolSec); err != nil {
				return nil, fmt.Errorf("%s init %d %s: exact test loss of the checked trials: %w", b.model, b.init, b.opt.Label, err)
			}
		}
		if err := w.trainLoss(b.model, theta, sets, tr); err != nil {
			return nil, fmt.Errorf("%s init %d %s: train loss: %w", b.model, b.init, b.opt.Label, err)
		}
		for j, i := range live {
			testLoss[i], testAcc[i], trainLoss[i], testSE[i] = tl[j], ta[j], tr[j], ts[j]
		}
	}
	rows := make([]results.Row, k)
	for i, t := range b.trials {
		row := results.Row{
			ConfigHash: w.r.hash, Model: t.Model, Optimizer: t.Opt.Label, Eta: t.Eta,
			Init: t.Init, Trial: t.Index, DType: c.DType,
			N: c.Trials.N, Batch: t.Opt.Batch, Epochs: t.Opt.Epochs, Steps: t.Opt.Steps,
			Status:       results.StatusOK,
			InitTestLoss: init.loss, InitTestAcc: init.acc,
			TestLoss: testLoss[i], TestAcc: testAcc[i], TrainLoss: trainLoss[i],
			DivergedStep: res.Diverged[i],
		}
		if subset {
			row.TestEstimator, row.TestSE, row.PoolTestLoss, row.PoolSeconds = c.Trials.Test.Estimator(), testSE[i], poolLoss[i], poolSec[i]
		}
		if w.r.models[t.Model].land != nil {
			row.Weights = slices.Clone(ob.Theta[i])
		}
		if row.DivergedStep >= 0 || !finite(row.TestLoss) || !finite(row.TrainLoss) {
			row.Status = results.StatusDiverged
		}
		rows[i] = row
	}
	if err := w.sharpness(b, init.theta, ob.Theta, rows); err != nil {
		return nil, fmt.Errorf("%s init %d %s: sharpness: %w", b.model, b.init, b.opt.Label, err)
	}
	// The batch's cost, shared equally by its trials; the exact checks
	// are not part of it.
	var checkSec float64
	for _, s := range poolSec {
		checkSec += s
	}
	total := w.coreSeconds(start) - checkSec
	for i := range rows {
		rows[i].Seconds, rows[i].TestSeconds = total/float64(k), testSec/float64(k)
	}
	return rows, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// RunOne runs a single trial on a fresh worker (for tests and debugging).
func (r *Runner) RunOne(t Trial) (results.Row, error) {
	if r.subs != nil {
		sub, err := r.sub(t.DType)
		if err != nil {
			return results.Row{}, err
		}
		return sub.RunOne(t)
	}
	w := r.newWorker(DefaultMaxBytes, runtime.NumCPU())
	defer w.dropDevice("")
	rows, err := w.run(batch{model: t.Model, init: t.Init, opt: t.Opt, trials: []Trial{t}})
	if err != nil {
		return results.Row{}, err
	}
	return rows[0], nil
}

// Run runs every trial of the plan not in s.Skip, K at a time, and hands
// each row to rec. It stops at the first error (which names the trials),
// or when ctx is cancelled after the batches in progress finish; rows
// recorded before that stay recorded.
func (r *Runner) Run(ctx context.Context, rec Recorder, s Settings) error {
	if r.subs != nil {
		return r.runSweep(ctx, rec, s)
	}
	var todo []Trial
	plan := s.Only
	if plan == nil {
		plan = ShardPlan(r.cfg, s.Shard)
	}
	for _, t := range plan {
		if !s.Skip[r.key(t)] {
			todo = append(todo, t)
		}
	}
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	maxBytes := s.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	perWorker := maxBytes / int64(workers)
	batchK := batchKFunc(r.cfg.Models, s, perWorker)
	bs := batches(todo, batchK)
	workers = min(workers, max(len(bs), 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan batch)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     int
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The CPUs left over by the workers go to their evaluators.
			w := r.newWorker(perWorker, runtime.NumCPU()/workers)
			w.batchK = batchK
			defer w.dropDevice("")
			log := func(msg string) {
				if s.Log != nil {
					mu.Lock()
					s.Log(msg)
					mu.Unlock()
				}
			}
			for b := range jobs {
				// Rows finished before a failure are still recorded.
				rows, runErr := w.runSplitting(b, log)
				var err error
				n := 0
				for _, row := range rows {
					if err = rec.Record(row); err != nil {
						break
					}
					n++
				}
				mu.Lock()
				done += n
				if s.Progress != nil {
					s.Progress(done, len(todo))
				}
				mu.Unlock()
				if err == nil {
					err = runErr
				}
				if err != nil {
					fail(err)
				}
			}
		}()
	}
feed:
	for _, b := range bs {
		select {
		case jobs <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func (r *Runner) key(t Trial) results.Key { return Key(r.cfg, t) }

// Key is the results key of trial t of config c: its dtype is t.DType
// when set (a multi-dtype plan), else c's.
func Key(c *config.Config, t Trial) results.Key {
	dt := c.DType
	if t.DType != "" {
		dt = t.DType
	}
	return results.Key{Model: t.Model, Optimizer: t.Opt.Label, Eta: t.Eta, Init: t.Init, Trial: t.Index, DType: dt}
}
