package ptq

import (
	"sort"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Role says how the rewriter treats a marked input of a node.
type Role uint8

// Input roles.
const (
	// Activation: quantized per tensor with the activation scheme, from
	// calibrated ranges (or the data itself when the value is constant).
	Activation Role = iota + 1
	// Weight: a float constant quantized with the weight scheme, per
	// channel along Input.Axis when the scheme is per-channel.
	Weight
	// Bias: a float constant stored as int32 with scale s_in·s_w (the
	// scales of the node's Input.From activation and Input.WeightSlot
	// weight) and zero point 0.
	Bias
)

// String names the role.
func (r Role) String() string {
	switch r {
	case Activation:
		return "activation"
	case Weight:
		return "weight"
	case Bias:
		return "bias"
	}
	return "none"
}

// Input marks one input slot of a node.
type Input struct {
	Slot int
	Role Role
	// Axis is the per-channel axis of a Weight (Conv: 0, ConvTranspose: 1,
	// Gemm: 0 with transB=1, else 1; MatMul: the last axis).
	Axis int
	// From and WeightSlot name the input slots whose scales multiply into
	// a Bias's scale.
	From, WeightSlot int
}

// Mark is what a rule says about one node: which inputs are quantized and
// how, and whether its output is. Rules only mark; the planner resolves
// sharing and fusion and the rewriter inserts the Q/DQ pairs.
type Mark struct {
	Inputs []Input
	// Output quantizes output 0 with its own parameters.
	Output bool
	// Passthrough nodes (MaxPool, Reshape, Relu, ...) are quantized only
	// when input 0 already is; output 0 then shares input 0's parameters,
	// so the integer data passes through unchanged.
	Passthrough bool
	// Fuse lets an activation (Relu, Clip) absorb its producer's output
	// quantization when it is the producer's only reader: the producer's
	// output is then not quantized, the activation's output is, with its
	// own parameters (what integer kernels with a fused activation do).
	Fuse bool
	// ShareInputs puts every Activation input into one parameter group
	// (Concat; residual Add when Config.ShareAddScales); ShareOutput adds
	// output 0 to that group (Concat).
	ShareInputs, ShareOutput bool
}

// RuleContext gives rules read access to the graph and the config.
type RuleContext struct {
	Graph  *ir.Graph
	Config *Config
}

// Const returns the constant tensor of an input (nil when the value is not
// a constant or is an overridable graph input).
func (c *RuleContext) Const(id ir.ValueID) *tensor.Tensor {
	if id == ir.NoValue || int(id) >= len(c.Graph.Values) {
		return nil
	}
	v := &c.Graph.Values[id]
	if v.Const == nil || c.Graph.IsInput(id) {
		return nil
	}
	return v.Const
}

// IsFloat reports whether a value is float32 (the only float type PTQ
// quantizes). Values with an unknown dtype count as float32 when they are
// not constants.
func (c *RuleContext) IsFloat(id ir.ValueID) bool {
	if id == ir.NoValue || int(id) >= len(c.Graph.Values) {
		return false
	}
	v := &c.Graph.Values[id]
	if v.Const != nil {
		return v.Const.DType == tensor.Float32
	}
	return v.Type.DType == tensor.Float32 || v.Type.DType == tensor.Undefined
}

// Rule marks the tensors of one node. ok false (with a reason) leaves the
// node in FP32.
type Rule func(c *RuleContext, n *ir.Node) (m Mark, reason string, ok bool)

// Rules maps an ai.onnx op type to its rule.
type Rules struct {
	m map[string]Rule
}

// DefaultRules returns the built-in rules: Conv, ConvTranspose, Gemm,
// MatMul, Add, Mul, Concat, AveragePool, GlobalAveragePool (own output
// parameters); MaxPool, GlobalMaxPool, Resize, Reshape, Flatten,
// Transpose, Squeeze, Unsqueeze (passthrough); Relu and Clip (fused into
// the producer, else passthrough). A fresh value each call: callers may
// change it.
func DefaultRules() *Rules {
	r := &Rules{m: map[string]Rule{}}
	r.Set("Conv", ruleConv(0))
	r.Set("ConvTranspose", ruleConv(1))
	r.Set("Gemm", ruleGemm)
	r.Set("MatMul", ruleMatMul)
	r.Set("Add", ruleAdd)
	r.Set("Mul", ruleElementwise)
	r.Set("Concat", ruleConcat)
	r.Set("AveragePool", ruleUnary)
	r.Set("GlobalAveragePool", ruleUnary)
	for _, op := range []string{"MaxPool", "GlobalMaxPool", "Resize", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"} {
		r.Set(op, rulePassthrough)
	}
	r.Set("Relu", ruleActivation)
	r.Set("Clip", ruleActivation)
	return r
}

// Set installs (or with nil removes) the rule for an op type.
func (r *Rules) Set(op string, rule Rule) {
	if rule == nil {
		delete(r.m, op)
		return
	}
	r.m[op] = rule
}

// Lookup returns the rule for an op type.
func (r *Rules) Lookup(op string) (Rule, bool) {
	rule, ok := r.m[op]
	return rule, ok
}

// Ops lists the op types that have a rule, sorted.
func (r *Rules) Ops() []string {
	ops := make([]string, 0, len(r.m))
	for op := range r.m {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// weightOrActivation marks a weight slot: a float constant of at least
// minRank dims is a Weight, anything else float an Activation.
func weightOrActivation(c *RuleContext, n *ir.Node, slot, axis, minRank int) (Input, bool) {
	id := n.Input(slot)
	if id == ir.NoValue || !c.IsFloat(id) {
		return Input{}, false
	}
	if w := c.Const(id); w != nil && w.Rank() >= minRank && axis < w.Rank() {
		return Input{Slot: slot, Role: Weight, Axis: axis}, true
	}
	return Input{Slot: slot, Role: Activation}, true
}

// biasInput marks a float constant 1-D bias slot, when present.
func biasInput(c *RuleContext, n *ir.Node, slot int, w Input) (Input, bool) {
	id := n.Input(slot)
	if id == ir.NoValue || w.Role != Weight {
		return Input{}, false
	}
	b := c.Const(id)
	if b == nil || b.DType != tensor.Float32 || b.Rank() != 1 {
		return Input{}, false
	}
	return Input{Slot: slot, Role: Bias, From: 0, WeightSlot: w.Slot}, true
}

// ruleConv marks Conv (weight axis 0) and ConvTranspose (weight axis 1):
// X activation, W weight, B int32 bias, output quantized.
func ruleConv(axis int) Rule {
	return func(c *RuleContext, n *ir.Node) (Mark, string, bool) {
		if !c.IsFloat(n.Input(0)) {
			return Mark{}, "input is not float32", false
		}
		w, ok := weightOrActivation(c, n, 1, axis, 3)
		if !ok {
			return Mark{}, "weight is not float32", false
		}
		m := Mark{Inputs: []Input{{Slot: 0, Role: Activation}, w}, Output: true}
		if b, ok := biasInput(c, n, 2, w); ok {
			m.Inputs = append(m.Inputs, b)
		}
		return m, "", true
	}
}

// ruleGemm marks Gemm: A activation, B weight (per-channel along N), C as
// an int32 bias when it is a 1-D constant and alpha = beta = 1.
func ruleGemm(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	if !c.IsFloat(n.Input(0)) {
		return Mark{}, "input is not float32", false
	}
	axis := 1
	if n.Attrs.Int("transB", 0) != 0 {
		axis = 0
	}
	w, ok := weightOrActivation(c, n, 1, axis, 2)
	if !ok {
		return Mark{}, "B is not float32", false
	}
	m := Mark{Inputs: []Input{{Slot: 0, Role: Activation}, w}, Output: true}
	if n.Attrs.Float("alpha", 1) == 1 && n.Attrs.Float("beta", 1) == 1 {
		if b, ok := biasInput(c, n, 2, w); ok {
			m.Inputs = append(m.Inputs, b)
		}
	}
	return m, "", true
}

// ruleMatMul marks MatMul: A activation; B a weight per output column
// when it is a 2-D constant, else an activation.
func ruleMatMul(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	if !c.IsFloat(n.Input(0)) || !c.IsFloat(n.Input(1)) {
		return Mark{}, "inputs are not float32", false
	}
	m := Mark{Inputs: []Input{{Slot: 0, Role: Activation}}, Output: true}
	if w := c.Const(n.Input(1)); w != nil && w.Rank() == 2 {
		m.Inputs = append(m.Inputs, Input{Slot: 1, Role: Weight, Axis: 1})
	} else {
		m.Inputs = append(m.Inputs, Input{Slot: 1, Role: Activation})
	}
	return m, "", true
}

// ruleElementwise marks a binary op: its non-constant inputs are
// activations, the output is quantized; constant inputs stay float.
func ruleElementwise(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	var m Mark
	for i, id := range n.Inputs {
		if id == ir.NoValue {
			continue
		}
		if !c.IsFloat(id) {
			return Mark{}, "inputs are not float32", false
		}
		if c.Const(id) == nil {
			m.Inputs = append(m.Inputs, Input{Slot: i, Role: Activation})
		}
	}
	if len(m.Inputs) == 0 {
		return Mark{}, "all inputs are constant", false
	}
	m.Output = true
	return m, "", true
}

// ruleAdd is ruleElementwise; a residual Add (two non-constant inputs)
// shares one scale for both inputs when Config.ShareAddScales is set.
func ruleAdd(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	m, why, ok := ruleElementwise(c, n)
	if ok && len(m.Inputs) == 2 && c.Config.shareAdd() {
		m.ShareInputs = true
	}
	return m, why, ok
}

// ruleConcat marks every input (constants included) as an activation and
// puts inputs and output into one parameter group, so concatenation needs
// no requantization.
func ruleConcat(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	m := Mark{Output: true, ShareInputs: true, ShareOutput: true}
	for i, id := range n.Inputs {
		if id == ir.NoValue {
			continue
		}
		if !c.IsFloat(id) {
			return Mark{}, "inputs are not float32", false
		}
		m.Inputs = append(m.Inputs, Input{Slot: i, Role: Activation})
	}
	return m, "", true
}

// ruleUnary marks input 0 and the output with their own parameters
// (AveragePool, GlobalAveragePool: averaging changes the range).
func ruleUnary(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	if !c.IsFloat(n.Input(0)) {
		return Mark{}, "input is not float32", false
	}
	if len(n.Outputs) != 1 {
		return Mark{}, "has several outputs", false
	}
	return Mark{Inputs: []Input{{Slot: 0, Role: Activation}}, Output: true}, "", true
}

// rulePassthrough marks ops whose output values are input values
// (rearranged, selected or interpolated inside the input's range).
func rulePassthrough(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	if !c.IsFloat(n.Input(0)) {
		return Mark{}, "input is not float32", false
	}
	if len(n.Outputs) != 1 {
		return Mark{}, "has several outputs", false
	}
	return Mark{Inputs: []Input{{Slot: 0, Role: Activation}}, Passthrough: true}, "", true
}

// ruleActivation marks Relu and Clip: fused into a quantized producer, or
// a passthrough.
func ruleActivation(c *RuleContext, n *ir.Node) (Mark, string, bool) {
	m, why, ok := rulePassthrough(c, n)
	if !ok {
		return m, why, ok
	}
	if n.Op == "Clip" {
		for _, slot := range []int{1, 2} {
			if id := n.Input(slot); id != ir.NoValue && c.Const(id) == nil {
				return Mark{}, "Clip bounds are not constant", false
			}
		}
	}
	m.Fuse = true
	return m, "", true
}
