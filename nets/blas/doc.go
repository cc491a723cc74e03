// Package blas chooses the BLAS behind gonum's blas32 and blas64 packages
// and gorgonia for the whole program: with the openblas build tag it links
// OpenBLAS (Debian's libopenblas-dev, through gonum's netlib bindings) and
// registers it at initialisation; without the tag gonum's pure-Go BLAS
// stays in place. It is a leaf package: it imports nothing of perturb's, so
// every layer (kernels, graph, cmd) can depend on it.
package blas
