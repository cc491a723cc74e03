package main

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
)

// deviceFlag adds --device auto|cpu|gpu to fs.
func deviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "auto", "where to compute: auto (the GPU when this binary has GPU support and a device is usable, else the CPU), cpu or gpu")
}

// selectDevice resolves --device: nil means the CPU path. auto says in one
// line on stderr which it uses and why; gpu without a usable device is an
// error saying what is missing.
func selectDevice(mode string, stderr io.Writer) (kernels.Device, error) {
	switch mode {
	case "cpu":
		return nil, nil
	case "auto", "gpu":
	default:
		return nil, fmt.Errorf("--device %q: want auto, cpu or gpu", mode)
	}
	dev, why := gpuOpener()
	if dev != nil {
		fmt.Fprintf(stderr, "device: GPU %s (--device %s)\n", dev.Name(), mode)
		return dev, nil
	}
	if mode == "gpu" {
		return nil, fmt.Errorf("--device gpu: %s", why)
	}
	fmt.Fprintf(stderr, "device: CPU (%s)\n", why)
	return nil, nil
}

// gpuOpener opens the GPU (openGPU; tests substitute the CPU twin).
var gpuOpener = openGPU

// checkDeviceMode checks the value of --device.
func checkDeviceMode(mode string) error {
	switch mode {
	case "auto", "cpu", "gpu":
		return nil
	}
	return fmt.Errorf("--device %q: want auto, cpu or gpu", mode)
}

// runDevice is --device of perturb run, resolved before the data is
// loaded (openRunDevice) and attached to the runner after (attach).
type runDevice struct {
	mode string
	dev  kernels.Device // nil: the CPU
	why  string         // why there is no GPU
}

// openRunDevice checks --device and opens the GPU for auto and gpu;
// --device gpu without a usable GPU is an error, at once.
func openRunDevice(mode string) (*runDevice, error) {
	if err := checkDeviceMode(mode); err != nil || mode == "cpu" {
		return &runDevice{mode: mode}, err
	}
	dev, why := gpuOpener()
	if dev == nil && mode == "gpu" {
		return nil, fmt.Errorf("--device gpu: %s", why)
	}
	return &runDevice{mode: mode, dev: dev, why: why}, nil
}

// close releases a GPU that attach or attachFor did not take (the
// command stopped before them); they clear d.dev when they take or
// release it.
func (d *runDevice) close() {
	if d.dev != nil {
		d.dev.Close()
		d.dev = nil
	}
}

// attach resolves --device for perturb run: with a usable GPU (gpu, or
// auto) and a config with image models in float32, the runner computes
// them on it (trials.Runner.UseDevice); it says in one line on stderr
// where the trials run and why. --device gpu for a float64 config (the GPU
// computes in float32) is an error; auto falls back to the CPU. The
// returned function releases the device.
func (d *runDevice) attach(cfg *config.Config, runner *trials.Runner, stderr io.Writer) (func(), error) {
	return d.attachFor(cfg, runner, "image-model trials", false, stderr)
}

// attachFor is attach for a command whose device work is what (said in
// the message); with keep64, --device gpu for a float64 config falls back
// to the CPU with auto's message instead of being an error.
func (d *runDevice) attachFor(cfg *config.Config, runner *trials.Runner, what string, keep64 bool, stderr io.Writer) (func(), error) {
	none := func() {}
	mode, dev := d.mode, d.dev
	d.dev = nil // released below, or by the returned function
	if mode == "cpu" {
		return none, nil
	}
	if dev == nil {
		fmt.Fprintf(stderr, "device: CPU (%s)\n", d.why)
		return none, nil
	}
	release := func() { dev.Close() }
	if !cfg.NeedsData() {
		fmt.Fprintf(stderr, "device: CPU (config %s has only landscape models, which run on the CPU; GPU %s left idle)\n", cfg.Name, dev.Name())
		release()
		return none, nil
	}
	if dt := dev.DType().String(); len(cfg.DTypes) > 1 && slices.Contains(cfg.DTypes, dt) {
		// A dtype sweep: the trials of the GPU's dtype run on it, the
		// others on the CPU.
		what += fmt.Sprintf(" in %s (the other dtypes on the CPU)", dt)
	} else if dt != cfg.DType {
		release()
		if mode == "gpu" && !keep64 {
			return none, fmt.Errorf("--device gpu: config %s is %s and the GPU %s computes in %s: set dtype = %q in %s or use --device cpu",
				cfg.Name, cfg.DType, dev.Name(), dt, dt, cfg.Path)
		}
		fmt.Fprintf(stderr, "device: CPU (config %s is %s, the GPU %s computes in %s; GPU left idle)\n", cfg.Name, cfg.DType, dev.Name(), dt)
		return none, nil
	}
	if err := runner.UseDevice(dev); err != nil {
		release()
		return none, fmt.Errorf("--device %s: %w", mode, err)
	}
	for _, m := range cfg.Models {
		if m.IsLandscape() {
			what += "; landscapes on the CPU"
			break
		}
	}
	fmt.Fprintf(stderr, "device: GPU %s (--device %s): %s\n", dev.Name(), mode, what)
	return func() {
		runner.Close()
		dev.Close()
	}, nil
}

// noiseDevice resolves --device for perturb noise, where only tf32 (true
// when a precision list asks for it) computes on a GPU: with a usable GPU
// (gpu, or auto) it returns the GPU, whose cuBLAS TF32 tensor-core
// products the tf32 scans use, and says so in one line; otherwise (cpu,
// or auto without a GPU) nil, and tf32 is the CPU emulation
// (kernels.TF32Products), said in one line when tf32 is asked for.
// --device gpu without a usable GPU is an error; without tf32 the flag
// changes nothing and the GPU is not opened. The caller closes the GPU.
func noiseDevice(mode string, tf32 bool, stderr io.Writer) (kernels.Device, error) {
	if err := checkDeviceMode(mode); err != nil {
		return nil, err
	}
	const emulated = "tf32 emulated: the products' operands rounded to tf32, float32 arithmetic"
	if !tf32 {
		if mode == "gpu" {
			fmt.Fprintln(stderr, "device: CPU (perturb noise computes only tf32 on the GPU, and no precision list has tf32)")
		}
		return nil, nil
	}
	if mode == "cpu" {
		fmt.Fprintf(stderr, "device: CPU (--device cpu; %s)\n", emulated)
		return nil, nil
	}
	dev, why := gpuOpener()
	if dev == nil {
		if mode == "gpu" {
			return nil, fmt.Errorf("--device gpu: %s; tf32 on the CPU is an emulation (use --device cpu or auto)", why)
		}
		fmt.Fprintf(stderr, "device: CPU (%s; %s)\n", why, emulated)
		return nil, nil
	}
	if dev.DType() != kernels.F32 {
		dev.Close()
		return nil, fmt.Errorf("--device %s: the GPU %s computes in %s; tf32 needs a float32 device", mode, dev.Name(), dev.DType())
	}
	fmt.Fprintf(stderr, "device: GPU %s (--device %s): tf32 through cuBLAS's TF32 tensor-core products; the other precisions on the CPU\n", dev.Name(), mode)
	return dev, nil
}
