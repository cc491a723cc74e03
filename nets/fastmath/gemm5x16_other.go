//go:build !amd64

package fastmath

// Sgemm5x16 has no kernel on this architecture (HaveAVX2 is false).
func Sgemm5x16(k int, a, b *float32, ldb int, c *float32, ldc int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}

// HaveAVX512 is false: Sgemm5x32 has no kernel on this architecture.
var HaveAVX512 = false

// Sgemm5x32 has no kernel on this architecture (HaveAVX512 is false).
func Sgemm5x32(k int, a, b *float32, ldb int, c *float32, ldc int) {
	panic("fastmath: no AVX-512 kernel on this architecture")
}

// Sdot2x5 has no kernel on this architecture (HaveAVX512 is false).
func Sdot2x5(k int, a *float32, lda int, b *float32, ldb int, c *float32) {
	panic("fastmath: no AVX-512 kernel on this architecture")
}
