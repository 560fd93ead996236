//go:build amd64 && !noasm

#include "textflag.h"

// permGroup reorders the dwords of VPACKUSWB(VPACKSSDW(v0, v1),
// VPACKSSDW(v2, v3)) (lane L: v0..v3's values 4L..4L+3) into v0, v1, v2, v3.
DATA permGroup<>+0(SB)/4, $0
DATA permGroup<>+4(SB)/4, $4
DATA permGroup<>+8(SB)/4, $8
DATA permGroup<>+12(SB)/4, $12
DATA permGroup<>+16(SB)/4, $1
DATA permGroup<>+20(SB)/4, $5
DATA permGroup<>+24(SB)/4, $9
DATA permGroup<>+28(SB)/4, $13
DATA permGroup<>+32(SB)/4, $2
DATA permGroup<>+36(SB)/4, $6
DATA permGroup<>+40(SB)/4, $10
DATA permGroup<>+44(SB)/4, $14
DATA permGroup<>+48(SB)/4, $3
DATA permGroup<>+52(SB)/4, $7
DATA permGroup<>+56(SB)/4, $11
DATA permGroup<>+60(SB)/4, $15
GLOBL permGroup<>(SB), RODATA|NOPTR, $64

// func requantConvAVX512(dst *byte, acc *int32, n int, tab *int32, period, check int, zero, lo, hi int32, flo, fhi, fzero, falo, fahi float32, signed int)
//
// For j < n: dst[j] = clamp(round_half_even((acc[j]+add[j]) * mult[j] / 2^shift[j]), lo, hi) + zero
// (the low byte; lo and hi are the clamp bounds minus zero, flo and fhi
// the same as float32, falo, fahi and fzero the bounds and the zero point
// plus 1/2 + 2^-11 as float32), the parameters read from tab: per 16 values 704
// bytes (see reqTab), period (>= 4) steps of 16 values, then tab again
// from its start; the table repeats its first 3 steps after the period.
// Every shift is at least 31 (or the multiplier 0).
//
// Groups of 64 values (four steps, read across the period's end from the
// repeated steps) first try the float32 path with the zero point and a
// bias c = 1/2 + 2^-11 added in the same FMA: g = float32(v)*float32(real)
// + fzero, where fzero = zero + c, clamped to [falo, fahi] (the bounds
// plus c). g is within 2^-12 of the exact v*real + zero + c whenever
// v*real is below 2^10 in magnitude (2^-24 relative for float32(v) and for
// the multiplier, 2^-13 for the FMA's rounding below 2^11; beyond, both
// clamp alike), so floor(g) (VCVTPS2DQ
// rounding down) is the rounded value unless g lies within 2^-10 above an
// integer (VREDUCEPS rounding down: g - floor(g) < 2^-10; this window
// holds every exact tie, which lands at distance c - 1/2 = 2^-11). When
// no value of the four vectors is in it, they are packed to bytes with
// VPACKSSDW and VPACKUSWB (signed == 0) or VPACKSSWB, reordered with
// VPERMD and stored at once; otherwise the group's four steps run one at
// a time as below.
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
TEXT ·requantConvAVX512(SB), NOSPLIT, $0-88
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
	MOVL fzero+68(FP), AX
	VPBROADCASTD AX, Z22
	MOVL falo+72(FP), AX
	VPBROADCASTD AX, Z21
	MOVL fahi+76(FP), AX
	VPBROADCASTD AX, Z20
	MOVQ signed+80(FP), R12
	VMOVDQU32 permGroup<>(SB), Z19
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3a800000, AX // 2^-10
	VPBROADCASTD AX, Z18
	MOVL $0x3effc000, AX // 0.5 - 2^-11
	VPBROADCASTD AX, Z23
	MOVQ $1, AX
	VPBROADCASTQ AX, Z31
	MOVL $0x400000, AX
	VPBROADCASTD AX, Z27
	MOVQ R8, R9
	MOVQ BX, DX
	IMUL3Q $704, BX, R13 // bytes of a period
	XORQ R11, R11        // steps left to run one at a time
	MOVQ $0xffff, AX
	KMOVW AX, K1
	MOVQ $0xaaaa, AX
	KMOVW AX, K2

loop:
	CMPQ CX, $0
	JLE done
	TESTQ R11, R11
	JNZ forced
	CMPQ CX, $64
	JLT single

	// a group of four steps
	VMOVDQU32 (SI), Z0
	VMOVDQU32 64(SI), Z1
	VMOVDQU32 128(SI), Z2
	VMOVDQU32 192(SI), Z3
	VPADDD (R8), Z0, Z0
	VPADDD 704(R8), Z1, Z1
	VPADDD 1408(R8), Z2, Z2
	VPADDD 2112(R8), Z3, Z3
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VCVTDQ2PS Z3, Z3
	VFMADD132PS 640(R8), Z22, Z0
	VFMADD132PS 1344(R8), Z22, Z1
	VFMADD132PS 2048(R8), Z22, Z2
	VFMADD132PS 2752(R8), Z22, Z3
	VMAXPS Z21, Z0, Z0
	VMAXPS Z21, Z1, Z1
	VMAXPS Z21, Z2, Z2
	VMAXPS Z21, Z3, Z3
	VMINPS Z20, Z0, Z0
	VMINPS Z20, Z1, Z1
	VMINPS Z20, Z2, Z2
	VMINPS Z20, Z3, Z3
	VREDUCEPS $1, Z0, Z4
	VREDUCEPS $1, Z1, Z5
	VREDUCEPS $1, Z2, Z6
	VREDUCEPS $1, Z3, Z7
	VCMPPS $1, Z18, Z4, K3
	VCMPPS $1, Z18, Z5, K4
	VCMPPS $1, Z18, Z6, K5
	VCMPPS $1, Z18, Z7, K6
	KORW K4, K3, K3
	KORW K6, K5, K5
	KORTESTW K5, K3
	JNZ ties
	VCVTPS2DQ.RD_SAE Z0, Z0
	VCVTPS2DQ.RD_SAE Z1, Z1
	VCVTPS2DQ.RD_SAE Z2, Z2
	VCVTPS2DQ.RD_SAE Z3, Z3
	VPACKSSDW Z1, Z0, Z0
	VPACKSSDW Z3, Z2, Z2
	TESTQ R12, R12
	JNZ packSigned
	VPACKUSWB Z2, Z0, Z0
	JMP packed

packSigned:
	VPACKSSWB Z2, Z0, Z0

packed:
	VPERMD Z0, Z19, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ $64, DI
	ADDQ $256, SI
	ADDQ $2816, R8
	SUBQ $64, CX
	SUBQ $4, DX
	JG loop
	ADDQ BX, DX
	SUBQ R13, R8
	JMP loop

ties:
	MOVQ $4, R11
	JMP loop

forced:
	DECQ R11

single:
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
	JG loop
	ADDQ BX, DX
	SUBQ R13, R8
	JMP loop

done:
	VZEROUPPER
	RET

// interleave3 index tables: for output chunk k (bytes 64k..64k+63 of 64
// pixels of 3 channels), byte j is pixel p = (64k+j)/3, channel (64k+j)%3;
// idx3a<>+64k holds p for channel 0 and 64+p for channel 1 (VPERMI2B over
// channels 0 and 1), idx3b<>+64k holds p (VPERMB of channel 2, merged under
// the channel-2 mask).
DATA idx3a<>+0(SB)/8, $0x4202004101004000
DATA idx3a<>+8(SB)/8, $0x0500440400430300
DATA idx3a<>+16(SB)/8, $0x0047070046060045
DATA idx3a<>+24(SB)/8, $0x4a0a004909004808
DATA idx3a<>+32(SB)/8, $0x0d004c0c004b0b00
DATA idx3a<>+40(SB)/8, $0x004f0f004e0e004d
DATA idx3a<>+48(SB)/8, $0x5212005111005010
DATA idx3a<>+56(SB)/8, $0x1500541400531300
DATA idx3a<>+64(SB)/8, $0x0057170056160055
DATA idx3a<>+72(SB)/8, $0x5a1a005919005818
DATA idx3a<>+80(SB)/8, $0x1d005c1c005b1b00
DATA idx3a<>+88(SB)/8, $0x005f1f005e1e005d
DATA idx3a<>+96(SB)/8, $0x6222006121006020
DATA idx3a<>+104(SB)/8, $0x2500642400632300
DATA idx3a<>+112(SB)/8, $0x0067270066260065
DATA idx3a<>+120(SB)/8, $0x6a2a006929006828
DATA idx3a<>+128(SB)/8, $0x2d006c2c006b2b00
DATA idx3a<>+136(SB)/8, $0x006f2f006e2e006d
DATA idx3a<>+144(SB)/8, $0x7232007131007030
DATA idx3a<>+152(SB)/8, $0x3500743400733300
DATA idx3a<>+160(SB)/8, $0x0077370076360075
DATA idx3a<>+168(SB)/8, $0x7a3a007939007838
DATA idx3a<>+176(SB)/8, $0x3d007c3c007b3b00
DATA idx3a<>+184(SB)/8, $0x007f3f007e3e007d
GLOBL idx3a<>(SB), RODATA|NOPTR, $192
DATA idx3b<>+0(SB)/8, $0x0000010000000000
DATA idx3b<>+8(SB)/8, $0x0004000003000002
DATA idx3b<>+16(SB)/8, $0x0700000600000500
DATA idx3b<>+24(SB)/8, $0x0000090000080000
DATA idx3b<>+32(SB)/8, $0x000c00000b00000a
DATA idx3b<>+40(SB)/8, $0x0f00000e00000d00
DATA idx3b<>+48(SB)/8, $0x0000110000100000
DATA idx3b<>+56(SB)/8, $0x0014000013000012
DATA idx3b<>+64(SB)/8, $0x1700001600001500
DATA idx3b<>+72(SB)/8, $0x0000190000180000
DATA idx3b<>+80(SB)/8, $0x001c00001b00001a
DATA idx3b<>+88(SB)/8, $0x1f00001e00001d00
DATA idx3b<>+96(SB)/8, $0x0000210000200000
DATA idx3b<>+104(SB)/8, $0x0024000023000022
DATA idx3b<>+112(SB)/8, $0x2700002600002500
DATA idx3b<>+120(SB)/8, $0x0000290000280000
DATA idx3b<>+128(SB)/8, $0x002c00002b00002a
DATA idx3b<>+136(SB)/8, $0x2f00002e00002d00
DATA idx3b<>+144(SB)/8, $0x0000310000300000
DATA idx3b<>+152(SB)/8, $0x0034000033000032
DATA idx3b<>+160(SB)/8, $0x3700003600003500
DATA idx3b<>+168(SB)/8, $0x0000390000380000
DATA idx3b<>+176(SB)/8, $0x003c00003b00003a
DATA idx3b<>+184(SB)/8, $0x3f00003e00003d00
GLOBL idx3b<>(SB), RODATA|NOPTR, $192

// func interleave3VBMI(dst, x0, x1, x2 *byte, n int, flip uint64, lm, s0, s1, s2 uint64)
//
// For p < n: dst[3p+c] = xc[p] ^ flip (three channel rows of an NCHW
// image as n pixels of 3 bytes), 64 pixels per step with AVX-512 VBMI
// byte permutes; the last n%64 pixels are read under the byte mask lm and
// their three 64-byte chunks stored under s0, s1 and s2.
TEXT ·interleave3VBMI(SB), NOSPLIT, $0-80
	MOVQ dst+0(FP), DI
	MOVQ x0+8(FP), R8
	MOVQ x1+16(FP), R9
	MOVQ x2+24(FP), R10
	MOVQ n+32(FP), CX
	MOVQ flip+40(FP), AX
	VPBROADCASTB AX, Z31
	VMOVDQU64 idx3a<>+0(SB), Z20
	VMOVDQU64 idx3a<>+64(SB), Z21
	VMOVDQU64 idx3a<>+128(SB), Z22
	VMOVDQU64 idx3b<>+0(SB), Z23
	VMOVDQU64 idx3b<>+64(SB), Z24
	VMOVDQU64 idx3b<>+128(SB), Z25
	MOVQ $0x4924924924924924, AX
	KMOVQ AX, K1
	MOVQ $0x2492492492492492, AX
	KMOVQ AX, K2
	MOVQ $0x9249249249249249, AX
	KMOVQ AX, K3

i3loop:
	CMPQ CX, $64
	JLT i3done
	VPXORQ (R8), Z31, Z0
	VPXORQ (R9), Z31, Z1
	VPXORQ (R10), Z31, Z2
	VMOVDQA64 Z20, Z3
	VPERMI2B Z1, Z0, Z3
	VPERMB Z2, Z23, K1, Z3
	VMOVDQU64 Z3, (DI)
	VMOVDQA64 Z21, Z4
	VPERMI2B Z1, Z0, Z4
	VPERMB Z2, Z24, K2, Z4
	VMOVDQU64 Z4, 64(DI)
	VMOVDQA64 Z22, Z5
	VPERMI2B Z1, Z0, Z5
	VPERMB Z2, Z25, K3, Z5
	VMOVDQU64 Z5, 128(DI)
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $192, DI
	SUBQ $64, CX
	JMP i3loop

i3done:
	TESTQ CX, CX
	JZ i3ret
	KMOVQ lm+48(FP), K4
	VMOVDQU8.Z (R8), K4, Z0
	VMOVDQU8.Z (R9), K4, Z1
	VMOVDQU8.Z (R10), K4, Z2
	VPXORQ Z0, Z31, Z0
	VPXORQ Z1, Z31, Z1
	VPXORQ Z2, Z31, Z2
	KMOVQ s0+56(FP), K5
	VMOVDQA64 Z20, Z3
	VPERMI2B Z1, Z0, Z3
	VPERMB Z2, Z23, K1, Z3
	VMOVDQU8 Z3, K5, (DI)
	KMOVQ s1+64(FP), K5
	VMOVDQA64 Z21, Z4
	VPERMI2B Z1, Z0, Z4
	VPERMB Z2, Z24, K2, Z4
	VMOVDQU8 Z4, K5, 64(DI)
	KMOVQ s2+72(FP), K5
	VMOVDQA64 Z22, Z5
	VPERMI2B Z1, Z0, Z5
	VPERMB Z2, Z25, K3, Z5
	VMOVDQU8 Z5, K5, 128(DI)

i3ret:
	VZEROUPPER
	RET
