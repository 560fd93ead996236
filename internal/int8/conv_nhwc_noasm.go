//go:build !amd64 || noasm

package int8

// convTapsAsm reports false: no assembly kernel in this build.
func convTapsAsm(mr, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) bool {
	return false
}

// requantTabAsm reports false: no assembly kernel in this build.
func requantTabAsm(dst []byte, acc, tab []int32, check bool, zero, lo, hi int32) bool {
	return false
}

// convTapsYmmAsm reports false: no assembly kernel in this build.
func convTapsYmmAsm(vnni bool, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) bool {
	return false
}

// convTapsOffsAsm reports false: no assembly kernel in this build.
func convTapsOffsAsm(mr, taps, cg int, a []uint8, toffs []int, lda int, offs []int, b []int8, c []int32, ldc, ncols int) bool {
	return false
}

// interleave3Asm reports false: no assembly kernel in this build.
func interleave3Asm(ok bool, dst, x0, x1, x2 []uint8, flip uint8) bool { return false }
