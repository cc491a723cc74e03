//go:build !amd64

package fastmath

// Sgemm5x16 has no kernel on this architecture (HaveAVX2 is false).
func Sgemm5x16(k int, a, b *float32, ldb int, c *float32, ldc int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}
