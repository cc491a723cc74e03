package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/perturb/perturb/trials/analysis/report"
	"github.com/perturb/perturb/trials/config"
)

func init() {
	register(&command{
		name:  "report",
		args:  "RUN... [--out DIR] [--eta-t-limit X]",
		short: "write a Markdown report with plots: measurements against the theory's predictions, with verdicts",
		long: `Reads each RUN (a run directory: results.sqlite, and stats.json from
"perturb stats RUN" for the predictions) and writes DIR/report.md
with PNG, SVG and PDF figures: the measured mean test-loss change with 95%
intervals against η beside the order-1/2/3 predictions, the generalisation
gap, GD and GDC against SGD (Corollary 3) on log-log axes with fitted
slopes, E epochs against one (Corollary 4), SGD against SDE (Corollary 5),
the Archimedes drift (Corollary 1), Mean Estimation over H (Corollary 2)
and STIC against GD; for runs with a [sharpness] table, each measure's
change per optimiser and η, the paired differences between optimisers and
their relation to the test loss (docs/sharpness.md). Each claim gets a
verdict computed by the stated test.
A floating-point noise study stored with a run (RUN/noise/noise.json from
"perturb noise") adds its tables, plots and verdicts; a RUN may also be an
output folder of "perturb noise" itself.
Predictions are drawn on a dense η grid only where ηT is at most
--eta-t-limit (the same limit the verdicts use); the axes are set by the
measurements, and a residual panel shows z per order. A RUN without
stats.json still gets its measured loss against η. To overlay several
runs or dtypes in one figure, use "perturb plot".
DIR/report.json holds the same verdicts for programs: per test a stable
id (e.g. "order3.test_loss.sgd", "gd_minus_sgd.slope"), the model,
optimisers, tested η, the verdict word, the worst z and its η, estimates
with standard errors and 95% intervals, the η·T limit, and the points.
DIR defaults to the first RUN's report/ folder.`,
		run: reportCmd,
	})
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["report"]
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fs.String("out", "", "output folder (default: RUN/report)")
	limit := fs.Float64("eta-t-limit", 1, "test prediction claims at learning rates with η·T up to this")
	pos, err := parse(c, fs, args, -1, stderr)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		commandHelp(stderr, c, fs)
		return errUsage
	}
	var runs []*report.Run
	var noiseDirs []string // output folders of perturb noise
	for _, p := range pos {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && filepath.Ext(p) == ".toml" {
			name := "NAME"
			if cfg, err := config.Load(p); err == nil {
				name = cfg.Name
			}
			return fmt.Errorf("%s is a config file; report takes the run folder perturb run made from it (e.g. runs/%s)", p, name)
		}
		if report.IsNoiseDir(p) {
			noiseDirs = append(noiseDirs, p)
			continue
		}
		r, err := report.Load(p)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	dir := *out
	if dir == "" && len(runs) > 0 {
		dir = filepath.Join(runs[0].Dir, "report")
	} else if dir == "" {
		dir = filepath.Join(noiseDirs[0], "report")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runDirError("create", dir, err)
	}
	rep := &report.Report{}
	if len(runs) > 0 {
		if rep, err = report.Build(runs, dir, report.Options{EtaTLimit: *limit, Stderr: stderr}); err != nil {
			return err
		}
	}
	if len(noiseDirs) > 0 {
		nr, err := report.NoiseReport(noiseDirs, dir)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			rep.Title = nr.Title
		}
		rep.Sections = append(rep.Sections, nr.Sections...)
	}
	var buf bytes.Buffer
	if err := rep.Markdown(&buf); err != nil {
		return err
	}
	path := filepath.Join(dir, "report.md")
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	if err := rep.JSON(&buf); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "report.json"), buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and report.json (%d sections; %s)\n", path, len(rep.Sections), rep.TallyText())
	return nil
}
