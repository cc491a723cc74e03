//go:build amd64

#include "textflag.h"

// func gatherRowsAVX2(dst, src *float32, idx *int32, p8, p, rows, stride int)
TEXT ·gatherRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ idx+16(FP), DX
	MOVQ p8+24(FP), R8
	MOVQ p+32(FP), R9
	MOVQ rows+40(FP), R10
	MOVQ stride+48(FP), R11
	SHLQ $2, R9  // bytes per dst row
	SHLQ $2, R11 // bytes per src image
	VPCMPEQD Y15, Y15, Y15 // all ones: the mask of a full gather
rowLoop:
	TESTQ R10, R10
	JZ    done
	XORQ  CX, CX // element index
	MOVQ  DI, R12
elemLoop:
	CMPQ       CX, R8
	JGE        rowDone
	VMOVDQU    (DX)(CX*4), Y1
	VMOVDQA    Y15, Y2
	VPXOR      Y0, Y0, Y0
	VGATHERDPS Y2, (SI)(Y1*4), Y0
	VMOVUPS    Y0, (R12)
	ADDQ       $32, R12
	ADDQ       $8, CX
	JMP        elemLoop
rowDone:
	ADDQ R9, DI
	ADDQ R11, SI
	DECQ R10
	JMP  rowLoop
done:
	VZEROUPPER
	RET

// The permutation that moves the even elements of 8 to the first 4.
DATA evens<>+0(SB)/4, $0
DATA evens<>+4(SB)/4, $2
DATA evens<>+8(SB)/4, $4
DATA evens<>+12(SB)/4, $6
DATA evens<>+16(SB)/4, $0
DATA evens<>+20(SB)/4, $2
DATA evens<>+24(SB)/4, $4
DATA evens<>+28(SB)/4, $6
GLOBL evens<>(SB), RODATA|NOPTR, $32

// func gatherStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int)
TEXT ·gatherStride2AVX2(SB), NOSPLIT, $0-56
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    oh+16(FP), R8
	MOVQ    q4+24(FP), R9
	MOVQ    rs+32(FP), DX
	MOVQ    rows+40(FP), R10
	MOVQ    stride+48(FP), R11
	SHLQ    $2, DX  // bytes between output rows
	SHLQ    $2, R11 // bytes between images
	VMOVDQU evens<>(SB), Y15
s2Image:
	TESTQ R10, R10
	JZ    s2Done
	MOVQ  SI, R12 // the output row's first pixel
	MOVQ  R8, CX
s2Row:
	MOVQ R12, R13
	MOVQ R9, BX
s2Quad:
	VPERMPS (R13), Y15, Y0
	VMOVUPS X0, (DI)
	ADDQ    $32, R13
	ADDQ    $16, DI
	DECQ    BX
	JNZ     s2Quad
	ADDQ    DX, R12
	DECQ    CX
	JNZ     s2Row
	ADDQ    R11, SI
	DECQ    R10
	JMP     s2Image
s2Done:
	VZEROUPPER
	RET

// func gatherStride2PairsAVX2(dst, src *float32, pairs, rs, rows, stride int)
TEXT ·gatherStride2PairsAVX2(SB), NOSPLIT, $0-48
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    pairs+16(FP), R8
	MOVQ    rs+24(FP), R9
	MOVQ    rows+32(FP), R10
	MOVQ    stride+40(FP), R11
	SHLQ    $2, R9  // bytes between output rows' first pixels
	SHLQ    $2, R11 // bytes between images
	LEAQ    (R9)(R9*1), R14 // bytes between pairs
	VMOVDQU evens<>(SB), Y15
pImage:
	TESTQ R10, R10
	JZ    pDone
	MOVQ  SI, R13
	MOVQ  R8, BX
pPair:
	VPERMPS     (R13), Y15, Y0
	VPERMPS     (R13)(R9*1), Y15, Y1
	VINSERTF128 $1, X1, Y0, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        R14, R13
	ADDQ        $32, DI
	DECQ        BX
	JNZ         pPair
	ADDQ        R11, SI
	DECQ        R10
	JMP         pImage
pDone:
	VZEROUPPER
	RET
