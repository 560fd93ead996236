package infer_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// This file checks goslim against ONNX Runtime for the claimed ops whose
// semantics or types changed in ai.onnx opsets 18 to 21 (Debian's ONNX test
// data stops at opset 17). Each case is a one-node model built with
// ir.Builder, instantiated at every opset in its range, encoded with
// onnx.Encode, run in ORT (through internal/ortoracle, graph optimizations
// disabled, one thread) and in goslim (decoded from the same bytes, one
// thread), and the outputs are compared: floats within rtol 1e-4 + atol 1e-5
// (float16 within 1e-3 + 1e-3, one half-precision step), everything else
// exactly (except where a case allows ORT's implementation-defined integer
// rounding, ortTolerate). A few opset-13 models check the oracle itself.
// Cases ORT 1.30 cannot run are skipped with the reason (ortSkip).
//
// GOSLIM_ORT_CASES=regexp limits the cases run (matched against
// "Op/opsetN/case"). With -v the test logs a per-op, per-opset table.

// ortCase is one model: a node (or a few) built at a given opset.
type ortCase struct {
	op    string // op under test, for the summary table
	name  string // short description, unique within op
	from  int64  // first opset the case applies to
	to    int64  // last opset the case applies to
	build func(b *ir.Builder) map[string]*tensor.Tensor
	// skip, when set, says why the case is not run (an ORT limitation).
	skip string
	// intTol is the difference allowed on integer outputs where ORT's
	// rounding is implementation-defined (see ortTolerate).
	intTol float64
}

// ortTolerate allows integer outputs of c to differ from ORT by tol.
func ortTolerate(c ortCase, tol float64) ortCase {
	c.intTol = tol
	return c
}

// ortSkip marks c as not run, for reason.
func ortSkip(c ortCase, reason string) ortCase {
	c.skip = reason
	return c
}

// ortIn is one node input: a fed graph input, an initializer, or absent.
type ortIn struct {
	name string
	t    *tensor.Tensor
	feed bool
}

// ortFeed is a graph input fed at run time.
func ortFeed(name string, t *tensor.Tensor) ortIn { return ortIn{name: name, t: t, feed: true} }

// ortConst is an initializer.
func ortConst(name string, t *tensor.Tensor) ortIn { return ortIn{name: name, t: t} }

// ortNone is an omitted optional input.
var ortNone = ortIn{}

// ortNode makes a one-node case with nOut outputs for opsets from..to.
func ortNode(op, name string, from, to int64, nOut int, ins []ortIn, attrs ...ir.Attr) ortCase {
	return ortCase{op: op, name: name, from: from, to: to, build: func(b *ir.Builder) map[string]*tensor.Tensor {
		feeds := map[string]*tensor.Tensor{}
		ids := make([]ir.ValueID, len(ins))
		for i, in := range ins {
			switch {
			case in.t == nil:
				ids[i] = ir.NoValue
			case in.feed:
				dims := make([]int64, len(in.t.Shape))
				for j, d := range in.t.Shape {
					dims[j] = int64(d)
				}
				ids[i] = b.Input(in.name, in.t.DType, dims...)
				feeds[b.G.Values[ids[i]].Name] = in.t
			default:
				ids[i] = b.Const(in.name, in.t)
			}
		}
		b.Output(b.OpN(op, strings.ToLower(op), nOut, ids, attrs...)...)
		return feeds
	}}
}

// ortT makes a tensor of dt from float64 values (float16 encoded, bool as
// v != 0, integers truncated).
func ortT(dt tensor.DType, shape []int, vals ...float64) *tensor.Tensor {
	t, err := tensor.New(dt, tensor.Shape(shape))
	if err != nil {
		panic(err)
	}
	if len(vals) != t.Len() {
		panic(fmt.Sprintf("ortT: %d values for shape %v", len(vals), shape))
	}
	for i, v := range vals {
		ortSet(t, i, v)
	}
	return t
}

func ortSet(t *tensor.Tensor, i int, v float64) {
	switch d := t.Data.(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	case []uint16:
		if t.DType == tensor.Float16 {
			d[i] = tensor.Float32ToHalf(float32(v))
		} else {
			d[i] = uint16(v)
		}
	case []int8:
		d[i] = int8(v)
	case []uint8:
		d[i] = uint8(v)
	case []int16:
		d[i] = int16(v)
	case []int32:
		d[i] = int32(v)
	case []uint32:
		d[i] = uint32(v)
	case []int64:
		d[i] = int64(v)
	case []uint64:
		d[i] = uint64(v)
	case []bool:
		d[i] = v != 0
	}
}

// ortRand makes a deterministic tensor: floats in [-3, 3) on a 1/64 grid,
// signed integers in [-50, 50), unsigned in [0, 100), bools half true.
func ortRand(dt tensor.DType, seed uint64, shape ...int) *tensor.Tensor {
	t, err := tensor.New(dt, tensor.Shape(shape))
	if err != nil {
		panic(err)
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := 0; i < t.Len(); i++ {
		var v float64
		switch dt {
		case tensor.Float32, tensor.Float64, tensor.Float16:
			v = float64(r.IntN(384)-192) / 64
		case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
			v = float64(r.IntN(100))
		case tensor.Bool:
			v = float64(r.IntN(2))
		default:
			v = float64(r.IntN(100) - 50)
		}
		ortSet(t, i, v)
	}
	return t
}

func ortI64(vals ...int64) *tensor.Tensor {
	return tensor.FromInt64(tensor.Shape{len(vals)}, append([]int64{}, vals...))
}

func ortF32(vals ...float32) *tensor.Tensor {
	return tensor.FromFloat32(tensor.Shape{len(vals)}, append([]float32{}, vals...))
}

// ortScalar makes a rank-0 tensor of dt.
func ortScalar(dt tensor.DType, v float64) *tensor.Tensor { return ortT(dt, []int{}, v) }

// ortIRVersion is the lowest IR version ORT accepts for an opset.
func ortIRVersion(opset int64) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	}
	return 8
}

// ortCompare checks got against ORT's want; integer outputs may differ by
// intTol.
func ortCompare(got, want *tensor.Tensor, intTol float64) error {
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, ORT %v", got.DType, want.DType)
	}
	if !got.Shape.Equal(want.Shape) {
		return fmt.Errorf("shape %v, ORT %v", got.Shape, want.Shape)
	}
	rtol, atol := 1e-4, 1e-5
	if want.DType == tensor.Float16 {
		rtol, atol = 1e-3, 1e-3
	}
	bad, first := 0, -1
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		ok := g == w || (math.IsNaN(g) && math.IsNaN(w))
		if !ok && want.DType.IsFloat() && !math.IsInf(w, 0) {
			ok = math.Abs(g-w) <= atol+rtol*math.Abs(w)
		}
		if !ok && !want.DType.IsFloat() {
			ok = math.Abs(g-w) <= intTol
		}
		if !ok {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ; first at %d: goslim %g, ORT %g\n  goslim %v\n  ORT    %v",
			bad, want.Len(), first, got.Float64At(first), want.Float64At(first), got, want)
	}
	return nil
}

// ortInstance is a case instantiated at one opset.
type ortInstance struct {
	c     *ortCase
	opset int64
	id    string // "Op/opsetN/name"
	model []byte
	feeds map[string]*tensor.Tensor
}

// ortStatus classifies an instance's outcome for the summary.
type ortStatus int

const (
	ortStatPass ortStatus = iota
	ortStatFail
	ortStatSkip
)

// TestOpsetORT compares goslim with ONNX Runtime on opset 18..21 (and a
// few opset 13) models.
func TestOpsetORT(t *testing.T) {
	o := ortoracle.Require(t).With(ortoracle.Options{OptLevel: ortoracle.OptDisabled, Threads: 1})
	var filter *regexp.Regexp
	if p := os.Getenv("GOSLIM_ORT_CASES"); p != "" {
		var err error
		if filter, err = regexp.Compile(p); err != nil {
			t.Fatalf("GOSLIM_ORT_CASES: %v", err)
		}
	}
	cases := ortCases()
	seen := map[string]bool{}
	var insts []ortInstance
	var ortBatch []ortoracle.Case
	for ci := range cases {
		c := &cases[ci]
		for opset := c.from; opset <= c.to; opset++ {
			id := fmt.Sprintf("%s/opset%d/%s", c.op, opset, c.name)
			if seen[id] {
				t.Fatalf("duplicate case %s", id)
			}
			seen[id] = true
			if filter != nil && !filter.MatchString(id) {
				continue
			}
			b := ir.NewBuilder(strings.ReplaceAll(id, "/", "_"), opset)
			b.G.IRVersion = ortIRVersion(opset)
			feeds := c.build(b)
			var buf bytes.Buffer
			if err := onnx.Encode(&buf, b.G); err != nil {
				t.Fatalf("%s: encode: %v", id, err)
			}
			inst := ortInstance{c: c, opset: opset, id: id, model: buf.Bytes(), feeds: feeds}
			insts = append(insts, inst)
			if c.skip == "" {
				ortBatch = append(ortBatch, ortoracle.Case{Model: inst.model, Feeds: feeds})
			}
		}
	}
	results, err := o.RunAll(ortBatch)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[ortKey]*[3]int{}
	var failed []string
	ri := 0
	for _, inst := range insts {
		k := ortKey{inst.c.op, inst.opset}
		if counts[k] == nil {
			counts[k] = &[3]int{}
		}
		if inst.c.skip != "" {
			counts[k][ortStatSkip]++
			t.Run(inst.id, func(t *testing.T) { t.Skip(inst.c.skip) })
			continue
		}
		res := results[ri]
		ri++
		ok := t.Run(inst.id, func(t *testing.T) {
			if res.Err != nil {
				t.Fatalf("ONNX Runtime rejected the model: %v", res.Err)
			}
			got, err := ortRunGoslim(inst.model, inst.feeds)
			if err != nil {
				t.Fatalf("goslim: %v", err)
			}
			names := make([]string, 0, len(res.Outputs))
			for name := range res.Outputs {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				g, ok := got[name]
				if !ok {
					t.Errorf("output %q: goslim has none", name)
					continue
				}
				if err := ortCompare(g, res.Outputs[name], inst.c.intTol); err != nil {
					t.Errorf("output %q: %v", name, err)
				}
			}
		})
		if ok {
			counts[k][ortStatPass]++
		} else {
			counts[k][ortStatFail]++
			failed = append(failed, inst.id)
		}
	}
	t.Logf("ONNX Runtime %s; %d models", o.Version(), len(insts))
	t.Log(ortSummary(counts))
	if len(failed) > 0 {
		t.Logf("%d cases failed", len(failed))
	}
}

// ortRunGoslim decodes model and runs it in goslim with one thread.
func ortRunGoslim(model []byte, feeds map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	g, err := onnx.Decode(bytes.NewReader(model))
	if err != nil {
		return nil, err
	}
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	in := make(map[string]*tensor.Tensor, len(feeds))
	for name, t := range feeds {
		in[name] = t.Clone() // goslim must not see ORT's copy, nor change ours
	}
	return s.Run(context.Background(), in)
}

// ortKey identifies a row of the summary table.
type ortKey struct {
	op    string
	opset int64
}

// ortSummary formats pass/fail/skip counts per op and opset.
func ortSummary(counts map[ortKey]*[3]int) string {
	keys := make([]ortKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].op != keys[j].op {
			return keys[i].op < keys[j].op
		}
		return keys[i].opset < keys[j].opset
	})
	var b strings.Builder
	b.WriteString("\nop                   opset  pass  fail  skip\n")
	var tot [3]int
	for _, k := range keys {
		c := counts[k]
		fmt.Fprintf(&b, "%-20s %5d %5d %5d %5d\n", k.op, k.opset, c[0], c[1], c[2])
		for i := range tot {
			tot[i] += c[i]
		}
	}
	fmt.Fprintf(&b, "%-20s %5s %5d %5d %5d\n", "total", "", tot[0], tot[1], tot[2])
	return b.String()
}

// ortCases lists every case.
func ortCases() []ortCase {
	var cs []ortCase
	for _, f := range []func() []ortCase{
		ortSanityCases, ortReduceCases, ortSplitCases, ortPadCases, ortResizeCases,
		ortAveragePoolCases, ortCastCases, ortQuantCases, ortEqualCases,
		ortConstantCases, ortShapeOpCases, ortUnchangedCases,
	} {
		cs = append(cs, f()...)
	}
	return cs
}

// ortSanityCases run common ops at opset 13 to check the oracle itself.
func ortSanityCases() []ortCase {
	x := ortRand(tensor.Float32, 1, 2, 3, 5, 5)
	w := ortRand(tensor.Float32, 2, 4, 3, 3, 3)
	return []ortCase{
		ortNode("Add", "sanity_broadcast", 13, 13, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 3, 2, 3, 4)), ortFeed("b", ortRand(tensor.Float32, 4, 3, 1))}),
		ortNode("Relu", "sanity", 13, 13, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 5, 4, 7))}),
		ortNode("MatMul", "sanity", 13, 13, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 6, 2, 3, 5)), ortConst("b", ortRand(tensor.Float32, 7, 5, 4))}),
		ortNode("Conv", "sanity_pads_strides", 13, 13, 1, []ortIn{ortFeed("x", x), ortConst("w", w), ortConst("b", ortRand(tensor.Float32, 3, 4))},
			ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("strides", 2, 2)),
		ortNode("Softmax", "sanity", 13, 13, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 8, 3, 7))}),
		ortNode("Transpose", "sanity", 13, 13, 1, []ortIn{ortFeed("x", ortRand(tensor.Int64, 9, 2, 3, 4))}, ir.IntsAttr("perm", 2, 0, 1)),
		ortNode("Concat", "sanity", 13, 13, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 10, 2, 3)), ortFeed("b", ortRand(tensor.Float32, 11, 2, 2))}, ir.IntAttr("axis", 1)),
	}
}

func ortReduceCases() []ortCase {
	var cs []ortCase
	x := ortRand(tensor.Float32, 20, 2, 3, 4)
	for _, op := range []string{"ReduceMean", "ReduceMax", "ReduceSum"} {
		cs = append(cs,
			ortNode(op, "axes_input_keepdims", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("axes", ortI64(1))}),
			ortNode(op, "axes_input_two_axes_nokeep", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("axes", ortI64(0, 2))}, ir.IntAttr("keepdims", 0)),
			ortNode(op, "axes_negative", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("axes", ortI64(-1))}),
			ortNode(op, "axes_fed_at_run_time", 18, 21, 1, []ortIn{ortFeed("x", x), ortFeed("axes", ortI64(-3, 1))}),
			ortNode(op, "no_axes_reduce_all_nokeep", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("keepdims", 0)),
			ortNode(op, "no_axes_reduce_all_keep", 18, 21, 1, []ortIn{ortFeed("x", x)}),
			ortNode(op, "empty_axes_noop", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("axes", ortI64())}, ir.IntAttr("noop_with_empty_axes", 1)),
			ortNode(op, "empty_axes_reduce_all", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("axes", ortI64())}),
			ortNode(op, "no_axes_noop", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("noop_with_empty_axes", 1)),
			ortNode(op, "float64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float64, 21, 3, 5)), ortConst("axes", ortI64(1))}),
			ortNode(op, "float16", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 22, 4, 3)), ortConst("axes", ortI64(0))}),
			ortNode(op, "rank0", 18, 21, 1, []ortIn{ortFeed("x", ortScalar(tensor.Float32, 2.5))}),
		)
	}
	cs = append(cs,
		ortNode("ReduceSum", "int64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int64, 23, 3, 4)), ortConst("axes", ortI64(1))}),
		ortNode("ReduceSum", "int32", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int32, 24, 3, 4)), ortConst("axes", ortI64(0))}, ir.IntAttr("keepdims", 0)),
		ortNode("ReduceMax", "int8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 25, 3, 4)), ortConst("axes", ortI64(1))}),
		ortNode("ReduceMax", "uint8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 26, 3, 4)), ortConst("axes", ortI64(0))}),
		ortNode("ReduceMax", "int64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int64, 27, 3, 4)), ortConst("axes", ortI64(1))}, ir.IntAttr("keepdims", 0)),
		ortNode("ReduceMax", "bool", 20, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Bool, 28, 3, 4)), ortConst("axes", ortI64(1))}),
		ortNode("ReduceSum", "empty_axis", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 29, 2, 0, 3)), ortConst("axes", ortI64(1))}),
		ortNode("ReduceMax", "empty_axis_float", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 29, 2, 0)), ortConst("axes", ortI64(1))}, ir.IntAttr("keepdims", 0)),
		ortNode("ReduceMax", "empty_axis_int8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 29, 0, 3)), ortConst("axes", ortI64(0))}),
		ortNode("ReduceSum", "keepdims0_noop_empty_axes", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 19, 2, 3)), ortConst("axes", ortI64())}, ir.IntAttr("keepdims", 0), ir.IntAttr("noop_with_empty_axes", 1)),
		// Mean of int32 along an axis whose sums are multiples of 3 (exact).
		ortNode("ReduceMean", "int32_exact", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int32, []int{2, 3}, 1, 2, 3, 4, 5, 9)), ortConst("axes", ortI64(1))}),
	)
	return cs
}

func ortSplitCases() []ortCase {
	x6 := ortRand(tensor.Float32, 30, 6, 2)
	x7 := ortRand(tensor.Float32, 31, 2, 7)
	return []ortCase{
		ortNode("Split", "num_outputs_even", 18, 21, 3, []ortIn{ortFeed("x", x6)}, ir.IntAttr("num_outputs", 3)),
		ortNode("Split", "num_outputs_uneven", 18, 21, 3, []ortIn{ortFeed("x", x7)}, ir.IntAttr("axis", 1), ir.IntAttr("num_outputs", 3)),
		ortNode("Split", "num_outputs_uneven_4", 18, 21, 4, []ortIn{ortFeed("x", ortRand(tensor.Float32, 32, 2, 10))}, ir.IntAttr("axis", -1), ir.IntAttr("num_outputs", 4)),
		ortNode("Split", "split_input", 18, 21, 2, []ortIn{ortFeed("x", x7), ortConst("split", ortI64(2, 5))}, ir.IntAttr("axis", -1)),
		ortNode("Split", "split_input_zero_part", 18, 21, 3, []ortIn{ortFeed("x", x6), ortConst("split", ortI64(4, 0, 2))}),
		ortNode("Split", "num_outputs_int64", 18, 21, 2, []ortIn{ortFeed("x", ortRand(tensor.Int64, 33, 3, 4))}, ir.IntAttr("axis", 1), ir.IntAttr("num_outputs", 2)),
		ortSkip(ortNode("Split", "num_outputs_more_than_dim", 18, 21, 3, []ortIn{ortFeed("x", ortRand(tensor.Float32, 35, 2, 4))}, ir.IntAttr("num_outputs", 3)),
			"ORT 1.30 refuses num_outputs larger than the split dimension; the spec does not say whether empty chunks are allowed"),
		ortNode("Split", "num_outputs_1", 18, 21, 1, []ortIn{ortFeed("x", x7)}, ir.IntAttr("num_outputs", 1)),
		ortNode("Split", "split_fed", 18, 21, 2, []ortIn{ortFeed("x", x7), ortFeed("split", ortI64(3, 4))}, ir.IntAttr("axis", 1)),
		ortNode("Split", "num_outputs_bool", 18, 21, 2, []ortIn{ortFeed("x", ortRand(tensor.Bool, 34, 4, 3))}, ir.IntAttr("num_outputs", 2)),
	}
}

func ortPadCases() []ortCase {
	x := ortRand(tensor.Float32, 40, 3, 4)
	x3 := ortRand(tensor.Float32, 41, 2, 3, 4)
	ex := ortT(tensor.Float32, []int{3, 2}, 1.0, 1.2, 2.3, 3.4, 4.5, 5.7)
	return []ortCase{
		ortNode("Pad", "constant_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("pads", ortI64(1, 2)), ortConst("cv", ortScalar(tensor.Float32, 1.5)), ortConst("axes", ortI64(1))}),
		ortNode("Pad", "constant_axes_negative", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(1, 0, 2, 1)), ortNone, ortConst("axes", ortI64(-1, 0))}),
		// ORT's shape inference refuses constant int32 axes, so they are fed.
		ortNode("Pad", "fed_axes_int32", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(2, 1)), ortNone, ortFeed("axes", ortT(tensor.Int32, []int{1}, 1))}),
		ortNode("Pad", "constant_no_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("pads", ortI64(0, 1, 2, 0))}),
		ortNode("Pad", "constant_negative_pads", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(-1, 1, -2, 2)), ortConst("cv", ortScalar(tensor.Float32, -7)), ortConst("axes", ortI64(2, 0))}),
		ortNode("Pad", "reflect_axes", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(2, 1, 1, 3)), ortNone, ortConst("axes", ortI64(1, 2))}, ir.StringAttr("mode", "reflect")),
		ortNode("Pad", "edge_axes", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(3, 2)), ortNone, ortConst("axes", ortI64(0))}, ir.StringAttr("mode", "edge")),
		ortNode("Pad", "edge_no_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("pads", ortI64(1, 2, 2, 1))}, ir.StringAttr("mode", "edge")),
		ortNode("Pad", "wrap_spec_example", 19, 21, 1, []ortIn{ortFeed("x", ex), ortConst("pads", ortI64(2, 1, 1, 1))}, ir.StringAttr("mode", "wrap")),
		ortNode("Pad", "wrap_axes", 19, 21, 1, []ortIn{ortFeed("x", x3), ortConst("pads", ortI64(1, 2, 3, 1)), ortNone, ortConst("axes", ortI64(1, -1))}, ir.StringAttr("mode", "wrap")),
		ortNode("Pad", "wrap_pad_equals_dim", 19, 21, 1, []ortIn{ortFeed("x", ex), ortConst("pads", ortI64(3, 2, 3, 2))}, ir.StringAttr("mode", "wrap")),
		ortSkip(ortNode("Pad", "wrap_larger_than_dim", 19, 21, 1, []ortIn{ortFeed("x", ex), ortConst("pads", ortI64(0, 3, 0, 2))}, ir.StringAttr("mode", "wrap")),
			"ORT 1.30 returns garbage (uninitialized memory) when a wrap pad exceeds the dimension; goslim's answer (x[i][(j-3) mod 2]) follows the spec's torus rule"),
		ortNode("Pad", "wrap_negative_pads", 19, 21, 1, []ortIn{ortFeed("x", x), ortConst("pads", ortI64(-1, 2, 1, -1))}, ir.StringAttr("mode", "wrap")),
		ortNode("Pad", "constant_int64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int64, 42, 2, 3)), ortConst("pads", ortI64(1, 1)), ortConst("cv", ortScalar(tensor.Int64, 9)), ortConst("axes", ortI64(0))}),
		ortNode("Pad", "constant_bool", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Bool, 43, 2, 3)), ortConst("pads", ortI64(0, 1, 1, 0))}),
		ortNode("Pad", "reflect_int32", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int32, 44, 3, 4)), ortConst("pads", ortI64(1, 2, 2, 1))}, ir.StringAttr("mode", "reflect")),
		ortNode("Pad", "wrap_uint8", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 45, 3, 4)), ortConst("pads", ortI64(1, 1, 2, 2))}, ir.StringAttr("mode", "wrap")),
		ortNode("Pad", "reflect_max_pad", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("pads", ortI64(2, 3, 2, 3))}, ir.StringAttr("mode", "reflect")),
		ortNode("Pad", "wrap_float16_axes_fed", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 46, 2, 3)), ortConst("pads", ortI64(1, 2)), ortNone, ortFeed("axes", ortI64(-1))}, ir.StringAttr("mode", "wrap")),
		ortNode("Pad", "edge_float64_negative", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float64, 47, 3, 4)), ortConst("pads", ortI64(-1, 2, 1, -2))}, ir.StringAttr("mode", "edge")),
		ortNode("Pad", "constant_int8_axes", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 48, 2, 3)), ortConst("pads", ortI64(1, 1)), ortConst("cv", ortScalar(tensor.Int8, -128)), ortConst("axes", ortI64(1))}),
		ortNode("Pad", "pads_fed", 18, 21, 1, []ortIn{ortFeed("x", x), ortFeed("pads", ortI64(1, 1, 0, 2))}, ir.StringAttr("mode", "edge")),
	}
}

func ortResizeCases() []ortCase {
	x := ortRand(tensor.Float32, 50, 1, 2, 4, 6)
	x5 := ortRand(tensor.Float32, 51, 1, 1, 5, 7)
	sc := func(v ...float32) ortIn { return ortConst("scales", ortF32(v...)) }
	sz := func(v ...int64) ortIn { return ortConst("sizes", ortI64(v...)) }
	mode := func(m string) ir.Attr { return ir.StringAttr("mode", m) }
	ctm := func(m string) ir.Attr { return ir.StringAttr("coordinate_transformation_mode", m) }
	axes := ir.IntsAttr("axes", 2, 3)
	return []ortCase{
		ortNode("Resize", "linear_scales_all_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, sc(1, 1, 2, 1.5)}, mode("linear")),
		ortNode("Resize", "linear_axes_scales", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, sc(2, 1.5)}, mode("linear"), axes),
		ortNode("Resize", "nearest_axes_negative_sizes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(9, 5)}, mode("nearest"), ir.IntsAttr("axes", -1, -2)),
		ortNode("Resize", "cubic_axes_scales", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, sc(1.5, 2)}, mode("cubic"), axes),
		ortNode("Resize", "not_larger", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(7, 7)}, mode("linear"), axes, ir.StringAttr("keep_aspect_ratio_policy", "not_larger")),
		ortNode("Resize", "not_smaller", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(7, 7)}, mode("linear"), axes, ir.StringAttr("keep_aspect_ratio_policy", "not_smaller")),
		ortNode("Resize", "not_larger_all_axes", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, ortNone, sz(1, 1, 3, 20)}, mode("nearest"), ir.StringAttr("keep_aspect_ratio_policy", "not_larger")),
		ortNode("Resize", "not_smaller_nearest", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, ortNone, sz(3, 3)}, mode("nearest"), axes, ir.StringAttr("keep_aspect_ratio_policy", "not_smaller")),
		ortNode("Resize", "antialias_linear_down", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(1, 1, 0.6, 0.5)}, mode("linear"), ir.IntAttr("antialias", 1)),
		ortNode("Resize", "antialias_linear_sizes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(3, 4)}, mode("linear"), axes, ir.IntAttr("antialias", 1)),
		ortNode("Resize", "antialias_cubic_down", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(0.6, 0.5)}, mode("cubic"), axes, ir.IntAttr("antialias", 1)),
		ortNode("Resize", "antialias_cubic_exclude_outside", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(0.5, 0.4)}, mode("cubic"), axes, ir.IntAttr("antialias", 1), ir.IntAttr("exclude_outside", 1), ir.FloatAttr("cubic_coeff_a", -0.5)),
		ortNode("Resize", "antialias_linear_up", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(2, 1.5)}, mode("linear"), axes, ir.IntAttr("antialias", 1)),
		ortNode("Resize", "half_pixel_symmetric_linear_up", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(1.7, 1.3)}, mode("linear"), axes, ctm("half_pixel_symmetric")),
		ortNode("Resize", "half_pixel_symmetric_linear_down", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(1, 1, 0.7, 0.45)}, mode("linear"), ctm("half_pixel_symmetric")),
		ortNode("Resize", "half_pixel_symmetric_nearest", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(1.7, 0.65)}, mode("nearest"), axes, ctm("half_pixel_symmetric")),
		ortNode("Resize", "half_pixel_symmetric_cubic", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, ortNone, sz(8, 4)}, mode("cubic"), axes, ctm("half_pixel_symmetric")),
		ortNode("Resize", "tf_crop_and_resize_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("roi", ortF32(0.1, 0.2, 0.9, 0.7)), ortNone, sz(5, 5)}, mode("linear"), axes, ctm("tf_crop_and_resize"), ir.FloatAttr("extrapolation_value", 10)),
		ortNode("Resize", "align_corners_axes_sizes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(7, 3)}, mode("linear"), axes, ctm("align_corners")),
		ortNode("Resize", "nearest_ceil_asymmetric_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, sc(1.5, 0.8)}, mode("nearest"), axes, ctm("asymmetric"), ir.StringAttr("nearest_mode", "ceil")),
		ortNode("Resize", "nearest_uint8_axes", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 52, 1, 1, 3, 4)), ortNone, sc(2, 2)}, mode("nearest"), axes),
		// Integer outputs: the spec does not say how interpolated values
		// are rounded. ONNX's reference implementation and ORT truncate
		// (float64 -> integer); ORT's antialias path works in two fixed-point
		// passes, so there only a difference of 1 is allowed.
		ortNode("Resize", "linear_uint8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 53, 1, 1, 6, 6)), ortNone, sc(0.5, 0.75)}, mode("linear"), axes),
		ortNode("Resize", "linear_int32_up", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int32, 54, 1, 1, 3, 3)), ortNone, sc(2, 1.5)}, mode("linear"), axes),
		ortTolerate(ortNode("Resize", "linear_uint8_antialias", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 53, 1, 1, 6, 6)), ortNone, sc(0.5, 0.5)}, mode("linear"), axes, ir.IntAttr("antialias", 1)), 1),
		ortNode("Resize", "antialias_linear_mixed", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(0.6, 1.6)}, mode("linear"), axes, ir.IntAttr("antialias", 1)),
		ortNode("Resize", "antialias_half_pixel_symmetric", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(0.7, 0.45)}, mode("linear"), axes, ir.IntAttr("antialias", 1), ctm("half_pixel_symmetric")),
		ortNode("Resize", "antialias_align_corners", 18, 21, 1, []ortIn{ortFeed("x", x5), ortNone, ortNone, sz(3, 4)}, mode("linear"), axes, ir.IntAttr("antialias", 1), ctm("align_corners")),
		ortSkip(ortNode("Resize", "antialias_cubic_3d", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 55, 1, 4, 5, 6)), ortNone, sc(0.5, 0.6, 0.5)}, mode("cubic"), ir.IntsAttr("axes", 1, 2, 3), ir.IntAttr("antialias", 1)),
			"ORT 1.30 implements cubic Resize only over 2 axes (bicubic)"),
		ortNode("Resize", "not_larger_three_axes", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 56, 2, 3, 4, 5)), ortNone, ortNone, sz(4, 8, 100)}, mode("nearest"), ir.IntsAttr("axes", 1, 2, 3), ir.StringAttr("keep_aspect_ratio_policy", "not_larger")),
		ortNode("Resize", "not_smaller_round_half_up", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 57, 1, 1, 2, 5)), ortNone, ortNone, sz(3, 1)}, mode("nearest"), axes, ir.StringAttr("keep_aspect_ratio_policy", "not_smaller")),
		ortNode("Resize", "tf_crop_nearest_extrapolate", 18, 21, 1, []ortIn{ortFeed("x", x), ortConst("roi", ortF32(-0.2, 0.32, 1.1, 1.4)), ortNone, sz(6, 5)}, mode("nearest"), axes, ctm("tf_crop_and_resize"), ir.FloatAttr("extrapolation_value", -1)),
		ortNode("Resize", "pytorch_half_pixel_axes", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, ortNone, sz(1, 9)}, mode("linear"), axes, ctm("pytorch_half_pixel")),
		ortNode("Resize", "linear_float16", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 58, 1, 1, 3, 4)), ortNone, sc(1.5, 2)}, mode("linear"), axes),
		ortNode("Resize", "cubic_half_pixel_symmetric_down", 19, 21, 1, []ortIn{ortFeed("x", x5), ortNone, sc(0.8, 0.55)}, mode("cubic"), axes, ctm("half_pixel_symmetric"), ir.IntAttr("exclude_outside", 1)),
		ortNode("Resize", "linear_axes_single", 18, 21, 1, []ortIn{ortFeed("x", x), ortNone, sc(2.5)}, mode("linear"), ir.IntsAttr("axes", 3)),
	}
}

func ortAveragePoolCases() []ortCase {
	x := ortRand(tensor.Float32, 60, 1, 2, 7, 7)
	k := func(v ...int64) ir.Attr { return ir.IntsAttr("kernel_shape", v...) }
	dil := func(v ...int64) ir.Attr { return ir.IntsAttr("dilations", v...) }
	return []ortCase{
		ortNode("AveragePool", "plain", 18, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 3), ir.IntsAttr("strides", 2, 2)),
		ortNode("AveragePool", "dilations", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(2, 2), dil(2, 2)),
		ortNode("AveragePool", "dilations_pads", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 2), dil(2, 3), ir.IntsAttr("pads", 1, 1, 2, 1)),
		ortNode("AveragePool", "dilations_pads_count_include_pad", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 2), dil(2, 3), ir.IntsAttr("pads", 1, 1, 2, 1), ir.IntAttr("count_include_pad", 1)),
		ortNode("AveragePool", "dilations_strides_ceil", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(2, 2), dil(2, 2), ir.IntsAttr("strides", 2, 2), ir.IntAttr("ceil_mode", 1)),
		ortNode("AveragePool", "dilations_strides_ceil_pads", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 3), dil(2, 1), ir.IntsAttr("strides", 2, 3), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("ceil_mode", 1)),
		ortNode("AveragePool", "dilations_1d", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 61, 2, 3, 11))}, k(3), dil(3), ir.IntsAttr("strides", 2)),
		ortSkip(ortNode("AveragePool", "dilations_same_upper", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 3), dil(2, 2), ir.StringAttr("auto_pad", "SAME_UPPER")),
			"ORT 1.30 sizes SAME_UPPER pads from the undilated kernel (7x7 input -> 5x5); AveragePool-19 pads by (k-1)*d+1 and keeps 7x7, as goslim does"),
		ortNode("AveragePool", "dilations_valid", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 2), dil(2, 2), ir.StringAttr("auto_pad", "VALID")),
		ortNode("AveragePool", "dilations_3d", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 62, 1, 1, 5, 6, 5))}, k(2, 2, 2), dil(2, 1, 2)),
		ortNode("AveragePool", "dilations_float16", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 63, 1, 2, 6, 6))}, k(2, 2), dil(2, 2)),
		ortNode("AveragePool", "dilations_one", 19, 21, 1, []ortIn{ortFeed("x", x)}, k(3, 3), dil(1, 1), ir.IntsAttr("pads", 1, 1, 1, 1)),
	}
}

func ortCastCases() []ortCase {
	to := func(dt tensor.DType) ir.Attr { return ir.IntAttr("to", int64(dt)) }
	f := ortT(tensor.Float32, []int{8}, -2.75, -1.5, -0.5, 0, 0.25, 1.5, 2.999, 100.5)
	return []ortCase{
		ortNode("Cast", "f32_to_i32_trunc", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Int32)),
		ortNode("Cast", "f32_to_i8_in_range", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Int8)),
		ortNode("Cast", "f32_to_u8_in_range", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{4}, 0, 1.9, 200.5, 255))}, to(tensor.Uint8)),
		ortNode("Cast", "f32_to_i64", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Int64)),
		ortNode("Cast", "f32_to_bool", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Bool)),
		ortNode("Cast", "f32_to_f16", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{5}, 0.1, -65504, 70000, 1e-8, 3.14159))}, to(tensor.Float16)),
		ortNode("Cast", "f16_to_f32", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 70, 6))}, to(tensor.Float32)),
		ortNode("Cast", "f32_to_f64", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Float64)),
		ortNode("Cast", "f64_to_f32", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float64, []int{3}, 1.0000001, 1e300, -2.5))}, to(tensor.Float32)),
		ortNode("Cast", "i32_to_i8_wrap", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int32, []int{5}, 200, -200, 127, 128, 256))}, to(tensor.Int8)),
		ortNode("Cast", "i64_to_u8_wrap", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int64, []int{4}, -1, 300, 255, 65536))}, to(tensor.Uint8)),
		ortNode("Cast", "i16_to_i32", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int16, []int{3}, -32768, 7, 32767))}, to(tensor.Int32)),
		ortNode("Cast", "u8_to_f32", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 71, 6))}, to(tensor.Float32)),
		ortNode("Cast", "i8_to_f16", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 72, 6))}, to(tensor.Float16)),
		ortNode("Cast", "bool_to_f32", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Bool, 73, 6))}, to(tensor.Float32)),
		ortNode("Cast", "bool_to_i64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Bool, 74, 6))}, to(tensor.Int64)),
		ortNode("Cast", "i64_to_bool", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int64, []int{3}, 0, -5, 1<<40))}, to(tensor.Bool)),
		ortNode("Cast", "i64_to_f64", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int64, 75, 5))}, to(tensor.Float64)),
		ortNode("Cast", "same_type", 18, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Float32)),
		ortSkip(ortNode("Cast", "saturate0_non_float8", 19, 21, 1, []ortIn{ortFeed("x", f)}, to(tensor.Float16), ir.IntAttr("saturate", 0)),
			"ORT 1.30 refuses the saturate attribute unless the target is a float8 type (the spec says it only applies to float8)"),
		ortNode("Cast", "f32_special_to_f16", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{6}, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1+1.0/2048, 1+3.0/2048))}, to(tensor.Float16)),
		ortNode("Cast", "f32_special_to_f64", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{3}, math.NaN(), math.Inf(-1), 1e-40))}, to(tensor.Float64)),
		ortNode("Cast", "f16_subnormal_to_f32", 18, 21, 1, []ortIn{ortFeed("x", &tensor.Tensor{DType: tensor.Float16, Shape: tensor.Shape{4}, Data: []uint16{0x0001, 0x03ff, 0x8001, 0x7c00}})}, to(tensor.Float32)),
		ortNode("Cast", "i32_to_f16_overflow", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int32, []int{3}, 70000, -70000, 2049))}, to(tensor.Float16)),
		ortNode("Cast", "f64_to_i32_negative", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float64, []int{4}, -2.5, -0.9, 2147483647, -2147483648))}, to(tensor.Int32)),
		ortNode("Cast", "f32_to_i64_large", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{2}, 1e10, -1e12))}, to(tensor.Int64)),
		ortNode("Cast", "f16_to_i8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 76, 6))}, to(tensor.Int8)),
		ortNode("Cast", "f32_to_u16", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Float32, []int{3}, 0, 1.5, 65535))}, to(tensor.Uint16)),
		ortNode("Cast", "u64_to_f32", 18, 21, 1, []ortIn{ortFeed("x", &tensor.Tensor{DType: tensor.Uint64, Shape: tensor.Shape{2}, Data: []uint64{1 << 63, 12345}})}, to(tensor.Float32)),
		ortNode("Cast", "u16_to_i16_wrap", 18, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Uint16, []int{3}, 65535, 32768, 5))}, to(tensor.Int16)),
	}
}

func ortQuantCases() []ortCase {
	// x/scale hits ties (k/2) so round-half-to-even is checked.
	ties := ortT(tensor.Float32, []int{2, 6}, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 2.5, 60, -70, 0.125, 3.75, 1000)
	sc := func(v float64) *tensor.Tensor { return ortScalar(tensor.Float32, v) }
	zp := func(dt tensor.DType, v float64) *tensor.Tensor { return ortScalar(dt, v) }
	x3 := ortRand(tensor.Float32, 80, 2, 3, 4)
	blockScale := ortT(tensor.Float32, []int{2, 2}, 0.5, 0.25, 0.125, 1)
	q := "QuantizeLinear"
	dq := "DequantizeLinear"
	return []ortCase{
		ortNode(q, "per_tensor_uint8_zp", 18, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.5)), ortConst("zp", zp(tensor.Uint8, 128))}),
		ortNode(q, "per_tensor_int8_ties", 18, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.5)), ortConst("zp", zp(tensor.Int8, -3))}),
		ortNode(q, "no_zero_point_uint8", 18, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.25))}),
		ortNode(q, "per_axis_int8", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("s", ortF32(0.05, 0.1, 0.02)), ortConst("zp", ortT(tensor.Int8, []int{3}, 0, -5, 7))}),
		ortNode(q, "per_axis_negative_axis_uint8", 18, 21, 1, []ortIn{ortFeed("x", x3), ortConst("s", ortF32(0.05, 0.1, 0.02, 0.5)), ortConst("zp", ortT(tensor.Uint8, []int{4}, 128, 0, 255, 10))}, ir.IntAttr("axis", -1)),
		ortNode(q, "float16_input", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 81, 2, 5)), ortConst("s", ortScalar(tensor.Float16, 0.125)), ortConst("zp", zp(tensor.Int8, 1))}),
		ortNode(q, "float16_per_axis", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 95, 2, 3)), ortConst("s", ortT(tensor.Float16, []int{3}, 0.5, 0.25, 0.125)), ortConst("zp", ortT(tensor.Uint8, []int{3}, 0, 128, 255))}),
		ortNode(q, "saturate_attr_int8", 19, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.01)), ortConst("zp", zp(tensor.Int8, 0))}, ir.IntAttr("saturate", 1)),
		ortNode(q, "float16_no_zp", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float16, 97, 6)), ortConst("s", ortScalar(tensor.Float16, 0.03125))}),
		ortNode(q, "blocked_negative_axis", 21, 21, 1, []ortIn{ortFeed("x", x3), ortConst("s", ortRand(tensor.Float32, 98, 2, 3, 2)), ortConst("zp", ortRand(tensor.Uint8, 99, 2, 3, 2))}, ir.IntAttr("axis", -1), ir.IntAttr("block_size", 2)),
		ortNode(q, "output_dtype_with_zp", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.5)), ortConst("zp", zp(tensor.Int8, 5))}, ir.IntAttr("output_dtype", int64(tensor.Int8))),
		ortNode(q, "output_dtype_int8", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.5))}, ir.IntAttr("output_dtype", int64(tensor.Int8))),
		ortNode(q, "output_dtype_uint16", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.01))}, ir.IntAttr("output_dtype", int64(tensor.Uint16))),
		ortNode(q, "int16_zp", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.001)), ortConst("zp", zp(tensor.Int16, -100))}),
		ortNode(q, "uint16_zp", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", sc(0.01)), ortConst("zp", zp(tensor.Uint16, 30000))}),
		ortNode(q, "blocked_axis1_bs3", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", blockScale), ortConst("zp", ortT(tensor.Int8, []int{2, 2}, 0, 1, -1, 2))}, ir.IntAttr("axis", 1), ir.IntAttr("block_size", 3)),
		ortNode(q, "blocked_axis1_bs4_uneven", 21, 21, 1, []ortIn{ortFeed("x", ties), ortConst("s", blockScale), ortConst("zp", ortT(tensor.Uint8, []int{2, 2}, 100, 1, 50, 2))}, ir.IntAttr("axis", 1), ir.IntAttr("block_size", 4)),
		ortNode(q, "blocked_axis0", 21, 21, 1, []ortIn{ortFeed("x", x3), ortConst("s", ortRand(tensor.Float32, 82, 1, 3, 4)), ortConst("zp", ortRand(tensor.Int8, 83, 1, 3, 4))}, ir.IntAttr("axis", 0), ir.IntAttr("block_size", 2)),
		ortNode(dq, "per_tensor_uint8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 84, 3, 4)), ortConst("s", sc(0.1)), ortConst("zp", zp(tensor.Uint8, 40))}),
		ortNode(dq, "per_tensor_int8_no_zp", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 85, 3, 4)), ortConst("s", sc(0.1))}),
		ortNode(dq, "int32_no_zp", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int32, 86, 3, 4)), ortConst("s", sc(0.01))}),
		ortNode(dq, "per_axis_int8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 87, 2, 3, 4)), ortConst("s", ortF32(0.05, 0.1, 0.02)), ortConst("zp", ortT(tensor.Int8, []int{3}, 0, -5, 7))}),
		ortNode(dq, "per_axis_axis0_uint8", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 88, 2, 3)), ortConst("s", ortF32(0.5, 0.25)), ortConst("zp", ortT(tensor.Uint8, []int{2}, 10, 20))}, ir.IntAttr("axis", 0)),
		ortNode(dq, "float16_scale", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 89, 2, 5)), ortConst("s", ortScalar(tensor.Float16, 0.125)), ortConst("zp", zp(tensor.Int8, 3))}),
		ortNode(dq, "float16_scale_per_axis", 19, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 96, 2, 3)), ortConst("s", ortT(tensor.Float16, []int{3}, 0.5, 0.25, 0.125)), ortConst("zp", ortT(tensor.Uint8, []int{3}, 0, 128, 255))}),
		ortNode(dq, "scalar_input", 18, 21, 1, []ortIn{ortFeed("x", ortScalar(tensor.Int8, -7)), ortConst("s", sc(0.5)), ortConst("zp", zp(tensor.Int8, 2))}),
		ortNode(dq, "int32_per_axis", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int32, 78, 2, 3)), ortConst("s", ortF32(0.5, 0.25, 0.125))}),
		ortNode(dq, "blocked_float16_scale", 21, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 79, 2, 6)), ortConst("s", ortT(tensor.Float16, []int{2, 2}, 0.5, 0.25, 0.125, 1))}, ir.IntAttr("axis", 1), ir.IntAttr("block_size", 3)),
		ortNode(dq, "int16", 21, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Int16, []int{4}, -32768, -1, 0, 32767)), ortConst("s", sc(0.001)), ortConst("zp", zp(tensor.Int16, -100))}),
		ortNode(dq, "uint16", 21, 21, 1, []ortIn{ortFeed("x", ortT(tensor.Uint16, []int{4}, 0, 1, 30000, 65535)), ortConst("s", sc(0.01)), ortConst("zp", zp(tensor.Uint16, 30000))}),
		ortNode(dq, "blocked_axis1_bs3", 21, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 90, 2, 6)), ortConst("s", blockScale), ortConst("zp", ortT(tensor.Int8, []int{2, 2}, 0, 1, -1, 2))}, ir.IntAttr("axis", 1), ir.IntAttr("block_size", 3)),
		ortNode(dq, "blocked_axis1_bs4_uneven", 21, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Uint8, 91, 2, 6)), ortConst("s", blockScale)}, ir.IntAttr("axis", 1), ir.IntAttr("block_size", 4)),
		ortNode(dq, "blocked_axis0", 21, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Int8, 92, 2, 3, 4)), ortConst("s", ortRand(tensor.Float32, 93, 1, 3, 4)), ortConst("zp", ortRand(tensor.Int8, 94, 1, 3, 4))}, ir.IntAttr("axis", 0), ir.IntAttr("block_size", 2)),
	}
}

func ortEqualCases() []ortCase {
	return []ortCase{
		ortNode("Equal", "float32_broadcast", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 100, 3, 4)), ortFeed("b", ortRand(tensor.Float32, 100, 1, 4))}),
		ortNode("Equal", "int32", 18, 21, 1, []ortIn{ortFeed("a", ortT(tensor.Int32, []int{4}, 1, 2, 3, 4)), ortFeed("b", ortT(tensor.Int32, []int{4}, 1, 0, 3, -4))}),
		ortNode("Equal", "int64_scalar", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Int64, 101, 2, 3)), ortConst("b", ortScalar(tensor.Int64, 7))}),
		ortNode("Equal", "bool", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Bool, 102, 6)), ortFeed("b", ortRand(tensor.Bool, 103, 6))}),
		ortNode("Equal", "uint8", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Uint8, 104, 6)), ortFeed("b", ortRand(tensor.Uint8, 104, 6))}),
		ortNode("Equal", "float16", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Float16, 105, 2, 3)), ortFeed("b", ortRand(tensor.Float16, 105, 3))}),
		ortNode("Equal", "float32_nan", 18, 21, 1, []ortIn{ortFeed("a", ortT(tensor.Float32, []int{3}, math.NaN(), 1, math.Inf(1))), ortFeed("b", ortT(tensor.Float32, []int{3}, math.NaN(), 1, math.Inf(1)))}),
		ortNode("Equal", "float64", 18, 21, 1, []ortIn{ortFeed("a", ortRand(tensor.Float64, 106, 4)), ortFeed("b", ortRand(tensor.Float64, 106, 4))}),
	}
}

func ortConstantCases() []ortCase {
	val := func(t *tensor.Tensor) ir.Attr { return ir.TensorAttr("value", t) }
	shape := func(v ...int64) ortIn { return ortConst("shape", ortI64(v...)) }
	return []ortCase{
		ortNode("Constant", "value_float32", 18, 21, 1, nil, val(ortRand(tensor.Float32, 110, 2, 3))),
		ortNode("Constant", "value_float16", 18, 21, 1, nil, val(ortRand(tensor.Float16, 111, 3))),
		ortNode("Constant", "value_bool", 18, 21, 1, nil, val(ortRand(tensor.Bool, 112, 2, 2))),
		ortNode("Constant", "value_int8", 18, 21, 1, nil, val(ortRand(tensor.Int8, 113, 4))),
		ortNode("Constant", "value_scalar_int64", 18, 21, 1, nil, val(ortScalar(tensor.Int64, -9))),
		ortNode("Constant", "value_float", 18, 21, 1, nil, ir.FloatAttr("value_float", 2.5)),
		ortNode("Constant", "value_floats", 18, 21, 1, nil, ir.FloatsAttr("value_floats", 1, -2, 3.5)),
		ortNode("Constant", "value_int", 18, 21, 1, nil, ir.IntAttr("value_int", 42)),
		ortNode("Constant", "value_ints", 18, 21, 1, nil, ir.IntsAttr("value_ints", 4, -5, 6)),
		ortNode("ConstantOfShape", "default_float_zero", 18, 21, 1, []ortIn{shape(2, 3)}),
		ortNode("ConstantOfShape", "int8", 18, 21, 1, []ortIn{shape(3, 1)}, val(ortT(tensor.Int8, []int{1}, -7))),
		ortNode("ConstantOfShape", "uint8", 18, 21, 1, []ortIn{shape(2)}, val(ortT(tensor.Uint8, []int{1}, 200))),
		ortNode("ConstantOfShape", "float16", 18, 21, 1, []ortIn{shape(2, 2)}, val(ortT(tensor.Float16, []int{1}, 1.5))),
		ortNode("ConstantOfShape", "bool", 18, 21, 1, []ortIn{shape(3)}, val(ortT(tensor.Bool, []int{1}, 1))),
		ortNode("ConstantOfShape", "float64", 18, 21, 1, []ortIn{shape(1, 2)}, val(ortT(tensor.Float64, []int{1}, -0.25))),
		ortNode("ConstantOfShape", "int64_fed_shape", 18, 21, 1, []ortIn{ortFeed("shape", ortI64(2, 0, 3))}, val(ortT(tensor.Int64, []int{1}, 5))),
		ortNode("ConstantOfShape", "scalar_output", 18, 21, 1, []ortIn{shape()}, val(ortT(tensor.Int32, []int{1}, 3))),
		ortNode("ConstantOfShape", "uint16", 20, 21, 1, []ortIn{shape(2)}, val(ortT(tensor.Uint16, []int{1}, 60000))),
	}
}

// ortShapeOpCases cover ops whose type lists were widened in opsets 19..21
// with unchanged semantics.
func ortShapeOpCases() []ortCase {
	x := ortRand(tensor.Float32, 120, 2, 3, 4)
	var cs []ortCase
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float16, tensor.Int8, tensor.Uint16, tensor.Bool, tensor.Int64} {
		in := ortRand(dt, 121, 2, 3, 4)
		n := dt.String()
		cs = append(cs,
			ortNode("Identity", n, 18, 21, 1, []ortIn{ortFeed("x", in)}),
			ortNode("Reshape", n, 18, 21, 1, []ortIn{ortFeed("x", in), ortConst("shape", ortI64(4, 0, -1))}),
			ortNode("Transpose", n, 18, 21, 1, []ortIn{ortFeed("x", in)}, ir.IntsAttr("perm", 1, 2, 0)),
			ortNode("Flatten", n, 18, 21, 1, []ortIn{ortFeed("x", in)}, ir.IntAttr("axis", 2)),
			ortNode("Shape", n, 18, 21, 1, []ortIn{ortFeed("x", in)}),
			ortNode("Squeeze", n, 18, 21, 1, []ortIn{ortFeed("x", ortRand(dt, 122, 1, 3, 1, 2)), ortConst("axes", ortI64(0, -2))}),
			ortNode("Unsqueeze", n, 18, 21, 1, []ortIn{ortFeed("x", in), ortConst("axes", ortI64(0, -1))}),
		)
	}
	cs = append(cs,
		ortNode("Reshape", "allowzero", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 123, 0, 3)), ortConst("shape", ortI64(3, 0))}, ir.IntAttr("allowzero", 1)),
		ortNode("Reshape", "to_scalar", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 124, 1, 1)), ortConst("shape", ortI64())}),
		ortNode("Reshape", "shape_fed", 18, 21, 1, []ortIn{ortFeed("x", x), ortFeed("shape", ortI64(-1, 6))}),
		ortNode("Shape", "start_end", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("start", 1), ir.IntAttr("end", -1)),
		ortNode("Shape", "start_negative", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("start", -2)),
		ortNode("Shape", "start_after_end", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("start", 2), ir.IntAttr("end", 1)),
		ortNode("Shape", "end_clamped", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("start", -10), ir.IntAttr("end", 10)),
		ortNode("Flatten", "axis0", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("axis", 0)),
		ortNode("Flatten", "axis_negative", 18, 21, 1, []ortIn{ortFeed("x", x)}, ir.IntAttr("axis", -1)),
		ortNode("Squeeze", "no_axes", 18, 21, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 125, 1, 3, 1))}),
		ortNode("Transpose", "default_perm", 18, 21, 1, []ortIn{ortFeed("x", x)}),
	)
	return cs
}

// ortUnchangedCases run ops that did not change after opset 17 at opset 21,
// to check goslim accepts them there.
func ortUnchangedCases() []ortCase {
	x := ortRand(tensor.Float32, 130, 1, 2, 5, 5)
	const o = 21
	return []ortCase{
		ortNode("Conv", "group_dilation", o, o, 1, []ortIn{ortFeed("x", x), ortConst("w", ortRand(tensor.Float32, 131, 4, 1, 3, 3)), ortConst("b", ortRand(tensor.Float32, 132, 4))},
			ir.IntAttr("group", 2), ir.IntsAttr("dilations", 2, 1), ir.IntsAttr("pads", 2, 1, 2, 1)),
		ortNode("ConvTranspose", "strides", o, o, 1, []ortIn{ortFeed("x", x), ortConst("w", ortRand(tensor.Float32, 133, 2, 3, 3, 3))}, ir.IntsAttr("strides", 2, 2)),
		ortNode("Gemm", "transB", o, o, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 134, 3, 5)), ortConst("b", ortRand(tensor.Float32, 135, 4, 5)), ortConst("c", ortRand(tensor.Float32, 136, 4))},
			ir.IntAttr("transB", 1), ir.FloatAttr("alpha", 0.5)),
		ortNode("MatMul", "batched", o, o, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 137, 2, 3, 4)), ortFeed("b", ortRand(tensor.Float32, 138, 4, 5))}),
		ortNode("MaxPool", "pads_strides", o, o, 1, []ortIn{ortFeed("x", x)}, ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("strides", 2, 2)),
		ortNode("GlobalAveragePool", "basic", o, o, 1, []ortIn{ortFeed("x", x)}),
		ortNode("BatchNormalization", "inference", o, o, 1, []ortIn{ortFeed("x", x), ortConst("s", ortF32(1.5, 0.5)), ortConst("b", ortF32(0.1, -0.2)), ortConst("m", ortF32(0.3, -0.1)), ortConst("v", ortF32(0.9, 2))}),
		ortNode("LayerNormalization", "last_axis", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 139, 2, 3, 8)), ortConst("s", ortRand(tensor.Float32, 140, 8)), ortConst("b", ortRand(tensor.Float32, 141, 8))}),
		ortNode("Softmax", "axis1", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 142, 2, 5, 3))}, ir.IntAttr("axis", 1)),
		ortNode("Gather", "axis1", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 143, 3, 4)), ortConst("i", ortI64(3, -1, 0))}, ir.IntAttr("axis", 1)),
		ortNode("Slice", "steps", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 144, 5, 6)), ortConst("st", ortI64(4, 1)), ortConst("en", ortI64(0, 100)), ortConst("ax", ortI64(0, 1)), ortConst("sp", ortI64(-2, 2))}),
		ortNode("Concat", "axis_negative", o, o, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 145, 2, 3)), ortFeed("b", ortRand(tensor.Float32, 146, 2, 1))}, ir.IntAttr("axis", -1)),
		ortNode("Where", "broadcast", o, o, 1, []ortIn{ortFeed("c", ortRand(tensor.Bool, 147, 2, 1)), ortFeed("a", ortRand(tensor.Float32, 148, 2, 3)), ortFeed("b", ortRand(tensor.Float32, 149, 3))}),
		ortNode("Expand", "broadcast", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 150, 3, 1)), ortConst("s", ortI64(2, 3, 4))}),
		ortNode("ArgMax", "keepdims0", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 151, 3, 4))}, ir.IntAttr("axis", 1), ir.IntAttr("keepdims", 0)),
		ortNode("Clip", "min_max", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 152, 8)), ortConst("lo", ortScalar(tensor.Float32, -1)), ortConst("hi", ortScalar(tensor.Float32, 0.5))}),
		ortNode("Greater", "broadcast", o, o, 1, []ortIn{ortFeed("a", ortRand(tensor.Float32, 153, 2, 3)), ortFeed("b", ortRand(tensor.Float32, 154, 3))}),
		ortNode("Less", "int64", o, o, 1, []ortIn{ortFeed("a", ortRand(tensor.Int64, 155, 4)), ortFeed("b", ortRand(tensor.Int64, 156, 4))}),
		ortNode("Sigmoid", "basic", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 157, 7))}),
		ortNode("HardSwish", "basic", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 158, 7))}),
		ortNode("Div", "int32", o, o, 1, []ortIn{ortFeed("a", ortT(tensor.Int32, []int{4}, 7, -7, 9, -9)), ortConst("b", ortT(tensor.Int32, []int{4}, 2, 2, -4, -4))}),
		ortNode("Pow", "float", o, o, 1, []ortIn{ortFeed("a", ortT(tensor.Float32, []int{3}, 2, 0.5, 3)), ortConst("b", ortScalar(tensor.Float32, 3))}),
		ortNode("Dropout", "inference", o, o, 1, []ortIn{ortFeed("x", ortRand(tensor.Float32, 159, 5))}),
	}
}
