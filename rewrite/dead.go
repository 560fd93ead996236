package rewrite

import "github.com/goslim/goslim/ir"

// RemoveDead returns a copy of g without the nodes that do not contribute
// to any graph output and without the values nothing uses any more
// (constants included), with Graph.Values compacted. Graph inputs are
// always kept, so the graph's interface does not change; every output of a
// kept node is kept (some ops change behaviour with their output count).
//
// The second result maps every ValueID of g to its ID in the new graph, or
// ir.NoValue when the value was dropped; node order is preserved.
func RemoveDead(g *ir.Graph) (*ir.Graph, []ir.ValueID) {
	nv := len(g.Values)
	inRange := func(id ir.ValueID) bool { return id >= 0 && int(id) < nv }
	prod := g.Producers()
	liveNode := make([]bool, len(g.Nodes))
	live := make([]bool, nv)
	var stack []ir.ValueID
	push := func(id ir.ValueID) {
		if inRange(id) && !live[id] {
			live[id] = true
			stack = append(stack, id)
		}
	}
	for _, id := range g.Inputs {
		push(id)
	}
	for _, id := range g.Outputs {
		push(id)
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := prod[id]
		if p < 0 || liveNode[p] {
			continue
		}
		liveNode[p] = true
		for _, in := range g.Nodes[p].Inputs {
			push(in)
		}
		for _, o := range g.Nodes[p].Outputs {
			push(o)
		}
	}

	remap := make([]ir.ValueID, nv)
	out := g.Clone()
	out.Values = out.Values[:0:0]
	for id := range g.Values {
		if !live[id] {
			remap[id] = ir.NoValue
			continue
		}
		remap[id] = ir.ValueID(len(out.Values))
		v := g.Values[id]
		v.Type.Shape = append([]ir.Dim(nil), v.Type.Shape...)
		out.Values = append(out.Values, v)
	}
	mapID := func(id ir.ValueID) ir.ValueID {
		if !inRange(id) {
			return ir.NoValue
		}
		return remap[id]
	}
	nodes := out.Nodes[:0:0]
	for ni := range out.Nodes {
		if !liveNode[ni] {
			continue
		}
		n := out.Nodes[ni]
		for i, id := range n.Inputs {
			n.Inputs[i] = mapID(id)
		}
		for i, id := range n.Outputs {
			n.Outputs[i] = mapID(id)
		}
		nodes = append(nodes, n)
	}
	out.Nodes = nodes
	for i, id := range out.Inputs {
		out.Inputs[i] = mapID(id)
	}
	for i, id := range out.Outputs {
		out.Outputs[i] = mapID(id)
	}
	return out, remap
}
