package fastmath

import (
	"math"
	"testing"
)

// Accuracy of the vector float32 tanh and exp over dense grids (moved
// from graph, where the retired hand-written passes wrapped them).

// ulps is the distance in float32 steps between a and b.
func ulps32(a, b float32) int64 {
	key := func(f float32) int64 {
		i := int64(math.Float32bits(f))
		if i&(1<<31) != 0 {
			return -(i &^ (1 << 31))
		}
		return i
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// vectorPaths runs f with the AVX2 kernel (where the CPU has it) and with
// the portable fallback.
func vectorPaths(t *testing.T, f func(t *testing.T, maxULP int64)) {
	saved := HaveAVX2
	defer func() { HaveAVX2 = saved }()
	if saved {
		t.Run("avx2", func(t *testing.T) { f(t, 5) })
	}
	HaveAVX2 = false
	t.Run("go", func(t *testing.T) { f(t, 1) })
}

// TestTanh32Accuracy compares the fast float32 tanh with math.Tanh rounded
// to float32 on a dense grid of [-12, 12] (step 2^-14, about 400,000
// points), on log-spaced small and large magnitudes, and on special values.
// An exhaustive run over every float32 in [0, 10] gave at most 5 ulp for the
// AVX2 kernel (99.97% within 2 ulp) and 1 ulp for the fallback.
func TestTanh32Accuracy(t *testing.T) {
	var xs []float32
	for x := -12.0; x <= 12; x += 1.0 / (1 << 14) {
		xs = append(xs, float32(x))
	}
	for e := -40.0; e < 2; e += 0.01 {
		v := float32(math.Pow(10, e))
		xs = append(xs, v, -v)
	}
	xs = append(xs, 0, 9.0109, 9.1, 9.2, 1e30, math.MaxFloat32, math.SmallestNonzeroFloat32)
	vectorPaths(t, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		TanhScaleBias32(got, 1, make([]float32, 8))
		worst, at := int64(0), float32(0)
		for i, x := range xs {
			want := float32(math.Tanh(float64(x)))
			if d := ulps32(got[i], want); d > worst {
				worst, at = d, x
			}
		}
		t.Logf("max error %d ulp at %g", worst, at)
		if worst > maxULP {
			t.Errorf("max error %d ulp at %g (tanh %g, want %g), more than %d", worst, at,
				got[0], math.Tanh(float64(at)), maxULP)
		}
		special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
		want := []float64{math.NaN(), 1, -1}
		TanhScaleBias32(special, 1, make([]float32, 8))
		for i, v := range special {
			if !(v == float32(want[i]) || math.IsNaN(want[i]) && v != v) {
				t.Errorf("special %d: tanh gives %v, want %v", i, v, want[i])
			}
		}
	})
}

// TestExp32Accuracy compares the float32 exp with math.Exp rounded to
// float32 on a dense grid of [-87, 88] (about 1.4 million points) and on
// special values.
func TestExp32Accuracy(t *testing.T) {
	var xs []float32
	for x := -87.0; x <= 88; x += 1.0 / (1 << 13) {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, 1e-30, -1e-30, 1e-8, -1e-8)
	vectorPaths(t, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		Exp32(got)
		worst, at := int64(0), float32(0)
		for i, x := range xs {
			if d := ulps32(got[i], float32(math.Exp(float64(x)))); d > worst {
				worst, at = d, x
			}
		}
		t.Logf("max error %d ulp at %g", worst, at)
		if lim := min(maxULP, 3); worst > lim {
			t.Errorf("max error %d ulp at %g, more than %d", worst, at, lim)
		}
		special := []float32{float32(math.NaN()), float32(math.Inf(-1)), -1000}
		Exp32(special)
		if special[0] == special[0] || special[1] < 0 || special[1] > 2e-38 || special[2] < 0 || special[2] > 2e-38 {
			t.Errorf("exp(NaN, -Inf, -1000) = %v", special)
		}
	})
}

// BenchmarkTanh32 measures the fast float32 tanh(s·x + b) per element.
func BenchmarkTanh32(b *testing.B) {
	x := make([]float32, 1<<14)
	tile := Tile32(make([]float32, 10))
	for i := range x {
		x[i] = float32(i%200)/50 - 2
	}
	for _, avx := range []bool{HaveAVX2, false} {
		name := "go"
		if avx {
			name = "avx2"
		}
		b.Run(name, func(b *testing.B) {
			saved := HaveAVX2
			defer func() { HaveAVX2 = saved }()
			HaveAVX2 = avx
			for i := 0; i < b.N; i++ {
				TanhScaleBias32(x, 1, tile)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*len(x)), "ns/elem")
		})
	}
	b.Run("math.Tanh", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range x {
				x[j] = float32(math.Tanh(float64(v)))
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*len(x)), "ns/elem")
	})
}
