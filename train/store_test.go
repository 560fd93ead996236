package train

import (
	"bytes"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// TestMarkTrainable checks that the parameters of zoo models, lost in an
// ONNX round trip, are recovered exactly, and that running statistics
// and other constants stay fixed.
func TestMarkTrainable(t *testing.T) {
	for _, arch := range []string{"lenet", "mlp", "resnet8:0.5", "mobilenetv2:0.25", "mobilenetv3s:0.25"} {
		g, err := zoo.Build(arch, zoo.Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := onnx.Encode(&buf, g); err != nil {
			t.Fatal(err)
		}
		dec, err := onnx.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		m := MarkTrainable(dec)
		want := map[string]bool{}
		for _, v := range g.Values {
			if v.Trainable {
				want[v.Name] = true
			}
		}
		for _, v := range m.Values {
			if v.Trainable != want[v.Name] {
				t.Errorf("%s: %q trainable %v, want %v", arch, v.Name, v.Trainable, want[v.Name])
			}
			delete(want, v.Name)
		}
		if len(want) > 0 {
			t.Errorf("%s: parameters missing after the round trip: %v", arch, want)
		}
		if MarkTrainable(g) != g {
			t.Errorf("%s: a marked graph was cloned", arch)
		}
	}
	// MatMul + Add bias, as exported by PyTorch for Linear layers.
	b := ir.NewBuilder("lin", 13)
	x := b.Input("x", tensor.Float32, -1, 4)
	w := b.Const("w", tensor.FromFloat32(tensor.Shape{4, 2}, make([]float32, 8)))
	bias := b.Const("b", tensor.FromFloat32(tensor.Shape{2}, make([]float32, 2)))
	shape := b.Const("shape", tensor.FromInt64(tensor.Shape{2}, []int64{-1, 2}))
	y := b.Op("MatMul", "mm", []ir.ValueID{x, w})
	y = b.Op("Add", "add", []ir.ValueID{bias, y})
	b.Output(b.Op("Reshape", "r", []ir.ValueID{y, shape}))
	m := MarkTrainable(b.G)
	if !m.Values[w].Trainable || !m.Values[bias].Trainable || m.Values[shape].Trainable || b.G.Values[w].Trainable {
		t.Errorf("MatMul/Add: w %v, b %v, shape %v, input changed %v", m.Values[w].Trainable, m.Values[bias].Trainable,
			m.Values[shape].Trainable, b.G.Values[w].Trainable)
	}
}
