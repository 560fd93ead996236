package rewrite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// listedOps are the ai.onnx ops InferShapes has rules for.
var listedOps = strings.Fields(`
Conv ConvTranspose Gemm MatMul Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal
Relu LeakyRelu PRelu Clip Sigmoid HardSigmoid HardSwish Tanh Erf Softmax LogSoftmax
MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization LayerNormalization
Reshape Flatten Transpose Concat Split Slice Squeeze Unsqueeze Gather Shape Cast Pad Resize
ReduceMean ReduceSum ReduceMax Identity Dropout Constant ConstantOfShape Expand Where
Equal Greater Less ArgMax QuantizeLinear DequantizeLinear`)

const testDataDir = "/usr/share/libonnx-testdata/data"

// backendModel is one ONNX backend test whose ops are all listed.
type backendModel struct {
	name, dir string
	g         *ir.Graph
}

// backendModels loads the backend test models whose ops all have shape
// rules (skipping the test when Debian's libonnx-testdata is missing).
func backendModels(t *testing.T, suites ...string) []backendModel {
	t.Helper()
	if _, err := os.Stat(testDataDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX backend test data missing at %s (Debian package libonnx-testdata)", testDataDir)
		}
		t.Skipf("ONNX backend test data missing at %s: install Debian package libonnx-testdata", testDataDir)
	}
	listed := map[string]bool{}
	for _, op := range listedOps {
		listed[op] = true
	}
	var out []backendModel
	for _, suite := range suites {
		dirs, err := filepath.Glob(filepath.Join(testDataDir, suite, "test_*"))
		if err != nil {
			t.Fatal(err)
		}
	next:
		for _, dir := range dirs {
			g, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"))
			if err != nil {
				continue // sequences, strings, ...: not ours
			}
			for _, n := range g.Nodes {
				if n.Domain != "" || !listed[n.Op] {
					continue next
				}
			}
			out = append(out, backendModel{suite + "/" + filepath.Base(dir), dir, g})
		}
	}
	return out
}

// compatible reports whether an inferred type agrees with a declared one:
// same dtype and rank, equal sizes where both are known.
func compatible(got, want ir.Type) error {
	if got.DType != 0 && want.DType != 0 && got.DType != want.DType {
		return fmt.Errorf("dtype %v, declared %v", got.DType, want.DType)
	}
	if !got.Ranked || !want.Ranked {
		return nil
	}
	if len(got.Shape) != len(want.Shape) {
		return fmt.Errorf("type %v, declared %v", got, want)
	}
	for i := range got.Shape {
		if got.Shape[i].Known() && want.Shape[i].Known() && got.Shape[i].Size != want.Shape[i].Size {
			return fmt.Errorf("type %v, declared %v", got, want)
		}
	}
	return nil
}

// TestInferShapesBackendModels runs InferShapes on every backend test model
// whose ops are all listed: with the declared types stripped from all
// computed values, the inferred output types must agree with the declared
// ones and with the shapes of the expected output tensors; on the model as
// declared, inference must succeed too.
func TestInferShapesBackendModels(t *testing.T) {
	models := backendModels(t, "node", "pytorch-converted", "pytorch-operator", "simple")
	exact, total := 0, 0
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			if _, err := rewrite.InferShapes(m.g); err != nil {
				t.Fatalf("declared model: %v", err)
			}
			bare := m.g.Clone()
			for id := range bare.Values {
				if !bare.IsInput(ir.ValueID(id)) && bare.Values[id].Const == nil {
					bare.Values[id].Type = ir.Type{}
				}
			}
			got, err := rewrite.InferShapes(bare)
			if err != nil {
				t.Fatal(err)
			}
			wants := expectedOutputs(t, m.dir)
			for i, id := range m.g.Outputs {
				gt := got.Values[id].Type
				if err := compatible(gt, m.g.Values[id].Type); err != nil {
					t.Errorf("output %q: %v", m.g.Values[id].Name, err)
				}
				if i < len(wants) {
					w := wants[i]
					wt := ir.Type{DType: w.DType, Ranked: true, Shape: ir.ShapeDims(w.Shape)}
					if err := compatible(gt, wt); err != nil {
						t.Errorf("output %q vs expected data: %v", m.g.Values[id].Name, err)
					}
					total++
					if s, ok := gt.StaticShape(); ok && s.Equal(w.Shape) {
						exact++
					} else {
						t.Logf("output %q: inferred %v, data is %v%v", m.g.Values[id].Name, gt, w.DType, w.Shape)
					}
				}
			}
		})
	}
	t.Logf("%d models; %d of %d outputs inferred exactly", len(models), exact, total)
}

// expectedOutputs reads test_data_set_0/output_*.pb.
func expectedOutputs(t *testing.T, dir string) []*tensor.Tensor {
	t.Helper()
	var out []*tensor.Tensor
	for i := 0; ; i++ {
		f, err := os.Open(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			return out
		}
		tt, _, err := onnx.ReadTensor(f)
		f.Close()
		if err != nil {
			return nil // e.g. string outputs: no data to compare
		}
		if tt.DType == tensor.Uint16 && strings.Contains(dir, "BFLOAT16") {
			tt.DType = tensor.BFloat16 // the backend tests store bfloat16 data as uint16
		}
		out = append(out, tt)
	}
}
