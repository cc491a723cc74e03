//go:build amd64

#include "textflag.h"

// Coefficients of the rational tanh of fastmath.go (Tanh), each broadcast to eight
// float32 lanes (32 bytes): P6..P0 at 0..192, Q3..Q1 at 224..288, 1 at 320,
// the clamp 9.1 at 352.
// P6 = -8.22848786676537e-14 (float32 0xa9b94a01)
DATA tanhK<>+0(SB)/4, $0xa9b94a01
DATA tanhK<>+4(SB)/4, $0xa9b94a01
DATA tanhK<>+8(SB)/4, $0xa9b94a01
DATA tanhK<>+12(SB)/4, $0xa9b94a01
DATA tanhK<>+16(SB)/4, $0xa9b94a01
DATA tanhK<>+20(SB)/4, $0xa9b94a01
DATA tanhK<>+24(SB)/4, $0xa9b94a01
DATA tanhK<>+28(SB)/4, $0xa9b94a01
// P5 = 5.1776986575408243e-11 (float32 0x2e63b7b4)
DATA tanhK<>+32(SB)/4, $0x2e63b7b4
DATA tanhK<>+36(SB)/4, $0x2e63b7b4
DATA tanhK<>+40(SB)/4, $0x2e63b7b4
DATA tanhK<>+44(SB)/4, $0x2e63b7b4
DATA tanhK<>+48(SB)/4, $0x2e63b7b4
DATA tanhK<>+52(SB)/4, $0x2e63b7b4
DATA tanhK<>+56(SB)/4, $0x2e63b7b4
DATA tanhK<>+60(SB)/4, $0x2e63b7b4
// P4 = -2.001916440115376e-08 (float32 0xb2abf69c)
DATA tanhK<>+64(SB)/4, $0xb2abf69c
DATA tanhK<>+68(SB)/4, $0xb2abf69c
DATA tanhK<>+72(SB)/4, $0xb2abf69c
DATA tanhK<>+76(SB)/4, $0xb2abf69c
DATA tanhK<>+80(SB)/4, $0xb2abf69c
DATA tanhK<>+84(SB)/4, $0xb2abf69c
DATA tanhK<>+88(SB)/4, $0xb2abf69c
DATA tanhK<>+92(SB)/4, $0xb2abf69c
// P3 = 1.1103932911437344e-05 (float32 0x373a4b07)
DATA tanhK<>+96(SB)/4, $0x373a4b07
DATA tanhK<>+100(SB)/4, $0x373a4b07
DATA tanhK<>+104(SB)/4, $0x373a4b07
DATA tanhK<>+108(SB)/4, $0x373a4b07
DATA tanhK<>+112(SB)/4, $0x373a4b07
DATA tanhK<>+116(SB)/4, $0x373a4b07
DATA tanhK<>+120(SB)/4, $0x373a4b07
DATA tanhK<>+124(SB)/4, $0x373a4b07
// P2 = 0.0030991626495164497 (float32 0x3b4b1b52)
DATA tanhK<>+128(SB)/4, $0x3b4b1b52
DATA tanhK<>+132(SB)/4, $0x3b4b1b52
DATA tanhK<>+136(SB)/4, $0x3b4b1b52
DATA tanhK<>+140(SB)/4, $0x3b4b1b52
DATA tanhK<>+144(SB)/4, $0x3b4b1b52
DATA tanhK<>+148(SB)/4, $0x3b4b1b52
DATA tanhK<>+152(SB)/4, $0x3b4b1b52
DATA tanhK<>+156(SB)/4, $0x3b4b1b52
// P1 = 0.13079724645663374 (float32 0x3e05efb7)
DATA tanhK<>+160(SB)/4, $0x3e05efb7
DATA tanhK<>+164(SB)/4, $0x3e05efb7
DATA tanhK<>+168(SB)/4, $0x3e05efb7
DATA tanhK<>+172(SB)/4, $0x3e05efb7
DATA tanhK<>+176(SB)/4, $0x3e05efb7
DATA tanhK<>+180(SB)/4, $0x3e05efb7
DATA tanhK<>+184(SB)/4, $0x3e05efb7
DATA tanhK<>+188(SB)/4, $0x3e05efb7
// P0 = 0.9999999925531471 (float32 0x3f800000)
DATA tanhK<>+192(SB)/4, $0x3f800000
DATA tanhK<>+196(SB)/4, $0x3f800000
DATA tanhK<>+200(SB)/4, $0x3f800000
DATA tanhK<>+204(SB)/4, $0x3f800000
DATA tanhK<>+208(SB)/4, $0x3f800000
DATA tanhK<>+212(SB)/4, $0x3f800000
DATA tanhK<>+216(SB)/4, $0x3f800000
DATA tanhK<>+220(SB)/4, $0x3f800000
// Q3 = 0.0002539151699179224 (float32 0x39851feb)
DATA tanhK<>+224(SB)/4, $0x39851feb
DATA tanhK<>+228(SB)/4, $0x39851feb
DATA tanhK<>+232(SB)/4, $0x39851feb
DATA tanhK<>+236(SB)/4, $0x39851feb
DATA tanhK<>+240(SB)/4, $0x39851feb
DATA tanhK<>+244(SB)/4, $0x39851feb
DATA tanhK<>+248(SB)/4, $0x39851feb
DATA tanhK<>+252(SB)/4, $0x39851feb
// Q2 = 0.024476108186710813 (float32 0x3cc8821f)
DATA tanhK<>+256(SB)/4, $0x3cc8821f
DATA tanhK<>+260(SB)/4, $0x3cc8821f
DATA tanhK<>+264(SB)/4, $0x3cc8821f
DATA tanhK<>+268(SB)/4, $0x3cc8821f
DATA tanhK<>+272(SB)/4, $0x3cc8821f
DATA tanhK<>+276(SB)/4, $0x3cc8821f
DATA tanhK<>+280(SB)/4, $0x3cc8821f
DATA tanhK<>+284(SB)/4, $0x3cc8821f
// Q1 = 0.46413051018935125 (float32 0x3eeda284)
DATA tanhK<>+288(SB)/4, $0x3eeda284
DATA tanhK<>+292(SB)/4, $0x3eeda284
DATA tanhK<>+296(SB)/4, $0x3eeda284
DATA tanhK<>+300(SB)/4, $0x3eeda284
DATA tanhK<>+304(SB)/4, $0x3eeda284
DATA tanhK<>+308(SB)/4, $0x3eeda284
DATA tanhK<>+312(SB)/4, $0x3eeda284
DATA tanhK<>+316(SB)/4, $0x3eeda284
// ONE = 1.0 (float32 0x3f800000)
DATA tanhK<>+320(SB)/4, $0x3f800000
DATA tanhK<>+324(SB)/4, $0x3f800000
DATA tanhK<>+328(SB)/4, $0x3f800000
DATA tanhK<>+332(SB)/4, $0x3f800000
DATA tanhK<>+336(SB)/4, $0x3f800000
DATA tanhK<>+340(SB)/4, $0x3f800000
DATA tanhK<>+344(SB)/4, $0x3f800000
DATA tanhK<>+348(SB)/4, $0x3f800000
// CLAMP = 9.1 (float32 0x4111999a)
DATA tanhK<>+352(SB)/4, $0x4111999a
DATA tanhK<>+356(SB)/4, $0x4111999a
DATA tanhK<>+360(SB)/4, $0x4111999a
DATA tanhK<>+364(SB)/4, $0x4111999a
DATA tanhK<>+368(SB)/4, $0x4111999a
DATA tanhK<>+372(SB)/4, $0x4111999a
DATA tanhK<>+376(SB)/4, $0x4111999a
DATA tanhK<>+380(SB)/4, $0x4111999a
GLOBL tanhK<>(SB), RODATA|NOPTR, $384

// func tanhScaleBiasAVX2(x []float32, s float32, tile []float32)
//
// x[i] = tanh(s·x[i] + tile[i mod len(tile)]); len(x) and len(tile) are
// multiples of 8, len(tile) > 0. The product s·x[i] is rounded before the
// bias is added, as in gorgonia's graph. The clamps take x as the operand that
// VMINPS/VMAXPS return when either is NaN, so NaN propagates.
TEXT ·tanhScaleBiasAVX2(SB), NOSPLIT, $0-56
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS s+24(FP), Y15
	MOVQ         tile_base+32(FP), SI
	MOVQ         tile_len+40(FP), DX
	SHLQ         $2, DX
	XORQ         BX, BX
	LEAQ         tanhK<>(SB), R8
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

// Coefficients of the float32 exp of vec.go (Exp32), each broadcast to eight
// lanes: clamps at 0 and 32, log2(e) at 64, ln 2 split in hi (exact in 12
// bits) and lo at 96 and 128, the polynomial C4..C0 at 160..288, 1 at 320
// and the exponent bias 127 at 352.
// LO = -87.3
DATA expK<>+0(SB)/4, $0xc2ae999a
DATA expK<>+4(SB)/4, $0xc2ae999a
DATA expK<>+8(SB)/4, $0xc2ae999a
DATA expK<>+12(SB)/4, $0xc2ae999a
DATA expK<>+16(SB)/4, $0xc2ae999a
DATA expK<>+20(SB)/4, $0xc2ae999a
DATA expK<>+24(SB)/4, $0xc2ae999a
DATA expK<>+28(SB)/4, $0xc2ae999a
// HI = 88.3
DATA expK<>+32(SB)/4, $0x42b0999a
DATA expK<>+36(SB)/4, $0x42b0999a
DATA expK<>+40(SB)/4, $0x42b0999a
DATA expK<>+44(SB)/4, $0x42b0999a
DATA expK<>+48(SB)/4, $0x42b0999a
DATA expK<>+52(SB)/4, $0x42b0999a
DATA expK<>+56(SB)/4, $0x42b0999a
DATA expK<>+60(SB)/4, $0x42b0999a
// LOG2E = 1.4426950408889634
DATA expK<>+64(SB)/4, $0x3fb8aa3b
DATA expK<>+68(SB)/4, $0x3fb8aa3b
DATA expK<>+72(SB)/4, $0x3fb8aa3b
DATA expK<>+76(SB)/4, $0x3fb8aa3b
DATA expK<>+80(SB)/4, $0x3fb8aa3b
DATA expK<>+84(SB)/4, $0x3fb8aa3b
DATA expK<>+88(SB)/4, $0x3fb8aa3b
DATA expK<>+92(SB)/4, $0x3fb8aa3b
// LN2HI = 0.693115234375
DATA expK<>+96(SB)/4, $0x3f317000
DATA expK<>+100(SB)/4, $0x3f317000
DATA expK<>+104(SB)/4, $0x3f317000
DATA expK<>+108(SB)/4, $0x3f317000
DATA expK<>+112(SB)/4, $0x3f317000
DATA expK<>+116(SB)/4, $0x3f317000
DATA expK<>+120(SB)/4, $0x3f317000
DATA expK<>+124(SB)/4, $0x3f317000
// LN2LO = 3.194618494528623e-05
DATA expK<>+128(SB)/4, $0x3805fdf4
DATA expK<>+132(SB)/4, $0x3805fdf4
DATA expK<>+136(SB)/4, $0x3805fdf4
DATA expK<>+140(SB)/4, $0x3805fdf4
DATA expK<>+144(SB)/4, $0x3805fdf4
DATA expK<>+148(SB)/4, $0x3805fdf4
DATA expK<>+152(SB)/4, $0x3805fdf4
DATA expK<>+156(SB)/4, $0x3805fdf4
// C4 = 0.001392617611993558
DATA expK<>+160(SB)/4, $0x3ab6887e
DATA expK<>+164(SB)/4, $0x3ab6887e
DATA expK<>+168(SB)/4, $0x3ab6887e
DATA expK<>+172(SB)/4, $0x3ab6887e
DATA expK<>+176(SB)/4, $0x3ab6887e
DATA expK<>+180(SB)/4, $0x3ab6887e
DATA expK<>+184(SB)/4, $0x3ab6887e
DATA expK<>+188(SB)/4, $0x3ab6887e
// C3 = 0.008363173074513711
DATA expK<>+192(SB)/4, $0x3c0905b1
DATA expK<>+196(SB)/4, $0x3c0905b1
DATA expK<>+200(SB)/4, $0x3c0905b1
DATA expK<>+204(SB)/4, $0x3c0905b1
DATA expK<>+208(SB)/4, $0x3c0905b1
DATA expK<>+212(SB)/4, $0x3c0905b1
DATA expK<>+216(SB)/4, $0x3c0905b1
DATA expK<>+220(SB)/4, $0x3c0905b1
// C2 = 0.041666554662050534
DATA expK<>+224(SB)/4, $0x3d2aaa8d
DATA expK<>+228(SB)/4, $0x3d2aaa8d
DATA expK<>+232(SB)/4, $0x3d2aaa8d
DATA expK<>+236(SB)/4, $0x3d2aaa8d
DATA expK<>+240(SB)/4, $0x3d2aaa8d
DATA expK<>+244(SB)/4, $0x3d2aaa8d
DATA expK<>+248(SB)/4, $0x3d2aaa8d
DATA expK<>+252(SB)/4, $0x3d2aaa8d
// C1 = 0.16666577025597987
DATA expK<>+256(SB)/4, $0x3e2aaa6f
DATA expK<>+260(SB)/4, $0x3e2aaa6f
DATA expK<>+264(SB)/4, $0x3e2aaa6f
DATA expK<>+268(SB)/4, $0x3e2aaa6f
DATA expK<>+272(SB)/4, $0x3e2aaa6f
DATA expK<>+276(SB)/4, $0x3e2aaa6f
DATA expK<>+280(SB)/4, $0x3e2aaa6f
DATA expK<>+284(SB)/4, $0x3e2aaa6f
// C0 = 0.5
DATA expK<>+288(SB)/4, $0x3f000000
DATA expK<>+292(SB)/4, $0x3f000000
DATA expK<>+296(SB)/4, $0x3f000000
DATA expK<>+300(SB)/4, $0x3f000000
DATA expK<>+304(SB)/4, $0x3f000000
DATA expK<>+308(SB)/4, $0x3f000000
DATA expK<>+312(SB)/4, $0x3f000000
DATA expK<>+316(SB)/4, $0x3f000000
// ONE = 1.0
DATA expK<>+320(SB)/4, $0x3f800000
DATA expK<>+324(SB)/4, $0x3f800000
DATA expK<>+328(SB)/4, $0x3f800000
DATA expK<>+332(SB)/4, $0x3f800000
DATA expK<>+336(SB)/4, $0x3f800000
DATA expK<>+340(SB)/4, $0x3f800000
DATA expK<>+344(SB)/4, $0x3f800000
DATA expK<>+348(SB)/4, $0x3f800000
// 127, the float32 exponent bias (int32)
DATA expK<>+352(SB)/4, $0x0000007f
DATA expK<>+356(SB)/4, $0x0000007f
DATA expK<>+360(SB)/4, $0x0000007f
DATA expK<>+364(SB)/4, $0x0000007f
DATA expK<>+368(SB)/4, $0x0000007f
DATA expK<>+372(SB)/4, $0x0000007f
DATA expK<>+376(SB)/4, $0x0000007f
DATA expK<>+380(SB)/4, $0x0000007f
GLOBL expK<>(SB), RODATA|NOPTR, $384

// func expAVX2(x []float32)
//
// x[i] = exp(x[i]) for len(x) a multiple of 8: x is clamped to
// [-87.3, 88.3] (NaN propagates), n = round(x·log2 e), r = x − n·ln 2 and
// exp(x) = 2ⁿ·(1 + r + r²·C(r)).
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ    x_base+0(FP), DI
	MOVQ    x_len+8(FP), CX
	LEAQ    expK<>(SB), R8
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
