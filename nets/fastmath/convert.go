package fastmath

// Float64 ↔ float32 conversion of slices, sixteen elements at a time with
// AVX (VCVTPD2PS, VCVTPS2PD) where the CPU has AVX2, the rest in Go. The
// vector instructions round as Go's conversion does (to nearest, ties to
// even; NaN stays NaN), so the result is the same bitwise either way: the
// CPU device's uploads and downloads (kernels.CPU) use them.

// Narrow32 sets dst[i] = float32(src[i]); len(dst) must be at least
// len(src).
func Narrow32(dst []float32, src []float64) {
	n := len(src)
	dst = dst[:n]
	i := 0
	if HaveAVX2 && n >= 16 {
		i = n &^ 15
		narrowAVX(&dst[0], &src[0], i)
	}
	for ; i < n; i++ {
		dst[i] = float32(src[i])
	}
}

// Widen32 sets dst[i] = float64(src[i]); len(dst) must be at least
// len(src).
func Widen32(dst []float64, src []float32) {
	n := len(src)
	dst = dst[:n]
	i := 0
	if HaveAVX2 && n >= 16 {
		i = n &^ 15
		widenAVX(&dst[0], &src[0], i)
	}
	for ; i < n; i++ {
		dst[i] = float64(src[i])
	}
}
