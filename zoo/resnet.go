package zoo

import (
	"fmt"

	"github.com/goslim/goslim/ir"
)

// ResNet builds the CIFAR-style ResNet of the given depth (6k+2: 8, 14,
// 20, 32, 44, 56, 110) for N×C×H×W input (default 3x32x32): a 3x3 stem
// conv with 16 channels, three stages of k basic blocks with 16, 32 and 64
// channels (the first block of stages 2 and 3 has stride 2), then
// GlobalAveragePool, Flatten and a Gemm classifier.
//
// A basic block is conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then
// ReLU. Where the shape changes the shortcut is a 1x1 conv with BN
// (He et al.'s option B); otherwise it is the identity. Convolutions have
// no bias (BatchNorm follows each one) and are He-normal initialized; the
// classifier is Xavier-uniform.
func ResNet(depth int, o Options) (*ir.Graph, error) {
	if depth < 8 || (depth-2)%6 != 0 || depth > 1202 {
		return nil, fmt.Errorf("zoo: resnet%d: depth must be 6k+2 with k >= 1 (8, 14, 20, 32, ...)", depth)
	}
	o.defaults(3, 32, 32)
	if o.InH < 4 || o.InW < 4 {
		return nil, fmt.Errorf("zoo: resnet%d: input %dx%d is too small", depth, o.InH, o.InW)
	}
	blocks := (depth - 2) / 6
	in := newInitr(fmt.Sprintf("resnet%d", depth), o, 0x4e5e7+uint64(depth))
	x := in.input(o)
	c := o.scale(16)
	y := in.relu("stem.relu", in.convBN("stem.conv", x, o.InC, c, 3, 1, 1))
	for s, base := range []int{16, 32, 64} {
		cout := o.scale(base)
		for bi := range blocks {
			stride := 1
			if s > 0 && bi == 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", s+1, bi)
			y = in.basicBlock(name, y, c, cout, stride)
			c = cout
		}
	}
	y = in.b.Op("GlobalAveragePool", "pool", []ir.ValueID{y})
	y = in.b.Op("Flatten", "flatten", []ir.ValueID{y}, ir.IntAttr("axis", 1))
	y = in.classifier("fc", y, c, o.Classes)
	return in.finish(y)
}

// basicBlock adds one residual basic block.
func (in *initr) basicBlock(name string, x ir.ValueID, cin, cout, stride int) ir.ValueID {
	y := in.relu(name+".relu1", in.convBN(name+".conv1", x, cin, cout, 3, stride, 1))
	y = in.convBN(name+".conv2", y, cout, cout, 3, 1, 1)
	short := x
	if stride != 1 || cin != cout {
		short = in.convBN(name+".shortcut", x, cin, cout, 1, stride, 1)
	}
	y = in.b.Op("Add", name+".add", []ir.ValueID{y, short})
	return in.relu(name+".relu2", y)
}
