// Package fp32 holds goslim's pure-Go float32 building blocks: a
// cache-blocked, register-tiled SGEMM and the im2col/col2im transforms that
// turn a convolution into a matrix product.
//
// Matrices are row-major with an explicit leading dimension (the distance
// in elements between the starts of consecutive rows), as in CBLAS with
// CblasRowMajor. Assembly versions (AVX2, AVX-512) keep the same signatures;
// each is tested against the pure-Go code here, whose reference loops are
// GemmRef and the doc comments.
package fp32

import (
	"fmt"
	"sync"
)

// Blocking parameters of Gemm. A packed block of op(A) holds gemmMC x gemmKC
// values (L2-resident), a packed panel of op(B) gemmKC x gemmNC values
// (L3-resident); the register tile is gemmMR x gemmNR.
const (
	gemmMR = 2
	gemmNR = 4
	gemmKC = 256
	gemmMC = 96
	gemmNC = 1024
)

// packBuf holds the packed A block and B panel of one Gemm call.
type packBuf struct {
	a [gemmMC * gemmKC]float32
	b [gemmKC * gemmNC]float32
}

// packPool recycles packing buffers so that Gemm does not allocate in the
// steady state. It is a cache, not state: any buffer serves any call.
var packPool = sync.Pool{New: func() any { return new(packBuf) }}

// Gemm computes C = alpha*op(A)*op(B) + beta*C, where op(A) is m x k (A
// stored m x k with leading dimension lda, or k x m when transA), op(B) is
// k x n (B stored k x n with leading dimension ldb, or n x k when transB)
// and C is m x n with leading dimension ldc. When beta is 0, C is not read
// (NaNs in C do not propagate). Only the m x n elements of C are written.
//
// The reference loop is GemmRef. Gemm panics if a dimension is negative or
// a slice is too short, like BLAS implementations.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m < gemmMR || n < gemmNR || m*n*k < 2048 {
		gemmSmall(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	buf := packPool.Get().(*packBuf)
	gemmBlocked(transA, m, n, k, alpha, a, lda, beta, c, ldc, buf, func(jc, pc, kb, nb int) []float32 {
		packB(transB, kb, nb, b, ldb, pc, jc, buf.b[:])
		return buf.b[:]
	})
	packPool.Put(buf)
}

// gemmBlocked runs the blocked loops of Gemm; panelB returns the packed
// kb x nb panel of op(B) at (pc, jc).
func gemmBlocked(transA bool, m, n, k int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int,
	buf *packBuf, panelB func(jc, pc, kb, nb int) []float32) {
	for jc := 0; jc < n; jc += gemmNC {
		nb := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kb := min(gemmKC, k-pc)
			pb := panelB(jc, pc, kb, nb)
			bt := beta
			if pc > 0 {
				bt = 1
			}
			for ic := 0; ic < m; ic += gemmMC {
				mb := min(gemmMC, m-ic)
				packA(transA, mb, kb, a, lda, ic, pc, buf.a[:])
				macroKernel(mb, nb, kb, alpha, buf.a[:], pb, bt, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

// PackedB is the right-hand operand op(B) of Gemm packed once into the
// layout the blocked loops read, for repeated products with a constant
// matrix (a layer's weights). It is read-only after PackB and safe for
// concurrent use.
type PackedB struct {
	k, n int
	data []float32
	// The source matrix, kept for single-row products, where the unpacked
	// row-update loop is faster than a half-empty register tile.
	src    []float32
	ldb    int
	transB bool
}

// PackB packs op(B), a k x n matrix (B stored k x n with leading dimension
// ldb, or n x k when transB). The PackedB refers to b, which must not
// change while it is in use. It panics on bad dimensions, like Gemm.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("fp32: negative PackB dimension k=%d n=%d", k, n))
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMat("B", br, bc, b, ldb)
	nr := (n + gemmNR - 1) / gemmNR * gemmNR
	p := &PackedB{k: k, n: n, data: make([]float32, k*nr), src: b, ldb: ldb, transB: transB}
	for jc := 0; jc < n; jc += gemmNC {
		nb := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kb := min(gemmKC, k-pc)
			packB(transB, kb, nb, b, ldb, pc, jc, p.panel(jc, pc, kb, nb))
		}
	}
	return p
}

// panel returns the packed kb x nb block at (pc, jc): column blocks of
// gemmNC (a multiple of gemmNR) follow each other, each holding its depth
// blocks in order.
func (p *PackedB) panel(jc, pc, kb, nb int) []float32 {
	nbp := (nb + gemmNR - 1) / gemmNR * gemmNR
	off := jc*p.k + pc*nbp
	return p.data[off : off+kb*nbp]
}

// K returns the number of rows of op(B).
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of op(B).
func (p *PackedB) N() int { return p.n }

// GemmPacked computes C = alpha*op(A)*B + beta*C like Gemm, with B packed
// by PackB (k = b.K(), n = b.N()).
func GemmPacked(transA bool, m int, alpha float32, a []float32, lda int, b *PackedB, beta float32, c []float32, ldc int) {
	n, k := b.n, b.k
	if m < 0 {
		panic(fmt.Sprintf("fp32: negative GemmPacked dimension m=%d", m))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	checkMat("A", ar, ac, a, lda)
	checkMat("C", m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m < gemmMR {
		gemmSmall(transA, b.transB, m, n, k, alpha, a, lda, b.src, b.ldb, beta, c, ldc)
		return
	}
	buf := packPool.Get().(*packBuf)
	gemmBlocked(transA, m, n, k, alpha, a, lda, beta, c, ldc, buf, b.panel)
	packPool.Put(buf)
}

// GemmRef is the plain reference loop for Gemm:
//
//	for i < m, j < n: C[i][j] = alpha * sum_p op(A)[i][p]*op(B)[p][j] + beta*C[i][j]
//
// with beta == 0 meaning C is overwritten. It is used by tests.
func GemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += x * y
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// checkGemm panics unless the dimensions and slices describe valid
// matrices.
func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("fp32: negative Gemm dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMat("A", ar, ac, a, lda)
	checkMat("B", br, bc, b, ldb)
	checkMat("C", m, n, c, ldc)
}

func checkMat(name string, r, c int, s []float32, ld int) {
	if ld < max(1, c) {
		panic(fmt.Sprintf("fp32: Gemm %s leading dimension %d < %d", name, ld, c))
	}
	if r > 0 && c > 0 && len(s) < (r-1)*ld+c {
		panic(fmt.Sprintf("fp32: Gemm %s has %d elements, want at least %d", name, len(s), (r-1)*ld+c))
	}
}

// scaleC sets C = beta*C (C = 0 when beta is 0).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// gemmSmall handles problems too small or too thin to pay for packing.
func gemmSmall(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if transB {
			// C[i][j] += alpha * dot(op(A)[i][:], B[j][:]).
			for j := range crow {
				brow := b[j*ldb : j*ldb+k]
				var s float32
				if transA {
					for p, y := range brow {
						s += a[p*lda+i] * y
					}
				} else {
					arow := a[i*lda : i*lda+k]
					for p, y := range brow {
						s += arow[p] * y
					}
				}
				crow[j] += alpha * s
			}
			continue
		}
		// C[i][:] += alpha * op(A)[i][p] * B[p][:].
		for p := 0; p < k; p++ {
			var x float32
			if transA {
				x = a[p*lda+i]
			} else {
				x = a[i*lda+p]
			}
			if x == 0 {
				continue
			}
			x *= alpha
			axpy(x, b[p*ldb:p*ldb+n], crow)
		}
	}
}

// axpy computes y += alpha*x.
func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs := x[i : i+4 : i+4]
		ys := y[i : i+4 : i+4]
		ys[0] += alpha * xs[0]
		ys[1] += alpha * xs[1]
		ys[2] += alpha * xs[2]
		ys[3] += alpha * xs[3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// packA copies the mb x kb block of op(A) starting at (i0, p0) into dst as
// strips of gemmMR rows: strip s holds, for each p, the gemmMR values
// op(A)[i0+s*gemmMR+r][p0+p], zero-padded past mb.
func packA(trans bool, mb, kb int, a []float32, lda, i0, p0 int, dst []float32) {
	for s := 0; s < mb; s += gemmMR {
		rows := min(gemmMR, mb-s)
		d := dst[s*kb : s*kb+kb*gemmMR]
		if trans {
			// op(A)[i][p] = a[p*lda+i]: gemmMR consecutive values per p.
			for p := 0; p < kb; p++ {
				src := a[(p0+p)*lda+i0+s:]
				dd := d[p*gemmMR : p*gemmMR+gemmMR : p*gemmMR+gemmMR]
				if rows == gemmMR {
					src = src[:gemmMR:gemmMR]
					dd[0], dd[1] = src[0], src[1]
					continue
				}
				dd[0], dd[1] = src[0], 0
			}
			continue
		}
		for r := 0; r < gemmMR; r++ {
			if r >= rows {
				for p := 0; p < kb; p++ {
					d[p*gemmMR+r] = 0
				}
				continue
			}
			src := a[(i0+s+r)*lda+p0 : (i0+s+r)*lda+p0+kb]
			for p, v := range src {
				d[p*gemmMR+r] = v
			}
		}
	}
}

// packB copies the kb x nb panel of op(B) starting at (p0, j0) into dst as
// strips of gemmNR columns: strip s holds, for each p, the gemmNR values
// op(B)[p0+p][j0+s*gemmNR+c], zero-padded past nb.
func packB(trans bool, kb, nb int, b []float32, ldb, p0, j0 int, dst []float32) {
	for s := 0; s < nb; s += gemmNR {
		cols := min(gemmNR, nb-s)
		d := dst[s*kb : s*kb+kb*gemmNR]
		if !trans {
			// op(B)[p][j] = b[p*ldb+j]: gemmNR consecutive values per p.
			for p := 0; p < kb; p++ {
				src := b[(p0+p)*ldb+j0+s:]
				dd := d[p*gemmNR : p*gemmNR+gemmNR : p*gemmNR+gemmNR]
				if cols == gemmNR {
					src = src[:gemmNR:gemmNR]
					dd[0], dd[1], dd[2], dd[3] = src[0], src[1], src[2], src[3]
					continue
				}
				for c := 0; c < gemmNR; c++ {
					if c < cols {
						dd[c] = src[c]
					} else {
						dd[c] = 0
					}
				}
			}
			continue
		}
		for c := 0; c < gemmNR; c++ {
			if c >= cols {
				for p := 0; p < kb; p++ {
					d[p*gemmNR+c] = 0
				}
				continue
			}
			src := b[(j0+s+c)*ldb+p0 : (j0+s+c)*ldb+p0+kb]
			for p, v := range src {
				d[p*gemmNR+c] = v
			}
		}
	}
}

// macroKernel multiplies a packed mb x kb block of A by a packed kb x nb
// panel of B into C (C = alpha*AB + beta*C, beta 0 meaning overwrite).
func macroKernel(mb, nb, kb int, alpha float32, pa, pb []float32, beta float32, c []float32, ldc int) {
	var tile [gemmMR * gemmNR]float32
	for j := 0; j < nb; j += gemmNR {
		cols := min(gemmNR, nb-j)
		bs := pb[j*kb : j*kb+kb*gemmNR]
		for i := 0; i < mb; i += gemmMR {
			rows := min(gemmMR, mb-i)
			as := pa[i*kb : i*kb+kb*gemmMR]
			if rows == gemmMR && cols == gemmNR {
				kernel2x4(kb, as, bs, alpha, beta, c[i*ldc+j:], ldc)
				continue
			}
			clear(tile[:])
			kernel2x4(kb, as, bs, 1, 0, tile[:], gemmNR)
			for r := 0; r < rows; r++ {
				crow := c[(i+r)*ldc+j : (i+r)*ldc+j+cols]
				for q := range crow {
					if beta == 0 {
						crow[q] = alpha * tile[r*gemmNR+q]
					} else {
						crow[q] = alpha*tile[r*gemmNR+q] + beta*crow[q]
					}
				}
			}
		}
	}
}

// kernel2x4 computes the 2x4 tile C = alpha*A*B + beta*C (beta 0 meaning
// overwrite) from packed strips a (k x 2, row values interleaved) and b
// (k x 4). A 2x4 tile keeps its 8 accumulators and 6 operands in
// registers; larger tiles spill with the Go compiler.
func kernel2x4(k int, a, b []float32, alpha, beta float32, c []float32, ldc int) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	a = a[:2*k]
	b = b[:4*k]
	for len(a) >= 2 && len(b) >= 4 {
		a0, a1 := a[0], a[1]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a = a[2:]
		b = b[4:]
	}
	r0 := c[0:4:4]
	r1 := c[ldc : ldc+4 : ldc+4]
	if beta == 0 {
		r0[0], r0[1], r0[2], r0[3] = alpha*c00, alpha*c01, alpha*c02, alpha*c03
		r1[0], r1[1], r1[2], r1[3] = alpha*c10, alpha*c11, alpha*c12, alpha*c13
		return
	}
	r0[0], r0[1], r0[2], r0[3] = alpha*c00+beta*r0[0], alpha*c01+beta*r0[1], alpha*c02+beta*r0[2], alpha*c03+beta*r0[3]
	r1[0], r1[1], r1[2], r1[3] = alpha*c10+beta*r1[0], alpha*c11+beta*r1[1], alpha*c12+beta*r1[2], alpha*c13+beta*r1[3]
}
