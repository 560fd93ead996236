package infer_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// oldIRModel is y = x + b where the initializer b is also listed as a graph
// input, as IR version 3 exporters wrote weights.
func oldIRModel() *ir.Graph {
	b := ir.NewBuilder("old_ir", 9)
	b.G.IRVersion = 3
	x := b.Input("x", tensor.Float32, -1, 2)
	bias := b.Const("b", tensor.FromFloat32(tensor.Shape{2}, []float32{10, 20}))
	b.G.Inputs = append(b.G.Inputs, bias)
	y := b.Op("Add", "add", []ir.ValueID{x, bias})
	b.Output(y)
	return b.G
}

// TestOldIRInitializerInputs checks that an initializer listed as a graph
// input stays an input with its Const after Encode and Decode, and that a
// session uses the initializer when it is not fed and the feed when it is.
func TestOldIRInitializerInputs(t *testing.T) {
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, oldIRModel()); err != nil {
		t.Fatal(err)
	}
	g, err := onnx.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if g.IRVersion != 3 || len(g.Inputs) != 2 {
		t.Fatalf("IR version %d with %d inputs, want 3 and 2", g.IRVersion, len(g.Inputs))
	}
	bv := g.Values[g.Inputs[1]]
	if bv.Name != "b" || bv.Const == nil || !reflect.DeepEqual(bv.Const.F32(), []float32{10, 20}) {
		t.Fatalf("input b = %+v, want the initializer [10 20]", bv)
	}
	sess, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32(tensor.Shape{2, 2}, []float32{1, 2, 3, 4})
	tests := []struct {
		name  string
		feeds map[string]*tensor.Tensor
		want  []float32
	}{
		{"initializer", map[string]*tensor.Tensor{"x": x}, []float32{11, 22, 13, 24}},
		{"fed", map[string]*tensor.Tensor{"x": x, "b": tensor.FromFloat32(tensor.Shape{2}, []float32{-1, -2})}, []float32{0, 0, 2, 2}},
	}
	for _, tc := range tests {
		out, err := sess.Run(context.Background(), tc.feeds)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := out["add_out"]; got == nil || !reflect.DeepEqual(got.F32(), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, out, tc.want)
		}
	}
	// The initializer is still used after a run that overrode it.
	out, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x, nil})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out[0].F32(), []float32{11, 22, 13, 24}) {
		t.Errorf("after an override: got %v", out[0])
	}
}
