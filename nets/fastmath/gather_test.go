package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGatherRows32 checks the gather against its loop, with and without
// AVX2, for row lengths around multiples of 8.
func TestGatherRows32(t *testing.T) {
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	r := rand.New(rand.NewPCG(1, 2))
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		for _, p := range []int{1, 7, 8, 9, 16, 23, 144} {
			for _, rows := range []int{1, 3} {
				const stride = 300
				src := make([]float32, (rows-1)*stride+200)
				for i := range src {
					src[i] = r.Float32()
				}
				idx := make([]int32, p)
				for i := range idx {
					idx[i] = int32(r.IntN(200))
				}
				dst := make([]float32, rows*p+1)
				dst[rows*p] = -1 // must stay
				GatherRows32(dst[:rows*p], src, idx, rows, stride)
				for j := 0; j < rows; j++ {
					for i := 0; i < p; i++ {
						if got, want := dst[j*p+i], src[j*stride+int(idx[i])]; got != want {
							t.Fatalf("avx %v p %d rows %d: dst[%d,%d] = %v, want %v", avx, p, rows, j, i, got, want)
						}
					}
				}
				if dst[rows*p] != -1 {
					t.Fatalf("avx %v p %d: wrote past the rows", avx, p)
				}
			}
		}
	}
}

// TestGatherStride2Rows32 checks the stride-2 gather against its loop,
// with and without AVX2, including images whose last load would pass the
// end of src.
func TestGatherStride2Rows32(t *testing.T) {
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	r := rand.New(rand.NewPCG(3, 4))
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		for _, tc := range []struct{ w, ow, oh, rows, stride int }{
			{12, 4, 4, 3, 144}, {28, 12, 12, 2, 784}, {9, 4, 3, 4, 27}, {13, 5, 2, 2, 40}, {12, 4, 2, 1, 0},
		} {
			src := make([]float32, (tc.rows-1)*tc.stride+2*(tc.oh-1)*tc.w+2*(tc.ow-1)+1) // tight
			for i := range src {
				src[i] = r.Float32()
			}
			rs := 2 * tc.w
			p := tc.oh * tc.ow
			dst := make([]float32, tc.rows*p+1)
			dst[tc.rows*p] = -1
			GatherStride2Rows32(dst[:tc.rows*p], src, tc.oh, tc.ow, rs, tc.rows, tc.stride)
			for j := 0; j < tc.rows; j++ {
				for y := 0; y < tc.oh; y++ {
					for x := 0; x < tc.ow; x++ {
						got, want := dst[(j*tc.oh+y)*tc.ow+x], src[j*tc.stride+y*rs+2*x]
						if got != want {
							t.Fatalf("avx %v %+v: [%d,%d,%d] = %v, want %v", avx, tc, j, y, x, got, want)
						}
					}
				}
			}
			if dst[tc.rows*p] != -1 {
				t.Fatalf("avx %v %+v: wrote past the rows", avx, tc)
			}
		}
	}
}

// TestAddStride2Rows32 checks the adjoint of GatherStride2Rows32 against
// the loop, bitwise, on dst slices that end at a row's last pixel (the
// AVX2 path must not pass them), and that nothing past dst changes.
func TestAddStride2Rows32(t *testing.T) {
	defer func(h bool) { HaveAVX2 = h }(HaveAVX2)
	r := rand.New(rand.NewPCG(5, 6))
	for _, avx := range []bool{false, haveAVX2} {
		HaveAVX2 = avx
		for _, tc := range []struct{ w, ow, oh, rows, stride int }{
			{12, 4, 4, 3, 144}, {11, 4, 4, 3, 121}, {28, 12, 12, 2, 784}, {9, 4, 3, 4, 27}, {13, 5, 2, 2, 40}, {12, 4, 2, 1, 0},
		} {
			n := (tc.rows-1)*tc.stride + 2*(tc.oh-1)*tc.w + 2*(tc.ow-1) + 1 // tight
			dst := make([]float32, n+1)
			for i := range dst {
				dst[i] = r.Float32()
			}
			dst[n] = -1
			want := append([]float32(nil), dst...)
			rs := 2 * tc.w
			src := make([]float32, tc.rows*tc.oh*tc.ow)
			for i := range src {
				src[i] = r.Float32() - 0.5
			}
			for j := 0; j < tc.rows; j++ {
				for y := 0; y < tc.oh; y++ {
					for x := 0; x < tc.ow; x++ {
						want[j*tc.stride+y*rs+2*x] += src[(j*tc.oh+y)*tc.ow+x]
					}
				}
			}
			AddStride2Rows32(dst[:n], src, tc.oh, tc.ow, rs, tc.rows, tc.stride)
			for i := range want {
				if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
					t.Fatalf("avx %v %+v: dst[%d] = %v, want %v", avx, tc, i, dst[i], want[i])
				}
			}
		}
	}
}
