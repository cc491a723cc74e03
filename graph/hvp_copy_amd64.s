//go:build amd64

#include "textflag.h"

// Patch copies for the convnet's im2col (pooleval_convnet.go), SSE2 only.

// func peCopyPatch10(dst, src *float32, stride, row uintptr)
//
// Copies the 5×5 patch of 10-float pixels at src to 250 consecutive floats
// at dst in (ky, kx, c) order: pixel (ky, kx) starts at src + ky·row +
// kx·stride (byte offsets).
TEXT ·peCopyPatch10(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ stride+16(FP), R8
	MOVQ row+24(FP), R9
	MOVQ $5, CX

ky10:
	MOVQ   SI, AX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X1
	MOVQ   32(AX), BX
	MOVUPS X0, (DI)
	MOVUPS X1, 16(DI)
	MOVQ   BX, 32(DI)
	ADDQ   R8, AX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X1
	MOVQ   32(AX), BX
	MOVUPS X0, 40(DI)
	MOVUPS X1, 56(DI)
	MOVQ   BX, 72(DI)
	ADDQ   R8, AX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X1
	MOVQ   32(AX), BX
	MOVUPS X0, 80(DI)
	MOVUPS X1, 96(DI)
	MOVQ   BX, 112(DI)
	ADDQ   R8, AX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X1
	MOVQ   32(AX), BX
	MOVUPS X0, 120(DI)
	MOVUPS X1, 136(DI)
	MOVQ   BX, 152(DI)
	ADDQ   R8, AX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X1
	MOVQ   32(AX), BX
	MOVUPS X0, 160(DI)
	MOVUPS X1, 176(DI)
	MOVQ   BX, 192(DI)
	ADDQ   $200, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    ky10
	RET

// func peCopyPatch5(dst, src *float32, row, n, dstStride, srcStride uintptr)
//
// Copies n 5×5 patches of floats: patch j starts at src + j·srcStride
// (rows row bytes apart) and goes to 25 consecutive floats at
// dst + j·dstStride.
TEXT ·peCopyPatch5(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ row+16(FP), R9
	MOVQ n+24(FP), CX
	MOVQ dstStride+32(FP), R10
	MOVQ srcStride+40(FP), R11
	TESTQ CX, CX
	JZ   done5

patch5:
	MOVQ   SI, AX
	MOVUPS (AX), X0
	MOVL   16(AX), BX
	MOVUPS X0, (DI)
	MOVL   BX, 16(DI)
	ADDQ   R9, AX
	MOVUPS (AX), X0
	MOVL   16(AX), BX
	MOVUPS X0, 20(DI)
	MOVL   BX, 36(DI)
	ADDQ   R9, AX
	MOVUPS (AX), X0
	MOVL   16(AX), BX
	MOVUPS X0, 40(DI)
	MOVL   BX, 56(DI)
	ADDQ   R9, AX
	MOVUPS (AX), X0
	MOVL   16(AX), BX
	MOVUPS X0, 60(DI)
	MOVL   BX, 76(DI)
	ADDQ   R9, AX
	MOVUPS (AX), X0
	MOVL   16(AX), BX
	MOVUPS X0, 80(DI)
	MOVL   BX, 96(DI)
	ADDQ   R10, DI
	ADDQ   R11, SI
	DECQ   CX
	JNZ    patch5

done5:
	RET
