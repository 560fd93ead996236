package fp32

import (
	"fmt"
	"unsafe"
)

// DepthwiseOp is a depthwise convolution: each of Channels input planes
// (X, Geom.InSize() values each) convolved with its own M filters (the
// channel multiplier):
//
//	Y[f][o] = act(Bias[f] + sum_{t < K} W[f*K+t] * X[f/M][pos(o, t)])
//
// for filters f < Channels*M and every window position o, with K =
// Geom.KernelSize(), pos as in ConvGeom.Im2col (zero in the padding), Y's
// plane f at Y[f*LdY:] and Bias optional. The sum starts from the bias and
// adds the taps in order. Only geometries without a depth axis
// (Geom.In[0] == Geom.Out[0] == Geom.Kernel[0] == 1) are supported.
type DepthwiseOp struct {
	Geom     *ConvGeom
	Channels int
	M        int
	X        []float32
	W        []float32
	Y        []float32
	LdY      int
	Bias     []float32
	Act      Act
}

// dwLayout is the padded, stride-phase-split copy of the input plane the
// depthwise kernels read: row i holds, for each phase f < sw, the values
// of padded columns f, f+sw, f+2*sw, ... (pw of them), so that every tap
// reads a contiguous run for consecutive outputs.
type dwLayout struct {
	hp, wp  int // padded rows and columns actually read
	pw      int // columns per phase
	rowLen  int // sw*pw
	rowStep int // sh*rowLen: distance between consecutive output rows
	direct  bool
}

func (g *ConvGeom) dwLayout() dwLayout {
	var l dwLayout
	sh, sw := g.Stride[1], g.Stride[2]
	l.hp = (g.Out[1]-1)*sh + (g.Kernel[1]-1)*g.Dilation[1] + 1
	l.wp = (g.Out[2]-1)*sw + (g.Kernel[2]-1)*g.Dilation[2] + 1
	l.pw = (l.wp + sw - 1) / sw
	l.rowLen = sw * l.pw
	l.direct = sw == 1 && g.Pad[1] == 0 && g.Pad[2] == 0 && l.wp == g.In[2] && l.hp <= g.In[1]
	if l.direct {
		l.rowLen = g.In[2]
	}
	l.rowStep = sh * l.rowLen
	return l
}

// DepthwiseScratch returns the number of float32s of workspace Depthwise
// needs for geometry g.
func (k Kernels) DepthwiseScratch(g *ConvGeom) int {
	l := g.dwLayout()
	n := max(g.KernelSize(), (g.Out[2]+15)/16*4, 9*16) // tap offsets, dw3x3 masks or indices
	if !l.direct {
		n += l.hp * l.rowLen
	}
	return n
}

// Depthwise computes op (see DepthwiseOp) with workspace ws (allocated
// when shorter than DepthwiseScratch).
func (k Kernels) Depthwise(ws []float32, op *DepthwiseOp) {
	g := op.Geom
	K := g.KernelSize()
	out := g.OutSize()
	if g.In[0] != 1 || g.Kernel[0] != 1 || g.Out[0] != 1 {
		panic("fp32: Depthwise supports at most two spatial axes")
	}
	nf := op.Channels * op.M
	if nf <= 0 || out == 0 {
		return
	}
	if len(op.X) < op.Channels*g.InSize() || len(op.W) < nf*K || op.LdY < out || len(op.Y) < (nf-1)*op.LdY+out ||
		(op.Bias != nil && len(op.Bias) < nf) {
		panic(fmt.Sprintf("fp32: Depthwise of %d planes with %d filters of %d taps each: X %d, W %d, Y %d (stride %d) values",
			op.Channels, op.M, K, len(op.X), len(op.W), len(op.Y), op.LdY))
	}
	if need := k.DepthwiseScratch(g); len(ws) < need {
		ws = make([]float32, need)
	}
	if k.dw3x3(ws, op) {
		return
	}
	l := g.dwLayout()
	offs := unsafe.Slice((*int32)(unsafe.Pointer(&ws[0])), K)
	var pad []float32
	if !l.direct {
		pad = ws[K : K+l.hp*l.rowLen]
	}
	sw := g.Stride[2]
	t := 0
	for i := 0; i < g.Kernel[1]; i++ {
		for j := 0; j < g.Kernel[2]; j++ {
			c := j * g.Dilation[2]
			offs[t] = int32(i*g.Dilation[1]*l.rowLen + (c%sw)*l.pw + c/sw)
			t++
		}
	}
	ar := k.arch()
	var ep tileEp
	if op.Act.Kind != ActNone && (ar == archGeneric || actInAsm(op.Act)) {
		ep.setAct(op.Act)
	}
	goAct := op.Act.Kind != ActNone && ep.flags == 0
	if op.Bias != nil {
		ep.flags |= epRowBias
	}
	inSize := g.InSize()
	for c := 0; c < op.Channels; c++ {
		in := op.X[c*inSize : (c+1)*inSize]
		if pad != nil {
			g.dwPad(ar.asm, pad, in, &l)
			in = pad
		}
		for f := c * op.M; f < (c+1)*op.M; f++ {
			if op.Bias != nil {
				ep.rowBias = &op.Bias[f]
			}
			y := op.Y[f*op.LdY : f*op.LdY+out]
			if ar.asm != 0 {
				asmDW(ar.asm, y, g.Out[2], g.Out[2], g.Out[1], in, l.rowStep, offs, op.W[f*K:(f+1)*K], &ep)
			} else {
				dwConvGo(y, g.Out[2], g.Out[2], g.Out[1], in, l.rowStep, offs, op.W[f*K:(f+1)*K], &ep)
			}
			if goAct {
				ar.applyAct(op.Act, y)
			}
		}
	}
}

// dw3x3 runs op with the AVX-512 3x3 kernel (stride 1 or 2, dilation 1,
// multiplier 1, planes stored one after another) and reports whether it
// could.
func (k Kernels) dw3x3(ws []float32, op *DepthwiseOp) bool {
	g := op.Geom
	sh := g.Stride[1]
	if op.M != 1 || op.LdY != g.OutSize() || g.Kernel[1] != 3 || g.Kernel[2] != 3 || g.Dilation[1] != 1 || g.Dilation[2] != 1 ||
		sh != g.Stride[2] || sh > 2 || k.arch().asm == 0 {
		return false
	}
	var ep tileEp
	goAct := op.Act.Kind != ActNone && !actInAsm(op.Act)
	if op.Act.Kind != ActNone && !goAct {
		ep.setAct(op.Act)
	}
	out, in := g.OutSize(), g.InSize()
	y := op.Y[:op.Channels*out]
	if in <= 15 && out <= 16 {
		idx := int32s(ws[:9*16])
		dw3x3SmallIdx(idx, g)
		if dw3x3SmallAsm(k.arch().asm, y, op.X, op.W, op.Bias, idx, op.Channels, in, out, &ep) {
			if goAct {
				k.ApplyAct(op.Act, y)
			}
			return true
		}
	}
	nv := (g.Out[2] + 15) / 16
	masks := unsafe.Slice((*uint16)(unsafe.Pointer(&ws[0])), nv*8)
	dw3x3Masks(masks, g.In[2], g.Out[2], sh, g.Pad[2])
	// The kernel loops over planes innermost, sharing the row and mask
	// setup. Small planes run all in one call; large ones four at a time,
	// which keeps the number of input streams low enough for the hardware
	// prefetchers when the activations come from memory (batches; measured
	// 1.3-2x faster than all planes or one plane at a time).
	step := op.Channels
	if out >= 256 {
		step = 4
	}
	for c := 0; c < op.Channels; c += step {
		n := min(step, op.Channels-c)
		var b []float32
		if op.Bias != nil {
			b = op.Bias[c : c+n]
		}
		if !dw3x3Asm(k.arch().asm, y[c*out:(c+n)*out], op.X[c*in:(c+n)*in], op.W[9*c:9*(c+n)], b, masks, n,
			g.In[1], g.In[2], g.Out[1], g.Out[2], sh, g.Pad[1], g.Pad[2], &ep) {
			return false
		}
	}
	if goAct {
		k.ApplyAct(op.Act, y)
	}
	return true
}

// dw3x3SmallIdx fills the VPERMPS indices of dw3x3SmallAVX512: for tap t
// = 3*kh+kw and output lane o = oh*outW+ow, the input index ih*W+iw, or 15
// (a lane the load leaves zero) when the tap falls into the padding or o
// is past the outputs.
func dw3x3SmallIdx(idx []int32, g *ConvGeom) {
	H, W, outH, outW := g.In[1], g.In[2], g.Out[1], g.Out[2]
	s := g.Stride[1]
	for t := 0; t < 9; t++ {
		kh, kw := t/3, t%3
		for o := 0; o < 16; o++ {
			v := int32(15)
			if oh, ow := o/outW, o%outW; oh < outH {
				ih, iw := oh*s+kh-g.Pad[1], ow*s+kw-g.Pad[2]
				if ih >= 0 && ih < H && iw >= 0 && iw < W {
					v = int32(ih*W + iw)
				}
			}
			idx[t*16+o] = v
		}
	}
}

// dw3x3Masks fills the lane masks of dw3x3AVX512: 8 per output vector v
// (outputs 16v...): the output lanes, then for stride 1 the valid lanes of
// tap kw's load at column 16v+kw-padL, for stride 2 those of the loads at
// 32v-padL+{0, 16, 2, 18}.
func dw3x3Masks(masks []uint16, W, outW, stride, padL int) {
	for v := 0; v*16 < outW; v++ {
		m := masks[v*8 : v*8+8]
		n := min(16, outW-16*v)
		m[0] = laneMask(0, n)
		if stride == 1 {
			for kw := 0; kw < 3; kw++ {
				x := 16*v + kw - padL
				m[1+kw] = laneMask(-x, min(W-x, n))
			}
			continue
		}
		for i, off := range [4]int{0, 16, 2, 18} {
			x := 32*v - padL + off
			m[1+i] = laneMask(-x, W-x)
		}
	}
}

// laneMask returns the bits [lo, hi) of a 16-lane mask (clamped).
func laneMask(lo, hi int) uint16 {
	lo, hi = max(lo, 0), min(hi, 16)
	if hi <= lo {
		return 0
	}
	return uint16((1<<hi - 1) &^ (1<<lo - 1))
}

// dw3x3Go is the pure-Go twin of dw3x3AVX512: for each plane c, output
// (oh, ow), with s = stride, one partial sum per tap row:
//
//	part[kh] = sum_{kw<3} w[9c+3kh+kw] * in[c][ih][ow*s+kw-padL]   (0 outside the row)
//	           for 0 <= ih = oh*s+kh-padT < H, else 0
//	out[c][oh][ow] = act(((bias[c] + part[0]) + part[1]) + part[2])  (bias 0 when nil)
func dw3x3Go(out, in, w, bias []float32, planes, H, W, outH, outW, stride, padT, padL int, ep *tileEp) {
	act := Act{Kind: ActKind(ep.flags >> epActBits & 15), Lo: ep.lo, Hi: ep.hi, Alpha: ep.leak}
	for c := 0; c < planes; c++ {
		x := in[c*H*W : (c+1)*H*W]
		y := out[c*outH*outW : (c+1)*outH*outW]
		for oh := 0; oh < outH; oh++ {
			row := y[oh*outW : (oh+1)*outW]
			for ow := range row {
				var part [3]float32
				for kh := 0; kh < 3; kh++ {
					ih := oh*stride + kh - padT
					if ih < 0 || ih >= H {
						continue
					}
					for kw := 0; kw < 3; kw++ {
						var v float32
						if iw := ow*stride + kw - padL; iw >= 0 && iw < W {
							v = x[ih*W+iw]
						}
						part[kh] += w[9*c+3*kh+kw] * v
					}
				}
				var acc float32
				if bias != nil {
					acc = bias[c]
				}
				row[ow] = ((acc + part[0]) + part[1]) + part[2]
			}
			act.Apply(row)
		}
	}
}

// dwPad fills dst (l.hp rows of l.rowLen) from the input plane x.
func (g *ConvGeom) dwPad(asm int, dst, x []float32, l *dwLayout) {
	clear(dst)
	// Rows are not split by stride phase: pass sh = 1 through the row
	// strides (padPlane's row phase a is then always 0).
	gs := *g
	gs.Stride[1] = 1
	gs.padPlane(asm, dst, x, -g.Pad[1], l.hp, l.pw, 0, l.rowLen, l.pw, ^uint64(0), ^uint64(0))
}

// dwConvGo is the pure-Go twin of the assembly depthwise kernels
// (dwConvAVX512, dwConvAVX2) and the generic tier's kernel:
//
//	for oh < outH, ow < outW:
//		s := bias (*ep.rowBias with epRowBias, else 0)
//		for t := range w { s += w[t] * in[offs[t] + oh*rowStep + ow] }
//		out[oh*ldo+ow] = act(s)
func dwConvGo(out []float32, ldo, outW, outH int, in []float32, rowStep int, offs []int32, w []float32, ep *tileEp) {
	var bias float32
	if ep.flags&epRowBias != 0 {
		bias = *ep.rowBias
	}
	act := Act{Kind: ActKind(ep.flags >> epActBits & 15), Lo: ep.lo, Hi: ep.hi, Alpha: ep.leak}
	for oh := 0; oh < outH; oh++ {
		row := out[oh*ldo : oh*ldo+outW]
		for i := range row {
			row[i] = bias
		}
		for t, wv := range w {
			src := in[int(offs[t])+oh*rowStep:]
			src = src[:outW]
			for i, v := range src {
				row[i] += wv * v
			}
		}
		act.Apply(row)
	}
}
