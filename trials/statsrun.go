package trials

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/nets/seed"
	"github.com/perturb/perturb/trials/analysis/stats"
)

// StatsGroup returns the samples of estimation group g for a model's
// initialisation: four blocks of s samples (pool rows drawn uniformly with
// replacement, or N(0, 1) data for a landscape) from the stream
// seed.Stats keyed by (seed, model name, init, g). The draws are separate
// from every trial's and do not depend on how many groups are estimated.
func (r *Runner) StatsGroup(model string, init, g, s int) [stats.Blocks][]nets.Sample {
	rng := seed.New(seed.Stats, r.cfg.Seed, seed.StringID(model), uint64(init), uint64(g))
	var out [stats.Blocks][]nets.Sample
	for b := range out {
		if r.models[model].land != nil {
			out[b] = landscape.Samples(rng, s)
			continue
		}
		for _, row := range seed.Draw(rng, s, r.data.Len()) {
			out[b] = append(out[b], nets.Sample{Row: row})
		}
	}
	return out
}

// InitTheta returns the flat weights of a model's initialisation (as
// trials start from them, rounded to the config's dtype).
func (r *Runner) InitTheta(model string, init int) ([]float64, error) {
	if _, ok := r.models[model]; !ok {
		return nil, fmt.Errorf("model %q is not in config %s", model, r.cfg.Name)
	}
	st, err := r.newWorker(DefaultMaxBytes, 1).init(model, init)
	if err != nil {
		return nil, err
	}
	return append([]float64(nil), st.theta...), nil
}

// Oracle returns a stats.Oracle for a model at theta: closed forms for a
// landscape, Taylor-mode jets on the model's graph for an image model. An
// Oracle is not safe for concurrent use; make one per goroutine.
func (r *Runner) Oracle(model string, theta []float64) (stats.Oracle, error) {
	m, ok := r.models[model]
	if !ok {
		return nil, fmt.Errorf("model %q is not in config %s", model, r.cfg.Name)
	}
	if m.land != nil {
		o := landOracle{l: m.land, theta: theta}
		for _, cm := range r.cfg.Models {
			if cm.Key() == model {
				o.h = cm.H
			}
		}
		return o, nil
	}
	return &imageOracle{r: r, arch: m.arch, theta: theta, jets: map[[2]int]*graph.Jets{}}, nil
}

// Stats estimates every statistic at a model's initialisation from groups
// groups of four blocks of s samples, spread over workers goroutines
// (0: one per CPU). progress, if set, is called after each group. The
// result does not depend on workers.
func (r *Runner) Stats(ctx context.Context, model string, init, groups, s, workers int, progress func(done, total int)) ([]stats.Estimate, error) {
	vals, err := r.StatsGroups(ctx, model, init, groups, s, workers, progress)
	if err != nil {
		return nil, err
	}
	return stats.Summarize(vals), nil
}

// StatsGroups is Stats before the summary: every group's values, in
// stats.Names order, for stats.Summarize and stats.SummarizeCov.
func (r *Runner) StatsGroups(ctx context.Context, model string, init, groups, s, workers int, progress func(done, total int)) ([][]float64, error) {
	theta, err := r.InitTheta(model, init)
	if err != nil {
		return nil, err
	}
	vals := make([][]float64, groups)
	err = r.eachWithOracle(ctx, model, theta, groups, workers, func(o stats.Oracle, g int) (err error) {
		if vals[g], err = stats.Group(o, r.StatsGroup(model, init, g, s)); err != nil {
			return fmt.Errorf("%s init %d group %d: %w", model, init, g, err)
		}
		return nil
	}, progress)
	if err != nil {
		return nil, err
	}
	return vals, nil
}

// eachWithOracle calls do(o, i) for every i in [0, n) on up to workers
// goroutines (0: one per CPU), each with its own oracle for model at
// theta (so compiled graphs are reused across its calls). It stops at the
// first error or when ctx is cancelled; progress, if set, is called after
// each call, from one goroutine at a time.
func (r *Runner) eachWithOracle(ctx context.Context, model string, theta []float64, n, workers int, do func(o stats.Oracle, i int) error, progress func(done, total int)) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = max(1, min(workers, n))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     int
	)
	for w := 0; w < workers; w++ {
		o, err := r.Oracle(model, theta)
		if err != nil {
			cancel()
			close(next)
			wg.Wait()
			return err
		}
		if io, ok := o.(*imageOracle); ok {
			io.threads = max(1, runtime.NumCPU()/workers)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer closeOracle(o)
			for i := range next {
				err := do(o, i)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				done++
				if progress != nil {
					progress(done, n)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func closeOracle(o stats.Oracle) {
	if c, ok := o.(interface{ Close() error }); ok {
		c.Close()
	}
}

// landOracle is a landscape's closed forms at theta.
type landOracle struct {
	l     *landscape.Landscape
	theta []float64
	h     float64 // Mean Estimation's curvature (for the l2 test loss)
}

func (o landOracle) NumParams() int { return o.l.NumParams() }

func (o landOracle) Grads(s []nets.Sample, out [][]float64) error {
	for i, x := range s {
		o.l.SampleGrad(o.theta, x.X, out[i])
	}
	return nil
}

func (o landOracle) HVPs(v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	return o.l.Covector(1, o.theta, v, sets, meanWeights(sets), out)
}

func (o landOracle) Jets(v [][]float64, sets [][]nets.Sample, out [][4]float64) error {
	n := 0
	for _, set := range sets {
		n += len(set)
	}
	all := make([][4]float64, n)
	if err := o.l.Coeffs(o.theta, v, sets, all); err != nil {
		return err
	}
	meanJets(all, sets, out)
	return nil
}

// meanJets averages per-sample coefficients (concatenated in set order)
// over each set.
func meanJets(all [][4]float64, sets [][]nets.Sample, out [][4]float64) {
	i := 0
	for k, set := range sets {
		out[k] = [4]float64{}
		for range set {
			for c := range out[k] {
				out[k][c] += all[i][c] / float64(len(set))
			}
			i++
		}
	}
}

// imageOracle runs Taylor-mode jets on an image model's graph, one
// compiled graph per (directions, samples per direction) shape, through
// the walker (graph.NewDeviceJets): on the runner's device when it has one
// (UseDevice; the oracles of the workers share the serialised device),
// else on a CPU device of the config's dtype with the oracle's share of
// the CPUs. The walker's jets measured as fast as gorgonia's TapeMachine
// over the same graphs or faster for every model, order and dtype
// (graph's BenchmarkJets, docs/engine.md); the TapeMachine remains the
// tests' reference (Runner.tapeJets).
type imageOracle struct {
	r     *Runner
	arch  *nets.Arch
	theta []float64
	jets  map[[2]int]*graph.Jets
	// threads is the number of goroutines of the CPU device (0: one).
	threads int
}

func (o *imageOracle) NumParams() int { return o.arch.NumParams() }

func (o *imageOracle) get(k, b int) (*graph.Jets, error) {
	if j, ok := o.jets[[2]int{k, b}]; ok {
		return j, nil
	}
	var j *graph.Jets
	var err error
	switch dev := o.r.Device(); {
	case dev != nil:
		j, err = graph.NewDeviceJets(o.arch, o.r.dt, o.r.data, k, b, dev)
		if err != nil {
			err = fmt.Errorf("jets of %s on %s: %w", o.arch.Name, dev.Name(), err)
		}
	case o.r.tapeJets:
		j, err = graph.NewJets(o.arch, o.r.dt, o.r.data, k, b)
	default: // the CPU twin's device (the config's dtype)
		var twin *graph.DeviceData
		if twin, err = o.r.cpuTwin(); err == nil {
			cpu, _ := kernels.WithWorkers(twin.Dev, max(o.threads, 1))
			j, err = graph.NewDeviceJets(o.arch, o.r.dt, o.r.data, k, b, cpu)
		}
	}
	if err != nil {
		return nil, err
	}
	o.jets[[2]int{k, b}] = j
	return j, nil
}

// Close releases the compiled graphs.
func (o *imageOracle) Close() error {
	for _, j := range o.jets {
		j.Close()
	}
	return nil
}

func rowsOf(s []nets.Sample) []int {
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = x.Row
	}
	return out
}

func (o *imageOracle) Grads(s []nets.Sample, out [][]float64) error {
	j, err := o.get(len(s), 1)
	if err != nil {
		return err
	}
	return j.CovectorPerSample(0, o.theta, nil, rowsOf(s), out)
}

// bySize groups direction indices by the size of their sample sets, in
// first-seen order, as the graph needs one sample count per call.
func bySize(sets [][]nets.Sample) [][]int {
	idx := map[int]int{}
	var out [][]int
	for k, s := range sets {
		i, ok := idx[len(s)]
		if !ok {
			i = len(out)
			idx[len(s)] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], k)
	}
	return out
}

func (o *imageOracle) HVPs(v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	return o.meanCovector(1, v, sets, out)
}

// meanCovector sets out[k] to the mean over sets[k] of the gradient of
// the order-th Taylor coefficient along v[k] (order 1: H_n v; order 2:
// J_n(v, v, ·)/2), one graph run per set size.
func (o *imageOracle) meanCovector(order int, v [][]float64, sets [][]nets.Sample, out [][]float64) error {
	for _, ks := range bySize(sets) {
		b := len(sets[ks[0]])
		j, err := o.get(len(ks), b)
		if err != nil {
			return err
		}
		dirs, rows, res := make([][]float64, len(ks)), make([][]int, len(ks)), make([][]float64, len(ks))
		w := make([]float64, len(ks)*b)
		for i, k := range ks {
			dirs[i], rows[i], res[i] = v[k], rowsOf(sets[k]), out[k]
		}
		for i := range w {
			w[i] = 1 / float64(b)
		}
		if err := j.Covector(order, o.theta, dirs, rows, w, res); err != nil {
			return err
		}
	}
	return nil
}

func (o *imageOracle) Jets(v [][]float64, sets [][]nets.Sample, out [][4]float64) error {
	for _, ks := range bySize(sets) {
		b := len(sets[ks[0]])
		j, err := o.get(len(ks), b)
		if err != nil {
			return err
		}
		dirs, rows := make([][]float64, len(ks)), make([][]int, len(ks))
		sub := make([][]nets.Sample, len(ks))
		for i, k := range ks {
			dirs[i], rows[i], sub[i] = v[k], rowsOf(sets[k]), sets[k]
		}
		all := make([][4]float64, len(ks)*b)
		if err := j.Coeffs(o.theta, dirs, rows, all); err != nil {
			return err
		}
		res := make([][4]float64, len(ks))
		meanJets(all, sub, res)
		for i, k := range ks {
			out[k] = res[i]
		}
	}
	return nil
}
