package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/tensor"
)

// writeNPY writes x and y as .npy files in a temporary folder and returns
// the "npy:X,Y" spec.
func writeNPY(t *testing.T, x, y *tensor.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteFile(xp, x); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(yp, y); err != nil {
		t.Fatal(err)
	}
	return "npy:" + xp + "," + yp
}

// flattenModel is a "classifier" whose logits are its input N×1×1×C
// flattened, so tests choose the logits directly.
func flattenModel(c int) *ir.Graph {
	b := ir.NewBuilder("flat", 13)
	x := b.Input("input", tensor.Float32, -1, 1, 1, int64(c))
	b.Output(b.Op("Flatten", "flatten", []ir.ValueID{x}, ir.IntAttr("axis", 1)))
	return b.G
}

func TestEvaluate(t *testing.T) {
	// 6 samples, 6 classes. Logits rows; labels; rank of the label.
	logits := [][]float32{
		{5, 1, 0, 0, 0, 0}, // label 0: rank 0
		{5, 1, 0, 0, 0, 0}, // label 1: rank 1
		{0, 1, 2, 3, 4, 5}, // label 0: rank 5 (not top-5)
		{0, 1, 2, 3, 4, 5}, // label 1: rank 4
		{0, 0, 0, 0, 0, 0}, // label 2: ties count before: rank 2, predicted 0
		{1, 2, 9, 0, 0, 0}, // label 2: rank 0
	}
	labels := []int64{0, 1, 0, 1, 2, 2}
	x := tensor.FromFloat32(tensor.Shape{6, 1, 1, 6}, nil)
	var flat []float32
	for _, r := range logits {
		flat = append(flat, r...)
	}
	x.Data = flat
	spec := writeNPY(t, x, tensor.FromInt64(tensor.Shape{6}, labels))
	ds, err := dataset.Open(spec, dataset.Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(context.Background(), flattenModel(6), ds, EvalOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Samples != 6 || m.Top1 != 2.0/6 || m.Top5 != 5.0/6 {
		t.Errorf("samples %d, top1 %v, top5 %v; want 6, 1/3, 5/6", m.Samples, m.Top1, m.Top5)
	}
	want := [][]int{
		{1, 0, 0, 0, 0, 1},
		{1, 0, 0, 0, 0, 1},
		{1, 0, 1, 0, 0, 0},
	}
	for r, row := range want {
		for c, v := range row {
			if m.Confusion[r][c] != v {
				t.Errorf("confusion[%d][%d] = %d, want %d", r, c, m.Confusion[r][c], v)
			}
		}
	}
	if m.PerClass[0] != 0.5 || m.PerClass[1] != 0 || m.PerClass[2] != 0.5 || m.PerClass[3] != -1 {
		t.Errorf("per class %v", m.PerClass)
	}
	var ce float64
	for i, r := range logits {
		ce += crossEntropy(r, int(labels[i]))
	}
	if math.Abs(m.Loss-ce/6) > 1e-12 {
		t.Errorf("loss %v, want %v", m.Loss, ce/6)
	}
	// -log softmax([0 0 0 0 0 0])[2] = log 6
	if d := crossEntropy([]float32{0, 0, 0, 0, 0, 0}, 2) - math.Log(6); math.Abs(d) > 1e-12 {
		t.Errorf("crossEntropy off by %v", d)
	}
	// A second evaluation starts again from the beginning.
	m2, err := Evaluate(context.Background(), flattenModel(6), ds, EvalOptions{Threads: 1})
	if err != nil || m2.Samples != 6 {
		t.Fatalf("second evaluation: %v, %+v", err, m2)
	}
	// Labels outside the model's classes are an error.
	spec = writeNPY(t, tensor.FromFloat32(tensor.Shape{1, 1, 1, 2}, []float32{0, 1}), tensor.FromInt64(tensor.Shape{1}, []int64{3}))
	ds, _ = dataset.Open(spec, dataset.Options{})
	if _, err := Evaluate(context.Background(), flattenModel(2), ds, EvalOptions{}); err == nil {
		t.Error("label 3 of a 2-class model accepted")
	}
}
