package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
)

func init() {
	register(&command{
		name:  "taylor",
		args:  "RUN|CONFIG [--sets K] [--test-subset M] [--json] [--workers N] [--data DIR] [--stats DIR] [--scale K] [--set KEY=VALUE]... [--device auto|cpu|gpu]",
		short: "exact Taylor coefficients of the test loss in eta, averaged over training sets",
		long: `For every (model, initialisation, optimiser) of CONFIG (sgd and gd), propagates
a power series in eta through the optimiser's steps (Taylor mode through
training: exact in arithmetic, see trials/taylor.go) and reports the mean
over K training sets (trial indices 0..K-1, default the config's count) of
the coefficients c0, c1, c2, c3 of the final test loss
L(eta) = c0 + c1 eta + c2 eta^2 + c3 eta^3 + O(eta^4), with standard errors.

RUN is a run folder (runs/NAME, made by "perturb run"), whose stored
config is used; a CONFIG file (a config not yet run) is loaded with
--scale and --set as "perturb run" would. If RUN/stats.json exists
(written by "perturb stats RUN"; with a CONFIG, --stats DIR/stats.json,
default runs/NAME), the table also shows the order-eta and order-eta^2
coefficients that Proposition 2 predicts from those statistics, and the
difference in units of the combined standard error.

The test loss is the mean over the whole pool, so image models take one
pass of jets over the pool per training set (about 50 s for the convnet).
--test-subset M reads each training set's jets off its own M pool
examples instead (trials.TestSubset: the subset "perturb run" uses for the
trial index), with the control variate at the initialisation: c0 is the
exact pool loss at theta0 and c1..c3 are subset means of the per-example
coefficients, unbiased for the pool's; the subset noise is inside the
standard errors over training sets, and stderr says its share of their
variance (JSON: subset_stderr). Without the flag, M is the config's
trials.test subset when it has one, else 0 (the whole pool). Landscapes
have no pool and take only 0.

--device gpu (or auto, with a usable GPU) runs the jets on the GPU
(graph.NewDeviceJets through the walker) for a float32 config; a float64
config stays on the CPU (the GPU computes in float32), as do landscapes.
See docs/gpu.md.`,
		run: taylorCmd,
	})
}

type taylorRow struct {
	Model     string `json:"model"`
	Init      int    `json:"init"`
	Optimizer string `json:"optimizer"`
	N         int    `json:"n"`
	B         int    `json:"batch"`
	E         int    `json:"epochs"`
	Sets      int    `json:"sets"`
	// TestSubset is M of the test-loss jets (0: the whole pool).
	TestSubset int        `json:"test_subset"`
	Mean       [4]float64 `json:"mean"`
	SE         [4]float64 `json:"stderr"`
	// SubsetSE is the part of SE from the subsets' draws
	// (trials.TaylorStats.SubsetSE; zero over the pool).
	SubsetSE [4]float64 `json:"subset_stderr"`
	// Proposition 2's c1, c2 and their standard errors, when statistics
	// are available.
	Prop2 *[4]float64 `json:"prop2,omitempty"`
	// PairedAgainst is the first optimiser of the (model, init), and
	// PairedMean ± PairedSE the mean over the training sets of this
	// optimiser's coefficients minus that one's on the same set (absent
	// for the first).
	PairedAgainst string      `json:"paired_against,omitempty"`
	PairedMean    *[4]float64 `json:"paired_mean,omitempty"`
	PairedSE      *[4]float64 `json:"paired_stderr,omitempty"`
}

// pairTaylor sets r's paired difference against the per-set coefficients
// base of optimiser label: the same training sets, so the sets' shared
// noise cancels (e.g. GD − SGD).
func pairTaylor(r *taylorRow, label string, base, sets [][4]float64) {
	var m, se [4]float64
	for k := range m {
		m[k], se[k] = stats.MeanSE(len(sets), func(i int) float64 { return sets[i][k] - base[i][k] })
	}
	r.PairedAgainst, r.PairedMean, r.PairedSE = label, &m, &se
}

func taylorCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["taylor"]
	fs := flag.NewFlagSet("taylor", flag.ContinueOnError)
	sets := fs.Int("sets", 0, "training sets to average over (default: the config's trial count)")
	subset := fs.Int("test-subset", 0, "pool examples per training set for the test-loss jets, 0 for the whole pool (default: the config's trials.test subset, else 0)")
	statsDir := fs.String("stats", "", "with a CONFIG: the run directory holding stats.json (default runs/NAME)")
	scale := fs.Int("scale", 1, "with a CONFIG: divide its trial count as perturb run --scale does (a RUN has its own)")
	overrides := setFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	workers := fs.Int("workers", 0, "training sets in parallel (default: one per CPU)")
	dataDir := fs.String("data", "", "dataset folder, when the config has no data.dir")
	device := deviceFlag(fs)
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	rd, err := openRunDevice(*device)
	if err != nil {
		return err
	}
	defer rd.close()
	tgt, err := resolveTarget("taylor", pos[0], *scale, *overrides, *statsDir, "--stats", "reading stats.json from there if it exists", stderr)
	if err != nil {
		return err
	}
	cfg, dir := tgt.cfg, tgt.dir
	k := *sets
	if k == 0 {
		k = cfg.Trials.Count
	}
	if k < 2 {
		return fmt.Errorf("--sets %d: need at least 2 training sets for a standard error", k)
	}
	for _, o := range cfg.Optimizers {
		if _, err := trials.NBE(cfg, o); err != nil {
			return fmt.Errorf("%s: %w; remove it from the config for perturb taylor", cfg.Path, err)
		}
	}
	var sf *stats.File
	if _, err := os.Stat(filepath.Join(dir, stats.FileName)); err == nil {
		if sf, err = stats.ReadFile(filepath.Join(dir, stats.FileName)); err != nil {
			return err
		}
		if sf.ConfigHash != cfg.Hash() {
			return fmt.Errorf("%s was estimated for another config (%s); rerun perturb stats %s",
				filepath.Join(dir, stats.FileName), sf.ConfigName, dir)
		}
	}
	runner, err := newRunner(cfg, *dataDir)
	if err != nil {
		return err
	}
	m := taylorSubset(fs, *subset, cfg)
	if err := runner.SetTaylorSubset(m); err != nil {
		return fmt.Errorf("--test-subset %d: %w", m, err)
	}
	if m > 0 {
		fmt.Fprintf(stderr, "test-loss jets over each training set's own %d pool examples, control variate at the initialisation\n", m)
	}
	release, err := rd.attachFor(cfg, runner, "the jets", true, stderr)
	if err != nil {
		return err
	}
	defer release()
	var rows []taylorRow
	for _, mod := range cfg.Models {
		for _, init := range mod.Inits {
			var base [][4]float64
			var baseLabel string
			for _, o := range cfg.Optimizers {
				fmt.Fprintf(stderr, "%s init %d %s: %d training sets\n", mod.Key(), init, o.Label, k)
				prog := newProgress(stderr, k, "sets")
				start := time.Now()
				ts, err := runner.TaylorMean(mod.Key(), init, o, k, *workers, prog.update)
				prog.finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "  %.1fs\n", time.Since(start).Seconds())
				if runner.TaylorSubset() > 0 {
					fmt.Fprintf(stderr, "  share of the subsets' draws in the variance of the mean: c1 %.0f%%, c2 %.0f%%, c3 %.0f%%\n",
						100*sq(ts.SubsetSE[1]/ts.SE[1]), 100*sq(ts.SubsetSE[2]/ts.SE[2]), 100*sq(ts.SubsetSE[3]/ts.SE[3]))
				}
				row := taylorRow{Model: mod.Key(), Init: init, Optimizer: o.Label, N: ts.NBE[0], B: ts.NBE[1], E: ts.NBE[2], Sets: k,
					TestSubset: runner.TaylorSubset(), Mean: ts.Mean, SE: ts.SE, SubsetSE: ts.SubsetSE}
				if base == nil {
					base, baseLabel = ts.PerSet, o.Label
				} else {
					pairTaylor(&row, baseLabel, base, ts.PerSet)
				}
				if sf != nil {
					for _, e := range sf.Entries {
						if e.Model == mod.Key() && e.Init == init {
							p1, p1se, p2, p2se, err := stats.Prop2(row.N, row.B, row.E, e.Estimates)
							if err != nil {
								return err
							}
							row.Prop2 = &[4]float64{p1, p1se, p2, p2se}
						}
					}
				}
				rows = append(rows, row)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tinit\toptimizer\tN\tB\tE\tsets\tc0\tc1\ts.e.\tc2\ts.e.\tc3\ts.e.\tProp2 c1\ts.e.\tz\tProp2 c2\ts.e.\tz\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%.5g\t%.5g\t%.2g\t%.5g\t%.2g\t%.5g\t%.2g\t", r.Model, r.Init, r.Optimizer, r.N, r.B, r.E, r.Sets,
			r.Mean[0], r.Mean[1], r.SE[1], r.Mean[2], r.SE[2], r.Mean[3], r.SE[3])
		if p := r.Prop2; p != nil {
			fmt.Fprintf(tw, "%.5g\t%.2g\t%s\t%.5g\t%.2g\t%s\t\n", p[0], p[1], zScore(r.Mean[1]-p[0], r.SE[1], p[1]),
				p[2], p[3], zScore(r.Mean[2]-p[2], r.SE[2], p[3]))
		} else {
			fmt.Fprint(tw, "-\t\t\t-\t\t\t\n")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\npaired differences on the same training sets (optimizer − first optimizer):")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tinit\tdifference\tsets\tc1\ts.e.\tc2\ts.e.\tc3\ts.e.\t")
	for _, r := range rows {
		if r.PairedMean == nil {
			continue
		}
		m, se := r.PairedMean, r.PairedSE
		fmt.Fprintf(tw, "%s\t%d\t%s − %s\t%d\t%.5g\t%.2g\t%.5g\t%.2g\t%.5g\t%.2g\t\n", r.Model, r.Init, r.Optimizer, r.PairedAgainst, r.Sets,
			m[1], se[1], m[2], se[2], m[3], se[3])
	}
	return tw.Flush()
}

// zScore formats a difference in units of its combined standard error,
// or "-" when both errors are zero.
func zScore(diff, se1, se2 float64) string {
	se := math.Hypot(se1, se2)
	if se == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f", diff/se)
}

// taylorSubset is M of the test-loss jets: --test-subset (value) when
// given, else the config's trials.test subset ("perturb run"'s estimator)
// when it has one, else 0, the whole pool.
func taylorSubset(fs *flag.FlagSet, value int, cfg *config.Config) int {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "test-subset" })
	switch {
	case given:
		return value
	case cfg.Trials.Test != nil:
		return cfg.Trials.Test.Subset
	}
	return 0
}

func sq(x float64) float64 { return x * x }
