//go:build amd64 && !noasm

#include "textflag.h"

// func poolMaxAVX512(dst *byte, x *byte, offs *int, taps int, c int, n int, step int, signed int)
//
// For p < n, ch < c: dst[p*c + ch] = max_{t < taps} x[p*step + offs[t] + ch]
// (unsigned bytes, or int8 when signed != 0); taps >= 1. 64 channels per
// step, loads and stores masked to c.
TEXT ·poolMaxAVX512(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ offs+16(FP), R8
	MOVQ taps+24(FP), R9
	MOVQ c+32(FP), R10
	MOVQ n+40(FP), R11
	MOVQ step+48(FP), R12
	MOVQ signed+56(FP), R13

pix:
	TESTQ R11, R11
	JZ done
	XORQ BX, BX

blk:
	CMPQ BX, R10
	JGE pixnext
	MOVQ R10, CX
	SUBQ BX, CX
	MOVQ $-1, AX
	CMPQ CX, $64
	JGE setk
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

setk:
	KMOVQ AX, K1
	LEAQ (SI)(BX*1), DX
	MOVQ (R8), AX
	VMOVDQU8.Z (DX)(AX*1), K1, Z0
	MOVQ $1, R14
	TESTQ R13, R13
	JNZ smax

umax:
	CMPQ R14, R9
	JGE store
	MOVQ (R8)(R14*8), AX
	VMOVDQU8.Z (DX)(AX*1), K1, Z1
	VPMAXUB Z1, Z0, Z0
	INCQ R14
	JMP umax

smax:
	CMPQ R14, R9
	JGE store
	MOVQ (R8)(R14*8), AX
	VMOVDQU8.Z (DX)(AX*1), K1, Z1
	VPMAXSB Z1, Z0, Z0
	INCQ R14
	JMP smax

store:
	VMOVDQU8 Z0, K1, (DI)(BX*1)
	ADDQ $64, BX
	JMP blk

pixnext:
	ADDQ R12, SI
	ADDQ R10, DI
	DECQ R11
	JMP pix

done:
	VZEROUPPER
	RET

// func poolSumAVX512(sums *int32, x *byte, c int, n int, stride int, signed int, accumulate int)
//
// For ch < c: sums[ch] = (accumulate != 0 ? sums[ch] : 0) + sum_{i < n}
// x[i*stride + ch], the bytes zero-extended (sign-extended when signed !=
// 0). 16 channels per step, masked to c.
TEXT ·poolSumAVX512(SB), NOSPLIT, $0-56
	MOVQ sums+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ c+16(FP), R10
	MOVQ n+24(FP), R11
	MOVQ stride+32(FP), R12
	MOVQ signed+40(FP), R13
	MOVQ accumulate+48(FP), R9
	XORQ BX, BX

sblk:
	CMPQ BX, R10
	JGE sdone
	MOVQ R10, CX
	SUBQ BX, CX
	MOVQ $0xffff, AX
	CMPQ CX, $16
	JGE ssetk
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

ssetk:
	KMOVW AX, K1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ R9, R9
	JZ snoacc
	VMOVDQU32.Z (DI)(BX*4), K1, Z0

snoacc:
	LEAQ (SI)(BX*1), DX
	MOVQ R11, CX
	TESTQ R13, R13
	JNZ sx2

zx2:
	CMPQ CX, $2
	JLT zx1
	VPMOVZXBD.Z (DX), K1, Z2
	VPMOVZXBD.Z (DX)(R12*1), K1, Z3
	VPADDD Z2, Z0, Z0
	VPADDD Z3, Z1, Z1
	LEAQ (DX)(R12*2), DX
	SUBQ $2, CX
	JMP zx2

zx1:
	TESTQ CX, CX
	JZ sfin
	VPMOVZXBD.Z (DX), K1, Z2
	VPADDD Z2, Z0, Z0
	JMP sfin

sx2:
	CMPQ CX, $2
	JLT sx1
	VPMOVSXBD.Z (DX), K1, Z2
	VPMOVSXBD.Z (DX)(R12*1), K1, Z3
	VPADDD Z2, Z0, Z0
	VPADDD Z3, Z1, Z1
	LEAQ (DX)(R12*2), DX
	SUBQ $2, CX
	JMP sx2

sx1:
	TESTQ CX, CX
	JZ sfin
	VPMOVSXBD.Z (DX), K1, Z2
	VPADDD Z2, Z0, Z0

sfin:
	VPADDD Z1, Z0, Z0
	VMOVDQU32 Z0, K1, (DI)(BX*4)
	ADDQ $16, BX
	JMP sblk

sdone:
	VZEROUPPER
	RET
