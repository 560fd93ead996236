// Package zoo builds reference architectures as IR graphs with seeded
// initialization, so goslim can train, distill and benchmark them without
// downloading anything.
package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Options configure a zoo model.
type Options struct {
	// Width scales every hidden channel count (1 = the reference width).
	Width float64
	// Classes is the number of outputs (default 10).
	Classes int
	// Channels, Height, Width of the input images (default 1x28x28).
	InC, InH, InW int
	// Seed makes initialization reproducible.
	Seed uint64
	// Opset of the produced graph (default 13).
	Opset int64
}

func (o *Options) defaults(c, h, w int) {
	if o.Width <= 0 {
		o.Width = 1
	}
	if o.Classes <= 0 {
		o.Classes = 10
	}
	if o.InC <= 0 {
		o.InC, o.InH, o.InW = c, h, w
	}
	if o.Opset == 0 {
		o.Opset = 13
	}
}

func (o *Options) scale(ch int) int {
	return max(1, int(math.Round(float64(ch)*o.Width)))
}

// initr holds the seeded initializer state of one model build.
type initr struct {
	b   *ir.Builder
	rng *rand.Rand
}

// he returns a He-normal initialized weight of the given shape; fanIn is
// the number of inputs per output unit.
func (in *initr) he(shape tensor.Shape, fanIn int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, shape)
	std := math.Sqrt(2 / float64(fanIn))
	for i := range t.F32() {
		t.F32()[i] = float32(in.rng.NormFloat64() * std)
	}
	return t
}

func zeros(n int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, tensor.Shape{n})
	return t
}

// conv adds Conv(x) with a He-initialized weight and zero bias.
func (in *initr) conv(name string, x ir.ValueID, cin, cout, k, stride, pad, group int) ir.ValueID {
	w := in.b.Param(name+".weight", in.he(tensor.Shape{cout, cin / group, k, k}, cin/group*k*k))
	bias := in.b.Param(name+".bias", zeros(cout))
	return in.b.Op("Conv", name, []ir.ValueID{x, w, bias},
		ir.IntsAttr("kernel_shape", int64(k), int64(k)),
		ir.IntsAttr("strides", int64(stride), int64(stride)),
		ir.IntsAttr("pads", int64(pad), int64(pad), int64(pad), int64(pad)),
		ir.IntAttr("group", int64(group)))
}

// gemm adds a fully connected layer y = x·Wᵀ + b (Gemm with transB=1).
func (in *initr) gemm(name string, x ir.ValueID, nin, nout int) ir.ValueID {
	w := in.b.Param(name+".weight", in.he(tensor.Shape{nout, nin}, nin))
	bias := in.b.Param(name+".bias", zeros(nout))
	return in.b.Op("Gemm", name, []ir.ValueID{x, w, bias}, ir.IntAttr("transB", 1))
}

// LeNet builds LeNet-5 for N×C×28×28 input (the default; other sizes work
// when the spatial size stays positive): conv5x5(6, pad 2) - ReLU -
// maxpool2 - conv5x5(16) - ReLU - maxpool2 - flatten - fc120 - ReLU - fc84 -
// ReLU - fc(classes). The output is logits named "logits"; the input
// "input" has a symbolic batch dim.
func LeNet(o Options) (*ir.Graph, error) {
	o.defaults(1, 28, 28)
	c1, c2, f1, f2 := o.scale(6), o.scale(16), o.scale(120), o.scale(84)
	h := (o.InH/2 - 4) / 2
	w := (o.InW/2 - 4) / 2
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("zoo: lenet: input %dx%d is too small", o.InH, o.InW)
	}
	b := ir.NewBuilder("lenet", o.Opset)
	in := &initr{b: b, rng: rand.New(rand.NewPCG(o.Seed, 0x1e2e7))}
	x := b.Input("input", tensor.Float32, -1, int64(o.InC), int64(o.InH), int64(o.InW))
	pool := func(name string, x ir.ValueID) ir.ValueID {
		return b.Op("MaxPool", name, []ir.ValueID{x}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	}
	y := in.conv("conv1", x, o.InC, c1, 5, 1, 2, 1)
	y = pool("pool1", b.Op("Relu", "relu1", []ir.ValueID{y}))
	y = in.conv("conv2", y, c1, c2, 5, 1, 0, 1)
	y = pool("pool2", b.Op("Relu", "relu2", []ir.ValueID{y}))
	y = b.Op("Flatten", "flatten", []ir.ValueID{y}, ir.IntAttr("axis", 1))
	y = b.Op("Relu", "relu3", []ir.ValueID{in.gemm("fc1", y, c2*h*w, f1)})
	y = b.Op("Relu", "relu4", []ir.ValueID{in.gemm("fc2", y, f1, f2)})
	y = in.gemm("fc3", y, f2, o.Classes)
	b.G.Values[y].Name = "logits"
	b.Output(y)
	return b.G, b.G.Verify()
}
