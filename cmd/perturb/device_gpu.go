//go:build gpu

package main

import (
	"fmt"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudev"
)

// openGPU opens CUDA device 0, or says why it cannot.
func openGPU() (kernels.Device, string) {
	if err := cudev.Probe(); err != nil {
		return nil, fmt.Sprintf("no usable GPU: %v", err)
	}
	d, err := cudev.Open(0)
	if err != nil {
		return nil, fmt.Sprintf("the GPU could not be opened: %v", err)
	}
	return d, ""
}
