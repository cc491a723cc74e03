//go:build amd64

#include "textflag.h"

// Elementwise float32 kernels, eight lanes at a time, each lane the same
// rounded operations in the same order as the scalar Go loops of elem.go
// (no FMA), so results are bitwise the scalar ones. Lengths are multiples
// of 8 (elem.go does the tails).

// func tanhBackAVX2(o, t, g []float32): o = (1 − t·t)·g
TEXT ·tanhBackAVX2(SB), NOSPLIT, $0-72
	MOVQ         o_base+0(FP), DI
	MOVQ         t_base+24(FP), SI
	MOVQ         t_len+32(FP), CX
	MOVQ         g_base+48(FP), DX
	MOVL         $0x3f800000, AX
	MOVL         AX, X15
	VBROADCASTSS X15, Y15
	XORQ         AX, AX

tbloop:
	CMPQ    AX, CX
	JGE     tbdone
	VMOVUPS (SI)(AX*4), Y0
	VMULPS  Y0, Y0, Y0
	VSUBPS  Y0, Y15, Y0
	VMULPS  (DX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     tbloop

tbdone:
	VZEROUPPER
	RET

// func tanhBack2AVX2(o, t, g, h []float32): o = ((−2·t)·g)·h
TEXT ·tanhBack2AVX2(SB), NOSPLIT, $0-96
	MOVQ         o_base+0(FP), DI
	MOVQ         t_base+24(FP), SI
	MOVQ         t_len+32(FP), CX
	MOVQ         g_base+48(FP), DX
	MOVQ         h_base+72(FP), R8
	MOVL         $0xc0000000, AX
	MOVL         AX, X15
	VBROADCASTSS X15, Y15
	XORQ         AX, AX

tb2loop:
	CMPQ    AX, CX
	JGE     tb2done
	VMULPS  (SI)(AX*4), Y15, Y0
	VMULPS  (DX)(AX*4), Y0, Y0
	VMULPS  (R8)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     tb2loop

tb2done:
	VZEROUPPER
	RET

// func binaryAVX2(op int, o, x, y []float32): o = x + y (op 0), x − y (1),
// x·y (2)
TEXT ·binaryAVX2(SB), NOSPLIT, $0-80
	MOVQ op+0(FP), BX
	MOVQ o_base+8(FP), DI
	MOVQ x_base+32(FP), SI
	MOVQ x_len+40(FP), CX
	MOVQ y_base+56(FP), DX
	XORQ AX, AX
	CMPQ BX, $1
	JEQ  subloop
	CMPQ BX, $2
	JEQ  mulloop

addloop:
	CMPQ    AX, CX
	JGE     bindone
	VMOVUPS (SI)(AX*4), Y0
	VADDPS  (DX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     addloop

subloop:
	CMPQ    AX, CX
	JGE     bindone
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS  (DX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     subloop

mulloop:
	CMPQ    AX, CX
	JGE     bindone
	VMOVUPS (SI)(AX*4), Y0
	VMULPS  (DX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     mulloop

bindone:
	VZEROUPPER
	RET

// func scaleBiasAVX2(x []float32, s float32, tile []float32): x[i] =
// (s·x[i]) + tile[i mod len(tile)], len(tile) a positive multiple of 8
TEXT ·scaleBiasAVX2(SB), NOSPLIT, $0-56
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS s+24(FP), Y15
	MOVQ         tile_base+32(FP), SI
	MOVQ         tile_len+40(FP), DX
	XORQ         AX, AX
	XORQ         BX, BX

sbloop:
	CMPQ    AX, CX
	JGE     sbdone
	VMULPS  (DI)(AX*4), Y15, Y0
	VADDPS  (SI)(BX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	ADDQ    $8, BX
	CMPQ    BX, DX
	JLT     sbloop
	XORQ    BX, BX
	JMP     sbloop

sbdone:
	VZEROUPPER
	RET
