//go:build !amd64

package fastmath

func narrowAVX(dst *float32, src *float64, n int) {
	panic("fastmath: no AVX kernel on this architecture")
}

func widenAVX(dst *float64, src *float32, n int) {
	panic("fastmath: no AVX kernel on this architecture")
}
