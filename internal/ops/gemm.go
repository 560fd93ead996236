package ops

import (
	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gemmKernel implements Gemm (opsets 7, 9, 11, 13) and goslim.FusedGemm
// (Gemm, then an activation):
//
//	Y = alpha * op(A) * op(B) + beta * C
//
// with op(X) = X or X^T per transA/transB, A and B of rank 2 and C
// broadcast unidirectionally to (M, N). C is optional since opset 11.
// float32 (and float16, via float32) runs the fp32 GEMM of the entry's
// tier; a C that is a row or column vector or a scalar becomes the GEMM's
// column or row bias (times beta), added with the activation in the
// epilogue, so it costs no pass over Y.
type gemmKernel struct {
	transA, transB bool
	alpha, beta    float32
	opset          int64
	// act is the activation of goslim.FusedGemm (none for Gemm).
	act fp32.Act
	fk  fp32.Kernels
	// packed holds a constant float32 (or float16) B packed for fk at
	// build time; it is used when the run-time B is that constant.
	packed *gemmConstB
	// task holds the float32 product of a call (kept here so that a call
	// allocates nothing).
	task gemmTask
}

// gemmConstB is a constant right-hand operand packed once.
type gemmConstB struct {
	t  *tensor.Tensor
	pb *fp32.PackedB
}

// gemmPackConst packs a constant rank-2 float32/float16 B (op(B) = B^T when
// transB) for fk, or returns nil.
func gemmPackConst(fk fp32.Kernels, t *tensor.Tensor, transB bool) *gemmConstB {
	if t == nil || t.Rank() != 2 || (t.DType != tensor.Float32 && t.DType != tensor.Float16) || t.Check() != nil {
		return nil
	}
	k, n := t.Shape[0], t.Shape[1]
	if transB {
		k, n = n, k
	}
	return &gemmConstB{t: t, pb: fk.PackB(transB, k, n, nnToF32(t), max(t.Shape[1], 1))}
}

// use returns the packed B when b is the constant it was made from.
func (g *gemmConstB) use(b *tensor.Tensor) *fp32.PackedB {
	if g == nil || b != g.t {
		return nil
	}
	return g.pb
}

// gemmBuilder returns the builder of Gemm (fused=false) or FusedGemm for
// the float32 kernels fk.
func gemmBuilder(fk fp32.Kernels, fused bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		a := info.Attrs()
		if a.Has("broadcast") && info.Opset < 7 {
			return nil, info.Errorf("Gemm broadcast attribute (opset < 7) is not supported")
		}
		k := &gemmKernel{
			transA: a.Int("transA", 0) != 0,
			transB: a.Int("transB", 0) != 0,
			alpha:  a.Float("alpha", 1),
			beta:   a.Float("beta", 1),
			opset:  info.Opset,
			fk:     fk,
		}
		if fused {
			act, err := fusedAct(info, true)
			if err != nil {
				return nil, err
			}
			k.act = act
			k.opset = 13 // Info.Opset is the goslim domain's; C is optional as in Gemm-13
		}
		if len(info.Consts) > 1 {
			k.packed = gemmPackConst(fk, info.Consts[1], k.transB)
		}
		return k, nil
	}
}

// gemmDType reports whether Gemm and MatMul compute dt.
func gemmDType(dt tensor.DType) bool {
	switch dt {
	case tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64:
		return true
	}
	return false
}

func (k *gemmKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, err := need(c, in, 0, "A")
	if err != nil {
		return err
	}
	b, err := need(c, in, 1, "B")
	if err != nil {
		return err
	}
	cm := opt(in, 2)
	if cm == nil && k.opset < 11 {
		return c.Errorf("input C is required before opset 11")
	}
	if !gemmDType(a.DType) {
		return c.Errorf("Gemm does not support %v", a.DType)
	}
	if k.act.Kind != fp32.ActNone && !nnFloatDType(a.DType) {
		return c.Errorf("FusedGemm with activation %s does not support %v", k.act.Kind, a.DType)
	}
	if err := sameDType(c, a, b, cm); err != nil {
		return err
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return c.Errorf("Gemm wants rank-2 A and B, got %v and %v", a.Shape, b.Shape)
	}
	m, ka := a.Shape[0], a.Shape[1]
	if k.transA {
		m, ka = ka, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if k.transB {
		kb, n = n, kb
	}
	if ka != kb {
		return c.Errorf("inner dimensions differ: op(A) is %dx%d, op(B) is %dx%d", m, ka, kb, n)
	}
	if cm != nil {
		if cm.Rank() > 2 {
			return c.Errorf("C shape %v cannot broadcast to [%d %d]", cm.Shape, m, n)
		}
		full := tensor.Shape{m, n}
		for i, d := range cm.Shape {
			if want := full[2-cm.Rank()+i]; d != want && d != 1 {
				return c.Errorf("C shape %v cannot broadcast to [%d %d]", cm.Shape, m, n)
			}
		}
	}
	y, err := c.Output(0, a.DType, tensor.Shape{m, n})
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	lda, ldb := max(a.Shape[1], 1), max(b.Shape[1], 1)
	beta := k.beta
	if cm == nil {
		beta = 0
	}
	switch a.DType {
	case tensor.Float32, tensor.Float16:
		var yf []float32
		act := k.act
		if a.DType == tensor.Float32 {
			yf = y.F32()
		} else {
			yf = make([]float32, y.Len())
			act = fp32.Act{} // applied to the rounded float16 values below
		}
		op := &k.task.op
		*op = fp32.GemmOp{M: m, N: n, K: ka, Alpha: k.alpha, A: fp32.Mat{Data: nnToF32(a), Ld: lda, Trans: k.transA},
			C: yf, LdC: n, Act: act}
		if pb := k.packed.use(b); pb != nil {
			op.PB = pb
		} else {
			op.B = fp32.Mat{Data: nnToF32(b), Ld: ldb, Trans: k.transB}
		}
		gemmRunC(c, k.fk, &k.task, cm, beta)
		if a.DType == tensor.Float16 {
			f32ToHalf(y.Data.([]uint16), yf)
			fusedActHalf(k.fk, k.act, y.Data.([]uint16), yf)
		}
	case tensor.Float64:
		gemmGeneric(c, k, m, n, ka, a.F64(), lda, b.F64(), ldb, cm, beta, y.F64())
		k.act.ApplyF64(y.F64())
	case tensor.Int32:
		gemmGeneric(c, k, m, n, ka, a.I32(), lda, b.I32(), ldb, cm, beta, y.I32())
	case tensor.Int64:
		gemmGeneric(c, k, m, n, ka, a.I64(), lda, b.I64(), ldb, cm, beta, y.I64())
	case tensor.Uint32:
		gemmGeneric(c, k, m, n, ka, a.Data.([]uint32), lda, b.Data.([]uint32), ldb, cm, beta, y.Data.([]uint32))
	case tensor.Uint64:
		gemmGeneric(c, k, m, n, ka, a.Data.([]uint64), lda, b.Data.([]uint64), ldb, cm, beta, y.Data.([]uint64))
	}
	return nil
}

// gemmFillC writes C, of a shape unidirectionally broadcastable to
// (m, n), into the m x n matrix y.
func gemmFillC[T any](y, cv []T, cs tensor.Shape, m, n int) {
	rs, cstr := 0, 0 // strides of C along rows and columns (0 = broadcast)
	switch len(cs) {
	case 1:
		if cs[0] != 1 {
			cstr = 1
		}
	case 2:
		if cs[0] != 1 {
			rs = cs[1]
		}
		if cs[1] != 1 {
			cstr = 1
		}
	}
	for i := 0; i < m; i++ {
		row := y[i*n : (i+1)*n]
		src := cv[i*rs:]
		if cstr == 0 {
			v := src[0]
			for j := range row {
				row[j] = v
			}
			continue
		}
		copy(row, src[:n])
	}
}

// gemmGeneric computes Gemm for float64 and integer dtypes. Integers
// accumulate in their own type (wrapping); alpha and beta other than 1 are
// applied through float64 and truncated.
func gemmGeneric[T Number](c *kernel.Ctx, k *gemmKernel, m, n, kk int, a []T, lda int, b []T, ldb int, cm *tensor.Tensor, beta float32, y []T) {
	mmGeneric(c, k.transA, k.transB, m, n, kk, a, lda, b, ldb, y, n)
	if k.alpha != 1 {
		al := float64(k.alpha)
		for i, v := range y {
			y[i] = T(float64(v) * al)
		}
	}
	if beta == 0 {
		return
	}
	cf := make([]T, m*n)
	gemmFillC(cf, cm.Data.([]T), cm.Shape, m, n)
	if beta == 1 {
		for i, v := range cf {
			y[i] += v
		}
		return
	}
	bt := float64(beta)
	for i, v := range cf {
		y[i] += T(float64(v) * bt)
	}
}

// mmGeneric computes y = op(A) * op(B) (overwriting the m x n matrix y with
// leading dimension ldy) for any numeric type, splitting rows over the
// context's threads when large.
func mmGeneric[T Number](c *kernel.Ctx, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, y []T, ldy int) {
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(y[i*ldy : i*ldy+n])
		}
		return
	}
	workers := nnWorkers(c, m, 2*float64(m)*float64(n)*float64(k))
	chunk := (m + workers - 1) / workers
	nnRunWorkers(c, workers, func(wi int) {
		for i := wi * chunk; i < min(m, (wi+1)*chunk); i++ {
			row := y[i*ldy : i*ldy+n]
			if transB {
				for j := range row {
					var s T
					brow := b[j*ldb : j*ldb+k]
					for p, bv := range brow {
						if transA {
							s += a[p*lda+i] * bv
						} else {
							s += a[i*lda+p] * bv
						}
					}
					row[j] = s
				}
				continue
			}
			clear(row)
			for p := 0; p < k; p++ {
				var av T
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if av == 0 {
					continue
				}
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					row[j] += av * bv
				}
			}
		}
	})
}

// gemmRunC runs op with Gemm's C (cm, times beta; nil or beta 0 for
// none): a scalar, row vector or column vector C becomes the epilogue's
// column or row bias (beta*C, so each element is alpha*s + beta*c as in
// the reference), a full C is copied into op.C and read with op.Beta.
func gemmRunC(c *kernel.Ctx, fk fp32.Kernels, t *gemmTask, cm *tensor.Tensor, beta float32) {
	op := &t.op
	m, n := op.M, op.N
	if cm == nil || beta == 0 {
		gemmRun(c, fk, t, gemmBias{})
		return
	}
	cv := nnToF32(cm)
	rows, cols := 1, 1 // C's extent along (M, N) after dropping leading 1s
	switch cm.Rank() {
	case 1:
		cols = cm.Shape[0]
	case 2:
		rows, cols = cm.Shape[0], cm.Shape[1]
	}
	switch {
	case rows == m && cols == n && (m > 1 || n == 1) && (n > 1 || m == 1):
		// Full C (or a 1x1 product).
		gemmFillC(op.C, cv, cm.Shape, m, n)
		op.Beta = beta
		gemmRun(c, fk, t, gemmBias{})
	case rows == 1:
		// Row vector or scalar: a bias per column.
		gemmRun(c, fk, t, gemmBias{kind: gemmColBias, cv: cv, beta: beta, scalar: cols == 1})
	default:
		// Column vector (M x 1): a bias per row.
		gemmRun(c, fk, t, gemmBias{kind: gemmRowBias, cv: cv, beta: beta})
	}
}

// gemmBias describes a bias gemmRun writes into scratch before the
// product: beta*cv per column (or one value, scalar) or per row.
type gemmBias struct {
	kind   uint8 // gemmNoBias, gemmColBias or gemmRowBias
	cv     []float32
	beta   float32
	scalar bool
}

const (
	gemmNoBias uint8 = iota
	gemmColBias
	gemmRowBias
)

// size returns the scratch floats the bias needs for op.
func (b *gemmBias) size(op *fp32.GemmOp) int {
	switch b.kind {
	case gemmColBias:
		return op.N
	case gemmRowBias:
		return op.M
	}
	return 0
}

// set fills bias (size(op) floats) and points op at it.
func (b *gemmBias) set(bias []float32, op *fp32.GemmOp) {
	switch b.kind {
	case gemmColBias:
		if b.scalar {
			v := b.beta * b.cv[0]
			if b.beta == 1 {
				v = b.cv[0]
			}
			for j := range bias {
				bias[j] = v
			}
		} else {
			gemmScaled(bias, b.cv[:op.N], b.beta)
		}
		op.ColBias = bias
	case gemmRowBias:
		gemmScaled(bias, b.cv[:op.M], b.beta)
		op.RowBias = bias
	}
}

// gemmScaled sets dst = beta*src (a copy when beta is 1).
func gemmScaled(dst, src []float32, beta float32) {
	if beta == 1 {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] = beta * v
	}
}

// gemmTask is one float32 product run by gemmRun: the op, and how it is
// split over workers. Kernels keep it in their struct, so passing it to
// the worker pool allocates nothing.
type gemmTask struct {
	op         fp32.GemmOp
	fk         fp32.Kernels
	scratch    []float32
	per, chunk int
	byRows     bool
}

// Run computes the parts of workers [lo, hi) (kernel.Task).
func (t *gemmTask) Run(lo, hi int) {
	for wi := lo; wi < hi; wi++ {
		t.part(wi)
	}
}

func (t *gemmTask) part(wi int) {
	ws := t.scratch[wi*t.per : (wi+1)*t.per]
	q := t.op
	m, n, chunk := t.op.M, t.op.N, t.chunk
	if t.byRows {
		r0, r1 := wi*chunk, min(m, (wi+1)*chunk)
		q.M = r1 - r0
		if q.PA == nil {
			if q.A.Trans {
				q.A.Data = q.A.Data[r0:]
			} else {
				q.A.Data = q.A.Data[r0*q.A.Ld:]
			}
		}
		q.C = q.C[r0*q.LdC:]
		if q.RowBias != nil {
			q.RowBias = q.RowBias[r0:r1]
		}
	} else {
		c0, c1 := wi*chunk, min(n, (wi+1)*chunk)
		q.N = c1 - c0
		if q.B.Trans {
			q.B.Data = q.B.Data[c0*q.B.Ld:]
		} else {
			q.B.Data = q.B.Data[c0:]
		}
		q.C = q.C[c0:]
		if q.ColBias != nil {
			q.ColBias = q.ColBias[c0:c1]
		}
	}
	t.fk.Run(ws, &q)
}

// gemmRun runs t.op on the context's threads: C is split into blocks of
// rows (or of columns when C is short and wide and B is not packed), each
// worker with its own packing workspace from c.Scratch. A bias, when
// given, is first written into scratch and t.op pointed at it.
func gemmRun(c *kernel.Ctx, fk fp32.Kernels, t *gemmTask, bias gemmBias) {
	op := &t.op
	m, n := op.M, op.N
	if m == 0 || n == 0 {
		return
	}
	flops := 2 * float64(m) * float64(n) * float64(op.K)
	byRows := m >= n || op.PB != nil
	units := (m + 15) / 16
	if !byRows {
		units = (n + 63) / 64
	}
	workers := nnWorkers(c, units, flops)
	var chunk int
	part := *op
	if workers > 1 {
		if byRows {
			chunk = (m + workers - 1) / workers
			chunk = (chunk + 7) &^ 7
			part.M = min(chunk, m)
		} else {
			chunk = (n + workers - 1) / workers
			chunk = (chunk + 31) &^ 31
			part.N = min(chunk, n)
		}
		if byRows {
			workers = (m + chunk - 1) / chunk
		} else {
			workers = (n + chunk - 1) / chunk
		}
	}
	per := fk.Scratch(&part)
	extra := bias.size(op)
	scratch := c.Scratch(extra + workers*per)
	if extra > 0 {
		bias.set(scratch[:extra], op)
	}
	if workers <= 1 {
		fk.Run(scratch[extra:], op)
		return
	}
	t.fk, t.scratch, t.per, t.chunk, t.byRows = fk, scratch[extra:], per, chunk, byRows
	c.ParallelTask(workers, t)
}

// registerMatrixOps registers the ops built on the fp32 GEMM: Conv,
// ConvTranspose, Gemm, MatMul and the internal fused ops goslim.FusedConv,
// goslim.ConvChain and goslim.FusedGemm (inserted by the session's fusion pass; never
// exported to ONNX). Each gets, for float32 inputs, one entry per CPU tier
// (Arch priority for AVX-512 and AVX2, Typed for pure Go) named
// "TIER.ALGORITHM" (avx512.im2col, avx2.gemm, generic.depthwise, ...), and
// a generic entry for every dtype, which runs the pure-Go float32 code.
func registerMatrixOps(t *kernel.Table) {
	tiers := []struct {
		tier kernel.Tier
		prio int
	}{{kernel.TierAVX512, kernel.Arch}, {kernel.TierAVX2, kernel.Arch}, {kernel.TierGeneric, kernel.Typed}}
	gen := fp32.For(kernel.TierGeneric)
	for _, tc := range tiers {
		fk := fp32.For(tc.tier)
		if fk.Tier() != tc.tier {
			continue // no kernels of this tier in this build
		}
		name := tc.tier.String()
		for _, op := range []struct {
			domain, op string
			fused      bool
		}{{"", "Conv", false}, {"goslim", "FusedConv", true}} {
			for _, algo := range []convAlgo{convDepthwise, convPointwise, convIm2col} {
				t.Add(kernel.Entry{Domain: op.domain, Op: op.op, Name: name + "." + string(algo), Priority: tc.prio, Tier: tc.tier,
					Build: matrixF32Only(convAccept(algo), convBuilder(fk, op.fused))})
			}
		}
		t.Add(kernel.Entry{Domain: "goslim", Op: "ConvChain", Name: name + ".chain", Priority: tc.prio, Tier: tc.tier,
			Build: matrixF32Only(nil, convChainBuilder(fk, vec.For(tc.tier)))})
		t.Add(kernel.Entry{Op: "ConvTranspose", Name: name + ".col2im", Priority: tc.prio, Tier: tc.tier,
			Build: matrixF32Only(nil, convTBuilder(fk))})
		t.Add(kernel.Entry{Op: "Gemm", Name: name + ".gemm", Priority: tc.prio, Tier: tc.tier,
			Build: matrixF32Only(nil, gemmBuilder(fk, false))})
		t.Add(kernel.Entry{Domain: "goslim", Op: "FusedGemm", Name: name + ".gemm", Priority: tc.prio, Tier: tc.tier,
			Build: matrixF32Only(nil, gemmBuilder(fk, true))})
		t.Add(kernel.Entry{Op: "MatMul", Name: name + ".gemm", Priority: tc.prio, Tier: tc.tier,
			Build: matrixF32Only(nil, mmBuilder(fk))})
	}
	add(t, "Conv", convBuilder(gen, false))
	add(t, "ConvTranspose", convTBuilder(gen))
	add(t, "Gemm", gemmBuilder(gen, false))
	add(t, "MatMul", mmBuilder(gen))
	t.Add(kernel.Entry{Domain: "goslim", Op: "FusedConv", Name: "generic", Priority: kernel.Generic, Build: convBuilder(gen, true)})
	t.Add(kernel.Entry{Domain: "goslim", Op: "FusedGemm", Name: "generic", Priority: kernel.Generic, Build: gemmBuilder(gen, true)})
}

// matrixF32Only wraps b so that it declines nodes whose first input is not
// statically float32, or that accept rejects.
func matrixF32Only(accept func(*kernel.Info) bool, b kernel.Builder) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		if len(info.Inputs) == 0 || info.Inputs[0].DType != tensor.Float32 {
			return nil, kernel.ErrDecline
		}
		if accept != nil && !accept(info) {
			return nil, kernel.ErrDecline
		}
		return b(info)
	}
}

// convAccept accepts the nodes whose float32 convolution runs algo (an
// unknown weight shape counts as im2col).
func convAccept(algo convAlgo) func(*kernel.Info) bool {
	return func(info *kernel.Info) bool {
		got := convClassify(info)
		if got == "" {
			got = convIm2col
		}
		return got == algo
	}
}
