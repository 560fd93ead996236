package infer

import (
	"math"
	"strconv"

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
	// FusedConvAdd is Conv followed by the Add of a tensor Z of the
	// convolution's output shape (a residual connection) and an optional
	// activation: inputs X, W, B (or none), Z; the Conv attributes plus the
	// activation attributes. Y = act(Conv(X, W, B) + Z).
	FusedConvAdd = "FusedConvAdd"
	// ConvChain is a chain of 2-D convolutions, each but the first reading
	// only the previous one's output (through its optional activation),
	// optionally ending with the Add of a residual tensor Z of the last
	// output's shape and an activation. Inputs: X, then W and B (NoValue
	// when absent) of each stage, then Z when attribute "residual" is 1.
	// Attribute "stages" counts the stages; stage i's Conv and activation
	// attributes carry the prefix "s<i>_" ("s0_strides", "s1_activation");
	// the unprefixed activation attributes apply after the residual Add.
	// The kernel runs the chain a few images at a time, so the values
	// between the stages stay in cache instead of making a round trip
	// through memory for the whole batch.
	ConvChain = "ConvChain"
)

// chainMinBytes is the per-image size from which a value between two
// convolutions is worth keeping in cache by running them as a ConvChain
// (smaller values of a whole batch already fit in the caches).
const chainMinBytes = 64 << 10

// fusion is one group of ONNX nodes computed by a single internal node.
type fusion struct {
	head     int   // index of the first node of the group in Graph.Nodes
	absorbed []int // the other nodes of the group, in graph order
	// at is the node whose place in the execution order the fused step
	// takes: the head, or a later member whose other inputs may only be
	// ready there (FusedConvAdd runs where the Add was).
	at   int
	node ir.Node
}

// fuseEnv is what the fusion pass reads: the graph, its consumers, and
// which values must stay visible (graph outputs, kept and tapped values).
type fuseEnv struct {
	g       *ir.Graph
	cons    [][]int
	protect func(ir.ValueID) bool
	opset   int64 // ai.onnx opset
}

// planFusions returns the fusions of g, visiting nodes in the topological
// order given. A value can be hidden inside a fused node only when exactly
// one node reads it and protect reports false for it: it is then neither
// a graph output, nor kept, nor tapped. Each node joins at most one group.
// A node's candidate groups are offered to accept in order of preference
// (accept builds the kernel; false means the table has none, and the next
// candidate is tried).
func planFusions(g *ir.Graph, order []int, protect func(ir.ValueID) bool, accept func(f *fusion) bool) []fusion {
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
		var cands []*fusion
		switch n.Op {
		case "Conv":
			cands = append(cands, e.fuseConvChain(ni, true), e.fuseAct(ni, FusedConv, nil), e.fuseConvAdd(ni), e.fuseConvChain(ni, false))
		case "Gemm":
			if e.isFloat(n.Input(0)) {
				cands = append(cands, e.fuseAct(ni, FusedGemm, nil))
			}
		case "MatMul":
			cands = append(cands, e.fuseMatMulAdd(ni))
		case "Add", "Sub", "Mul", "Div":
			if e.isFloat(n.Input(0)) && e.isFloat(n.Input(1)) {
				cands = append(cands, e.fuseAct(ni, FusedBinary, ir.Attrs{ir.StringAttr("op", n.Op)}))
			}
		}
		for _, f := range cands {
			if f == nil {
				continue
			}
			free := true
			for _, a := range f.absorbed {
				free = free && !used[a]
			}
			if !free || !accept(f) {
				continue
			}
			used[ni] = true
			for _, a := range f.absorbed {
				used[a] = true
			}
			out = append(out, *f)
			break
		}
	}
	return out
}

// sameShape reports whether two static types have the same dtype and the
// same known shape (each dim a known size or the same symbolic
// parameter), so that one cannot broadcast the other.
func sameShape(a, b ir.Type) bool {
	if a.DType != b.DType || !a.Ranked || !b.Ranked || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i, d := range a.Shape {
		o := b.Shape[i]
		switch {
		case d.Size >= 0 && d.Size == o.Size:
		case d.Size < 0 && o.Size < 0 && d.Param != "" && d.Param == o.Param:
		default:
			return false
		}
	}
	return true
}

// fuseConvAdd fuses Conv -> Add(Z) [-> activation] into FusedConvAdd when
// Z has exactly the convolution's output shape and dtype float32. The
// fused step runs where the Add was, once Z is ready.
func (e *fuseEnv) fuseConvAdd(ni int) *fusion {
	out := e.single(ni)
	ai := e.soleReader(out)
	if ai < 0 {
		return nil
	}
	add := &e.g.Nodes[ai]
	if add.Op != "Add" || (add.Domain != "" && add.Domain != "ai.onnx") || len(add.Inputs) != 2 || len(add.Outputs) != 1 {
		return nil
	}
	z := add.Inputs[1]
	if add.Inputs[0] != out {
		z = add.Inputs[0]
		if add.Inputs[1] != out {
			return nil
		}
	}
	ct, zt := e.g.Values[out].Type, e.g.Values[z].Type
	if z == out || ct.DType != tensor.Float32 || !sameShape(ct, zt) || !sameShape(ct, e.g.Values[add.Outputs[0]].Type) {
		return nil
	}
	n := &e.g.Nodes[ni]
	in := []ir.ValueID{n.Input(0), n.Input(1), n.Input(2), z}
	f := &fusion{head: ni, at: ai, absorbed: []int{ai},
		node: ir.Node{Op: FusedConvAdd, Domain: FusedDomain, Name: n.Name, Inputs: in,
			Outputs: append([]ir.ValueID(nil), add.Outputs...), Attrs: n.Attrs.Clone()}}
	sum := add.Outputs[0]
	if ri := e.soleReader(sum); ri >= 0 {
		if act, ok := e.actAttrs(ri, sum); ok {
			f.absorbed = append(f.absorbed, ri)
			f.node.Outputs = append([]ir.ValueID(nil), e.g.Nodes[ri].Outputs...)
			for _, a := range act {
				f.node.Attrs = f.node.Attrs.Set(a)
			}
		}
	}
	return f
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
	return &fusion{head: ni, at: ni, absorbed: []int{ai},
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
	f := &fusion{head: ni, at: ni, absorbed: []int{ai},
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

// chainConv reports whether node ni can be a ConvChain stage: an ONNX
// Conv of a statically float32 rank-4 input with constant float32 rank-4
// weights and a constant bias (or none).
func (e *fuseEnv) chainConv(ni int) bool {
	n := &e.g.Nodes[ni]
	if n.Op != "Conv" || (n.Domain != "" && n.Domain != "ai.onnx") || len(n.Inputs) < 2 || len(n.Inputs) > 3 || len(n.Outputs) != 1 {
		return false
	}
	xt := e.g.Values[n.Inputs[0]].Type
	if xt.DType != tensor.Float32 || !xt.Ranked || len(xt.Shape) != 4 {
		return false
	}
	w := e.constant(n.Inputs[1])
	if w == nil || w.DType != tensor.Float32 || w.Rank() != 4 {
		return false
	}
	if b := n.Input(2); b != ir.NoValue {
		if c := e.constant(b); c == nil || c.DType != tensor.Float32 {
			return false
		}
	}
	return true
}

// imageBytes returns the size of one image (all dims but the first) of a
// float32 value with a static shape, or 0 when unknown.
func (e *fuseEnv) imageBytes(id ir.ValueID) int64 {
	t := e.g.Values[id].Type
	if !t.Ranked || len(t.Shape) < 2 || t.DType != tensor.Float32 {
		return 0
	}
	n := int64(4)
	for _, d := range t.Shape[1:] {
		if d.Size < 0 {
			return 0
		}
		n *= d.Size
	}
	return n
}

// fuseConvChain fuses a chain of convolutions starting at Conv ni into a
// ConvChain (see there): Conv [-> activation] -> Conv [-> activation] ...
// while each value between two stages has exactly one reader, is not
// protected and holds at least chainMinBytes per image; then an Add of a
// residual tensor of the same shape [-> activation] when it follows.
// With multi, the chain needs at least two stages; without, it is one
// stage and the residual Add (the FusedConvAdd pattern, the candidate
// after FusedConvAdd itself). The fused step runs where its last node was.
func (e *fuseEnv) fuseConvChain(ni int, multi bool) *fusion {
	if !e.chainConv(ni) {
		return nil
	}
	f := &fusion{head: ni, at: ni}
	n := &e.g.Nodes[ni]
	inputs := []ir.ValueID{n.Inputs[0]}
	var attrs ir.Attrs
	stages := 0
	var out ir.ValueID
	for cur := ni; ; {
		c := &e.g.Nodes[cur]
		inputs = append(inputs, c.Inputs[1], c.Input(2))
		pre := "s" + strconv.Itoa(stages) + "_"
		for _, a := range c.Attrs.Clone() {
			a.Name = pre + a.Name
			attrs = attrs.Set(a)
		}
		if cur != ni {
			f.absorbed = append(f.absorbed, cur)
		}
		stages++
		out = c.Outputs[0]
		if ri := e.soleReader(out); ri >= 0 {
			if act, ok := e.actAttrs(ri, out); ok {
				f.absorbed = append(f.absorbed, ri)
				for _, a := range act {
					a.Name = pre + a.Name
					attrs = attrs.Set(a)
				}
				out = e.g.Nodes[ri].Outputs[0]
			}
		}
		next := e.soleReader(out)
		if !multi || next < 0 || !e.chainConv(next) || e.g.Nodes[next].Inputs[0] != out || e.imageBytes(out) < chainMinBytes {
			break
		}
		cur = next
	}
	residual := false
	if ai := e.soleReader(out); ai >= 0 {
		add := &e.g.Nodes[ai]
		if add.Op == "Add" && (add.Domain == "" || add.Domain == "ai.onnx") && len(add.Inputs) == 2 && len(add.Outputs) == 1 {
			z := add.Inputs[1]
			if add.Inputs[0] != out {
				z = add.Inputs[0]
			}
			ot := e.g.Values[out].Type
			if (add.Inputs[0] == out || add.Inputs[1] == out) && z != out && ot.DType == tensor.Float32 &&
				sameShape(ot, e.g.Values[z].Type) && sameShape(ot, e.g.Values[add.Outputs[0]].Type) {
				residual = true
				inputs = append(inputs, z)
				f.absorbed = append(f.absorbed, ai)
				f.at = ai
				out = add.Outputs[0]
				if ri := e.soleReader(out); ri >= 0 {
					if act, ok := e.actAttrs(ri, out); ok {
						f.absorbed = append(f.absorbed, ri)
						for _, a := range act {
							attrs = attrs.Set(a)
						}
						out = e.g.Nodes[ri].Outputs[0]
					}
				}
			}
		}
	}
	if (multi && stages < 2) || (!multi && !residual) {
		return nil
	}
	if !residual && len(f.absorbed) > 0 {
		f.at = f.absorbed[len(f.absorbed)-1]
	}
	res := int64(0)
	if residual {
		res = 1
	}
	attrs = attrs.Set(ir.IntAttr("stages", int64(stages))).Set(ir.IntAttr("residual", res))
	f.node = ir.Node{Op: ConvChain, Domain: FusedDomain, Name: n.Name, Inputs: inputs, Outputs: []ir.ValueID{out}, Attrs: attrs}
	return f
}
