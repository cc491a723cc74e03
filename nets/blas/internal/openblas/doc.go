// Package openblas links the OpenBLAS C library for the openblas build tag
// of package graph: gonum.org/v1/netlib/blas/netlib declares no linker
// flags of its own, so this package adds -lopenblas, and it exposes
// OpenBLAS's thread-count setting. Without the openblas build tag it is
// empty.
//
// It is a separate package because a Go package that uses cgo cannot also
// hold Go assembly, and package graph has an AVX2 kernel.
package openblas
