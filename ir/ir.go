// Package ir is goslim's graph intermediate representation: a flat,
// ID-linked dataflow graph. Values and nodes live in slices and refer to each
// other by integer IDs, so cloning is a few slice copies and passes can keep
// IDs stable.
//
// A Graph's structure is treated as immutable once handed to a later phase:
// passes return new graphs (see Clone). Constant tensors (initializers) are
// shared between clones and must never be written in place; what training
// changes lives in a parameter store beside the graph.
package ir

import (
	"fmt"

	"github.com/goslim/goslim/tensor"
)

// ValueID indexes Graph.Values.
type ValueID int32

// NoValue marks an omitted optional input or output (ONNX's empty name).
const NoValue ValueID = -1

// Dim is one dimension of a value's static type: a known size (Size >= 0),
// or unknown (Size < 0), optionally named by a symbolic parameter such as
// "batch".
type Dim struct {
	Size  int64
	Param string
}

// Known reports whether the dimension has a fixed size.
func (d Dim) Known() bool { return d.Size >= 0 }

// String formats the dim as its size, its parameter name, or "?".
func (d Dim) String() string {
	if d.Size >= 0 {
		return fmt.Sprint(d.Size)
	}
	if d.Param != "" {
		return d.Param
	}
	return "?"
}

// Type is the static type of a value: a dtype and, when Ranked, a shape whose
// dims may be unknown or symbolic. An unranked type has no shape information.
type Type struct {
	DType  tensor.DType
	Ranked bool
	Shape  []Dim
}

// StaticShape returns the shape as ints if it is ranked and fully known.
func (t Type) StaticShape() (tensor.Shape, bool) {
	if !t.Ranked {
		return nil, false
	}
	s := make(tensor.Shape, len(t.Shape))
	for i, d := range t.Shape {
		if d.Size < 0 {
			return nil, false
		}
		s[i] = int(d.Size)
	}
	return s, true
}

// String formats the type as dtype[d0,d1,...].
func (t Type) String() string {
	s := t.DType.String()
	if !t.Ranked {
		return s + "[*]"
	}
	s += "["
	for i, d := range t.Shape {
		if i > 0 {
			s += ","
		}
		s += d.String()
	}
	return s + "]"
}

// ShapeDims converts a static shape to dims.
func ShapeDims(s tensor.Shape) []Dim {
	d := make([]Dim, len(s))
	for i, v := range s {
		d[i] = Dim{Size: int64(v)}
	}
	return d
}

// Value is an edge of the graph: a graph input, a constant (initializer) or
// a node output.
type Value struct {
	Name string
	Type Type
	// Const holds the initializer of a constant value. A value that is both
	// a graph input and has Const (old-IR models list weights as inputs)
	// takes the fed tensor when one is given, Const otherwise.
	Const *tensor.Tensor
	// Trainable marks a parameter that training updates (weights, biases,
	// BatchNorm scale and shift), as opposed to fixed constants.
	Trainable bool
	Doc       string
}

// Node is one operator application.
type Node struct {
	Op     string
	Domain string // "" for ai.onnx
	Name   string
	// Inputs and Outputs may contain NoValue for omitted optional slots.
	Inputs  []ValueID
	Outputs []ValueID
	Attrs   Attrs
	Doc     string
}

// Label names the node for error messages: `"name" (Op)`, or `Op #i` when
// unnamed.
func (n *Node) Label() string {
	op := n.Op
	if n.Domain != "" && n.Domain != "ai.onnx" {
		op = n.Domain + "." + n.Op
	}
	if n.Name != "" {
		return fmt.Sprintf("%q (%s)", n.Name, op)
	}
	return op
}

// Input returns the i-th input ID, or NoValue when absent.
func (n *Node) Input(i int) ValueID {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return NoValue
}

// Graph is a model: values, nodes in any order (see Topo), graph inputs and
// outputs, and model-level metadata kept for a faithful ONNX round trip.
type Graph struct {
	Name    string
	Values  []Value
	Nodes   []Node
	Inputs  []ValueID
	Outputs []ValueID
	// Opsets maps an operator domain ("" for ai.onnx, "com.microsoft",
	// "goslim") to its imported opset version.
	Opsets map[string]int64
	// Meta holds ONNX metadata_props (preprocessing, class names,
	// quantization provenance).
	Meta map[string]string

	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	GraphDoc        string
}

// AddValue appends a value and returns its ID.
func (g *Graph) AddValue(v Value) ValueID {
	g.Values = append(g.Values, v)
	return ValueID(len(g.Values) - 1)
}

// AddNode appends a node and returns its index.
func (g *Graph) AddNode(n Node) int {
	g.Nodes = append(g.Nodes, n)
	return len(g.Nodes) - 1
}

// Value returns a pointer to the value with the given ID.
func (g *Graph) Value(id ValueID) *Value { return &g.Values[id] }

// Opset returns the imported opset of a domain ("" and "ai.onnx" are the
// same domain), or 0 if the domain is not imported.
func (g *Graph) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	return g.Opsets[domain]
}

// Producers returns, for every value, the index of the node that produces
// it, or -1 for graph inputs, constants and unused IDs.
func (g *Graph) Producers() []int {
	p := make([]int, len(g.Values))
	for i := range p {
		p[i] = -1
	}
	for ni := range g.Nodes {
		for _, o := range g.Nodes[ni].Outputs {
			if o >= 0 && int(o) < len(p) {
				p[o] = ni
			}
		}
	}
	return p
}

// Consumers returns, for every value, the indices of the nodes reading it.
func (g *Graph) Consumers() [][]int {
	c := make([][]int, len(g.Values))
	for ni := range g.Nodes {
		for _, in := range g.Nodes[ni].Inputs {
			if in >= 0 && int(in) < len(c) {
				c[in] = append(c[in], ni)
			}
		}
	}
	return c
}

// ValueByName returns the ID of the value with the given name.
func (g *Graph) ValueByName(name string) (ValueID, bool) {
	for i := range g.Values {
		if g.Values[i].Name == name {
			return ValueID(i), true
		}
	}
	return NoValue, false
}

// IsInput reports whether id is a graph input.
func (g *Graph) IsInput(id ValueID) bool {
	for _, in := range g.Inputs {
		if in == id {
			return true
		}
	}
	return false
}

// Clone returns a copy of g whose structure (values, nodes, attributes,
// maps) can be changed without affecting g. Constant tensors are shared:
// they are immutable by convention.
func (g *Graph) Clone() *Graph {
	c := *g
	c.Values = append([]Value(nil), g.Values...)
	for i := range c.Values {
		c.Values[i].Type.Shape = append([]Dim(nil), g.Values[i].Type.Shape...)
	}
	c.Nodes = make([]Node, len(g.Nodes))
	for i, n := range g.Nodes {
		n.Inputs = append([]ValueID(nil), n.Inputs...)
		n.Outputs = append([]ValueID(nil), n.Outputs...)
		n.Attrs = n.Attrs.Clone()
		c.Nodes[i] = n
	}
	c.Inputs = append([]ValueID(nil), g.Inputs...)
	c.Outputs = append([]ValueID(nil), g.Outputs...)
	c.Opsets = cloneMap(g.Opsets)
	c.Meta = cloneMap(g.Meta)
	return &c
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
