// Package fp32 holds goslim's float32 compute kernels: a packed,
// cache-blocked SGEMM with register-tiled micro-kernels (AVX-512 and
// AVX2+FMA assembly, and a pure-Go kernel), the im2col/col2im transforms
// and direct depthwise convolution.
//
// # Tiers
//
// For(tier) returns the Kernels of a CPU tier: the micro-kernel, its
// packing layout and block sizes. The tier is the session's
// (kernel.Info.Tier), so GOSLIM_KERNELS=generic|avx2|avx512 switches the
// code that runs; -tags noasm leaves only the generic tier. Data packed by
// one Kernels (PackA, PackB) is only valid for the same Kernels.
//
// # Products
//
// Kernels.Run computes one GemmOp: C = act(alpha*op(A)*op(B) + beta*C +
// bias), where either operand may be pre-packed (constant weights, packed
// once per session), B may be the column matrix of a convolution packed
// straight from the image (ConvSource, no im2col buffer), and the bias
// (per row or per column) and activation are applied to each tile of C
// while it is in registers (the epilogue). Matrices are row-major with an
// explicit leading dimension, as in CBLAS with CblasRowMajor.
//
// Run takes its packing buffers from the caller (ws, sized by
// Kernels.Scratch; kernels pass kernel.Ctx.Scratch), so the steady state
// allocates nothing; with a short ws it allocates. Run never starts
// goroutines: callers split work across threads.
//
// Gemm keeps the BLAS-like signature for callers without a tier or
// workspace (training code): it runs Best() with a fresh workspace.
//
// # Exactness
//
// Every tier computes each element of C as a sum over p in increasing
// order (in blocks of the tier's depth block), so results differ between
// tiers only by rounding (the assembly kernels use fused multiply-adds).
// Within one tier the epilogue's bias and activation give exactly what a
// separate bias add and activation op give (Act documents the formulas),
// assuming Go does not fuse a*b+c itself (GOAMD64 v1/v2, the default).
package fp32

import "fmt"

// Mat is a row-major matrix operand op(M): stored with leading dimension Ld,
// transposed when Trans.
type Mat struct {
	Data  []float32
	Ld    int
	Trans bool
}

// GemmOp is one product C = act(Alpha*op(A)*op(B) + Beta*C + RowBias[i] +
// ColBias[j]) for i < M, j < N, with op(A) M x K and op(B) K x N. The
// operand A is PA when set, else A; B is PB, else Conv, else B. Beta 0
// means C is not read (NaNs in it do not propagate). Only the M x N
// elements of C are written.
type GemmOp struct {
	M, N, K int
	Alpha   float32
	Beta    float32
	A       Mat
	PA      *PackedA
	B       Mat
	PB      *PackedB
	Conv    *ConvSource
	C       []float32
	LdC     int
	// RowBias (length M) and ColBias (length N) are optional.
	RowBias, ColBias []float32
	Act              Act
	// rows, when rows.base is set, is the right operand (before Conv and
	// B; used by Kernels.Conv).
	rows rowSource
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C with the default tier (see
// Best) and a fresh workspace, where op(A) is m x k (A stored m x k with
// leading dimension lda, or k x m when transA), op(B) is k x n (B stored k
// x n, or n x k when transB) and C is m x n with leading dimension ldc.
// When beta is 0, C is not read. Only the m x n elements of C are written.
//
// The reference loop is GemmRef. Gemm panics if a dimension is negative or
// a slice is too short, like BLAS implementations.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Best().Run(nil, &GemmOp{M: m, N: n, K: k, Alpha: alpha, Beta: beta,
		A: Mat{a, lda, transA}, B: Mat{b, ldb, transB}, C: c, LdC: ldc})
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

// PackedA is a left-hand operand op(A) (m x k) packed once for one
// Kernels, e.g. a convolution's weights. It is read-only after PackA and
// safe for concurrent use.
type PackedA struct {
	ar     *arch
	m, k   int
	mc, kc int
	mp     int // m rounded up to the strip height
	data   []float32
}

// PackA packs op(A), an m x k matrix (A stored m x k with leading
// dimension lda, or k x m when trans).
func (k Kernels) PackA(trans bool, m, kk int, a []float32, lda int) *PackedA {
	ar := k.arch()
	if m < 0 || kk < 0 {
		panic(fmt.Sprintf("fp32: negative PackA dimension m=%d k=%d", m, kk))
	}
	r, c := m, kk
	if trans {
		r, c = kk, m
	}
	checkMat("A", r, c, a, lda)
	p := &PackedA{ar: ar, m: m, k: kk, mc: ar.mBlock(m), kc: ar.kBlock(kk), mp: roundUp(m, ar.mr)}
	p.data = make([]float32, p.mp*kk)
	for pc := 0; pc < kk; pc += p.kc {
		kb := min(p.kc, kk-pc)
		for ic := 0; ic < m; ic += p.mc {
			mb := min(p.mc, m-ic)
			packA(ar.mr, trans, mb, kb, a, lda, ic, pc, p.block(pc, ic, kb))
		}
	}
	return p
}

// block returns the packed block at (pc, ic) of depth kb.
func (p *PackedA) block(pc, ic, kb int) []float32 {
	off := pc*p.mp + ic*kb
	return p.data[off : off+roundUp(min(p.mc, p.m-ic), p.ar.mr)*kb]
}

// M returns the number of rows of op(A).
func (p *PackedA) M() int { return p.m }

// K returns the number of columns of op(A).
func (p *PackedA) K() int { return p.k }

// PackedB is a right-hand operand op(B) (k x n) packed once for one
// Kernels, e.g. a layer's weights. It is read-only after PackB and safe for
// concurrent use.
type PackedB struct {
	ar     *arch
	k, n   int
	kc, nc int
	data   []float32
}

// PackB packs op(B), a k x n matrix (B stored k x n with leading dimension
// ldb, or n x k when trans).
func (k Kernels) PackB(trans bool, kk, n int, b []float32, ldb int) *PackedB {
	ar := k.arch()
	if kk < 0 || n < 0 {
		panic(fmt.Sprintf("fp32: negative PackB dimension k=%d n=%d", kk, n))
	}
	r, c := kk, n
	if trans {
		r, c = n, kk
	}
	checkMat("B", r, c, b, ldb)
	p := &PackedB{ar: ar, k: kk, n: n, kc: ar.kBlock(kk), nc: ar.nBlock(n)}
	p.data = make([]float32, kk*roundUp(n, ar.vl))
	for jc := 0; jc < n; jc += p.nc {
		nb := min(p.nc, n-jc)
		for pc := 0; pc < kk; pc += p.kc {
			kb := min(p.kc, kk-pc)
			ar.packB(trans, kb, nb, b, ldb, pc, jc, p.panel(jc, pc, kb, nb))
		}
	}
	return p
}

// panel returns the packed kb x nb panel at (pc, jc): column blocks follow
// each other (all but the last nc wide, a multiple of nr), each holding
// its depth blocks in order.
func (p *PackedB) panel(jc, pc, kb, nb int) []float32 {
	nbp := roundUp(nb, p.ar.vl)
	off := jc*p.k + pc*nbp
	return p.data[off : off+kb*nbp]
}

// K returns the number of rows of op(B).
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of op(B).
func (p *PackedB) N() int { return p.n }

// Scratch returns the number of float32s of workspace Run needs for op.
func (k Kernels) Scratch(op *GemmOp) int {
	ar := k.arch()
	if op.M <= 0 || op.N <= 0 || op.K <= 0 {
		return 0
	}
	kc, nc := ar.kBlock(op.K), ar.nBlock(op.N)
	n := 0
	if op.PA == nil {
		n += roundUp(ar.mBlock(op.M), ar.mr) * kc
	}
	if op.PB == nil {
		n += kc * roundUp(nc, ar.vl)
		if op.Conv != nil && op.rows.base == nil {
			n += nc
		}
	}
	return n
}

// Run computes op (see GemmOp) with workspace ws (allocated when shorter
// than Scratch(op)). It panics on inconsistent dimensions or short slices.
func (k Kernels) Run(ws []float32, op *GemmOp) {
	ar := k.arch()
	op.check(ar)
	m, n, kk := op.M, op.N, op.K
	if m == 0 || n == 0 {
		return
	}
	if need := k.Scratch(op); len(ws) < need {
		ws = make([]float32, need)
	}
	if kk == 0 {
		op.noProduct()
		return
	}
	mc, nc, kc := ar.mBlock(m), ar.nBlock(n), ar.kBlock(kk)
	var wa, wb, wrow []float32
	if op.PA == nil {
		sz := roundUp(mc, ar.mr) * kc
		wa, ws = ws[:sz], ws[sz:]
	}
	if op.PB == nil {
		sz := kc * roundUp(nc, ar.vl)
		wb, ws = ws[:sz], ws[sz:]
		if op.Conv != nil && op.rows.base == nil {
			wrow = ws[:nc]
		}
	}
	var ep tileEp
	ep.alpha, ep.beta = op.Alpha, op.Beta
	goAct := op.Act.Kind != ActNone && !actInAsm(op.Act)
	if ar == archGeneric {
		goAct = false // the Go epilogue applies every activation
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < kk; pc += kc {
			kb := min(kc, kk-pc)
			var pb []float32
			switch {
			case op.PB != nil:
				pb = op.PB.panel(jc, pc, kb, nb)
			case op.rows.base != nil:
				pb = wb[:kb*roundUp(nb, ar.vl)]
				if op.rows.offs != nil {
					ar.packRows(pb, op.rows.base[jc:], op.rows.offs[pc:pc+kb], 0, kb, nb)
				} else {
					ar.packRows(pb, op.rows.base[pc*op.rows.stride+jc:], nil, op.rows.stride, kb, nb)
				}
			case op.Conv != nil:
				pb = wb[:kb*roundUp(nb, ar.vl)]
				op.Conv.pack(ar, kb, nb, pc, jc, pb, wrow)
			default:
				pb = wb[:kb*roundUp(nb, ar.vl)]
				ar.packB(op.B.Trans, kb, nb, op.B.Data, op.B.Ld, pc, jc, pb)
			}
			ep.flags = 0
			if op.Alpha != 1 {
				ep.flags |= epAlpha
			}
			switch {
			case pc > 0:
				ep.flags |= epLoadC | epBeta1
			case op.Beta == 1:
				ep.flags |= epLoadC | epBeta1
			case op.Beta != 0:
				ep.flags |= epLoadC
			}
			last := pc+kb == kk
			if last {
				if op.RowBias != nil {
					ep.flags |= epRowBias
				}
				if op.ColBias != nil {
					ep.flags |= epColBias
				}
				if op.Act.Kind != ActNone && !goAct {
					ep.setAct(op.Act)
				}
			}
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				var pa []float32
				if op.PA != nil {
					pa = op.PA.block(pc, ic, kb)
				} else {
					pa = wa[:roundUp(mb, ar.mr)*kb]
					packA(ar.mr, op.A.Trans, mb, kb, op.A.Data, op.A.Ld, ic, pc, pa)
				}
				ar.macro(op, &ep, ic, jc, mb, nb, kb, pa, pb, last && goAct)
			}
		}
	}
}

// macro multiplies a packed mb x kb block of A by a packed kb x nb panel
// of B into C at (ic, jc), tile by tile; goAct applies op.Act in Go after
// each tile.
func (ar *arch) macro(op *GemmOp, ep *tileEp, ic, jc, mb, nb, kb int, pa, pb []float32, goAct bool) {
	c, ldc := op.C, op.LdC
	for j := 0; j < nb; j += ar.nr {
		cols := min(ar.nr, nb-j)
		bs := pb[j*kb : j*kb+kb*ar.stripWidth(cols)]
		if ep.flags&epColBias != 0 {
			ep.colBias = &op.ColBias[jc+j]
		}
		for i := 0; i < mb; i += ar.mr {
			rows := min(ar.mr, mb-i)
			as := pa[i*kb : (i+ar.mr)*kb]
			if ep.flags&epRowBias != 0 {
				ep.rowBias = &op.RowBias[ic+i]
			}
			off := (ic+i)*ldc + jc + j
			ar.tile(kb, as, bs, c[off:off+(rows-1)*ldc+cols], ldc, rows, cols, ep)
			if goAct {
				for r := 0; r < rows; r++ {
					op.Act.Apply(c[off+r*ldc : off+r*ldc+cols])
				}
			}
		}
	}
}

// noProduct handles K = 0: C = beta*C + bias, then the activation.
func (op *GemmOp) noProduct() {
	var ep tileEp
	ep.beta = op.Beta
	if op.Beta != 0 {
		ep.flags |= epLoadC
		if op.Beta == 1 {
			ep.flags |= epBeta1
		}
	}
	if op.RowBias != nil {
		ep.flags |= epRowBias
	}
	if op.ColBias != nil {
		ep.flags |= epColBias
	}
	ep.setAct(op.Act)
	zero := make([]float32, op.N)
	for i := 0; i < op.M; i++ {
		if op.RowBias != nil {
			ep.rowBias = &op.RowBias[i]
		}
		if op.ColBias != nil {
			ep.colBias = &op.ColBias[0]
		}
		epilogueGo(zero, op.N, op.C[i*op.LdC:], op.LdC, 1, op.N, &ep)
	}
}

// check panics unless op describes valid matrices for ar.
func (op *GemmOp) check(ar *arch) {
	m, n, k := op.M, op.N, op.K
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("fp32: negative Gemm dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMat("C", m, n, op.C, op.LdC)
	if m == 0 || n == 0 {
		return
	}
	if op.RowBias != nil && len(op.RowBias) < m {
		panic(fmt.Sprintf("fp32: Gemm row bias has %d values, want %d", len(op.RowBias), m))
	}
	if op.ColBias != nil && len(op.ColBias) < n {
		panic(fmt.Sprintf("fp32: Gemm column bias has %d values, want %d", len(op.ColBias), n))
	}
	switch {
	case op.PA != nil:
		if op.PA.ar != ar || op.PA.m != m || op.PA.k != k {
			panic(fmt.Sprintf("fp32: PackedA (%s, %dx%d) does not fit a %s Gemm of m=%d k=%d", op.PA.ar.name, op.PA.m, op.PA.k, ar.name, m, k))
		}
	default:
		r, c := m, k
		if op.A.Trans {
			r, c = k, m
		}
		checkMat("A", r, c, op.A.Data, op.A.Ld)
	}
	switch {
	case op.rows.base != nil:
		// Checked by the packer.
	case op.PB != nil:
		if op.PB.ar != ar || op.PB.k != k || op.PB.n != n {
			panic(fmt.Sprintf("fp32: PackedB (%s, %dx%d) does not fit a %s Gemm of k=%d n=%d", op.PB.ar.name, op.PB.k, op.PB.n, ar.name, k, n))
		}
	case op.Conv != nil:
		cs := op.Conv
		g := cs.Geom
		if cs.Channels*g.KernelSize() != k || cs.Col0 < 0 || cs.Col0+n > g.OutSize() || len(cs.Image) < cs.Channels*g.InSize() {
			panic(fmt.Sprintf("fp32: ConvSource (%d channels, %d taps, columns %d+%d of %d, %d values) does not fit k=%d n=%d",
				cs.Channels, g.KernelSize(), cs.Col0, n, g.OutSize(), len(cs.Image), k, n))
		}
	default:
		r, c := k, n
		if op.B.Trans {
			r, c = n, k
		}
		checkMat("B", r, c, op.B.Data, op.B.Ld)
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
