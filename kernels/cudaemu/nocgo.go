//go:build !cgo

// Package cudaemu runs perturb's CUDA kernels on the CPU; it needs cgo
// (see cudaemu.go), and without it Open says so.
package cudaemu

import (
	"errors"
	"fmt"

	"github.com/perturb/perturb/kernels"
)

// ErrNoCompiler is returned (wrapped) by Open when no C++ compiler (or,
// in this build, no cgo) is available.
var ErrNoCompiler = errors.New("no C++ compiler")

// Options configure a Device.
type Options struct {
	SMs, Workers int
	Fibers       bool
}

// Device is absent without cgo.
type Device struct{ kernels.Device }

// Open fails: the emulator is loaded through cgo.
func Open(Options) (*Device, error) {
	return nil, fmt.Errorf("%w: the CUDA emulator needs cgo (CGO_ENABLED=1)", ErrNoCompiler)
}

// Launch fails: there is no emulator in this build.
func (d *Device) Launch(kernels.Launch, ...kernels.Buffer) error {
	return fmt.Errorf("%w: the CUDA emulator needs cgo (CGO_ENABLED=1)", ErrNoCompiler)
}
