package kernels

import (
	"sync"

	"github.com/perturb/perturb/nets/fastmath"
)

// Products with a small N and an untransposed A (the logistic model's
// dense layer x·W, the convolutions' weight gradients X·δᵀ in the
// channel-major layout): the micro-kernel's rows are C's rows, packed 5 at
// a time from A's rows (read in order), and its wide operand is op(B),
// copied once per entry (once for a shared B) into K rows of N columns
// padded to a multiple of 16. Each element of C is the same FMA chain
// Σ_k a_ik·b_kj in increasing k as on the path for Cᵀ = op(B)ᵀ·op(A)ᵀ
// (the multiplicands of an FMA commute), which copied op(A)ᵀ into fresh
// scratch (M·K elements scattered across rows, most of the cost of such a
// product): so its value is bitwise that one, 2 to 9 times sooner.
//
// Where OpenBLAS is linked (the openblas build tag), A·Bᵀ (both operands
// read along K, K in the thousands for the weight gradients) goes to it
// instead, one call per entry as for any product: about twice as fast as
// this path (2.3 against 4.2 ms for the second convolution's weight
// gradient of 8 trials of 128 images, 2.8 against 6.4 for the first's, on
// one EPYC core), where the former path took 40. Only the evaluation's
// products (forward passes, no Bᵀ) need the micro-kernel's independence
// of the chunk length. Gonum's pure-Go BLAS takes 22 to 26 ms.

// scratch32 keeps the padded copies of op(B) between calls.
var scratch32 sync.Pool

// getScratch32 returns a buffer of n float32s (contents undefined); give
// it back with scratch32.Put.
func getScratch32(n int) *[]float32 {
	if p, ok := scratch32.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	} // a smaller one is dropped: the pool's buffers grow to the largest use
	s := make([]float32, n)
	return &s
}

// gemmSmallN computes g (g.N small, A not transposed) with the
// micro-kernel.
func gemmSmallN(w int, g Gemm, c32, a32, b32 []float32) {
	if g.StrideA == 0 && g.Batch > 1 {
		gemmSmallNShared(w, g, c32, a32, b32)
		return
	}
	ld := padCols(g.N)
	n, stride := g.Batch, ld*g.K
	if g.StrideB == 0 {
		n = 1
	}
	wp := getScratch32(n * stride)
	defer scratch32.Put(wp)
	wide := *wp
	parallel(w, n, units(ld*g.K), func(lo, hi int) {
		for e := lo; e < hi; e++ {
			b, dst := b32[e*g.StrideB:], wide[e*stride:(e+1)*stride]
			for k := 0; k < g.K; k++ {
				row := dst[k*ld : (k+1)*ld]
				if g.TransB {
					for j := 0; j < g.N; j++ {
						row[j] = b[j*g.K+k]
					}
				} else {
					copy(row, b[k*g.N:(k+1)*g.N])
				}
				clear(row[g.N:])
			}
		}
	})
	groups := (g.M + 4) / 5
	parallel(w, g.Batch*groups, 1, func(lo, hi int) {
		sp := getScratch32(5 * g.K)
		defer scratch32.Put(sp)
		ap := *sp
		var out [160]float32
		for u := lo; u < hi; u++ {
			e, r0 := u/groups, (u%groups)*5
			rows := min(5, g.M-r0)
			packAlong(ap, a32[e*g.StrideA+r0*g.K:], g.K, g.K, rows) // rows r0… of A_e, k-major
			b := wide
			if g.StrideB != 0 {
				b = wide[e*stride:]
			}
			for c0 := 0; c0 < g.N; {
				width := microKernel(g.K, ap, b[c0:], ld, ld-c0, out[:])
				cols := min(width, g.N-c0)
				for r := 0; r < rows; r++ {
					dst := c32[e*g.StrideC+(r0+r)*g.N+c0:][:cols]
					for j, x := range out[r*width : r*width+cols] {
						dst[j] = combine(g, x, dst[j])
					}
				}
				c0 += width
			}
		}
	})
}

// gemmSmallNShared is gemmSmallN for an A shared by the entries (stride
// 0: the evaluation's first layer, one chunk of the pool for every
// trial; B may be shared too): the entries' op(B) are laid side by side into one wide operand
// of K rows of Batch·N columns (padded to a multiple of 16), so that a
// kernel block spans entries instead of padding N to 16, and each group of
// A's rows is packed once. An element is the same FMA chain as on
// gemmSmallN's path, so its value is bitwise that one.
func gemmSmallNShared(w int, g Gemm, c32, a32, b32 []float32) {
	cols := g.Batch * g.N
	ld := padCols(cols)
	wp := getScratch32(ld * g.K)
	defer scratch32.Put(wp)
	wide := *wp
	parallel(w, g.K, units(ld), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			row := wide[k*ld : (k+1)*ld]
			for e := 0; e < g.Batch; e++ {
				b, dst := b32[e*g.StrideB:], row[e*g.N:(e+1)*g.N]
				if g.TransB {
					for j := range dst {
						dst[j] = b[j*g.K+k]
					}
				} else {
					copy(dst, b[k*g.N:(k+1)*g.N])
				}
			}
			clear(row[cols:])
		}
	})
	groups := (g.M + 4) / 5
	parallel(w, groups, 1, func(lo, hi int) {
		sp := getScratch32(5 * g.K)
		defer scratch32.Put(sp)
		ap := *sp
		var out [160]float32
		for gr := lo; gr < hi; gr++ {
			r0 := gr * 5
			rows := min(5, g.M-r0)
			packAlong(ap, a32[r0*g.K:], g.K, g.K, rows)
			plain := g.Alpha == 1 && g.Beta == 0
			e, j := 0, 0 // the entry and column of the block's first column
			for c0 := 0; c0 < cols; {
				width := microKernel(g.K, ap, wide[c0:], ld, ld-c0, out[:])
				for i := 0; i < min(width, cols-c0); i++ {
					at := e*g.StrideC + r0*g.N + j
					for r := 0; r < rows; r++ {
						if plain {
							c32[at] = out[r*width+i]
						} else {
							c32[at] = combine(g, out[r*width+i], c32[at])
						}
						at += g.N
					}
					if j++; j == g.N {
						e, j = e+1, 0
					}
				}
				c0 += width
			}
		}
	})
}

// padCols is the row length of a wide operand of n columns padded for the
// micro-kernels: a multiple of 16, or of 32 past 16 columns where the
// AVX-512 kernel runs.
func padCols(n int) int {
	if fastmath.HaveAVX512 && n > 16 {
		return (n + 31) &^ 31
	}
	return (n + 15) &^ 15
}

// microKernel multiplies the packed rows ap (5 × k, k-major) by the first
// columns of b (k rows at a stride of ldb, avail ≥ 16 of them readable)
// into out (5 rows of the width it returns): 32 columns through
// fastmath.Sgemm5x32 where AVX-512 runs and 32 are readable, else 16
// through Sgemm5x16, bitwise the same values either way.
func microKernel(k int, ap, b []float32, ldb, avail int, out []float32) int {
	if fastmath.HaveAVX512 && avail >= 32 {
		fastmath.Sgemm5x32(k, &ap[0], &b[0], ldb, &out[0], 32)
		return 32
	}
	fastmath.Sgemm5x16(k, &ap[0], &b[0], ldb, &out[0], 16)
	return 16
}
