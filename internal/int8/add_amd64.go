//go:build amd64 && !noasm

package int8

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
)

//go:noescape
func addBytesF32AVX512(y, a, b *byte, n int, signed int, za, zb int32, ra, rb, zc, lo, hi float64, ra32, rb32, thr, zc32, lo32, hi32 float32)

// addF32Threshold returns the tie threshold of the float32 kernel for p
// (0.5 minus a bound on |float32 sum - float64 sum|), or false when the
// float32 path cannot be exact (sums too large for the bound to be small).
// The float32 sum of the exact integers a-za, b-zb with the rounded ratios
// is within 4 units of 2^-24 of M = 256(|Ra|+|Rb|) of the float64 sum
// (ratio rounding, the product and the sum); the bound takes 8 times that.
func addF32Threshold(p *AddParams) (float32, bool) {
	m := 256 * (math.Abs(p.Ra) + math.Abs(p.Rb))
	if !(m < 1<<20) {
		return 0, false
	}
	return float32(0.5 - (m*0x1p-21 + 0x1p-30)), true
}

// AddBytes computes y[i] = p's addition of a[i] and b[i] for i < len(y)
// (a and b at least as long), with AVX-512 (16 bytes per step in float32
// lanes, a group whose sums lie near a rounding tie redone in float64
// lanes: the same bits as AddOne) when tier t allows it, else in Go.
func AddBytes(t kernel.Tier, p *AddParams, y, a, b []uint8) {
	n := len(y)
	if n == 0 {
		return
	}
	_, _ = a[n-1], b[n-1]
	v := 0
	if requantAsm(t) {
		v = n &^ 15
		if v > 0 {
			s := 0
			if p.Signed {
				s = 1
			}
			thr, ok := addF32Threshold(p)
			if !ok {
				thr = -1 // every group in float64 lanes
			}
			addBytesF32AVX512(&y[0], &a[0], &b[0], v, s, p.Za, p.Zb, p.Ra, p.Rb, float64(p.Zc), float64(p.Lo), float64(p.Hi),
				float32(p.Ra), float32(p.Rb), thr, float32(p.Zc), float32(p.Lo), float32(p.Hi))
		}
	}
	addBytesGo(p, y[v:], a[v:], b[v:])
}

// AddVectorized reports whether AddBytes runs vector code on tier t
// (otherwise a lookup table of all byte pairs is faster for long inputs).
func AddVectorized(t kernel.Tier) bool { return requantAsm(t) }
