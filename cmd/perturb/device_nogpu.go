//go:build !gpu

package main

import "github.com/perturb/perturb/kernels"

// openGPU reports that this binary has no GPU support.
func openGPU() (kernels.Device, string) {
	return nil, "this binary was built without GPU support: build it with make build-gpu (go build -tags gpu) on a machine with the CUDA toolkit"
}
