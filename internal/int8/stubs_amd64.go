//go:build amd64 && !noasm

package int8

//go:generate go run gen_tile.go

// hasVNNI reports whether the VNNI kernel is built.
const hasVNNI = true

// tileVNNI is the AVX-512 VNNI micro-kernel (12 x 32 register tile, 24 zmm
// accumulators, VPDPBUSD); its pure-Go twin is tileGo. It reads 12 rows of
// a (row stride lda bytes) and stores rows rows of c, the two column
// vectors masked by m0 and m1; with acc != 0 it adds to c.
//
//go:noescape
func tileVNNI(kg int, a *uint8, lda int, b *int8, c *int32, ldc, rows int, m0, m1 uint64, acc int)

// tileVNNIGo checks the slices and calls tileVNNI (acc: add to c) (kg >= 1, 1 <= rows <=
// 12, 1 <= ncols <= 32); a must hold 12 rows.
func tileVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool) {
	if kg < 1 || rows < 1 || rows > mr || ncols < 1 || ncols > nr || lda < 4*kg {
		panic("int8: bad tile")
	}
	_ = a[(mr-1)*lda+4*kg-1]
	_ = b[kg*nr*4-1]
	_ = c[(rows-1)*ldc+ncols-1]
	m0 := uint64(1)<<min(ncols, 16) - 1
	m1 := uint64(0)
	if ncols > 16 {
		m1 = uint64(1)<<(ncols-16) - 1
	}
	ac := 0
	if acc {
		ac = 1
	}
	tileVNNI(kg, &a[0], lda, &b[0], &c[0], ldc, rows, m0, m1, ac)
}
