//go:build !amd64 || noasm

package int8

// hasGemvAsm reports whether the assembly GEMV kernels are built (not here).
const hasGemvAsm = false

func gemvVNNIGo(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	panic("int8: assembly kernel in a noasm build")
}

func gemvAVXVNNIGo(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	panic("int8: assembly kernel in a noasm build")
}
