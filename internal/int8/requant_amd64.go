//go:build amd64 && !noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

//go:noescape
func requantAVX512(dst *byte, acc *int32, add *int32, astep int, mult *int32, shift *int32, mstep int, n int, zero int32, lo int64, hi int64)

// avx512OK records (once, read-only) whether the CPU runs AVX-512.
var avx512OK = kernel.TierAVX512.Available()

// requantAsm reports whether tier t runs the AVX-512 requantization.
func requantAsm(t kernel.Tier) bool { return t >= kernel.TierAVX512 && avx512OK }

// requantColsAsm is requantColsGo in AVX-512 (see requantAVX512).
func requantColsAsm(dst []byte, acc, add []int32, astep int, mult, shift []int32, mstep int, zero int32, lo, hi int64) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = acc[n-1]
	requantAVX512(&dst[0], &acc[0], &add[0], astep, &mult[0], &shift[0], mstep, n, zero, lo, hi)
}
