package kernels

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// The CPU device's products with a small side (float32, AVX2) go through
// the micro-kernel of cpu_small.go; the others through gonum's registered
// BLAS (blas32.Implementation / blas64.Implementation: OpenBLAS where a
// program registers it, as graph does under the openblas build tag;
// gonum's pure-Go BLAS otherwise), one call per block of at most
// gemmRowBlock rows of one batch entry, the blocks of all entries spread
// over the device's goroutines. A shared operand (stride 0) is read in
// place by every entry.
//
// OpenBLAS's result for an element of C depends on the shape of the call
// and on the element's position in it (its kernels for edges and small
// sizes accumulate differently), so the calls never stack entries or
// depend on the batch size or the number of workers: each entry's blocks
// are the same calls whatever the batch, and results are bitwise
// independent of both (TestCPUGemmPaths; graph's TestDeviceEvalBitwise
// with OpenBLAS). They do depend on the entry's shape, so with OpenBLAS a
// different chunk length changes the last bits. With Beta = 0, C is not
// read: both BLAS write it without reading (tested with NaN poison).

// gemmRowBlock is the most rows of C of one BLAS call: fixed, so that the
// calls (and results) depend only on the entry's shape.
const gemmRowBlock = 256

// Gemm computes the strided-batched product (see the Device interface).
func (d CPU[T]) Gemm(g Gemm, c, a, b Buffer) error {
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
	if !gemmSmall(d.w(), d.uniform, g, cs, as, bb) {
		gemmBatched(d.w(), g, cs, as, bb)
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

// gemmBatched runs the row blocks of every entry, spread over the
// workers.
func gemmBatched[T float](w int, g Gemm, cs, as, bb []T) {
	lda, ldb := g.lds()
	blocks := (g.M + gemmRowBlock - 1) / gemmRowBlock
	per := 2 * min(g.M, gemmRowBlock) * g.N * g.K // flops of a block
	parallel(w, g.Batch*blocks, max(1<<18/max(per, 1), 1), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			i, r0 := u/blocks, (u%blocks)*gemmRowBlock
			ai, bi, ci := as[i*g.StrideA:], bb[i*g.StrideB:], cs[i*g.StrideC:]
			rows(g.TransA, g.TransB, r0, min(r0+gemmRowBlock, g.M), g.N, g.K, T(g.Alpha), ai, lda, bi, ldb, T(g.Beta), ci, g.N)
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
