package infer

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// INT8 lowering. A QDQ graph (goslim ptq's output, ONNX Runtime's
// quantizer's) computes every quantized layer as
//
//	q_x -> DequantizeLinear -> Op(x, DQ(w), DQ(b)) [-> Relu/Clip] -> QuantizeLinear -> q_y
//
// which, run as written, dequantizes to float32, computes in float32 and
// quantizes again. The lowering pass replaces each such group by one
// internal node of domain "goslim" that reads q_x and writes q_y directly
// (same op names and inputs as ai.onnx QLinearConv / QLinearMatMul and
// com.microsoft QLinearAdd, QLinearMul, QLinearConcat,
// QLinearGlobalAveragePool, QLinearAveragePool, QGemm), so activations stay
// 8-bit between layers: the graph's input QuantizeLinear and output
// DequantizeLinear are the only conversions left. Weights are folded: the
// int8 weight constant and its scales feed the node; the int32 bias feeds
// it when its scale is x_scale*w_scale (a bias on another scale, or a
// float bias, is requantized to that scale once, at compile time). A
// following Relu or Clip becomes the int attributes act_min and act_max,
// an inclusive clamp in the quantized output domain (exact: quantization
// is monotone). A Gemm whose output is not quantized (float logits)
// becomes QGemm without y_scale, which outputs float32. Order-preserving ops (MaxPool, GlobalMaxPool) and data
// movement (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat with
// one shared scale) between a DequantizeLinear and a QuantizeLinear with
// the same parameters run as the plain ONNX op on the 8-bit data; a
// Reshape, Flatten, Squeeze, Unsqueeze or Transpose between a
// DequantizeLinear and a lowered op (no QuantizeLinear after it) moves the
// DequantizeLinear past itself and runs on the 8-bit data too.
//
// A group that does not match, or that no kernel accepts, stays DQ -> FP32
// op -> Q (correct, slower), and its record in Session.Kernels says why
// (NodeKernel.Note). Values that are graph outputs, kept or tapped are
// never hidden, exactly as for fusion: a tap on every value therefore
// disables the lowering (calibration sees the float graph), and tapping
// chosen values keeps only the groups that would hide them in float.
//
// Options.NoInt8Lowering, or GOSLIM_INT8=off in the environment, disables
// the pass (the reference path the lowering is tested against).
// Options.NoChannelsLast, or GOSLIM_INT8=nchw, keeps the lowering but
// stores every 8-bit activation NCHW (see layout_int8.go for the
// channels-last layout pass).

// Internal op names the lowering emits (domain FusedDomain).
const (
	QLinearConv              = "QLinearConv"
	QLinearMatMul            = "QLinearMatMul"
	QGemm                    = "QGemm"
	QLinearAdd               = "QLinearAdd"
	QLinearMul               = "QLinearMul"
	QLinearConcat            = "QLinearConcat"
	QLinearGlobalAveragePool = "QLinearGlobalAveragePool"
	QLinearAveragePool       = "QLinearAveragePool"
)

// Int8EnvVar is the environment variable that disables the INT8 lowering
// when set to "off", "0" or "false", and keeps every 8-bit activation
// NCHW (no channels-last layout pass, layout_int8.go) when set to "nchw".
const Int8EnvVar = "GOSLIM_INT8"

// int8NCHW reports whether the environment turns the channels-last
// layout of the lowering off.
func int8NCHW() bool { return strings.EqualFold(os.Getenv(Int8EnvVar), "nchw") }

// int8Disabled reports whether the environment turns the lowering off.
func int8Disabled() bool {
	switch strings.ToLower(os.Getenv(Int8EnvVar)) {
	case "off", "0", "false", "no":
		return true
	}
	return false
}

// qparams describes one per-tensor quantization: real = (q - zp) * scale.
type qparams struct {
	q     ir.ValueID // the 8-bit value
	scale ir.ValueID // constant scalar
	zp    ir.ValueID // constant scalar, or NoValue (0)
	s     float32
	z     int32
	dt    tensor.DType // Uint8 or Int8
	node  int          // the DequantizeLinear or QuantizeLinear node
}

func (p qparams) same(o qparams) bool { return p.s == o.s && p.z == o.z && p.dt == o.dt }

func (p qparams) qmin() int64 {
	if p.dt == tensor.Int8 {
		return -128
	}
	return 0
}

func (p qparams) qmax() int64 {
	if p.dt == tensor.Int8 {
		return 127
	}
	return 255
}

// quantize maps a real value to the quantized domain as QuantizeLinear does.
func (p qparams) quantize(v float32) int64 {
	r := math.RoundToEven(float64(v / p.s))
	q := int64(p.qmin())
	switch {
	case r != r:
	case r < -1e9:
		q = p.qmin()
	case r > 1e9:
		q = p.qmax()
	default:
		q = int64(r) + int64(p.z)
	}
	return min(max(q, p.qmin()), p.qmax())
}

// lowering is one group of nodes replaced by an internal integer node.
type lowering struct {
	head    int   // the op node; the internal node takes its place
	members []int // other nodes of the group (activation, QuantizeLinear)
	node    ir.Node
	// views are data-movement nodes (Reshape, Flatten, ...) between a
	// DequantizeLinear and this group with no QuantizeLinear after them:
	// they are lowered with the group, to run on the 8-bit data.
	views []*lowering
}

// int8Pass is the state of one lowering pass over a session's private graph.
type int8Pass struct {
	s     *Session
	g     *ir.Graph
	e     *fuseEnv
	prod  []int // value -> producing node, -1
	notes map[int]string
	zeros map[string]ir.ValueID
	nAdd  int
	// viewOf holds the pending lowering of a data-movement node by the
	// float value it defined (see viewIn).
	viewOf map[ir.ValueID]*lowering
	// views collects the view lowerings the current match uses.
	views []*lowering
}

// lowerInt8 runs the lowering on the session's private graph: matching
// groups are offered to accept (the fusion pass's), after a trial build
// through table so that a group no kernel takes stays in float. Nodes that
// only fed lowered groups (dequantized weights, bias scales) are absorbed
// too. It returns, per node index, why a node of a QDQ pattern stayed in
// FP32 (nil when the pass is disabled), and an error when a group whose
// trial build succeeded is then refused (a bug: the session must not run).
func (s *Session) lowerInt8(order []int, table *kernel.Table, tier kernel.Tier,
	protect func(ir.ValueID) bool, accept func(*fusion) bool) (map[int]string, error) {
	if s.opts.NoInt8Lowering || int8Disabled() {
		return nil, nil
	}
	g := s.exec
	hasQ := false
	for i := range g.Nodes {
		if n := &g.Nodes[i]; isONNX(n) && (n.Op == "DequantizeLinear" || n.Op == "QuantizeLinear") {
			hasQ = true
			break
		}
	}
	if !hasQ {
		return nil, nil
	}
	p := &int8Pass{s: s, g: g, viewOf: map[ir.ValueID]*lowering{}, e: &fuseEnv{g: g, cons: g.Consumers(), protect: protect, opset: g.Opset("")},
		prod: make([]int, len(g.Values)), notes: map[int]string{}, zeros: map[string]ir.ValueID{}}
	for i := range p.prod {
		p.prod[i] = -1
	}
	for ni := range g.Nodes {
		for _, o := range g.Nodes[ni].Outputs {
			if o != ir.NoValue {
				p.prod[o] = ni
			}
		}
	}
	if g.Opsets == nil {
		g.Opsets = map[string]int64{}
	}
	if _, ok := g.Opsets[FusedDomain]; !ok {
		g.Opsets[FusedDomain] = 1
	}
	used := make([]bool, len(g.Nodes))
	var groups []*lowering
	for _, ni := range order {
		n := &g.Nodes[ni]
		if used[ni] || !isONNX(n) || !p.inQDQ(ni) {
			continue
		}
		p.views = nil
		l, why := p.match(ni)
		if l == nil {
			if why != "" {
				p.notes[ni] = why
			}
			continue
		}
		l.views = p.views
		free := true
		for _, m := range l.members {
			free = free && !used[m]
		}
		for _, v := range l.views {
			free = free && !used[v.head]
		}
		if !free {
			p.notes[ni] = "its activation or QuantizeLinear belongs to another lowered group"
			continue
		}
		err := p.try(l, table, tier)
		for _, v := range l.views {
			if err == nil {
				err = p.try(v, table, tier)
			}
		}
		if err != nil {
			p.notes[ni] = "no integer kernel: " + err.Error()
			continue
		}
		used[ni] = true
		for _, m := range l.members {
			used[m] = true
		}
		groups = append(groups, l)
		for _, v := range l.views {
			used[v.head] = true
			delete(p.notes, v.head)
			groups = append(groups, v)
		}
	}
	if len(groups) == 0 {
		return p.notes, nil
	}
	owned := p.sweep(order, groups)
	if !s.opts.NoChannelsLast && !int8NCHW() {
		p.layout(order, groups, owned, table, tier)
	}
	for gi, l := range groups {
		f := &fusion{head: l.head, at: l.head, node: l.node,
			absorbed: append(append([]int(nil), l.members...), owned[gi]...)}
		if !accept(f) {
			// The trial build succeeded, so this does not happen; if it did,
			// absorbed producers would be missing and neighbours may hold
			// channels-last data: refuse the session rather than compute
			// something else.
			return p.notes, fmt.Errorf("node %s: INT8 kernel build failed after a successful trial (a bug; %s=off avoids the lowering)", p.g.Nodes[l.head].Label(), Int8EnvVar)
		}
	}
	return p.notes, nil
}

func isONNX(n *ir.Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

// inQDQ reports whether node ni reads a dequantized value: only such
// nodes (ops of a quantized pattern) get a note when they are not lowered.
// Float ops before the input's QuantizeLinear are not patterns.
func (p *int8Pass) inQDQ(ni int) bool {
	n := &p.g.Nodes[ni]
	if n.Op == "QuantizeLinear" || n.Op == "DequantizeLinear" || n.Op == "Constant" {
		return false
	}
	for _, in := range n.Inputs {
		if in != ir.NoValue {
			if pi := p.prod[in]; pi >= 0 && p.g.Nodes[pi].Op == "DequantizeLinear" {
				return true
			}
		}
	}
	return false
}

// try builds the kernel of l's node in place of its head, then restores
// the head.
func (p *int8Pass) try(l *lowering, table *kernel.Table, tier kernel.Tier) error {
	orig := p.g.Nodes[l.head]
	p.g.Nodes[l.head] = l.node
	_, _, err := table.Lookup(p.s.info(l.head, tier))
	p.g.Nodes[l.head] = orig
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "node ") {
			msg = msg[i+2:]
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// sweep finds the nodes that only fed lowered groups (the DequantizeLinear
// of a weight, bias or activation whose readers are all lowered, a bias
// scale's Mul) and returns them per group, each assigned to the first
// group that read it.
func (p *int8Pass) sweep(order []int, groups []*lowering) [][]int {
	g := p.g
	owner := make([]int, len(g.Nodes)) // group index + 1 of heads, members and dead nodes
	for gi, l := range groups {
		owner[l.head] = gi + 1
		for _, m := range l.members {
			owner[m] = gi + 1
		}
	}
	readers := make([]int, len(g.Values))
	for ni := range g.Nodes {
		if owner[ni] != 0 && !isHead(groups, owner[ni], ni) {
			continue // absorbed: reads nothing any more
		}
		ins := g.Nodes[ni].Inputs
		if owner[ni] != 0 {
			ins = groups[owner[ni]-1].node.Inputs
		}
		for _, in := range ins {
			if in != ir.NoValue {
				readers[in]++
			}
		}
	}
	owned := make([][]int, len(groups))
	for i := len(order) - 1; i >= 0; i-- {
		ni := order[i]
		n := &g.Nodes[ni]
		if owner[ni] != 0 || !isONNX(n) {
			continue
		}
		switch n.Op {
		case "DequantizeLinear", "QuantizeLinear", "Mul", "Identity", "Cast":
		default:
			continue
		}
		dead, own := true, 0
		for _, o := range n.Outputs {
			if o == ir.NoValue {
				continue
			}
			if readers[o] > 0 || p.e.protect(o) {
				dead = false
				break
			}
			for _, r := range p.e.cons[o] {
				if own == 0 && owner[r] != 0 {
					own = owner[r]
				}
			}
		}
		if !dead || own == 0 {
			continue
		}
		owner[ni] = own
		owned[own-1] = append(owned[own-1], ni)
		for _, in := range n.Inputs {
			if in != ir.NoValue {
				readers[in]--
			}
		}
	}
	return owned
}

func isHead(groups []*lowering, own, ni int) bool { return groups[own-1].head == ni }

// constOf returns a constant tensor no feed can override, or nil.
func (p *int8Pass) constOf(id ir.ValueID) *tensor.Tensor {
	if id == ir.NoValue {
		return nil
	}
	return p.e.constant(id)
}

// folded returns the value of id when it is a constant or the Mul of two
// float32 constants (how goslim ptq writes a bias scale, s_x * s_w), else
// nil.
func (p *int8Pass) folded(id ir.ValueID) []float32 {
	if c := p.constOf(id); c != nil {
		if c.DType != tensor.Float32 {
			return nil
		}
		return c.F32()
	}
	pi := p.prod[id]
	if pi < 0 {
		return nil
	}
	n := &p.g.Nodes[pi]
	if !isONNX(n) || n.Op != "Mul" || len(n.Inputs) != 2 {
		return nil
	}
	a, b := p.constOf(n.Inputs[0]), p.constOf(n.Inputs[1])
	if a == nil || b == nil || a.DType != tensor.Float32 || b.DType != tensor.Float32 {
		return nil
	}
	x, y := a.F32(), b.F32()
	if len(x) == 1 || len(y) == 1 || len(x) == len(y) {
		out := make([]float32, max(len(x), len(y)))
		for i := range out {
			out[i] = x[i%len(x)] * y[i%len(y)]
		}
		return out
	}
	return nil
}

// scalarInt returns the single integer element of a uint8, int8 or int32
// tensor.
func scalarInt(t *tensor.Tensor) (int32, bool) {
	if t == nil || t.Len() != 1 {
		return 0, false
	}
	switch d := t.Data.(type) {
	case []uint8:
		return int32(d[0]), true
	case []int8:
		return int32(d[0]), true
	case []int32:
		return d[0], true
	}
	return 0, false
}

// qdqParams reads the scale and zero point inputs of a Q or DQ node with
// per-tensor parameters. dt is the 8-bit type (from the zero point, else
// from the quantized side's value q).
func (p *int8Pass) qdqParams(ni int, q ir.ValueID) (qparams, string) {
	n := &p.g.Nodes[ni]
	prm := qparams{q: q, scale: n.Input(1), zp: n.Input(2), node: ni, dt: tensor.Uint8}
	sc := p.constOf(prm.scale)
	if sc == nil || sc.DType != tensor.Float32 || sc.Len() != 1 {
		return prm, fmt.Sprintf("%s %s has no constant per-tensor float32 scale", n.Op, n.Label())
	}
	prm.s = sc.F32()[0]
	if !(prm.s > 0) || math.IsInf(float64(prm.s), 0) {
		return prm, fmt.Sprintf("%s %s has scale %g", n.Op, n.Label(), prm.s)
	}
	if prm.zp != ir.NoValue {
		zt := p.constOf(prm.zp)
		z, ok := scalarInt(zt)
		if !ok || (zt.DType != tensor.Uint8 && zt.DType != tensor.Int8) {
			return prm, fmt.Sprintf("%s %s has no constant per-tensor 8-bit zero point", n.Op, n.Label())
		}
		prm.z, prm.dt = z, zt.DType
	} else if n.Op == "DequantizeLinear" {
		dt := p.g.Values[q].Type.DType
		if c := p.constOf(q); c != nil {
			dt = c.DType
		}
		prm.dt = dt
	} else if n.Attrs.Has("output_dtype") {
		prm.dt = tensor.DType(n.Attrs.Int("output_dtype", 0))
	}
	if prm.dt != tensor.Uint8 && prm.dt != tensor.Int8 {
		return prm, fmt.Sprintf("%s %s quantizes to %v, not uint8 or int8", n.Op, n.Label(), prm.dt)
	}
	return prm, ""
}

// actIn describes input value x when a per-tensor DequantizeLinear
// produces it.
func (p *int8Pass) actIn(x ir.ValueID) (qparams, string) {
	if x == ir.NoValue {
		return qparams{}, "an input is missing"
	}
	if prm, ok := p.viewIn(x); ok {
		return prm, ""
	}
	pi := p.prod[x]
	if pi < 0 || !isONNX(&p.g.Nodes[pi]) || p.g.Nodes[pi].Op != "DequantizeLinear" {
		return qparams{}, fmt.Sprintf("input %q is not dequantized (no DequantizeLinear before it)", p.g.Values[x].Name)
	}
	q := p.g.Nodes[pi].Input(0)
	if q == ir.NoValue {
		return qparams{}, fmt.Sprintf("DequantizeLinear %s has no input", p.g.Nodes[pi].Label())
	}
	return p.qdqParams(pi, q)
}

// actOut follows the output of node ni through an optional Relu or Clip
// (which then becomes a clamp) to the QuantizeLinear that is its sole
// reader. It returns the output parameters, the nodes to absorb and the
// clamp attributes.
func (p *int8Pass) actOut(ni int, allowAct bool) (qparams, []int, ir.Attrs, string) {
	y := p.e.single(ni)
	if y == ir.NoValue {
		return qparams{}, nil, nil, "has several outputs"
	}
	if p.e.protect(y) {
		return qparams{}, nil, nil, fmt.Sprintf("its output %q is a graph output, kept or tapped", p.g.Values[y].Name)
	}
	r := p.e.soleReader(y)
	if r < 0 {
		return qparams{}, nil, nil, fmt.Sprintf("its output %q has several readers", p.g.Values[y].Name)
	}
	var members []int
	var act *ir.Node
	if rn := &p.g.Nodes[r]; allowAct && isONNX(rn) && (rn.Op == "Relu" || rn.Op == "Clip") {
		if _, ok := p.e.actAttrs(r, y); !ok {
			return qparams{}, nil, nil, fmt.Sprintf("%s %s has bounds that are not constant", rn.Op, rn.Label())
		}
		act, members = rn, append(members, r)
		y = rn.Outputs[0]
		if p.e.protect(y) {
			return qparams{}, nil, nil, fmt.Sprintf("the output %q of %s is a graph output, kept or tapped", p.g.Values[y].Name, rn.Op)
		}
		if r = p.e.soleReader(y); r < 0 {
			return qparams{}, nil, nil, fmt.Sprintf("the output %q of %s has several readers", p.g.Values[y].Name, rn.Op)
		}
	}
	qn := &p.g.Nodes[r]
	if !isONNX(qn) || qn.Op != "QuantizeLinear" || len(qn.Outputs) != 1 {
		return qparams{}, nil, nil, fmt.Sprintf("its output is read by %s, not QuantizeLinear", qn.Op)
	}
	out, why := p.qdqParams(r, qn.Outputs[0])
	if why != "" {
		return out, nil, nil, why
	}
	members = append(members, r)
	var attrs ir.Attrs
	if act != nil {
		lo, hi := out.qmin(), out.qmax()
		if act.Op == "Relu" {
			lo = max(lo, int64(out.z))
		} else {
			cl, ch, _ := p.e.clipBounds(act)
			lo = max(lo, out.quantize(cl))
			hi = min(hi, out.quantize(ch))
			if !(cl <= ch) {
				return qparams{}, nil, nil, "Clip has min > max"
			}
		}
		attrs = ir.Attrs{ir.IntAttr("act_min", lo), ir.IntAttr("act_max", hi)}
	}
	return out, members, attrs, ""
}

// addConst adds a constant to the private graph, growing the session's
// per-value state.
func (p *int8Pass) addConst(name string, t *tensor.Tensor) ir.ValueID {
	p.nAdd++
	return p.addValue(ir.Value{Name: fmt.Sprintf("%s.int8_%d", name, p.nAdd), Const: t,
		Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}})
}

// addValue adds a value to the private graph, growing the session's
// per-value state.
func (p *int8Pass) addValue(v ir.Value) ir.ValueID {
	id := p.g.AddValue(v)
	s := p.s
	s.vals = append(s.vals, nil)
	s.handle = append(s.handle, -1)
	s.tapped = append(s.tapped, false)
	s.kept = append(s.kept, false)
	s.isOut = append(s.isOut, false)
	p.prod = append(p.prod, -1)
	p.e.cons = append(p.e.cons, nil)
	return id
}

// zp returns the zero point value of prm, adding a constant 0 of its type
// when the Q/DQ node omitted it.
func (p *int8Pass) zp(prm qparams) ir.ValueID {
	if prm.zp != ir.NoValue {
		return prm.zp
	}
	return p.zeroOf(prm.dt, 1, true)
}

// zeroOf returns a shared constant of n zeros of type dt (a scalar when
// scalar is set).
func (p *int8Pass) zeroOf(dt tensor.DType, n int, scalar bool) ir.ValueID {
	key := fmt.Sprintf("%v/%d/%v", dt, n, scalar)
	if id, ok := p.zeros[key]; ok {
		return id
	}
	shape := tensor.Shape{n}
	if scalar {
		shape = tensor.Shape{}
	}
	t, _ := tensor.New(dt, shape)
	id := p.addConst("zero", t)
	p.zeros[key] = id
	return id
}

// weight describes a constant int8 weight feeding an op through a
// DequantizeLinear with per-tensor or per-channel (along axis) scales.
type weight struct {
	w, scale, zp ir.ValueID
	scales       []float32
}

// weightIn matches a folded int8 weight: DequantizeLinear(constant int8,
// constant scale[, constant zero point]) with per-tensor scale or
// per-channel scales along axis (n channels).
func (p *int8Pass) weightIn(id ir.ValueID, axis, n int) (weight, string) {
	pi := -1
	if id != ir.NoValue {
		pi = p.prod[id]
	}
	if pi < 0 || !isONNX(&p.g.Nodes[pi]) || p.g.Nodes[pi].Op != "DequantizeLinear" {
		return weight{}, "the weight is not a dequantized constant"
	}
	d := &p.g.Nodes[pi]
	wq := p.constOf(d.Input(0))
	if wq == nil {
		return weight{}, "the weight is not a dequantized constant"
	}
	if wq.DType != tensor.Int8 {
		return weight{}, fmt.Sprintf("the weight is %v; the integer kernels take int8 weights", wq.DType)
	}
	sc := p.constOf(d.Input(1))
	if sc == nil || sc.DType != tensor.Float32 {
		return weight{}, "the weight scale is not a float32 constant"
	}
	w := weight{w: d.Input(0), scale: d.Input(1), zp: d.Input(2), scales: sc.F32()}
	for _, v := range w.scales {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return weight{}, fmt.Sprintf("the weight has scale %g", v)
		}
	}
	if sc.Len() != 1 {
		a := int(d.Attrs.Int("axis", 1))
		if a < 0 {
			a += wq.Rank()
		}
		if a != axis || sc.Len() != n || sc.Rank() != 1 {
			return weight{}, fmt.Sprintf("the weight scales are per axis %d (%d of them); the kernel needs per-tensor or per output channel (axis %d, %d)", a, sc.Len(), axis, n)
		}
	}
	if w.zp != ir.NoValue {
		zt := p.constOf(w.zp)
		if zt == nil || zt.DType != tensor.Int8 || zt.Len() != sc.Len() {
			return weight{}, "the weight zero point is not an int8 constant shaped like the scale"
		}
	} else {
		w.zp = p.zeroOf(tensor.Int8, sc.Len(), sc.Rank() == 0)
	}
	return w, ""
}

// biasIn returns the int32 bias on scale sx*sw[c] for a bias input (a
// DequantizeLinear of an int32 constant, or a float32 constant), or
// NoValue when absent.
func (p *int8Pass) biasIn(id ir.ValueID, sx float32, sw []float32, n int) (ir.ValueID, string) {
	if id == ir.NoValue {
		return ir.NoValue, ""
	}
	want := make([]float64, n)
	for c := range want {
		want[c] = float64(sx * sw[c%len(sw)])
	}
	var real []float64 // the bias as the FP32 path sees it, when requantizing
	var exact ir.ValueID = ir.NoValue
	if c := p.constOf(id); c != nil {
		if c.DType != tensor.Float32 || c.Len() != n {
			return ir.NoValue, fmt.Sprintf("the bias is a %v constant of %d elements, want %d", c.DType, c.Len(), n)
		}
		for _, v := range c.F32() {
			real = append(real, float64(v))
		}
	} else {
		pi := p.prod[id]
		if pi < 0 || !isONNX(&p.g.Nodes[pi]) || p.g.Nodes[pi].Op != "DequantizeLinear" {
			return ir.NoValue, "the bias is neither a constant nor a dequantized constant"
		}
		d := &p.g.Nodes[pi]
		bq := p.constOf(d.Input(0))
		bs := p.folded(d.Input(1))
		if bq == nil || bq.DType != tensor.Int32 || bq.Len() != n || bs == nil || (len(bs) != 1 && len(bs) != n) {
			return ir.NoValue, "the bias is not an int32 constant with constant scales"
		}
		if d.Input(2) != ir.NoValue {
			if z := p.constOf(d.Input(2)); z == nil || !allZero(z) {
				return ir.NoValue, "the bias has a nonzero zero point"
			}
		}
		same := true
		for c := range want {
			same = same && float32(want[c]) == bs[c%len(bs)]
		}
		if same {
			exact = d.Input(0)
		} else {
			for c, v := range bq.I32() {
				real = append(real, float64(v)*float64(bs[c%len(bs)]))
			}
		}
	}
	if exact != ir.NoValue {
		return exact, ""
	}
	q := make([]int32, n)
	for c, v := range real {
		r := math.RoundToEven(v / want[c])
		if !(math.Abs(r) < 1<<31-1) {
			return ir.NoValue, "the bias does not fit int32 on scale x_scale*w_scale"
		}
		q[c] = int32(r)
	}
	return p.addConst("bias", &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{n}, Data: q}), ""
}

func allZero(t *tensor.Tensor) bool {
	for i := range t.Len() {
		if t.Float64At(i) != 0 {
			return false
		}
	}
	return true
}

// dim returns dimension i of a value's constant or static shape, or -1.
func (p *int8Pass) dim(id ir.ValueID, i int) int {
	if id == ir.NoValue {
		return -1
	}
	t := p.g.Values[id].Type
	if c := p.constOf(id); c != nil {
		if i < c.Rank() {
			return c.Shape[i]
		}
		return -1
	}
	if !t.Ranked || i >= len(t.Shape) || t.Shape[i].Size < 0 {
		return -1
	}
	return int(t.Shape[i].Size)
}

// match returns the lowering of node ni, or why it cannot be lowered.
func (p *int8Pass) match(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	switch n.Op {
	case "Conv":
		return p.matchConv(ni)
	case "Gemm":
		return p.matchGemm(ni)
	case "MatMul":
		return p.matchMatMul(ni)
	case "Add", "Mul":
		return p.matchBinary(ni)
	case "Concat":
		return p.matchConcat(ni)
	case "GlobalAveragePool", "AveragePool":
		return p.matchAvgPool(ni)
	case "MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze":
		return p.matchPassthrough(ni)
	case "Relu", "Clip":
		return nil, n.Op + " on its own (not after a lowered Conv, Gemm, MatMul, Add or Mul) stays in float"
	}
	return nil, "no integer lowering for " + n.Op
}

func (p *int8Pass) newNode(ni int, op string, inputs []ir.ValueID, out ir.ValueID, attrs ir.Attrs) ir.Node {
	return ir.Node{Op: op, Domain: FusedDomain, Name: p.g.Nodes[ni].Name, Inputs: inputs,
		Outputs: []ir.ValueID{out}, Attrs: attrs}
}

func (p *int8Pass) matchConv(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	x, why := p.actIn(n.Input(0))
	if why != "" {
		return nil, why
	}
	m := p.dim(n.Input(1), 0)
	wpi := -1
	if n.Input(1) != ir.NoValue {
		wpi = p.prod[n.Input(1)]
	}
	if wpi >= 0 {
		m = p.dim(p.g.Nodes[wpi].Input(0), 0)
	}
	if m <= 0 {
		return nil, "the weight shape is unknown"
	}
	w, why := p.weightIn(n.Input(1), 0, m)
	if why != "" {
		return nil, why
	}
	b, why := p.biasIn(n.Input(2), x.s, w.scales, m)
	if why != "" {
		return nil, why
	}
	y, members, act, why := p.actOut(ni, true)
	if why != "" {
		return nil, why
	}
	in := []ir.ValueID{x.q, x.scale, p.zp(x), w.w, w.scale, w.zp, y.scale, p.zp(y)}
	if b != ir.NoValue {
		in = append(in, b)
	}
	attrs := n.Attrs.Clone()
	for _, a := range act {
		attrs = attrs.Set(a)
	}
	return &lowering{head: ni, members: members, node: p.newNode(ni, QLinearConv, in, y.q, attrs)}, ""
}

func (p *int8Pass) matchGemm(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	if n.Attrs.Float("alpha", 1) != 1 || (n.Input(2) != ir.NoValue && n.Attrs.Float("beta", 1) != 1) {
		return nil, "alpha or beta is not 1"
	}
	a, why := p.actIn(n.Input(0))
	if why != "" {
		return nil, why
	}
	transB := n.Attrs.Int("transB", 0) != 0
	axis := 1
	if transB {
		axis = 0
	}
	wpi := -1
	if n.Input(1) != ir.NoValue {
		wpi = p.prod[n.Input(1)]
	}
	nOut := -1
	if wpi >= 0 {
		nOut = p.dim(p.g.Nodes[wpi].Input(0), axis)
	}
	if nOut <= 0 {
		return nil, "B is not a constant weight of known shape"
	}
	w, why := p.weightIn(n.Input(1), axis, nOut)
	if why != "" {
		return nil, why
	}
	if c := n.Input(2); c != ir.NoValue {
		if t := p.g.Values[c].Type; !t.Ranked || len(t.Shape) != 1 {
			if ct := p.constOf(c); ct == nil || ct.Rank() != 1 {
				return nil, "C is not a 1-D bias"
			}
		}
	}
	b, why := p.biasIn(n.Input(2), a.s, w.scales, nOut)
	if why != "" {
		return nil, why
	}
	attrs := ir.Attrs{ir.IntAttr("transA", n.Attrs.Int("transA", 0)), ir.IntAttr("transB", n.Attrs.Int("transB", 0)),
		ir.FloatAttr("alpha", 1)}
	y, members, act, why := p.actOut(ni, true)
	if why != "" {
		// No QuantizeLinear after it (float logits, ptq --float-outputs):
		// QGemm without y_scale computes the float output from the 8-bit
		// inputs, a_scale*b_scale*(acc + bias).
		if out := p.e.single(ni); out != ir.NoValue && !p.hasQReader(out) && p.g.Values[out].Type.DType == tensor.Float32 {
			in := []ir.ValueID{a.q, a.scale, p.zp(a), w.w, w.scale, w.zp, b}
			return &lowering{head: ni, node: p.newNode(ni, QGemm, in, out, attrs)}, ""
		}
		return nil, why
	}
	in := []ir.ValueID{a.q, a.scale, p.zp(a), w.w, w.scale, w.zp, b, y.scale, p.zp(y)}
	attrs = append(attrs, act...)
	return &lowering{head: ni, members: members, node: p.newNode(ni, QGemm, in, y.q, attrs)}, ""
}

func (p *int8Pass) matchMatMul(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	a, why := p.actIn(n.Input(0))
	if why != "" {
		return nil, why
	}
	var bIn []ir.ValueID
	if bx, whyB := p.actIn(n.Input(1)); whyB == "" {
		bIn = []ir.ValueID{bx.q, bx.scale, p.zp(bx)}
	} else {
		bid := n.Input(1)
		pi := -1
		if bid != ir.NoValue {
			pi = p.prod[bid]
		}
		nOut := -1
		if pi >= 0 {
			if wt := p.constOf(p.g.Nodes[pi].Input(0)); wt != nil && wt.Rank() == 2 {
				nOut = wt.Shape[1]
			}
		}
		if nOut <= 0 {
			return nil, "B is neither a dequantized activation nor a 2-D dequantized constant"
		}
		w, why := p.weightIn(bid, 1, nOut)
		if why != "" {
			return nil, why
		}
		bIn = []ir.ValueID{w.w, w.scale, w.zp}
	}
	y, members, act, why := p.actOut(ni, true)
	if why != "" {
		return nil, why
	}
	in := append([]ir.ValueID{a.q, a.scale, p.zp(a)}, bIn...)
	in = append(in, y.scale, p.zp(y))
	return &lowering{head: ni, members: members, node: p.newNode(ni, QLinearMatMul, in, y.q, act)}, ""
}

func (p *int8Pass) matchBinary(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	if len(n.Inputs) != 2 {
		return nil, "does not have two inputs"
	}
	a, why := p.actIn(n.Inputs[0])
	if why != "" {
		return nil, why
	}
	b, why := p.actIn(n.Inputs[1])
	if why != "" {
		return nil, why
	}
	if a.dt != b.dt {
		return nil, "its inputs are quantized to different types"
	}
	y, members, act, why := p.actOut(ni, true)
	if why != "" {
		return nil, why
	}
	op := QLinearAdd
	if n.Op == "Mul" {
		op = QLinearMul
	}
	in := []ir.ValueID{a.q, a.scale, p.zp(a), b.q, b.scale, p.zp(b), y.scale, p.zp(y)}
	return &lowering{head: ni, members: members, node: p.newNode(ni, op, in, y.q, act)}, ""
}

func (p *int8Pass) matchConcat(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	var xs []qparams
	for _, id := range n.Inputs {
		x, why := p.actIn(id)
		if why != "" {
			return nil, why
		}
		xs = append(xs, x)
	}
	y, members, _, why := p.actOut(ni, false)
	if why != "" {
		return nil, why
	}
	plain := true
	for _, x := range xs {
		if x.dt != y.dt {
			return nil, "its inputs and output are quantized to different types"
		}
		plain = plain && x.same(y)
	}
	if plain {
		// One shared scale: concatenating the 8-bit data is exact.
		in := make([]ir.ValueID, len(xs))
		for i, x := range xs {
			in[i] = x.q
		}
		node := ir.Node{Op: "Concat", Name: n.Name, Inputs: in, Outputs: []ir.ValueID{y.q}, Attrs: n.Attrs.Clone()}
		return &lowering{head: ni, members: members, node: node}, ""
	}
	in := []ir.ValueID{y.scale, p.zp(y)}
	for _, x := range xs {
		in = append(in, x.q, x.scale, p.zp(x))
	}
	return &lowering{head: ni, members: members,
		node: p.newNode(ni, QLinearConcat, in, y.q, ir.Attrs{ir.IntAttr("axis", n.Attrs.Int("axis", 0))})}, ""
}

func (p *int8Pass) matchAvgPool(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	x, why := p.actIn(n.Input(0))
	if why != "" {
		return nil, why
	}
	y, members, _, why := p.actOut(ni, false)
	if why != "" {
		return nil, why
	}
	if x.dt != y.dt {
		return nil, "its input and output are quantized to different types"
	}
	in := []ir.ValueID{x.q, x.scale, p.zp(x), y.scale, p.zp(y)}
	op := QLinearGlobalAveragePool
	attrs := ir.Attrs{ir.IntAttr("channels_last", 0)}
	if n.Op == "AveragePool" {
		op = QLinearAveragePool
		attrs = n.Attrs.Clone().Set(ir.IntAttr("channels_last", 0))
	}
	return &lowering{head: ni, members: members, node: p.newNode(ni, op, in, y.q, attrs)}, ""
}

// matchPassthrough lowers an op that only selects, reorders or reshapes
// its input's elements (MaxPool selects by order, which quantization
// preserves) when the QuantizeLinear after it has its input's parameters:
// the op then runs on the 8-bit data.
func (p *int8Pass) matchPassthrough(ni int) (*lowering, string) {
	n := &p.g.Nodes[ni]
	if n.Op == "MaxPool" && len(n.Outputs) > 1 && n.Outputs[1] != ir.NoValue {
		return nil, "MaxPool with an Indices output stays in float"
	}
	x, why := p.actIn(n.Input(0))
	if why != "" {
		return nil, why
	}
	if len(n.Outputs) != 1 {
		return nil, "has several outputs"
	}
	y, members, _, why := p.actOut(ni, false)
	if why != "" {
		return nil, why
	}
	if !x.same(y) {
		return nil, fmt.Sprintf("its QuantizeLinear has other parameters (scale %g, zero point %d) than its input (scale %g, zero point %d)", y.s, y.z, x.s, x.z)
	}
	in := append([]ir.ValueID{x.q}, n.Inputs[1:]...)
	node := ir.Node{Op: n.Op, Domain: n.Domain, Name: n.Name, Inputs: in, Outputs: []ir.ValueID{y.q}, Attrs: n.Attrs.Clone()}
	return &lowering{head: ni, members: members, node: node}, ""
}

// annotateInt8 copies the lowering notes into the kernel records and
// names the 8-bit ONNX ops the lowering left in their own domain.
func (s *Session) annotateInt8(notes map[int]string) {
	for i := range s.records {
		r := &s.records[i]
		if why, ok := notes[r.Node]; ok {
			r.Note = "stays FP32: " + why
		}
		if r.Fused != "" {
			xn := &s.exec.Nodes[r.Node]
			switch {
			case isONNX(xn) && xn.Op == r.Op:
				r.Fused = "int8 " + xn.Op
			case xn.Domain == FusedDomain && xn.Op == "MaxPool" && r.Op == "MaxPool":
				r.Fused = "int8 MaxPool" // the passthrough's goslim-domain twin (layout)
			}
			// The layout goes with the kernel name ("int8 NHWC"): Fused
			// stays the op, which tools count nodes by.
			r.Kernel += layoutText(xn)
		}
	}
}

// viewIn moves a DequantizeLinear past a data-movement node: when x is
// the only output of a Reshape, Flatten, Squeeze, Unsqueeze or Transpose
// whose input is a per-tensor dequantized value, and the node reading x
// is its only reader, the node can run on the 8-bit data instead
// (DQ(view(q)) = view(DQ(q))): x's reader then reads a new 8-bit value
// with the DequantizeLinear's parameters. The view's lowering joins the
// current match (p.views).
func (p *int8Pass) viewIn(x ir.ValueID) (qparams, bool) {
	pi := p.prod[x]
	if pi < 0 {
		return qparams{}, false
	}
	n := &p.g.Nodes[pi]
	if !isONNX(n) || len(n.Outputs) != 1 || p.e.soleReader(x) < 0 {
		return qparams{}, false
	}
	switch n.Op {
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose":
	default:
		return qparams{}, false
	}
	in := n.Input(0)
	dpi := -1
	if in != ir.NoValue {
		dpi = p.prod[in]
	}
	if dpi < 0 || !isONNX(&p.g.Nodes[dpi]) || p.g.Nodes[dpi].Op != "DequantizeLinear" || p.g.Nodes[dpi].Input(0) == ir.NoValue {
		return qparams{}, false
	}
	prm, why := p.qdqParams(dpi, p.g.Nodes[dpi].Input(0))
	if why != "" {
		return qparams{}, false
	}
	v, ok := p.viewOf[x]
	if !ok {
		t := p.g.Values[x].Type
		t.DType = prm.dt
		t.Shape = append([]ir.Dim(nil), t.Shape...)
		q8 := p.addValue(ir.Value{Name: p.g.Values[x].Name + ".int8", Type: t})
		v = &lowering{head: pi, node: ir.Node{Op: n.Op, Domain: n.Domain, Name: n.Name,
			Inputs: append([]ir.ValueID{prm.q}, n.Inputs[1:]...), Outputs: []ir.ValueID{q8}, Attrs: n.Attrs.Clone()}}
		p.viewOf[x] = v
	}
	p.views = append(p.views, v)
	prm.q = v.node.Outputs[0]
	return prm, true
}

// hasQReader reports whether a QuantizeLinear (possibly after a Relu or
// Clip) reads value v.
func (p *int8Pass) hasQReader(v ir.ValueID) bool {
	for _, r := range p.e.cons[v] {
		rn := &p.g.Nodes[r]
		if rn.Op == "QuantizeLinear" {
			return true
		}
		if (rn.Op == "Relu" || rn.Op == "Clip") && len(rn.Outputs) == 1 && p.hasQReader(rn.Outputs[0]) {
			return true
		}
	}
	return false
}
