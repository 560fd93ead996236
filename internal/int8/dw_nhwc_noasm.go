//go:build !amd64 || noasm

package int8

import (
	"unsafe"

	"github.com/goslim/goslim/internal/kernel"
)

// dwKernel returns dwKernGo: no assembly depthwise kernel in this build.
func dwKernel(kernel.Tier, int) int { return dwKernGo }

func dwRowsAsm(kern int, out []int32, dst []byte, taps []unsafe.Pointer, segs []int, w []int32, c, pairs, step, flags int, rq dwReq) {
	panic("int8: assembly depthwise kernel in a noasm build")
}

// dwFlags is unused without assembly.
func dwFlags(kernel.Tier, bool) int { return 0 }

// prefetch does nothing in this build.
func prefetch(b []byte) {}

// dwVNNIKernel reports false: no assembly in this build.
func dwVNNIKernel(kernel.Tier) bool { return false }

func dwBuild3(dst []int32, a, b, c []byte, n int, flip uint8) {
	panic("int8: assembly depthwise kernel in a noasm build")
}

func dwTaps(dst []byte, tb, w []int32, c, n, step, kw, dstep int, rq *dwReq) {
	panic("int8: assembly depthwise kernel in a noasm build")
}
