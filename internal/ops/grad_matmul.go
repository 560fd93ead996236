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
// Either output may be omitted. float32 runs fp32.Gemm; a shared B with
// contiguous A batches (a linear layer on a 3-D input) is one product with
// the batches folded into the rows (dA) or the inner dimension (dB). Work
// units are (operand matrix, block of 32 rows), fixed by the shapes.
func gradMatMul(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	a, err := need(c, in, 1, "A")
	if err != nil {
		return err
	}
	b, err := need(c, in, 2, "B")
	if err != nil {
		return err
	}
	if err := gradFloats(c, dy, a, b); err != nil {
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
			gradMMA(c, &p, dy.F32(), b.F32(), da.F32())
		case tensor.Float64:
			gradMMA(c, &p, dy.F64(), b.F64(), da.F64())
		}
	}
	if nnWants(c, out, 1) {
		db, err := c.Output(1, b.DType, b.Shape.Clone())
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradMMB(c, &p, dy.F32(), a.F32(), db.F32())
		case tensor.Float64:
			gradMMB(c, &p, dy.F64(), a.F64(), db.F64())
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
func gradMMA[T Float](c *kernel.Ctx, p *mmPlan, dy, b, da []T) {
	m, n, k := p.m, p.n, p.k
	if p.offB == nil && p.contigA {
		// dA (batch*m x k) = dY (batch*m x n) * B^T.
		rows := p.batch * m
		gradGemmRows(c, rows, k, n, func(r0, r1 int) {
			gradGemm(false, true, r1-r0, k, n, dy[r0*n:], max(n, 1), b, max(n, 1), false, da[r0*k:], max(k, 1))
		})
		return
	}
	targets, uses := gradMMTargets(p.batch, p.offA)
	blocks := (m + gradMMRows - 1) / gradMMRows
	units := len(targets) * max(blocks, 1)
	workers := nnWorkers(c, units, 2*float64(p.batch)*float64(m)*float64(n)*float64(k))
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < units; u += workers {
			j, r0 := u/max(blocks, 1), u%max(blocks, 1)*gradMMRows
			r1 := min(m, r0+gradMMRows)
			dst := da[targets[j]+r0*k:]
			for q, i := range uses[j] {
				ob := 0
				if p.offB != nil {
					ob = p.offB[i]
				}
				gradGemm(false, true, r1-r0, k, n, dy[i*m*n+r0*n:], max(n, 1), b[ob:], max(n, 1), q > 0, dst, max(k, 1))
			}
		}
	})
}

// gradMMB computes dB.
func gradMMB[T Float](c *kernel.Ctx, p *mmPlan, dy, a, db []T) {
	m, n, k := p.m, p.n, p.k
	if p.offB == nil && p.contigA {
		// dB (k x n) = A^T (k x batch*m) * dY (batch*m x n).
		inner := p.batch * m
		gradGemmRows(c, k, n, inner, func(r0, r1 int) {
			gradGemm(true, false, r1-r0, n, inner, a[r0:], max(k, 1), dy, max(n, 1), false, db[r0*n:], max(n, 1))
		})
		return
	}
	targets, uses := gradMMTargets(p.batch, p.offB)
	blocks := (k + gradMMRows - 1) / gradMMRows
	units := len(targets) * max(blocks, 1)
	workers := nnWorkers(c, units, 2*float64(p.batch)*float64(m)*float64(n)*float64(k))
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < units; u += workers {
			j, r0 := u/max(blocks, 1), u%max(blocks, 1)*gradMMRows
			r1 := min(k, r0+gradMMRows)
			dst := db[targets[j]+r0*n:]
			for q, i := range uses[j] {
				oa := 0
				if p.offA != nil {
					oa = p.offA[i]
				} else if p.contigA {
					oa = i * m * k
				}
				gradGemm(true, false, r1-r0, n, m, a[oa+r0:], max(k, 1), dy[i*m*n:], max(n, 1), q > 0, dst, max(n, 1))
			}
		}
	})
}

// gradGemmRows splits a product with rows output rows into blocks of
// gradMMRows rows run in parallel (the split depends only on rows).
func gradGemmRows(c *kernel.Ctx, rows, n, k int, fn func(r0, r1 int)) {
	blocks := (rows + gradMMRows - 1) / gradMMRows
	if blocks == 0 {
		return
	}
	workers := nnWorkers(c, blocks, 2*float64(rows)*float64(n)*float64(k))
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < blocks; u += workers {
			fn(u*gradMMRows, min(rows, (u+1)*gradMMRows))
		}
	})
}

// gradGemm computes y = op(A)*op(B) (acc false) or y += op(A)*op(B) (acc
// true) for an m x n result with inner dimension k, row-major with leading
// dimensions; float32 uses fp32.Gemm, other types a plain loop.
func gradGemm[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, acc bool, y []T, ldy int) {
	if m == 0 || n == 0 {
		return
	}
	if af, ok := any(a).([]float32); ok {
		beta := float32(0)
		if acc {
			beta = 1
		}
		fp32.Gemm(transA, transB, m, n, k, 1, af, lda, any(b).([]float32), ldb, beta, any(y).([]float32), ldy)
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
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
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
