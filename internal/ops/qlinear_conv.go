package ops

import (
	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// qconvKernel implements QLinearConv (inputs x, x_scale, x_zero_point, w,
// w_scale, w_zero_point, y_scale, y_zero_point, B) and ConvInteger (x, w,
// x_zero_point, w_zero_point; int32 output) over 1-D and 2-D NCHW inputs:
//
//	acc[n, m, o] = B[m] + sum (x - x_zp) * (w[m] - w_zp[m])
//	QLinearConv: y = saturate(round(acc * x_scale*w_scale[m]/y_scale) + y_zp)
//
// with zero-point padding, groups, strides, dilations and auto_pad as
// Conv. Weight scales and zero points are per tensor or per output
// channel. The int8 batch convolution driver (q8.ConvBatch) computes all
// N images in one call.
//
// The goslim-domain twins (goslim.QLinearConv, goslim.ConvInteger) take
// two more int attributes, x_channels_last and y_channels_last (0 or 1,
// default 0), the physical layout of the activation input and the output
// of a 2-D convolution (rank-4 input): with x_channels_last=1 the tensor
// x has shape [N, H, W, C] (channels-last, NHWC); with y_channels_last=1
// the output is allocated as [N, OH, OW, M]. Weights, scales, zero points
// and the bias are unchanged. The INT8 lowering's layout pass sets them
// to keep 8-bit activations channels-last between integer ops. On
// ai.onnx-domain nodes they are refused unless 0: they are not ONNX
// attributes, and honouring them would change the meaning of an ONNX op.
//
// In steady state (same input and weight shapes, constant weights and
// scales) a run allocates nothing: the resolved window and conv shape are
// cached per input shape, the batch arguments live in the kernel and the
// workspace is the node's scratch.
type qconvKernel struct {
	q            *qCommon
	integer      bool // ConvInteger
	win          nnWinAttrs
	group        int
	xLast, yLast bool // x_channels_last, y_channels_last
	// Constant weights (and their zero point) prepared at build time.
	prepared     bool
	wConst, wzpC *tensor.Tensor
	cw           *q8.ConvWeights
	// Requantization prepared at build time when every scale and the
	// output zero point are constant.
	rq              *q8.Requant
	rqKey           [5]*tensor.Tensor
	rqOK            bool
	xIdx, wIdx, zxI int
	zwI, biasI      int
	cache           qconvCache
	args            q8.BatchArgs // reused by every run (no allocation)
}

// qconvCache is the resolution of the last run's input and weight
// shapes.
type qconvCache struct {
	x, w tensor.Shape // physical input shape, weight shape (nil: none yet)
	n, m int
	s    q8.ConvShape
	y    tensor.Shape // physical output shape
}

// qReadLayouts reads x_channels_last and y_channels_last (see qLayoutAttr).
func qReadLayouts(info *kernel.Info) (x, y bool, err error) {
	if x, err = qLayoutAttr(info, "x_channels_last"); err != nil {
		return false, false, err
	}
	y, err = qLayoutAttr(info, "y_channels_last")
	return x, y, err
}

// qLayoutAttr reads the 0/1 layout attribute name of a node; nonzero
// values are accepted on goslim-domain nodes only.
func qLayoutAttr(info *kernel.Info, name string) (bool, error) {
	v := info.Attrs().Int(name, 0)
	if v != 0 && v != 1 {
		return false, info.Errorf("%s = %d, want 0 or 1", name, v)
	}
	if v == 1 && info.Node.Domain != "goslim" {
		return false, info.Errorf("%s=1 is a goslim-domain attribute (it changes the physical layout of the op's tensors); use the goslim-domain %s", name, info.Node.Op)
	}
	return v == 1, nil
}

// qLayout returns q8.NHWC when last, else q8.NCHW.
func qLayout(last bool) q8.Layout {
	if last {
		return q8.NHWC
	}
	return q8.NCHW
}

// qconvMinParallelMACs is the multiply-add count below which a quantized
// convolution runs on one thread.
const qconvMinParallelMACs = 1 << 23

func buildQConv(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.ceil {
		return nil, info.Errorf("%s has no ceil_mode attribute", info.Node.Op)
	}
	win.strict = true
	g := info.Attrs().Int("group", 1)
	if g < 1 || g > nnMaxAttr {
		return nil, info.Errorf("group %d must be positive", g)
	}
	k := &qconvKernel{q: q, win: win, group: int(g), integer: info.Node.Op == "ConvInteger"}
	if k.xLast, k.yLast, err = qReadLayouts(info); err != nil {
		return nil, err
	}
	if k.integer {
		k.xIdx, k.wIdx, k.zxI, k.zwI, k.biasI = 0, 1, 2, 3, -1
	} else {
		k.xIdx, k.wIdx, k.zxI, k.zwI, k.biasI = 0, 3, 2, 5, 8
	}
	w, okW := qConstIn(info, k.wIdx)
	zw, okZ := qConstIn(info, k.zwI)
	if okW && okZ && w != nil {
		cw, err := qconvWeights(nil, w, zw, k.group)
		if err != nil {
			return nil, info.Errorf("%v", err)
		}
		k.prepared, k.wConst, k.wzpC, k.cw = true, w, zw, cw
	}
	if !k.integer {
		// x_scale, w_scale, y_scale, y_zero_point.
		idx := []int{1, 4, 6, 7}
		all := true
		for j, i := range idx {
			t, ok := qConstIn(info, i)
			all = all && ok
			k.rqKey[j] = t
		}
		k.rqOK = all && k.rqKey[0] != nil && k.rqKey[1] != nil && k.rqKey[2] != nil
	}
	return k, nil
}

// qconvWeights prepares weights w (M, C/group, [KH,] KW) of type int8 or
// uint8 with zero point zw (nil, scalar or per output channel).
func qconvWeights(c *kernel.Ctx, w, zw *tensor.Tensor, group int) (*q8.ConvWeights, error) {
	errf := func(format string, args ...any) error {
		if c != nil {
			return c.Errorf(format, args...)
		}
		return (&kernel.Ctx{}).Errorf(format, args...)
	}
	if !qIs8(w.DType) {
		return nil, errf("weight has type %v, want uint8 or int8", w.DType)
	}
	if w.Rank() != 3 && w.Rank() != 4 {
		return nil, errf("weight shape %v: only 1-D and 2-D convolutions are supported", w.Shape)
	}
	if err := w.Check(); err != nil {
		return nil, errf("weight: %v", err)
	}
	m, cg := w.Shape[0], w.Shape[1]
	kh, kw := 1, w.Shape[2]
	if w.Rank() == 4 {
		kh, kw = w.Shape[2], w.Shape[3]
	}
	if m == 0 || m%group != 0 {
		return nil, errf("%d output channels not divisible by group %d", m, group)
	}
	var zb []int32
	if zw != nil {
		if zw.DType != w.DType {
			return nil, errf("weight zero point type %v does not match weight type %v", zw.DType, w.DType)
		}
		if zw.Len() != 1 && (zw.Len() != m || zw.Rank() != 1) {
			return nil, errf("weight zero point shape %v, want a scalar or [%d]", zw.Shape, m)
		}
		v, err := zw.Int64s()
		if err != nil {
			return nil, errf("weight zero point: %v", err)
		}
		zb = make([]int32, len(v))
		for i, x := range v {
			zb[i] = int32(x)
		}
	}
	var ws []int8
	if w.DType == tensor.Int8 {
		ws = w.I8()
	} else {
		u := w.U8()
		ws = make([]int8, len(u))
		for i, v := range u {
			ws[i] = int8(v - 128)
		}
		if zb == nil {
			zb = []int32{0}
		}
		for i := range zb {
			zb[i] -= 128
		}
	}
	cw, err := q8.NewConvWeights(ws, zb, m, cg, kh, kw, group)
	if err != nil {
		return nil, errf("%v", err)
	}
	return cw, nil
}

func (k *qconvKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := qInput(c, in, k.xIdx, "x")
	if err != nil {
		return err
	}
	w, err := qInput(c, in, k.wIdx, "w")
	if err != nil {
		return err
	}
	zx, zw := opt(in, k.zxI), opt(in, k.zwI)
	var bias *tensor.Tensor
	if k.biasI >= 0 {
		bias = opt(in, k.biasI)
		if bias != nil && bias.DType != tensor.Int32 {
			return c.Errorf("bias B has type %v, want int32", bias.DType)
		}
	}
	if k.cache.x == nil || !x.Shape.Equal(k.cache.x) || !w.Shape.Equal(k.cache.w) {
		if err := k.resolve(c, x, w); err != nil {
			return err
		}
	}
	cs := &k.cache
	if bias != nil && (bias.Rank() != 1 || bias.Shape[0] != cs.m) {
		return c.Errorf("bias shape %v, want [%d]", bias.Shape, cs.m)
	}
	zxs, err := qZero1(c, zx, "x_zero_point", x.DType)
	if err != nil {
		return err
	}
	cw := k.cw
	if !k.prepared || w != k.wConst || zw != k.wzpC {
		if cw, err = qconvWeights(c, w, zw, k.group); err != nil {
			return err
		}
	}
	odt := tensor.Int32
	var rq *q8.Requant
	if !k.integer {
		if rq, odt, err = k.requant(c, in, cs.m); err != nil {
			return err
		}
	}
	y, err := c.Output(0, odt, cs.y)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	// Like the float32 convolution (convMinParallelFlops), small
	// convolutions run on the calling thread: waking a worker costs more
	// than it saves. Integer multiply-adds run about 2.5x faster than
	// float32 ones, hence a larger threshold.
	threads := 1
	if macs := float64(cs.n) * float64(cs.s.M*cs.s.OH*cs.s.OW) * float64(cs.s.C/cs.s.Group*cs.s.KH*cs.s.KW); c.Threads > 1 && macs >= qconvMinParallelMACs {
		threads = c.Threads
	}
	a := &k.args
	a.N, a.X, a.In, a.Out = cs.n, qBytes(x), qLayout(k.xLast), qLayout(k.yLast)
	a.Signed, a.Zero, a.Req, a.Threads, a.Par = x.DType == tensor.Int8, zxs, rq, threads, c
	a.WS = qScratch(c, cw.BatchScratch(&cs.s, cs.n, threads, a.In, a.Out))
	a.Bias = nil
	if bias != nil {
		a.Bias = bias.I32()
	}
	switch yd := y.Data.(type) {
	case []uint8:
		err = q8.ConvBatch(k.q.tier, &cs.s, cw, a, yd)
	case []int8:
		err = q8.ConvBatch(k.q.tier, &cs.s, cw, a, yd)
	case []int32:
		err = q8.ConvBatch(k.q.tier, &cs.s, cw, a, yd)
	}
	a.X, a.WS, a.Bias, a.Par = nil, nil, nil, nil // keep no reference to this run's tensors
	if err != nil {
		return c.Errorf("%v", err)
	}
	if yi, ok := y.Data.([]int32); ok {
		qClampI32(yi, k.q.lo, k.q.hi)
	}
	return nil
}

// resolve checks the input and weight shapes, resolves the window and
// caches the convolution shape and the output shape.
func (k *qconvKernel) resolve(c *kernel.Ctx, x, w *tensor.Tensor) error {
	if x.Rank() != 3 && x.Rank() != 4 {
		return c.Errorf("input x rank %d: only 1-D and 2-D convolutions (rank 3 or 4) are supported", x.Rank())
	}
	if (k.xLast || k.yLast) && x.Rank() != 4 {
		return c.Errorf("x_channels_last and y_channels_last need a 2-D convolution (rank-4 input), got input x of shape %v", x.Shape)
	}
	logical := x.Shape
	if k.xLast {
		logical = tensor.Shape{x.Shape[0], x.Shape[3], x.Shape[1], x.Shape[2]}
	}
	n, ch, m, inSp, kSp, err := convShapes(c, &tensor.Tensor{DType: x.DType, Shape: logical}, w, nil, k.group, k.win.kernel)
	if err != nil {
		if k.xLast {
			return c.Errorf("input x of channels-last shape %v: %v", x.Shape, err)
		}
		return err
	}
	win, err := k.win.resolve(c, inSp, kSp)
	if err != nil {
		return err
	}
	s := q8.ConvShape{C: ch, M: m, Group: k.group, H: 1, W: inSp[0], KH: 1, KW: kSp[0],
		SH: 1, SW: win.stride[0], DH: 1, DW: win.dil[0], PadL: win.padB[0], PadR: win.padE[0], OH: 1, OW: win.out[0]}
	if len(inSp) == 2 {
		s.H, s.W, s.KH, s.KW = inSp[0], inSp[1], kSp[0], kSp[1]
		s.SH, s.SW, s.DH, s.DW = win.stride[0], win.stride[1], win.dil[0], win.dil[1]
		s.PadT, s.PadL, s.PadB, s.PadR = win.padB[0], win.padB[1], win.padE[0], win.padE[1]
		s.OH, s.OW = win.out[0], win.out[1]
	}
	y := nnSpatialShape(n, m, win.out)
	if k.yLast {
		y = tensor.Shape{n, s.OH, s.OW, m}
	}
	k.cache = qconvCache{x: x.Shape.Clone(), w: w.Shape.Clone(), n: n, m: m, s: s, y: y}
	return nil
}

// requant returns QLinearConv's requantization and output type.
func (k *qconvKernel) requant(c *kernel.Ctx, in []*tensor.Tensor, m int) (*q8.Requant, tensor.DType, error) {
	zy := opt(in, 7)
	odt := tensor.Uint8
	if zy != nil {
		odt = zy.DType
	}
	if k.rq != nil {
		return k.rq, odt, nil
	}
	sx, err := qScales(c, opt(in, 1), "x_scale", 1)
	if err != nil {
		return nil, 0, err
	}
	sw, err := qScales(c, opt(in, 4), "w_scale", m)
	if err != nil {
		return nil, 0, err
	}
	sy, err := qScales(c, opt(in, 6), "y_scale", 1)
	if err != nil {
		return nil, 0, err
	}
	zys, err := qZeros(c, zy, "y_zero_point", 1, tensor.Undefined)
	if err != nil {
		return nil, 0, err
	}
	lo, hi, err := k.q.outRange(c, odt)
	if err != nil {
		return nil, 0, err
	}
	rq, err := qRequant(c, sx[0], sw, sy[0], zys[0], lo, hi)
	if err != nil {
		return nil, 0, err
	}
	if k.rqOK && in[1] == k.rqKey[0] && in[4] == k.rqKey[1] && in[6] == k.rqKey[2] && opt(in, 7) == k.rqKey[3] {
		k.rq = rq // every operand is constant: keep it for later runs
	}
	return rq, odt, nil
}
