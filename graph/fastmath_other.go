//go:build !amd64

package graph

var peHaveAVX2 = false

func peTanhScaleBiasAVX2(x []float32, s float32, tile []float32) {
	panic("graph: no AVX2 kernel on this architecture")
}

func peExpAVX2(x []float32) { panic("graph: no AVX2 kernel on this architecture") }
