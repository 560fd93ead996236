//go:build amd64 && !noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

//go:noescape
func addBytesAVX512(y, a, b *byte, n int, signed int, za, zb int32, ra, rb, zc, lo, hi float64)

// AddBytes computes y[i] = p's addition of a[i] and b[i] for i < len(y)
// (a and b at least as long), with AVX-512 (16 bytes per step, float64
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
			addBytesAVX512(&y[0], &a[0], &b[0], v, s, p.Za, p.Zb, p.Ra, p.Rb, float64(p.Zc), float64(p.Lo), float64(p.Hi))
		}
	}
	addBytesGo(p, y[v:], a[v:], b[v:])
}

// AddVectorized reports whether AddBytes runs vector code on tier t
// (otherwise a lookup table of all byte pairs is faster for long inputs).
func AddVectorized(t kernel.Tier) bool { return requantAsm(t) }
