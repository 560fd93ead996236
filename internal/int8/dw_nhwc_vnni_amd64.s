//go:build amd64 && !noasm

#include "textflag.h"

// Index tables of dwBuild3VBMI: for output chunk k (16 dwords of 16
// elements e = 16k+i), dwT3ab<>+64k puts a[e] in byte 4i and b[e] in byte
// 4i+1 (VPERMI2B over rows a and b), dwT3c<>+64k puts c[e] in byte 4i+2
// (VPERMB of row c, merged under the mask of bytes 4i+2).
DATA dwT3ab<>+0(SB)/8, $0x0000410100004000
DATA dwT3ab<>+8(SB)/8, $0x0000430300004202
DATA dwT3ab<>+16(SB)/8, $0x0000450500004404
DATA dwT3ab<>+24(SB)/8, $0x0000470700004606
DATA dwT3ab<>+32(SB)/8, $0x0000490900004808
DATA dwT3ab<>+40(SB)/8, $0x00004b0b00004a0a
DATA dwT3ab<>+48(SB)/8, $0x00004d0d00004c0c
DATA dwT3ab<>+56(SB)/8, $0x00004f0f00004e0e
DATA dwT3ab<>+64(SB)/8, $0x0000511100005010
DATA dwT3ab<>+72(SB)/8, $0x0000531300005212
DATA dwT3ab<>+80(SB)/8, $0x0000551500005414
DATA dwT3ab<>+88(SB)/8, $0x0000571700005616
DATA dwT3ab<>+96(SB)/8, $0x0000591900005818
DATA dwT3ab<>+104(SB)/8, $0x00005b1b00005a1a
DATA dwT3ab<>+112(SB)/8, $0x00005d1d00005c1c
DATA dwT3ab<>+120(SB)/8, $0x00005f1f00005e1e
DATA dwT3ab<>+128(SB)/8, $0x0000612100006020
DATA dwT3ab<>+136(SB)/8, $0x0000632300006222
DATA dwT3ab<>+144(SB)/8, $0x0000652500006424
DATA dwT3ab<>+152(SB)/8, $0x0000672700006626
DATA dwT3ab<>+160(SB)/8, $0x0000692900006828
DATA dwT3ab<>+168(SB)/8, $0x00006b2b00006a2a
DATA dwT3ab<>+176(SB)/8, $0x00006d2d00006c2c
DATA dwT3ab<>+184(SB)/8, $0x00006f2f00006e2e
DATA dwT3ab<>+192(SB)/8, $0x0000713100007030
DATA dwT3ab<>+200(SB)/8, $0x0000733300007232
DATA dwT3ab<>+208(SB)/8, $0x0000753500007434
DATA dwT3ab<>+216(SB)/8, $0x0000773700007636
DATA dwT3ab<>+224(SB)/8, $0x0000793900007838
DATA dwT3ab<>+232(SB)/8, $0x00007b3b00007a3a
DATA dwT3ab<>+240(SB)/8, $0x00007d3d00007c3c
DATA dwT3ab<>+248(SB)/8, $0x00007f3f00007e3e
GLOBL dwT3ab<>(SB), RODATA|NOPTR, $256
DATA dwT3c<>+0(SB)/8, $0x0001000000000000
DATA dwT3c<>+8(SB)/8, $0x0003000000020000
DATA dwT3c<>+16(SB)/8, $0x0005000000040000
DATA dwT3c<>+24(SB)/8, $0x0007000000060000
DATA dwT3c<>+32(SB)/8, $0x0009000000080000
DATA dwT3c<>+40(SB)/8, $0x000b0000000a0000
DATA dwT3c<>+48(SB)/8, $0x000d0000000c0000
DATA dwT3c<>+56(SB)/8, $0x000f0000000e0000
DATA dwT3c<>+64(SB)/8, $0x0011000000100000
DATA dwT3c<>+72(SB)/8, $0x0013000000120000
DATA dwT3c<>+80(SB)/8, $0x0015000000140000
DATA dwT3c<>+88(SB)/8, $0x0017000000160000
DATA dwT3c<>+96(SB)/8, $0x0019000000180000
DATA dwT3c<>+104(SB)/8, $0x001b0000001a0000
DATA dwT3c<>+112(SB)/8, $0x001d0000001c0000
DATA dwT3c<>+120(SB)/8, $0x001f0000001e0000
DATA dwT3c<>+128(SB)/8, $0x0021000000200000
DATA dwT3c<>+136(SB)/8, $0x0023000000220000
DATA dwT3c<>+144(SB)/8, $0x0025000000240000
DATA dwT3c<>+152(SB)/8, $0x0027000000260000
DATA dwT3c<>+160(SB)/8, $0x0029000000280000
DATA dwT3c<>+168(SB)/8, $0x002b0000002a0000
DATA dwT3c<>+176(SB)/8, $0x002d0000002c0000
DATA dwT3c<>+184(SB)/8, $0x002f0000002e0000
DATA dwT3c<>+192(SB)/8, $0x0031000000300000
DATA dwT3c<>+200(SB)/8, $0x0033000000320000
DATA dwT3c<>+208(SB)/8, $0x0035000000340000
DATA dwT3c<>+216(SB)/8, $0x0037000000360000
DATA dwT3c<>+224(SB)/8, $0x0039000000380000
DATA dwT3c<>+232(SB)/8, $0x003b0000003a0000
DATA dwT3c<>+240(SB)/8, $0x003d0000003c0000
DATA dwT3c<>+248(SB)/8, $0x003f0000003e0000
GLOBL dwT3c<>(SB), RODATA|NOPTR, $256

// The even dwords of two zmm registers (VPERMT2D index).
DATA dwEvenV<>+0(SB)/8, $0x0000000200000000
DATA dwEvenV<>+8(SB)/8, $0x0000000600000004
DATA dwEvenV<>+16(SB)/8, $0x0000000a00000008
DATA dwEvenV<>+24(SB)/8, $0x0000000e0000000c
DATA dwEvenV<>+32(SB)/8, $0x0000001200000010
DATA dwEvenV<>+40(SB)/8, $0x0000001600000014
DATA dwEvenV<>+48(SB)/8, $0x0000001a00000018
DATA dwEvenV<>+56(SB)/8, $0x0000001e0000001c
GLOBL dwEvenV<>(SB), RODATA|NOPTR, $64

// func dwBuild3VBMI(dst *int32, a, b, c *byte, n int, flip uint64, lm, sm uint64)
//
// For e < n: the bytes of dst[e] are a[e]^flip, b[e]^flip, c[e]^flip and
// an unused fourth byte (three input rows of a depthwise convolution as
// VPDPBUSD groups), 64 elements per step with AVX-512 VBMI byte permutes;
// the last n%64 elements are read under the byte mask lm and their four
// 16-dword chunks stored under the 16-bit masks sm>>(16k).
TEXT ·dwBuild3VBMI(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), R8
	MOVQ b+16(FP), R9
	MOVQ c+24(FP), R10
	MOVQ n+32(FP), CX
	MOVQ flip+40(FP), AX
	VPBROADCASTB AX, Z31
	VMOVDQU64 dwT3ab<>+0(SB), Z20
	VMOVDQU64 dwT3ab<>+64(SB), Z21
	VMOVDQU64 dwT3ab<>+128(SB), Z22
	VMOVDQU64 dwT3ab<>+192(SB), Z23
	VMOVDQU64 dwT3c<>+0(SB), Z24
	VMOVDQU64 dwT3c<>+64(SB), Z25
	VMOVDQU64 dwT3c<>+128(SB), Z26
	VMOVDQU64 dwT3c<>+192(SB), Z27
	MOVQ $0x4444444444444444, AX
	KMOVQ AX, K1

b3loop:
	CMPQ CX, $64
	JLT b3tail
	VPXORQ (R8), Z31, Z0
	VPXORQ (R9), Z31, Z1
	VPXORQ (R10), Z31, Z2
	VMOVDQA64 Z20, Z3
	VPERMI2B Z1, Z0, Z3
	VPERMB Z2, Z24, K1, Z3
	VMOVDQU64 Z3, (DI)
	VMOVDQA64 Z21, Z4
	VPERMI2B Z1, Z0, Z4
	VPERMB Z2, Z25, K1, Z4
	VMOVDQU64 Z4, 64(DI)
	VMOVDQA64 Z22, Z5
	VPERMI2B Z1, Z0, Z5
	VPERMB Z2, Z26, K1, Z5
	VMOVDQU64 Z5, 128(DI)
	VMOVDQA64 Z23, Z6
	VPERMI2B Z1, Z0, Z6
	VPERMB Z2, Z27, K1, Z6
	VMOVDQU64 Z6, 192(DI)
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $256, DI
	SUBQ $64, CX
	JMP b3loop

b3tail:
	TESTQ CX, CX
	JZ b3ret
	KMOVQ lm+48(FP), K4
	VMOVDQU8.Z (R8), K4, Z0
	VMOVDQU8.Z (R9), K4, Z1
	VMOVDQU8.Z (R10), K4, Z2
	VPXORQ Z0, Z31, Z0
	VPXORQ Z1, Z31, Z1
	VPXORQ Z2, Z31, Z2
	MOVQ sm+56(FP), AX
	KMOVW AX, K5
	VMOVDQA64 Z20, Z3
	VPERMI2B Z1, Z0, Z3
	VPERMB Z2, Z24, K1, Z3
	VMOVDQU32 Z3, K5, (DI)
	SHRQ $16, AX
	KMOVW AX, K5
	VMOVDQA64 Z21, Z4
	VPERMI2B Z1, Z0, Z4
	VPERMB Z2, Z25, K1, Z4
	VMOVDQU32 Z4, K5, 64(DI)
	SHRQ $16, AX
	KMOVW AX, K5
	VMOVDQA64 Z22, Z5
	VPERMI2B Z1, Z0, Z5
	VPERMB Z2, Z26, K1, Z5
	VMOVDQU32 Z5, K5, 128(DI)
	SHRQ $16, AX
	KMOVW AX, K5
	VMOVDQA64 Z23, Z6
	VPERMI2B Z1, Z0, Z6
	VPERMB Z2, Z27, K1, Z6
	VMOVDQU32 Z6, K5, 192(DI)

b3ret:
	VZEROUPPER
	RET

// Requantizes the 16 sums in ACC and stores their bytes at DST under K1
// (dwNHWCAVX512's REQ: float64 FMA with 1.5*2^52, Z20/Z21 the multipliers
// of channels 0-7/8-15, Z24 the constant, Z25 the even-dword index, Z17
// the zero point, Z18/Z19 the bounds minus the zero point).
#define DREQ(ACC, ACCY, DST) \
	VEXTRACTI64X4 $1, ACC, Y7; \
	VCVTDQ2PD Y7, Z7; \
	VCVTDQ2PD ACCY, Z6; \
	VFMADD213PD Z24, Z21, Z7; \
	VFMADD213PD Z24, Z20, Z6; \
	VPERMT2D Z7, Z25, Z6; \
	VPMAXSD Z18, Z6, Z6; \
	VPMINSD Z19, Z6, Z6; \
	VPADDD Z17, Z6, Z6; \
	VPMOVDB Z6, X6; \
	VMOVDQU8 X6, K1, DST

// DREQ for uint8 outputs clamped to [0, 255] with an even zero point
// (mode 1): Z24 holds 1.5*2^52 + zero, so the rounded value already
// includes the zero point (half to even is unchanged by an even offset);
// negative values become 0 and VPMOVUSDB saturates at 255.
#define DREQU(ACC, ACCY, DST) \
	VEXTRACTI64X4 $1, ACC, Y7; \
	VCVTDQ2PD Y7, Z7; \
	VCVTDQ2PD ACCY, Z6; \
	VFMADD213PD Z24, Z21, Z7; \
	VFMADD213PD Z24, Z20, Z6; \
	VPERMT2D Z7, Z25, Z6; \
	VPMAXSD Z16, Z6, Z6; \
	VPMOVUSDB Z6, X6; \
	VMOVDQU8 X6, K1, DST

// DREQ for int8 outputs clamped to [-128, 127] with an even zero point
// (mode 2): the zero point in Z24 as in DREQU, VPMOVSDB saturates.
#define DREQS(ACC, ACCY, DST) \
	VEXTRACTI64X4 $1, ACC, Y7; \
	VCVTDQ2PD Y7, Z7; \
	VCVTDQ2PD ACCY, Z6; \
	VFMADD213PD Z24, Z21, Z7; \
	VFMADD213PD Z24, Z20, Z6; \
	VPERMT2D Z7, Z25, Z6; \
	VPMOVSDB Z6, X6; \
	VMOVDQU8 X6, K1, DST

// func dwTapsVNNI(dst *byte, tb *int32, w *int32, c, n, step, kw, dstep int, rq *dwReq, mode int, magic uint64)
//
// One output row of n pixels x c channels from a row of VPDPBUSD groups
// (dwBuild3VBMI): for pixel p and channel ch,
//
//	acc = rq.add[ch] + sum_{k < kw} dot4(tb[p*step + k*dstep + ch], w[b][k][ch%16])
//
// (step and dstep in dwords, b = ch/16, dot4 the VPDPBUSD sum of four
// unsigned input bytes times four signed weight bytes) requantized as in
// dwNHWCAVX512 into dst[p*c + ch]. Mode 1 (uint8, bounds 0 and 255) and
// mode 2 (int8, bounds -128 and 127), both for even zero points, take
// magic = 1.5*2^52 + zero and requantize by saturation (DREQU, DREQS). Per 16-channel block the weights hold
// kw x 16 dwords; loads past c channels read tb beyond the last pixel by
// up to 15 dwords (unused lanes); stores are masked to c.
TEXT ·dwTapsVNNI(SB), NOSPLIT, $0-88
	MOVQ c+24(FP), R12
	MOVQ step+40(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	MOVQ dstep+56(FP), R11
	SHLQ $2, R11
	MOVQ w+16(FP), R14
	VMOVDQU64 dwEvenV<>(SB), Z25
	MOVQ $0x4338000000000000, AX
	VPBROADCASTQ AX, Z24
	MOVQ rq+64(FP), AX
	MOVQ 24(AX), CX
	VPBROADCASTD CX, Z17
	MOVQ 32(AX), CX
	VPBROADCASTD CX, Z18
	MOVQ 40(AX), CX
	VPBROADCASTD CX, Z19
	MOVQ mode+72(FP), R8
	TESTQ R8, R8
	JZ tmode0
	MOVQ magic+80(FP), AX
	VPBROADCASTQ AX, Z24
	VPXORD Z16, Z16, Z16

tmode0:
	XORQ BX, BX

tblock:
	CMPQ BX, R12
	JGE tdone
	MOVQ R12, CX
	SUBQ BX, CX
	MOVQ $0xffff, AX
	CMPQ CX, $16
	JGE tmask
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

tmask:
	KMOVW AX, K1
	MOVQ rq+64(FP), AX
	MOVQ 0(AX), CX
	VMOVUPD (CX)(BX*8), Z20
	VMOVUPD 64(CX)(BX*8), Z21
	MOVQ 8(AX), CX
	VMOVDQU32 (CX)(BX*4), Z26
	MOVQ dst+0(FP), R15
	ADDQ BX, R15
	MOVQ tb+8(FP), DI
	LEAQ (DI)(BX*4), DI
	MOVQ n+32(FP), CX

tpix4:
	CMPQ CX, $4
	JLT tpix1
	VMOVDQA32 Z26, Z0
	VMOVDQA32 Z26, Z1
	VMOVDQA32 Z26, Z2
	VMOVDQA32 Z26, Z3
	MOVQ DI, DX
	MOVQ R14, R13
	MOVQ kw+48(FP), AX

ttap4:
	VMOVDQU32 (R13), Z29
	VMOVDQU32 (DX), Z8
	VMOVDQU32 (DX)(R9*1), Z9
	VMOVDQU32 (DX)(R9*2), Z10
	VMOVDQU32 (DX)(R10*1), Z11
	VPDPBUSD Z29, Z8, Z0
	VPDPBUSD Z29, Z9, Z1
	VPDPBUSD Z29, Z10, Z2
	VPDPBUSD Z29, Z11, Z3
	ADDQ R11, DX
	ADDQ $64, R13
	DECQ AX
	JNZ ttap4
	LEAQ (R12)(R12*2), SI
	CMPQ R8, $1
	JEQ t4u
	CMPQ R8, $2
	JEQ t4s
	DREQ(Z0, Y0, (R15))
	DREQ(Z1, Y1, (R15)(R12*1))
	DREQ(Z2, Y2, (R15)(R12*2))
	DREQ(Z3, Y3, (R15)(SI*1))
	JMP t4done

t4u:
	DREQU(Z0, Y0, (R15))
	DREQU(Z1, Y1, (R15)(R12*1))
	DREQU(Z2, Y2, (R15)(R12*2))
	DREQU(Z3, Y3, (R15)(SI*1))
	JMP t4done

t4s:
	DREQS(Z0, Y0, (R15))
	DREQS(Z1, Y1, (R15)(R12*1))
	DREQS(Z2, Y2, (R15)(R12*2))
	DREQS(Z3, Y3, (R15)(SI*1))

t4done:
	LEAQ (R15)(R12*4), R15
	LEAQ (DI)(R9*4), DI
	SUBQ $4, CX
	JMP tpix4

tpix1:
	TESTQ CX, CX
	JLE tnext
	VMOVDQA32 Z26, Z0
	MOVQ DI, DX
	MOVQ R14, R13
	MOVQ kw+48(FP), AX

ttap1:
	VMOVDQU32 (DX), Z8
	VPDPBUSD (R13), Z8, Z0
	ADDQ R11, DX
	ADDQ $64, R13
	DECQ AX
	JNZ ttap1
	CMPQ R8, $1
	JEQ t1u
	CMPQ R8, $2
	JEQ t1s
	DREQ(Z0, Y0, (R15))
	JMP t1done

t1u:
	DREQU(Z0, Y0, (R15))
	JMP t1done

t1s:
	DREQS(Z0, Y0, (R15))

t1done:
	ADDQ R12, R15
	ADDQ R9, DI
	DECQ CX
	JMP tpix1

tnext:
	MOVQ kw+48(FP), AX
	SHLQ $6, AX
	ADDQ AX, R14
	ADDQ $16, BX
	JMP tblock

tdone:
	VZEROUPPER
	RET
