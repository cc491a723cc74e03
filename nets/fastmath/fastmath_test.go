package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTanh checks the approximation against math.Tanh on a dense grid and
// at the clamp and special values.
func TestTanh(t *testing.T) {
	worst, clamped := 0.0, 0.0
	for x := -12.0; x <= 12; x += 1.0 / 4096 {
		want := math.Tanh(x)
		got := Tanh(x)
		if x == 0 {
			if got != 0 {
				t.Fatalf("Tanh(0) = %g", got)
			}
			continue
		}
		r := math.Abs(got-want) / math.Abs(want)
		if math.Abs(x) < TanhClamp {
			worst = max(worst, r)
		} else {
			clamped = max(clamped, r)
		}
	}
	if worst > 1e-8 {
		t.Errorf("largest relative error inside the clamp %g, want at most 1e-8", worst)
	}
	if clamped > 2.6e-8 {
		t.Errorf("largest relative error beyond the clamp %g, want at most 2.6e-8 (1 − tanh 9.1)", clamped)
	}
	for _, tc := range []struct{ x, want float64 }{
		{math.Inf(1), 1}, {math.Inf(-1), -1}, {TanhClamp, 1}, {-20, -1},
	} {
		if got := Tanh(tc.x); got != tc.want {
			t.Errorf("Tanh(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if got := Tanh(math.NaN()); !math.IsNaN(got) {
		t.Errorf("Tanh(NaN) = %g", got)
	}
}

// TestSdot2x5 checks the ten dot products against float64 sums (to
// float32 rounding of sums of k terms) for lengths around the vector
// width and its tail, at strides longer than the rows.
func TestSdot2x5(t *testing.T) {
	if !HaveAVX512 {
		t.Skip("no AVX-512")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{1, 5, 15, 16, 17, 31, 32, 33, 100, 256, 2304} {
		lda, ldb := k+3, k+5
		a, b := make([]float32, 2*lda), make([]float32, 5*ldb)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		for i := range b {
			b[i] = float32(r.NormFloat64())
		}
		var c [10]float32
		Sdot2x5(k, &a[0], lda, &b[0], ldb, &c[0])
		for i := range 2 {
			for j := range 5 {
				want, abs := 0.0, 0.0
				for l := range k {
					x := float64(a[i*lda+l]) * float64(b[j*ldb+l])
					want += x
					abs += math.Abs(x)
				}
				if d := math.Abs(float64(c[5*i+j]) - want); d > 1e-6*abs {
					t.Errorf("k=%d: c[%d][%d] = %v, float64 sum %v (|terms| %v)", k, i, j, c[5*i+j], want, abs)
				}
			}
		}
	}
}
