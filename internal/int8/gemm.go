package int8

import (
	"fmt"
	"sync"

	"github.com/goslim/goslim/internal/kernel"
)

// Layout constants shared by every kernel.
const (
	nr     = 32  // columns per packed panel of B
	kc     = 256 // k-groups (of 4) per cache block
	kAlign = 64  // K is stored padded with zeros to a multiple of kAlign (AMX tiles read 64 k-values)
)

// PackedB is a K x N int8 matrix packed for Gemm: panels of nr columns;
// inside a panel, for each group g of 4 k-values, nr columns of 4 bytes
// (B[4g..4g+3][j]), so one 64-byte load gives 16 int32 lanes of 4 int8
// each, as VPDPBUSD wants (and a 16-column half is an AMX B-tile row).
// K is stored padded with zero rows to a multiple of 64 and N with zero
// columns to a multiple of nr. A PackedB is read-only after PackB and safe
// for concurrent use; every Kernel reads the same layout.
type PackedB struct {
	K, N     int
	kp       int     // K rounded up to a multiple of 4: the groups kernels iterate
	ks       int     // K rounded up to kAlign: the rows stored per panel
	data     []int8  // panels, each ks*nr bytes
	colSum   []int32 // column sums of B
	pairSafe bool    // no pair of adjacent k-values can saturate VPMADDUBSW

	w16Once sync.Once
	w16     []int8 // B widened to int16 for the exact AVX2 kernel (widen), built on first use
}

// PackB packs the row-major K x N matrix b (len >= K*N) once, e.g. for
// constant weights. It panics if K or N is not positive or b is short.
func PackB(b []int8, K, N int) *PackedB {
	if K <= 0 || N <= 0 || len(b) < K*N {
		panic(fmt.Sprintf("int8: PackB: bad shape K=%d N=%d with %d values", K, N, len(b)))
	}
	kp := (K + 3) &^ 3
	ks := (K + kAlign - 1) / kAlign * kAlign
	np := (N + nr - 1) / nr
	p := &PackedB{K: K, N: N, kp: kp, ks: ks, data: make([]int8, np*ks*nr), colSum: ColSums(b, K, N, nil)}
	for pi := range np {
		panel := p.data[pi*ks*nr : (pi+1)*ks*nr]
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
	p.pairSafe = pairsSafe(b, K, N)
	return p
}

// widened returns B as int16 pairs for the exact AVX2 kernel, building it
// on first use: per panel and group of 4 k-values, 256 bytes = two
// 16-column halves of 4 vectors of 8 dwords; vector v of a half holds
// columns {c, c+1, c+4, c+5} (c = 8(v/2) + 2(v%2)), each as the int16
// pairs (B[4g][j], B[4g+1][j]) then (B[4g+2][j], B[4g+3][j]).
func (p *PackedB) widened() []int8 {
	p.w16Once.Do(func() {
		groups := p.ks / 4
		np := (p.N + nr - 1) / nr
		w := make([]int8, np*groups*256)
		cols := [8]int{0, 0, 1, 1, 4, 4, 5, 5}
		for pi := range np {
			panel := p.data[pi*p.ks*nr:]
			for g := range groups {
				row := w[(pi*groups+g)*256:]
				for h := range 2 {
					for v := range 4 {
						c0 := 16*h + 8*(v/2) + 2*(v%2)
						for l := range 8 {
							j, pair := c0+cols[l], l%2
							off := 128*h + 32*v + 4*l
							for e := range 2 {
								x := int16(panel[g*nr*4+4*j+2*pair+e])
								row[off+2*e] = int8(x)
								row[off+2*e+1] = int8(x >> 8)
							}
						}
					}
				}
			}
		}
		p.w16 = w
	})
	return p.w16
}

// pairsSafe reports whether, for every column and every pair of k-values
// (2h, 2h+1), a0*b0 + a1*b1 stays in int16 for all uint8 a0, a1: the
// positive weights of the pair sum to at most 128 and the negative ones
// to at least -128 (255*128 = 32640). Weights with |w| <= 64 always pass.
func pairsSafe(b []int8, K, N int) bool {
	for k := 0; k < K; k += 2 {
		r0 := b[k*N : k*N+N]
		var r1 []int8
		if k+1 < K {
			r1 = b[(k+1)*N : (k+1)*N+N]
		}
		for j, v0 := range r0 {
			var v1 int8
			if r1 != nil {
				v1 = r1[j]
			}
			pos := max(int(v0), 0) + max(int(v1), 0)
			neg := min(int(v0), 0) + min(int(v1), 0)
			if pos > 128 || neg < -128 {
				return false
			}
		}
	}
	return true
}

// ColSums returns the column sums of B (computed at packing).
func (p *PackedB) ColSums() []int32 { return p.colSum }

// SaturationFree reports whether VPMADDUBSW cannot saturate on these
// weights, so the AVX2 kernel takes its fast path (otherwise it takes an
// exact path on int16-widened weights, about 0.75x as fast; both equal
// GemmRef).
func (p *PackedB) SaturationFree() bool { return p.pairSafe }

// PackedA is an M x K uint8 matrix copied into rows of a 64-byte multiple,
// zero padded, with spare zero rows, so every kernel reads it in place
// without a tail copy (useful when A is constant or reused across several
// products).
type PackedA struct {
	M, K int
	ld   int // row stride: K rounded up to kAlign
	data []uint8
}

// PackA copies the row-major M x K matrix a (leading dimension lda >= K)
// into a PackedA. It panics on a bad shape or a short slice.
func PackA(a []uint8, M, K, lda int) *PackedA {
	if M <= 0 || K <= 0 || lda < K || len(a) < (M-1)*lda+K {
		panic(fmt.Sprintf("int8: PackA: bad shape M=%d K=%d lda=%d with %d values", M, K, lda, len(a)))
	}
	ld := (K + kAlign - 1) / kAlign * kAlign
	rows := (M+31)/32*32 + 32
	p := &PackedA{M: M, K: K, ld: ld, data: make([]uint8, rows*ld)}
	for m := range M {
		copy(p.data[m*ld:m*ld+K], a[m*lda:m*lda+K])
	}
	return p
}

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

// Gemm computes c = a * b (c row-major M x b.N, a row-major M x b.K) with
// the kernel For(t). Every kernel gives exactly GemmRef's result. Gemm
// allocates nothing; it runs on the calling goroutine (see
// Kernel.RunParallel and Task for threads).
func Gemm(t kernel.Tier, c []int32, a []uint8, M int, b *PackedB) {
	if M <= 0 {
		return
	}
	For(t).Run(&GemmOp{M: M, A: a, B: b, C: c})
}

// GemmOp is one product C (+)= A * B: A is M x B.K (uint8, row-major with
// leading dimension LdA, 0 meaning B.K; or PA when set), C is M x B.N
// (int32, leading dimension LdC, 0 meaning B.N). With Accumulate, C +=
// A*B; otherwise C is overwritten (never read). Only the M x N elements of
// C are written.
type GemmOp struct {
	M          int
	A          []uint8
	LdA        int
	PA         *PackedA
	B          *PackedB
	C          []int32
	LdC        int
	Accumulate bool
}

// Run computes op on the calling goroutine; it allocates nothing. It
// panics on inconsistent dimensions or short slices.
func (k Kernel) Run(op *GemmOp) {
	var t Task
	t.Kernel, t.Op = k, *op
	n := t.Split(1)
	t.Run(0, n)
}

// Parallelizer runs t.Run over [0, n) split into contiguous chunks, one
// per thread, and returns when all are done; *kernel.Ctx implements it.
type Parallelizer interface {
	ParallelTask(n int, t kernel.Task)
}

// RunParallel computes op split across up to threads threads through par.
// With threads <= 1 it is Run (nothing allocated); otherwise it allocates
// one Task (use a long-lived Task to avoid even that).
func (k Kernel) RunParallel(op *GemmOp, threads int, par Parallelizer) {
	if threads <= 1 || par == nil {
		k.Run(op)
		return
	}
	t := &Task{Kernel: k, Op: *op}
	par.ParallelTask(t.Split(threads), t)
}

// Task is a GemmOp split into independent units (row tiles or column
// tiles of C) for kernel.Ctx.ParallelTask. Keep it in a long-lived struct
// (a kernel's state) so passing it allocates nothing:
//
//	t.Kernel, t.Op = int8.For(tier), op
//	ctx.ParallelTask(t.Split(ctx.Threads), &t)
type Task struct {
	Kernel Kernel
	Op     GemmOp

	im        impl
	a         []uint8
	lda, ldc  int
	rowsAvail int    // rows a kernel may read in place (M, or PackedA's stored rows)
	alongN    bool   // units are column tiles (else row tiles)
	w16       []int8 // PackedB.widened for the exact AVX2 kernel
	gemv      bool   // small M: units are groups of gemvUnit panels run by the GEMV kernel
	amxEmu    bool   // tests: run the AMX driver on the Go emulation of the kernels
	mcBytes   int    // tests: the row-block size (0: mcBytes)
	noGemv    bool   // tests: small M on the tile kernels
	gemvTwin  bool   // tests: the GEMV path on its Go twin
}

// Split checks the operation, prepares the kernel and returns the number
// of units to hand to Run (0 when there is nothing to compute). threads
// only chooses whether to split rows or columns.
func (t *Task) Split(threads int) int {
	if t.Op.B == nil {
		panic("int8: Gemm without B")
	}
	return t.split(t.Kernel.impl(t.Op.B.pairSafe, t.Op.B.N), threads)
}

// split is Split with the kernel's tiles given.
func (t *Task) split(im impl, threads int) int {
	op := &t.Op
	if op.B == nil {
		panic("int8: Gemm without B")
	}
	M, K, N := op.M, op.B.K, op.B.N
	if M <= 0 {
		return 0
	}
	t.ldc = op.LdC
	if t.ldc == 0 {
		t.ldc = N
	}
	if t.ldc < N || len(op.C) < (M-1)*t.ldc+N {
		panic(fmt.Sprintf("int8: Gemm C has %d values with leading dimension %d, want a %dx%d matrix", len(op.C), t.ldc, M, N))
	}
	if op.PA != nil {
		if op.PA.M != M || op.PA.K != K {
			panic(fmt.Sprintf("int8: PackedA is %dx%d, want %dx%d", op.PA.M, op.PA.K, M, K))
		}
		t.a, t.lda, t.rowsAvail = op.PA.data, op.PA.ld, len(op.PA.data)/op.PA.ld
	} else {
		t.lda = op.LdA
		if t.lda == 0 {
			t.lda = K
		}
		if t.lda < K || len(op.A) < (M-1)*t.lda+K {
			panic(fmt.Sprintf("int8: Gemm A has %d values with leading dimension %d, want a %dx%d matrix", len(op.A), t.lda, M, K))
		}
		t.a, t.rowsAvail = op.A, M
	}
	t.im = im
	t.gemv = gemvOK(t.Kernel, M) && !t.amxEmu && !t.noGemv
	if t.gemv {
		return ((N+nr-1)/nr + gemvUnit - 1) / gemvUnit
	}
	if im.tile == tAVX2W {
		t.w16 = op.B.widened()
	}
	mTiles := (M + t.im.mr - 1) / t.im.mr
	nTiles := (N + t.im.nc - 1) / t.im.nc
	t.alongN = threads > 1 && mTiles < 2*threads && nTiles > mTiles
	if t.alongN {
		return nTiles
	}
	return mTiles
}

// Run computes units [lo, hi) (see Split); it implements kernel.Task.
func (t *Task) Run(lo, hi int) {
	M, N := t.Op.M, t.Op.B.N
	r0, r1, j0, j1 := 0, M, 0, (N+t.im.nc-1)/t.im.nc
	if t.alongN {
		j0, j1 = lo, hi
	} else {
		r0, r1 = lo*t.im.mr, min(hi*t.im.mr, M)
	}
	if t.gemv {
		t.runGemv(lo, hi)
		return
	}
	if r0 >= r1 || j0 >= j1 {
		return
	}
	if t.im.amx {
		t.runAMX(r0, r1, j0, j1)
		return
	}
	mr, kp := t.im.mr, t.Op.B.kp
	// Tiles from mt on are copied: they would read rows past M or bytes
	// past the end of A (the kernels read whole groups of 4 k-values, and
	// asm kernels always read mr rows).
	mt := r0
	for mt+mr <= r1 && mt+mr <= t.rowsAvail && (mt+mr-1)*t.lda+kp <= len(t.a) {
		mt += mr
	}
	if mt < r1 {
		if r1-mt > 2*mr {
			panic("int8: internal error: tail too long")
		}
		t.unitTail(r0, mt, r1, j0, j1)
		return
	}
	t.unit(r0, mt, r1, j0, j1, nil)
}

// mcBytes bounds the bytes of A one row block reads per K block (L2).
const mcBytes = 256 << 10

// maxTail is the tail buffer size: 2 tiles of the tallest non-AMX kernel
// (12 rows) by one K block.
const maxTail = 2 * 12 * 4 * kc

// unitTail is unit with a tail buffer on this goroutine's stack.
func (t *Task) unitTail(r0, mt, r1, j0, j1 int) {
	var buf [maxTail]uint8
	t.unit(r0, mt, r1, j0, j1, buf[:])
}

// unit computes rows [r0, r1) by column tiles [j0, j1): rows [r0, mt)
// read A in place, rows [mt, r1) through buf, one K block at a time.
func (t *Task) unit(r0, mt, r1, j0, j1 int, buf []uint8) {
	b, a, lda, ldc, im := t.Op.B, t.a, t.lda, t.ldc, &t.im
	K, N, kg, mr, nc := b.K, b.N, b.kp/4, im.mr, im.nc
	c := t.Op.C
	// Tails of at most 8 rows of the VNNI tiles (12 x 32, 24 x 16) go to the GEMV
	// kernel (one or two calls of up to 4 rows).
	gemvTail := mt < r1 && r1-mt <= 2*gemvMaxRows && (im.tile == tVNNI || im.tile == tVNNI24) && gemvOK(t.Kernel, 1) && !t.noGemv
	for g0 := 0; g0 < kg; g0 += kc {
		gn := min(kc, kg-g0)
		acc := g0 > 0 || t.Op.Accumulate
		ldt := 4 * gn
		if mt < r1 {
			k0, k1 := 4*g0, min(4*(g0+gn), K)
			for r := mt; r < r1; r++ {
				row := buf[(r-mt)*ldt : (r-mt+1)*ldt]
				n := copy(row, a[r*lda+k0:r*lda+k1])
				clear(row[n:])
			}
		}
		// Rows read in place go in blocks of about mcBytes of A, so a
		// block stays in L2 while the panels of B stream past it.
		mcb := mcBytes
		if t.mcBytes > 0 {
			mcb = t.mcBytes
		}
		mb := max(mr, mcb/(4*gn)/mr*mr)
		for m0 := r0; m0 < r1; m0 += mb {
			m1 := min(m0+mb, mt)
			for j := j0; j < j1; j++ {
				col := j * nc
				ncols := min(nc, N-col)
				var bp []int8
				if im.tile == tAVX2W {
					bp = t.w16[col/nr*b.ks*64+g0*256+(col%nr)*8:]
				} else {
					bp = b.data[col/nr*b.ks*nr+g0*nr*4+(col%nr)*4:]
				}
				if m1 > m0 {
					im.call(gn, a[m0*lda+4*g0:], lda, bp, c[m0*ldc+col:], ldc, mr, ncols, acc, (m1-m0)/mr)
				}
				if m0+mb >= r1 {
					if gemvTail {
						// The copied tail rows on the GEMV kernel, while
						// this panel of B is in L1: no rows computed in
						// vain (the 12-row tile would compute 12).
						for mm := mt; mm < r1; mm += gemvMaxRows {
							t.gemvKernel(gn, buf[(mm-mt)*ldt:], ldt, min(gemvMaxRows, r1-mm), bp, gn*nr*4, 1, c[mm*ldc+col:], ldc, ncols, acc)
						}
						continue
					}
					for mm := mt; mm < r1; mm += mr {
						im.call(gn, buf[(mm-mt)*ldt:], ldt, bp, c[mm*ldc+col:], ldc, min(mr, r1-mm), ncols, acc, 1)
					}
				}
			}
		}
	}
}

// call runs the micro-kernel on nt tiles of mr rows one below the other
// (rows < mr only when nt is 1): c[r*ldc+j] (+)= sum over kg groups of 4
// k-values of a[r*lda+4g+t]*b[g*128+4j+t], for r < rows, j < ncols; with
// acc it adds to c. Assembly kernels read mr rows of a whatever rows is.
func (im *impl) call(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	switch im.tile {
	case tVNNI:
		tileVNNIGo(kg, a, lda, b, c, ldc, rows, ncols, acc, nt)
	case tVNNI24:
		tileVNNI24Go(kg, a, lda, b, c, ldc, rows, ncols, acc, nt)
	case tAVXVNNI:
		tileAVXVNNIGo(kg, a, lda, b, c, ldc, rows, ncols, acc, nt)
	case tAVX2:
		tileAVX2Go(kg, a, lda, b, c, ldc, rows, ncols, acc, nt)
	case tAVX2W:
		tileAVX2WGo(kg, a, lda, b, c, ldc, rows, ncols, acc, nt)
	default:
		for i := range nt {
			tileGo(kg, a[i*im.mr*lda:], lda, b, c[i*im.mr*ldc:], ldc, rows, ncols, acc)
		}
	}
}

// impl is a kernel's tile shape and micro-kernel.
type impl struct {
	mr, nc int // rows and columns of a tile (nc 32: a whole panel; 16: half)
	tile   tileKind
	amx    bool
}

// tileKind names a micro-kernel; impl.call dispatches with a switch
// rather than a func value so buffers passed to it stay on the stack.
type tileKind int

const (
	tGo tileKind = iota
	tVNNI
	tVNNI24
	tAVXVNNI
	tAVX2
	tAVX2W
)

// tileGo is the pure-Go micro-kernel (nr columns; rows <= 12 read): c[r*ldc+j] = sum over kg groups of
// 4 k-values of a[r*lda+4g+t]*b[g*128+4j+t], for r < rows, j < ncols.
// It runs four rows at a time, then single rows. With acc it adds to c.
func tileGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool) {
	b = b[:(kg-1)*nr*4+nr*4]
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
