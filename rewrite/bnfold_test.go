package rewrite_test

import (
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// bnCase builds producer -> BatchNormalization and returns the builder,
// the feed and the BN output.
type bnCase struct {
	name  string
	opset int64
	build func(b *ir.Builder) (x ir.ValueID, feed *tensor.Tensor, y ir.ValueID)
}

func bnCases() []bnCase {
	F := tensor.Float32
	bn := func(b *ir.Builder, h ir.ValueID, c int, seed uint64) ir.ValueID {
		return b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", c, seed)...), ir.FloatAttr("epsilon", 1e-3))
	}
	return []bnCase{
		{"conv bias", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 3, 7, 6)
			h := b.Op("Conv", "conv", ids{x, b.Param("w", f32(1, 5, 3, 3, 3)), b.Param("b", f32(2, 5))},
				ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("strides", 2, 1))
			return x, f32(3, 2, 3, 7, 6), bn(b, h, 5, 10)
		}},
		{"conv no bias", 9, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 2, 5, 5)
			h := b.Op("Conv", "conv", ids{x, b.Param("w", f32(4, 7, 2, 3, 3))})
			return x, f32(5, 3, 2, 5, 5), bn(b, h, 7, 20)
		}},
		{"conv group", 14, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 4, 6, 6)
			h := b.Op("Conv", "conv", ids{x, b.Param("w", f32(6, 6, 2, 3, 3)), b.Param("b", f32(7, 6))},
				ir.IntAttr("group", 2), ir.IntsAttr("pads", 1, 1, 1, 1))
			return x, f32(8, 2, 4, 6, 6), bn(b, h, 6, 30)
		}},
		{"conv depthwise", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 4, 5, 5)
			h := b.Op("Conv", "conv", ids{x, b.Param("w", f32(9, 4, 1, 3, 3))}, ir.IntAttr("group", 4))
			return x, f32(10, 1, 4, 5, 5), bn(b, h, 4, 40)
		}},
		{"convtranspose", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 3, 4, 5)
			h := b.Op("ConvTranspose", "deconv", ids{x, b.Param("w", f32(11, 3, 5, 3, 3)), b.Param("b", f32(12, 5))},
				ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("output_padding", 1, 0))
			return x, f32(13, 2, 3, 4, 5), bn(b, h, 5, 50)
		}},
		{"convtranspose group", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 4, 3, 3)
			h := b.Op("ConvTranspose", "deconv", ids{x, b.Param("w", f32(14, 4, 3, 2, 2))},
				ir.IntAttr("group", 2), ir.IntsAttr("strides", 2, 2))
			return x, f32(15, 2, 4, 3, 3), bn(b, h, 6, 60)
		}},
		{"gemm transB", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 6)
			h := b.Op("Gemm", "fc", ids{x, b.Param("w", f32(16, 4, 6)), b.Param("c", f32(17, 4))},
				ir.IntAttr("transB", 1), ir.FloatAttr("alpha", 0.5), ir.FloatAttr("beta", 2))
			return x, f32(18, 3, 6), bn(b, h, 4, 70)
		}},
		{"gemm no C", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, 6, -1)
			h := b.Op("Gemm", "fc", ids{x, b.Param("w", f32(19, 6, 5))}, ir.IntAttr("transA", 1))
			return x, f32(20, 6, 3), bn(b, h, 5, 80)
		}},
		{"gemm scalar C", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 6)
			h := b.Op("Gemm", "fc", ids{x, b.Param("w", f32(21, 6, 5)), b.Param("c", f32(22, 1))}, ir.FloatAttr("beta", -1))
			return x, f32(23, 4, 6), bn(b, h, 5, 90)
		}},
		{"gemm row C", 13, func(b *ir.Builder) (ir.ValueID, *tensor.Tensor, ir.ValueID) {
			x := b.Input("x", F, -1, 6)
			h := b.Op("Gemm", "fc", ids{x, b.Param("w", f32(24, 6, 5)), b.Param("c", f32(25, 1, 5))})
			return x, f32(26, 4, 6), bn(b, h, 5, 100)
		}},
	}
}

// TestFoldBatchNorm folds each pattern and compares reference-loop outputs
// of the unfolded and folded graphs (relative error <= 1e-5).
func TestFoldBatchNorm(t *testing.T) {
	for _, tc := range bnCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder("bn", tc.opset)
			_, feed, y := tc.build(b)
			b.Output(y)
			g := b.G
			before := g.String()
			w0 := g.Values[g.Nodes[0].Inputs[1]].Const.Clone()
			f, err := rewrite.FoldBatchNorm(g)
			if err != nil {
				t.Fatal(err)
			}
			if g.String() != before {
				t.Fatal("input graph changed")
			}
			if relErr(g.Values[g.Nodes[0].Inputs[1]].Const, w0) != 0 {
				t.Fatal("old weight tensor written in place")
			}
			if err := f.Verify(); err != nil {
				t.Fatal(err)
			}
			if len(f.Nodes) != 1 || f.Nodes[0].Outputs[0] != y {
				t.Fatalf("want one node writing the BN output %d:\n%s", y, f)
			}
			p := &f.Nodes[0]
			nw, nb := &f.Values[p.Inputs[1]], &f.Values[p.Inputs[2]]
			if !nw.Trainable || !nb.Trainable || nw.Const == nil || nb.Const == nil {
				t.Errorf("new weight/bias trainable %v/%v", nw.Trainable, nb.Trainable)
			}
			if p.Op == "Gemm" && p.Attrs.Float("beta", 0) != 1 {
				t.Errorf("Gemm beta %v, want 1", p.Attrs.Float("beta", 0))
			}
			want, err := refRun(g, feed)
			if err != nil {
				t.Fatal(err)
			}
			got, err := refRun(f, feed)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got[0], want[0]); e > 1e-5 {
				t.Errorf("relative error %g", e)
			}
		})
	}
}

// TestFoldBatchNormNetwork folds the ResNet-like graph: every Conv+BN
// pair folds, reference outputs agree, and IDs of surviving values hold.
func TestFoldBatchNormNetwork(t *testing.T) {
	b, out := resnet(13)
	g := b.G
	f, err := rewrite.FoldBatchNorm(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		if n.Op == "BatchNormalization" {
			t.Errorf("BatchNormalization %s left", n.Name)
		}
	}
	for id := range g.Values {
		if f.Values[id].Name != g.Values[id].Name {
			t.Fatalf("value %d renamed", id)
		}
	}
	if f.Outputs[0] != out {
		t.Fatal("output id changed")
	}
	feed := f32(77, 2, 3, 16, 16)
	want, err := refRun(g, feed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := refRun(f, feed)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(got[0], want[0]); e > 1e-5 {
		t.Errorf("relative error %g", e)
	}
	d, _ := rewrite.RemoveDead(f)
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Values {
		if strings.HasSuffix(v.Name, "_mean") || strings.HasSuffix(v.Name, "_var") {
			t.Errorf("BN statistic %q survived RemoveDead", v.Name)
		}
	}
}

// TestFoldBatchNormSkips lists patterns that must stay unfolded.
func TestFoldBatchNormSkips(t *testing.T) {
	F := tensor.Float32
	conv := func(b *ir.Builder) ir.ValueID {
		x := b.Input("x", F, -1, 2, 4, 4)
		return b.Op("Conv", "conv", ids{x, b.Param("w", f32(1, 3, 2, 1, 1))})
	}
	tests := []struct {
		name  string
		opset int64
		build func(b *ir.Builder)
	}{
		{"conv output also read elsewhere", 13, func(b *ir.Builder) {
			h := conv(b)
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)), b.Op("Relu", "r", ids{h}))
		}},
		{"conv output is a graph output", 13, func(b *ir.Builder) {
			h := conv(b)
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)), h)
		}},
		{"BN mean is a graph input", 13, func(b *ir.Builder) {
			h := conv(b)
			p := bnParams(b, "bn", 3, 1)
			p[2] = b.Input("mean", F, 3)
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, p...)))
		}},
		{"overridable weight", 13, func(b *ir.Builder) {
			x := b.Input("x", F, -1, 2, 4, 4)
			w := b.Input("w", F, 3, 2, 1, 1)
			b.G.Values[w].Const = f32(1, 3, 2, 1, 1)
			h := b.Op("Conv", "conv", ids{x, w})
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)))
		}},
		{"training mode", 14, func(b *ir.Builder) {
			h := conv(b)
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...), ir.IntAttr("training_mode", 1)))
		}},
		{"BN statistics outputs", 9, func(b *ir.Builder) {
			h := conv(b)
			b.Output(b.OpN("BatchNormalization", "bn", 3, append(ids{h}, bnParams(b, "bn", 3, 1)...))[0])
		}},
		{"channel mismatch", 13, func(b *ir.Builder) {
			h := conv(b)
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 4, 1)...)))
		}},
		{"gemm C per row", 13, func(b *ir.Builder) {
			x := b.Input("x", F, 2, 3)
			h := b.Op("Gemm", "fc", ids{x, b.Param("w", f32(1, 3, 4)), b.Param("c", f32(2, 2, 4))})
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 4, 1)...)))
		}},
		{"int weight", 13, func(b *ir.Builder) {
			x := b.Input("x", tensor.Int32, 2, 3)
			w := b.Const("w", &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{3, 4}, Data: make([]int32, 12)})
			h := b.Op("Gemm", "fc", ids{x, w})
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 4, 1)...)))
		}},
		{"relu in between", 13, func(b *ir.Builder) {
			h := b.Op("Relu", "r", ids{conv(b)})
			b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder("skip", tc.opset)
			tc.build(b)
			f, err := rewrite.FoldBatchNorm(b.G)
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != b.G.String() {
				t.Errorf("graph changed:\n%s", f)
			}
		})
	}
}

// TestFoldBatchNormTrainable checks the Trainable rule: the weight's flag
// for w', the old bias's flag for b' (the weight's without a bias).
func TestFoldBatchNormTrainable(t *testing.T) {
	F := tensor.Float32
	for _, hasBias := range []bool{false, true} {
		b := ir.NewBuilder("t", 13)
		x := b.Input("x", F, -1, 2, 4, 4)
		in := ids{x, b.Const("w", f32(1, 3, 2, 1, 1))}
		if hasBias {
			in = append(in, b.Param("b", f32(2, 3)))
		}
		h := b.Op("Conv", "conv", in)
		b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)))
		f, err := rewrite.FoldBatchNorm(b.G)
		if err != nil {
			t.Fatal(err)
		}
		c := f.Nodes[0]
		if f.Values[c.Inputs[1]].Trainable {
			t.Errorf("bias %v: w' trainable although w was not", hasBias)
		}
		if f.Values[c.Inputs[2]].Trainable != hasBias {
			t.Errorf("bias %v: b' trainable %v", hasBias, f.Values[c.Inputs[2]].Trainable)
		}
	}
}

// TestFoldBatchNormFloat16 folds a float16 Conv and keeps the dtype.
func TestFoldBatchNormFloat16(t *testing.T) {
	b := ir.NewBuilder("t", 13)
	x := b.Input("x", tensor.Float16, 1, 2, 3, 3)
	w := f32(1, 3, 2, 1, 1)
	hw := &tensor.Tensor{DType: tensor.Float16, Shape: w.Shape, Data: make([]uint16, w.Len())}
	for i, v := range w.F32() {
		hw.Data.([]uint16)[i] = tensor.Float32ToHalf(v)
	}
	h := b.Op("Conv", "conv", ids{x, b.Param("w", hw)})
	b.Output(b.Op("BatchNormalization", "bn", append(ids{h}, bnParams(b, "bn", 3, 1)...)))
	f, err := rewrite.FoldBatchNorm(b.G)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Nodes) != 1 {
		t.Fatalf("not folded:\n%s", f)
	}
	for _, in := range f.Nodes[0].Inputs[1:] {
		if dt := f.Values[in].Const.DType; dt != tensor.Float16 {
			t.Errorf("folded constant dtype %v, want float16", dt)
		}
	}
}
