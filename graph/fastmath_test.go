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
