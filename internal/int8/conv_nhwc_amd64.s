//go:build amd64 && !noasm

#include "textflag.h"

// func requantConvAVX512(dst *byte, acc *int32, n int, tab *int32, period int, zero, lo, hi int32)
//
// For j < n: dst[j] = clamp(round_half_even((acc[j]+add[j]) * mult[j] / 2^shift[j]), lo, hi) + zero
// (the low byte; lo and hi are the clamp bounds minus zero), the
// parameters read from tab: per 16 values 512 bytes (see reqTab), period
// steps of 16 values, then tab again from its start. Every shift is at
// least 31 (or the multiplier 0), so each rounded product fits in 32 bits
// and is clamped there. Products are formed in 64-bit lanes: even
// elements directly, odd ones after a 32-bit right shift.
TEXT ·requantConvAVX512(SB), NOSPLIT, $0-52
	MOVQ dst+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ tab+24(FP), R8
	MOVQ period+32(FP), BX
	MOVL zero+40(FP), AX
	VPBROADCASTD AX, Z28
	MOVL lo+44(FP), AX
	VPBROADCASTD AX, Z29
	MOVL hi+48(FP), AX
	VPBROADCASTD AX, Z30
	MOVQ $1, AX
	VPBROADCASTQ AX, Z31
	MOVQ R8, R9
	MOVQ BX, DX
	MOVQ $0xffff, AX
	KMOVW AX, K1
	MOVQ $0xaaaa, AX
	KMOVW AX, K2

loop:
	CMPQ CX, $0
	JLE done
	CMPQ CX, $16
	JGE full
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1

full:
	VMOVDQU32.Z (SI), K1, Z0
	VPADDD (R8), Z0, Z0
	// even lanes: p = acc*mult; p += 2^(s-1)-1 + ((p >> s) & 1); p >>= s
	VPMULDQ 64(R8), Z0, Z1
	VPSRAVQ 256(R8), Z1, Z2
	VPANDQ Z31, Z2, Z2
	VPADDQ 384(R8), Z1, Z1
	VPADDQ Z2, Z1, Z1
	VPSRAVQ 256(R8), Z1, Z1
	// odd lanes
	VPSRLQ $32, Z0, Z3
	VPMULDQ 128(R8), Z3, Z3
	VPSRAVQ 320(R8), Z3, Z4
	VPANDQ Z31, Z4, Z4
	VPADDQ 448(R8), Z3, Z3
	VPADDQ Z4, Z3, Z3
	VPSRAVQ 320(R8), Z3, Z3
	// odd results into the high dwords, clamp, add the zero point
	VPSLLQ $32, Z3, Z3
	VPBLENDMD Z3, Z1, K2, Z1
	VPMAXSD Z29, Z1, Z1
	VPMINSD Z30, Z1, Z1
	VPADDD Z28, Z1, Z1
	VPMOVDB Z1, K1, (DI)
	ADDQ $16, DI
	ADDQ $64, SI
	ADDQ $512, R8
	SUBQ $16, CX
	DECQ DX
	JNZ loop
	MOVQ BX, DX
	MOVQ R9, R8
	JMP loop

done:
	VZEROUPPER
	RET
