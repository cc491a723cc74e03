package optim

import "github.com/perturb/perturb/nets"

// Backend evaluates one model for a batch of K trials at once: theta[k] is
// trial k's flat parameter vector (the model's parameters concatenated in
// their declared order, row-major), stored in float64 but always holding
// values representable in the model's dtype. Every trial's result depends
// only on its own theta[k] and pts[k]: never on K or on the other trials of
// the batch.
//
// Implementations: graph.DeviceBackend (image models through the walker,
// on the CPU device or a GPU: the runner's path, and with chunked
// Hessian-vector products the sharpness measures') and nets/landscape
// (Gauss, Archimedes, Mean Estimation).
type Backend interface {
	// NumParams is the length of every theta[k].
	NumParams() int
	// Grad sets loss[k] to the mean loss of theta[k] over the samples
	// pts[k] and grad[k] to its gradient. All pts[k] have the same length.
	Grad(theta [][]float64, pts [][]nets.Sample, loss []float64, grad [][]float64) error
	// HVP sets out[k] = Σ_n ∇²l(theta[k]; pts[k][n]) · v[k], the sum (not
	// the mean) of the per-sample Hessians applied to trial k's direction.
	HVP(theta [][]float64, pts [][]nets.Sample, v [][]float64, out [][]float64) error
	// Round replaces theta by the nearest admissible vector: values rounded
	// to the model's dtype and constrained parameters projected onto their
	// set (e.g. the l2 coefficient lambda >= 0).
	Round(theta []float64)
}

// TestLosser computes the exact test loss of a batch of trials: the mean
// loss over the whole pool for image models, the closed-form expectation
// for landscapes. acc[k] is the pool accuracy, NaN where it is undefined.
type TestLosser interface {
	TestLoss(theta [][]float64, loss, acc []float64) error
}
