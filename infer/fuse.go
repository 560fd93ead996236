package infer

import (
	"math"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// FusedDomain is the operator domain of the internal nodes the fusion pass
// runs in place of ONNX node groups. They exist only inside a Session's
// private copy of the graph; the graph the caller compiled (and exports)
// keeps the standard ONNX nodes.
const FusedDomain = "goslim"

// Internal ops the fusion pass emits. Each takes the inputs and attributes
// of the op it extends plus the activation attributes "activation" (one
// of Relu, Clip, HardSwish, LeakyRelu, Sigmoid), "clip_min", "clip_max"
// (Clip bounds, -Inf/+Inf when absent) and "activation_alpha" (LeakyRelu).
const (
	// FusedConv is Conv followed by an activation.
	FusedConv = "FusedConv"
	// FusedGemm is Gemm (or MatMul followed by Add of a constant bias)
	// followed by an optional activation.
	FusedGemm = "FusedGemm"
	// FusedBinary is Add, Sub, Mul or Div (attribute "op") followed by an
	// activation, with numpy broadcasting as in the ONNX op.
	FusedBinary = "FusedBinary"
)

// fusion is one group of ONNX nodes computed by a single internal node.
type fusion struct {
	head     int   // index of the first node of the group in Graph.Nodes
	absorbed []int // the other nodes of the group, in graph order
	node     ir.Node
}

// fuseEnv is what the fusion pass reads: the graph, its consumers, and
// which values must stay visible (graph outputs, kept and tapped values).
type fuseEnv struct {
	g       *ir.Graph
	cons    [][]int
	protect func(ir.ValueID) bool
	opset   int64 // ai.onnx opset
}

// planFusions returns the candidate fusions of g, visiting nodes in the
// topological order given. A value can be hidden inside a fused node only
// when exactly one node reads it and protect reports false for it: it is
// then neither a graph output, nor kept, nor tapped. Each node joins at
// most one group. The candidates still need a kernel from the table; the
// session drops those that get none.
func planFusions(g *ir.Graph, order []int, protect func(ir.ValueID) bool) []fusion {
	e := &fuseEnv{g: g, cons: g.Consumers(), protect: protect, opset: g.Opset("")}
	used := make([]bool, len(g.Nodes))
	var out []fusion
	for _, ni := range order {
		if used[ni] {
			continue
		}
		n := &g.Nodes[ni]
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		var f *fusion
		switch n.Op {
		case "Conv":
			f = e.fuseAct(ni, FusedConv, nil)
		case "Gemm":
			if e.isFloat(n.Input(0)) {
				f = e.fuseAct(ni, FusedGemm, nil)
			}
		case "MatMul":
			f = e.fuseMatMulAdd(ni)
		case "Add", "Sub", "Mul", "Div":
			if e.isFloat(n.Input(0)) && e.isFloat(n.Input(1)) {
				f = e.fuseAct(ni, FusedBinary, ir.Attrs{ir.StringAttr("op", n.Op)})
			}
		}
		if f == nil {
			continue
		}
		for _, a := range f.absorbed {
			if used[a] {
				f = nil
				break
			}
		}
		if f == nil {
			continue
		}
		used[ni] = true
		for _, a := range f.absorbed {
			used[a] = true
		}
		out = append(out, *f)
	}
	return out
}

// isFloat reports whether a value's static dtype is a float type.
func (e *fuseEnv) isFloat(id ir.ValueID) bool {
	if id == ir.NoValue {
		return false
	}
	switch e.g.Values[id].Type.DType {
	case tensor.Float32, tensor.Float64, tensor.Float16:
		return true
	}
	return false
}

// soleReader returns the node that is the only reader of value id, or -1
// when id is protected or read by zero or several nodes (or twice by one).
func (e *fuseEnv) soleReader(id ir.ValueID) int {
	if id == ir.NoValue || e.protect(id) || len(e.cons[id]) != 1 {
		return -1
	}
	return e.cons[id][0]
}

// single returns the only output of node ni, or NoValue when it has
// several.
func (e *fuseEnv) single(ni int) ir.ValueID {
	n := &e.g.Nodes[ni]
	if len(n.Outputs) != 1 {
		return ir.NoValue
	}
	return n.Outputs[0]
}

// fuseAct fuses node ni with an activation that is the sole reader of its
// output: into op (domain goslim) with ni's inputs and attributes, plus
// extra attributes.
func (e *fuseEnv) fuseAct(ni int, op string, extra ir.Attrs) *fusion {
	out := e.single(ni)
	ai := e.soleReader(out)
	if ai < 0 {
		return nil
	}
	act, ok := e.actAttrs(ai, out)
	if !ok {
		return nil
	}
	n := &e.g.Nodes[ni]
	attrs := n.Attrs.Clone()
	for _, a := range append(extra, act...) {
		attrs = attrs.Set(a)
	}
	return &fusion{head: ni, absorbed: []int{ai},
		node: ir.Node{Op: op, Domain: FusedDomain, Name: n.Name,
			Inputs: append([]ir.ValueID(nil), n.Inputs...), Outputs: append([]ir.ValueID(nil), e.g.Nodes[ai].Outputs...),
			Attrs: attrs}}
}

// actAttrs returns the activation attributes describing node ai applied
// to value x, or false when ai is not a fusable activation of x.
func (e *fuseEnv) actAttrs(ai int, x ir.ValueID) (ir.Attrs, bool) {
	a := &e.g.Nodes[ai]
	if (a.Domain != "" && a.Domain != "ai.onnx") || len(a.Inputs) == 0 || a.Inputs[0] != x || len(a.Outputs) != 1 {
		return nil, false
	}
	switch a.Op {
	case "Relu", "HardSwish", "Sigmoid":
		if len(a.Inputs) != 1 {
			return nil, false
		}
		return ir.Attrs{ir.StringAttr("activation", a.Op)}, true
	case "LeakyRelu":
		if len(a.Inputs) != 1 {
			return nil, false
		}
		return ir.Attrs{ir.StringAttr("activation", "LeakyRelu"),
			ir.FloatAttr("activation_alpha", a.Attrs.Float("alpha", 0.01))}, true
	case "Clip":
		lo, hi, ok := e.clipBounds(a)
		if !ok {
			return nil, false
		}
		return ir.Attrs{ir.StringAttr("activation", "Clip"),
			ir.FloatAttr("clip_min", lo), ir.FloatAttr("clip_max", hi)}, true
	}
	return nil, false
}

// clipBounds returns a Clip node's bounds as the unfused kernel applies
// them: before opset 11 the attributes min and max (default -/+ the
// largest float32), since then constant float32 scalar inputs, an absent
// bound meaning no bound (-/+Inf).
func (e *fuseEnv) clipBounds(a *ir.Node) (lo, hi float32, ok bool) {
	if e.opset < 11 {
		if len(a.Inputs) != 1 {
			return 0, 0, false
		}
		return a.Attrs.Float("min", -math.MaxFloat32), a.Attrs.Float("max", math.MaxFloat32), true
	}
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	for i, dst := range []*float32{&lo, &hi} {
		id := a.Input(i + 1)
		if id == ir.NoValue {
			continue
		}
		c := e.constant(id)
		if c == nil || c.DType != tensor.Float32 || c.Len() != 1 {
			return 0, 0, false
		}
		*dst = c.F32()[0]
	}
	return lo, hi, true
}

// constant returns the tensor of a constant value that no feed can
// override, or nil.
func (e *fuseEnv) constant(id ir.ValueID) *tensor.Tensor {
	v := &e.g.Values[id]
	if v.Const == nil || e.g.IsInput(id) || v.Const.Check() != nil {
		return nil
	}
	return v.Const
}

// fuseMatMulAdd fuses MatMul(A, B) -> Add(constant bias) [-> activation]
// into FusedGemm(A, B, bias) when A and B are statically float matrices
// (rank 2, so Gemm's semantics equal MatMul's) and the bias is a constant
// of shape [N] or [1, N] that does not enlarge the product.
func (e *fuseEnv) fuseMatMulAdd(ni int) *fusion {
	n := &e.g.Nodes[ni]
	if len(n.Inputs) != 2 || !e.isFloat(n.Inputs[0]) {
		return nil
	}
	ta, tb := e.g.Values[n.Inputs[0]].Type, e.g.Values[n.Inputs[1]].Type
	if !ta.Ranked || len(ta.Shape) != 2 || !tb.Ranked || len(tb.Shape) != 2 || ta.DType != tb.DType {
		return nil
	}
	ncol := tb.Shape[1].Size
	if ncol < 0 {
		return nil
	}
	out := e.single(ni)
	ai := e.soleReader(out)
	if ai < 0 {
		return nil
	}
	add := &e.g.Nodes[ai]
	if add.Op != "Add" || (add.Domain != "" && add.Domain != "ai.onnx") || len(add.Inputs) != 2 || len(add.Outputs) != 1 {
		return nil
	}
	bid := add.Inputs[1]
	if add.Inputs[0] != out {
		bid = add.Inputs[0]
		if add.Inputs[1] != out {
			return nil
		}
	}
	if bid == out {
		return nil
	}
	bias := e.constant(bid)
	if bias == nil || bias.DType != ta.DType {
		return nil
	}
	switch {
	case bias.Rank() == 1 && int64(bias.Shape[0]) == ncol:
	case bias.Rank() == 2 && bias.Shape[0] == 1 && int64(bias.Shape[1]) == ncol:
	default:
		return nil
	}
	f := &fusion{head: ni, absorbed: []int{ai},
		node: ir.Node{Op: FusedGemm, Domain: FusedDomain, Name: n.Name,
			Inputs: []ir.ValueID{n.Inputs[0], n.Inputs[1], bid}, Outputs: append([]ir.ValueID(nil), add.Outputs...)}}
	sum := add.Outputs[0]
	if ri := e.soleReader(sum); ri >= 0 {
		if act, ok := e.actAttrs(ri, sum); ok {
			f.absorbed = append(f.absorbed, ri)
			f.node.Outputs = append([]ir.ValueID(nil), e.g.Nodes[ri].Outputs...)
			f.node.Attrs = act
		}
	}
	return f
}
