// Package inspect summarizes a model: its inputs and outputs with shapes
// and dtypes, an op histogram, the parameter count, multiply-accumulates per
// sample and the bytes its weights take.
package inspect

import (
	"fmt"
	"sort"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// IO describes a graph input or output. Shape entries are sizes or the
// names of symbolic dims ("N"), "?" where unknown.
type IO struct {
	Name  string   `json:"name"`
	DType string   `json:"dtype"`
	Shape []string `json:"shape"`
}

// Summary is what `goslim inspect` prints.
type Summary struct {
	Inputs  []IO           `json:"inputs"`
	Outputs []IO           `json:"outputs"`
	Ops     map[string]int `json:"ops"`
	// Params counts the elements of weight-like initializers (float and
	// 8/16/32-bit integer tensors; int64 shape constants are not counted).
	Params int64 `json:"params"`
	// MACs counts multiply-accumulates per sample (batch 1) of Conv,
	// ConvTranspose, Gemm and MatMul; other ops are not counted. Ops whose
	// shapes cannot be inferred are listed in Unknown.
	MACs    int64    `json:"macs"`
	Unknown []string `json:"macs_unknown,omitempty"`
	// Bytes is the storage of all initializers.
	Bytes  int64             `json:"bytes"`
	Opsets map[string]int64  `json:"opsets"`
	Nodes  int               `json:"nodes"`
	Meta   map[string]string `json:"metadata,omitempty"`
}

// Summarize computes a model summary. Symbolic leading (batch) dims of
// the inputs are taken as 1 to count MACs per sample.
func Summarize(g *ir.Graph) (*Summary, error) {
	s := &Summary{Ops: map[string]int{}, Opsets: g.Opsets, Nodes: len(g.Nodes), Meta: g.Meta}
	for _, id := range g.Inputs {
		if g.Values[id].Const == nil {
			s.Inputs = append(s.Inputs, describe(&g.Values[id]))
		}
	}
	for _, n := range g.Nodes {
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "." + op
		}
		s.Ops[op]++
	}
	for i := range g.Values {
		c := g.Values[i].Const
		if c == nil {
			continue
		}
		s.Bytes += int64(c.Len() * c.DType.Size())
		switch c.DType {
		case tensor.Int64, tensor.Bool, tensor.Uint64:
		default:
			s.Params += int64(c.Len())
		}
	}
	// Per-sample shapes: batch dims set to 1.
	one := g.Clone()
	for _, id := range one.Inputs {
		t := &one.Values[id].Type
		if t.Ranked && len(t.Shape) > 0 && t.Shape[0].Size < 0 {
			t.Shape[0] = ir.Dim{Size: 1}
		}
	}
	typed, err := rewrite.InferShapes(one)
	if err != nil {
		return nil, err
	}
	for _, id := range g.Outputs {
		v := g.Values[id]
		if !v.Type.Ranked {
			// Report what inference found (with the original symbolic batch).
			if inf, err := rewrite.InferShapes(g); err == nil {
				v.Type = inf.Values[id].Type
			}
		}
		s.Outputs = append(s.Outputs, describe(&v))
	}
	for i := range typed.Nodes {
		n := &typed.Nodes[i]
		macs, ok := nodeMACs(typed, n)
		if !ok {
			s.Unknown = append(s.Unknown, n.Label())
			continue
		}
		s.MACs += macs
	}
	sort.Strings(s.Unknown)
	return s, nil
}

func describe(v *ir.Value) IO {
	io := IO{Name: v.Name, DType: v.Type.DType.String()}
	if v.Type.Ranked {
		io.Shape = make([]string, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			io.Shape[i] = d.String()
		}
	}
	return io
}

func static(g *ir.Graph, id ir.ValueID) (tensor.Shape, bool) {
	if id == ir.NoValue {
		return nil, false
	}
	return g.Values[id].Type.StaticShape()
}

// nodeMACs returns the multiply-accumulates of compute ops; ok is false
// when a compute op's shapes are unknown. Other ops count zero.
func nodeMACs(g *ir.Graph, n *ir.Node) (int64, bool) {
	if n.Domain != "" {
		return 0, true
	}
	prod := func(s []int) int64 {
		p := int64(1)
		for _, d := range s {
			p *= int64(d)
		}
		return p
	}
	switch n.Op {
	case "Conv":
		w, ok1 := static(g, n.Input(1))
		y, ok2 := static(g, n.Outputs[0])
		if !ok1 || !ok2 || len(w) < 3 || len(y) != len(w) {
			return 0, false
		}
		// every output element costs Cin/group * prod(kernel) MACs
		return prod(y) * prod(w[1:]), true
	case "ConvTranspose":
		w, ok1 := static(g, n.Input(1))
		x, ok2 := static(g, n.Input(0))
		if !ok1 || !ok2 || len(w) < 3 || len(x) != len(w) {
			return 0, false
		}
		// every input element is scattered through Cout/group * prod(kernel)
		return prod(x) * prod(w[1:]), true
	case "Gemm", "MatMul":
		a, ok1 := static(g, n.Input(0))
		y, ok2 := static(g, n.Outputs[0])
		if !ok1 || !ok2 || len(a) == 0 {
			return 0, false
		}
		k := a[len(a)-1]
		if n.Op == "Gemm" && n.Attrs.Int("transA", 0) != 0 {
			k = a[0]
		}
		return prod(y) * int64(k), true
	}
	return 0, true
}

// String formats the summary as text.
func (s *Summary) String() string {
	out := ""
	for _, in := range s.Inputs {
		out += fmt.Sprintf("input  %s: %s%v\n", in.Name, in.DType, in.Shape)
	}
	for _, o := range s.Outputs {
		out += fmt.Sprintf("output %s: %s%v\n", o.Name, o.DType, o.Shape)
	}
	ops := make([]string, 0, len(s.Ops))
	for op := range s.Ops {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if s.Ops[ops[i]] != s.Ops[ops[j]] {
			return s.Ops[ops[i]] > s.Ops[ops[j]]
		}
		return ops[i] < ops[j]
	})
	out += fmt.Sprintf("nodes  %d:", s.Nodes)
	for _, op := range ops {
		out += fmt.Sprintf(" %s×%d", op, s.Ops[op])
	}
	out += "\n"
	out += fmt.Sprintf("params %d (%s in initializers)\n", s.Params, HumanBytes(s.Bytes))
	out += fmt.Sprintf("MACs   %d per sample (%.2f M)", s.MACs, float64(s.MACs)/1e6)
	if len(s.Unknown) > 0 {
		out += fmt.Sprintf("; shapes unknown for %d compute nodes", len(s.Unknown))
	}
	return out + "\n"
}

// HumanBytes formats a byte count with a binary unit.
func HumanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
