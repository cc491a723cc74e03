package trials

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
	"github.com/perturb/perturb/trials/seed"
)

// Recorder receives finished trials. Record may be called from several
// goroutines at once.
type Recorder interface {
	Record(results.Row) error
}

// Settings controls how trials run; they never change the results.
type Settings struct {
	// Workers is the number of trials run in parallel; 0 means one per CPU.
	Workers int
	// Skip lists trials already recorded (a resumed run).
	Skip map[results.Key]bool
	// Progress, if set, is called after every finished trial with the
	// number done and the total to run (from one goroutine at a time).
	Progress func(done, total int)
}

// Runner runs the trials of one config on one pool.
type Runner struct {
	cfg   *config.Config
	hash  string
	dt    tensor.Dtype
	data  *graph.Data
	archs map[string]*nets.Arch

	mu    sync.Mutex
	inits map[initKey]*initState
}

type initKey struct {
	model string
	init  int
}

// initState is an initialisation's parameters and pool loss, computed once
// per run by whichever worker needs them first.
type initState struct {
	once      sync.Once
	params    graph.Params // never modified: trials train a Clone
	loss, acc float64
	err       error
}

// NewRunner prepares c's models for pool.
func NewRunner(c *config.Config, pool *data.Pool) (*Runner, error) {
	r := &Runner{cfg: c, hash: c.Hash(), archs: map[string]*nets.Arch{}, inits: map[initKey]*initState{}}
	r.data = &graph.Data{Y: pool.Labels, Dim: pool.Dim(), Classes: pool.Classes}
	switch c.DType {
	case "float32":
		r.dt = tensor.Float32
		r.data.X32 = pool.Float32()
	default:
		r.dt = tensor.Float64
		r.data.X64 = pool.Float64()
	}
	for _, m := range c.Models {
		a, err := nets.New(m.Name, pool.Channels, pool.Height, pool.Width, pool.Classes)
		if err != nil {
			return nil, fmt.Errorf("model %s on %s: %w", m.Name, pool.Name, err)
		}
		r.archs[m.Name] = a
	}
	return r, nil
}

// worker holds one goroutine's compiled graphs.
type worker struct {
	r        *Runner
	trainers map[trainerKey]*graph.Net
	evals    map[string]*graph.Evaluator
}

type trainerKey struct {
	model string
	batch int
}

func (r *Runner) newWorker() *worker {
	return &worker{r: r, trainers: map[trainerKey]*graph.Net{}, evals: map[string]*graph.Evaluator{}}
}

func (w *worker) close() {
	for _, n := range w.trainers {
		n.Close()
	}
	for _, e := range w.evals {
		e.Close()
	}
}

func (w *worker) trainer(model string, batch int) (*graph.Net, error) {
	k := trainerKey{model, batch}
	if n, ok := w.trainers[k]; ok {
		return n, nil
	}
	n, err := graph.Compile(w.r.archs[model], w.r.dt, batch, true)
	if err != nil {
		return nil, err
	}
	w.trainers[k] = n
	return n, nil
}

func (w *worker) evaluator(model string) *graph.Evaluator {
	if e, ok := w.evals[model]; ok {
		return e
	}
	a := w.r.archs[model]
	e := graph.NewEvaluator(a, w.r.dt, graph.DefaultChunk(a))
	w.evals[model] = e
	return e
}

// init returns initialisation id of model (shared: do not modify) with its
// pool loss and accuracy, computed once per run.
func (w *worker) init(model string, id int) (*initState, error) {
	w.r.mu.Lock()
	k := initKey{model, id}
	st, ok := w.r.inits[k]
	if !ok {
		st = &initState{}
		w.r.inits[k] = st
	}
	w.r.mu.Unlock()
	st.once.Do(func() {
		a := w.r.archs[model]
		vals, err := a.Init(id)
		if err != nil {
			st.err = err
			return
		}
		st.params = graph.NewParams(a, vals, w.r.dt)
		st.loss, st.acc, st.err = w.evaluator(model).Mean(st.params, w.r.data, nil)
	})
	return st, st.err
}

// TrainingSet returns the pool indices of trial t's training set and the
// order of epoch e.
func TrainingSet(c *config.Config, t Trial, poolLen int) []int {
	return seed.Draw(seed.New(seed.TrainSet, c.Seed, uint64(t.Init), uint64(t.Index)), c.Trials.N, poolLen)
}

// epochOrder returns the training set in the order epoch e visits it.
func epochOrder(c *config.Config, t Trial, set []int, e int) []int {
	if e == 0 || !t.Opt.Reshuffle {
		return set
	}
	perm := seed.New(seed.Shuffle, c.Seed, uint64(t.Init), uint64(t.Index), uint64(e)).Perm(len(set))
	out := make([]int, len(set))
	for i, j := range perm {
		out[i] = set[j]
	}
	return out
}

// run executes one trial.
func (w *worker) run(t Trial) (results.Row, error) {
	c := w.r.cfg
	row := results.Row{
		ConfigHash: w.r.hash, Model: t.Model, Optimizer: t.Opt.Label, Eta: t.Eta,
		Init: t.Init, Trial: t.Index, DType: c.DType,
		N: c.Trials.N, Batch: t.Opt.Batch, Epochs: t.Opt.Epochs, Steps: t.Opt.Steps,
		Status: results.StatusOK,
	}
	init, err := w.init(t.Model, t.Init)
	if err != nil {
		return row, fmt.Errorf("%v: initialisation: %w", t, err)
	}
	row.InitTestLoss, row.InitTestAcc = init.loss, init.acc
	p := init.params.Clone()
	net, err := w.trainer(t.Model, t.Opt.Batch)
	if err != nil {
		return row, err
	}
	set := TrainingSet(c, t, w.r.data.Len())
	diverged := false
train:
	for e := 0; e < t.Opt.Epochs; e++ {
		order := epochOrder(c, t, set, e)
		for b := 0; b+t.Opt.Batch <= len(order); b += t.Opt.Batch {
			loss, g, err := net.Grad(p, w.r.data, order[b:b+t.Opt.Batch])
			if err != nil {
				return row, fmt.Errorf("%v: %w", t, err)
			}
			if !finite(loss) {
				diverged = true
				break train
			}
			p.Step(t.Eta, g)
		}
	}
	nan := math.NaN()
	if diverged || !p.Finite() {
		row.Status, row.TestLoss, row.TestAcc, row.TrainLoss = results.StatusDiverged, nan, nan, nan
		return row, nil
	}
	ev := w.evaluator(t.Model)
	if row.TrainLoss, _, err = ev.Mean(p, w.r.data, set); err != nil {
		return row, fmt.Errorf("%v: train loss: %w", t, err)
	}
	if row.TestLoss, row.TestAcc, err = ev.Mean(p, w.r.data, nil); err != nil {
		return row, fmt.Errorf("%v: test loss: %w", t, err)
	}
	if !finite(row.TestLoss) || !finite(row.TrainLoss) {
		row.Status = results.StatusDiverged
	}
	return row, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// RunOne runs a single trial on a fresh worker (for tests and debugging).
func (r *Runner) RunOne(t Trial) (results.Row, error) {
	w := r.newWorker()
	defer w.close()
	return w.run(t)
}

// Run runs every trial of the plan not in s.Skip and hands each row to rec.
// It stops at the first error (which names the trial), or when ctx is
// cancelled after the trials in progress finish; rows recorded before that
// stay recorded.
func (r *Runner) Run(ctx context.Context, rec Recorder, s Settings) error {
	var todo []Trial
	for _, t := range Plan(r.cfg) {
		if !s.Skip[r.key(t)] {
			todo = append(todo, t)
		}
	}
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, max(len(todo), 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan Trial)
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
			w := r.newWorker()
			defer w.close()
			for t := range jobs {
				row, err := w.run(t)
				if err == nil {
					err = rec.Record(row)
				}
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				done++
				if s.Progress != nil {
					s.Progress(done, len(todo))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range todo {
		select {
		case jobs <- t:
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

func (r *Runner) key(t Trial) results.Key {
	return results.Key{Model: t.Model, Optimizer: t.Opt.Label, Eta: t.Eta, Init: t.Init, Trial: t.Index, DType: r.cfg.DType}
}
