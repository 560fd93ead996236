package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// tierCase is one node of the vectorized families, run at every tier.
type tierCase struct {
	op     string
	domain string
	opset  int64
	attrs  ir.Attrs
	in     []*tensor.Tensor
	consts []bool
	nOut   int
	// ulps is the allowed difference between tiers (0: identical).
	ulps float64
	// tol, when set, is an absolute tolerance relative to the largest
	// output magnitude instead (reductions in a different order).
	tol float64
}

// tierTensor returns a float32 tensor of random values in [-s, s).
func tierTensor(r *rand.Rand, s float32, shape ...int) *tensor.Tensor {
	t := tensor.FromFloat32(tensor.Shape(shape), make([]float32, tensor.Shape(shape).Size()))
	for i := range t.F32() {
		t.F32()[i] = (2*r.Float32() - 1) * s
	}
	return t
}

func tierCases(r *rand.Rand) []tierCase {
	x := func(shape ...int) *tensor.Tensor { return tierTensor(r, 4, shape...) }
	scalar := func(v float32) *tensor.Tensor { return tensor.FromFloat32(tensor.Shape{}, []float32{v}) }
	var cs []tierCase
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		cs = append(cs,
			tierCase{op: op, opset: 14, in: []*tensor.Tensor{x(2, 3, 5, 7), x(2, 3, 5, 7)}},
			tierCase{op: op, opset: 14, in: []*tensor.Tensor{x(2, 3, 5, 7), x(3, 1, 1)}},
			tierCase{op: op, opset: 14, in: []*tensor.Tensor{x(1), x(4, 33)}},
			tierCase{op: op, opset: 14, in: []*tensor.Tensor{x(4, 1, 9), x(1, 6, 1)}},
		)
		for _, act := range []string{"Relu", "Sigmoid", "HardSwish"} {
			cs = append(cs, tierCase{op: "FusedBinary", domain: "goslim", opset: 1, ulps: 1,
				attrs: ir.Attrs{ir.StringAttr("op", op), ir.StringAttr("activation", act)},
				in:    []*tensor.Tensor{x(2, 37), x(37)}})
		}
	}
	for _, op := range []string{"Relu", "HardSwish", "Exp", "Erf", "Sigmoid", "Tanh"} {
		u := 0.0
		switch op {
		case "Exp", "Erf", "Sigmoid", "Tanh":
			u = 3 // the generic tier rounds float64 once; assembly within 2 ulp
		}
		cs = append(cs, tierCase{op: op, opset: 14, in: []*tensor.Tensor{x(3, 67)}, ulps: u})
	}
	cs = append(cs,
		tierCase{op: "LeakyRelu", opset: 16, attrs: ir.Attrs{ir.FloatAttr("alpha", 0.3)}, in: []*tensor.Tensor{x(131)}},
		tierCase{op: "HardSigmoid", opset: 6, attrs: ir.Attrs{ir.FloatAttr("alpha", 0.3), ir.FloatAttr("beta", 0.4)}, in: []*tensor.Tensor{x(131)}},
		tierCase{op: "Clip", opset: 13, in: []*tensor.Tensor{x(5, 29), scalar(-1), scalar(2)}},
		tierCase{op: "Clip", opset: 13, in: []*tensor.Tensor{x(5, 29), nil, scalar(2)}},
		tierCase{op: "Clip", opset: 9, attrs: ir.Attrs{ir.FloatAttr("min", -0.5)}, in: []*tensor.Tensor{x(5, 29)}},
		tierCase{op: "Softmax", opset: 13, in: []*tensor.Tensor{x(3, 100)}, ulps: 8},
		tierCase{op: "Softmax", opset: 13, attrs: ir.Attrs{ir.IntAttr("axis", 1)}, in: []*tensor.Tensor{x(2, 5, 19)}, ulps: 8},
		tierCase{op: "LogSoftmax", opset: 11, in: []*tensor.Tensor{x(3, 4, 10)}, tol: 1e-6},
		tierCase{op: "LogSoftmax", opset: 13, attrs: ir.Attrs{ir.IntAttr("axis", 0)}, in: []*tensor.Tensor{x(7, 21)}, tol: 1e-6},
		tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)},
			in: []*tensor.Tensor{x(2, 3, 24, 24)}},
		tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1)},
			in: []*tensor.Tensor{x(1, 4, 19, 17)}},
		tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 3), ir.IntsAttr("strides", 1)},
			in: []*tensor.Tensor{x(1, 4, 40)}},
		tierCase{op: "AveragePool", opset: 11, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("pads", 1, 1, 1, 1),
			ir.IntAttr("count_include_pad", 1)}, in: []*tensor.Tensor{x(2, 3, 9, 11)}, tol: 1e-6},
		tierCase{op: "AveragePool", opset: 11, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)},
			in: []*tensor.Tensor{x(2, 3, 8, 8)}, tol: 1e-6},
		tierCase{op: "GlobalAveragePool", opset: 13, in: []*tensor.Tensor{x(2, 5, 7, 9)}, tol: 1e-6},
		tierCase{op: "GlobalMaxPool", opset: 13, in: []*tensor.Tensor{x(2, 5, 7, 9)}},
		tierCase{op: "BatchNormalization", opset: 15, in: []*tensor.Tensor{x(2, 4, 5, 5), x(4), x(4), x(4), tierTensor(r, 1, 4)},
			consts: []bool{false, true, true, true, true}},
		tierCase{op: "LayerNormalization", opset: 17, nOut: 3, in: []*tensor.Tensor{x(3, 4, 50), x(50), x(50)}, tol: 2e-6},
		tierCase{op: "LayerNormalization", opset: 17, attrs: ir.Attrs{ir.IntAttr("axis", 1)}, in: []*tensor.Tensor{x(3, 4, 5), x(4, 5)}, tol: 2e-6},
	)
	for i := range cs {
		if cs[i].nOut == 0 {
			cs[i].nOut = 1
		}
	}
	for i := range cs {
		// BatchNormalization variances must be positive.
		if cs[i].op == "BatchNormalization" {
			v := cs[i].in[4].F32()
			for j := range v {
				v[j] = float32(math.Abs(float64(v[j]))) + 0.1
			}
		}
	}
	return cs
}

// tierRun builds c at tier through the table and runs it.
func tierRun(t *testing.T, c tierCase, tier kernel.Tier, threads int) ([]*tensor.Tensor, string) {
	t.Helper()
	node := &ir.Node{Op: c.op, Domain: c.domain, Name: "tier", Attrs: c.attrs, Inputs: make([]ir.ValueID, len(c.in)), Outputs: make([]ir.ValueID, c.nOut)}
	info := &kernel.Info{Node: node, Opset: c.opset, Tier: tier, Inputs: make([]ir.Type, len(c.in)), Consts: make([]*tensor.Tensor, len(c.in))}
	for i, x := range c.in {
		if x == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if i < len(c.consts) && c.consts[i] {
			info.Consts[i] = x
		}
	}
	for i := range node.Outputs {
		node.Outputs[i] = ir.ValueID(len(c.in) + i)
	}
	k, e, err := NewTable().Lookup(info)
	if err != nil {
		t.Fatalf("%s: %v", c.op, err)
	}
	out, err := kernel.RunNode(k, kernel.NewCtx(node, threads, nil), c.nOut, c.in)
	if err != nil {
		t.Fatalf("%s at %v: %v", c.op, tier, err)
	}
	return out, e.Name
}

// tierULPs is the distance between a and b in float32 spacings at b.
func tierULPs(a, b float32) float64 {
	if a == b || (a != a && b != b) {
		return 0
	}
	if a != a || b != b || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) {
		return math.Inf(1)
	}
	s := math.Abs(float64(b))
	sp := float64(math.Nextafter32(float32(s), float32(math.Inf(1)))) - s
	return math.Abs(float64(a)-float64(b)) / max(sp, math.SmallestNonzeroFloat32)
}

// TestVecTiers runs every vectorized op at each available tier (the
// GOSLIM_KERNELS override as the session applies it) and with two
// threads, and compares with the generic tier.
func TestVecTiers(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range tierCases(r) {
		want, name := tierRun(t, c, kernel.TierGeneric, 1)
		if name != "generic" {
			t.Fatalf("%s at the generic tier ran %q", c.op, name)
		}
		for _, tier := range []kernel.Tier{kernel.TierGeneric, kernel.TierAVX2, kernel.TierAVX512, kernel.TierVNNI} {
			if !tier.Available() {
				continue
			}
			for _, threads := range []int{1, 2} {
				got, name := tierRun(t, c, tier, threads)
				if tier > kernel.TierGeneric && !strings.HasSuffix(name, ".vec") {
					t.Errorf("%s at %v ran entry %q, want an arch entry", c.op, tier, name)
				}
				label := fmt.Sprintf("%s%v at %v threads %d", c.op, c.attrs, tier, threads)
				for o := range want {
					if want[o] == nil {
						continue
					}
					wf, gf := tierF32(want[o]), tierF32(got[o])
					scale := 0.0
					for _, v := range wf {
						scale = max(scale, math.Abs(float64(v)))
					}
					for i := range wf {
						bad := false
						if c.tol > 0 {
							bad = !(math.Abs(float64(gf[i]-wf[i])) <= c.tol*max(scale, 1)) && !(gf[i] != gf[i] && wf[i] != wf[i])
						} else {
							bad = tierULPs(gf[i], wf[i]) > c.ulps
						}
						if bad {
							t.Fatalf("%s: output %d [%d] = %v, generic %v", label, o, i, gf[i], wf[i])
						}
					}
				}
			}
		}
	}
}

// tierF32 returns float32 or float64 data as float32.
func tierF32(t *tensor.Tensor) []float32 {
	if t.DType == tensor.Float64 {
		v := make([]float32, t.Len())
		for i, x := range t.F64() {
			v[i] = float32(x)
		}
		return v
	}
	return t.F32()
}

// tierSlots is a kernel.SlotAllocator that keeps each slot's storage, as
// the session's arena does in its steady state.
type tierSlots struct{}

func (tierSlots) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	t, err := tensor.New(dt, shape)
	return t, -1, err
}

func (tierSlots) AllocSlot(t *tensor.Tensor, dt tensor.DType, n, hint int) (int, error) {
	if t.Data != nil && tensor.SliceLen(t.Data) == n {
		if _, ok := t.Data.([]float32); ok == (dt == tensor.Float32) {
			return 0, nil
		}
	}
	d, err := tensor.MakeSlice(dt, n)
	t.Data = d
	return 0, err
}

// TestVecKernelsDoNotAllocate checks that every vectorized float32 kernel
// allocates nothing per call once warm, at one and two threads, with the
// header-reusing allocator of a session.
func TestVecKernelsDoNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	pool := kernel.NewPool(2)
	defer pool.Close()
	for _, c := range tierCases(r) {
		for _, threads := range []int{1, 2} {
			// Large enough for the parallel paths at two threads.
			if threads == 2 && (c.op == "Add" || c.op == "Relu") {
				c.in = append([]*tensor.Tensor(nil), c.in...)
				c.in[0] = tierTensor(r, 1, 2, 300, 300)
				if len(c.in) > 1 {
					c.in[1] = tierTensor(r, 1, 300)
				}
			}
			node := &ir.Node{Op: c.op, Domain: c.domain, Name: "alloc", Attrs: c.attrs, Inputs: make([]ir.ValueID, len(c.in)), Outputs: make([]ir.ValueID, c.nOut)}
			info := &kernel.Info{Node: node, Opset: c.opset, Tier: kernel.Best(), Inputs: make([]ir.Type, len(c.in)), Consts: make([]*tensor.Tensor, len(c.in))}
			for i, x := range c.in {
				if x == nil {
					node.Inputs[i] = ir.NoValue
					continue
				}
				info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
				if i < len(c.consts) && c.consts[i] {
					info.Consts[i] = x
				}
			}
			k, _, err := NewTable().Lookup(info)
			if err != nil {
				t.Fatal(err)
			}
			ctx := kernel.NewCtx(node, threads, tierSlots{})
			ctx.Pool = pool
			out := make([]*tensor.Tensor, c.nOut)
			run := func() {
				ctx.Begin(out)
				if err := k.Run(ctx, c.in, out); err != nil {
					t.Fatal(err)
				}
			}
			run()
			if n := testing.AllocsPerRun(20, run); n != 0 {
				t.Errorf("%s%v threads %d: %v allocations per call", c.op, c.attrs, threads, n)
			}
		}
	}
}

// benchNode runs a node built at the best tier repeatedly with a
// session-like allocator, reporting elements per second.
func benchNode(b *testing.B, c tierCase, threads int) {
	node := &ir.Node{Op: c.op, Domain: c.domain, Name: "bench", Attrs: c.attrs, Inputs: make([]ir.ValueID, len(c.in)), Outputs: make([]ir.ValueID, max(c.nOut, 1))}
	info := &kernel.Info{Node: node, Opset: c.opset, Tier: kernel.Best(), Inputs: make([]ir.Type, len(c.in)), Consts: make([]*tensor.Tensor, len(c.in))}
	for i, x := range c.in {
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if i < len(c.consts) && c.consts[i] {
			info.Consts[i] = x
		}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		b.Fatal(err)
	}
	ctx := kernel.NewCtx(node, threads, tierSlots{})
	ctx.Pool = kernel.NewPool(threads)
	defer ctx.Pool.Close()
	out := make([]*tensor.Tensor, len(node.Outputs))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Begin(out)
		if err := k.Run(ctx, c.in, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.in[0].Len())*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// BenchmarkVecOps times the vectorized kernels on the shapes of the
// reference models (LeNet-5, ResNet-8, MobileNetV2) at one thread.
func BenchmarkVecOps(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := func(shape ...int) *tensor.Tensor { return tierTensor(r, 2, shape...) }
	cases := []struct {
		name string
		c    tierCase
	}{
		{"MaxPool2x2/lenet1", tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}, in: []*tensor.Tensor{x(1, 6, 24, 24)}}},
		{"MaxPool2x2/lenet2", tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}, in: []*tensor.Tensor{x(1, 16, 8, 8)}}},
		{"MaxPool2x2/lenet1-b32", tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}, in: []*tensor.Tensor{x(32, 6, 24, 24)}}},
		{"MaxPool3x3s2/56", tierCase{op: "MaxPool", opset: 12, attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1)}, in: []*tensor.Tensor{x(1, 64, 112, 112)}}},
		{"GlobalAveragePool/mbv2", tierCase{op: "GlobalAveragePool", opset: 13, in: []*tensor.Tensor{x(1, 1280, 3, 3)}}},
		{"GlobalAveragePool/resnet8", tierCase{op: "GlobalAveragePool", opset: 13, in: []*tensor.Tensor{x(1, 64, 8, 8)}}},
		{"Add/resnet8", tierCase{op: "Add", opset: 14, in: []*tensor.Tensor{x(1, 16, 32, 32), x(1, 16, 32, 32)}}},
		{"FusedAddRelu/resnet8", tierCase{op: "FusedBinary", domain: "goslim", opset: 1, attrs: ir.Attrs{ir.StringAttr("op", "Add"), ir.StringAttr("activation", "Relu")}, in: []*tensor.Tensor{x(1, 16, 32, 32), x(1, 16, 32, 32)}}},
		{"Relu/resnet8", tierCase{op: "Relu", opset: 14, in: []*tensor.Tensor{x(1, 16, 32, 32)}}},
		{"Clip/mbv2", tierCase{op: "Clip", opset: 13, in: []*tensor.Tensor{x(1, 48, 48, 48), tensor.FromFloat32(tensor.Shape{}, []float32{0}), tensor.FromFloat32(tensor.Shape{}, []float32{6})}}},
		{"Softmax/1000", tierCase{op: "Softmax", opset: 13, in: []*tensor.Tensor{x(1, 1000)}}},
		{"LayerNorm/768", tierCase{op: "LayerNormalization", opset: 17, in: []*tensor.Tensor{x(128, 768), x(768), x(768)}, consts: []bool{false, true, true}}},
		{"BatchNorm/resnet8", tierCase{op: "BatchNormalization", opset: 15, in: []*tensor.Tensor{x(1, 16, 32, 32), x(16), x(16), x(16), tierTensor(r, 1, 16)}, consts: []bool{false, true, true, true, true}}},
	}
	for _, c := range cases {
		if c.c.op == "BatchNormalization" {
			for i, v := range c.c.in[4].F32() {
				c.c.in[4].F32()[i] = float32(math.Abs(float64(v))) + 0.1
			}
		}
		b.Run(c.name, func(b *testing.B) { benchNode(b, c.c, 1) })
	}
}

// TestMaxPool2x2Fast checks the whole-plane 2x2/stride-2 path at every
// tier against a direct loop, for even and odd sizes (the odd last row and
// column are dropped), ceil mode (partial windows take the general path)
// and two threads.
func TestMaxPool2x2Fast(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, shape := range [][]int{{1, 1, 2, 2}, {2, 3, 8, 8}, {1, 2, 7, 9}, {3, 2, 5, 4}, {1, 4, 24, 24}, {2, 16, 9, 33}, {8, 16, 64, 65}, {8, 16, 65, 64}} {
		for _, ceil := range []int64{0, 1} {
			x := tierTensor(r, 3, shape...)
			n, c, h, w := shape[0], shape[1], shape[2], shape[3]
			oh, ow := h/2, w/2
			if ceil == 1 {
				oh, ow = (h+1)/2, (w+1)/2
			}
			want := make([]float32, n*c*oh*ow)
			for p := 0; p < n*c; p++ {
				for i := 0; i < oh; i++ {
					for j := 0; j < ow; j++ {
						m := float32(-math.MaxFloat32)
						for di := 0; di < 2; di++ {
							for dj := 0; dj < 2; dj++ {
								if y, z := 2*i+di, 2*j+dj; y < h && z < w {
									m = max(m, x.F32()[(p*h+y)*w+z])
								}
							}
						}
						want[(p*oh+i)*ow+j] = m
					}
				}
			}
			tc := tierCase{op: "MaxPool", opset: 12, nOut: 1, in: []*tensor.Tensor{x},
				attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2), ir.IntAttr("ceil_mode", ceil)}}
			for _, tier := range []kernel.Tier{kernel.TierGeneric, kernel.TierAVX2, kernel.TierAVX512} {
				if !tier.Available() {
					continue
				}
				for _, threads := range []int{1, 2} {
					out, _ := tierRun(t, tc, tier, threads)
					for i, v := range out[0].F32() {
						if v != want[i] {
							t.Fatalf("%v %v ceil %d threads %d: [%d] = %v, want %v", shape, tier, ceil, threads, i, v, want[i])
						}
					}
				}
			}
		}
	}
}
