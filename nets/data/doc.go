// Package data reads image-classification datasets (Fashion-MNIST and
// CIFAR-10) into a [Pool]: every example of the dataset, training and test
// files together, from which the research tool draws training sets with
// replacement.
//
// # Layout
//
// A pool holds N = Len() examples of D = Dim() = C·H·W raw bytes each, in
// channel-major (CHW) order, train examples first in file order, then test
// examples in file order. Labels are in [0, Classes).
//
// # Normalisation
//
// With x = pixel/255, the per-channel statistics are taken over the whole
// pool (population, not sample, standard deviation):
//
//	Mean[c] = (1/M) Σ x            over the M = N·H·W values of channel c
//	Std[c]  = sqrt((1/M) Σ (x − Mean[c])²)
//
// and [Pool.Float64] / [Pool.Float32] return z = (x − Mean[c]) / Std[c],
// so each channel of the normalised pool has mean 0 and standard deviation 1.
//
// # Where the files live
//
// Fashion-MNIST is read from [DefaultFashionDir] (installed by `make data`,
// i.e. the Debian package dataset-fashion-mnist) unless the environment
// variable [EnvFashionDir] or an explicit folder says otherwise. CIFAR-10 is
// read from [DefaultCIFARDir] (filled by scripts/get-cifar10.sh) unless
// [EnvCIFARDir] or an explicit folder says otherwise.
//
// Every error names the offending file, says what is wrong with it and how to
// fix it, and wraps [ErrMissing] or [ErrCorrupt] so callers can use
// errors.Is.
package data

import "errors"

// ErrMissing is wrapped by every error reporting that a dataset file or
// folder does not exist.
var ErrMissing = errors.New("dataset file missing")

// ErrCorrupt is wrapped by every error reporting that a dataset file exists
// but does not hold what the format requires (bad magic number, wrong
// dimensions or counts, truncated or padded file, broken gzip stream, label
// out of range).
var ErrCorrupt = errors.New("corrupt dataset file")
