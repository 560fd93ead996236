package rewrite

import (
	"fmt"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// InferShapes returns a copy of g in which every value's ir.Type (dtype,
// rank and dims) is filled in as far as the ai.onnx operator rules allow.
// Value IDs are unchanged.
//
// Graph inputs keep their declared types (an input that also has an
// initializer takes the initializer's type only when none is declared);
// constants get their tensor's type. Nodes are visited in topological
// order and their outputs computed from their inputs, following the rules
// of the opset the graph imports for ai.onnx (attributes that became inputs
// in later opsets, such as Reshape's shape, Slice's starts or the Reduce*
// axes, are read from whichever place that opset uses).
//
// Dims are known sizes, symbolic parameters or unknown (ir.Dim.Size -1).
// Symbolic parameters such as a batch dim "N" flow through ops that keep a
// dim unchanged. Broadcasting follows numpy: equal dims stay, 1 broadcasts
// to the other dim, a known size d != 1 against an unknown or symbolic dim
// gives d (a valid graph can only hold 1 or d there), two different
// parameters give unknown.
//
// Inputs that define shapes (Reshape's shape, Slice's starts and ends,
// Resize's scales and sizes, Expand's shape, ...) are read from constants.
// Small integer tensors computed from shapes (Shape -> Gather -> Unsqueeze
// -> Concat -> Reshape and similar chains of Shape, Size, Gather, Slice,
// Squeeze, Unsqueeze, Concat, Cast, Identity, Reshape and integer
// Add/Sub/Mul/Div, as PyTorch exports them) are tracked element by element,
// with symbolic elements, so such a Reshape still gets a shape that names
// the batch parameter.
//
// Ops outside ai.onnx or without a rule leave their outputs as they were
// (declared types from the model are kept). A type declared in the model
// (graph outputs, value_info) is merged with the inferred one: known dims
// win over unknown ones. InferShapes returns an error naming the node when
// the graph contradicts an op's requirements (Conv on a rank-2 input,
// MatMul or Gemm inner dims that differ, Concat dims that differ, a
// declared output type that disagrees with the inferred one, ...).
func InferShapes(g *ir.Graph) (*ir.Graph, error) {
	out := g.Clone()
	s := &shapeState{g: out, opset: out.Opset(""), sym: map[ir.ValueID][]symInt{},
		isInput: make([]bool, len(out.Values))}
	for _, id := range out.Inputs {
		if id >= 0 && int(id) < len(s.isInput) {
			s.isInput[id] = true
		}
	}
	for id := range out.Values {
		v := &out.Values[id]
		if v.Const == nil {
			continue
		}
		ct := ir.Type{DType: v.Const.DType, Ranked: true, Shape: ir.ShapeDims(v.Const.Shape)}
		if s.isInput[id] {
			// An overridable initializer: the declared type rules, the
			// initializer fills what is not declared.
			if v.Type.DType == 0 {
				v.Type.DType = ct.DType
			}
			if !v.Type.Ranked {
				v.Type.Ranked, v.Type.Shape = true, ct.Shape
			}
			continue
		}
		v.Type = ct
	}
	order, err := out.Topo()
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	for _, ni := range order {
		n := &out.Nodes[ni]
		s.node = n
		types, err := s.inferNode(n)
		if err != nil {
			return nil, err
		}
		for i, o := range n.Outputs {
			if o == ir.NoValue || o < 0 || int(o) >= len(out.Values) {
				continue
			}
			var t ir.Type
			if i < len(types) {
				t = types[i]
			}
			merged, err := mergeTypes(t, out.Values[o].Type)
			if err != nil {
				return nil, s.errf("output %q: %v", out.Values[o].Name, err)
			}
			out.Values[o].Type = merged
		}
	}
	return out, nil
}

// symInt is one element of a small integer tensor followed through shape
// arithmetic: a known value, a symbolic parameter, or unknown.
type symInt struct {
	Val   int64
	Known bool
	Param string
}

// maxSymLen bounds the integer tensors tracked element by element.
const maxSymLen = 64

// shapeState is the working state of one InferShapes call.
type shapeState struct {
	g       *ir.Graph
	opset   int64
	sym     map[ir.ValueID][]symInt
	isInput []bool
	node    *ir.Node
}

// errf formats an error naming the current node.
func (s *shapeState) errf(format string, args ...any) error {
	return fmt.Errorf("rewrite: node %s: %s", s.node.Label(), fmt.Sprintf(format, args...))
}

// in returns the type of input i of n (the zero Type when absent).
func (s *shapeState) in(n *ir.Node, i int) ir.Type {
	id := n.Input(i)
	if id == ir.NoValue || id < 0 || int(id) >= len(s.g.Values) {
		return ir.Type{}
	}
	return s.g.Values[id].Type
}

// has reports whether input i of n is present.
func (s *shapeState) has(n *ir.Node, i int) bool { return n.Input(i) != ir.NoValue }

// constOf returns the constant tensor of a value, or nil when the value is
// not a constant or is an overridable graph input.
func (s *shapeState) constOf(id ir.ValueID) *tensor.Tensor {
	if id == ir.NoValue || id < 0 || int(id) >= len(s.g.Values) || s.isInput[id] {
		return nil
	}
	return s.g.Values[id].Const
}

// symOf returns the tracked elements of a small integer value.
func (s *shapeState) symOf(id ir.ValueID) ([]symInt, bool) {
	if id == ir.NoValue {
		return nil, false
	}
	if v, ok := s.sym[id]; ok {
		return v, true
	}
	c := s.constOf(id)
	if c == nil || c.Len() > maxSymLen || c.Rank() > 1 {
		return nil, false
	}
	ints, err := c.Int64s()
	if err != nil {
		return nil, false
	}
	out := make([]symInt, len(ints))
	for i, v := range ints {
		out[i] = symInt{Val: v, Known: true}
	}
	return out, true
}

// intsOf returns the values of a small integer value when all are known.
func (s *shapeState) intsOf(id ir.ValueID) ([]int64, bool) {
	v, ok := s.symOf(id)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(v))
	for i, e := range v {
		if !e.Known {
			return nil, false
		}
		out[i] = e.Val
	}
	return out, true
}

// floatsOf returns the values of a small constant float or integer tensor.
func (s *shapeState) floatsOf(id ir.ValueID) ([]float64, bool) {
	c := s.constOf(id)
	if c == nil || c.Len() > maxSymLen {
		return nil, false
	}
	out := make([]float64, c.Len())
	for i := range out {
		out[i] = c.Float64At(i)
	}
	return out, true
}

// setSym records the tracked elements of an output value.
func (s *shapeState) setSym(id ir.ValueID, v []symInt) {
	if id == ir.NoValue || v == nil || len(v) > maxSymLen {
		return
	}
	s.sym[id] = v
}

// symFromDim converts a dim to a tracked element.
func symFromDim(d ir.Dim) symInt {
	if d.Known() {
		return symInt{Val: d.Size, Known: true}
	}
	return symInt{Param: d.Param}
}

// dimFromSym converts a tracked element used as a size to a dim.
func dimFromSym(e symInt) ir.Dim {
	if e.Known {
		if e.Val >= 0 {
			return ir.Dim{Size: e.Val}
		}
		return unknownDim
	}
	return ir.Dim{Size: -1, Param: e.Param}
}

// unknownDim is a dim about which nothing is known.
var unknownDim = ir.Dim{Size: -1}

// known makes a dim of fixed size.
func known(v int64) ir.Dim { return ir.Dim{Size: v} }

// ranked makes a ranked type.
func ranked(dt tensor.DType, dims []ir.Dim) ir.Type {
	if dims == nil {
		dims = []ir.Dim{}
	}
	return ir.Type{DType: dt, Ranked: true, Shape: dims}
}

// unknownDims returns n unknown dims.
func unknownDims(n int) []ir.Dim {
	d := make([]ir.Dim, n)
	for i := range d {
		d[i] = unknownDim
	}
	return d
}

// sameDim reports whether two dims are provably equal.
func sameDim(a, b ir.Dim) bool {
	if a.Known() || b.Known() {
		return a.Size == b.Size
	}
	return a.Param != "" && a.Param == b.Param
}

// unifyDim merges two dims that must be equal. ok is false when both are
// known and differ.
func unifyDim(a, b ir.Dim) (ir.Dim, bool) {
	switch {
	case a.Known() && b.Known():
		return a, a.Size == b.Size
	case a.Known():
		return a, true
	case b.Known():
		return b, true
	case a.Param != "":
		return a, true
	}
	return b, true
}

// bcastDim broadcasts two dims; ok is false for two known sizes that
// cannot broadcast.
func bcastDim(a, b ir.Dim) (ir.Dim, bool) {
	switch {
	case a.Known() && b.Known():
		if a.Size == b.Size || b.Size == 1 {
			return a, true
		}
		if a.Size == 1 {
			return b, true
		}
		return a, false
	case a.Known():
		if a.Size == 1 {
			return b, true
		}
		return a, true
	case b.Known():
		if b.Size == 1 {
			return a, true
		}
		return b, true
	case a.Param != "" && a.Param == b.Param:
		return a, true
	}
	return unknownDim, true
}

// broadcastTypes broadcasts the shapes of ts (numpy rules) into a type of
// dtype dt. An unranked operand makes the result unranked.
func broadcastTypes(dt tensor.DType, ts ...ir.Type) (ir.Type, error) {
	rank := 0
	for _, t := range ts {
		if !t.Ranked {
			return ir.Type{DType: dt}, nil
		}
		rank = max(rank, len(t.Shape))
	}
	out := make([]ir.Dim, rank)
	for i := range out {
		out[i] = known(1)
	}
	for _, t := range ts {
		off := rank - len(t.Shape)
		for i, d := range t.Shape {
			b, ok := bcastDim(out[off+i], d)
			if !ok {
				return ir.Type{}, fmt.Errorf("shapes %s cannot be broadcast together", typesString(ts))
			}
			out[off+i] = b
		}
	}
	return ranked(dt, out), nil
}

func typesString(ts []ir.Type) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += " and "
		}
		s += t.String()
	}
	return s
}

// prodDims multiplies dims: known when all are known, the parameter when
// exactly one is symbolic and the rest multiply to 1, else unknown.
func prodDims(ds []ir.Dim) ir.Dim {
	p := int64(1)
	param := ""
	nsym := 0
	for _, d := range ds {
		if d.Known() {
			p *= d.Size
			continue
		}
		if d.Param == "" {
			return unknownDim
		}
		nsym++
		param = d.Param
	}
	switch {
	case nsym == 0:
		return known(p)
	case nsym == 1 && p == 1:
		return ir.Dim{Size: -1, Param: param}
	}
	return unknownDim
}

// mergeTypes combines an inferred type with a declared one: known facts of
// either side are kept; contradictions are errors.
func mergeTypes(inf, decl ir.Type) (ir.Type, error) {
	out := inf
	switch {
	case inf.DType == 0:
		out.DType = decl.DType
	case decl.DType != 0 && decl.DType != inf.DType:
		return ir.Type{}, fmt.Errorf("inferred dtype %v, declared %v", inf.DType, decl.DType)
	}
	if !decl.Ranked {
		return out, nil
	}
	if !inf.Ranked {
		out.Ranked = true
		out.Shape = append([]ir.Dim(nil), decl.Shape...)
		return out, nil
	}
	if len(inf.Shape) != len(decl.Shape) {
		return ir.Type{}, fmt.Errorf("inferred type %v, declared %v", inf, decl)
	}
	out.Shape = make([]ir.Dim, len(inf.Shape))
	for i, d := range inf.Shape {
		e := decl.Shape[i]
		switch {
		case d.Known() && e.Known() && d.Size != e.Size:
			return ir.Type{}, fmt.Errorf("inferred type %v, declared %v", inf, decl)
		case d.Known():
			out.Shape[i] = d
		case e.Known():
			out.Shape[i] = e
		case d.Param != "":
			out.Shape[i] = d
		default:
			out.Shape[i] = e
		}
	}
	return out, nil
}

// normAxis maps a possibly negative axis into [0, rank).
func (s *shapeState) normAxis(axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, s.errf("axis %d out of range for rank %d", axis, rank)
	}
	return int(a), nil
}

// normAxes normalizes a list of axes, rejecting duplicates.
func (s *shapeState) normAxes(axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make(map[int]bool, len(axes))
	for i, a := range axes {
		v, err := s.normAxis(a, rank)
		if err != nil {
			return nil, err
		}
		if seen[v] {
			return nil, s.errf("axis %d repeated", a)
		}
		seen[v] = true
		out[i] = v
	}
	return out, nil
}

// isIntDType reports whether dt is an integer dtype.
func isIntDType(dt tensor.DType) bool {
	switch dt {
	case tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32,
		tensor.Int64, tensor.Uint64:
		return true
	}
	return false
}

// ceilDiv is ceil(a/b) for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a > 0) == (b > 0) {
		q++
	}
	return q
}

// floorDiv is floor(a/b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
