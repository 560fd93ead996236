package ops

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// This file runs the integer operators as one-node QOperator models (the
// first input fed, the others initializers, as quantization tools write
// them) in ONNX Runtime and goslim. Quantized outputs must agree within one
// step (ORT requantizes in float32, goslim in fixed point) and exactly on
// >= 99% of elements; int32 outputs exactly.

type qORTCase struct {
	name, domain, op string
	attrs            ir.Attrs
	in               []*tensor.Tensor
	nOut             int
}

func (c *qORTCase) model() ([]byte, map[string]*tensor.Tensor, error) {
	b := ir.NewBuilder("q_ort", 13)
	if c.domain != "" {
		b.G.Opsets[c.domain] = 1
	}
	feeds := map[string]*tensor.Tensor{}
	ids := make([]ir.ValueID, len(c.in))
	for i, t := range c.in {
		switch {
		case t == nil:
			ids[i] = ir.NoValue
		case i == 0:
			dims := make([]int64, len(t.Shape))
			for j, d := range t.Shape {
				dims[j] = int64(d)
			}
			ids[i] = b.Input("x", t.DType, dims...)
			feeds["x"] = t
		default:
			ids[i] = b.Const(fmt.Sprintf("c%d", i), t)
		}
	}
	outs := b.OpN(c.op, "node", c.nOut, ids, c.attrs...)
	b.G.Nodes[len(b.G.Nodes)-1].Domain = c.domain
	b.Output(outs...)
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, b.G); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), feeds, nil
}

func qORTConvCases(r *rand.Rand) []qORTCase {
	var cases []qORTCase
	for trial := range 24 {
		q := randQConvCase(r, trial%4)
		q.h += 2
		q.w += 2
		xdt := []tensor.DType{tensor.Uint8, tensor.Uint8, tensor.Int8}[trial%3]
		wdt := tensor.Int8
		if xdt == tensor.Uint8 && trial%2 == 1 {
			wdt = tensor.Uint8
		}
		cg := q.c / q.group
		x := qRand(r, xdt, q.n, q.c, q.h, q.w)
		w := qRand(r, wdt, q.m, cg, q.kh, q.kw)
		nsw := 1
		if trial%2 == 0 {
			nsw = q.m
		}
		sw, zw := make([]float64, nsw), make([]float64, nsw)
		for i := range sw {
			sw[i] = 0.002 + r.Float64()*0.02
			if wdt == tensor.Uint8 {
				zw[i] = 128 + float64(r.IntN(5)-2)
			}
		}
		sx := 0.01 + r.Float64()*0.05
		sy := sx * sw[0] * math.Sqrt(float64(cg*q.kh*q.kw)) * 37.3
		bias := make([]float64, q.m)
		for i := range bias {
			bias[i] = float64(r.IntN(4001) - 2000)
		}
		bt := qVals(tensor.Int32, bias...)
		bt.Shape = tensor.Shape{q.m}
		attrs := ir.Attrs{ir.IntAttr("group", int64(q.group)), ir.IntsAttr("strides", int64(q.sh), int64(q.sw)),
			ir.IntsAttr("dilations", int64(q.dh), int64(q.dw)), ir.IntsAttr("pads", int64(q.pads[0]), int64(q.pads[1]), int64(q.pads[2]), int64(q.pads[3]))}
		in := []*tensor.Tensor{x, qVals(tensor.Float32, sx), qVals(xdt, qRandZero(r, xdt)), w, qVals(tensor.Float32, sw...), qVals(wdt, zw...),
			qVals(tensor.Float32, sy), qVals(xdt, qRandZero(r, xdt)), bt}
		for _, t := range []int{4, 5} {
			if nsw > 1 {
				in[t].Shape = tensor.Shape{q.m}
			}
		}
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearConv %+v %v %v", q, xdt, wdt), op: "QLinearConv", attrs: attrs, in: in, nOut: 1})
		if trial < 6 && xdt == tensor.Uint8 {
			xz := qVals(tensor.Uint8, float64(r.IntN(256)))
			wz := qVals(wdt, zw[0])
			cases = append(cases, qORTCase{name: fmt.Sprintf("ConvInteger %+v %v", q, wdt), op: "ConvInteger", attrs: attrs,
				in: []*tensor.Tensor{x, w, xz, wz}, nOut: 1})
		}
	}
	return cases
}

func qORTMatCases(r *rand.Rand) []qORTCase {
	var cases []qORTCase
	for trial := range 12 {
		m, n, kk := 1+r.IntN(40), 1+r.IntN(50), 1+r.IntN(90)
		adt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		bdt := tensor.Int8
		if adt == tensor.Uint8 && trial%4 == 0 {
			bdt = tensor.Uint8
		}
		a, b := qRand(r, adt, m, kk), qRand(r, bdt, kk, n)
		sa, sb := 0.02+r.Float64()*0.01, 0.003+r.Float64()*0.01
		sy := sa * sb * math.Sqrt(float64(kk)) * 53.1
		zb := 0.0
		if bdt == tensor.Uint8 {
			zb = 128
		}
		in := []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(adt, qRandZero(r, adt)), b, qVals(tensor.Float32, sb), qVals(bdt, zb),
			qVals(tensor.Float32, sy), qVals(adt, qRandZero(r, adt))}
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearMatMul %dx%dx%d %v %v", m, n, kk, adt, bdt), op: "QLinearMatMul", in: in, nOut: 1})
		if adt == tensor.Uint8 {
			cases = append(cases, qORTCase{name: fmt.Sprintf("MatMulInteger %dx%dx%d %v", m, n, kk, bdt), op: "MatMulInteger",
				in: []*tensor.Tensor{a, b, qVals(tensor.Uint8, float64(r.IntN(256))), qVals(bdt, zb)}, nOut: 1})
		}
		// QGemm: per-column b_scale, int32 C, float and quantized output.
		sbs := make([]float64, n)
		for j := range sbs {
			sbs[j] = 0.003 + r.Float64()*0.01
		}
		sbt := qVals(tensor.Float32, sbs...)
		sbt.Shape = tensor.Shape{n}
		cv := make([]float64, n)
		for j := range cv {
			cv[j] = float64(r.IntN(2001) - 1000)
		}
		ct := qVals(tensor.Int32, cv...)
		ct.Shape = tensor.Shape{n}
		bq := qRand(r, tensor.Int8, n, kk)
		zbt, _ := tensor.New(tensor.Int8, tensor.Shape{n}) // ORT wants b's zero point shaped like its scale
		gin := []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(adt, qRandZero(r, adt)), bq, sbt, zbt, ct}
		attrs := ir.Attrs{ir.IntAttr("transB", 1)}
		cases = append(cases, qORTCase{name: fmt.Sprintf("QGemm float %dx%dx%d %v", m, n, kk, adt), domain: "com.microsoft", op: "QGemm", attrs: attrs, in: gin, nOut: 1})
		cases = append(cases, qORTCase{name: fmt.Sprintf("QGemm quant %dx%dx%d %v", m, n, kk, adt), domain: "com.microsoft", op: "QGemm", attrs: attrs,
			in: append(gin[:7:7], qVals(tensor.Float32, sy), qVals(adt, qRandZero(r, adt))), nOut: 1})
	}
	return cases
}

func qORTElemCases(r *rand.Rand) []qORTCase {
	var cases []qORTCase
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		for _, sh := range [][2][]int{{{2, 3, 8}, {2, 3, 8}}, {{2, 3, 8}, {8}}, {{4, 1, 5}, {3, 1}}} {
			for _, op := range []string{"QLinearAdd", "QLinearMul"} {
				sc := 0.0713
				if op == "QLinearMul" {
					sc = 0.3917
				}
				in := []*tensor.Tensor{qRand(r, dt, sh[0]...), qVals(tensor.Float32, 0.05), qVals(dt, qRandZero(r, dt)),
					qRand(r, dt, sh[1]...), qVals(tensor.Float32, 0.031), qVals(dt, qRandZero(r, dt)), qVals(tensor.Float32, sc), qVals(dt, qRandZero(r, dt))}
				cases = append(cases, qORTCase{name: fmt.Sprintf("%s %v %v", op, sh, dt), domain: "com.microsoft", op: op, in: in, nOut: 1})
			}
		}
		un := []*tensor.Tensor{qRand(r, dt, 4, 64), qVals(tensor.Float32, 0.047), qVals(dt, qRandZero(r, dt)), qVals(tensor.Float32, 0.0213), qVals(dt, qRandZero(r, dt))}
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearLeakyRelu %v", dt), domain: "com.microsoft", op: "QLinearLeakyRelu",
			attrs: ir.Attrs{ir.FloatAttr("alpha", 0.1)}, in: un, nOut: 1})
		sg := append([]*tensor.Tensor(nil), un...)
		sg[3] = qVals(tensor.Float32, 1.0/256)
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearSigmoid %v", dt), domain: "com.microsoft", op: "QLinearSigmoid", in: sg, nOut: 1})
		pin := []*tensor.Tensor{qRand(r, dt, 2, 5, 7, 6), qVals(tensor.Float32, 0.05), qVals(dt, qRandZero(r, dt)), qVals(tensor.Float32, 0.0437), qVals(dt, qRandZero(r, dt))}
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearGlobalAveragePool %v", dt), domain: "com.microsoft", op: "QLinearGlobalAveragePool",
			attrs: ir.Attrs{ir.IntAttr("channels_last", 0)}, in: pin, nOut: 1})
		for _, inc := range []int64{0, 1} {
			cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearAveragePool %v include_pad %d", dt, inc), domain: "com.microsoft", op: "QLinearAveragePool",
				attrs: ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 1), ir.IntsAttr("pads", 1, 1, 1, 0), ir.IntAttr("count_include_pad", inc)},
				in:    pin, nOut: 1})
		}
		cin := []*tensor.Tensor{qRand(r, dt, 2, 3, 4), qVals(tensor.Float32, 0.05), qVals(dt, qRandZero(r, dt)), qVals(tensor.Float32, 0.05), qVals(dt, qRandZero(r, dt)),
			qRand(r, dt, 2, 2, 4), qVals(tensor.Float32, 0.0291), qVals(dt, qRandZero(r, dt))}
		// QLinearConcat's inputs start with Y_scale; the fed input is the
		// first X, so rotate: the model feeds in[0] = X0.
		cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearConcat %v", dt), domain: "com.microsoft", op: "QLinearConcat",
			attrs: ir.Attrs{ir.IntAttr("axis", 1)}, in: cin, nOut: 1})
	}
	x := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{3, 17}, Data: make([]float32, 51)}
	for i := range x.F32() {
		x.F32()[i] = float32(r.NormFloat64() * 3)
	}
	cases = append(cases, qORTCase{name: "DynamicQuantizeLinear", op: "DynamicQuantizeLinear", in: []*tensor.Tensor{x}, nOut: 3})
	return cases
}

// qORTInputs maps a case's inputs to the operator's input order
// (QLinearConcat's fed X comes third).
func qORTInputs(c *qORTCase) []*tensor.Tensor {
	if c.op != "QLinearConcat" {
		return c.in
	}
	in := c.in
	return []*tensor.Tensor{in[3], in[4], in[0], in[1], in[2], in[5], in[6], in[7]}
}

func TestQLinearAgainstORT(t *testing.T) {
	o := ortoracle.Require(t).With(ortoracle.Options{OptLevel: ortoracle.OptDisabled, Threads: 1})
	r := rand.New(rand.NewPCG(61, 62))
	var cases []qORTCase
	cases = append(cases, qORTConvCases(r)...)
	cases = append(cases, qORTMatCases(r)...)
	cases = append(cases, qORTElemCases(r)...)
	batch := make([]ortoracle.Case, len(cases))
	for i := range cases {
		c := &cases[i]
		if c.op == "QLinearConcat" {
			c.in = qORTInputs(c)
		}
		m, feeds, err := qORTConcatSafeModel(c)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		batch[i] = ortoracle.Case{Model: m, Feeds: feeds}
	}
	res, err := o.RunAll(batch)
	if err != nil {
		t.Fatal(err)
	}
	total, diff := 0, 0
	for i, c := range cases {
		if res[i].Err != nil {
			t.Errorf("%s: ORT: %v", c.name, res[i].Err)
			continue
		}
		consts := map[int]bool{}
		for j := range c.in {
			consts[j] = true
		}
		consts[c.fedIndex()] = false
		got, err := qRunErr(c.domain, c.op, 13, c.attrs, kernel.Best(), 1+i%2, c.nOut, consts, c.in...)
		if err != nil {
			t.Errorf("%s: goslim: %v", c.name, err)
			continue
		}
		for k := range c.nOut {
			name := fmt.Sprintf("node_out%d", k)
			if c.nOut == 1 {
				name = "node_out"
			}
			want := res[i].Outputs[name]
			if want == nil {
				t.Errorf("%s: ORT has no output %q", c.name, name)
				continue
			}
			g := got[k]
			if g.DType != want.DType || !g.Shape.Equal(want.Shape) {
				t.Errorf("%s: output %d: got %v%v, ORT %v%v", c.name, k, g.DType, g.Shape, want.DType, want.Shape)
				continue
			}
			for e := range want.Len() {
				gv, wv := g.Float64At(e), want.Float64At(e)
				total++
				if gv == wv {
					continue
				}
				diff++
				ok := false
				switch want.DType {
				case tensor.Uint8, tensor.Int8:
					ok = math.Abs(gv-wv) <= 1
				case tensor.Float32:
					ok = math.Abs(gv-wv) <= 1e-5+1e-4*math.Abs(wv)
				}
				if !ok {
					t.Errorf("%s: output %d element %d: got %g, ORT %g", c.name, k, e, gv, wv)
					break
				}
			}
		}
	}
	if float64(diff) > 0.01*float64(total) {
		t.Errorf("%d of %d elements differ from ONNX Runtime", diff, total)
	}
	t.Logf("%d cases; %d of %d output elements differ from ONNX Runtime (by one quantization step, or float rounding)", len(cases), diff, total)
}

// fedIndex is the operator input fed at run time (the others are
// initializers).
func (c *qORTCase) fedIndex() int {
	if c.op == "QLinearConcat" {
		return 2
	}
	return 0
}

// qORTConcatSafeModel builds the model with input fedIndex() as the graph
// input.
func qORTConcatSafeModel(c *qORTCase) ([]byte, map[string]*tensor.Tensor, error) {
	fi := c.fedIndex()
	if fi == 0 {
		return c.model()
	}
	b := ir.NewBuilder("q_ort", 13)
	b.G.Opsets[c.domain] = 1
	ids := make([]ir.ValueID, len(c.in))
	feeds := map[string]*tensor.Tensor{}
	for i, t := range c.in {
		if i == fi {
			dims := make([]int64, len(t.Shape))
			for j, d := range t.Shape {
				dims[j] = int64(d)
			}
			ids[i] = b.Input("x", t.DType, dims...)
			feeds["x"] = t
			continue
		}
		ids[i] = b.Const(fmt.Sprintf("c%d", i), t)
	}
	outs := b.OpN(c.op, "node", c.nOut, ids, c.attrs...)
	b.G.Nodes[len(b.G.Nodes)-1].Domain = c.domain
	b.Output(outs...)
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, b.G); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), feeds, nil
}
