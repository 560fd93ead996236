package ops

import (
	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// qmmKernel implements QLinearMatMul (a, a_scale, a_zero_point, b,
// b_scale, b_zero_point, y_scale, y_zero_point), MatMulInteger (A, B,
// a_zero_point, b_zero_point; int32 output) and com.microsoft QGemm (A,
// a_scale, a_zero_point, B, b_scale, b_zero_point, C, y_scale,
// y_zero_point; attributes alpha, transA, transB):
//
//	acc[m, n] = sum_k (A[m, k] - za[m]) * (B[k, n] - zb[n])  (+ C[m, n] for QGemm)
//	y = saturate(round(acc * sa[m]*sb[n]/sy) + zy)           (QGemm: alpha*sa*sb[n]/sy)
//
// MatMulInteger and QLinearMatMul broadcast batch dimensions like MatMul.
// A's zero point (and QLinearMatMul's a_scale) may be per row, B's per
// column. QGemm without y_scale outputs float32 alpha*sa*sb[n]*acc,
// computed in the GEMM's epilogue (clamped to act_min/act_max there).
//
// The goslim-domain QGemm and QLinearMatMul take an int attribute
// y_float (default 0): with 1, the output is float32 (y - y_zero_point) *
// y_scale, the bits of the 8-bit output followed by DequantizeLinear,
// computed in the epilogue (a QuantizeLinear -> DequantizeLinear pair at
// a graph output fused into the product).
//
// Steady state: with constant B, scales and zero points (a lowered QDQ
// graph), B is packed and the requantization built once, the
// accumulators, the zero-point and bias corrections live in the node's
// scratch, and the GEMM and the epilogue run as Tasks kept in the kernel
// (kernel.Ctx.ParallelTask): a run allocates nothing.
type qmmKernel struct {
	q              *qCommon
	op             string
	transA, transB bool
	alpha          float32
	yFloat         bool // y_float: dequantize the 8-bit output in the epilogue
	// input indices (-1: none)
	aI, asI, azI, bI, bsI, bzI, cI, ysI, yzI int
	// constant B (and zero point) packed at build time, per batch of B.
	bConst, bzC *tensor.Tensor
	packed      []*qPackedB
	// adds caches, per packed B, the per-column additions (bias minus
	// za*colsum(B)) for the zero point and C they were computed with.
	adds []qmmAdd
	// constParams: the scales and zero points are constant, so the
	// derived parameters are computed on the first run and kept in par.
	constParams bool
	cConst      bool // QGemm's C is constant (or omitted)
	par         qmmParams
	// per-run state, kept here so that passing them as tasks allocates
	// nothing (runs of one kernel never overlap).
	gemm q8.Task
	call qmmCall
}

// qmmAdd is a cached per-column addition vector (see columnAdd).
type qmmAdd struct {
	za  int32
	cm  *tensor.Tensor
	add []int32
}

// qmmParams are the per-run parameters derived from the scale and
// zero-point inputs.
type qmmParams struct {
	valid  bool
	adt    tensor.DType      // A's type, batches, m and n: the shape they were derived for
	aBatch int               //
	m, n   int               //
	ins    [6]*tensor.Tensor // a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point
	za     []int32           // A's zero points in the uint8 domain: 1, M or batch*M values
	odt    tensor.DType      // output type
	q8dt   tensor.DType      // the 8-bit type requantized to (y_float: before dequantization)
	yScale float32           // y_float: y_scale and y_zero_point
	yZero  int32             //
	rq     []*q8.Requant     // 8-bit output: 1 or M (per-row a_scale)
	fscale []float32         // float output: 1 or N values
}

// qPackedB is a packed int8 right operand with its per-column zero points
// (int8 domain; nil when all are 0).
type qPackedB struct {
	p  *q8.PackedB
	zb []int32
}

func buildQMatMul(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	k := &qmmKernel{q: q, op: info.Node.Op, cI: -1, asI: -1, bsI: -1, ysI: -1, yzI: -1, alpha: 1}
	k.gemm.Kernel = q8.For(q.tier)
	switch k.op {
	case "MatMulInteger":
		k.aI, k.bI, k.azI, k.bzI = 0, 1, 2, 3
	case "QLinearMatMul":
		k.aI, k.asI, k.azI, k.bI, k.bsI, k.bzI, k.ysI, k.yzI = 0, 1, 2, 3, 4, 5, 6, 7
	case "QGemm":
		k.aI, k.asI, k.azI, k.bI, k.bsI, k.bzI, k.cI, k.ysI, k.yzI = 0, 1, 2, 3, 4, 5, 6, 7, 8
		a := info.Attrs()
		k.transA, k.transB = a.Int("transA", 0) != 0, a.Int("transB", 0) != 0
		k.alpha = a.Float("alpha", 1)
	}
	if info.Node.Domain == "goslim" {
		switch v := info.Attrs().Int("y_float", 0); {
		case v == 1 && k.op != "MatMulInteger":
			k.yFloat = true
		case v != 0:
			return nil, info.Errorf("y_float = %d: want 0, or 1 on QGemm or QLinearMatMul", v)
		}
	}
	if k.cI >= 0 {
		_, k.cConst = qConstIn(info, k.cI)
	}
	k.constParams = true
	for _, i := range k.paramInputs() {
		if i < 0 {
			continue
		}
		if _, ok := qConstIn(info, i); !ok {
			k.constParams = false
		}
	}
	b, okB := qConstIn(info, k.bI)
	zb, okZ := qConstIn(info, k.bzI)
	if okB && okZ && b != nil && b.Rank() >= 1 && qIs8(b.DType) && b.Check() == nil {
		kk, n := qmmBDims(b.Shape, k.transB)
		nb := 1
		if b.Rank() > 2 {
			nb = tensor.Shape(b.Shape[:b.Rank()-2]).Size()
		}
		if kk > 0 && n > 0 && (zb == nil || zb.Len() == 1 || zb.Len() == n) {
			bb := qBytes(b)
			for i := range nb {
				p, err := qPackB(bb[i*kk*n:(i+1)*kk*n], b.DType == tensor.Uint8, zb, kk, n, k.transB)
				if err != nil {
					return nil, info.Errorf("%v", err)
				}
				k.packed = append(k.packed, p)
			}
			k.bConst, k.bzC = b, zb
			k.adds = make([]qmmAdd, len(k.packed))
		}
	}
	return k, nil
}

// paramInputs returns the indices of the scale and zero-point inputs
// (-1: the op has none), in qmmParams.ins order.
func (k *qmmKernel) paramInputs() [6]int {
	return [6]int{k.asI, k.azI, k.bsI, k.bzI, k.ysI, k.yzI}
}

// qmmBDims returns the K and N of a B of shape s (its last two dims, or
// a vector), transposed when transB.
func qmmBDims(s tensor.Shape, transB bool) (int, int) {
	if len(s) == 1 {
		return s[0], 1
	}
	r, c := s[len(s)-2], s[len(s)-1]
	if transB {
		return c, r
	}
	return r, c
}

// qPackB packs one K x N matrix b (row-major, or N x K when trans; uint8
// values when unsigned, shifted to int8 by -128) with zero point zb
// (scalar or per column, of b's type).
func qPackB(b []uint8, unsigned bool, zbT *tensor.Tensor, kk, n int, trans bool) (*qPackedB, error) {
	s := make([]int8, kk*n)
	var flip uint8
	if unsigned {
		flip = 0x80
	}
	for i := range kk {
		for j := range n {
			v := b[i*n+j]
			if trans {
				v = b[j*kk+i]
			}
			s[i*n+j] = int8(v ^ flip)
		}
	}
	p := &qPackedB{p: q8.PackB(s, kk, n)}
	var zv []int64
	if zbT != nil {
		var err error
		if zv, err = zbT.Int64s(); err != nil {
			return nil, err
		}
	}
	shift := int64(0)
	if unsigned {
		shift = 128
	}
	zb := make([]int32, n)
	nonzero := false
	for j := range zb {
		var z int64
		switch len(zv) {
		case 0:
		case 1:
			z = zv[0]
		default:
			z = zv[j]
		}
		zb[j] = int32(z - shift)
		nonzero = nonzero || zb[j] != 0
	}
	if nonzero {
		p.zb = zb
	}
	return p, nil
}

// qmmCall is the epilogue of one batch of a product: it turns rows of
// int32 accumulators into the output, split by rows across threads
// (kernel.Task).
type qmmCall struct {
	n, kk    int
	am       []uint8 // A as the GEMM read it (uint8, M x K row-major)
	za       []int32 // uint8 domain; 1 or M values
	pb       *qPackedB
	cm       []int32 // QGemm C (nil: none), strides crs, ccs
	crs, ccs int
	acc      []int32 // M x N accumulators
	add      []int32 // per-column additions shared by all rows (nil: per-row corrections in acc)
	yI32     []int32
	y8       []uint8
	yF32     []float32
	yDeq     []float32 // y_float: y8 (scratch) dequantized here
	dqSigned bool      // y_float: y8 holds int8 values
	dqScale  float32
	dqZero   int32
	rq       []*q8.Requant // 1 or M (per-row a_scale)
	fscale   []float32     // float output: 1 or N values
	tier     kernel.Tier
	lo, hi   int32 // int32/float clamp
}

// Run writes output rows [r0, r1); it implements kernel.Task.
func (q *qmmCall) Run(r0, r1 int) {
	n, kk := q.n, q.kk
	if q.add == nil {
		// Per-row corrections (per-row zero points of A, zero points of
		// B, a 2-D C) go into the accumulators.
		var cs []int32
		if kk > 0 {
			cs = q.pb.p.ColSums()
		}
		zb := q.pb.zb
		for r := r0; r < r1; r++ {
			za := q.za[0]
			if len(q.za) > 1 {
				za = q.za[r]
			}
			var rs int32
			if zb != nil {
				for _, v := range q.am[r*kk : (r+1)*kk] {
					rs += int32(v)
				}
			}
			row := q.acc[r*n : (r+1)*n]
			for j := range row {
				v := row[j]
				if cs != nil {
					v -= za * cs[j]
				}
				if zb != nil {
					v += (int32(kk)*za - rs) * zb[j]
				}
				if q.cm != nil {
					v += q.cm[r*q.crs+j*q.ccs]
				}
				row[j] = v
			}
		}
	}
	acc := q.acc[r0*n : r1*n]
	switch {
	case q.yI32 != nil:
		dst := q.yI32[r0*n : r1*n]
		for i, v := range acc {
			if q.add != nil {
				v += q.add[i%n]
			}
			dst[i] = min(max(v, q.lo), q.hi)
		}
	case q.yF32 != nil:
		flo, fhi := float32(q.lo), float32(q.hi)
		clamp := q.lo != -1<<31 || q.hi != 1<<31-1
		for r := range r1 - r0 {
			dst, row := q.yF32[(r0+r)*n:(r0+r+1)*n], acc[r*n:(r+1)*n]
			s := q.fscale[0]
			for j, v := range row {
				if q.add != nil {
					v += q.add[j]
				}
				if len(q.fscale) > 1 {
					s = q.fscale[j]
				}
				f := float32(v) * s
				if clamp {
					f = min(max(f, flo), fhi)
				}
				dst[j] = f
			}
		}
	case len(q.rq) == 1:
		q.rq[0].RowsBytes(q.tier, q.y8[r0*n:r1*n], acc, r1-r0, n, 0, q.add)
	default:
		for r := r0; r < r1; r++ {
			q.rq[r].ColsBytes(q.tier, q.y8[r*n:(r+1)*n], q.acc[r*n:(r+1)*n], 0, q.add)
		}
	}
	if q.yDeq != nil {
		// DequantizeLinear's arithmetic (and kernel), so the bits equal
		// the unfused pair's.
		src, dst := q.y8[r0*n:r1*n], q.yDeq[r0*n:r1*n]
		if !q8.Dequantize(q.tier, dst, src, q.dqSigned, q.dqZero, q.dqScale) {
			for i, v := range src {
				x := int32(v)
				if q.dqSigned {
					x = int32(int8(v))
				}
				dst[i] = float32(int64(x)-int64(q.dqZero)) * q.dqScale
			}
		}
	}
}

// params returns the parameters derived from the scale and zero-point
// inputs for A of type adt (aBatch matrices of m rows) and n columns:
// the cached ones when the inputs are constant and the same as last run.
func (k *qmmKernel) params(c *kernel.Ctx, in []*tensor.Tensor, adt tensor.DType, aBatch, m, n int) (*qmmParams, error) {
	var ins [6]*tensor.Tensor
	for i, j := range k.paramInputs() {
		if j >= 0 {
			ins[i] = opt(in, j)
		}
	}
	if p := &k.par; p.valid && p.adt == adt && p.aBatch == aBatch && p.m == m && p.n == n && p.ins == ins {
		return p, nil
	}
	p := qmmParams{adt: adt, aBatch: aBatch, m: m, n: n, ins: ins}
	zaT, zbT := ins[1], ins[3]
	var err error
	if zaT != nil && zaT.Len() > 1 && zaT.Len() == aBatch*m && k.op == "MatMulInteger" {
		// per row and per batch of A ([..., M, 1])
		if p.za, err = qZeros(c, zaT, "a_zero_point", zaT.Len(), adt); err != nil {
			return nil, err
		}
	} else if p.za, err = qZeros(c, zaT, "a_zero_point", m, adt); err != nil {
		return nil, err
	}
	if k.op == "QGemm" && len(p.za) > 1 {
		return nil, c.Errorf("QGemm a_zero_point must be a scalar")
	}
	if adt == tensor.Int8 {
		for i := range p.za {
			p.za[i] += 128
		}
	}
	if zbT != nil && zbT.Len() != 1 && zbT.Len() != n {
		return nil, c.Errorf("b_zero_point has shape %v, want a scalar or %d values", zbT.Shape, n)
	}
	p.odt = tensor.Int32
	if k.op != "MatMulInteger" {
		nsa := m
		if k.op == "QGemm" {
			nsa = 1
		}
		sa, err := qScales(c, ins[0], "a_scale", nsa)
		if err != nil {
			return nil, err
		}
		sb, err := qScales(c, ins[2], "b_scale", n)
		if err != nil {
			return nil, err
		}
		if ins[4] == nil && k.op == "QGemm" {
			p.odt = tensor.Float32
			p.fscale = make([]float32, len(sb))
			for j, s := range sb {
				p.fscale[j] = k.alpha * sa[0] * s
			}
		} else {
			sy, err := qScales(c, ins[4], "y_scale", 1)
			if err != nil {
				return nil, err
			}
			zyT := ins[5]
			p.odt = tensor.Uint8
			if zyT != nil {
				p.odt = zyT.DType
			} else if k.op == "QGemm" {
				p.odt = adt
			}
			zy, err := qZeros(c, zyT, "y_zero_point", 1, tensor.Undefined)
			if err != nil {
				return nil, err
			}
			if !qIs8(p.odt) {
				return nil, c.Errorf("output type %v is not supported (want uint8 or int8)", p.odt)
			}
			lo, hi, err := k.q.outRange(c, p.odt)
			if err != nil {
				return nil, err
			}
			p.rq = make([]*q8.Requant, len(sa))
			for i, s := range sa {
				if p.rq[i], err = qRequant(c, s*k.alpha, sb, sy[0], zy[0], lo, hi); err != nil {
					return nil, err
				}
			}
			p.q8dt = p.odt
			if k.yFloat {
				p.odt, p.yScale, p.yZero = tensor.Float32, sy[0], zy[0]
			}
		}
	}
	p.valid = k.constParams
	k.par = p
	return &k.par, nil
}

// qmmMinParallel is the product size (m*n*k) below which one thread runs:
// handing work to another thread costs several microseconds (far more on
// a busy machine), about what a 4 M multiply-add product takes.
const qmmMinParallel = 1 << 22

func (k *qmmKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, err := qInput(c, in, k.aI, "A")
	if err != nil {
		return err
	}
	b, err := qInput(c, in, k.bI, "B")
	if err != nil {
		return err
	}
	var p mmPlan
	var oshape tensor.Shape
	var oshape2 [2]int
	if k.op == "QGemm" {
		if a.Rank() != 2 || b.Rank() != 2 {
			return c.Errorf("QGemm inputs must be matrices, got %v and %v", a.Shape, b.Shape)
		}
		p.m, p.k = a.Shape[0], a.Shape[1]
		if k.transA {
			p.m, p.k = p.k, p.m
		}
		var kb int
		kb, p.n = qmmBDims(b.Shape, k.transB)
		if kb != p.k {
			return c.Errorf("QGemm inner dimensions differ: A %v (transA %v), B %v (transB %v)", a.Shape, k.transA, b.Shape, k.transB)
		}
		p.batch = 1
		oshape2 = [2]int{p.m, p.n}
		oshape = oshape2[:]
	} else if a.Rank() == 2 && b.Rank() == 2 {
		// Plain matrices (the lowered MatMul): no batch, no allocation.
		p.m, p.k, p.n, p.batch = a.Shape[0], a.Shape[1], b.Shape[1], 1
		if b.Shape[0] != p.k {
			return c.Errorf("MatMul inner dimensions differ: %v x %v", a.Shape, b.Shape)
		}
		oshape2 = [2]int{p.m, p.n}
		oshape = oshape2[:]
	} else if p, oshape, err = mmResolve(c, a.Shape, b.Shape); err != nil {
		return err
	}
	aBatch := 1
	if a.Rank() > 2 {
		aBatch = tensor.Shape(a.Shape[:a.Rank()-2]).Size()
	}
	par, err := k.params(c, in, a.DType, aBatch, p.m, p.n)
	if err != nil {
		return err
	}
	zbT := opt(in, k.bzI)
	if zbT != nil && zbT.DType != b.DType {
		return c.Errorf("b_zero_point has type %v, want %v", zbT.DType, b.DType)
	}
	call := &k.call
	*call = qmmCall{n: p.n, kk: p.k, tier: k.q.tier, lo: k.q.lo, hi: k.q.hi, rq: par.rq, fscale: par.fscale}
	var cmT *tensor.Tensor
	if k.op == "QGemm" {
		if cm := opt(in, k.cI); cm != nil {
			cmT = cm
			if cm.DType != tensor.Int32 {
				return c.Errorf("QGemm C has type %v, want int32", cm.DType)
			}
			cs := cm.Shape
			ok := len(cs) <= 2
			if len(cs) == 2 {
				ok = (cs[0] == 1 || cs[0] == p.m) && (cs[1] == 1 || cs[1] == p.n)
				if cs[0] != 1 {
					call.crs = cs[1]
				}
				if cs[1] != 1 {
					call.ccs = 1
				}
			} else if len(cs) == 1 {
				ok = cs[0] == 1 || cs[0] == p.n
				if cs[0] != 1 {
					call.ccs = 1
				}
			}
			if !ok {
				return c.Errorf("QGemm C shape %v does not broadcast to [%d %d]", cs, p.m, p.n)
			}
			call.cm = cm.I32()
		}
	}
	y, err := c.Output(0, par.odt, oshape)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	// Scratch: A converted to uint8 rows (int8 A or transA), the
	// accumulators and the per-column additions.
	needA := a.DType == tensor.Int8 || k.transA
	abw := 0
	if needA {
		abw = (p.m*p.k + 3) / 4
	}
	deq := k.yFloat && par.rq != nil // y_float with y_scale: 8-bit scratch, dequantized
	ybw := 0
	if deq {
		ybw = (p.m*p.n + 3) / 4
	}
	ws := qScratch(c, abw+p.m*p.n+p.n+ybw)
	call.acc = ws[abw : abw+p.m*p.n]
	add := ws[abw+p.m*p.n : abw+p.m*p.n+p.n]
	if deq {
		call.dqSigned, call.dqScale, call.dqZero = par.q8dt == tensor.Int8, par.yScale, par.yZero
	}
	threads := 1
	if p.m*p.n*max(p.k, 1) >= qmmMinParallel {
		threads = c.Threads
	}
	ab, bb := qBytes(a), qBytes(b)
	bIsConst := b == k.bConst && zbT == k.bzC && k.packed != nil
	var flip uint8
	if a.DType == tensor.Int8 {
		flip = 0x80
	}
	for i := range p.batch {
		oa, ob := p.offsets(i)
		am := ab[oa : oa+p.m*p.k]
		if needA {
			buf := bytesOfI32(ws[:abw])[:p.m*p.k]
			if k.transA {
				for r := range p.m {
					for j := range p.k {
						buf[r*p.k+j] = am[j*p.m+r] ^ flip
					}
				}
			} else {
				for j, v := range am {
					buf[j] = v ^ flip
				}
			}
			am = buf
		}
		call.am = am
		if len(par.za) > p.m {
			ai := oa / max(p.m*p.k, 1)
			call.za = par.za[ai*p.m : (ai+1)*p.m]
		} else {
			call.za = par.za
		}
		var cached *qmmAdd
		if p.k > 0 {
			if bIsConst {
				call.pb = k.packed[ob/(p.k*p.n)]
				cached = &k.adds[ob/(p.k*p.n)]
			} else if call.pb, err = qPackB(bb[ob:ob+p.k*p.n], b.DType == tensor.Uint8, zbT, p.k, p.n, k.transB); err != nil {
				return c.Errorf("b_zero_point: %v", err)
			}
			k.gemm.Op = q8.GemmOp{M: p.m, A: am, B: call.pb.p, C: call.acc}
			if threads > 1 {
				c.ParallelTask(k.gemm.Split(threads), &k.gemm)
			} else {
				k.gemm.Run(0, k.gemm.Split(1))
			}
		} else {
			call.pb = &qPackedB{}
			clear(call.acc)
		}
		switch {
		case cached != nil && cached.add != nil && cached.za == call.za[0] && cached.cm == cmT && len(call.za) == 1:
			// Constant B and C, the same zero point as last run.
			call.add = cached.add
		case cached != nil && k.constParams && (cmT == nil || k.cConst):
			// Computed once for constant operands, then reused.
			if call.add = k.columnAdd(call, make([]int32, p.n)); call.add != nil {
				*cached = qmmAdd{za: call.za[0], cm: cmT, add: call.add}
			}
		default:
			call.add = k.columnAdd(call, add)
		}
		o := i * p.m * p.n
		switch yd := y.Data.(type) {
		case []int32:
			call.yI32 = yd[o : o+p.m*p.n]
		case []float32:
			if deq {
				call.yDeq = yd[o : o+p.m*p.n]
				call.y8 = bytesOfI32(ws[abw+p.m*p.n+p.n:])[:p.m*p.n]
			} else {
				call.yF32 = yd[o : o+p.m*p.n]
			}
		default:
			call.y8 = qBytes(y)[o : o+p.m*p.n]
		}
		if threads > 1 && p.m > 1 {
			c.ParallelTask(p.m, call)
		} else {
			call.Run(0, p.m)
		}
	}
	return nil
}

// columnAdd fills add with the corrections every row shares — the bias
// C (a vector) minus za*colsum(B) — and returns it, or returns nil when
// they differ by row (per-row zero points of A, zero points of B, a
// 2-D C: qmmCall.Run adds them to the accumulators).
func (k *qmmKernel) columnAdd(call *qmmCall, add []int32) []int32 {
	if len(call.za) > 1 || call.pb.zb != nil || (call.cm != nil && call.crs != 0) {
		return nil
	}
	za := call.za[0]
	clear(add)
	if call.kk > 0 && za != 0 {
		for j, s := range call.pb.p.ColSums() {
			add[j] = -za * s
		}
	}
	if call.cm != nil {
		for j := range add {
			add[j] += call.cm[j*call.ccs]
		}
	}
	return add
}
