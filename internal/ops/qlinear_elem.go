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
// elements are then table lookups. With constant parameters a run at a
// steady input shape allocates nothing (the output shape and broadcast
// strides are cached per input shapes).
//
// The goslim-domain twins take x_channels_last and y_channels_last (0 or
// 1, default 0; both equal): 1 says A, B and C are rank-4 activations
// stored channels-last ([N, H, W, C]); A and B must then have the same
// shape, and the elementwise code runs unchanged on the physical data
// (the output has the inputs' physical shape).
type qbinKernel struct {
	q    *qCommon
	mul  bool
	last bool // x_channels_last = y_channels_last = 1
	// consts are inputs 1, 2, 4, 5, 6, 7 at build time (nil when omitted);
	// constOK says they were all constant or omitted.
	consts  [6]*tensor.Tensor
	constOK bool
	lut     []uint8 // cached table for consts (nil until built)
	lutDT   tensor.DType
	// add holds QLinearAdd's constants for the vector kernel (q8.AddBytes),
	// cached for consts when addDT is set.
	add   q8.AddParams
	addDT tensor.DType
	bc    qbinShapes
	task  qbinTask
}

// qbinTask looks up same-shape elements in a table, split into ranges
// across workers.
type qbinTask struct {
	lut        *[1 << 16]uint8
	add        *q8.AddParams // when set: q8.AddBytes instead of the table
	tier       kernel.Tier
	ab, bb, yb []uint8
	workers    int
}

// Run computes the elements of workers [lo, hi).
func (t *qbinTask) Run(lo, hi int) {
	n := len(t.yb)
	for w := lo; w < hi; w++ {
		i0, i1 := w*n/t.workers, (w+1)*n/t.workers
		if t.add != nil {
			q8.AddBytes(t.tier, t.add, t.yb[i0:i1], t.ab[i0:i1], t.bb[i0:i1])
			continue
		}
		qbinLookup(t.lut, t.ab[i0:i1], t.bb[i0:i1], t.yb[i0:i1])
	}
}

// qbinLookup writes y[i] = lut[a[i]<<8 | b[i]].
func qbinLookup(lut *[1 << 16]uint8, a, b, y []uint8) {
	b = b[:len(a)]
	for i, x := range a[:len(y)] {
		y[i] = lut[uint16(x)<<8|uint16(b[i])]
	}
}

// qbinShapes caches the broadcast of the last run's input shapes.
type qbinShapes struct {
	a, b, y tensor.Shape // nil until the first run
	same    bool         // a equals b: no broadcast
	sa, sb  []int        // broadcast strides of A and B
	idx     []int        // row index buffer
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
	xl, yl, err := qReadLayouts(info)
	if err != nil {
		return nil, err
	}
	if xl != yl {
		return nil, info.Errorf("x_channels_last and y_channels_last differ: %s keeps its inputs' layout", info.Node.Op)
	}
	k.last = xl
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
	if k.last && (a.Rank() != 4 || b.Rank() != 4 || !a.Shape[1:].Equal(b.Shape[1:])) {
		// The batch (outermost in both layouts) may broadcast.
		return c.Errorf("x_channels_last=1 needs A and B of rank 4 with the same non-batch dims, got %v and %v", a.Shape, b.Shape)
	}
	bc := &k.bc
	if bc.y == nil || !a.Shape.Equal(bc.a) || !b.Shape.Equal(bc.b) {
		shape, err := BroadcastShapes(a.Shape, b.Shape)
		if err != nil {
			return c.Errorf("%v", err)
		}
		*bc = qbinShapes{a: a.Shape.Clone(), b: b.Shape.Clone(), y: shape, same: a.Shape.Equal(b.Shape),
			sa: bstrides(a.Shape, shape), sb: bstrides(b.Shape, shape), idx: make([]int, len(shape))}
	}
	lo, hi, err := k.q.outRange(c, a.DType)
	if err != nil {
		return err
	}
	y, err := c.Output(0, a.DType, bc.y)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	ab, bb, yb := qBytes(a), qBytes(b), qBytes(y)
	if bc.same && !k.mul && q8.AddVectorized(k.q.tier) {
		// QLinearAdd in vector registers: the table's bits, about 3x faster.
		p, err := k.addParams(c, in, a.DType, lo, hi)
		if err != nil {
			return err
		}
		t := &k.task
		t.add, t.tier, t.ab, t.bb, t.yb = p, k.q.tier, ab, bb, yb
		t.workers = nnWorkers(c, len(yb)>>12+1, 2*float64(len(yb)))
		c.ParallelTask(t.workers, t)
		t.add, t.ab, t.bb, t.yb = nil, nil, nil, nil
		return nil
	}
	lut, f, err := k.table(c, in, a.DType, lo, hi, y.Len())
	if err != nil {
		return err
	}
	if bc.same {
		if lut != nil {
			// About four operations per element for the worker threshold.
			t := &k.task
			t.lut, t.ab, t.bb, t.yb = (*[1 << 16]uint8)(lut), ab, bb, yb
			t.workers = nnWorkers(c, len(yb)>>12+1, 4*float64(len(yb)))
			c.ParallelTask(t.workers, t)
			t.lut, t.ab, t.bb, t.yb = nil, nil, nil, nil
			return nil
		}
		for i := range yb {
			yb[i] = f(ab[i], bb[i])
		}
		return nil
	}
	qbinBroadcast(bc, ab, bb, yb, lut, f)
	return nil
}

// addParams returns QLinearAdd's constants for q8.AddBytes (the cached
// ones when the run's scales and zero points are the build-time
// constants): the same arithmetic as the table's qTable and qRound8.
func (k *qbinKernel) addParams(c *kernel.Ctx, in []*tensor.Tensor, dt tensor.DType, lo, hi int32) (*q8.AddParams, error) {
	same := k.constOK
	for j, i := range qbinParams {
		if opt(in, i) != k.consts[j] {
			same = false
		}
	}
	if same && k.addDT == dt && k.add.Lo == lo && k.add.Hi == hi {
		return &k.add, nil
	}
	sa, err := qScales(c, opt(in, 1), "A_scale", 1)
	if err != nil {
		return nil, err
	}
	sb, err := qScales(c, opt(in, 4), "B_scale", 1)
	if err != nil {
		return nil, err
	}
	sc, err := qScales(c, opt(in, 6), "C_scale", 1)
	if err != nil {
		return nil, err
	}
	za, err := qZero1(c, opt(in, 2), "A_zero_point", dt)
	if err != nil {
		return nil, err
	}
	zb, err := qZero1(c, opt(in, 5), "B_zero_point", dt)
	if err != nil {
		return nil, err
	}
	zc, err := qZero1(c, opt(in, 7), "C_zero_point", dt)
	if err != nil {
		return nil, err
	}
	k.add = q8.AddParams{Signed: dt == tensor.Int8, Za: za, Zb: zb, Zc: zc,
		Ra: float64(sa[0]) / float64(sc[0]), Rb: float64(sb[0]) / float64(sc[0]), Lo: lo, Hi: hi}
	k.addDT = tensor.Undefined
	if same {
		k.addDT = dt
	}
	return &k.add, nil
}

// table returns the 65536-entry table of the op for the run's scales and
// zero points (the cached one when they are the build-time constants), or
// nil and the per-element function when a table does not pay for n
// elements.
func (k *qbinKernel) table(c *kernel.Ctx, in []*tensor.Tensor, dt tensor.DType, lo, hi int32, n int) ([]uint8, func(x, w uint8) uint8, error) {
	same := k.constOK
	for j, i := range qbinParams {
		if opt(in, i) != k.consts[j] {
			same = false
		}
	}
	if same && k.lut != nil && k.lutDT == dt {
		return k.lut, nil, nil
	}
	sa, err := qScales(c, opt(in, 1), "A_scale", 1)
	if err != nil {
		return nil, nil, err
	}
	sb, err := qScales(c, opt(in, 4), "B_scale", 1)
	if err != nil {
		return nil, nil, err
	}
	sc, err := qScales(c, opt(in, 6), "C_scale", 1)
	if err != nil {
		return nil, nil, err
	}
	za, err := qZero1(c, opt(in, 2), "A_zero_point", dt)
	if err != nil {
		return nil, nil, err
	}
	zb, err := qZero1(c, opt(in, 5), "B_zero_point", dt)
	if err != nil {
		return nil, nil, err
	}
	zc, err := qZero1(c, opt(in, 7), "C_zero_point", dt)
	if err != nil {
		return nil, nil, err
	}
	signed := dt == tensor.Int8
	val := func(v uint8) int32 {
		if signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	var f func(x, w uint8) uint8
	if k.mul {
		rq, err := qRequant(c, sa[0], sb, sc[0], zc, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		f = func(x, w uint8) uint8 { return uint8(rq.One((val(x)-za)*(val(w)-zb), 0)) }
	} else {
		ta, tb := qTable(dt, za, sa[0], sc[0]), qTable(dt, zb, sb[0], sc[0])
		f = func(x, w uint8) uint8 { return uint8(qRound8(ta[x]+tb[w], zc, lo, hi)) }
	}
	// The table: cached for constant parameters, built per call when
	// the tensor is large enough to pay for it.
	if n < 1<<15 && !k.constOK {
		return nil, f, nil
	}
	lut := make([]uint8, 1<<16)
	for x := range 256 {
		for w := range 256 {
			lut[x<<8|w] = f(uint8(x), uint8(w))
		}
	}
	if same {
		k.lut, k.lutDT = lut, dt
	}
	return lut, f, nil
}

// qbinBroadcast computes the broadcast elements of y row by row, through
// the table lut when it is not nil, else through f.
func qbinBroadcast(bc *qbinShapes, ab, bb, yb []uint8, lut []uint8, f func(x, w uint8) uint8) {
	rank := len(bc.y)
	if rank == 0 {
		if lut != nil {
			yb[0] = lut[int(ab[0])<<8|int(bb[0])]
		} else {
			yb[0] = f(ab[0], bb[0])
		}
		return
	}
	inner := bc.y[rank-1]
	ia, ib := bc.sa[rank-1], bc.sb[rank-1]
	idx := bc.idx
	clear(idx)
	oa, ob := 0, 0
	for o := 0; o < len(yb); o += inner {
		row := yb[o : o+inner]
		if lut != nil {
			for j := range row {
				row[j] = lut[int(ab[oa+j*ia])<<8|int(bb[ob+j*ib])]
			}
		} else {
			for j := range row {
				row[j] = f(ab[oa+j*ia], bb[ob+j*ib])
			}
		}
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			oa += bc.sa[d]
			ob += bc.sb[d]
			if idx[d] < bc.y[d] {
				break
			}
			oa -= bc.sa[d] * bc.y[d]
			ob -= bc.sb[d] * bc.y[d]
			idx[d] = 0
		}
	}
}

// qunaryKernel implements com.microsoft QLinearLeakyRelu (attribute alpha,
// default 0.01) and QLinearSigmoid (X, X_scale, X_zero_point, Y_scale,
// Y_zero_point): a 256-entry table of saturate(round(f((x-zx)*sx)/sy) +
// zy) computed in float64, built once when the scales and zero points are
// constants of the model (a run then allocates nothing).
type qunaryKernel struct {
	q       *qCommon
	sigmoid bool
	alpha   float64
	consts  [4]*tensor.Tensor // inputs 1-4 at build time
	constOK bool
	tab     [256]uint8
	tabDT   tensor.DType // the type tab was built for (Undefined: none)
}

func buildQUnary(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	k := &qunaryKernel{q: q, sigmoid: info.Node.Op == "QLinearSigmoid", alpha: float64(info.Attrs().Float("alpha", 0.01)), constOK: true}
	for j := range k.consts {
		t, ok := qConstIn(info, j+1)
		k.consts[j] = t
		k.constOK = k.constOK && ok
	}
	return k, nil
}

func (k *qunaryKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := qInput(c, in, 0, "X")
	if err != nil {
		return err
	}
	same := k.constOK && k.tabDT == x.DType
	for j, t := range k.consts {
		if opt(in, j+1) != t {
			same = false
		}
	}
	if !same {
		k.tabDT = tensor.Undefined
		if err := k.table(c, in, x.DType); err != nil {
			return err
		}
		if k.constOK {
			k.tabDT = x.DType
		}
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	yb := qBytes(y)
	for i, v := range qBytes(x) {
		yb[i] = k.tab[v]
	}
	return nil
}

// table fills k.tab for inputs of type dt.
func (k *qunaryKernel) table(c *kernel.Ctx, in []*tensor.Tensor, dt tensor.DType) error {
	sx, err := qScales(c, opt(in, 1), "X_scale", 1)
	if err != nil {
		return err
	}
	sy, err := qScales(c, opt(in, 3), "Y_scale", 1)
	if err != nil {
		return err
	}
	zx, err := qZero1(c, opt(in, 2), "X_zero_point", dt)
	if err != nil {
		return err
	}
	zy, err := qZero1(c, opt(in, 4), "Y_zero_point", dt)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, dt)
	if err != nil {
		return err
	}
	for b := range 256 {
		v := int32(b)
		if dt == tensor.Int8 {
			v = int32(int8(uint8(b)))
		}
		r := float64(v-zx) * float64(sx[0])
		if k.sigmoid {
			r = 1 / (1 + math.Exp(-r))
		} else if r < 0 {
			r *= k.alpha
		}
		k.tab[b] = uint8(qRound8(r/float64(sy[0]), zy, lo, hi))
	}
	return nil
}

// qconcatKernel implements com.microsoft QLinearConcat (Y_scale,
// Y_zero_point, then X, X_scale, X_zero_point per input; attribute axis):
// each input is requantized to the output's scale through a 256-entry
// table (a copy when its scale and zero point equal the output's and no
// clamp narrows the range). The tables are built once when every scale
// and zero point is a constant of the model; a run at steady shapes then
// allocates nothing.
type qconcatKernel struct {
	q    *qCommon
	axis int64
	// consts holds the inputs at build time (nil for the X inputs and
	// omitted ones); constOK says every scale and zero point is constant.
	consts  []*tensor.Tensor
	constOK bool
	tabs    []qconcatTab // per input; valid when tabsOK
	tabsOK  bool
	tabsDT  tensor.DType // the data type tabs were built for
	shape   tensor.Shape // output shape buffer
}

// qconcatTab is the requantization table of one QLinearConcat input.
type qconcatTab struct {
	tab   [256]uint8
	ident bool // the table is the identity: copy
}

func buildQConcat(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	if !info.Attrs().Has("axis") {
		return nil, info.Errorf("QLinearConcat needs the axis attribute")
	}
	k := &qconcatKernel{q: q, axis: info.Attrs().Int("axis", 0), constOK: true, consts: make([]*tensor.Tensor, len(info.Node.Inputs))}
	for i := range info.Node.Inputs {
		if i >= 2 && (i-2)%3 == 0 {
			continue // an X input
		}
		t, ok := qConstIn(info, i)
		k.consts[i] = t
		k.constOK = k.constOK && ok
	}
	return k, nil
}

func (k *qconcatKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	if len(in) < 5 || (len(in)-2)%3 != 0 {
		return c.Errorf("QLinearConcat has %d inputs, want Y_scale, Y_zero_point and triples (X, X_scale, X_zero_point)", len(in))
	}
	zyT := opt(in, 1)
	if zyT == nil {
		return c.Errorf("missing input Y_zero_point")
	}
	dt := zyT.DType
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
	shape := append(k.shape[:0], first.Shape...)
	k.shape = shape
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
	if err := k.tables(c, in, dt, n); err != nil {
		return err
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
		t := &k.tabs[i]
		xb := qBytes(x)
		blk := x.Shape[ax] * inner
		for o := range outer {
			src := xb[o*blk : (o+1)*blk]
			dst := yb[o*rowOut+off : o*rowOut+off+blk]
			if t.ident {
				copy(dst, src)
				continue
			}
			for j, v := range src {
				dst[j] = t.tab[v]
			}
		}
		off += blk
	}
	return nil
}

// tables fills k.tabs for the run's n inputs of type dt (kept from an
// earlier run when every scale and zero point is the build-time
// constant).
func (k *qconcatKernel) tables(c *kernel.Ctx, in []*tensor.Tensor, dt tensor.DType, n int) error {
	same := k.constOK && len(in) == len(k.consts)
	for i := 0; same && i < len(in); i++ {
		if (i < 2 || (i-2)%3 != 0) && in[i] != k.consts[i] {
			same = false
		}
	}
	if same && k.tabsOK && k.tabsDT == dt {
		return nil
	}
	k.tabsOK = false
	sy, err := qScales(c, opt(in, 0), "Y_scale", 1)
	if err != nil {
		return err
	}
	zy, err := qZero1(c, opt(in, 1), "Y_zero_point", tensor.Undefined)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, dt)
	if err != nil {
		return err
	}
	if cap(k.tabs) < n {
		k.tabs = make([]qconcatTab, n)
	}
	k.tabs = k.tabs[:n]
	for i := range n {
		sx, err := qScales(c, opt(in, 3+3*i), "X_scale", 1)
		if err != nil {
			return err
		}
		zx, err := qZero1(c, opt(in, 4+3*i), "X_zero_point", dt)
		if err != nil {
			return err
		}
		t := &k.tabs[i]
		t.ident = sx[0] == sy[0] && zx == zy
		for b := range 256 {
			v := int32(b)
			if dt == tensor.Int8 {
				v = int32(int8(uint8(b)))
			}
			var q int32
			if sx[0] == sy[0] {
				q = min(max(v-zx+zy, lo), hi)
			} else {
				q = qRound8(float64(v-zx)*float64(sx[0])/float64(sy[0]), zy, lo, hi)
			}
			t.tab[b] = uint8(q)
			t.ident = t.ident && q == v
		}
	}
	k.tabsOK, k.tabsDT = same, dt
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
//
// Layouts: channels_last=1 (ONNX Runtime's attribute, any domain) says X
// is [N, spatial..., C] and so is Y ([N, 1, ..., 1, C] for the global
// pool). The goslim-domain twins take x_channels_last and y_channels_last
// instead (0 or 1, default 0, rank-4 input only): the physical layout of X
// and of Y. QLinearAveragePool needs both equal; QLinearGlobalAveragePool
// allows any pair, its [N, C, 1, 1] output holding the same bytes in both
// layouts ([N, 1, 1, C] with y_channels_last=1). channels_last and the
// x/y attributes cannot be combined.
//
// Channels-last inputs run on the int8 package's NHWC pools
// (q8.AvgPoolNHWC, q8.GlobalAvgPoolNHWC: whole runs of C channel bytes per
// output pixel, the same integer arithmetic as the NCHW loops here).
//
// With constant scales and zero points, a run at a steady input shape
// allocates nothing: the window, output shape and requantization are
// cached, and the parallel task lives in the kernel.
type qpoolKernel struct {
	q               *qCommon
	global          bool
	inLast, outLast bool // physical layouts of X and Y
	goslimLayout    bool // set by x_channels_last/y_channels_last (rank 4 only)
	win             nnWinAttrs
	includePad      bool
	consts          [4]*tensor.Tensor // inputs 1-4 at build time
	constOK         bool
	cache           qpoolCache
	task            qpoolTask
}

// qpoolCache is the resolution of the last run's input shape and type
// (and, when rqOK, of the constant scales and zero points).
type qpoolCache struct {
	x     tensor.Shape // physical input shape (nil: none yet)
	dt    tensor.DType
	y     tensor.Shape // physical output shape
	n, ch int
	size  int // global: pixels per image
	// 2-D view of an average pool's window (H = 1 for 1-D windows).
	H, W, KH, KW, SH, SW, PT, PL, PB, PR, OH, OW int
	rq                                           *q8.Requant // nil: empty global pool
	zx, zy, lo, hi                               int32
	rqOK                                         bool
}

// qpoolTask runs a pooling over the units (planes, images or output rows)
// split across workers.
type qpoolTask struct {
	k       *qpoolKernel
	x, y    *tensor.Tensor
	units   int
	workers int
	ps      q8.PoolShape // channels-last average pools
	sums    []int32      // channels-last: C words per worker
	errs    []error      // per worker
}

func buildQPool(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &qpoolKernel{q: q, global: info.Node.Op == "QLinearGlobalAveragePool", constOK: true}
	cl := a.Int("channels_last", 0)
	if cl != 0 && cl != 1 {
		return nil, info.Errorf("channels_last = %d, want 0 or 1", cl)
	}
	xl, yl, err := qReadLayouts(info)
	if err != nil {
		return nil, err
	}
	switch {
	case cl == 1 && (a.Has("x_channels_last") || a.Has("y_channels_last")):
		return nil, info.Errorf("channels_last cannot be combined with x_channels_last/y_channels_last")
	case cl == 1:
		k.inLast, k.outLast = true, true
	default:
		k.inLast, k.outLast, k.goslimLayout = xl, yl, xl || yl
	}
	for j := range k.consts {
		t, ok := qConstIn(info, j+1)
		k.consts[j] = t
		k.constOK = k.constOK && ok
	}
	if !k.global {
		if k.inLast != k.outLast {
			return nil, info.Errorf("x_channels_last and y_channels_last differ: QLinearAveragePool keeps its input's layout")
		}
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
	k.task.k = k
	return k, nil
}

func (k *qpoolKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := qInput(c, in, 0, "X")
	if err != nil {
		return err
	}
	same := k.constOK
	for j, t := range k.consts {
		if opt(in, j+1) != t {
			same = false
		}
	}
	cs := &k.cache
	if cs.x == nil || !x.Shape.Equal(cs.x) || x.DType != cs.dt || !same || !cs.rqOK {
		if err := k.resolve(c, in, x, same); err != nil {
			return err
		}
	}
	y, err := c.Output(0, x.DType, cs.y)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	if cs.rq == nil { // a global pool over no pixels
		yb := qBytes(y)
		for i := range yb {
			yb[i] = uint8(min(max(cs.zy, cs.lo), cs.hi))
		}
		return nil
	}
	t := &k.task
	var work float64
	switch {
	case k.global && k.inLast:
		t.units, work = cs.n, float64(x.Len())
	case k.global:
		t.units, work = cs.n*cs.ch, float64(x.Len())
	case k.inLast:
		t.units, work = cs.n*cs.OH, float64(y.Len())*float64(cs.KH*cs.KW)
	default:
		t.units, work = cs.n*cs.ch, float64(y.Len())*float64(cs.KH*cs.KW)
	}
	t.x, t.y = x, y
	t.workers = nnWorkers(c, t.units, work)
	if cap(t.errs) < t.workers {
		t.errs = make([]error, t.workers)
	}
	t.errs = t.errs[:t.workers]
	clear(t.errs)
	if k.inLast {
		t.sums = qScratch(c, t.workers*cs.ch)
		t.ps = q8.PoolShape{N: cs.n, C: cs.ch, H: cs.H, W: cs.W, KH: cs.KH, KW: cs.KW, SH: cs.SH, SW: cs.SW, DH: 1, DW: 1,
			PadT: cs.PT, PadL: cs.PL, PadB: cs.PB, PadR: cs.PR, OH: cs.OH, OW: cs.OW}
	}
	c.ParallelTask(t.workers, t)
	t.x, t.y, t.sums = nil, nil, nil
	for _, err := range t.errs {
		if err != nil {
			return c.Errorf("%v", err)
		}
	}
	return nil
}

// resolve checks X against the attributes and caches the output shape,
// the window and the requantization for X's shape and type. same says the
// scales and zero points are the build-time constants.
func (k *qpoolKernel) resolve(c *kernel.Ctx, in []*tensor.Tensor, x *tensor.Tensor, same bool) error {
	k.cache.x = nil
	sx, err := qScales(c, opt(in, 1), "x_scale", 1)
	if err != nil {
		return err
	}
	sy, err := qScales(c, opt(in, 3), "y_scale", 1)
	if err != nil {
		return err
	}
	zx, err := qZero1(c, opt(in, 2), "x_zero_point", x.DType)
	if err != nil {
		return err
	}
	zy, err := qZero1(c, opt(in, 4), "y_zero_point", x.DType)
	if err != nil {
		return err
	}
	lo, hi, err := k.q.outRange(c, x.DType)
	if err != nil {
		return err
	}
	r := x.Rank()
	if r < 3 {
		return c.Errorf("input X rank %d, want at least 3", r)
	}
	if k.goslimLayout && r != 4 {
		return c.Errorf("x_channels_last and y_channels_last need a rank-4 input, got X of shape %v", x.Shape)
	}
	cs := qpoolCache{dt: x.DType, n: x.Shape[0], zx: zx, zy: zy, lo: lo, hi: hi}
	spatial := x.Shape[2:]
	cs.ch = x.Shape[1]
	if k.inLast {
		spatial, cs.ch = x.Shape[1:r-1], x.Shape[r-1]
	}
	if k.global {
		cs.size = tensor.Shape(spatial).Size()
		cs.y = make(tensor.Shape, r)
		for i := range cs.y {
			cs.y[i] = 1
		}
		cs.y[0] = cs.n
		if k.outLast {
			cs.y[r-1] = cs.ch
		} else {
			cs.y[1] = cs.ch
		}
		if cs.size > 0 {
			if cs.rq, err = q8.NewRequant([]float64{float64(sx[0]) / (float64(sy[0]) * float64(cs.size))}, zy, lo, hi); err != nil {
				return c.Errorf("%v", err)
			}
		}
	} else {
		if r > 4 {
			return c.Errorf("QLinearAveragePool supports 1-D and 2-D windows, got input rank %d", r)
		}
		nd := r - 2
		if len(k.win.kernel) != nd {
			return c.Errorf("kernel_shape %v has %d values, want %d", k.win.kernel, len(k.win.kernel), nd)
		}
		win, err := k.win.resolve(c, append([]int(nil), spatial...), k.win.kernel)
		if err != nil {
			return err
		}
		cs.H, cs.W, cs.KH, cs.KW, cs.SH, cs.SW, cs.PT, cs.PL, cs.OH, cs.OW = 1, win.in[0], 1, win.kernel[0], 1, win.stride[0], 0, win.padB[0], 1, win.out[0]
		cs.PB, cs.PR = 0, win.padE[0]
		if nd == 2 {
			cs.H, cs.W, cs.KH, cs.KW, cs.SH, cs.SW = win.in[0], win.in[1], win.kernel[0], win.kernel[1], win.stride[0], win.stride[1]
			cs.PT, cs.PL, cs.PB, cs.PR, cs.OH, cs.OW = win.padB[0], win.padB[1], win.padE[0], win.padE[1], win.out[0], win.out[1]
		}
		if k.outLast {
			cs.y = append(tensor.Shape{cs.n}, win.out...)
			cs.y = append(cs.y, cs.ch)
		} else {
			cs.y = nnSpatialShape(cs.n, cs.ch, win.out)
		}
		reals := make([]float64, cs.KH*cs.KW+1)
		for n := 1; n < len(reals); n++ {
			reals[n] = float64(sx[0]) / (float64(sy[0]) * float64(n))
		}
		if cs.rq, err = q8.NewRequant(reals, zy, lo, hi); err != nil {
			return c.Errorf("%v", err)
		}
	}
	cs.x, cs.rqOK = x.Shape.Clone(), same
	k.cache = cs
	return nil
}

// Run pools the units of workers [lo, hi).
func (t *qpoolTask) Run(lo, hi int) {
	k, cs := t.k, &t.k.cache
	signed := t.x.DType == tensor.Int8
	for w := lo; w < hi; w++ {
		u0, u1 := w*t.units/t.workers, (w+1)*t.units/t.workers
		switch {
		case k.global && k.inLast:
			img, out := cs.size*cs.ch, cs.ch
			xb, yb := qBytes(t.x)[u0*img:u1*img], qBytes(t.y)[u0*out:u1*out]
			t.errs[w] = q8.GlobalAvgPoolNHWC(k.q.tier, xb, yb, u1-u0, cs.size, cs.ch, signed, cs.zx, cs.rq, t.sums[w*cs.ch:(w+1)*cs.ch])
			continue
		case k.inLast:
			t.errs[w] = q8.AvgPoolNHWC(k.q.tier, &t.ps, qBytes(t.x), qBytes(t.y), signed, cs.zx, k.includePad, cs.rq, u0, u1, t.sums[w*cs.ch:(w+1)*cs.ch])
			continue
		}
		if signed {
			qpoolRange(t.k, t.x.I8(), t.y.I8(), u0, u1)
		} else {
			qpoolRange(t.k, t.x.U8(), t.y.U8(), u0, u1)
		}
	}
}

// qpoolRange pools units [u0, u1) of x into y.
func qpoolRange[T int8 | uint8](k *qpoolKernel, x, y []T, u0, u1 int) {
	cs := &k.cache
	switch {
	case k.global:
		corr := int32(cs.size) * cs.zx
		for p := u0; p < u1; p++ {
			var s int32
			for _, v := range x[p*cs.size : (p+1)*cs.size] {
				s += int32(v)
			}
			y[p] = T(cs.rq.One(s-corr, 0))
		}
	default:
		qpoolAvgNCHW(cs, k.includePad, x, y, u0, u1)
	}
}

// qpoolWindow returns the valid input range [h0, h1) x [w0, w1) of output
// (oh, ow) and its tap count (taps inside the padded input with
// count_include_pad).
func qpoolWindow(cs *qpoolCache, includePad bool, oh, ow int) (h0, h1, w0, w1, cnt int) {
	h0 = oh*cs.SH - cs.PT
	h1 = min(h0+cs.KH, cs.H)
	hc := min(h0+cs.KH, cs.H+cs.PB) - max(h0, -cs.PT)
	h0 = max(h0, 0)
	w0 = ow*cs.SW - cs.PL
	w1 = min(w0+cs.KW, cs.W)
	wc := min(w0+cs.KW, cs.W+cs.PR) - max(w0, -cs.PL)
	w0 = max(w0, 0)
	cnt = max(h1-h0, 0) * max(w1-w0, 0)
	if includePad {
		cnt = hc * wc
	}
	return h0, h1, w0, w1, cnt
}

// qpoolAvgNCHW averages planes [u0, u1).
func qpoolAvgNCHW[T int8 | uint8](cs *qpoolCache, includePad bool, x, y []T, u0, u1 int) {
	H, W, OH, OW := cs.H, cs.W, cs.OH, cs.OW
	for pl := u0; pl < u1; pl++ {
		src := x[pl*H*W : (pl+1)*H*W]
		dst := y[pl*OH*OW : (pl+1)*OH*OW]
		for oh := range OH {
			for ow := range OW {
				h0, h1, w0, w1, cnt := qpoolWindow(cs, includePad, oh, ow)
				var sum int32
				for ih := h0; ih < h1; ih++ {
					for _, v := range src[ih*W+w0 : ih*W+w1] {
						sum += int32(v)
					}
				}
				sum -= int32(max(h1-h0, 0)*max(w1-w0, 0)) * cs.zx
				if cnt <= 0 {
					dst[oh*OW+ow] = T(min(max(cs.zy, cs.lo), cs.hi))
					continue
				}
				dst[oh*OW+ow] = T(cs.rq.One(sum, cnt))
			}
		}
	}
}
