package infer_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// ClaimedOps are the ai.onnx ops goslim claims to implement. The
// conformance test runs every ONNX backend test whose ops all appear here
// (and are not excluded in testdata/conformance_exclude.txt); each must pass.
var ClaimedOps = strings.Fields(`
Conv ConvTranspose Gemm MatMul Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal
Relu LeakyRelu PRelu Clip Sigmoid HardSigmoid HardSwish Tanh Erf Softmax LogSoftmax
MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization LayerNormalization
Reshape Flatten Transpose Concat Split Slice Squeeze Unsqueeze Gather Shape Cast Pad Resize
ReduceMean ReduceSum ReduceMax Identity Dropout Constant ConstantOfShape Expand Where
Equal Greater Less ArgMax QuantizeLinear DequantizeLinear
QLinearConv QLinearMatMul MatMulInteger ConvInteger DynamicQuantizeLinear`)

// testDataDir is Debian's libonnx-testdata.
const testDataDir = "/usr/share/libonnx-testdata/data"

var conformanceSuites = []string{"node", "pytorch-converted", "pytorch-operator", "simple"}

func requireTestData(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(testDataDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX backend test data missing at %s (Debian package libonnx-testdata); make test installs it", testDataDir)
		}
		t.Skipf("ONNX backend test data missing at %s: install Debian package libonnx-testdata", testDataDir)
	}
}

func loadExclusions(t *testing.T) map[string]string {
	f, err := os.Open("testdata/conformance_exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ex := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, " ")
		if !ok || strings.TrimSpace(reason) == "" {
			t.Fatalf("conformance_exclude.txt: entry %q has no reason", line)
		}
		ex[name] = strings.TrimSpace(reason)
	}
	return ex
}

type confResult struct {
	suite, name string
	ops         []string
	err         error
}

// TestConformance runs the ONNX backend tests of the claimed ops.
// GOSLIM_CONFORMANCE=regexp limits the tests run; GOSLIM_CONFORMANCE_REPORT=FILE
// writes the per-op table there.
func TestConformance(t *testing.T) {
	requireTestData(t)
	ex := loadExclusions(t)
	claimed := map[string]bool{}
	for _, op := range ClaimedOps {
		claimed[op] = true
	}
	var filter *regexp.Regexp
	if f := os.Getenv("GOSLIM_CONFORMANCE"); f != "" {
		filter = regexp.MustCompile(f)
	}
	var results []confResult
	excludedUsed := map[string]bool{}
	for _, suite := range conformanceSuites {
		dirs, err := filepath.Glob(filepath.Join(testDataDir, suite, "test_*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range dirs {
			name := filepath.Base(dir)
			if filter != nil && !filter.MatchString(name) {
				continue
			}
			g, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"))
			ops := []string{}
			if err == nil {
				ops = opsOf(g)
			}
			all := err == nil
			for _, op := range ops {
				if !claimed[op] {
					all = false
				}
			}
			if _, exl := ex[name]; exl {
				excludedUsed[name] = true
				continue
			}
			if !all {
				if err != nil && looksClaimed(name, claimed) {
					// A test we should cover but cannot even decode.
					results = append(results, confResult{suite, name, []string{"?"}, err})
				}
				continue
			}
			results = append(results, confResult{suite, name, ops, runBackendTest(dir, g)})
		}
	}
	for name := range ex {
		if !excludedUsed[name] && filter == nil {
			t.Errorf("exclusion %q matches no test", name)
		}
	}
	// Per-op table.
	type tally struct{ pass, fail int }
	perOp := map[string]*tally{}
	failed := 0
	for _, r := range results {
		for _, op := range r.ops {
			if perOp[op] == nil {
				perOp[op] = &tally{}
			}
			if r.err == nil {
				perOp[op].pass++
			} else {
				perOp[op].fail++
			}
		}
		if r.err != nil {
			failed++
			t.Errorf("%s/%s: %v", r.suite, r.name, r.err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| op | tests passed | failed |\n|---|---|---|\n")
	keys := make([]string, 0, len(perOp))
	for op := range perOp {
		keys = append(keys, op)
	}
	sort.Strings(keys)
	for _, op := range keys {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", op, perOp[op].pass, perOp[op].fail)
	}
	fmt.Fprintf(&b, "\n%d tests run, %d passed, %d failed, %d excluded\n", len(results), len(results)-failed, failed, len(excludedUsed))
	t.Log("\n" + b.String())
	if p := os.Getenv("GOSLIM_CONFORMANCE_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// looksClaimed guesses from a test's name whether it targets a claimed op
// (test_conv_..., test_Conv2d...), so decode failures of such tests count.
func looksClaimed(name string, claimed map[string]bool) bool {
	n := strings.ToLower(strings.TrimPrefix(name, "test_"))
	for op := range claimed {
		if strings.HasPrefix(n, strings.ToLower(op)+"_") || n == strings.ToLower(op) {
			return true
		}
	}
	return false
}

func opsOf(g *ir.Graph) []string {
	seen := map[string]bool{}
	var ops []string
	for _, n := range g.Nodes {
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "." + op
		}
		if !seen[op] {
			seen[op] = true
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

func runBackendTest(dir string, g *ir.Graph) error {
	sess, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		return err
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no test data sets")
	}
	for _, set := range sets {
		ins, err := readPBs(set, "input")
		if err != nil {
			return err
		}
		wants, err := readPBs(set, "output")
		if err != nil {
			return err
		}
		feeds := make([]*tensor.Tensor, len(g.Inputs))
		// Inputs without initializers take the data files in order; named
		// files go to the input of that name.
		free := []int{}
		for i, id := range g.Inputs {
			if g.Values[id].Const == nil {
				free = append(free, i)
			}
		}
		for k, in := range ins {
			placed := false
			if in.name != "" {
				for i, id := range g.Inputs {
					if g.Values[id].Name == in.name {
						feeds[i], placed = in.t, true
					}
				}
			}
			if !placed {
				if k >= len(free) {
					return fmt.Errorf("%s: more input files than graph inputs", filepath.Base(set))
				}
				feeds[free[k]] = in.t
			}
		}
		outs, err := sess.RunInputs(context.Background(), feeds)
		if err != nil {
			return err
		}
		if len(outs) != len(wants) {
			return fmt.Errorf("%d outputs, want %d", len(outs), len(wants))
		}
		for i := range outs {
			if err := compareTensors(outs[i], wants[i].t, 1e-3, 1e-7); err != nil {
				return fmt.Errorf("%s output %d (%s): %v", filepath.Base(set), i, g.Values[g.Outputs[i]].Name, err)
			}
		}
	}
	return nil
}

type namedTensor struct {
	name string
	t    *tensor.Tensor
}

func readPBs(dir, prefix string) ([]namedTensor, error) {
	var out []namedTensor
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i))
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		t, name, err := onnx.ReadTensor(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, namedTensor{name, t})
	}
}

// compareTensors checks dtype, shape and values: |got-want| <= atol +
// rtol*|want| for floats (NaN matches NaN), exact for everything else.
func compareTensors(got, want *tensor.Tensor, rtol, atol float64) error {
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	if !got.Shape.Equal(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	bad, first := 0, -1
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		ok := g == w || (math.IsNaN(g) && math.IsNaN(w))
		if !ok && want.DType.IsFloat() && !math.IsInf(w, 0) {
			ok = math.Abs(g-w) <= atol+rtol*math.Abs(w)
		}
		if !ok {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ; first at %d: got %g, want %g", bad, want.Len(), first, got.Float64At(first), want.Float64At(first))
	}
	return nil
}
