//go:build amd64

#include "textflag.h"

// func Sgemm5x32(k int, a, b *float32, ldb int, c *float32, ldc int)
//
// Sgemm5x16 on 32 columns with AVX-512: c[r·ldc + j] = Σ_{l<k}
// a[l·5 + r]·b[l·ldb + j] for r < 5, j < 32, one sequential FMA chain per
// element in increasing l (bitwise Sgemm5x16's values); k ≥ 0.
TEXT ·Sgemm5x32(SB), NOSPLIT, $0-48
	MOVQ   k+0(FP), CX
	MOVQ   a+8(FP), SI
	MOVQ   b+16(FP), DI
	MOVQ   ldb+24(FP), R8
	SHLQ   $2, R8
	MOVQ   c+32(FP), DX
	MOVQ   ldc+40(FP), R9
	SHLQ   $2, R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9

loop:
	TESTQ        CX, CX
	JZ           done
	VMOVUPS      (DI), Z10
	VMOVUPS      64(DI), Z11
	VBROADCASTSS (SI), Z12
	VBROADCASTSS 4(SI), Z13
	VFMADD231PS  Z12, Z10, Z0
	VFMADD231PS  Z12, Z11, Z1
	VBROADCASTSS 8(SI), Z14
	VFMADD231PS  Z13, Z10, Z2
	VFMADD231PS  Z13, Z11, Z3
	VBROADCASTSS 12(SI), Z15
	VFMADD231PS  Z14, Z10, Z4
	VFMADD231PS  Z14, Z11, Z5
	VBROADCASTSS 16(SI), Z16
	VFMADD231PS  Z15, Z10, Z6
	VFMADD231PS  Z15, Z11, Z7
	VFMADD231PS  Z16, Z10, Z8
	VFMADD231PS  Z16, Z11, Z9
	ADDQ         $20, SI
	ADDQ         R8, DI
	DECQ         CX
	JMP          loop

done:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	ADDQ    R9, DX
	VMOVUPS Z2, (DX)
	VMOVUPS Z3, 64(DX)
	ADDQ    R9, DX
	VMOVUPS Z4, (DX)
	VMOVUPS Z5, 64(DX)
	ADDQ    R9, DX
	VMOVUPS Z6, (DX)
	VMOVUPS Z7, 64(DX)
	ADDQ    R9, DX
	VMOVUPS Z8, (DX)
	VMOVUPS Z9, 64(DX)
	VZEROUPPER
	RET
