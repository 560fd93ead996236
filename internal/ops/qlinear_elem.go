package ops

import (
	"math"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// dynQuantKernel implements DynamicQuantizeLinear (opset 11): x float32 to
// y uint8 with y_scale = (max(x, 0) - min(x, 0)) / 255 and y_zero_point =
// saturate(round(-min(x, 0) / y_scale)), y = saturate(round(x / y_scale) +
// y_zero_point), all in float32 with round half to even. An input of only
// zeros (and an empty input) gives scale 0, zero point 0 and y = 0.
type dynQuantKernel struct{ q *qCommon }

func buildDynQuant(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	return &dynQuantKernel{q: q}, nil
}

func (k *dynQuantKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "x")
	if err != nil {
		return err
	}
	if x.DType != tensor.Float32 {
		return c.Errorf("input x has type %v, want float32", x.DType)
	}
	xs := x.F32()
	lo, hi := float32(0), float32(0)
	for _, v := range xs {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	if math.IsNaN(float64(lo)) || math.IsNaN(float64(hi)) || math.IsInf(float64(lo), 0) || math.IsInf(float64(hi), 0) {
		return c.Errorf("input x holds NaN or infinite values")
	}
	scale := (hi - lo) / 255
	var zp float32
	if scale > 0 {
		zp = float32(math.RoundToEven(float64(min(max(0-lo/scale, 0), 255))))
	}
	y, err := c.Output(0, tensor.Uint8, x.Shape)
	if err != nil {
		return err
	}
	ys, err := c.Output(1, tensor.Float32, tensor.Shape{})
	if err != nil {
		return err
	}
	yz, err := c.Output(2, tensor.Uint8, tensor.Shape{})
	if err != nil {
		return err
	}
	ys.F32()[0] = scale
	yz.U8()[0] = uint8(zp)
	qlo, qhi, err := k.q.outRange(c, tensor.Uint8)
	if err != nil {
		return err
	}
	yd := y.U8()
	if scale == 0 {
		clear(yd)
		return nil
	}
	z := int32(zp)
	for i, v := range xs {
		yd[i] = uint8(qRound8(float64(v/scale), z, qlo, qhi))
	}
	return nil
}

// qbinKernel implements com.microsoft QLinearAdd and QLinearMul (A,
// A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point;
// numpy broadcasting; per-tensor scales):
//
//	QLinearAdd: C = saturate(round((A-za)*sa/sc + (B-zb)*sb/sc) + zc)
//	QLinearMul: C = saturate(round((A-za)*(B-zb) * sa*sb/sc) + zc)
//
// Add sums two 256-entry float64 tables; Mul requantizes the integer
// product in fixed point.
//
// The result depends only on the two input bytes, so a 65536-entry table
// of the same formula is built once when the scales and zero points are
// constants of the model (and per call for large non-constant cases); the
// elements are then table lookups.
type qbinKernel struct {
	q   *qCommon
	mul bool
	// consts are inputs 1, 2, 4, 5, 6, 7 at build time (nil when omitted);
	// constOK says they were all constant or omitted.
	consts  [6]*tensor.Tensor
	constOK bool
	lut     []uint8 // cached table for consts (nil until built)
	lutDT   tensor.DType
}

// qbinParams are the indices of the scale and zero-point inputs.
var qbinParams = [6]int{1, 2, 4, 5, 6, 7}

func buildQBinary(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	k := &qbinKernel{q: q, mul: info.Node.Op == "QLinearMul", constOK: true}
	for j, i := range qbinParams {
		t, ok := qConstIn(info, i)
		k.consts[j] = t
		k.constOK = k.constOK && ok
	}
	return k, nil
}

// qTable returns the 256 values (v - z) * s / sy of the type dt, indexed
// by the byte of v.
func qTable(dt tensor.DType, z int32, s, sy float32) *[256]float64 {
	var t [256]float64
	r := float64(s) / float64(sy)
	for b := range 256 {
		v := int32(b)
		if dt == tensor.Int8 {
			v = int32(int8(uint8(b)))
		}
		t[b] = float64(v-z) * r
	}
	return &t
}

func (k *qbinKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, err := qInput(c, in, 0, "A")
	if err != nil {
		return err
	}
	b, err := qInput(c, in, 3, "B")
	if err != nil {
		return err
	}
	if a.DType != b.DType {
		return c.Errorf("A has type %v but B has %v", a.DType, b.DType)
	}
	sa, err := qScales(c, opt(in, 1), "A_scale", 1)
	if err != nil {
		return err
	}
	sb, err := qScales(c, opt(in, 4), "B_scale", 1)
	if err != nil {
		return err
	}
	sc, err := qScales(c, opt(in, 6), "C_scale", 1)
	if err != nil {
		return err
	}
	za, err := qZeros(c, opt(in, 2), "A_zero_point", 1, a.DType)
	if err != nil {
		return err
	}
	zb, err := qZeros(c, opt(in, 5), "B_zero_point", 1, a.DType)
	if err != nil {
		return err
	}
	zc, err := qZeros(c, opt(in, 7), "C_zero_point", 1, a.DType)
	if err != nil {
		return err
	}
	shape, err := BroadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return c.Errorf("%v", err)
	}
	y, err := c.Output(0, a.DType, shape)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, a.DType)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	ab, bb, yb := qBytes(a), qBytes(b), qBytes(y)
	signed := a.DType == tensor.Int8
	val := func(v uint8) int32 {
		if signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	var f func(x, w uint8) uint8
	if k.mul {
		rq, err := qRequant(c, sa[0], sb, sc[0], zc[0], lo, hi)
		if err != nil {
			return err
		}
		f = func(x, w uint8) uint8 { return uint8(rq.One((val(x)-za[0])*(val(w)-zb[0]), 0)) }
	} else {
		ta, tb := qTable(a.DType, za[0], sa[0], sc[0]), qTable(a.DType, zb[0], sb[0], sc[0])
		z := zc[0]
		f = func(x, w uint8) uint8 { return uint8(qRound8(ta[x]+tb[w], z, lo, hi)) }
	}
	// The 65536-entry table: cached for constant parameters, built per
	// call when the tensor is large enough to pay for it.
	lut := k.lut
	cached := k.constOK && lut != nil && k.lutDT == a.DType
	if cached {
		for j, i := range qbinParams {
			if opt(in, i) != k.consts[j] {
				cached = false
			}
		}
	}
	if !cached {
		lut = nil
		if len(yb) >= 1<<15 || k.constOK {
			lut = make([]uint8, 1<<16)
			for x := range 256 {
				for w := range 256 {
					lut[x<<8|w] = f(uint8(x), uint8(w))
				}
			}
			same := k.constOK
			for j, i := range qbinParams {
				if opt(in, i) != k.consts[j] {
					same = false
				}
			}
			if same {
				k.lut, k.lutDT = lut, a.DType
			}
		}
	}
	if a.Shape.Equal(b.Shape) {
		if lut != nil {
			lut := (*[1 << 16]uint8)(lut)
			bb := bb[:len(ab)]
			for i, x := range ab[:len(yb)] {
				yb[i] = lut[uint16(x)<<8|uint16(bb[i])]
			}
			return nil
		}
		for i := range yb {
			yb[i] = f(ab[i], bb[i])
		}
		return nil
	}
	it := broadcastIter{out: shape, strides: [][]int{bstrides(a.Shape, shape), bstrides(b.Shape, shape)}}
	ia, ib := it.strides[0][len(shape)-1], it.strides[1][len(shape)-1]
	it.forEachRow(func(o int, offs []int, n int) {
		if lut != nil {
			for j := range n {
				yb[o+j] = lut[int(ab[offs[0]+j*ia])<<8|int(bb[offs[1]+j*ib])]
			}
			return
		}
		for j := range n {
			yb[o+j] = f(ab[offs[0]+j*ia], bb[offs[1]+j*ib])
		}
	})
	return nil
}

// qunaryKernel implements com.microsoft QLinearLeakyRelu (attribute alpha,
// default 0.01) and QLinearSigmoid (X, X_scale, X_zero_point, Y_scale,
// Y_zero_point): a 256-entry table of saturate(round(f((x-zx)*sx)/sy) +
// zy) computed in float64.
type qunaryKernel struct {
	q       *qCommon
	sigmoid bool
	alpha   float64
}

func buildQUnary(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	return &qunaryKernel{q: q, sigmoid: info.Node.Op == "QLinearSigmoid", alpha: float64(info.Attrs().Float("alpha", 0.01))}, nil
}

func (k *qunaryKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := qInput(c, in, 0, "X")
	if err != nil {
		return err
	}
	sx, err := qScales(c, opt(in, 1), "X_scale", 1)
	if err != nil {
		return err
	}
	sy, err := qScales(c, opt(in, 3), "Y_scale", 1)
	if err != nil {
		return err
	}
	zx, err := qZeros(c, opt(in, 2), "X_zero_point", 1, x.DType)
	if err != nil {
		return err
	}
	zy, err := qZeros(c, opt(in, 4), "Y_zero_point", 1, x.DType)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, x.DType)
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	var tab [256]uint8
	for b := range 256 {
		v := int32(b)
		if x.DType == tensor.Int8 {
			v = int32(int8(uint8(b)))
		}
		r := float64(v-zx[0]) * float64(sx[0])
		if k.sigmoid {
			r = 1 / (1 + math.Exp(-r))
		} else if r < 0 {
			r *= k.alpha
		}
		tab[b] = uint8(qRound8(r/float64(sy[0]), zy[0], lo, hi))
	}
	yb := qBytes(y)
	for i, v := range qBytes(x) {
		yb[i] = tab[v]
	}
	return nil
}

// qconcatKernel implements com.microsoft QLinearConcat (Y_scale,
// Y_zero_point, then X, X_scale, X_zero_point per input; attribute axis):
// each input is requantized to the output's scale through a 256-entry
// table (a copy when its scale and zero point equal the output's and no
// clamp narrows the range).
type qconcatKernel struct {
	q    *qCommon
	axis int64
}

func buildQConcat(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	if !info.Attrs().Has("axis") {
		return nil, info.Errorf("QLinearConcat needs the axis attribute")
	}
	return &qconcatKernel{q: q, axis: info.Attrs().Int("axis", 0)}, nil
}

func (k *qconcatKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	if len(in) < 5 || (len(in)-2)%3 != 0 {
		return c.Errorf("QLinearConcat has %d inputs, want Y_scale, Y_zero_point and triples (X, X_scale, X_zero_point)", len(in))
	}
	sy, err := qScales(c, opt(in, 0), "Y_scale", 1)
	if err != nil {
		return err
	}
	zyT := opt(in, 1)
	if zyT == nil {
		return c.Errorf("missing input Y_zero_point")
	}
	dt := zyT.DType
	zy, err := qZeros(c, zyT, "Y_zero_point", 1, tensor.Undefined)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, dt)
	if err != nil {
		return err
	}
	n := (len(in) - 2) / 3
	first, err := qInput(c, in, 2, "X")
	if err != nil {
		return err
	}
	rank := first.Rank()
	if rank == 0 {
		return c.Errorf("QLinearConcat of scalars")
	}
	ax, err := normAxis(c, k.axis, rank)
	if err != nil {
		return err
	}
	shape := first.Shape.Clone()
	shape[ax] = 0
	for i := range n {
		x, err := qInput(c, in, 2+3*i, "X")
		if err != nil {
			return err
		}
		if x.DType != dt {
			return c.Errorf("input %d has type %v, want %v (the output zero point's type)", i, x.DType, dt)
		}
		if x.Rank() != rank {
			return c.Errorf("input %d has rank %d, want %d", i, x.Rank(), rank)
		}
		for d := range rank {
			if d != ax && x.Shape[d] != first.Shape[d] {
				return c.Errorf("input %d shape %v does not match %v outside axis %d", i, x.Shape, first.Shape, ax)
			}
		}
		shape[ax] += x.Shape[ax]
	}
	y, err := c.Output(0, dt, shape)
	if err != nil {
		return err
	}
	outer := tensor.Shape(shape[:ax]).Size()
	inner := tensor.Shape(shape[ax+1:]).Size()
	yb := qBytes(y)
	rowOut := shape[ax] * inner
	off := 0
	for i := range n {
		x := in[2+3*i]
		sx, err := qScales(c, opt(in, 3+3*i), "X_scale", 1)
		if err != nil {
			return err
		}
		zx, err := qZeros(c, opt(in, 4+3*i), "X_zero_point", 1, dt)
		if err != nil {
			return err
		}
		var tab [256]uint8
		ident := sx[0] == sy[0] && zx[0] == zy[0]
		for b := range 256 {
			v := int32(b)
			if dt == tensor.Int8 {
				v = int32(int8(uint8(b)))
			}
			var q int32
			if sx[0] == sy[0] {
				q = min(max(v-zx[0]+zy[0], lo), hi)
			} else {
				q = qRound8(float64(v-zx[0])*float64(sx[0])/float64(sy[0]), zy[0], lo, hi)
			}
			tab[b] = uint8(q)
			ident = ident && q == v
		}
		xb := qBytes(x)
		blk := x.Shape[ax] * inner
		for o := range outer {
			src := xb[o*blk : (o+1)*blk]
			dst := yb[o*rowOut+off : o*rowOut+off+blk]
			if ident {
				copy(dst, src)
				continue
			}
			for j, v := range src {
				dst[j] = tab[v]
			}
		}
		off += blk
	}
	return nil
}

// qpoolKernel implements com.microsoft QLinearGlobalAveragePool (X,
// x_scale, x_zero_point, y_scale, y_zero_point; attribute channels_last)
// and QLinearAveragePool (the same inputs; AveragePool's attributes and
// channels_last; 1-D and 2-D windows):
//
//	y = saturate(round(sum(x - zx) * sx / (sy * count)) + zy)
//
// with the integer sum requantized in fixed point (one multiplier per
// possible count).
type qpoolKernel struct {
	q            *qCommon
	global       bool
	channelsLast bool
	win          nnWinAttrs
	includePad   bool
}

func buildQPool(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &qpoolKernel{q: q, global: info.Node.Op == "QLinearGlobalAveragePool", channelsLast: a.Int("channels_last", 0) != 0}
	if !k.global {
		win, err := nnReadWin(info, false)
		if err != nil {
			return nil, err
		}
		if win.kernel == nil {
			return nil, info.Errorf("QLinearAveragePool needs the kernel_shape attribute")
		}
		k.win = win
		k.includePad = a.Int("count_include_pad", 0) != 0
	}
	return k, nil
}

func (k *qpoolKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := qInput(c, in, 0, "X")
	if err != nil {
		return err
	}
	sx, err := qScales(c, opt(in, 1), "x_scale", 1)
	if err != nil {
		return err
	}
	sy, err := qScales(c, opt(in, 3), "y_scale", 1)
	if err != nil {
		return err
	}
	zx, err := qZeros(c, opt(in, 2), "x_zero_point", 1, x.DType)
	if err != nil {
		return err
	}
	zy, err := qZeros(c, opt(in, 4), "y_zero_point", 1, x.DType)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, x.DType)
	if err != nil {
		return err
	}
	if x.Rank() < 3 {
		return c.Errorf("input X rank %d, want at least 3", x.Rank())
	}
	signed := x.DType == tensor.Int8
	xb := qBytes(x)
	val := func(v uint8) int32 {
		if signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	if k.global {
		return k.runGlobal(c, x, xb, val, sx[0], sy[0], zx[0], zy[0], lo, hi)
	}
	if k.channelsLast {
		return c.Errorf("QLinearAveragePool with channels_last=1 is not supported")
	}
	if x.Rank() > 4 {
		return c.Errorf("QLinearAveragePool supports 1-D and 2-D windows, got input rank %d", x.Rank())
	}
	nd := x.Rank() - 2
	if len(k.win.kernel) != nd {
		return c.Errorf("kernel_shape %v has %d values, want %d", k.win.kernel, len(k.win.kernel), nd)
	}
	win, err := k.win.resolve(c, append([]int(nil), x.Shape[2:]...), k.win.kernel)
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, nnSpatialShape(x.Shape[0], x.Shape[1], win.out))
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	// 2-D view: H = 1 for 1-D windows.
	H, W, KH, KW, SH, SW, PT, PL, OH, OW := 1, win.in[0], 1, win.kernel[0], 1, win.stride[0], 0, win.padB[0], 1, win.out[0]
	PB, PR := 0, win.padE[0]
	if nd == 2 {
		H, W, KH, KW, SH, SW = win.in[0], win.in[1], win.kernel[0], win.kernel[1], win.stride[0], win.stride[1]
		PT, PL, PB, PR, OH, OW = win.padB[0], win.padB[1], win.padE[0], win.padE[1], win.out[0], win.out[1]
	}
	reals := make([]float64, KH*KW+1)
	for n := 1; n < len(reals); n++ {
		reals[n] = float64(sx[0]) / (float64(sy[0]) * float64(n))
	}
	rq, err := q8.NewRequant(reals, zy[0], lo, hi)
	if err != nil {
		return c.Errorf("%v", err)
	}
	yb := qBytes(y)
	planes := x.Shape[0] * x.Shape[1]
	c.Parallel(planes, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			src := xb[pl*H*W : (pl+1)*H*W]
			dst := yb[pl*OH*OW : (pl+1)*OH*OW]
			for oh := range OH {
				h0 := oh*SH - PT
				h1 := min(h0+KH, H)
				hc := min(h0+KH, H+PB) - max(h0, -PT)
				h0 = max(h0, 0)
				for ow := range OW {
					w0 := ow*SW - PL
					w1 := min(w0+KW, W)
					wc := min(w0+KW, W+PR) - max(w0, -PL)
					w0 = max(w0, 0)
					var sum int32
					for ih := h0; ih < h1; ih++ {
						for _, v := range src[ih*W+w0 : ih*W+w1] {
							sum += val(v)
						}
					}
					cnt := (h1 - h0) * (w1 - w0)
					sum -= int32(cnt) * zx[0]
					if k.includePad {
						cnt = hc * wc
					}
					if cnt <= 0 {
						dst[oh*OW+ow] = uint8(min(max(zy[0], lo), hi))
						continue
					}
					dst[oh*OW+ow] = uint8(rq.One(sum, cnt))
				}
			}
		}
	})
	return nil
}

// runGlobal is QLinearGlobalAveragePool.
func (k *qpoolKernel) runGlobal(c *kernel.Ctx, x *tensor.Tensor, xb []uint8, val func(uint8) int32, sx, sy float32, zx, zy, lo, hi int32) error {
	n := x.Shape[0]
	var ch, size int
	shape := make(tensor.Shape, x.Rank())
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = n
	if k.channelsLast {
		ch = x.Shape[x.Rank()-1]
		shape[x.Rank()-1] = ch
		size = tensor.Shape(x.Shape[1 : x.Rank()-1]).Size()
	} else {
		ch = x.Shape[1]
		shape[1] = ch
		size = tensor.Shape(x.Shape[2:]).Size()
	}
	y, err := c.Output(0, x.DType, shape)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	yb := qBytes(y)
	if size == 0 {
		for i := range yb {
			yb[i] = uint8(min(max(zy, lo), hi))
		}
		return nil
	}
	rq, err := q8.NewRequant([]float64{float64(sx) / (float64(sy) * float64(size))}, zy, lo, hi)
	if err != nil {
		return c.Errorf("%v", err)
	}
	corr := int32(size) * zx
	if k.channelsLast {
		sums := make([]int32, ch)
		for img := range n {
			clear(sums)
			src := xb[img*size*ch : (img+1)*size*ch]
			for p := range size {
				for j, v := range src[p*ch : (p+1)*ch] {
					sums[j] += val(v)
				}
			}
			for j, s := range sums {
				yb[img*ch+j] = uint8(rq.One(s-corr, 0))
			}
		}
		return nil
	}
	c.Parallel(n*ch, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			var s int32
			for _, v := range xb[p*size : (p+1)*size] {
				s += val(v)
			}
			yb[p] = uint8(rq.One(s-corr, 0))
		}
	})
	return nil
}
