//go:build amd64 && !noasm

package int8

//go:noescape
func poolMaxAVX512(dst *byte, x *byte, offs *int, taps int, c int, n int, step int, signed int)

//go:noescape
func poolSumAVX512(sums *int32, x *byte, c int, n int, stride int, signed int, accumulate int)

// poolMaxAsm runs poolMaxAVX512 (see poolMaxGo) when ok and reports
// whether it did.
func poolMaxAsm(ok bool, dst, x []byte, offs []int, c, n, step int, signed bool) bool {
	if !ok {
		return false
	}
	if n <= 0 || c <= 0 || len(offs) == 0 {
		return true
	}
	last := 0
	for _, o := range offs {
		last = max(last, o)
	}
	_ = x[last+(n-1)*step+c-1]
	_ = dst[n*c-1]
	poolMaxAVX512(&dst[0], &x[0], &offs[0], len(offs), c, n, step, b2i(signed))
	return true
}

// poolSumAsm runs poolSumAVX512 (see poolSumGo) when ok and reports
// whether it did.
func poolSumAsm(ok bool, sums []int32, x []byte, c, n, stride int, signed, accumulate bool) bool {
	if !ok {
		return false
	}
	if c <= 0 {
		return true
	}
	_ = sums[c-1]
	if n > 0 {
		_ = x[(n-1)*stride+c-1]
	} else if !accumulate {
		clear(sums[:c])
		return true
	} else {
		return true
	}
	poolSumAVX512(&sums[0], &x[0], c, n, stride, b2i(signed), b2i(accumulate))
	return true
}
