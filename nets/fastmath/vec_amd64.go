package fastmath

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// tanhScaleBiasAVX2 sets x[i] = tanh(s·x[i] + tile[i mod len(tile)]) eight
// lanes at a time; len(x) and len(tile) are multiples of 8, len(tile) > 0.
//
//go:noescape
func tanhScaleBiasAVX2(x []float32, s float32, tile []float32)

// expAVX2 sets x[i] = exp(x[i]) eight lanes at a time; len(x) is a
// multiple of 8.
//
//go:noescape
func expAVX2(x []float32)
