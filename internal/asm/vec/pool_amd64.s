//go:build amd64 && !noasm

#include "textflag.h"

// Even and odd lane indices of a pair of registers (VPERMI2PS tables).
DATA poolEven<>+0(SB)/4, $0
DATA poolEven<>+4(SB)/4, $2
DATA poolEven<>+8(SB)/4, $4
DATA poolEven<>+12(SB)/4, $6
DATA poolEven<>+16(SB)/4, $8
DATA poolEven<>+20(SB)/4, $10
DATA poolEven<>+24(SB)/4, $12
DATA poolEven<>+28(SB)/4, $14
DATA poolEven<>+32(SB)/4, $16
DATA poolEven<>+36(SB)/4, $18
DATA poolEven<>+40(SB)/4, $20
DATA poolEven<>+44(SB)/4, $22
DATA poolEven<>+48(SB)/4, $24
DATA poolEven<>+52(SB)/4, $26
DATA poolEven<>+56(SB)/4, $28
DATA poolEven<>+60(SB)/4, $30
GLOBL poolEven<>(SB), RODATA|NOPTR, $64

DATA poolOdd<>+0(SB)/4, $1
DATA poolOdd<>+4(SB)/4, $3
DATA poolOdd<>+8(SB)/4, $5
DATA poolOdd<>+12(SB)/4, $7
DATA poolOdd<>+16(SB)/4, $9
DATA poolOdd<>+20(SB)/4, $11
DATA poolOdd<>+24(SB)/4, $13
DATA poolOdd<>+28(SB)/4, $15
DATA poolOdd<>+32(SB)/4, $17
DATA poolOdd<>+36(SB)/4, $19
DATA poolOdd<>+40(SB)/4, $21
DATA poolOdd<>+44(SB)/4, $23
DATA poolOdd<>+48(SB)/4, $25
DATA poolOdd<>+52(SB)/4, $27
DATA poolOdd<>+56(SB)/4, $29
DATA poolOdd<>+60(SB)/4, $31
GLOBL poolOdd<>(SB), RODATA|NOPTR, $64

// -MaxFloat32, the start of every max.
DATA poolLowest<>+0(SB)/4, $0xff7fffff
GLOBL poolLowest<>(SB), RODATA|NOPTR, $4

// NANMAX(a, b, k, dst): dst = max(a, b), NaN if either is NaN (k scratch).
#define NANMAX512(a, b, k, dst) \
	VMAXPS b, a, dst \
	VCMPPS $3, b, a, k \
	VADDPS b, a, k, dst

// func maxPool2AVX512(dst, src []float32, rows, w int)
TEXT ·maxPool2AVX512(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ w+56(FP), R8
	VMOVUPS poolEven<>(SB), Z20
	VMOVUPS poolOdd<>(SB), Z21
	VBROADCASTSS poolLowest<>(SB), Z22
	MOVQ R8, DX
	SHRQ $1, DX          // DX = ow
	MOVQ DX, R11
	ANDQ $15, R11        // R11 = rem (outputs in the masked tail)
	// K5: rem output lanes; K1, K4: the 2*rem input lanes, low and high.
	MOVQ R11, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K5
	LEAQ (R11)(R11*1), CX // 2*rem
	MOVQ $0xffff, AX
	CMPQ CX, $16
	JAE  lowfull
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
lowfull:
	KMOVW AX, K1
	XORQ AX, AX
	SUBQ $16, CX
	JBE  highset
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
highset:
	KMOVW AX, K4
	MOVQ rows+48(FP), CX
	SHLQ $2, R8          // R8 = w*4 (row bytes)
	MOVQ DX, R9
	SHRQ $4, R9          // R9 = full 16-output chunks per row
row:
	TESTQ CX, CX
	JE   done
	LEAQ (SI)(R8*1), R10 // second row
	XORQ BX, BX          // input byte offset
	XORQ AX, AX          // output byte offset
	MOVQ R9, R12
chunk:
	TESTQ R12, R12
	JE   tail
	VMOVUPS (SI)(BX*1), Z0
	VMOVUPS 64(SI)(BX*1), Z1
	VMOVUPS (R10)(BX*1), Z2
	VMOVUPS 64(R10)(BX*1), Z3
	NANMAX512(Z0, Z2, K2, Z4)
	NANMAX512(Z1, Z3, K3, Z5)
	VMOVAPS Z20, Z6
	VPERMI2PS Z5, Z4, Z6
	VMOVAPS Z21, Z7
	VPERMI2PS Z5, Z4, Z7
	NANMAX512(Z6, Z7, K2, Z8)
	VMAXPS Z8, Z22, Z8
	VMOVUPS Z8, (DI)(AX*1)
	ADDQ $128, BX
	ADDQ $64, AX
	DECQ R12
	JMP  chunk
tail:
	TESTQ R11, R11
	JE   nextrow
	VMOVUPS.Z (SI)(BX*1), K1, Z0
	VMOVUPS.Z 64(SI)(BX*1), K4, Z1
	VMOVUPS.Z (R10)(BX*1), K1, Z2
	VMOVUPS.Z 64(R10)(BX*1), K4, Z3
	NANMAX512(Z0, Z2, K2, Z4)
	NANMAX512(Z1, Z3, K3, Z5)
	VMOVAPS Z20, Z6
	VPERMI2PS Z5, Z4, Z6
	VMOVAPS Z21, Z7
	VPERMI2PS Z5, Z4, Z7
	NANMAX512(Z6, Z7, K2, Z8)
	VMAXPS Z8, Z22, Z8
	VMOVUPS Z8, K5, (DI)(AX*1)
nextrow:
	LEAQ (SI)(R8*2), SI  // next pair of input rows
	LEAQ (DI)(DX*4), DI  // next output row
	DECQ CX
	JMP  row
done:
	VZEROUPPER
	RET

// NANMAX256(a, b, m, dst): dst = max(a, b), NaN if either is NaN (m
// scratch).
#define NANMAX256(a, b, m, dst) \
	VMAXPS b, a, dst \
	VCMPPS $3, b, a, m \
	VADDPS b, a, b \
	VBLENDVPS m, b, dst, dst

// func maxPool2AVX2(dst, src []float32, rows, w int)
TEXT ·maxPool2AVX2(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ rows+48(FP), CX
	MOVQ w+56(FP), R8
	VBROADCASTSS poolLowest<>(SB), Y15
	MOVQ R8, DX
	SHRQ $1, DX          // DX = ow
	SHLQ $2, R8          // R8 = row bytes
	MOVQ DX, R9
	SHRQ $3, R9          // full 8-output chunks per row
row2:
	TESTQ CX, CX
	JE   done2
	LEAQ (SI)(R8*1), R10
	XORQ BX, BX
	XORQ AX, AX
	MOVQ R9, R12
chunk2:
	TESTQ R12, R12
	JE   nextrow2
	VMOVUPS (SI)(BX*1), Y0
	VMOVUPS 32(SI)(BX*1), Y1
	VMOVUPS (R10)(BX*1), Y2
	VMOVUPS 32(R10)(BX*1), Y3
	NANMAX256(Y0, Y2, Y9, Y4)
	NANMAX256(Y1, Y3, Y9, Y5)
	VSHUFPS $0x88, Y5, Y4, Y6 // evens, in 128-bit lane order
	VSHUFPS $0xdd, Y5, Y4, Y7 // odds
	NANMAX256(Y6, Y7, Y9, Y8)
	VPERMPD $0xd8, Y8, Y8     // qwords 0, 2, 1, 3: outputs in order
	VMAXPS Y8, Y15, Y8
	VMOVUPS Y8, (DI)(AX*1)
	ADDQ $64, BX
	ADDQ $32, AX
	DECQ R12
	JMP  chunk2
nextrow2:
	LEAQ (SI)(R8*2), SI
	LEAQ (DI)(DX*4), DI
	DECQ CX
	JMP  row2
done2:
	VZEROUPPER
	RET
