package trials

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/nets/seed"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/optim"
	"github.com/perturb/perturb/trials/results"
	"github.com/perturb/perturb/trials/study/sharp"
)

// SharpnessPurpose is the seed purpose of the sharpness measurements'
// streams: the evaluation subset of the pool, keyed by (seed,
// "pool-subset"), and each measurement's probes, keyed by (seed, model,
// init, trial index, point, loss), where the trial index is sharpPoolInit
// for the pool loss at initialisation (shared by every trial of the
// initialisation). The optimiser and eta are not part of the key, so
// every optimiser's trial on a training set is measured with the same
// probes (common random numbers for paired differences).
const SharpnessPurpose = "perturb/sharpness/v1"

const (
	sharpPoolInit = 1 << 62 // trial index of the shared pool measure at init
	pointInit     = 0
	pointEnd      = 1
	lossTrain     = 0
	lossPool      = 1
)

// Image-model sizes of the sharpness computations: examples per
// Hessian-vector graph call (all trials together), per-sample gradients
// per call, and the memory the Lanczos bases of one sub-batch may take.
const (
	sharpHVPExamples  = 2048
	sharpGradChunk    = 512
	sharpBasisBytes   = 256 << 20
	sharpMaxSubBatchK = 64
)

// sharpState caches the measures at initialisation, which do not depend
// on the optimiser or eta: the pool measure once per (model, init), the
// training-set measure once per (model, init, trial index), whichever
// worker needs it first.
type sharpState struct {
	mu      sync.Mutex
	entries map[sharpKey]*sharpEntry
	subset  map[string][]nets.Sample
}

type sharpKey struct {
	model       string
	init, trial int
	loss        int
}

type sharpEntry struct {
	done chan struct{}
	m    *sharp.Measures
	err  error
}

// checkSharpness refuses a [sharpness] subset larger than the pool.
func (r *Runner) checkSharpness() error {
	s := r.cfg.Sharpness
	if s == nil || r.data == nil || !s.Has(s.On, "pool") {
		return nil
	}
	if s.Subset > r.data.Len() {
		return fmt.Errorf("config %s: sharpness.subset = %d is larger than the pool (%d examples); lower it", r.cfg.Path, s.Subset, r.data.Len())
	}
	return nil
}

// poolSubset returns the evaluation subset of the pool for a model: the
// first subset entries of a permutation of the pool's rows (distinct
// examples), or subset N(0,1) draws for a landscape, from the stream
// (seed, "pool-subset"): the same for every trial of a run.
func (r *Runner) poolSubset(model string) []nets.Sample {
	r.sharp.mu.Lock()
	defer r.sharp.mu.Unlock()
	if r.sharp.subset == nil {
		r.sharp.subset = map[string][]nets.Sample{}
	}
	kind := "image"
	if r.models[model].land != nil {
		kind = "landscape"
	}
	if s, ok := r.sharp.subset[kind]; ok {
		return s
	}
	n := r.cfg.Sharpness.Subset
	rng := seed.New(SharpnessPurpose, r.cfg.Seed, seed.StringID("pool-subset"))
	var out []nets.Sample
	if kind == "landscape" {
		out = landscape.Samples(rng, n)
	} else {
		for _, row := range rng.Perm(r.data.Len())[:n] {
			out = append(out, nets.Sample{Row: row})
		}
	}
	r.sharp.subset[kind] = out
	return out
}

// sharpOptions are the measures and settings of the config's table.
func sharpOptions(s *config.Sharpness) sharp.Options {
	return sharp.Options{
		Lambda: s.Has(s.Measures, sharp.Lambda), TrH: s.Has(s.Measures, sharp.TrH),
		TrC: s.Has(s.Measures, sharp.TrC), TrHC: s.Has(s.Measures, sharp.TrHC),
		Lanczos: sharp.LanczosOptions{Count: s.Eigenvalues, Tol: s.Tol, MaxIter: s.MaxIter},
		Trace:   sharp.TraceOptions{RelSE: s.TraceSE, MinProbes: s.MinProbes, MaxProbes: s.MaxProbes},
	}
}

// measure computes the measures of one loss for points thetas of a
// model, with sets[j] the samples of point j and ids[j] its stream key
// (init, trial index, point, loss), in sub-batches whose Lanczos bases fit
// the memory bound.
func (w *worker) measure(model string, thetas [][]float64, sets [][]nets.Sample, ids [][4]uint64) ([]*sharp.Measures, error) {
	if sharpMeasureFault != nil {
		sharpMeasureFault()
	}
	s := w.r.cfg.Sharpness
	m := w.r.models[model]
	opts := sharpOptions(s)
	sub := len(thetas)
	be, fast, err := w.sharpBackend(model)
	if err != nil {
		return nil, err
	}
	if m.land == nil {
		per := int64(s.MaxIter) * int64(m.numParams()) * 8
		// The chunked products keep each (trial, chunk)'s values for
		// their reruns within their budget: smaller sub-batches that fit
		// it (which changes no result).
		var cache, budget int64 = 0, 1
		if h, ok := be.(*graph.DeviceBackend); ok && fast && len(sets) > 0 {
			var err error
			if cache, err = h.HVPBytesPerTrial(len(sets[0])); err != nil {
				return nil, err
			}
			budget = h.HVPBytes
			defer h.DropHVPBanks() // the memory is the worker's between measurements
		}
		sub = 1
		for sub*2 <= sharpMaxSubBatchK && int64(sub*2)*per <= sharpBasisBytes && int64(sub*2)*cache <= budget {
			sub *= 2
		}
	}
	out := make([]*sharp.Measures, 0, len(thetas))
	for lo := 0; lo < len(thetas); lo += sub {
		hi := min(lo+sub, len(thetas))
		p := &sharp.Problem{Backend: be, Theta: thetas[lo:hi], Sets: sets[lo:hi]}
		if m.land == nil {
			p.Pad = true
			// A fixed grouping of each trial's samples (the chunk of the
			// largest sub-batch), so that a trial's sums are grouped the
			// same whatever the batch's size, K or the workers.
			p.Chunk = sharpHVPExamples / sharpMaxSubBatchK
			p.GradChunk = sharpGradChunk
		}
		if fast {
			// The chunked products take all samples at once, in a fixed
			// order whatever the sub-batch, and need no padding.
			p.Chunk, p.PadGradOnly = 0, true
		}
		rngs := make([]*rand.Rand, hi-lo)
		for j := range rngs {
			id := ids[lo+j]
			rngs[j] = seed.New(SharpnessPurpose, w.r.cfg.Seed, seed.StringID(model), id[0], id[1], id[2], id[3])
		}
		res, err := sharp.Measure(p, rngs, opts)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			out = append(out, r.Stored())
		}
	}
	return out, nil
}

// sharpBackend returns the backend of the sharpness measures of a model
// and whether its Hessian-vector products take all of a trial's samples
// in one call. Without a device, for an image model, a walker backend of
// its own (beside the training one) whose products run chunks of
// samples (graph.DeviceBackend.AutoHVPChunk) as programs of one trial on
// the worker's goroutines (graph.DeviceBackend.HVPChunk), keeping each
// (trial, chunk)'s values for the reruns of Lanczos and Hutchinson within
// a quarter of the worker's memory. Otherwise (a device, a landscape) the
// worker's backend.
func (w *worker) sharpBackend(model string) (optim.Backend, bool, error) {
	b := w.backend(model)
	db, ok := b.(*graph.DeviceBackend)
	if !ok || w.r.dev != nil {
		return b, false, nil
	}
	key := model + "\x00hvp"
	if h, ok := w.backends[key]; ok {
		return h, true, nil
	}
	h := w.cpuBackend(db.Arch)
	c, err := h.AutoHVPChunk()
	if err != nil {
		h.Close()
		return nil, false, fmt.Errorf("sharpness of %s: %w", model, err)
	}
	h.HVPChunk, h.HVPBytes = c, w.maxBytes/4
	w.backends[key] = h
	return h, true, nil
}

// sharpMeasureFault, when set (by tests), is called at the start of every
// measurement, e.g. to panic.
var sharpMeasureFault func()

// initMeasures returns the measures at initialisation theta of one loss
// for the given trial indices (sharpPoolInit alone for the pool loss),
// computing those no worker has claimed yet in one batch and waiting for
// the others.
func (w *worker) initMeasures(model string, init int, theta []float64, loss int, trials []int) (map[int]*sharp.Measures, error) {
	st := &w.r.sharp
	st.mu.Lock()
	if st.entries == nil {
		st.entries = map[sharpKey]*sharpEntry{}
	}
	var mine []int
	var mineE []*sharpEntry
	all := map[int]*sharpEntry{}
	for _, i := range trials {
		k := sharpKey{model, init, i, loss}
		e, ok := st.entries[k]
		if !ok {
			e = &sharpEntry{done: make(chan struct{})}
			st.entries[k] = e
			mine = append(mine, i)
			mineE = append(mineE, e)
		}
		all[i] = e
	}
	st.mu.Unlock()
	if len(mine) > 0 {
		thetas, sets, ids := make([][]float64, len(mine)), make([][]nets.Sample, len(mine)), make([][4]uint64, len(mine))
		for j, i := range mine {
			thetas[j] = theta
			if loss == lossPool {
				sets[j] = w.r.poolSubset(model)
			} else {
				sets[j] = w.r.Samples(Trial{Model: model, Init: init, Index: i})
			}
			ids[j] = [4]uint64{uint64(init), uint64(i), pointInit, uint64(loss)}
		}
		// Settle the claimed entries however the measurement ends: on an
		// error, or a panic (recovered by the batch's retry), forget them
		// so that a retry computes them again, and wake the waiting
		// workers with the error rather than leave them blocked for ever.
		var ms []*sharp.Measures
		err := fmt.Errorf("sharpness of %s init %d at initialisation: the measurement panicked", model, init)
		func() {
			defer func() {
				if err != nil {
					st.mu.Lock()
					for _, i := range mine {
						delete(st.entries, sharpKey{model, init, i, loss})
					}
					st.mu.Unlock()
				}
				for j, e := range mineE {
					if err != nil {
						e.err = err
					} else {
						e.m = ms[j]
					}
					close(e.done)
				}
			}()
			ms, err = w.measure(model, thetas, sets, ids)
		}()
		if err != nil {
			return nil, err
		}
	}
	out := map[int]*sharp.Measures{}
	for i, e := range all {
		<-e.done
		if e.err != nil {
			return nil, e.err
		}
		out[i] = e.m
	}
	return out, nil
}

// sharpness measures the batch's selected trials as the config's
// [sharpness] table asks (nothing without one) and stores the record in
// their rows: at initialisation (cached, see sharpState) and at the end
// for the trials that did not diverge, on the training set and on the
// pool subset.
func (w *worker) sharpness(b batch, init []float64, final [][]float64, rows []results.Row) error {
	s := w.r.cfg.Sharpness
	if s == nil {
		return nil
	}
	var sel []int
	for i, t := range b.trials {
		if s.Selected(t.Index) {
			sel = append(sel, i)
		}
	}
	if len(sel) == 0 {
		return nil
	}
	recs := make([]sharp.Record, len(b.trials))
	for _, lossName := range s.On {
		loss := lossTrain
		if lossName == "pool" {
			loss = lossPool
		}
		set := func(rec *sharp.Record, end bool, m *sharp.Measures) {
			p := &rec.Init
			if end {
				p = &rec.End
			}
			if *p == nil {
				*p = &sharp.Point{}
			}
			if loss == lossPool {
				(*p).Pool = m
			} else {
				(*p).Train = m
			}
		}
		if s.Has(s.At, "init") {
			idx := []int{sharpPoolInit}
			if loss == lossTrain {
				idx = nil
				seen := map[int]bool{}
				for _, i := range sel {
					if t := b.trials[i]; !seen[t.Index] {
						seen[t.Index] = true
						idx = append(idx, t.Index)
					}
				}
			}
			ms, err := w.initMeasures(b.model, b.init, init, loss, idx)
			if err != nil {
				return fmt.Errorf("at initialisation on the %s loss: %w", lossName, err)
			}
			for _, i := range sel {
				key := sharpPoolInit
				if loss == lossTrain {
					key = b.trials[i].Index
				}
				set(&recs[i], false, ms[key])
			}
		}
		if s.Has(s.At, "end") {
			var live []int
			for _, i := range sel {
				if rows[i].Status == results.StatusOK {
					live = append(live, i)
				}
			}
			if len(live) == 0 {
				continue
			}
			thetas, sets, ids := make([][]float64, len(live)), make([][]nets.Sample, len(live)), make([][4]uint64, len(live))
			for j, i := range live {
				t := b.trials[i]
				thetas[j] = final[i]
				if loss == lossPool {
					sets[j] = w.r.poolSubset(b.model)
				} else {
					sets[j] = w.r.Samples(t)
				}
				ids[j] = [4]uint64{uint64(t.Init), uint64(t.Index), pointEnd, uint64(loss)}
			}
			ms, err := w.measure(b.model, thetas, sets, ids)
			if err != nil {
				return fmt.Errorf("at the end on the %s loss: %w", lossName, err)
			}
			for j, i := range live {
				set(&recs[i], true, ms[j])
			}
		}
	}
	for _, i := range sel {
		js, err := recs[i].Encode()
		if err != nil {
			return fmt.Errorf("trial %v: %w", b.trials[i], err)
		}
		rows[i].Sharpness = js
	}
	return nil
}
