package trials

import (
	"context"
	"fmt"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/config"
)

// NewSweepRunner prepares the trials of c, which may sweep several
// dtypes (config.Config.DTypes): one Runner per dtype, each that of the
// single-dtype config c.ForDType(dt), so a trial's training set,
// initialisation and order are those of the single-dtype run. Rows carry
// c's hash (the run's config). For a single-dtype c it is NewRunner.
//
// A sweep Runner supports Run, RunOne, UseDevice and Close; the
// statistics and prediction methods need a single-dtype Runner.
func NewSweepRunner(c *config.Config, pool *data.Pool) (*Runner, error) {
	if len(c.DTypes) <= 1 {
		return NewRunner(c, pool)
	}
	r := &Runner{cfg: c, hash: c.Hash(), models: map[string]*model{}, inits: map[initKey]*initState{}}
	for _, dt := range c.DTypes {
		sub, err := NewRunner(c.ForDType(dt), pool)
		if err != nil {
			return nil, fmt.Errorf("dtype %s: %w", dt, err)
		}
		sub.hash = r.hash
		r.subs = append(r.subs, sub)
	}
	return r, nil
}

// sub is the runner of dtype dt in a sweep.
func (r *Runner) sub(dt string) (*Runner, error) {
	for _, s := range r.subs {
		if s.cfg.DType == dt {
			return s, nil
		}
	}
	return nil, fmt.Errorf("config %s has no dtype %q (dtypes %v)", r.cfg.Name, dt, r.cfg.DTypes)
}

// runSweep is Run of a sweep: each dtype's trials in turn, one progress
// count over all of them.
func (r *Runner) runSweep(ctx context.Context, rec Recorder, s Settings) error {
	todo := make([]int, len(r.subs))
	only := make([][]Trial, len(r.subs))
	total := 0
	for i, sub := range r.subs {
		plan := ShardPlan
		if s.Only != nil { // the listed trials of this dtype, as its plan gives them
			only[i] = []Trial{}
			for _, t := range s.Only {
				if t.DType == sub.cfg.DType {
					t.DType = ""
					only[i] = append(only[i], t)
				}
			}
			plan = func(*config.Config, Shard) []Trial { return only[i] }
		}
		for _, t := range plan(sub.cfg, s.Shard) {
			if !s.Skip[sub.key(t)] {
				todo[i]++
			}
		}
		total += todo[i]
	}
	before := 0
	for i, sub := range r.subs {
		ss := s
		ss.Only = only[i]
		if s.Progress != nil {
			off := before
			ss.Progress = func(done, _ int) { s.Progress(off+done, total) }
		}
		if err := sub.Run(ctx, rec, ss); err != nil {
			return fmt.Errorf("dtype %s: %w", sub.cfg.DType, err)
		}
		before += todo[i]
	}
	return nil
}

// useDeviceSweep is UseDevice of a sweep: dev goes to the runner of its
// dtype; the others stay on the CPU.
func (r *Runner) useDeviceSweep(dev kernels.Device) error {
	for _, sub := range r.subs {
		if (sub.cfg.DType == "float32") == (dev.DType() == kernels.F32) {
			return sub.UseDevice(dev)
		}
	}
	return fmt.Errorf("device %s computes in %s, none of config %s's dtypes %v", dev.Name(), dev.DType(), r.cfg.Name, r.cfg.DTypes)
}

// closeSweep is Close of a sweep.
func (r *Runner) closeSweep() error {
	var first error
	for _, sub := range r.subs {
		if err := sub.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
