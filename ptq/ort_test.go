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
	add("rules-net", rulesNet(t), DefaultConfig())
	floatOut := DefaultConfig()
	floatOut.FloatOutputs = true
	add("zoo-resnet8-float-outputs", resnet, floatOut)
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
		if step == 0 && !m.cfg.FloatOutputs {
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
		if steps[i] == 0 {
			// A float output has no quantization step: no final
			// QuantizeLinear snaps the results to a grid, so where ORT's
			// integer kernels requantize an intermediate tensor one step
			// differently from goslim's float path, the difference reaches
			// the output. Allow 2% of the output's range.
			var scale float64
			for _, v := range want.F32() {
				scale = max(scale, math.Abs(float64(v)))
			}
			steps[i] = float32(0.02 * scale)
		}
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

// rulesNet exercises the rules the zoo models do not: ConvTranspose
// (grouped, weight axis 1), Resize, Concat, AveragePool, Mul, Transpose,
// Reshape, MatMul with a constant B and an Add with a constant.
func rulesNet(t *testing.T) *ir.Graph {
	t.Helper()
	b := ir.NewBuilder("rules", 13)
	x := b.Input("input", tensor.Float32, -1, 4, 8, 8)
	a := b.Op("Conv", "conv", []ir.ValueID{x, b.Param("cw", randTensor(1, 0.3, 8, 4, 3, 3)), b.Param("cb", randTensor(2, 0.1, 8))},
		ir.IntsAttr("pads", 1, 1, 1, 1))
	a = b.Op("Relu", "relu", []ir.ValueID{a})
	up := b.Op("ConvTranspose", "deconv", []ir.ValueID{a, b.Param("tw", randTensor(3, 0.3, 8, 2, 2, 2)), b.Param("tb", randTensor(4, 0.1, 4))},
		ir.IntsAttr("strides", 2, 2), ir.IntAttr("group", 2))
	roi := b.Const("roi", tensor.FromFloat32(tensor.Shape{0}, nil))
	scales := b.Const("scales", tensor.FromFloat32(tensor.Shape{4}, []float32{1, 1, 2, 2}))
	rs := b.Op("Resize", "resize", []ir.ValueID{x, roi, scales}, ir.StringAttr("mode", "nearest"))
	c := b.Op("Concat", "cat", []ir.ValueID{up, rs}, ir.IntAttr("axis", 1))
	e := b.Op("AveragePool", "avg", []ir.ValueID{c}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	f := b.Op("Mul", "mul", []ir.ValueID{e, a})
	f = b.Op("Transpose", "tr", []ir.ValueID{f}, ir.IntsAttr("perm", 0, 2, 3, 1))
	f = b.Op("Reshape", "flat", []ir.ValueID{f, b.Const("shape", tensor.FromInt64(tensor.Shape{2}, []int64{-1, 512}))})
	f = b.Op("MatMul", "mm", []ir.ValueID{f, b.Param("mw", randTensor(5, 0.05, 512, 10))})
	f = b.Op("Add", "bias", []ir.ValueID{f, b.Param("mb", randTensor(6, 0.1, 10))})
	b.Output(f)
	return b.G
}
