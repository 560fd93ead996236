package infer_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ops"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/ptq"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// int8Model is a QDQ model made by goslim ptq from a zoo architecture with
// random weights, calibrated on random images.
type int8Model struct {
	name string
	g    *ir.Graph
	in   tensor.Shape // one sample
}

func randImages(seed uint64, n int, shape tensor.Shape) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	sh := append(tensor.Shape{n}, shape...)
	d := make([]float32, sh.Size())
	for i := range d {
		d[i] = r.Float32()
	}
	return tensor.FromFloat32(sh, d)
}

// quantizeZoo builds spec with zoo and quantizes it with goslim ptq.
func quantizeZoo(t testing.TB, spec string, o zoo.Options, cfg *ptq.Config) int8Model {
	t.Helper()
	g, err := zoo.Build(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	return quantizeGraph(t, spec, g, cfg)
}

// quantizeGraph quantizes g with goslim ptq, calibrated on random images.
func quantizeGraph(t testing.TB, name string, g *ir.Graph, cfg *ptq.Config) int8Model {
	t.Helper()
	in := g.Values[g.Inputs[0]].Type
	var shape tensor.Shape
	for _, d := range in.Shape[1:] {
		shape = append(shape, int(d.Size))
	}
	x := randImages(1, 32, shape)
	path := filepath.Join(t.TempDir(), "calib.npy")
	if err := npy.WriteFile(path, x); err != nil {
		t.Fatal(err)
	}
	cal, err := dataset.Open("npy:"+path, dataset.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = ptq.DefaultConfig()
	}
	out, err := ptq.Run(context.Background(), g, cfg, ptq.Options{Calib: cal, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return int8Model{name: name, g: out.Graph, in: shape}
}

// outputStep returns the scale of the DequantizeLinear that produces the
// graph's first output (the size of one output quantization step).
func outputStep(t testing.TB, g *ir.Graph) float64 {
	t.Helper()
	out := g.Outputs[0]
	for _, n := range g.Nodes {
		if len(n.Outputs) == 1 && n.Outputs[0] == out && n.Op == "DequantizeLinear" {
			return float64(g.Values[n.Inputs[1]].Const.F32()[0])
		}
	}
	t.Fatal("the output is not dequantized")
	return 0
}

// withinStep counts the elements of a and b that differ by more than one
// output step.
func withinStep(a, b *tensor.Tensor, step float64) (bad, maxSteps int) {
	x, y := a.F32(), b.F32()
	for i := range x {
		d := math.Abs(float64(x[i]) - float64(y[i]))
		k := int(math.Round(d / step))
		maxSteps = max(maxSteps, k)
		if d > step*1.001 {
			bad++
		}
	}
	return bad, maxSteps
}

func run1(t testing.TB, s *infer.Session, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// lowered counts the nodes that run in integer kernels and returns the
// notes of those that stayed in float.
func lowered(s *infer.Session) (n int, notes []string) {
	for _, r := range s.Kernels() {
		if strings.HasPrefix(r.Fused, infer.FusedDomain+".Q") || strings.HasPrefix(r.Fused, "int8 ") {
			n++
		}
		if r.Note != "" {
			notes = append(notes, r.Label+": "+r.Note)
		}
	}
	return n, notes
}

// refTable is ops.NewTable with reference kernels for the internal
// integer ops, written in float from their definition (dequantize, the
// float op, quantize, clamp to act_min..act_max, honouring the layout
// attributes), so the lowering is tested independently of the integer
// kernels. They replace the entries of ops.NewTable for those ops.
func refTable() *kernel.Table {
	t := noQLinearTable()
	for _, op := range []string{infer.QLinearConv, infer.QLinearMatMul, infer.QGemm, infer.QLinearAdd, infer.QLinearMul,
		infer.QLinearConcat, infer.QLinearGlobalAveragePool, infer.QLinearAveragePool} {
		t.Add(kernel.Entry{Domain: infer.FusedDomain, Op: op, Name: "test.reference", Priority: kernel.Arch + 10, Build: refBuild})
	}
	t.Add(kernel.Entry{Domain: infer.FusedDomain, Op: "MaxPool", Name: "test.reference", Priority: kernel.Arch + 10, Build: refMaxPool})
	return t
}

// refLayout reads the layout attributes of a lowered node (x_channels_last,
// y_channels_last), refusing values other than 0 and 1 as the integer
// kernels do (the layout pass relies on that).
func refLayout(n *ir.Node) (x, y bool, err error) {
	for i, name := range []string{"x_channels_last", "y_channels_last"} {
		v := n.Attrs.Int(name, 0)
		if v != 0 && v != 1 {
			return false, false, fmt.Errorf("%s = %d, want 0 or 1", name, v)
		}
		if i == 0 {
			x = v == 1
		} else {
			y = v == 1
		}
	}
	return x, y, nil
}

// toLayout returns the rank-4 tensor t (uint8, int8 or float32) permuted
// from NCHW to NHWC (toNHWC) or back.
func toLayout(t *tensor.Tensor, toNHWC bool) *tensor.Tensor {
	if t.Rank() != 4 {
		panic("toLayout: rank " + fmt.Sprint(t.Rank()))
	}
	n, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	if !toNHWC {
		n, h, w, c = t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	}
	shape := tensor.Shape{n, h, w, c}
	if !toNHWC {
		shape = tensor.Shape{n, c, h, w}
	}
	out, err := tensor.New(t.DType, shape)
	if err != nil {
		panic(err)
	}
	move := func(f func(dst, src int)) {
		for i := range n {
			for ch := range c {
				for y := range h {
					for x := range w {
						nchw := ((i*c+ch)*h+y)*w + x
						nhwc := ((i*h+y)*w+x)*c + ch
						if toNHWC {
							f(nhwc, nchw)
						} else {
							f(nchw, nhwc)
						}
					}
				}
			}
		}
	}
	switch d := out.Data.(type) {
	case []uint8:
		src := t.U8()
		move(func(a, b int) { d[a] = src[b] })
	case []int8:
		src := t.I8()
		move(func(a, b int) { d[a] = src[b] })
	case []float32:
		src := t.F32()
		move(func(a, b int) { d[a] = src[b] })
	default:
		panic("toLayout: " + t.DType.String())
	}
	return out
}

// refMaxPool is the reference goslim-domain MaxPool (the 8-bit MaxPool
// with layout attributes, in and out layouts independent): ONNX MaxPool
// on the NCHW data.
func refMaxPool(info *kernel.Info) (kernel.Kernel, error) {
	n := info.Node
	xl, yl, err := refLayout(n)
	if err != nil {
		return nil, info.Errorf("%v", err)
	}
	pool := ir.Node{Op: "MaxPool", Attrs: n.Attrs.Without("x_channels_last").Without("y_channels_last"),
		Inputs: []ir.ValueID{0}, Outputs: []ir.ValueID{1}}
	eval := infer.NodeEvaluator(nil)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x := in[0]
		if xl {
			x = toLayout(x, false)
		}
		res, err := eval(&pool, 13, []*tensor.Tensor{x})
		if err != nil {
			return err
		}
		r := res[0]
		if yl {
			r = toLayout(r, true)
		}
		y, err := c.Output(0, r.DType, r.Shape)
		if err != nil {
			return err
		}
		switch d := y.Data.(type) {
		case []uint8:
			copy(d, r.U8())
		case []int8:
			copy(d, r.I8())
		default:
			return c.Errorf("MaxPool of %v", r.DType)
		}
		return nil
	}), nil
}

func refBuild(info *kernel.Info) (kernel.Kernel, error) {
	n := info.Node
	eval := infer.NodeEvaluator(nil)
	type qin struct{ x, s, z int } // input slots of a quantized operand
	var ins []qin                  // dequantized float operands, in float-op order
	var ys, yz int                 // output scale and zero point slots
	var float ir.Node
	bias := -1
	attrs := n.Attrs.Without("act_min").Without("act_max").Without("x_channels_last").Without("y_channels_last")
	xl, yl, err := refLayout(n)
	if err != nil {
		return nil, info.Errorf("%v", err)
	}
	act := map[int]bool{} // input slots of 8-bit activations (laid out as x_channels_last says)
	switch n.Op {
	case infer.QLinearConv:
		ins, ys, yz, bias = []qin{{0, 1, 2}, {3, 4, 5}}, 6, 7, 8
		act[0] = true
		float = ir.Node{Op: "Conv", Attrs: attrs}
	case infer.QLinearMatMul:
		ins, ys, yz = []qin{{0, 1, 2}, {3, 4, 5}}, 6, 7
		float = ir.Node{Op: "MatMul"}
	case infer.QGemm:
		ins, ys, yz, bias = []qin{{0, 1, 2}, {3, 4, 5}}, 7, 8, 6
		float = ir.Node{Op: "Gemm", Attrs: attrs}
	case infer.QLinearAdd, infer.QLinearMul:
		ins, ys, yz = []qin{{0, 1, 2}, {3, 4, 5}}, 6, 7
		act[0], act[3] = true, true
		float = ir.Node{Op: strings.TrimPrefix(n.Op, "QLinear")}
	case infer.QLinearGlobalAveragePool:
		ins, ys, yz = []qin{{0, 1, 2}}, 3, 4
		act[0] = true
		yl = false // [N,C,1,1] in both layouts
		float = ir.Node{Op: "GlobalAveragePool"}
	case infer.QLinearAveragePool:
		ins, ys, yz = []qin{{0, 1, 2}}, 3, 4
		act[0] = true
		float = ir.Node{Op: "AveragePool", Attrs: attrs.Without("channels_last")}
	case infer.QLinearConcat:
		ys, yz = 0, 1
		for i := 2; i+2 < len(n.Inputs); i += 3 {
			ins = append(ins, qin{i, i + 1, i + 2})
		}
		float = ir.Node{Op: "Concat", Attrs: attrs}
	}
	lo, hi := n.Attrs.Int("act_min", math.MinInt32), n.Attrs.Int("act_max", math.MaxInt32)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		var fin []*tensor.Tensor
		for _, q := range ins {
			x := in[q.x]
			if xl && act[q.x] {
				x = toLayout(x, false)
			}
			fin = append(fin, deq(x, in[q.s], in[q.z]))
		}
		if bias >= 0 && bias < len(in) && in[bias] != nil {
			sx, sw := in[ins[0].s].F32(), in[ins[1].s].F32()
			b := in[bias].I32()
			f := make([]float32, len(b))
			for i, v := range b {
				f[i] = float32(v) * (sx[0] * sw[i%len(sw)])
			}
			fin = append(fin, tensor.FromFloat32(tensor.Shape{len(b)}, f))
		}
		float.Inputs = make([]ir.ValueID, len(fin))
		float.Outputs = []ir.ValueID{0}
		res, err := eval(&float, 13, fin)
		if err != nil {
			return err
		}
		if yl {
			res[0] = toLayout(res[0], true)
		}
		if ys >= len(in) || in[ys] == nil { // QGemm with a float output
			y, err := c.Output(0, tensor.Float32, res[0].Shape)
			if err != nil {
				return err
			}
			copy(y.F32(), res[0].F32())
			return nil
		}
		z := in[yz]
		y, err := c.Output(0, z.DType, res[0].Shape)
		if err != nil {
			return err
		}
		s := in[ys].F32()[0]
		zv := int64(z.Float64At(0))
		qmin, qmax := int64(0), int64(255)
		if z.DType == tensor.Int8 {
			qmin, qmax = -128, 127
		}
		for i, v := range res[0].F32() {
			q := int64(math.RoundToEven(float64(v/s))) + zv
			q = min(max(q, qmin, lo), qmax, hi)
			if z.DType == tensor.Int8 {
				y.I8()[i] = int8(q)
			} else {
				y.U8()[i] = uint8(q)
			}
		}
		return nil
	}), nil
}

// deq dequantizes x with per-tensor or per-axis-0/last-axis scales (the
// axis is the one whose length matches the scale count).
func deq(x, s, z *tensor.Tensor) *tensor.Tensor {
	sc := s.F32()
	n := x.Len()
	out := make([]float32, n)
	axisInner := 1
	if len(sc) > 1 {
		if x.Shape[0] == len(sc) && x.Rank() > 1 {
			axisInner = n / x.Shape[0]
		} else { // last axis (Gemm/MatMul B [K, N])
			axisInner = 0
		}
	}
	for i := range out {
		c := 0
		if len(sc) > 1 {
			if axisInner == 0 {
				c = i % len(sc)
			} else {
				c = i / axisInner
			}
		}
		zp := 0.0
		if z != nil {
			zp = z.Float64At(c % z.Len())
		}
		out[i] = float32(x.Float64At(i)-zp) * sc[c]
	}
	return tensor.FromFloat32(x.Shape.Clone(), out)
}

// checkLowering compares the lowered session (table) with the reference
// DQ -> FP32 -> Q session on random inputs and returns how many nodes
// were lowered.
func checkLowering(t *testing.T, m int8Model, table *kernel.Table, tier string, batch int) int {
	t.Helper()
	ref, err := infer.NewSession(m.g, infer.Options{Threads: 1, NoInt8Lowering: true, Kernels: tier})
	if err != nil {
		t.Fatal(err)
	}
	low, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: table, Kernels: tier})
	if err != nil {
		t.Fatal(err)
	}
	n, notes := lowered(low)
	step := outputStep(t, m.g)
	x := randImages(99, batch, m.in)
	a, b := run1(t, ref, x), run1(t, low, x)
	bad, steps := withinStep(a, b, step)
	if float64(bad) > 0.001*float64(a.Len()) {
		t.Errorf("%s: %d of %d outputs differ by more than one step (max %d steps)", m.name, bad, a.Len(), steps)
	}
	t.Logf("%s tier %q: %d nodes lowered, %d/%d outputs beyond one step, max %d steps; notes %q", m.name, tier, n, bad, a.Len(), steps, notes)
	return n
}

var int8Zoo = []struct {
	spec string
	o    zoo.Options
	want int // lowered nodes at least
}{
	{"lenet", zoo.Options{Seed: 3}, 8},
	{"mlp", zoo.Options{Seed: 3}, 3},
	{"resnet8", zoo.Options{Seed: 3, InC: 3, InH: 32, InW: 32}, 15},
	{"mobilenetv2:0.5", zoo.Options{Seed: 3, InC: 3, InH: 32, InW: 32}, 60},
}

// TestLowerInt8Reference checks the lowering against the unlowered graph
// with reference integer kernels: the pass's rewiring (weights, biases,
// zero points, clamps, passthrough ops) is right whatever the kernels do.
func TestLowerInt8Reference(t *testing.T) {
	for _, z := range int8Zoo {
		t.Run(z.spec, func(t *testing.T) {
			m := quantizeZoo(t, z.spec, z.o, nil)
			if n := checkLowering(t, m, refTable(), "generic", 8); n < z.want {
				t.Errorf("%d nodes lowered, want at least %d", n, z.want)
			}
		})
	}
}

// TestLowerInt8Kernels runs the comparison with the table's own integer
// kernels on every tier this CPU has: each layer in isolation (every
// QuantizeLinear output, computed from the reference's 8-bit inputs) is
// within one step of DQ -> FP32 -> Q on >= 99.9% of elements, whole
// models agree within one output step (except the random-weight
// MobileNetV2, whose QDQ graph is chaotic: its FP32 path disagrees with
// itself across FP32 tiers by several steps, so only its layers are
// checked), and all tiers give the same bits.
func TestLowerInt8Kernels(t *testing.T) {
	if !ops.NewTable().Has(infer.FusedDomain, infer.QLinearConv) {
		t.Fatal("the goslim-domain QLinearConv kernel is not registered")
	}
	for _, z := range int8Zoo {
		t.Run(z.spec, func(t *testing.T) {
			m := quantizeZoo(t, z.spec, z.o, nil)
			var first *tensor.Tensor
			x := randImages(5, 2, m.in)
			for _, tier := range []string{"generic", "avx2", "avx512", "vnni", "amx"} {
				tr, _ := kernel.ParseTier(tier)
				if !tr.Available() {
					continue
				}
				checkLayers(t, m, tier, x)
				if !strings.HasPrefix(z.spec, "mobilenet") {
					checkLowering(t, m, nil, tier, 2)
				}
				s, err := infer.NewSession(m.g, infer.Options{Threads: 1, Kernels: tier})
				if err != nil {
					t.Fatal(err)
				}
				y := run1(t, s, x)
				if first == nil {
					first = y
					continue
				}
				for i, v := range y.F32() {
					if v != first.F32()[i] {
						t.Fatalf("tier %s differs from generic at %d: %g vs %g", tier, i, v, first.F32()[i])
					}
				}
			}
		})
	}
}

// checkLayers runs the reference session on x, keeping every 8-bit
// activation, then checks each layer alone: the subgraph from its 8-bit
// inputs to its QuantizeLinear output, fed the reference's inputs, lowered
// vs not.
func checkLayers(t *testing.T, m int8Model, tier string, x *tensor.Tensor) {
	t.Helper()
	g := m.g
	var qs []ir.ValueID
	prod := g.Producers()
	for _, n := range g.Nodes {
		if n.Op == "QuantizeLinear" && !g.IsInput(n.Inputs[0]) {
			qs = append(qs, n.Outputs[0])
		}
	}
	var all []ir.ValueID
	for _, n := range g.Nodes {
		if n.Op == "QuantizeLinear" {
			all = append(all, n.Outputs[0])
		}
	}
	ref, err := infer.NewSession(g, infer.Options{Threads: 1, Kernels: tier, NoInt8Lowering: true, Keep: all})
	if err != nil {
		t.Fatal(err)
	}
	run1(t, ref, x)
	isQ := map[ir.ValueID]bool{}
	for _, n := range g.Nodes {
		if n.Op == "QuantizeLinear" {
			isQ[n.Outputs[0]] = true
		}
	}
	layers, nLow, worst := 0, 0, 0.0
	for _, y := range qs {
		// The subgraph: inputs are the 8-bit values its nodes read (other
		// than y's own producer chain), found walking back from y.
		sub := g.Clone()
		sub.Inputs, sub.Outputs = nil, []ir.ValueID{y}
		feeds := []*tensor.Tensor{}
		seen := map[ir.ValueID]ir.ValueID{}
		var walk func(v ir.ValueID)
		visited := map[int]bool{}
		walk = func(v ir.ValueID) {
			ni := prod[v]
			if ni < 0 || visited[ni] {
				return
			}
			visited[ni] = true
			n := &sub.Nodes[ni]
			for i, in := range n.Inputs {
				if in == ir.NoValue {
					continue
				}
				if g.IsInput(in) && g.Values[in].Const == nil {
					if _, ok := seen[in]; !ok {
						seen[in] = in
						sub.Inputs = append(sub.Inputs, in)
						feeds = append(feeds, x)
					}
					continue
				}
				if isQ[in] && in != y {
					id, ok := seen[in]
					if !ok {
						kept := ref.Value(in)
						id = sub.AddValue(ir.Value{Name: g.Values[in].Name + "_in",
							Type: ir.Type{DType: kept.DType, Ranked: true, Shape: ir.ShapeDims(kept.Shape)}})
						sub.Inputs = append(sub.Inputs, id)
						feeds = append(feeds, kept.Clone())
						seen[in] = id
					}
					n.Inputs[i] = id
					continue
				}
				walk(in)
			}
		}
		walk(y)
		for ni := range sub.Nodes {
			if !visited[ni] {
				sub.Nodes[ni].Inputs = nil // unreachable: drop its reads
			}
		}
		sub, _ = rewrite.RemoveDead(sub)
		a, err := infer.NewSession(sub, infer.Options{Threads: 1, Kernels: tier, NoInt8Lowering: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := infer.NewSession(sub, infer.Options{Threads: 1, Kernels: tier})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := lowered(b)
		if n == 0 {
			continue
		}
		layers++
		nLow += n
		ya, err := a.RunInputs(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		yb, err := b.RunInputs(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		bad, maxd := 0, 0.0
		for i := range ya[0].Len() {
			d := math.Abs(ya[0].Float64At(i) - yb[0].Float64At(i))
			maxd = max(maxd, d)
			if d > 1 {
				bad++
			}
		}
		frac := float64(bad) / float64(ya[0].Len())
		worst = max(worst, frac)
		if frac > 0.001 {
			t.Errorf("%s tier %s: layer %q: %d of %d elements beyond one step (max %g)", m.name, tier, g.Values[y].Name, bad, ya[0].Len(), maxd)
		}
	}
	t.Logf("%s tier %s: %d layers (%d lowered nodes) checked alone, worst %.4f%% beyond one step", m.name, tier, layers, nLow, 100*worst)
}

// TestLowerInt8Structure checks what the pass hides and keeps.
func TestLowerInt8Structure(t *testing.T) {
	m := quantizeZoo(t, "resnet8", zoo.Options{Seed: 4, InC: 3, InH: 16, InW: 16}, nil)
	s, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: refTable()})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	float := map[string]int{}
	for _, r := range s.Kernels() {
		switch {
		case r.Fused != "":
			ops[r.Fused]++
		case r.FusedInto < 0:
			float[r.Op]++
		}
	}
	// Every Conv, Add and the Gemm are integer; what runs in float is the
	// input QuantizeLinear and the output DequantizeLinear.
	if ops["goslim.QLinearConv"] != 9 || ops["goslim.QLinearAdd"] != 3 || ops["goslim.QGemm"] != 1 ||
		ops["goslim.QLinearGlobalAveragePool"] != 1 || ops["int8 Flatten"] != 1 {
		t.Errorf("lowered ops %v", ops)
	}
	if len(float) != 2 || float["QuantizeLinear"] != 1 || float["DequantizeLinear"] != 1 {
		t.Errorf("ops left in float: %v", float)
	}

	// A tap on every value disables the lowering, and sees every value.
	seen := 0
	tapped, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: refTable(),
		Tap: func(ir.ValueID, *tensor.Tensor) error { seen++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if n, notes := lowered(tapped); n != 0 || len(notes) == 0 {
		t.Errorf("with a tap on every value: %d lowered, notes %q", n, notes)
	}
	run1(t, tapped, randImages(1, 1, m.in))
	if seen == 0 {
		t.Error("tap saw nothing")
	}
	// The off switch.
	off, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: refTable(), NoInt8Lowering: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := lowered(off); n != 0 {
		t.Errorf("NoInt8Lowering: %d nodes lowered", n)
	}
	t.Setenv(infer.Int8EnvVar, "off")
	off, err = infer.NewSession(m.g, infer.Options{Threads: 1, Table: refTable()})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := lowered(off); n != 0 {
		t.Errorf("%s=off: %d nodes lowered", infer.Int8EnvVar, n)
	}
}

// TestLowerInt8Notes checks that a pattern without a kernel stays in
// float, correct, with a note.
func TestLowerInt8Notes(t *testing.T) {
	m := quantizeZoo(t, "lenet", zoo.Options{Seed: 6}, nil)
	s, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: noQLinearTable()})
	if err != nil {
		t.Fatal(err)
	}
	var convNotes int
	for _, r := range s.Kernels() {
		if r.Op == "Conv" && strings.Contains(r.Note, "no integer kernel") {
			convNotes++
		}
	}
	if convNotes != 2 {
		t.Errorf("%d Conv notes, want 2: %+v", convNotes, s.Kernels())
	}
	ref, err := infer.NewSession(m.g, infer.Options{Threads: 1, NoInt8Lowering: true})
	if err != nil {
		t.Fatal(err)
	}
	x := randImages(3, 2, m.in)
	if bad, _ := withinStep(run1(t, ref, x), run1(t, s, x), outputStep(t, m.g)); bad != 0 {
		t.Errorf("%d outputs differ", bad)
	}
}

// noQLinearTable is ops.NewTable without the internal integer ops (and
// the goslim-domain MaxPool).
func noQLinearTable() *kernel.Table {
	full := ops.NewTable()
	t := kernel.NewTable()
	for _, name := range full.Ops() {
		domain, op, ok := strings.Cut(name, ".")
		if !ok {
			domain, op = "", name
		}
		if domain == infer.FusedDomain && (strings.HasPrefix(op, "Q") || op == "MaxPool") {
			continue
		}
		for _, e := range full.Entries(domain, op) {
			t.Add(e)
		}
	}
	return t
}

// patternModel has the patterns the zoo models lack: AveragePool,
// Transpose, Clip after a 1x1 Conv, Concat, Mul of two activations,
// Reshape, MatMul with a constant weight, and an Add of a float constant
// (which stays in float).
func patternModel() *ir.Graph {
	r := rand.New(rand.NewPCG(11, 12))
	param := func(shape ...int) *tensor.Tensor {
		sh := tensor.Shape(shape)
		d := make([]float32, sh.Size())
		for i := range d {
			d[i] = r.Float32() - 0.5
		}
		return tensor.FromFloat32(sh, d)
	}
	b := ir.NewBuilder("patterns", 13)
	x := b.Input("input", tensor.Float32, -1, 4, 8, 8)
	c1 := b.Op("Conv", "conv1", []ir.ValueID{x, b.Param("w1", param(8, 4, 3, 3)), b.Param("b1", param(8))},
		ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("kernel_shape", 3, 3))
	r1 := b.Op("Relu", "relu1", []ir.ValueID{c1})
	ap := b.Op("AveragePool", "ap", []ir.ValueID{r1}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	tr := b.Op("Transpose", "tr", []ir.ValueID{ap}, ir.IntsAttr("perm", 0, 1, 3, 2))
	c2 := b.Op("Conv", "conv2", []ir.ValueID{tr, b.Param("w2", param(8, 8, 1, 1)), b.Param("b2", param(8))},
		ir.IntsAttr("kernel_shape", 1, 1))
	lo := b.Const("lo", tensor.FromFloat32(tensor.Shape{}, []float32{0}))
	hi := b.Const("hi", tensor.FromFloat32(tensor.Shape{}, []float32{0.5}))
	cl := b.Op("Clip", "clip", []ir.ValueID{c2, lo, hi})
	cat := b.Op("Concat", "cat", []ir.ValueID{ap, cl}, ir.IntAttr("axis", 1))
	mu := b.Op("Mul", "mul", []ir.ValueID{cat, cat})
	rs := b.Op("Reshape", "rs", []ir.ValueID{mu, b.Const("shape", tensor.FromInt64(tensor.Shape{2}, []int64{0, -1}))})
	mm := b.Op("MatMul", "mm", []ir.ValueID{rs, b.Param("wm", param(256, 10))})
	out := b.Op("Add", "bias", []ir.ValueID{mm, b.Param("bm", param(10))})
	b.Output(out)
	return b.G
}

// TestLowerInt8Patterns checks each pattern of patternModel, with uint8
// and int8 activations, against reference kernels and (when registered)
// the table's integer kernels.
func TestLowerInt8Patterns(t *testing.T) {
	for _, act := range []string{"uint8", "int8"} {
		t.Run(act, func(t *testing.T) {
			cfg := ptq.DefaultConfig()
			cfg.Activations = act
			m := quantizeGraph(t, "patterns/"+act, patternModel(), cfg)
			checkLowering(t, m, refTable(), "generic", 8)
			if ops.NewTable().Has(infer.FusedDomain, infer.QLinearConv) {
				checkLowering(t, m, nil, "", 8)
			}
			s, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: refTable()})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range s.Kernels() {
				if r.FusedInto < 0 {
					got[r.Label] = r.Fused + r.Note
				}
			}
			want := map[string]string{
				`"conv1" (Conv)`: "goslim.QLinearConv", `"ap" (AveragePool)`: "goslim.QLinearAveragePool",
				`"tr" (Transpose)`: "int8 Transpose", `"conv2" (Conv)`: "goslim.QLinearConv",
				`"cat" (Concat)`: "int8 Concat", `"mul" (Mul)`: "goslim.QLinearMul", `"rs" (Reshape)`: "int8 Reshape",
				`"mm" (MatMul)`: "goslim.QLinearMatMul",
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			if !strings.Contains(got[`"bias" (Add)`], "stays FP32") {
				t.Errorf("Add of a float constant: %q", got[`"bias" (Add)`])
			}
		})
	}
}

// TestLowerInt8Overridable checks that a scale a feed can override (an
// initializer that is also a graph input) keeps its patterns in float,
// with a note, and that the session still runs.
func TestLowerInt8Overridable(t *testing.T) {
	m := quantizeZoo(t, "lenet", zoo.Options{Seed: 8}, nil)
	g := m.g.Clone()
	var conv ir.Node
	for _, n := range g.Nodes {
		if n.Op == "Conv" {
			conv = n
			break
		}
	}
	prod := g.Producers()
	dq := g.Nodes[prod[conv.Inputs[0]]]
	g.Inputs = append(g.Inputs, dq.Inputs[1]) // the input's scale
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Table: refTable()})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range s.Kernels() {
		if r.Node >= 0 && g.Nodes[r.Node].Name == conv.Name {
			found = strings.Contains(r.Note, "scale")
			if !found {
				t.Errorf("note %q", r.Note)
			}
		}
	}
	if !found {
		t.Error("no note on the Conv whose input scale is overridable")
	}
	if _, err := s.RunInputs(context.Background(), []*tensor.Tensor{randImages(1, 1, m.in), nil}); err != nil {
		t.Fatal(err)
	}
}

// TestLowerInt8ConcatScales gives the inputs of the pattern model's Concat
// different scales (as other quantizers may), so it lowers to
// QLinearConcat instead of a plain Concat of the 8-bit data.
func TestLowerInt8ConcatScales(t *testing.T) {
	m := quantizeGraph(t, "patterns", patternModel(), nil)
	g := m.g.Clone()
	prod := g.Producers()
	for _, n := range g.Nodes {
		if n.Op != "Concat" {
			continue
		}
		dq := &g.Nodes[prod[n.Inputs[1]]]
		q := &g.Nodes[prod[dq.Inputs[0]]]
		s := g.Values[dq.Inputs[1]].Const.F32()[0]
		id := g.AddValue(ir.Value{Name: "other_scale", Const: tensor.FromFloat32(tensor.Shape{}, []float32{s * 1.37}),
			Type: ir.Type{DType: tensor.Float32, Ranked: true}})
		dq.Inputs[1], q.Inputs[1] = id, id
	}
	m.g = g
	m.name = "patterns/concat-scales"
	checkLowering(t, m, refTable(), "generic", 4)
	if ops.NewTable().Has(infer.FusedDomain, infer.QLinearConcat) {
		checkLowering(t, m, nil, "", 4)
	}
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Table: refTable()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Kernels() {
		if r.Op == "Concat" && r.Fused != "goslim.QLinearConcat" {
			t.Errorf("Concat runs as %q %q", r.Fused, r.Note)
		}
	}
}

// ortStyle rewrites a goslim ptq graph the way ONNX Runtime's quantizer
// writes QDQ models: bias scales stored as initializers (not computed by a
// Mul) and explicit int8 zero points on the weights.
func ortStyle(t *testing.T, g *ir.Graph) *ir.Graph {
	t.Helper()
	g = g.Clone()
	cons := g.Consumers()
	for ni := range g.Nodes {
		n := &g.Nodes[ni]
		switch {
		case n.Op == "Mul" && len(n.Inputs) == 2 && g.Values[n.Inputs[0]].Const != nil && g.Values[n.Inputs[1]].Const != nil:
			a, b := g.Values[n.Inputs[0]].Const.F32(), g.Values[n.Inputs[1]].Const.F32()
			p := make([]float32, max(len(a), len(b)))
			for i := range p {
				p[i] = a[i%len(a)] * b[i%len(b)]
			}
			shape := g.Values[n.Inputs[1]].Const.Shape
			if len(b) < len(a) {
				shape = g.Values[n.Inputs[0]].Const.Shape
			}
			c := tensor.FromFloat32(shape.Clone(), p)
			id := g.AddValue(ir.Value{Name: g.Values[n.Outputs[0]].Name + "_init", Const: c,
				Type: ir.Type{DType: tensor.Float32, Ranked: true, Shape: ir.ShapeDims(c.Shape)}})
			for _, r := range cons[n.Outputs[0]] {
				for i, in := range g.Nodes[r].Inputs {
					if in == n.Outputs[0] {
						g.Nodes[r].Inputs[i] = id
					}
				}
			}
		case n.Op == "DequantizeLinear" && len(n.Inputs) == 2 && g.Values[n.Inputs[0]].Const != nil && g.Values[n.Inputs[0]].Const.DType == tensor.Int8:
			sc := g.Values[n.Inputs[1]].Const
			z, _ := tensor.New(tensor.Int8, sc.Shape.Clone())
			n.Inputs = append(n.Inputs, g.AddValue(ir.Value{Name: g.Values[n.Inputs[0]].Name + "_zp", Const: z,
				Type: ir.Type{DType: tensor.Int8, Ranked: true, Shape: ir.ShapeDims(z.Shape)}}))
		}
	}
	g, _ = rewrite.RemoveDead(g)
	for _, n := range g.Nodes {
		if n.Op == "Mul" {
			t.Fatalf("ortStyle left a Mul: %s", n.Label())
		}
	}
	return g
}

// TestLowerInt8ORTStyle lowers QDQ graphs written in ONNX Runtime's style.
func TestLowerInt8ORTStyle(t *testing.T) {
	m := quantizeZoo(t, "resnet8", zoo.Options{Seed: 9, InC: 3, InH: 16, InW: 16}, nil)
	m.g = ortStyle(t, m.g)
	m.name = "resnet8/ort-style"
	if n := checkLowering(t, m, refTable(), "generic", 4); n != 15 {
		t.Errorf("%d nodes lowered, want 15", n)
	}
	if ops.NewTable().Has(infer.FusedDomain, infer.QLinearConv) {
		checkLowering(t, m, nil, "", 4)
	}
}

// TestLowerInt8ViewWithoutQ removes the QuantizeLinear/DequantizeLinear
// pair after LeNet's Flatten (DQ -> Flatten -> Gemm, as some quantizers
// write it): the DequantizeLinear moves past the Flatten, which runs on
// the 8-bit data, and the Gemm is still lowered.
func TestLowerInt8ViewWithoutQ(t *testing.T) {
	m := quantizeZoo(t, "lenet", zoo.Options{Seed: 10}, nil)
	g := m.g.Clone()
	cons := g.Consumers()
	for _, n := range g.Nodes {
		if n.Op != "Flatten" {
			continue
		}
		f := n.Outputs[0]
		q := g.Nodes[cons[f][0]]
		d := g.Nodes[cons[q.Outputs[0]][0]].Outputs[0]
		for _, r := range cons[d] {
			for i, in := range g.Nodes[r].Inputs {
				if in == d {
					g.Nodes[r].Inputs[i] = f
				}
			}
		}
	}
	g, _ = rewrite.RemoveDead(g)
	m.g, m.name = g, "lenet/flatten-without-q"
	checkLowering(t, m, refTable(), "generic", 4)
	if ops.NewTable().Has(infer.FusedDomain, infer.QGemm) {
		checkLowering(t, m, nil, "", 4)
	}
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Table: refTable()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range s.Kernels() {
		if r.FusedInto < 0 {
			got[r.Op] += r.Fused + r.Note + ";"
		}
	}
	if got["Flatten"] != "int8 Flatten;" || !strings.HasPrefix(got["Gemm"], "goslim.QGemm;") {
		t.Errorf("Flatten %q, Gemm %q", got["Flatten"], got["Gemm"])
	}
}

// TestLowerInt8FloatOutput lowers the last Gemm of a model quantized with
// float outputs (no QuantizeLinear on the logits) to QGemm without
// y_scale, which outputs float32.
func TestLowerInt8FloatOutput(t *testing.T) {
	cfg := ptq.DefaultConfig()
	cfg.FloatOutputs = true
	m := quantizeZoo(t, "lenet", zoo.Options{Seed: 12}, cfg)
	for _, table := range []*kernel.Table{refTable(), nil} {
		if table == nil && !ops.NewTable().Has(infer.FusedDomain, infer.QGemm) {
			continue
		}
		ref, err := infer.NewSession(m.g, infer.Options{Threads: 1, NoInt8Lowering: true})
		if err != nil {
			t.Fatal(err)
		}
		low, err := infer.NewSession(m.g, infer.Options{Threads: 1, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if n, notes := lowered(low); n != 8 {
			t.Errorf("%d nodes lowered, want 8; notes %q", n, notes)
		}
		x := randImages(4, 4, m.in)
		a, b := run1(t, ref, x).F32(), run1(t, low, x).F32()
		var maxAbs, maxDiff float64
		for i := range a {
			maxAbs = max(maxAbs, math.Abs(float64(a[i])))
			maxDiff = max(maxDiff, math.Abs(float64(a[i])-float64(b[i])))
		}
		if maxDiff > 1e-4*maxAbs {
			t.Errorf("float logits differ by %g (max |logit| %g)", maxDiff, maxAbs)
		}
	}
}

// TestRunIntoAllocatesNothingInt8 checks the steady state of the
// quantized zoo models, lowered to integer kernels with channels-last
// activations: after warm-up RunInto allocates nothing, at one and two
// threads and batch 1 and 8. On failure it names the kernels that
// allocate.
func TestRunIntoAllocatesNothingInt8(t *testing.T) {
	for _, z := range int8Zoo {
		m := quantizeZoo(t, z.spec, z.o, nil)
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{1, 8} {
				s := newSession(t, m.g, infer.Options{Threads: threads})
				in := []*tensor.Tensor{randImages(7, batch, m.in)}
				out := []*tensor.Tensor{{}}
				ctx := context.Background()
				run := func() {
					if err := s.RunInto(ctx, in, out); err != nil {
						t.Fatal(err)
					}
				}
				run()
				run()
				if n := testing.AllocsPerRun(10, run); n != 0 {
					t.Errorf("%s threads %d batch %d: %v allocations per RunInto:%s", z.spec, threads, batch, n, infer.AllocCulprits(s, in))
				}
			}
		}
	}
}
