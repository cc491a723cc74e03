package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvert checks Narrow32 and Widen32 bitwise against Go's conversion,
// with and without AVX, on lengths around the vector width and on special
// values (NaN, ±Inf, overflow, subnormals, ties).
func TestConvert(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, 1e-42, -1e-45, 0, math.Copysign(0, -1),
		1 + 1.0/(1<<24), 1 + 3.0/(1<<24), math.MaxFloat32, 3.4028235677973366e38}
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 7850} {
			src := make([]float64, n)
			for i := range src {
				src[i] = r.NormFloat64() * math.Exp(4*r.NormFloat64())
				if i < len(special) && n > 20 {
					src[i] = special[i]
				}
			}
			got := make([]float32, n)
			Narrow32(got, src)
			back := make([]float64, n)
			Widen32(back, got)
			for i, v := range src {
				if w := float32(v); math.Float32bits(got[i]) != math.Float32bits(w) {
					t.Fatalf("avx %t n %d: Narrow32(%v)[%d] = %v, want %v", avx, n, v, i, got[i], w)
				}
				if w := float64(got[i]); math.Float64bits(back[i]) != math.Float64bits(w) {
					t.Fatalf("avx %t n %d: Widen32(%v)[%d] = %v, want %v", avx, n, got[i], i, back[i], w)
				}
			}
		}
	}
}

// BenchmarkConvert measures Narrow32 and Widen32 on 7850 elements (the
// logistic model's parameters) with and without AVX.
func BenchmarkConvert(b *testing.B) {
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	f64, f32 := make([]float64, 7850), make([]float32, 7850)
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		name := map[bool]string{false: "go", true: "avx"}[avx]
		b.Run("narrow/"+name, func(b *testing.B) {
			for range b.N {
				Narrow32(f32, f64)
			}
		})
		b.Run("widen/"+name, func(b *testing.B) {
			for range b.N {
				Widen32(f64, f32)
			}
		})
	}
}
