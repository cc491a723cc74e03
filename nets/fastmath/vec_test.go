package fastmath

import (
	"math"
	"testing"
)

// ulps is the distance in float32 steps between a and b.
func ulps(a, b float32) int64 {
	key := func(f float32) int64 {
		i := int64(math.Float32bits(f))
		if i&(1<<31) != 0 {
			return -(i &^ (1 << 31))
		}
		return i
	}
	d := key(a) - key(b)
	return max(d, -d)
}

// paths runs f with the AVX2 kernels (where the CPU has them) and the
// portable path, with the bound in ulp of each.
func paths(t *testing.T, avx, portable int64, f func(t *testing.T, maxULP int64)) {
	saved := HaveAVX2
	defer func() { HaveAVX2 = saved }()
	if saved {
		t.Run("avx2", func(t *testing.T) { f(t, avx) })
	}
	HaveAVX2 = false
	t.Run("go", func(t *testing.T) { f(t, portable) })
}

// TestTanhScaleBias32 checks the vector tanh against math.Tanh on a dense
// grid and on log-spaced magnitudes from 1e-40 to 100 of both signs (5 ulp
// with AVX2, 1 portable), with an odd-length slice (tail) and a bias
// tile, and the special values.
func TestTanhScaleBias32(t *testing.T) {
	var xs []float32
	for x := -12.0; x <= 12; x += 1.0 / (1 << 14) {
		xs = append(xs, float32(x))
	}
	for e := -40.0; e < 2; e += 0.01 {
		v := float32(math.Pow(10, e))
		xs = append(xs, v, -v)
	}
	xs = append(xs, 0, 9.0109, 9.1, 9.2, 1e-30, math.MaxFloat32, math.SmallestNonzeroFloat32, 3) // odd length
	b := []float32{0.25, -0.5, 0}
	tile := Tile32(b)
	paths(t, 5, 1, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		TanhScaleBias32(got, 0.5, tile)
		for i, x := range xs {
			want := float32(math.Tanh(float64(float32(0.5*x) + b[i%3])))
			if d := ulps(got[i], want); d > maxULP {
				t.Fatalf("tanh(0.5·%g + %g) = %g, want %g (%d ulp)", x, b[i%3], got[i], want, d)
			}
		}
		sp := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
		TanhScaleBias32(sp, 1, make([]float32, 8))
		if sp[0] == sp[0] || sp[1] != 1 || sp[2] != -1 {
			t.Errorf("tanh of NaN, ±Inf: %v", sp)
		}
	})
}

// TestExp32 checks the vector exp against math.Exp on [-87, 88] in steps
// of 2^-13 (3 ulp with AVX2, exact rounding portable), and its underflow
// and NaN.
func TestExp32(t *testing.T) {
	var xs []float32
	for x := -87.0; x <= 88; x += 1.0 / (1 << 13) {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, -1e-20, 1e-30, -1e-30, 1e-8, -1e-8, 5)
	paths(t, 3, 0, func(t *testing.T, maxULP int64) {
		got := append([]float32(nil), xs...)
		Exp32(got)
		for i, x := range xs {
			want := float32(math.Exp(float64(x)))
			if d := ulps(got[i], want); d > maxULP {
				t.Fatalf("exp(%g) = %g, want %g (%d ulp)", x, got[i], want, d)
			}
		}
		sp := []float32{float32(math.NaN()), float32(math.Inf(-1)), -1000}
		Exp32(sp)
		if sp[0] == sp[0] || sp[1] < 0 || sp[1] > 2e-38 || sp[2] < 0 || sp[2] > 2e-38 {
			t.Errorf("exp(NaN, −Inf, −1000) = %v", sp)
		}
	})
}

// TestSgemm5x16 checks the micro-kernels (5×16 with AVX2, 5×32 with
// AVX-512) against a float64 dot product (float32 accuracy) and against
// the same FMA chain in Go (bitwise).
func TestSgemm5x16(t *testing.T) {
	for _, kern := range []struct {
		name  string
		have  bool
		width int
		f     func(k int, a, b *float32, ldb int, c *float32, ldc int)
	}{{"5x16", HaveAVX2, 16, Sgemm5x16}, {"5x32", HaveAVX512, 32, Sgemm5x32}} {
		if !kern.have {
			t.Logf("%s: not on this CPU", kern.name)
			continue
		}
		for _, k := range []int{0, 1, 7, 25, 250} {
			const ldb = 37
			a := make([]float32, 5*k)
			b := make([]float32, k*ldb)
			for i := range a {
				a[i] = float32(math.Sin(float64(i)))
			}
			for i := range b {
				b[i] = float32(math.Cos(float64(3 * i)))
			}
			const ldc = 41
			c := make([]float32, 4*ldc+kern.width)
			var a0, b0 *float32
			if k > 0 {
				a0, b0 = &a[0], &b[0]
			}
			kern.f(k, a0, b0, ldb, &c[0], ldc)
			for r := 0; r < 5; r++ {
				for j := 0; j < kern.width; j++ {
					var s float64
					var f float32
					for l := 0; l < k; l++ {
						s += float64(a[l*5+r]) * float64(b[l*ldb+j])
						f = float32(math.FMA(float64(a[l*5+r]), float64(b[l*ldb+j]), float64(f)))
					}
					if got := c[r*ldc+j]; got != f || math.Abs(float64(got)-s) > 1e-5*float64(k+1) {
						t.Fatalf("%s k=%d c[%d,%d] = %v, want %v (FMA chain %v)", kern.name, k, r, j, got, s, f)
					}
				}
			}
		}
	}
}

// BenchmarkTanh32 measures the fast float32 tanh(s·x + b) per element.
func BenchmarkTanh32(b *testing.B) {
	x := make([]float32, 1<<14)
	tile := Tile32(make([]float32, 10))
	for i := range x {
		x[i] = float32(i%200)/50 - 2
	}
	for _, avx := range []bool{HaveAVX2, false} { // the vector kernel, then the portable path
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
