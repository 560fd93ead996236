//go:build amd64 && !noasm

#include "textflag.h"

// func requantAVX512(dst *byte, acc *int32, add *int32, astep int, mult *int32, shift *int32, mstep int, n int, zero int32, lo int64, hi int64, period int)
//
// For j < n: dst[j] = clamp(round_half_even((acc[j]+add[j]) * mult[j] / 2^shift[j]), lo, hi) + zero
// (the low byte). lo and hi are the clamp bounds minus zero. add, mult and
// shift advance by astep / mstep bytes per 16 elements (0: the same 16
// values again) and return to their start every period steps (0: never),
// so rows of 16*period channels can be requantized in one call. Products are formed in 64-bit lanes: even elements with
// VPMULDQ directly, odd ones after a 32-bit right shift.
TEXT ·requantAVX512(SB), NOSPLIT, $0-96
	MOVQ dst+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ add+16(FP), R8
	MOVQ astep+24(FP), R9
	MOVQ mult+32(FP), R10
	MOVQ shift+40(FP), R11
	MOVQ mstep+48(FP), R12
	MOVQ n+56(FP), CX
	MOVL zero+64(FP), AX
	VPBROADCASTD AX, Z28
	MOVQ lo+72(FP), AX
	VPBROADCASTQ AX, Z30
	MOVQ hi+80(FP), AX
	VPBROADCASTQ AX, Z29
	MOVQ $1, AX
	VPBROADCASTQ AX, Z31
	MOVQ $0xffffffff, AX
	VPBROADCASTQ AX, Z27
	MOVQ period+88(FP), BX
	MOVQ BX, DX
	MOVQ R8, R13
	MOVQ R10, R14
	MOVQ R11, R15
	MOVQ $0xffff, AX
	KMOVW AX, K1

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
	VMOVDQU32.Z (R8), K1, Z9
	VPADDD Z9, Z0, Z0
	VMOVDQU32.Z (R10), K1, Z1
	VMOVDQU32.Z (R11), K1, Z2
	// even lanes
	VPMULDQ Z1, Z0, Z3
	VPANDQ Z27, Z2, Z5
	VPSRAVQ Z5, Z3, Z7
	VPANDQ Z31, Z7, Z7
	VPSUBQ Z31, Z5, Z8
	VPSLLVQ Z8, Z31, Z8
	VPSUBQ Z31, Z8, Z8
	VPADDQ Z7, Z3, Z3
	VPADDQ Z8, Z3, Z3
	VPSRAVQ Z5, Z3, Z3
	VPMAXSQ Z30, Z3, Z3
	VPMINSQ Z29, Z3, Z3
	// odd lanes
	VPSRLQ $32, Z0, Z4
	VPSRLQ $32, Z1, Z6
	VPMULDQ Z6, Z4, Z4
	VPSRLQ $32, Z2, Z6
	VPSRAVQ Z6, Z4, Z7
	VPANDQ Z31, Z7, Z7
	VPSUBQ Z31, Z6, Z8
	VPSLLVQ Z8, Z31, Z8
	VPSUBQ Z31, Z8, Z8
	VPADDQ Z7, Z4, Z4
	VPADDQ Z8, Z4, Z4
	VPSRAVQ Z6, Z4, Z4
	VPMAXSQ Z30, Z4, Z4
	VPMINSQ Z29, Z4, Z4
	// interleave back into 32-bit lanes
	VPANDQ Z27, Z3, Z3
	VPSLLQ $32, Z4, Z4
	VPORQ Z4, Z3, Z3
	VPADDD Z28, Z3, Z3
	VPMOVDB Z3, K1, (DI)
	ADDQ $16, DI
	ADDQ $64, SI
	ADDQ R9, R8
	ADDQ R12, R10
	ADDQ R12, R11
	SUBQ $16, CX
	CMPQ BX, $0
	JEQ loop
	DECQ DX
	JNZ loop
	MOVQ BX, DX
	MOVQ R13, R8
	MOVQ R14, R10
	MOVQ R15, R11
	JMP loop

done:
	VZEROUPPER
	RET

// func quantizeF32AVX512(dst *byte, x *float32, n int, scale float32, zero float32, lo float32, hi float32)
//
// dst[i] = byte(clamp(round_half_even(x[i] / scale) + zero, lo, hi)), NaN
// giving lo: the float32 division, rounding and clamp of QuantizeLinear.
TEXT ·quantizeF32AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z28
	VBROADCASTSS zero+28(FP), Z29
	VBROADCASTSS lo+32(FP), Z30
	VBROADCASTSS hi+36(FP), Z31
	MOVQ $0xffff, AX
	KMOVW AX, K1

qloop:
	CMPQ CX, $0
	JLE qdone
	CMPQ CX, $16
	JGE qfull
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1

qfull:
	VMOVUPS.Z (SI), K1, Z0
	VDIVPS Z28, Z0, Z0
	VRNDSCALEPS $0, Z0, Z0
	VADDPS Z29, Z0, Z0
	VMAXPS Z30, Z0, Z0
	VMINPS Z31, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPMOVDB Z0, K1, (DI)
	ADDQ $16, DI
	ADDQ $64, SI
	SUBQ $16, CX
	JMP qloop

qdone:
	VZEROUPPER
	RET

// func dequantizeAVX512(dst *float32, x *byte, n int, signed int, zero int32, scale float32)
//
// dst[i] = float32(x[i] - zero) * scale for uint8 (signed == 0) or int8
// values.
TEXT ·dequantizeAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ signed+24(FP), DX
	MOVL zero+32(FP), AX
	VPBROADCASTD AX, Z29
	VBROADCASTSS scale+36(FP), Z28
	MOVQ $0xffff, AX
	KMOVW AX, K1

dloop:
	CMPQ CX, $0
	JLE ddone
	CMPQ CX, $16
	JGE dfull
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1

dfull:
	CMPQ DX, $0
	JNE dsigned
	VPMOVZXBD.Z (SI), K1, Z0
	JMP dconv

dsigned:
	VPMOVSXBD.Z (SI), K1, Z0

dconv:
	VPSUBD Z29, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS Z28, Z0, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, DI
	ADDQ $16, SI
	SUBQ $16, CX
	JMP dloop

ddone:
	VZEROUPPER
	RET
