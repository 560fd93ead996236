package infer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

func TestNodeEvaluator(t *testing.T) {
	eval := infer.NodeEvaluator(nil)
	a := tensor.FromFloat32(tensor.Shape{2, 3}, []float32{1, -2, 3, -4, 5, -6})
	b := tensor.FromFloat32(tensor.Shape{3}, []float32{10, 20, 30})
	aCopy := a.Clone()
	add := &ir.Node{Op: "Add", Name: "add", Inputs: []ir.ValueID{0, 1}, Outputs: []ir.ValueID{2}}
	out, err := eval(add, 13, []*tensor.Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{11, 18, 33, 6, 25, 24}
	if len(out) != 1 || !out[0].Shape.Equal(tensor.Shape{2, 3}) {
		t.Fatalf("got %v", out)
	}
	for i, v := range out[0].F32() {
		if v != want[i] {
			t.Fatalf("Add: got %v, want %v", out[0].F32(), want)
		}
	}
	if a.String() != aCopy.String() {
		t.Error("input modified")
	}

	// Multiple outputs, an unnamed output slot and an omitted optional input.
	x := tensor.FromInt64(tensor.Shape{5}, []int64{1, 2, 3, 4, 5})
	split := &ir.Node{Op: "Split", Name: "split", Inputs: []ir.ValueID{0, ir.NoValue},
		Outputs: []ir.ValueID{1, ir.NoValue}}
	out, err = eval(split, 18, []*tensor.Tensor{x, nil})
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	if len(out) != 2 || out[0] == nil || out[0].Len() != 3 || out[0].I64()[2] != 3 {
		t.Fatalf("Split: got %v", out)
	}

	// Fewer tensors than inputs: the rest count as omitted.
	clip := &ir.Node{Op: "Clip", Name: "clip", Inputs: []ir.ValueID{0, ir.NoValue, ir.NoValue}, Outputs: []ir.ValueID{1}}
	out, err = eval(clip, 13, []*tensor.Tensor{a})
	if err != nil || out[0].F32()[1] != -2 {
		t.Fatalf("Clip without bounds: %v %v", out, err)
	}

	// Unsupported ops fail with the node's name.
	bad := &ir.Node{Op: "NoSuchOp", Name: "mystery", Inputs: []ir.ValueID{0}, Outputs: []ir.ValueID{1}}
	if _, err := eval(bad, 13, []*tensor.Tensor{a}); err == nil || !strings.Contains(err.Error(), `"mystery"`) {
		t.Errorf("unsupported op: err %v", err)
	}
	// Kernel errors come back too.
	c := tensor.FromFloat32(tensor.Shape{4}, []float32{1, 2, 3, 4})
	if _, err := eval(add, 13, []*tensor.Tensor{a, c}); err == nil {
		t.Error("Add of [2 3] and [4]: no error")
	}
}

// TestNodeEvaluatorTable checks that a given table is used and sees the
// node's opset, constant inputs and static types.
func TestNodeEvaluatorTable(t *testing.T) {
	table := kernel.NewTable()
	var seen *kernel.Info
	table.Add(kernel.Entry{Op: "Twice", Domain: "goslim", Name: "test", Build: func(info *kernel.Info) (kernel.Kernel, error) {
		seen = info
		if info.Consts[0] == nil {
			return nil, errors.New("input not constant")
		}
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			o, err := c.Output(0, tensor.Float32, in[0].Shape)
			if err != nil {
				return err
			}
			for i, v := range in[0].F32() {
				o.F32()[i] = 2 * v
			}
			return nil
		}), nil
	}})
	eval := infer.NodeEvaluator(table)
	n := &ir.Node{Op: "Twice", Domain: "goslim", Name: "tw", Inputs: []ir.ValueID{7}, Outputs: []ir.ValueID{8}}
	out, err := eval(n, 3, []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{2}, []float32{1.5, -1})})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].F32(); got[0] != 3 || got[1] != -2 {
		t.Errorf("got %v", got)
	}
	if seen.Opset != 3 || seen.Inputs[0].String() != "float32[2]" || seen.Graph.Opset("goslim") != 3 {
		t.Errorf("info: opset %d, input type %v", seen.Opset, seen.Inputs[0])
	}
	if _, err := infer.NodeEvaluator(table)(&ir.Node{Op: "Add", Name: "a", Inputs: []ir.ValueID{0, 1}, Outputs: []ir.ValueID{2}}, 13,
		[]*tensor.Tensor{out[0], out[0]}); err == nil {
		t.Error("a table without Add evaluated Add")
	}
}
