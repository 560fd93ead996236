package rewrite

import (
	"fmt"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Evaluator computes one node's outputs from its input tensors (nil for
// omitted optional inputs). opset is the graph's opset for the node's
// domain. It returns one tensor per node output (nil allowed only for
// outputs the node leaves unnamed). infer.NodeEvaluator provides one backed
// by goslim's kernels. The returned tensors become constants and must not
// be written afterwards; they may share storage with the inputs.
type Evaluator func(n *ir.Node, opset int64, in []*tensor.Tensor) ([]*tensor.Tensor, error)

// MaxFoldElements caps the size of a folded tensor that FoldConstants
// stores as a constant in the graph (1<<20 elements, 4 MiB of float32).
const MaxFoldElements = 1 << 20

// maxEvalElements bounds what FoldConstants evaluates at all: a node
// whose output type is statically known to exceed it (1<<24 elements) is
// left to the executor.
const maxEvalElements = 1 << 24

// nondeterministic lists ai.onnx ops whose result is not a function of
// their inputs.
var nondeterministic = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true,
	"RandomUniformLike": true, "Multinomial": true, "Bernoulli": true,
}

// FoldConstants returns a copy of g in which every foldable node is
// replaced by constants: its outputs keep their ValueIDs and names, become
// Const values typed after their tensors, and the node is removed.
//
// A node is foldable when it is in the ai.onnx domain, deterministic (not
// RandomNormal and friends, not Bernoulli or Multinomial, not a Dropout
// whose training_mode is true), has no graph attribute, and every present
// input is a constant (a Const value that is not a graph input: old-IR
// initializers listed as graph inputs can be overridden by a feed, so they
// are not constants) or the output of a node folded earlier. Constant nodes
// are converted directly (no evaluator needed). Shape and Size nodes whose
// input has a fully static type fold to that shape even when the input is
// not constant. Every other foldable node is evaluated with eval (if eval
// is nil, only those two kinds fold); when eval returns an error the node
// is left in place, unfolded, and the executor reports the problem when it
// runs.
//
// Size cap: a node whose output type is statically known to hold more
// than 1<<24 elements is not evaluated. A folded output with more than MaxFoldElements elements is not
// stored. If such a value is still needed (a graph output, or read by a
// node that stays), its node stays in the graph, as do the folded producers
// of its oversized inputs; if only folded nodes read it, it simply
// disappears (its ValueID is left with neither a producer nor a constant;
// RemoveDead drops it). Constant nodes are exempt: their tensor already
// exists.
func FoldConstants(g *ir.Graph, eval Evaluator) (*ir.Graph, error) {
	out := g.Clone()
	order, err := out.Topo()
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	nv := len(out.Values)
	isInput := make([]bool, nv)
	for _, id := range out.Inputs {
		if id >= 0 && int(id) < nv {
			isInput[id] = true
		}
	}
	vals := make([]*tensor.Tensor, nv)
	for id := range out.Values {
		if c := out.Values[id].Const; c != nil && !isInput[id] {
			vals[id] = c
		}
	}
	folded := make([]bool, len(out.Nodes))
	exempt := make([]bool, len(out.Nodes)) // Constant nodes: no size cap
	for _, ni := range order {
		n := &out.Nodes[ni]
		res := foldNode(out, n, vals, eval)
		if res == nil {
			continue
		}
		for i, o := range n.Outputs {
			if o != ir.NoValue && o >= 0 && int(o) < nv {
				vals[o] = res[i]
			}
		}
		folded[ni] = true
		exempt[ni] = n.Op == "Constant"
	}

	// Decide which folded nodes must stay because an oversized output is
	// still needed. Consumers come later in topological order, so a
	// reverse walk sees every consumer's decision first.
	isOutput := make([]bool, nv)
	for _, id := range out.Outputs {
		if id >= 0 && int(id) < nv {
			isOutput[id] = true
		}
	}
	consumers := out.Consumers()
	keep := make([]bool, len(out.Nodes))
	for k := len(order) - 1; k >= 0; k-- {
		ni := order[k]
		if !folded[ni] {
			keep[ni] = true
			continue
		}
		if exempt[ni] {
			continue
		}
		for _, o := range out.Nodes[ni].Outputs {
			if o == ir.NoValue || o < 0 || int(o) >= nv || vals[o].Len() <= MaxFoldElements {
				continue
			}
			needed := isOutput[o]
			for _, c := range consumers[o] {
				needed = needed || keep[c]
			}
			if needed {
				keep[ni] = true
				break
			}
		}
	}

	nodes := out.Nodes[:0:0]
	for ni := range out.Nodes {
		n := out.Nodes[ni]
		if keep[ni] {
			nodes = append(nodes, n)
			continue
		}
		for _, o := range n.Outputs {
			if o == ir.NoValue || o < 0 || int(o) >= nv {
				continue
			}
			v := &out.Values[o]
			t := vals[o]
			if t.Len() > MaxFoldElements && !exempt[ni] {
				v.Const = nil // only folded nodes read it: it goes away
				continue
			}
			v.Const = t
			v.Type = ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}
			v.Trainable = false
		}
	}
	out.Nodes = nodes
	return out, nil
}

// foldNode returns the outputs of n when it can be folded (one entry per
// output slot), or nil.
func foldNode(g *ir.Graph, n *ir.Node, vals []*tensor.Tensor, eval Evaluator) []*tensor.Tensor {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nil
	}
	if nondeterministic[n.Op] {
		return nil
	}
	for _, at := range n.Attrs {
		if at.Type == ir.AttrGraph || at.Type == ir.AttrGraphs {
			return nil
		}
	}
	if len(n.Outputs) == 0 {
		return nil
	}
	switch n.Op {
	case "Constant":
		if len(n.Outputs) == 1 {
			if t, err := constantTensor(n); err == nil && t != nil && t.Check() == nil {
				return []*tensor.Tensor{t}
			}
		}
	case "Shape", "Size":
		if t := shapeFromType(g, n); t != nil {
			return []*tensor.Tensor{t}
		}
	}
	if eval == nil {
		return nil
	}
	for _, o := range n.Outputs {
		if o < 0 || int(o) >= len(g.Values) {
			continue
		}
		if sh, ok := g.Values[o].Type.StaticShape(); ok && (sh.Size() < 0 || sh.Size() > maxEvalElements) {
			return nil // not worth materializing at load time
		}
	}
	in := make([]*tensor.Tensor, len(n.Inputs))
	for i, id := range n.Inputs {
		if id == ir.NoValue {
			continue
		}
		if id < 0 || int(id) >= len(vals) || vals[id] == nil {
			return nil
		}
		in[i] = vals[id]
	}
	if n.Op == "Dropout" && len(in) > 2 && in[2] != nil {
		if in[2].Len() != 1 || in[2].Float64At(0) != 0 {
			return nil // training mode: random
		}
	}
	res, err := eval(n, g.Opset(n.Domain), in)
	if err != nil || len(res) < len(n.Outputs) {
		return nil
	}
	for i, o := range n.Outputs {
		if o == ir.NoValue {
			continue
		}
		if res[i] == nil || res[i].Check() != nil {
			return nil
		}
	}
	return res[:len(n.Outputs)]
}

// shapeFromType folds Shape and Size of a value with a fully static type.
func shapeFromType(g *ir.Graph, n *ir.Node) *tensor.Tensor {
	if len(n.Inputs) != 1 || len(n.Outputs) != 1 || n.Inputs[0] == ir.NoValue {
		return nil
	}
	id := n.Inputs[0]
	if id < 0 || int(id) >= len(g.Values) {
		return nil
	}
	sh, ok := g.Values[id].Type.StaticShape()
	if !ok {
		return nil
	}
	if n.Op == "Size" {
		return tensor.FromInt64(tensor.Shape{}, []int64{int64(sh.Size())})
	}
	r := int64(len(sh))
	start, end := int64(0), r
	if g.Opset("") >= 15 {
		start, end = n.Attrs.Int("start", 0), n.Attrs.Int("end", r)
		if start < 0 {
			start += r
		}
		if end < 0 {
			end += r
		}
		start = min(max(start, 0), r)
		end = min(max(end, start), r)
	}
	v := make([]int64, 0, end-start)
	for _, d := range sh[start:end] {
		v = append(v, int64(d))
	}
	return tensor.FromInt64(tensor.Shape{len(v)}, v)
}
