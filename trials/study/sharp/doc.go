// Package sharp measures the sharpness of a loss and the geometry of its
// gradient noise at the points trials reach, from Hessian-vector products
// and per-sample gradients only (no Hessian is ever formed), batched over
// trials: every trial has its own point and sample set, and each step of
// the iterations below is one batched backend call for all of them.
//
// For a loss L(θ) = (1/M) Σ_{x ∈ S} l_x(θ) over a sample set S (a trial's
// training set, or an evaluation subset of the pool), with H = ∇²L, per-
// sample gradients g_x, ḡ their mean and Ĉ = Σ_x (g_x − ḡ)(g_x − ḡ)ᵀ/(M−1)
// (the unbiased sample covariance, the C of the theory estimated on S):
//
//   - λ1 ≥ λ2 ≥ …, the largest eigenvalues of H, by Lanczos with full
//     reorthogonalisation; accepted only when the residual bound of each
//     is at most Tol·|λ| (some eigenvalue lies within the bound), else
//     reported as not converged (Lanczos);
//   - tr H by Hutchinson's estimator deflated by the Lanczos basis, with
//     its standard error (Trace);
//   - tr Ĉ = Σ_x |g_x − ḡ|²/(M−1), exact over S;
//   - tr(H Ĉ) = Σ_x (g_x − ḡ)ᵀ H (g_x − ḡ)/(M−1), the noise-weighted
//     sharpness that Proposition 2's η² term and Corollary 3 are about, by
//     sampling the terms x without replacement, with its standard error
//     (exact once every term is used).
//
// Measure computes them for a Problem (K trials on a backend); Record is
// what a trial's row stores; Analyze summarises a run's rows for the
// report: per-optimiser distributions of each measure's change from
// initialisation to the end, paired differences between optimisers on the
// same training sets, and the relation between a measure's change and the
// change of test loss. docs/sharpness.md has the derivations and checks.
package sharp
