package infer

import (
	"fmt"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ops"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// NodeEvaluator returns a rewrite.Evaluator that computes a node with the
// kernels of table (ops.NewTable() when table is nil), for constant folding.
//
// Each call builds the node's kernel through table.Lookup with a
// kernel.Info describing a one-node graph (inputs typed after the given
// tensors, all of them constant) and runs it once, single-threaded, with
// kernel.NewCtx and kernel.RunNode. It uses the generic (pure-Go) kernel
// tier, so folded constants are the reference results, independent of the
// CPU. Errors name the node.
func NodeEvaluator(table *kernel.Table) rewrite.Evaluator {
	if table == nil {
		table = ops.NewTable()
	}
	return func(n *ir.Node, opset int64, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if len(in) != len(n.Inputs) {
			padded := make([]*tensor.Tensor, len(n.Inputs))
			copy(padded, in)
			in = padded
		}
		mini, node := evalGraph(n, opset, in)
		info := &kernel.Info{Graph: mini, Node: node, Opset: opset, Tier: kernel.TierGeneric,
			Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
		for i, t := range in {
			if t == nil {
				continue
			}
			info.Inputs[i] = mini.Values[node.Inputs[i]].Type
			info.Consts[i] = t
		}
		k, _, err := table.Lookup(info)
		if err != nil {
			return nil, err
		}
		outs, err := kernel.RunNode(k, kernel.NewCtx(node, 1, nil), len(node.Outputs), in)
		if err != nil {
			return nil, err
		}
		for i, o := range node.Outputs {
			if o != ir.NoValue && outs[i] == nil {
				return nil, fmt.Errorf("node %s: kernel produced no output %d", n.Label(), i)
			}
		}
		return outs, nil
	}
}

// evalGraph wraps n in a one-node graph whose inputs are constants holding
// in, so kernel builders that look at Info.Graph see consistent values.
func evalGraph(n *ir.Node, opset int64, in []*tensor.Tensor) (*ir.Graph, *ir.Node) {
	domain := n.Domain
	if domain == "ai.onnx" {
		domain = ""
	}
	g := &ir.Graph{Name: "eval", Opsets: map[string]int64{domain: opset}}
	node := *n
	node.Inputs = make([]ir.ValueID, len(n.Inputs))
	for i := range n.Inputs {
		if i >= len(in) || in[i] == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		t := in[i]
		node.Inputs[i] = g.AddValue(ir.Value{Name: fmt.Sprintf("in%d", i), Const: t,
			Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}})
	}
	node.Outputs = make([]ir.ValueID, len(n.Outputs))
	for i, o := range n.Outputs {
		if o == ir.NoValue {
			node.Outputs[i] = ir.NoValue
			continue
		}
		node.Outputs[i] = g.AddValue(ir.Value{Name: fmt.Sprintf("out%d", i)})
	}
	g.AddNode(node)
	return g, &g.Nodes[0]
}
