package infer

import (
	"strings"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Channels-last layout of the INT8 lowering. The integer convolution
// reads and writes each image as a [pixels x channels] matrix, so an
// 8-bit activation stored NCHW costs a transpose before and after every
// convolution. Once lowerInt8 has chosen its groups, layout decides for
// every 8-bit rank-4 activation value between lowered nodes whether it is
// stored channels-last (NHWC, physical shape [N,H,W,C] at run time; the
// private graph keeps the logical NCHW type) and tells the lowered nodes
// through two int attributes, x_channels_last (the activation input or
// inputs) and y_channels_last (the output), 0 by default.
//
// A value is stored NHWC only when
//   - its producer is a lowered node that can write NHWC: goslim
//     QLinearConv (2-D), QLinearAdd or QLinearMul of two inputs of the same
//     static channel and spatial shape, QLinearAveragePool, or the 8-bit
//     MaxPool passthrough;
//   - every node that reads it can read NHWC: those nodes and goslim
//     QLinearGlobalAveragePool (whose [N,C,1,1] output is the same in both
//     layouts and stays NCHW); a float reader (a DequantizeLinear that
//     stays), a data-movement op (Flatten, Reshape, Concat, ...) or a graph
//     output reads NCHW;
//   - it is not a graph output, kept or tapped, and is 8-bit of rank 4
//     with known channel and spatial dimensions.
//
// QLinearConv and MaxPool take any input/output combination (MaxPool
// pools in its input's layout and transposes the smaller output). Add,
// Mul and AveragePool run their elementwise or per-plane code unchanged
// on either layout, so all their 8-bit inputs and their output must share
// one: a node with mixed candidates demotes them all to NCHW, iterated to
// a fixpoint. An 8-bit MaxPool with NHWC data becomes the goslim-domain
// MaxPool (same attributes plus the two layout attributes); the ONNX op
// keeps its meaning.
//
// Kernels are trusted with the attributes only when they understand them:
// a kernel that takes them refuses values other than 0 and 1 at build
// time, so layout first offers each op kind an invalid value (2) and
// treats the kind as NCHW-only when that builds (an older or custom
// kernel that would ignore the attributes and misread NHWC data). The
// final attributes are then built on trial, node by node; a node whose
// build fails is NCHW-only and the decision is redone. Nothing changes
// unless at least one value ends up NHWC.
//
// Options.NoChannelsLast or GOSLIM_INT8=nchw turns the pass off (every
// 8-bit activation NCHW, as before the pass existed).

// The layout attributes of lowered nodes.
const (
	attrXLast = "x_channels_last"
	attrYLast = "y_channels_last"
)

// layoutRole says how a lowered node takes the channels-last layout.
type layoutRole int

const (
	roleNone   layoutRole = iota // NCHW only
	roleFree                     // input and output layouts independent
	roleTied                     // all activation inputs and the output share one layout
	roleReader                   // reads NHWC; its output stays NCHW
)

// layoutSlots returns the role of lowered node n and the input slots of
// its 8-bit activations.
func layoutSlots(n *ir.Node) (layoutRole, []int) {
	if n.Domain == FusedDomain {
		switch n.Op {
		case QLinearConv:
			return roleFree, []int{0}
		case QLinearAdd, QLinearMul:
			return roleTied, []int{0, 3}
		case QLinearAveragePool:
			return roleTied, []int{0}
		case QLinearGlobalAveragePool:
			return roleReader, []int{0}
		}
		return roleNone, nil
	}
	if isONNX(n) && n.Op == "MaxPool" && len(n.Outputs) == 1 {
		// goslim.MaxPool pools in the input's layout and transposes the
		// (smaller) output when the layouts differ.
		return roleFree, []int{0}
	}
	return roleNone, nil
}

// layoutNode is one lowered node as the layout pass sees it.
type layoutNode struct {
	l     *lowering
	role  layoutRole
	slots []int
	ins   []ir.ValueID // the activation inputs (slots)
	out   ir.ValueID
}

// layoutPlan is the state of one layout decision.
type layoutPlan struct {
	p      *int8Pass
	nodes  []layoutNode
	prodBy map[ir.ValueID]int  // value -> index in nodes of its lowered producer
	reads  map[ir.ValueID][]rd // value -> lowered readers
	// floatRead marks values read by a node the lowering did not absorb
	// or replace (they must stay NCHW).
	floatRead map[ir.ValueID]bool
}

type rd struct{ node, slot int }

// layout runs the layout pass on the chosen groups (owned: the nodes the
// sweep absorbs into each group). It sets the layout attributes on the
// groups' nodes and returns how many values are stored NHWC.
func (p *int8Pass) layout(order []int, groups []*lowering, owned [][]int, table *kernel.Table, tier kernel.Tier) int {
	lp := &layoutPlan{p: p, prodBy: map[ir.ValueID]int{}, reads: map[ir.ValueID][]rd{}, floatRead: map[ir.ValueID]bool{}}
	gone := make([]bool, len(p.g.Nodes))
	for gi, l := range groups {
		gone[l.head] = true
		for _, m := range l.members {
			gone[m] = true
		}
		for _, m := range owned[gi] {
			gone[m] = true
		}
	}
	for _, ni := range order {
		if gone[ni] {
			continue
		}
		for _, in := range p.g.Nodes[ni].Inputs {
			if in != ir.NoValue {
				lp.floatRead[in] = true
			}
		}
	}
	for _, l := range groups {
		role, slots := layoutSlots(&l.node)
		ln := layoutNode{l: l, role: role, slots: slots, out: ir.NoValue}
		if len(l.node.Outputs) == 1 {
			ln.out = l.node.Outputs[0]
		}
		for _, s := range slots {
			ln.ins = append(ln.ins, l.node.Input(s))
		}
		i := len(lp.nodes)
		lp.nodes = append(lp.nodes, ln)
		if ln.out != ir.NoValue {
			lp.prodBy[ln.out] = i
		}
		for s, in := range l.node.Inputs {
			if in != ir.NoValue {
				lp.reads[in] = append(lp.reads[in], rd{i, s})
			}
		}
	}
	// Nodes whose kernels do not take the attributes, and Add/Mul that
	// broadcast, are NCHW-only. The check runs per node: a kernel table
	// may pick another kernel for another node of the same op (by type,
	// tier or opset), and builders refuse a bad layout value before any
	// costly preparation.
	for i := range lp.nodes {
		ln := &lp.nodes[i]
		if ln.role == roleNone {
			continue
		}
		if !lp.sameShapes(ln) || !p.understands(ln, table, tier) {
			ln.role = roleNone
		}
	}
	for {
		nhwc := lp.decide()
		if len(nhwc) == 0 {
			return 0
		}
		failed := false
		for i := range lp.nodes {
			ln := &lp.nodes[i]
			if ln.role == roleNone {
				continue
			}
			node, changed := lp.annotated(ln, nhwc)
			if !changed {
				continue
			}
			if err := p.try(&lowering{head: ln.l.head, node: node}, table, tier); err != nil {
				ln.role = roleNone
				failed = true
			}
		}
		if failed {
			continue
		}
		for i := range lp.nodes {
			ln := &lp.nodes[i]
			if ln.role == roleNone {
				continue
			}
			if node, changed := lp.annotated(ln, nhwc); changed {
				ln.l.node = node
			}
		}
		return len(nhwc)
	}
}

// sameShapes reports whether an Add's or Mul's activation inputs and
// output have one known channel and spatial shape (an Add that
// broadcasts over them cannot run on NHWC data unchanged).
func (lp *layoutPlan) sameShapes(ln *layoutNode) bool {
	if op := ln.l.node.Op; ln.l.node.Domain != FusedDomain || (op != QLinearAdd && op != QLinearMul) {
		return true
	}
	ref := lp.p.g.Values[ln.out].Type
	for _, in := range ln.ins {
		t := lp.p.g.Values[in].Type
		if !t.Ranked || !ref.Ranked || len(t.Shape) != len(ref.Shape) {
			return false
		}
		for d := 1; d < len(t.Shape); d++ {
			if t.Shape[d].Size < 0 || t.Shape[d].Size != ref.Shape[d].Size {
				return false
			}
		}
	}
	return true
}

// understands reports whether the kernel of ln's op refuses an invalid
// layout attribute value, naming it: only then does it read the
// attributes.
func (p *int8Pass) understands(ln *layoutNode, table *kernel.Table, tier kernel.Tier) bool {
	node := ln.l.node
	node.Attrs = node.Attrs.Clone().Set(ir.IntAttr(attrXLast, 2)).Set(ir.IntAttr(attrYLast, 2))
	if isONNX(&node) {
		node.Domain = FusedDomain
	}
	err := p.try(&lowering{head: ln.l.head, node: node}, table, tier)
	return err != nil && strings.Contains(err.Error(), "channels_last")
}

// candidate reports whether value v may be stored NHWC as far as its own
// type, its producer and its readers go.
func (lp *layoutPlan) candidate(v ir.ValueID) bool {
	p := lp.p
	if v == ir.NoValue || p.e.protect(v) || lp.floatRead[v] {
		return false
	}
	pi, ok := lp.prodBy[v]
	if !ok {
		return false
	}
	if r := lp.nodes[pi].role; r != roleFree && r != roleTied {
		return false
	}
	t := p.g.Values[v].Type
	if (t.DType != tensor.Uint8 && t.DType != tensor.Int8) || !t.Ranked || len(t.Shape) != 4 {
		return false
	}
	for _, d := range t.Shape[1:] {
		if d.Size <= 0 {
			return false
		}
	}
	for _, r := range lp.reads[v] {
		ln := &lp.nodes[r.node]
		if ln.role == roleNone {
			return false
		}
		act := false
		for _, s := range ln.slots {
			act = act || s == r.slot
		}
		if !act {
			return false
		}
	}
	return true
}

// decide returns the values stored NHWC: the candidates, less those of
// tied nodes whose activations are not all candidates (to a fixpoint).
func (lp *layoutPlan) decide() map[ir.ValueID]bool {
	nhwc := map[ir.ValueID]bool{}
	for v := range lp.prodBy {
		if lp.candidate(v) {
			nhwc[v] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for i := range lp.nodes {
			ln := &lp.nodes[i]
			if ln.role != roleTied {
				continue
			}
			all, some := nhwc[ln.out], nhwc[ln.out]
			for _, in := range ln.ins {
				all = all && nhwc[in]
				some = some || nhwc[in]
			}
			if some && !all {
				delete(nhwc, ln.out)
				for _, in := range ln.ins {
					delete(nhwc, in)
				}
				changed = true
			}
		}
	}
	return nhwc
}

// annotated returns ln's node with the layout attributes the decision
// nhwc gives it, and whether that differs from its node.
func (lp *layoutPlan) annotated(ln *layoutNode, nhwc map[ir.ValueID]bool) (ir.Node, bool) {
	node := ln.l.node
	x := len(ln.ins) > 0 && nhwc[ln.ins[0]]
	y := ln.role != roleReader && nhwc[ln.out]
	if !x && !y {
		return node, false
	}
	node.Attrs = node.Attrs.Clone()
	if x {
		node.Attrs = node.Attrs.Set(ir.IntAttr(attrXLast, 1))
	}
	if y {
		node.Attrs = node.Attrs.Set(ir.IntAttr(attrYLast, 1))
	}
	if isONNX(&node) {
		// The 8-bit MaxPool passthrough: the ONNX op has no layout
		// attributes, its goslim-domain twin does.
		node.Domain = FusedDomain
	}
	return node, true
}

// layoutText describes the layout attributes of a lowered node for its
// kernel record's Kernel text ("" when it reads and writes NCHW).
func layoutText(n *ir.Node) string {
	x, y := n.Attrs.Int(attrXLast, 0) != 0, n.Attrs.Int(attrYLast, 0) != 0
	switch {
	case x && y:
		return " NHWC"
	case x:
		return " NHWC->NCHW"
	case y:
		return " NCHW->NHWC"
	}
	return ""
}
