package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/perturb/perturb/trials/analysis/report"
	"github.com/perturb/perturb/trials/config"
)

func init() {
	register(&command{
		name:  "plot",
		args:  "RUN... [--out DIR] [--eta-t-limit X] [--dtype float32,float64]",
		short: "overlay the measured test loss against η of several runs (or dtypes) with their predictions",
		long: `Reads each RUN (a run directory: results.sqlite, and stats.json from
"perturb stats RUN" for the predictions) and draws one figure
per model and initialisation found in them: the measured mean test-loss
change with 95% intervals against η of every run and optimiser (markers,
one colour and shape per run and optimiser, labelled by run name, with the
dtype when the runs differ in it), each run's order-1/2/3 predictions on a
dense η grid where ηT ≤ X (colour by order, line style by optimiser:
solid sgd, dashed gd, dotted and dash-dot others), and under it the
residuals z = (measured − predicted)/se per order with ±1.96 guides. The
y-range is set by the measurements; predictions are clipped to it.

Writes DIR/plot-MODEL-initK.png, .svg and .pdf (DIR defaults to the first
RUN's plots/ folder). --dtype keeps only the trials of the given dtypes
(comma-separated). A RUN without stats.json is drawn without predictions,
and the terminal says how to get them.`,
		run: plotCmd,
	})
}

func plotCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["plot"]
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("out", "", "output folder (default: RUN/plots)")
	limit := fs.Float64("eta-t-limit", 1, "draw predictions at learning rates with η·T up to this")
	dtype := fs.String("dtype", "", "plot only the trials of these dtypes, comma-separated ("+strings.Join(config.DTypes, ", ")+"; default all)")
	pos, err := parse(c, fs, args, -1, stderr)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		commandHelp(stderr, c, fs)
		return errUsage
	}
	if !(*limit > 0) {
		return fmt.Errorf("--eta-t-limit %g: want a positive number", *limit)
	}
	var dtypes []string
	if *dtype != "" {
		for _, d := range strings.Split(*dtype, ",") {
			d = strings.TrimSpace(d)
			if !slices.Contains(config.DTypes, d) {
				return fmt.Errorf("--dtype %q: %q is not a dtype; use %s", *dtype, d, strings.Join(config.DTypes, ", "))
			}
			dtypes = append(dtypes, d)
		}
	}
	var runs []*report.Run
	for _, p := range pos {
		r, err := report.Load(p)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(runs[0].Dir, "plots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runDirError("create", dir, err)
	}
	paths, err := report.Overlay(runs, dir, report.PlotOptions{EtaTLimit: *limit, DTypes: dtypes, Stderr: stderr})
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintf(stdout, "wrote %s (and .svg, .pdf)\n", p)
	}
	return nil
}
