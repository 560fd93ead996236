package infer_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ops"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// fuseRand returns a seeded float32 tensor with values in [-2, 2).
func fuseRand(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.FromFloat32(tensor.Shape(shape), make([]float32, tensor.Shape(shape).Size()))
	for i := range t.F32() {
		t.F32()[i] = 4*r.Float32() - 2
	}
	return t
}

// convAct builds x -> Conv -> act -> y (act "" for none) at opset 13,
// with the activation's extra inputs.
func convAct(t *testing.T, act string, opset int64, attrs ...ir.Attr) (*ir.Graph, ir.ValueID) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	b := ir.NewBuilder("convact", opset)
	x := b.Input("x", tensor.Float32, -1, 3, 8, 8)
	w := b.Const("w", fuseRand(r, 4, 3, 3, 3))
	bias := b.Const("b", fuseRand(r, 4))
	y := b.Op("Conv", "conv1", []ir.ValueID{x, w, bias}, ir.IntsAttr("pads", 1, 1, 1, 1))
	in := []ir.ValueID{y}
	if act == "Clip" && opset >= 11 {
		in = append(in, b.Const("lo", tensor.FromFloat32(tensor.Shape{}, []float32{0})),
			b.Const("hi", tensor.FromFloat32(tensor.Shape{}, []float32{1.5})))
	}
	b.Output(b.Op(act, "act1", in, attrs...))
	return b.G, y
}

// fuseRun runs g on the given input with and without fusion and checks
// that the outputs agree within tol (relative to the largest value).
func fuseRun(t *testing.T, g *ir.Graph, opts infer.Options, x *tensor.Tensor, tol float64) *infer.Session {
	t.Helper()
	s, err := infer.NewSession(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	ref := opts
	ref.NoFusion = true
	ref.Tap, ref.TapValues, ref.Keep = nil, nil, nil
	rs, err := infer.NewSession(g, ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := s.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	want, err := rs.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		g, w := got[i].F32(), want[i].F32()
		scale := 0.0
		for _, v := range w {
			scale = max(scale, math.Abs(float64(v)))
		}
		for j := range w {
			if d := math.Abs(float64(g[j] - w[j])); d > tol*scale || math.IsNaN(float64(g[j])) != math.IsNaN(float64(w[j])) {
				t.Fatalf("output %d[%d] = %v fused, %v unfused", i, j, g[j], w[j])
			}
		}
	}
	return s
}

// fusedRecords returns the records as "Op:Kernel:Fused" strings.
func fusedRecords(s *infer.Session) []infer.NodeKernel { return s.Kernels() }

func TestFuseConvActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := fuseRand(r, 2, 3, 8, 8)
	cases := []struct {
		act   string
		opset int64
		attrs []ir.Attr
	}{
		{"Relu", 13, nil},
		{"Clip", 13, nil},
		{"Clip", 9, []ir.Attr{ir.FloatAttr("min", -0.5), ir.FloatAttr("max", 0.5)}},
		{"HardSwish", 14, nil},
		{"LeakyRelu", 13, []ir.Attr{ir.FloatAttr("alpha", 0.2)}},
		{"Sigmoid", 13, nil},
	}
	for _, c := range cases {
		g, _ := convAct(t, c.act, c.opset, c.attrs...)
		for _, threads := range []int{1, 2} {
			s := fuseRun(t, g, infer.Options{Threads: threads}, x, 0)
			recs := fusedRecords(s)
			if len(recs) != 2 || recs[0].Op != "Conv" || recs[0].Fused != "goslim.FusedConv" || recs[0].FusedInto != -1 {
				t.Fatalf("%s: head record %+v", c.act, recs)
			}
			if recs[1].Op != c.act || recs[1].FusedInto != recs[0].Node || !strings.Contains(recs[1].Kernel, `fused into "conv1"`) {
				t.Fatalf("%s: absorbed record %+v", c.act, recs[1])
			}
		}
	}
}

// fuseCount returns how many records are fused into another node.
func fuseCount(s *infer.Session) int {
	n := 0
	for _, r := range s.Kernels() {
		if r.FusedInto >= 0 {
			n++
		}
	}
	return n
}

func TestFuseRespectsVisibility(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := fuseRand(r, 1, 3, 8, 8)
	g, mid := convAct(t, "Relu", 13)
	tap := func(ir.ValueID, *tensor.Tensor) error { return nil }
	cases := []struct {
		name  string
		opts  infer.Options
		fused int
	}{
		{"default", infer.Options{}, 1},
		{"tap all", infer.Options{Tap: tap}, 0},
		{"tap mid", infer.Options{Tap: tap, TapValues: []ir.ValueID{mid}}, 0},
		{"tap other", infer.Options{Tap: tap, TapValues: []ir.ValueID{g.Inputs[0]}}, 1},
		{"tap none", infer.Options{Tap: tap, TapValues: []ir.ValueID{}}, 1},
		{"keep mid", infer.Options{Keep: []ir.ValueID{mid}}, 0},
		{"no fusion", infer.Options{NoFusion: true}, 0},
	}
	for _, c := range cases {
		c.opts.Threads = 1
		s := fuseRun(t, g, c.opts, x, 1e-6)
		if n := fuseCount(s); n != c.fused {
			t.Errorf("%s: %d fused nodes, want %d", c.name, n, c.fused)
		}
	}

	// The tap sees the unfused Conv output when it asks for it.
	var seen *tensor.Tensor
	s, err := infer.NewSession(g, infer.Options{Threads: 1, TapValues: []ir.ValueID{mid}, Tap: func(id ir.ValueID, t *tensor.Tensor) error {
		seen = t.Clone()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunInputs(context.Background(), []*tensor.Tensor{x}); err != nil {
		t.Fatal(err)
	}
	neg := false
	for _, v := range seen.F32() {
		neg = neg || v < 0
	}
	if !neg {
		t.Fatal("the tapped Conv output has no negative values: it was fused with its Relu")
	}

	// A Conv output that is also a graph output, or read twice, stays.
	g2 := g.Clone()
	g2.Outputs = append(g2.Outputs, mid)
	if n := fuseCount(fuseRun(t, g2, infer.Options{Threads: 1}, x, 1e-6)); n != 0 {
		t.Errorf("graph output: %d fused nodes", n)
	}
	b := ir.NewBuilder("two", 13)
	xi := b.Input("x", tensor.Float32, -1, 3, 8, 8)
	w := b.Const("w", fuseRand(r, 4, 3, 1, 1))
	y := b.Op("Conv", "conv", []ir.ValueID{xi, w})
	b.Output(b.Op("Add", "add", []ir.ValueID{b.Op("Relu", "relu", []ir.ValueID{y}), y}))
	if n := fuseCount(fuseRun(t, b.G, infer.Options{Threads: 1}, x, 1e-6)); n != 0 {
		t.Errorf("two readers: %d fused nodes", n)
	}
}

func TestFuseClipNeedsConstantBounds(t *testing.T) {
	b := ir.NewBuilder("clip", 13)
	x := b.Input("x", tensor.Float32, 1, 3, 4, 4)
	lo := b.Input("lo", tensor.Float32)
	w := b.Const("w", fuseRand(rand.New(rand.NewPCG(1, 1)), 2, 3, 1, 1))
	y := b.Op("Conv", "conv", []ir.ValueID{x, w})
	b.Output(b.Op("Clip", "clip", []ir.ValueID{y, lo}))
	s, err := infer.NewSession(b.G, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := fuseCount(s); n != 0 {
		t.Fatalf("Clip with a fed bound was fused")
	}
}

// fuseTable returns a table with only the given ONNX ops of ops.NewTable
// (no fused kernels) plus extra entries.
func fuseTable(opsNames []string, extra ...kernel.Entry) *kernel.Table {
	full := ops.NewTable()
	t := kernel.NewTable()
	for _, op := range opsNames {
		for _, e := range full.Entries("", op) {
			t.Add(e)
		}
	}
	for _, e := range extra {
		t.Add(e)
	}
	return t
}

func TestFuseFallsBackWithoutKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := fuseRand(r, 2, 3, 8, 8)
	g, _ := convAct(t, "Relu", 13)
	s := fuseRun(t, g, infer.Options{Threads: 1, Table: fuseTable([]string{"Conv", "Relu"})}, x, 0)
	if n := fuseCount(s); n != 0 {
		t.Fatalf("fused without a FusedConv kernel: %+v", s.Kernels())
	}

	// A fake FusedConv entry receives the Conv's inputs and attributes plus
	// the activation attributes, and its output replaces the Relu's.
	var got *ir.Node
	fake := kernel.Entry{Domain: "goslim", Op: "FusedConv", Name: "fake", Build: func(info *kernel.Info) (kernel.Kernel, error) {
		got = info.Node
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			o, err := c.Output(0, tensor.Float32, tensor.Shape{in[0].Shape[0], 4, 8, 8})
			if err != nil {
				return err
			}
			for i := range o.F32() {
				o.F32()[i] = 7
			}
			return nil
		}), nil
	}}
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Table: fuseTable([]string{"Conv", "Relu"}, fake)})
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Domain != "goslim" || len(got.Inputs) != 3 || got.Attrs.Str("activation", "") != "Relu" {
		t.Fatalf("fake FusedConv saw node %+v", got)
	}
	if p, ok := got.Attrs.Ints("pads"); !ok || len(p) != 4 {
		t.Fatalf("the Conv attributes were not passed on: %v", got.Attrs)
	}
	out, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].F32()[0] != 7 || out[0].Shape[0] != 2 {
		t.Fatalf("the fused kernel's output was not the graph output: %v", out[0].Shape)
	}
	recs := s.Kernels()
	if recs[0].Kernel != "fake" || recs[0].Fused != "goslim.FusedConv" || recs[1].FusedInto != recs[0].Node {
		t.Fatalf("records %+v", recs)
	}
	// The compiled graph is untouched.
	if g.Nodes[0].Op != "Conv" || g.Nodes[0].Domain != "" || len(g.Nodes) != 2 {
		t.Fatalf("the caller's graph changed: %+v", g.Nodes[0])
	}
}

// matmulGraph builds y = act(x @ W + bias) with the bias given as shape.
func matmulGraph(t *testing.T, act string, rankA int, biasShape ...int) *ir.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 10))
	b := ir.NewBuilder("mm", 13)
	dims := []int64{-1, 6}
	if rankA == 3 {
		dims = []int64{2, -1, 6}
	}
	x := b.Input("x", tensor.Float32, dims...)
	w := b.Const("w", fuseRand(r, 6, 5))
	y := b.Op("MatMul", "mm", []ir.ValueID{x, w})
	y = b.Op("Add", "bias", []ir.ValueID{b.Const("b", fuseRand(r, biasShape...)), y})
	if act != "" {
		y = b.Op(act, "act", []ir.ValueID{y})
	}
	b.Output(y)
	return b.G
}

func TestFuseMatMulAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := fuseRand(r, 3, 6)
	cases := []struct {
		act   string
		rank  int
		bias  []int
		fused int
		op    string // the internal op of the first group
	}{
		{"Relu", 2, []int{5}, 2, "goslim.FusedGemm"},
		{"", 2, []int{1, 5}, 1, "goslim.FusedGemm"},
		{"Sigmoid", 2, []int{5}, 2, "goslim.FusedGemm"},
		// A bias with rows would fix the batch, and a batched MatMul is not
		// a Gemm: the MatMul stays, the Add takes the activation.
		{"Relu", 2, []int{3, 5}, 1, "goslim.FusedBinary"},
		{"Relu", 3, []int{5}, 1, "goslim.FusedBinary"},
	}
	for _, c := range cases {
		g := matmulGraph(t, c.act, c.rank, c.bias...)
		in := x
		if c.rank == 3 {
			in = fuseRand(r, 2, 3, 6)
		}
		s := fuseRun(t, g, infer.Options{Threads: 1}, in, 1e-6)
		if n := fuseCount(s); n != c.fused {
			t.Errorf("%+v: %d fused nodes, want %d: %+v", c, n, c.fused, s.Kernels())
		}
		found := false
		for _, r := range s.Kernels() {
			found = found || r.Fused == c.op
		}
		if !found {
			t.Errorf("%+v: no %s in records %+v", c, c.op, s.Kernels())
		}
	}
}

func TestFuseBinaryActivation(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		for _, act := range []string{"Relu", "Clip", "LeakyRelu", "HardSwish", "Sigmoid"} {
			b := ir.NewBuilder("ew", 14)
			x := b.Input("x", tensor.Float32, -1, 4, 5)
			c := b.Const("c", fuseRand(r, 4, 1))
			y := b.Op(op, "op", []ir.ValueID{x, c})
			in := []ir.ValueID{y}
			if act == "Clip" {
				in = append(in, b.Const("lo", tensor.FromFloat32(tensor.Shape{}, []float32{-0.25})))
			}
			b.Output(b.Op(act, "act", in))
			s := fuseRun(t, b.G, infer.Options{Threads: 1}, fuseRand(r, 3, 4, 5), 0)
			if n := fuseCount(s); n != 1 || s.Kernels()[0].Fused != "goslim.FusedBinary" {
				t.Errorf("%s -> %s: records %+v", op, act, s.Kernels())
			}
		}
	}
}

// fakeConvAdd is a goslim.FusedConvAdd kernel for tests, built from the
// table's Conv kernel: Y = act(Conv(X, W, B) + Z) for Relu or no
// activation.
func fakeConvAdd(calls *int) kernel.Entry {
	return kernel.Entry{Domain: "goslim", Op: "FusedConvAdd", Name: "fake", Build: func(info *kernel.Info) (kernel.Kernel, error) {
		node := *info.Node
		node.Op, node.Domain = "Conv", ""
		node.Inputs = node.Inputs[:3]
		act := node.Attrs.Str("activation", "")
		node.Attrs = node.Attrs.Without("activation")
		ci := &kernel.Info{Graph: info.Graph, Node: &node, Opset: 13, Tier: info.Tier, Inputs: info.Inputs[:3], Consts: info.Consts[:3]}
		conv, _, err := ops.NewTable().Lookup(ci)
		if err != nil {
			return nil, err
		}
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			*calls++
			y, err := kernel.RunNode(conv, kernel.NewCtx(&node, 1, nil), 1, in[:3])
			if err != nil {
				return err
			}
			o, err := c.Output(0, tensor.Float32, y[0].Shape)
			if err != nil {
				return err
			}
			for i, v := range y[0].F32() {
				v += in[3].F32()[i]
				if act == "Relu" {
					v = max(v, 0)
				}
				o.F32()[i] = v
			}
			return nil
		}), nil
	}}
}

// residualGraph builds relu(conv1(x) + conv2(x)) with conv2 placed after
// the Add in the node list, so its output is ready only after conv1's
// place in the order.
func residualGraph(t *testing.T, act bool) *ir.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(15, 16))
	b := ir.NewBuilder("res", 13)
	x := b.Input("x", tensor.Float32, -1, 4, 6, 6)
	w1, b1 := b.Const("w1", fuseRand(r, 4, 4, 3, 3)), b.Const("b1", fuseRand(r, 4))
	w2 := b.Const("w2", fuseRand(r, 4, 4, 1, 1))
	y1 := b.Op("Conv", "conv1", []ir.ValueID{x, w1, b1}, ir.IntsAttr("pads", 1, 1, 1, 1))
	y2 := b.G.AddValue(ir.Value{Name: "y2"})
	sum := b.Op("Add", "add", []ir.ValueID{y1, y2})
	if act {
		sum = b.Op("Relu", "relu", []ir.ValueID{sum})
	}
	b.G.AddNode(ir.Node{Op: "Conv", Name: "conv2", Inputs: []ir.ValueID{x, w2}, Outputs: []ir.ValueID{y2}})
	b.Output(sum)
	return b.G
}

func TestFuseConvAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	x := fuseRand(r, 2, 4, 6, 6)
	for _, act := range []bool{true, false} {
		g := residualGraph(t, act)
		calls := 0
		full := ops.NewTable()
		full.Add(fakeConvAdd(&calls))
		s := fuseRun(t, g, infer.Options{Threads: 1, Table: full}, x, 1e-5)
		if calls == 0 {
			t.Fatalf("act %v: the FusedConvAdd kernel did not run: %+v", act, s.Kernels())
		}
		recs := s.Kernels()
		var head infer.NodeKernel
		absorbed := 0
		for _, r := range recs {
			if r.Fused == "goslim.FusedConvAdd" {
				head = r
			}
			if r.FusedInto >= 0 {
				absorbed++
			}
		}
		want := 1
		if act {
			want = 2
		}
		if head.Op != "Conv" || absorbed != want || len(recs) != len(g.Nodes) {
			t.Fatalf("act %v: records %+v", act, recs)
		}
	}
	// Without a FusedConvAdd kernel, a one-stage ConvChain computes the
	// group, exactly as the unfused nodes.
	s := fuseRun(t, residualGraph(t, true), infer.Options{Threads: 1}, x, 0)
	found := false
	for _, r := range s.Kernels() {
		found = found || r.Fused == "goslim.ConvChain"
	}
	if !found || fuseCount(s) != 2 {
		t.Fatalf("no fallback to ConvChain: %+v", s.Kernels())
	}
	// A Z that broadcasts is not a residual.
	b := ir.NewBuilder("bias", 13)
	xi := b.Input("x", tensor.Float32, 1, 4, 6, 6)
	y := b.Op("Conv", "conv", []ir.ValueID{xi, b.Const("w", fuseRand(r, 4, 4, 1, 1))})
	b.Output(b.Op("Add", "add", []ir.ValueID{y, b.Input("z", tensor.Float32, 1, 4, 1, 1)}))
	calls := 0
	full := ops.NewTable()
	full.Add(fakeConvAdd(&calls))
	s, err := infer.NewSession(b.G, infer.Options{Threads: 1, Table: full})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Kernels() {
		if r.Fused == "goslim.FusedConvAdd" {
			t.Fatalf("fused a broadcasting Add: %+v", s.Kernels())
		}
	}
}

// TestConstantNodesFold checks that Constant nodes become constants of
// the session (no step, record "constant"), so Clip bounds from Constant
// nodes fuse, and that a tapped Constant output is still computed.
func TestConstantNodesFold(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	b := ir.NewBuilder("constclip", 13)
	x := b.Input("x", tensor.Float32, -1, 3, 5, 5)
	y := b.Op("Conv", "conv", []ir.ValueID{x, b.Const("w", fuseRand(r, 2, 3, 1, 1))})
	lo := b.Op("Constant", "lo", nil, ir.TensorAttr("value", tensor.FromFloat32(tensor.Shape{}, []float32{0})))
	hi := b.Op("Constant", "hi", nil, ir.FloatAttr("value_float", 0.5))
	b.Output(b.Op("Clip", "clip", []ir.ValueID{y, lo, hi}))
	in := fuseRand(r, 2, 3, 5, 5)
	s := fuseRun(t, b.G, infer.Options{Threads: 1}, in, 1e-6)
	kinds := map[string]string{}
	for _, rec := range s.Kernels() {
		kinds[rec.Op] = rec.Kernel
	}
	if kinds["Constant"] != "constant" || !strings.Contains(kinds["Clip"], "fused into") {
		t.Fatalf("records %+v", s.Kernels())
	}
	var seen *tensor.Tensor
	tap := func(id ir.ValueID, v *tensor.Tensor) error {
		if id == hi {
			seen = v.Clone()
		}
		return nil
	}
	s = fuseRun(t, b.G, infer.Options{Threads: 1, Tap: tap, TapValues: []ir.ValueID{hi}}, in, 1e-6)
	if seen == nil || seen.F32()[0] != 0.5 {
		t.Fatalf("tapped Constant output %v", seen)
	}
	for _, rec := range s.Kernels() {
		if rec.Node == 2 && rec.Kernel == "constant" {
			t.Fatalf("a tapped Constant node was folded: %+v", rec)
		}
	}
}

// chainGraph builds an inverted-residual block on 8x24x24: a 1x1
// expansion to 48 channels and Clip(0, 6), a 3x3 depthwise convolution
// with the given stride and Clip, a 1x1 projection to 8 channels and, for
// stride 1, the Add of the input and a Relu. The expanded values hold
// 110 KB per image, enough for a ConvChain.
func chainGraph(t *testing.T, stride int64) (*ir.Graph, []ir.ValueID) {
	t.Helper()
	r := rand.New(rand.NewPCG(21, 22))
	b := ir.NewBuilder("chain", 13)
	x := b.Input("x", tensor.Float32, -1, 8, 24, 24)
	lo := b.Const("lo", tensor.FromFloat32(tensor.Shape{}, []float32{0}))
	hi := b.Const("hi", tensor.FromFloat32(tensor.Shape{}, []float32{6}))
	e := b.Op("Conv", "expand", []ir.ValueID{x, b.Const("we", fuseRand(r, 48, 8, 1, 1)), b.Const("be", fuseRand(r, 48))})
	ea := b.Op("Clip", "expand_act", []ir.ValueID{e, lo, hi})
	d := b.Op("Conv", "dw", []ir.ValueID{ea, b.Const("wd", fuseRand(r, 48, 1, 3, 3)), b.Const("bd", fuseRand(r, 48))},
		ir.IntAttr("group", 48), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("strides", stride, stride))
	da := b.Op("Clip", "dw_act", []ir.ValueID{d, lo, hi})
	y := b.Op("Conv", "project", []ir.ValueID{da, b.Const("wp", fuseRand(r, 8, 48, 1, 1))})
	if stride == 1 {
		y = b.Op("Relu", "relu", []ir.ValueID{b.Op("Add", "add", []ir.ValueID{x, y})})
	}
	b.Output(y)
	return b.G, []ir.ValueID{ea, da}
}

// TestFuseConvChain checks that chains of convolutions run as one
// goslim.ConvChain whose results equal the unfused nodes bit for bit, for
// batches that do and do not split evenly over threads, and that a tapped
// value between stages stops the chain.
func TestFuseConvChain(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, stride := range []int64{1, 2} {
		g, mid := chainGraph(t, stride)
		// Stride 1: expand, dw, project, Add, Relu and both Clips in one
		// node; stride 2: the 27 KB per image after the depthwise stage end
		// the chain before the projection (expand_act, dw, dw_act absorbed).
		wantAbsorbed := 6
		if stride == 2 {
			wantAbsorbed = 3
		}
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{1, 3, 8} {
				s := fuseRun(t, g, infer.Options{Threads: threads}, fuseRand(r, batch, 8, 24, 24), 0)
				var head infer.NodeKernel
				for _, k := range s.Kernels() {
					if k.Fused == "goslim.ConvChain" {
						head = k
					}
				}
				if head.Op != "Conv" || head.Label != `"expand" (Conv)` || fuseCount(s) != wantAbsorbed {
					t.Fatalf("stride %d: records %+v", stride, s.Kernels())
				}
				// Runs again on the same session (buffers and windows reused).
				fuseRunAgain(t, s, g, threads, fuseRand(r, batch, 8, 24, 24))
			}
		}
		// A tapped value between stages is never hidden.
		tap := func(ir.ValueID, *tensor.Tensor) error { return nil }
		s := fuseRun(t, g, infer.Options{Threads: 1, Tap: tap, TapValues: mid[:1]}, fuseRand(r, 2, 8, 24, 24), 0)
		for _, k := range s.Kernels() {
			if k.Fused == "goslim.ConvChain" && k.Label == `"expand" (Conv)` {
				t.Fatalf("stride %d: chain hides a tapped value: %+v", stride, s.Kernels())
			}
		}
	}
}

// fuseRunAgain runs s and an unfused session of g on x and checks that the
// outputs are identical.
func fuseRunAgain(t *testing.T, s *infer.Session, g *ir.Graph, threads int, x *tensor.Tensor) {
	t.Helper()
	rs, err := infer.NewSession(g, infer.Options{Threads: threads, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := s.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	want, err := rs.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	for j, w := range want[0].F32() {
		if got[0].F32()[j] != w {
			t.Fatalf("output [%d] = %v fused, %v unfused", j, got[0].F32()[j], w)
		}
	}
}
