package ops

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// This file cross-checks the NN kernels against ONNX Runtime on random
// problems: the reference loops of the other tests encode our reading of
// the spec, ORT is an independent one. Each case is a one-node model; ORT
// runs them all in one process (graph optimizations off). Skipped when ORT
// is not installed (see internal/ortoracle).

// nnORTCase is one random one-node model.
type nnORTCase struct {
	name  string
	op    string
	opset int64
	attrs ir.Attrs
	in    []*tensor.Tensor
	nOut  int
}

func (c *nnORTCase) model() ([]byte, map[string]*tensor.Tensor, error) {
	b := ir.NewBuilder("nn_ort", c.opset)
	if c.opset >= 19 {
		b.G.IRVersion = 9
	}
	feeds := map[string]*tensor.Tensor{}
	ids := make([]ir.ValueID, len(c.in))
	for i, t := range c.in {
		if t == nil {
			ids[i] = ir.NoValue
			continue
		}
		dims := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			dims[j] = int64(d)
		}
		ids[i] = b.Input(fmt.Sprintf("in%d", i), t.DType, dims...)
		feeds[b.G.Values[ids[i]].Name] = t
	}
	b.Output(b.OpN(c.op, "node", c.nOut, ids, c.attrs...)...)
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, b.G); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), feeds, nil
}

func nnORTConvCases(r *rand.Rand) []nnORTCase {
	var cases []nnORTCase
	autos := []string{"NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}
	for len(cases) < 60 {
		c := randConvCfg(r)
		nd := len(c.in)
		if nd > 3 {
			continue
		}
		auto := autos[r.IntN(len(autos))]
		if auto == "SAME_UPPER" || auto == "SAME_LOWER" {
			// ORT's Conv refuses dilations with SAME_*.
			for i := range c.dil {
				c.dil[i] = 1
			}
		}
		attrs := ir.Attrs{ir.IntsAttr("strides", nnInts64(c.stride)...), ir.IntsAttr("dilations", nnInts64(c.dil)...),
			ir.IntAttr("group", int64(c.group)), ir.StringAttr("auto_pad", auto)}
		if auto == "NOTSET" {
			attrs = append(attrs, ir.IntsAttr("pads", append(nnInts64(c.padB), nnInts64(c.padE)...)...))
		}
		C, M := c.cg*c.group, c.mg*c.group
		in := []*tensor.Tensor{
			nnTensor(tensor.Float32, nnSpatialShape(c.n, C, c.in), nnRandVals(r, c.n*C*nnProd(c.in))),
			nnTensor(tensor.Float32, nnSpatialShape(M, c.cg, c.k), nnRandVals(r, M*c.cg*nnProd(c.k))),
		}
		if c.bias {
			in = append(in, nnTensor(tensor.Float32, tensor.Shape{M}, nnRandVals(r, M)))
		}
		cases = append(cases, nnORTCase{name: fmt.Sprintf("Conv %v auto_pad=%s", c, auto), op: "Conv", opset: 11, attrs: attrs, in: in, nOut: 1})
	}
	for len(cases) < 110 {
		nd := 1 + r.IntN(3)
		cg, mg, group := 1+r.IntN(3), 1+r.IntN(3), 1+r.IntN(2)
		var in, k, s, d, pb, pe, op, os []int
		ok := true
		for i := 0; i < nd; i++ {
			in = append(in, 1+r.IntN(5))
			k = append(k, 1+r.IntN(3))
			s = append(s, 1+r.IntN(3))
			d = append(d, 1+r.IntN(2))
			op = append(op, r.IntN(s[i]))
			pb = append(pb, r.IntN(2))
			pe = append(pe, r.IntN(2))
			full := s[i]*(in[i]-1) + op[i] + (k[i]-1)*d[i] + 1
			os = append(os, max(1, full-r.IntN(3)))
			if full-pb[i]-pe[i] < 1 {
				ok = false
			}
		}
		if !ok {
			continue
		}
		attrs := ir.Attrs{ir.IntsAttr("strides", nnInts64(s)...), ir.IntsAttr("dilations", nnInts64(d)...),
			ir.IntAttr("group", int64(group)), ir.IntsAttr("output_padding", nnInts64(op)...)}
		mode := r.IntN(4)
		switch mode {
		case 0, 1:
			attrs = append(attrs, ir.IntsAttr("pads", append(nnInts64(pb), nnInts64(pe)...)...))
		case 2:
			attrs = append(attrs, ir.IntsAttr("output_shape", nnInts64(os)...))
		case 3:
			attrs = append(attrs, ir.StringAttr("auto_pad", []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(3)]))
		}
		C, M := cg*group, mg*group
		ins := []*tensor.Tensor{
			nnTensor(tensor.Float32, nnSpatialShape(1+r.IntN(2), C, in), nil),
			nnTensor(tensor.Float32, nnSpatialShape(C, mg, k), nil),
		}
		for _, t := range ins {
			copy(t.F32(), nnF32(nnRandVals(r, t.Len())))
		}
		if r.IntN(2) == 0 {
			ins = append(ins, nnTensor(tensor.Float32, tensor.Shape{M}, nnRandVals(r, M)))
		}
		cases = append(cases, nnORTCase{name: fmt.Sprintf("ConvTranspose in=%v k=%v s=%v d=%v op=%v %v", in, k, s, d, op, attrs),
			op: "ConvTranspose", opset: 11, attrs: attrs, in: ins, nOut: 1})
	}
	return cases
}

func nnF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func nnORTPoolCases(r *rand.Rand) []nnORTCase {
	var cases []nnORTCase
	for len(cases) < 120 {
		c := randPoolCfg(r)
		if len(c.in) > 3 {
			continue
		}
		isMax := len(cases)%2 == 0
		auto := []string{"NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(6)]
		opset := int64(12)
		if !isMax {
			opset = 11
			if r.IntN(2) == 0 {
				opset = 19
			}
		}
		attrs := ir.Attrs{ir.IntsAttr("kernel_shape", nnInts64(c.k)...), ir.IntsAttr("strides", nnInts64(c.stride)...),
			ir.IntAttr("ceil_mode", b2i(c.ceil)), ir.StringAttr("auto_pad", auto)}
		if auto == "NOTSET" {
			attrs = append(attrs, ir.IntsAttr("pads", append(nnInts64(c.padB), nnInts64(c.padE)...)...))
		}
		same := auto == "SAME_UPPER" || auto == "SAME_LOWER"
		if same {
			// ORT 1.30 sizes SAME_* pads of dilated pools from the undilated
			// kernel (the spec uses (k-1)*d+1), and its pools reject or
			// shift windows when the stride exceeds the kernel extent (goslim
			// clamps the padding to 0, like ORT's Conv): avoid both.
			neg := false
			for i := range c.k {
				if c.stride[i] > c.k[i] {
					neg = true
				}
			}
			if neg {
				continue
			}
		}
		if !c.ceil {
			// ORT truncates a negative span toward zero (one window) where
			// the spec's floor formula gives none: avoid such inputs.
			neg := false
			for i := range c.k {
				pb, pe := c.padB[i], c.padE[i]
				if auto != "NOTSET" {
					pb, pe = 0, 0
				}
				if c.in[i]+pb+pe < (c.k[i]-1)*c.dil[i]+1 {
					neg = true
				}
			}
			if neg {
				continue
			}
		}
		dil := isMax || opset >= 19
		if dil && !same {
			attrs = append(attrs, ir.IntsAttr("dilations", nnInts64(c.dil)...))
		} else {
			for i := range c.dil {
				c.dil[i] = 1
			}
		}
		op, nOut := "AveragePool", 1
		if isMax {
			op = "MaxPool"
			attrs = append(attrs, ir.IntAttr("storage_order", b2i(c.colMajor)))
			nOut = 1 + r.IntN(2)
		} else {
			attrs = append(attrs, ir.IntAttr("count_include_pad", b2i(c.includePad)))
		}
		dt := tensor.Float32
		if isMax && r.IntN(4) == 0 {
			dt = tensor.Uint8
		}
		xs := nnSpatialShape(c.n, c.c, c.in)
		xv := nnRandVals(r, xs.Size())
		if dt == tensor.Uint8 {
			for i := range xv {
				xv[i] = float64(r.IntN(256))
			}
		}
		cases = append(cases, nnORTCase{name: fmt.Sprintf("%s opset %d %+v auto_pad=%s %v", op, opset, c, auto, dt), op: op, opset: opset,
			attrs: attrs, in: []*tensor.Tensor{nnTensor(dt, xs, xv)}, nOut: nOut})
	}
	return cases
}

func nnORTMatCases(r *rand.Rand) []nnORTCase {
	var cases []nnORTCase
	shapes := [][2]tensor.Shape{{{3}, {3}}, {{3}, {3, 4}}, {{2, 3}, {3}}, {{5, 2, 3}, {3, 4}}, {{2, 3}, {4, 3, 5}},
		{{2, 1, 2, 3}, {3, 3, 4}}, {{4, 1, 3}, {1, 3, 2}}, {{33, 70}, {70, 20}}}
	for _, sh := range shapes {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64} {
			in := []*tensor.Tensor{nnTensor(dt, sh[0], nnRandInts(r, sh[0].Size())), nnTensor(dt, sh[1], nnRandInts(r, sh[1].Size()))}
			cases = append(cases, nnORTCase{name: fmt.Sprintf("MatMul %v x %v %v", sh[0], sh[1], dt), op: "MatMul", opset: 13, in: in, nOut: 1})
		}
	}
	for i := 0; i < 30; i++ {
		m, n, k := 1+r.IntN(9), 1+r.IntN(9), 1+r.IntN(9)
		tA, tB := r.IntN(2) == 1, r.IntN(2) == 1
		as, bs := tensor.Shape{m, k}, tensor.Shape{k, n}
		if tA {
			as = tensor.Shape{k, m}
		}
		if tB {
			bs = tensor.Shape{n, k}
		}
		cs := []tensor.Shape{nil, {}, {n}, {1, n}, {m, 1}, {m, n}}[r.IntN(6)]
		dt := []tensor.DType{tensor.Float32, tensor.Float64}[r.IntN(2)]
		in := []*tensor.Tensor{nnTensor(dt, as, nnRandVals(r, as.Size())), nnTensor(dt, bs, nnRandVals(r, bs.Size()))}
		if cs != nil {
			in = append(in, nnTensor(dt, cs, nnRandVals(r, cs.Size())))
		}
		attrs := ir.Attrs{ir.IntAttr("transA", b2i(tA)), ir.IntAttr("transB", b2i(tB)),
			ir.FloatAttr("alpha", []float32{1, 0.5}[r.IntN(2)]), ir.FloatAttr("beta", []float32{1, -2}[r.IntN(2)])}
		cases = append(cases, nnORTCase{name: fmt.Sprintf("Gemm %v %v C=%v %v", as, bs, cs, attrs), op: "Gemm", opset: 13, attrs: attrs, in: in, nOut: 1})
	}
	return cases
}

func nnRandInts(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(r.IntN(9) - 4)
	}
	return v
}

func nnORTNormCases(r *rand.Rand) []nnORTCase {
	var cases []nnORTCase
	for _, shape := range []tensor.Shape{{2, 3, 4, 5}, {3, 4}, {2, 3, 5}} {
		ch := shape[1]
		for _, training := range []bool{false, true} {
			in := []*tensor.Tensor{nnTensor(tensor.Float32, shape, nnRandVals(r, shape.Size()))}
			for i := 0; i < 4; i++ {
				v := nnRandVals(r, ch)
				if i == 3 {
					v = nnPositive(r, ch)
				}
				in = append(in, nnTensor(tensor.Float32, tensor.Shape{ch}, v))
			}
			attrs := ir.Attrs{ir.FloatAttr("epsilon", 1e-3), ir.FloatAttr("momentum", 0.7)}
			nOut := 1
			if training {
				attrs = append(attrs, ir.IntAttr("training_mode", 1))
				nOut = 3
			}
			cases = append(cases, nnORTCase{name: fmt.Sprintf("BatchNormalization %v training=%v", shape, training), op: "BatchNormalization",
				opset: 15, attrs: attrs, in: in, nOut: nOut})
		}
		for axis := -len(shape); axis < len(shape); axis++ {
			a := axis
			if a < 0 {
				a += len(shape)
			}
			norm := shape[a:]
			in := []*tensor.Tensor{nnTensor(tensor.Float32, shape, nnRandVals(r, shape.Size())),
				nnTensor(tensor.Float32, norm, nnRandVals(r, norm.Size())), nnTensor(tensor.Float32, norm, nnRandVals(r, norm.Size()))}
			cases = append(cases, nnORTCase{name: fmt.Sprintf("LayerNormalization %v axis %d", shape, axis), op: "LayerNormalization",
				opset: 17, attrs: ir.Attrs{ir.IntAttr("axis", int64(axis))}, in: in, nOut: 3})
		}
		cases = append(cases, nnORTCase{name: fmt.Sprintf("GlobalAveragePool %v", shape), op: "GlobalAveragePool", opset: 13,
			in: []*tensor.Tensor{nnTensor(tensor.Float32, shape, nnRandVals(r, shape.Size()))}, nOut: 1})
		cases = append(cases, nnORTCase{name: fmt.Sprintf("GlobalMaxPool %v", shape), op: "GlobalMaxPool", opset: 13,
			in: []*tensor.Tensor{nnTensor(tensor.Float32, shape, nnRandVals(r, shape.Size()))}, nOut: 1})
	}
	return cases
}

func TestNNAgainstORT(t *testing.T) {
	o := ortoracle.Require(t).With(ortoracle.Options{OptLevel: ortoracle.OptDisabled, Threads: 1})
	r := rand.New(rand.NewPCG(51, 52))
	var cases []nnORTCase
	cases = append(cases, nnORTConvCases(r)...)
	cases = append(cases, nnORTPoolCases(r)...)
	cases = append(cases, nnORTMatCases(r)...)
	cases = append(cases, nnORTNormCases(r)...)
	batch := make([]ortoracle.Case, len(cases))
	for i := range cases {
		m, feeds, err := cases[i].model()
		if err != nil {
			t.Fatalf("%s: %v", cases[i].name, err)
		}
		batch[i] = ortoracle.Case{Model: m, Feeds: feeds}
	}
	res, err := o.RunAll(batch)
	if err != nil {
		t.Fatal(err)
	}
	agreeErr := 0
	for i, c := range cases {
		got, err := nnRun(c.op, c.opset, c.attrs, c.nOut, 1+i%2, false, c.in...)
		if res[i].Err != nil && err != nil {
			agreeErr++ // both reject the model (e.g. a kernel larger than the input)
			continue
		}
		if res[i].Err != nil {
			t.Errorf("%s: ORT: %v", c.name, res[i].Err)
			continue
		}
		if err != nil {
			t.Errorf("%s: goslim: %v", c.name, err)
			continue
		}
		for k := 0; k < c.nOut; k++ {
			name := fmt.Sprintf("node_out%d", k)
			if c.nOut == 1 {
				name = "node_out"
			}
			want := res[i].Outputs[name]
			if want == nil {
				t.Errorf("%s: ORT has no output %q", c.name, name)
				continue
			}
			if err := nnCompareORT(got[k], want); err != nil {
				t.Errorf("%s: output %d: %v", c.name, k, err)
			}
		}
	}
	t.Logf("%d cases, %d rejected by both", len(cases), agreeErr)
}

// nnCompareORT checks dtype, shape and values (floats within 1e-4
// relative + 1e-5 absolute, NaN equal to NaN; others exact).
func nnCompareORT(got, want *tensor.Tensor) error {
	if got.DType != want.DType || !got.Shape.Equal(want.Shape) {
		return fmt.Errorf("got %v%v, ORT %v%v", got.DType, got.Shape, want.DType, want.Shape)
	}
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
			continue
		}
		if want.DType.IsFloat() && math.Abs(g-w) <= 1e-5+1e-4*math.Abs(w) {
			continue
		}
		return fmt.Errorf("element %d: got %g, ORT %g", i, g, w)
	}
	return nil
}
