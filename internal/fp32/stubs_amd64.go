//go:build amd64 && !noasm

package fp32

import (
	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
)

//go:generate go run gen_tile.go

// archAVX512 runs tileAVX512: an 8x32 register tile (16 zmm accumulators),
// B strips of two 16-float vectors (one for narrow tails), tails masked.
var archAVX512 = &arch{tier: kernel.TierAVX512, name: "avx512", mr: 8, nr: 32, vl: 16,
	kc: 512, mc: 64, nc: 2048, asm: asmAVX512, sigmoid: vec.For(kernel.TierAVX512).Sigmoid}

// archAVX2 runs tileAVX2: a 6x16 register tile (12 ymm accumulators).
var archAVX2 = &arch{tier: kernel.TierAVX2, name: "avx2", mr: 6, nr: 16, vl: 8,
	kc: 256, mc: 120, nc: 2048, asm: asmAVX2, sigmoid: vec.For(kernel.TierAVX2).Sigmoid}

// Assembly micro-kernels (arch.asm).
const (
	asmAVX512 = 1 + iota
	asmAVX2
)

// asmTile runs assembly micro-kernel which (arch.tile).
func asmTile(which, k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	if which == asmAVX512 {
		tileAVX512Go(k, a, b, c, ldc, mr, ncols, ep)
		return
	}
	tileAVX2Go(k, a, b, c, ldc, mr, ncols, ep)
}

// archList lists the tiers' kernels, best first.
var archList = [...]*arch{archAVX512, archAVX2, archGeneric}

func archs() []*arch { return archList[:] }

// tileAVX512 is the AVX-512 micro-kernel; its pure-Go twin is tileGo (with
// mrPack 8 and w = 16*nv). ncols = 16*(nv-1) + last.
//
//go:noescape
func tileAVX512(k int, a, b, c *float32, ldc, mr, nv, last int, ep *tileEp)

// tileAVX2 is the AVX2+FMA micro-kernel; its pure-Go twin is tileGo (with
// mrPack 6 and w = 8*nv). ncols = 8*(nv-1) + last.
//
//go:noescape
func tileAVX2(k int, a, b, c *float32, ldc, mr, nv, last int, ep *tileEp)

// packRowsAVX512 is the AVX-512 B-panel packer; its pure-Go twin is
// packRowsGo with nr = 32, vl = 16.
//
//go:noescape
func packRowsAVX512(dst, src *float32, offs *int32, stride, kb, nb int)

// packRowsAVX2 is the AVX2 B-panel packer; its pure-Go twin is packRowsGo
// with nr = 16, vl = 8.
//
//go:noescape
func packRowsAVX2(dst, src *float32, offs *int32, stride, kb, nb int)

// asmPackRows runs assembly packer which (arch.packRows) after checking
// the slices (kb, nb >= 1).
func asmPackRows(which int, dst, src []float32, offs []int32, stride, kb, nb, dstLen int) {
	_ = dst[dstLen-1]
	last := (kb-1)*stride + nb
	var op *int32
	if offs != nil {
		last = 0
		for _, o := range offs[:kb] {
			if o < 0 {
				panic("fp32: negative packing offset")
			}
			last = max(last, int(o))
		}
		last += nb
		op = &offs[0]
	}
	_ = src[last-1]
	if which == asmAVX512 {
		packRowsAVX512(&dst[0], &src[0], op, stride, kb, nb)
		return
	}
	packRowsAVX2(&dst[0], &src[0], op, stride, kb, nb)
}

// dwConvAVX512 is the AVX-512 depthwise kernel; its pure-Go twin is
// dwConvGo.
//
//go:noescape
func dwConvAVX512(out *float32, ldo, outW, outH int, in *float32, rowStep int, offs *int32, w *float32, taps int, ep *tileEp)

// dwConvAVX2 is the AVX2 depthwise kernel; its pure-Go twin is dwConvGo.
//
//go:noescape
func dwConvAVX2(out *float32, ldo, outW, outH int, in *float32, rowStep int, offs *int32, w *float32, taps int, ep *tileEp)

// asmDW runs assembly depthwise kernel which after checking the slices
// (the contract of dwConvGo; outW, outH, len(w) >= 1).
func asmDW(which int, out []float32, ldo, outW, outH int, in []float32, rowStep int, offs []int32, w []float32, ep *tileEp) {
	taps := len(w)
	_ = out[(outH-1)*ldo+outW-1]
	last := 0
	for _, o := range offs[:taps] {
		if o < 0 {
			panic("fp32: negative depthwise offset")
		}
		last = max(last, int(o))
	}
	_ = in[last+(outH-1)*rowStep+outW-1]
	if ep.flags&epRowBias != 0 && ep.rowBias == nil {
		panic("fp32: depthwise bias pointer is nil")
	}
	if which == asmAVX512 {
		dwConvAVX512(&out[0], ldo, outW, outH, &in[0], rowStep, &offs[0], &w[0], taps, ep)
		return
	}
	dwConvAVX2(&out[0], ldo, outW, outH, &in[0], rowStep, &offs[0], &w[0], taps, ep)
}

// gatherRowsAVX512 copies rows with a source stride of 1 or 2; its
// pure-Go twin is gatherRowsGo.
//
//go:noescape
func gatherRowsAVX512(dst *float32, dp int, src *float32, sp, rows, n, stride int)

// gatherRows is gatherRowsGo, in assembly for which == asmAVX512 and
// stride 1 or 2.
func gatherRows(which int, dst []float32, dp int, src []float32, sp, rows, n, stride int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if which != asmAVX512 || stride > 2 {
		gatherRowsGo(dst, dp, src, sp, rows, n, stride)
		return
	}
	_ = dst[(rows-1)*dp+n-1]
	_ = src[(rows-1)*sp+(n-1)*stride]
	gatherRowsAVX512(&dst[0], dp, &src[0], sp, rows, n, stride)
}

// tileAVX512Ind is the AVX-512 micro-kernel reading B unpacked: columns
// 0-15 of row p at b + offs[p], columns 16-31 at b2 + offs[p] (the last
// vector masked); its pure-Go twin is tileIndGo.
//
//go:noescape
func tileAVX512Ind(k int, a, b, b2 *float32, offs *int32, c *float32, ldc, mr, nv, last int, ep *tileEp)

// asmTileInd runs the indirect micro-kernel (only AVX-512 has one) after
// checking the slices; maxOff is the largest of offs[:k], k >= 1. When
// ncols > 16, columns 16... come from b2 (nil: b[16:]).
func asmTileInd(k int, a, b, b2 []float32, offs []int32, maxOff int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	nv := (ncols + 15) >> 4
	last := ncols - (nv-1)*16
	_ = a[8*k-1]
	_ = offs[k-1]
	_ = c[(mr-1)*ldc+ncols-1]
	if nv == 1 {
		_ = b[maxOff+ncols-1]
		b2 = b
	} else {
		_ = b[maxOff+15]
		if b2 == nil {
			b2 = b[16:]
		}
		_ = b2[maxOff+last-1]
	}
	tileAVX512Ind(k, &a[0], &b[0], &b2[0], &offs[0], &c[0], ldc, mr, nv, last, ep)
}

// tileAVX512Ind4 is the indirect micro-kernel whose B vectors each join
// two 8-float rows: columns 0-7 of row p at b0 + offs[p], 8-15 at b1,
// 16-23 at b2, 24-31 at b3; its pure-Go twin is tileInd4Go.
//
//go:noescape
func tileAVX512Ind4(k int, a, b0, b1, b2, b3 *float32, offs *int32, c *float32, ldc, mr, nv, last int, ep *tileEp)

// asmTileInd4 runs tileAVX512Ind4 after checking the slices; maxOff is the
// largest of offs[:k], k >= 1, and every b[j] holds maxOff+8 values.
func asmTileInd4(k int, a []float32, b *[4][]float32, offs []int32, maxOff int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	nv := (ncols + 15) >> 4
	last := ncols - (nv-1)*16
	_ = a[8*k-1]
	_ = offs[k-1]
	_ = c[(mr-1)*ldc+ncols-1]
	for j := range b {
		_ = b[j][maxOff+7]
	}
	tileAVX512Ind4(k, &a[0], &b[0][0], &b[1][0], &b[2][0], &b[3][0], &offs[0], &c[0], ldc, mr, nv, last, ep)
}

// transposeAVX512 sets y[m*ldy+i] = ct[i*ldc+m] for i < rows, m < n with
// scatter stores; its pure-Go twin is transposeGo.
//
//go:noescape
func transposeAVX512(y *float32, ldy int, ct *float32, ldc, rows, n int)

// transposeInto sets y[m*ldy+i] = ct[i*ldc+m] for i < rows, m < n
// (assembly for which == asmAVX512).
func transposeInto(which int, y []float32, ldy int, ct []float32, ldc, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if which != asmAVX512 || 15*ldy >= 1<<31 {
		transposeGo(y, ldy, ct, ldc, rows, n)
		return
	}
	_ = y[(n-1)*ldy+rows-1]
	_ = ct[(rows-1)*ldc+n-1]
	transposeAVX512(&y[0], ldy, &ct[0], ldc, rows, n)
}

// hasIndirect reports whether arch a has an indirect micro-kernel.
func hasIndirect(a *arch) bool { return a.asm == asmAVX512 }

// dw3x3AVX512 is the AVX-512 3x3 depthwise kernel over many planes; its
// pure-Go twin is dw3x3Go.
//
//go:noescape
func dw3x3AVX512(out, in, w, bias *float32, masks *uint16, planes, H, W, outH, outW, stride, padT, padL int, ep *tileEp)

// dw3x3Asm runs dw3x3AVX512 after checking the slices, when which is
// asmAVX512, and reports whether it did.
func dw3x3Asm(which int, out, in, w, bias []float32, masks []uint16, planes, H, W, outH, outW, stride, padT, padL int, ep *tileEp) bool {
	if which != asmAVX512 || planes <= 0 || outH <= 0 || outW <= 0 || H <= 0 || W <= 0 {
		return false
	}
	_ = out[planes*outH*outW-1]
	_ = in[planes*H*W-1]
	_ = w[planes*9-1]
	_ = masks[(outW+15)/16*8-1]
	var bp *float32
	if bias != nil {
		_ = bias[planes-1]
		bp = &bias[0]
	}
	dw3x3AVX512(&out[0], &in[0], &w[0], bp, &masks[0], planes, H, W, outH, outW, stride, padT, padL, ep)
	return true
}

// dw3x3SmallAVX512 is the AVX-512 3x3 depthwise kernel for planes of at
// most 15 inputs and 16 outputs; its pure-Go twin is dw3x3Go (idx is built
// by dw3x3SmallIdx).
//
//go:noescape
func dw3x3SmallAVX512(out, in, w, bias *float32, idx *int32, planes, inSize, outSize int, ep *tileEp)

// dw3x3SmallAsm runs dw3x3SmallAVX512 after checking the slices, when
// which is asmAVX512, and reports whether it did.
func dw3x3SmallAsm(which int, out, in, w, bias []float32, idx []int32, planes, inSize, outSize int, ep *tileEp) bool {
	if which != asmAVX512 || planes <= 0 || inSize < 1 || inSize > 15 || outSize < 1 || outSize > 16 {
		return false
	}
	_ = out[planes*outSize-1]
	_ = in[planes*inSize-1]
	_ = w[planes*9-1]
	_ = idx[9*16-1]
	for _, v := range idx[:9*16] {
		if v < 0 || v > 15 {
			panic("fp32: dw3x3 small index out of range")
		}
	}
	var bp *float32
	if bias != nil {
		_ = bias[planes-1]
		bp = &bias[0]
	}
	dw3x3SmallAVX512(&out[0], &in[0], &w[0], bp, &idx[0], planes, inSize, outSize, ep)
	return true
}

// tileAVX512Go checks the slices and calls tileAVX512 (k >= 1).
func tileAVX512Go(k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	nv := (ncols + 15) >> 4
	last := ncols - (nv-1)*16
	_ = a[8*k-1]
	_ = b[16*nv*k-1]
	_ = c[(mr-1)*ldc+ncols-1]
	tileAVX512(k, &a[0], &b[0], &c[0], ldc, mr, nv, last, ep)
}

// tileAVX2Go checks the slices and calls tileAVX2 (k >= 1).
func tileAVX2Go(k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	nv := (ncols + 7) >> 3
	last := ncols - (nv-1)*8
	_ = a[6*k-1]
	_ = b[8*nv*k-1]
	_ = c[(mr-1)*ldc+ncols-1]
	tileAVX2(k, &a[0], &b[0], &c[0], ldc, mr, nv, last, ep)
}
