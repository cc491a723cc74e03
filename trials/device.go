package trials

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/optim"
)

// deviceEvalBytes is the device memory budgeted per example·trial of a
// test-loss chunk (the evaluation's share of a worker's budget is divided
// by it to choose the chunk length; the result does not depend on it).
const deviceEvalBytes = 8 << 10

// runnerDevice is the device of a runner's image models (UseDevice): the
// device, serialised so that workers can share it, and the data pool
// uploaded once.
type runnerDevice struct {
	dev  kernels.Device
	data *graph.DeviceData
}

// UseDevice makes the runner compute its image-model trials on dev: the
// gradients and Hessian-vector products of the optimisers (sgd, gd, gdc,
// igr, smith; graph.DeviceBackend), the test loss (graph.DeviceTestLoss)
// and the train loss, and the statistics' and Taylor predictions' jets
// (Oracle, StatsGroups, Taylor: graph.NewDeviceJets). Landscapes stay on
// the CPU, and so do the sharpness measures' fast Hessian-vector products
// (they fall back to the device graphs). dev must compute in the
// config's dtype (the GPU computes in float32). The pool is uploaded once;
// workers share dev through kernels.Serial. Call Close to release it.
//
// A trial's row depends only on the config and the trial's identity, as on
// the CPU: not on K, the workers or the order. On the CPU twin
// (kernels.CPU) it equals the CPU path's row to rounding (see
// TestDevicePathMatchesCPU).
func (r *Runner) UseDevice(dev kernels.Device) error {
	if r.subs != nil {
		return r.useDeviceSweep(dev)
	}
	want := kernels.F64
	if r.dt == tensor.Float32 {
		want = kernels.F32
	}
	if dev.DType() != want {
		return fmt.Errorf("device %s computes in %s, config %s is %s", dev.Name(), dev.DType(), r.cfg.Name, r.cfg.DType)
	}
	if r.data == nil {
		return nil // landscapes only: nothing to put on the device
	}
	if r.dev != nil {
		if err := r.Close(); err != nil {
			return err
		}
	}
	sdev := kernels.Serial(dev)
	dd, err := graph.UploadData(sdev, r.data)
	if err != nil {
		return fmt.Errorf("upload the data pool to %s: %w", dev.Name(), err)
	}
	r.dev = &runnerDevice{dev: sdev, data: dd}
	return nil
}

// Device returns the device UseDevice set, or nil.
func (r *Runner) Device() kernels.Device {
	if r.dev == nil {
		return nil
	}
	return r.dev.dev
}

// Close releases the device memory of UseDevice (the pool); the device
// itself is the caller's.
func (r *Runner) Close() error {
	if r.subs != nil {
		return r.closeSweep()
	}
	if r.dev == nil {
		return nil
	}
	d := r.dev
	r.dev = nil
	return d.data.Close()
}

// workerDevice holds a worker's device programs.
type workerDevice struct {
	backends map[string]*graph.DeviceBackend
	evals    map[string]*graph.DeviceTestLoss
	// caps holds the capacities lowered after the device ran out of
	// memory: the programs are dropped after a failed batch, but their
	// successors must not be padded back to the size that did not fit.
	caps map[string]int
}

// capTrials is the number of trials of the worker's batches of a model
// (calls with fewer are padded to it on the device).
func (w *worker) capTrials(name string) int {
	if c, ok := w.devState().caps[name]; ok {
		return c
	}
	if w.batchK != nil {
		return w.batchK(name)
	}
	for _, m := range w.r.cfg.Models {
		if m.Key() == name {
			return AutoK(m, w.maxBytes)
		}
	}
	return 1
}

func (w *worker) devState() *workerDevice {
	if w.dev == nil {
		w.dev = &workerDevice{backends: map[string]*graph.DeviceBackend{}, evals: map[string]*graph.DeviceTestLoss{}, caps: map[string]int{}}
	}
	return w.dev
}

// deviceBackend returns the worker's device backend of an image model.
func (w *worker) deviceBackend(name string, arch *nets.Arch) optim.Backend {
	s := w.devState()
	if b, ok := s.backends[name]; ok {
		return b
	}
	b, err := graph.NewDeviceBackend(arch, w.r.dev.data, w.capTrials(name))
	if err != nil {
		panic(err) // the pool and the models were checked by NewRunner
	}
	s.backends[name] = b
	return b
}

// cpuTwin returns the pool on the CPU twin in the config's dtype,
// uploaded on first use, once per runner, and shared by the workers (the
// CPU twin keeps no state and its buffers are Go slices: the workers only
// read the pool, each through its own programs).
func (r *Runner) cpuTwin() (*graph.DeviceData, error) {
	r.walk.once.Do(func() {
		dt := kernels.F64
		if r.dt == tensor.Float32 {
			dt = kernels.F32
		}
		if r.walk.data, r.walk.err = graph.UploadData(kernels.NewCPU(dt), r.data); r.walk.err != nil {
			r.walk.err = fmt.Errorf("upload the pool to the CPU twin: %w", r.walk.err)
		}
	})
	return r.walk.data, r.walk.err
}

// cpuNets is the number of programs a worker's CPU backend keeps per
// model: one per (trials, samples, kind) a run meets, as the TapeMachine
// backend did (full and short batches, retried halves, train losses).
const cpuNets = 16

// cpuBackend returns the training backend of an image model without a
// device: the walker (graph.DeviceBackend) on the CPU twin in the config's
// dtype, on the worker's share of the CPUs (kernels.WithWorkers), without
// padding (on the CPU a padded trial costs as much as a real one), for
// the gradients: it measured faster than the TapeMachine over the same
// batched graph (graph's test reference ImageBackend) on every case of graph's
// BenchmarkTrainStep, and so are its Hessian-vector products (gdc, igr,
// smith, stic; BenchmarkTrainHVP) since the small-N products pack A's rows
// (docs/engine.md). A trial's results still depend only on its own
// parameters and samples.
func (w *worker) cpuBackend(arch *nets.Arch) *graph.DeviceBackend {
	data, err := w.r.cpuTwin()
	if err != nil {
		panic(fmt.Sprintf("training backend of %s: %v", arch.Name, err)) // Go slices: cannot fail
	}
	dev, _ := kernels.WithWorkers(data.Dev, w.threads)
	b, err := graph.NewDeviceBackend(arch, data.On(dev), 1)
	if err != nil {
		panic(err) // the pool and the models were checked by NewRunner
	}
	b.MaxNets = cpuNets
	return b
}

// imageEval returns the worker's test-loss programs of an image model:
// on the device, or without one on the CPU twin in the config's dtype,
// over the pool uploaded to it once per runner (cpuTwin). A trial's result
// depends on neither K nor the chunk length.
func (w *worker) imageEval(name string) (*graph.DeviceTestLoss, error) {
	if w.r.dev != nil {
		return w.walkedEval(w.devState().evals, w.r.dev.data, name, w.capTrials(name))
	}
	data, err := w.r.cpuTwin()
	if err != nil {
		return nil, err
	}
	if w.walks == nil {
		w.walks = map[string]*graph.DeviceTestLoss{}
	}
	// A batch holds at most one group, Count·len(Etas) trials: a larger
	// capacity would only pad the evaluation with trials computed in vain
	// (on the CPU, they cost as much as real ones).
	k := min(w.capTrials(name), max(w.r.cfg.Trials.Count*len(w.r.cfg.Trials.Etas), 1))
	return w.walkedEval(w.walks, data, name, k)
}

// walkedEval returns the walker's test-loss programs kept in evals,
// compiled on first use for k trials, in chunks within the evaluation's
// share of the worker's budget (on the CPU, NewDeviceEval cuts them
// further to cache-sized chunks).
func (w *worker) walkedEval(evals map[string]*graph.DeviceTestLoss, data *graph.DeviceData, name string, k int) (*graph.DeviceTestLoss, error) {
	if e, ok := evals[name]; ok {
		return e, nil
	}
	chunk := int(max(w.maxBytes/2/(int64(k)*deviceEvalBytes), 1))
	e, err := graph.NewDeviceTestLoss(w.r.models[name].arch, data, k, chunk)
	if err != nil {
		return nil, fmt.Errorf("test loss of %s on %s: %w", name, data.Dev.Name(), err)
	}
	evals[name] = e
	return e, nil
}

// dropDevice releases the worker's device programs and walked test-loss
// programs (imageEval) of a model (after a failed batch) or, with name
// "", of every model.
func (w *worker) dropDevice(name string) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for n, e := range w.walks {
		if name == "" || n == name {
			keep(e.Close())
			delete(w.walks, n)
		}
	}
	if w.dev == nil {
		return first
	}
	lower := func(n string, c int) {
		if c < w.capTrials(n) {
			w.dev.caps[n] = c
		}
	}
	for n, b := range w.dev.backends {
		if name == "" || n == name {
			lower(n, b.Cap)
			keep(b.Close())
			delete(w.dev.backends, n)
		}
	}
	for n, e := range w.dev.evals {
		if name == "" || n == name {
			lower(n, e.Cap)
			keep(e.Close())
			delete(w.dev.evals, n)
		}
	}
	return first
}

// batchKFunc returns the number of trials per batch of each model for s
// and a worker budget.
func batchKFunc(models []config.Model, s Settings, perWorker int64) func(string) int {
	byName := map[string]config.Model{}
	for _, m := range models {
		byName[m.Key()] = m
	}
	return func(name string) int {
		if s.K > 0 {
			return s.K
		}
		return AutoK(byName[name], perWorker)
	}
}
