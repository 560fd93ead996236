package ptq

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// inferredGraph returns b's graph with its shapes inferred, failing the
// test when inference fails.
func inferredGraph(t *testing.T, b *ir.Builder) *ir.Graph {
	t.Helper()
	g, err := rewrite.InferShapes(b.G)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// randTensor returns a seeded normal float32 tensor.
func randTensor(seed uint64, scale float64, shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 0x7074))
	t := tensor.FromFloat32(shape, make([]float32, tensor.Shape(shape).Size()))
	for i := range t.F32() {
		t.F32()[i] = float32(rng.NormFloat64() * scale)
	}
	return t
}

// tapRanges runs g on the inputs and returns the min/max of the given
// values (a test stand-in for calibration).
func tapRanges(t *testing.T, g *ir.Graph, ids []ir.ValueID, inputs ...*tensor.Tensor) map[ir.ValueID]Range {
	t.Helper()
	want := map[ir.ValueID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[ir.ValueID]Range{}
	sess, err := infer.NewSession(g, infer.Options{Threads: 1, Tap: func(id ir.ValueID, x *tensor.Tensor) error {
		if !want[id] {
			return nil
		}
		lo, hi, ok := tensorRange(x)
		if !ok {
			return nil
		}
		r, seen := out[id]
		if seen {
			lo, hi = min(lo, r.Min), max(hi, r.Max)
		}
		out[id] = Range{lo, hi}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range inputs {
		if _, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// runOne runs g on one input and returns its first output.
func runOne(t *testing.T, g *ir.Graph, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	sess, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// sqnr returns 10·log10(Σa² / Σ(a-b)²) in dB.
func sqnr(a, b *tensor.Tensor) float64 {
	var s, e float64
	for i, v := range a.F32() {
		d := float64(v) - float64(b.F32()[i])
		s += float64(v) * float64(v)
		e += d * d
	}
	return 10 * math.Log10(s/e)
}

// smallNet builds input[N,3,8,8] -> Conv+Relu -> MaxPool -> Conv -> Add
// (residual with the pool output) -> Relu -> Concat(with pool) ->
// GlobalAveragePool -> Flatten -> Gemm(transB) -> Softmax.
func smallNet(t *testing.T, opset int64) *ir.Graph {
	t.Helper()
	b := ir.NewBuilder("small", opset)
	x := b.Input("input", tensor.Float32, -1, 3, 8, 8)
	w1 := b.Param("c1.w", randTensor(1, 0.4, 6, 3, 3, 3))
	b1 := b.Param("c1.b", randTensor(2, 0.1, 6))
	pads := ir.IntsAttr("pads", 1, 1, 1, 1)
	y := b.Op("Conv", "c1", []ir.ValueID{x, w1, b1}, pads)
	y = b.Op("Relu", "r1", []ir.ValueID{y})
	p := b.Op("MaxPool", "pool", []ir.ValueID{y}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	w2 := b.Param("c2.w", randTensor(3, 0.3, 6, 6, 3, 3))
	b2 := b.Param("c2.b", randTensor(4, 0.1, 6))
	z := b.Op("Conv", "c2", []ir.ValueID{p, w2, b2}, pads)
	z = b.Op("Add", "add", []ir.ValueID{z, p})
	z = b.Op("Relu", "r2", []ir.ValueID{z})
	c := b.Op("Concat", "cat", []ir.ValueID{z, p}, ir.IntAttr("axis", 1))
	gp := b.Op("GlobalAveragePool", "gap", []ir.ValueID{c})
	f := b.Op("Flatten", "flat", []ir.ValueID{gp}, ir.IntAttr("axis", 1))
	w3 := b.Param("fc.w", randTensor(5, 0.5, 10, 12))
	b3 := b.Param("fc.b", randTensor(6, 0.1, 10))
	o := b.Op("Gemm", "fc", []ir.ValueID{f, w3, b3}, ir.IntAttr("transB", 1))
	o = b.Op("Softmax", "softmax", []ir.ValueID{o}, ir.IntAttr("axis", 1))
	b.Output(o)
	return inferredGraph(t, b)
}

func valueNamed(t *testing.T, g *ir.Graph, name string) ir.ValueID {
	t.Helper()
	id, ok := g.ValueByName(name)
	if !ok {
		t.Fatalf("no value %q", name)
	}
	return id
}

func TestPlanMarks(t *testing.T) {
	g := smallNet(t, 13)
	p, err := NewPlan(g, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	v := func(name string) ir.ValueID { return valueNamed(t, g, name) }
	// Conv c1's output is fused into r1; r1's output is quantized and
	// shared with the MaxPool output (passthrough).
	if p.Quantized(v("c1_out")) {
		t.Error("c1 output should be fused into r1")
	}
	if !p.Quantized(v("r1_out")) || p.Group(v("r1_out")) != p.Group(v("pool_out")) {
		t.Error("MaxPool output should share r1's parameters")
	}
	// Residual Add: both inputs in one group; Concat inputs and output in one group.
	if p.Group(v("c2_out")) != p.Group(v("pool_out")) {
		t.Error("Add inputs should share parameters")
	}
	if p.Group(v("r2_out")) != p.Group(v("cat_out")) || p.Group(v("cat_out")) != p.Group(v("pool_out")) {
		t.Error("Concat inputs and output should share parameters")
	}
	if p.Quantized(v("add_out")) {
		t.Error("Add output should be fused into r2")
	}
	if !p.Quantized(v("fc_out")) || p.Quantized(v("softmax_out")) {
		t.Error("Gemm output quantized, Softmax output not")
	}
	if p.Group(v("gap_out")) != p.Group(v("flat_out")) {
		t.Error("Flatten is a passthrough")
	}
	for i, n := range g.Nodes {
		if n.Op == "Softmax" && (p.Nodes[i].Quantized || p.Nodes[i].Reason == "") {
			t.Errorf("Softmax should stay FP32 with a reason, got %+v", p.Nodes[i])
		}
	}
	layers := 0
	for _, ni := range p.Layers() {
		switch g.Nodes[ni].Op {
		case "Conv", "Gemm", "Add", "Concat", "GlobalAveragePool":
			layers++
		default:
			t.Errorf("%s should not be a layer", g.Nodes[ni].Op)
		}
	}
	if layers != 6 {
		t.Errorf("got %d layers, want 6", layers)
	}
}

func TestPlanExclude(t *testing.T) {
	g := smallNet(t, 13)
	cfg := DefaultConfig()
	cfg.Exclude = []string{"c2", "Concat"}
	p, err := NewPlan(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		switch n.Name {
		case "c2":
			if p.Nodes[i].Quantized || p.Nodes[i].Reason != "excluded by name" {
				t.Errorf("c2: %+v", p.Nodes[i])
			}
		case "cat":
			if p.Nodes[i].Quantized || p.Nodes[i].Reason != "excluded by op type" {
				t.Errorf("cat: %+v", p.Nodes[i])
			}
		}
	}
}

// quantizeForTest plans, calibrates on xs with tapRanges and rewrites.
func quantizeForTest(t *testing.T, g *ir.Graph, cfg *Config, xs ...*tensor.Tensor) *Result {
	t.Helper()
	p, err := NewPlan(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ranges := tapRanges(t, g, p.Observed(), xs...)
	acts, err := GroupParams(p, ranges, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Quantize(p, acts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestQuantizeSmallNet(t *testing.T) {
	g := smallNet(t, 13)
	x := randTensor(10, 1, 16, 3, 8, 8)
	res := quantizeForTest(t, g, DefaultConfig(), x)
	q := res.Graph
	ops := map[string]int{}
	for _, n := range q.Nodes {
		ops[n.Op]++
	}
	if ops["QuantizeLinear"] == 0 || ops["DequantizeLinear"] <= ops["QuantizeLinear"] {
		t.Errorf("op counts %v", ops)
	}
	// Weights are int8 initializers, biases int32; no float weights remain.
	nw, nb := 0, 0
	for _, v := range q.Values {
		if v.Const == nil {
			continue
		}
		switch v.Name {
		case "c1.w", "c2.w", "fc.w", "c1.b", "c2.b", "fc.b":
			t.Errorf("float constant %q still in the graph", v.Name)
		}
		switch {
		case strings.HasPrefix(v.Name, "wq"):
			nw++
			if v.Const.DType != tensor.Int8 {
				t.Errorf("%s is %v", v.Name, v.Const.DType)
			}
		case strings.HasPrefix(v.Name, "bq"):
			nb++
			if v.Const.DType != tensor.Int32 {
				t.Errorf("%s is %v", v.Name, v.Const.DType)
			}
		}
	}
	if nw != 3 || nb != 3 {
		t.Errorf("%d int8 weights and %d int32 biases, want 3 and 3", nw, nb)
	}
	// Per-channel bias scales are not stored: a Mul of the input scale and
	// the weight scales computes s_in·s_w[c], bit for bit.
	prod := q.Producers()
	nbs := 0
	for ni := range q.Nodes {
		n := &q.Nodes[ni]
		if n.Op != "DequantizeLinear" || q.Values[n.Inputs[0]].Const == nil || q.Values[n.Inputs[0]].Const.DType != tensor.Int32 {
			continue
		}
		nbs++
		m := prod[n.Inputs[1]]
		if m < 0 || q.Nodes[m].Op != "Mul" {
			t.Errorf("bias %s: scale is not computed by a Mul", q.Values[n.Inputs[0]].Name)
			continue
		}
		sIn, sW := q.Values[q.Nodes[m].Inputs[0]].Const.F32()[0], q.Values[q.Nodes[m].Inputs[1]].Const.F32()
		got := constScale(q, prod, n.Inputs[1])
		for c := range sW {
			if got[c] != sIn*sW[c] {
				t.Errorf("bias %s channel %d: scale %g, want %g", q.Values[n.Inputs[0]].Name, c, got[c], sIn*sW[c])
			}
		}
	}
	if nbs != 3 {
		t.Errorf("%d int32 bias DequantizeLinear nodes, want 3", nbs)
	}
	if q.Values[q.Outputs[0]].Name != "softmax_out" {
		t.Errorf("output renamed to %q", q.Values[q.Outputs[0]].Name)
	}
	if q.Meta[MetaQuantization] == "" {
		t.Error("no provenance metadata")
	}
	want := runOne(t, g, x)
	got := runOne(t, q, x)
	if s := sqnr(want, got); s < 25 {
		t.Errorf("SQNR %.1f dB, want >= 25", s)
	}
	// The fc weight is per-channel along axis 0 (transB=1).
	for ni, prm := range res.Weights {
		if g.Nodes[ni].Name == "fc" && (len(prm.Scale) != 10 || prm.Scheme.Axis != 0) {
			t.Errorf("fc weight params %+v", prm.Scheme)
		}
	}
}

func TestQuantizePerTensorOldOpset(t *testing.T) {
	g := smallNet(t, 11)
	x := randTensor(10, 1, 4, 3, 8, 8)
	cfg := DefaultConfig()
	p, _ := NewPlan(g, cfg)
	acts, err := GroupParams(p, tapRanges(t, g, p.Observed(), x), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Quantize(p, acts, cfg); err == nil {
		t.Error("per-channel at opset 11 should fail")
	}
	cfg.PerChannel = false
	res, err := Quantize(p, acts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := sqnr(runOne(t, g, x), runOne(t, res.Graph, x)); s < 20 {
		t.Errorf("per-tensor SQNR %.1f dB", s)
	}
}

func TestQuantizeErrors(t *testing.T) {
	g := smallNet(t, 13)
	cfg := DefaultConfig()
	p, _ := NewPlan(g, cfg)
	if _, err := GroupParams(p, map[ir.ValueID]Range{}, cfg); err == nil {
		t.Error("missing ranges should fail")
	}
	ranges := tapRanges(t, g, p.Observed(), randTensor(1, 1, 2, 3, 8, 8))
	for id := range ranges {
		ranges[id] = Range{float32(math.NaN()), 1}
		break
	}
	if _, err := GroupParams(p, ranges, cfg); err == nil {
		t.Error("NaN range should fail")
	}
	res := quantizeForTest(t, g, cfg, randTensor(1, 1, 2, 3, 8, 8))
	if _, err := NewPlan(res.Graph, cfg); err == nil {
		t.Error("quantizing a quantized model should fail")
	}
}

func TestBiasInt32(t *testing.T) {
	b := tensor.FromFloat32(tensor.Shape{4}, []float32{0.5, -0.25, 1, 0})
	q, scales, ok := biasInt32(b, 0.5, []float32{0.01, 0.02})
	if !ok {
		t.Fatal("not ok")
	}
	want := []int32{100, -25, 200, 0}
	for i, v := range q.Data.([]int32) {
		if v != want[i] {
			t.Errorf("q[%d] = %d, want %d", i, v, want[i])
		}
	}
	if scales[1] != 0.01 || scales[2] != 0.005 {
		t.Errorf("scales %v", scales)
	}
	if _, _, ok := biasInt32(tensor.FromFloat32(tensor.Shape{1}, []float32{1e10}), 1e-3, []float32{1e-3}); ok {
		t.Error("overflowing bias should stay float")
	}
	_ = quant.Params{}
}

// A unit with all-zero weights but a bias (weight decay switched it off)
// keeps an int32 bias: its weight scale is widened instead.
func TestBiasOverflowWidensWeightScale(t *testing.T) {
	b := ir.NewBuilder("dead", 13)
	x := b.Input("input", tensor.Float32, -1, 4)
	w := randTensor(1, 0.5, 3, 4)
	for i := 4; i < 8; i++ {
		w.F32()[i] = 1e-30 // unit 1 is dead
	}
	bias := tensor.FromFloat32(tensor.Shape{3}, []float32{0.1, -0.3, 0.2})
	y := b.Op("Gemm", "fc", []ir.ValueID{x, b.Param("w", w), b.Param("b", bias)}, ir.IntAttr("transB", 1))
	b.Output(y)
	g := inferredGraph(t, b)
	xs := randTensor(2, 1, 8, 4)
	res := quantizeForTest(t, g, DefaultConfig(), xs)
	if len(res.FloatBiases) != 0 {
		t.Fatalf("biases kept float: %v", res.FloatBiases)
	}
	want, got := runOne(t, g, xs), runOne(t, res.Graph, xs)
	for i := 1; i < want.Len(); i += 3 {
		if d := math.Abs(float64(want.F32()[i] - got.F32()[i])); d > 0.01 {
			t.Errorf("dead unit output %g, want %g", got.F32()[i], want.F32()[i])
		}
	}
}
