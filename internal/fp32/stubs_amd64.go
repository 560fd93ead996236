//go:build amd64 && !noasm

package fp32

import "github.com/goslim/goslim/internal/kernel"

//go:generate go run gen_tile.go

// archAVX512 runs tileAVX512: an 8x32 register tile (16 zmm accumulators),
// B strips of two 16-float vectors (one for narrow tails), tails masked.
var archAVX512 = &arch{tier: kernel.TierAVX512, name: "avx512", mr: 8, nr: 32, vl: 16,
	kc: 256, mc: 128, nc: 2048, asm: asmAVX512}

// archAVX2 runs tileAVX2: a 6x16 register tile (12 ymm accumulators).
var archAVX2 = &arch{tier: kernel.TierAVX2, name: "avx2", mr: 6, nr: 16, vl: 8,
	kc: 256, mc: 120, nc: 2048, asm: asmAVX2}

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
