package autodiff

import (
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// registerRules installs the default gradient rules.
func registerRules(r *Rules) {
	for op, f := range map[string]Rule{
		"Add": ruleAdd, "Sub": ruleSub, "Mul": ruleMul, "Div": ruleDiv, "Neg": ruleNeg,
		"Exp": ruleExp, "Log": ruleLog, "Sqrt": ruleSqrt, "Sum": ruleSumOp, "Expand": ruleExpand,
		"Cast": ruleCast, "Pow": rulePow, "Reciprocal": ruleReciprocal, "Where": ruleWhere,
		"PRelu": rulePRelu, "Split": ruleSplit,
		"Identity": ruleIdentity,
		"Relu":     activation("ReluGrad", true), "Sigmoid": activation("SigmoidGrad", true),
		"Tanh": activation("TanhGrad", true), "LeakyRelu": activation("LeakyReluGrad", false, "alpha"),
		"HardSigmoid": activation("HardSigmoidGrad", false, "alpha", "beta"),
		"HardSwish":   activation("HardSwishGrad", false), "Erf": activation("ErfGrad", false),
		"Gelu":   activation("GeluGrad", false, "approximate"),
		"Clip":   ruleClip,
		"MatMul": ruleMatMul, "Gemm": ruleGemm, "Conv": ruleConv,
		"MaxPool": ruleMaxPool, "AveragePool": ruleAveragePool, "GlobalAveragePool": ruleGlobalAveragePool,
		"BatchNormalization": ruleBatchNormFrozen, "LayerNormalization": ruleLayerNorm,
		"Reshape": ruleReshape, "Flatten": ruleReshape, "Squeeze": ruleReshape, "Unsqueeze": ruleReshape,
		"Transpose": ruleTranspose, "Concat": ruleConcat, "Slice": ruleSlice,
		"Softmax": softmaxRule("SoftmaxGrad"), "LogSoftmax": softmaxRule("LogSoftmaxGrad"),
		"ReduceSum": reduceRule(false), "ReduceMean": reduceRule(true),
	} {
		r.Set("", op, f)
	}
	for op, f := range map[string]Rule{
		"BatchNormTrain": ruleBatchNormTrain, "DropoutTrain": ruleDropout,
		"CrossEntropy": ruleCrossEntropy, "KLDiv": ruleKLDiv, "MSE": ruleMSE,
	} {
		r.Set(Domain, op, f)
	}
}

// none returns a gradient list of NoValue, one per input of n.
func none(n *ir.Node) []ir.ValueID {
	d := make([]ir.ValueID, len(n.Inputs))
	for i := range d {
		d[i] = ir.NoValue
	}
	return d
}

// pick copies the named attributes of n that are present.
func pick(n *ir.Node, names ...string) []ir.Attr {
	var out []ir.Attr
	for _, name := range names {
		if at, ok := n.Attrs.Get(name); ok {
			out = append(out, *at)
		}
	}
	return out
}

func ruleIdentity(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	d[0] = dOut[0]
	return d, nil
}

func ruleAdd(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	for i := 0; i < 2; i++ {
		if c.Needs(i) {
			d[i] = c.SumTo(dOut[0], n.Inputs[i])
		}
	}
	return d, nil
}

func ruleSumOp(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	for i := range n.Inputs {
		if c.Needs(i) {
			d[i] = c.SumTo(dOut[0], n.Inputs[i])
		}
	}
	return d, nil
}

func ruleExpand(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if c.Needs(0) {
		d[0] = c.SumTo(dOut[0], n.Inputs[0])
	}
	return d, nil
}

func ruleSub(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if c.Needs(0) {
		d[0] = c.SumTo(dOut[0], n.Inputs[0])
	}
	if c.Needs(1) {
		d[1] = c.Op("Neg", []ir.ValueID{c.SumTo(dOut[0], n.Inputs[1])})
	}
	return d, nil
}

func ruleMul(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	for i := 0; i < 2; i++ {
		if c.Needs(i) {
			d[i] = c.SumTo(c.Op("Mul", []ir.ValueID{dOut[0], n.Inputs[1-i]}), n.Inputs[i])
		}
	}
	return d, nil
}

// ruleDiv: Y = A/B, dA = dY/B, dB = -dY*Y/B.
func ruleDiv(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if c.Needs(0) {
		d[0] = c.SumTo(c.Op("Div", []ir.ValueID{dOut[0], n.Inputs[1]}), n.Inputs[0])
	}
	if c.Needs(1) {
		t := c.Op("Div", []ir.ValueID{c.Op("Mul", []ir.ValueID{dOut[0], n.Outputs[0]}), n.Inputs[1]})
		d[1] = c.Op("Neg", []ir.ValueID{c.SumTo(t, n.Inputs[1])})
	}
	return d, nil
}

func ruleNeg(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Op("Neg", []ir.ValueID{dOut[0]})}, nil
}

// ruleExp: dX = dY*Y.
func ruleExp(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Op("Mul", []ir.ValueID{dOut[0], n.Outputs[0]})}, nil
}

// ruleLog: dX = dY/X.
func ruleLog(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Op("Div", []ir.ValueID{dOut[0], n.Inputs[0]})}, nil
}

// ruleSqrt: dX = dY*0.5/Y.
func ruleSqrt(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	dt := c.DType(n.Inputs[0])
	half, err := c.Scalar(dt, 0.5)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	return []ir.ValueID{c.Op("Div", []ir.ValueID{c.Op("Mul", []ir.ValueID{dOut[0], half}), n.Outputs[0]})}, nil
}

// ruleCast casts the gradient back to the input's float dtype.
func ruleCast(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	dt := c.DType(n.Inputs[0])
	if !dt.IsFloat() {
		return nil, c.Errorf("cannot differentiate a Cast from %v", dt)
	}
	return []ir.ValueID{c.Op("Cast", []ir.ValueID{dOut[0]}, ir.IntAttr("to", int64(dt)))}, nil
}

// activation makes the rule of an elementwise activation whose gradient
// op reads the forward output (useY) or input, copying attributes.
func activation(op string, useY bool, attrs ...string) Rule {
	return func(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
		z := n.Inputs[0]
		if useY {
			z = n.Outputs[0]
		}
		return []ir.ValueID{c.Internal(op, []bool{true}, []ir.ValueID{dOut[0], z}, pick(n, attrs...)...)[0]}, nil
	}
}

func ruleClip(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	in := append([]ir.ValueID{dOut[0]}, n.Inputs...)
	d[0] = c.Internal("ClipGrad", []bool{true}, in, pick(n, "min", "max")...)[0]
	return d, nil
}

func ruleMatMul(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	outs := c.Internal("MatMulGrad", []bool{c.Needs(0), c.Needs(1)}, []ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1]})
	return outs, nil
}

// ruleGemm differentiates Y = alpha*op(A)*op(B) + beta*C: GemmGrad gives
// dA and dB in their stored layouts, dC is beta*dY summed to C's shape.
func ruleGemm(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	dy := dOut[0]
	if c.Needs(0) || c.Needs(1) {
		outs := c.Internal("GemmGrad", []bool{c.Needs(0), c.Needs(1)}, []ir.ValueID{dy, n.Inputs[0], n.Inputs[1]},
			pick(n, "transA", "transB", "alpha")...)
		d[0], d[1] = outs[0], outs[1]
	}
	if len(n.Inputs) > 2 && c.Needs(2) {
		g := dy
		if beta := n.Attrs.Float("beta", 1); beta != 1 {
			s, err := c.Scalar(c.DType(n.Inputs[0]), float64(beta))
			if err != nil {
				return nil, c.Errorf("%v", err)
			}
			g = c.Op("Mul", []ir.ValueID{dy, s})
		}
		d[2] = c.SumTo(g, n.Inputs[2])
	}
	return d, nil
}

var convAttrs = []string{"kernel_shape", "strides", "pads", "auto_pad", "dilations", "group"}

func ruleConv(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	dy := dOut[0]
	x, w := n.Inputs[0], n.Inputs[1]
	attrs := pick(n, convAttrs...)
	if c.Needs(0) {
		d[0] = c.Internal("ConvGradInput", []bool{true}, []ir.ValueID{dy, w, c.Shape(x)}, attrs...)[0]
	}
	wantB := len(n.Inputs) > 2 && c.Needs(2)
	if c.Needs(1) || wantB {
		outs := c.Internal("ConvGradWeight", []bool{c.Needs(1), wantB}, []ir.ValueID{dy, x, w}, attrs...)
		d[1] = outs[0]
		if wantB {
			d[2] = outs[1]
		}
	}
	return d, nil
}

// ruleMaxPool routes dY to the window maxima found from X and Y
// (MaxPoolGradX), so the forward MaxPool needs no Indices output and keeps
// its fast path; both are kept alive for backward anyway (X by the
// producer's gradient, Y by the consumer's).
func ruleMaxPool(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Internal("MaxPoolGradX", []bool{true}, []ir.ValueID{dOut[0], n.Inputs[0], n.Outputs[0]},
		pick(n, "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations")...)[0]}, nil
}

func ruleAveragePool(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Internal("AveragePoolGrad", []bool{true}, []ir.ValueID{dOut[0], c.Shape(n.Inputs[0])},
		pick(n, "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "count_include_pad", "dilations")...)[0]}, nil
}

func ruleGlobalAveragePool(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return []ir.ValueID{c.Internal("GlobalAveragePoolGrad", []bool{true}, []ir.ValueID{dOut[0], c.Shape(n.Inputs[0])})[0]}, nil
}

// ruleBatchNormTrain: BatchNormGrad(dY, X, scale, saved mean, saved inv
// std); the running statistics get no gradient.
func ruleBatchNormTrain(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if dOut[0] == ir.NoValue {
		return d, nil
	}
	outs := c.Internal("BatchNormGrad", []bool{c.Needs(0), c.Needs(1), c.Needs(2)},
		[]ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1], n.Outputs[1], n.Outputs[2]})
	copy(d, outs)
	return d, nil
}

// ruleBatchNormFrozen differentiates inference-form BatchNormalization
// (Options.FreezeBatchNorm): the running statistics are constants.
func ruleBatchNormFrozen(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	if n.Attrs.Int("training_mode", 0) != 0 {
		return nil, c.Errorf("training_mode BatchNormalization in a frozen-BatchNorm build is not supported")
	}
	d := none(n)
	outs := c.Internal("BatchNormGrad", []bool{c.Needs(0), c.Needs(1), c.Needs(2)},
		[]ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1], n.Inputs[3], n.Inputs[4]},
		ir.IntAttr("frozen", 1), ir.FloatAttr("epsilon", n.Attrs.Float("epsilon", 1e-5)))
	copy(d, outs)
	return d, nil
}

func ruleLayerNorm(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if dOut[0] == ir.NoValue {
		return d, nil
	}
	if st := n.Attrs.Int("stash_type", 1); st != 1 {
		return nil, c.Errorf("stash_type %d is not supported", st)
	}
	mean := c.b.forwardOutput(c.node, 1, "_mean", ir.Type{DType: tensor.Float32})
	inv := c.b.forwardOutput(c.node, 2, "_inv_std", ir.Type{DType: tensor.Float32})
	bias := n.Input(2)
	in := []ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1], mean, inv}
	if bias != ir.NoValue {
		in = append(in, bias)
	}
	outs := c.Internal("LayerNormGrad", []bool{c.Needs(0), c.Needs(1), bias != ir.NoValue && c.Needs(2)}, in, pick(n, "axis")...)
	copy(d, outs)
	return d, nil
}

// ruleReshape serves every op that only changes the shape: the gradient
// is dY reshaped to X's shape.
func ruleReshape(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	var attrs []ir.Attr
	if c.Opset("") >= 14 {
		attrs = append(attrs, ir.IntAttr("allowzero", 1))
	}
	d[0] = c.Op("Reshape", []ir.ValueID{dOut[0], c.Shape(n.Inputs[0])}, attrs...)
	return d, nil
}

func ruleTranspose(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	perm, ok := n.Attrs.Ints("perm")
	if !ok {
		// The default reverses the axes, its own inverse.
		return []ir.ValueID{c.Op("Transpose", []ir.ValueID{dOut[0]})}, nil
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		if p < 0 || int(p) >= len(perm) {
			return nil, c.Errorf("invalid perm %v", perm)
		}
		inv[p] = int64(i)
	}
	return []ir.ValueID{c.Op("Transpose", []ir.ValueID{dOut[0]}, ir.IntsAttr("perm", inv...))}, nil
}

func ruleConcat(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	in := []ir.ValueID{dOut[0]}
	want := make([]bool, len(n.Inputs))
	for i, x := range n.Inputs {
		in = append(in, c.Shape(x))
		want[i] = c.Needs(i)
	}
	return c.Internal("ConcatGrad", want, in, pick(n, "axis")...), nil
}

func ruleSlice(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	in := append([]ir.ValueID{dOut[0], c.Shape(n.Inputs[0])}, n.Inputs[1:]...)
	d[0] = c.Internal("SliceGrad", []bool{true}, in, pick(n, "starts", "ends", "axes")...)[0]
	return d, nil
}

func softmaxRule(op string) Rule {
	return func(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
		legacy := c.Opset("") < 13
		def := int64(-1)
		if legacy {
			def = 1
		}
		var lg int64
		if legacy {
			lg = 1
		}
		return []ir.ValueID{c.Internal(op, []bool{true}, []ir.ValueID{dOut[0], n.Outputs[0]},
			ir.IntAttr("axis", n.Attrs.Int("axis", def)), ir.IntAttr("legacy", lg))[0]}, nil
	}
}

func reduceRule(mean bool) Rule {
	return func(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
		d := none(n)
		in := []ir.ValueID{dOut[0], c.Shape(n.Inputs[0])}
		if ax := n.Input(1); ax != ir.NoValue {
			in = append(in, ax)
		}
		var m int64
		if mean {
			m = 1
		}
		attrs := append(pick(n, "axes", "keepdims", "noop_with_empty_axes"), ir.IntAttr("mean", m))
		d[0] = c.Internal("ReduceGrad", []bool{true}, in, attrs...)[0]
		return d, nil
	}
}

func ruleDropout(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	if dOut[0] == ir.NoValue {
		return d, nil
	}
	d[0] = c.Internal("DropoutGrad", []bool{true}, []ir.ValueID{dOut[0], n.Outputs[1]}, pick(n, "ratio")...)[0]
	return d, nil
}

func ruleCrossEntropy(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	d[0] = c.Internal("CrossEntropyGrad", []bool{true}, []ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1]},
		pick(n, "label_smoothing")...)[0]
	return d, nil
}

func ruleKLDiv(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return c.Internal("KLDivGrad", []bool{c.Needs(0), c.Needs(1)}, []ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1]},
		pick(n, "temperature")...), nil
}

func ruleMSE(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	return c.Internal("MSEGrad", []bool{c.Needs(0), c.Needs(1)}, []ir.ValueID{dOut[0], n.Inputs[0], n.Inputs[1]}), nil
}

// rulePow: Y = A^B, dA = dY*B*A^(B-1), dB = dY*Y*log(A) (B is cast to
// A's dtype when it differs).
func rulePow(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	a, b := n.Inputs[0], n.Inputs[1]
	dt := c.DType(a)
	if !dt.IsFloat() {
		return nil, c.Errorf("cannot differentiate Pow of %v", dt)
	}
	if bt := c.DType(b); bt != dt {
		b = c.Op("Cast", []ir.ValueID{b}, ir.IntAttr("to", int64(dt)))
	}
	if c.Needs(0) {
		one, err := c.Scalar(dt, 1)
		if err != nil {
			return nil, c.Errorf("%v", err)
		}
		p := c.Op("Pow", []ir.ValueID{a, c.Op("Sub", []ir.ValueID{b, one})})
		d[0] = c.SumTo(c.Op("Mul", []ir.ValueID{dOut[0], c.Op("Mul", []ir.ValueID{b, p})}), a)
	}
	if c.Needs(1) {
		t := c.Op("Mul", []ir.ValueID{c.Op("Mul", []ir.ValueID{dOut[0], n.Outputs[0]}), c.Op("Log", []ir.ValueID{a})})
		d[1] = c.SumTo(t, n.Inputs[1])
	}
	return d, nil
}

// ruleReciprocal: dX = -dY*Y^2.
func ruleReciprocal(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	y := n.Outputs[0]
	return []ir.ValueID{c.Op("Neg", []ir.ValueID{c.Op("Mul", []ir.ValueID{dOut[0], c.Op("Mul", []ir.ValueID{y, y})})})}, nil
}

// ruleWhere routes dY to the selected input: dA = dY where cond, dB = dY
// elsewhere (each summed to its input's shape).
func ruleWhere(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	zero, err := c.Scalar(c.DType(n.Outputs[0]), 0)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	cond := n.Inputs[0]
	if c.Needs(1) {
		d[1] = c.SumTo(c.Op("Where", []ir.ValueID{cond, dOut[0], zero}), n.Inputs[1])
	}
	if c.Needs(2) {
		d[2] = c.SumTo(c.Op("Where", []ir.ValueID{cond, zero, dOut[0]}), n.Inputs[2])
	}
	return d, nil
}

// rulePRelu: Y = X where X > 0, slope*X elsewhere.
func rulePRelu(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	x, slope := n.Inputs[0], n.Inputs[1]
	zero, err := c.Scalar(c.DType(x), 0)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	pos := c.Op("Greater", []ir.ValueID{x, zero})
	if c.Needs(0) {
		d[0] = c.Op("Where", []ir.ValueID{pos, dOut[0], c.Op("Mul", []ir.ValueID{dOut[0], slope})})
	}
	if c.Needs(1) {
		t := c.Op("Where", []ir.ValueID{pos, zero, c.Op("Mul", []ir.ValueID{dOut[0], x})})
		d[1] = c.SumTo(t, slope)
	}
	return d, nil
}

// ruleSplit concatenates the output gradients (zeros for outputs that get
// none) along the split axis.
func ruleSplit(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) ([]ir.ValueID, error) {
	d := none(n)
	parts := make([]ir.ValueID, 0, len(n.Outputs))
	for i, o := range n.Outputs {
		if o == ir.NoValue {
			return nil, c.Errorf("Split with an omitted output is not supported")
		}
		g := dOut[i]
		if g == ir.NoValue {
			z, err := c.Zeros(o)
			if err != nil {
				return nil, c.Errorf("%v", err)
			}
			g = z
		}
		parts = append(parts, g)
	}
	d[0] = c.Op("Concat", parts, ir.IntAttr("axis", n.Attrs.Int("axis", 0)))
	return d, nil
}
