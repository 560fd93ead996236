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
// column. QGemm without y_scale outputs float32 alpha*sa*sb[n]*acc.
type qmmKernel struct {
	q              *qCommon
	op             string
	transA, transB bool
	alpha          float32
	// input indices (-1: none)
	aI, asI, azI, bI, bsI, bzI, cI, ysI, yzI int
	// constant B (and zero point) packed at build time, per batch of B.
	bConst, bzC *tensor.Tensor
	packed      []*qPackedB
}

// qPackedB is a packed int8 right operand with its per-column zero points
// (int8 domain; nil when all are 0).
type qPackedB struct {
	p  *q8.PackedB
	zb []int32
}

func buildQMatMul(info *kernel.Info, q *qCommon) (kernel.Kernel, error) {
	k := &qmmKernel{q: q, op: info.Node.Op, cI: -1, asI: -1, bsI: -1, ysI: -1, yzI: -1, alpha: 1}
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
				p, err := qPackB(nil, bb[i*kk*n:(i+1)*kk*n], b.DType == tensor.Uint8, zb, kk, n, k.transB)
				if err != nil {
					return nil, info.Errorf("%v", err)
				}
				k.packed = append(k.packed, p)
			}
			k.bConst, k.bzC = b, zb
		}
	}
	return k, nil
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
func qPackB(c *kernel.Ctx, b []uint8, unsigned bool, zbT *tensor.Tensor, kk, n int, trans bool) (*qPackedB, error) {
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

// qmmCall is one batch of a product, split by rows across threads.
type qmmCall struct {
	m, n, kk int
	a        []uint8 // M x K (or K x M when transA), as stored
	flip     uint8   // 0x80 for int8 A
	transA   bool
	za       []int32 // uint8 domain; 1 or M values
	pb       *qPackedB
	cm       []int32 // QGemm C (nil: none), strides crs, ccs
	crs, ccs int
	yI32     []int32
	y8       []uint8
	yF32     []float32
	rq       []*q8.Requant // 1 or M (per-row a_scale)
	fscale   []float32     // float output: 1 or N values
	ws       []int32
	per      int // scratch words per thread
	threads  int
	tier     kernel.Tier
	lo, hi   int32 // int32/float clamp
}

func (q *qmmCall) run(lo, hi int) {
	for t := lo; t < hi; t++ {
		q.rows(t*q.m/q.threads, (t+1)*q.m/q.threads, q.ws[t*q.per:(t+1)*q.per])
	}
}

// rows computes output rows [r0, r1).
func (q *qmmCall) rows(r0, r1 int, ws []int32) {
	rows := r1 - r0
	if rows <= 0 {
		return
	}
	m, n, kk := q.m, q.n, q.kk
	abw := (rows*kk + 3) / 4
	ab := bytesOfI32(ws[:abw])[:rows*kk]
	acc := ws[abw : abw+rows*n]
	rs := ws[abw+rows*n : abw+rows*n+rows]
	var am []uint8
	switch {
	case q.transA:
		for r := range rows {
			for i := range kk {
				ab[r*kk+i] = q.a[i*m+r0+r] ^ q.flip
			}
		}
		am = ab
	case q.flip != 0:
		for i, v := range q.a[r0*kk : r1*kk] {
			ab[i] = v ^ q.flip
		}
		am = ab
	default:
		am = q.a[r0*kk : r1*kk]
	}
	if kk == 0 {
		clear(acc)
	} else {
		q8.Gemm(q.tier, acc, am, rows, q.pb.p)
	}
	zb := q.pb.zb
	if zb != nil {
		q8.RowSums(am, rows, kk, rs)
	}
	var cs []int32
	if kk > 0 {
		cs = q.pb.p.ColSums()
	}
	for r := range rows {
		za := q.za[0]
		if len(q.za) > 1 {
			za = q.za[r0+r]
		}
		row := acc[r*n : (r+1)*n]
		for j := range row {
			v := row[j]
			if cs != nil {
				v -= za * cs[j]
			}
			if zb != nil {
				v += (int32(kk)*za - rs[r]) * zb[j]
			}
			if q.cm != nil {
				v += q.cm[(r0+r)*q.crs+j*q.ccs]
			}
			row[j] = v
		}
		o := (r0 + r) * n
		switch {
		case q.yI32 != nil:
			dst := q.yI32[o : o+n]
			for j, v := range row {
				dst[j] = min(max(v, q.lo), q.hi)
			}
		case q.yF32 != nil:
			dst := q.yF32[o : o+n]
			for j, v := range row {
				s := q.fscale[0]
				if len(q.fscale) > 1 {
					s = q.fscale[j]
				}
				dst[j] = float32(v) * s
			}
		default:
			rq := q.rq[0]
			if len(q.rq) > 1 {
				rq = q.rq[r0+r]
			}
			rq.ColsBytes(q.tier, q.y8[o:o+n], row, 0, nil)
		}
	}
}

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
		oshape = tensor.Shape{p.m, p.n}
	} else if p, oshape, err = mmResolve(c, a.Shape, b.Shape); err != nil {
		return err
	}
	// Zero points.
	aBatch := 1
	if a.Rank() > 2 {
		aBatch = tensor.Shape(a.Shape[:a.Rank()-2]).Size()
	}
	zaT, zbT := opt(in, k.azI), opt(in, k.bzI)
	var za []int32
	if zaT != nil && zaT.Len() > 1 && zaT.Len() == aBatch*p.m && k.op == "MatMulInteger" {
		// per row and per batch of A ([..., M, 1])
		if za, err = qZeros(c, zaT, "a_zero_point", zaT.Len(), a.DType); err != nil {
			return err
		}
	} else if za, err = qZeros(c, zaT, "a_zero_point", p.m, a.DType); err != nil {
		return err
	}
	if k.op == "QGemm" && len(za) > 1 {
		return c.Errorf("QGemm a_zero_point must be a scalar")
	}
	if zbT != nil {
		if zbT.DType != b.DType {
			return c.Errorf("b_zero_point has type %v, want %v", zbT.DType, b.DType)
		}
		if zbT.Len() != 1 && zbT.Len() != p.n {
			return c.Errorf("b_zero_point has shape %v, want a scalar or %d values", zbT.Shape, p.n)
		}
	}
	if a.DType == tensor.Int8 {
		za2 := make([]int32, len(za))
		for i, v := range za {
			za2[i] = v + 128
		}
		za = za2
	}
	// Output type and scaling.
	call := qmmCall{m: p.m, n: p.n, kk: p.k, transA: k.transA, tier: k.q.tier, lo: k.q.lo, hi: k.q.hi}
	if a.DType == tensor.Int8 {
		call.flip = 0x80
	}
	odt := tensor.Int32
	var sa, sb, sy []float32
	var zy []int32
	if k.op != "MatMulInteger" {
		nsa := p.m
		if k.op == "QGemm" {
			nsa = 1
		}
		if sa, err = qScales(c, opt(in, k.asI), "a_scale", nsa); err != nil {
			return err
		}
		if sb, err = qScales(c, opt(in, k.bsI), "b_scale", p.n); err != nil {
			return err
		}
		ys := opt(in, k.ysI)
		if ys == nil && k.op == "QGemm" {
			odt = tensor.Float32
		} else {
			if sy, err = qScales(c, ys, "y_scale", 1); err != nil {
				return err
			}
			zyT := opt(in, k.yzI)
			odt = tensor.Uint8
			if zyT != nil {
				odt = zyT.DType
			} else if k.op == "QGemm" {
				odt = a.DType
			}
			if zy, err = qZeros(c, zyT, "y_zero_point", 1, tensor.Undefined); err != nil {
				return err
			}
		}
	}
	if k.op == "QGemm" {
		if cm := opt(in, k.cI); cm != nil {
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
	y, err := c.Output(0, odt, oshape)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	switch odt {
	case tensor.Uint8, tensor.Int8:
		lo, hi, err := k.q.outRange(c, odt)
		if err != nil {
			return err
		}
		call.rq = make([]*q8.Requant, len(sa))
		for i, s := range sa {
			if call.rq[i], err = qRequant(c, s*k.alpha, sb, sy[0], zy[0], lo, hi); err != nil {
				return err
			}
		}
	case tensor.Float32:
		call.fscale = make([]float32, len(sb))
		for j, s := range sb {
			call.fscale[j] = k.alpha * sa[0] * s
		}
	case tensor.Int32:
	default:
		return c.Errorf("output type %v is not supported (want uint8 or int8)", odt)
	}
	// Scratch: per thread A rows, accumulators, row sums.
	threads := max(1, min(c.Threads, p.m))
	if p.m*p.n*max(p.k, 1) < 1<<15 {
		threads = 1
	}
	rowsMax := (p.m + threads - 1) / threads
	call.per = (rowsMax*p.k+3)/4 + rowsMax*p.n + rowsMax
	call.ws = qScratch(c, threads*call.per)
	call.threads = threads
	ab, bb := qBytes(a), qBytes(b)
	bIsConst := b == k.bConst && zbT == k.bzC && k.packed != nil
	for i := range p.batch {
		oa, ob := p.offsets(i)
		call.a = ab[oa : oa+p.m*p.k]
		if len(za) > p.m {
			ai := oa / max(p.m*p.k, 1)
			call.za = za[ai*p.m : (ai+1)*p.m]
		} else {
			call.za = za
		}
		if p.k > 0 {
			if bIsConst {
				call.pb = k.packed[ob/(p.k*p.n)]
			} else if call.pb, err = qPackB(c, bb[ob:ob+p.k*p.n], b.DType == tensor.Uint8, zbT, p.k, p.n, k.transB); err != nil {
				return c.Errorf("b_zero_point: %v", err)
			}
		} else {
			call.pb = &qPackedB{}
		}
		o := i * p.m * p.n
		switch yd := y.Data.(type) {
		case []int32:
			call.yI32 = yd[o : o+p.m*p.n]
		case []float32:
			call.yF32 = yd[o : o+p.m*p.n]
		default:
			call.y8 = qBytes(y)[o : o+p.m*p.n]
		}
		if threads > 1 {
			c.Parallel(threads, call.run)
		} else {
			call.run(0, 1)
		}
	}
	if yf, ok := y.Data.([]float32); ok && (k.q.lo != -1<<31 || k.q.hi != 1<<31-1) {
		for i, v := range yf {
			yf[i] = min(max(v, float32(k.q.lo)), float32(k.q.hi))
		}
	}
	return nil
}
