//go:build !amd64 || noasm

package int8

// hasVNNI reports whether the VNNI kernel is built (not without assembly).
const hasVNNI = false

// tileVNNIGo is never called without assembly.
func tileVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool) {
	panic("int8: assembly kernel in a noasm build")
}
