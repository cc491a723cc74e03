package fastmath

//go:noescape
func tanhBackAVX2(o, t, g []float32)

//go:noescape
func tanhBack2AVX2(o, t, g, h []float32)

//go:noescape
func binaryAVX2(op int, o, x, y []float32)

//go:noescape
func scaleBiasAVX2(x []float32, s float32, tile []float32)
