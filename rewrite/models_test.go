package rewrite_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
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
			// With every input's first dim made symbolic, inference must
			// not find false contradictions.
			sym := bare.Clone()
			for _, id := range sym.Inputs {
				if ty := &sym.Values[id].Type; ty.Ranked && len(ty.Shape) > 0 {
					ty.Shape[0] = ir.Dim{Size: -1, Param: "B"}
				}
			}
			if _, err := rewrite.InferShapes(sym); err != nil {
				t.Errorf("symbolic first dims: %v", err)
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

// readInputs reads test_data_set_0/input_*.pb and places them like the
// conformance harness: named files to the input of that name, the others in
// order to the inputs without an initializer.
func readInputs(t *testing.T, dir string, g *ir.Graph) []*tensor.Tensor {
	t.Helper()
	feeds := make([]*tensor.Tensor, len(g.Inputs))
	var free []int
	for i, id := range g.Inputs {
		if g.Values[id].Const == nil {
			free = append(free, i)
		}
	}
	for k := 0; ; k++ {
		f, err := os.Open(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("input_%d.pb", k)))
		if err != nil {
			return feeds
		}
		tt, name, err := onnx.ReadTensor(f)
		f.Close()
		if err != nil {
			t.Skipf("input %d: %v", k, err)
		}
		placed := false
		for i, id := range g.Inputs {
			if name != "" && g.Values[id].Name == name {
				feeds[i], placed = tt, true
			}
		}
		if !placed {
			if k >= len(free) {
				t.Skip("more input files than inputs")
			}
			feeds[free[k]] = tt
		}
	}
}

// sameOutputs compares two output lists: exact for integers and bools,
// max|a-b| <= 1e-5 * max|b| (+1e-6) for floats.
func sameOutputs(t *testing.T, got, want []*tensor.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.DType != w.DType || !g.Shape.Equal(w.Shape) {
			t.Errorf("output %d: %v%v, want %v%v", i, g.DType, g.Shape, w.DType, w.Shape)
			continue
		}
		ref := 0.0
		for k := range w.Len() {
			ref = max(ref, math.Abs(w.Float64At(k)))
		}
		for k := range w.Len() {
			a, b := g.Float64At(k), w.Float64At(k)
			if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
				continue
			}
			if !w.DType.IsFloat() || math.Abs(a-b) > 1e-5*ref+1e-6 {
				t.Errorf("output %d element %d: %g, want %g", i, k, a, b)
				break
			}
		}
	}
}

// TestSimplifyBackendModels runs Simplify (with the kernel evaluator) on
// every backend test model with listed ops that goslim can run, and checks
// that the simplified graph computes the same outputs.
func TestSimplifyBackendModels(t *testing.T) {
	models := backendModels(t, "node", "pytorch-converted", "pytorch-operator", "simple")
	eval := infer.NodeEvaluator(nil)
	ran, skipped, changed := 0, 0, 0
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			if opset := m.g.Opset(""); opset < 7 {
				skipped++
				t.Skip("opset below 7")
			}
			for _, n := range m.g.Nodes {
				if n.Op == "Dropout" && len(n.Inputs) > 2 {
					skipped++
					t.Skip("training-mode Dropout is random")
				}
			}
			s0, err := infer.NewSession(m.g, infer.Options{Threads: 1})
			if err != nil {
				skipped++
				t.Skipf("original does not compile: %v", err)
			}
			feeds := readInputs(t, m.dir, m.g)
			want, err := s0.RunInputs(context.Background(), feeds)
			if err != nil {
				skipped++
				t.Skipf("original does not run: %v", err)
			}
			sg, err := rewrite.Simplify(m.g, eval)
			if err != nil {
				t.Fatal(err)
			}
			if len(sg.Nodes) != len(m.g.Nodes) {
				changed++
			}
			s1, err := infer.NewSession(sg, infer.Options{Threads: 1})
			if err != nil {
				t.Fatalf("simplified graph: %v\n%s", err, sg)
			}
			got, err := s1.RunInputs(context.Background(), feeds)
			if err != nil {
				t.Fatalf("simplified graph: %v", err)
			}
			sameOutputs(t, got, want)
			ran++
		})
	}
	t.Logf("%d models compared (%d simplified to fewer nodes), %d skipped", ran, changed, skipped)
}

// TestSimplifyFixtures simplifies the PyTorch fixtures: BatchNormalization
// nodes fold away, the symbolic batch survives, and outputs match the
// unsimplified graph at batch 3.
func TestSimplifyFixtures(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/models/*.onnx")
	if len(paths) == 0 {
		t.Skip("no fixtures in testdata/models")
	}
	eval := infer.NodeEvaluator(nil)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			g, err := onnx.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sg, remap, err := rewrite.SimplifyMap(g, eval)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range sg.Nodes {
				if n.Op == "BatchNormalization" || n.Op == "Constant" {
					t.Errorf("%s %q left after Simplify", n.Op, n.Name)
				}
			}
			for old, nw := range remap {
				if nw != ir.NoValue && sg.Values[nw].Name != g.Values[old].Name {
					t.Fatalf("map sends %q to %q", g.Values[old].Name, sg.Values[nw].Name)
				}
			}
			if s := sg.Values[sg.Outputs[0]].Type.String(); s != "float32[batch,10]" {
				t.Errorf("output type %s", s)
			}
			in := g.Values[g.Inputs[0]].Type
			feed := f32(3, 3, int(in.Shape[1].Size), int(in.Shape[2].Size), int(in.Shape[3].Size))
			want := runGraph(t, g, feed)
			got := runGraph(t, sg, feed)
			sameOutputs(t, got, want)
			t.Logf("%d nodes -> %d", len(g.Nodes), len(sg.Nodes))
		})
	}
}
