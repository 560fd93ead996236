package autodiff

import (
	"fmt"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// builder holds the program graph while Build constructs it. Forward nodes
// stay in g.Nodes; nodes added by rules go to pre (Shape nodes of graph
// inputs and constants), after (Shape nodes scheduled right after a
// forward node) or back (the backward pass), and are merged at the end.
type builder struct {
	g      *ir.Graph
	names  map[string]bool
	prod   []int // producing forward node per value (-1 for none)
	nFwdV  int   // values that existed before the backward pass
	pre    []ir.Node
	after  map[int][]ir.Node
	back   []ir.Node
	shapes map[ir.ValueID]ir.ValueID
	seq    int
}

func build(model *ir.Graph, loss ir.ValueID, opts Options) (*Program, error) {
	if err := model.Verify(); err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	if loss < 0 || int(loss) >= len(model.Values) {
		return nil, fmt.Errorf("autodiff: loss value id %d out of range", loss)
	}
	rules := opts.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	g := model.Clone()
	if g.Opsets == nil {
		g.Opsets = map[string]int64{}
	}
	if g.Opsets[Domain] == 0 {
		g.Opsets[Domain] = 1
	}
	b := &builder{g: g, names: map[string]bool{}, after: map[int][]ir.Node{}, shapes: map[ir.ValueID]ir.ValueID{}}
	for i := range g.Values {
		b.names[g.Values[i].Name] = true
	}
	p := &Program{Graph: g, Loss: loss, Seed: ir.NoValue, Outputs: map[string]ir.ValueID{}}

	// Parameters.
	deps := lossDeps(g, loss)
	isParam := make([]bool, len(g.Values))
	var params []ir.ValueID
	if opts.Params == nil {
		// BatchNormalization running statistics are never parameters, even
		// when marked Trainable (a model whose float initializers were all
		// marked).
		stats := map[ir.ValueID]bool{}
		for ni := range g.Nodes {
			n := &g.Nodes[ni]
			if n.Op == "BatchNormalization" && (n.Domain == "" || n.Domain == "ai.onnx") {
				stats[n.Input(3)], stats[n.Input(4)] = true, true
			}
		}
		for id := range g.Values {
			v := &g.Values[id]
			if v.Trainable && v.Const != nil && v.Const.DType.IsFloat() && deps[id] && !stats[ir.ValueID(id)] {
				params = append(params, ir.ValueID(id))
			}
		}
	} else {
		for _, id := range opts.Params {
			if id < 0 || int(id) >= len(g.Values) {
				return nil, fmt.Errorf("autodiff: parameter id %d out of range", id)
			}
			v := &g.Values[id]
			if v.Const == nil || !v.Const.DType.IsFloat() {
				return nil, fmt.Errorf("autodiff: parameter %q is not a float constant", v.Name)
			}
			if isParam[id] {
				return nil, fmt.Errorf("autodiff: parameter %q is listed twice", v.Name)
			}
			isParam[id] = true
			params = append(params, id)
		}
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("autodiff: no parameters to differentiate (mark weights Trainable or set Options.Params)")
	}
	for _, id := range params {
		isParam[id] = true
	}

	// Training-mode forward.
	if err := b.lower(p, opts, isParam); err != nil {
		return nil, err
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	b.prod = g.Producers()
	b.nFwdV = len(g.Values)
	nFwdNodes := len(g.Nodes)

	// Values that depend on a parameter.
	needs := make([]bool, len(g.Values))
	for _, id := range params {
		needs[id] = true
	}
	for _, ni := range order {
		n := &g.Nodes[ni]
		dep := false
		for _, in := range n.Inputs {
			if in != ir.NoValue && needs[in] {
				dep = true
				break
			}
		}
		if dep {
			for _, o := range n.Outputs {
				if o != ir.NoValue {
					needs[o] = true
				}
			}
		}
	}
	if !needs[loss] {
		return nil, fmt.Errorf("autodiff: the loss %q does not depend on any parameter", g.Values[loss].Name)
	}

	// Backward pass.
	grads := map[ir.ValueID][]ir.ValueID{}
	seed, err := b.ones(loss)
	if err != nil {
		return nil, err
	}
	grads[loss] = []ir.ValueID{seed}
	for i := len(order) - 1; i >= 0; i-- {
		ni := order[i]
		n := g.Nodes[ni] // a copy: rules may extend the forward node's outputs
		dOut := make([]ir.ValueID, len(n.Outputs))
		have := false
		for j, o := range n.Outputs {
			dOut[j] = ir.NoValue
			if o == ir.NoValue || int(o) >= len(needs) || len(grads[o]) == 0 || !needs[o] {
				continue
			}
			dOut[j] = b.sum(grads[o])
			have = true
		}
		if !have {
			continue
		}
		ctx := &RuleCtx{b: b, node: ni, needs: make([]bool, len(n.Inputs))}
		anyNeed := false
		for j, in := range n.Inputs {
			ctx.needs[j] = in != ir.NoValue && needs[in]
			anyNeed = anyNeed || ctx.needs[j]
		}
		if !anyNeed {
			continue
		}
		rule, ok := rules.Get(n.Domain, n.Op)
		if !ok {
			return nil, fmt.Errorf("autodiff: node %s: no gradient rule for op %s, which lies between a parameter and the loss", n.Label(), n.Op)
		}
		dIn, err := rule(ctx, &n, dOut)
		if err != nil {
			return nil, err
		}
		if len(dIn) > len(n.Inputs) {
			return nil, fmt.Errorf("autodiff: node %s: gradient rule returned %d gradients for %d inputs", n.Label(), len(dIn), len(n.Inputs))
		}
		for j, d := range dIn {
			if d == ir.NoValue || !ctx.needs[j] {
				continue
			}
			grads[n.Inputs[j]] = append(grads[n.Inputs[j]], d)
		}
	}

	// Outputs: loss, kept forward values, gradients, state updates.
	outputs := []ir.ValueID{loss}
	used := map[ir.ValueID]bool{loss: true}
	keep := opts.Outputs
	if keep == nil {
		keep = model.Outputs
	}
	for _, id := range keep {
		if id < 0 || int(id) >= b.nFwdV {
			return nil, fmt.Errorf("autodiff: output id %d out of range", id)
		}
		if used[id] {
			continue
		}
		used[id] = true
		outputs = append(outputs, id)
		p.Outputs[g.Values[id].Name] = id
	}
	for _, id := range params {
		var gv ir.ValueID
		if gs := grads[id]; len(gs) > 0 {
			gv = b.sum(gs)
		} else if gv, err = b.zeros(id); err != nil {
			return nil, err
		}
		name := b.unique(g.Values[id].Name + "_grad")
		if int(gv) < b.nFwdV || g.Values[gv].Const != nil || used[gv] {
			gv = b.node("", "Identity", []bool{true}, []ir.ValueID{gv}, nil)[0]
		}
		g.Values[gv].Name = name
		if t := g.Values[id].Type; t.DType != 0 {
			g.Values[gv].Type = ir.Type{DType: t.DType, Ranked: t.Ranked, Shape: append([]ir.Dim(nil), t.Shape...)}
		}
		used[gv] = true
		outputs = append(outputs, gv)
		p.Params = append(p.Params, Param{Value: id, Input: id, Grad: gv})
	}
	for _, s := range p.States {
		outputs = append(outputs, s.Update)
	}

	// Inputs: model inputs, parameters, states, seed.
	inputs := append([]ir.ValueID(nil), g.Inputs...)
	isIn := map[ir.ValueID]bool{}
	for _, id := range inputs {
		isIn[id] = true
	}
	for _, pr := range p.Params {
		g.Values[pr.Value].Const = nil
		if !isIn[pr.Value] {
			isIn[pr.Value] = true
			inputs = append(inputs, pr.Value)
		}
	}
	for _, s := range p.States {
		g.Values[s.Value].Const = nil
		if !isIn[s.Value] {
			isIn[s.Value] = true
			inputs = append(inputs, s.Value)
		}
	}
	if p.Seed != ir.NoValue {
		inputs = append(inputs, p.Seed)
	}
	g.Inputs = inputs
	g.Outputs = outputs

	nodes := make([]ir.Node, 0, len(g.Nodes)+len(b.pre)+len(b.back)+len(b.after))
	nodes = append(nodes, b.pre...)
	for ni := 0; ni < nFwdNodes; ni++ {
		nodes = append(nodes, g.Nodes[ni])
		nodes = append(nodes, b.after[ni]...)
	}
	nodes = append(nodes, b.back...)
	g.Nodes = nodes
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("autodiff: built an invalid program: %w", err)
	}
	b.typeInternal()
	return p, nil
}

// typeInternal gives the outputs of goslim-domain nodes without a declared
// element type the type dtypeOf derives. Shape inference passes ops
// outside ai.onnx by, so without it every value downstream of a
// BatchNormTrain would have no static dtype and the session would pick
// the generic float32 kernels (the tiered ones decline untyped inputs).
func (b *builder) typeInternal() {
	g := b.g
	b.prod = g.Producers()
	for ni := range g.Nodes {
		n := &g.Nodes[ni]
		if n.Domain != Domain {
			continue
		}
		for _, o := range n.Outputs {
			if o == ir.NoValue || g.Values[o].Type.DType != 0 {
				continue
			}
			if dt := b.dtypeOf(o); dt != 0 {
				g.Values[o].Type.DType = dt
			}
		}
	}
}

// lossDeps marks the values the loss depends on.
func lossDeps(g *ir.Graph, loss ir.ValueID) []bool {
	prod := g.Producers()
	deps := make([]bool, len(g.Values))
	stack := []ir.ValueID{loss}
	deps[loss] = true
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if ni := prod[v]; ni >= 0 {
			for _, in := range g.Nodes[ni].Inputs {
				if in != ir.NoValue && !deps[in] {
					deps[in] = true
					stack = append(stack, in)
				}
			}
		}
	}
	return deps
}

// lower rewrites the forward nodes that behave differently in training:
// BatchNormalization (unless frozen) and Dropout.
func (b *builder) lower(p *Program, opts Options, isParam []bool) error {
	g := b.g
	opset := g.Opset("")
	consumers := g.Consumers()
	usedOut := func(id ir.ValueID) bool {
		if id == ir.NoValue {
			return false
		}
		if len(consumers[id]) > 0 {
			return true
		}
		for _, o := range g.Outputs {
			if o == id {
				return true
			}
		}
		return false
	}
	isState := map[ir.ValueID]bool{}
	salt := int64(0)
	for ni := range g.Nodes {
		n := &g.Nodes[ni]
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		switch n.Op {
		case "BatchNormalization":
			if opts.FreezeBatchNorm {
				continue
			}
			if len(n.Inputs) < 5 {
				return fmt.Errorf("autodiff: node %s: BatchNormalization needs 5 inputs", n.Label())
			}
			if opset < 9 && n.Attrs.Int("spatial", 1) == 0 {
				return fmt.Errorf("autodiff: node %s: training BatchNormalization with spatial=0 is not supported", n.Label())
			}
			for _, o := range n.Outputs[1:] {
				if usedOut(o) {
					return fmt.Errorf("autodiff: node %s: BatchNormalization statistics outputs are not supported in a model to train (Build adds its own)", n.Label())
				}
			}
			for _, s := range n.Inputs[3:5] {
				v := &g.Values[s]
				if v.Const == nil && !g.IsInput(s) {
					return fmt.Errorf("autodiff: node %s: running statistic %q must be a constant", n.Label(), v.Name)
				}
				if isParam[s] {
					return fmt.Errorf("autodiff: node %s: %q is both a parameter and a running statistic", n.Label(), v.Name)
				}
				if isState[s] {
					return fmt.Errorf("autodiff: node %s: running statistic %q is shared by two BatchNormalization nodes", n.Label(), v.Name)
				}
				isState[s] = true
			}
			base := n.Name
			if base == "" {
				base = "bn"
			}
			xT := g.Values[n.Inputs[0]].Type
			mkStat := func(suffix string, like ir.ValueID) ir.ValueID {
				t := ir.Type{DType: xT.DType}
				if lt := g.Values[like].Type; lt.DType != 0 {
					t = ir.Type{DType: lt.DType, Ranked: lt.Ranked, Shape: append([]ir.Dim(nil), lt.Shape...)}
				}
				return b.newValue(base+suffix, t)
			}
			outs := []ir.ValueID{n.Outputs[0], mkStat("_saved_mean", n.Inputs[1]), mkStat("_saved_inv_std", n.Inputs[1]),
				mkStat("_running_mean", n.Inputs[3]), mkStat("_running_var", n.Inputs[4])}
			for k, s := range n.Inputs[3:5] {
				p.States = append(p.States, State{Value: s, Input: s, Update: outs[3+k]})
			}
			n.Op, n.Domain = "BatchNormTrain", Domain
			n.Inputs = n.Inputs[:5]
			n.Outputs = outs
			n.Attrs = ir.Attrs{ir.FloatAttr("epsilon", n.Attrs.Float("epsilon", 1e-5)),
				ir.FloatAttr("momentum", n.Attrs.Float("momentum", 0.9))}
		case "Dropout":
			ratio := float64(0.5)
			if opset < 12 {
				ratio = float64(n.Attrs.Float("ratio", 0.5))
			} else if r := n.Input(1); r != ir.NoValue {
				c := g.Values[r].Const
				if c == nil || g.IsInput(r) || c.Len() != 1 {
					return fmt.Errorf("autodiff: node %s: Dropout ratio must be a constant scalar to train", n.Label())
				}
				ratio = c.Float64At(0)
			}
			if !(ratio >= 0 && ratio < 1) {
				return fmt.Errorf("autodiff: node %s: Dropout ratio %v must be in [0, 1)", n.Label(), ratio)
			}
			mask := ir.NoValue
			if len(n.Outputs) > 1 && n.Outputs[1] != ir.NoValue {
				if opset < 10 && usedOut(n.Outputs[1]) {
					return fmt.Errorf("autodiff: node %s: a used Dropout mask before opset 10 is not supported in training", n.Label())
				}
				mask = n.Outputs[1]
				g.Values[mask].Type = ir.Type{DType: tensor.Bool}
			} else {
				base := n.Name
				if base == "" {
					base = "dropout"
				}
				mask = b.newValue(base+"_mask", ir.Type{DType: tensor.Bool})
			}
			if p.Seed == ir.NoValue {
				p.Seed = b.newValue("goslim_seed", ir.Type{DType: tensor.Int64, Ranked: true, Shape: []ir.Dim{}})
			}
			n.Op, n.Domain = "DropoutTrain", Domain
			n.Inputs = []ir.ValueID{n.Inputs[0], p.Seed}
			n.Outputs = []ir.ValueID{n.Outputs[0], mask}
			n.Attrs = ir.Attrs{ir.FloatAttr("ratio", float32(ratio)), ir.IntAttr("salt", salt)}
			salt++
		}
	}
	return nil
}

// unique returns name, or name with a numeric suffix, unused so far.
func (b *builder) unique(name string) string {
	if !b.names[name] {
		b.names[name] = true
		return name
	}
	for i := 2; ; i++ {
		c := fmt.Sprintf("%s_%d", name, i)
		if !b.names[c] {
			b.names[c] = true
			return c
		}
	}
}

// newValue adds a value with a unique name.
func (b *builder) newValue(name string, t ir.Type) ir.ValueID {
	return b.g.AddValue(ir.Value{Name: b.unique(name), Type: t})
}

// node adds a backward node (see RuleCtx.Internal).
func (b *builder) node(domain, op string, want []bool, inputs []ir.ValueID, attrs []ir.Attr) []ir.ValueID {
	b.seq++
	name := fmt.Sprintf("grad/%s_%d", op, b.seq)
	outs := make([]ir.ValueID, len(want))
	for i, w := range want {
		outs[i] = ir.NoValue
		if w {
			outs[i] = b.newValue(fmt.Sprintf("%s_out%d", name, i), ir.Type{})
		}
	}
	b.back = append(b.back, ir.Node{Op: op, Domain: normDomain(domain), Name: name,
		Inputs: append([]ir.ValueID(nil), inputs...), Outputs: outs, Attrs: ir.Attrs(attrs)})
	return outs
}

// forwardOutput returns output slot of forward node ni, adding it (as a
// new value named after the node) when the node does not produce it yet.
func (b *builder) forwardOutput(ni, slot int, suffix string, t ir.Type) ir.ValueID {
	n := &b.g.Nodes[ni]
	for len(n.Outputs) <= slot {
		n.Outputs = append(n.Outputs, ir.NoValue)
	}
	if n.Outputs[slot] == ir.NoValue {
		base := n.Name
		if base == "" {
			base = n.Op
		}
		n.Outputs[slot] = b.newValue(base+suffix, t)
	}
	return n.Outputs[slot]
}

// dtypeOf implements RuleCtx.DType.
func (b *builder) dtypeOf(v ir.ValueID) tensor.DType {
	g := b.g
	for steps := 0; v != ir.NoValue && steps < len(g.Values); steps++ {
		val := &g.Values[v]
		if val.Type.DType != 0 {
			return val.Type.DType
		}
		if val.Const != nil {
			return val.Const.DType
		}
		if int(v) >= len(b.prod) || b.prod[v] < 0 {
			return 0
		}
		n := &g.Nodes[b.prod[v]]
		slot := 0
		for i, o := range n.Outputs {
			if o == v {
				slot = i
			}
		}
		switch {
		case n.Op == "Cast" && n.Domain == "":
			return tensor.DType(n.Attrs.Int("to", 0))
		case n.Op == "Shape" || n.Op == "Size" || n.Op == "ArgMax" || n.Op == "ArgMin" || n.Op == "NonZero":
			return tensor.Int64
		case n.Op == "MaxPool" && slot == 1:
			return tensor.Int64
		case n.Op == "DropoutTrain" && slot == 1:
			return tensor.Bool
		}
		if n.Op == "Where" && n.Domain == "" && len(n.Inputs) == 3 {
			v = n.Inputs[1]
			continue
		}
		next := ir.NoValue
		for _, in := range n.Inputs {
			if in != ir.NoValue {
				next = in
				break
			}
		}
		v = next
	}
	return 0
}

// constant adds a constant value.
func (b *builder) constant(name string, t *tensor.Tensor) ir.ValueID {
	return b.g.AddValue(ir.Value{Name: b.unique(name), Const: t,
		Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}})
}

// filled returns a tensor of the given float dtype and shape filled with v.
func filled(dt tensor.DType, shape tensor.Shape, v float64) (*tensor.Tensor, error) {
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, err
	}
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(v)
		}
	case []float64:
		for i := range d {
			d[i] = v
		}
	case []uint16:
		if dt != tensor.Float16 {
			return nil, fmt.Errorf("autodiff: dtype %v is not supported for gradients", dt)
		}
		h := tensor.Float32ToHalf(float32(v))
		for i := range d {
			d[i] = h
		}
	default:
		return nil, fmt.Errorf("autodiff: dtype %v is not a float dtype", dt)
	}
	return t, nil
}

func (b *builder) scalar(dt tensor.DType, v float64) (ir.ValueID, error) {
	t, err := filled(dt, tensor.Shape{}, v)
	if err != nil {
		return ir.NoValue, err
	}
	return b.constant("grad_const", t), nil
}

func (b *builder) ints(v []int64) ir.ValueID {
	return b.constant("grad_ints", tensor.FromInt64(tensor.Shape{len(v)}, append([]int64(nil), v...)))
}

// shapeOf implements RuleCtx.Shape.
func (b *builder) shapeOf(v ir.ValueID) ir.ValueID {
	if s, ok := b.shapes[v]; ok {
		return s
	}
	name := b.g.Values[v].Name + "_shape"
	out := b.newValue(name, ir.Type{DType: tensor.Int64, Ranked: true, Shape: []ir.Dim{{Size: -1}}})
	n := ir.Node{Op: "Shape", Name: name, Inputs: []ir.ValueID{v}, Outputs: []ir.ValueID{out}}
	switch {
	case int(v) >= len(b.prod):
		b.back = append(b.back, n)
	case b.prod[v] >= 0:
		b.after[b.prod[v]] = append(b.after[b.prod[v]], n)
	default:
		b.pre = append(b.pre, n)
	}
	b.shapes[v] = out
	return out
}

// sumTo implements RuleCtx.SumTo.
func (b *builder) sumTo(gv, like ir.ValueID) ir.ValueID {
	if gs, ok := b.g.Values[gv].Type.StaticShape(); ok {
		if ls, ok := b.g.Values[like].Type.StaticShape(); ok && gs.Equal(ls) {
			return gv
		}
	}
	return b.node(Domain, "SumTo", []bool{true}, []ir.ValueID{gv, b.shapeOf(like)}, nil)[0]
}

// zeros implements RuleCtx.Zeros.
func (b *builder) zeros(like ir.ValueID) (ir.ValueID, error) {
	dt := b.dtypeOf(like)
	if dt == 0 {
		return ir.NoValue, fmt.Errorf("autodiff: cannot tell the dtype of %q", b.g.Values[like].Name)
	}
	t, err := filled(dt, tensor.Shape{1}, 0)
	if err != nil {
		return ir.NoValue, err
	}
	return b.node("", "ConstantOfShape", []bool{true}, []ir.ValueID{b.shapeOf(like)}, []ir.Attr{ir.TensorAttr("value", t)})[0], nil
}

// ones returns the initial gradient of the loss: ones of its shape.
func (b *builder) ones(loss ir.ValueID) (ir.ValueID, error) {
	dt := b.dtypeOf(loss)
	if dt == 0 {
		return ir.NoValue, fmt.Errorf("autodiff: cannot tell the dtype of the loss %q", b.g.Values[loss].Name)
	}
	if s, ok := b.g.Values[loss].Type.StaticShape(); ok {
		t, err := filled(dt, s, 1)
		if err != nil {
			return ir.NoValue, err
		}
		return b.constant(b.g.Values[loss].Name+"_seed", t), nil
	}
	t, err := filled(dt, tensor.Shape{1}, 1)
	if err != nil {
		return ir.NoValue, err
	}
	return b.node("", "ConstantOfShape", []bool{true}, []ir.ValueID{b.shapeOf(loss)}, []ir.Attr{ir.TensorAttr("value", t)})[0], nil
}

// sum returns the sum of gradient contributions (Add nodes in order).
func (b *builder) sum(gs []ir.ValueID) ir.ValueID {
	s := gs[0]
	for _, x := range gs[1:] {
		s = b.node("", "Add", []bool{true}, []ir.ValueID{s, x}, nil)[0]
	}
	return s
}
