//go:build amd64 && !noasm

#include "textflag.h"

// func dwRow1AVX512(out *int32, n int, in *uint8, offs *int, w *int32, taps int)
//
// out[i] = sum_t w[t] * in[offs[t] + i] for i < n (uint8 inputs, int32
// weights and sums), 16 outputs per step; reads up to 15 bytes past the
// last input used.
TEXT ·dwRow1AVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ in+16(FP), SI
	MOVQ offs+24(FP), R8
	MOVQ w+32(FP), R9
	MOVQ taps+40(FP), R10
	MOVQ $0xffff, AX
	KMOVW AX, K1

chunk1:
	CMPQ CX, $0
	JLE done1
	CMPQ CX, $16
	JGE full1
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1

full1:
	VPXORD Z0, Z0, Z0
	MOVQ R8, R11
	MOVQ R9, R12
	MOVQ R10, R13

tap1:
	MOVQ (R11), AX
	VPBROADCASTD (R12), Z2
	VPMOVZXBD (SI)(AX*1), Z1
	VPMULLD Z2, Z1, Z1
	VPADDD Z1, Z0, Z0
	ADDQ $8, R11
	ADDQ $4, R12
	DECQ R13
	JNZ tap1
	VMOVDQU32 Z0, K1, (DI)
	ADDQ $64, DI
	ADDQ $16, SI
	SUBQ $16, CX
	JMP chunk1

done1:
	VZEROUPPER
	RET

// func dwRow2AVX512(out *int32, n int, in *uint8, offs *int, w *int32, taps int)
//
// dwRow1AVX512 with stride 2: out[i] = sum_t w[t] * in[offs[t] + 2i]
// (16 words loaded, low bytes kept); reads up to 31 bytes past the last
// input used.
TEXT ·dwRow2AVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ in+16(FP), SI
	MOVQ offs+24(FP), R8
	MOVQ w+32(FP), R9
	MOVQ taps+40(FP), R10
	MOVQ $0xffff, AX
	KMOVW AX, K1
	MOVL $0xff, AX
	VPBROADCASTD AX, Z31

chunk2:
	CMPQ CX, $0
	JLE done2
	CMPQ CX, $16
	JGE full2
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1

full2:
	VPXORD Z0, Z0, Z0
	MOVQ R8, R11
	MOVQ R9, R12
	MOVQ R10, R13

tap2:
	MOVQ (R11), AX
	VPBROADCASTD (R12), Z2
	VPMOVZXWD (SI)(AX*1), Z1
	VPANDD Z31, Z1, Z1
	VPMULLD Z2, Z1, Z1
	VPADDD Z1, Z0, Z0
	ADDQ $8, R11
	ADDQ $4, R12
	DECQ R13
	JNZ tap2
	VMOVDQU32 Z0, K1, (DI)
	ADDQ $64, DI
	ADDQ $32, SI
	SUBQ $16, CX
	JMP chunk2

done2:
	VZEROUPPER
	RET
