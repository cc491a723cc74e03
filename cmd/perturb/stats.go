package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/perturb/perturb/nets/data"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
)

func init() {
	register(&command{
		name:  "stats",
		args:  "RUN|CONFIG [--samples S] [--block B] [--json] [--workers N] [--data DIR] [--out DIR] [--scale K] [--set KEY=VALUE]... [--device auto|cpu|gpu]",
		short: "estimate the landscape statistics (G, H, C, J, S contractions) at each initialisation",
		long: `Estimates, at every (model, initialisation) of CONFIG, the statistics the
theory's predictions use: |G|^2, tr C, G.H.G, G.H.H.G, tr(H C), tr(H H C),
G.grad tr C, J(G,G,G), C:J.G and S:J, and for order eta^3 G.Hx.Hx.G,
G.Hx.H.dx, G.H.grad tr C, Jx(dx,G,G), G.Hx.Hx.gx, gx.H.Hx.gx and
Jx(gx,gx,G) (see the doc of trials/analysis/stats for the definitions and the
unbiased estimators). Each comes with its standard error from S/(4B)
independent groups of four blocks of B samples, and stats.json holds
their covariance matrix ("cov", in the order of "estimates"). The
samples are drawn from the pool (or the landscape's data distribution) by a
stream of their own, keyed by the config's seed, the model and the
initialisation, separate from the trials' training sets.

Prints a table (or JSON with --json) and writes RUN/stats.json, where
"perturb report RUN" and "perturb taylor RUN" read them. RUN is a run
folder (runs/NAME, made by "perturb run"): its stored config is used, with
the --scale and --set it was run with. A CONFIG file is for a config not
yet run: stats.json then goes to --out DIR (default runs/NAME), with
--scale and --set applied as "perturb run" would; a DIR holding a run of
another config (or of this config at another --scale) is refused with the
fix.

--device gpu (or auto, with a usable GPU) computes the estimators' jets on
the GPU (graph.NewDeviceJets: the jet graphs through the walker) for a
float32 config, in one line on stderr; a float64 config stays on the CPU
(the GPU computes in float32) and says so, as do landscapes. See
docs/gpu.md.`,
		run: statsCmd,
	})
}

func statsCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["stats"]
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	samples := fs.Int("samples", 4096, "samples per initialisation (a multiple of 4·block, at least 8·block)")
	block := fs.Int("block", 16, "samples per block (at least 3)")
	out := fs.String("out", "", "with a CONFIG: the run directory to write stats.json into (default runs/NAME)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	workers := fs.Int("workers", 0, "groups estimated in parallel (default: one per CPU)")
	dataDir := fs.String("data", "", "dataset folder, when the config has no data.dir")
	scale := fs.Int("scale", 1, "with a CONFIG: divide its trial count as perturb run --scale does (a RUN has its own)")
	sets := setFlag(fs)
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
	if *block < 3 {
		return fmt.Errorf("--block %d: need at least 3 samples per block (the third cumulant's estimator divides by (B-1)(B-2))", *block)
	}
	groups := *samples / (stats.Blocks * *block)
	if groups < 2 || groups*stats.Blocks**block != *samples {
		return fmt.Errorf("--samples %d: use a multiple of 4·block = %d with at least two groups (e.g. --samples %d)",
			*samples, stats.Blocks**block, max(2, groups)*stats.Blocks**block)
	}
	tgt, err := resolveTarget("stats", pos[0], *scale, *sets, *out, "--out", "writing stats.json there, where perturb run CONFIG --out DIR would put the run", stderr)
	if err != nil {
		return err
	}
	cfg, dir := tgt.cfg, tgt.dir
	runner, err := newRunner(cfg, *dataDir)
	if err != nil {
		return err
	}
	release, err := rd.attachFor(cfg, runner, "the estimators' jets", true, stderr)
	if err != nil {
		return err
	}
	defer release()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	file := &stats.File{ConfigName: cfg.Name, ConfigHash: cfg.Hash()}
	for _, m := range cfg.Models {
		for _, init := range m.Inits {
			fmt.Fprintf(stderr, "%s init %d: %d samples in %d groups\n", m.Key(), init, *samples, groups)
			prog := newProgress(stderr, groups, "groups")
			start := time.Now()
			vals, err := runner.StatsGroups(ctx, m.Key(), init, groups, *block, *workers, prog.update)
			prog.finish()
			if errors.Is(err, context.Canceled) {
				return exitError{errors.New("interrupted; nothing written"), 130}
			}
			if err != nil {
				return err
			}
			file.Entries = append(file.Entries, stats.Entry{Model: m.Key(), Init: init, DType: cfg.DType, Block: *block,
				Samples: *samples, Seconds: time.Since(start).Seconds(), Estimates: stats.Summarize(vals), Cov: stats.SummarizeCov(vals)})
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runDirError("create run directory", dir, err)
	}
	path := filepath.Join(dir, stats.FileName)
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(path, append(b, '\n')); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(file); err != nil {
			return err
		}
	} else {
		writeStatsTable(stdout, file)
	}
	fmt.Fprintf(stderr, "wrote %s\n", path)
	return nil
}

func writeStatsTable(w io.Writer, f *stats.File) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tinit\tstatistic\tvalue\tstd. error\tsamples\ttime (s)\t")
	for _, e := range f.Entries {
		for _, est := range e.Estimates {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.6g\t%.2g\t%d\t%.1f\t\n", e.Model, e.Init, est.Name, est.Value, est.StdErr, e.Samples, e.Seconds)
		}
	}
	tw.Flush()
}

// newRunner loads the config's dataset, if it has image models (from
// data.dir, else dataDir, else the default folder), and prepares its
// runner.
func newRunner(cfg *config.Config, dataDir string) (*trials.Runner, error) {
	if len(cfg.DTypes) > 1 {
		return nil, fmt.Errorf("config %s sweeps the dtypes %s; statistics and predictions are computed in one dtype: add --set dtype=%s (or another of them)",
			cfg.Name, strings.Join(cfg.DTypes, ", "), cfg.DTypes[len(cfg.DTypes)-1])
	}
	var pool *data.Pool
	if cfg.NeedsData() {
		dir := cfg.Data.Dir
		if dir == "" {
			dir = dataDir
		}
		var err error
		if pool, err = data.Load(cfg.Data.Set, dir); err != nil {
			return nil, err
		}
	}
	return trials.NewRunner(cfg, pool)
}
