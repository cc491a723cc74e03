package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestElem checks the elementwise kernels against their definitions
// evaluated one element at a time, bitwise, for lengths with and without
// a tail, on the AVX2 path and the portable one.
func TestElem(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	same := func(t *testing.T, what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d of %d is %g, want %g", what, i, len(want), got[i], want[i])
			}
		}
	}
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		for _, n := range []int{0, 1, 7, 8, 9, 64, 1000, 1003} {
			a, b, c := vec(n), vec(n), vec(n)
			tile := Tile32(vec(3))
			want, got := make([]float32, n), make([]float32, n)
			for i := range want {
				sq := a[i] * a[i]
				want[i] = (1 - sq) * b[i]
			}
			TanhBack32(got, a, b)
			same(t, "TanhBack32", got, want)
			for i := range want {
				m := -2 * a[i]
				m *= b[i]
				want[i] = m * c[i]
			}
			TanhBack2_32(got, a, b, c)
			same(t, "TanhBack2_32", got, want)
			for op, f := range []func(x, y float32) float32{
				func(x, y float32) float32 { return x + y },
				func(x, y float32) float32 { return x - y },
				func(x, y float32) float32 { return x * y },
			} {
				for i := range want {
					want[i] = f(a[i], b[i])
				}
				Binary32(op, got, a, b)
				same(t, "Binary32", got, want)
			}
			copy(got, a)
			for i := range want {
				p := 0.37 * a[i]
				want[i] = p + tile[i%len(tile)]
			}
			ScaleBias32(got, 0.37, tile)
			same(t, "ScaleBias32", got, want)
		}
	}
}
