package fastmath

import "math"

// Vector float32 tanh and exp: the AVX2+FMA kernels of vec_amd64.s (used by
// the kernels' CPU device) where the CPU has
// them, portable Go elsewhere.
//
// Accuracy (float32 results against math.Tanh / math.Exp rounded to
// float32, see vec_test.go): TanhScaleBias32 within 5 ulp with AVX2 (the
// rational function of Tanh evaluated in float32 with FMA) and 1 ulp in the
// portable path (the same function in float64); Exp32 within 3 ulp with
// AVX2 (x = n·ln 2 + r, exp r = 1 + r + r²·C(r), C of degree 4, inputs
// clamped to [-87.3, 88.3] so results stay normal) and correctly rounded
// math.Exp in the portable path. NaN gives NaN, ±Inf gives ±1 (tanh).
// Every element's result depends only on its own value (and its bias),
// never on its position or the slice length: tails go through the kernel
// via a padded copy.

// HaveAVX2 selects the AVX2+FMA kernels; tests clear it to check the
// portable path.
var HaveAVX2 = haveAVX2

// Tile32 returns the bias b repeated to a length that is a multiple of
// both len(b) and 8, as TanhScaleBias32 needs.
func Tile32(b []float32) []float32 {
	n := len(b)
	for n%8 != 0 {
		n += len(b)
	}
	t := make([]float32, n)
	for i := range t {
		t[i] = b[i%len(b)]
	}
	return t
}

// TanhScaleBias32 sets x[i] = tanh(float32(s·x[i]) + tile[i mod
// len(tile)]): the activation of an affine layer whose bias repeats along
// rows of x. len(tile) must be a positive multiple of 8 (see Tile32).
func TanhScaleBias32(x []float32, s float32, tile []float32) {
	if !HaveAVX2 {
		for i := 0; i < len(x); {
			for j := 0; j < len(tile) && i < len(x); j++ {
				z := float32(x[i]*s) + tile[j]
				x[i] = float32(Tanh(float64(z)))
				i++
			}
		}
		return
	}
	n := len(x) &^ 7
	if n > 0 {
		tanhScaleBiasAVX2(x[:n], s, tile)
	}
	if n < len(x) {
		var buf [8]float32
		copy(buf[:], x[n:])
		off := n % len(tile)
		tanhScaleBiasAVX2(buf[:], s, tile[off:off+8])
		copy(x[n:], buf[:])
	}
}

// Exp32 sets x[i] = exp(x[i]).
func Exp32(x []float32) {
	if !HaveAVX2 {
		for i, v := range x {
			x[i] = float32(math.Exp(float64(v)))
		}
		return
	}
	n := len(x) &^ 7
	if n > 0 {
		expAVX2(x[:n])
	}
	if n < len(x) {
		var buf [8]float32
		copy(buf[:], x[n:])
		expAVX2(buf[:])
		copy(x[n:], buf[:])
	}
}
