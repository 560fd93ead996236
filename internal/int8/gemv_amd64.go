//go:build amd64 && !noasm

package int8

//go:generate go run gemv_gen.go

// gemvVNNI1..gemvVNNI4 are the AVX-512 VNNI small-M kernels (1 to 4 rows
// of A): for np panels of packed B (pstride bytes apart) they compute
// c[r*ldc + 32p + j] (+)= sum over kg groups g of 4 k-values of
// a[r*lda+4g+t] * b[p*pstride + 128g + 4j + t], reading each panel once
// (8 panels per step for 1 row, B read by VPDPBUSD from memory; 4 panels
// for 2 rows, 2 for 3 or 4 rows; then single panels: 12 to 16 VPDPBUSD
// accumulators in flight) and storing every panel's two column vectors
// through masks m0 and m1. With acc != 0 they add to c.
//
//go:noescape
func gemvVNNI1(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, m0, m1 uint64, acc int)

//go:noescape
func gemvVNNI2(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, m0, m1 uint64, acc int)

//go:noescape
func gemvVNNI3(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, m0, m1 uint64, acc int)

//go:noescape
func gemvVNNI4(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, m0, m1 uint64, acc int)

// hasGemvAsm reports whether the assembly GEMV kernels are built.
const hasGemvAsm = true

// gemvVNNIGo checks the slices and runs the VNNI small-M kernel on rows
// (1..4) rows and np panels of B, the last one with ncols (1..32) columns;
// it is gemvGo's twin.
func gemvVNNIGo(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	checkGemv(kg, a, lda, rows, b, pstride, np, c, ldc, ncols)
	full := np
	if ncols < nr {
		full--
	}
	if full > 0 {
		gemvVNNIRows(rows, kg, &a[0], lda, &b[0], pstride, full, &c[0], ldc, 0xffff, 0xffff, b2i(acc))
	}
	if full < np {
		m0 := uint64(1)<<min(ncols, 16) - 1
		m1 := uint64(0)
		if ncols > 16 {
			m1 = uint64(1)<<(ncols-16) - 1
		}
		gemvVNNIRows(rows, kg, &a[0], lda, &b[full*pstride], pstride, 1, &c[full*nr], ldc, m0, m1, b2i(acc))
	}
}

// gemvVNNIRows calls the kernel of rows rows.
func gemvVNNIRows(rows, kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, m0, m1 uint64, acc int) {
	switch rows {
	case 1:
		gemvVNNI1(kg, a, lda, b, pstride, np, c, ldc, m0, m1, acc)
	case 2:
		gemvVNNI2(kg, a, lda, b, pstride, np, c, ldc, m0, m1, acc)
	case 3:
		gemvVNNI3(kg, a, lda, b, pstride, np, c, ldc, m0, m1, acc)
	default:
		gemvVNNI4(kg, a, lda, b, pstride, np, c, ldc, m0, m1, acc)
	}
}

// gemvAVXVNNI1..gemvAVXVNNI3 are the AVX-VNNI (VEX VPDPBUSD ymm) small-M
// kernels of 1 to 3 rows: like gemvVNNI*, but every one of the np panels
// is stored whole (32 columns; 2 panels per step for one row, then
// single panels).
//
//go:noescape
func gemvAVXVNNI1(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, acc int)

//go:noescape
func gemvAVXVNNI2(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, acc int)

//go:noescape
func gemvAVXVNNI3(kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, acc int)

// gemvAVXVNNIGo checks the slices and runs the AVX-VNNI small-M kernels
// (gemvGo's twin, as gemvVNNIGo): 4 rows as two calls of 2, a partial
// last panel through a buffer on the stack.
func gemvAVXVNNIGo(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	checkGemv(kg, a, lda, rows, b, pstride, np, c, ldc, ncols)
	if rows == 4 {
		gemvAVXVNNIGo(kg, a, lda, 2, b, pstride, np, c, ldc, ncols, acc)
		gemvAVXVNNIGo(kg, a[2*lda:], lda, 2, b, pstride, np, c[2*ldc:], ldc, ncols, acc)
		return
	}
	full := np
	if ncols < nr {
		full--
	}
	if full > 0 {
		gemvAVXVNNIRows(rows, kg, &a[0], lda, &b[0], pstride, full, &c[0], ldc, b2i(acc))
	}
	if full < np {
		var buf [3 * nr]int32
		for r := range rows {
			if acc {
				copy(buf[r*nr:r*nr+ncols], c[r*ldc+full*nr:])
			}
		}
		gemvAVXVNNIRows(rows, kg, &a[0], lda, &b[full*pstride], pstride, 1, &buf[0], nr, b2i(acc))
		for r := range rows {
			copy(c[r*ldc+full*nr:r*ldc+full*nr+ncols], buf[r*nr:])
		}
	}
}

// gemvAVXVNNIRows calls the AVX-VNNI kernel of rows (1..3) rows.
func gemvAVXVNNIRows(rows, kg int, a *uint8, lda int, b *int8, pstride, np int, c *int32, ldc int, acc int) {
	switch rows {
	case 1:
		gemvAVXVNNI1(kg, a, lda, b, pstride, np, c, ldc, acc)
	case 2:
		gemvAVXVNNI2(kg, a, lda, b, pstride, np, c, ldc, acc)
	default:
		gemvAVXVNNI3(kg, a, lda, b, pstride, np, c, ldc, acc)
	}
}
