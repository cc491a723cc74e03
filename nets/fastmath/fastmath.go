// Package fastmath holds the numerical kernels of the CPU device: the
// fast tanh and exp (scalar and vector), the micro-kernels of small
// products and dot products, gathers and scatters of patches,
// elementwise kernels and conversions.
package fastmath

// Coefficients of the rational approximation behind Tanh: the relative-
// error minimax (Remez) solution on [0, TanhClamp] of
// tanh(x) ≈ x·P(x²)/Q(x²), deg P = 6, deg Q = 3, whose own maximum
// relative error is 7.4e-9 (0.12 ulp of float32). graph's AVX2 kernel
// (vec_amd64.s) holds the same numbers rounded to float32.
const (
	TanhClamp = 9.1
	tanhP0    = 0.999999992553147084013984
	tanhP1    = 0.1307972464566337480764774
	tanhP2    = 0.003099162649516449733365152
	tanhP3    = 0.00001110393291143734450501557
	tanhP4    = -2.001916440115375826829991e-8
	tanhP5    = 5.177698657540824585567704e-11
	tanhP6    = -8.228487866765369867791152e-14
	tanhQ1    = 0.4641305101893512702445021
	tanhQ2    = 0.02447610818671081356295237
	tanhQ3    = 0.0002539151699179223879086896
)

// Tanh is the rational approximation of tanh evaluated in float64: within
// 7.4e-9 relative of math.Tanh inside the clamp and 2.5e-8 (1 − tanh 9.1,
// 0.4 ulp of float32) beyond, so that rounding it to float32 gives at most
// one ulp of error; ±1 beyond ±TanhClamp, NaN for NaN. It is the
// float32 models' tanh (much cheaper than math.Tanh).
func Tanh(x float64) float64 {
	switch {
	case x >= TanhClamp:
		return 1
	case x <= -TanhClamp:
		return -1
	}
	t := x * x
	p := ((((((tanhP6*t+tanhP5)*t+tanhP4)*t+tanhP3)*t+tanhP2)*t+tanhP1)*t + tanhP0)
	q := ((tanhQ3*t+tanhQ2)*t+tanhQ1)*t + 1
	return x * p / q // NaN stays NaN
}
