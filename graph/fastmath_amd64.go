package graph

import "golang.org/x/sys/cpu"

// peHaveAVX2 selects the AVX2+FMA kernels of fastmath_amd64.s.
var peHaveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// peTanhScaleBiasAVX2 sets x[i] = tanh(s·x[i] + tile[i mod len(tile)]) with
// the rational approximation of fastmath.go evaluated in float32 with FMA,
// eight lanes at a time. len(x) and len(tile) must be multiples of 8 and
// len(tile) > 0.
//
//go:noescape
func peTanhScaleBiasAVX2(x []float32, s float32, tile []float32)

// peExpAVX2 sets x[i] = exp(x[i]) in float32 (see peExp32), eight lanes at
// a time. len(x) must be a multiple of 8.
//
//go:noescape
func peExpAVX2(x []float32)
