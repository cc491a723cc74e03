package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/perturb/perturb/kernels"
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
	dev, why := openGPU()
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

// cpuOnly resolves --device for a command whose GPU path is not wired yet:
// the CPU, or an error for --device gpu.
func cpuOnly(cmd, mode string, stderr io.Writer) error {
	dev, err := selectDevice(mode, io.Discard)
	if err != nil {
		return err
	}
	if dev == nil {
		if mode == "auto" {
			_, why := openGPU()
			fmt.Fprintf(stderr, "device: CPU (%s)\n", why)
		}
		return nil
	}
	defer dev.Close()
	if mode == "gpu" {
		return fmt.Errorf("--device gpu: perturb %s does not run on the GPU yet (the batched graphs, the evaluation and the kernels do: see perturb bench and docs/gpu.md)", cmd)
	}
	fmt.Fprintf(stderr, "device: CPU (perturb %s does not run on the GPU yet; GPU %s left idle)\n", cmd, dev.Name())
	return nil
}
