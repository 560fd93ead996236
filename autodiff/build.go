package autodiff

import (
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// builder holds the program graph while Build constructs it.
type builder struct {
	g *ir.Graph
}

func build(model *ir.Graph, loss ir.ValueID, opts Options) (*Program, error) {
	return nil, errNotImplemented
}

func registerRules(r *Rules) {}

func (b *builder) dtypeOf(v ir.ValueID) tensor.DType { return 0 }

func (b *builder) node(domain, op string, want []bool, inputs []ir.ValueID, attrs []ir.Attr) []ir.ValueID {
	return nil
}

func (b *builder) constant(name string, t *tensor.Tensor) ir.ValueID { return ir.NoValue }

func (b *builder) scalar(dt tensor.DType, v float64) (ir.ValueID, error) {
	return ir.NoValue, errNotImplemented
}

func (b *builder) ints(v []int64) ir.ValueID { return ir.NoValue }

func (b *builder) shapeOf(v ir.ValueID) ir.ValueID { return ir.NoValue }

func (b *builder) sumTo(g, like ir.ValueID) ir.ValueID { return ir.NoValue }

func (b *builder) zeros(like ir.ValueID) (ir.ValueID, error) { return ir.NoValue, errNotImplemented }
