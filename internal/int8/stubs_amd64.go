//go:build amd64 && !noasm

package int8

import "golang.org/x/sys/cpu"

//go:generate go run gen_tile.go

// hasAsm reports whether the assembly kernels are built.
const hasAsm = true

// hasAVXVNNI reports whether the CPU has AVX-VNNI (VEX VPDPBUSD).
func hasAVXVNNI() bool { return cpu.X86.HasAVXVNNI }

// tileVNNI is the AVX-512 VNNI micro-kernel (12 x 32 register tile, 24 zmm
// accumulators, VPDPBUSD); its pure-Go twin is tileGo. It reads 12 rows of
// a (row stride lda bytes) and stores rows rows of c, the two column
// vectors masked by m0 and m1; with acc != 0 it adds to c. It does so for
// ntiles tiles in a row (A and C advance by 12 rows); every kernel here
// takes ntiles alike.
//
//go:noescape
func tileVNNI(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, acc, ntiles int)

// tileVNNI24 is tileVNNI for 24 x 16 tiles (m1 unused), for N <= 16.
//
//go:noescape
func tileVNNI24(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, acc, ntiles int)

// tileAVXVNNI is the AVX-VNNI micro-kernel (6 x 16, VEX VPDPBUSD ymm). Like
// the other 16-column kernels it reads 6 rows of a, groups of b 128 bytes
// apart, and stores rows rows and ncols (<= 16) columns of c; with acc !=
// 0 it adds to c.
//
//go:noescape
func tileAVXVNNI(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows, ncols, acc, ntiles int)

// tileAVX2 is the AVX2 micro-kernel (6 x 16, VPMADDUBSW + VPMADDWD),
// exact only when PackedB.pairSafe.
//
//go:noescape
func tileAVX2(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows, ncols, acc, ntiles int)

// tileAVX2W is the exact AVX2 micro-kernel on widened weights
// (PackedB.widened; 3 x 16, VPMADDWD on int16 pairs, groups 256 bytes
// apart).
//
//go:noescape
func tileAVX2W(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows, ncols, acc, ntiles int)

// checkTile panics unless the slices hold what a kernel of mr rows by nc
// columns reads and writes for nt tiles (rows < mr only when nt is 1).
func checkTile(mr, nc, kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols, nt int) {
	if kg < 1 || rows < 1 || rows > mr || ncols < 1 || ncols > nc || lda < 1 || nt < 1 || (nt > 1 && rows != mr) {
		panic("int8: bad tile")
	}
	_ = a[(nt*mr-1)*lda+4*kg-1]
	_ = b[(kg-1)*nr*4+4*nc-1]
	_ = c[((nt-1)*mr+rows-1)*ldc+ncols-1]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tileVNNIGo checks the slices and calls tileVNNI (kg >= 1, 1 <= rows <=
// 12, 1 <= ncols <= 32); a must hold 12 rows.
func tileVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	checkTile(12, 32, kg, a, lda, b, c, ldc, rows, ncols, nt)
	m0 := uint64(1)<<min(ncols, 16) - 1
	m1 := uint64(0)
	if ncols > 16 {
		m1 = uint64(1)<<(ncols-16) - 1
	}
	tileVNNI(kg, &a[0], lda, &b[0], &c[0], ldc, rows, m0, m1, b2i(acc), nt)
}

// tileVNNI24Go checks the slices and calls tileVNNI24 (ncols <= 16).
func tileVNNI24Go(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	checkTile(24, 16, kg, a, lda, b, c, ldc, rows, ncols, nt)
	tileVNNI24(kg, &a[0], lda, &b[0], &c[0], ldc, rows, uint64(1)<<ncols-1, 0, b2i(acc), nt)
}

// tileAVXVNNIGo checks the slices and calls tileAVXVNNI.
func tileAVXVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	checkTile(6, 16, kg, a, lda, b, c, ldc, rows, ncols, nt)
	tileAVXVNNI(kg, &a[0], lda, &b[0], &c[0], ldc, rows, ncols, b2i(acc), nt)
}

// tileAVX2Go checks the slices and calls tileAVX2.
func tileAVX2Go(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	checkTile(6, 16, kg, a, lda, b, c, ldc, rows, ncols, nt)
	tileAVX2(kg, &a[0], lda, &b[0], &c[0], ldc, rows, ncols, b2i(acc), nt)
}

// tileAVX2WGo checks the slices and calls tileAVX2W (b is widened).
func tileAVX2WGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	checkTile(3, 16, kg, a, lda, b, c, ldc, rows, ncols, nt)
	_ = b[(kg-1)*256+127]
	tileAVX2W(kg, &a[0], lda, &b[0], &c[0], ldc, rows, ncols, b2i(acc), nt)
}

// asmImpl returns the tiles of an assembly kernel for B with n columns.
func asmImpl(k Kernel, pairSafe bool, n int) (impl, bool) {
	switch k {
	case KernelVNNI:
		if n <= 16 {
			return impl{mr: 24, nc: 16, tile: tVNNI24}, true
		}
		return impl{mr: 12, nc: 32, tile: tVNNI}, true
	case KernelAVXVNNI:
		return impl{mr: 6, nc: 16, tile: tAVXVNNI}, true
	case KernelAVX2:
		if pairSafe {
			return impl{mr: 6, nc: 16, tile: tAVX2}, true
		}
		return impl{mr: 3, nc: 16, tile: tAVX2W}, true
	case KernelAMX:
		return amxImpl()
	}
	return impl{}, false
}
