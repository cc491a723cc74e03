package fastmath

import "golang.org/x/sys/cpu"

// Sgemm5x16 is the micro-kernel of kernels.CPU's products with a small
// side: c[r·ldc + j] = Σ_{l<k} a[l·5 + r]·b[l·ldb + j] for r < 5 and
// j < 16, each element one FMA chain in increasing l, so its value depends
// only on its own operands (not on its position or on the surrounding
// product). a holds 5k values (k-major), b rows of at least 16 values at
// a stride of ldb, c 5 rows of 16 at a stride of ldc. Only with HaveAVX2
// (amd64).
//
//go:noescape
func Sgemm5x16(k int, a, b *float32, ldb int, c *float32, ldc int)

// HaveAVX512 reports whether Sgemm5x32 runs (AVX-512F on amd64); tests
// switch it off to cover the 16-column path.
var HaveAVX512 = cpu.X86.HasAVX512F && haveAVX2

// Sgemm5x32 is Sgemm5x16 on 32 columns (j < 32, rows of b of at least 32
// values) with AVX-512: each element the same FMA chain, so its values are
// bitwise Sgemm5x16's. Only with HaveAVX512.
//
//go:noescape
func Sgemm5x32(k int, a, b *float32, ldb int, c *float32, ldc int)

// Sdot2x5 sets c[5r + j] = Σ_{l<k} a[r·lda + l]·b[j·ldb + l] for r < 2
// and j < 5: ten dot products of two rows of a with five rows of b (k ≥ 1
// values each), sixteen terms at a time into a vector accumulator per
// product, whose lanes are then added in a fixed order, so a value depends
// only on its two rows and k. The product A·Bᵀ with few columns and a
// long inner dimension (a convolution's weight gradient) is made of them.
// Only with HaveAVX512.
//
//go:noescape
func Sdot2x5(k int, a *float32, lda int, b *float32, ldb int, c *float32)
