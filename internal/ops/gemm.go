package ops

import (
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gemmKernel implements Gemm (opsets 7, 9, 11, 13):
//
//	Y = alpha * op(A) * op(B) + beta * C
//
// with op(X) = X or X^T per transA/transB, A and B of rank 2 and C
// broadcast unidirectionally to (M, N). C is optional since opset 11.
type gemmKernel struct {
	transA, transB bool
	alpha, beta    float32
	opset          int64
	// act is the activation of goslim.FusedGemm (none for Gemm).
	act fp32.Act
	// packed holds a constant float32 (or float16) B packed for fp32 at
	// build time; it is used when the run-time B is that constant.
	packed *gemmConstB
}

// gemmConstB is a constant right-hand operand packed once.
type gemmConstB struct {
	t  *tensor.Tensor
	pb *fp32.PackedB
}

// gemmPackConst packs a constant rank-2 float32/float16 B (op(B) = B^T when
// transB) for fp32.GemmPacked, or returns nil.
func gemmPackConst(t *tensor.Tensor, transB bool) *gemmConstB {
	if t == nil || t.Rank() != 2 || (t.DType != tensor.Float32 && t.DType != tensor.Float16) || t.Check() != nil {
		return nil
	}
	k, n := t.Shape[0], t.Shape[1]
	if transB {
		k, n = n, k
	}
	return &gemmConstB{t: t, pb: fp32.PackB(transB, k, n, nnToF32(t), max(t.Shape[1], 1))}
}

// use returns the packed B when b is the constant it was made from.
func (g *gemmConstB) use(b *tensor.Tensor) *fp32.PackedB {
	if g == nil || b != g.t {
		return nil
	}
	return g.pb
}

// buildFusedGemm builds goslim.FusedGemm: Gemm followed by an activation
// (attributes as for goslim.FusedConv), for float dtypes.
func buildFusedGemm(info *kernel.Info) (kernel.Kernel, error) {
	act, err := fusedAct(info, true)
	if err != nil {
		return nil, err
	}
	k, err := buildGemm(info)
	if err != nil {
		return nil, err
	}
	gk := k.(*gemmKernel)
	gk.act = act
	gk.opset = 13 // Info.Opset is the goslim domain's; C is optional as in Gemm-13
	return k, nil
}

func buildGemm(info *kernel.Info) (kernel.Kernel, error) {
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
	}
	if len(info.Consts) > 1 {
		k.packed = gemmPackConst(info.Consts[1], k.transB)
	}
	return k, nil
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
		if a.DType == tensor.Float32 {
			yf = y.F32()
		} else {
			yf = make([]float32, y.Len())
		}
		if beta != 0 {
			gemmFillC(yf, nnToF32(cm), cm.Shape, m, n)
		}
		if pb := k.packed.use(b); pb != nil {
			nnGemmPackedF32(c, k.transA, m, k.alpha, nnToF32(a), lda, pb, beta, yf, n)
		} else {
			nnGemmF32(c, k.transA, k.transB, m, n, ka, k.alpha, nnToF32(a), lda, nnToF32(b), ldb, beta, yf, n)
		}
		if a.DType == tensor.Float16 {
			f32ToHalf(y.Data.([]uint16), yf)
			fusedActHalf(k.act, y.Data.([]uint16), yf)
		} else {
			k.act.Apply(yf)
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

// nnGemmF32 is fp32.Gemm split over the context's threads by blocks of
// rows of C (or of columns when C is short and wide).
func nnGemmF32(c *kernel.Ctx, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, y []float32, ldy int) {
	flops := 2 * float64(m) * float64(n) * float64(k)
	if m >= n {
		workers := nnWorkers(c, (m+15)/16, flops)
		if workers <= 1 {
			fp32.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, y, ldy)
			return
		}
		chunk := (m + workers - 1) / workers
		chunk = (chunk + 1) &^ 1
		nnRunWorkers(c, workers, func(wi int) {
			r0 := wi * chunk
			r1 := min(m, r0+chunk)
			if r0 >= r1 {
				return
			}
			as := a[r0*lda:]
			if transA {
				as = a[r0:]
			}
			fp32.Gemm(transA, transB, r1-r0, n, k, alpha, as, lda, b, ldb, beta, y[r0*ldy:], ldy)
		})
		return
	}
	workers := nnWorkers(c, (n+63)/64, flops)
	if workers <= 1 {
		fp32.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, y, ldy)
		return
	}
	chunk := (n + workers - 1) / workers
	chunk = (chunk + 3) &^ 3
	nnRunWorkers(c, workers, func(wi int) {
		c0 := wi * chunk
		c1 := min(n, c0+chunk)
		if c0 >= c1 {
			return
		}
		bs := b[c0:]
		if transB {
			bs = b[c0*ldb:]
		}
		fp32.Gemm(transA, transB, m, c1-c0, k, alpha, a, lda, bs, ldb, beta, y[c0:], ldy)
	})
}

// nnGemmPackedF32 is fp32.GemmPacked split over the context's threads by
// blocks of rows of C.
func nnGemmPackedF32(c *kernel.Ctx, transA bool, m int, alpha float32, a []float32, lda int, pb *fp32.PackedB, beta float32, y []float32, ldy int) {
	flops := 2 * float64(m) * float64(pb.N()) * float64(pb.K())
	workers := nnWorkers(c, (m+15)/16, flops)
	if workers <= 1 {
		fp32.GemmPacked(transA, m, alpha, a, lda, pb, beta, y, ldy)
		return
	}
	chunk := (m + workers - 1) / workers
	chunk = (chunk + 1) &^ 1
	nnRunWorkers(c, workers, func(wi int) {
		r0 := wi * chunk
		r1 := min(m, r0+chunk)
		if r0 >= r1 {
			return
		}
		as := a[r0*lda:]
		if transA {
			as = a[r0:]
		}
		fp32.GemmPacked(transA, r1-r0, alpha, as, lda, pb, beta, y[r0*ldy:], ldy)
	})
}

// registerMatrixOps registers the ops built on the fp32 GEMM: Conv,
// ConvTranspose, Gemm, MatMul and the internal fused ops goslim.FusedConv
// and goslim.FusedGemm (inserted by the session's fusion pass; never
// exported to ONNX).
func registerMatrixOps(t *kernel.Table) {
	nnAdd(t, "Conv", "fp32.im2col", buildConv)
	nnAdd(t, "ConvTranspose", "fp32.col2im", buildConvTranspose)
	nnAdd(t, "Gemm", "fp32.gemm", buildGemm)
	nnAdd(t, "MatMul", "fp32.gemm", buildMatMul)
	for _, op := range []struct {
		name string
		b    kernel.Builder
	}{{"FusedConv", buildFusedConv}, {"FusedGemm", buildFusedGemm}} {
		t.Add(kernel.Entry{Domain: "goslim", Op: op.name, Name: "generic", Priority: kernel.Generic, Build: op.b})
	}
}
