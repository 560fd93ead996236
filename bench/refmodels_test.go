package bench_test

import (
	"math"
	"math/rand/v2"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// The four reference models of bench/models/gen_models.py, built in Go so
// `go test -bench` needs no python. BatchNorm is already folded (Conv with
// bias), which is what goslim runs after rewrite.Simplify. Weights are
// seeded He-normal, biases small; the numbers are not meant to match the
// PyTorch files, only the architecture and the cost.

// refBuilder adds seeded layers to an ir.Builder.
type refBuilder struct {
	b   *ir.Builder
	rng *rand.Rand
}

func newRefBuilder(name string, seed uint64) *refBuilder {
	return &refBuilder{b: ir.NewBuilder(name, 13), rng: rand.New(rand.NewPCG(seed, 0xbe7c4))}
}

func (r *refBuilder) randn(shape tensor.Shape, std float64) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, shape)
	d := t.F32()
	for i := range d {
		d[i] = float32(r.rng.NormFloat64() * std)
	}
	return t
}

// conv adds Conv with a square kernel, symmetric padding k/2 when pad is
// true, and a bias.
func (r *refBuilder) conv(name string, x ir.ValueID, cin, cout, k, stride, group int, pad bool) ir.ValueID {
	p := int64(0)
	if pad {
		p = int64(k / 2)
	}
	w := r.b.Param(name+".weight", r.randn(tensor.Shape{cout, cin / group, k, k}, math.Sqrt(2/float64(cin/group*k*k))))
	bias := r.b.Param(name+".bias", r.randn(tensor.Shape{cout}, 0.05))
	return r.b.Op("Conv", name, []ir.ValueID{x, w, bias},
		ir.IntsAttr("kernel_shape", int64(k), int64(k)),
		ir.IntsAttr("strides", int64(stride), int64(stride)),
		ir.IntsAttr("pads", p, p, p, p),
		ir.IntAttr("group", int64(group)))
}

// fc adds Gemm(x, Wᵀ, b).
func (r *refBuilder) fc(name string, x ir.ValueID, nin, nout int) ir.ValueID {
	w := r.b.Param(name+".weight", r.randn(tensor.Shape{nout, nin}, math.Sqrt(2/float64(nin))))
	bias := r.b.Param(name+".bias", r.randn(tensor.Shape{nout}, 0.05))
	return r.b.Op("Gemm", name, []ir.ValueID{x, w, bias}, ir.IntAttr("transB", 1))
}

func (r *refBuilder) relu(x ir.ValueID) ir.ValueID { return r.b.Op("Relu", "relu", []ir.ValueID{x}) }

// relu6 is Clip(x, 0, 6) with the bounds as constant inputs (opset >= 11).
func (r *refBuilder) relu6(x ir.ValueID) ir.ValueID {
	lo := r.b.Const("clip_min", tensor.FromFloat32(tensor.Shape{}, []float32{0}))
	hi := r.b.Const("clip_max", tensor.FromFloat32(tensor.Shape{}, []float32{6}))
	return r.b.Op("Clip", "relu6", []ir.ValueID{x, lo, hi})
}

func (r *refBuilder) flatten(x ir.ValueID) ir.ValueID {
	return r.b.Op("Flatten", "flatten", []ir.ValueID{x}, ir.IntAttr("axis", 1))
}

func (r *refBuilder) finish(y ir.ValueID) (*ir.Graph, error) {
	r.b.G.Values[y].Name = "output"
	r.b.Output(y)
	return r.b.G, r.b.G.Verify()
}

// refLeNet5 is LeNet-5 on 1x28x28 without padding (0.28 MMAC per image).
func refLeNet5() (*ir.Graph, error) {
	r := newRefBuilder("lenet5", 1)
	pool := func(x ir.ValueID) ir.ValueID {
		return r.b.Op("MaxPool", "pool", []ir.ValueID{x}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	}
	x := r.b.Input("input", tensor.Float32, -1, 1, 28, 28)
	y := pool(r.relu(r.conv("conv1", x, 1, 6, 5, 1, 1, false)))
	y = pool(r.relu(r.conv("conv2", y, 6, 16, 5, 1, 1, false)))
	y = r.flatten(y)
	y = r.relu(r.fc("fc1", y, 16*4*4, 120))
	y = r.relu(r.fc("fc2", y, 120, 84))
	return r.finish(r.fc("fc3", y, 84, 10))
}

// refMLP is 784-512-256-10 with ReLU on a 1x28x28 input flattened inside
// (0.54 MMAC per image).
func refMLP() (*ir.Graph, error) {
	r := newRefBuilder("mlp", 2)
	x := r.b.Input("input", tensor.Float32, -1, 1, 28, 28)
	y := r.flatten(x)
	y = r.relu(r.fc("fc1", y, 784, 512))
	y = r.relu(r.fc("fc2", y, 512, 256))
	return r.finish(r.fc("fc3", y, 256, 10))
}

// refResNet8 is ResNet-8 on 3x32x32: a conv3x3(16) stem, three stages
// (16/32/64 channels, strides 1/2/2) of one basic block each with a 1x1
// strided projection where the shape changes, global average pooling and
// fc10 (12.5 MMAC per image).
func refResNet8() (*ir.Graph, error) {
	r := newRefBuilder("resnet8", 3)
	x := r.b.Input("input", tensor.Float32, -1, 3, 32, 32)
	y := r.relu(r.conv("stem", x, 3, 16, 3, 1, 1, true))
	block := func(name string, x ir.ValueID, cin, cout, stride int) ir.ValueID {
		h := r.relu(r.conv(name+".conv1", x, cin, cout, 3, stride, 1, true))
		h = r.conv(name+".conv2", h, cout, cout, 3, 1, 1, true)
		s := x
		if stride != 1 || cin != cout {
			s = r.conv(name+".down", x, cin, cout, 1, stride, 1, false)
		}
		return r.relu(r.b.Op("Add", name+".add", []ir.ValueID{h, s}))
	}
	y = block("layer1", y, 16, 16, 1)
	y = block("layer2", y, 16, 32, 2)
	y = block("layer3", y, 32, 64, 2)
	y = r.flatten(r.b.Op("GlobalAveragePool", "gap", []ir.ValueID{y}))
	return r.finish(r.fc("fc", y, 64, 10))
}

// refMobileNetV2 is torchvision's MobileNetV2 layout at width 0.5 on
// 3x96x96 with 10 classes (17.6 MMAC per image): channels rounded to
// multiples of 8, last conv 1280 wide, ReLU6 as Clip.
func refMobileNetV2() (*ir.Graph, error) {
	const width = 0.5
	divisible := func(v float64) int {
		n := max(8, int(v+4)/8*8)
		if float64(n) < 0.9*v {
			n += 8
		}
		return n
	}
	r := newRefBuilder("mobilenetv2", 4)
	x := r.b.Input("input", tensor.Float32, -1, 3, 96, 96)
	cin := divisible(32 * width)
	y := r.relu6(r.conv("stem", x, 3, cin, 3, 2, 1, true))
	settings := [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
		{6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}
	for _, s := range settings {
		t, cout := s[0], divisible(float64(s[1])*width)
		for i := 0; i < s[2]; i++ {
			stride := 1
			if i == 0 {
				stride = s[3]
			}
			hid := cin * t
			h := y
			if t != 1 {
				h = r.relu6(r.conv("expand", h, cin, hid, 1, 1, 1, false))
			}
			h = r.relu6(r.conv("dw", h, hid, hid, 3, stride, hid, true))
			h = r.conv("project", h, hid, cout, 1, 1, 1, false)
			if stride == 1 && cin == cout {
				h = r.b.Op("Add", "residual", []ir.ValueID{y, h})
			}
			y, cin = h, cout
		}
	}
	last := divisible(1280 * max(1, width))
	y = r.relu6(r.conv("last", y, cin, last, 1, 1, 1, false))
	y = r.flatten(r.b.Op("GlobalAveragePool", "gap", []ir.ValueID{y}))
	return r.finish(r.fc("classifier", y, last, 10))
}
