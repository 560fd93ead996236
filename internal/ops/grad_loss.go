package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerGradLoss registers Softmax/LogSoftmax gradients and the losses
// with their gradients.
func registerGradLoss(t *kernel.Table) {
	gradAdd(t, "SoftmaxGrad", gradBuildSoftmaxGrad(false))
	gradAdd(t, "LogSoftmaxGrad", gradBuildSoftmaxGrad(true))
	gradAdd(t, "CrossEntropy", gradBuildCE(false))
	gradAdd(t, "CrossEntropyGrad", gradBuildCE(true))
	gradAdd(t, "KLDiv", gradBuildKL(false))
	gradAdd(t, "KLDivGrad", gradBuildKL(true))
	gradAdd(t, "MSE", simple(gradMSE))
	gradAdd(t, "MSEGrad", simple(gradMSEGrad))
}

// gradSoftmaxKernel is goslim.SoftmaxGrad(dY, Y) and LogSoftmaxGrad(dY, Y)
// with attributes axis and legacy (1: the opset < 13 semantics, where the
// input is read as a 2-D matrix split before axis). Per softmax row:
//
//	Softmax:    dX = Y * (dY - sum(dY*Y))
//	LogSoftmax: dX = dY - exp(Y) * sum(dY)
type gradSoftmaxKernel struct {
	axis   int64
	legacy bool
	log    bool
}

func gradBuildSoftmaxGrad(log bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		a := info.Attrs()
		return &gradSoftmaxKernel{axis: a.Int("axis", -1), legacy: a.Int("legacy", 0) != 0, log: log}, nil
	}
}

func (k *gradSoftmaxKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, y, err := gradPairIn(c, in, 0, "dY", "Y")
	if err != nil {
		return err
	}
	r := y.Rank()
	if r == 0 {
		r = 1
	}
	axis, err := normAxis(c, k.axis, r)
	if err != nil {
		return err
	}
	shape := y.Shape
	if y.Rank() == 0 {
		shape = tensor.Shape{1}
	}
	outer, n, inner := shape[:axis].Size(), shape[axis], shape[axis+1:].Size()
	if k.legacy {
		n, inner = shape[axis:].Size(), 1
	}
	dx, err := c.Output(0, y.DType, y.Shape)
	if err != nil {
		return err
	}
	switch y.DType {
	case tensor.Float32:
		gradSoftmaxRun(c, dy.F32(), y.F32(), dx.F32(), outer, n, inner, k.log)
	case tensor.Float64:
		gradSoftmaxRun(c, dy.F64(), y.F64(), dx.F64(), outer, n, inner, k.log)
	}
	return nil
}

func gradSoftmaxRun[T Float](c *kernel.Ctx, dy, y, dx []T, outer, n, inner int, log bool) {
	rows := outer * inner
	workers := nnWorkers(c, rows, 4*float64(rows)*float64(n))
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi; r < rows; r += workers {
			base := r/inner*n*inner + r%inner
			var s float64
			for i, o := 0, base; i < n; i, o = i+1, o+inner {
				if log {
					s += float64(dy[o])
				} else {
					s += float64(dy[o]) * float64(y[o])
				}
			}
			for i, o := 0, base; i < n; i, o = i+1, o+inner {
				if log {
					dx[o] = T(float64(dy[o]) - math.Exp(float64(y[o]))*s)
				} else {
					dx[o] = T(float64(y[o]) * (float64(dy[o]) - s))
				}
			}
		}
	})
}

// gradLossRows checks logits of rank >= 1 (classes on the last axis) and
// returns the row count and class count.
func gradLossRows(c *kernel.Ctx, x *tensor.Tensor) (rows, classes int, err error) {
	if x.Rank() < 1 {
		return 0, 0, c.Errorf("logits must have rank >= 1 (classes last), got a scalar")
	}
	classes = x.Shape[x.Rank()-1]
	if classes == 0 {
		return 0, 0, c.Errorf("logits shape %v has no classes", x.Shape)
	}
	return x.Shape[:x.Rank()-1].Size(), classes, nil
}

// gradScalarIn reads the scalar loss gradient input.
func gradScalarIn(c *kernel.Ctx, in []*tensor.Tensor) (float64, error) {
	t, err := need(c, in, 0, "dLoss")
	if err != nil {
		return 0, err
	}
	if t.Len() != 1 || !t.DType.IsFloat() {
		return 0, c.Errorf("dLoss must be a float scalar, got %v%v", t.DType, t.Shape)
	}
	return t.Float64At(0), nil
}

// gradLossDL reads the scalar loss gradient dLoss, the first input of a
// loss's gradient op (grad true), and returns it with the index of the
// loss's first operand; a loss op itself has dl 1 and first 0.
func gradLossDL(c *kernel.Ctx, in []*tensor.Tensor, grad bool) (dl float64, first int, err error) {
	if !grad {
		return 1, 0, nil
	}
	dl, err = gradScalarIn(c, in)
	return dl, 1, err
}

// gradLossOut writes a float64 loss as a rank-0 output of dtype dt.
func gradLossOut(c *kernel.Ctx, dt tensor.DType, v float64) error {
	t, err := c.Output(0, dt, tensor.Shape{})
	if err != nil {
		return err
	}
	return storeFloat64(c, t, []float64{v})
}

// gradRowSum sums per-row float64 values computed in parallel by f, in
// row order (deterministic for any thread count).
func gradRowSum(c *kernel.Ctx, rows, cost int, f func(r int) float64) float64 {
	vals := make([]float64, rows)
	workers := nnWorkers(c, rows, float64(rows)*float64(cost))
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi; r < rows; r += workers {
			vals[r] = f(r)
		}
	})
	var s float64
	for _, v := range vals {
		s += v
	}
	return s
}

// gradLSE returns max and log(sum(exp(x*scale - max))) + max over a row.
func gradLSE[T Float](x []T, scale float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v)*scale)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v)*scale - m)
	}
	return m + math.Log(s)
}

// gradCE is goslim.CrossEntropy(logits, labels) -> loss and
// goslim.CrossEntropyGrad(dLoss, logits, labels) -> dLogits, with
// attribute label_smoothing s. Logits are (..., C), labels the leading
// shape (int64 or int32); with R rows and targets t = (1-s)*onehot + s/C:
//
//	loss = 1/R sum_r (lse(x_r) - sum_j t_rj * x_rj)
//	dLogits = dLoss/R * (softmax(x_r) - t_r)
type gradCE struct {
	smooth float64
	grad   bool
}

func gradBuildCE(grad bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		s := float64(info.Attrs().Float("label_smoothing", 0))
		if !(s >= 0 && s <= 1) {
			return nil, info.Errorf("label_smoothing %v must be in [0, 1]", s)
		}
		return &gradCE{smooth: s, grad: grad}, nil
	}
}

func (k *gradCE) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dl, first, err := gradLossDL(c, in, k.grad)
	if err != nil {
		return err
	}
	x, err := need(c, in, first, "logits")
	if err != nil {
		return err
	}
	lt, err := need(c, in, first+1, "labels")
	if err != nil {
		return err
	}
	if err := gradFloats(c, x); err != nil {
		return err
	}
	rows, classes, err := gradLossRows(c, x)
	if err != nil {
		return err
	}
	if lt.DType != tensor.Int64 && lt.DType != tensor.Int32 {
		return c.Errorf("labels dtype %v, want int64 or int32", lt.DType)
	}
	if !lt.Shape.Equal(x.Shape[:x.Rank()-1]) {
		return c.Errorf("labels shape %v, want %v for logits %v", lt.Shape, x.Shape[:x.Rank()-1], x.Shape)
	}
	labels := make([]int, rows)
	for r := range labels {
		v := int64(lt.Float64At(r))
		if v < 0 || v >= int64(classes) {
			return c.Errorf("label %d at row %d is outside [0, %d)", v, r, classes)
		}
		labels[r] = int(v)
	}
	if !k.grad {
		var loss float64
		switch x.DType {
		case tensor.Float32:
			loss = gradCELoss(c, x.F32(), labels, classes, k.smooth)
		case tensor.Float64:
			loss = gradCELoss(c, x.F64(), labels, classes, k.smooth)
		}
		return gradLossOut(c, x.DType, loss)
	}
	dx, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	scale := 0.0
	if rows > 0 {
		scale = dl / float64(rows)
	}
	switch x.DType {
	case tensor.Float32:
		gradCEGrad(c, x.F32(), dx.F32(), labels, classes, k.smooth, scale)
	case tensor.Float64:
		gradCEGrad(c, x.F64(), dx.F64(), labels, classes, k.smooth, scale)
	}
	return nil
}

func gradCELoss[T Float](c *kernel.Ctx, x []T, labels []int, classes int, smooth float64) float64 {
	rows := len(labels)
	if rows == 0 {
		return 0
	}
	s := gradRowSum(c, rows, 4*classes, func(r int) float64 {
		xr := x[r*classes : (r+1)*classes]
		l := gradLSE(xr, 1) - (1-smooth)*float64(xr[labels[r]])
		if smooth != 0 {
			var sum float64
			for _, v := range xr {
				sum += float64(v)
			}
			l -= smooth / float64(classes) * sum
		}
		return l
	})
	return s / float64(rows)
}

func gradCEGrad[T Float](c *kernel.Ctx, x, dx []T, labels []int, classes int, smooth, scale float64) {
	rows := len(labels)
	off := smooth / float64(classes)
	workers := nnWorkers(c, rows, 6*float64(rows)*float64(classes))
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi; r < rows; r += workers {
			xr, dr := x[r*classes:(r+1)*classes], dx[r*classes:(r+1)*classes]
			lse := gradLSE(xr, 1)
			for j, v := range xr {
				t := off
				if j == labels[r] {
					t += 1 - smooth
				}
				dr[j] = T(scale * (math.Exp(float64(v)-lse) - t))
			}
		}
	})
}

// gradKL is goslim.KLDiv(student, teacher) -> loss and
// goslim.KLDivGrad(dLoss, student, teacher) -> (dStudent, dTeacher), with
// attribute temperature T. Logits are (..., C) of one shape; per row r,
// p = softmax(teacher_r/T), q = softmax(student_r/T):
//
//	loss = 1/R sum_r KL_r,  KL_r = sum_j p_j (log p_j - log q_j)
//	dStudent = dLoss/(R*T) * (q - p)
//	dTeacher = dLoss/(R*T) * p * (log p - log q - KL_r)
type gradKL struct {
	temp float64
	grad bool
}

func gradBuildKL(grad bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		t := float64(info.Attrs().Float("temperature", 1))
		if !(t > 0) || math.IsInf(t, 0) {
			return nil, info.Errorf("temperature %v must be positive", t)
		}
		return &gradKL{temp: t, grad: grad}, nil
	}
}

func (k *gradKL) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dl, first, err := gradLossDL(c, in, k.grad)
	if err != nil {
		return err
	}
	s, t, err := gradPairIn(c, in, first, "student", "teacher")
	if err != nil {
		return err
	}
	rows, classes, err := gradLossRows(c, s)
	if err != nil {
		return err
	}
	if !k.grad {
		var loss float64
		switch s.DType {
		case tensor.Float32:
			loss = gradKLLoss(c, s.F32(), t.F32(), rows, classes, k.temp)
		case tensor.Float64:
			loss = gradKLLoss(c, s.F64(), t.F64(), rows, classes, k.temp)
		}
		return gradLossOut(c, s.DType, loss)
	}
	var ds, dt *tensor.Tensor
	if nnWants(c, out, 0) {
		if ds, err = c.Output(0, s.DType, s.Shape); err != nil {
			return err
		}
	}
	if nnWants(c, out, 1) {
		if dt, err = c.Output(1, s.DType, s.Shape); err != nil {
			return err
		}
	}
	scale := 0.0
	if rows > 0 {
		scale = dl / (float64(rows) * k.temp)
	}
	switch s.DType {
	case tensor.Float32:
		var a, b []float32
		if ds != nil {
			a = ds.F32()
		}
		if dt != nil {
			b = dt.F32()
		}
		gradKLGrad(c, s.F32(), t.F32(), a, b, rows, classes, k.temp, scale)
	case tensor.Float64:
		var a, b []float64
		if ds != nil {
			a = ds.F64()
		}
		if dt != nil {
			b = dt.F64()
		}
		gradKLGrad(c, s.F64(), t.F64(), a, b, rows, classes, k.temp, scale)
	}
	return nil
}

// gradKLRow returns KL(p || q) of one row and the two log-sum-exps.
func gradKLRow[T Float](sr, tr []T, inv float64) (kl, lseS, lseT float64) {
	lseS, lseT = gradLSE(sr, inv), gradLSE(tr, inv)
	for j, v := range tr {
		lp := float64(v)*inv - lseT
		lq := float64(sr[j])*inv - lseS
		if p := math.Exp(lp); p > 0 {
			kl += p * (lp - lq)
		}
	}
	return kl, lseS, lseT
}

func gradKLLoss[T Float](c *kernel.Ctx, s, t []T, rows, classes int, temp float64) float64 {
	if rows == 0 {
		return 0
	}
	inv := 1 / temp
	sum := gradRowSum(c, rows, 8*classes, func(r int) float64 {
		kl, _, _ := gradKLRow(s[r*classes:(r+1)*classes], t[r*classes:(r+1)*classes], inv)
		return kl
	})
	return sum / float64(rows)
}

func gradKLGrad[T Float](c *kernel.Ctx, s, t, ds, dt []T, rows, classes int, temp, scale float64) {
	inv := 1 / temp
	workers := nnWorkers(c, rows, 12*float64(rows)*float64(classes))
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi; r < rows; r += workers {
			sr, tr := s[r*classes:(r+1)*classes], t[r*classes:(r+1)*classes]
			kl, lseS, lseT := gradKLRow(sr, tr, inv)
			for j, v := range tr {
				lp := float64(v)*inv - lseT
				lq := float64(sr[j])*inv - lseS
				p, q := math.Exp(lp), math.Exp(lq)
				if ds != nil {
					ds[r*classes+j] = T(scale * (q - p))
				}
				if dt != nil {
					d := 0.0
					if p > 0 {
						d = scale * p * (lp - lq - kl)
					}
					dt[r*classes+j] = T(d)
				}
			}
		}
	})
}

// gradMSEChunk is the fixed chunk of MSE's partial sums.
const gradMSEChunk = 1 << 12

// gradMSE is goslim.MSE(A, B) -> mean((A - B)^2) over all elements (A and
// B of one shape), summed in float64 over fixed chunks.
func gradMSE(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, b, err := gradPairIn(c, in, 0, "A", "B")
	if err != nil {
		return err
	}
	n := a.Len()
	var loss float64
	if n > 0 {
		switch a.DType {
		case tensor.Float32:
			loss = gradMSESum(c, a.F32(), b.F32()) / float64(n)
		case tensor.Float64:
			loss = gradMSESum(c, a.F64(), b.F64()) / float64(n)
		}
	}
	return gradLossOut(c, a.DType, loss)
}

func gradMSESum[T Float](c *kernel.Ctx, a, b []T) float64 {
	chunks := (len(a) + gradMSEChunk - 1) / gradMSEChunk
	return gradRowSum(c, chunks, 3*gradMSEChunk, func(r int) float64 {
		lo, hi := r*gradMSEChunk, min(len(a), (r+1)*gradMSEChunk)
		var s float64
		bs := b[lo:hi]
		for i, v := range a[lo:hi] {
			d := float64(v) - float64(bs[i])
			s += d * d
		}
		return s
	})
}

// gradMSEGrad is goslim.MSEGrad(dLoss, A, B) -> (dA, dB):
// dA = 2*dLoss*(A - B)/numel, dB = -dA.
func gradMSEGrad(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dl, err := gradScalarIn(c, in)
	if err != nil {
		return err
	}
	a, b, err := gradPairIn(c, in, 1, "A", "B")
	if err != nil {
		return err
	}
	scale := 0.0
	if n := a.Len(); n > 0 {
		scale = 2 * dl / float64(n)
	}
	for slot, sign := range []float64{1, -1} {
		if !nnWants(c, out, slot) {
			continue
		}
		o, err := c.Output(slot, a.DType, a.Shape)
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			gradScaledDiff(c, a.F32(), b.F32(), o.F32(), sign*scale)
		case tensor.Float64:
			gradScaledDiff(c, a.F64(), b.F64(), o.F64(), sign*scale)
		}
	}
	return nil
}

// gradScaledDiff writes o = scale*(a - b).
func gradScaledDiff[T Float](c *kernel.Ctx, a, b, o []T, scale float64) {
	ewSplit(c, len(a), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = T(scale * (float64(a[i]) - float64(b[i])))
		}
	})
}
