package ir

import (
	"fmt"

	"github.com/goslim/goslim/tensor"
)

// AttrType is an attribute's kind; values match ONNX's
// AttributeProto.AttributeType.
type AttrType int32

// Attribute kinds.
const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrInts      AttrType = 7
	AttrStrings   AttrType = 8
	AttrTensors   AttrType = 9
	AttrGraphs    AttrType = 10
)

// Attr is one node attribute. Only the field matching Type is meaningful.
// Graph-valued attributes (control flow) are kept as their serialized ONNX
// GraphProto bytes in Raw/RawList: goslim does not execute them, but a round
// trip keeps them.
type Attr struct {
	Name    string
	Type    AttrType
	Float   float32
	Int     int64
	String  string
	Tensor  *tensor.Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
	Tensors []*tensor.Tensor
	Raw     []byte
	RawList [][]byte
	// RefAttrName is set for attributes of function bodies that refer to
	// the calling node's attribute.
	RefAttrName string
	Doc         string
}

// Attrs is a node's attribute list in declaration order.
type Attrs []Attr

// Clone copies the list and its slices (tensors are shared).
func (a Attrs) Clone() Attrs {
	if a == nil {
		return nil
	}
	c := make(Attrs, len(a))
	for i, at := range a {
		at.Floats = append([]float32(nil), at.Floats...)
		at.Ints = append([]int64(nil), at.Ints...)
		at.Strings = append([]string(nil), at.Strings...)
		at.Tensors = append([]*tensor.Tensor(nil), at.Tensors...)
		c[i] = at
	}
	return c
}

// Get returns the attribute with the given name.
func (a Attrs) Get(name string) (*Attr, bool) {
	for i := range a {
		if a[i].Name == name {
			return &a[i], true
		}
	}
	return nil, false
}

// Has reports whether the attribute is present.
func (a Attrs) Has(name string) bool { _, ok := a.Get(name); return ok }

// Int returns an int attribute, or def when absent.
func (a Attrs) Int(name string, def int64) int64 {
	if at, ok := a.Get(name); ok && at.Type == AttrInt {
		return at.Int
	}
	return def
}

// Float returns a float attribute, or def when absent.
func (a Attrs) Float(name string, def float32) float32 {
	if at, ok := a.Get(name); ok && at.Type == AttrFloat {
		return at.Float
	}
	return def
}

// Str returns a string attribute, or def when absent.
func (a Attrs) Str(name string, def string) string {
	if at, ok := a.Get(name); ok && at.Type == AttrString {
		return at.String
	}
	return def
}

// Ints returns an ints attribute and whether it was present.
func (a Attrs) Ints(name string) ([]int64, bool) {
	if at, ok := a.Get(name); ok && at.Type == AttrInts {
		return at.Ints, true
	}
	return nil, false
}

// Floats returns a floats attribute and whether it was present.
func (a Attrs) Floats(name string) ([]float32, bool) {
	if at, ok := a.Get(name); ok && at.Type == AttrFloats {
		return at.Floats, true
	}
	return nil, false
}

// Strs returns a strings attribute and whether it was present.
func (a Attrs) Strs(name string) ([]string, bool) {
	if at, ok := a.Get(name); ok && at.Type == AttrStrings {
		return at.Strings, true
	}
	return nil, false
}

// Tensor returns a tensor attribute, or nil.
func (a Attrs) Tensor(name string) *tensor.Tensor {
	if at, ok := a.Get(name); ok && at.Type == AttrTensor {
		return at.Tensor
	}
	return nil
}

// Set replaces or appends an attribute and returns the new list.
func (a Attrs) Set(at Attr) Attrs {
	for i := range a {
		if a[i].Name == at.Name {
			a[i] = at
			return a
		}
	}
	return append(a, at)
}

// Without returns the list without the named attribute.
func (a Attrs) Without(name string) Attrs {
	out := a[:0:0]
	for _, at := range a {
		if at.Name != name {
			out = append(out, at)
		}
	}
	return out
}

// IntAttr makes an int attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Type: AttrInt, Int: v} }

// FloatAttr makes a float attribute.
func FloatAttr(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloat, Float: v} }

// StringAttr makes a string attribute.
func StringAttr(name, v string) Attr { return Attr{Name: name, Type: AttrString, String: v} }

// IntsAttr makes an ints attribute.
func IntsAttr(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrInts, Ints: v} }

// FloatsAttr makes a floats attribute.
func FloatsAttr(name string, v ...float32) Attr { return Attr{Name: name, Type: AttrFloats, Floats: v} }

// TensorAttr makes a tensor attribute.
func TensorAttr(name string, t *tensor.Tensor) Attr {
	return Attr{Name: name, Type: AttrTensor, Tensor: t}
}

// ValueString formats the attribute value for dumps.
func (at Attr) ValueString() string {
	switch at.Type {
	case AttrFloat:
		return fmt.Sprint(at.Float)
	case AttrInt:
		return fmt.Sprint(at.Int)
	case AttrString:
		return fmt.Sprintf("%q", at.String)
	case AttrTensor:
		if at.Tensor == nil {
			return "<nil tensor>"
		}
		return at.Tensor.String()
	case AttrFloats:
		return fmt.Sprint(at.Floats)
	case AttrInts:
		return fmt.Sprint(at.Ints)
	case AttrStrings:
		return fmt.Sprintf("%q", at.Strings)
	case AttrTensors:
		return fmt.Sprintf("<%d tensors>", len(at.Tensors))
	case AttrGraph:
		return "<graph>"
	case AttrGraphs:
		return fmt.Sprintf("<%d graphs>", len(at.RawList))
	}
	return "<undefined>"
}
