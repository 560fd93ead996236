package zoo

import (
	"fmt"

	"github.com/goslim/goslim/ir"
)

// LeNet builds LeNet-5 for N×C×28×28 input (the default; other sizes work
// when the spatial size stays positive): conv5x5(6, pad 2) - ReLU -
// maxpool2 - conv5x5(16) - ReLU - maxpool2 - flatten - fc120 - ReLU - fc84 -
// ReLU - fc(classes). All weights are He-normal, biases zero.
func LeNet(o Options) (*ir.Graph, error) {
	o.defaults(1, 28, 28)
	c1, c2, f1, f2 := o.scale(6), o.scale(16), o.scale(120), o.scale(84)
	h := (o.InH/2 - 4) / 2
	w := (o.InW/2 - 4) / 2
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("zoo: lenet: input %dx%d is too small", o.InH, o.InW)
	}
	in := newInitr("lenet", o, 0x1e2e7)
	b := in.b
	x := in.input(o)
	pool := func(name string, x ir.ValueID) ir.ValueID {
		return b.Op("MaxPool", name, []ir.ValueID{x}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	}
	y := in.conv("conv1", x, o.InC, c1, 5, 1, 2, 1)
	y = pool("pool1", in.relu("relu1", y))
	y = in.conv("conv2", y, c1, c2, 5, 1, 0, 1)
	y = pool("pool2", in.relu("relu2", y))
	y = b.Op("Flatten", "flatten", []ir.ValueID{y}, ir.IntAttr("axis", 1))
	y = in.relu("relu3", in.gemm("fc1", y, c2*h*w, f1))
	y = in.relu("relu4", in.gemm("fc2", y, f1, f2))
	y = in.gemm("fc3", y, f2, o.Classes)
	return in.finish(y)
}
