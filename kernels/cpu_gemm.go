package kernels

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// The CPU device's products go through gonum's registered BLAS
// (blas32.Implementation / blas64.Implementation: OpenBLAS where a program
// registers it, as graph does under the openblas build tag; gonum's
// pure-Go BLAS otherwise), one call per block of rows, the blocks spread
// over the device's goroutines. A batch that shares one operand between
// its entries (stride 0) becomes one tall or wide product:
//
//   - shared B, dense C: C (Batch·M × N) = [op(A_0); op(A_1); …]·op(B), the
//     stacked A packed once when it is transposed or strided (the first
//     convolution of the test-loss evaluation: every trial's kernels times
//     the pool's shared patches);
//   - shared A, Beta = 0, narrow N: op(A)·[op(B_0) op(B_1) …] into scratch,
//     then scattered into C (the first dense layer of the evaluation: the
//     shared examples times every trial's weights).
//
// Each entry of C is one BLAS dot product over K in the BLAS's fixed order
// whatever the row block or the number of rows and columns around it, so
// results do not depend on the batch size or the number of workers (tested
// with OpenBLAS and gonum in graph and kernels). With Beta = 0, C is not
// read: both BLAS write it without reading (tested with NaN poison).

// sharedWide is the largest N for which a shared-A batch is stacked into
// one wide product (beyond it, one product per entry is efficient).
const sharedWide = 64

// gemmRowBlock is the fewest rows of C worth a goroutine.
const gemmRowBlock = 64

// Gemm computes the strided-batched product (see the Device interface).
func (CPU[T]) Gemm(g Gemm, c, a, b Buffer) error {
	bs, err := bufs[T](c, a, b)
	if err != nil {
		return err
	}
	cs, as, bb := bs[0], bs[1], bs[2]
	if g.Batch < 1 || g.M < 1 || g.N < 1 || g.K < 1 || g.StrideA < 0 || g.StrideB < 0 || g.StrideC < 0 {
		return fmt.Errorf("cpu: gemm of sizes %+v", g)
	}
	need := func(stride, size int) int { return (g.Batch-1)*stride + size }
	if len(as) < need(g.StrideA, g.M*g.K) || len(bb) < need(g.StrideB, g.K*g.N) || len(cs) < need(g.StrideC, g.M*g.N) {
		return fmt.Errorf("cpu: gemm %+v on buffers of %d, %d, %d", g, len(as), len(bb), len(cs))
	}
	switch {
	case g.Batch > 1 && g.StrideB == 0 && g.StrideA != 0 && g.StrideC == g.M*g.N:
		gemmSharedB(g, cs, as, bb)
	case g.Batch > 1 && g.StrideA == 0 && g.StrideB != 0 && g.Beta == 0 && g.N <= sharedWide:
		gemmSharedA(g, cs, as, bb)
	default:
		gemmBatched(g, cs, as, bb)
	}
	return nil
}

// lds returns the leading dimensions of op(A) (M×K) and op(B) (K×N).
func (g Gemm) lds() (lda, ldb int) {
	lda, ldb = g.K, g.N
	if g.TransA {
		lda = g.M
	}
	if g.TransB {
		ldb = g.K
	}
	return lda, ldb
}

// gemmBatched runs one product per batch entry, entries (or, for fewer
// entries than workers, row blocks of each) spread over the workers.
func gemmBatched[T float](g Gemm, cs, as, bb []T) {
	lda, ldb := g.lds()
	entry := func(i, r0, r1 int) {
		ai, bi, ci := as[i*g.StrideA:], bb[i*g.StrideB:], cs[i*g.StrideC:]
		rows(g.TransA, g.TransB, r0, r1, g.N, g.K, T(g.Alpha), ai, lda, bi, ldb, T(g.Beta), ci, g.N)
	}
	flops := 2 * g.M * g.N * g.K
	if g.Batch >= nWorkers() || g.M < 2*gemmRowBlock {
		parallel(g.Batch, max(1<<18/max(flops, 1), 1), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				entry(i, 0, g.M)
			}
		})
		return
	}
	for i := 0; i < g.Batch; i++ {
		parallel(g.M, gemmRowBlock, func(lo, hi int) { entry(i, lo, hi) })
	}
}

// gemmSharedB stacks the batch's A operands over one shared B.
func gemmSharedB[T float](g Gemm, cs, as, bb []T) {
	lda, ldb := g.lds()
	mt := g.Batch * g.M
	a := as
	if g.TransA || g.StrideA != g.M*g.K {
		p, done := getScratch[T](mt * g.K)
		defer done()
		parallel(g.Batch, units(g.M*g.K), func(lo, hi int) {
			for e := lo; e < hi; e++ {
				src := as[e*g.StrideA:]
				for i := 0; i < g.M; i++ {
					row := p[(e*g.M+i)*g.K : (e*g.M+i+1)*g.K]
					if g.TransA {
						for k := range row {
							row[k] = src[k*g.M+i]
						}
					} else {
						copy(row, src[i*g.K:])
					}
				}
			}
		})
		a, lda = p, g.K
	}
	parallel(mt, gemmRowBlock, func(lo, hi int) {
		rows(false, g.TransB, lo, hi, g.N, g.K, T(g.Alpha), a, lda, bb, ldb, T(g.Beta), cs, g.N)
	})
}

// gemmSharedA puts the batch's B operands side by side after one shared
// A, then scatters the wide product into C (Beta = 0).
func gemmSharedA[T float](g Gemm, cs, as, bb []T) {
	lda, _ := g.lds()
	nt := g.Batch * g.N
	p, done := getScratch[T](g.K*nt + g.M*nt)
	defer done()
	bw, cw := p[:g.K*nt], p[g.K*nt:]
	parallel(g.Batch, units(g.K*g.N), func(lo, hi int) {
		for e := lo; e < hi; e++ {
			src := bb[e*g.StrideB:]
			for k := 0; k < g.K; k++ {
				row := bw[k*nt+e*g.N : k*nt+(e+1)*g.N]
				if g.TransB {
					for j := range row {
						row[j] = src[j*g.K+k]
					}
				} else {
					copy(row, src[k*g.N:(k+1)*g.N])
				}
			}
		}
	})
	parallel(g.M, max(gemmRowBlock/4, units(2*g.K*nt)/64), func(lo, hi int) {
		rows(g.TransA, false, lo, hi, nt, g.K, T(g.Alpha), as, lda, bw, nt, 0, cw, nt)
		for i := lo; i < hi; i++ {
			for e := 0; e < g.Batch; e++ {
				copy(cs[e*g.StrideC+i*g.N:e*g.StrideC+(i+1)*g.N], cw[i*nt+e*g.N:i*nt+(e+1)*g.N])
			}
		}
	})
}

// rows computes rows r0..r1 of C = alpha·op(A)·op(B) + beta·C (op(A) of
// K columns, C of n columns) through the registered BLAS.
func rows[T float](tA, tB bool, r0, r1, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if r1 <= r0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	aoff := r0 * lda
	if tA {
		ta, aoff = blas.Trans, r0
	}
	if tB {
		tb = blas.Trans
	}
	m := r1 - r0
	c = c[r0*ldc:]
	switch a := any(a[aoff:]).(type) {
	case []float32:
		blas32.Implementation().Sgemm(ta, tb, m, n, k, float32(alpha), a, lda,
			any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(ta, tb, m, n, k, float64(alpha), a, lda,
			any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
