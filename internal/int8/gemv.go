package int8

import "github.com/goslim/goslim/internal/kernel"

// Small-M products (GEMV). With 1 to gemvMaxRows rows of A the tile
// kernels would compute whole register tiles (12 or 24 rows on VNNI) for
// a few useful rows; the GEMV path instead streams every panel of packed
// B once against all rows (gemvVNNI*, memory-bound: about one 64-byte
// load of B per VPDPBUSD and row), over the whole of K per call, with
// units of gemvUnit panels for threads. It runs for the avx512vnni
// kernel (and amx, whose CPUs have AVX-512 VNNI) and, on ymm, for the
// avxvnni kernel (gemvAVXVNNI*; 4 rows as two passes of 2); the avx2
// kernel keeps its 6-row tiles and the pure-Go kernel's tiles already
// skip missing rows.

// gemvMaxRows is the largest M the GEMV path takes.
const gemvMaxRows = 4

// gemvUnit is the panels (of nr columns) per unit of a GEMV Task.
const gemvUnit = 4

// gemvOK reports whether an operation of M rows runs the GEMV path on
// kernel k.
func gemvOK(k Kernel, m int) bool {
	// kernel.TierVNNI.Available is KernelVNNI.Available without the AMX
	// self-test that Kernel.Available refers to (an initialization cycle).
	if !hasGemvAsm || m > gemvMaxRows {
		return false
	}
	switch k {
	case KernelVNNI, KernelAMX:
		return kernel.TierVNNI.Available()
	case KernelAVXVNNI:
		return hasAVXVNNI() && kernel.TierAVX2.Available()
	}
	return false
}

// gemvGo is the pure-Go twin of the GEMV kernels: for np panels of packed
// B (pstride bytes apart, the last one with ncols columns) it computes
// c[r*ldc + 32p + j] (+)= sum over kg groups g of 4 k-values of
// a[r*lda+4g+t] * b[p*pstride + 128g + 4j + t] for r < rows; with acc it
// adds to c.
func gemvGo(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	checkGemv(kg, a, lda, rows, b, pstride, np, c, ldc, ncols)
	for r := range rows {
		ar := a[r*lda : r*lda+4*kg]
		for p := range np {
			n := nr
			if p == np-1 {
				n = ncols
			}
			var s [nr]int32
			bp := b[p*pstride : p*pstride+kg*nr*4]
			for g := range kg {
				x := (*[4]uint8)(ar[4*g:])
				x0, x1, x2, x3 := int32(x[0]), int32(x[1]), int32(x[2]), int32(x[3])
				bb := (*[nr * 4]int8)(bp[g*nr*4:])
				for j := range nr {
					w := (*[4]int8)(bb[4*j:])
					s[j] += x0*int32(w[0]) + x1*int32(w[1]) + x2*int32(w[2]) + x3*int32(w[3])
				}
			}
			dst := c[r*ldc+p*nr : r*ldc+p*nr+n]
			for j := range dst {
				if acc {
					dst[j] += s[j]
				} else {
					dst[j] = s[j]
				}
			}
		}
	}
}

// checkGemv panics unless the slices hold what a GEMV call reads and
// writes.
func checkGemv(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int) {
	if kg < 1 || rows < 1 || rows > gemvMaxRows || np < 1 || ncols < 1 || ncols > nr || pstride < kg*nr*4 || ldc < (np-1)*nr+ncols && rows > 1 {
		panic("int8: bad GEMV call")
	}
	_ = a[(rows-1)*lda+4*kg-1]
	_ = b[(np-1)*pstride+kg*nr*4-1]
	_ = c[(rows-1)*ldc+(np-1)*nr+ncols-1]
}

// runGemv computes GEMV units [lo, hi) (groups of gemvUnit panels) for
// all M rows, over the whole of K in blocks of kc groups when A must be
// copied (its last row's whole groups of 4 k-values would pass the end
// of A), else in one pass.
func (t *Task) runGemv(lo, hi int) {
	b := t.Op.B
	np := (b.N + nr - 1) / nr
	p0, p1 := lo*gemvUnit, min(hi*gemvUnit, np)
	if p0 >= p1 {
		return
	}
	M := t.Op.M
	if (M-1)*t.lda+b.kp > len(t.a) {
		t.gemvTail(p0, p1)
		return
	}
	t.gemvCall(t.a, t.lda, b.kp/4, 0, p0, p1, t.Op.Accumulate)
}

// gemvCall runs the GEMV kernel on kg groups of A (rows M, stride lda)
// from group g0 of B, panels [p0, p1).
func (t *Task) gemvCall(a []uint8, lda, kg, g0, p0, p1 int, acc bool) {
	b := t.Op.B
	ncols := min(nr, b.N-(p1-1)*nr)
	bp := b.data[p0*b.ks*nr+g0*nr*4:]
	c := t.Op.C[p0*nr:]
	t.gemvKernel(kg, a, lda, t.Op.M, bp, b.ks*nr, p1-p0, c, t.ldc, ncols, acc)
}

// gemvKernel runs the GEMV kernel (its Go twin in tests with gemvTwin).
func (t *Task) gemvKernel(kg int, a []uint8, lda, rows int, b []int8, pstride, np int, c []int32, ldc, ncols int, acc bool) {
	switch {
	case t.gemvTwin:
		gemvGo(kg, a, lda, rows, b, pstride, np, c, ldc, ncols, acc)
	case t.Kernel == KernelAVXVNNI:
		gemvAVXVNNIGo(kg, a, lda, rows, b, pstride, np, c, ldc, ncols, acc)
	default:
		gemvVNNIGo(kg, a, lda, rows, b, pstride, np, c, ldc, ncols, acc)
	}
}

// gemvTail is runGemv through a buffer on the stack: A is copied one K
// block (kc groups) at a time, zero padded.
func (t *Task) gemvTail(p0, p1 int) {
	var buf [gemvMaxRows * 4 * kc]uint8
	b, M := t.Op.B, t.Op.M
	kg := b.kp / 4
	for g0 := 0; g0 < kg; g0 += kc {
		gn := min(kc, kg-g0)
		k0, k1 := 4*g0, min(4*(g0+gn), b.K)
		for r := range M {
			row := buf[r*4*gn : (r+1)*4*gn]
			n := copy(row, t.a[r*t.lda+k0:r*t.lda+k1])
			clear(row[n:])
		}
		t.gemvCall(buf[:], 4*gn, gn, g0, p0, p1, g0 > 0 || t.Op.Accumulate)
	}
}
