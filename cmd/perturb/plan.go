package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
)

// Calibration of the wall-time estimate.
const (
	// calibBudget bounds the time calibration spends running trials;
	// groups left when it is spent are estimated from the measured groups
	// of the same model, per training step.
	calibBudget = 8 * time.Second
	// estimateAbove is the number of trials to run above which perturb
	// run calibrates and prints an estimate before starting (smaller runs
	// take minutes at most, and calibration would be a large share).
	estimateAbove = 500
)

// cell is one (model, init, optimizer, eta) of a plan, with its trials.
type cell struct {
	model, opt string
	init       int
	eta        float64
	trials     int
}

// cellsOf counts the trials of todo per cell, in plan order.
func cellsOf(todo []trials.Trial) []cell {
	type ck struct {
		model, opt string
		init       int
		eta        float64
	}
	idx := map[ck]int{}
	var out []cell
	for _, t := range todo {
		k := ck{t.Model, t.Opt.Label, t.Init, t.Eta}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, cell{model: t.Model, opt: t.Opt.Label, init: t.Init, eta: t.Eta})
		}
		out[i].trials++
	}
	return out
}

// group is the trials of one (model, optimizer): they cost about the same
// each, whatever the init and eta.
type group struct {
	model, opt string
	steps      int
	todo       []trials.Trial
	k          int     // trials per batch (K)
	batches    int     // batches of up to K trials the run will make
	calib      int     // trials run to calibrate
	fixed      float64 // seconds per batch, whatever its size
	perTrial   float64 // seconds per trial on top of that
	measured   bool
}

// seconds is the group's estimated time.
func (g *group) seconds() float64 {
	return float64(g.batches)*g.fixed + float64(len(g.todo))*g.perTrial
}

// estimate is the wall-time estimate of running todo.
type estimate struct {
	groups []*group
	total  time.Duration // estimated wall time of the whole todo
	took   time.Duration // calibration time
}

// calibrate runs a few trials of each (model, optimizer) group of todo for
// real (their rows are discarded: nothing is written) with one worker,
// which gives the evaluator every CPU, as a full run's workers together
// have, and runs only the timed trials (Settings.Only: the sweep is not
// planned each time, as a real run plans it once). Every group is timed,
// after a warm-up trial, on one whole batch of K trials
// (its estimate is then its batches times that), or on as many trials as
// take about 3 s (then its trials times the time per trial). Groups left
// when the budget is spent take the same model's costs scaled by their
// steps.
func calibrate(ctx context.Context, runner *trials.Runner, cfg *config.Config, shard trials.Shard, todo []trials.Trial, s trials.Settings) (*estimate, error) {
	start := time.Now()
	byKey := map[[2]string]*group{}
	var groups []*group
	for _, t := range todo {
		k := [2]string{t.Model, t.Opt.Label}
		g := byKey[k]
		if g == nil {
			g = &group{model: t.Model, opt: t.Opt.Label, steps: t.Opt.Steps}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.todo = append(g.todo, t)
	}
	models := map[string]config.Model{}
	for _, m := range cfg.Models {
		models[m.Key()] = m
	}
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	maxBytes := s.MaxBytes
	if maxBytes <= 0 {
		maxBytes = trials.DefaultMaxBytes
	}
	for _, g := range groups {
		k := s.K
		if k <= 0 {
			k = trials.AutoK(models[g.model], maxBytes/int64(workers))
		}
		g.k = k
		perInit := map[int]int{}
		for _, t := range g.todo {
			perInit[t.Init]++
		}
		for _, n := range perInit {
			g.batches += (n + k - 1) / k
		}
	}
	// timeRun runs trials ts (Settings.Only: the sweep is not planned
	// again) in batches of at most k trials (0: the run's K) and returns
	// the seconds it took.
	timeRun := func(ts []trials.Trial, k int) (float64, error) {
		if k == 0 {
			k = s.K
		}
		t0 := time.Now()
		err := runner.Run(ctx, &discard{}, trials.Settings{Workers: 1, K: k, MaxBytes: maxBytes, Shard: shard, Only: ts})
		return time.Since(t0).Seconds(), err
	}
	for _, g := range groups {
		if time.Since(start) > calibBudget {
			break
		}
		// With a subset test loss, the trials checked against the whole
		// pool (trials.PoolChecked, one in 500) would make the few timed
		// trials look as costly as an exact run: time the others.
		todo := g.todo
		if cfg.Trials.Test != nil {
			var rest []trials.Trial
			for _, t := range g.todo {
				if !trials.PoolChecked(cfg, t) {
					rest = append(rest, t)
				}
			}
			if len(rest) >= 2 {
				todo = rest
			}
		}
		// Warm up (initial state, the group's graphs) and time one
		// trial; then one batch as the run makes them: K trials, or as
		// many as take about 3 s (at least 2). A batch of a few trials
		// hides the per-trial cost behind the fixed one, and the
		// optimisers' per-trial costs differ (GDC's per-example
		// Hessian-vector products), so every group is timed on its own.
		_, err := timeRun(todo[:1], 0)
		var t1, t float64
		if err == nil {
			t1, err = timeRun(todo[:1], 0)
		}
		n := min(len(todo), g.k)
		if t1 > 0 {
			n = max(min(n, int(3/t1)), min(2, len(todo)))
		}
		if err == nil {
			t, err = timeRun(todo[:n], n)
		}
		if err != nil {
			return nil, fmt.Errorf("calibrate on %s %s: %w", g.model, g.opt, err)
		}
		g.calib, g.measured = n, true
		if n == g.k {
			g.fixed = t // a whole batch
		} else {
			g.perTrial = t / float64(n)
		}
	}
	// Groups left: the same model's measured costs per step.
	type perStep struct{ fixed, per float64 }
	steps := map[string]perStep{}
	for _, g := range groups {
		if g.measured && g.steps > 0 {
			ps := steps[g.model]
			steps[g.model] = perStep{max(ps.fixed, g.fixed/float64(g.steps)), max(ps.per, g.perTrial/float64(g.steps))}
		}
	}
	e := &estimate{groups: groups}
	var total float64
	for _, g := range groups {
		if !g.measured {
			ps := steps[g.model]
			g.fixed, g.perTrial = ps.fixed*float64(g.steps), ps.per*float64(g.steps)
		}
		total += g.seconds()
	}
	e.total = time.Duration(total * float64(time.Second))
	e.took = time.Since(start)
	return e, nil
}

// complete reports whether every group was calibrated or derived.
func (e *estimate) complete() bool {
	for _, g := range e.groups {
		if !g.measured && g.seconds() == 0 {
			return false
		}
	}
	return true
}

// summary is the one-line estimate.
func (e *estimate) summary() string {
	s := fmt.Sprintf("estimated wall time %s (calibrated in %.1fs on a few trials per model and optimizer)",
		roundDuration(e.total), e.took.Seconds())
	if !e.complete() {
		s += "; some groups were not calibrated within the time budget and are left out"
	}
	return s
}

// roundDuration rounds d for display.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d > time.Hour:
		return d.Round(time.Minute)
	case d > time.Minute:
		return d.Round(time.Second)
	case d > time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// writePlan prints the dry run: trials per cell, the calibration per
// group, the estimate.
func writePlan(w io.Writer, cfg *config.Config, dir string, total, stored int, cells []cell, e *estimate) error {
	todo := total - stored
	fmt.Fprintf(w, "dry run of %s (%s): %d trials in %d cells (model, init, optimizer, eta) into %s", cfg.Name, strings.Join(cfg.DTypeList(), " and "), todo, len(cells), dir)
	if stored > 0 {
		fmt.Fprintf(w, "; %d of %d already stored", stored, total)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tinit\toptimizer\teta\ttrials")
	for _, c := range cells {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", c.model, c.init, c.opt, strconv.FormatFloat(c.eta, 'g', -1, 64), c.trials)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if e != nil {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "model\toptimizer\ttrials\tbatches\tcalibration trials\ts/batch\ts/trial\testimate")
		for _, g := range e.groups {
			calib := strconv.Itoa(g.calib)
			if !g.measured {
				calib = "- (per step of the model's other optimizers)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.3g\t%.3g\t%s\n", g.model, g.opt, len(g.todo), g.batches, calib, g.fixed, g.perTrial,
				roundDuration(time.Duration(g.seconds()*float64(time.Second))))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, e.summary())
	}
	fmt.Fprintln(w, "nothing written (dry run)")
	return nil
}
