//go:build !openblas

package blas

// Name names the BLAS behind gonum's blas32/blas64 and gorgonia in this
// build: "gonum" (pure Go) without the openblas build tag, "openblas" with
// it (see blas_openblas.go).
func Name() string { return "gonum" }

// UseFast registers the fastest BLAS this build has for gonum's blas32
// and blas64 packages and for gorgonia, and returns its name. Without the
// openblas build tag that is gonum's pure-Go implementation, which is
// already the default, so this only returns "gonum".
func UseFast() string { return Name() }

// SetThreads sets the number of threads the registered BLAS may use for
// one call and returns the previous setting where it has one. Gonum's pure
// Go BLAS has no such setting: it returns 0 and does nothing.
func SetThreads(n int) int { return 0 }
