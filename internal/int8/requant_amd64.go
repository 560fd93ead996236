//go:build amd64 && !noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

//go:noescape
func requantAVX512(dst *byte, acc *int32, add *int32, astep int, mult *int32, shift *int32, mstep int, n int, zero int32, lo int64, hi int64, period int)

// avx512OK records (once, read-only) whether the CPU runs AVX-512.
var avx512OK = kernel.TierAVX512.Available()

// requantAsm reports whether tier t runs the AVX-512 requantization.
func requantAsm(t kernel.Tier) bool { return t >= kernel.TierAVX512 && avx512OK }

// requantColsAsm is RequantCols in AVX-512 (see requantAVX512); the
// operands repeat every period groups of 16 values (0: no repeat).
func requantColsAsm(dst []byte, acc, add []int32, astep int, mult, shift []int32, mstep int, zero int32, lo, hi int64, period int) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = acc[n-1]
	requantAVX512(&dst[0], &acc[0], &add[0], astep, &mult[0], &shift[0], mstep, n, zero, lo, hi, period)
}

//go:noescape
func quantizeF32AVX512(dst *byte, x *float32, n int, scale, zero, lo, hi float32)

//go:noescape
func dequantizeAVX512(dst *float32, x *byte, n int, signed int, zero int32, scale float32)

// QuantizeF32 computes QuantizeLinear's float32 -> 8-bit conversion
// dst[i] = clamp(round_half_even(x[i]/scale) + zero, lo, hi) (NaN -> lo,
// the byte of the value) with AVX-512 when tier t allows it and reports
// whether it did; callers run their Go loop otherwise (the same bits).
func QuantizeF32(t kernel.Tier, dst []byte, x []float32, scale float32, zero, lo, hi int32) bool {
	if !requantAsm(t) || len(x) < len(dst) {
		return false
	}
	if len(dst) > 0 {
		quantizeF32AVX512(&dst[0], &x[0], len(dst), scale, float32(zero), float32(lo), float32(hi))
	}
	return true
}

// Dequantize computes DequantizeLinear's dst[i] = float32(x[i]-zero) *
// scale for uint8 (or, when signed, int8) bytes x with AVX-512 when tier t
// allows it and reports whether it did (the same bits as the Go loop).
func Dequantize(t kernel.Tier, dst []float32, x []byte, signed bool, zero int32, scale float32) bool {
	if !requantAsm(t) || len(x) < len(dst) {
		return false
	}
	if len(dst) > 0 {
		s := 0
		if signed {
			s = 1
		}
		dequantizeAVX512(&dst[0], &x[0], len(dst), s, zero, scale)
	}
	return true
}
