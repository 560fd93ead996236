package ops

import (
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerGradNN registers the gradient and training-mode ops of the
// neural-network family.
func registerGradNN(t *kernel.Table) {
	gradAddTiered(t, "ConvGradInput", "gemm", gradBuildConv(false))
	gradAddTiered(t, "ConvGradWeight", "gemm", gradBuildConv(true))
	gradAddTiered(t, "MatMulGrad", "gemm", gradBuildMatMul)
	gradAddTiered(t, "GemmGrad", "gemm", gradBuildGemmGrad)
	gradAdd(t, "MaxPoolGrad", gradBuildMaxPoolGrad)
	gradAdd(t, "MaxPoolGradX", gradBuildMaxPoolGradX)
	gradAdd(t, "AveragePoolGrad", gradBuildAvgPoolGrad)
	gradAdd(t, "GlobalAveragePoolGrad", simple(gradGlobalAvgPool))
	gradAddTiered(t, "BatchNormTrain", "vec", gradBuildBNTrain)
	gradAddTiered(t, "BatchNormGrad", "vec", gradBuildBNGrad)
	gradAdd(t, "LayerNormGrad", gradBuildLNGrad)
}

// gradConvKernel implements the two gradient ops of Conv, with the
// forward node's attributes (kernel_shape, strides, pads, auto_pad,
// dilations, group):
//
//	ConvGradInput(dY, W, x_shape) -> dX
//	  dX[n, g*C/G + c, p] = sum_{m in group g, o, t: pos(o,t) = p} W[m, c, t] * dY[n, m, o]
//	ConvGradWeight(dY, X, W) -> (dW, dB)   (W only gives the shape)
//	  dW[m, c, t] = sum_{n, o} dY[n, m, o] * X[n, g*C/G + c, pos(o,t)],  dB[m] = sum_{n, o} dY[n, m, o]
//
// float32 with at most three spatial axes runs the GEMM of the session's
// kernel entry's tier (fp32.For) with workspaces from Ctx.Scratch: dX of a
// stride-1 convolution is the forward convolution of dY with the flipped,
// transposed weights (fp32 Kernels.Conv), other strides use col2im; dW is
// im2col(X) * dY^T. float64 and higher ranks use direct loops. Work is
// split into units fixed by the shapes (images x groups [x channel blocks]
// for dX, groups x output-channel blocks for dW), each summed in a fixed
// order, so results do not depend on the thread count.
type gradConvKernel struct {
	win    nnWinAttrs
	group  int
	weight bool
	// fk is the float32 GEMM of the session's tier.
	fk fp32.Kernels
}

// gradTieredBuilder builds a gradient kernel that runs the float32
// kernels of tier.
type gradTieredBuilder func(info *kernel.Info, tier kernel.Tier) (kernel.Kernel, error)

// gradAddTiered registers a goslim-domain op with a generic entry (pure-Go
// float32 kernels) and AVX2 and AVX-512 entries named "TIER.ALGO" (the
// assembly kernels of that tier), so the session's kernel record names the
// code that runs; the table picks the highest tier the session allows.
func gradAddTiered(t *kernel.Table, op, algo string, b gradTieredBuilder) {
	t.Add(kernel.Entry{Domain: gradDomain, Op: op, Name: "generic", Priority: kernel.Generic,
		Build: func(info *kernel.Info) (kernel.Kernel, error) { return b(info, kernel.TierGeneric) }})
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		t.Add(kernel.Entry{Domain: gradDomain, Op: op, Name: tier.String() + "." + algo, Priority: kernel.Arch, Tier: tier,
			Build: func(info *kernel.Info) (kernel.Kernel, error) { return b(info, tier) }})
	}
}

func gradBuildConv(weight bool) gradTieredBuilder {
	return func(info *kernel.Info, tier kernel.Tier) (kernel.Kernel, error) {
		win, err := nnReadWin(info, true)
		if err != nil {
			return nil, err
		}
		if win.ceil {
			return nil, info.Errorf("Conv has no ceil_mode attribute")
		}
		g := info.Attrs().Int("group", 1)
		if g < 1 || g > nnMaxAttr {
			return nil, info.Errorf("group %d must be positive", g)
		}
		return &gradConvKernel{win: win, group: int(g), weight: weight, fk: fp32.For(tier)}, nil
	}
}

func (k *gradConvKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	var x, w *tensor.Tensor
	if k.weight {
		if x, err = need(c, in, 1, "X"); err != nil {
			return err
		}
		if w, err = need(c, in, 2, "W"); err != nil {
			return err
		}
	} else {
		if w, err = need(c, in, 1, "W"); err != nil {
			return err
		}
		xs, err := gradShapeArg(c, opt(in, 2), "x_shape")
		if err != nil {
			return err
		}
		x = &tensor.Tensor{DType: dy.DType, Shape: xs} // shape only
	}
	if err := gradFloats(c, dy, w); err != nil {
		return err
	}
	if x.DType != dy.DType {
		return c.Errorf("X dtype %v differs from dY dtype %v", x.DType, dy.DType)
	}
	n, ch, m, inSp, kSp, err := convShapes(c, x, w, nil, k.group, k.win.kernel)
	if err != nil {
		return err
	}
	win, err := k.win.resolve(c, inSp, kSp)
	if err != nil {
		return err
	}
	if want := nnSpatialShape(n, m, win.out); !dy.Shape.Equal(want) {
		return c.Errorf("dY shape %v, want %v", dy.Shape, want)
	}
	p := convProblem{n: n, c: ch, m: m, g: k.group, win: &win}
	var geom *fp32.ConvGeom
	if dy.DType == tensor.Float32 && win.nd() <= 3 {
		g, err := fp32.NewConvGeom(win.in, win.out, win.kernel, win.stride, win.dil, win.padB)
		if err != nil {
			return c.Errorf("%v", err)
		}
		geom = &g
	}
	if !k.weight {
		dx, err := c.Output(0, dy.DType, x.Shape.Clone())
		if err != nil {
			return err
		}
		switch {
		case geom != nil:
			gradConvInputF32(c, k.fk, &p, geom, w.F32(), dy.F32(), dx.F32())
		case dy.DType == tensor.Float32:
			gradConvInputDirect(c, &p, w.F32(), dy.F32(), dx.F32())
		default:
			gradConvInputDirect(c, &p, w.F64(), dy.F64(), dx.F64())
		}
		return nil
	}
	if err := gradFloats(c, dy, x); err != nil {
		return err
	}
	if nnWants(c, out, 0) {
		dw, err := c.Output(0, dy.DType, w.Shape.Clone())
		if err != nil {
			return err
		}
		switch {
		case geom != nil:
			gradConvWeightF32(c, k.fk, &p, geom, x.F32(), dy.F32(), dw.F32())
		case dy.DType == tensor.Float32:
			gradConvWeightDirect(c, &p, x.F32(), dy.F32(), dw.F32())
		default:
			gradConvWeightDirect(c, &p, x.F64(), dy.F64(), dw.F64())
		}
	}
	if nnWants(c, out, 1) {
		db, err := c.Output(1, dy.DType, tensor.Shape{m})
		if err != nil {
			return err
		}
		switch dy.DType {
		case tensor.Float32:
			gradChannelSum(c, dy.F32(), db.F32(), n, m, win.outSize())
		case tensor.Float64:
			gradChannelSum(c, dy.F64(), db.F64(), n, m, win.outSize())
		}
	}
	return nil
}

// gradChannelSum writes s[j] = sum over n and the inner positions of
// x[n, j, :], for x of shape (n, ch, inner); channels run in parallel, each
// summed in float64 in order.
func gradChannelSum[T Float](c *kernel.Ctx, x, s []T, n, ch, inner int) {
	workers := nnWorkers(c, ch, float64(n)*float64(ch)*float64(inner))
	nnRunWorkers(c, workers, func(wi int) {
		for j := wi; j < ch; j += workers {
			var acc float64
			for ni := 0; ni < n; ni++ {
				for _, v := range x[(ni*ch+j)*inner : (ni*ch+j+1)*inner] {
					acc += float64(v)
				}
			}
			s[j] = T(acc)
		}
	})
}

// gradConvTile returns the im2col column tile of a convolution with kk
// rows per column: the column matrix of one tile stays near 1 MiB. It
// depends only on the shapes.
func gradConvTile(outSize, kk int) int {
	const colBudget = 1 << 18
	return max(1, min(outSize, max(16, colBudget/max(kk, 1))))
}

// gradConvPointwise reports whether the convolution is a 1x1 product
// (kernel 1, stride 1, no padding), where the image is its own column
// matrix.
func gradConvPointwise(g *fp32.ConvGeom) bool {
	if g.KernelSize() != 1 || g.InSize() != g.OutSize() {
		return false
	}
	for i := 0; i < 3; i++ {
		if g.Stride[i] != 1 || g.Pad[i] != 0 {
			return false
		}
	}
	return true
}

// gradConvFlipGeom returns, for a stride-1 convolution whose start padding
// is at most dilation*(kernel-1) on every axis, the geometry of the
// convolution that computes its input gradient: dY convolved with the
// flipped, transposed weights,
//
//	dX[c, i] = sum_{m, t'} W[m, c, K-1-t'] * dY[m, i - pad' + t'*dil],  pad' = dil*(k-1) - pad,
//
// (out-of-range dY reads are zero), so the forward convolution kernels of
// the tier compute it. ok is false for other convolutions.
func gradConvFlipGeom(g *fp32.ConvGeom) (fg fp32.ConvGeom, ok bool) {
	fg = fp32.ConvGeom{In: g.Out, Out: g.In, Kernel: g.Kernel, Stride: g.Stride, Dilation: g.Dilation}
	for i := 0; i < 3; i++ {
		if g.Stride[i] != 1 {
			return fg, false
		}
		fg.Pad[i] = g.Dilation[i]*(g.Kernel[i]-1) - g.Pad[i]
		if fg.Pad[i] < 0 {
			return fg, false
		}
	}
	return fg, true
}

// gradConvInputF32 computes dX. Stride-1 convolutions run the tier's
// forward convolution on dY with the flipped, transposed weights (see
// gradConvFlipGeom); units are (image, group). Others use col2im: per
// image and group, col = W_g^T * dY_g tile by tile, added into dX_g; units
// are (image, group, block of input channels), which write disjoint
// channels of dX. Each unit is computed the same way whatever the thread
// count.
func gradConvInputF32(c *kernel.Ctx, fk fp32.Kernels, p *convProblem, geom *fp32.ConvGeom, w, dy, dx []float32) {
	inSize, outSize, K := geom.InSize(), geom.OutSize(), geom.KernelSize()
	cg, mg := p.c/p.g, p.m/p.g
	kk := cg * K
	flops := 2 * float64(p.n) * float64(p.m) * float64(outSize) * float64(kk)
	if fg, ok := gradConvFlipGeom(geom); ok {
		units := p.n * p.g
		workers := nnWorkers(c, units, flops)
		sizing := fp32.ConvOp{Geom: &fg, M: cg, Channels: mg, NCol: inSize, LdY: inSize}
		per := fk.ConvScratch(&sizing)
		nw := p.g * cg * mg * K
		scratch := c.Scratch(nw + workers*per)
		wf := scratch[:nw]
		// wf[g][c][m*K + t'] = W[g*mg+m][c][K-1-t']
		for gi := 0; gi < p.g; gi++ {
			for m := 0; m < mg; m++ {
				src := w[(gi*mg+m)*kk : (gi*mg+m+1)*kk]
				for ci := 0; ci < cg; ci++ {
					dst := wf[((gi*cg+ci)*mg+m)*K : ((gi*cg+ci)*mg+m+1)*K]
					s := src[ci*K : (ci+1)*K]
					for t := range dst {
						dst[t] = s[K-1-t]
					}
				}
			}
		}
		run := func(wi int) {
			ws := scratch[nw+wi*per : nw+(wi+1)*per]
			for u := wi; u < units; u += workers {
				ni, gi := u/p.g, u%p.g
				op := fp32.ConvOp{Geom: &fg, M: cg, Channels: mg, NCol: inSize, LdY: inSize,
					X: dy[(ni*p.m+gi*mg)*outSize : (ni*p.m+(gi+1)*mg)*outSize],
					W: wf[gi*cg*mg*K : (gi+1)*cg*mg*K],
					Y: dx[(ni*p.c+gi*cg)*inSize : (ni*p.c+(gi+1)*cg)*inSize]}
				fk.Conv(ws, &op)
			}
		}
		if workers <= 1 {
			run(0)
			return
		}
		nnRunWorkers(c, workers, run)
		return
	}
	cblocks := min(cg, 8)
	cb := (cg + cblocks - 1) / cblocks
	cblocks = (cg + cb - 1) / cb
	tile := gradConvTile(outSize, cb*K)
	units := p.n * p.g * cblocks
	workers := nnWorkers(c, units, flops)
	gs := fk.Scratch(&fp32.GemmOp{M: cb * K, N: tile, K: mg})
	per := cb*K*tile + gs
	scratch := c.Scratch(workers * per)
	nnRunWorkers(c, workers, func(wi int) {
		col := scratch[wi*per : wi*per+cb*K*tile]
		ws := scratch[wi*per+cb*K*tile : (wi+1)*per]
		for u := wi; u < units; u += workers {
			bi := u % cblocks
			gi := u / cblocks % p.g
			ni := u / cblocks / p.g
			c0 := bi * cb
			nch := min(cb, cg-c0)
			dxb := dx[(ni*p.c+gi*cg+c0)*inSize : (ni*p.c+gi*cg+c0+nch)*inSize]
			wg := w[gi*mg*kk:]
			dyg := dy[(ni*p.m+gi*mg)*outSize : (ni*p.m+(gi+1)*mg)*outSize]
			clear(dxb)
			rows := nch * K
			for col0 := 0; col0 < outSize; col0 += tile {
				nc := min(tile, outSize-col0)
				cm := col[:rows*nc]
				fk.Run(ws, &fp32.GemmOp{M: rows, N: nc, K: mg, Alpha: 1,
					A: fp32.Mat{Data: wg[c0*K:], Ld: kk, Trans: true}, B: fp32.Mat{Data: dyg[col0:], Ld: outSize},
					C: cm, LdC: nc})
				geom.Col2im(dxb, cm, nch, col0, nc)
			}
		}
	})
}

// gradConvWeightRows is the block of output channels of one dW unit.
const gradConvWeightRows = 64

// gradConvWeightF32 computes dW with im2col: per group and block of
// output channels, dW_rows^T = sum over images and column tiles of
// col(X) * dY_rows^T (col as the packed left operand, read along its
// rows), accumulated in a workspace and transposed into dW at the end.
// Convolutions with at most two spatial axes use the wide layout
// (gradConvWide: contiguous copies from padded stride phases) instead of
// im2col's per-tap walk.
func gradConvWeightF32(c *kernel.Ctx, fk fp32.Kernels, p *convProblem, geom *fp32.ConvGeom, x, dy, dw []float32) {
	inSize, outSize, K := geom.InSize(), geom.OutSize(), geom.KernelSize()
	cg, mg := p.c/p.g, p.m/p.g
	kk := cg * K
	pointwise := gradConvPointwise(geom)
	wide, wok := gradConvWideOf(geom)
	if pointwise {
		wok = false
	}
	rb := min(mg, gradConvWeightRows)
	rblocks := (mg + rb - 1) / rb
	cols := outSize // columns of the product per image
	if wok {
		cols = wide.cols
	}
	tile := gradConvTile(cols, kk)
	units := p.g * rblocks
	workers := nnWorkers(c, units, 2*float64(p.n)*float64(p.m)*float64(outSize)*float64(kk))
	colN, padN, dyN := 0, 0, 0
	if !pointwise {
		colN = kk * tile
	}
	if wok {
		padN = cg * wide.chanSize()
		dyN = rb * wide.cols
	}
	gs := fk.Scratch(&fp32.GemmOp{M: kk, N: rb, K: tile})
	per := colN + padN + dyN + kk*rb + gs
	scratch := c.Scratch(workers * per)
	run := func(wi int) {
		base := scratch[wi*per : (wi+1)*per]
		col, base := base[:colN], base[colN:]
		xp, base := base[:padN], base[padN:]
		dyw, base := base[:dyN], base[dyN:]
		acc, ws := base[:kk*rb], base[kk*rb:]
		for u := wi; u < units; u += workers {
			gi, r0 := u/rblocks, u%rblocks*rb
			r1 := min(mg, r0+rb)
			nr := r1 - r0
			beta := float32(0)
			for ni := 0; ni < p.n; ni++ {
				xg := x[(ni*p.c+gi*cg)*inSize : (ni*p.c+(gi+1)*cg)*inSize]
				dyu := dy[(ni*p.m+gi*mg+r0)*outSize : (ni*p.m+gi*mg+r1)*outSize]
				ldb := outSize
				if wok {
					wide.padInput(xp, xg, cg)
					wide.widenRows(dyw, dyu, nr)
					dyu, ldb = dyw[:nr*wide.cols], wide.cols
				}
				for col0 := 0; col0 < cols; col0 += tile {
					nc := min(tile, cols-col0)
					am, lda := xg[col0:], inSize
					switch {
					case wok:
						wide.cols2(col, xp, cg, col0, nc)
						am, lda = col[:kk*nc], nc
					case !pointwise:
						geom.Im2col(col, xg, cg, col0, nc)
						am, lda = col[:kk*nc], nc
					}
					fk.Run(ws, &fp32.GemmOp{M: kk, N: nr, K: nc, Alpha: 1, Beta: beta,
						A: fp32.Mat{Data: am, Ld: lda}, B: fp32.Mat{Data: dyu[col0:], Ld: ldb, Trans: true},
						C: acc, LdC: nr})
					beta = 1
				}
			}
			dwu := dw[(gi*mg+r0)*kk : (gi*mg+r1)*kk]
			if beta == 0 {
				clear(dwu)
				continue
			}
			for r := 0; r < nr; r++ {
				row := dwu[r*kk : (r+1)*kk]
				for j := range row {
					row[j] = acc[j*nr+r]
				}
			}
		}
	}
	if workers <= 1 {
		run(0)
		return
	}
	nnRunWorkers(c, workers, run)
}

// gradConvWide is the wide layout of a convolution with at most two
// spatial axes: the zero-padded image split into stride phases (sub-images
// P_ab[q][p] = Xpadded[q*sh+a][p*sw+b]; one phase for stride 1), each
// hq x wq (plus slack), with the output computed on rows of width wq, so
// that the column-matrix row of tap (i, j) is the contiguous slice of
// phase ((i*dh)%sh, (j*dw)%sw) starting at ((i*dh)/sh)*wq + (j*dw)/sw.
// The wq - outW extra columns of each output row are junk: dY is widened
// with zeros there, so they add nothing.
type gradConvWide struct {
	h, w, sh, sw int
	outH, outW   int
	padT, padL   int
	hq, wq       int
	cols, plane  int    // output columns; values per phase plane
	phases       int    // sh*sw
	used         []bool // per phase: some tap reads it
	offs         []int  // per tap, from the channel's first phase
}

// gradConvWideOf returns the wide layout of g, or ok false.
func gradConvWideOf(g *fp32.ConvGeom) (gradConvWide, bool) {
	if g.In[0] != 1 || g.Out[0] != 1 || g.Kernel[0] != 1 || g.Pad[0] != 0 || g.Stride[0] != 1 {
		return gradConvWide{}, false
	}
	v := gradConvWide{h: g.In[1], w: g.In[2], sh: g.Stride[1], sw: g.Stride[2], outH: g.Out[1], outW: g.Out[2],
		padT: g.Pad[1], padL: g.Pad[2]}
	kh, kw, dh, dw := g.Kernel[1], g.Kernel[2], g.Dilation[1], g.Dilation[2]
	v.hq = v.outH + (kh-1)*dh/v.sh
	v.wq = v.outW + (kw-1)*dw/v.sw
	v.cols = v.outH * v.wq
	// The last tap of the last wide row reads up to (kw-1)*dw/sw past
	// the rows the windows cover.
	v.plane = v.hq*v.wq + (kw-1)*dw/v.sw
	v.phases = v.sh * v.sw
	v.used = make([]bool, v.phases)
	for i := 0; i < kh; i++ {
		for j := 0; j < kw; j++ {
			ph := (i*dh%v.sh)*v.sw + j*dw%v.sw
			v.used[ph] = true
			v.offs = append(v.offs, ph*v.plane+(i*dh/v.sh)*v.wq+j*dw/v.sw)
		}
	}
	return v, true
}

// chanSize returns the values of one channel's phase planes.
func (v *gradConvWide) chanSize() int { return v.phases * v.plane }

// padInput writes the channels of x (h x w planes) into dst as padded
// phase planes (v.chanSize() values per channel); phases no tap reads are
// left as they are.
func (v *gradConvWide) padInput(dst, x []float32, channels int) {
	for c := 0; c < channels; c++ {
		src := x[c*v.h*v.w : (c+1)*v.h*v.w]
		for a := 0; a < v.sh; a++ {
			for b := 0; b < v.sw; b++ {
				if !v.used[a*v.sw+b] {
					continue
				}
				pl := dst[c*v.chanSize()+(a*v.sw+b)*v.plane : c*v.chanSize()+(a*v.sw+b+1)*v.plane]
				clear(pl)
				// Phase columns p with 0 <= p*sw + b - padL < w.
				p0 := max(0, (v.padL-b+v.sw-1)/v.sw)
				p1 := min(v.wq, (v.w+v.padL-b+v.sw-1)/v.sw)
				if p1 <= p0 {
					continue
				}
				for q := 0; q < v.hq; q++ {
					r := q*v.sh + a - v.padT
					if r < 0 || r >= v.h {
						continue
					}
					d := pl[q*v.wq+p0 : q*v.wq+p1]
					s := src[r*v.w+p0*v.sw+b-v.padL : (r+1)*v.w]
					if v.sw == 1 {
						copy(d, s)
						continue
					}
					for i := range d {
						d[i] = s[i*v.sw]
					}
				}
			}
		}
	}
}

// widenRows copies rows of outH x outW values into rows of outH x wq
// values, zero in the extra columns.
func (v *gradConvWide) widenRows(dst, src []float32, rows int) {
	for r := 0; r < rows; r++ {
		d := dst[r*v.cols : (r+1)*v.cols]
		s := src[r*v.outH*v.outW:]
		for i := 0; i < v.outH; i++ {
			copy(d[i*v.wq:i*v.wq+v.outW], s[i*v.outW:(i+1)*v.outW])
			clear(d[i*v.wq+v.outW : (i+1)*v.wq])
		}
	}
}

// cols2 writes columns [col0, col0+nc) of the wide column matrix of the
// padded planes xp into dst ((channels*taps) x nc).
func (v *gradConvWide) cols2(dst, xp []float32, channels, col0, nc int) {
	K := len(v.offs)
	for c := 0; c < channels; c++ {
		pl := xp[c*v.chanSize() : (c+1)*v.chanSize()]
		for t, off := range v.offs {
			r := c*K + t
			copy(dst[r*nc:(r+1)*nc], pl[off+col0:off+col0+nc])
		}
	}
}

// gradConvIter walks the output positions of a convolution window and,
// per position, the linear input offset of its start and whether every tap
// is inside the input.
type gradConvIter struct {
	win    *nnWin
	inStr  []int
	tapOff []int // per tap and axis: offset from the window start
	tapLin []int // per tap: linear offset when inside
	start  []int
	oidx   []int
}

func newGradConvIter(win *nnWin) *gradConvIter {
	nd, K := win.nd(), win.kSize()
	it := &gradConvIter{win: win, inStr: tensor.Shape(win.in).Strides(), tapOff: make([]int, K*nd),
		tapLin: make([]int, K), start: make([]int, nd), oidx: make([]int, nd)}
	kidx := make([]int, nd)
	for t := 0; t < K; t++ {
		for d := 0; d < nd; d++ {
			o := kidx[d] * win.dil[d]
			it.tapOff[t*nd+d] = o
			it.tapLin[t] += o * it.inStr[d]
		}
		nnNext(kidx, win.kernel)
	}
	return it
}

// at positions the iterator on output position oidx (set by the caller)
// and returns the window's base offset and whether it is inside.
func (it *gradConvIter) at() (base int, inside bool) {
	w := it.win
	inside = true
	for d := range it.oidx {
		it.start[d] = it.oidx[d]*w.stride[d] - w.padB[d]
		base += it.start[d] * it.inStr[d]
		if it.start[d] < 0 || it.start[d]+(w.kernel[d]-1)*w.dil[d] >= w.in[d] {
			inside = false
		}
	}
	return base, inside
}

// valid reports whether tap t of the current window is inside the input.
func (it *gradConvIter) valid(t int) bool {
	nd := len(it.oidx)
	for d := 0; d < nd; d++ {
		if q := it.start[d] + it.tapOff[t*nd+d]; q < 0 || q >= it.win.in[d] {
			return false
		}
	}
	return true
}

// gradConvInputDirect is the reference dX loop for any float type and
// rank; units are (image, group).
func gradConvInputDirect[T Float](c *kernel.Ctx, p *convProblem, w, dy, dx []T) {
	win := p.win
	inSize, outSize, K := win.inSize(), win.outSize(), win.kSize()
	cg, mg := p.c/p.g, p.m/p.g
	units := p.n * p.g
	workers := nnWorkers(c, units, 2*float64(p.n)*float64(p.m)*float64(outSize)*float64(cg*K))
	nnRunWorkers(c, workers, func(wi int) {
		it := newGradConvIter(win)
		for u := wi; u < units; u += workers {
			ni, gi := u/p.g, u%p.g
			dxg := dx[(ni*p.c+gi*cg)*inSize : (ni*p.c+(gi+1)*cg)*inSize]
			clear(dxg)
			for r := 0; r < mg; r++ {
				mi := gi*mg + r
				dym := dy[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
				wm := w[mi*cg*K : (mi+1)*cg*K]
				clear(it.oidx)
				for _, g := range dym {
					base, inside := it.at()
					for ci := 0; ci < cg; ci++ {
						dxc := dxg[ci*inSize : (ci+1)*inSize]
						for t, wv := range wm[ci*K : (ci+1)*K] {
							if inside || it.valid(t) {
								dxc[base+it.tapLin[t]] += wv * g
							}
						}
					}
					nnNext(it.oidx, win.out)
				}
			}
		}
	})
}

// gradConvWeightDirect is the reference dW loop for any float type and
// rank; units are output channels.
func gradConvWeightDirect[T Float](c *kernel.Ctx, p *convProblem, x, dy, dw []T) {
	win := p.win
	inSize, outSize, K := win.inSize(), win.outSize(), win.kSize()
	cg, mg := p.c/p.g, p.m/p.g
	workers := nnWorkers(c, p.m, 2*float64(p.n)*float64(p.m)*float64(outSize)*float64(cg*K))
	nnRunWorkers(c, workers, func(wi int) {
		it := newGradConvIter(win)
		for mi := wi; mi < p.m; mi += workers {
			gi := mi / mg
			dwm := dw[mi*cg*K : (mi+1)*cg*K]
			clear(dwm)
			for ni := 0; ni < p.n; ni++ {
				dym := dy[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
				clear(it.oidx)
				for _, g := range dym {
					base, inside := it.at()
					for ci := 0; ci < cg; ci++ {
						xc := x[(ni*p.c+gi*cg+ci)*inSize : (ni*p.c+gi*cg+ci+1)*inSize]
						dwc := dwm[ci*K : (ci+1)*K]
						for t := range dwc {
							if inside || it.valid(t) {
								dwc[t] += g * xc[base+it.tapLin[t]]
							}
						}
					}
					nnNext(it.oidx, win.out)
				}
			}
		}
	})
}
