//go:build amd64

#include "textflag.h"

// REDUCE stores the sum of the 16 lanes of Z (Y, X its halves) at
// off(DX): halves added (8, 4, 2 lanes), then the last pair.
#define REDUCE(Z, Y, off) \
	VEXTRACTF64X4 $1, Z, Y10 \
	VADDPS        Y10, Y, Y10 \
	VEXTRACTF128  $1, Y10, X11 \
	VADDPS        X11, X10, X10 \
	VMOVHLPS      X10, X10, X11 \
	VADDPS        X11, X10, X10 \
	VMOVSHDUP     X10, X11 \
	VADDSS        X11, X10, X10 \
	VMOVSS        X10, off(DX)

// func Sdot2x5(k int, a *float32, lda int, b *float32, ldb int, c *float32)
//
// c[5r + j] = Σ_{l<k} a[r·lda + l]·b[j·ldb + l] for r < 2, j < 5 with
// AVX-512: sixteen l at a time into ten accumulators (masked loads, all
// lanes but for the last k mod 16 terms), each reduced to one float at the
// end; k ≥ 1.
TEXT ·Sdot2x5(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	LEAQ (SI)(R8*1), R10 // row 1 of a
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	LEAQ (DI)(R9*1), R11 // rows 1, 2 of b
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*1), R13 // rows 3, 4 of b
	LEAQ (R13)(R9*1), R14
	MOVQ c+40(FP), DX

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
	XORQ   AX, AX // byte offset along k

	KXNORW K1, K1, K1 // all sixteen lanes

loop:
	TESTQ CX, CX
	JLE   reduce
	CMPQ  CX, $16
	JGE   step
	MOVQ  $1, BX // the last k mod 16 terms: a mask of CX lanes
	SHLQ  CX, BX
	DECQ  BX
	KMOVW BX, K1

step:
	VMOVUPS.Z   (SI)(AX*1), K1, Z10
	VMOVUPS.Z   (R10)(AX*1), K1, Z11
	VMOVUPS.Z   (DI)(AX*1), K1, Z12
	VFMADD231PS Z10, Z12, Z0
	VFMADD231PS Z11, Z12, Z5
	VMOVUPS.Z   (R11)(AX*1), K1, Z13
	VFMADD231PS Z10, Z13, Z1
	VFMADD231PS Z11, Z13, Z6
	VMOVUPS.Z   (R12)(AX*1), K1, Z14
	VFMADD231PS Z10, Z14, Z2
	VFMADD231PS Z11, Z14, Z7
	VMOVUPS.Z   (R13)(AX*1), K1, Z15
	VFMADD231PS Z10, Z15, Z3
	VFMADD231PS Z11, Z15, Z8
	VMOVUPS.Z   (R14)(AX*1), K1, Z16
	VFMADD231PS Z10, Z16, Z4
	VFMADD231PS Z11, Z16, Z9
	ADDQ        $64, AX
	SUBQ        $16, CX
	JMP         loop

reduce:
	REDUCE(Z0, Y0, 0)
	REDUCE(Z1, Y1, 4)
	REDUCE(Z2, Y2, 8)
	REDUCE(Z3, Y3, 12)
	REDUCE(Z4, Y4, 16)
	REDUCE(Z5, Y5, 20)
	REDUCE(Z6, Y6, 24)
	REDUCE(Z7, Y7, 28)
	REDUCE(Z8, Y8, 32)
	REDUCE(Z9, Y9, 36)
	VZEROUPPER
	RET
