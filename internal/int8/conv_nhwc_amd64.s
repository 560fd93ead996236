//go:build amd64 && !noasm

#include "textflag.h"

// func requantConvAVX512(dst *byte, acc *int32, n int, tab *int32, period, check int, zero, lo, hi int32, flo, fhi float32)
//
// For j < n: dst[j] = clamp(round_half_even((acc[j]+add[j]) * mult[j] / 2^shift[j]), lo, hi) + zero
// (the low byte; lo and hi are the clamp bounds minus zero, flo and fhi
// the same as float32), the parameters read from tab: per 16 values 704
// bytes (see reqTab), period steps of 16 values, then tab again from its
// start. Every shift is at least 31 (or the multiplier 0).
//
// Three paths per 16 values, all exact:
//   - float32: f = float32(v) * float32(real), clamped to [flo, fhi]; f is
//     within 2^-12 of v*real whenever that is below 2^10 in magnitude
//     (three roundings of 2^-24), and beyond 2^10 both clamp alike, so
//     VCVTPS2DQ rounds f as v*real would be unless f lies within 2^-11
//     of a half-integer (VREDUCEPS), which sends the vector on;
//   - float64: when every |v| < 2^22 (check == 0: the caller knows it),
//     v * real is exact in float64 and VCVTPD2DQ rounds it half to even;
//   - int64: p = v*mult in 64-bit lanes (even elements directly, odd ones
//     after a 32-bit right shift) rounded as in requantOne; the result
//     fits in 32 bits since the shift is at least 31.
TEXT ·requantConvAVX512(SB), NOSPLIT, $0-68
	MOVQ dst+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ tab+24(FP), R8
	MOVQ period+32(FP), BX
	MOVQ check+40(FP), R10
	MOVL zero+48(FP), AX
	VPBROADCASTD AX, Z28
	MOVL lo+52(FP), AX
	VPBROADCASTD AX, Z29
	MOVL hi+56(FP), AX
	VPBROADCASTD AX, Z30
	MOVL flo+60(FP), AX
	VPBROADCASTD AX, Z25
	MOVL fhi+64(FP), AX
	VPBROADCASTD AX, Z26
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3effc000, AX // 0.5 - 2^-11
	VPBROADCASTD AX, Z23
	MOVQ $1, AX
	VPBROADCASTQ AX, Z31
	MOVL $0x400000, AX
	VPBROADCASTD AX, Z27
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
	// float32, unless a value lies near a rounding tie
	VCVTDQ2PS Z0, Z1
	VMULPS 640(R8), Z1, Z1
	VMAXPS Z25, Z1, Z1
	VMINPS Z26, Z1, Z1
	VREDUCEPS $0, Z1, Z2
	VPANDD Z24, Z2, Z2
	VCMPPS $13, Z23, Z2, K1, K3
	KORTESTW K3, K3
	JNZ wide
	VCVTPS2DQ.RN_SAE Z1, Z1
	VPADDD Z28, Z1, Z1
	JMP bytes

wide:
	TESTQ R10, R10
	JZ float
	VPABSD Z0, Z1
	VPCMPUD $5, Z27, Z1, K3
	KORTESTW K3, K3
	JNZ exact

float:
	// float64: exact products, rounded half to even
	VCVTDQ2PD Y0, Z2
	VEXTRACTI64X4 $1, Z0, Y3
	VCVTDQ2PD Y3, Z3
	VMULPD 512(R8), Z2, Z2
	VMULPD 576(R8), Z3, Z3
	VCVTPD2DQ.RN_SAE Z2, Y1
	VCVTPD2DQ.RN_SAE Z3, Y3
	VINSERTI64X4 $1, Y3, Z1, Z1
	JMP store

exact:
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
	// odd results into the high dwords
	VPSLLQ $32, Z3, Z3
	VPBLENDMD Z3, Z1, K2, Z1

store:
	// clamp, add the zero point, store the low bytes
	VPMAXSD Z29, Z1, Z1
	VPMINSD Z30, Z1, Z1
	VPADDD Z28, Z1, Z1

bytes:
	// A register VPMOVDB then a plain store (masked stores only for the
	// tail: VPMOVDB to memory is slow on some cores).
	VPMOVDB Z1, X1
	CMPQ CX, $16
	JLT tail
	VMOVDQU X1, (DI)
	JMP next

tail:
	VMOVDQU8 X1, K1, (DI)

next:
	ADDQ $16, DI
	ADDQ $64, SI
	ADDQ $704, R8
	SUBQ $16, CX
	DECQ DX
	JNZ loop
	MOVQ BX, DX
	MOVQ R9, R8
	JMP loop

done:
	VZEROUPPER
	RET
