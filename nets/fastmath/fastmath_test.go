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

// TestGemm checks every transposition, alpha and beta, with leading
// dimensions larger than the rows, against a direct loop in float64.
func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const m, n, k, pad = 5, 7, 3, 2
	fill := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		return x
	}
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			// op(a) is m×k: stored k×m when transposed.
			ar, ac := m, k
			if tA {
				ar, ac = k, m
			}
			br, bc := k, n
			if tB {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+pad, bc+pad, n+pad
			a, b, c0 := fill(ar*lda), fill(br*ldb), fill(m*ldc)
			at := func(i, p int) float64 {
				if tA {
					return a[p*lda+i]
				}
				return a[i*lda+p]
			}
			bt := func(p, j int) float64 {
				if tB {
					return b[j*ldb+p]
				}
				return b[p*ldb+j]
			}
			const alpha, beta = 0.5, 2.0
			want := append([]float64(nil), c0...)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := 0.0
					for p := 0; p < k; p++ {
						s += at(i, p) * bt(p, j)
					}
					want[i*ldc+j] = alpha*s + beta*c0[i*ldc+j]
				}
			}
			got := append([]float64(nil), c0...)
			Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, got, ldc)
			got32 := make([]float32, len(c0))
			a32, b32 := make([]float32, len(a)), make([]float32, len(b))
			for i := range a {
				a32[i] = float32(a[i])
			}
			for i := range b {
				b32[i] = float32(b[i])
			}
			for i := range c0 {
				got32[i] = float32(c0[i])
			}
			Gemm(tA, tB, m, n, k, float32(alpha), a32, lda, b32, ldb, float32(beta), got32, ldc)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12 {
					t.Fatalf("tA=%v tB=%v: float64 c[%d] = %g, want %g", tA, tB, i, got[i], want[i])
				}
				if math.Abs(float64(got32[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("tA=%v tB=%v: float32 c[%d] = %g, want %g", tA, tB, i, got32[i], want[i])
				}
			}
		}
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
