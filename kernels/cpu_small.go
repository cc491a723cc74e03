package kernels

import (
	"github.com/perturb/perturb/nets/blas"
	"github.com/perturb/perturb/nets/fastmath"
)

// Products with a small side (float32, AVX2+FMA): the batched products of
// the evaluation have one small side (the 10 channels of a convolution,
// the 10 classes of a dense layer) for which a BLAS call per trial packs a
// large operand to multiply a tiny one, and stacking the trials into one
// call would make a trial's rounding depend on its position in the stack
// (OpenBLAS's does). fastmath.Sgemm5x16 computes 5×16 blocks of C straight
// from the large operand, each element one FMA chain over K in increasing
// order, so its value depends only on its own row and column: results are
// independent of the batch, the split over workers, the chunk length and
// the element's position.
//
//   - small M (≤ smallSide), B not transposed: blocks of 5 rows of op(A)
//     (packed k-major) times 16 columns of B, read in place;
//   - small N (≤ smallSide), A transposed: the same for
//     Cᵀ = op(B)ᵀ·op(A)ᵀ, op(A)ᵀ (K × M) read in place, and the blocks
//     written back transposed;
//   - small N, A not transposed: C's rows as kernel rows, packed from A,
//     times a padded copy of op(B) (cpu_smallrows.go).
//
// Where OpenBLAS is linked, the products of a training step go to it
// instead, one call per entry, which measured 1.5–10× faster on them (a
// 16-column block padded from 10 columns, a transposed scatter of C or a
// per-entry packing of A cost more than the product): small-M products
// narrower than smallWide, and small-N products whose A is not shared by
// the batch (the weight gradients: A·Bᵀ of the convolutions, outer
// products of K = 1). gonum's pure-Go BLAS is 4–5× slower than the
// micro-kernel there, so without OpenBLAS they stay on it. The choice
// depends only on the product's shape and strides, never on the batch
// size, so a trial's results stay independent of K.

// A device made by WithUniformProducts keeps every product with a small
// side on the micro-kernel (small M with any N; small N with A transposed
// into scratch per entry when not shared), so that an element's value does
// not depend on the length of the wide side either: graph's DeviceEval
// uses it, so that the test loss does not depend on the chunk length nor
// on whether the chunk is shared by the trials.

// UniformProducter is a device whose products are the CPU device's (the
// CUDA emulator, kernels/cudaemu): it can route them as
// WithUniformProducts does.
type UniformProducter interface {
	// WithUniformProducts returns the device with its products routed as
	// on a CPU device made by WithUniformProducts.
	WithUniformProducts() Device
}

// WithUniformProducts returns d sending every product with a small side
// through the micro-kernel (see above) when d is a CPU device or a
// UniformProducter, and whether it is.
func WithUniformProducts(d Device) (Device, bool) {
	switch c := d.(type) {
	case CPU[float32]:
		c.uniform = true
		return c, true
	case CPU[float64]:
		c.uniform = true
		return c, true
	case UniformProducter:
		return c.WithUniformProducts(), true
	}
	return d, false
}

// smallSide is the largest small side of a product for the micro-kernel.
const smallSide = 20

// smallWide is the least wide side (N) of a small-M product for the
// micro-kernel: narrower products go to the BLAS.
const smallWide = 128

// smallCols is the number of columns of C (of the kernel's product) in
// one unit of work.
const smallCols = 512

// gemmSmall computes g with the micro-kernel when it applies (to every
// product with a small side when uniform) and reports whether it did.
func gemmSmall[T float](w int, uniform bool, g Gemm, cs, as, bb []T) bool {
	c32, ok := any(cs).([]float32)
	if !ok || !fastmath.HaveAVX2 {
		return false
	}
	a32, b32 := any(as).([]float32), any(bb).([]float32)
	// toBLAS: the training step's products go to the BLAS where OpenBLAS
	// is linked (gonum's pure-Go BLAS is 4–5× slower than the
	// micro-kernel on them).
	toBLAS := !uniform && blas.Name() == "openblas"
	switch {
	case g.M <= smallSide && !g.TransB && (!toBLAS || g.N >= smallWide):
		// C (M × N) = op(A)·B: kernel rows are C's rows.
		pack := func(e, r0, rows int, ap []float32) { // rows r0… of op(A_e), k-major
			a := a32[e*g.StrideA:]
			if g.TransA {
				packAcross(ap, a[r0:], g.M, g.K, rows)
			} else {
				packAlong(ap, a[r0*g.K:], g.K, g.K, rows)
			}
		}
		var direct func(e, r0, c0 int) []float32
		if g.Alpha == 1 && g.Beta == 0 { // full blocks straight into C
			direct = func(e, r0, c0 int) []float32 { return c32[e*g.StrideC+r0*g.N+c0:] }
		}
		smallBlocks(w, g, g.M, g.N, false, pack, func(e int) ([]float32, int) { return b32[e*g.StrideB:], g.N }, direct,
			func(e, r, c0 int, v []float32) {
				dst := c32[e*g.StrideC+r*g.N+c0:][:len(v)]
				if g.Alpha == 1 && g.Beta == 0 {
					copy(dst, v)
					return
				}
				for j, x := range v {
					dst[j] = combine(g, x, dst[j])
				}
			})
		return true
	case gemmDot(w, g, c32, a32, b32):
		return true
	case g.N <= smallSide && g.M > smallSide && toBLAS && g.StrideA != 0:
		return false // one BLAS call per entry
	case g.N <= smallSide && g.M > smallSide && !g.TransA:
		gemmSmallN(w, g, c32, a32, b32) // see cpu_smallrows.go
		return true
	case g.N <= smallSide && g.M > smallSide:
		// Cᵀ (N × M) = op(B)ᵀ·op(A)ᵀ: kernel rows are C's columns, op(A)ᵀ
		// read in place (A transposed).
		pack := func(e, j0, cols int, ap []float32) { // columns j0… of op(B_e), k-major
			b := b32[e*g.StrideB:]
			if g.TransB {
				packAlong(ap, b[j0*g.K:], g.K, g.K, cols)
			} else {
				packAcross(ap, b[j0:], g.N, g.K, cols)
			}
		}
		at := func(e int) ([]float32, int) { return a32[e*g.StrideA:], g.M }
		smallBlocks(w, g, g.N, g.M, false, pack, at, nil, func(e, j, i0 int, v []float32) {
			for i, x := range v {
				at := e*g.StrideC + (i0+i)*g.N + j
				c32[at] = combine(g, x, c32[at])
			}
		})
		return true
	}
	return false
}

// combine is alpha·v + beta·c (c not read for beta = 0).
func combine(g Gemm, v, c float32) float32 {
	if g.Alpha != 1 {
		v *= float32(g.Alpha)
	}
	if g.Beta != 0 {
		v += float32(g.Beta) * c
	}
	return v
}

// packAcross packs rows (≤ 5) values at a time, k-major: ap[k·5 + r] =
// src[k·ld + r] for k < kk (the rows lie side by side in src), and zeros
// for the rows past rows.
func packAcross(ap, src []float32, ld, kk, rows int) {
	if rows < 5 {
		clear(ap[:5*kk])
	}
	if rows == 5 {
		for k := 0; k < kk; k++ {
			d, v := ap[k*5:k*5+5:k*5+5], src[k*ld:k*ld+5:k*ld+5]
			d[0], d[1], d[2], d[3], d[4] = v[0], v[1], v[2], v[3], v[4]
		}
		return
	}
	for k := 0; k < kk; k++ {
		copy(ap[k*5:k*5+rows], src[k*ld:k*ld+rows])
	}
}

// packAlong packs rows (≤ 5) rows of src, each kk values along it at a
// stride of ld, k-major: ap[k·5 + r] = src[r·ld + k], and zeros for the
// rows past rows.
func packAlong(ap, src []float32, ld, kk, rows int) {
	if rows < 5 {
		clear(ap[:5*kk])
	}
	if rows == 5 {
		a0, a1, a2, a3, a4 := src[:kk], src[ld:ld+kk], src[2*ld:2*ld+kk], src[3*ld:3*ld+kk], src[4*ld:4*ld+kk]
		for k := range a0 {
			p := ap[k*5 : k*5+5 : k*5+5]
			p[0], p[1], p[2], p[3], p[4] = a0[k], a1[k], a2[k], a3[k], a4[k]
		}
		return
	}
	for r := 0; r < rows; r++ {
		for k, v := range src[r*ld : r*ld+kk] {
			ap[k*5+r] = v
		}
	}
}

// smallBlocks runs the micro-kernel over every entry of g: rows (m of
// them) packed by pack, columns (n) read from wide(e) (K rows at a
// stride), each row segment of the kernel's product handed to put(e, row,
// first column, values), or, for whole blocks when direct is set, written
// by the kernel at direct(e, first row, first column) (rows n apart).
// The units (entry, group of 5 rows, smallCols columns) are spread over
// the workers; wide(e) is called once per unit. With padded, the rows of
// wide(e) are readable up to a multiple of 16 columns.
func smallBlocks(w int, g Gemm, m, n int, padded bool, pack func(e, r0, rows int, ap []float32), wide func(e int) ([]float32, int), direct func(e, r0, c0 int) []float32, put func(e, r, c0 int, v []float32)) {
	groups := (m + 4) / 5
	chunks := (n + smallCols - 1) / smallCols
	per := groups * chunks
	parallel(w, g.Batch*per, max(1<<18/max(2*5*smallCols*g.K, 1), 1), func(lo, hi int) {
		sp := getScratch32(21 * g.K) // scratch between calls: the evaluation makes many small products
		defer scratch32.Put(sp)
		ap, tail := (*sp)[:5*g.K], (*sp)[5*g.K:21*g.K]
		var out [160]float32
		packed := -1 // the unit whose rows ap holds (the next chunks reuse them)
		for u := lo; u < hi; u++ {
			e, gr, ch := u/per, u%per/chunks, u%chunks
			r0 := gr * 5
			if p := u - ch; p != packed {
				pack(e, r0, min(5, m-r0), ap)
				packed = p
			}
			b, ldb := wide(e)
			end := min((ch+1)*smallCols, n)
			for c0 := ch * smallCols; c0 < end; {
				src, ld := b[c0:], ldb
				w := min(16, end-c0)
				kern := fastmath.Sgemm5x16
				if fastmath.HaveAVX512 && end-c0 >= 32 {
					// 32 columns at once, bitwise the 16-column kernel's values
					w, kern = 32, fastmath.Sgemm5x32
				} else if w < 16 && !padded { // a padded copy of the last columns
					for k := 0; k < g.K; k++ {
						row := tail[k*16 : (k+1)*16]
						copy(row, b[k*ldb+c0:k*ldb+c0+w])
						clear(row[w:])
					}
					src, ld = tail, 16
				}
				full := 16
				if w == 32 {
					full = 32
				}
				if direct != nil && w == full && r0+5 <= m {
					d := direct(e, r0, c0)
					_ = d[4*n+full-1] // the block is inside C
					kern(g.K, &ap[0], &src[0], ld, &d[0], n)
				} else {
					kern(g.K, &ap[0], &src[0], ld, &out[0], full)
					for r := r0; r < min(r0+5, m); r++ {
						put(e, r, c0, out[(r-r0)*full:(r-r0)*full+w])
					}
				}
				c0 += w
			}
		}
	})
}
