package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gradDomain is the domain of goslim's internal training ops.
const gradDomain = "goslim"

// registerGrad registers the training ops of package autodiff: the ONNX
// Gelu forward op (opset 20), training-mode forward ops (BatchNormTrain,
// DropoutTrain), losses (CrossEntropy, KLDiv, MSE) and the gradient ops,
// all in domain "goslim". Gradient kernels compute float32 and float64;
// their work splits are fixed by the shapes, never by the thread count, so
// results are bit-identical for any number of threads.
func registerGrad(t *kernel.Table) {
	t.Add(kernel.Entry{Op: "Gelu", Name: "generic", Priority: kernel.Generic, MinOpset: 20, Build: gradBuildGelu})
	gradAdd(t, "SumTo", simple(gradSumTo))
	gradAdd(t, "ReduceGrad", gradBuildReduceGrad)
	gradAdd(t, "ReluGrad", gradElemBuilder(func(*kernel.Info) (gradElemF, error) {
		return gradElemF{gradReluRow32, gradReluRow[float64]}, nil
	}))
	gradAdd(t, "SigmoidGrad", gradElemBuilder(func(*kernel.Info) (gradElemF, error) {
		return gradElemF{gradSigmoidRow[float32], gradSigmoidRow[float64]}, nil
	}))
	gradAdd(t, "TanhGrad", gradElemBuilder(func(*kernel.Info) (gradElemF, error) {
		return gradElemF{gradTanhRow[float32], gradTanhRow[float64]}, nil
	}))
	gradAdd(t, "LeakyReluGrad", gradElemBuilder(func(info *kernel.Info) (gradElemF, error) {
		a := info.Attrs().Float("alpha", 0.01)
		return gradElemF{gradLeakyRow(a), gradLeakyRow(float64(a))}, nil
	}))
	gradAdd(t, "HardSigmoidGrad", gradElemBuilder(func(info *kernel.Info) (gradElemF, error) {
		a, b := info.Attrs().Float("alpha", 0.2), info.Attrs().Float("beta", 0.5)
		return gradElemF{gradHardSigmoidRow(a, b), gradHardSigmoidRow(float64(a), float64(b))}, nil
	}))
	gradAdd(t, "HardSwishGrad", gradElemBuilder(func(*kernel.Info) (gradElemF, error) {
		return gradElemF{gradHardSwishRow[float32], gradHardSwishRow[float64]}, nil
	}))
	gradAdd(t, "ErfGrad", gradElemBuilder(func(*kernel.Info) (gradElemF, error) {
		return gradElemF{gradErfRow[float32], gradErfRow[float64]}, nil
	}))
	gradAdd(t, "GeluGrad", gradElemBuilder(func(info *kernel.Info) (gradElemF, error) {
		tanh, err := gradGeluApprox(info)
		if err != nil {
			return gradElemF{}, err
		}
		return gradElemF{gradGeluRow[float32](tanh), gradGeluRow[float64](tanh)}, nil
	}))
	gradAdd(t, "ClipGrad", gradBuildClipGrad)
	gradAdd(t, "DropoutTrain", gradBuildDropout)
	gradAdd(t, "DropoutGrad", gradBuildDropoutGrad)
	registerGradNN(t)
	registerGradLoss(t)
	registerGradShape(t)
}

// gradAdd registers a generic goslim-domain entry.
func gradAdd(t *kernel.Table, op string, b kernel.Builder) {
	t.Add(kernel.Entry{Domain: gradDomain, Op: op, Name: "generic", Priority: kernel.Generic, Build: b})
}

// gradFloats checks that every non-nil tensor is float32 or float64 and
// that they share one dtype.
func gradFloats(c *kernel.Ctx, ts ...*tensor.Tensor) error {
	var dt tensor.DType
	for _, t := range ts {
		if t == nil {
			continue
		}
		if t.DType != tensor.Float32 && t.DType != tensor.Float64 {
			return c.Errorf("dtype %v is not supported (want float32 or float64)", t.DType)
		}
		if dt == 0 {
			dt = t.DType
		} else if t.DType != dt {
			return c.Errorf("inputs have different dtypes %v and %v", dt, t.DType)
		}
	}
	return nil
}

// gradShapeArg reads a shape operand (1-D int64 tensor of non-negative
// dims) and checks the element count.
func gradShapeArg(c *kernel.Ctx, t *tensor.Tensor, name string) (tensor.Shape, error) {
	if t == nil {
		return nil, c.Errorf("missing shape input %s", name)
	}
	if t.DType != tensor.Int64 || t.Rank() != 1 {
		return nil, c.Errorf("%s must be a 1-D int64 tensor, got %v%v", name, t.DType, t.Shape)
	}
	v := t.I64()
	s := make(tensor.Shape, len(v))
	total := int64(1)
	for i, d := range v {
		if d < 0 || d > tensor.MaxElements {
			return nil, c.Errorf("%s %v has an invalid dim", name, v)
		}
		s[i] = int(d)
		if total *= max(d, 1); total > tensor.MaxElements {
			return nil, c.Errorf("%s %v is too large", name, v)
		}
	}
	return s, nil
}

// gradPairIn reads inputs i and i+1, named an and bn, and checks that they
// are float tensors of one dtype and one shape.
func gradPairIn(c *kernel.Ctx, in []*tensor.Tensor, i int, an, bn string) (a, b *tensor.Tensor, err error) {
	if a, err = need(c, in, i, an); err != nil {
		return nil, nil, err
	}
	if b, err = need(c, in, i+1, bn); err != nil {
		return nil, nil, err
	}
	if err := gradFloats(c, a, b); err != nil {
		return nil, nil, err
	}
	if err := gradSameShape(c, a, b, an, bn); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// gradShapedIn reads a gradient op's float input 0 (named gn) and the
// shape given as input 1 (named sn).
func gradShapedIn(c *kernel.Ctx, in []*tensor.Tensor, gn, sn string) (*tensor.Tensor, tensor.Shape, error) {
	g, err := need(c, in, 0, gn)
	if err != nil {
		return nil, nil, err
	}
	if err := gradFloats(c, g); err != nil {
		return nil, nil, err
	}
	s, err := gradShapeArg(c, opt(in, 1), sn)
	if err != nil {
		return nil, nil, err
	}
	return g, s, nil
}

// gradSameShape checks that two tensors have one shape.
func gradSameShape(c *kernel.Ctx, a, b *tensor.Tensor, an, bn string) error {
	if !a.Shape.Equal(b.Shape) {
		return c.Errorf("%s shape %v differs from %s shape %v", an, a.Shape, bn, b.Shape)
	}
	return nil
}

// gradSumTo is goslim.SumTo(G, shape): G summed over the axes along which
// a tensor of the given shape broadcasts to G's shape (the reverse of
// numpy broadcasting). Equal shapes make the output a view of G.
func gradSumTo(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	g, s, err := gradShapedIn(c, in, "G", "shape")
	if err != nil {
		return err
	}
	if s.Equal(g.Shape) {
		_, err := c.Alias(0, 0, g, s)
		return err
	}
	if b, err := BroadcastShapes(s, g.Shape); err != nil || !b.Equal(g.Shape) {
		return c.Errorf("shape %v does not broadcast to the gradient shape %v", s, g.Shape)
	}
	o, err := c.Output(0, g.DType, s.Clone())
	if err != nil {
		return err
	}
	switch g.DType {
	case tensor.Float32:
		gradSumToRun(g.Shape, s, g.F32(), o.F32())
	case tensor.Float64:
		gradSumToRun(g.Shape, s, g.F64(), o.F64())
	}
	return nil
}

// gradSumToRun sums g (shape gs) into o (shape s, broadcastable to gs) in
// row-major order of g: o[j] = sum of g over the elements that map to j.
func gradSumToRun[T Float](gs, s tensor.Shape, g, o []T) {
	clear(o)
	p := newEwPlan(gs, gs, s)
	inner := p.inner(1)
	p.walk(0, p.total, func(oo, n int, off [3]int) {
		src := g[oo : oo+n]
		if inner == 0 {
			var acc float64
			for _, v := range src {
				acc += float64(v)
			}
			o[off[1]] += T(acc)
			return
		}
		dst := o[off[1] : off[1]+n]
		for i, v := range src {
			dst[i] += v
		}
	})
}

// gradReduceKernel is goslim.ReduceGrad(dY, x_shape[, axes]): the gradient
// of ReduceSum (mean=0) or ReduceMean (mean=1) with the forward node's
// attributes keepdims, noop_with_empty_axes and (older opsets) axes:
// dX = dY broadcast back over the reduced axes, divided by the number of
// reduced elements for the mean.
type gradReduceKernel struct {
	axes     []int64
	hasAxes  bool
	keepDims bool
	noop     bool
	mean     bool
}

func gradBuildReduceGrad(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &gradReduceKernel{keepDims: a.Int("keepdims", 1) != 0, noop: a.Int("noop_with_empty_axes", 0) != 0,
		mean: a.Int("mean", 0) != 0}
	k.axes, k.hasAxes = a.Ints("axes")
	return k, nil
}

func (k *gradReduceKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, xs, err := gradShapedIn(c, in, "dY", "x_shape")
	if err != nil {
		return err
	}
	axes, has := k.axes, k.hasAxes
	if t := opt(in, 2); t != nil {
		if axes, err = shapeInts(c, t, "axes"); err != nil {
			return err
		}
		has = true
	}
	r := len(xs)
	mask := make([]bool, r)
	if !has || len(axes) == 0 {
		if k.noop && has {
			// noop_with_empty_axes with empty axes: the forward op was the
			// identity.
			if !dy.Shape.Equal(xs) {
				return c.Errorf("dY shape %v, want %v", dy.Shape, xs)
			}
			_, err := c.Alias(0, 0, dy, xs.Clone())
			return err
		}
		for i := range mask {
			mask[i] = true
		}
	} else {
		ax, err := shapeAxes(c, axes, r)
		if err != nil {
			return err
		}
		for _, a := range ax {
			mask[a] = true
		}
	}
	keep := make(tensor.Shape, r)
	var reduced tensor.Shape
	count := 1
	for i, d := range xs {
		keep[i] = d
		if mask[i] {
			keep[i] = 1
			count *= d
		} else {
			reduced = append(reduced, d)
		}
	}
	want := reduced
	if k.keepDims {
		want = keep
	}
	if !dy.Shape.Equal(want) {
		return c.Errorf("dY shape %v, want %v for input shape %v", dy.Shape, want, xs)
	}
	o, err := c.Output(0, dy.DType, xs.Clone())
	if err != nil {
		return err
	}
	scale := 1.0
	if k.mean && count > 0 {
		scale = 1 / float64(count)
	}
	switch dy.DType {
	case tensor.Float32:
		gradBroadcast(c, xs, keep, dy.F32(), o.F32(), float32(scale))
	case tensor.Float64:
		gradBroadcast(c, xs, keep, dy.F64(), o.F64(), scale)
	}
	return nil
}

// gradBroadcast writes o (shape os) = scale * x broadcast from shape xs.
func gradBroadcast[T Float](c *kernel.Ctx, os, xs tensor.Shape, x, o []T, scale T) {
	p := newEwPlan(os, os, xs)
	inner := p.inner(1)
	ewSplit(c, p.total, func(lo, hi int) {
		p.walk(lo, hi, func(oo, n int, off [3]int) {
			dst := o[oo : oo+n]
			if inner == 0 {
				v := x[off[1]] * scale
				for i := range dst {
					dst[i] = v
				}
				return
			}
			src := x[off[1] : off[1]+n]
			for i, v := range src {
				dst[i] = v * scale
			}
		})
	})
}

// gradElemF holds the float32 and float64 row kernels of an elementwise
// gradient dX = f(dY, Z), where Z is the forward input or output.
type gradElemF struct {
	f32 func(dx, dy, z []float32)
	f64 func(dx, dy, z []float64)
}

// gradElemBuilder builds an elementwise gradient kernel (dY, Z) -> dX;
// make chooses the row kernels from the attributes.
func gradElemBuilder(make func(*kernel.Info) (gradElemF, error)) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		f, err := make(info)
		if err != nil {
			return nil, err
		}
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			return gradElemRun(c, in, f)
		}), nil
	}
}

func gradElemRun(c *kernel.Ctx, in []*tensor.Tensor, f gradElemF) error {
	dy, z, err := gradPairIn(c, in, 0, "dY", "X")
	if err != nil {
		return err
	}
	o, err := c.Output(0, dy.DType, dy.Shape)
	if err != nil {
		return err
	}
	switch dy.DType {
	case tensor.Float32:
		dx, g, x := o.F32(), dy.F32(), z.F32()
		ewSplit(c, len(g), func(lo, hi int) { f.f32(dx[lo:hi], g[lo:hi], x[lo:hi]) })
	case tensor.Float64:
		dx, g, x := o.F64(), dy.F64(), z.F64()
		ewSplit(c, len(g), func(lo, hi int) { f.f64(dx[lo:hi], g[lo:hi], x[lo:hi]) })
	}
	return nil
}

// gradReluRow: dx = dy where y > 0 (y is Relu's output), else 0.
func gradReluRow[T Float](dx, dy, y []T) {
	dx, y = dx[:len(dy)], y[:len(dy)]
	for i, g := range dy {
		if y[i] > 0 {
			dx[i] = g
		} else {
			dx[i] = 0
		}
	}
}

// gradReluRow32 is gradReluRow for float32 without a data-dependent
// branch (the sign of y is random in training, so a branch mispredicts):
// dy's bits are masked by y > 0.
func gradReluRow32(dx, dy, y []float32) {
	dx, y = dx[:len(dy)], y[:len(dy)]
	for i, g := range dy {
		m := uint32(0)
		if y[i] > 0 {
			m = ^uint32(0)
		}
		dx[i] = math.Float32frombits(math.Float32bits(g) & m)
	}
}

// gradSigmoidRow: dx = dy * y * (1 - y) (y is Sigmoid's output).
func gradSigmoidRow[T Float](dx, dy, y []T) {
	dx, y = dx[:len(dy)], y[:len(dy)]
	for i, g := range dy {
		dx[i] = g * y[i] * (1 - y[i])
	}
}

// gradTanhRow: dx = dy * (1 - y^2) (y is Tanh's output).
func gradTanhRow[T Float](dx, dy, y []T) {
	dx, y = dx[:len(dy)], y[:len(dy)]
	for i, g := range dy {
		dx[i] = g * (1 - y[i]*y[i])
	}
}

// gradLeakyRow: dx = dy where x > 0, alpha*dy elsewhere.
func gradLeakyRow[T Float](alpha T) func(dx, dy, x []T) {
	return func(dx, dy, x []T) {
		dx, x = dx[:len(dy)], x[:len(dy)]
		for i, g := range dy {
			if x[i] > 0 {
				dx[i] = g
			} else {
				dx[i] = alpha * g
			}
		}
	}
}

// gradHardSigmoidRow: dx = alpha*dy where 0 < alpha*x + beta < 1, else 0.
func gradHardSigmoidRow[T Float](alpha, beta T) func(dx, dy, x []T) {
	return func(dx, dy, x []T) {
		dx, x = dx[:len(dy)], x[:len(dy)]
		for i, g := range dy {
			if v := alpha*x[i] + beta; v > 0 && v < 1 {
				dx[i] = alpha * g
			} else {
				dx[i] = 0
			}
		}
	}
}

// gradHardSwishRow: HardSwish(x) = x * clamp(x/6 + 1/2, 0, 1), so dx = 0
// for x < -3, dy*(x/3 + 1/2) for -3 <= x <= 3 and dy for x > 3 (as
// PyTorch).
func gradHardSwishRow[T Float](dx, dy, x []T) {
	dx, x = dx[:len(dy)], x[:len(dy)]
	for i, g := range dy {
		switch v := x[i]; {
		case v < -3:
			dx[i] = 0
		case v <= 3:
			dx[i] = g * (v/3 + 0.5)
		default:
			dx[i] = g
		}
	}
}

// gradErfRow: dx = dy * 2/sqrt(pi) * exp(-x^2).
func gradErfRow[T Float](dx, dy, x []T) {
	dx, x = dx[:len(dy)], x[:len(dy)]
	const k = 2 / math.SqrtPi
	for i, g := range dy {
		v := float64(x[i])
		dx[i] = g * T(k*math.Exp(-v*v))
	}
}

// gradGeluApprox reads Gelu's approximate attribute: false for "none",
// true for "tanh".
func gradGeluApprox(info *kernel.Info) (bool, error) {
	switch s := info.Attrs().Str("approximate", "none"); s {
	case "none", "":
		return false, nil
	case "tanh":
		return true, nil
	default:
		return false, info.Errorf("unknown Gelu approximate=%q", s)
	}
}

// Constants of the tanh approximation of Gelu.
const (
	geluK = 0.7978845608028654 // sqrt(2/pi)
	geluC = 0.044715
)

// gradBuildGelu builds ONNX Gelu (opset 20):
//
//	y = x/2 * (1 + erf(x/sqrt(2)))                              approximate="none"
//	y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))       approximate="tanh"
//
// computed in float64 for float32, float64 and float16 inputs.
func gradBuildGelu(info *kernel.Info) (kernel.Kernel, error) {
	tanh, err := gradGeluApprox(info)
	if err != nil {
		return nil, err
	}
	return ewFloatKernel(ewUnaryF{gradGeluFwdRow[float32](tanh), gradGeluFwdRow[float64](tanh)}), nil
}

func gradGeluFwdRow[T Float](tanh bool) func(o, x []T) {
	return func(o, x []T) {
		o = o[:len(x)]
		for i, xv := range x {
			v := float64(xv)
			if tanh {
				o[i] = T(0.5 * v * (1 + math.Tanh(geluK*(v+geluC*v*v*v))))
			} else {
				o[i] = T(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
			}
		}
	}
}

// gradGeluRow is the derivative of Gelu times dy:
//
//	none: Phi(x) + x*phi(x), Phi the normal CDF, phi its density
//	tanh: (1+t)/2 + x/2 * (1-t^2) * sqrt(2/pi) * (1 + 3*0.044715 x^2), t = tanh(u)
func gradGeluRow[T Float](tanh bool) func(dx, dy, x []T) {
	return func(dx, dy, x []T) {
		dx, x = dx[:len(dy)], x[:len(dy)]
		for i, g := range dy {
			v := float64(x[i])
			var d float64
			if tanh {
				t := math.Tanh(geluK * (v + geluC*v*v*v))
				d = 0.5*(1+t) + 0.5*v*(1-t*t)*geluK*(1+3*geluC*v*v)
			} else {
				d = 0.5*(1+math.Erf(v/math.Sqrt2)) + v*math.Exp(-0.5*v*v)/math.Sqrt(2*math.Pi)
			}
			dx[i] = g * T(d)
		}
	}
}

// gradBuildClipGrad builds goslim.ClipGrad(dY, X[, min[, max]]) with the
// forward Clip's attributes min and max (opsets before 11): dX = dY where
// min <= x <= max, 0 elsewhere (as PyTorch). The bounds come from the
// inputs when present, else the attributes, else are infinite.
func gradBuildClipGrad(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	lo, hi := math.Inf(-1), math.Inf(1)
	if a.Has("min") {
		lo = float64(a.Float("min", 0))
	}
	if a.Has("max") {
		hi = float64(a.Float("max", 0))
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		lo, hi := lo, hi
		for i, b := range []*float64{&lo, &hi} {
			if t := opt(in, 2+i); t != nil {
				if t.Len() != 1 {
					return c.Errorf("clip bound %d must be a scalar, got shape %v", i, t.Shape)
				}
				*b = t.Float64At(0)
			}
		}
		return gradElemRun(c, in, gradElemF{gradClipRow(float32(lo), float32(hi)), gradClipRow(lo, hi)})
	}), nil
}

func gradClipRow[T Float](lo, hi T) func(dx, dy, x []T) {
	return func(dx, dy, x []T) {
		dx, x = dx[:len(dy)], x[:len(dy)]
		for i, g := range dy {
			if v := x[i]; v >= lo && v <= hi {
				dx[i] = g
			} else {
				dx[i] = 0
			}
		}
	}
}

// gradDropoutRatio reads and checks the ratio attribute of the dropout
// ops.
func gradDropoutRatio(info *kernel.Info) (float64, error) {
	r := float64(info.Attrs().Float("ratio", 0.5))
	if !(r >= 0 && r < 1) {
		return 0, info.Errorf("dropout ratio %v must be in [0, 1)", r)
	}
	return r, nil
}

// gradBuildDropout builds goslim.DropoutTrain(X, seed) -> (Y, mask) with
// attributes ratio and salt: element i is kept (mask true, y = x/(1-ratio))
// when the 64-bit hash of (seed, salt, i) is at least ratio*2^64, dropped
// (mask false, y = 0) otherwise. The mask depends only on seed, salt and
// the element index, not on the thread count.
func gradBuildDropout(info *kernel.Info) (kernel.Kernel, error) {
	ratio, err := gradDropoutRatio(info)
	if err != nil {
		return nil, err
	}
	salt := uint64(info.Attrs().Int("salt", 0))
	thr := uint64(0)
	if f := ratio * (1 << 63) * 2; f >= (1<<63)*2 {
		thr = math.MaxUint64
	} else if ratio > 0 {
		thr = uint64(f)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "X")
		if err != nil {
			return err
		}
		if err := gradFloats(c, x); err != nil {
			return err
		}
		st, err := need(c, in, 1, "seed")
		if err != nil {
			return err
		}
		if st.Len() != 1 || (st.DType != tensor.Int64 && st.DType != tensor.Int32) {
			return c.Errorf("seed must be an int64 scalar, got %v%v", st.DType, st.Shape)
		}
		key := gradMix(uint64(int64(st.Float64At(0)))*0x9e3779b97f4a7c15 ^ gradMix(salt+0x632be59bd9b4e019))
		y, err := c.Output(0, x.DType, x.Shape)
		if err != nil {
			return err
		}
		var mask []bool
		if nnWants(c, out, 1) {
			m, err := c.Output(1, tensor.Bool, x.Shape)
			if err != nil {
				return err
			}
			mask = m.Bools()
		}
		scale := 1 / (1 - ratio)
		switch x.DType {
		case tensor.Float32:
			gradDropoutRun(c, x.F32(), y.F32(), mask, key, thr, float32(scale))
		case tensor.Float64:
			gradDropoutRun(c, x.F64(), y.F64(), mask, key, thr, scale)
		}
		return nil
	}), nil
}

// gradMix is the splitmix64 finalizer.
func gradMix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func gradDropoutRun[T Float](c *kernel.Ctx, x, y []T, mask []bool, key, thr uint64, scale T) {
	ewSplit(c, len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			keep := gradMix(key+uint64(i)*0x9e3779b97f4a7c15) >= thr
			if keep {
				y[i] = x[i] * scale
			} else {
				y[i] = 0
			}
			if mask != nil {
				mask[i] = keep
			}
		}
	})
}

// gradBuildDropoutGrad builds goslim.DropoutGrad(dY, mask) with attribute
// ratio: dX = dY/(1-ratio) where mask is true, 0 elsewhere.
func gradBuildDropoutGrad(info *kernel.Info) (kernel.Kernel, error) {
	ratio, err := gradDropoutRatio(info)
	if err != nil {
		return nil, err
	}
	scale := 1 / (1 - ratio)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		dy, err := need(c, in, 0, "dY")
		if err != nil {
			return err
		}
		m, err := need(c, in, 1, "mask")
		if err != nil {
			return err
		}
		if err := gradFloats(c, dy); err != nil {
			return err
		}
		if m.DType != tensor.Bool {
			return c.Errorf("mask dtype %v, want bool", m.DType)
		}
		if err := gradSameShape(c, dy, m, "dY", "mask"); err != nil {
			return err
		}
		o, err := c.Output(0, dy.DType, dy.Shape)
		if err != nil {
			return err
		}
		switch dy.DType {
		case tensor.Float32:
			gradMaskRun(c, dy.F32(), m.Bools(), o.F32(), float32(scale))
		case tensor.Float64:
			gradMaskRun(c, dy.F64(), m.Bools(), o.F64(), scale)
		}
		return nil
	}), nil
}

func gradMaskRun[T Float](c *kernel.Ctx, dy []T, m []bool, dx []T, scale T) {
	ewSplit(c, len(dy), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if m[i] {
				dx[i] = dy[i] * scale
			} else {
				dx[i] = 0
			}
		}
	})
}
