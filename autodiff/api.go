package autodiff

import (
	"fmt"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Domain is the operator domain of goslim's internal ops (gradients,
// training-mode forward ops, losses).
const Domain = "goslim"

// Options configure Build. The zero value is valid.
type Options struct {
	// Params lists the model values to differentiate: float constants
	// (initializers). nil means every Trainable float constant of the model
	// whose value reaches the loss, except BatchNormalization running
	// statistics. An explicitly listed parameter that does not reach the
	// loss gets an all-zero gradient.
	Params []ir.ValueID
	// Rules maps ops to gradient rules (default DefaultRules()).
	Rules *Rules
	// Outputs lists forward values to keep as program outputs (e.g. the
	// logits, for accuracy). nil means the model's graph outputs; the loss
	// is always output and is not repeated here.
	Outputs []ir.ValueID
	// FreezeBatchNorm keeps BatchNormalization in inference form: the
	// running statistics normalize and are not updated (no States).
	FreezeBatchNorm bool
}

// Param is one differentiated parameter.
type Param struct {
	// Value is the parameter's ID in the model graph.
	Value ir.ValueID
	// Input is the program input that feeds it (currently equal to Value:
	// model IDs are kept).
	Input ir.ValueID
	// Grad is the program output holding d loss / d param, of the
	// parameter's shape and dtype.
	Grad ir.ValueID
}

// State is a non-trainable tensor the training-mode forward pass updates,
// such as a BatchNormalization running mean or variance.
type State struct {
	// Value is the state's ID in the model graph (a constant).
	Value ir.ValueID
	// Input is the program input holding the current value (equal to
	// Value).
	Input ir.ValueID
	// Update is the program output holding the new value after the step.
	Update ir.ValueID
}

// Program is a training graph built by Build. See the package
// documentation for the order of its inputs and outputs.
type Program struct {
	// Graph is the forward (training mode), loss and backward graph.
	Graph *ir.Graph
	// Params are the differentiated parameters, in graph-input order.
	Params []Param
	// States are the updated non-trainable tensors, in graph-input order.
	States []State
	// Loss is the scalar loss value (the first graph output).
	Loss ir.ValueID
	// Seed is the int64 scalar input that seeds training-mode Dropout, or
	// ir.NoValue when the model has none.
	Seed ir.ValueID
	// Outputs maps the names of kept forward values to their IDs (graph
	// outputs after the loss).
	Outputs map[string]ir.ValueID
}

// InputIndex returns the position of value id in Graph.Inputs, or -1.
func (p *Program) InputIndex(id ir.ValueID) int {
	for i, v := range p.Graph.Inputs {
		if v == id {
			return i
		}
	}
	return -1
}

// OutputIndex returns the position of value id in Graph.Outputs, or -1.
func (p *Program) OutputIndex(id ir.ValueID) int {
	for i, v := range p.Graph.Outputs {
		if v == id {
			return i
		}
	}
	return -1
}

// Build returns the training program of model for the scalar loss value
// (a float value of model, typically made by CrossEntropy, KLDiv or MSE,
// possibly combined with Add and Mul; a non-scalar loss is differentiated
// as the sum of its elements). model is not modified.
//
// Ops with gradient rules (DefaultRules): Add, Sub, Mul, Div, Pow, Neg,
// Exp, Log, Sqrt, Reciprocal, Sum, Expand, Where, Cast, Identity, Relu,
// LeakyRelu, PRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Gelu,
// MatMul, Gemm, Conv, MaxPool, AveragePool, GlobalAveragePool,
// BatchNormalization, LayerNormalization, Dropout, Reshape, Flatten,
// Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Softmax, LogSoftmax,
// ReduceSum, ReduceMean, and the goslim losses. Gradient kernels compute
// float32 and float64.
func Build(model *ir.Graph, loss ir.ValueID, opts Options) (*Program, error) {
	return build(model, loss, opts)
}

// WithValues returns a clone of model whose constants listed in values
// (parameters, BatchNorm statistics) are replaced by the given tensors,
// keeping every ValueID: the trained inference model to evaluate or export.
// Each tensor must match the old constant's dtype and shape.
func WithValues(model *ir.Graph, values map[ir.ValueID]*tensor.Tensor) (*ir.Graph, error) {
	g := model.Clone()
	for id, t := range values {
		if id < 0 || int(id) >= len(g.Values) {
			return nil, fmt.Errorf("autodiff: value id %d out of range", id)
		}
		v := &g.Values[id]
		if v.Const == nil {
			return nil, fmt.Errorf("autodiff: value %q is not a constant", v.Name)
		}
		if t == nil || t.DType != v.Const.DType || !t.Shape.Equal(v.Const.Shape) {
			return nil, fmt.Errorf("autodiff: new value of %q does not match %v%v", v.Name, v.Const.DType, v.Const.Shape)
		}
		v.Const = t
	}
	return g, nil
}

// Rule emits the backward nodes of forward node n. dOut[i] is the gradient
// of output i (ir.NoValue when no gradient reaches it: treat as zero; at
// least one is set). The rule returns one gradient per input (a shorter
// slice means NoValue for the rest); it should return ir.NoValue for
// inputs where c.Needs(i) is false, and must for non-differentiable inputs
// (shapes, indices). Gradients must have the input's shape and dtype.
type Rule func(c *RuleCtx, n *ir.Node, dOut []ir.ValueID) (dIn []ir.ValueID, err error)

type ruleKey struct{ domain, op string }

// Rules maps (domain, op) to gradient rules. The zero value is not usable;
// start from DefaultRules or NewRules.
type Rules struct {
	m map[ruleKey]Rule
}

// NewRules returns an empty rule set.
func NewRules() *Rules { return &Rules{m: map[ruleKey]Rule{}} }

// DefaultRules returns a new rule set with goslim's gradient rules for the
// ONNX ops and internal ops it differentiates.
func DefaultRules() *Rules {
	r := NewRules()
	registerRules(r)
	return r
}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Set registers (or replaces, or with a nil rule removes) the rule of an
// op. domain "" and "ai.onnx" are the same.
func (r *Rules) Set(domain, op string, rule Rule) {
	k := ruleKey{normDomain(domain), op}
	if rule == nil {
		delete(r.m, k)
		return
	}
	r.m[k] = rule
}

// Get returns the rule of an op.
func (r *Rules) Get(domain, op string) (Rule, bool) {
	f, ok := r.m[ruleKey{normDomain(domain), op}]
	return f, ok
}

// Clone returns an independent copy of the rule set.
func (r *Rules) Clone() *Rules {
	c := NewRules()
	for k, v := range r.m {
		c.m[k] = v
	}
	return c
}

// RuleCtx is what a Rule uses to read the forward graph and add backward
// nodes and constants to the program.
type RuleCtx struct {
	b     *builder
	node  int    // index of the forward node in the program graph
	needs []bool // per input of the node: does it need a gradient
}

// Graph returns the program graph under construction (read only: add
// nodes through the RuleCtx methods).
func (c *RuleCtx) Graph() *ir.Graph { return c.b.g }

// Needs reports whether input i of the node needs a gradient (it is
// reachable from a parameter).
func (c *RuleCtx) Needs(i int) bool { return i < len(c.needs) && c.needs[i] }

// Opset returns the program's imported opset of a domain ("" = ai.onnx).
func (c *RuleCtx) Opset(domain string) int64 { return c.b.g.Opset(domain) }

// DType returns the dtype of a value: its static type when known, else
// the dtype of the first input of its producer, followed back (every
// differentiable op keeps its first input's dtype). It is 0 when unknown.
func (c *RuleCtx) DType(v ir.ValueID) tensor.DType { return c.b.dtypeOf(v) }

// Op adds an ai.onnx node with one output and returns the output.
func (c *RuleCtx) Op(op string, inputs []ir.ValueID, attrs ...ir.Attr) ir.ValueID {
	return c.b.node("", op, []bool{true}, inputs, attrs)[0]
}

// Internal adds a goslim-domain node. want says which outputs to create
// (one entry per output; false leaves ir.NoValue for an omitted optional
// output); the outputs are returned in order.
func (c *RuleCtx) Internal(op string, want []bool, inputs []ir.ValueID, attrs ...ir.Attr) []ir.ValueID {
	return c.b.node(Domain, op, want, inputs, attrs)
}

// Node adds a node of any domain, like Internal.
func (c *RuleCtx) Node(domain, op string, want []bool, inputs []ir.ValueID, attrs ...ir.Attr) []ir.ValueID {
	return c.b.node(domain, op, want, inputs, attrs)
}

// Const adds a constant.
func (c *RuleCtx) Const(name string, t *tensor.Tensor) ir.ValueID { return c.b.constant(name, t) }

// Scalar adds a rank-0 constant of the given float dtype.
func (c *RuleCtx) Scalar(dt tensor.DType, v float64) (ir.ValueID, error) { return c.b.scalar(dt, v) }

// Ints adds a 1-D int64 constant.
func (c *RuleCtx) Ints(v ...int64) ir.ValueID { return c.b.ints(v) }

// Shape returns an int64 value holding the runtime shape of v. The Shape
// node is scheduled right after v's producer, so v itself need not stay
// alive for the backward pass. Repeated calls share one node.
func (c *RuleCtx) Shape(v ir.ValueID) ir.ValueID { return c.b.shapeOf(v) }

// SumTo reduces gradient g, of the broadcast shape of an op, to the shape
// of input like (summing over broadcast axes); it returns g itself when
// the shapes are statically equal.
func (c *RuleCtx) SumTo(g, like ir.ValueID) ir.ValueID { return c.b.sumTo(g, like) }

// Zeros returns an all-zero value with the shape and dtype of like.
func (c *RuleCtx) Zeros(like ir.ValueID) (ir.ValueID, error) { return c.b.zeros(like) }

// Errorf formats an error naming the forward node.
func (c *RuleCtx) Errorf(format string, args ...any) error {
	return fmt.Errorf("autodiff: node %s: %s", c.b.g.Nodes[c.node].Label(), fmt.Sprintf(format, args...))
}

// CrossEntropy adds the mean softmax cross-entropy of logits (N x C, float)
// against integer class labels (int64 or int32, shape N) to the graph and
// returns the scalar loss:
//
//	loss = -1/N sum_n sum_c t[n,c] * log softmax(logits[n])[c]
//	t[n,c] = (1-s)*[c == labels[n]] + s/C,  s = labelSmoothing
//
// A label outside [0, C) is a run-time error.
func CrossEntropy(b *ir.Builder, logits, labels ir.ValueID, labelSmoothing float32) ir.ValueID {
	return lossNode(b, "CrossEntropy", logits, []ir.ValueID{logits, labels}, ir.FloatAttr("label_smoothing", labelSmoothing))
}

// KLDiv adds the distillation loss between student and teacher logits
// (N x C) at temperature T and returns the scalar
//
//	loss = 1/N sum_n KL(p_n || q_n),  p = softmax(teacher/T), q = softmax(student/T)
//
// The conventional T^2 factor that keeps gradient magnitudes comparable
// across temperatures is NOT applied: multiply by T*T (Mul with a
// constant) when wanted. The gradient flows to the student, and to the
// teacher only if its logits depend on a parameter.
func KLDiv(b *ir.Builder, studentLogits, teacherLogits ir.ValueID, temperature float32) ir.ValueID {
	return lossNode(b, "KLDiv", studentLogits, []ir.ValueID{studentLogits, teacherLogits}, ir.FloatAttr("temperature", temperature))
}

// MSE adds the mean squared error between a and c (same shape, float) and
// returns the scalar loss mean((a - c)^2) over all elements.
func MSE(b *ir.Builder, a, c ir.ValueID) ir.ValueID {
	return lossNode(b, "MSE", a, []ir.ValueID{a, c})
}

// lossNode adds a goslim loss node with a rank-0 output whose dtype is
// that of like (when known) and imports the goslim domain.
func lossNode(b *ir.Builder, op string, like ir.ValueID, inputs []ir.ValueID, attrs ...ir.Attr) ir.ValueID {
	if b.G.Opsets == nil {
		b.G.Opsets = map[string]int64{}
	}
	if b.G.Opsets[Domain] == 0 {
		b.G.Opsets[Domain] = 1
	}
	out := b.Op(op, "", inputs, attrs...)
	b.G.Nodes[len(b.G.Nodes)-1].Domain = Domain
	if dt := b.G.Values[like].Type.DType; dt != 0 {
		b.G.Values[out].Type = ir.Type{DType: dt, Ranked: true, Shape: []ir.Dim{}}
	}
	return out
}
