package ops

import (
	"math"

	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// convKernel implements Conv (opsets 1 and 11 semantics; the two differ
// only in documentation):
//
//	Y[n, m, o...] = B[m] + sum_{c < C/group, t} W[m, c, t...] * X[n, g*C/group + c, o*stride - padB + t*dil]
//
// with g = m / (M/group) and zero padding. float32 runs im2col + fp32.Gemm
// (a direct loop for depthwise convolutions), float16 computes in float32,
// float64 and convolutions with more than three spatial axes use a direct
// loop.
type convKernel struct {
	win   nnWinAttrs
	group int
	// act is the activation of goslim.FusedConv (none for Conv).
	act fp32.Act
	// wF32 caches a constant float16 weight converted to float32.
	wF32 []float32
}

// fusedAct reads the activation attributes of goslim.FusedConv and
// goslim.FusedGemm: activation ("Relu", "Clip", "HardSwish", "LeakyRelu",
// "Sigmoid" or ""), clip_min and clip_max (default -Inf and +Inf, for
// missing Clip bounds) and LeakyRelu's slope (default 0.01) in
// "activation_alpha". FusedConv also accepts the slope as "alpha";
// FusedGemm cannot, since its "alpha" is Gemm's.
func fusedAct(info *kernel.Info, gemm bool) (fp32.Act, error) {
	a := info.Attrs()
	slope := a.Float("activation_alpha", 0.01)
	if !gemm && !a.Has("activation_alpha") {
		slope = a.Float("alpha", 0.01)
	}
	act, err := fp32.ParseAct(a.Str("activation", ""),
		a.Float("clip_min", float32(math.Inf(-1))), a.Float("clip_max", float32(math.Inf(1))), slope)
	if err != nil {
		return act, info.Errorf("%v", err)
	}
	return act, nil
}

// buildFusedConv builds goslim.FusedConv: Conv followed by an activation
// applied to each output tile (after the bias) while it is in cache.
func buildFusedConv(info *kernel.Info) (kernel.Kernel, error) {
	act, err := fusedAct(info, false)
	if err != nil {
		return nil, err
	}
	k, err := buildConv(info)
	if err != nil {
		return nil, err
	}
	k.(*convKernel).act = act
	return k, nil
}

func buildConv(info *kernel.Info) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.ceil {
		return nil, info.Errorf("Conv has no ceil_mode attribute")
	}
	win.strict = true
	g := info.Attrs().Int("group", 1)
	if g < 1 || g > nnMaxAttr {
		return nil, info.Errorf("group %d must be positive", g)
	}
	k := &convKernel{win: win, group: int(g)}
	if len(info.Consts) > 1 && info.Consts[1] != nil && info.Consts[1].DType == tensor.Float16 {
		k.wF32 = halfToF32(info.Consts[1].Data.([]uint16))
	}
	return k, nil
}

// convShapes checks X (N, C, D...), W (M, C/group, k...) and B (M) and
// returns N, C, M and the spatial input and kernel sizes.
func convShapes(c *kernel.Ctx, x, w, b *tensor.Tensor, group int, kernelAttr []int) (n, ch, m int, in, k []int, err error) {
	if x.Rank() < 3 {
		return 0, 0, 0, nil, nil, c.Errorf("input X rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	if w.Rank() != x.Rank() {
		return 0, 0, 0, nil, nil, c.Errorf("weight rank %d, want %d", w.Rank(), x.Rank())
	}
	n, ch, m = x.Shape[0], x.Shape[1], w.Shape[0]
	if ch != w.Shape[1]*group {
		return 0, 0, 0, nil, nil, c.Errorf("input has %d channels but weight %v with group %d wants %d", ch, w.Shape, group, w.Shape[1]*group)
	}
	if m%group != 0 {
		return 0, 0, 0, nil, nil, c.Errorf("%d output channels not divisible by group %d", m, group)
	}
	in = []int(x.Shape[2:])
	k = []int(w.Shape[2:])
	if kernelAttr != nil {
		if len(kernelAttr) != len(k) {
			return 0, 0, 0, nil, nil, c.Errorf("kernel_shape %v has %d values, want %d", kernelAttr, len(kernelAttr), len(k))
		}
		for i := range k {
			if kernelAttr[i] != k[i] {
				return 0, 0, 0, nil, nil, c.Errorf("kernel_shape %v does not match weight shape %v", kernelAttr, w.Shape)
			}
		}
	}
	for i, v := range k {
		if v < 1 {
			return 0, 0, 0, nil, nil, c.Errorf("weight %v has empty kernel axis %d", w.Shape, i)
		}
	}
	if b != nil && (b.Rank() != 1 || b.Shape[0] != m) {
		return 0, 0, 0, nil, nil, c.Errorf("bias shape %v, want [%d]", b.Shape, m)
	}
	return n, ch, m, in, k, nil
}

func (k *convKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	w, err := need(c, in, 1, "W")
	if err != nil {
		return err
	}
	b := opt(in, 2)
	if !nnFloatDType(x.DType) {
		return c.Errorf("Conv does not support %v", x.DType)
	}
	if err := sameDType(c, x, w, b); err != nil {
		return err
	}
	n, ch, m, inSp, kSp, err := convShapes(c, x, w, b, k.group, k.win.kernel)
	if err != nil {
		return err
	}
	win, err := k.win.resolve(c, inSp, kSp)
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, nnSpatialShape(n, m, win.out))
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	p := convProblem{n: n, c: ch, m: m, g: k.group, win: &win, act: k.act}
	switch x.DType {
	case tensor.Float32:
		var bias []float32
		if b != nil {
			bias = b.F32()
		}
		convF32(c, &p, x.F32(), w.F32(), bias, y.F32())
	case tensor.Float64:
		var bias []float64
		if b != nil {
			bias = b.F64()
		}
		convDirect(c, &p, x.F64(), w.F64(), bias, y.F64())
		k.act.ApplyF64(y.F64())
	case tensor.Float16:
		wf := k.wF32
		if wf == nil || len(wf) != w.Len() {
			wf = nnToF32(w)
		}
		yf := make([]float32, y.Len())
		// The activation runs on the rounded float16 values, as the
		// unfused activation op would.
		p.act = fp32.Act{}
		convF32(c, &p, nnToF32(x), wf, nnToF32(b), yf)
		f32ToHalf(y.Data.([]uint16), yf)
		fusedActHalf(k.act, y.Data.([]uint16), yf)
	}
	return nil
}

// fusedActHalf applies act to float16 values h in place, through float32
// like the unfused activation ops (buf holds at least len(h) values).
func fusedActHalf(act fp32.Act, h []uint16, buf []float32) {
	if act.Kind == fp32.ActNone {
		return
	}
	buf = buf[:len(h)]
	for i, v := range h {
		buf[i] = tensor.HalfToFloat32(v)
	}
	act.Apply(buf)
	f32ToHalf(h, buf)
}

// convProblem is a resolved convolution: batch n, input channels c,
// output channels m, groups g and the spatial window.
type convProblem struct {
	n, c, m, g int
	win        *nnWin
	act        fp32.Act
}

// convF32 computes a float32 convolution into y (fully overwritten).
func convF32(c *kernel.Ctx, p *convProblem, x, w, b, y []float32) {
	win := p.win
	if win.nd() > 3 {
		convDirect(c, p, x, w, b, y)
		p.act.Apply(y)
		return
	}
	geom, err := fp32.NewConvGeom(win.in, win.out, win.kernel, win.stride, win.dil, win.padB)
	if err != nil {
		// Unreachable: the window was validated.
		convDirect(c, p, x, w, b, y)
		p.act.Apply(y)
		return
	}
	cg, mg := p.c/p.g, p.m/p.g
	if cg == 1 && p.g > 1 && mg <= 4 {
		convDepthwiseF32(c, p, &geom, x, w, b, y)
		return
	}
	inSize, outSize, K := geom.InSize(), geom.OutSize(), geom.KernelSize()
	kk := cg * K
	pointwise := K == 1 && inSize == outSize
	for i := 0; i < 3 && pointwise; i++ {
		pointwise = geom.Stride[i] == 1 && geom.Pad[i] == 0
	}
	// Column tiles of the im2col matrix bound the scratch to about 1 MiB per
	// worker; the tile count also provides parallelism for a single image.
	const colBudget = 1 << 18
	tile := outSize
	if !pointwise {
		tile = max(16, min(outSize, colBudget/max(kk, 1)))
	}
	flops := 2 * float64(p.n) * float64(p.m) * float64(outSize) * float64(kk)
	if c.Threads > 1 && flops > 1<<22 {
		// Enough tiles for every thread when there are few images and groups.
		want := (c.Threads + p.n*p.g - 1) / (p.n * p.g)
		if want > 1 {
			tile = min(tile, max(16, (outSize+want-1)/want))
		}
	}
	tiles := (outSize + tile - 1) / tile
	units := p.n * p.g * tiles
	workers := nnWorkers(c, units, flops)
	var scratch []float32
	if !pointwise {
		scratch = c.Scratch(workers * kk * tile)
	}
	nnRunWorkers(c, workers, func(wi int) {
		var col []float32
		if !pointwise {
			col = scratch[wi*kk*tile : (wi+1)*kk*tile]
		}
		for u := wi; u < units; u += workers {
			t := u % tiles
			ng := u / tiles
			gi, ni := ng%p.g, ng/p.g
			col0 := t * tile
			nc := min(tile, outSize-col0)
			xg := x[(ni*p.c+gi*cg)*inSize : (ni*p.c+(gi+1)*cg)*inSize]
			wg := w[gi*mg*kk : (gi+1)*mg*kk]
			yg := y[(ni*p.m+gi*mg)*outSize:]
			bm, ldb := xg[col0:], inSize
			if !pointwise {
				geom.Im2col(col, xg, cg, col0, nc)
				bm, ldb = col[:kk*nc], nc
			}
			fp32.Gemm(false, false, mg, nc, kk, 1, wg, max(kk, 1), bm, ldb, 0, yg[col0:], outSize)
			if b != nil || p.act.Kind != fp32.ActNone {
				for r := 0; r < mg; r++ {
					row := yg[r*outSize+col0 : r*outSize+col0+nc]
					if b != nil {
						bv := b[gi*mg+r]
						for i := range row {
							row[i] += bv
						}
					}
					p.act.Apply(row)
				}
			}
		}
	})
}

// convDepthwiseF32 is the direct float32 convolution for groups with one
// input channel each (depthwise, with a channel multiplier mg <= 4): each
// output plane accumulates kernel-tap-weighted rows of its input plane.
func convDepthwiseF32(c *kernel.Ctx, p *convProblem, g *fp32.ConvGeom, x, w, b, y []float32) {
	inSize, outSize, K := g.InSize(), g.OutSize(), g.KernelSize()
	mg := p.m / p.g
	units := p.n * p.m
	workers := nnWorkers(c, units, 2*float64(units)*float64(outSize)*float64(K))
	inD, inH, inW := g.In[0], g.In[1], g.In[2]
	outD, outH, outW := g.Out[0], g.Out[1], g.Out[2]
	sd, sh, sw := g.Stride[0], g.Stride[1], g.Stride[2]
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < units; u += workers {
			ni, mi := u/p.m, u%p.m
			ci := mi / mg
			xp := x[(ni*p.c+ci)*inSize : (ni*p.c+ci+1)*inSize]
			yp := y[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
			wm := w[mi*K : (mi+1)*K]
			bv := float32(0)
			if b != nil {
				bv = b[mi]
			}
			for i := range yp {
				yp[i] = bv
			}
			for t, wv := range wm {
				kd := t / (g.Kernel[1] * g.Kernel[2])
				kh := t / g.Kernel[2] % g.Kernel[1]
				kw := t % g.Kernel[2]
				offD := kd*g.Dilation[0] - g.Pad[0]
				offH := kh*g.Dilation[1] - g.Pad[1]
				offW := kw*g.Dilation[2] - g.Pad[2]
				// Valid output columns: 0 <= ow*sw + offW < inW.
				lo, hi := nnValidRange(offW, sw, inW, outW)
				if lo >= hi {
					continue
				}
				for od := 0; od < outD; od++ {
					id := od*sd + offD
					if id < 0 || id >= inD {
						continue
					}
					for oh := 0; oh < outH; oh++ {
						ih := oh*sh + offH
						if ih < 0 || ih >= inH {
							continue
						}
						line := xp[(id*inH+ih)*inW : (id*inH+ih+1)*inW]
						row := yp[(od*outH+oh)*outW : (od*outH+oh+1)*outW]
						row = row[lo:hi]
						if sw == 1 {
							src := line[lo+offW : hi+offW]
							for i, v := range src {
								row[i] += wv * v
							}
						} else {
							base := lo*sw + offW
							for i := range row {
								row[i] += wv * line[base+i*sw]
							}
						}
					}
				}
			}
			p.act.Apply(yp)
		}
	})
}

// nnValidRange returns the range [lo, hi) of window positions o < n whose
// coordinate o*stride + off lies in [0, size).
func nnValidRange(off, stride, size, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if size-off > 0 {
		hi = (size - off + stride - 1) / stride
	}
	lo, hi = min(lo, n), min(hi, n)
	return lo, max(lo, hi)
}

// convDirect is the direct N-D convolution for any float type: the
// reference formula of convKernel evaluated per output element.
func convDirect[T Float](c *kernel.Ctx, p *convProblem, x, w, b, y []T) {
	win := p.win
	nd := win.nd()
	inSize, outSize, K := win.inSize(), win.outSize(), win.kSize()
	cg, mg := p.c/p.g, p.m/p.g
	inStr := tensor.Shape(win.in).Strides()
	// Per tap: offset of each axis from the window start, and the linear
	// input offset when all coordinates are valid.
	tapOff := make([]int, K*nd)
	tapLin := make([]int, K)
	kidx := make([]int, nd)
	for t := 0; t < K; t++ {
		for d := 0; d < nd; d++ {
			o := kidx[d] * win.dil[d]
			tapOff[t*nd+d] = o
			tapLin[t] += o * inStr[d]
		}
		nnNext(kidx, win.kernel)
	}
	units := p.n * p.m
	workers := nnWorkers(c, units, 2*float64(units)*float64(outSize)*float64(cg*K))
	nnRunWorkers(c, workers, func(wi int) {
		start := make([]int, nd)
		oidx := make([]int, nd)
		for u := wi; u < units; u += workers {
			ni, mi := u/p.m, u%p.m
			gi := mi / mg
			yp := y[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
			wm := w[mi*cg*K : (mi+1)*cg*K]
			clear(oidx)
			for o := range yp {
				base := 0
				inside := true
				for d := 0; d < nd; d++ {
					start[d] = oidx[d]*win.stride[d] - win.padB[d]
					base += start[d] * inStr[d]
					if start[d] < 0 || start[d]+(win.kernel[d]-1)*win.dil[d] >= win.in[d] {
						inside = false
					}
				}
				var acc T
				if b != nil {
					acc = b[mi]
				}
				for ci := 0; ci < cg; ci++ {
					xp := x[(ni*p.c+gi*cg+ci)*inSize : (ni*p.c+gi*cg+ci+1)*inSize]
					wc := wm[ci*K : (ci+1)*K]
					if inside {
						for t, wv := range wc {
							acc += wv * xp[base+tapLin[t]]
						}
						continue
					}
					for t, wv := range wc {
						ok := true
						for d := 0; d < nd; d++ {
							if q := start[d] + tapOff[t*nd+d]; q < 0 || q >= win.in[d] {
								ok = false
								break
							}
						}
						if ok {
							acc += wv * xp[base+tapLin[t]]
						}
					}
				}
				yp[o] = acc
				nnNext(oidx, win.out)
			}
		}
	})
}

// nnNext advances a row-major multi-index over shape dims (wrapping to all
// zeros after the last element).
func nnNext(idx, dims []int) {
	for d := len(idx) - 1; d >= 0; d-- {
		idx[d]++
		if idx[d] < dims[d] {
			return
		}
		idx[d] = 0
	}
}
