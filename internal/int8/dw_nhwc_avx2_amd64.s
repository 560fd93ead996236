//go:build amd64 && !noasm

#include "textflag.h"

// One tap pair for 8 channels: the rows at A and B (8 bytes each, zero-
// extended) become int16 pairs (B's in the high words), multiplied by the
// weight pairs W and added to ACC. FLIP is VPXOR Y8 for int8 rows (x+128).
#define PAIR8(A, B, W, ACC) \
	VPMOVZXBD A, Y4; \
	VPMOVZXBD B, Y5; \
	VPSLLD $16, Y5, Y5; \
	VPOR Y5, Y4, Y4; \
	VPMADDWD W, Y4, Y4; \
	VPADDD Y4, ACC, ACC

#define PAIR8S(A, B, W, ACC) \
	VPMOVZXBD A, Y4; \
	VPMOVZXBD B, Y5; \
	VPSLLD $16, Y5, Y5; \
	VPOR Y5, Y4, Y4; \
	VPXOR Y8, Y4, Y4; \
	VPMADDWD W, Y4, Y4; \
	VPADDD Y4, ACC, ACC

// Requantizes the 8 sums in ACC (ACCX its low half; channels at byte
// offset SOFF of the block's float64 multipliers at R8) into OUT: one FMA
// per 4 values forms acc*real + 1.5*2^52 (Y9) exactly and rounds it once,
// half to even; VSHUFPS/VPERMQ collect the low dwords, which are clamped to
// the bounds minus the zero point (Y10, Y11), offset by the zero point
// (Y12) and cut to their low byte (Y13).
#define REQ8(ACC, ACCX, SOFF, OUT) \
	VEXTRACTI128 $1, ACC, X5; \
	VCVTDQ2PD ACCX, Y4; \
	VCVTDQ2PD X5, Y5; \
	VFMADD132PD SOFF(R8), Y9, Y4; \
	VFMADD132PD SOFF+32(R8), Y9, Y5; \
	VSHUFPS $0x88, Y5, Y4, OUT; \
	VPERMQ $0xd8, OUT, OUT; \
	VPMAXSD Y10, OUT, OUT; \
	VPMINSD Y11, OUT, OUT; \
	VPADDD Y12, OUT, OUT; \
	VPAND Y13, OUT, OUT

// func dwNHWCAVX2(out *int32, taps *unsafe.Pointer, segs *int, nseg int, w *int32, pairs int, c int, step int, flags int, rq *dwReq)
//
// dwNHWCAVX512 for AVX2 + FMA and c a multiple of 16: the same sums (one
// pixel per step, 16 channels as two halves of 8) and, with rq.dst set,
// the same requantized bytes; flags&1: int8 rows.
TEXT ·dwNHWCAVX2(SB), NOSPLIT, $48-80
	MOVQ taps+8(FP), SI
	MOVQ pairs+40(FP), R11
	SHLQ $4, R11
	MOVQ c+48(FP), R12
	MOVQ step+56(FP), R9
	MOVL $0x00800080, AX
	MOVQ AX, X8
	VPBROADCASTD X8, Y8
	MOVQ $0x4338000000000000, AX
	MOVQ AX, X9
	VPBROADCASTQ X9, Y9
	MOVL $0xff, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	MOVQ rq+72(FP), AX
	MOVQ 16(AX), CX
	MOVQ CX, mode-16(SP)
	TESTQ CX, CX
	JNZ obset
	MOVQ out+0(FP), CX

obset:
	MOVQ CX, obase-40(SP)
	MOVQ 24(AX), CX
	MOVQ CX, X12
	VPBROADCASTD X12, Y12
	MOVQ 32(AX), CX
	MOVQ CX, X10
	VPBROADCASTD X10, Y10
	MOVQ 40(AX), CX
	MOVQ CX, X11
	VPBROADCASTD X11, Y11
	MOVQ segs+16(FP), AX
	MOVQ AX, segp-32(SP)
	MOVQ nseg+24(FP), AX
	MOVQ AX, nsg-24(SP)

segloop:
	CMPQ nsg-24(SP), $0
	JLE done
	MOVQ w+32(FP), R14
	XORQ BX, BX

block:
	CMPQ BX, R12
	JGE segdone
	MOVQ BX, DX
	MOVQ segp-32(SP), AX
	MOVQ (AX), AX
	MOVQ AX, cnt-8(SP)
	MOVQ obase-40(SP), R15
	CMPQ mode-16(SP), $0
	JEQ setint
	ADDQ BX, R15
	MOVQ rq+72(FP), AX
	MOVQ 0(AX), R8
	LEAQ (R8)(BX*8), R8
	MOVQ 8(AX), R10
	LEAQ (R10)(BX*4), R10
	JMP pix

setint:
	LEAQ (R15)(BX*4), R15

pix:
	CMPQ cnt-8(SP), $0
	JLE next
	CMPQ mode-16(SP), $0
	JEQ zinit
	VMOVDQU (R10), Y0
	VMOVDQU 32(R10), Y1
	JMP inited

zinit:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1

inited:
	XORQ AX, AX
	TESTQ $1, flags+64(FP)
	JNZ spair

upair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU (R14)(AX*4), Y2
	VMOVDQU 32(R14)(AX*4), Y3
	PAIR8((CX)(DX*1), (R13)(DX*1), Y2, Y0)
	PAIR8(8(CX)(DX*1), 8(R13)(DX*1), Y3, Y1)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT upair
	JMP store

spair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU (R14)(AX*4), Y2
	VMOVDQU 32(R14)(AX*4), Y3
	PAIR8S((CX)(DX*1), (R13)(DX*1), Y2, Y0)
	PAIR8S(8(CX)(DX*1), 8(R13)(DX*1), Y3, Y1)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT spair

store:
	ADDQ R9, DX
	DECQ cnt-8(SP)
	CMPQ mode-16(SP), $0
	JEQ storei
	REQ8(Y0, X0, 0, Y6)
	REQ8(Y1, X1, 64, Y7)
	VPACKUSDW Y7, Y6, Y6
	VPERMQ $0xd8, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VPACKUSWB X7, X6, X6
	VMOVDQU X6, (R15)
	ADDQ R12, R15
	JMP pix

storei:
	VMOVDQU Y0, (R15)
	VMOVDQU Y1, 32(R15)
	LEAQ (R15)(R12*4), R15
	JMP pix

next:
	ADDQ $16, BX
	LEAQ (R14)(R11*4), R14
	JMP block

segdone:
	MOVQ segp-32(SP), AX
	MOVQ (AX), CX
	IMULQ R12, CX
	CMPQ mode-16(SP), $0
	JNE segadv
	SHLQ $2, CX

segadv:
	ADDQ CX, obase-40(SP)
	ADDQ $8, segp-32(SP)
	ADDQ R11, SI
	DECQ nsg-24(SP)
	JMP segloop

done:
	VZEROUPPER
	RET
