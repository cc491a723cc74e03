//go:build amd64

#include "textflag.h"

// func addStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int)
// For every image j < rows, output row y < oh and group g < q4 of four
// pixels: dst[j·stride + y·rs + 8g + 2i] += src[(j·oh + y)·4q4 + 4g + i]
// for i < 4, the eight values of dst from 8g on loaded, added the four
// values interleaved with zeros (VUNPCKLPS/VUNPCKHPS), and stored.
TEXT ·addStride2AVX2(SB), NOSPLIT, $0-56
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   oh+16(FP), R8
	MOVQ   q4+24(FP), R9
	MOVQ   rs+32(FP), R10
	MOVQ   rows+40(FP), R11
	MOVQ   stride+48(FP), R12
	SHLQ   $2, R10
	SHLQ   $2, R12
	VXORPS X15, X15, X15

imgloop:
	TESTQ R11, R11
	JZ    done
	MOVQ  DI, AX
	MOVQ  R8, CX

rowloop:
	MOVQ AX, DX
	MOVQ R9, BX

grploop:
	VMOVUPS     (SI), X0
	VUNPCKLPS   X15, X0, X1
	VUNPCKHPS   X15, X0, X2
	VINSERTF128 $1, X2, Y1, Y1
	VMOVUPS     (DX), Y3
	VADDPS      Y1, Y3, Y3
	VMOVUPS     Y3, (DX)
	ADDQ        $16, SI
	ADDQ        $32, DX
	DECQ        BX
	JNZ         grploop
	ADDQ        R10, AX
	DECQ        CX
	JNZ         rowloop
	ADDQ        R12, DI
	DECQ        R11
	JMP         imgloop

done:
	VZEROUPPER
	RET
