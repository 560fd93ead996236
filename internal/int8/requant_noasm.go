//go:build !amd64 || noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

// requantAsm reports whether tier t runs an assembly requantization (never
// without assembly).
func requantAsm(kernel.Tier) bool { return false }

func requantColsAsm(dst []byte, acc, add []int32, astep int, mult, shift []int32, mstep int, zero int32, lo, hi int64) {
	panic("int8: assembly requantization in a noasm build")
}
