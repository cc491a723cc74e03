package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// Calibration of the wall-time estimate.
const (
	// calibBudget bounds the time calibration spends running trials;
	// groups left when it is spent are estimated from the measured groups
	// of the same model, per training step.
	calibBudget = 8 * time.Second
	// calibImage and calibLandscape are the trials run per group.
	calibImage, calibLandscape = 2, 16
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
	calib      int     // trials run to calibrate
	perTrial   float64 // seconds per trial, measured (or derived if !measured)
	measured   bool
}

// estimate is the wall-time estimate of running todo.
type estimate struct {
	groups []*group
	total  time.Duration // estimated wall time of the whole todo
	took   time.Duration // calibration time
}

// calibrate runs a few trials of each (model, optimizer) group of todo for
// real (their rows are discarded: nothing is written) with one worker,
// which gives the evaluator every CPU as a full run's workers together
// have, and scales each group's time per trial by its number of trials.
// Calibration batches are small, and a run's batches of up to K trials
// amortise more, so the estimate is on the high side.
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
	landscape := map[string]bool{}
	for _, m := range cfg.Models {
		landscape[m.Key()] = m.IsLandscape()
	}
	plan := trials.ShardPlan(cfg, shard)
	for _, g := range groups {
		if time.Since(start) > calibBudget {
			break
		}
		n := calibImage
		if landscape[g.model] {
			n = calibLandscape
		}
		n = min(n, len(g.todo))
		run := map[results.Key]bool{}
		for _, t := range g.todo[:n] {
			run[trials.Key(cfg, t)] = true
		}
		skip := map[results.Key]bool{}
		for _, t := range plan {
			if k := trials.Key(cfg, t); !run[k] {
				skip[k] = true
			}
		}
		t0 := time.Now()
		err := runner.Run(ctx, &discard{}, trials.Settings{Workers: 1, K: s.K, MaxBytes: s.MaxBytes, Shard: shard, Skip: skip})
		if err != nil {
			return nil, fmt.Errorf("calibrate on %s %s: %w", g.model, g.opt, err)
		}
		g.calib, g.perTrial, g.measured = n, time.Since(t0).Seconds()/float64(n), true
	}
	// Groups left: the same model's measured cost per step.
	perStep := map[string]float64{}
	for _, g := range groups {
		if g.measured && g.steps > 0 {
			perStep[g.model] = max(perStep[g.model], g.perTrial/float64(g.steps))
		}
	}
	e := &estimate{groups: groups}
	var total float64
	for _, g := range groups {
		if !g.measured {
			g.perTrial = perStep[g.model] * float64(g.steps)
		}
		total += g.perTrial * float64(len(g.todo))
	}
	e.total = time.Duration(total * float64(time.Second))
	e.took = time.Since(start)
	return e, nil
}

// complete reports whether every group was calibrated or derived.
func (e *estimate) complete() bool {
	for _, g := range e.groups {
		if !g.measured && g.perTrial == 0 {
			return false
		}
	}
	return true
}

// summary is the one-line estimate.
func (e *estimate) summary() string {
	s := fmt.Sprintf("estimated wall time %s (calibrated in %.1fs on a few trials per model and optimizer; larger batches usually run faster)",
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
	default:
		return d.Round(100 * time.Millisecond)
	}
}

// writePlan prints the dry run: trials per cell, the calibration per
// group, the estimate.
func writePlan(w io.Writer, cfg *config.Config, dir string, total, stored int, cells []cell, e *estimate) error {
	todo := total - stored
	fmt.Fprintf(w, "dry run of %s (%s): %d trials in %d cells (model, init, optimizer, eta) into %s", cfg.Name, cfg.DType, todo, len(cells), dir)
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
		fmt.Fprintln(tw, "model\toptimizer\ttrials\tcalibration trials\ts/trial\testimate")
		for _, g := range e.groups {
			calib := strconv.Itoa(g.calib)
			if !g.measured {
				calib = "- (per step of the model's other optimizers)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3g\t%s\n", g.model, g.opt, len(g.todo), calib, g.perTrial,
				roundDuration(time.Duration(g.perTrial*float64(len(g.todo))*float64(time.Second))))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, e.summary())
	}
	fmt.Fprintln(w, "nothing written (dry run)")
	return nil
}
