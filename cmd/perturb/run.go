package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// Files of a run directory.
const (
	resultsFile = "results.sqlite"
	configFile  = "config.toml"
)

func init() {
	register(&command{
		name:  "run",
		args:  "CONFIG [--out DIR] [--scale K] [--set KEY=VALUE]... [--dry-run] [--shard I/N] [--workers N] [--k K] [--max-memory GIB] [--data DIR]",
		short: "run the trials of a TOML config and store one row per trial",
		long: `Runs every trial of CONFIG on the CPU and writes DIR/results.sqlite (one
row per trial, committed in transactions every few seconds) and a copy of
the config as DIR/config.toml. DIR defaults to runs/NAME, NAME being the
config's name.

Each invocation appends an entry to DIR/sessions.json: start, end, wall
seconds, trials stored, the command line, host cores, scale, shard and
outcome (done, interrupted, error); scripts/reproduction quotes it.

If DIR already holds a run of the same config (same hash), the trials it
stores are skipped and the rest are run: an interrupted run resumes.

A sweep grows the same way: if CONFIG's plan contains the stored one's
(more etas, inits, models or optimizers, a larger trials.count, e.g.
--scale 2 after --scale 4; the same seed, dtype, data, N, and the same
settings of every stored model and optimizer and of [sharpness]), only
the trials the store lacks run; DIR/config.toml becomes CONFIG and the
store's table config_history records each config with its time. A
trial's results depend only on those settings and its identity, so the
stored rows stay as they are. A config that would change stored trials is
refused, naming each setting (e.g. "seed: 1 -> 2"). A shard grows the
same way (--shard I/N with the same N); the grown plan may deal some
stored trials to other shards, which run them again ("perturb merge"
keeps one copy of each).

--shard I/N runs only shard I of N: the trials at positions I-1, I-1+N,
I-1+2N, ... of the config's plan, so the N shards together hold every
trial once and take about equally long. Each shard goes into its own DIR
(default runs/NAME-shard-I-of-N) and resumes like a whole run; "perturb
merge" combines the shards' directories into one run. A trial's results do
not depend on its shard.

The dataset folder is the config's data.dir, else --data, else
$PERTURB_FASHION_MNIST / $PERTURB_CIFAR10, else the default folder
(Fashion-MNIST: /usr/share/datasets/fashion-mnist, installed by "make data").

Ctrl-C (SIGINT) or SIGTERM lets the trials in progress finish, stores them,
prints how to resume and exits with status 130.

Trials of one model, initialisation and optimiser advance K at a time in
one computation (--k; by default chosen per model: 64 image trials, 1024
landscape trials, fewer if the memory budget --max-memory, default 3 GiB
for all workers together, needs it). K, --workers and the resume point
never change the results.

--set KEY=VALUE (repeatable) overrides a config key before validation
(e.g. --set trials.count=5, --set optimizer[1].batch=2, --set
model[0].inits=[1,2]; indices from 0, and without one a [[model]] or
[[optimizer]] key is set in every entry); the stored config.toml is the
config as overridden. --scale K divides the trial count (rounded up).

A config with dtype = ["float32", "float64"] runs every trial once per
dtype into the one run, on the same training set and initialisation; the
trials of each dtype are those of the config with that dtype alone.

--dry-run prints the trials per cell (model, init, optimizer, eta) still
to run and an estimated wall time from a calibration (a few trials of each
model and optimizer run for real, results discarded, under about 10 s),
and writes nothing. A run of more than 500 trials calibrates the same way
first and says so when its estimate exceeds an hour.

--device gpu (a gpu build with a usable GPU; auto picks it when there is
one) computes the image-model trials of a float32 config (of a dtype sweep,
dtype = ["float32", "float64"]: its float32 trials) on the GPU: the
optimisers' gradients and Hessian-vector products, the test and train
losses. Landscapes stay on the CPU. See docs/gpu.md.`,
		run: runCmd,
	})
}

func runCmd(args []string, stdout, stderr io.Writer) (rerr error) {
	c := commands["run"]
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	out := fs.String("out", "", "run directory (default runs/NAME)")
	workers := fs.Int("workers", 0, "trials run in parallel (default: one per CPU)")
	dataDir := fs.String("data", "", "dataset folder, when the config has no data.dir")
	k := fs.Int("k", 0, "trials per batch (default: chosen per model)")
	shardFlag := fs.String("shard", "", "run only shard I of N of the trials (I/N, e.g. 3/8)")
	maxMem := fs.Float64("max-memory", float64(trials.DefaultMaxBytes)/(1<<30), "memory budget of the working buffers in GiB")
	scale := fs.Int("scale", 1, "divide the config's trial count by this (rounded up) for a quick look")
	sets := setFlag(fs)
	dryRun := fs.Bool("dry-run", false, "print the trials per cell and an estimated wall time from a short calibration; write nothing")
	device := deviceFlag(fs)
	pos, err := parse(c, fs, args, 1, stderr)
	var gpu *runDevice
	if err == nil {
		gpu, err = openRunDevice(*device)
	}
	if err != nil {
		return err
	}
	release := func() {
		if gpu.dev != nil {
			gpu.dev.Close()
		}
	}
	defer func() { release() }()
	cfg, err := loadConfig(pos[0], *sets, *scale)
	if err != nil {
		return err
	}
	var shard trials.Shard
	if *shardFlag != "" {
		if shard, err = trials.ParseShard(*shardFlag); err != nil {
			return fmt.Errorf("--shard: %w", err)
		}
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("runs", cfg.Name)
		if shard.N > 0 {
			dir += fmt.Sprintf("-shard-%d-of-%d", shard.I, shard.N)
		}
	}
	ddir := cfg.Data.Dir
	if ddir == "" {
		ddir = *dataDir
	}
	if *k < 0 || !(*maxMem > 0) {
		return fmt.Errorf("--k %d and --max-memory %g must be positive; omit them for the defaults", *k, *maxMem)
	}
	start := time.Now()
	var pool *data.Pool
	if cfg.NeedsData() {
		if pool, err = data.Load(cfg.Data.Set, ddir); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "loaded %s: %d examples (%d×%d×%d) in %.1fs\n", pool.Name, pool.Len(), pool.Channels, pool.Height, pool.Width, time.Since(start).Seconds())
	}
	if meta, err := results.ReadMeta(filepath.Join(dir, resultsFile)); err == nil && meta.ConfigHash != cfg.Hash() {
		if _, gerr := grows(meta, cfg); gerr != nil {
			if err := scaleMismatch(dir, meta, pos[0], *sets, *scale); err != nil {
				return err
			}
		}
	}
	runner, err := trials.NewSweepRunner(cfg, pool)
	if err != nil {
		return err
	}
	if release, err = gpu.attach(cfg, runner, stderr); err != nil {
		return err
	}
	settings := trials.Settings{Workers: *workers, K: *k, MaxBytes: int64(*maxMem * (1 << 30)), Shard: shard}
	if *dryRun {
		return planRun(stdout, runner, cfg, dir, settings)
	}
	store, skip, err := openRun(dir, cfg, shard, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	var stored atomic.Int64
	session := newSession(start, args, *scale, *workers, shard, gpu.dev != nil)
	if err := results.AppendSession(dir, session); err != nil {
		fmt.Fprintf(stderr, "note: %v\n", err)
	}
	defer func() { finishSession(dir, session, int(stored.Load()), rerr, stderr) }()

	total := len(trials.ShardPlan(cfg, shard))
	// A grown shard may store trials the grown plan deals to other shards:
	// count only this shard's.
	todo := len(todoOf(cfg, shard, skip))
	what := ""
	if shard.N > 0 {
		what = fmt.Sprintf(" of shard %s", shard)
	}
	if todo < total {
		fmt.Fprintf(stderr, "resuming %s: %d of %d trials%s already stored\n", dir, total-todo, total, what)
	}
	fmt.Fprintf(stderr, "running %d trials%s (%s, %s) into %s\n", todo, what, cfg.Name, strings.Join(cfg.DTypeList(), " and "), filepath.Join(dir, resultsFile))
	resume := fmt.Sprintf("perturb run %s --out %s", pos[0], dir)
	if *scale != 1 {
		resume += fmt.Sprintf(" --scale %d", *scale)
	}
	for _, s := range *sets {
		resume += " --set " + shellQuote(s)
	}
	if shard.N > 0 {
		resume += " --shard " + shard.String()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if todo > estimateAbove {
		warnLong(ctx, stderr, runner, cfg, settings, skip)
	}
	w := results.NewWriter(store, 2*time.Second, 512)
	prog := newProgress(stderr, todo, "trials")
	settings.Skip, settings.Progress, settings.Log = skip, prog.update, func(msg string) { prog.log(msg) }
	err = runner.Run(ctx, recorder{w, &stored}, settings)
	prog.finish()
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("store results: %w", ferr)
	}
	if errors.Is(err, context.Canceled) {
		keys, _ := store.Keys()
		return exitError{fmt.Errorf("interrupted: %d of %d trials stored in %s; resume with: %s",
			total-len(todoOf(cfg, shard, keys)), total, dir, resume), 130}
	}
	if err != nil {
		// What was committed before the error stays: say so, and how to go on.
		if keys, kerr := store.Keys(); kerr == nil {
			return fmt.Errorf("%w\n%d of %d trials are stored in %s and stay valid; after fixing the cause, resume with: %s", err, total-len(todoOf(cfg, shard, keys)), total, dir, resume)
		}
		return err
	}
	fmt.Fprintf(stderr, "done: %d trials in %s; summarise with: perturb summarize %s\n", todo, time.Since(start).Round(time.Second), dir)
	return nil
}

// planRun is run --dry-run: the trials per cell still to run in dir, and
// the estimated wall time from a calibration; it writes nothing.
func planRun(stdout io.Writer, runner *trials.Runner, cfg *config.Config, dir string, s trials.Settings) error {
	skip := map[results.Key]bool{}
	if meta, rows, err := results.ReadRows(filepath.Join(dir, resultsFile)); err == nil && (meta.ConfigHash == cfg.Hash() || growsOK(meta, cfg)) {
		for _, r := range rows {
			skip[r.Key()] = true
		}
	}
	todo := todoOf(cfg, s.Shard, skip)
	total := len(trials.ShardPlan(cfg, s.Shard))
	var e *estimate
	if len(todo) > 0 {
		var err error
		if e, err = calibrate(context.Background(), runner, cfg, s.Shard, todo, s); err != nil {
			return err
		}
	}
	return writePlan(stdout, cfg, dir, total, total-len(todo), cellsOf(todo), e)
}

// todoOf is the shard's plan without the trials in skip.
func todoOf(cfg *config.Config, shard trials.Shard, skip map[results.Key]bool) []trials.Trial {
	var todo []trials.Trial
	for _, t := range trials.ShardPlan(cfg, shard) {
		if !skip[trials.Key(cfg, t)] {
			todo = append(todo, t)
		}
	}
	return todo
}

// warnLong calibrates a large run and prints its estimated wall time,
// saying so when it exceeds an hour. A failed calibration only notes it:
// the run itself reports errors.
func warnLong(ctx context.Context, stderr io.Writer, runner *trials.Runner, cfg *config.Config, s trials.Settings, skip map[results.Key]bool) {
	e, err := calibrate(ctx, runner, cfg, s.Shard, todoOf(cfg, s.Shard, skip), s)
	if err != nil {
		fmt.Fprintf(stderr, "no time estimate: %v\n", err)
		return
	}
	fmt.Fprintln(stderr, e.summary())
	if note := longNote(e.total); note != "" {
		fmt.Fprintln(stderr, note)
	}
}

// longNote is the warning for a run estimated to take d, or "" if d is
// at most an hour.
func longNote(d time.Duration) string {
	if d <= time.Hour {
		return ""
	}
	return fmt.Sprintf("this run is estimated to take over an hour (about %s): Ctrl-C stops it and the same command resumes it; --scale K runs 1/K of the trials, --shard I/N splits it over machines, --dry-run shows the plan", roundDuration(d))
}

// recorder stores rows and counts them.
type recorder struct {
	w *results.Writer
	n *atomic.Int64
}

func (r recorder) Record(row results.Row) error {
	if err := r.w.Add(row); err != nil {
		return err
	}
	r.n.Add(1)
	return nil
}

// newSession is the running entry of this invocation in sessions.json.
func newSession(start time.Time, args []string, scale, workers int, shard trials.Shard, gpu bool) results.Session {
	s := results.Session{Start: start.UTC().Round(time.Millisecond), Command: append([]string{"perturb", "run"}, args...),
		Cores: runtime.NumCPU(), Workers: workers, Scale: scale, Shard: shard.String(), Device: "cpu", Outcome: results.Running}
	if gpu {
		s.Device = "gpu"
	}
	return s
}

// finishSession records s's end in dir's sessions.json: wall time,
// trials stored and outcome. (A killed run leaves its entry running.) A
// failure to record is only noted: the trials are stored.
func finishSession(dir string, s results.Session, stored int, err error, stderr io.Writer) {
	end := time.Now().UTC().Round(time.Millisecond)
	s.End, s.WallSeconds, s.Trials, s.Outcome = end, end.Sub(s.Start).Seconds(), stored, "done"
	var ee exitError
	switch {
	case errors.As(err, &ee) && ee.code == 130:
		s.Outcome = "interrupted"
	case err != nil:
		s.Outcome = "error"
	}
	if ferr := results.FinishSession(dir, s); ferr != nil {
		fmt.Fprintf(stderr, "note: %v\n", ferr)
	}
}

// openRun opens or creates the store of run directory dir for cfg and
// returns the keys already stored. A store of a config whose plan cfg
// contains is grown to cfg (growRun). Nothing is written until cfg and the
// data have been validated by the caller.
func openRun(dir string, cfg *config.Config, shard trials.Shard, stderr io.Writer) (*results.Store, map[results.Key]bool, error) {
	path := filepath.Join(dir, resultsFile)
	if _, err := os.Stat(path); err == nil {
		store, meta, err := results.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if meta.Shard != shard.String() {
			store.Close()
			return nil, nil, fmt.Errorf("%s holds %s of config %s, not %s; use %s, or another --out", dir,
				shardName(meta.Shard), cfg.Name, shardName(shard.String()), shardFlagFor(meta.Shard))
		}
		if meta.ConfigHash != cfg.Hash() {
			if err := growRun(store, dir, meta, cfg, stderr); err != nil {
				store.Close()
				return nil, nil, err
			}
		}
		keys, err := store.Keys()
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		return store, keys, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, runDirError("create run directory", dir, err)
	}
	if err := writeAtomic(filepath.Join(dir, configFile), []byte(cfg.Text)); err != nil {
		return nil, nil, err
	}
	store, err := results.Create(path, results.Meta{ConfigHash: cfg.Hash(), ConfigText: cfg.Text, ConfigName: cfg.Name, Created: time.Now(), Shard: shard.String()})
	if err != nil {
		return nil, nil, err
	}
	return store, map[results.Key]bool{}, nil
}

// shardName describes a store's shard for messages.
func shardName(s string) string {
	if s == "" {
		return "the whole run"
	}
	return "shard " + s
}

// shardFlagFor is the run flag that selects stored shard s.
func shardFlagFor(s string) string {
	if s == "" {
		return "no --shard"
	}
	return "--shard " + s
}

// describeDiff lists how cfg differs from the stored config text, one
// "key: stored -> new" line each, or nothing if the stored text does not
// parse.
func describeDiff(stored string, cfg *config.Config) string {
	old, err := config.Parse("stored config", stored)
	if err != nil {
		return ""
	}
	return config.DescribeDiff(old, cfg, "stored -> "+cfg.Path)
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return runDirError("write", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return runDirError("write", path, err)
	}
	return nil
}

// progress shows done/total, trials per second and the ETA: a bar on a
// terminal, a plain line every 10 seconds otherwise.
type progress struct {
	w     io.Writer
	total int
	unit  string
	bar   *progressbar.ProgressBar
	start time.Time
	last  time.Time
	done  int
}

func newProgress(w io.Writer, total int, unit string) *progress {
	p := &progress{w: w, total: total, unit: unit, start: time.Now(), last: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(unit),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
		)
	}
	return p
}

func (p *progress) update(done, total int) {
	p.done = done
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 10*time.Second || done == total {
		p.last = now
		el := now.Sub(p.start).Seconds()
		rate := float64(done) / el
		eta := time.Duration(float64(total-done)/rate) * time.Second
		fmt.Fprintf(p.w, "%d/%d %s, %.2f %s/s, ETA %s\n", done, total, p.unit, rate, p.unit, eta.Round(time.Second))
	}
}

// log prints a note on its own line (above the bar on a terminal).
func (p *progress) log(msg string) {
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// shellQuote quotes s for a shell command line if it needs it.
func shellQuote(s string) string {
	if !strings.ContainsAny(s, "[]*?{}$\"' \t;&|<>()") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
