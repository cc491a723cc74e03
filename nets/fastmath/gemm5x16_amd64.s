//go:build amd64

#include "textflag.h"

// func Sgemm5x16(k int, a, b *float32, ldb int, c *float32, ldc int)
//
// c[r·ldc + j] = Σ_{l<k} a[l·5 + r]·b[l·ldb + j] for r < 5, j < 16: one
// sequential FMA chain per element, in increasing l (AVX2+FMA); k ≥ 0.
TEXT ·Sgemm5x16(SB), NOSPLIT, $0-48
	MOVQ   k+0(FP), CX
	MOVQ   a+8(FP), SI
	MOVQ   b+16(FP), DI
	MOVQ   ldb+24(FP), R8
	SHLQ   $2, R8
	MOVQ   c+32(FP), DX
	MOVQ   ldc+40(FP), R9
	SHLQ   $2, R9
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

loop:
	TESTQ        CX, CX
	JZ           done
	VMOVUPS      (DI), Y10
	VMOVUPS      32(DI), Y11
	VBROADCASTSS (SI), Y12
	VBROADCASTSS 4(SI), Y13
	VFMADD231PS  Y12, Y10, Y0
	VFMADD231PS  Y12, Y11, Y1
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS  Y13, Y10, Y2
	VFMADD231PS  Y13, Y11, Y3
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y14, Y10, Y4
	VFMADD231PS  Y14, Y11, Y5
	VBROADCASTSS 16(SI), Y12
	VFMADD231PS  Y15, Y10, Y6
	VFMADD231PS  Y15, Y11, Y7
	VFMADD231PS  Y12, Y10, Y8
	VFMADD231PS  Y12, Y11, Y9
	ADDQ         $20, SI
	ADDQ         R8, DI
	DECQ         CX
	JMP          loop

done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	VZEROUPPER
	RET
