package ops

import (
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// mmBuilder returns the MatMul builder (opsets 1, 9, 13: numpy.matmul
// semantics) for float32 kernels fk. A 1-D A is read as a row (1, K) and
// a 1-D B as a column (K, 1), the added axis being removed from the
// result; leading (batch) axes broadcast.
func mmBuilder(fk fp32.Kernels) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		k := &mmKernel{fk: fk}
		if len(info.Consts) > 1 {
			k.packed = gemmPackConst(fk, info.Consts[1], false)
		}
		return k, nil
	}
}

// mmKernel is MatMul; float32 runs fk's GEMM, and packed holds a constant
// rank-2 float32/float16 B packed at build time.
type mmKernel struct {
	fk     fp32.Kernels
	packed *gemmConstB
	// task holds the float32 product of a call (no allocation per call).
	task gemmTask
}

// mmPlan is a resolved batched matrix product: batch products of (m x k)
// by (k x n), with the element offsets of each operand per batch.
type mmPlan struct {
	m, n, k    int
	batch      int
	offA, offB []int // nil when the operand is not batched (offset 0)
	contigA    bool  // A's batches are contiguous and not broadcast
}

// mmResolve checks the shapes and returns the plan and the output shape.
func mmResolve(c *kernel.Ctx, as, bs tensor.Shape) (mmPlan, tensor.Shape, error) {
	var p mmPlan
	if len(as) == 0 || len(bs) == 0 {
		return p, nil, c.Errorf("MatMul inputs must have rank >= 1, got %v and %v", as, bs)
	}
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = tensor.Shape{1, as[0]}
	}
	if len(bs) == 1 {
		b2 = tensor.Shape{bs[0], 1}
	}
	ra, rb := len(a2), len(b2)
	p.m, p.k = a2[ra-2], a2[ra-1]
	if b2[rb-2] != p.k {
		return p, nil, c.Errorf("MatMul inner dimensions differ: %v x %v", as, bs)
	}
	p.n = b2[rb-1]
	ba, bb := a2[:ra-2], b2[:rb-2]
	batch, err := BroadcastShapes(ba, bb)
	if err != nil {
		return p, nil, c.Errorf("MatMul batch dimensions: %v", err)
	}
	out := append(tensor.Shape{}, batch...)
	if len(as) > 1 {
		out = append(out, p.m)
	}
	if len(bs) > 1 {
		out = append(out, p.n)
	}
	if n := out.Size(); n < 0 || n > tensor.MaxElements {
		return p, nil, c.Errorf("MatMul output shape %v is too large", out)
	}
	p.batch = batch.Size()
	na, nb := ba.Size(), bb.Size()
	p.contigA = na == p.batch
	if p.batch > 1 {
		if na > 1 {
			p.offA = mmOffsets(ba, batch, p.m*p.k)
		}
		if nb > 1 {
			p.offB = mmOffsets(bb, batch, p.k*p.n)
		}
	}
	return p, out, nil
}

// mmOffsets returns, for each index of the broadcast batch shape, the
// element offset of the matching matrix of an operand with batch shape s.
func mmOffsets(s, batch tensor.Shape, mat int) []int {
	st := bstrides(s, batch)
	offs := make([]int, batch.Size())
	idx := make([]int, len(batch))
	off := 0
	for i := range offs {
		offs[i] = off * mat
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d]++
			off += st[d]
			if idx[d] < batch[d] {
				break
			}
			off -= st[d] * batch[d]
			idx[d] = 0
		}
	}
	return offs
}

func (p *mmPlan) offsets(i int) (int, int) {
	oa, ob := 0, 0
	if p.offA != nil {
		oa = p.offA[i]
	}
	if p.offB != nil {
		ob = p.offB[i]
	}
	return oa, ob
}

func (k *mmKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, err := need(c, in, 0, "A")
	if err != nil {
		return err
	}
	b, err := need(c, in, 1, "B")
	if err != nil {
		return err
	}
	if !gemmDType(a.DType) {
		return c.Errorf("MatMul does not support %v", a.DType)
	}
	if err := sameDType(c, a, b); err != nil {
		return err
	}
	p, shape, err := mmResolve(c, a.Shape, b.Shape)
	if err != nil {
		return err
	}
	y, err := c.Output(0, a.DType, shape)
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	switch a.DType {
	case tensor.Float32:
		mmF32(c, k.fk, &k.task, &p, a.F32(), b.F32(), y.F32(), k.packed.use(b))
	case tensor.Float16:
		yf := make([]float32, y.Len())
		pb := k.packed.use(b)
		var bf []float32
		if pb == nil || p.offB != nil || !p.contigA {
			bf = nnToF32(b)
		}
		mmF32(c, k.fk, &k.task, &p, nnToF32(a), bf, yf, pb)
		f32ToHalf(y.Data.([]uint16), yf)
	case tensor.Float64:
		mmBatched(c, &p, a.F64(), b.F64(), y.F64())
	case tensor.Int32:
		mmBatched(c, &p, a.I32(), b.I32(), y.I32())
	case tensor.Int64:
		mmBatched(c, &p, a.I64(), b.I64(), y.I64())
	case tensor.Uint32:
		mmBatched(c, &p, a.Data.([]uint32), b.Data.([]uint32), y.Data.([]uint32))
	case tensor.Uint64:
		mmBatched(c, &p, a.Data.([]uint64), b.Data.([]uint64), y.Data.([]uint64))
	}
	return nil
}

// mmF32 runs a float32 batched product with fk. A shared B with
// contiguous A batches is one (batch*m x k) by (k x n) product (with B
// prepacked when pb is not nil); otherwise batches run in parallel when
// there are enough, else one after another with each product split over
// the threads.
func mmF32(c *kernel.Ctx, fk fp32.Kernels, t *gemmTask, p *mmPlan, a, b, y []float32, pb *fp32.PackedB) {
	if p.offB == nil && p.contigA {
		op := &t.op
		*op = fp32.GemmOp{M: p.batch * p.m, N: p.n, K: p.k, Alpha: 1, A: fp32.Mat{Data: a, Ld: max(p.k, 1)}, C: y, LdC: max(p.n, 1)}
		if pb != nil && pb.K() == p.k && pb.N() == p.n {
			op.PB = pb
		} else {
			op.B = fp32.Mat{Data: b, Ld: max(p.n, 1)}
		}
		gemmRun(c, fk, t, gemmBias{})
		return
	}
	one := func(i int) fp32.GemmOp {
		oa, ob := p.offsets(i)
		return fp32.GemmOp{M: p.m, N: p.n, K: p.k, Alpha: 1, A: fp32.Mat{Data: a[oa:], Ld: max(p.k, 1)},
			B: fp32.Mat{Data: b[ob:], Ld: max(p.n, 1)}, C: y[i*p.m*p.n:], LdC: max(p.n, 1)}
	}
	flops := 2 * float64(p.batch) * float64(p.m) * float64(p.n) * float64(p.k)
	workers := nnWorkers(c, p.batch, flops)
	if workers >= c.Threads || workers == p.batch {
		sizing := one(0)
		per := fk.Scratch(&sizing)
		scratch := c.Scratch(workers * per)
		nnRunWorkers(c, workers, func(wi int) {
			for i := wi; i < p.batch; i += workers {
				op := one(i)
				fk.Run(scratch[wi*per:(wi+1)*per], &op)
			}
		})
		return
	}
	for i := 0; i < p.batch; i++ {
		t.op = one(i)
		gemmRun(c, fk, t, gemmBias{})
	}
}

// mmBatched runs a batched product of any numeric type.
func mmBatched[T Number](c *kernel.Ctx, p *mmPlan, a, b, y []T) {
	for i := 0; i < p.batch; i++ {
		oa, ob := p.offsets(i)
		mmGeneric(c, false, false, p.m, p.n, p.k, a[oa:], max(p.k, 1), b[ob:], max(p.n, 1), y[i*p.m*p.n:], p.n)
	}
}
