//go:build !amd64

package fastmath

const haveAVX2 = false

func tanhScaleBiasAVX2(x []float32, s float32, tile []float32) {
	panic("fastmath: no AVX2 kernel on this architecture")
}

func expAVX2(x []float32) { panic("fastmath: no AVX2 kernel on this architecture") }
