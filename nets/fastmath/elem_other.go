//go:build !amd64

package fastmath

func tanhBackAVX2(o, t, g []float32)       { panic("fastmath: no AVX2 kernel on this architecture") }
func tanhBack2AVX2(o, t, g, h []float32)   { panic("fastmath: no AVX2 kernel on this architecture") }
func binaryAVX2(op int, o, x, y []float32) { panic("fastmath: no AVX2 kernel on this architecture") }
func scaleBiasAVX2(x []float32, s float32, tile []float32) {
	panic("fastmath: no AVX2 kernel on this architecture")
}
