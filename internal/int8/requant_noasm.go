//go:build !amd64 || noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

// requantAsm reports whether tier t runs an assembly requantization (never
// without assembly).
func requantAsm(kernel.Tier) bool { return false }

func requantColsAsm(dst []byte, acc, add []int32, astep int, mult, shift []int32, mstep int, zero int32, lo, hi int64, period int) {
	panic("int8: assembly requantization in a noasm build")
}

// QuantizeF32 reports false: no assembly in this build (callers run Go).
func QuantizeF32(t kernel.Tier, dst []byte, x []float32, scale float32, zero, lo, hi int32) bool {
	return false
}

// Dequantize reports false: no assembly in this build (callers run Go).
func Dequantize(t kernel.Tier, dst []float32, x []byte, signed bool, zero int32, scale float32) bool {
	return false
}
