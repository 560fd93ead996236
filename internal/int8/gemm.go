package int8

import "github.com/goslim/goslim/internal/kernel"

// Tile sizes of the micro-kernels: mr rows of A by nr columns of B (two
// 16-lane int32 vectors).
const (
	mr = 12
	nr = 32
	kc = 256 // k-groups (of 4) per cache block
)

// PackedB is a K x N int8 matrix packed for Gemm: panels of nr columns;
// inside a panel, for each group g of 4 k-values, nr columns of 4 bytes
// (B[4g..4g+3][j]), so one 64-byte load gives 16 int32 lanes of 4 int8
// each, as VPDPBUSD wants. K is padded with zero rows to a multiple of 4
// and N with zero columns to a multiple of nr.
type PackedB struct {
	K, N   int
	kp     int     // K rounded up to a multiple of 4
	data   []int8  // panels, each kp*nr bytes
	colSum []int32 // column sums of B
}

// PackB packs the row-major K x N matrix b (len >= K*N) once, e.g. for
// constant weights. It panics if K or N is not positive or b is short.
func PackB(b []int8, K, N int) *PackedB {
	if K <= 0 || N <= 0 || len(b) < K*N {
		panic("int8: PackB: bad shape")
	}
	kp := (K + 3) &^ 3
	np := (N + nr - 1) / nr
	p := &PackedB{K: K, N: N, kp: kp, data: make([]int8, np*kp*nr), colSum: ColSums(b, K, N, nil)}
	for pi := range np {
		panel := p.data[pi*kp*nr : (pi+1)*kp*nr]
		j0 := pi * nr
		jn := min(nr, N-j0)
		for k := range K {
			row := b[k*N+j0 : k*N+j0+jn]
			base := (k>>2)*nr*4 + k&3
			for j, v := range row {
				panel[base+4*j] = v
			}
		}
	}
	return p
}

// ColSums returns the column sums of B (computed at packing).
func (p *PackedB) ColSums() []int32 { return p.colSum }

// RowSums stores in dst (grown if short; returned) the row sums of the
// row-major M x K uint8 matrix a.
//
// Zero-point correction: for asymmetric A with zero point za and
// symmetric B (zero point 0),
//
//	C[m][n] = sum_k (A[m][k]-za) B[k][n] = (A B)[m][n] - za*colsum(B)[n].
//
// If B also has a zero point zb, further subtract zb*rowsum(A)[m] and add
// K*za*zb.
func RowSums(a []uint8, M, K int, dst []int32) []int32 {
	if cap(dst) < M {
		dst = make([]int32, M)
	}
	dst = dst[:M]
	for m := range M {
		var s int32
		for _, v := range a[m*K : m*K+K] {
			s += int32(v)
		}
		dst[m] = s
	}
	return dst
}

// ColSums stores in dst (grown if short; returned) the column sums of the
// row-major K x N int8 matrix b (see RowSums for the formula).
func ColSums(b []int8, K, N int, dst []int32) []int32 {
	if cap(dst) < N {
		dst = make([]int32, N)
	}
	dst = dst[:N]
	clear(dst)
	for k := range K {
		for j, v := range b[k*N : k*N+N] {
			dst[j] += int32(v)
		}
	}
	return dst
}

// GemmRef is the plain reference loop: c[m*N+n] = sum_k a[m*K+k]*b[k*N+n]
// with int32 (wrapping) accumulation.
func GemmRef(c []int32, a []uint8, b []int8, M, N, K int) {
	for m := range M {
		for n := range N {
			var s int32
			for k := range K {
				s += int32(a[m*K+k]) * int32(b[k*N+n])
			}
			c[m*N+n] = s
		}
	}
}

// Gemm computes c = a * b (c row-major M x b.N, a row-major M x b.K).
// Tiers kernel.TierVNNI and above run the AVX-512 VNNI kernel when the
// CPU and build allow it; lower tiers (and -tags noasm) run pure Go. Both
// give exactly GemmRef's result. When K is not a multiple of 4, or for
// the last rows when M is not a multiple of 12, A is copied into a
// zero-padded buffer.
func Gemm(t kernel.Tier, c []int32, a []uint8, M int, b *PackedB) {
	if M <= 0 {
		return
	}
	K, N, kp := b.K, b.N, b.kp
	_ = a[M*K-1]
	_ = c[M*N-1]
	useVNNI := t >= kernel.TierVNNI && hasVNNI && kernel.TierVNNI.Available()
	lda := K
	if K != kp {
		pa := make([]uint8, M*kp)
		for m := range M {
			copy(pa[m*kp:], a[m*K:m*K+K])
		}
		a, lda = pa, kp
	}
	kg := kp / 4
	mFull := M / mr * mr
	var tail []uint8
	if mFull < M {
		tail = make([]uint8, mr*kp)
		for m := mFull; m < M; m++ {
			copy(tail[(m-mFull)*kp:], a[m*lda:m*lda+K])
		}
	}
	for g0 := 0; g0 < kg; g0 += kc {
		gn := min(kc, kg-g0)
		for p0 := 0; p0 < N; p0 += nr {
			bp := b.data[p0/nr*kp*nr+g0*nr*4 : (p0/nr+1)*kp*nr]
			nc := min(nr, N-p0)
			for m0 := 0; m0 < M; m0 += mr {
				ap, ld, rows := a[m0*lda+4*g0:], lda, mr
				if m0 >= mFull {
					ap, ld, rows = tail[4*g0:], kp, M-m0
				}
				cp := c[m0*N+p0:]
				if useVNNI {
					tileVNNIGo(gn, ap, ld, bp, cp, N, rows, nc, g0 > 0)
				} else {
					tileGo(gn, ap, ld, bp, cp, N, rows, nc, g0 > 0)
				}
			}
		}
	}
}

// tileGo is the pure-Go micro-kernel: c[r*ldc+j] = sum over kg groups of
// 4 k-values of a[r*lda+4g+t]*b[g*128+4j+t], for r < rows, j < ncols.
// It runs four rows at a time, then single rows. With acc it adds to c.
func tileGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool) {
	b = b[:kg*nr*4]
	r := 0
	for ; r+3 < rows; r += 4 {
		var acc0, acc1, acc2, acc3 [nr]int32
		if acc {
			copy(acc0[:], c[r*ldc:r*ldc+ncols])
			copy(acc1[:], c[(r+1)*ldc:(r+1)*ldc+ncols])
			copy(acc2[:], c[(r+2)*ldc:(r+2)*ldc+ncols])
			copy(acc3[:], c[(r+3)*ldc:(r+3)*ldc+ncols])
		}
		a0 := a[r*lda : r*lda+4*kg]
		a1 := a[(r+1)*lda : (r+1)*lda+4*kg]
		a2 := a[(r+2)*lda : (r+2)*lda+4*kg]
		a3 := a[(r+3)*lda : (r+3)*lda+4*kg]
		for g := range kg {
			p0 := (*[4]uint8)(a0[4*g:])
			p1 := (*[4]uint8)(a1[4*g:])
			p2 := (*[4]uint8)(a2[4*g:])
			p3 := (*[4]uint8)(a3[4*g:])
			x0, x1, x2, x3 := int32(p0[0]), int32(p0[1]), int32(p0[2]), int32(p0[3])
			y0, y1, y2, y3 := int32(p1[0]), int32(p1[1]), int32(p1[2]), int32(p1[3])
			u0, u1, u2, u3 := int32(p2[0]), int32(p2[1]), int32(p2[2]), int32(p2[3])
			v0, v1, v2, v3 := int32(p3[0]), int32(p3[1]), int32(p3[2]), int32(p3[3])
			bb := (*[nr * 4]int8)(b[g*nr*4:])
			for j := range nr {
				w := (*[4]int8)(bb[4*j:])
				w0, w1, w2, w3 := int32(w[0]), int32(w[1]), int32(w[2]), int32(w[3])
				acc0[j] += x0*w0 + x1*w1 + x2*w2 + x3*w3
				acc1[j] += y0*w0 + y1*w1 + y2*w2 + y3*w3
				acc2[j] += u0*w0 + u1*w1 + u2*w2 + u3*w3
				acc3[j] += v0*w0 + v1*w1 + v2*w2 + v3*w3
			}
		}
		copy(c[r*ldc:r*ldc+ncols], acc0[:ncols])
		copy(c[(r+1)*ldc:(r+1)*ldc+ncols], acc1[:ncols])
		copy(c[(r+2)*ldc:(r+2)*ldc+ncols], acc2[:ncols])
		copy(c[(r+3)*ldc:(r+3)*ldc+ncols], acc3[:ncols])
	}
	for ; r < rows; r++ {
		var acc0 [nr]int32
		if acc {
			copy(acc0[:], c[r*ldc:r*ldc+ncols])
		}
		a0 := a[r*lda : r*lda+4*kg]
		for g := range kg {
			p0 := (*[4]uint8)(a0[4*g:])
			x0, x1, x2, x3 := int32(p0[0]), int32(p0[1]), int32(p0[2]), int32(p0[3])
			bb := (*[nr * 4]int8)(b[g*nr*4:])
			for j := range nr {
				w := (*[4]int8)(bb[4*j:])
				acc0[j] += x0*int32(w[0]) + x1*int32(w[1]) + x2*int32(w[2]) + x3*int32(w[3])
			}
		}
		copy(c[r*ldc:r*ldc+ncols], acc0[:ncols])
	}
}
