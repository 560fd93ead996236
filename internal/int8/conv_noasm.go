//go:build !amd64 || noasm

package int8

// dwRowAsm reports false: no assembly depthwise kernel in this build.
func dwRowAsm(out []int32, in []uint8, offs []int, w []int32, stride, rows, inStep int) bool {
	return false
}

// transpose16 reports false: no assembly transpose in this build.
func transpose16(ok bool, dst []byte, ds int, src []byte, ss int, flip byte) bool { return false }
