package kernels

import "github.com/perturb/perturb/nets/fastmath"

// Products A·Bᵀ with few columns and a long inner dimension (a
// convolution's weight gradient: patches against the output adjoints) as
// dot products of rows with AVX-512 (fastmath.Sdot2x5): two rows of A
// against five rows of B at a time, sixteen terms per instruction, each
// value depending only on its two rows. OpenBLAS packs such products'
// operands as for a large product and reaches a fraction of the rate.

// dotMinK is the least inner dimension worth the dot kernel.
const dotMinK = 32

// gemmDot computes g (float32, A·Bᵀ, N ≤ smallSide) through Sdot2x5 and
// reports whether it applied.
func gemmDot(w int, g Gemm, c, a, b []float32) bool {
	if !fastmath.HaveAVX512 || g.TransA || !g.TransB || g.N > smallSide || g.K < dotMinK || g.M < 2 {
		return false
	}
	pairs := (g.M + 1) / 2
	groups := (g.N + 4) / 5
	parallel(w, g.Batch*pairs, max(1, 1<<16/max(1, 2*g.N*g.K)), func(lo, hi int) {
		var out [10]float32
		var pad []float32 // the last group's rows of B, zero-padded to five
		for u := lo; u < hi; u++ {
			e, r := u/pairs, 2*(u%pairs)
			ae, be, ce := a[e*g.StrideA:], b[e*g.StrideB:], c[e*g.StrideC:]
			lda := g.K
			if r+1 == g.M {
				lda = 0 // an odd last row: itself twice
			}
			for grp := range groups {
				j0 := 5 * grp
				bp, n := be[j0*g.K:], min(5, g.N-j0)
				if n < 5 {
					if pad == nil {
						pad = make([]float32, 5*g.K)
					}
					copy(pad, bp[:n*g.K])
					clear(pad[n*g.K:])
					bp = pad
				}
				fastmath.Sdot2x5(g.K, &ae[r*g.K], lda, &bp[0], g.K, &out[0])
				for i := range min(2, g.M-r) {
					row := ce[(r+i)*g.N+j0:][:n]
					for j := range row {
						row[j] = combine(g, out[5*i+j], row[j])
					}
				}
			}
		}
	})
	return true
}
