//go:build amd64

#include "textflag.h"

// Patch additions for the convnet's col2im (hvp_convnet.go), SSE2 only.

// func hvAddPatch10(dst, src *float32, stride, row uintptr)
//
// Adds 250 consecutive floats at src, in (ky, kx, c) order, to the 5×5
// patch of 10-float pixels at dst: pixel (ky, kx) starts at dst + ky·row +
// kx·stride (byte offsets). Each element is one float32 addition.
TEXT ·hvAddPatch10(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ stride+16(FP), R8
	MOVQ row+24(FP), R9
	MOVQ $5, CX

ky:
	MOVQ DI, AX
	MOVQ $5, DX

kx:
	MOVUPS (AX), X0
	MOVUPS (SI), X3
	ADDPS  X3, X0
	MOVUPS X0, (AX)
	MOVUPS 16(AX), X1
	MOVUPS 16(SI), X4
	ADDPS  X4, X1
	MOVUPS X1, 16(AX)
	MOVQ   32(AX), X2
	MOVQ   32(SI), X5
	ADDPS  X5, X2
	MOVQ   X2, 32(AX)
	ADDQ   $40, SI
	ADDQ   R8, AX
	DECQ   DX
	JNZ    kx
	ADDQ   R9, DI
	DECQ   CX
	JNZ    ky
	RET
