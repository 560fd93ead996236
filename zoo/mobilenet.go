package zoo

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// makeDivisible rounds ch*width to a multiple of 8 (at least 8), never
// going more than 10% below the exact value (torchvision's rule).
func makeDivisible(v float64) int {
	const d = 8
	n := max(d, int(v+d/2)/d*d)
	if float64(n) < 0.9*v {
		n += d
	}
	return n
}

// smallInput reports whether the input is CIFAR/MNIST-sized (shorter side
// below 64), in which case the MobileNets skip two of their five
// stride-2 steps (the stem and the first downsampling block) so that a
// 28x28 or 32x32 image still ends at 4x4 instead of 1x1.
func smallInput(o Options) bool { return min(o.InH, o.InW) < 64 }

// mobile holds the shared pieces of the MobileNet builders.
type mobile struct {
	*initr
	lo, hi ir.ValueID // Clip bounds 0 and 6 (shared scalars)
	h, w   int        // current spatial size
}

func newMobile(name string, o Options, stream uint64) *mobile {
	m := &mobile{initr: newInitr(name, o, stream), h: o.InH, w: o.InW}
	m.lo = m.b.Const("relu6.min", tensor.FromFloat32(tensor.Shape{}, []float32{0}))
	m.hi = m.b.Const("relu6.max", tensor.FromFloat32(tensor.Shape{}, []float32{6}))
	return m
}

// act applies the named activation: "relu", "relu6" (Clip 0..6), "hswish"
// (HardSwish) or "" (none, a linear bottleneck).
func (m *mobile) act(kind, name string, x ir.ValueID) ir.ValueID {
	switch kind {
	case "relu":
		return m.relu(name, x)
	case "relu6":
		return m.b.Op("Clip", name, []ir.ValueID{x, m.lo, m.hi})
	case "hswish":
		return m.b.Op("HardSwish", name, []ir.ValueID{x})
	}
	return x
}

// convBNAct adds Conv-BN-activation and tracks the spatial size.
func (m *mobile) convBNAct(name string, x ir.ValueID, cin, cout, k, stride, group int, act string) ir.ValueID {
	m.h, m.w = convOut(m.h, k, stride), convOut(m.w, k, stride)
	return m.act(act, name+".act", m.convBN(name, x, cin, cout, k, stride, group))
}

// squeezeExcite adds x * HardSigmoid(fc2(ReLU(fc1(GlobalAveragePool(x))))),
// with fc1 and fc2 1x1 convolutions with bias; HardSigmoid is
// torchvision's relu6(x+3)/6 (alpha 1/6, beta 0.5).
func (m *mobile) squeezeExcite(name string, x ir.ValueID, c, squeeze int) ir.ValueID {
	s := m.b.Op("GlobalAveragePool", name+".pool", []ir.ValueID{x})
	s = m.relu(name+".relu", m.conv(name+".fc1", s, c, squeeze, 1, 1, 0, 1))
	s = m.conv(name+".fc2", s, squeeze, c, 1, 1, 0, 1)
	s = m.b.Op("HardSigmoid", name+".gate", []ir.ValueID{s},
		ir.FloatAttr("alpha", float32(1.0/6)), ir.FloatAttr("beta", 0.5))
	return m.b.Op("Mul", name+".scale", []ir.ValueID{x, s})
}

// head adds GlobalAveragePool and Flatten.
func (m *mobile) head(x ir.ValueID) ir.ValueID {
	y := m.b.Op("GlobalAveragePool", "pool", []ir.ValueID{x})
	return m.b.Op("Flatten", "flatten", []ir.ValueID{y}, ir.IntAttr("axis", 1))
}

// MobileNetV2 builds MobileNetV2 (Sandler et al. 2018, torchvision's
// layout) for N×C×H×W input (default 3x32x32): a 3x3 stem conv, 17
// inverted-residual blocks (1x1 expand - 3x3 depthwise - 1x1 linear
// project, ReLU6 written as Clip 0..6, identity shortcut where the shape
// is kept), a 1x1 conv to 1280 channels, GlobalAveragePool and a Gemm
// classifier. Width scales every channel count (rounded to multiples of
// 8; the last conv never shrinks below 1280). Inputs with a side below 64
// use stride 1 in the stem and in the first 24-channel block (total
// stride 8 instead of 32).
func MobileNetV2(o Options) (*ir.Graph, error) {
	o.defaults(3, 32, 32)
	if o.InH < 8 || o.InW < 8 {
		return nil, fmt.Errorf("zoo: mobilenetv2: input %dx%d is too small", o.InH, o.InW)
	}
	small := smallInput(o)
	m := newMobile("mobilenetv2", o, 0x3b2)
	x := m.input(o)
	stem := 2
	if small {
		stem = 1
	}
	c := makeDivisible(32 * o.Width)
	y := m.convBNAct("stem", x, o.InC, c, 3, stem, 1, "relu6")
	cfg := []struct{ t, c, n, s int }{
		{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
	}
	bi := 0
	for si, st := range cfg {
		cout := makeDivisible(float64(st.c) * o.Width)
		for i := range st.n {
			stride := 1
			if i == 0 {
				stride = st.s
				if small && si == 1 {
					stride = 1
				}
			}
			name := fmt.Sprintf("block%d", bi)
			hidden := int(math.Round(float64(c * st.t)))
			z := y
			if st.t != 1 {
				z = m.convBNAct(name+".expand", z, c, hidden, 1, 1, 1, "relu6")
			}
			z = m.convBNAct(name+".dw", z, hidden, hidden, 3, stride, hidden, "relu6")
			z = m.convBNAct(name+".project", z, hidden, cout, 1, 1, 1, "")
			if stride == 1 && c == cout {
				z = m.b.Op("Add", name+".add", []ir.ValueID{z, y})
			}
			y, c = z, cout
			bi++
		}
	}
	last := makeDivisible(1280 * max(1, o.Width))
	y = m.convBNAct("last", y, c, last, 1, 1, 1, "relu6")
	y = m.classifier("fc", m.head(y), last, o.Classes)
	return m.finish(y)
}

// MobileNetV3Small builds MobileNetV3-Small (Howard et al. 2019,
// torchvision's layout) for N×C×H×W input (default 3x32x32): a 3x3 stem
// conv with HardSwish, 11 inverted-residual blocks (3x3 or 5x5 depthwise,
// ReLU or HardSwish, squeeze-excite with a HardSigmoid gate on 9 of them),
// a 1x1 conv to 576 channels, GlobalAveragePool, Gemm to 1024 with
// HardSwish and a Gemm classifier. Width scales the channel counts
// (multiples of 8). Inputs with a side below 64 use stride 1 in the stem
// and in the first block. The graph imports opset 14 (HardSwish) unless
// Options.Opset says otherwise.
func MobileNetV3Small(o Options) (*ir.Graph, error) {
	if o.Opset == 0 {
		o.Opset = 14
	}
	o.defaults(3, 32, 32)
	if o.Opset < 14 {
		return nil, fmt.Errorf("zoo: mobilenetv3s needs opset >= 14 (HardSwish), got %d", o.Opset)
	}
	if o.InH < 8 || o.InW < 8 {
		return nil, fmt.Errorf("zoo: mobilenetv3s: input %dx%d is too small", o.InH, o.InW)
	}
	small := smallInput(o)
	m := newMobile("mobilenetv3s", o, 0x3b3)
	x := m.input(o)
	stem := 2
	if small {
		stem = 1
	}
	ch := func(c int) int { return makeDivisible(float64(c) * o.Width) }
	c := ch(16)
	y := m.convBNAct("stem", x, o.InC, c, 3, stem, 1, "hswish")
	cfg := []struct {
		k, exp, out int
		se          bool
		act         string
		s           int
	}{
		{3, 16, 16, true, "relu", 2},
		{3, 72, 24, false, "relu", 2},
		{3, 88, 24, false, "relu", 1},
		{5, 96, 40, true, "hswish", 2},
		{5, 240, 40, true, "hswish", 1},
		{5, 240, 40, true, "hswish", 1},
		{5, 120, 48, true, "hswish", 1},
		{5, 144, 48, true, "hswish", 1},
		{5, 288, 96, true, "hswish", 2},
		{5, 576, 96, true, "hswish", 1},
		{5, 576, 96, true, "hswish", 1},
	}
	for bi, st := range cfg {
		name := fmt.Sprintf("block%d", bi)
		exp, cout := ch(st.exp), ch(st.out)
		stride := st.s
		if small && bi == 0 {
			stride = 1
		}
		z := y
		if exp != c {
			z = m.convBNAct(name+".expand", z, c, exp, 1, 1, 1, st.act)
		}
		z = m.convBNAct(name+".dw", z, exp, exp, st.k, stride, exp, st.act)
		if st.se {
			z = m.squeezeExcite(name+".se", z, exp, makeDivisible(float64(exp/4)))
		}
		z = m.convBNAct(name+".project", z, exp, cout, 1, 1, 1, "")
		if stride == 1 && c == cout {
			z = m.b.Op("Add", name+".add", []ir.ValueID{z, y})
		}
		y, c = z, cout
	}
	lastConv := 6 * c
	y = m.convBNAct("last", y, c, lastConv, 1, 1, 1, "hswish")
	hidden := ch(1024)
	y = m.act("hswish", "fc1.act", m.gemm("fc1", m.head(y), lastConv, hidden))
	y = m.classifier("fc2", y, hidden, o.Classes)
	return m.finish(y)
}
