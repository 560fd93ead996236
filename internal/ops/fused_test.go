package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// fusedRun builds (domain, op) from the ops table at the given tier and
// runs it once; input 1 is constant when constW.
func fusedRun(t *testing.T, domain, op string, opset int64, attrs ir.Attrs, tier kernel.Tier, threads int, constW bool, in ...*tensor.Tensor) (*tensor.Tensor, string) {
	t.Helper()
	node := &ir.Node{Op: op, Domain: domain, Name: "n", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, 1)}
	info := &kernel.Info{Node: node, Opset: opset, Tier: tier, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, x := range in {
		if x == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if constW && i >= 1 {
			info.Consts[i] = x
		}
	}
	k, e, err := NewTable().Lookup(info)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	out, err := kernel.RunNode(k, kernel.NewCtx(node, threads, nil), 1, in)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out[0], e.Name
}

// fusedActCase is an activation and the standalone op (with its inputs
// and attributes) it must equal.
type fusedActCase struct {
	attrs ir.Attrs // FusedConv/FusedGemm activation attributes
	op    string   // "" for no activation
	opset int64
	opAt  ir.Attrs
	extra []*tensor.Tensor // extra inputs of the op (Clip bounds)
}

func fusedActCases() []fusedActCase {
	scalar := func(v float32) *tensor.Tensor {
		return &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{}, Data: []float32{v}}
	}
	return []fusedActCase{
		{attrs: ir.Attrs{}},
		{attrs: ir.Attrs{ir.StringAttr("activation", "Relu")}, op: "Relu", opset: 14},
		{attrs: ir.Attrs{ir.StringAttr("activation", "Clip"), ir.FloatAttr("clip_min", 0), ir.FloatAttr("clip_max", 6)},
			op: "Clip", opset: 13, extra: []*tensor.Tensor{scalar(0), scalar(6)}},
		{attrs: ir.Attrs{ir.StringAttr("activation", "Clip"), ir.FloatAttr("clip_min", -0.75), ir.FloatAttr("clip_max", 1.5)},
			op: "Clip", opset: 6, opAt: ir.Attrs{ir.FloatAttr("min", -0.75), ir.FloatAttr("max", 1.5)}},
		{attrs: ir.Attrs{ir.StringAttr("activation", "HardSwish")}, op: "HardSwish", opset: 14},
		{attrs: ir.Attrs{ir.StringAttr("activation", "LeakyRelu"), ir.FloatAttr("activation_alpha", 0.1)},
			op: "LeakyRelu", opset: 6, opAt: ir.Attrs{ir.FloatAttr("alpha", 0.1)}},
		{attrs: ir.Attrs{ir.StringAttr("activation", "Sigmoid")}, op: "Sigmoid", opset: 13},
	}
}

// applyOp runs the standalone activation of ac on y at the given tier (or
// returns y): a session runs the fused op and the activation op at one
// tier.
func (ac fusedActCase) applyOp(t *testing.T, y *tensor.Tensor, tier kernel.Tier) *tensor.Tensor {
	if ac.op == "" {
		return y
	}
	out, _ := fusedRun(t, "", ac.op, ac.opset, ac.opAt, tier, 1, false, append([]*tensor.Tensor{y}, ac.extra...)...)
	return out
}

// fusedSameBits reports the first index where a and b differ as values
// (NaNs compare equal), or -1.
func fusedSameBits(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i]))) {
			return i
		}
	}
	return -1
}

func fusedRandF32(r *rand.Rand, shape tensor.Shape, scale float64) *tensor.Tensor {
	v := make([]float32, shape.Size())
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return &tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: v}
}

// fusedTiers lists the tiers available here.
func fusedTiers() []kernel.Tier {
	var ts []kernel.Tier
	for t := kernel.TierGeneric; t <= kernel.TierAVX512; t++ {
		if t.Available() {
			ts = append(ts, t)
		}
	}
	return ts
}

// TestFusedConvEqualsConvThenAct checks that goslim.FusedConv computes
// exactly (bit for bit) what Conv followed by the activation op computes,
// on every tier and kernel path (im2col, pointwise, depthwise, direct).
func TestFusedConvEqualsConvThenAct(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	cfgs := []convCfg{
		{n: 1, cg: 3, mg: 16, group: 1, in: []int{11, 13}, k: []int{3, 3}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}, bias: true},
		{n: 2, cg: 8, mg: 12, group: 1, in: []int{7, 9}, k: []int{1, 1}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{0, 0}, padE: []int{0, 0}, bias: true},
		{n: 2, cg: 1, mg: 1, group: 24, in: []int{10, 9}, k: []int{3, 3}, stride: []int{2, 2}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}, bias: true},
		{n: 1, cg: 1, mg: 1, group: 16, in: []int{12, 12}, k: []int{3, 3}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}},
		{n: 2, cg: 24, mg: 40, group: 1, in: []int{3, 3}, k: []int{1, 1}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{0, 0}, padE: []int{0, 0}, bias: true},
		{n: 1, cg: 8, mg: 16, group: 1, in: []int{16, 16}, k: []int{3, 3}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}, bias: true},
		{n: 1, cg: 4, mg: 6, group: 2, in: []int{20}, k: []int{5}, stride: []int{2}, dil: []int{1}, padB: []int{2}, padE: []int{1}, bias: true},
		{n: 1, cg: 2, mg: 3, group: 1, in: []int{3, 3, 3, 3}, k: []int{2, 1, 2, 1}, stride: []int{1, 1, 1, 1}, dil: []int{1, 1, 1, 1}, padB: []int{0, 0, 0, 0}, padE: []int{0, 0, 0, 0}, bias: true},
	}
	for _, c := range cfgs {
		C, M := c.cg*c.group, c.mg*c.group
		x := fusedRandF32(r, nnSpatialShape(c.n, C, c.in), 1)
		w := fusedRandF32(r, nnSpatialShape(M, c.cg, c.k), 0.5)
		in := []*tensor.Tensor{x, w}
		if c.bias {
			in = append(in, fusedRandF32(r, tensor.Shape{M}, 1))
		}
		// A NaN, an infinity and signed zeros in the input.
		xf := x.F32()
		xf[0], xf[len(xf)/2], xf[len(xf)-1] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Copysign(0, -1))
		for _, tier := range fusedTiers() {
			for _, ac := range fusedActCases() {
				for _, constW := range []bool{false, true} {
					name := fmt.Sprintf("%v tier=%v act=%s const=%v", c, tier, ac.op, constW)
					y, _ := fusedRun(t, "", "Conv", 11, c.attrs(), tier, 1, constW, in...)
					want := ac.applyOp(t, y, tier)
					got, kname := fusedRun(t, "goslim", "FusedConv", 1, append(c.attrs(), ac.attrs...), tier, 1+r.IntN(2), constW, in...)
					if !got.Shape.Equal(want.Shape) {
						t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
					}
					if i := fusedSameBits(got.F32(), want.F32()); i >= 0 {
						t.Fatalf("%s (%s): element %d = %v, want %v", name, kname, i, got.F32()[i], want.F32()[i])
					}
				}
			}
		}
	}
}

// TestFusedGemmEqualsGemmThenAct checks goslim.FusedGemm against Gemm
// followed by the activation op, bit for bit.
func TestFusedGemmEqualsGemmThenAct(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	type gcase struct {
		m, n, k        int
		transA, transB bool
		alpha, beta    float32
		cShape         tensor.Shape // nil: no C
	}
	cases := []gcase{
		{m: 1, n: 10, k: 84, transB: true, alpha: 1, beta: 1, cShape: tensor.Shape{10}},
		{m: 7, n: 33, k: 19, alpha: 1, beta: 1, cShape: tensor.Shape{33}},
		{m: 32, n: 120, k: 256, transB: true, alpha: 1, beta: 1, cShape: tensor.Shape{120}},
		{m: 13, n: 17, k: 5, transA: true, alpha: 0.5, beta: 2, cShape: tensor.Shape{13, 17}},
		{m: 40, n: 70, k: 3, alpha: 1.5, beta: 0, cShape: tensor.Shape{1, 70}},
		{m: 9, n: 64, k: 300},
	}
	for _, g := range cases {
		as := tensor.Shape{g.m, g.k}
		if g.transA {
			as = tensor.Shape{g.k, g.m}
		}
		bs := tensor.Shape{g.k, g.n}
		if g.transB {
			bs = tensor.Shape{g.n, g.k}
		}
		in := []*tensor.Tensor{fusedRandF32(r, as, 1), fusedRandF32(r, bs, 0.3)}
		if g.cShape != nil {
			in = append(in, fusedRandF32(r, g.cShape, 1))
		}
		attrs := ir.Attrs{ir.IntAttr("transA", int64(b2i(g.transA))), ir.IntAttr("transB", int64(b2i(g.transB))),
			ir.FloatAttr("alpha", g.alpha), ir.FloatAttr("beta", g.beta)}
		for _, tier := range fusedTiers() {
			for _, ac := range fusedActCases() {
				for _, constW := range []bool{false, true} {
					name := fmt.Sprintf("%+v tier=%v act=%s const=%v", g, tier, ac.op, constW)
					y, _ := fusedRun(t, "", "Gemm", 13, attrs, tier, 1, constW, in...)
					want := ac.applyOp(t, y, tier)
					got, kname := fusedRun(t, "goslim", "FusedGemm", 1, append(attrs.Clone(), ac.attrs...), tier, 1+r.IntN(2), constW, in...)
					if i := fusedSameBits(got.F32(), want.F32()); i >= 0 {
						t.Fatalf("%s (%s): element %d = %v, want %v", name, kname, i, got.F32()[i], want.F32()[i])
					}
				}
			}
		}
	}
}

func TestFusedBadActivation(t *testing.T) {
	node := &ir.Node{Op: "FusedConv", Domain: "goslim", Name: "n", Attrs: ir.Attrs{ir.StringAttr("activation", "Gelu")},
		Inputs: []ir.ValueID{0, 1}, Outputs: []ir.ValueID{2}}
	info := &kernel.Info{Node: node, Opset: 1, Inputs: make([]ir.Type, 2), Consts: make([]*tensor.Tensor, 2)}
	if _, _, err := NewTable().Lookup(info); err == nil {
		t.Fatal("FusedConv with activation Gelu: no error")
	}
}
