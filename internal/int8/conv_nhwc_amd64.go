//go:build amd64 && !noasm

package int8

import "golang.org/x/sys/cpu"

// interleaveVBMI reports whether interleave3VBMI can run here.
var interleaveVBMI = cpu.X86.HasAVX512VBMI

//go:noescape
func interleave3VBMI(dst, x0, x1, x2 *byte, n int, flip uint64, lm, s0, s1, s2 uint64)

// interleave3Asm writes dst[3p+c] = xc[p] ^ flip for p < len(x0) with
// AVX-512 VBMI and reports whether it did (false: ok is false or the CPU
// has no VBMI).
func interleave3Asm(ok bool, dst, x0, x1, x2 []uint8, flip uint8) bool {
	n := len(x0)
	if !ok || !interleaveVBMI {
		return false
	}
	if n == 0 {
		return true
	}
	_, _, _, _ = dst[3*n-1], x1[n-1], x2[n-1], x0[n-1]
	tail := n % 64
	interleave3VBMI(&dst[0], &x0[0], &x1[0], &x2[0], n, uint64(flip), byteMask(tail), byteMask(3*tail), byteMask(3*tail-64), byteMask(3*tail-128))
	return true
}

// byteMask returns the mask of the first bytes of 64 (clamped to 0..64).
func byteMask(bytes int) uint64 {
	switch {
	case bytes <= 0:
		return 0
	case bytes >= 64:
		return ^uint64(0)
	}
	return uint64(1)<<bytes - 1
}

// convTapsVNNI is the implicit-GEMM convolution kernel (12 x 32 tile,
// AVX-512 VNNI; see gen_tile.go genVNNIConv); its pure-Go twin is
// convTapsGo.
//
//go:noescape
func convTapsVNNI(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int)

// convTapsVNNI24 is convTapsVNNI for 24 x 16 tiles (m1 unused), for
// up to 16 columns.
//
//go:noescape
func convTapsVNNI24(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int)

// convTapsVNNI8 is convTapsVNNI for 8 x 32 tiles.
//
//go:noescape
func convTapsVNNI8(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int)

// convTapsVNNI16 is convTapsVNNI for 16 x 16 tiles (m1 unused).
//
//go:noescape
func convTapsVNNI16(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int)

// convTapsAsm runs the implicit-GEMM kernel of mr rows (8 or 12: up to 32
// columns; 16 or 24: up to 16) with convTapsGo's arguments and reports
// whether it did (false: no assembly kernel in this build). It checks
// that the slices hold everything the kernel reads and writes.
func convTapsAsm(mr, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) bool {
	nc := convTapsCols(mr)
	checkTapTile(mr, nc, taps, cg, a, lda, offs, b, c, ldc, rows, ncols, nt)
	m0 := uint64(1)<<min(ncols, 16) - 1
	m1 := uint64(0)
	if ncols > 16 {
		m1 = uint64(1)<<(ncols-16) - 1
	}
	switch mr {
	case 8:
		convTapsVNNI8(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, m0, m1, nt)
	case 12:
		convTapsVNNI(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, m0, m1, nt)
	case 16:
		convTapsVNNI16(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, m0, m1, nt)
	default:
		convTapsVNNI24(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, m0, m1, nt)
	}
	return true
}

// convTapsVNNIo, convTapsVNNI24o, convTapsVNNI8o and convTapsVNNI16o are
// the kernels above for ntiles full tiles whose A rows start at a +
// toffs[t] for tile t (C still advances by rows*ldc per tile); their Go
// twin is convTapsOffsGo.
//
//go:noescape
func convTapsVNNIo(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int, toffs *int)

//go:noescape
func convTapsVNNI24o(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int, toffs *int)

//go:noescape
func convTapsVNNI8o(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int, toffs *int)

//go:noescape
func convTapsVNNI16o(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, ntiles int, toffs *int)

// convTapsOffsAsm runs the VNNI implicit-GEMM kernel of mr rows on
// len(toffs) full tiles, tile t's A rows at a[toffs[t]:] (lda apart),
// its C rows at c[t*mr*ldc:], and reports whether it did (false: no
// assembly kernel in this build). It checks that the slices hold
// everything the kernel reads and writes.
func convTapsOffsAsm(mr, taps, cg int, a []uint8, toffs []int, lda int, offs []int, b []int8, c []int32, ldc, ncols int) bool {
	nc, nt := convTapsCols(mr), len(toffs)
	if nc == 0 || taps < 1 || len(offs) < taps || cg < 1 || ncols < 1 || ncols > nc || nt < 1 {
		panic("int8: bad convolution tile")
	}
	maxOff := 0
	for _, o := range offs[:taps] {
		if o < 0 {
			panic("int8: negative tap offset")
		}
		maxOff = max(maxOff, o)
	}
	span := (mr-1)*lda + maxOff + 4*cg
	for _, o := range toffs {
		if o < 0 || o+span > len(a) {
			panic("int8: tile offset out of range")
		}
	}
	_ = b[(taps*cg-1)*nr*4+4*nc-1]
	_ = c[(nt*mr-1)*ldc+ncols-1]
	m0 := uint64(1)<<min(ncols, 16) - 1
	m1 := uint64(0)
	if ncols > 16 {
		m1 = uint64(1)<<(ncols-16) - 1
	}
	switch mr {
	case 8:
		convTapsVNNI8o(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, mr, m0, m1, nt, &toffs[0])
	case 12:
		convTapsVNNIo(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, mr, m0, m1, nt, &toffs[0])
	case 16:
		convTapsVNNI16o(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, mr, m0, m1, nt, &toffs[0])
	default:
		convTapsVNNI24o(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, mr, m0, m1, nt, &toffs[0])
	}
	return true
}

// convTapsAVXVNNI is the AVX-VNNI implicit-GEMM kernel (6 x 16, VEX
// VPDPBUSD ymm; see gen_tile.go genYmmConv); its Go twin is convTapsGo.
//
//go:noescape
func convTapsAVXVNNI(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows, ncols, ntiles int)

// convTapsAVX2 is convTapsAVXVNNI with VPMADDUBSW + VPMADDWD, exact only
// when the weights cannot saturate int16 (PackedB.pairSafe).
//
//go:noescape
func convTapsAVX2(taps, cg int, a *uint8, lda int, offs *int, b *int8, c *int32, ldc, rows, ncols, ntiles int)

// convTapsYmmAsm runs convTapsAVXVNNI (vnni) or convTapsAVX2 with
// convTapsGo's arguments for mr = 6 and reports whether it did (false: no
// assembly kernel in this build), checking that the slices hold what the
// kernel reads and writes.
func convTapsYmmAsm(vnni bool, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) bool {
	const mr, nc = 6, 16
	checkTapTile(mr, nc, taps, cg, a, lda, offs, b, c, ldc, rows, ncols, nt)
	if vnni {
		convTapsAVXVNNI(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, ncols, nt)
	} else {
		convTapsAVX2(taps, cg, &a[0], lda, &offs[0], &b[0], &c[0], ldc, rows, ncols, nt)
	}
	return true
}

//go:noescape
func requantConvAVX512(dst *byte, acc *int32, n int, tab *int32, period, check int, zero, lo, hi int32, flo, fhi, fzero, falo, fahi float32, signed int)

// requantTabAsm requantizes len(dst) values acc with the parameter table
// tab (see reqTab: reqPeriod(tab) steps of 16 values, repeating, then
// reqTabExtra more) into dst with AVX-512 and reports whether it did
// (false: no assembly). Unless check, every acc[j] + add[j] must be below
// 2^22 in magnitude (the float64 path is then taken without looking).
func requantTabAsm(dst []byte, acc, tab []int32, check bool, zero, lo, hi int32) bool {
	n := len(dst)
	if n == 0 {
		return true
	}
	period := reqPeriod(tab)
	if len(tab)%reqTabWords != 0 || period < 4 {
		panic("int8: bad requantization table")
	}
	_ = acc[n-1]
	Lo, Hi := lo+zero, hi+zero
	const c = 0.5 + 1.0/2048 // the groups' rounding bias (exact in float32 with any bound)
	requantConvAVX512(&dst[0], &acc[0], n, &tab[0], period, b2i(check), zero, lo, hi, float32(lo), float32(hi),
		float32(float64(zero)+c), float32(float64(Lo)+c), float32(float64(Hi)+c), b2i(Lo < 0))
	return true
}

// checkTapTile panics unless a tap kernel call of mr x nc tiles (nc == 0:
// no such kernel) stays inside its slices: a programming error, not bad
// model input.
func checkTapTile(mr, nc, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) {
	if nc == 0 || taps < 1 || len(offs) < taps || cg < 1 || rows < 1 || rows > mr ||
		ncols < 1 || ncols > nc || nt < 1 || (nt > 1 && rows != mr) {
		panic("int8: bad convolution tile")
	}
	maxOff := 0
	for _, o := range offs[:taps] {
		if o < 0 {
			panic("int8: negative tap offset")
		}
		maxOff = max(maxOff, o)
	}
	_ = a[(nt*mr-1)*lda+maxOff+4*cg-1]
	_ = b[(taps*cg-1)*nr*4+4*nc-1]
	_ = c[((nt-1)*mr+rows-1)*ldc+ncols-1]
}
