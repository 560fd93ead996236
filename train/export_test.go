package train

import (
	"bytes"
	"context"
	"math"
	"slices"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// TestExport trains a model with BatchNorm briefly and checks the
// exported inference model: the input graph is untouched, the export has
// the store's values (BN statistics too), only ONNX ops, survives an
// ONNX round trip, and ONNX Runtime gives the same logits.
func TestExport(t *testing.T) {
	spec := tinyData(t, 64, 1, 12, 12, 3, 8)
	model := tinyModel(t, "resnet8:0.25")
	before := map[string][]float32{}
	for _, v := range model.Values {
		if v.Const != nil && v.Const.DType == tensor.Float32 {
			before[v.Name] = slices.Clone(v.Const.F32())
		}
	}
	tr, err := New(model, Config{Epochs: 1, Threads: 1, Seed: 1, Schedule: ScheduleConfig{LR: 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), openTiny(t, spec, true, 1), nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range model.Values {
		if v.Const != nil && v.Const.DType == tensor.Float32 && !slices.Equal(before[v.Name], v.Const.F32()) {
			t.Fatalf("training changed the input model's constant %q", v.Name)
		}
	}
	g, err := tr.Model()
	if err != nil {
		t.Fatal(err)
	}
	changedStats := 0
	for id, v := range g.Values {
		if s := tr.Store().Value(ir.ValueID(id)); s != nil {
			if !slices.Equal(s.F32(), v.Const.F32()) {
				t.Fatalf("export of %q differs from the store", v.Name)
			}
			if !v.Trainable && !slices.Equal(before[v.Name], v.Const.F32()) {
				changedStats++
			}
		}
	}
	if changedStats == 0 {
		t.Error("no BatchNorm running statistic was updated")
	}
	for _, n := range g.Nodes {
		if n.Domain != "" {
			t.Fatalf("export has node %s of domain %q", n.Label(), n.Domain)
		}
	}
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	dec, err := onnx.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	ds := openTiny(t, spec, false, 0)
	b, err := ds.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	x := b.Inputs[0].Tensor
	sess, err := infer.NewSession(dec, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}

	oracle := ortoracle.Require(t)
	got, err := oracle.Run(buf.Bytes(), map[string]*tensor.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i, v := range got["logits"].F32() {
		w := want[0].F32()[i]
		worst = max(worst, math.Abs(float64(v-w))/(1+math.Abs(float64(w))))
	}
	if worst > 1e-5 {
		t.Errorf("ONNX Runtime and goslim differ by %.3g on the trained model", worst)
	}
}
