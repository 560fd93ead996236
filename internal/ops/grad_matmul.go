package ops

import (
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gradMatMul is goslim.MatMulGrad(dY, A, B) -> (dA, dB), the gradient of
// MatMul (numpy matmul semantics, batch axes broadcast):
//
//	dA_i = dY_i * B_i^T,  dB_i = A_i^T * dY_i
//
// summed over the batches that share an operand matrix (broadcasting).
// Either output may be omitted. float32 runs the GEMM of the session's
// kernel entry's tier (fp32.For) with Ctx scratch; a shared B with
// contiguous A batches (a linear layer on a 3-D input) is one product with
// the batches folded into the rows (dA) or the inner dimension (dB). Work
// units are (operand matrix, block of 32 rows), fixed by the shapes.
func gradBuildMatMul(_ *kernel.Info, tier kernel.Tier) (kernel.Kernel, error) {
	fk := fp32.For(tier)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error { return gradMatMul(c, fk, in, out) }), nil
}

// gradTripleIn reads inputs 0, 1 and 2, named n0, n1 and n2: float tensors
// of one dtype (dY, A, B of MatMulGrad and GemmGrad; dY, X, Y of
// MaxPoolGradX).
func gradTripleIn(c *kernel.Ctx, in []*tensor.Tensor, n0, n1, n2 string) (t0, t1, t2 *tensor.Tensor, err error) {
	if t0, err = need(c, in, 0, n0); err != nil {
		return nil, nil, nil, err
	}
	if t1, err = need(c, in, 1, n1); err != nil {
		return nil, nil, nil, err
	}
	if t2, err = need(c, in, 2, n2); err != nil {
		return nil, nil, nil, err
	}
	if err := gradFloats(c, t0, t1, t2); err != nil {
		return nil, nil, nil, err
	}
	return t0, t1, t2, nil
}

func gradMatMul(c *kernel.Ctx, fk fp32.Kernels, in, out []*tensor.Tensor) error {
	dy, a, b, err := gradTripleIn(c, in, "dY", "A", "B")
	if err != nil {
		return err
	}
	p, shape, err := mmResolve(c, a.Shape, b.Shape)
	if err != nil {
		return err
	}
	if !dy.Shape.Equal(shape) {
		return c.Errorf("dY shape %v, want %v", dy.Shape, shape)
	}
	if nnWants(c, out, 0) {
		da, err := c.Output(0, a.DType, a.Shape.Clone())
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradMMA(c, fk, &p, dy.F32(), b.F32(), da.F32())
		case tensor.Float64:
			gradMMA(c, fk, &p, dy.F64(), b.F64(), da.F64())
		}
	}
	if nnWants(c, out, 1) {
		db, err := c.Output(1, b.DType, b.Shape.Clone())
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradMMB(c, fk, &p, dy.F32(), a.F32(), db.F32())
		case tensor.Float64:
			gradMMB(c, fk, &p, dy.F64(), a.F64(), db.F64())
		}
	}
	return nil
}

// gradMMTargets groups the batch indices by the operand matrix they read:
// offs[i] is the operand offset of batch i (nil: all batches read offset
// 0); it returns the distinct offsets in first-use order and, per offset,
// its batches in increasing order.
func gradMMTargets(batch int, offs []int) (targets []int, uses [][]int) {
	idx := map[int]int{}
	for i := 0; i < batch; i++ {
		o := 0
		if offs != nil {
			o = offs[i]
		}
		j, ok := idx[o]
		if !ok {
			j = len(targets)
			idx[o] = j
			targets = append(targets, o)
			uses = append(uses, nil)
		}
		uses[j] = append(uses[j], i)
	}
	return targets, uses
}

// gradMMRows is the row block of MatMulGrad's work units.
const gradMMRows = 32

// gradMMA computes dA (zero where no batch reads a matrix, which cannot
// happen for a valid broadcast).
func gradMMA[T Float](c *kernel.Ctx, fk fp32.Kernels, p *mmPlan, dy, b, da []T) {
	m, n, k := p.m, p.n, p.k
	if p.offB == nil && p.contigA {
		// dA (batch*m x k) = dY (batch*m x n) * B^T.
		rows := p.batch * m
		gradGemmRows(c, fk, rows, k, n, func(ws []float32, r0, r1 int) {
			gradGemm(fk, ws, false, true, r1-r0, k, n, dy[r0*n:], max(n, 1), b, max(n, 1), false, da[r0*k:], max(k, 1))
		})
		return
	}
	gradMMAccum[T](c, fk, p, p.offA, m, k, n, func(ws []float32, target, i int, acc bool, r0, r1 int) {
		ob := 0
		if p.offB != nil {
			ob = p.offB[i]
		}
		gradGemm(fk, ws, false, true, r1-r0, k, n, dy[i*m*n+r0*n:], max(n, 1), b[ob:], max(n, 1), acc, da[target+r0*k:], max(k, 1))
	})
}

// gradMMB computes dB.
func gradMMB[T Float](c *kernel.Ctx, fk fp32.Kernels, p *mmPlan, dy, a, db []T) {
	m, n, k := p.m, p.n, p.k
	if p.offB == nil && p.contigA {
		// dB (k x n) = A^T (k x batch*m) * dY (batch*m x n).
		inner := p.batch * m
		gradGemmRows(c, fk, k, n, inner, func(ws []float32, r0, r1 int) {
			gradGemm(fk, ws, true, false, r1-r0, n, inner, a[r0:], max(k, 1), dy, max(n, 1), false, db[r0*n:], max(n, 1))
		})
		return
	}
	gradMMAccum[T](c, fk, p, p.offB, k, n, m, func(ws []float32, target, i int, acc bool, r0, r1 int) {
		oa := 0
		if p.offA != nil {
			oa = p.offA[i]
		} else if p.contigA {
			oa = i * m * k
		}
		gradGemm(fk, ws, true, false, r1-r0, n, m, a[oa+r0:], max(k, 1), dy[i*m*n:], max(n, 1), acc, db[target+r0*n:], max(n, 1))
	})
}

// gradMMAccum runs the gradient of one MatMul operand when batches share
// its matrices: offs are the operand's per-batch offsets, and each
// gradient matrix (rows x cols, inner dimension inner) is split into
// blocks of gradMMRows rows run in parallel. fn adds batch i's product to
// rows r0..r1 of the gradient matrix at offset target (overwriting for the
// first batch that reads it, acc false) using its worker's GEMM workspace.
func gradMMAccum[T Float](c *kernel.Ctx, fk fp32.Kernels, p *mmPlan, offs []int, rows, cols, inner int, fn func(ws []float32, target, i int, acc bool, r0, r1 int)) {
	targets, uses := gradMMTargets(p.batch, offs)
	blocks := (rows + gradMMRows - 1) / gradMMRows
	units := len(targets) * max(blocks, 1)
	workers := nnWorkers(c, units, 2*float64(p.batch)*float64(p.m)*float64(p.n)*float64(p.k))
	per := gradGemmScratch[T](fk, min(rows, gradMMRows), cols, inner)
	scratch := c.Scratch(workers * per)
	nnRunWorkers(c, workers, func(wi int) {
		ws := scratch[wi*per : (wi+1)*per]
		for u := wi; u < units; u += workers {
			j, r0 := u/max(blocks, 1), u%max(blocks, 1)*gradMMRows
			r1 := min(rows, r0+gradMMRows)
			for q, i := range uses[j] {
				fn(ws, targets[j], i, q > 0, r0, r1)
			}
		}
	})
}

// gradGemmRows splits a product with rows output rows (n columns, inner
// dimension k) into blocks of gradMMRows rows run in parallel (the split
// depends only on rows); fn gets its worker's GEMM workspace.
func gradGemmRows(c *kernel.Ctx, fk fp32.Kernels, rows, n, k int, fn func(ws []float32, r0, r1 int)) {
	blocks := (rows + gradMMRows - 1) / gradMMRows
	if blocks == 0 {
		return
	}
	workers := nnWorkers(c, blocks, 2*float64(rows)*float64(n)*float64(k))
	per := fk.Scratch(&fp32.GemmOp{M: min(rows, gradMMRows), N: n, K: k})
	scratch := c.Scratch(workers * per)
	if workers <= 1 {
		for u := 0; u < blocks; u++ {
			fn(scratch, u*gradMMRows, min(rows, (u+1)*gradMMRows))
		}
		return
	}
	nnRunWorkers(c, workers, func(wi int) {
		ws := scratch[wi*per : (wi+1)*per]
		for u := wi; u < blocks; u += workers {
			fn(ws, u*gradMMRows, min(rows, (u+1)*gradMMRows))
		}
	})
}

// gradGemmScratch returns the float32 workspace of an m x n x k product
// (0 for other types, which do not use one).
func gradGemmScratch[T Float](fk fp32.Kernels, m, n, k int) int {
	var z T
	if _, ok := any(z).(float32); !ok {
		return 0
	}
	return fk.Scratch(&fp32.GemmOp{M: m, N: n, K: k})
}

// gradGemm computes y = op(A)*op(B) (acc false) or y += op(A)*op(B) (acc
// true) for an m x n result with inner dimension k, row-major with leading
// dimensions; float32 runs fk with workspace ws, other types a plain loop.
func gradGemm[T Float](fk fp32.Kernels, ws []float32, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, acc bool, y []T, ldy int) {
	gradGemmAlpha(fk, ws, transA, transB, m, n, k, 1, a, lda, b, ldb, acc, y, ldy)
}

// gradGemmAlpha is gradGemm with op(A)*op(B) scaled by alpha.
func gradGemmAlpha[T Float](fk fp32.Kernels, ws []float32, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, acc bool, y []T, ldy int) {
	if m == 0 || n == 0 {
		return
	}
	if af, ok := any(a).([]float32); ok {
		beta := float32(0)
		if acc {
			beta = 1
		}
		fk.Run(ws, &fp32.GemmOp{M: m, N: n, K: k, Alpha: float32(alpha), Beta: beta,
			A: fp32.Mat{Data: af, Ld: lda, Trans: transA}, B: fp32.Mat{Data: any(b).([]float32), Ld: ldb, Trans: transB},
			C: any(y).([]float32), LdC: ldy})
		return
	}
	for i := 0; i < m; i++ {
		row := y[i*ldy : i*ldy+n]
		if !acc {
			clear(row)
		}
		for p := 0; p < k; p++ {
			var av T
			if transA {
				av = alpha * a[p*lda+i]
			} else {
				av = alpha * a[i*lda+p]
			}
			if transB {
				for j := range row {
					row[j] += av * b[j*ldb+p]
				}
			} else {
				br := b[p*ldb : p*ldb+n]
				for j, bv := range br {
					row[j] += av * bv
				}
			}
		}
	}
}

// gradGemmKernel is goslim.GemmGrad(dY, A, B) -> (dA, dB) with the forward
// Gemm's transA, transB and alpha: for Y = alpha*op(A)*op(B) + beta*C,
//
//	d op(A) = alpha * dY * op(B)^T,  d op(B) = alpha * op(A)^T * dY
//
// written in A's and B's stored layouts. Either output may be omitted.
// The products split into blocks of 32 output rows fixed by the shapes,
// so results do not depend on the thread count.
type gradGemmKernel struct {
	transA, transB bool
	alpha          float64
	fk             fp32.Kernels
}

func gradBuildGemmGrad(info *kernel.Info, tier kernel.Tier) (kernel.Kernel, error) {
	a := info.Attrs()
	return &gradGemmKernel{transA: a.Int("transA", 0) != 0, transB: a.Int("transB", 0) != 0,
		alpha: float64(a.Float("alpha", 1)), fk: fp32.For(tier)}, nil
}

func (k *gradGemmKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, a, b, err := gradTripleIn(c, in, "dY", "A", "B")
	if err != nil {
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
	if !dy.Shape.Equal(tensor.Shape{m, n}) {
		return c.Errorf("dY shape %v, want [%d %d]", dy.Shape, m, n)
	}
	if nnWants(c, out, 0) {
		da, err := c.Output(0, a.DType, a.Shape.Clone())
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradGemmA(c, k, m, n, ka, float32(k.alpha), dy.F32(), b.F32(), da.F32())
		case tensor.Float64:
			gradGemmA(c, k, m, n, ka, k.alpha, dy.F64(), b.F64(), da.F64())
		}
	}
	if nnWants(c, out, 1) {
		db, err := c.Output(1, b.DType, b.Shape.Clone())
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradGemmB(c, k, m, n, ka, float32(k.alpha), dy.F32(), a.F32(), db.F32())
		case tensor.Float64:
			gradGemmB(c, k, m, n, ka, k.alpha, dy.F64(), a.F64(), db.F64())
		}
	}
	return nil
}

// gradGemmA writes dA in A's layout (m x kk, or kk x m when transA).
func gradGemmA[T Float](c *kernel.Ctx, k *gradGemmKernel, m, n, kk int, alpha T, dy, b, da []T) {
	ldb := max(b2cols(k.transB, kk, n), 1)
	if !k.transA {
		// dA (m x kk) = alpha * dY (m x n) * op(B)^T.
		gradGemmRows(c, k.fk, m, kk, n, func(ws []float32, r0, r1 int) {
			gradGemmAlpha(k.fk, ws, false, !k.transB, r1-r0, kk, n, alpha, dy[r0*n:], max(n, 1), b, ldb, false, da[r0*kk:], max(kk, 1))
		})
		return
	}
	// dA stored (kk x m) = alpha * op(B) (kk x n) * dY^T.
	gradGemmRows(c, k.fk, kk, m, n, func(ws []float32, r0, r1 int) {
		bs := b[r0*ldb:]
		if k.transB {
			bs = b[r0:]
		}
		gradGemmAlpha(k.fk, ws, k.transB, true, r1-r0, m, n, alpha, bs, ldb, dy, max(n, 1), false, da[r0*m:], max(m, 1))
	})
}

// gradGemmB writes dB in B's layout (kk x n, or n x kk when transB).
func gradGemmB[T Float](c *kernel.Ctx, k *gradGemmKernel, m, n, kk int, alpha T, dy, a, db []T) {
	lda := max(b2cols(k.transA, m, kk), 1)
	if !k.transB {
		// dB (kk x n) = alpha * op(A)^T (kk x m) * dY (m x n).
		gradGemmRows(c, k.fk, kk, n, m, func(ws []float32, r0, r1 int) {
			as := a[r0:]
			if k.transA {
				as = a[r0*lda:]
			}
			gradGemmAlpha(k.fk, ws, !k.transA, false, r1-r0, n, m, alpha, as, lda, dy, max(n, 1), false, db[r0*n:], max(n, 1))
		})
		return
	}
	// dB stored (n x kk) = alpha * dY^T (n x m) * op(A) (m x kk).
	gradGemmRows(c, k.fk, n, kk, m, func(ws []float32, r0, r1 int) {
		gradGemmAlpha(k.fk, ws, true, k.transA, r1-r0, kk, m, alpha, dy[r0:], max(n, 1), a, lda, false, db[r0*kk:], max(kk, 1))
	})
}

// b2cols returns the stored column count of an operand whose op() is
// rows x cols: cols, or rows when it is stored transposed.
func b2cols(trans bool, rows, cols int) int {
	if trans {
		return rows
	}
	return cols
}
