package ops

import (
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// convTKernel implements ConvTranspose (opsets 1 and 11), the adjoint of
// Conv with the same window attributes:
//
//	Y[n, g*M/group + m, i*stride - padB + t*dil] += X[n, g*C/group + c, i] * W[g*C/group + c, m, t]
//
// plus B[m], with W of shape (C, M/group, k...). Output sizes are
// stride*(in-1) + output_padding + (k-1)*dil + 1 - padB - padE, or given by
// output_shape / auto_pad SAME_* (out = in*stride), which then determine
// the padding. float32 runs the GEMM of the entry's tier + col2im, float16
// computes in float32, float64 and more than three spatial axes use a
// direct loop.
type convTKernel struct {
	win         nnWinAttrs
	group       int
	outPadding  []int
	outputShape []int
	wF32        []float32
	fk          fp32.Kernels
}

// convTBuilder returns the ConvTranspose builder for float32 kernels fk.
func convTBuilder(fk fp32.Kernels) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		k, err := buildConvTranspose(info)
		if err != nil {
			return nil, err
		}
		k.(*convTKernel).fk = fk
		return k, nil
	}
}

func buildConvTranspose(info *kernel.Info) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.ceil {
		return nil, info.Errorf("ConvTranspose has no ceil_mode attribute")
	}
	g := info.Attrs().Int("group", 1)
	if g < 1 || g > nnMaxAttr {
		return nil, info.Errorf("group %d must be positive", g)
	}
	k := &convTKernel{win: win, group: int(g)}
	if k.outPadding, err = nnIntsAttr(info, "output_padding", 0); err != nil {
		return nil, err
	}
	if k.outputShape, err = nnIntsAttr(info, "output_shape", 0); err != nil {
		return nil, err
	}
	if len(info.Consts) > 1 && info.Consts[1] != nil && info.Consts[1].DType == tensor.Float16 {
		k.wF32 = halfToF32(info.Consts[1].Data.([]uint16))
	}
	return k, nil
}

// resolveT computes the ConvTranspose window for spatial input sizes in
// and kernel sizes ks. The returned nnWin describes the forward Conv from Y
// to X: its in is Y's spatial size and its out is X's.
func (k *convTKernel) resolveT(c *kernel.Ctx, in, ks []int) (nnWin, error) {
	nd := len(in)
	a := &k.win
	w := nnWin{out: in, kernel: ks, in: make([]int, nd), stride: make([]int, nd), dil: make([]int, nd),
		padB: make([]int, nd), padE: make([]int, nd)}
	if err := nnCheckLen(c, "strides", a.strides, nd); err != nil {
		return w, err
	}
	if err := nnCheckLen(c, "dilations", a.dilations, nd); err != nil {
		return w, err
	}
	if err := nnCheckLen(c, "pads", a.pads, 2*nd); err != nil {
		return w, err
	}
	if err := nnCheckLen(c, "output_padding", k.outPadding, nd); err != nil {
		return w, err
	}
	outShape := k.outputShape
	if len(outShape) == nd+2 {
		outShape = outShape[2:]
	}
	if err := nnCheckLen(c, "output_shape", outShape, nd); err != nil {
		return w, err
	}
	for i := 0; i < nd; i++ {
		s, d, op := 1, 1, 0
		if a.strides != nil {
			s = a.strides[i]
		}
		if a.dilations != nil {
			d = a.dilations[i]
		}
		if k.outPadding != nil {
			op = k.outPadding[i]
		}
		w.stride[i], w.dil[i] = s, d
		full := s*(in[i]-1) + op + (ks[i]-1)*d + 1
		switch {
		case outShape != nil || a.autoPad == "SAME_UPPER" || a.autoPad == "SAME_LOWER":
			out := in[i] * s
			if outShape != nil {
				out = outShape[i]
			}
			// A negative total (output larger than the full result) leaves
			// zeros at the end, as in the ONNX reference (floor division).
			total := full - out
			half := total >> 1 // floor(total/2)
			if a.autoPad == "SAME_UPPER" {
				w.padB[i] = half
			} else {
				w.padB[i] = total - half
			}
			w.padE[i] = total - w.padB[i]
		case a.autoPad == "NOTSET" && a.pads != nil:
			w.padB[i], w.padE[i] = a.pads[i], a.pads[nd+i]
		}
		w.in[i] = full - w.padB[i] - w.padE[i]
		if w.in[i] < 1 {
			return w, c.Errorf("spatial axis %d: output size %d is not positive", i, w.in[i])
		}
	}
	return w, nil
}

func (k *convTKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
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
		return c.Errorf("ConvTranspose does not support %v", x.DType)
	}
	if err := sameDType(c, x, w, b); err != nil {
		return err
	}
	if x.Rank() < 3 {
		return c.Errorf("input X rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	if w.Rank() != x.Rank() {
		return c.Errorf("weight rank %d, want %d", w.Rank(), x.Rank())
	}
	n, ch := x.Shape[0], x.Shape[1]
	if w.Shape[0] != ch || ch%k.group != 0 {
		return c.Errorf("input has %d channels but weight %v with group %d wants %d (divisible by group)", ch, w.Shape, k.group, w.Shape[0])
	}
	m := w.Shape[1] * k.group
	ks := []int(w.Shape[2:])
	for i, v := range ks {
		if v < 1 {
			return c.Errorf("weight %v has empty kernel axis %d", w.Shape, i)
		}
		if k.win.kernel != nil && (len(k.win.kernel) != len(ks) || k.win.kernel[i] != v) {
			return c.Errorf("kernel_shape %v does not match weight shape %v", k.win.kernel, w.Shape)
		}
	}
	if b != nil && (b.Rank() != 1 || b.Shape[0] != m) {
		return c.Errorf("bias shape %v, want [%d]", b.Shape, m)
	}
	win, err := k.resolveT(c, []int(x.Shape[2:]), ks)
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, nnSpatialShape(n, m, win.in))
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	p := convProblem{n: n, c: ch, m: m, g: k.group, win: &win, fk: k.fk}
	switch x.DType {
	case tensor.Float32:
		var bias []float32
		if b != nil {
			bias = b.F32()
		}
		convTF32(c, &p, x.F32(), w.F32(), bias, y.F32())
	case tensor.Float64:
		var bias []float64
		if b != nil {
			bias = b.F64()
		}
		convTDirect(c, &p, x.F64(), w.F64(), bias, y.F64())
	case tensor.Float16:
		wf := k.wF32
		if wf == nil || len(wf) != w.Len() {
			wf = nnToF32(w)
		}
		yf := make([]float32, y.Len())
		convTF32(c, &p, nnToF32(x), wf, nnToF32(b), yf)
		f32ToHalf(y.Data.([]uint16), yf)
	}
	return nil
}

// convTFill sets every output plane of y to its bias (or zero).
func convTFill[T Float](y, b []T, n, m, size int) {
	for i := 0; i < n*m; i++ {
		plane := y[i*size : (i+1)*size]
		if b == nil {
			clear(plane)
			continue
		}
		bv := b[i%m]
		for j := range plane {
			plane[j] = bv
		}
	}
}

// convTF32 computes a float32 transposed convolution: per image, group and
// block of output channels, col = W_g^T * X_g by fp32.Gemm, then Col2im
// scatters col into Y. p.win.in is Y's spatial size, p.win.out X's.
func convTF32(c *kernel.Ctx, p *convProblem, x, w, b, y []float32) {
	win := p.win
	if win.nd() > 3 {
		convTDirect(c, p, x, w, b, y)
		return
	}
	geom, err := fp32.NewConvGeom(win.in, win.out, win.kernel, win.stride, win.dil, win.padB)
	if err != nil {
		convTDirect(c, p, x, w, b, y)
		return
	}
	ySize, xSize, K := geom.InSize(), geom.OutSize(), geom.KernelSize()
	cg, mg := p.c/p.g, p.m/p.g
	convTFill(y, b, p.n, p.m, ySize)
	if cg == 0 {
		return
	}
	flops := 2 * float64(p.n) * float64(p.m) * float64(xSize) * float64(cg*K)
	// Split the output channels of a group when images and groups alone do
	// not keep the threads busy; each block owns its Y planes.
	blocks := 1
	if c.Threads > 1 && flops > 1<<22 && p.n*p.g < c.Threads {
		blocks = min(mg, (c.Threads+p.n*p.g-1)/(p.n*p.g))
	}
	bm := (mg + blocks - 1) / blocks
	blocks = (mg + bm - 1) / bm
	const colBudget = 1 << 18
	tile := max(16, min(xSize, colBudget/max(bm*K, 1)))
	units := p.n * p.g * blocks
	workers := nnWorkers(c, units, flops)
	fk := p.fk
	gs := fk.Scratch(&fp32.GemmOp{M: bm * K, N: tile, K: cg})
	per := bm*K*tile + gs
	scratch := c.Scratch(workers * per)
	nnRunWorkers(c, workers, func(wi int) {
		col := scratch[wi*per : wi*per+bm*K*tile]
		ws := scratch[wi*per+bm*K*tile : (wi+1)*per]
		for u := wi; u < units; u += workers {
			blk := u % blocks
			gi := u / blocks % p.g
			ni := u / blocks / p.g
			m0 := blk * bm
			m1 := min(mg, m0+bm)
			xg := x[(ni*p.c+gi*cg)*xSize : (ni*p.c+(gi+1)*cg)*xSize]
			wg := w[gi*cg*mg*K : (gi+1)*cg*mg*K]
			yg := y[(ni*p.m+gi*mg+m0)*ySize : (ni*p.m+gi*mg+m1)*ySize]
			rows := (m1 - m0) * K
			for col0 := 0; col0 < xSize; col0 += tile {
				nc := min(tile, xSize-col0)
				fk.Run(ws, &fp32.GemmOp{M: rows, N: nc, K: cg, Alpha: 1, A: fp32.Mat{Data: wg[m0*K:], Ld: mg * K, Trans: true},
					B: fp32.Mat{Data: xg[col0:], Ld: xSize}, C: col[:rows*nc], LdC: nc})
				geom.Col2im(yg, col[:rows*nc], m1-m0, col0, nc)
			}
		}
	})
}

// convTDirect is the direct N-D transposed convolution for any float type
// (the formula of convTKernel), parallel over output planes.
func convTDirect[T Float](c *kernel.Ctx, p *convProblem, x, w, b, y []T) {
	win := p.win
	nd := win.nd()
	ySize, xSize, K := win.inSize(), win.outSize(), win.kSize()
	cg, mg := p.c/p.g, p.m/p.g
	convTFill(y, b, p.n, p.m, ySize)
	yStr := tensor.Shape(win.in).Strides()
	units := p.n * p.m
	workers := nnWorkers(c, units, 2*float64(units)*float64(xSize)*float64(cg*K))
	nnRunWorkers(c, workers, func(wi int) {
		xi := make([]int, nd)
		ki := make([]int, nd)
		for u := wi; u < units; u += workers {
			ni, mi := u/p.m, u%p.m
			gi, mo := mi/mg, mi%mg
			yp := y[(ni*p.m+mi)*ySize : (ni*p.m+mi+1)*ySize]
			for ci := 0; ci < cg; ci++ {
				cIn := gi*cg + ci
				xp := x[(ni*p.c+cIn)*xSize : (ni*p.c+cIn+1)*xSize]
				wk := w[(cIn*mg+mo)*K : (cIn*mg+mo+1)*K]
				clear(xi)
				for _, xv := range xp {
					clear(ki)
					for _, wv := range wk {
						off, ok := 0, true
						for d := 0; d < nd; d++ {
							q := xi[d]*win.stride[d] - win.padB[d] + ki[d]*win.dil[d]
							if q < 0 || q >= win.in[d] {
								ok = false
								break
							}
							off += q * yStr[d]
						}
						if ok {
							yp[off] += xv * wv
						}
						nnNext(ki, win.kernel)
					}
					nnNext(xi, win.out)
				}
			}
		}
	})
}
