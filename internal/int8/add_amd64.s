//go:build amd64 && !noasm

#include "textflag.h"

// func addBytesAVX512(y, a, b *byte, n int, signed int, za, zb int32, ra, rb, zc, lo, hi float64)
//
// For j < n (a multiple of 16): y[j] = clamp(roundeven(float64(a[j]-za)*ra
// + float64(b[j]-zb)*rb) + zc, lo, hi), bytes read as uint8 (signed == 0)
// or int8. Each product and the sum are rounded to float64 exactly as the
// Go code does (no fused multiply-add).
TEXT ·addBytesAVX512(SB), NOSPLIT, $0-88
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
	XORQ BX, BX
	TESTQ R8, R8
	JNE signed

uloop:
	CMPQ BX, CX
	JGE done
	VPMOVZXBD (SI)(BX*1), Z0
	VPMOVZXBD (DX)(BX*1), Z1
	JMP body

signed:
	CMPQ BX, CX
	JGE done
	VPMOVSXBD (SI)(BX*1), Z0
	VPMOVSXBD (DX)(BX*1), Z1

body:
	VPSUBD Z20, Z0, Z0
	VPSUBD Z21, Z1, Z1
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
	TESTQ R8, R8
	JNE signed
	JMP uloop

done:
	VZEROUPPER
	RET
