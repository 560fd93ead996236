package ptq

import (
	"bytes"
	"math"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
	"os"
)

// ortModel is one model of the ORT agreement test.
type ortModel struct {
	name string
	g    *ir.Graph
	cfg  *Config
}

func loadFixture(t *testing.T, name string) *ir.Graph {
	t.Helper()
	g, err := onnx.ReadFile("../testdata/models/" + name + ".onnx")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func readNPY(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := npy.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestQDQMatchesORT exports QDQ models and checks that ONNX Runtime (with
// all graph optimizations, so QDQ groups run as integer kernels where ORT
// has them) agrees with goslim's execution of the same graph within one
// output quantization step on at least 99.9% of the output elements.
func TestQDQMatchesORT(t *testing.T) {
	oracle := ortoracle.Require(t)
	var models []ortModel
	add := func(name string, g *ir.Graph, cfg *Config) {
		models = append(models, ortModel{name, g, cfg})
	}
	resnet, err := zoo.Build("resnet8", zoo.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	add("zoo-resnet8", resnet, DefaultConfig())
	lenet, err := zoo.Build("lenet", zoo.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	add("zoo-lenet", lenet, DefaultConfig())
	perTensor := DefaultConfig()
	perTensor.PerChannel = false
	add("zoo-lenet-per-tensor", lenet, perTensor)
	int8Acts := DefaultConfig()
	int8Acts.Activations, int8Acts.Symmetric = "int8", true
	add("zoo-resnet8-int8-symmetric", resnet, int8Acts)
	for _, f := range []string{"lenet5", "resnet8", "mobilenetv2", "mobilenetv3"} {
		add("fixture-"+f, loadFixture(t, f), DefaultConfig())
	}

	var cases []ortoracle.Case
	var goslim []*tensor.Tensor
	var steps []float32
	for i, m := range models {
		g, err := rewrite.Simplify(m.g, infer.NodeEvaluator(nil))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		in := g.Values[g.Inputs[0]].Type.Shape
		shape := tensor.Shape{8, int(in[1].Size), int(in[2].Size), int(in[3].Size)}
		calib := randTensor(uint64(100+i), 1, shape...)
		res := quantizeForTest(t, g, m.cfg, calib)
		q := res.Graph
		// The output's quantization step.
		outID := q.Outputs[0]
		step := float32(0)
		for _, n := range q.Nodes {
			if n.Op == "DequantizeLinear" && n.Outputs[0] == outID {
				step = q.Values[n.Inputs[1]].Const.F32()[0]
			}
		}
		if step == 0 {
			t.Fatalf("%s: output is not quantized", m.name)
		}
		x := randTensor(uint64(200+i), 1, shape...)
		goslim = append(goslim, runOne(t, q, x))
		steps = append(steps, step)
		var buf bytes.Buffer
		if err := onnx.Encode(&buf, q); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		cases = append(cases, ortoracle.Case{Model: buf.Bytes(),
			Feeds: map[string]*tensor.Tensor{q.Values[q.Inputs[0]].Name: x}})
	}
	results, err := oracle.RunAll(cases)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		m := models[i]
		if r.Err != nil {
			t.Errorf("%s: ORT: %v", m.name, r.Err)
			continue
		}
		var got *tensor.Tensor
		for _, v := range r.Outputs {
			got = v
		}
		want := goslim[i]
		if !got.Shape.Equal(want.Shape) {
			t.Errorf("%s: ORT shape %v, goslim %v", m.name, got.Shape, want.Shape)
			continue
		}
		bad, worst := 0, 0.0
		for j, v := range want.F32() {
			d := math.Abs(float64(v) - float64(got.F32()[j]))
			worst = max(worst, d/float64(steps[i]))
			if d > float64(steps[i])*1.0001 {
				bad++
			}
		}
		frac := 1 - float64(bad)/float64(want.Len())
		t.Logf("%s: %d elements, %.4f%% within one step (%g), worst %.2f steps", m.name, want.Len(), 100*frac, steps[i], worst)
		if frac < 0.999 {
			t.Errorf("%s: only %.3f%% of outputs within one quantization step of ORT", m.name, 100*frac)
		}
	}
}
