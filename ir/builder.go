package ir

import (
	"fmt"

	"github.com/goslim/goslim/tensor"
)

// Builder constructs graphs in code (model zoo, tests, rewrites). Names are
// made unique automatically.
type Builder struct {
	G     *Graph
	names map[string]int
}

// NewBuilder starts an empty graph importing ai.onnx at the given opset.
func NewBuilder(name string, opset int64) *Builder {
	return &Builder{
		G: &Graph{Name: name, Opsets: map[string]int64{"": opset}, IRVersion: 8,
			ProducerName: "goslim"},
		names: map[string]int{},
	}
}

// Unique returns name, or name with a numeric suffix if already used.
func (b *Builder) Unique(name string) string {
	if b.names == nil {
		b.names = map[string]int{}
		for _, v := range b.G.Values {
			b.names[v.Name] = 1
		}
	}
	if _, used := b.names[name]; !used {
		b.names[name] = 1
		return name
	}
	for {
		b.names[name]++
		cand := fmt.Sprintf("%s_%d", name, b.names[name])
		if _, used := b.names[cand]; !used {
			b.names[cand] = 1
			return cand
		}
	}
}

// Input adds a graph input. A negative dim is symbolic; it is named "N"
// when it is the first dim, otherwise left unnamed.
func (b *Builder) Input(name string, dt tensor.DType, dims ...int64) ValueID {
	shape := make([]Dim, len(dims))
	for i, d := range dims {
		shape[i] = Dim{Size: d}
		if d < 0 && i == 0 {
			shape[i].Param = "N"
		}
	}
	id := b.G.AddValue(Value{Name: b.Unique(name), Type: Type{DType: dt, Ranked: true, Shape: shape}})
	b.G.Inputs = append(b.G.Inputs, id)
	return id
}

// Const adds a constant (initializer).
func (b *Builder) Const(name string, t *tensor.Tensor) ValueID {
	return b.G.AddValue(Value{Name: b.Unique(name), Const: t,
		Type: Type{DType: t.DType, Ranked: true, Shape: ShapeDims(t.Shape)}})
}

// Param adds a trainable constant (weights, biases).
func (b *Builder) Param(name string, t *tensor.Tensor) ValueID {
	id := b.Const(name, t)
	b.G.Values[id].Trainable = true
	return id
}

// Op adds a node with one output and returns the output's ID.
func (b *Builder) Op(op, name string, inputs []ValueID, attrs ...Attr) ValueID {
	return b.OpN(op, name, 1, inputs, attrs...)[0]
}

// OpN adds a node with nOut outputs named after the node.
func (b *Builder) OpN(op, name string, nOut int, inputs []ValueID, attrs ...Attr) []ValueID {
	if name == "" {
		name = op
	}
	name = b.Unique(name)
	outs := make([]ValueID, nOut)
	for i := range outs {
		vn := name
		if nOut > 1 || vn == name {
			vn = fmt.Sprintf("%s_out%d", name, i)
			if i == 0 && nOut == 1 {
				vn = name + "_out"
			}
		}
		outs[i] = b.G.AddValue(Value{Name: b.Unique(vn)})
	}
	b.G.AddNode(Node{Op: op, Name: name, Inputs: append([]ValueID(nil), inputs...),
		Outputs: outs, Attrs: Attrs(attrs)})
	return outs
}

// Output marks values as graph outputs.
func (b *Builder) Output(ids ...ValueID) { b.G.Outputs = append(b.G.Outputs, ids...) }
