package ptq

import (
	"fmt"
	"sort"

	"github.com/goslim/goslim/ir"
)

// NodePlan is the planner's decision for one node.
type NodePlan struct {
	// Quantized reports whether the node runs on quantized tensors.
	Quantized bool
	// Mark is the rule's mark (zero when the node stays FP32).
	Mark Mark
	// Reason says why the node stays FP32 ("excluded by name", "no rule
	// for op Softmax", ...), empty when quantized.
	Reason string
	// Layer reports whether the node is a layer of its own for sensitivity
	// analysis and exclusion: a quantized node that is not a passthrough.
	Layer bool
}

// Plan says which tensors of a graph get quantized and which activations
// share parameters. It is computed from the graph and the config only
// (no statistics), so it also tells calibration which values to observe.
type Plan struct {
	// Graph is the planned graph (read-only).
	Graph *ir.Graph
	// Nodes has one entry per graph node, in Graph.Nodes order.
	Nodes []NodePlan
	// Groups lists the activation parameter groups: values in one group
	// share one scale and zero point. Each group is sorted by ValueID.
	Groups [][]ir.ValueID
	// group maps a value to its index in Groups, or -1.
	group []int
	// Fused lists values whose quantization a following Relu/Clip absorbed.
	Fused []ir.ValueID
}

// Group returns the parameter group of an activation value, or -1 when the
// value is not quantized.
func (p *Plan) Group(id ir.ValueID) int {
	if id < 0 || int(id) >= len(p.group) {
		return -1
	}
	return p.group[id]
}

// Quantized reports whether an activation value gets a Q/DQ pair.
func (p *Plan) Quantized(id ir.ValueID) bool { return p.Group(id) >= 0 }

// Observed returns the non-constant activation values whose ranges the
// quantizer needs, sorted: calibration observes these.
func (p *Plan) Observed() []ir.ValueID {
	var ids []ir.ValueID
	for _, grp := range p.Groups {
		for _, id := range grp {
			if p.Graph.Values[id].Const == nil || p.Graph.IsInput(id) {
				ids = append(ids, id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Layers returns the indices of the nodes that are layers (see
// NodePlan.Layer), in graph order.
func (p *Plan) Layers() []int {
	var ls []int
	for i, np := range p.Nodes {
		if np.Layer {
			ls = append(ls, i)
		}
	}
	return ls
}

// unionFind groups values.
type unionFind []int32

func (u unionFind) find(x int32) int32 {
	for u[x] != x {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) union(a, b int32) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		if ra < rb {
			u[rb] = ra
		} else {
			u[ra] = rb
		}
	}
}

// fusers are the ops whose output a following Relu/Clip may absorb.
var fusers = map[string]bool{"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true, "Add": true}

// NewPlan applies the rules to every node of g in topological order:
//
//   - a node that is excluded (Config.Exclude, a layer override, or not in
//     Config.Only when that is set), has no rule, is in another domain, or
//     whose rule declines stays FP32 (NodePlan.Reason says why);
//   - a passthrough node is quantized only when its input 0 already is,
//     and its output joins input 0's parameter group;
//   - a Relu/Clip whose input is the output of a quantized Conv,
//     ConvTranspose, Gemm, MatMul or Add, read by nothing else and not a
//     graph output, absorbs that output's quantization (the producer's
//     output is not quantized; the activation's output is);
//   - otherwise every Activation input and the output (Mark.Output) are
//     quantized, grouped as ShareInputs/ShareOutput say;
//   - with Config.FloatOutputs, graph outputs are never quantized (their
//     producers read quantized inputs and write float).
//
// Every consumer of a quantized value reads its dequantized copy, FP32
// nodes included (that is what an integer runtime computes).
func NewPlan(g *ir.Graph, cfg *Config) (*Plan, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := checkNotQuantized(g); err != nil {
		return nil, err
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("ptq: %w", err)
	}
	rules := cfg.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	nv := len(g.Values)
	p := &Plan{Graph: g, Nodes: make([]NodePlan, len(g.Nodes)), group: make([]int, nv)}
	uf := make(unionFind, nv)
	for i := range uf {
		uf[i] = int32(i)
	}
	quant := make([]bool, nv)  // value gets a Q/DQ pair
	ownOut := make([]bool, nv) // value is a quantized output with its own group
	prod := g.Producers()
	cons := g.Consumers()
	isOut := make([]bool, nv)
	for _, id := range g.Outputs {
		isOut[id] = true
	}
	rc := &RuleContext{Graph: g, Config: cfg}
	for _, ni := range order {
		n := &g.Nodes[ni]
		np := &p.Nodes[ni]
		if n.Domain != "" && n.Domain != "ai.onnx" {
			np.Reason = "op of domain " + n.Domain
			continue
		}
		if why := cfg.excluded(ni, n); why != "" {
			np.Reason = why
			continue
		}
		rule, ok := rules.Lookup(n.Op)
		if !ok {
			np.Reason = "no rule for op " + n.Op
			continue
		}
		m, why, ok := rule(rc, n)
		if !ok {
			np.Reason = why
			continue
		}
		if m.Passthrough {
			x, y := n.Input(0), n.Outputs[0]
			if y == ir.NoValue {
				np.Reason = "output unused"
				continue
			}
			fuse := m.Fuse && quant[x] && ownOut[x] && !isOut[x] && len(cons[x]) == 1 &&
				prod[x] >= 0 && fusers[g.Nodes[prod[x]].Op] && p.Nodes[prod[x]].Quantized
			switch {
			case fuse:
				quant[x], ownOut[x] = false, false
				p.Fused = append(p.Fused, x)
				quant[y], ownOut[y] = true, true
			case quant[x]:
				quant[y] = true
				uf.union(int32(x), int32(y))
			default:
				np.Reason = "input not quantized"
				continue
			}
			np.Quantized, np.Mark = true, m
			continue
		}
		var shared []int32
		for _, in := range m.Inputs {
			if in.Role != Activation {
				continue
			}
			id := n.Input(in.Slot)
			if id == ir.NoValue {
				continue
			}
			quant[id] = true
			if m.ShareInputs {
				shared = append(shared, int32(id))
			}
		}
		if m.Output && len(n.Outputs) > 0 && n.Outputs[0] != ir.NoValue {
			y := n.Outputs[0]
			quant[y] = true
			if m.ShareOutput {
				shared = append(shared, int32(y))
			} else {
				ownOut[y] = true
			}
		}
		for i := 1; i < len(shared); i++ {
			uf.union(shared[0], shared[i])
		}
		np.Quantized, np.Mark, np.Layer = true, m, true
	}
	if cfg.FloatOutputs {
		for _, y := range g.Outputs {
			quant[y] = false
		}
	}
	roots := map[int32]int{}
	for id := range p.group {
		p.group[id] = -1
		if !quant[id] {
			continue
		}
		r := uf.find(int32(id))
		gi, ok := roots[r]
		if !ok {
			gi = len(p.Groups)
			roots[r] = gi
			p.Groups = append(p.Groups, nil)
		}
		p.group[id] = gi
		p.Groups[gi] = append(p.Groups[gi], ir.ValueID(id))
	}
	return p, nil
}

// quantizedOps are the ops of already quantized models.
var quantizedOps = map[string]bool{
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true,
	"QLinearConv": true, "QLinearMatMul": true, "ConvInteger": true, "MatMulInteger": true,
	"QLinearAdd": true, "QLinearMul": true, "QLinearConcat": true, "QLinearAveragePool": true,
	"QLinearGlobalAveragePool": true, "QLinearLeakyRelu": true, "QLinearSigmoid": true,
	"QGemm": true, "QAttention": true,
}

// checkNotQuantized refuses models that already hold quantization ops.
func checkNotQuantized(g *ir.Graph) error {
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if quantizedOps[n.Op] {
			return fmt.Errorf("ptq: the model is already quantized (node %s); quantize its FP32 original instead", n.Label())
		}
	}
	return nil
}
