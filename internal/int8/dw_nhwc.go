package int8

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/goslim/goslim/internal/kernel"
)

// Channels-last depthwise convolution (ConvBatch's path for depthwise
// weights). Each output row of OW pixels x C channels is computed from the
// NHWC input in place: every tap of every pixel reads a run of C channel
// bytes, either from the image or, where the tap falls in the padding,
// from a row filled with the input zero point, so all taps always take
// part and
//
//	acc[p, c] = sum_t x'[p, t, c] * (w[c, t] - zb[c]) - za'*dwSum[c] + bias[c]
//
// (x' the padded input with int8 bytes flipped to uint8, za' the matching
// zero point) equals ConvRef's sum of (x - za) * (w - zb) over the valid
// taps. The AVX-512 kernel (dwNHWCAVX512, VBMI) forms int16 pairs of two
// taps' inputs per channel with one byte permute and multiplies them with
// the int16 weight pairs by VPMADDWD, 16 channels x 4 pixels per step; the
// Go twin loops over channels. The int32 row is then requantized along the
// channels (RowsBytes) straight into the NHWC output row.

// dwLayout is the workspace layout of one convDepthwiseBatch call, in
// int32 words: shared weights, additions and zero-point row, then one
// region per thread (accumulator row, NHWC input image when the input is
// NCHW, NHWC output image when the output is NCHW).
type dwLayout struct {
	c, cp, taps, pairs int
	wrow               int // words per tap row of the Go kernel's weights
	wp                 int // padded input pixels per row of VPDPBUSD groups
	wt, add, zrow, seg int // shared word counts (add: float64 multipliers, additions)
	acc, xin, yout, tb int // per-thread word counts
}

func dwLayoutOf(s *ConvShape, in, out Layout) dwLayout {
	l := dwLayout{c: s.C, cp: (s.C + 15) &^ 15, taps: s.KH * s.KW}
	l.pairs = (l.taps + 1) / 2
	// The packed pairs take cp*pairs words; the Go kernel's tap rows hold
	// the tap's weights for a whole output row (l.wrow words each).
	l.wrow = max(l.cp, s.OW*s.C)
	l.wt = l.wrow * l.taps
	l.add = 3 * l.cp
	l.zrow = (max(s.OW*s.SW, s.W)*s.C + 3) / 4
	l.seg = 3 * s.OW
	l.acc = s.OW * s.C
	if in == NCHW {
		l.xin = (s.C*s.H*s.W + 3) / 4
	}
	if out == NCHW {
		l.yout = s.OH * s.OW * s.C
	}
	if s.KH <= 3 {
		// One row of VPDPBUSD groups (dwBuild3) over the padded input
		// columns the taps reach, plus the channel-block overrun.
		l.wp = (s.OW-1)*s.SW + (s.KW-1)*s.DW + 1
		l.tb = l.wp*s.C + 16
	}
	return l
}

func (l *dwLayout) shared() int    { return l.wt + l.add + l.zrow + l.seg }
func (l *dwLayout) perThread() int { return l.acc + l.xin + l.yout + l.tb }

// dwBatchScratch returns the int32 words of workspace convDepthwiseBatch
// needs for n images of shape s in layouts in and out with up to threads
// workers (n does not matter: the work is split by image and row).
func dwBatchScratch(s *ConvShape, n, threads int, in, out Layout) int {
	l := dwLayoutOf(s, in, out)
	return l.shared() + max(threads, 1)*l.perThread()
}

// The depthwise kernels (dwKernel).
const (
	dwKernGo = iota
	dwKernAVX512
	dwKernAVX2
)

// dwMaxStackTaps bounds the kernels whose tap lists live on the stack
// (larger ones allocate their lists per row).
const dwMaxStackTaps = 64

// convDepthwiseBatch is ConvBatch for depthwise weights (C = M = Group):
// the same results, bit for bit, as ConvRef on every image, for every
// tier, layout pair and thread count. With a long-lived a it allocates
// nothing (the parallel task lives in a), except on the asm tiers for
// large kernels whose row pointer lists outgrow their stack arrays
// (2*ceil(taps/2) pointers per column segment; e.g. a padded 7x7 kernel),
// which take them from the heap per row.
func convDepthwiseBatch[T uint8 | int8 | int32](tier kernel.Tier, s *ConvShape, cw *ConvWeights, a *BatchArgs, y []T) error {
	if err := s.check(); err != nil {
		return err
	}
	if cw.dw == nil || cw.M != s.M || s.C != s.M || s.Group != s.M || cw.KH != s.KH || cw.KW != s.KW {
		return fmt.Errorf("int8: depthwise conv: weights M=%d Cg=%d %dx%d group %d do not match %+v", cw.M, cw.Cg, cw.KH, cw.KW, cw.Group, *s)
	}
	if a.N < 0 {
		return fmt.Errorf("int8: conv: %d images", a.N)
	}
	inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
	if len(a.X) < a.N*inImg || len(y) < a.N*outImg {
		return fmt.Errorf("int8: conv: %d input and %d output values for %d images of %d and %d", len(a.X), len(y), a.N, inImg, outImg)
	}
	if _, ok := any(y).([]int32); ok != (a.Req == nil) {
		return fmt.Errorf("int8: conv: int32 output goes with no requantization")
	}
	if a.Bias != nil && len(a.Bias) < s.M {
		return fmt.Errorf("int8: conv: %d bias values for %d channels", len(a.Bias), s.M)
	}
	threads := 1
	if a.Par != nil && a.Threads > 1 {
		threads = a.Threads
	}
	l := dwLayoutOf(s, a.In, a.Out)
	if need := l.shared() + threads*l.perThread(); len(a.WS) < need {
		return fmt.Errorf("int8: conv: workspace of %d words, want %d", len(a.WS), need)
	}
	if a.N == 0 {
		return nil
	}
	t := dwTask[T]{tier: tier, s: s, a: a, y: y, l: l, kern: dwKernel(tier, s.C), threads: threads}
	ws := a.WS
	t.wt, ws = ws[:l.wt], ws[l.wt:]
	// The float64 multipliers first: 8-byte aligned (wt has a multiple of
	// 16 words).
	t.scale = unsafe.Slice((*float64)(unsafe.Pointer(&ws[0])), l.cp)
	t.add, ws = ws[2*l.cp:3*l.cp], ws[l.add:]
	t.zrow, ws = bytesOf(ws[:l.zrow])[:max(s.OW*s.SW, s.W)*s.C], ws[l.zrow:]
	t.segs, ws = dwSegments(s, ws[:l.seg]), ws[l.seg:]
	t.ws = ws
	if a.Signed {
		t.flip = 0x80
	}
	// Zero-point row: the byte of the stored zero point (flipped with the
	// data, it is za').
	z := uint8(a.Zero)
	for i := range t.zrow {
		t.zrow[i] = z
	}
	if t.kern != dwKernGo {
		// The additions, multipliers and packed weights depend only on the
		// weights and parameters: kept in a's task slot across calls.
		pr := &dwTaskIn[T](a).prep
		if !pr.same(tier, s, cw, a, t.kern) {
			pr.fill(tier, s, cw, a, t.kern, &l)
		}
		t.add, t.scale, t.wt, t.fast, t.vnni = pr.add, pr.scale, pr.wt, pr.fast, pr.vnni
		if t.fast {
			r := a.Req
			z := int64(r.Zero)
			t.rq = dwReq{scale: &pr.scale[0], add: &pr.add[0], zero: z, lo: int64(r.Lo) - z, hi: int64(r.Hi) - z}
		}
	} else {
		dwAdditions(t.add, s, cw, a)
		// Per tap, its weights repeated for the OW pixels of a row.
		taps := l.taps
		for tp := range taps {
			row := t.wt[tp*l.wrow:][:l.wrow]
			for i := range row {
				row[i] = cw.dw[(i%s.C)*taps+tp]
			}
		}
	}
	t.byRow = a.In == NHWC && a.Out == NHWC
	t.units = a.N
	if t.byRow {
		t.units = a.N * s.OH
	}
	if threads > 1 {
		t.threads = min(threads, t.units)
		tp := dwTaskIn[T](a)
		t.prep = tp.prep
		*tp = t
		a.Par.ParallelTask(tp.threads, tp)
		return nil
	}
	t.Run(0, 1)
	return nil
}

// dwAdditions sets add[c] = bias[c] - za'*dwSum[c] for the C channels
// (za' the zero point of the flipped input bytes) and 0 up to len(add).
func dwAdditions(add []int32, s *ConvShape, cw *ConvWeights, a *BatchArgs) {
	za := a.Zero
	if a.Signed {
		za += 128
	}
	for c := range add {
		add[c] = 0
		if c < s.C {
			var b int32
			if a.Bias != nil {
				b = a.Bias[c]
			}
			add[c] = b - za*cw.dwSum[c]
		}
	}
}

// dwPrep holds the operands of the assembly kernels for one set of
// weights and parameters (the key fields, with copies of the bias and
// multipliers): additions, float64 multipliers, packed weights, and which
// kernel and requantization apply. It lives in BatchArgs' task slots, so
// a long-lived BatchArgs rebuilds it only when a parameter changes and
// allocates only when it grows.
type dwPrep struct {
	valid        bool
	cw           *ConvWeights
	s            ConvShape
	tier         kernel.Tier
	kern         int
	zero         int32
	signed       bool
	noBias       bool
	bias         []int32
	req          bool
	mult         []int32
	shift        []uint
	rz, rlo, rhi int32
	add          []int32
	scale        []float64
	wt           []int32
	fast, vnni   bool
}

// same reports whether p was filled for these weights and parameters.
func (p *dwPrep) same(tier kernel.Tier, s *ConvShape, cw *ConvWeights, a *BatchArgs, kern int) bool {
	if !p.valid || p.cw != cw || p.s != *s || p.tier != tier || p.kern != kern || p.zero != a.Zero ||
		p.signed != a.Signed || p.noBias != (a.Bias == nil) || p.req != (a.Req != nil) {
		return false
	}
	if a.Bias != nil && !slices.Equal(p.bias, a.Bias[:s.C]) {
		return false
	}
	if r := a.Req; r != nil {
		return p.rz == r.Zero && p.rlo == r.Lo && p.rhi == r.Hi && slices.Equal(p.mult, r.Mult) && slices.Equal(p.shift, r.Shift)
	}
	return true
}

// fill computes p for these weights and parameters (kern an assembly
// kernel).
func (p *dwPrep) fill(tier kernel.Tier, s *ConvShape, cw *ConvWeights, a *BatchArgs, kern int, l *dwLayout) {
	p.valid, p.cw, p.s, p.tier, p.kern, p.zero, p.signed = true, cw, *s, tier, kern, a.Zero, a.Signed
	p.noBias, p.req = a.Bias == nil, a.Req != nil
	p.bias = p.bias[:0]
	if a.Bias != nil {
		p.bias = append(p.bias, a.Bias[:s.C]...)
	}
	p.add = dwGrow(p.add, l.cp)
	p.scale = dwGrowF(p.scale, l.cp)
	dwAdditions(p.add, s, cw, a)
	p.fast, p.vnni = false, false
	if r := a.Req; r != nil {
		p.mult = append(p.mult[:0], r.Mult...)
		p.shift = append(p.shift[:0], r.Shift...)
		p.rz, p.rlo, p.rhi = r.Zero, r.Lo, r.Hi
		for c := range l.cp {
			ch := r.channel(min(c, s.C-1))
			p.scale[c] = math.Ldexp(float64(r.Mult[ch]), -int(r.Shift[ch]))
		}
		p.fast = dwFastReq(r, cw, p.add[:s.C], p.scale)
	}
	taps := l.taps
	p.vnni = p.fast && l.tb > 0 && dwVNNIKernel(tier) && dwFitsI8(cw.dw)
	if p.vnni {
		// Per block of 16 channels, KW x 16 dwords: the signed bytes of
		// kernel rows 0..KH-1 (0 for the others) of one kernel column.
		p.wt = dwGrow(p.wt, l.cp*s.KW)
		clear(p.wt)
		for c := range s.C {
			w := cw.dw[c*taps : (c+1)*taps]
			for kw := range s.KW {
				var v uint32
				for kh := range s.KH {
					v |= uint32(uint8(int8(w[kh*s.KW+kw]))) << (8 * kh)
				}
				p.wt[((c/16)*s.KW+kw)*16+c%16] = int32(v)
			}
		}
		return
	}
	// Per block of 16 channels, pairs x 16 dwords: tap 2j in the low
	// int16, tap 2j+1 (or 0) in the high one.
	p.wt = dwGrow(p.wt, l.cp*l.pairs)
	clear(p.wt)
	for c := range s.C {
		w := cw.dw[c*taps : (c+1)*taps]
		for j := range l.pairs {
			lo, hi := w[2*j], int32(0)
			if 2*j+1 < taps {
				hi = w[2*j+1]
			}
			p.wt[((c/16)*l.pairs+j)*16+c%16] = int32(uint32(uint16(int16(lo))) | uint32(uint16(int16(hi)))<<16)
		}
	}
}

// dwGrow returns b resized to n values (reallocated only when too short).
func dwGrow(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

// dwGrowF is dwGrow for float64 values.
func dwGrowF(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// dwTaskIn returns a's depthwise task slot for output type T.
func dwTaskIn[T uint8 | int8 | int32](a *BatchArgs) *dwTask[T] {
	switch p := any(&a.dwU8).(type) {
	case *dwTask[T]:
		return p
	}
	switch p := any(&a.dwI8).(type) {
	case *dwTask[T]:
		return p
	}
	return any(&a.dwI32).(*dwTask[T])
}

// dwTask is one convDepthwiseBatch call split into units (output rows when
// both layouts are NHWC, else images) over threads workers; Run(lo, hi)
// runs workers lo..hi-1, each on its own workspace region.
type dwTask[T uint8 | int8 | int32] struct {
	tier    kernel.Tier
	s       *ConvShape
	a       *BatchArgs
	y       []T
	l       dwLayout
	kern    int // dwKernGo, dwKernAVX512 or dwKernAVX2
	flip    uint8
	wt, add []int32
	scale   []float64
	rq      dwReq
	fast    bool   // the kernel requantizes (dwFastReq)
	vnni    bool   // dwBuild3 + dwTaps (KH <= 3, weights within int8, fast)
	prep    dwPrep // the assembly kernels' operands, kept across calls
	zrow    []uint8
	segs    []int32 // (end column, kw0, kw1) per run of output columns
	ws      []int32 // per-thread regions
	byRow   bool
	units   int
	threads int
}

// Run implements kernel.Task over worker indices.
func (t *dwTask[T]) Run(lo, hi int) {
	s, a, l := t.s, t.a, &t.l
	inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
	pt := l.perThread()
	for th := lo; th < hi; th++ {
		buf := t.ws[th*pt : (th+1)*pt]
		acc := buf[:l.acc]
		tb := buf[l.acc+l.xin+l.yout:][:l.tb]
		if t.vnni {
			t.padVNNI(tb)
		}
		u0, u1 := th*t.units/t.threads, (th+1)*t.units/t.threads
		if t.byRow {
			for u := u0; u < u1; {
				img, oh := u/s.OH, u%s.OH
				oh1 := min(s.OH, oh+u1-u)
				x := a.X[img*inImg : (img+1)*inImg]
				t.rows(x, oh, oh1, acc, tb, t.y[img*outImg+oh*s.OW*s.C:img*outImg+oh1*s.OW*s.C])
				u += oh1 - oh
			}
			continue
		}
		for img := u0; img < u1; img++ {
			x := a.X[img*inImg : (img+1)*inImg]
			if a.In == NCHW {
				xin := bytesOf(buf[l.acc : l.acc+l.xin])[:inImg]
				transposeT(xin, x, s.C, s.H*s.W)
				x = xin
			}
			yi := t.y[img*outImg : (img+1)*outImg]
			ynhwc := yi
			if a.Out == NCHW {
				ynhwc = viewT[T](buf[l.acc+l.xin:], outImg)
			}
			t.rows(x, 0, s.OH, acc, tb, ynhwc)
			if a.Out == NCHW {
				transposeT(yi, ynhwc, s.OH*s.OW, s.C)
			}
		}
	}
}

// dwKW returns the range [kw0, kw1) of kernel columns that fall inside the
// image for output column ow (kw0 = kw1 = 0 when none does).
func dwKW(s *ConvShape, ow int) (int, int) {
	return poolTaps(ow, s.SW, s.PadL, s.DW, s.KW, s.W)
}

// dwSegments splits the output columns into runs with the same range of
// kernel columns inside the image, written to seg as (end column, kw0,
// kw1) triples, and returns the used part of seg.
func dwSegments(s *ConvShape, seg []int32) []int32 {
	n := 0
	for ow := 0; ow < s.OW; {
		kw0, kw1 := dwKW(s, ow)
		ow1 := ow + 1
		for ow1 < s.OW {
			a0, a1 := dwKW(s, ow1)
			if a0 != kw0 || a1 != kw1 {
				break
			}
			ow1++
		}
		seg[n], seg[n+1], seg[n+2] = int32(ow1), int32(kw0), int32(kw1)
		n += 3
		ow = ow1
	}
	return seg[:n]
}

// dwPtrCap and dwSegCap bound the tap pointers and runs one kernel call
// takes from the stack (rows whose lists do not fit go one at a time with
// lists on the heap).
const (
	dwPtrCap = 256
	dwSegCap = 32
)

// dwGroupRows bounds the output rows of one kernel call (the next
// group's input rows are prefetched during a call).
const dwGroupRows = 1

// dwPrefetchGroups is how many groups ahead the input rows are prefetched.
const dwPrefetchGroups = 1

// rows computes output rows [oh0, oh1) of image x (NHWC) into dst (the
// NHWC values of those rows), using acc (OW x C words) for the sums of
// one row where the kernel does not requantize and tb (l.tb words) for
// the VPDPBUSD groups.
func (t *dwTask[T]) rows(x []uint8, oh0, oh1 int, acc, tb []int32, dst []T) {
	s, l := t.s, &t.l
	rowLen := s.OW * s.C
	if t.vnni {
		t.rowsVNNI(x, oh0, oh1, tb, dst)
		return
	}
	if t.kern == dwKernGo {
		for oh := oh0; oh < oh1; oh++ {
			t.rowGo(x, oh, acc)
			t.finish(acc, dst[(oh-oh0)*rowLen:][:rowLen])
		}
		return
	}
	per, nseg := 2*l.pairs, len(t.segs)/3
	var ptrArr [dwPtrCap]unsafe.Pointer
	var nArr [dwSegCap]int
	ptrs, ns := ptrArr[:], nArr[:]
	rowsPer := min(len(ptrs)/(per*nseg), len(ns)/nseg, dwGroupRows)
	if rowsPer == 0 {
		ptrs, ns, rowsPer = make([]unsafe.Pointer, per*nseg), make([]int, nseg), 1
	}
	var yb []uint8
	if t.fast {
		switch yt := any(dst).(type) {
		case []uint8:
			yb = yt
		case []int8:
			yb = bytesOfI8(yt)
		}
	}
	if yb == nil {
		rowsPer = 1 // int32 sums of one row at a time
	}
	lastRow := func(o int) int { return min(o*s.SH-s.PadT+(s.KH-1)*s.DH, s.H-1) }
	for oh := oh0; oh < oh1; oh += rowsPer {
		r := min(rowsPer, oh1-oh)
		if g0 := oh + dwPrefetchGroups*rowsPer; g0 < oh1 {
			// The input rows that group adds (the others are cached).
			a, b := max(lastRow(g0-1)+1, 0), lastRow(min(g0+rowsPer, oh1)-1)
			if b >= a {
				prefetch(x[a*s.W*s.C : (b+1)*s.W*s.C])
			}
			if yb != nil {
				prefetch(yb[(g0-oh0)*rowLen : (min(g0+rowsPer, oh1)-oh0)*rowLen])
			}
		}
		np, k := 0, 0
		for i := range r {
			np, k = t.rowPtrs(x, oh+i, ptrs, np, ns, k)
		}
		if yb != nil {
			dwRowsAsm(t.kern, nil, yb[(oh-oh0)*rowLen:(oh-oh0+r)*rowLen], ptrs[:np], ns[:k], t.wt, s.C, l.pairs, s.SW*s.C, dwFlags(t.tier, t.flip != 0), t.rq)
			continue
		}
		dwRowsAsm(t.kern, acc[:rowLen], nil, ptrs[:np], ns[:k], t.wt, s.C, l.pairs, s.SW*s.C, dwFlags(t.tier, t.flip != 0), t.rq)
		t.finish(acc, dst[(oh-oh0)*rowLen:][:rowLen])
	}
}

// rowsVNNI is rows by dwBuild3 and dwTaps: per output row, the (up to)
// three input rows its taps read become one row of VPDPBUSD groups over
// the padded columns (padding columns hold the zero point, filled once),
// which the taps of every kernel column read in place.
func (t *dwTask[T]) rowsVNNI(x []uint8, oh0, oh1 int, tb []int32, dst []T) {
	s, l := t.s, &t.l
	c, rowLen, rowBytes := s.C, s.OW*s.C, s.W*s.C
	var yb []uint8
	switch yt := any(dst).(type) {
	case []uint8:
		yb = yt
	case []int8:
		yb = bytesOfI8(yt)
	}
	nb := max(min(s.W, l.wp-s.PadL), 0) * c
	rq := t.rq
	var rp [3][]uint8
	lastRow := func(o int) int { return min(o*s.SH-s.PadT+(s.KH-1)*s.DH, s.H-1) }
	for oh := oh0; oh < oh1; oh++ {
		if o := oh + dwVNNIAhead; o < oh1 {
			// The input rows output row o adds and that output row.
			if a, b := max(lastRow(o-1)+1, 0), lastRow(o); b >= a {
				prefetch(x[a*rowBytes : (b+1)*rowBytes])
			}
			prefetch(yb[(o-oh0)*rowLen : (o+1-oh0)*rowLen])
		}
		if nb > 0 {
			for kh := range rp {
				rp[kh] = t.zrow
				if ih := oh*s.SH - s.PadT + kh*s.DH; kh < s.KH && ih >= 0 && ih < s.H {
					rp[kh] = x[ih*rowBytes : (ih+1)*rowBytes]
				}
			}
			dwBuild3(tb[s.PadL*c:], rp[0], rp[1], rp[2], nb, t.flip)
		}
		dwTaps(yb[(oh-oh0)*rowLen:], tb, t.wt, c, s.OW, s.SW*c, s.KW, s.DW*c, &rq)
	}
}

// padVNNI writes the zero point to the padding columns (and the
// overrun) of the VPDPBUSD group row tb; rowsVNNI rebuilds only the others.
func (t *dwTask[T]) padVNNI(tb []int32) {
	s, l := t.s, &t.l
	zp := uint32(uint8(t.a.Zero) ^ t.flip)
	pad := int32(zp * 0x01010101)
	c := s.C
	nb := max(min(s.W, l.wp-s.PadL), 0) * c
	if nb > 0 {
		dwFill(tb[:s.PadL*c], pad)
		dwFill(tb[s.PadL*c+nb:], pad)
	} else {
		dwFill(tb, pad)
	}
}

// dwVNNIAhead is how many output rows ahead rowsVNNI prefetches.
const dwVNNIAhead = 1

// dwFill sets every value of b to v.
func dwFill(b []int32, v int32) {
	for i := range b {
		b[i] = v
	}
}

// dwFitsI8 reports whether every weight (w - zb) fits in int8 (the
// VPDPBUSD kernel's signed bytes).
func dwFitsI8(w []int32) bool {
	for _, v := range w {
		if v < -128 || v > 127 {
			return false
		}
	}
	return true
}

// dwBuild3Go is the Go twin of dwBuild3VBMI: for e < n, dst[e] holds the
// bytes a[e]^flip, b[e]^flip, c[e]^flip (low to high) and a zero byte
// (the assembly leaves the fourth byte unspecified: its weights are 0).
func dwBuild3Go(dst []int32, a, b, c []byte, n int, flip uint8) {
	for e := range n {
		dst[e] = int32(uint32(a[e]^flip) | uint32(b[e]^flip)<<8 | uint32(c[e]^flip)<<16)
	}
}

// dwTapsGo is the Go twin of dwTapsVNNI: output row of n pixels x c
// channels from the VPDPBUSD groups tb (step and dstep in dwords) and
// the packed weights w (per 16-channel block, kw x 16 dwords of four
// signed bytes), requantized per rq into dst.
func dwTapsGo(dst []byte, tb, w []int32, c, n, step, kw, dstep int, rq *dwReq) {
	cp := (c + 15) &^ 15
	scale, add := unsafe.Slice(rq.scale, cp), unsafe.Slice(rq.add, cp)
	for p := range n {
		for ch := range c {
			acc := add[ch]
			for k := range kw {
				g := uint32(tb[p*step+k*dstep+ch])
				wv := uint32(w[((ch/16)*kw+k)*16+ch%16])
				for j := range 4 {
					acc += int32(uint8(g>>(8*j))) * int32(int8(wv>>(8*j)))
				}
			}
			f := math.FMA(float64(acc), scale[ch], 0x1.8p52)
			v := int64(int32(uint32(math.Float64bits(f))))
			dst[p*c+ch] = byte(min(max(v, rq.lo), rq.hi) + rq.zero)
		}
	}
}

// rowPtrs appends the runs of output row oh of image x: their pixel
// counts to ns from index k and their tap pointers (2*pairs per run; taps
// in the padding point to the zero-point row, an odd last tap is repeated
// for the zero weight) to ptrs from index np; it returns the new indices.
// The pointers are valid: a tap inside the image stays inside it for all
// pixels of its run (dwSegments), and x holds the whole image.
func (t *dwTask[T]) rowPtrs(x []uint8, oh int, ptrs []unsafe.Pointer, np int, ns []int, k int) (int, int) {
	s := t.s
	c, taps, per := s.C, t.l.taps, 2*t.l.pairs
	kh, kwN, dh, dwc, sw, padL, w, h := s.KH, s.KW, s.DH, s.DW*c, s.SW, s.PadL, s.W, s.H
	ih0 := oh*s.SH - s.PadT
	z := unsafe.Pointer(&t.zrow[0])
	base := unsafe.Pointer(unsafe.SliceData(x))
	segs := t.segs
	ow := 0
	for sg := 0; sg+2 < len(segs); sg += 3 {
		ow1, kw0, kw1 := int(segs[sg]), int(segs[sg+1]), int(segs[sg+2])
		ns[k] = ow1 - ow
		k++
		p := ptrs[np : np+per]
		col := (ow*sw - padL) * c
		for i := range kh {
			row := p[i*kwN : (i+1)*kwN]
			ih := ih0 + i*dh
			if ih < 0 || ih >= h {
				for j := range row {
					row[j] = z
				}
				continue
			}
			off := ih*w*c + col
			for j := range row {
				if j >= kw0 && j < kw1 {
					row[j] = unsafe.Add(base, off+j*dwc)
				} else {
					row[j] = z
				}
			}
		}
		if taps%2 == 1 {
			p[taps] = p[taps-1] // paired with weight 0
		}
		np += per
		ow = ow1
	}
	return np, k
}

// rowGo computes the int32 sums of output row oh of image x into acc with
// the Go kernel.
func (t *dwTask[T]) rowGo(x []uint8, oh int, acc []int32) {
	s, l := t.s, &t.l
	c, taps := s.C, l.taps
	var offArr [dwMaxStackTaps]int
	offs := offArr[:]
	if taps > dwMaxStackTaps {
		offs = make([]int, taps)
	}
	offs = offs[:taps]
	ow := 0
	for sg := 0; sg < len(t.segs); sg += 3 {
		ow1, kw0, kw1 := int(t.segs[sg]), int(t.segs[sg+1]), int(t.segs[sg+2])
		for kh := range s.KH {
			ih := oh*s.SH - s.PadT + kh*s.DH
			for kw := range s.KW {
				o := -1 // the zero-point row
				if ih >= 0 && ih < s.H && kw >= kw0 && kw < kw1 {
					o = (ih*s.W + ow*s.SW - s.PadL + kw*s.DW) * c
				}
				offs[kh*s.KW+kw] = o
			}
		}
		dwRowsGo(acc[ow*c:ow1*c], x, t.zrow, offs, t.wt, c, l.wrow, ow1-ow, s.SW*c, t.flip)
		ow = ow1
	}
}

// finish writes one row of sums acc (OW x C) to dst: plus the additions
// for int32 outputs, else requantized.
func (t *dwTask[T]) finish(acc []int32, dst []T) {
	s := t.s
	c := s.C
	switch yt := any(dst).(type) {
	case []int32:
		for p := range s.OW {
			for ch, v := range acc[p*c : (p+1)*c] {
				yt[p*c+ch] = v + t.add[ch]
			}
		}
	case []uint8:
		t.requantBytes(yt, acc)
	case []int8:
		t.requantBytes(bytesOfI8(yt), acc)
	}
}

// requantBytes requantizes one row of sums (OW x C, plus the additions)
// into dst: the vector kernel along the channels from kernel.TierAVX512
// up, else a Go loop per channel with its multiplier hoisted (RequantRow's
// arithmetic, the same bits).
func (t *dwTask[T]) requantBytes(dst []byte, acc []int32) {
	s, r := t.s, t.a.Req
	c, n := s.C, s.OW
	if requantAsm(t.tier) {
		r.RowsBytes(t.tier, dst, acc, n, c, 0, t.add)
		return
	}
	dst, acc = dst[:n*c], acc[:n*c]
	zero, lo, hi := int64(r.Zero), int64(r.Lo), int64(r.Hi)
	for ch := range c {
		k := r.channel(ch)
		mult, shift, add := int64(r.Mult[k]), r.Shift[k], t.add[ch]
		round := int64(1)<<(shift-1) - 1
		for i := ch; i < len(acc); i += c {
			p := int64(acc[i]+add) * mult
			v := (p+round+((p>>shift)&1))>>shift + zero
			dst[i] = byte(min(max(v, lo), hi))
		}
	}
}

// dwReq is the requantization operand of dwNHWCAVX512 (field offsets
// are fixed by the assembly): per-channel real multipliers mult*2^-shift
// and additions (cp values each), the output row (nil: int32 sums), the
// zero point and the clamp bounds minus the zero point.
type dwReq struct {
	scale        *float64
	add          *int32
	dst          *byte
	zero, lo, hi int64
}

// dwFastReq reports whether the kernel's float64 requantization gives
// Requant.One's bits: whether the clamp bounds lie within 255 of the zero
// point (always so for 8-bit outputs) and, for every channel, real < 1 or
// the largest possible sum (255*sum|w - zb| + |addition|) times real stays
// below 2^30. Then |acc*real| < 2^31 for every int32 sum acc (wrapped as
// in ConvRef), real = mult*2^-shift is exact in float64, and one FMA
// computes acc*real + 1.5*2^52 exactly and rounds it once, half to even, to
// the integer grid of that range: the fixed-point result
// round_half_even(acc*mult / 2^shift), whose low dword is its int32 value.
func dwFastReq(r *Requant, cw *ConvWeights, add []int32, real []float64) bool {
	if r.Hi-r.Zero > 255 || r.Zero-r.Lo > 255 {
		return false
	}
	taps := cw.KH * cw.KW
	for c, a := range add {
		if real[c] < 1 {
			continue
		}
		b := math.Abs(float64(a))
		for _, w := range cw.dw[c*taps : (c+1)*taps] {
			b += 255 * math.Abs(float64(w))
		}
		if b*real[c] >= 1<<30 {
			return false
		}
	}
	return true
}

// dwRowsGo is the Go twin of dwNHWCAVX512 on tap-major int32 weights
// (w[t*wrow + p*c + ch]: tap t's weight of channel ch, repeated for each
// pixel p of a row): for p < n, ch < c, out[p*c+ch] = sum_t
// (src_t[p*step+ch] ^ flip) * w[t*wrow+ch], where src_t is x[offs[t]:] or,
// for offs[t] < 0, the zero-point row. With step == c (stride 1) a tap's
// inputs for the whole run are contiguous: one flat loop per tap.
func dwRowsGo(out []int32, x, zrow []uint8, offs []int, w []int32, c, wrow, n, step int, flip uint8) {
	out = out[:n*c]
	clear(out)
	for t, off := range offs {
		src := x
		if off < 0 {
			src, off = zrow, 0
		}
		if step == c {
			sp := src[off : off+n*c]
			o, wp := out[:len(sp)], w[t*wrow:t*wrow+len(sp)]
			for i, v := range sp {
				o[i] += int32(v^flip) * wp[i]
			}
			continue
		}
		wt := w[t*wrow : t*wrow+c]
		for p := range n {
			sp := src[off+p*step : off+p*step+c]
			o, wp := out[p*c:p*c+len(sp)], wt[:len(sp)]
			for ch, v := range sp {
				o[ch] += int32(v^flip) * wp[ch]
			}
		}
	}
}
