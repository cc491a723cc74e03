package graph

import (
	"github.com/perturb/perturb/nets/fastmath"
	"math"
	"testing"
)

// ulps is the distance in float32 steps between a and b.
func peULPs(a, b float32) int64 {
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

// peTanhPaths runs f with the AVX2 kernel (where the CPU has it) and with
// the portable fallback.
func peTanhPaths(t *testing.T, f func(t *testing.T, maxULP int64)) {
	saved := fastmath.HaveAVX2
	defer func() { fastmath.HaveAVX2 = saved }()
	if saved {
		t.Run("avx2", func(t *testing.T) { f(t, 5) })
	}
	fastmath.HaveAVX2 = false
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
	peTanhPaths(t, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		peTanhScaleBias32(got, 1, make([]float32, 8))
		worst, at := int64(0), float32(0)
		for i, x := range xs {
			want := float32(math.Tanh(float64(x)))
			if d := peULPs(got[i], want); d > worst {
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
		peTanhScaleBias32(special, 1, make([]float32, 8))
		for i, v := range special {
			if !(v == float32(want[i]) || math.IsNaN(want[i]) && v != v) {
				t.Errorf("special %d: tanh gives %v, want %v", i, v, want[i])
			}
		}
	})
}

// TestTanhScaleBias checks tanh(s·x + b) with a bias repeating along rows of
// odd width, and that an element's result does not depend on its position
// (tail or not) nor on the length of the slice.
func TestTanhScaleBias(t *testing.T) {
	peTanhPaths(t, func(t *testing.T, maxULP int64) {
		const width = 10
		bias := make([]float32, width)
		for j := range bias {
			bias[j] = float32(j)/4 - 1
		}
		tile := peTile(bias)
		if len(tile)%8 != 0 || len(tile)%width != 0 {
			t.Fatalf("tile length %d", len(tile))
		}
		const s = 0.3
		x := make([]float32, 13*width)
		for i := range x {
			x[i] = float32(math.Sin(float64(i))) * 3
		}
		full := append([]float32(nil), x...)
		peTanhScaleBias32(full, s, tile)
		for i, v := range x {
			want := float32(math.Tanh(float64(float32(v*s) + bias[i%width])))
			if d := peULPs(full[i], want); d > maxULP+1 {
				t.Errorf("element %d: %v, want %v (%d ulp)", i, full[i], want, d)
			}
		}
		for rows := 1; rows < 13; rows++ {
			part := append([]float32(nil), x[:rows*width]...)
			peTanhScaleBias32(part, s, tile)
			for i := range part {
				if part[i] != full[i] {
					t.Fatalf("%d rows: element %d is %v, %v in the full slice", rows, i, part[i], full[i])
				}
			}
		}
	})
	// float64 uses math.Tanh exactly.
	x := []float64{0.5, -2, 3}
	peTanhScaleBias(x, 2, []float64{1, 0})
	for i, want := range []float64{math.Tanh(2), math.Tanh(-4), math.Tanh(7)} {
		if x[i] != want {
			t.Errorf("float64 element %d: %v, want %v", i, x[i], want)
		}
	}
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
	peTanhPaths(t, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		peExp32(got)
		worst, at := int64(0), float32(0)
		for i, x := range xs {
			if d := peULPs(got[i], float32(math.Exp(float64(x)))); d > worst {
				worst, at = d, x
			}
		}
		t.Logf("max error %d ulp at %g", worst, at)
		if lim := min(maxULP, 3); worst > lim {
			t.Errorf("max error %d ulp at %g, more than %d", worst, at, lim)
		}
		special := []float32{float32(math.NaN()), float32(math.Inf(-1)), -1000}
		peExp32(special)
		if special[0] == special[0] || special[1] < 0 || special[1] > 2e-38 || special[2] < 0 || special[2] > 2e-38 {
			t.Errorf("exp(NaN, -Inf, -1000) = %v", special)
		}
	})
}

// BenchmarkTanh32 measures the fast float32 tanh(s·x + b) per element.
func BenchmarkTanh32(b *testing.B) {
	x := make([]float32, 1<<14)
	tile := peTile(make([]float32, 10))
	for i := range x {
		x[i] = float32(i%200)/50 - 2
	}
	for _, avx := range []bool{fastmath.HaveAVX2, false} {
		name := "go"
		if avx {
			name = "avx2"
		}
		b.Run(name, func(b *testing.B) {
			saved := fastmath.HaveAVX2
			defer func() { fastmath.HaveAVX2 = saved }()
			fastmath.HaveAVX2 = avx
			for i := 0; i < b.N; i++ {
				peTanhScaleBias32(x, 1, tile)
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
