//go:build amd64 && !noasm

package int8

//go:noescape
func dwRow1AVX512(out *int32, n int, in *uint8, offs *int, w *int32, taps int, rows int, inStep int)

//go:noescape
func dwRow2AVX512(out *int32, n int, in *uint8, offs *int, w *int32, taps int, rows int, inStep int)

// dwRowAsm runs the AVX-512 depthwise kernel for stride 1 or 2 over rows
// output rows of len(out)/rows values (input rows inStep bytes apart) and
// reports whether it did. in must extend dwSlack bytes past the last
// input a tap reads.
func dwRowAsm(out []int32, in []uint8, offs []int, w []int32, stride, rows, inStep int) bool {
	if len(out) == 0 || len(w) == 0 || rows <= 0 || len(out)%rows != 0 || (stride != 1 && stride != 2) {
		return false
	}
	n := len(out) / rows
	last := 0
	for _, o := range offs[:len(w)] {
		last = max(last, o+(rows-1)*inStep+(n-1)*stride+dwSlack)
	}
	_ = in[last-1]
	if stride == 1 {
		dwRow1AVX512(&out[0], n, &in[0], &offs[0], &w[0], len(w), rows, inStep)
	} else {
		dwRow2AVX512(&out[0], n, &in[0], &offs[0], &w[0], len(w), rows, inStep)
	}
	return true
}

//go:noescape
func transpose16AVX512(dst *byte, dstStride int, src *byte, srcStride int, flip byte)

// transpose16 transposes the 16x16 byte tile at src (row stride ss) into
// dst (row stride ds), flipping bits by flip, with AVX-512 when ok (and
// reports whether it ran).
func transpose16(ok bool, dst []byte, ds int, src []byte, ss int, flip byte) bool {
	if !ok {
		return false
	}
	_ = dst[15*ds+15]
	_ = src[15*ss+15]
	transpose16AVX512(&dst[0], ds, &src[0], ss, flip)
	return true
}
