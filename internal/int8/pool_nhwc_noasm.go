//go:build !amd64 || noasm

package int8

// poolMaxAsm reports false: no assembly pooling in this build.
func poolMaxAsm(ok bool, dst, x []byte, offs []int, c, n, step int, signed bool) bool {
	return false
}

// poolSumAsm reports false: no assembly pooling in this build.
func poolSumAsm(ok bool, sums []int32, x []byte, c, n, stride int, signed, accumulate bool) bool {
	return false
}
