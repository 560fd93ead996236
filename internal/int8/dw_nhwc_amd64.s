//go:build amd64 && !noasm

#include "textflag.h"

// Byte permutation of two 16-byte rows a, b into 16 dwords (a[i], 0, b[i], 0):
// byte 4i <- a[i], byte 4i+2 <- b[i] (index 64+i: the second table); the odd
// bytes are zeroed by the mask 0x5555555555555555.
DATA dwPerm<>+0(SB)/8, $0x0041000100400000
DATA dwPerm<>+8(SB)/8, $0x0043000300420002
DATA dwPerm<>+16(SB)/8, $0x0045000500440004
DATA dwPerm<>+24(SB)/8, $0x0047000700460006
DATA dwPerm<>+32(SB)/8, $0x0049000900480008
DATA dwPerm<>+40(SB)/8, $0x004b000b004a000a
DATA dwPerm<>+48(SB)/8, $0x004d000d004c000c
DATA dwPerm<>+56(SB)/8, $0x004f000f004e000e
GLOBL dwPerm<>(SB), RODATA|NOPTR, $64

// The even dwords of two zmm registers (VPERMT2D index).
DATA dwEven<>+0(SB)/8, $0x0000000200000000
DATA dwEven<>+8(SB)/8, $0x0000000600000004
DATA dwEven<>+16(SB)/8, $0x0000000a00000008
DATA dwEven<>+24(SB)/8, $0x0000000e0000000c
DATA dwEven<>+32(SB)/8, $0x0000001200000010
DATA dwEven<>+40(SB)/8, $0x0000001600000014
DATA dwEven<>+48(SB)/8, $0x0000001a00000018
DATA dwEven<>+56(SB)/8, $0x0000001e0000001c
GLOBL dwEven<>(SB), RODATA|NOPTR, $64

// One tap pair for one pixel: rows at A and B (16 channels, masked by K1)
// become int16 pairs, multiplied by the weight pairs in Z29 and added to ACC.
#define PIXU(A, B, ACC) \
	VMOVDQU8.Z A, K1, X4; \
	VMOVDQU8.Z B, K1, X5; \
	VPERMT2B.Z Z5, Z30, K2, Z4; \
	VPMADDWD Z29, Z4, Z4; \
	VPADDD Z4, ACC, ACC

// PIXU with VPDPWSSD (AVX-512 VNNI): multiply and add in one instruction.
#define PIXUV(A, B, ACC) \
	VMOVDQU8.Z A, K1, X4; \
	VMOVDQU8.Z B, K1, X5; \
	VPERMT2B.Z Z5, Z30, K2, Z4; \
	VPDPWSSD Z29, Z4, ACC

// PIXS with VPDPWSSD.
#define PIXSV(A, B, ACC) \
	VMOVDQU8.Z A, K1, X4; \
	VMOVDQU8.Z B, K1, X5; \
	VPERMT2B.Z Z5, Z30, K2, Z4; \
	VPXORD Z28, Z4, Z4; \
	VPDPWSSD Z29, Z4, ACC

// PIXU for int8 rows: the sign bits are flipped (x + 128 as uint8).
#define PIXS(A, B, ACC) \
	VMOVDQU8.Z A, K1, X4; \
	VMOVDQU8.Z B, K1, X5; \
	VPERMT2B.Z Z5, Z30, K2, Z4; \
	VPXORD Z28, Z4, Z4; \
	VPMADDWD Z29, Z4, Z4; \
	VPADDD Z4, ACC, ACC

// Requantizes the 16 sums in ACC (channels of the current block; the
// accumulators start at the additions) and stores their bytes at DST
// (masked by K1): converted to float64, one FMA per 8 values forms acc *
// (mult*2^-shift) + 1.5*2^52 (Z20 channels 0-7, Z21 8-15, Z24 the
// constant) exactly and rounds it once, half to even, to an integer whose
// low dword VPERMT2D (Z25) collects (|acc*real| < 2^31: see dwFastReq); the
// result is clamped to the bounds minus the zero point (Z18, Z19) and
// offset by the zero point Z17.
#define REQ(ACC, ACCY, DST) \
	VEXTRACTI64X4 $1, ACC, Y7; \
	VCVTDQ2PD Y7, Z7; \
	VCVTDQ2PD ACCY, Z6; \
	VFMADD213PD Z24, Z21, Z7; \
	VFMADD213PD Z24, Z20, Z6; \
	VPERMT2D Z7, Z25, Z6; \
	VPMAXSD Z18, Z6, Z6; \
	VPMINSD Z19, Z6, Z6; \
	VPADDD Z17, Z6, Z6; \
	VPMOVDB Z6, X6; \
	VMOVDQU8 X6, K1, DST

// func dwNHWCAVX512(out *int32, taps *unsafe.Pointer, segs *int, nseg int, w *int32, pairs int, c int, step int, flags int, rq *dwReq)
//
// Depthwise sums over channels-last rows, for nseg runs of pixels (segment
// i: segs[i] pixels with its own 2*pairs tap pointers, taps + i*2*pairs;
// the runs' outputs follow each other). For pixel p of a run, ch < c:
//
//	acc[p, ch] = sum_{j < pairs} x(tap[2j][p*step + ch]) * lo(w[j][ch]) + x(tap[2j+1][p*step + ch]) * hi(w[j][ch])
//
// where x is the byte zero-extended (flags&1: the byte XOR 0x80; flags&2:
// multiply-add by AVX-512 VNNI VPDPWSSD, the same sums) and w
// holds, per block of 16 channels, pairs x 16 dwords of two int16 weights
// (block b at w + b*pairs*64 bytes). With rq.dst nil the sums are stored at
// out[p*c + ch] (p counting over all runs); otherwise rq.dst[p*c + ch]
// receives the requantized byte of acc + rq.add[ch] (float64 multiplier
// rq.scale[ch], zero point rq.zero, bounds rq.lo/rq.hi minus the zero
// point): Requant.One's bits for the multipliers dwFastReq accepts. Loads
// and stores are masked to c channels; four pixels per step share the
// pointer and weight loads.
TEXT ·dwNHWCAVX512(SB), NOSPLIT, $48-80
	MOVQ taps+8(FP), SI
	MOVQ pairs+40(FP), R11
	SHLQ $4, R11
	MOVQ c+48(FP), R12
	MOVQ step+56(FP), R9
	LEAQ (R9)(R9*2), R10
	VMOVDQU64 dwPerm<>(SB), Z30
	MOVQ $0x5555555555555555, AX
	KMOVQ AX, K2
	MOVL $0x00800080, AX
	VPBROADCASTD AX, Z28
	VMOVDQU64 dwEven<>(SB), Z25
	MOVQ $0x4338000000000000, AX
	VPBROADCASTQ AX, Z24
	MOVQ rq+72(FP), AX
	MOVQ 16(AX), CX
	MOVQ CX, mode-16(SP)
	TESTQ CX, CX
	JNZ obset
	MOVQ out+0(FP), CX

obset:
	MOVQ CX, obase-40(SP)
	MOVQ 24(AX), CX
	VPBROADCASTD CX, Z17
	MOVQ 32(AX), CX
	VPBROADCASTD CX, Z18
	MOVQ 40(AX), CX
	VPBROADCASTD CX, Z19
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
	MOVQ R12, CX
	SUBQ BX, CX
	MOVQ $0xffff, AX
	CMPQ CX, $16
	JGE setmask
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

setmask:
	KMOVW AX, K1
	MOVQ BX, DX
	MOVQ segp-32(SP), AX
	MOVQ (AX), AX
	MOVQ AX, cnt-8(SP)
	MOVQ obase-40(SP), R15
	CMPQ mode-16(SP), $0
	JEQ setint
	ADDQ BX, R15
	MOVQ rq+72(FP), AX
	MOVQ 0(AX), CX
	VMOVUPD (CX)(BX*8), Z20
	VMOVUPD 64(CX)(BX*8), Z21
	MOVQ 8(AX), CX
	VMOVDQU32 (CX)(BX*4), Z26
	JMP pix4

setint:
	LEAQ (R15)(BX*4), R15
	VPXORD Z26, Z26, Z26

pix4:
	CMPQ cnt-8(SP), $4
	JLT pix1
	VMOVDQA32 Z26, Z0
	VMOVDQA32 Z26, Z1
	VMOVDQA32 Z26, Z2
	VMOVDQA32 Z26, Z3
	XORQ AX, AX
	MOVQ flags+64(FP), CX
	CMPQ CX, $1
	JEQ s4pair
	CMPQ CX, $2
	JEQ u4v
	CMPQ CX, $3
	JEQ s4v

u4pair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	ADDQ DX, CX
	ADDQ DX, R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXU((CX), (R13), Z0)
	PIXU((CX)(R9*1), (R13)(R9*1), Z1)
	PIXU((CX)(R9*2), (R13)(R9*2), Z2)
	PIXU((CX)(R10*1), (R13)(R10*1), Z3)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT u4pair
	JMP st4

s4pair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	ADDQ DX, CX
	ADDQ DX, R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXS((CX), (R13), Z0)
	PIXS((CX)(R9*1), (R13)(R9*1), Z1)
	PIXS((CX)(R9*2), (R13)(R9*2), Z2)
	PIXS((CX)(R10*1), (R13)(R10*1), Z3)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT s4pair
	JMP st4


u4v:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	ADDQ DX, CX
	ADDQ DX, R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXUV((CX), (R13), Z0)
	PIXUV((CX)(R9*1), (R13)(R9*1), Z1)
	PIXUV((CX)(R9*2), (R13)(R9*2), Z2)
	PIXUV((CX)(R10*1), (R13)(R10*1), Z3)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT u4v
	JMP st4

s4v:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	ADDQ DX, CX
	ADDQ DX, R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXSV((CX), (R13), Z0)
	PIXSV((CX)(R9*1), (R13)(R9*1), Z1)
	PIXSV((CX)(R9*2), (R13)(R9*2), Z2)
	PIXSV((CX)(R10*1), (R13)(R10*1), Z3)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT s4v
	JMP st4

st4:
	LEAQ (DX)(R9*4), DX
	SUBQ $4, cnt-8(SP)
	CMPQ mode-16(SP), $0
	JEQ st4i
	LEAQ (R12)(R12*2), CX
	REQ(Z0, Y0, (R15))
	REQ(Z1, Y1, (R15)(R12*1))
	REQ(Z2, Y2, (R15)(R12*2))
	REQ(Z3, Y3, (R15)(CX*1))
	LEAQ (R15)(R12*4), R15
	JMP pix4

st4i:
	VMOVDQU32 Z0, K1, (R15)
	VMOVDQU32 Z1, K1, (R15)(R12*4)
	LEAQ (R15)(R12*8), R15
	VMOVDQU32 Z2, K1, (R15)
	VMOVDQU32 Z3, K1, (R15)(R12*4)
	LEAQ (R15)(R12*8), R15
	JMP pix4

pix1:
	CMPQ cnt-8(SP), $0
	JLE next
	VMOVDQA32 Z26, Z0
	XORQ AX, AX
	MOVQ flags+64(FP), CX
	CMPQ CX, $1
	JEQ s1pair
	CMPQ CX, $2
	JEQ u1v
	CMPQ CX, $3
	JEQ s1v

u1pair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXU((CX)(DX*1), (R13)(DX*1), Z0)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT u1pair
	JMP st1

s1pair:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXS((CX)(DX*1), (R13)(DX*1), Z0)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT s1pair
	JMP st1


u1v:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXUV((CX)(DX*1), (R13)(DX*1), Z0)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT u1v
	JMP st1

s1v:
	MOVQ (SI)(AX*1), CX
	MOVQ 8(SI)(AX*1), R13
	VMOVDQU32 (R14)(AX*4), Z29
	PIXSV((CX)(DX*1), (R13)(DX*1), Z0)
	ADDQ $16, AX
	CMPQ AX, R11
	JLT s1v
	JMP st1

st1:
	ADDQ R9, DX
	DECQ cnt-8(SP)
	CMPQ mode-16(SP), $0
	JEQ st1i
	REQ(Z0, Y0, (R15))
	ADDQ R12, R15
	JMP pix1

st1i:
	VMOVDQU32 Z0, K1, (R15)
	LEAQ (R15)(R12*4), R15
	JMP pix1

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

// func prefetchAVX512(p *byte, n int)
//
// Prefetches the n bytes at p into the caches (PREFETCHT0 per 64 bytes).
TEXT ·prefetchAVX512(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ADDQ SI, CX

pf:
	CMPQ SI, CX
	JGE pfdone
	PREFETCHT0 (SI)
	ADDQ $64, SI
	JMP pf

pfdone:
	RET
