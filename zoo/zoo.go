// Package zoo builds reference architectures as IR graphs with seeded
// initialization, so goslim can train, distill and benchmark them without
// downloading anything.
//
// Every model takes one input "input" of shape N×C×H×W (N symbolic) and
// produces one output "logits" of shape N×Classes. Trainable parameters
// (weights, biases, BatchNorm scale and shift) are constants marked
// Value.Trainable; BatchNorm running statistics are plain (non-trainable)
// constants. BatchNormalization nodes are in inference form; training
// rewrites them.
package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

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
	// Opset of the produced graph (default 13; 14 for mobilenetv3s, which
	// uses HardSwish).
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
		o.InC = c
	}
	if o.InH <= 0 {
		o.InH = h
	}
	if o.InW <= 0 {
		o.InW = w
	}
	if o.Opset == 0 {
		o.Opset = 13
	}
}

func (o *Options) scale(ch int) int {
	return max(1, int(math.Round(float64(ch)*o.Width)))
}

// Names lists the architecture names Build accepts ("resnetN" stands for
// any N = 6k+2).
func Names() []string {
	return []string{"lenet", "mlp", "resnet8", "resnet20", "resnetN", "mobilenetv2", "mobilenetv3s"}
}

// Build makes the model named by spec, "NAME[:WIDTH]": lenet, mlp,
// resnetN (N = 6k+2, e.g. resnet8, resnet20), mobilenetv2, mobilenetv3s.
// WIDTH, when given, overrides o.Width (e.g. "lenet:0.25").
func Build(spec string, o Options) (*ir.Graph, error) {
	name, width, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if width > 0 {
		o.Width = width
	}
	if o.Width < 0 || o.Width > 64 || math.IsNaN(o.Width) {
		return nil, fmt.Errorf("zoo: width %v out of range (0, 64]", o.Width)
	}
	if o.InC < 0 || o.InH < 0 || o.InW < 0 || o.InC > 1<<12 || o.InH > 1<<14 || o.InW > 1<<14 {
		return nil, fmt.Errorf("zoo: input %dx%dx%d out of range", o.InC, o.InH, o.InW)
	}
	if o.Classes < 0 || o.Classes > 1<<20 {
		return nil, fmt.Errorf("zoo: %d classes out of range", o.Classes)
	}
	switch {
	case name == "lenet" || name == "lenet5":
		return LeNet(o)
	case name == "mlp":
		return MLP(o)
	case name == "mobilenetv2":
		return MobileNetV2(o)
	case name == "mobilenetv3s" || name == "mobilenetv3small":
		return MobileNetV3Small(o)
	case strings.HasPrefix(name, "resnet"):
		depth, err := strconv.Atoi(strings.TrimPrefix(name, "resnet"))
		if err != nil {
			return nil, fmt.Errorf("zoo: unknown architecture %q (known: %s)", name, strings.Join(Names(), ", "))
		}
		return ResNet(depth, o)
	}
	return nil, fmt.Errorf("zoo: unknown architecture %q (known: %s)", name, strings.Join(Names(), ", "))
}

// ParseSpec splits "NAME[:WIDTH]" into a lower-case name and the width
// (0 when absent).
func ParseSpec(spec string) (name string, width float64, err error) {
	name, ws, hasWidth := strings.Cut(strings.TrimSpace(spec), ":")
	name = strings.ToLower(strings.ReplaceAll(name, "-", ""))
	if name == "" {
		return "", 0, fmt.Errorf("zoo: empty architecture name in %q", spec)
	}
	if hasWidth {
		width, err = strconv.ParseFloat(ws, 64)
		if err != nil || !(width > 0) || width > 64 {
			return "", 0, fmt.Errorf("zoo: bad width %q in %q (want a number in (0, 64], e.g. lenet:0.25)", ws, spec)
		}
	}
	return name, width, nil
}

// initr holds the seeded initializer state of one model build.
type initr struct {
	b   *ir.Builder
	rng *rand.Rand
}

func newInitr(name string, o Options, stream uint64) *initr {
	return &initr{b: ir.NewBuilder(name, o.Opset), rng: rand.New(rand.NewPCG(o.Seed, stream))}
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

// xavier returns a Xavier(Glorot)-uniform initialized weight:
// U(-a, a) with a = sqrt(6 / (fanIn + fanOut)).
func (in *initr) xavier(shape tensor.Shape, fanIn, fanOut int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, shape)
	a := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range t.F32() {
		t.F32()[i] = float32((2*in.rng.Float64() - 1) * a)
	}
	return t
}

func zeros(n int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, tensor.Shape{n})
	return t
}

func ones(n int) *tensor.Tensor {
	t := zeros(n)
	for i := range t.F32() {
		t.F32()[i] = 1
	}
	return t
}

// conv adds Conv(x) with a He-initialized weight and zero bias.
func (in *initr) conv(name string, x ir.ValueID, cin, cout, k, stride, pad, group int) ir.ValueID {
	return in.convOpt(name, x, cin, cout, k, stride, pad, group, true)
}

// convOpt adds Conv(x) with a He-initialized weight and, when bias is
// set, a zero bias (convolutions followed by BatchNorm have none).
func (in *initr) convOpt(name string, x ir.ValueID, cin, cout, k, stride, pad, group int, bias bool) ir.ValueID {
	w := in.b.Param(name+".weight", in.he(tensor.Shape{cout, cin / group, k, k}, cin/group*k*k))
	inputs := []ir.ValueID{x, w}
	if bias {
		inputs = append(inputs, in.b.Param(name+".bias", zeros(cout)))
	}
	return in.b.Op("Conv", name, inputs,
		ir.IntsAttr("kernel_shape", int64(k), int64(k)),
		ir.IntsAttr("strides", int64(stride), int64(stride)),
		ir.IntsAttr("pads", int64(pad), int64(pad), int64(pad), int64(pad)),
		ir.IntAttr("group", int64(group)))
}

// bn adds an inference-form BatchNormalization over c channels: scale 1
// and shift 0 (trainable), running mean 0 and variance 1 (state),
// epsilon 1e-5, momentum 0.9 (PyTorch's 0.1).
func (in *initr) bn(name string, x ir.ValueID, c int) ir.ValueID {
	scale := in.b.Param(name+".weight", ones(c))
	shift := in.b.Param(name+".bias", zeros(c))
	mean := in.b.Const(name+".running_mean", zeros(c))
	vr := in.b.Const(name+".running_var", ones(c))
	return in.b.Op("BatchNormalization", name, []ir.ValueID{x, scale, shift, mean, vr},
		ir.FloatAttr("epsilon", 1e-5), ir.FloatAttr("momentum", 0.9))
}

// convBN adds Conv (no bias) followed by BatchNormalization.
func (in *initr) convBN(name string, x ir.ValueID, cin, cout, k, stride, group int) ir.ValueID {
	y := in.convOpt(name, x, cin, cout, k, stride, k/2, group, false)
	return in.bn(name+".bn", y, cout)
}

// gemm adds a fully connected layer y = x·Wᵀ + b (Gemm with transB=1) with
// a He-initialized weight.
func (in *initr) gemm(name string, x ir.ValueID, nin, nout int) ir.ValueID {
	w := in.b.Param(name+".weight", in.he(tensor.Shape{nout, nin}, nin))
	bias := in.b.Param(name+".bias", zeros(nout))
	return in.b.Op("Gemm", name, []ir.ValueID{x, w, bias}, ir.IntAttr("transB", 1))
}

// classifier adds the final fully connected layer with a Xavier-uniform
// weight.
func (in *initr) classifier(name string, x ir.ValueID, nin, nout int) ir.ValueID {
	w := in.b.Param(name+".weight", in.xavier(tensor.Shape{nout, nin}, nin, nout))
	bias := in.b.Param(name+".bias", zeros(nout))
	return in.b.Op("Gemm", name, []ir.ValueID{x, w, bias}, ir.IntAttr("transB", 1))
}

func (in *initr) relu(name string, x ir.ValueID) ir.ValueID {
	return in.b.Op("Relu", name, []ir.ValueID{x})
}

// input adds the image input N×C×H×W with a symbolic batch.
func (in *initr) input(o Options) ir.ValueID {
	return in.b.Input("input", tensor.Float32, -1, int64(o.InC), int64(o.InH), int64(o.InW))
}

// finish names y "logits", marks it as the output and verifies the graph.
func (in *initr) finish(y ir.ValueID) (*ir.Graph, error) {
	in.b.G.Values[y].Name = "logits"
	in.b.Output(y)
	return in.b.G, in.b.G.Verify()
}

// convOut is the output size of a convolution with padding k/2.
func convOut(n, k, stride int) int { return (n+2*(k/2)-k)/stride + 1 }
