package ir

import (
	"fmt"
	"strings"
)

// Verify checks the graph's structural invariants: IDs in range, every
// value defined at most once (graph input, constant or one node output),
// every node input defined, graph outputs defined, unique value names, and
// no cycles. It does not check operator semantics.
func (g *Graph) Verify() error {
	n := ValueID(len(g.Values))
	defined := make([]int8, n) // 0 undefined, 1 input/const, 2 node output
	names := make(map[string]ValueID, len(g.Values))
	for id := range g.Values {
		v := &g.Values[id]
		if v.Name == "" {
			continue
		}
		if prev, dup := names[v.Name]; dup {
			return fmt.Errorf("ir: values %d and %d share the name %q", prev, id, v.Name)
		}
		names[v.Name] = ValueID(id)
		if v.Const != nil {
			if err := v.Const.Check(); err != nil {
				return fmt.Errorf("ir: constant %q: %w", v.Name, err)
			}
			defined[id] = 1
		}
	}
	for _, in := range g.Inputs {
		if in < 0 || in >= n {
			return fmt.Errorf("ir: graph input id %d out of range", in)
		}
		defined[in] = 1
	}
	for ni := range g.Nodes {
		nd := &g.Nodes[ni]
		if nd.Op == "" {
			return fmt.Errorf("ir: node %d has no op type", ni)
		}
		for _, o := range nd.Outputs {
			if o == NoValue {
				continue
			}
			if o < 0 || o >= n {
				return fmt.Errorf("ir: node %s: output id %d out of range", nd.Label(), o)
			}
			if defined[o] != 0 {
				return fmt.Errorf("ir: node %s: output %q is defined twice", nd.Label(), g.Values[o].Name)
			}
			defined[o] = 2
		}
	}
	for ni := range g.Nodes {
		nd := &g.Nodes[ni]
		for _, in := range nd.Inputs {
			if in == NoValue {
				continue
			}
			if in < 0 || in >= n {
				return fmt.Errorf("ir: node %s: input id %d out of range", nd.Label(), in)
			}
			if defined[in] == 0 {
				return fmt.Errorf("ir: node %s: input %q is never defined", nd.Label(), g.Values[in].Name)
			}
		}
	}
	for _, o := range g.Outputs {
		if o < 0 || o >= n {
			return fmt.Errorf("ir: graph output id %d out of range", o)
		}
		if defined[o] == 0 {
			return fmt.Errorf("ir: graph output %q is never defined", g.Values[o].Name)
		}
	}
	if _, err := g.Topo(); err != nil {
		return err
	}
	return nil
}

// Topo returns node indices in a topological order (stable: among ready
// nodes the original order is kept). It reports a cycle by naming a node on
// it.
func (g *Graph) Topo() ([]int, error) {
	prod := g.Producers()
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for ni := range g.Nodes {
		seen := map[int]bool{}
		for _, in := range g.Nodes[ni].Inputs {
			if in < 0 || int(in) >= len(prod) {
				continue
			}
			if p := prod[in]; p >= 0 && !seen[p] {
				seen[p] = true
				indeg[ni]++
				users[p] = append(users[p], ni)
			}
		}
	}
	order := make([]int, 0, len(g.Nodes))
	// A simple ready list processed in index order keeps the result stable.
	ready := make([]int, 0, len(g.Nodes))
	for ni, d := range indeg {
		if d == 0 {
			ready = append(ready, ni)
		}
	}
	for len(ready) > 0 {
		// pick the smallest index to keep original order where possible
		best := 0
		for i := 1; i < len(ready); i++ {
			if ready[i] < ready[best] {
				best = i
			}
		}
		ni := ready[best]
		ready[best] = ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		order = append(order, ni)
		for _, u := range users[ni] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		for ni, d := range indeg {
			if d > 0 {
				return nil, fmt.Errorf("ir: graph has a cycle through node %s", g.Nodes[ni].Label())
			}
		}
	}
	return order, nil
}

// String dumps the graph as text, one node per line, for debugging and
// golden tests.
func (g *Graph) String() string {
	var b strings.Builder
	name := func(id ValueID) string {
		if id == NoValue {
			return "_"
		}
		return "%" + g.Values[id].Name
	}
	fmt.Fprintf(&b, "graph %q\n", g.Name)
	for _, in := range g.Inputs {
		fmt.Fprintf(&b, "  input %s: %v\n", name(in), g.Values[in].Type)
	}
	for id := range g.Values {
		if c := g.Values[id].Const; c != nil {
			fmt.Fprintf(&b, "  const %s: %v%v\n", name(ValueID(id)), c.DType, c.Shape)
		}
	}
	order, err := g.Topo()
	if err != nil {
		order = make([]int, len(g.Nodes))
		for i := range order {
			order[i] = i
		}
	}
	for _, ni := range order {
		nd := &g.Nodes[ni]
		outs := make([]string, len(nd.Outputs))
		for i, o := range nd.Outputs {
			outs[i] = name(o)
		}
		ins := make([]string, len(nd.Inputs))
		for i, in := range nd.Inputs {
			ins[i] = name(in)
		}
		op := nd.Op
		if nd.Domain != "" {
			op = nd.Domain + "." + op
		}
		fmt.Fprintf(&b, "  %s = %s(%s)", strings.Join(outs, ", "), op, strings.Join(ins, ", "))
		if len(nd.Attrs) > 0 {
			parts := make([]string, len(nd.Attrs))
			for i, at := range nd.Attrs {
				parts[i] = at.Name + "=" + at.ValueString()
			}
			fmt.Fprintf(&b, " {%s}", strings.Join(parts, ", "))
		}
		b.WriteByte('\n')
	}
	outs := make([]string, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = name(o)
	}
	fmt.Fprintf(&b, "  return %s\n", strings.Join(outs, ", "))
	return b.String()
}
