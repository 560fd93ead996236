package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerUnary registers the unary math ops. Float-only ops (Sqrt, Exp,
// Log, Reciprocal) accept float32, float64 and float16 (computed in
// float32); Neg takes floats and signed integers, Abs and Erf every
// numeric dtype.
func registerUnary(t *kernel.Table) {
	add(t, "Sqrt", ewFloatUnary(ewUnaryF{ewSqrtRow[float32], ewSqrtRow[float64]}))
	ewTiered(t, "", "Exp", ewFloatUnaryVec(func(vk vec.Kernels) func(o, x []float32) { return vk.Exp }, ewExpRow[float64]))
	add(t, "Log", ewFloatUnary(ewUnaryF{ewLogRow[float32], ewLogRow[float64]}))
	add(t, "Reciprocal", ewFloatUnary(ewUnaryF{ewRecipRow[float32], ewRecipRow[float64]}))
	add(t, "Neg", ewNumUnary(ewOpNeg))
	add(t, "Abs", ewNumUnary(ewOpAbs))
	ewTiered(t, "", "Erf", ewNumUnaryVec(ewOpErf))
}

// ewFloatUnaryVec builds a float-only unary op whose float32 (and float16)
// loop comes from the session tier's vec loops.
func ewFloatUnaryVec(f32 func(vk vec.Kernels) func(o, x []float32), f64 func(o, x []float64)) ewVecBuilder {
	return func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		return ewFloatKernel(ewUnaryF{f32(vk), f64}), nil
	}
}

// ewNumUnaryVec is ewNumUnary with the float32 loop of Relu and Erf from
// the session tier's vec loops.
func ewNumUnaryVec(op ewNumOp) ewVecBuilder {
	return func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		f32 := ewNumRow[float32](op)
		switch op {
		case ewOpRelu:
			f32 = vk.Relu
		case ewOpErf:
			f32 = vk.Erf
		}
		return &ewNumUnaryKernel{op: op, f32: f32}, nil
	}
}

// ewNumUnaryKernel runs a numeric unary op with a float32 row kernel.
type ewNumUnaryKernel struct {
	op   ewNumOp
	f32  func(o, x []float32)
	task ewUnaryTask32
}

func (k *ewNumUnaryKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	return ewNumUnaryRun(c, in, k.op, k.f32, &k.task)
}

// ewUnaryF holds the float32 and float64 row kernels of a float-only
// unary op. A row kernel writes f(x[i]) to o[i] for every i < len(x).
type ewUnaryF struct {
	f32 func(o, x []float32)
	f64 func(o, x []float64)
}

// ewFloatUnary builds a stateless kernel from fixed row kernels.
func ewFloatUnary(f ewUnaryF) kernel.Builder {
	return func(*kernel.Info) (kernel.Kernel, error) { return ewFloatKernel(f), nil }
}

// ewApplyUnaryF runs a float-only unary op on input 0 into output 0.
func ewApplyUnaryF(c *kernel.Ctx, in []*tensor.Tensor, f ewUnaryF, task *ewUnaryTask32) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32, tensor.Float64, tensor.Float16:
	default:
		return c.Errorf("dtype %v is not supported (want a float dtype)", x.DType)
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32:
		ewUnary32(c, task, o.F32(), x.F32(), f.f32)
	case tensor.Float64:
		ewUnaryRun(c, o.F64(), x.F64(), f.f64)
	case tensor.Float16:
		ewHalfUnary(c, o.Data.([]uint16), x.Data.([]uint16), f.f32)
	}
	return nil
}

// ewUnaryTask32 applies a float32 row kernel to a range of elements.
type ewUnaryTask32 struct {
	f    func(o, x []float32)
	o, x []float32
}

// Run applies the row kernel to elements [lo, hi).
func (t *ewUnaryTask32) Run(lo, hi int) { t.f(t.o[lo:hi], t.x[lo:hi]) }

// ewUnary32 applies f to x into o, split across threads through task
// (owned by the kernel, so nothing is allocated) when large.
func ewUnary32(c *kernel.Ctx, task *ewUnaryTask32, o, x []float32, f func(o, x []float32)) {
	if ewSingle(c, len(x)) {
		f(o, x)
		return
	}
	*task = ewUnaryTask32{f: f, o: o, x: x}
	c.ParallelTask(len(x), task)
	*task = ewUnaryTask32{}
}

// ewUnaryRun applies the row kernel f to x, split across threads when
// large.
func ewUnaryRun[T, U any](c *kernel.Ctx, o []U, x []T, f func(o []U, x []T)) {
	if ewSingle(c, len(x)) {
		f(o, x)
		return
	}
	ewSplit(c, len(x), func(lo, hi int) { f(o[lo:hi], x[lo:hi]) })
}

// ewHalfUnary applies a float32 row kernel to float16 data through
// float32 scratch space.
func ewHalfUnary(c *kernel.Ctx, o, x []uint16, f func(o, x []float32)) {
	s := c.Scratch(2 * len(x))
	xf, of := s[:len(x)], s[len(x):]
	if ewSingle(c, len(x)) {
		ewHalfToF32(xf, x)
		f(of, xf)
		f32ToHalf(o, of)
		return
	}
	ewSplit(c, len(x), func(lo, hi int) {
		ewHalfToF32(xf[lo:hi], x[lo:hi])
		f(of[lo:hi], xf[lo:hi])
		f32ToHalf(o[lo:hi], of[lo:hi])
	})
}

// ewSqrtRow is o = sqrt(x).
func ewSqrtRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = T(math.Sqrt(float64(v)))
	}
}

// ewExpRow is o = exp(x).
func ewExpRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = T(math.Exp(float64(v)))
	}
}

// ewLogRow is o = ln(x).
func ewLogRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = T(math.Log(float64(v)))
	}
}

// ewRecipRow is o = 1/x.
func ewRecipRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = 1 / v
	}
}

// ewNumOp names a unary op defined on every numeric dtype.
type ewNumOp uint8

const (
	ewOpNeg  ewNumOp = iota // -x (floats and signed integers)
	ewOpAbs                 // |x|
	ewOpErf                 // erf(x); integers truncate the float64 result
	ewOpRelu                // max(x, 0)
)

// ewNumUnary builds a kernel for a unary op on any numeric dtype.
func ewNumUnary(op ewNumOp) kernel.Builder {
	return func(*kernel.Info) (kernel.Kernel, error) {
		return &ewNumUnaryKernel{op: op, f32: ewNumRow[float32](op)}, nil
	}
}

// ewNumUnaryRun runs a numeric unary op, with f32 as the float32 (and
// float16) row kernel.
func ewNumUnaryRun(c *kernel.Ctx, in []*tensor.Tensor, op ewNumOp, f32 func(o, x []float32), task *ewUnaryTask32) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		if op == ewOpNeg {
			return c.Errorf("Neg does not support unsigned dtype %v", x.DType)
		}
	}
	if !ewIsNumeric(x.DType) {
		return c.Errorf("dtype %v is not supported", x.DType)
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32:
		ewUnary32(c, task, o.F32(), x.F32(), f32)
	case tensor.Float64:
		ewUnaryRun(c, o.F64(), x.F64(), ewNumRow[float64](op))
	case tensor.Float16:
		ewHalfUnary(c, o.Data.([]uint16), x.Data.([]uint16), f32)
	case tensor.Int8:
		ewUnaryRun(c, o.Data.([]int8), x.Data.([]int8), ewNumRow[int8](op))
	case tensor.Uint8:
		ewUnaryRun(c, o.Data.([]uint8), x.Data.([]uint8), ewNumRow[uint8](op))
	case tensor.Int16:
		ewUnaryRun(c, o.Data.([]int16), x.Data.([]int16), ewNumRow[int16](op))
	case tensor.Uint16:
		ewUnaryRun(c, o.Data.([]uint16), x.Data.([]uint16), ewNumRow[uint16](op))
	case tensor.Int32:
		ewUnaryRun(c, o.Data.([]int32), x.Data.([]int32), ewNumRow[int32](op))
	case tensor.Uint32:
		ewUnaryRun(c, o.Data.([]uint32), x.Data.([]uint32), ewNumRow[uint32](op))
	case tensor.Int64:
		ewUnaryRun(c, o.Data.([]int64), x.Data.([]int64), ewNumRow[int64](op))
	case tensor.Uint64:
		ewUnaryRun(c, o.Data.([]uint64), x.Data.([]uint64), ewNumRow[uint64](op))
	}
	return nil
}

// ewNumRow returns the row kernel of op for T.
func ewNumRow[T Number](op ewNumOp) func(o, x []T) {
	switch op {
	case ewOpNeg:
		return ewNegRow[T]
	case ewOpAbs:
		return ewAbsRow[T]
	case ewOpErf:
		return ewErfRow[T]
	}
	return ewReluRow[T]
}

// ewNegRow is o = -x.
func ewNegRow[T Number](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = -v
	}
}

// ewAbsRow is o = |x| (the most negative integer stays itself, as in C).
func ewAbsRow[T Number](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = -v
		}
		o[i] = v
	}
}

// ewErfRow is o = erf(x) computed in float64.
func ewErfRow[T Number](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = T(math.Erf(float64(v)))
	}
}

// ewReluRow is o = max(x, 0) (NaN stays NaN).
func ewReluRow[T Number](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = max(v, 0)
	}
}
