//go:build amd64

#include "textflag.h"

// Coefficients of the rational tanh of fastmath.go, each broadcast to eight
// float32 lanes (32 bytes): P6..P0 at 0..192, Q3..Q1 at 224..288, 1 at 320,
// the clamp 9.1 at 352.
// P6 = -8.22848786676537e-14 (float32 0xa9b94a01)
DATA peTanhK<>+0(SB)/4, $0xa9b94a01
DATA peTanhK<>+4(SB)/4, $0xa9b94a01
DATA peTanhK<>+8(SB)/4, $0xa9b94a01
DATA peTanhK<>+12(SB)/4, $0xa9b94a01
DATA peTanhK<>+16(SB)/4, $0xa9b94a01
DATA peTanhK<>+20(SB)/4, $0xa9b94a01
DATA peTanhK<>+24(SB)/4, $0xa9b94a01
DATA peTanhK<>+28(SB)/4, $0xa9b94a01
// P5 = 5.1776986575408243e-11 (float32 0x2e63b7b4)
DATA peTanhK<>+32(SB)/4, $0x2e63b7b4
DATA peTanhK<>+36(SB)/4, $0x2e63b7b4
DATA peTanhK<>+40(SB)/4, $0x2e63b7b4
DATA peTanhK<>+44(SB)/4, $0x2e63b7b4
DATA peTanhK<>+48(SB)/4, $0x2e63b7b4
DATA peTanhK<>+52(SB)/4, $0x2e63b7b4
DATA peTanhK<>+56(SB)/4, $0x2e63b7b4
DATA peTanhK<>+60(SB)/4, $0x2e63b7b4
// P4 = -2.001916440115376e-08 (float32 0xb2abf69c)
DATA peTanhK<>+64(SB)/4, $0xb2abf69c
DATA peTanhK<>+68(SB)/4, $0xb2abf69c
DATA peTanhK<>+72(SB)/4, $0xb2abf69c
DATA peTanhK<>+76(SB)/4, $0xb2abf69c
DATA peTanhK<>+80(SB)/4, $0xb2abf69c
DATA peTanhK<>+84(SB)/4, $0xb2abf69c
DATA peTanhK<>+88(SB)/4, $0xb2abf69c
DATA peTanhK<>+92(SB)/4, $0xb2abf69c
// P3 = 1.1103932911437344e-05 (float32 0x373a4b07)
DATA peTanhK<>+96(SB)/4, $0x373a4b07
DATA peTanhK<>+100(SB)/4, $0x373a4b07
DATA peTanhK<>+104(SB)/4, $0x373a4b07
DATA peTanhK<>+108(SB)/4, $0x373a4b07
DATA peTanhK<>+112(SB)/4, $0x373a4b07
DATA peTanhK<>+116(SB)/4, $0x373a4b07
DATA peTanhK<>+120(SB)/4, $0x373a4b07
DATA peTanhK<>+124(SB)/4, $0x373a4b07
// P2 = 0.0030991626495164497 (float32 0x3b4b1b52)
DATA peTanhK<>+128(SB)/4, $0x3b4b1b52
DATA peTanhK<>+132(SB)/4, $0x3b4b1b52
DATA peTanhK<>+136(SB)/4, $0x3b4b1b52
DATA peTanhK<>+140(SB)/4, $0x3b4b1b52
DATA peTanhK<>+144(SB)/4, $0x3b4b1b52
DATA peTanhK<>+148(SB)/4, $0x3b4b1b52
DATA peTanhK<>+152(SB)/4, $0x3b4b1b52
DATA peTanhK<>+156(SB)/4, $0x3b4b1b52
// P1 = 0.13079724645663374 (float32 0x3e05efb7)
DATA peTanhK<>+160(SB)/4, $0x3e05efb7
DATA peTanhK<>+164(SB)/4, $0x3e05efb7
DATA peTanhK<>+168(SB)/4, $0x3e05efb7
DATA peTanhK<>+172(SB)/4, $0x3e05efb7
DATA peTanhK<>+176(SB)/4, $0x3e05efb7
DATA peTanhK<>+180(SB)/4, $0x3e05efb7
DATA peTanhK<>+184(SB)/4, $0x3e05efb7
DATA peTanhK<>+188(SB)/4, $0x3e05efb7
// P0 = 0.9999999925531471 (float32 0x3f800000)
DATA peTanhK<>+192(SB)/4, $0x3f800000
DATA peTanhK<>+196(SB)/4, $0x3f800000
DATA peTanhK<>+200(SB)/4, $0x3f800000
DATA peTanhK<>+204(SB)/4, $0x3f800000
DATA peTanhK<>+208(SB)/4, $0x3f800000
DATA peTanhK<>+212(SB)/4, $0x3f800000
DATA peTanhK<>+216(SB)/4, $0x3f800000
DATA peTanhK<>+220(SB)/4, $0x3f800000
// Q3 = 0.0002539151699179224 (float32 0x39851feb)
DATA peTanhK<>+224(SB)/4, $0x39851feb
DATA peTanhK<>+228(SB)/4, $0x39851feb
DATA peTanhK<>+232(SB)/4, $0x39851feb
DATA peTanhK<>+236(SB)/4, $0x39851feb
DATA peTanhK<>+240(SB)/4, $0x39851feb
DATA peTanhK<>+244(SB)/4, $0x39851feb
DATA peTanhK<>+248(SB)/4, $0x39851feb
DATA peTanhK<>+252(SB)/4, $0x39851feb
// Q2 = 0.024476108186710813 (float32 0x3cc8821f)
DATA peTanhK<>+256(SB)/4, $0x3cc8821f
DATA peTanhK<>+260(SB)/4, $0x3cc8821f
DATA peTanhK<>+264(SB)/4, $0x3cc8821f
DATA peTanhK<>+268(SB)/4, $0x3cc8821f
DATA peTanhK<>+272(SB)/4, $0x3cc8821f
DATA peTanhK<>+276(SB)/4, $0x3cc8821f
DATA peTanhK<>+280(SB)/4, $0x3cc8821f
DATA peTanhK<>+284(SB)/4, $0x3cc8821f
// Q1 = 0.46413051018935125 (float32 0x3eeda284)
DATA peTanhK<>+288(SB)/4, $0x3eeda284
DATA peTanhK<>+292(SB)/4, $0x3eeda284
DATA peTanhK<>+296(SB)/4, $0x3eeda284
DATA peTanhK<>+300(SB)/4, $0x3eeda284
DATA peTanhK<>+304(SB)/4, $0x3eeda284
DATA peTanhK<>+308(SB)/4, $0x3eeda284
DATA peTanhK<>+312(SB)/4, $0x3eeda284
DATA peTanhK<>+316(SB)/4, $0x3eeda284
// ONE = 1.0 (float32 0x3f800000)
DATA peTanhK<>+320(SB)/4, $0x3f800000
DATA peTanhK<>+324(SB)/4, $0x3f800000
DATA peTanhK<>+328(SB)/4, $0x3f800000
DATA peTanhK<>+332(SB)/4, $0x3f800000
DATA peTanhK<>+336(SB)/4, $0x3f800000
DATA peTanhK<>+340(SB)/4, $0x3f800000
DATA peTanhK<>+344(SB)/4, $0x3f800000
DATA peTanhK<>+348(SB)/4, $0x3f800000
// CLAMP = 9.1 (float32 0x4111999a)
DATA peTanhK<>+352(SB)/4, $0x4111999a
DATA peTanhK<>+356(SB)/4, $0x4111999a
DATA peTanhK<>+360(SB)/4, $0x4111999a
DATA peTanhK<>+364(SB)/4, $0x4111999a
DATA peTanhK<>+368(SB)/4, $0x4111999a
DATA peTanhK<>+372(SB)/4, $0x4111999a
DATA peTanhK<>+376(SB)/4, $0x4111999a
DATA peTanhK<>+380(SB)/4, $0x4111999a
GLOBL peTanhK<>(SB), RODATA|NOPTR, $384

// func peTanhScaleBiasAVX2(x []float32, s float32, tile []float32)
//
// x[i] = tanh(s·x[i] + tile[i mod len(tile)]); len(x) and len(tile) are
// multiples of 8, len(tile) > 0. The product s·x[i] is rounded before the
// bias is added, as in gorgonia's graph. The clamps take x as the operand that
// VMINPS/VMAXPS return when either is NaN, so NaN propagates.
TEXT ·peTanhScaleBiasAVX2(SB), NOSPLIT, $0-56
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS s+24(FP), Y15
	MOVQ         tile_base+32(FP), SI
	MOVQ         tile_len+40(FP), DX
	SHLQ         $2, DX
	XORQ         BX, BX
	LEAQ         peTanhK<>(SB), R8
	VMOVUPS      352(R8), Y14
	VXORPS       Y13, Y13, Y13
	VSUBPS       Y14, Y13, Y13
	VMOVUPS      320(R8), Y12
	VXORPS       Y11, Y11, Y11
	VSUBPS       Y12, Y11, Y11

loop:
	CMPQ CX, $16
	JLT  single

	// Two vectors per iteration, to overlap the two dependency chains.
	MOVQ BX, R9
	ADDQ $32, R9
	CMPQ R9, DX
	JLT  pair
	XORQ R9, R9

pair:
	VMULPS      (DI), Y15, Y0
	VMULPS      32(DI), Y15, Y4
	VADDPS      (SI)(BX*1), Y0, Y0
	VADDPS      (SI)(R9*1), Y4, Y4
	VMINPS      Y0, Y14, Y0
	VMINPS      Y4, Y14, Y4
	VMAXPS      Y0, Y13, Y0
	VMAXPS      Y4, Y13, Y4
	VMULPS      Y0, Y0, Y1
	VMULPS      Y4, Y4, Y5
	VMOVUPS     0(R8), Y2
	VMOVUPS     0(R8), Y6
	VFMADD213PS 32(R8), Y1, Y2
	VFMADD213PS 32(R8), Y5, Y6
	VFMADD213PS 64(R8), Y1, Y2
	VFMADD213PS 64(R8), Y5, Y6
	VFMADD213PS 96(R8), Y1, Y2
	VFMADD213PS 96(R8), Y5, Y6
	VFMADD213PS 128(R8), Y1, Y2
	VFMADD213PS 128(R8), Y5, Y6
	VFMADD213PS 160(R8), Y1, Y2
	VFMADD213PS 160(R8), Y5, Y6
	VFMADD213PS 192(R8), Y1, Y2
	VFMADD213PS 192(R8), Y5, Y6
	VMOVUPS     224(R8), Y3
	VMOVUPS     224(R8), Y7
	VFMADD213PS 256(R8), Y1, Y3
	VFMADD213PS 256(R8), Y5, Y7
	VFMADD213PS 288(R8), Y1, Y3
	VFMADD213PS 288(R8), Y5, Y7
	VFMADD213PS Y12, Y1, Y3
	VFMADD213PS Y12, Y5, Y7
	VMULPS      Y2, Y0, Y2
	VMULPS      Y6, Y4, Y6
	VDIVPS      Y3, Y2, Y2
	VDIVPS      Y7, Y6, Y6
	VMINPS      Y2, Y12, Y2
	VMINPS      Y6, Y12, Y6
	VMAXPS      Y2, Y11, Y2
	VMAXPS      Y6, Y11, Y6
	VMOVUPS     Y2, (DI)
	VMOVUPS     Y6, 32(DI)
	ADDQ        $64, DI
	SUBQ        $16, CX
	MOVQ        R9, BX
	ADDQ        $32, BX
	CMPQ        BX, DX
	JLT         loop
	XORQ        BX, BX
	JMP         loop

single:
	CMPQ        CX, $8
	JLT         done
	VMULPS      (DI), Y15, Y0
	VADDPS      (SI)(BX*1), Y0, Y0
	VMINPS      Y0, Y14, Y0
	VMAXPS      Y0, Y13, Y0
	VMULPS      Y0, Y0, Y1
	VMOVUPS     0(R8), Y2
	VFMADD213PS 32(R8), Y1, Y2
	VFMADD213PS 64(R8), Y1, Y2
	VFMADD213PS 96(R8), Y1, Y2
	VFMADD213PS 128(R8), Y1, Y2
	VFMADD213PS 160(R8), Y1, Y2
	VFMADD213PS 192(R8), Y1, Y2
	VMOVUPS     224(R8), Y3
	VFMADD213PS 256(R8), Y1, Y3
	VFMADD213PS 288(R8), Y1, Y3
	VFMADD213PS Y12, Y1, Y3
	VMULPS      Y2, Y0, Y2
	VDIVPS      Y3, Y2, Y2
	VMINPS      Y2, Y12, Y2
	VMAXPS      Y2, Y11, Y2
	VMOVUPS     Y2, (DI)

done:
	VZEROUPPER
	RET

// Coefficients of the float32 exp of fastmath.go, each broadcast to eight
// lanes: clamps at 0 and 32, log2(e) at 64, ln 2 split in hi (exact in 12
// bits) and lo at 96 and 128, the polynomial C4..C0 at 160..288, 1 at 320
// and the exponent bias 127 at 352.
// LO = -87.3
DATA peExpK<>+0(SB)/4, $0xc2ae999a
DATA peExpK<>+4(SB)/4, $0xc2ae999a
DATA peExpK<>+8(SB)/4, $0xc2ae999a
DATA peExpK<>+12(SB)/4, $0xc2ae999a
DATA peExpK<>+16(SB)/4, $0xc2ae999a
DATA peExpK<>+20(SB)/4, $0xc2ae999a
DATA peExpK<>+24(SB)/4, $0xc2ae999a
DATA peExpK<>+28(SB)/4, $0xc2ae999a
// HI = 88.3
DATA peExpK<>+32(SB)/4, $0x42b0999a
DATA peExpK<>+36(SB)/4, $0x42b0999a
DATA peExpK<>+40(SB)/4, $0x42b0999a
DATA peExpK<>+44(SB)/4, $0x42b0999a
DATA peExpK<>+48(SB)/4, $0x42b0999a
DATA peExpK<>+52(SB)/4, $0x42b0999a
DATA peExpK<>+56(SB)/4, $0x42b0999a
DATA peExpK<>+60(SB)/4, $0x42b0999a
// LOG2E = 1.4426950408889634
DATA peExpK<>+64(SB)/4, $0x3fb8aa3b
DATA peExpK<>+68(SB)/4, $0x3fb8aa3b
DATA peExpK<>+72(SB)/4, $0x3fb8aa3b
DATA peExpK<>+76(SB)/4, $0x3fb8aa3b
DATA peExpK<>+80(SB)/4, $0x3fb8aa3b
DATA peExpK<>+84(SB)/4, $0x3fb8aa3b
DATA peExpK<>+88(SB)/4, $0x3fb8aa3b
DATA peExpK<>+92(SB)/4, $0x3fb8aa3b
// LN2HI = 0.693115234375
DATA peExpK<>+96(SB)/4, $0x3f317000
DATA peExpK<>+100(SB)/4, $0x3f317000
DATA peExpK<>+104(SB)/4, $0x3f317000
DATA peExpK<>+108(SB)/4, $0x3f317000
DATA peExpK<>+112(SB)/4, $0x3f317000
DATA peExpK<>+116(SB)/4, $0x3f317000
DATA peExpK<>+120(SB)/4, $0x3f317000
DATA peExpK<>+124(SB)/4, $0x3f317000
// LN2LO = 3.194618494528623e-05
DATA peExpK<>+128(SB)/4, $0x3805fdf4
DATA peExpK<>+132(SB)/4, $0x3805fdf4
DATA peExpK<>+136(SB)/4, $0x3805fdf4
DATA peExpK<>+140(SB)/4, $0x3805fdf4
DATA peExpK<>+144(SB)/4, $0x3805fdf4
DATA peExpK<>+148(SB)/4, $0x3805fdf4
DATA peExpK<>+152(SB)/4, $0x3805fdf4
DATA peExpK<>+156(SB)/4, $0x3805fdf4
// C4 = 0.001392617611993558
DATA peExpK<>+160(SB)/4, $0x3ab6887e
DATA peExpK<>+164(SB)/4, $0x3ab6887e
DATA peExpK<>+168(SB)/4, $0x3ab6887e
DATA peExpK<>+172(SB)/4, $0x3ab6887e
DATA peExpK<>+176(SB)/4, $0x3ab6887e
DATA peExpK<>+180(SB)/4, $0x3ab6887e
DATA peExpK<>+184(SB)/4, $0x3ab6887e
DATA peExpK<>+188(SB)/4, $0x3ab6887e
// C3 = 0.008363173074513711
DATA peExpK<>+192(SB)/4, $0x3c0905b1
DATA peExpK<>+196(SB)/4, $0x3c0905b1
DATA peExpK<>+200(SB)/4, $0x3c0905b1
DATA peExpK<>+204(SB)/4, $0x3c0905b1
DATA peExpK<>+208(SB)/4, $0x3c0905b1
DATA peExpK<>+212(SB)/4, $0x3c0905b1
DATA peExpK<>+216(SB)/4, $0x3c0905b1
DATA peExpK<>+220(SB)/4, $0x3c0905b1
// C2 = 0.041666554662050534
DATA peExpK<>+224(SB)/4, $0x3d2aaa8d
DATA peExpK<>+228(SB)/4, $0x3d2aaa8d
DATA peExpK<>+232(SB)/4, $0x3d2aaa8d
DATA peExpK<>+236(SB)/4, $0x3d2aaa8d
DATA peExpK<>+240(SB)/4, $0x3d2aaa8d
DATA peExpK<>+244(SB)/4, $0x3d2aaa8d
DATA peExpK<>+248(SB)/4, $0x3d2aaa8d
DATA peExpK<>+252(SB)/4, $0x3d2aaa8d
// C1 = 0.16666577025597987
DATA peExpK<>+256(SB)/4, $0x3e2aaa6f
DATA peExpK<>+260(SB)/4, $0x3e2aaa6f
DATA peExpK<>+264(SB)/4, $0x3e2aaa6f
DATA peExpK<>+268(SB)/4, $0x3e2aaa6f
DATA peExpK<>+272(SB)/4, $0x3e2aaa6f
DATA peExpK<>+276(SB)/4, $0x3e2aaa6f
DATA peExpK<>+280(SB)/4, $0x3e2aaa6f
DATA peExpK<>+284(SB)/4, $0x3e2aaa6f
// C0 = 0.5
DATA peExpK<>+288(SB)/4, $0x3f000000
DATA peExpK<>+292(SB)/4, $0x3f000000
DATA peExpK<>+296(SB)/4, $0x3f000000
DATA peExpK<>+300(SB)/4, $0x3f000000
DATA peExpK<>+304(SB)/4, $0x3f000000
DATA peExpK<>+308(SB)/4, $0x3f000000
DATA peExpK<>+312(SB)/4, $0x3f000000
DATA peExpK<>+316(SB)/4, $0x3f000000
// ONE = 1.0
DATA peExpK<>+320(SB)/4, $0x3f800000
DATA peExpK<>+324(SB)/4, $0x3f800000
DATA peExpK<>+328(SB)/4, $0x3f800000
DATA peExpK<>+332(SB)/4, $0x3f800000
DATA peExpK<>+336(SB)/4, $0x3f800000
DATA peExpK<>+340(SB)/4, $0x3f800000
DATA peExpK<>+344(SB)/4, $0x3f800000
DATA peExpK<>+348(SB)/4, $0x3f800000
// 127, the float32 exponent bias (int32)
DATA peExpK<>+352(SB)/4, $0x0000007f
DATA peExpK<>+356(SB)/4, $0x0000007f
DATA peExpK<>+360(SB)/4, $0x0000007f
DATA peExpK<>+364(SB)/4, $0x0000007f
DATA peExpK<>+368(SB)/4, $0x0000007f
DATA peExpK<>+372(SB)/4, $0x0000007f
DATA peExpK<>+376(SB)/4, $0x0000007f
DATA peExpK<>+380(SB)/4, $0x0000007f
GLOBL peExpK<>(SB), RODATA|NOPTR, $384

// func peExpAVX2(x []float32)
//
// x[i] = exp(x[i]) for len(x) a multiple of 8: x is clamped to
// [-87.3, 88.3] (NaN propagates), n = round(x·log2 e), r = x − n·ln 2 and
// exp(x) = 2ⁿ·(1 + r + r²·C(r)).
TEXT ·peExpAVX2(SB), NOSPLIT, $0-24
	MOVQ    x_base+0(FP), DI
	MOVQ    x_len+8(FP), CX
	LEAQ    peExpK<>(SB), R8
	VMOVUPS 0(R8), Y13
	VMOVUPS 32(R8), Y14
	VMOVUPS 64(R8), Y12
	VMOVUPS 96(R8), Y11
	VMOVUPS 128(R8), Y10
	VMOVUPS 320(R8), Y9
	VMOVUPS 352(R8), Y8

exploop:
	CMPQ         CX, $8
	JLT          expdone
	VMOVUPS      (DI), Y0
	VMINPS       Y0, Y14, Y0
	VMAXPS       Y0, Y13, Y0
	VMULPS       Y12, Y0, Y1
	VROUNDPS     $0, Y1, Y1
	VFNMADD231PS Y11, Y1, Y0
	VFNMADD231PS Y10, Y1, Y0
	VMOVUPS      160(R8), Y2
	VFMADD213PS  192(R8), Y0, Y2
	VFMADD213PS  224(R8), Y0, Y2
	VFMADD213PS  256(R8), Y0, Y2
	VFMADD213PS  288(R8), Y0, Y2
	VMULPS       Y0, Y0, Y3
	VFMADD213PS  Y0, Y3, Y2
	VADDPS       Y9, Y2, Y2
	VCVTPS2DQ    Y1, Y4
	VPADDD       Y8, Y4, Y4
	VPSLLD       $23, Y4, Y4
	VMULPS       Y4, Y2, Y2
	VMOVUPS      Y2, (DI)
	ADDQ         $32, DI
	SUBQ         $8, CX
	JMP          exploop

expdone:
	VZEROUPPER
	RET
