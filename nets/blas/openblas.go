//go:build openblas

package blas

import (
	"os"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"

	"github.com/perturb/perturb/nets/blas/internal/openblas"
)

// This file is compiled with the openblas build tag. It links the C BLAS
// library OpenBLAS (Debian: libopenblas-dev) through gonum's cgo bindings
// gonum.org/v1/netlib/blas/netlib (-lopenblas comes from package
// nets/blas/internal/openblas, since netlib declares no linker flags) and
// registers it at initialisation for gonum's blas32 and blas64 packages
// (used by the CPU device) and for gorgonia
// (Net, Evaluator).
//
// Unless $OPENBLAS_NUM_THREADS or $OMP_NUM_THREADS is set, OpenBLAS is
// limited to one thread per call: perturb parallelises above the BLAS
// (the CPU device's workers, parallel trials), and OpenBLAS's own threads on
// top of that oversubscribe the CPUs (the convnet pool evaluation of 16
// trials ran at 44 instead of 73 GFLOP/s on 2 cores).

func init() {
	UseFast()
	if os.Getenv("OPENBLAS_NUM_THREADS") == "" && os.Getenv("OMP_NUM_THREADS") == "" {
		SetThreads(1)
	}
}

// Name names the BLAS behind gonum's blas32/blas64 and gorgonia in this
// build: "openblas" with the openblas build tag, "gonum" without it.
func Name() string { return "openblas" }

// UseFast registers OpenBLAS for gonum's blas32 and blas64 packages and
// for gorgonia, and returns "openblas". The package's init already calls
// it; calling it again is harmless.
func UseFast() string {
	impl := netlib.Implementation{}
	blas32.Use(impl)
	blas64.Use(impl)
	G.Use(impl)
	return Name()
}

// SetThreads sets the number of threads OpenBLAS uses for one call
// (n < 1 leaves it unchanged) and returns the previous setting. OpenBLAS
// starts with $OPENBLAS_NUM_THREADS or the number of CPUs.
func SetThreads(n int) int {
	prev := openblas.Threads()
	if n >= 1 {
		openblas.SetThreads(n)
	}
	return prev
}
