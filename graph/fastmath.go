package graph

import (
	"math"

	"github.com/perturb/perturb/nets/fastmath"
)

// Fast float32 tanh for the hand-written Hessian-vector products.
//
// tanh(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 9.1 with P of degree 6 and Q of degree 3
// (a 13/6 odd/even rational function), and ±1 beyond: 1 − tanh(9.1) ≈ 2.5e-8
// is below half an ulp of 1 in float32. The coefficients are the relative-
// error minimax (Remez) solution on [0, 9.1], whose own maximum relative
// error is 7.4e-9 (0.12 ulp of float32); evaluated in float32 with fused
// multiply-adds (the AVX2 kernel) the result is within a few ulp of
// math.Tanh (see TestTanh32Accuracy), evaluated in float64 (the portable
// fallback, fastmath.Tanh, which owns the coefficients) within one ulp. NaN
// gives NaN and ±Inf gives ±1.

// peTanhScaleBias sets x[i] = tanh(s·x[i] + tile[i mod len(tile)]) for every
// i: the tanh of an affine layer whose bias (of width w) repeats along the
// rows of x. For float32, tile must come from peTile (its length is a
// multiple of 8 and of w) and the fast tanh is used; for float64 tile is the
// bias and math.Tanh is used. Every element's result depends only on its
// own value, s and its bias, never on its position.
func peTanhScaleBias[T float](x []T, s T, tile []T) {
	switch xs := any(x).(type) {
	case []float32:
		peTanhScaleBias32(xs, float32(s), any(tile).([]float32))
	case []float64:
		b := any(tile).([]float64)
		s := float64(s)
		for i := 0; i < len(xs); {
			for j := 0; j < len(b) && i < len(xs); j++ {
				xs[i] = math.Tanh(xs[i]*s + b[j])
				i++
			}
		}
	}
}

// peTanhScaleBias32 is peTanhScaleBias for float32: nets/fastmath's
// vector kernel (AVX2 where the CPU has it, the float64 evaluation of the
// same rational function elsewhere; tails through a padded copy, so an
// element's result never depends on whether it falls into the tail).
func peTanhScaleBias32(x []float32, s float32, tile []float32) {
	if peMathTanh32 {
		for i := 0; i < len(x); {
			for j := 0; j < len(tile) && i < len(x); j++ {
				x[i] = float32(math.Tanh(float64(float32(x[i]*s) + tile[j])))
				i++
			}
		}
		return
	}
	fastmath.TanhScaleBias32(x, s, tile)
}

// peMathTanh32 makes peTanhScaleBias32 use math.Tanh (for the benchmark of
// what the fast tanh changes).
var peMathTanh32 = false

// peTile returns the bias b repeated along rows, to a length that is a
// multiple of both len(b) and (for float32) 8, as peTanhScaleBias needs.
func peTile[T float](b []T) []T {
	var zero T
	if _, ok := any(zero).(float64); ok {
		return append([]T(nil), b...)
	}
	n := len(b)
	for n%8 != 0 {
		n += len(b)
	}
	t := make([]T, n)
	for i := range t {
		t[i] = b[i%len(b)]
	}
	return t
}

// peExp32 sets x[i] = exp(x[i]) for the log-sum-exp of float32 logits. The
// AVX2 kernel reduces x = n·ln 2 + r (|r| ≤ ln 2 / 2) and evaluates
// exp(r) = 1 + r + r²·C(r) with C a degree-4 near-minimax polynomial
// (relative error 8e-9) in float32 with FMA, within a few ulp of math.Exp
// (see TestExp32Accuracy); inputs are clamped to [-87.3, 88.3], so results
// stay normal (exp(-87.3) ≈ 1.3e-38 instead of an underflow to zero, which
// is immaterial in a sum that includes exp(0) = 1). The fallback rounds
// math.Exp. NaN gives NaN.
func peExp32(x []float32) { fastmath.Exp32(x) }
