package rewrite_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// opsOf lists the ops of g's nodes in order.
func opsOf(g *ir.Graph) string {
	var s []string
	for _, n := range g.Nodes {
		s = append(s, n.Op)
	}
	return strings.Join(s, " ")
}

// runGraph runs g on feeds with infer.Session. It skips the test when an
// op has no kernel yet (ops are being written in parallel).
func runGraph(t *testing.T, g *ir.Graph, feeds ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		if strings.Contains(err.Error(), "unsupported op") {
			t.Skipf("kernel missing: %v", err)
		}
		t.Fatal(err)
	}
	out, err := s.RunInputs(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFoldConstants(t *testing.T) {
	F := tensor.Float32
	eval := infer.NodeEvaluator(nil)
	b := ir.NewBuilder("fold", 13)
	x := b.Input("x", F, 2, 3, 4)
	k := b.Op("Constant", "k", nil, ir.TensorAttr("value", f32(1, 4)))
	two := b.Op("Constant", "two", nil, ir.FloatAttr("value_float", 2))
	k2 := b.Op("Mul", "k2", ids{k, two})
	k3 := b.Op("Relu", "k3", ids{k2})
	h := b.Op("Add", "add", ids{x, k3})
	// x.view(x.size(0), -1) with a static input: the whole shape chain folds.
	sh := b.Op("Shape", "shape", ids{h})
	n := b.Op("Gather", "gather", ids{sh, b.Const("zero", i64s(0))})
	u := b.Op("Unsqueeze", "unsq", ids{n, b.Const("ax", i64(0))})
	c := b.Op("Concat", "cat", ids{u, b.Const("m1", i64(-1))}, ir.IntAttr("axis", 0))
	out := b.Op("Reshape", "view", ids{h, c})
	b.Output(out)
	// Shape folding reads value types: infer them first (Simplify does).
	g, err := rewrite.InferShapes(b.G)
	if err != nil {
		t.Fatal(err)
	}
	before := g.String()

	f, err := rewrite.FoldConstants(g, eval)
	if err != nil {
		t.Fatal(err)
	}
	if g.String() != before {
		t.Fatal("input graph changed")
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	if got := opsOf(f); got != "Add Reshape" {
		t.Fatalf("nodes left: %q, want \"Add Reshape\"\n%s", got, f)
	}
	if len(f.Values) != len(g.Values) {
		t.Fatalf("value count %d -> %d", len(g.Values), len(f.Values))
	}
	for id := range g.Values {
		if f.Values[id].Name != g.Values[id].Name {
			t.Fatalf("value %d renamed", id)
		}
	}
	cv := f.Values[c].Const
	if cv == nil || cv.DType != tensor.Int64 || cv.Len() != 2 || cv.I64()[0] != 2 || cv.I64()[1] != -1 {
		t.Fatalf("folded shape %v, want [2 -1]", cv)
	}
	if f.Values[c].Type.String() != "int64[2]" {
		t.Errorf("folded value type %v", f.Values[c].Type)
	}
	k3v := f.Values[k3].Const
	for i, v := range f.Values[k].Const.F32() {
		if want := max(2*v, 0); k3v.F32()[i] != want {
			t.Fatalf("k3[%d] = %v, want %v", i, k3v.F32()[i], want)
		}
	}
	feed := f32(5, 2, 3, 4)
	want := runGraph(t, g, feed)
	got := runGraph(t, f, feed)
	if relErr(got[0], want[0]) != 0 {
		t.Error("folded graph computes something else")
	}
}

func TestFoldConstantsKeeps(t *testing.T) {
	F := tensor.Float32
	eval := infer.NodeEvaluator(nil)
	tests := []struct {
		name  string
		opset int64
		build func(b *ir.Builder) ir.ValueID
		left  string
	}{
		{"random", 13, func(b *ir.Builder) ir.ValueID {
			r := b.Op("RandomNormal", "r", nil, ir.IntsAttr("shape", 2))
			return b.Op("Relu", "relu", ids{r})
		}, "RandomNormal Relu"},
		{"random like", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("RandomUniformLike", "r", ids{b.Const("c", f32(1, 3))})
		}, "RandomUniformLike"},
		{"dropout training", 13, func(b *ir.Builder) ir.ValueID {
			tm := b.Const("tm", &tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{}, Data: []bool{true}})
			return b.Op("Dropout", "d", ids{b.Const("c", f32(1, 3)), b.Const("ratio", tensor.FromFloat32(tensor.Shape{}, []float32{0.5})), tm})
		}, "Dropout"},
		{"overridable initializer", 13, func(b *ir.Builder) ir.ValueID {
			c := b.Input("c", F, 3)
			b.G.Values[c].Const = f32(1, 3)
			return b.Op("Relu", "relu", ids{c})
		}, "Relu"},
		{"symbolic shape", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Shape", "s", ids{b.Input("x", F, -1, 3)})
		}, "Shape"},
		{"other domain", 13, func(b *ir.Builder) ir.ValueID {
			v := b.Op("Relu", "relu", ids{b.Const("c", f32(1, 3))})
			b.G.Nodes[0].Domain = "com.example"
			b.G.Opsets["com.example"] = 1
			return v
		}, "Relu"},
		{"eval error", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Add", "add", ids{b.Const("a", f32(1, 3)), b.Const("b", f32(2, 4))})
		}, "Add"},
		{"unsupported op", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("NoSuchOp", "n", ids{b.Const("a", f32(1, 3))})
		}, "NoSuchOp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder("keep", tc.opset)
			b.Output(tc.build(b))
			f, err := rewrite.FoldConstants(b.G, eval)
			if err != nil {
				t.Fatal(err)
			}
			if got := opsOf(f); got != tc.left {
				t.Errorf("nodes left %q, want %q", got, tc.left)
			}
		})
	}
	// Dropout in inference mode folds (to its input).
	b := ir.NewBuilder("drop", 13)
	d := b.OpN("Dropout", "d", 2, ids{b.Const("c", f32(1, 3))})
	b.Output(d[0])
	f, err := rewrite.FoldConstants(b.G, eval)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Nodes) != 0 || f.Values[d[1]].Const == nil || f.Values[d[1]].Const.DType != tensor.Bool {
		t.Errorf("inference Dropout not folded:\n%s", f)
	}
}

// bigEval is a fake evaluator: ConstantOfShape makes zeros of the given
// shape, ReduceSum sums to a scalar; everything else fails.
func bigEval(n *ir.Node, _ int64, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	switch n.Op {
	case "ConstantOfShape":
		dims, _ := in[0].Int64s()
		sh := make(tensor.Shape, len(dims))
		for i, d := range dims {
			sh[i] = int(d)
		}
		t, err := tensor.New(tensor.Float32, sh)
		return []*tensor.Tensor{t}, err
	case "ReduceSum":
		s := float32(0)
		for _, v := range in[0].F32() {
			s += v
		}
		return []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{}, []float32{s})}, nil
	}
	return nil, errors.New("bigEval: unsupported")
}

// TestFoldConstantsSizeCap checks the MaxFoldElements rule: an oversized
// folded value read only by folded nodes disappears; one read by a node
// that stays (or a graph output) keeps its producer.
func TestFoldConstantsSizeCap(t *testing.T) {
	F := tensor.Float32
	big := i64(1024, 1025) // 1024*1025 > 1<<20
	t.Run("consumed by folded", func(t *testing.T) {
		b := ir.NewBuilder("cap", 13)
		z := b.Op("ConstantOfShape", "zeros", ids{b.Const("shape", big)})
		s := b.Op("ReduceSum", "sum", ids{z}, ir.IntAttr("keepdims", 0))
		b.Output(b.Op("Add", "add", ids{b.Input("x", F, 1), s}))
		f, err := rewrite.FoldConstants(b.G, bigEval)
		if err != nil {
			t.Fatal(err)
		}
		if got := opsOf(f); got != "Add" {
			t.Fatalf("nodes %q, want Add", got)
		}
		if f.Values[z].Const != nil || f.Values[s].Const == nil {
			t.Error("big value stored or small result missing")
		}
		if err := f.Verify(); err != nil {
			t.Fatal(err)
		}
		d, remap := rewrite.RemoveDead(f)
		if remap[z] != ir.NoValue || d.Verify() != nil {
			t.Error("RemoveDead kept the vanished big value")
		}
	})
	t.Run("consumed by a kept node", func(t *testing.T) {
		b := ir.NewBuilder("cap", 13)
		z := b.Op("ConstantOfShape", "zeros", ids{b.Const("shape", big)})
		b.Output(b.Op("Add", "add", ids{b.Input("x", F, 1, 1), z}))
		f, err := rewrite.FoldConstants(b.G, bigEval)
		if err != nil {
			t.Fatal(err)
		}
		if got := opsOf(f); got != "ConstantOfShape Add" {
			t.Fatalf("nodes %q", got)
		}
		if f.Values[z].Const != nil {
			t.Error("big value stored")
		}
	})
	t.Run("graph output", func(t *testing.T) {
		b := ir.NewBuilder("cap", 13)
		z := b.Op("ConstantOfShape", "zeros", ids{b.Const("shape", big)})
		b.Output(z)
		f, err := rewrite.FoldConstants(b.G, bigEval)
		if err != nil {
			t.Fatal(err)
		}
		if got := opsOf(f); got != "ConstantOfShape" {
			t.Fatalf("nodes %q", got)
		}
	})
	t.Run("huge typed output not evaluated", func(t *testing.T) {
		b := ir.NewBuilder("cap", 13)
		z := b.Op("ConstantOfShape", "zeros", ids{b.Const("shape", i64(1<<13, 1<<12))})
		b.Output(b.Op("ReduceSum", "sum", ids{z}, ir.IntAttr("keepdims", 0)))
		g, err := rewrite.InferShapes(b.G)
		if err != nil {
			t.Fatal(err)
		}
		called := false
		f, err := rewrite.FoldConstants(g, func(n *ir.Node, o int64, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			called = called || n.Op == "ConstantOfShape"
			return bigEval(n, o, in)
		})
		if err != nil {
			t.Fatal(err)
		}
		if called || opsOf(f) != "ConstantOfShape ReduceSum" {
			t.Errorf("evaluated a 1<<25-element constant (nodes %q)", opsOf(f))
		}
	})
	t.Run("small", func(t *testing.T) {
		b := ir.NewBuilder("cap", 13)
		z := b.Op("ConstantOfShape", "zeros", ids{b.Const("shape", i64(4, 5))})
		b.Output(z)
		f, err := rewrite.FoldConstants(b.G, bigEval)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Nodes) != 0 || f.Values[z].Const == nil || f.Values[z].Type.String() != "float32[4,5]" {
			t.Fatalf("not folded:\n%s", f)
		}
	})
}

// TestFoldConstantsNilEval folds only Constant nodes and static shapes.
func TestFoldConstantsNilEval(t *testing.T) {
	b := ir.NewBuilder("nil", 15)
	x := b.Input("x", tensor.Float32, 2, 3, 4)
	s := b.Op("Shape", "s", ids{x}, ir.IntAttr("start", -2))
	k := b.Op("Constant", "k", nil, ir.IntsAttr("value_ints", 1, 2))
	b.Output(b.Op("Add", "add", ids{s, k}))
	f, err := rewrite.FoldConstants(b.G, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := opsOf(f); got != "Add" {
		t.Fatalf("nodes %q, want Add", got)
	}
	if v := f.Values[s].Const.I64(); len(v) != 2 || v[0] != 3 || v[1] != 4 {
		t.Errorf("Shape(start=-2) folded to %v", v)
	}
}
