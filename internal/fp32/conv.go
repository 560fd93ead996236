package fp32

import (
	"fmt"
	"unsafe"
)

// ConvOp is one image and group of a convolution, computed as the GEMM
// Y = act(W * col(X) + Bias) for the window positions [Col0, Col0+NCol):
//
//	Y[m][o] = act(Bias[m] + sum_{c < Channels, t < K} W[m][c*K+t] * X[c][pos(o, t)])
//
// with K = Geom.KernelSize(), pos as in ConvGeom.Im2col (zero in the
// padding) and Y's row m at Y[m*LdY:]. W is M x Channels*K row-major,
// or PW when pre-packed (PackA of that matrix). Bias may be nil.
//
// Kernels.Conv picks one of three ways to feed the GEMM:
//   - pointwise (1x1, stride 1, no padding): X is the right operand as is;
//   - wide (at most two spatial axes): the needed input rows are copied
//     once into a zero-padded buffer split into stride phases (sub-images
//     X_ab[i][j] = Xpadded[sh*i+a][sw*j+b]), which makes every tap a
//     stride-1 read (or X is read in place for stride 1 without padding),
//     so row (c, t) of the column matrix is one contiguous slice of the
//     buffer when the output is computed on the buffer's row width ("wide"
//     rows; the few extra columns are dropped when copying into Y);
//   - general: each panel of the column matrix is packed from the image
//     (ConvSource).
type ConvOp struct {
	Geom       *ConvGeom
	M          int
	Channels   int
	X          []float32
	W          []float32
	PW         *PackedA
	Y          []float32
	LdY        int
	Col0, NCol int
	Bias       []float32
	Act        Act
	// PWT, when set for a pointwise convolution, is W^T (Channels x M)
	// packed by PackB; small outputs (fewer than 32 positions) are then
	// computed transposed (positions as GEMM rows, channels as columns)
	// and transposed into Y, which keeps the vector lanes full.
	PWT *PackedB
}

// rowSource is a GEMM right operand whose row p is base[off(p):], off(p) =
// offs[p] or p*stride when offs is nil.
type rowSource struct {
	base   []float32
	offs   []int32
	stride int
}

type convMode uint8

const (
	convGeneral convMode = iota
	convPointwise
	convWide
	convPointwiseT // pointwise, computed transposed (small outputs)
)

// convWideGeom is the wide-row layout of a convolution with at most two
// spatial axes for output rows [r0, r1): the padded input rows
// [sh*r0, sh*r0+hp) are split into sh*sw phase sub-images of hs x ws.
type convWideGeom struct {
	r0, r1 int
	hp     int  // padded input rows read
	hs, ws int  // rows and columns of each phase sub-image
	direct bool // stride 1 without padding: read X in place (ws = W)
	nw     int  // wide columns: (r1-r0-1)*ws + outW
}

func (op *ConvOp) mode() convMode {
	g := op.Geom
	if g.KernelSize() == 1 && g.InSize() == g.OutSize() && g.Stride == [3]int{1, 1, 1} && g.Pad == [3]int{} {
		if op.NCol < 32 && op.PWT != nil {
			return convPointwiseT
		}
		return convPointwise
	}
	if g.In[0] == 1 && g.Out[0] == 1 && g.Kernel[0] == 1 {
		return convWide
	}
	return convGeneral
}

func (op *ConvOp) wide() convWideGeom {
	g := op.Geom
	outW := g.Out[2]
	sh, sw := g.Stride[1], g.Stride[2]
	var w convWideGeom
	w.r0 = op.Col0 / outW
	w.r1 = (op.Col0 + op.NCol + outW - 1) / outW
	w.hp = (w.r1-w.r0-1)*sh + (g.Kernel[1]-1)*g.Dilation[1] + 1
	wp := (outW-1)*sw + (g.Kernel[2]-1)*g.Dilation[2] + 1
	w.hs = (w.hp + sh - 1) / sh
	w.ws = (wp + sw - 1) / sw
	top := w.r0*sh - g.Pad[1]
	w.direct = sh == 1 && sw == 1 && g.Pad[2] == 0 && wp == g.In[2] && top >= 0 && top+w.hp <= g.In[1]
	w.nw = (w.r1-w.r0-1)*w.ws + outW
	return w
}

// gemm returns the GemmOp of op without its right operand.
func (op *ConvOp) gemm(n, k int) GemmOp {
	return GemmOp{M: op.M, N: n, K: k, Alpha: 1, A: Mat{Data: op.W, Ld: max(k, 1)}, PA: op.PW, RowBias: op.Bias, Act: op.Act}
}

// convPlan is how Kernels.Conv runs one ConvOp: the mode, and for the
// indirect (AVX-512) micro-kernel whether output rows map straight onto
// Y (rowMode: no wide columns computed, nothing to copy).
type convPlan struct {
	mode    convMode
	ind     bool
	rowMode bool
	w       convWideGeom
}

func (k Kernels) convPlan(op *ConvOp) convPlan {
	pl := convPlan{mode: op.mode(), ind: hasIndirect(k.arch())}
	if pl.mode == convWide {
		pl.w = op.wide()
		outW := op.Geom.Out[2]
		pl.rowMode = pl.ind && (outW >= 16 || outW == 8) && op.Col0%outW == 0 && (op.Col0+op.NCol)%outW == 0
	}
	return pl
}

// gemmT returns the transposed product of a pointwise op: C^T (NCol x M)
// = X^T * W^T, with the bias per column.
func (op *ConvOp) gemmT() GemmOp {
	return GemmOp{M: op.NCol, N: op.M, K: op.Channels, Alpha: 1,
		A: Mat{Data: op.X[op.Col0:], Ld: op.Geom.InSize(), Trans: true}, PB: op.PWT, ColBias: op.Bias, Act: op.Act}
}

// transposeGo is the pure-Go twin of transposeAVX512:
//
//	for i < rows, m < n: y[m*ldy+i] = ct[i*ldc+m]
func transposeGo(y []float32, ldy int, ct []float32, ldc, rows, n int) {
	for m := 0; m < n; m++ {
		yr := y[m*ldy : m*ldy+rows]
		for i := range yr {
			yr[i] = ct[i*ldc+m]
		}
	}
}

// ConvScratch returns the number of float32s of workspace Conv needs.
func (k Kernels) ConvScratch(op *ConvOp) int {
	if op.M <= 0 || op.NCol <= 0 {
		return 0
	}
	kk := op.Channels * op.Geom.KernelSize()
	pl := k.convPlan(op)
	ar := k.arch()
	aPack := 0 // packing buffer of A for the indirect kernel
	if op.PW == nil {
		aPack = roundUp(ar.mBlock(op.M), ar.mr) * ar.kBlock(kk)
	}
	switch pl.mode {
	case convPointwiseT:
		g := op.gemmT()
		return k.Scratch(&g) + op.NCol*op.M
	case convPointwise:
		if pl.ind {
			return aPack + kk
		}
		g := op.gemm(op.NCol, kk)
		g.rows.base = op.X
		return k.Scratch(&g)
	case convWide:
		w := pl.w
		n := kk
		if !w.direct {
			n += op.Channels * op.Geom.Stride[1] * op.Geom.Stride[2] * w.hs * w.ws
		}
		if !pl.rowMode {
			n += op.M * w.nw
		}
		if pl.ind {
			return n + aPack
		}
		g := op.gemm(w.nw, kk)
		g.rows.base = op.X
		return n + k.Scratch(&g)
	}
	g := op.gemm(op.NCol, kk)
	g.Conv = &ConvSource{}
	return k.Scratch(&g)
}

// Conv computes op (see ConvOp) with workspace ws (allocated when shorter
// than ConvScratch(op)).
func (k Kernels) Conv(ws []float32, op *ConvOp) {
	g := op.Geom
	if op.M <= 0 || op.NCol <= 0 {
		return
	}
	if op.Col0 < 0 || op.Col0+op.NCol > g.OutSize() || len(op.X) < op.Channels*g.InSize() ||
		len(op.Y) < (op.M-1)*op.LdY+op.Col0+op.NCol || op.LdY < g.OutSize() {
		panic(fmt.Sprintf("fp32: Conv columns %d+%d of %d, X has %d values for %d channels, Y %d with stride %d",
			op.Col0, op.NCol, g.OutSize(), len(op.X), op.Channels, len(op.Y), op.LdY))
	}
	if need := k.ConvScratch(op); len(ws) < need {
		ws = make([]float32, need)
	}
	kk := op.Channels * g.KernelSize()
	pl := k.convPlan(op)
	switch pl.mode {
	case convPointwiseT:
		gm := op.gemmT()
		n := k.Scratch(&gm)
		ct := ws[n : n+op.NCol*op.M]
		gm.C, gm.LdC = ct, op.M
		k.Run(ws[:n], &gm)
		transposeInto(k.arch().asm, op.Y[op.Col0:], op.LdY, ct, op.M, op.NCol, op.M)
	case convPointwise:
		gm := op.gemm(op.NCol, kk)
		gm.C, gm.LdC = op.Y[op.Col0:], op.LdY
		if pl.ind {
			offs := int32s(ws[:kk])
			for p := range offs {
				offs[p] = int32(p * g.InSize())
			}
			gm.rows = rowSource{base: op.X[op.Col0:], offs: offs}
			k.runInd(ws[kk:], &gm, indSegs{n: 1, len: op.NCol})
			return
		}
		gm.rows = rowSource{base: op.X[op.Col0:], stride: g.InSize()}
		k.Run(ws, &gm)
	case convWide:
		k.convWide(ws, op, kk, &pl)
	default:
		gm := op.gemm(op.NCol, kk)
		gm.Conv = &ConvSource{Geom: g, Image: op.X, Channels: op.Channels, Col0: op.Col0}
		gm.C, gm.LdC = op.Y[op.Col0:], op.LdY
		k.Run(ws, &gm)
	}
}

// int32s views float32 scratch as int32s (both are 4 bytes).
func int32s(f []float32) []int32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&f[0])), len(f))
}

// convWide runs the wide-row form of a convolution.
func (k Kernels) convWide(ws []float32, op *ConvOp, kk int, pl *convPlan) {
	g := op.Geom
	w := pl.w
	outW := g.Out[2]
	offs := int32s(ws[:kk])
	rest := ws[kk:]
	var wideC []float32
	if !pl.rowMode {
		wideC, rest = rest[:op.M*w.nw], rest[op.M*w.nw:]
	}
	sh, sw := g.Stride[1], g.Stride[2]
	var src []float32
	plane, sub := g.InSize(), 0 // channel plane and phase sub-image sizes
	if w.direct {
		src = op.X[(w.r0-g.Pad[1])*g.In[2]:]
	} else {
		sub = w.hs * w.ws
		plane = sh * sw * sub
		src, rest = rest[:op.Channels*plane], rest[op.Channels*plane:]
		g.phaseSplit(k.arch().asm, src, op.X, op.Channels, w.r0*sh-g.Pad[1], w.hp, w.hs, w.ws)
	}
	K := g.KernelSize()
	kh, kw := g.Kernel[1], g.Kernel[2]
	for c := 0; c < op.Channels; c++ {
		t := 0
		for i := 0; i < kh; i++ {
			ri := i * g.Dilation[1]
			for j := 0; j < kw; j++ {
				cj := j * g.Dilation[2]
				off := c*plane + ((ri%sh)*sw+cj%sw)*sub + ri/sh*w.ws + cj/sw
				offs[c*K+t] = int32(off)
				t++
			}
		}
	}
	gm := op.gemm(w.nw, kk)
	gm.rows = rowSource{base: src, offs: offs}
	if pl.rowMode {
		// Output row r reads wide columns r*ws...; it is row r of Y.
		gm.N = op.NCol
		gm.C, gm.LdC = op.Y[op.Col0:], op.LdY
		k.runInd(rest, &gm, indSegs{n: w.r1 - w.r0, len: outW, bPitch: w.ws, cPitch: outW, stream: outW%16 == 0, quad: outW == 8})
		return
	}
	gm.C, gm.LdC = wideC, w.nw
	if pl.ind {
		k.runInd(rest, &gm, indSegs{n: 1, len: w.nw})
	} else {
		k.Run(rest, &gm)
	}
	// Drop the wide columns: copy the wanted positions into Y.
	lo, hi := op.Col0, op.Col0+op.NCol
	for m := 0; m < op.M; m++ {
		wrow := wideC[m*w.nw : (m+1)*w.nw]
		yrow := op.Y[m*op.LdY:]
		for r := w.r0; r < w.r1; r++ {
			a, b := max(lo, r*outW), min(hi, (r+1)*outW)
			if a >= b {
				continue
			}
			off := (r-w.r0)*w.ws + a - r*outW
			copy(yrow[a:b], wrow[off:off+b-a])
		}
	}
}

// indSegs lays out the N columns of an indirect product as n segments of
// len columns: column j of segment s reads B column s*bPitch+j (from each
// row's offset) and writes C column s*cPitch+j.
type indSegs struct {
	n, len, bPitch, cPitch int
	// quad (len 8 and cPitch 8): segments s..s+3 form one 32-column tile.
	quad bool
	// stream (len a multiple of 16, cPitch len): the segments are one
	// stream of columns cut into 32-column tiles, whose two 16-column
	// halves may come from consecutive segments.
	stream bool
}

// runInd computes op (Alpha 1, Beta 0, A or PA, RowBias, Act) with B given
// unpacked by op.rows (base and offs) and laid out by seg, using the
// indirect micro-kernel (B read in place, nothing packed). ws holds the
// packing buffer of A when PA is nil.
func (k Kernels) runInd(ws []float32, op *GemmOp, seg indSegs) {
	ar := k.arch()
	m, kk := op.M, op.K
	mc, kc := ar.mBlock(m), ar.kBlock(kk)
	var wa []float32
	if op.PA == nil {
		wa = ws[:roundUp(mc, ar.mr)*kc]
	}
	goAct := op.Act.Kind != ActNone && !actInAsm(op.Act)
	base, offs := op.rows.base, op.rows.offs
	var ep tileEp
	for pc := 0; pc < kk; pc += kc {
		kb := min(kc, kk-pc)
		o := offs[pc : pc+kb]
		maxOff := 0
		for _, v := range o {
			if v < 0 {
				panic("fp32: negative indirect offset")
			}
			maxOff = max(maxOff, int(v))
		}
		ep.flags = 0
		if pc > 0 {
			ep.flags |= epLoadC | epBeta1
		}
		last := pc+kb == kk
		if last {
			if op.RowBias != nil {
				ep.flags |= epRowBias
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
			if seg.stream {
				total := seg.n * seg.len
				for j := 0; j < total; j += 32 {
					cols := min(32, total-j)
					b := base[j/seg.len*seg.bPitch+j%seg.len:]
					var b2 []float32
					if cols > 16 {
						b2 = base[(j+16)/seg.len*seg.bPitch+(j+16)%seg.len:]
					}
					for i := 0; i < mb; i += ar.mr {
						rows := min(ar.mr, mb-i)
						if ep.flags&epRowBias != 0 {
							ep.rowBias = &op.RowBias[ic+i]
						}
						off := (ic+i)*op.LdC + j
						c := op.C[off : off+(rows-1)*op.LdC+cols]
						asmTileInd(kb, pa[i*kb:(i+ar.mr)*kb], b, b2, o, maxOff, c, op.LdC, rows, cols, &ep)
						if last && goAct {
							for r := 0; r < rows; r++ {
								ar.applyAct(op.Act, c[r*op.LdC:r*op.LdC+cols])
							}
						}
					}
				}
				continue
			}
			if seg.quad {
				for s := 0; s < seg.n; s += 4 {
					nrows := min(4, seg.n-s)
					var b4 [4][]float32
					for j := range b4 {
						b4[j] = base[(s+min(j, nrows-1))*seg.bPitch:]
					}
					for i := 0; i < mb; i += ar.mr {
						rows := min(ar.mr, mb-i)
						if ep.flags&epRowBias != 0 {
							ep.rowBias = &op.RowBias[ic+i]
						}
						off := (ic+i)*op.LdC + s*seg.cPitch
						c := op.C[off : off+(rows-1)*op.LdC+8*nrows]
						asmTileInd4(kb, pa[i*kb:(i+ar.mr)*kb], &b4, o, maxOff, c, op.LdC, rows, 8*nrows, &ep)
						if last && goAct {
							for r := 0; r < rows; r++ {
								ar.applyAct(op.Act, c[r*op.LdC:r*op.LdC+8*nrows])
							}
						}
					}
				}
				continue
			}
			for s := 0; s < seg.n; s++ {
				for j := 0; j < seg.len; j += ar.nr {
					cols := min(ar.nr, seg.len-j)
					b := base[s*seg.bPitch+j:]
					for i := 0; i < mb; i += ar.mr {
						rows := min(ar.mr, mb-i)
						if ep.flags&epRowBias != 0 {
							ep.rowBias = &op.RowBias[ic+i]
						}
						off := (ic+i)*op.LdC + s*seg.cPitch + j
						c := op.C[off : off+(rows-1)*op.LdC+cols]
						asmTileInd(kb, pa[i*kb:(i+ar.mr)*kb], b, nil, o, maxOff, c, op.LdC, rows, cols, &ep)
						if last && goAct {
							for r := 0; r < rows; r++ {
								ar.applyAct(op.Act, c[r*op.LdC:r*op.LdC+cols])
							}
						}
					}
				}
			}
		}
	}
}

// phaseSplit copies padded input rows [top, top+hp) (top in input
// coordinates, so rows outside [0, H) are padding) of each channel plane
// of x into dst, split into stride phases: for channel c, row phase a <
// sh and column phase b < sw, the hs x ws sub-image at
// dst[((c*sh+a)*sw+b)*hs*ws:] holds padded element (sh*i+a, sw*j+b) at
// (i, j), zero in the padding and past the rows read.
func (g *ConvGeom) phaseSplit(asm int, dst, x []float32, channels, top, hp, hs, ws int) {
	sh, sw := g.Stride[1], g.Stride[2]
	sub := hs * ws
	block := sh * sw * sub
	inSize := g.InSize()
	// Only the phases some tap reads are filled (a 1x1 stride-2
	// convolution reads one of four).
	rows, cols := ^uint64(0), ^uint64(0)
	if sh <= 64 && sw <= 64 {
		rows, cols = 0, 0
		for i := 0; i < g.Kernel[1]; i++ {
			rows |= 1 << (i * g.Dilation[1] % sh)
		}
		for j := 0; j < g.Kernel[2]; j++ {
			cols |= 1 << (j * g.Dilation[2] % sw)
		}
	}
	for c := 0; c < channels; c++ {
		d := dst[c*block : (c+1)*block]
		for a := 0; a < sh; a++ {
			for b := 0; b < sw; b++ {
				if phaseNeeded(rows, a) && phaseNeeded(cols, b) {
					clear(d[(a*sw+b)*sub : (a*sw+b+1)*sub])
				}
			}
		}
		g.padPlane(asm, d, x[c*inSize:(c+1)*inSize], top, hp, ws, sw*sub, ws, sub, rows, cols)
	}
}

// phaseNeeded reports whether phase a is in the set mask (phases from 64
// on are always needed; sets are all ones for such strides).
func phaseNeeded(mask uint64, a int) bool { return a >= 64 || mask>>a&1 != 0 }

// padPlane writes the inside of one padded, phase-split channel plane into
// dst (which the caller cleared): padded row r < hp is input row top+r,
// padded column q is input column q-Pad[2]; element (r, q) with q/sw < pw
// goes to dst[(r%sh)*aStride + (r/sh)*rStride + (q%sw)*phaseStride + q/sw],
// for the row phases r%sh in the bit set rows and the column phases q%sw
// in cols.
func (g *ConvGeom) padPlane(asm int, dst, x []float32, top, hp, pw, aStride, rStride, phaseStride int, rows, cols uint64) {
	H, W := g.In[1], g.In[2]
	sh, sw := g.Stride[1], g.Stride[2]
	padL := g.Pad[2]
	rLo, rHi := max(0, -top), min(hp, H-top) // padded rows inside the image
	if rLo >= rHi {
		return
	}
	for a := 0; a < sh; a++ {
		if !phaseNeeded(rows, a) {
			continue
		}
		iLo := (max(rLo-a, 0) + sh - 1) / sh
		iHi := (max(rHi-a, 0) + sh - 1) / sh
		if iLo >= iHi {
			continue
		}
		ih0 := top + a + sh*iLo
		for b := 0; b < sw; b++ {
			if !phaseNeeded(cols, b) {
				continue
			}
			// Columns j with 0 <= sw*j + b - padL < W, j < pw.
			lo, hi := 0, 0
			if padL-b > 0 {
				lo = (padL - b + sw - 1) / sw
			}
			if W+padL-b > 0 {
				hi = (W + padL - b + sw - 1) / sw
			}
			lo, hi = min(lo, pw), min(hi, pw)
			if lo >= hi {
				continue
			}
			gatherRows(asm, dst[a*aStride+iLo*rStride+b*phaseStride+lo:], rStride,
				x[ih0*W+sw*lo+b-padL:], sh*W, iHi-iLo, hi-lo, sw)
		}
	}
}

// gatherRowsGo is the pure-Go twin of gatherRowsAVX512:
//
//	for r < rows, j < n: dst[r*dp+j] = src[r*sp+j*stride]
func gatherRowsGo(dst []float32, dp int, src []float32, sp, rows, n, stride int) {
	for r := 0; r < rows; r++ {
		d := dst[r*dp : r*dp+n]
		s := src[r*sp : r*sp+(n-1)*stride+1]
		if stride == 1 {
			copy(d, s)
			continue
		}
		for j := range d {
			d[j] = s[j*stride]
		}
	}
}

// PointwiseTOp is a batch of 1x1 convolutions computed transposed in one
// GEMM: the positions of all images are the GEMM's rows, so the packed W^T
// is streamed once per batch and small outputs keep the vector lanes
// full:
//
//	Y[b][m][s] = act(Bias[m] + sum_{c < Channels} W[m][c] * X[b][c][s])
//
// for images b < Batch, output channels m < M, positions s < Size. PWT is
// W^T packed by PackB(true, Channels, M, W, Channels); Bias may be nil.
type PointwiseTOp struct {
	Batch, Channels, M, Size int
	X                        []float32
	PWT                      *PackedB
	Y                        []float32
	Bias                     []float32
	Act                      Act
}

func (op *PointwiseTOp) gemm() GemmOp {
	rows := op.Batch * op.Size
	return GemmOp{M: rows, N: op.M, K: op.Channels, Alpha: 1, A: Mat{Ld: max(rows, 1), Trans: true}, PB: op.PWT,
		ColBias: op.Bias, Act: op.Act}
}

// PointwiseTScratch returns the number of float32s of workspace
// PointwiseT needs.
func (k Kernels) PointwiseTScratch(op *PointwiseTOp) int {
	rows := op.Batch * op.Size
	g := op.gemm()
	return op.Channels*rows + rows*op.M + k.Scratch(&g)
}

// PointwiseT computes op (see PointwiseTOp) with workspace ws (allocated
// when shorter than PointwiseTScratch): the inputs are gathered into one
// Channels x (Batch*Size) matrix, multiplied by W^T into (Batch*Size) x M,
// and each image's block is transposed into Y.
func (k Kernels) PointwiseT(ws []float32, op *PointwiseTOp) {
	B, C, M, S := op.Batch, op.Channels, op.M, op.Size
	if B <= 0 || M <= 0 || S <= 0 {
		return
	}
	if len(op.X) < B*C*S || len(op.Y) < B*M*S || (op.Bias != nil && len(op.Bias) < M) {
		panic(fmt.Sprintf("fp32: PointwiseT of %d images (%d -> %d channels, %d positions): X %d, Y %d values",
			B, C, M, S, len(op.X), len(op.Y)))
	}
	if need := k.PointwiseTScratch(op); len(ws) < need {
		ws = make([]float32, need)
	}
	asm := k.arch().asm
	rows := B * S
	xcat, ct, rest := ws[:C*rows], ws[C*rows:C*rows+rows*M], ws[C*rows+rows*M:]
	for c := 0; c < C; c++ {
		gatherRows(asm, xcat[c*rows:], S, op.X[c*S:], C*S, B, S, 1)
	}
	g := op.gemm()
	g.A.Data = xcat
	g.C, g.LdC = ct, M
	k.Run(rest, &g)
	for b := 0; b < B; b++ {
		transposeInto(asm, op.Y[b*M*S:], S, ct[b*S*M:], M, S, M)
	}
}
