package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/study/noise"
)

func init() {
	register(&command{
		name:  "noise",
		args:  "CONFIG [--out DIR] [--set KEY=VALUE]... [--directions D] [--steps S] [--hmin H] [--hmax H] [--precisions LIST] [--examples test|pool|N] [--widths LIST] [--depths LIST] [--grads] [--train] [--data DIR] [--device auto|cpu|gpu]",
		short: "measure the floating-point noise of the loss and its gradient in float64, float32, tf32, bf16 and fp16",
		long: `For every image model and initialisation of CONFIG, computes the second
difference D(h) = f(θ) − 2f(θ+hv) + f(θ+2hv) of the mean loss over the
examples (default: the dataset's 10,000 test images) along D random unit
directions v, on a log grid of S values of h, in each precision (float64,
float32, and bf16 and fp16 emulated by rounding every kernel's output: the
model's graph through graph's walker on kernels.Rounding of the CPU
device), and reports per precision the noise floor of D_P
against the float64 reference, the crossover h where the curvature equals
the noise, and the noise's distribution (see package trials/study/noise).

--widths and --depths sweep the noise floor of the config's mlp and convnet
models over widths (at the model's depth) and depths (at its width), with
a fitted power law; they use --sweep-directions, --sweep-steps (h from
--sweep-hmin to --sweep-hmax) and --sweep-examples.
--grads compares each layer's gradient in every precision with float64.
--train trains the config's first sgd optimiser from the first model's
first initialisation in float64 and in bf16 and fp16 (--train-precisions)
for --train-trials trials per eta of the config, and reports the drift.

Writes DIR/noise.json, CSV tables, PNG, SVG and PDF plots and noise.md (DIR
defaults to runs/NAME/noise, where "perturb report runs/NAME" finds it;
"perturb report DIR" reports the study alone).

tf32 (--precisions float32,tf32, not in the default list) is cuBLAS's
TF32 tensor-core mode: the operands of every matrix product rounded to
tf32 (10 significand bits), float32 everywhere else. It runs through the
walker: on the GPU with --device gpu (or auto, in a GPU build with a
usable GPU), with the TF32 switch on (Device.SetTF32); otherwise it is
emulated on the CPU (kernels.TF32Products: the products' operands rounded
to tf32 to nearest, ties to even, multiplied and summed in float32). One
line on stderr says which, and noise.json records it per result
("device"). The other precisions run on the CPU either way. See
docs/precision.md and docs/gpu.md.`,
		run: noiseCmd,
	})
}

func intList(s, flagName string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("--%s %q: %q is not a positive whole number; write e.g. --%s 8,16,32", flagName, s, f, flagName)
		}
		out = append(out, v)
	}
	return out, nil
}

func noiseCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["noise"]
	fs := flag.NewFlagSet("noise", flag.ContinueOnError)
	out := fs.String("out", "", "output folder (default runs/NAME/noise)")
	dirs := fs.Int("directions", 10, "random unit directions")
	steps := fs.Int("steps", 40, "values of h on the log grid")
	hmin := fs.Float64("hmin", 1e-9, "smallest h")
	hmax := fs.Float64("hmax", 1e-1, "largest h")
	precs := fs.String("precisions", "float64,float32,bf16,fp16", "precisions to measure")
	examples := fs.String("examples", "test", "examples of the loss: test (the test files' images), pool (every example), or N (the first N test images)")
	widths := fs.String("widths", "", "widths of the width sweep, e.g. 16,32,64,128,256")
	depths := fs.String("depths", "", "depths of the depth sweep, e.g. 1,2,4,8")
	swDirs := fs.Int("sweep-directions", 6, "directions per sweep member")
	swSteps := fs.Int("sweep-steps", 12, "h values per sweep member")
	swHmin := fs.Float64("sweep-hmin", 1e-6, "smallest h of the sweeps")
	swHmax := fs.Float64("sweep-hmax", 1e-2, "largest h of the sweeps")
	swEx := fs.Int("sweep-examples", 2000, "test images of the sweeps")
	swPrecs := fs.String("sweep-precisions", "float64,float32,bf16", "precisions of the sweeps")
	grads := fs.Bool("grads", false, "per-layer gradient error of every scanned model")
	gradEx := fs.Int("grad-examples", 0, "examples of the gradients (default: those of the scan)")
	train := fs.Bool("train", false, "compare SGD trained in float64 and in low precision")
	scan := fs.Bool("scan", true, "scan the config's models (--scan=false with --train or --grads runs only those)")
	trainPrecs := fs.String("train-precisions", "float32,bf16,fp16", "precisions of --train")
	trainTrials := fs.Int("train-trials", 4, "trials per eta of --train")
	trainEx := fs.Int("train-examples", 2000, "test images of --train's test loss")
	workers := fs.Int("workers", 0, "goroutines (default: one per CPU)")
	engine := fs.String("engine", "", "what computes losses and gradients: walker, the only engine (the model's graph through graph's walker on the CPU device, rounded by kernels.Rounding in bf16/fp16; nets/emulate is retired)")
	dataDir := fs.String("data", "", "dataset folder, when the config has no data.dir")
	sets := setFlag(fs)
	device := fs.String("device", "auto", "where tf32 computes: auto (the GPU when this binary has GPU support and a device is usable, else the CPU emulation), cpu (the emulation) or gpu (cuBLAS's TF32 tensor cores); the other precisions run on the CPU")
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	formats, err := precision.ParseList(*precs)
	if err != nil {
		return fmt.Errorf("--precisions: %w", err)
	}
	swFormats, err := precision.ParseList(*swPrecs)
	if err != nil {
		return fmt.Errorf("--sweep-precisions: %w", err)
	}
	trFormats, err := precision.ParseList(*trainPrecs)
	if err != nil {
		return fmt.Errorf("--train-precisions: %w", err)
	}
	ws, err := intList(*widths, "widths")
	if err != nil {
		return err
	}
	ds, err := intList(*depths, "depths")
	if err != nil {
		return err
	}
	eng := noise.Engine(*engine)
	if eng != noise.EngineAuto && eng != noise.EngineWalker {
		return fmt.Errorf("--engine %q: the walker is the only engine (nets/emulate, the hand-written passes, is retired; its floors and the walker's are compared in docs/precision.md); drop the flag or use --engine walker", *engine)
	}
	set := noise.Settings{Directions: *dirs, Steps: *steps, HMin: *hmin, HMax: *hmax, Precisions: formats, Workers: *workers, Engine: eng}
	if err := set.Check(); err != nil {
		return fmt.Errorf("--directions %d --steps %d --hmin %g --hmax %g: %w", *dirs, *steps, *hmin, *hmax, err)
	}
	swSet := noise.Settings{Directions: *swDirs, Steps: *swSteps, HMin: *swHmin, HMax: *swHmax, Precisions: swFormats, Workers: *workers, Engine: eng}
	if (len(ws) > 0 || len(ds) > 0) && swSet.Check() != nil {
		return fmt.Errorf("--sweep-directions %d --sweep-steps %d --sweep-hmin %g --sweep-hmax %g: %w", *swDirs, *swSteps, *swHmin, *swHmax, swSet.Check())
	}
	tf32 := slices.Contains(formats, precision.TF32) || ((len(ws) > 0 || len(ds) > 0) && slices.Contains(swFormats, precision.TF32))
	gpu, err := noiseDevice(*device, tf32, stderr)
	if err != nil {
		return err
	}
	if gpu != nil {
		defer gpu.Close()
	}
	set.Device, swSet.Device = gpu, gpu
	if e := *examples; e != "test" && e != "pool" {
		if n, err := strconv.Atoi(e); err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("--examples %q: use test, pool or a number of test images from 1 to 10000", e)
		}
	}
	cfg, err := config.LoadSet(pos[0], *sets)
	if err != nil {
		return err
	}
	if !cfg.NeedsData() {
		return fmt.Errorf("%s has no image model; perturb noise measures logistic, convnet and mlp models", cfg.Path)
	}
	set.Seed, swSet.Seed = cfg.Seed, cfg.Seed
	dir := *out
	if dir == "" {
		dir = filepath.Join("runs", cfg.Name, "noise")
	}
	ddir := cfg.Data.Dir
	if ddir == "" {
		ddir = *dataDir
	}
	pool, err := data.Load(cfg.Data.Set, ddir)
	if err != nil {
		return err
	}
	start := time.Now()
	x := pool.Float64()
	dim := pool.Dim()
	const testLen = 10000 // the test files: the last 10,000 examples of both pools
	testFrom := pool.Len() - testLen
	var ex noise.Examples
	switch *examples {
	case "test":
		ex = noise.Examples{X: x[testFrom*dim:], Y: pool.Labels[testFrom:], Desc: fmt.Sprintf("the %d test images", testLen)}
	case "pool":
		ex = noise.Examples{X: x, Y: pool.Labels, Desc: fmt.Sprintf("the whole pool (%d examples)", pool.Len())}
	default:
		n, err := strconv.Atoi(*examples)
		if err != nil || n < 1 || n > testLen {
			return fmt.Errorf("--examples %q: use test, pool or a number of test images from 1 to %d", *examples, testLen)
		}
		ex = noise.Examples{X: x[testFrom*dim : (testFrom+n)*dim], Y: pool.Labels[testFrom : testFrom+n], Desc: fmt.Sprintf("the first %d test images", n)}
	}
	sub := func(n int) noise.Examples {
		n = min(n, testLen)
		return noise.Examples{X: x[testFrom*dim : (testFrom+n)*dim], Y: pool.Labels[testFrom : testFrom+n], Desc: fmt.Sprintf("the first %d test images", n)}
	}
	file := &noise.File{ConfigName: cfg.Name, ConfigHash: cfg.Hash(), Data: pool.Name, Examples: ex.Desc,
		Command: "perturb noise " + strings.Join(args, " "), Settings: set}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	for _, m := range cfg.Models {
		if m.IsLandscape() {
			continue
		}
		a, err := nets.NewSized(m.Name, pool.Channels, pool.Height, pool.Width, pool.Classes, m.Size())
		if err != nil {
			return fmt.Errorf("model %s: %w", m.Name, err)
		}
		for _, init := range m.Inits {
			theta, err := a.Init(init)
			if err != nil {
				return fmt.Errorf("model %s: %w", m.Name, err)
			}
			var flat []float64
			for _, p := range theta {
				flat = append(flat, p...)
			}
			if *scan {
				logf("%s init %d: %d parameters, %d directions × %d h × %d precisions over %s", m.Name, init, a.NumParams(), set.Directions, set.Steps, len(formats), ex.Desc)
				np := len(formats)
				if !slices.Contains(formats, precision.Float64) {
					np++
				}
				prog := newProgress(stderr, np*(1+2*set.Steps*set.Directions), "evaluations")
				sc, err := noise.Run(a, init, flat, ex, set, prog.update)
				prog.finish()
				if err != nil {
					return err
				}
				sc.Width, sc.Depth = m.Width, m.Depth
				logf("  %d evaluations in %.1f s (engine %s)", sc.Evaluations, sc.Seconds, sc.Engine)
				file.Scans = append(file.Scans, sc)
			}
			if *grads {
				gex := ex
				if *gradEx > 0 {
					gex = sub(*gradEx)
				}
				gr, err := noise.RunGrads(a, init, flat, gex, formats, *workers, eng)
				if err != nil {
					return err
				}
				gr.Width, gr.Depth = m.Width, m.Depth
				file.Grads = append(file.Grads, gr)
			}
		}
		if !nets.Sized(m.Name) {
			continue
		}
		base := m.Size()
		if base.Width == 0 {
			base.Width = map[string]int{"mlp": nets.DefaultMLPWidth, "convnet": nets.DefaultConvnetWidth}[m.Name]
		}
		if base.Depth == 0 {
			base.Depth = map[string]int{"mlp": nets.DefaultMLPDepth, "convnet": nets.DefaultConvnetDepth}[m.Name]
		}
		for _, sw := range []struct {
			axis  string
			xs    []int
			fixed int
		}{{"width", ws, base.Depth}, {"depth", ds, base.Width}} {
			if len(sw.xs) == 0 {
				continue
			}
			logf("%s %s sweep %v (%s %d) over %d test images", m.Name, sw.axis, sw.xs, map[string]string{"width": "depth", "depth": "width"}[sw.axis], sw.fixed, min(*swEx, testLen))
			r, err := noise.RunSweep(m.Name, sw.axis, sw.fixed, sw.xs, [3]int{pool.Channels, pool.Height, pool.Width}, pool.Classes, m.Inits[0], sub(*swEx), swSet,
				func(s string) { logf("  %s", s) })
			if err != nil {
				return err
			}
			file.Sweeps = append(file.Sweeps, r)
			if *grads && sw.axis == "depth" {
				// The per-layer trend of the deepest member.
				d := sw.xs[len(sw.xs)-1]
				a, err := nets.NewSized(m.Name, pool.Channels, pool.Height, pool.Width, pool.Classes, nets.Size{Width: sw.fixed, Depth: d})
				if err != nil {
					return err
				}
				v, err := a.Init(m.Inits[0])
				if err != nil {
					return err
				}
				var flat []float64
				for _, p := range v {
					flat = append(flat, p...)
				}
				gr, err := noise.RunGrads(a, m.Inits[0], flat, sub(*swEx), swFormats, *workers, eng)
				if err != nil {
					return err
				}
				gr.Width, gr.Depth = sw.fixed, d
				file.Grads = append(file.Grads, gr)
			}
		}
	}
	if *train {
		tr, err := runTraining(cfg, pool, x, sub(*trainEx), trFormats, *trainTrials, *workers, eng, logf)
		if err != nil {
			return err
		}
		file.Training = tr
	}
	file.Seconds = time.Since(start).Seconds()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		file.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if err := noise.Write(dir, file); err != nil {
		return err
	}
	for _, s := range file.Scans {
		for _, r := range s.Precisions {
			fmt.Fprintf(stdout, "%s init %d %-8v floor %.3g  crossover h %.3g  (%s)\n", s.Model, s.Init, r.Format, r.Floor, r.Crossover, r.Dist.Kind)
		}
	}
	for _, sw := range file.Sweeps {
		for _, f := range sw.Fits {
			fmt.Fprintf(stdout, "%s %s sweep %v: %v floor ∝ %s^%.3f ± %.3f s.e. (95%% CI [%.3f, %.3f])\n", sw.Model, sw.Axis, sw.X, f.Format, sw.Axis, f.Exponent, f.SE, f.Lo, f.Hi)
		}
	}
	fmt.Fprintf(stderr, "wrote %s (%.1f s)\n", filepath.Join(dir, noise.FileName), file.Seconds)
	return nil
}

// runTraining runs --train: the config's first sgd optimiser on its first
// image model's first initialisation.
func runTraining(cfg *config.Config, pool *data.Pool, x []float64, test noise.Examples, formats []precision.Format, trials, workers int, eng noise.Engine, logf func(string, ...any)) (*noise.Training, error) {
	var opt *config.Optimizer
	for i := range cfg.Optimizers {
		if cfg.Optimizers[i].Name == "sgd" {
			opt = &cfg.Optimizers[i]
			break
		}
	}
	if opt == nil {
		return nil, fmt.Errorf("--train: %s has no sgd [[optimizer]]; add one (e.g. name = \"sgd\" batch = 1 epochs = 1)", cfg.Path)
	}
	if opt.Reshuffle {
		return nil, fmt.Errorf("--train: the sgd optimiser reshuffles; --train visits the training set in draw order, remove reshuffle")
	}
	for _, m := range cfg.Models {
		if m.IsLandscape() {
			continue
		}
		a, err := nets.NewSized(m.Name, pool.Channels, pool.Height, pool.Width, pool.Classes, m.Size())
		if err != nil {
			return nil, err
		}
		v, err := a.Init(m.Inits[0])
		if err != nil {
			return nil, err
		}
		var theta []float64
		for _, p := range v {
			theta = append(theta, p...)
		}
		steps := opt.Steps
		var cps []int
		for c := 1; c < steps; c *= 2 {
			cps = append(cps, c)
		}
		logf("training %s init %d: sgd B=%d, %d steps, etas %v, %d trials, precisions %v", m.Name, m.Inits[0], opt.Batch, steps, cfg.Trials.Etas, min(trials, cfg.Trials.Count), formats)
		return noise.RunTraining(a, theta, noise.Examples{X: x, Y: pool.Labels}, test, noise.TrainSettings{
			Seed: cfg.Seed, Init: m.Inits[0], N: cfg.Trials.N, Batch: opt.Batch, Epochs: opt.Epochs, Etas: cfg.Trials.Etas,
			Trials: min(trials, cfg.Trials.Count), Formats: formats, Checkpoints: cps, TrCExamples: 500, Workers: workers, Engine: eng})
	}
	return nil, fmt.Errorf("--train: %s has no image model", cfg.Path)
}
