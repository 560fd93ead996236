package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// registerActivations registers the activation functions and the
// pass-through ops Identity and Dropout (inference only).
func registerActivations(t *kernel.Table) {
	ewTiered(t, "", "Relu", ewNumUnaryVec(ewOpRelu))
	ewTiered(t, "", "Sigmoid", ewFloatUnaryVec(func(vk vec.Kernels) func(o, x []float32) { return vk.Sigmoid }, ewSigmoidRow[float64]))
	ewTiered(t, "", "Tanh", ewFloatUnaryVec(func(vk vec.Kernels) func(o, x []float32) { return vk.Tanh }, ewTanhRow[float64]))
	ewTiered(t, "", "LeakyRelu", func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		a := info.Attrs().Float("alpha", 0.01)
		return ewFloatKernel(ewUnaryF{func(o, x []float32) { vk.LeakyRelu(o, x, a) }, ewLeakyRow(float64(a))}), nil
	})
	ewTiered(t, "", "HardSigmoid", func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		a, b := info.Attrs().Float("alpha", 0.2), info.Attrs().Float("beta", 0.5)
		return ewFloatKernel(ewUnaryF{func(o, x []float32) { vk.HardSigmoid(o, x, a, b) }, ewHardSigmoidRow(float64(a), float64(b))}), nil
	})
	ewTiered(t, "", "HardSwish", ewFloatUnaryVec(func(vk vec.Kernels) func(o, x []float32) { return vk.HardSwish }, ewHardSwishRow[float64]))
	add(t, "PRelu", simple(ewPRelu))
	ewTiered(t, "", "Clip", ewClipBuild)
	ewTiered(t, "", "Softmax", ewSoftmaxBuild(false))
	ewTiered(t, "", "LogSoftmax", ewSoftmaxBuild(true))
	add(t, "Identity", simple(ewIdentity))
	add(t, "Dropout", ewDropoutBuild)
}

// ewFloatKernel wraps row kernels chosen at build time as a kernel.
func ewFloatKernel(f ewUnaryF) kernel.Kernel { return &ewFloatUnaryKernel{f: f} }

// ewFloatUnaryKernel runs a float-only unary op; its task splits large
// float32 inputs across threads without allocating.
type ewFloatUnaryKernel struct {
	f    ewUnaryF
	task ewUnaryTask32
}

func (k *ewFloatUnaryKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	return ewApplyUnaryF(c, in, k.f, &k.task)
}

// ewSigmoidRow is o = 1/(1+exp(-x)), evaluated so that exp never
// overflows.
func ewSigmoidRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		if v >= 0 {
			o[i] = T(1 / (1 + math.Exp(-float64(v))))
		} else {
			e := math.Exp(float64(v))
			o[i] = T(e / (1 + e))
		}
	}
}

// ewTanhRow is o = tanh(x).
func ewTanhRow[T Float](o, x []T) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = T(math.Tanh(float64(v)))
	}
}

// ewLeakyRow returns the row kernel o = x < 0 ? alpha*x : x.
func ewLeakyRow[T Float](alpha T) func(o, x []T) {
	return func(o, x []T) {
		o = o[:len(x)]
		for i, v := range x {
			if v < 0 {
				v *= alpha
			}
			o[i] = v
		}
	}
}

// ewHardSigmoidRow returns the row kernel o = max(0, min(1, alpha*x+beta)).
func ewHardSigmoidRow[T Float](alpha, beta T) func(o, x []T) {
	return func(o, x []T) {
		o = o[:len(x)]
		for i, v := range x {
			o[i] = max(0, min(1, alpha*v+beta))
		}
	}
}

// ewHardSwishRow is o = x * max(0, min(1, x/6 + 1/2)).
func ewHardSwishRow[T Float](o, x []T) {
	const alpha, beta = 1.0 / 6, 0.5
	o = o[:len(x)]
	for i, v := range x {
		o[i] = v * max(0, min(1, T(alpha)*v+beta))
	}
}

// ewPRelu is PRelu: Y = X < 0 ? slope*X : X, with slope broadcast
// unidirectionally to X's shape.
func ewPRelu(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	s, err := need(c, in, 1, "slope")
	if err != nil {
		return err
	}
	if err := sameDType(c, x, s); err != nil {
		return err
	}
	if bs, err := BroadcastShapes(x.Shape, s.Shape); err != nil || !bs.Equal(x.Shape) {
		return c.Errorf("slope shape %v does not broadcast to X shape %v", s.Shape, x.Shape)
	}
	if !ewIsNumeric(x.DType) {
		return c.Errorf("dtype %v is not supported", x.DType)
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	p := newEwPlan(x.Shape, x.Shape, s.Shape)
	if p.total == 0 {
		return nil
	}
	switch x.DType {
	case tensor.Float32:
		ewRun2(c, &p, o.F32(), x.F32(), s.F32(), ewPReluRow[float32])
	case tensor.Float64:
		ewRun2(c, &p, o.F64(), x.F64(), s.F64(), ewPReluRow[float64])
	case tensor.Float16:
		ewHalfBinary(c, &p, x, s, o, ewPReluRow[float32])
	case tensor.Int8:
		ewPReluTyped[int8](c, &p, x, s, o)
	case tensor.Uint8:
		ewPReluTyped[uint8](c, &p, x, s, o)
	case tensor.Int16:
		ewPReluTyped[int16](c, &p, x, s, o)
	case tensor.Uint16:
		ewPReluTyped[uint16](c, &p, x, s, o)
	case tensor.Int32:
		ewPReluTyped[int32](c, &p, x, s, o)
	case tensor.Uint32:
		ewPReluTyped[uint32](c, &p, x, s, o)
	case tensor.Int64:
		ewPReluTyped[int64](c, &p, x, s, o)
	case tensor.Uint64:
		ewPReluTyped[uint64](c, &p, x, s, o)
	}
	return nil
}

func ewPReluTyped[T Number](c *kernel.Ctx, p *ewPlan, x, s, o *tensor.Tensor) {
	ewRun2(c, p, o.Data.([]T), x.Data.([]T), s.Data.([]T), ewPReluRow[T])
}

// ewPReluRow is o[j] = x[j*sx] < 0 ? x[j*sx]*s[j*ss] : x[j*sx].
func ewPReluRow[T Number](o, x, s []T, sx, ss int) {
	if sx != 1 {
		ewFuncRow(ewPReluOne[T])(o, x, s, sx, ss)
		return
	}
	x = x[:len(o)]
	if ss == 0 {
		a := s[0]
		for i, v := range x {
			if v < 0 {
				v *= a
			}
			o[i] = v
		}
		return
	}
	s = s[:len(o)]
	for i, v := range x {
		if v < 0 {
			v *= s[i]
		}
		o[i] = v
	}
}

func ewPReluOne[T Number](x, s T) T {
	if x < 0 {
		return x * s
	}
	return x
}

// ewClipBuild builds Clip. Before opset 11 the bounds are the float
// attributes min and max; since then they are optional scalar inputs of
// X's dtype (either may be omitted). Y = min(max(X, min), max), so a min
// above max yields max everywhere, as the spec says.
func ewClipBuild(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	k := &clipKernel{vk: vk}
	if info.Opset < 11 {
		k.attrs = &[2]float32{info.Attrs().Float("min", -math.MaxFloat32), info.Attrs().Float("max", math.MaxFloat32)}
	}
	return k, nil
}

// clipKernel is Clip: bounds from attrs (opset < 11, else nil: from the
// inputs), and the task of its parallel float32 path (kept here so that
// a call allocates nothing).
type clipKernel struct {
	attrs *[2]float32
	vk    vec.Kernels
	task  clipTask
}

func (k *clipKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	return ewClip(c, in, k.attrs, k.vk, &k.task)
}

// clipTask clips a range of float32 elements.
type clipTask struct {
	clip   func(o, x []float32, lo, hi float32)
	o, x   []float32
	lo, hi float32
}

// Run clips elements [l, h) (kernel.Task).
func (t *clipTask) Run(l, h int) { t.clip(t.o[l:h], t.x[l:h], t.lo, t.hi) }

// ewClip runs Clip with bounds from attrs (opset < 11) or from inputs 1
// and 2 (attrs == nil). float32 and float16 run vk.Clip with an absent
// bound as an infinite one (the same values).
func ewClip(c *kernel.Ctx, in []*tensor.Tensor, attrs *[2]float32, vk vec.Kernels, task *clipTask) error {
	x, err := need(c, in, 0, "input")
	if err != nil {
		return err
	}
	if !ewIsNumeric(x.DType) {
		return c.Errorf("dtype %v is not supported", x.DType)
	}
	lo, hi := opt(in, 1), opt(in, 2)
	if attrs != nil {
		if !x.DType.IsFloat() {
			return c.Errorf("dtype %v is not supported before opset 11 (want a float dtype)", x.DType)
		}
		lo, hi = nil, nil
	}
	for i, b := range [2]*tensor.Tensor{lo, hi} {
		if b == nil {
			continue
		}
		name := [2]string{"min", "max"}[i]
		if b.DType != x.DType {
			return c.Errorf("%s has dtype %v, input has %v", name, b.DType, x.DType)
		}
		if b.Len() != 1 {
			return c.Errorf("%s must be a scalar, got shape %s", name, b.Shape.String())
		}
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32, tensor.Float16:
		b := [2]float32{float32(math.Inf(-1)), float32(math.Inf(1))}
		if attrs != nil {
			b = *attrs
		}
		for i, t := range [2]*tensor.Tensor{lo, hi} {
			switch {
			case t == nil:
			case x.DType == tensor.Float32:
				b[i] = t.F32()[0]
			default:
				b[i] = tensor.HalfToFloat32(t.Data.([]uint16)[0])
			}
		}
		ewClipF32(c, x, o, b[0], b[1], vk, task)
	case tensor.Float64:
		ewClipTyped[float64](c, x, o, lo, hi, attrs)
	case tensor.Int8:
		ewClipTyped[int8](c, x, o, lo, hi, nil)
	case tensor.Uint8:
		ewClipTyped[uint8](c, x, o, lo, hi, nil)
	case tensor.Int16:
		ewClipTyped[int16](c, x, o, lo, hi, nil)
	case tensor.Uint16:
		ewClipTyped[uint16](c, x, o, lo, hi, nil)
	case tensor.Int32:
		ewClipTyped[int32](c, x, o, lo, hi, nil)
	case tensor.Uint32:
		ewClipTyped[uint32](c, x, o, lo, hi, nil)
	case tensor.Int64:
		ewClipTyped[int64](c, x, o, lo, hi, nil)
	case tensor.Uint64:
		ewClipTyped[uint64](c, x, o, lo, hi, nil)
	}
	return nil
}

// ewClipF32 clips float32 (or float16, through float32) x into o on the
// vec loops; kept apart so that the closures of the parallel paths do not
// make the caller's variables escape.
func ewClipF32(c *kernel.Ctx, x, o *tensor.Tensor, lo, hi float32, vk vec.Kernels, task *clipTask) {
	clip := vk.Clip // closures capture this, not the large vk
	if x.DType != tensor.Float32 {
		ewHalfUnary(c, o.Data.([]uint16), x.Data.([]uint16), func(o, x []float32) { clip(o, x, lo, hi) })
		return
	}
	xs, os := x.F32(), o.F32()
	if ewSingle(c, len(xs)) {
		clip(os, xs, lo, hi)
		return
	}
	*task = clipTask{clip: clip, o: os, x: xs, lo: lo, hi: hi}
	c.ParallelTask(len(xs), task)
	*task = clipTask{}
}

// ewClipTyped clips T storage; attrs (float dtypes only) override lo/hi.
func ewClipTyped[T Number](c *kernel.Ctx, x, o, lo, hi *tensor.Tensor, attrs *[2]float32) {
	var b ewClipBounds[T]
	if attrs != nil {
		b = ewClipBounds[T]{T(attrs[0]), T(attrs[1]), true, true}
	} else {
		if lo != nil {
			b.lo, b.hasLo = lo.Data.([]T)[0], true
		}
		if hi != nil {
			b.hi, b.hasHi = hi.Data.([]T)[0], true
		}
	}
	ewUnaryRun(c, o.Data.([]T), x.Data.([]T), b.row)
}

// ewClipBounds holds Clip's optional bounds.
type ewClipBounds[T Number] struct {
	lo, hi       T
	hasLo, hasHi bool
}

// row is the Clip row kernel (NaN stays NaN).
func (b ewClipBounds[T]) row(o, x []T) {
	o = o[:len(x)]
	lo, hi := b.lo, b.hi
	switch {
	case b.hasLo && b.hasHi:
		for i, v := range x {
			o[i] = min(max(v, lo), hi)
		}
	case b.hasLo:
		for i, v := range x {
			o[i] = max(v, lo)
		}
	case b.hasHi:
		for i, v := range x {
			o[i] = min(v, hi)
		}
	default:
		copy(o, x)
	}
}

// ewIdentity is Identity: the output is a view of the input.
func ewIdentity(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "input")
	if err != nil {
		return err
	}
	_, err = c.Alias(0, 0, x, x.Shape)
	return err
}

// ewDropoutTrainingErr is the message for a Dropout that would be random.
const ewDropoutTrainingErr = "training-mode Dropout is not supported by the executor"

// ewDropoutBuild builds Dropout for inference: the output is a view of the
// input and the optional mask is all true (before opset 10 the mask has
// the data's dtype and is all ones). Since opset 12 a training_mode input
// that is true makes the op random unless ratio is 0; that is an error,
// caught when the session is built if training_mode is a constant.
func ewDropoutBuild(info *kernel.Info) (kernel.Kernel, error) {
	opset := info.Opset
	if opset >= 12 && len(info.Consts) > 2 {
		if tm := info.Consts[2]; tm != nil && ewDropoutTraining(tm) {
			ratioZero := false
			if len(info.Node.Inputs) > 1 && info.Node.Inputs[1] != ir.NoValue {
				if r := info.Consts[1]; r != nil && r.Len() == 1 && r.Float64At(0) == 0 {
					ratioZero = true
				}
			}
			if !ratioZero {
				return nil, info.Errorf("%s", ewDropoutTrainingErr)
			}
		}
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		if opset >= 12 {
			if tm := opt(in, 2); tm != nil && ewDropoutTraining(tm) {
				ratio := 0.5
				if r := opt(in, 1); r != nil && r.Len() == 1 {
					ratio = r.Float64At(0)
				}
				if ratio != 0 {
					return c.Errorf("%s", ewDropoutTrainingErr)
				}
			}
		}
		if _, err := c.Alias(0, 0, x, x.Shape); err != nil {
			return err
		}
		if len(out) < 2 || (c.Node != nil && (len(c.Node.Outputs) < 2 || c.Node.Outputs[1] == ir.NoValue)) {
			return nil
		}
		mdt := tensor.Bool
		if opset < 10 {
			mdt = x.DType
		}
		m, err := c.Output(1, mdt, x.Shape)
		if err != nil {
			return err
		}
		return ewFillOne(c, m)
	}), nil
}

// ewDropoutTraining reports whether a training_mode tensor is true.
func ewDropoutTraining(t *tensor.Tensor) bool {
	return t.Len() == 1 && t.Float64At(0) != 0
}

// ewFillOne sets every element of t to one (true for bool).
func ewFillOne(c *kernel.Ctx, t *tensor.Tensor) error {
	switch d := t.Data.(type) {
	case []bool:
		for i := range d {
			d[i] = true
		}
	case []float32:
		for i := range d {
			d[i] = 1
		}
	case []float64:
		for i := range d {
			d[i] = 1
		}
	case []uint16:
		one := uint16(1)
		if t.DType == tensor.Float16 {
			one = tensor.Float32ToHalf(1)
		}
		for i := range d {
			d[i] = one
		}
	default:
		return c.Errorf("mask dtype %v is not supported", t.DType)
	}
	return nil
}
