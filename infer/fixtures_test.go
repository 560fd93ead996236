package infer_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// fixtureDir holds the PyTorch-exported models of
// testdata/models/gen_fixtures.py with their inputs and reference outputs.
const fixtureDir = "../testdata/models"

// fixtures maps the model names in fixtureDir to ops each must contain, so
// a regenerated fixture cannot silently stop exercising them (BatchNorm
// fused away, HardSwish decomposed).
var fixtures = []struct {
	name string
	ops  []string
}{
	{"lenet5", []string{"Conv", "Relu", "MaxPool", "Flatten", "Gemm"}},
	{"resnet8", []string{"Conv", "BatchNormalization", "Add", "GlobalAveragePool", "Gemm"}},
	{"mobilenetv2", []string{"Conv", "BatchNormalization", "Clip", "Add"}},
	{"mobilenetv3", []string{"Conv", "BatchNormalization", "HardSwish", "HardSigmoid", "GlobalAveragePool", "Mul", "Add"}},
	{"mobilenetv3_op13", []string{"Conv", "BatchNormalization", "HardSigmoid", "GlobalAveragePool", "Mul", "Add"}},
}

// TestFixtures runs each PyTorch fixture at batch 3 and at batch 1 (each
// sample alone) and compares with PyTorch's output: max|diff| must stay
// within 1e-4 * max|reference|.
func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		name := fx.name
		t.Run(name, func(t *testing.T) {
			g, err := onnx.ReadFile(filepath.Join(fixtureDir, name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := npy.ReadFile(filepath.Join(fixtureDir, name+"_input.npy"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := npy.ReadFile(filepath.Join(fixtureDir, name+"_output.npy"))
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, n := range g.Nodes {
				have[n.Op] = true
			}
			for _, op := range fx.ops {
				if !have[op] {
					t.Errorf("model has no %s node", op)
				}
			}
			if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
				t.Fatalf("model has %d inputs and %d outputs, want 1 and 1", len(g.Inputs), len(g.Outputs))
			}
			in := g.Values[g.Inputs[0]]
			if !in.Type.Ranked || len(in.Type.Shape) == 0 || in.Type.Shape[0].Known() || in.Type.Shape[0].Param == "" {
				t.Fatalf("input %q has type %v, want a symbolic batch dim", in.Name, in.Type)
			}
			if x.Shape[0] != 3 || want.Shape[0] != 3 {
				t.Fatalf("fixture batch sizes %v / %v, want 3", x.Shape, want.Shape)
			}
			sess, err := infer.NewSession(g, infer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, x, want *tensor.Tensor) {
				t.Helper()
				out, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x})
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got := out[0]
				if got.DType != tensor.Float32 || !got.Shape.Equal(want.Shape) {
					t.Fatalf("%s: output %v%v, want %v%v", what, got.DType, got.Shape, want.DType, want.Shape)
				}
				maxDiff, maxRef := 0.0, 0.0
				for i, w := range want.F32() {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got.F32()[i]-w)))
					maxRef = math.Max(maxRef, math.Abs(float64(w)))
				}
				t.Logf("%s: max|diff| %.3g, max|ref| %.3g", what, maxDiff, maxRef)
				if !(maxDiff <= 1e-4*maxRef) {
					t.Errorf("%s: max|diff| %g > 1e-4 * max|ref| (%g)", what, maxDiff, maxRef)
				}
			}
			check("batch 3", x, want)
			for b := 0; b < 3; b++ {
				check(fmt.Sprintf("batch 1, sample %d", b), sampleOf(x, b), sampleOf(want, b))
			}
		})
	}
}

// sampleOf returns sample b of a float32 batch as a batch of one.
func sampleOf(t *tensor.Tensor, b int) *tensor.Tensor {
	n := t.Len() / t.Shape[0]
	shape := append(tensor.Shape{1}, t.Shape[1:]...)
	return tensor.FromFloat32(shape, append([]float32(nil), t.F32()[b*n:(b+1)*n]...))
}
