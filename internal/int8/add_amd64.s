//go:build amd64 && !noasm

#include "textflag.h"

// func addBytesF32AVX512(y, a, b *byte, n int, signed int, za, zb int32, ra, rb, zc, lo, hi float64, ra32, rb32, thr, zc32, lo32, hi32 float32)
//
// For j < n (a multiple of 16): y[j] = clamp(roundeven(float64(a[j]-za)*ra
// + float64(b[j]-zb)*rb) + zc, lo, hi), bytes read as uint8 (signed == 0)
// or int8, computed in float32 lanes where that is exact: v =
// float32(a-za)*ra32 + float32(b-zb)*rb32 (one FMA) is within the caller's
// bound of the float64 sum, so rounding v to the nearest integer gives the
// float64 result unless v lies within that bound of a half-integer
// (|v - round(v)| > thr = 0.5 - bound); such a group of 16 is redone in
// float64 lanes, each product and the sum rounded to float64 as the Go
// code does (no fused multiply-add). thr < 0 sends every group to the
// float64 lanes.
TEXT ·addBytesF32AVX512(SB), NOSPLIT, $0-112
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ signed+32(FP), R8
	MOVL za+40(FP), AX
	VPBROADCASTD AX, Z20
	MOVL zb+44(FP), AX
	VPBROADCASTD AX, Z21
	VBROADCASTSD ra+48(FP), Z22
	VBROADCASTSD rb+56(FP), Z23
	VBROADCASTSD zc+64(FP), Z24
	VBROADCASTSD lo+72(FP), Z25
	VBROADCASTSD hi+80(FP), Z26
	VBROADCASTSS ra32+88(FP), Z16
	VBROADCASTSS rb32+92(FP), Z17
	VBROADCASTSS thr+96(FP), Z18
	VBROADCASTSS zc32+100(FP), Z12
	VBROADCASTSS lo32+104(FP), Z13
	VBROADCASTSS hi32+108(FP), Z14
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z19
	XORQ BX, BX

floop:
	CMPQ BX, CX
	JGE fdone
	TESTQ R8, R8
	JNE fsigned
	VPMOVZXBD (SI)(BX*1), Z0
	VPMOVZXBD (DX)(BX*1), Z1
	JMP fbody

fsigned:
	VPMOVSXBD (SI)(BX*1), Z0
	VPMOVSXBD (DX)(BX*1), Z1

fbody:
	VPSUBD Z20, Z0, Z0
	VPSUBD Z21, Z1, Z1
	VCVTDQ2PS Z0, Z2
	VCVTDQ2PS Z1, Z3
	VMULPS Z17, Z3, Z3
	VFMADD231PS Z16, Z2, Z3
	VRNDSCALEPS $0, Z3, Z4
	VSUBPS Z4, Z3, Z5
	VPANDD Z19, Z5, Z5
	VCMPPS $0x1e, Z18, Z5, K2
	KORTESTW K2, K2
	JNE fslow
	VADDPS Z12, Z4, Z4
	VMAXPS Z13, Z4, Z4
	VMINPS Z14, Z4, Z4
	VCVTPS2DQ Z4, Z4
	VPMOVDB Z4, (DI)(BX*1)
	ADDQ $16, BX
	JMP floop

fslow:
	VCVTDQ2PD Y0, Z2
	VEXTRACTI64X4 $1, Z0, Y3
	VCVTDQ2PD Y3, Z3
	VCVTDQ2PD Y1, Z4
	VEXTRACTI64X4 $1, Z1, Y5
	VCVTDQ2PD Y5, Z5
	VMULPD Z22, Z2, Z2
	VMULPD Z22, Z3, Z3
	VMULPD Z23, Z4, Z4
	VMULPD Z23, Z5, Z5
	VADDPD Z4, Z2, Z2
	VADDPD Z5, Z3, Z3
	VRNDSCALEPD $0, Z2, Z2
	VRNDSCALEPD $0, Z3, Z3
	VADDPD Z24, Z2, Z2
	VADDPD Z24, Z3, Z3
	VMAXPD Z25, Z2, Z2
	VMAXPD Z25, Z3, Z3
	VMINPD Z26, Z2, Z2
	VMINPD Z26, Z3, Z3
	VCVTTPD2DQ Z2, Y2
	VCVTTPD2DQ Z3, Y3
	VINSERTI64X4 $1, Y3, Z2, Z2
	VPMOVDB Z2, (DI)(BX*1)
	ADDQ $16, BX
	JMP floop

fdone:
	VZEROUPPER
	RET
