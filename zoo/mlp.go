package zoo

import (
	"github.com/goslim/goslim/ir"
)

// MLP builds a multilayer perceptron for N×C×H×W input (default 1x28x28):
// flatten - fc512 - ReLU - fc256 - ReLU - fc(classes). Hidden layers are
// He-normal, the classifier Xavier-uniform, biases zero.
func MLP(o Options) (*ir.Graph, error) {
	o.defaults(1, 28, 28)
	h1, h2 := o.scale(512), o.scale(256)
	in := newInitr("mlp", o, 0x3c9)
	x := in.input(o)
	y := in.b.Op("Flatten", "flatten", []ir.ValueID{x}, ir.IntAttr("axis", 1))
	y = in.relu("relu1", in.gemm("fc1", y, o.InC*o.InH*o.InW, h1))
	y = in.relu("relu2", in.gemm("fc2", y, h1, h2))
	y = in.classifier("fc3", y, h2, o.Classes)
	return in.finish(y)
}
