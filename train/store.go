package train

import (
	"fmt"

	"github.com/goslim/goslim/autodiff"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Store is the mutable side of a model under training: the current values
// of its parameters (trainable constants) and states (BatchNorm running
// statistics), keyed by the model's ValueIDs. The model graph itself stays
// immutable: the store starts from copies of its constants, and Model
// writes the store back into a clone.
type Store struct {
	model  *ir.Graph
	params []ir.ValueID
	states []ir.ValueID
	vals   map[ir.ValueID]*tensor.Tensor
}

// NewStore makes a store for the given parameters and states of model,
// each a float32 constant, starting from copies of their values.
func NewStore(model *ir.Graph, params, states []ir.ValueID) (*Store, error) {
	s := &Store{model: model, params: append([]ir.ValueID(nil), params...),
		states: append([]ir.ValueID(nil), states...), vals: map[ir.ValueID]*tensor.Tensor{}}
	names := map[string]bool{}
	for _, ids := range [][]ir.ValueID{params, states} {
		for _, id := range ids {
			if id < 0 || int(id) >= len(model.Values) {
				return nil, fmt.Errorf("train: value id %d out of range", id)
			}
			v := &model.Values[id]
			if v.Const == nil || v.Const.DType != tensor.Float32 {
				return nil, fmt.Errorf("train: %q is not a float32 constant", v.Name)
			}
			if _, dup := s.vals[id]; dup || names[v.Name] {
				return nil, fmt.Errorf("train: %q listed twice or its name is not unique", v.Name)
			}
			names[v.Name] = true
			s.vals[id] = v.Const.Clone()
		}
	}
	return s, nil
}

// Graph returns the model the store belongs to (read only).
func (s *Store) Graph() *ir.Graph { return s.model }

// Params returns the parameter IDs in store order.
func (s *Store) Params() []ir.ValueID { return append([]ir.ValueID(nil), s.params...) }

// States returns the state IDs in store order.
func (s *Store) States() []ir.ValueID { return append([]ir.ValueID(nil), s.states...) }

// Value returns the current tensor of a parameter or state (owned by the
// store: optimizers update it in place), or nil.
func (s *Store) Value(id ir.ValueID) *tensor.Tensor { return s.vals[id] }

// Set replaces the tensor of a parameter or state; it must keep the dtype
// and shape.
func (s *Store) Set(id ir.ValueID, t *tensor.Tensor) error {
	old, ok := s.vals[id]
	if !ok {
		return fmt.Errorf("train: value %d is not in the store", id)
	}
	if t == nil || t.DType != old.DType || !t.Shape.Equal(old.Shape) {
		return fmt.Errorf("train: new value of %q does not match %v%v", s.model.Values[id].Name, old.DType, old.Shape)
	}
	s.vals[id] = t
	return nil
}

// tensors returns the store tensors of ids in order.
func (s *Store) tensors(ids []ir.ValueID) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(ids))
	for i, id := range ids {
		out[i] = s.vals[id]
	}
	return out
}

// Model returns the trained inference model: a clone of the graph whose
// constants are the store's values (copied, so later training steps do
// not change it). Value IDs are kept.
func (s *Store) Model() (*ir.Graph, error) {
	vals := make(map[ir.ValueID]*tensor.Tensor, len(s.vals))
	for id, t := range s.vals {
		vals[id] = t.Clone()
	}
	return autodiff.WithValues(s.model, vals)
}

// MarkTrainable returns a clone of g whose float constants in parameter
// positions are marked Trainable, for models read from ONNX files (which
// do not record what is trainable): the weights and biases of Conv,
// ConvTranspose, Gemm and MatMul (either operand), the scale and shift
// of BatchNormalization, LayerNormalization and InstanceNormalization,
// and the constant operand of an Add that directly follows a Gemm or
// MatMul (a bias). BatchNorm running statistics and every other constant
// (shapes, Clip bounds, ...) stay fixed. If g already has a trainable
// value it is returned unchanged (not cloned).
func MarkTrainable(g *ir.Graph) *ir.Graph {
	for _, v := range g.Values {
		if v.Trainable {
			return g
		}
	}
	c := g.Clone()
	prod := c.Producers()
	mark := func(id ir.ValueID) {
		if id < 0 || int(id) >= len(c.Values) {
			return
		}
		v := &c.Values[id]
		if v.Const != nil && v.Const.DType.IsFloat() && v.Const.Len() > 0 && prod[id] < 0 {
			v.Trainable = true
		}
	}
	for _, n := range c.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		switch n.Op {
		case "Conv", "ConvTranspose", "Gemm", "BatchNormalization", "LayerNormalization", "InstanceNormalization":
			mark(n.Input(1))
			mark(n.Input(2))
		case "MatMul":
			mark(n.Input(0))
			mark(n.Input(1))
		case "Add":
			for i, in := range n.Inputs {
				other := n.Input(1 - i)
				if other >= 0 && prod[other] >= 0 {
					if op := c.Nodes[prod[other]].Op; op == "MatMul" || op == "Gemm" {
						mark(in)
					}
				}
			}
		}
	}
	return c
}
