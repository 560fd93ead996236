package int8

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/goslim/goslim/internal/kernel"
)

// The batched convolution driver (ConvBatch) for GEMM convolutions.
//
// Every image is first written channels-last into one buffer padded with
// the zero point: images are stacked hq rows apart (their H data rows
// followed by hq-H gap rows, after gv leading gap rows), and each buffer
// row holds wq pixels of C bytes: g gap pixels, then the W data pixels.
// A gap is at least as wide as any padding, so a patch that reaches past
// an edge reads gap pixels (the zero point), never another image's or
// row's data. The GEMM's rows are then computed in blocks split across
// the workers, and each block is requantized straight into the output
// rows (NHWC) while it is in cache. Three ways to form the rows:
//
//   - direct: a 1x1 convolution with unit strides and no padding on
//     unsigned NHWC input with C%4 == 0 multiplies the input itself.
//   - implicit (VNNI tiers): convTaps runs the taps inside the register
//     tile, with no patch copy at all: tap t reads each row's bytes at the
//     row's pixel plus offs[t]. With one group and unit width dilation a
//     tap is a kernel row (KW*C contiguous bytes; weights packed with each
//     row's reduction padded to 4, see packRowTaps), otherwise one (kh,
//     kw) pair (C/group%4 == 0). Stride-1 convolutions take the buffer's
//     pixels as rows (C bytes apart: rows whose pixel lies in a gap
//     compute garbage that is discarded); strided ones take the output
//     pixels, one output row at a time (SW*C bytes apart).
//   - gather: the patch rows (KH runs of KW*C bytes, or KH*KW runs of
//     C/group bytes) are copied into a block, then multiplied.

// batchPath is how ConvBatch forms the GEMM rows.
type batchPath uint8

const (
	pathGather batchPath = iota
	pathImplicit
	pathDirect
)

// tapKind is the implicit-GEMM kernel family a call runs.
type tapKind uint8

const (
	tapsVNNI    tapKind = iota // convTapsVNNI*: 8/12 x 32, 16/24 x 16
	tapsAVXVNNI                // convTapsAVXVNNI: 6 x 16
	tapsAVX2                   // convTapsAVX2: 6 x 16, weights that cannot saturate VPMADDUBSW
	tapsGo                     // tests: convTapsGo with the VNNI tiles
)

// ymm reports whether the kernels are the 6 x 16 AVX2-width ones.
func (k tapKind) ymm() bool { return k == tapsAVXVNNI || k == tapsAVX2 }

// maxTaps bounds the taps of the implicit path (the offsets live in a
// fixed array).
const maxTaps = 64

// Row-block alignment and bounds: blocks are multiples of every kernel's
// register tile (96 for GEMM kernels, 24 for the implicit ones), with the
// block's int32 results (and the gathered rows) within about 32 KiB.
const (
	gatherAlign   = 96
	implicitAlign = 24
	blockWords    = 8 << 10
	blockBytesA   = 32 << 10
)

// batchPlan is the buffer layout of one ConvBatch call.
type batchPlan struct {
	path      batchPath
	kind      tapKind
	rowTaps   bool // implicit: a tap is a kernel row (else one kh, kw)
	strided   bool // implicit: rows are output pixels (else buffer pixels)
	taps      int  // implicit: taps, bytes each, groups of 4 bytes each
	tapW, cg4 int
	hq, wq    int // buffer rows per image, pixels per buffer row
	gv, g     int // gap rows before each image's data, gap pixels before each row's data
	data      int // bytes of the buffer that are filled: rows gv + n*hq + 1
	buf       int // int32 words of the buffer
	kp        int // gather: patch row length (KH*KW*Cg padded to 4)
	vrows     int // rows computed: buffer pixels (implicit) or output pixels
	rows      int // rows per block
	blocks    int
	perThread int // int32 words per worker
	workers   int
	reqL      int // values in the requantization table (see reqLen; 0: none)
}

// maxReqL bounds the values of the requantization table.
const maxReqL = 4096

// reqTabWords is the size of the requantization table per 16 values.
const reqTabWords = 176

// newBatchPlan lays out a call with path p (and kernels kind) for n
// images and threads workers.
func newBatchPlan(s *ConvShape, cw *ConvWeights, n, threads int, p batchPath, kind tapKind) batchPlan {
	pl := batchPlan{path: p, kind: kind, workers: max(threads, 1)}
	pl.hq = max(s.H+max(s.PadT, s.PadB), s.OH)
	pl.wq = max(s.W+max(s.PadL, s.PadR), s.OW)
	pl.gv, pl.g = pl.hq-s.H, pl.wq-s.W
	pl.data = (pl.gv + n*pl.hq + 1) * pl.wq * s.C
	bufBytes := pl.data
	pl.kp = (cw.k + 3) &^ 3
	align, capRows := gatherAlign, 0
	switch p {
	case pathImplicit:
		pl.rowTaps = s.DW == 1 && s.Group == 1
		pl.taps, pl.tapW = s.KH*s.KW, cw.Cg
		if pl.rowTaps {
			pl.taps, pl.tapW = s.KH, s.KW*s.C
		}
		pl.cg4 = (pl.tapW + 3) / 4
		// Stride-1 convolutions also take output pixels as rows when that
		// computes fewer rows than the buffer's pixels (small images,
		// output rows a multiple of the tile).
		mr := pl.pickMR(s.OW, s.M/s.Group)
		pl.strided = s.SH != 1 || s.SW != 1 || n*s.OH*((s.OW+mr-1)/mr*mr) <= n*pl.hq*pl.wq
		align = implicitAlign
		capRows = blockWords / s.M
		if pl.strided {
			// The last tile of an output row reads up to 23 rows further.
			pl.vrows = n * s.OH * s.OW
			bufBytes += 24*s.SW*s.C + 64
			break
		}
		pl.vrows = n * pl.hq * pl.wq
		maxTap := (pl.gv-s.PadT+(s.KH-1)*s.DH)*pl.wq + pl.g - s.PadL + (s.KW-1)*s.DW
		bufBytes = max(bufBytes, ((pl.vrows+align-1)/align*align+maxTap)*s.C+64)
	case pathGather:
		pl.vrows = n * s.OH * s.OW
		capRows = min(blockWords/s.M, blockBytesA/pl.kp)
	case pathDirect:
		pl.vrows = n * s.OH * s.OW
		capRows = blockWords / s.M
		bufBytes = 0
	}
	// One buffer row of zero points (the source of every gap fill).
	bufBytes = (bufBytes+3)&^3 + pl.wq*s.C
	pl.buf = (bufBytes + 3) / 4
	pl.reqL = reqLen(s.M)
	capRows = max(align, capRows/align*align)
	per := (pl.vrows + pl.workers - 1) / pl.workers
	pl.rows = max(align, min(capRows, (per+align-1)/align*align))
	pl.blocks = (pl.vrows + pl.rows - 1) / pl.rows
	// Gathered rows, results, row sums, requantized rows.
	pl.perThread = pl.rows*s.M + pl.rows + (pl.rows*s.M+3)/4
	if p == pathGather {
		pl.perThread += (pl.rows*pl.kp + 3) / 4
	}
	return pl
}

// words returns the workspace the plan needs: the per-channel offsets,
// the buffer and the workers' blocks.
func (pl *batchPlan) words(s *ConvShape) int {
	return s.M + pl.buf + pl.workers*pl.perThread
}

// reqLen returns the values of the requantization table of M channels:
// lcm(M, 16), doubled up to at least 64 (requantTabAsm's groups of four
// vectors need a period of at least four), or 0 beyond maxReqL.
func reqLen(M int) int {
	L := 16 * M
	for L%(2*M) == 0 && L/2%16 == 0 {
		L /= 2
	}
	for L < 64 {
		L *= 2
	}
	if L > maxReqL {
		return 0
	}
	return L
}

// reqTabExtra is the number of 16-value steps repeated after a table's
// period (so that four consecutive steps can be read from any step).
const reqTabExtra = 3

// reqTabLen returns the words of the table of L values (see reqTab).
func reqTabLen(L int) int {
	if L == 0 {
		return 0
	}
	return (L/16 + reqTabExtra) * reqTabWords
}

// reqPeriod returns the 16-value steps of table tab's period.
func reqPeriod(tab []int32) int {
	return len(tab)/reqTabWords - reqTabExtra
}

// gemmBatchScratch is BatchScratch for GEMM convolutions: enough for
// every path.
func gemmBatchScratch(s *ConvShape, cw *ConvWeights, n, threads int) int {
	w := 0
	for _, p := range []struct {
		path batchPath
		kind tapKind
	}{{pathGather, 0}, {pathImplicit, tapsVNNI}, {pathImplicit, tapsAVXVNNI}, {pathDirect, 0}} {
		pl := newBatchPlan(s, cw, n, threads, p.path, p.kind)
		w = max(w, pl.words(s))
	}
	return w
}

// implicitTier reports whether tier t runs the VNNI implicit-GEMM kernels.
func implicitTier(t kernel.Tier) bool {
	return hasAsm && t >= kernel.TierVNNI && KernelVNNI.Available()
}

// choosePath picks how to form the GEMM rows and, for the implicit path,
// the kernels: those of the GEMM kernel tier t runs (For), the AVX2 ones
// only when no weights can saturate VPMADDUBSW; forceGo (tests) takes the
// implicit path on convTapsGo.
func choosePath(t kernel.Tier, s *ConvShape, cw *ConvWeights, in Layout, signed, forceGo bool) (batchPath, tapKind) {
	if s.pointwise() && in == NHWC && !signed && s.C%4 == 0 {
		return pathDirect, 0
	}
	rowTaps := s.DW == 1 && s.Group == 1
	if !(rowTaps && s.KH <= maxTaps || cw.Cg%4 == 0 && s.KH*s.KW <= maxTaps) {
		return pathGather, 0
	}
	switch k := For(t); {
	case forceGo:
		return pathImplicit, tapsGo
	case !hasAsm:
	case implicitTier(t):
		return pathImplicit, tapsVNNI
	case k == KernelAVXVNNI:
		return pathImplicit, tapsAVXVNNI
	case k == KernelAVX2:
		safe := true
		if rowTaps && cw.batch.rowB != nil {
			safe = cw.batch.rowB.pairSafe
		} else {
			for _, b := range cw.packed {
				safe = safe && b.pairSafe
			}
		}
		if safe {
			return pathImplicit, tapsAVX2
		}
	}
	return pathGather, 0
}

// batchTask is the state of one ConvBatch call; its Run is the parallel
// task (kept in BatchArgs, so passing it allocates nothing).
type batchTask struct {
	tier     kernel.Tier
	s        *ConvShape
	cw       *ConvWeights
	a        *BatchArgs
	pl       batchPlan
	packing  bool // phase: pack the images into the buffer (else compute)
	flip     uint8
	za       int32
	yb       []uint8 // uint8/int8 output bytes (nil for int32)
	y32      []int32
	off      []int32  // per channel: bias - za*colsum + k*za*zb
	reqTab   []int32  // requantization parameters of reqL output values (see reqTab; nil: Requant.RowsBytes)
	tab      tabCache // the requantization table's memory and key
	reqFast  bool     // reqTab suits requantTabAsm (every shift >= 31)
	reqSmall bool     // every sum plus off is below 2^22 in magnitude
	buf      []uint8
	zrow     []uint8 // one buffer row of zero points
	ws       []int32 // the workers' blocks
	offs     [maxTaps]int
	goTaps   bool // tests: the implicit path on convTapsGo
}

// Run runs workers [lo, hi) of the current phase.
func (t *batchTask) Run(lo, hi int) {
	for u := lo; u < hi; u++ {
		if t.packing {
			n := t.a.N
			t.pack(u*n/t.pl.workers, (u+1)*n/t.pl.workers, u == 0, u == t.pl.workers-1)
			continue
		}
		w := t.ws[u*t.pl.perThread : (u+1)*t.pl.perThread]
		for bi := u * t.pl.blocks / t.pl.workers; bi < (u+1)*t.pl.blocks/t.pl.workers; bi++ {
			r0 := bi * t.pl.rows
			r1 := min(r0+t.pl.rows, t.pl.vrows)
			switch t.pl.path {
			case pathImplicit:
				t.implicitBlock(w, r0, r1)
			default:
				t.gemmBlock(w, r0, r1)
			}
		}
	}
}

// parallel runs the current phase on the workers.
func (t *batchTask) parallel() {
	if t.pl.workers <= 1 || t.a.Par == nil {
		t.Run(0, t.pl.workers)
		return
	}
	t.a.Par.ParallelTask(t.pl.workers, t)
}

// convBatchGemm is ConvBatch for GEMM convolutions (arguments checked,
// t.pl the call's plan).
func convBatchGemm(t *batchTask) {
	s, cw, a := t.s, t.cw, t.a
	pl := &t.pl // built by ConvBatch
	t.za, t.flip = a.Zero, 0
	if a.Signed {
		t.flip, t.za = 0x80, a.Zero+128
	}
	ws := a.WS
	// off[m] = bias[m] - za*colsum[m] + K*za*zb[m] (and its largest magnitude).
	off := ws[:s.M]
	t.off = off
	cs := cw.colSum[:len(off)]
	if a.Bias != nil {
		bias := a.Bias[:len(off)]
		for m := range off {
			off[m] = bias[m] - t.za*cs[m]
		}
	} else {
		for m := range off {
			off[m] = -t.za * cs[m]
		}
	}
	var zbMax int64
	if cw.zb != nil {
		kz := int32(cw.k) * t.za
		zbs := cw.zb[:len(off)]
		for m := range off {
			off[m] += kz * zbs[m]
			zbMax = max(zbMax, int64(zbs[m]), -int64(zbs[m]))
		}
	}
	ws = ws[s.M:]
	t.reqTab = nil
	if r := a.Req; r != nil && pl.reqL > 0 && requantAsm(t.tier) && r.vmult != nil {
		t.reqTab, t.reqFast = t.tab.get(a, s.M, pl.reqL, off, r)
		// |sum x*(w - zb)| <= 255*(sum |w| + K*|zb|) for x in [0, 255].
		lo, hi := slices.Min(off), slices.Max(off)
		offMax := max(int64(hi), -int64(lo))
		t.reqSmall = 255*(cw.batch.absSum+int64(cw.k)*zbMax)+offMax < 1<<22
	}
	t.buf = bytesOf(ws[:pl.buf])
	t.ws = ws[pl.buf:]
	rowB := pl.wq * s.C
	t.zrow = t.buf[len(t.buf)-rowB:]
	t.buf = t.buf[:len(t.buf)-rowB]
	fillBytes(t.zrow, uint8(t.za))
	if pl.path == pathImplicit {
		taps := 0
		for kh := range s.KH {
			for kw := range s.KW {
				if pl.rowTaps && kw > 0 {
					break
				}
				t.offs[taps] = ((pl.gv-s.PadT+kh*s.DH)*pl.wq + pl.g - s.PadL + kw*s.DW) * s.C
				taps++
			}
		}
	}
	if pl.path != pathDirect {
		t.packing = true
		t.parallel()
	}
	t.packing = false
	t.parallel()
}

// tabCache keeps the requantization table of the last ConvBatch call of
// a BatchArgs (building it costs more than requantizing a small layer's
// output): it is rebuilt only when the channels, the additions or the
// multipliers change. Its memory belongs to the BatchArgs (allocated on
// first use; a copied BatchArgs starts a cache of its own).
type tabCache struct {
	owner *BatchArgs
	tab   []int32
	L     int
	fast  bool
	off   []int32
	mult  []int32
	shift []uint
}

// get returns the table of L values for M channels with additions off and
// requantization r (see reqTab) and whether it suits requantTabAsm.
func (c *tabCache) get(a *BatchArgs, M, L int, off []int32, r *Requant) ([]int32, bool) {
	n := reqTabLen(L)
	if c.owner == a && c.L == L && len(c.tab) == n && slices.Equal(c.off, off[:M]) &&
		slices.Equal(c.mult, r.Mult) && slices.Equal(c.shift, r.Shift) {
		return c.tab, c.fast
	}
	if c.owner != a {
		*c = tabCache{owner: a}
	}
	if cap(c.tab) < n {
		c.tab = make([]int32, n)
	}
	c.tab = c.tab[:n]
	c.L = 0 // invalid until filled
	c.fast = reqTab(c.tab, M, off, r)
	c.off = append(c.off[:0], off[:M]...)
	c.mult = append(c.mult[:0], r.Mult...)
	c.shift = append(c.shift[:0], r.Shift...)
	c.L = L
	return c.tab, c.fast
}

// reqTab fills tab with the requantization parameters of consecutive
// output values (whole rows of M channels from channel 0 on), per 16
// values reqTabWords words: the additions (off), the multipliers, the
// odd multipliers at even positions, the shifts, then as int64 pairs the
// even and the odd shifts and the even and the odd rounding terms
// 2^(s-1) - 1, then the 16 multipliers real = mult*2^-shift as float64,
// then as float32. The table's length is reqTabLen of its values: after
// the period of reqPeriod steps come reqTabExtra steps repeating its
// first ones. It reports whether every shift is at least 31 (or its
// multiplier 0), as requantTabAsm needs.
func reqTab(tab []int32, M int, off []int32, r *Requant) bool {
	fast := true
	put := func(w []int32, v int64) { w[0], w[1] = int32(v), int32(v>>32) }
	period := reqPeriod(tab)
	for v := range period {
		b := tab[v*reqTabWords : (v+1)*reqTabWords]
		for j := range 16 {
			m := (v*16 + j) % M
			c := r.channel(m)
			mult, sh := r.Mult[c], r.Shift[c]
			if mult != 0 && sh < 31 {
				fast = false
			}
			b[j], b[16+j], b[48+j] = off[m], mult, int32(sh)
			b[32+j] = 0
			if j%2 == 1 {
				b[32+j-1] = mult
			}
			q, odd := j/2, j%2
			put(b[64+16*odd+2*q:], int64(sh))
			put(b[96+16*odd+2*q:], int64(1)<<(sh-1)-1)
			real := math.Ldexp(float64(mult), -int(sh))
			put(b[128+2*j:], int64(math.Float64bits(real)))
			b[160+j] = int32(math.Float32bits(float32(real)))
		}
	}
	for e := range reqTabExtra {
		copy(tab[(period+e)*reqTabWords:(period+e+1)*reqTabWords], tab[e%period*reqTabWords:])
	}
	return fast
}

// fillBytes sets every byte of b to v.
func fillBytes(b []uint8, v uint8) {
	if len(b) == 0 {
		return
	}
	if v == 0 {
		clear(b)
		return
	}
	b[0] = v
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// xorCopy copies src to dst flipping bits by flip.
func xorCopy(dst, src []uint8, flip uint8) {
	if flip == 0 {
		copy(dst, src)
		return
	}
	dst = dst[:len(src)]
	f8 := uint64(flip) * 0x0101010101010101
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^f8)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ flip
	}
}

// pack writes images [i0, i1) into the buffer with their gaps; first
// also fills the leading gap rows, last the rows after the last image.
func (t *batchTask) pack(i0, i1 int, first, last bool) {
	s, pl, a := t.s, &t.pl, t.a
	C := s.C
	rowB := pl.wq * C
	if first {
		t.fillZero(t.buf[:pl.gv*rowB])
	}
	hw := s.H * s.W
	for img := i0; img < i1; img++ {
		base := (pl.gv + img*pl.hq) * rowB
		x := a.X[img*C*hw : (img+1)*C*hw]
		for ih := range s.H {
			row := t.buf[base+ih*rowB : base+(ih+1)*rowB]
			// The gap before a row's data is the previous row's right padding.
			copy(row[:pl.g*C], t.zrow)
			if s.SH > 1 && !rowRead(s, ih) {
				continue // no output reads its data (e.g. odd rows of a 1x1 stride-2 conv)
			}
			data := row[pl.g*C:]
			if a.In == NHWC || C == 1 {
				xorCopy(data, x[ih*s.W*C:(ih+1)*s.W*C], t.flip)
				continue
			}
			t.transposeRow(data, x, ih)
		}
		t.fillZero(t.buf[base+s.H*rowB : base+pl.hq*rowB])
	}
	if last {
		t.fillZero(t.buf[(pl.gv+a.N*pl.hq)*rowB : pl.data])
	}
}

// rowRead reports whether some output row reads input row ih.
func rowRead(s *ConvShape, ih int) bool {
	for kh := range s.KH {
		if v := ih + s.PadT - kh*s.DH; v >= 0 && v%s.SH == 0 && v/s.SH < s.OH {
			return true
		}
	}
	return false
}

// fillZero sets b to the zero point, a buffer row at a time.
func (t *batchTask) fillZero(b []uint8) {
	for len(b) > 0 {
		b = b[copy(b, t.zrow):]
	}
}

// transposeRow writes input row ih of the NCHW image x as W pixels of C
// bytes.
func (t *batchTask) transposeRow(data, x []uint8, ih int) {
	s, flip := t.s, t.flip
	C, hw := s.C, s.H*s.W
	switch C {
	case 2, 3, 4:
		// Few channels (network inputs): pixel by pixel, stores in order.
		x0 := x[ih*s.W:][:s.W]
		x1 := x[hw+ih*s.W:][:s.W]
		x2, x3 := x1, x1
		if C > 2 {
			x2 = x[2*hw+ih*s.W:][:s.W]
		}
		if C > 3 {
			x3 = x[3*hw+ih*s.W:][:s.W]
		}
		d := data[:C*s.W]
		if C == 3 && interleave3Asm(requantAsm(t.tier), d, x0, x1, x2, flip) {
			return
		}
		for iw := range x0 {
			p := d[iw*C : iw*C+C]
			p[0], p[1] = x0[iw]^flip, x1[iw]^flip
			if C > 2 {
				p[2] = x2[iw] ^ flip
			}
			if C > 3 {
				p[3] = x3[iw] ^ flip
			}
		}
		return
	}
	transposeChannels(requantAsm(t.tier), data, C, x, hw, ih*s.W, s.W, C, flip)
}

// worker splits a worker's words into its results (rows x M), row sums,
// requantized rows and (gather) patch rows.
func (t *batchTask) worker(w []int32) (cb, rs []int32, tmp, ab []uint8) {
	rows, M := t.pl.rows, t.s.M
	cb = w[:rows*M]
	rs = w[rows*M : rows*M+rows]
	tw := (rows*M + 3) / 4
	tmp = bytesOf(w[rows*M+rows : rows*M+rows+tw])
	if t.pl.path == pathGather {
		ab = bytesOf(w[rows*M+rows+tw:])[:rows*t.pl.kp]
	}
	return
}

// gemmBlock computes output pixels [q0, q1) by the direct or the gather
// path and writes them.
func (t *batchTask) gemmBlock(w []int32, q0, q1 int) {
	s, cw, pl := t.s, t.cw, &t.pl
	cb, rs, tmp, ab := t.worker(w)
	n := q1 - q0
	mg := s.M / s.Group
	op := GemmOp{M: n, LdC: s.M}
	k := For(t.tier)
	for g := range s.Group {
		var am []uint8
		lda := pl.kp
		if pl.path == pathDirect {
			am, lda = t.a.X[q0*s.C:q1*s.C], s.C
		} else {
			am = ab[:n*pl.kp]
			t.gather(am, q0, n, g)
		}
		op.A, op.LdA, op.B, op.C = am, lda, cw.packed[g], cb[g*mg:n*s.M]
		k.Run(&op)
		if cw.zb != nil {
			// Gathered rows have a zero tail, so the whole row sums.
			t.subZB(cb, RowSums(am, n, lda, rs[:n]), g)
		}
	}
	t.emit(cb, tmp, q0, n)
}

// subZB subtracts zb[m]*rs[i] from row i of cb for group g's channels.
func (t *batchTask) subZB(cb, rs []int32, g int) {
	M, mg := t.s.M, t.s.M/t.s.Group
	zbs := t.cw.zb[g*mg : (g+1)*mg]
	for i, r := range rs {
		row := cb[i*M+g*mg : i*M+(g+1)*mg]
		for j := range row {
			row[j] -= zbs[j] * r
		}
	}
}

// gather writes the patch rows of output pixels [q0, q0+n) for group g
// (k ordered (kh, kw, c), zero tail) into am.
func (t *batchTask) gather(am []uint8, q0, n, g int) {
	s, pl, cw := t.s, &t.pl, t.cw
	C, cg, kp := s.C, cw.Cg, pl.kp
	P := s.OH * s.OW
	img, p := q0/P, q0%P
	oh, ow := p/s.OW, p%s.OW
	rowB := pl.wq * C
	contig := s.DW == 1 && cg == C
	run := s.KW * C
	buf := t.buf
	for i := range n {
		row := am[i*kp : (i+1)*kp]
		base := (pl.gv-s.PadT+img*pl.hq+oh*s.SH)*rowB + (pl.g-s.PadL+ow*s.SW)*C + g*cg
		switch {
		case contig:
			for kh := range s.KH {
				src := base + kh*s.DH*rowB
				copy(row[kh*run:(kh+1)*run], buf[src:src+run])
			}
		case cg == 1:
			tp := 0
			for kh := range s.KH {
				src := base + kh*s.DH*rowB
				for kw := range s.KW {
					row[tp] = buf[src+kw*s.DW*C]
					tp++
				}
			}
		default:
			tp := 0
			for kh := range s.KH {
				src := base + kh*s.DH*rowB
				for kw := range s.KW {
					o := src + kw*s.DW*C
					copy(row[tp:tp+cg], buf[o:o+cg])
					tp += cg
				}
			}
		}
		clear(row[cw.k:])
		if ow++; ow == s.OW {
			ow = 0
			if oh++; oh == s.OH {
				oh = 0
				img++
			}
		}
	}
}

// implicitBlock computes rows [r0, r1) (buffer pixels, or output pixels
// when strided) with the implicit-GEMM kernels and writes the rows that
// are output pixels.
func (t *batchTask) implicitBlock(w []int32, r0, r1 int) {
	s, cw, pl := t.s, t.cw, &t.pl
	cb, rs, tmp, _ := t.worker(w)
	n := r1 - r0
	M, mg, cg := s.M, s.M/s.Group, cw.Cg
	C := s.C
	for g := range s.Group {
		b := cw.packed[g]
		if pl.rowTaps && cw.batch.rowB != nil {
			b = cw.batch.rowB
		}
		if !pl.strided {
			mr := 12
			switch {
			case pl.kind.ymm():
				mr = 6
			case mg <= 16:
				mr = 24
			}
			t.tiles(mr, t.buf[r0*C+g*cg:], C, b, cb[g*mg:], n, mg)
		} else if !pl.kind.ymm() {
			t.stridedTiles(b, cb, r0, n, g)
		} else {
			// One output row (segment) at a time.
			mrRow := pl.pickMR(s.OW, mg)
			P := s.OH * s.OW
			img, p := r0/P, r0%P
			oh, ow := p/s.OW, p%s.OW
			for i := 0; i < n; {
				cnt := min(s.OW-ow, n-i)
				a := t.buf[((img*pl.hq+oh*s.SH)*pl.wq+ow*s.SW)*C+g*cg:]
				mr := mrRow
				if cnt != s.OW {
					mr = pl.pickMR(cnt, mg)
				}
				t.tiles(mr, a, s.SW*C, b, cb[i*M+g*mg:], cnt, mg)
				i += cnt
				if ow += cnt; ow == s.OW {
					ow = 0
					if oh++; oh == s.OH {
						oh = 0
						img++
					}
				}
			}
		}
		if cw.zb != nil {
			for i := range n {
				base := t.rowAddr(r0+i) + g*cg
				var sum int32
				for _, o := range t.offs[:pl.taps] {
					for _, v := range t.buf[base+o : base+o+pl.tapW] {
						sum += int32(v)
					}
				}
				rs[i] = sum
			}
			t.subZB(cb, rs[:n], g)
		}
	}
	if pl.strided {
		t.emit(cb, tmp, r0, n)
		return
	}
	// Write the rows that are output pixels: per image, OH buffer rows
	// of OW.
	per := pl.hq * pl.wq
	for r := r0; r < r1; {
		img, rem := r/per, r%per
		vh, vw := rem/pl.wq, rem%pl.wq
		if vh >= s.OH {
			r = (img + 1) * per
			continue
		}
		if vw >= s.OW {
			r += pl.wq - vw
			continue
		}
		cnt := min(s.OW-vw, r1-r)
		t.emit(cb[(r-r0)*M:], tmp, (img*s.OH+vh)*s.OW+vw, cnt)
		r += cnt
	}
}

// maxTileOffs bounds the tiles of one convTapsOffs call.
const maxTileOffs = 128

// stridedTiles computes output pixels [r0, r0+n) of group g with the VNNI
// tiles (strided implicit path) into cb: the full tiles of whole output
// rows in few kernel calls (one A offset per tile), the rest of each
// output row segment on its own.
func (t *batchTask) stridedTiles(b *PackedB, cb []int32, r0, n, g int) {
	s, pl, cw := t.s, &t.pl, t.cw
	M, mg, C := s.M, s.M/s.Group, s.C
	lda := s.SW * C
	mr := pl.pickMR(s.OW, mg)
	var toffsA [maxTileOffs]int // per call: workers run this concurrently
	toffs := toffsA[:0]
	i0 := 0 // the first row of the pending tiles
	flush := func() {
		if len(toffs) > 0 {
			t.offsTiles(mr, toffs, lda, b, cb[i0*M+g*mg:], mg)
		}
		toffs = toffs[:0]
	}
	P := s.OH * s.OW
	img, p := r0/P, r0%P
	oh, ow := p/s.OW, p%s.OW
	for i := 0; i < n; {
		cnt := min(s.OW-ow, n-i)
		base := ((img*pl.hq+oh*s.SH)*pl.wq+ow*s.SW)*C + g*cw.Cg
		full := cnt / mr
		for k := range full {
			if len(toffs) == maxTileOffs {
				flush()
			}
			if len(toffs) == 0 {
				i0 = i + k*mr
			}
			toffs = append(toffs, base+k*mr*lda)
		}
		if rest := cnt - full*mr; rest > 0 {
			flush()
			j := i + full*mr
			t.tiles(pl.pickMR(rest, mg), t.buf[base+full*mr*lda:], lda, b, cb[j*M+g*mg:], rest, mg)
		}
		i += cnt
		if ow += cnt; ow == s.OW {
			ow = 0
			if oh++; oh == s.OH {
				oh = 0
				img++
			}
		}
	}
	flush()
}

// offsTiles computes len(toffs) full tiles of mr rows, tile k's A rows at
// t.buf[toffs[k]:] lda apart, its C rows at c[k*mr*M:], for the group's mg
// columns (VNNI tiles).
func (t *batchTask) offsTiles(mr int, toffs []int, lda int, b *PackedB, c []int32, mg int) {
	pl, M := &t.pl, t.s.M
	offs := t.offs[:pl.taps]
	for j0 := 0; j0 < mg; j0 += nr {
		ncols := min(nr, mg-j0)
		bp := b.data[j0/nr*b.ks*nr+j0%nr*4:]
		if pl.kind == tapsVNNI && convTapsOffsAsm(mr, pl.taps, pl.cg4, t.buf, toffs, lda, offs, bp, c[j0:], M, ncols) {
			continue
		}
		convTapsOffsGo(mr, pl.taps, pl.cg4, t.buf, toffs, lda, offs, bp, c[j0:], M, ncols)
	}
}

// convTapsOffsGo is the pure-Go twin of convTapsOffsAsm: convTapsGo on
// each full tile k, its A at a[toffs[k]:], its C at c[k*mr*ldc:].
func convTapsOffsGo(mr, taps, cg int, a []uint8, toffs []int, lda int, offs []int, b []int8, c []int32, ldc, ncols int) {
	for k, o := range toffs {
		convTapsGo(mr, taps, cg, a[o:], lda, offs, b, c[k*mr*ldc:], ldc, mr, ncols, 1)
	}
}

// rowAddr returns the buffer offset of implicit row r's pixel.
func (t *batchTask) rowAddr(r int) int {
	s, pl := t.s, &t.pl
	if !pl.strided {
		return r * s.C
	}
	P := s.OH * s.OW
	img, p := r/P, r%P
	oh, ow := p/s.OW, p%s.OW
	return ((img*pl.hq+oh*s.SH)*pl.wq + ow*s.SW) * s.C
}

// tiles computes n rows (A rows lda bytes apart from a) of the group's mg
// columns into c (row stride M) with the implicit-GEMM kernel of mr rows.
func (t *batchTask) tiles(mr int, a []uint8, lda int, b *PackedB, c []int32, n, mg int) {
	pl, M := &t.pl, t.s.M
	offs := t.offs[:pl.taps]
	nt, tail := n/mr, n%mr
	nc := nr
	if pl.kind.ymm() {
		nc = 16
	}
	for j0 := 0; j0 < mg; j0 += nc {
		ncols := min(nc, mg-j0)
		bp := b.data[j0/nr*b.ks*nr+j0%nr*4:]
		cc := c[j0:]
		if nt > 0 {
			t.convTaps(mr, pl.taps, pl.cg4, a, lda, offs, bp, cc, M, mr, ncols, nt)
		}
		if tail > 0 {
			t.convTaps(mr, pl.taps, pl.cg4, a[nt*mr*lda:], lda, offs, bp, cc[nt*mr*M:], M, tail, ncols, 1)
		}
	}
}

// pickMR returns the implicit kernel's rows for n rows of mg columns: the
// one that computes the fewest rows in all (the taller on ties).
func (pl *batchPlan) pickMR(n, mg int) int {
	if pl.kind.ymm() {
		return 6
	}
	cands := [2]int{12, 8}
	if mg <= 16 {
		cands = [2]int{24, 16}
	}
	best, bestRows := 0, 0
	for _, mr := range cands {
		if rows := (n + mr - 1) / mr * mr; best == 0 || rows < bestRows {
			best, bestRows = mr, rows
		}
	}
	return best
}

// convTapsCols returns the columns of the VNNI implicit kernel of mr
// rows (0: no such kernel).
func convTapsCols(mr int) int {
	switch mr {
	case 8, 12:
		return 32
	case 16, 24:
		return 16
	}
	return 0
}

// batchWeights are what ConvBatch adds to ConvWeights.
type batchWeights struct {
	rowB   *PackedB // row-tap packing (see packRowTaps); nil: packed[0]
	absSum int64    // the largest sum of |w| over an output channel's weights
}

// prepareBatch sets cw.batch from the weights w (M x Cg x KH x KW).
func (cw *ConvWeights) prepareBatch(w []int8) {
	cw.batch.rowB = packRowTaps(w, cw)
	k := cw.Cg * cw.KH * cw.KW
	for m := range cw.M {
		var sum int64
		for _, v := range w[m*k : (m+1)*k] {
			sum += max(int64(v), -int64(v))
		}
		cw.batch.absSum = max(cw.batch.absSum, sum)
	}
}

// packRowTaps packs the weights of a one-group convolution whose kernel
// rows are not a multiple of 4 bytes (KW*C%4 != 0) for the implicit
// path's row taps: the reduction ordered (kh, kw, c) with each kernel
// row's KW*C values padded with zero rows to a multiple of 4, so that a
// tap's groups of 4 never straddle two kernel rows. nil when packed[0]
// serves (or the convolution is not such a GEMM).
func packRowTaps(w []int8, cw *ConvWeights) *PackedB {
	if cw.dw != nil || cw.Group != 1 || cw.KW*cw.Cg%4 == 0 || cw.KH > maxTaps {
		return nil
	}
	M, C, KH, KW := cw.M, cw.Cg, cw.KH, cw.KW
	kr := (KW*C + 3) &^ 3
	bt := make([]int8, KH*kr*M)
	for m := range M {
		for c := range C {
			for kh := range KH {
				for kw := range KW {
					bt[(kh*kr+kw*C+c)*M+m] = w[((m*C+c)*KH+kh)*KW+kw]
				}
			}
		}
	}
	return PackB(bt, KH*kr, M)
}

// convTaps runs the implicit-GEMM kernel (convTapsGo when asked or
// without assembly).
func (t *batchTask) convTaps(mr, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) {
	switch t.pl.kind {
	case tapsVNNI:
		if convTapsAsm(mr, taps, cg, a, lda, offs, b, c, ldc, rows, ncols, nt) {
			return
		}
	case tapsAVXVNNI, tapsAVX2:
		if convTapsYmmAsm(t.pl.kind == tapsAVXVNNI, taps, cg, a, lda, offs, b, c, ldc, rows, ncols, nt) {
			return
		}
	}
	convTapsGo(mr, taps, cg, a, lda, offs, b, c, ldc, rows, ncols, nt)
}

// convTapsGo is the pure-Go twin of the implicit-GEMM kernels: for nt
// tiles of mr rows (A and C advance by mr rows; rows < mr only when nt is
// 1), c[r*ldc+j] = sum over taps t and cg groups of 4 k-values q of
// a[r*lda+offs[t]+4q+e] * b[(t*cg+q)*128+4j+e], for r < rows, j < ncols.
func convTapsGo(mr, taps, cg int, a []uint8, lda int, offs []int, b []int8, c []int32, ldc, rows, ncols, nt int) {
	for tile := range nt {
		at := a[tile*mr*lda:]
		ct := c[tile*mr*ldc:]
		for r := range rows {
			var acc [nr]int32
			for tp, o := range offs[:taps] {
				row := at[r*lda+o : r*lda+o+4*cg]
				for q := range cg {
					x0, x1, x2, x3 := int32(row[4*q]), int32(row[4*q+1]), int32(row[4*q+2]), int32(row[4*q+3])
					bb := b[(tp*cg+q)*nr*4:]
					for j := range ncols {
						w := bb[4*j : 4*j+4]
						acc[j] += x0*int32(w[0]) + x1*int32(w[1]) + x2*int32(w[2]) + x3*int32(w[3])
					}
				}
			}
			copy(ct[r*ldc:r*ldc+ncols], acc[:ncols])
		}
	}
}

// emit writes n result rows acc (M values each, bias and zero points
// still to add) as output pixels q0.. (global over the batch): requantized
// (or int32 sums) into y in the output layout.
func (t *batchTask) emit(acc []int32, tmp []uint8, q0, n int) {
	s, a := t.s, t.a
	M, P := s.M, s.OH*s.OW
	if t.y32 != nil {
		for i := range n {
			q := q0 + i
			row := acc[i*M : (i+1)*M]
			if a.Out == NHWC {
				dst := t.y32[q*M : (q+1)*M]
				for m, v := range row {
					dst[m] = v + t.off[m]
				}
				continue
			}
			img, p := q/P, q%P
			dst := t.y32[img*M*P+p:]
			for m, v := range row {
				dst[m*P] = v + t.off[m]
			}
		}
		return
	}
	dst := tmp[:n*M]
	if a.Out == NHWC {
		dst = t.yb[q0*M : (q0+n)*M]
	}
	if r := a.Req; t.reqTab != nil && t.reqFast {
		requantTabAsm(dst, acc[:n*M], t.reqTab, !t.reqSmall, r.Zero, r.Lo-r.Zero, r.Hi-r.Zero)
	} else if t.reqTab != nil {
		z := int64(r.Zero)
		requantColsAsm(dst, acc[:n*M], t.reqTab, 4*reqTabWords, t.reqTab[16:], t.reqTab[48:], 4*reqTabWords, r.Zero, int64(r.Lo)-z, int64(r.Hi)-z, reqPeriod(t.reqTab))
	} else {
		a.Req.RowsBytes(t.tier, dst, acc, n, M, 0, t.off)
	}
	if a.Out == NHWC {
		return
	}
	// Transpose the requantized rows into each image's channel planes.
	for i := 0; i < n; {
		q := q0 + i
		img, p := q/P, q%P
		cnt := min(n-i, P-p)
		base := img * M * P
		blk := tmp[i*M : (i+cnt)*M]
		for m := range M {
			dst := t.yb[base+m*P+p : base+m*P+p+cnt]
			for r := range dst {
				dst[r] = blk[r*M+m]
			}
		}
		i += cnt
	}
}
