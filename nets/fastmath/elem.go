package fastmath

// Elementwise float32 kernels of the CPU device's backward passes and
// affine layers (AVX2 where the CPU has it, else the scalar loops). Each
// element is the same rounded float32 operations in the same order as the
// scalar loop (no fused multiply-add), so both paths are bitwise equal
// (TestElem).

// TanhBack32 sets o[i] = (1 − t[i]·t[i])·g[i]; o, t and g have the same
// length.
func TanhBack32(o, t, g []float32) {
	n := 0
	if HaveAVX2 {
		n = len(t) &^ 7
		if n > 0 {
			tanhBackAVX2(o[:n], t[:n], g[:n])
		}
	}
	o, g = o[:len(t)], g[:len(t)]
	for i := n; i < len(t); i++ {
		v := t[i]
		o[i] = (1 - float32(v*v)) * g[i]
	}
}

// TanhBack2_32 sets o[i] = −2·t[i]·g[i]·h[i] (in that order).
func TanhBack2_32(o, t, g, h []float32) {
	n := 0
	if HaveAVX2 {
		n = len(t) &^ 7
		if n > 0 {
			tanhBack2AVX2(o[:n], t[:n], g[:n], h[:n])
		}
	}
	o, g, h = o[:len(t)], g[:len(t)], h[:len(t)]
	for i := n; i < len(t); i++ {
		o[i] = float32(float32(-2*t[i])*g[i]) * h[i]
	}
}

// Binary operations of Binary32.
const (
	OpAdd = iota
	OpSub
	OpMul
)

// Binary32 sets o[i] = x[i] op y[i] for op OpAdd, OpSub or OpMul.
func Binary32(op int, o, x, y []float32) {
	n := 0
	if HaveAVX2 {
		n = len(x) &^ 7
		if n > 0 {
			binaryAVX2(op, o[:n], x[:n], y[:n])
		}
	}
	o, y = o[:len(x)], y[:len(x)]
	for i := n; i < len(x); i++ {
		switch op {
		case OpAdd:
			o[i] = x[i] + y[i]
		case OpSub:
			o[i] = x[i] - y[i]
		default:
			o[i] = x[i] * y[i]
		}
	}
}

// ScaleBias32 sets x[i] = s·x[i] + tile[i mod len(tile)] (the product
// rounded first); len(tile) must be a positive multiple of 8 (Tile32).
func ScaleBias32(x []float32, s float32, tile []float32) {
	n := 0
	if HaveAVX2 {
		n = len(x) &^ 7
		if n > 0 {
			scaleBiasAVX2(x[:n], s, tile)
		}
	}
	for i := n; i < len(x); i++ {
		x[i] = float32(s*x[i]) + tile[i%len(tile)]
	}
}
