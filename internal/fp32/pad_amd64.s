//go:build amd64 && !noasm

#include "textflag.h"

// Even lane indices 0, 2, ..., 30 for VPERMT2PS.
DATA ·evenIdx+0(SB)/4, $0
DATA ·evenIdx+4(SB)/4, $2
DATA ·evenIdx+8(SB)/4, $4
DATA ·evenIdx+12(SB)/4, $6
DATA ·evenIdx+16(SB)/4, $8
DATA ·evenIdx+20(SB)/4, $10
DATA ·evenIdx+24(SB)/4, $12
DATA ·evenIdx+28(SB)/4, $14
DATA ·evenIdx+32(SB)/4, $16
DATA ·evenIdx+36(SB)/4, $18
DATA ·evenIdx+40(SB)/4, $20
DATA ·evenIdx+44(SB)/4, $22
DATA ·evenIdx+48(SB)/4, $24
DATA ·evenIdx+52(SB)/4, $26
DATA ·evenIdx+56(SB)/4, $28
DATA ·evenIdx+60(SB)/4, $30
GLOBL ·evenIdx(SB), RODATA|NOPTR, $64

// func gatherRowsAVX512(dst *float32, dp int, src *float32, sp, rows, n, stride int)
// For r < rows, j < n: dst[r*dp+j] = src[r*sp+j*stride], stride 1 or 2.
TEXT ·gatherRowsAVX512(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ dp+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ sp+24(FP), R9
	SHLQ $2, R9
	MOVQ rows+32(FP), R10
	MOVQ n+40(FP), R11
	MOVQ stride+48(FP), AX
	CMPQ AX, $2
	JEQ  s2

s1row:
	TESTQ R10, R10
	JEQ   done
	XORQ  CX, CX          // j
s1vec:
	MOVQ R11, BX
	SUBQ CX, BX           // left
	JLE  s1next
	CMPQ BX, $16
	JLT  s1tail
	VMOVUPS (SI)(CX*4), Z0
	VMOVUPS Z0, (DI)(CX*4)
	ADDQ    $16, CX
	JMP     s1vec
s1tail:
	MOVQ BX, R12
	MOVQ CX, R13
	MOVQ R12, CX
	MOVL $1, BX
	SHLL CX, BX
	DECL BX
	KMOVW BX, K1
	MOVQ R13, CX
	VMOVUPS.Z (SI)(CX*4), K1, Z0
	VMOVUPS   Z0, K1, (DI)(CX*4)
s1next:
	ADDQ R9, SI
	ADDQ R8, DI
	DECQ R10
	JMP  s1row

s2:
	VMOVDQU32 ·evenIdx(SB), Z7
s2row:
	TESTQ R10, R10
	JEQ   done
	XORQ  CX, CX          // j (outputs)
s2vec:
	MOVQ R11, BX
	SUBQ CX, BX           // outputs left
	JLE  s2next
	CMPQ BX, $16
	JLT  s2tail
	LEAQ (SI)(CX*8), R12  // src + 2j floats
	VMOVUPS (R12), Z0
	// the second vector needs 15 lanes (up to 2j+30)
	MOVL $0x7fff, BX
	KMOVW BX, K2
	VMOVUPS.Z 64(R12), K2, Z1
	VPERMT2PS Z1, Z7, Z0
	VMOVUPS Z0, (DI)(CX*4)
	ADDQ    $16, CX
	JMP     s2vec
s2tail:
	// m = BX outputs (1..15) need 2m-1 inputs.
	LEAQ -1(BX)(BX*1), R13 // 2m-1
	MOVQ CX, R12
	MOVQ R13, CX
	CMPQ CX, $16
	JLE  s2t1
	MOVQ $16, CX
s2t1:
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2          // lanes of the first load
	SUBQ CX, R13          // lanes of the second load (0..13)
	MOVQ R13, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K3
	MOVQ BX, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1          // output lanes
	MOVQ R12, CX
	LEAQ (SI)(CX*8), R12
	VMOVUPS.Z (R12), K2, Z0
	VMOVUPS.Z 64(R12), K3, Z1
	VPERMT2PS Z1, Z7, Z0
	VMOVUPS Z0, K1, (DI)(CX*4)
s2next:
	ADDQ R9, SI
	ADDQ R8, DI
	DECQ R10
	JMP  s2row

done:
	VZEROUPPER
	RET

// Lane index vector 0..15.
DATA ·laneIdx+0(SB)/4, $0
DATA ·laneIdx+4(SB)/4, $1
DATA ·laneIdx+8(SB)/4, $2
DATA ·laneIdx+12(SB)/4, $3
DATA ·laneIdx+16(SB)/4, $4
DATA ·laneIdx+20(SB)/4, $5
DATA ·laneIdx+24(SB)/4, $6
DATA ·laneIdx+28(SB)/4, $7
DATA ·laneIdx+32(SB)/4, $8
DATA ·laneIdx+36(SB)/4, $9
DATA ·laneIdx+40(SB)/4, $10
DATA ·laneIdx+44(SB)/4, $11
DATA ·laneIdx+48(SB)/4, $12
DATA ·laneIdx+52(SB)/4, $13
DATA ·laneIdx+56(SB)/4, $14
DATA ·laneIdx+60(SB)/4, $15
GLOBL ·laneIdx(SB), RODATA|NOPTR, $64

// func transposeAVX512(y *float32, ldy int, ct *float32, ldc, rows, n int)
// For i < rows, m < n: y[m*ldy+i] = ct[i*ldc+m] (scatter stores).
TEXT ·transposeAVX512(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ ldy+8(FP), R8
	MOVQ ct+16(FP), SI
	MOVQ ldc+24(FP), R9
	SHLQ $2, R9
	MOVQ rows+32(FP), R10
	MOVQ n+40(FP), R11
	// Z1 = lane*ldy (element offsets of 16 consecutive rows of y)
	VMOVDQU32    ·laneIdx(SB), Z1
	VPBROADCASTD R8, Z2
	VPMULLD      Z2, Z1, Z1
	MOVQ R8, R12
	SHLQ $6, R12          // 16*ldy*4: bytes of y per 16 columns of ct
	XORQ CX, CX           // m0
tcol:
	MOVQ R11, BX
	SUBQ CX, BX           // columns left
	JLE  tdone
	CMPQ BX, $16
	JLT  tmask
	MOVL $0xffff, AX
	JMP  tgo
tmask:
	MOVQ CX, R13
	MOVQ BX, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	MOVQ R13, CX
tgo:
	// R13 = &ct[m0], R14 = &y[m0*ldy]
	LEAQ (SI)(CX*4), R13
	MOVQ DI, R14
	XORQ DX, DX           // i
trow:
	CMPQ DX, R10
	JGE  trownext
	KMOVW AX, K1
	VMOVUPS.Z (R13), K1, Z0
	KMOVW AX, K1
	VSCATTERDPS Z0, K1, (R14)(Z1*4)
	ADDQ R9, R13
	ADDQ $4, R14
	INCQ DX
	JMP  trow
trownext:
	ADDQ R12, DI
	ADDQ $16, CX
	JMP  tcol
tdone:
	VZEROUPPER
	RET
