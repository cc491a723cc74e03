package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/perturb/perturb/trials/plots"
	"github.com/perturb/perturb/trials/results"
)

// PlotOptions tune Overlay.
type PlotOptions struct {
	// EtaTLimit draws the predictions only where η·T is at most this;
	// 0 means 1.
	EtaTLimit float64
	// DTypes keeps only the trials of these dtypes ("float32",
	// "float64"); empty keeps all.
	DTypes []string
	// Stderr receives the notes for the terminal; nil means os.Stderr.
	Stderr io.Writer
}

// Overlay draws one figure per (model, init) found in the runs: the
// measured test-loss change against η of every run (and dtype) and
// optimiser, each with its run's order-1/2/3 predictions where the run has
// statistics, and the residual panel. The groups are labelled by run name
// (the config's name, or the folder's when names repeat), with the dtype
// added when the trials shown have more than one. The figures go to
// dir/plot-MODEL-initK.{png,svg,pdf}; Overlay returns the PNG paths.
func Overlay(runs []*Run, dir string, opt PlotOptions) ([]string, error) {
	if opt.EtaTLimit <= 0 {
		opt.EtaTLimit = 1
	}
	w := opt.Stderr
	if w == nil {
		w = os.Stderr
	}
	srcs := overlaySources(runs, opt.DTypes)
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no trials to plot (dtypes %v)", opt.DTypes)
	}
	type modelInit struct {
		model string
		init  int
	}
	var keys []modelInit
	for _, r := range runs {
		for _, m := range r.Config.Models {
			for _, init := range m.Inits {
				if k := (modelInit{m.Key(), init}); !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
	}
	missing := map[*Run][]string{} // run → "model init k" without statistics
	var paths []string
	for _, k := range keys {
		var groups []plots.EtaGroup
		color := 0
		for _, src := range srcs {
			g, err := etaGroups(src, k.model, k.init, lossQuantity, &color)
			if err != nil {
				return nil, err
			}
			groups = append(groups, g...)
			if _, ok := statsOf(src.run, k.model, k.init); !ok && len(g) > 0 {
				if what := fmt.Sprintf("%s init %d", k.model, k.init); !slices.Contains(missing[src.run], what) {
					missing[src.run] = append(missing[src.run], what)
				}
			}
		}
		if len(groups) == 0 {
			continue
		}
		f := etaFigure(fmt.Sprintf("%s init %d: test-loss change", k.model, k.init), lossQuantity, groups, opt.EtaTLimit)
		for _, src := range srcs {
			if _, ok := statsOf(src.run, k.model, k.init); !ok {
				what := "no statistics: no predictions"
				if src.label != "" {
					what = src.label + ": no statistics"
				}
				f.Notes = append(f.Notes, what)
			}
		}
		png, _, err := f.Save(dir, sanitize(fmt.Sprintf("plot-%s-init%d", k.model, k.init)))
		if err != nil {
			return nil, fmt.Errorf("%s init %d: %w", k.model, k.init, err)
		}
		paths = append(paths, png)
	}
	for _, r := range runs {
		if len(missing[r]) > 0 {
			fmt.Fprintf(w, "plot: %s has no statistics for %s: its measured points are drawn without predictions; for them run\n  %s\n",
				r.Dir, joinList(missing[r]), statsHint(r))
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no (model, init) has measured trials to plot")
	}
	return paths, nil
}

// overlaySources splits the runs by the dtype of their trials (keeping
// the dtypes asked for, all when none) and labels each part.
func overlaySources(runs []*Run, dtypes []string) []etaSource {
	names := map[string]int{}
	for _, r := range runs {
		names[r.Config.Name]++
	}
	type part struct {
		run   *Run
		dtype string
		rows  []results.Row
	}
	var parts []part
	allDTypes := map[string]bool{}
	for _, r := range runs {
		byDType := map[string][]results.Row{}
		var order []string
		for _, row := range r.Rows {
			dt := row.DType
			if dt == "" {
				dt = r.Config.DType
			}
			if len(dtypes) > 0 && !slices.Contains(dtypes, dt) {
				continue
			}
			if _, ok := byDType[dt]; !ok {
				order = append(order, dt)
			}
			byDType[dt] = append(byDType[dt], row)
		}
		for _, dt := range order {
			parts = append(parts, part{r, dt, byDType[dt]})
			allDTypes[dt] = true
		}
	}
	var srcs []etaSource
	for _, p := range parts {
		label := ""
		if len(parts) > 1 {
			label = p.run.Config.Name
			if names[label] > 1 {
				label = filepath.Base(p.run.Dir)
			}
			if len(allDTypes) > 1 {
				label += " " + p.dtype
			}
		}
		srcs = append(srcs, etaSource{run: p.run, ix: newIndex(p.rows), label: label})
	}
	return srcs
}
