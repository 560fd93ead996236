package autodiff

import (
	"context"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// randT returns a tensor of dtype dt with values uniform in [lo, hi).
func randT(r *rand.Rand, dt tensor.DType, lo, hi float64, shape ...int) *tensor.Tensor {
	t, err := tensor.New(dt, tensor.Shape(shape))
	if err != nil {
		panic(err)
	}
	for i := 0; i < t.Len(); i++ {
		setAt(t, i, lo+(hi-lo)*r.Float64())
	}
	return t
}

func setAt(t *tensor.Tensor, i int, v float64) {
	switch d := t.Data.(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	default:
		panic("setAt: not a float tensor")
	}
}

// runner feeds a program from a value map and runs it.
type runner struct {
	p    *Program
	sess *infer.Session
	vals map[ir.ValueID]*tensor.Tensor
}

// newRunner compiles p and feeds parameters and states from the model's
// constants, the seed from seed, and data inputs from data.
func newRunner(t testing.TB, model *ir.Graph, p *Program, threads int, seed int64, data map[ir.ValueID]*tensor.Tensor) *runner {
	t.Helper()
	sess, err := infer.NewSession(p.Graph, infer.Options{Threads: threads})
	if err != nil {
		t.Fatalf("NewSession: %v\n%s", err, p.Graph)
	}
	r := &runner{p: p, sess: sess, vals: map[ir.ValueID]*tensor.Tensor{}}
	for _, pr := range p.Params {
		r.vals[pr.Input] = model.Values[pr.Value].Const.Clone()
	}
	for _, s := range p.States {
		r.vals[s.Input] = model.Values[s.Value].Const.Clone()
	}
	if p.Seed != ir.NoValue {
		r.vals[p.Seed] = &tensor.Tensor{DType: tensor.Int64, Shape: tensor.Shape{}, Data: []int64{seed}}
	}
	for id, v := range data {
		r.vals[id] = v
	}
	return r
}

func (r *runner) run(t testing.TB) []*tensor.Tensor {
	t.Helper()
	in := make([]*tensor.Tensor, len(r.p.Graph.Inputs))
	for i, id := range r.p.Graph.Inputs {
		in[i] = r.vals[id]
	}
	outs, err := r.sess.RunInputs(context.Background(), in)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return outs
}

func (r *runner) loss(t testing.TB) float64 {
	return r.run(t)[0].Float64At(0)
}

// checkGrads compares every parameter gradient of the program with
// central differences of its loss (at most maxElems elements per
// parameter, chosen at random).
func checkGrads(t *testing.T, model *ir.Graph, loss ir.ValueID, opts Options, h, tol float64) {
	t.Helper()
	p, err := Build(model, loss, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	rn := newRunner(t, model, p, 3, 11, nil)
	outs := rn.run(t)
	rng := rand.New(rand.NewSource(5))
	const maxElems = 24
	for _, pr := range p.Params {
		g := outs[p.OutputIndex(pr.Grad)]
		x := rn.vals[pr.Input]
		if !g.Shape.Equal(x.Shape) || g.DType != x.DType {
			t.Fatalf("grad of %q: %v%v, want %v%v", model.Values[pr.Value].Name, g.DType, g.Shape, x.DType, x.Shape)
		}
		idx := rng.Perm(x.Len())
		if len(idx) > maxElems {
			idx = idx[:maxElems]
		}
		for _, i := range idx {
			v := x.Float64At(i)
			setAt(x, i, v+h)
			lp := rn.loss(t)
			setAt(x, i, v-h)
			lm := rn.loss(t)
			setAt(x, i, v)
			fd := (lp - lm) / (2 * h)
			an := g.Float64At(i)
			if d := math.Abs(fd - an); d > tol*math.Max(1, math.Abs(fd)) || math.IsNaN(an) {
				t.Errorf("d loss/d %s[%d]: autodiff %.9g, finite difference %.9g", model.Values[pr.Value].Name, i, an, fd)
			}
		}
	}
}

// gradCase builds a model whose output y is turned into the loss
// sum(y * R) with a random constant R (unless scalar is set, when y is
// the loss itself).
type gradCase struct {
	name   string
	opset  int64
	dtype  tensor.DType // default float64
	scalar bool
	opts   Options
	build  func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID
}

// param adds a random trainable constant.
func param(b *ir.Builder, r *rand.Rand, dt tensor.DType, name string, shape ...int) ir.ValueID {
	return b.Param(name, randT(r, dt, -1, 1, shape...))
}

func op(b *ir.Builder, name string, in []ir.ValueID, attrs ...ir.Attr) ir.ValueID {
	return b.Op(name, "", in, attrs...)
}

func ints(v ...int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{len(v)}, v) }

func scalarF(dt tensor.DType, v float64) *tensor.Tensor {
	t, _ := tensor.New(dt, tensor.Shape{})
	setAt(t, 0, v)
	return t
}

func unary(opName string, lo, hi float64, attrs ...ir.Attr) func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
	return func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, lo, hi, 3, 7))
		return op(b, opName, []ir.ValueID{x}, attrs...)
	}
}

func binary(opName string, as, bs []int, blo float64) func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
	return func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("a", randT(r, dt, -1, 1, as...))
		y := b.Param("b", randT(r, dt, blo, blo+1, bs...))
		return op(b, opName, []ir.ValueID{x, y})
	}
}

func convCase(xs, ws []int, bias bool, attrs ...ir.Attr) func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
	return func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		in := []ir.ValueID{param(b, r, dt, "x", xs...), param(b, r, dt, "w", ws...)}
		if bias {
			in = append(in, param(b, r, dt, "bias", ws[0]))
		}
		return op(b, "Conv", in, attrs...)
	}
}

func gemmCase(as, bs, cs []int, attrs ...ir.Attr) func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
	return func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		in := []ir.ValueID{param(b, r, dt, "a", as...), param(b, r, dt, "b", bs...)}
		if cs != nil {
			in = append(in, param(b, r, dt, "c", cs...))
		}
		return op(b, "Gemm", in, attrs...)
	}
}

func poolCase(opName string, xs []int, attrs ...ir.Attr) func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
	return func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, opName, []ir.ValueID{param(b, r, dt, "x", xs...)}, attrs...)
	}
}

var gradCases = []gradCase{
	// Convolutions.
	{name: "conv/basic", build: convCase([]int{2, 3, 5, 6}, []int{4, 3, 3, 3}, true, ir.IntsAttr("pads", 1, 1, 1, 1))},
	{name: "conv/stride-dil-pads", build: convCase([]int{2, 2, 7, 8}, []int{3, 2, 3, 2}, true,
		ir.IntsAttr("strides", 2, 1), ir.IntsAttr("dilations", 1, 2), ir.IntsAttr("pads", 1, 0, 0, 2))},
	{name: "conv/groups", build: convCase([]int{1, 4, 5, 5}, []int{6, 2, 3, 3}, true, ir.IntAttr("group", 2))},
	{name: "conv/depthwise-same", build: convCase([]int{2, 3, 6, 6}, []int{3, 1, 3, 3}, false,
		ir.IntAttr("group", 3), ir.IntsAttr("strides", 2, 2), ir.StringAttr("auto_pad", "SAME_UPPER"))},
	{name: "conv/1d", build: convCase([]int{2, 2, 7}, []int{3, 2, 3}, true, ir.IntsAttr("pads", 2, 1))},
	{name: "conv/pointwise", build: convCase([]int{2, 3, 4, 4}, []int{5, 3, 1, 1}, true)},
	{name: "conv/3d", build: convCase([]int{1, 2, 3, 4, 4}, []int{2, 2, 2, 2, 2}, true, ir.IntsAttr("pads", 0, 1, 0, 1, 0, 1))},
	{name: "conv/float32", dtype: tensor.Float32, build: convCase([]int{2, 3, 6, 5}, []int{4, 3, 3, 3}, true,
		ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("strides", 2, 1))},
	{name: "conv/float32-groups", dtype: tensor.Float32, build: convCase([]int{2, 4, 6, 5}, []int{4, 2, 3, 3}, true,
		ir.IntAttr("group", 2), ir.IntsAttr("dilations", 2, 1))},
	// Matrix products.
	{name: "gemm/plain", build: gemmCase([]int{3, 4}, []int{4, 5}, []int{5})},
	{name: "gemm/transA-transB-alpha-beta", build: gemmCase([]int{4, 3}, []int{5, 4}, []int{3, 1},
		ir.IntAttr("transA", 1), ir.IntAttr("transB", 1), ir.FloatAttr("alpha", 0.7), ir.FloatAttr("beta", 1.3))},
	{name: "gemm/transA", build: gemmCase([]int{4, 3}, []int{4, 5}, []int{3, 5}, ir.IntAttr("transA", 1))},
	{name: "gemm/transB-noC", build: gemmCase([]int{3, 4}, []int{5, 4}, nil, ir.IntAttr("transB", 1))},
	{name: "gemm/opset9-scalarC", opset: 9, build: gemmCase([]int{3, 4}, []int{4, 5}, []int{}, ir.FloatAttr("beta", 0.5))},
	{name: "gemm/float32", dtype: tensor.Float32, build: gemmCase([]int{6, 4}, []int{5, 4}, []int{5}, ir.IntAttr("transB", 1))},
	{name: "matmul/2d", build: binary("MatMul", []int{3, 4}, []int{4, 5}, -0.5)},
	{name: "matmul/batched-shared-B", build: binary("MatMul", []int{2, 3, 4}, []int{4, 5}, -0.5)},
	{name: "matmul/broadcast", build: binary("MatMul", []int{2, 1, 3, 4}, []int{3, 4, 2}, -0.5)},
	{name: "matmul/shared-A", build: binary("MatMul", []int{3, 4}, []int{2, 4, 5}, -0.5)},
	{name: "matmul/1d-a", build: binary("MatMul", []int{4}, []int{2, 4, 5}, -0.5)},
	{name: "matmul/1d-b", build: binary("MatMul", []int{2, 3, 4}, []int{4}, -0.5)},
	{name: "matmul/float32", dtype: tensor.Float32, build: binary("MatMul", []int{2, 3, 4}, []int{2, 4, 5}, -0.5)},
	// Broadcasting arithmetic.
	{name: "add/broadcast", build: binary("Add", []int{2, 3, 4}, []int{3, 1}, -0.5)},
	{name: "sub/broadcast", build: binary("Sub", []int{3, 1}, []int{2, 3, 4}, -0.5)},
	{name: "mul/broadcast", build: binary("Mul", []int{2, 3, 4}, []int{4}, -0.5)},
	{name: "mul/scalar", build: binary("Mul", []int{2, 3}, []int{}, -0.5)},
	{name: "div/broadcast", build: binary("Div", []int{2, 3, 4}, []int{1, 3, 1}, 1.5)},
	{name: "add/float32", dtype: tensor.Float32, build: binary("Add", []int{4, 3}, []int{1, 3}, 0)},
	// Activations.
	{name: "relu", build: unary("Relu", -2, 2)},
	{name: "leakyrelu", build: unary("LeakyRelu", -2, 2, ir.FloatAttr("alpha", 0.1))},
	{name: "clip/inputs", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, -2, 2, 4, 5))
		return op(b, "Clip", []ir.ValueID{x, b.Const("lo", scalarF(dt, -0.5)), b.Const("hi", scalarF(dt, 0.8))})
	}},
	{name: "clip/min-only", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, -2, 2, 4, 5))
		return op(b, "Clip", []ir.ValueID{x, b.Const("lo", scalarF(dt, -0.5))})
	}},
	{name: "clip/attrs-opset9", opset: 9, build: unary("Clip", -2, 2, ir.FloatAttr("min", -0.3), ir.FloatAttr("max", 1))},
	{name: "sigmoid", build: unary("Sigmoid", -3, 3)},
	{name: "hardsigmoid", build: unary("HardSigmoid", -4, 4, ir.FloatAttr("alpha", 0.3), ir.FloatAttr("beta", 0.4))},
	{name: "hardswish", opset: 14, build: unary("HardSwish", -5, 5)},
	{name: "tanh", build: unary("Tanh", -2, 2)},
	{name: "erf", build: unary("Erf", -2, 2)},
	{name: "gelu/none", opset: 20, build: unary("Gelu", -3, 3)},
	{name: "gelu/tanh", opset: 20, build: unary("Gelu", -3, 3, ir.StringAttr("approximate", "tanh"))},
	{name: "neg-exp-log-sqrt", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, 0.5, 2, 3, 4))
		y := op(b, "Sqrt", []ir.ValueID{op(b, "Log", []ir.ValueID{op(b, "Exp", []ir.ValueID{x})})})
		return op(b, "Neg", []ir.ValueID{y})
	}},
	{name: "identity", build: unary("Identity", -1, 1)},
	{name: "relu/float32", dtype: tensor.Float32, build: unary("Relu", -2, 2)},
	// Pooling.
	{name: "maxpool/2x2", build: poolCase("MaxPool", []int{2, 3, 4, 6}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))},
	{name: "maxpool/overlap-pads-ceil", build: poolCase("MaxPool", []int{1, 2, 7, 6}, ir.IntsAttr("kernel_shape", 3, 3),
		ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("ceil_mode", 1))},
	{name: "maxpool/colmajor-dil", build: poolCase("MaxPool", []int{1, 2, 6, 5}, ir.IntsAttr("kernel_shape", 2, 2),
		ir.IntsAttr("dilations", 2, 1), ir.IntAttr("storage_order", 1))},
	{name: "maxpool/1d", build: poolCase("MaxPool", []int{2, 2, 9}, ir.IntsAttr("kernel_shape", 3), ir.IntsAttr("strides", 2))},
	{name: "avgpool/pads", build: poolCase("AveragePool", []int{2, 2, 5, 6}, ir.IntsAttr("kernel_shape", 3, 2),
		ir.IntsAttr("strides", 2, 1), ir.IntsAttr("pads", 1, 0, 1, 1))},
	{name: "avgpool/include-pad-ceil", build: poolCase("AveragePool", []int{1, 2, 6, 6}, ir.IntsAttr("kernel_shape", 3, 3),
		ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("count_include_pad", 1), ir.IntAttr("ceil_mode", 1))},
	{name: "avgpool/3d", build: poolCase("AveragePool", []int{1, 1, 4, 4, 3}, ir.IntsAttr("kernel_shape", 2, 2, 2))},
	{name: "globalavgpool", build: poolCase("GlobalAveragePool", []int{2, 3, 4, 5})},
	{name: "maxpool/float32", dtype: tensor.Float32, build: poolCase("MaxPool", []int{2, 3, 4, 6}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))},
	// Normalization.
	{name: "batchnorm/train", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 4, 3, 2, 3)
		s, bb := param(b, r, dt, "scale", 3), param(b, r, dt, "bias", 3)
		m, v := b.Const("mean", randT(r, dt, -1, 1, 3)), b.Const("var", randT(r, dt, 0.5, 1.5, 3))
		return op(b, "BatchNormalization", []ir.ValueID{x, s, bb, m, v}, ir.FloatAttr("epsilon", 1e-3))
	}},
	{name: "batchnorm/2d-input", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 5, 4)
		s, bb := param(b, r, dt, "scale", 4), param(b, r, dt, "bias", 4)
		m, v := b.Const("mean", randT(r, dt, -1, 1, 4)), b.Const("var", randT(r, dt, 0.5, 1.5, 4))
		return op(b, "BatchNormalization", []ir.ValueID{x, s, bb, m, v})
	}},
	{name: "batchnorm/stats-marked-trainable", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 4, 3, 2)
		s, bb := param(b, r, dt, "scale", 3), param(b, r, dt, "bias", 3)
		m, v := b.Param("mean", randT(r, dt, -1, 1, 3)), b.Param("var", randT(r, dt, 0.5, 1.5, 3))
		return op(b, "BatchNormalization", []ir.ValueID{x, s, bb, m, v})
	}},
	{name: "batchnorm/frozen", opts: Options{FreezeBatchNorm: true}, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 2, 3, 2, 2)
		s, bb := param(b, r, dt, "scale", 3), param(b, r, dt, "bias", 3)
		m, v := b.Const("mean", randT(r, dt, -1, 1, 3)), b.Const("var", randT(r, dt, 0.5, 1.5, 3))
		return op(b, "BatchNormalization", []ir.ValueID{x, s, bb, m, v})
	}},
	{name: "batchnorm/float32", dtype: tensor.Float32, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 4, 3, 2, 3)
		s, bb := param(b, r, dt, "scale", 3), param(b, r, dt, "bias", 3)
		m, v := b.Const("mean", randT(r, dt, -1, 1, 3)), b.Const("var", randT(r, dt, 0.5, 1.5, 3))
		return op(b, "BatchNormalization", []ir.ValueID{x, s, bb, m, v})
	}},
	{name: "layernorm/last", opset: 17, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 2, 5)
		return op(b, "LayerNormalization", []ir.ValueID{x, param(b, r, dt, "scale", 5), param(b, r, dt, "bias", 5)})
	}},
	{name: "layernorm/axis1-broadcast", opset: 17, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 2, 4)
		return op(b, "LayerNormalization", []ir.ValueID{x, param(b, r, dt, "scale", 4), param(b, r, dt, "bias", 2, 1)},
			ir.IntAttr("axis", 1), ir.FloatAttr("epsilon", 1e-3))
	}},
	{name: "layernorm/no-bias", opset: 17, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 4, 6)
		return op(b, "LayerNormalization", []ir.ValueID{x, param(b, r, dt, "scale", 6)})
	}},
	// Shape ops.
	{name: "reshape-flatten-transpose", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 2, 3, 4)
		y := op(b, "Reshape", []ir.ValueID{x, b.Const("s", ints(4, -1))})
		y = op(b, "Transpose", []ir.ValueID{y})
		y = op(b, "Flatten", []ir.ValueID{y}, ir.IntAttr("axis", 0))
		return op(b, "Transpose", []ir.ValueID{op(b, "Reshape", []ir.ValueID{y, b.Const("s2", ints(2, 2, 6))})}, ir.IntsAttr("perm", 2, 0, 1))
	}},
	{name: "squeeze-unsqueeze", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 1, 4)
		y := op(b, "Squeeze", []ir.ValueID{x, b.Const("ax", ints(1))})
		return op(b, "Unsqueeze", []ir.ValueID{y, b.Const("ax2", ints(0, 3))})
	}},
	{name: "squeeze-opset11", opset: 11, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 1, 4)
		return op(b, "Squeeze", []ir.ValueID{x}, ir.IntsAttr("axes", 1))
	}},
	{name: "concat", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "Concat", []ir.ValueID{param(b, r, dt, "a", 2, 1, 3), b.Const("k", randT(r, dt, -1, 1, 2, 2, 3)),
			param(b, r, dt, "c", 2, 3, 3)}, ir.IntAttr("axis", -2))
	}},
	{name: "slice/steps", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 5, 6, 4)
		return op(b, "Slice", []ir.ValueID{x, b.Const("st", ints(4, 1)), b.Const("en", ints(0, 100)),
			b.Const("ax", ints(0, -2)), b.Const("sp", ints(-2, 2))})
	}},
	{name: "slice/opset9", opset: 9, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 5, 6)
		return op(b, "Slice", []ir.ValueID{x}, ir.IntsAttr("starts", 1, -4), ir.IntsAttr("ends", 4, -1))
	}},
	{name: "shape-arithmetic-off-path", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 2, 6)
		s := op(b, "Shape", []ir.ValueID{x})
		s = op(b, "Mul", []ir.ValueID{s, b.Const("two", ints(3, 1))})
		s = op(b, "Div", []ir.ValueID{s, b.Const("d", ints(1, 3))})
		y := op(b, "Relu", []ir.ValueID{x})
		return op(b, "Reshape", []ir.ValueID{y, s})
	}},
	// Softmax.
	{name: "softmax/axis1", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "Softmax", []ir.ValueID{param(b, r, dt, "x", 2, 4, 3)}, ir.IntAttr("axis", 1))
	}},
	{name: "softmax/legacy-opset11", opset: 11, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "Softmax", []ir.ValueID{param(b, r, dt, "x", 2, 4, 3)})
	}},
	{name: "logsoftmax", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "LogSoftmax", []ir.ValueID{param(b, r, dt, "x", 3, 5)})
	}},
	{name: "logsoftmax/legacy-axis2", opset: 12, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "LogSoftmax", []ir.ValueID{param(b, r, dt, "x", 2, 2, 3)}, ir.IntAttr("axis", 2))
	}},
	// Dropout and reductions.
	{name: "dropout/train", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 6, 7)
		return op(b, "Dropout", []ir.ValueID{x, b.Const("ratio", scalarF(dt, 0.3))})
	}},
	{name: "dropout/opset9", opset: 9, build: unary("Dropout", -1, 1, ir.FloatAttr("ratio", 0.4))},
	{name: "reducemean/axes", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "ReduceMean", []ir.ValueID{param(b, r, dt, "x", 2, 3, 4)}, ir.IntsAttr("axes", 0, 2), ir.IntAttr("keepdims", 0))
	}},
	{name: "reducesum/axes-input", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "ReduceSum", []ir.ValueID{param(b, r, dt, "x", 2, 3, 4), b.Const("ax", ints(1))})
	}},
	{name: "expand-cast", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 1)
		y := op(b, "Expand", []ir.ValueID{x, b.Const("s", ints(2, 3, 4))})
		return op(b, "Cast", []ir.ValueID{y}, ir.IntAttr("to", int64(dt)))
	}},
	{name: "pow", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, 0.5, 2, 2, 3))
		e := b.Param("e", randT(r, dt, 0.5, 2.5, 3))
		return op(b, "Pow", []ir.ValueID{x, e})
	}},
	{name: "pow/int-exponent", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("x", randT(r, dt, -2, 2, 2, 3))
		return op(b, "Pow", []ir.ValueID{x, b.Const("e", tensor.FromInt64(tensor.Shape{}, []int64{3}))})
	}},
	{name: "reciprocal", build: unary("Reciprocal", 0.5, 2)},
	{name: "where", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		cond := &tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{3, 1}, Data: []bool{true, false, true}}
		return op(b, "Where", []ir.ValueID{b.Const("cond", cond), param(b, r, dt, "a", 3, 4), param(b, r, dt, "c", 4)})
	}},
	{name: "prelu", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return op(b, "PRelu", []ir.ValueID{b.Param("x", randT(r, dt, -2, 2, 2, 3, 4)), param(b, r, dt, "slope", 3, 1)})
	}},
	{name: "split", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 2, 7)
		outs := b.OpN("Split", "split", 3, []ir.ValueID{x, b.Const("sizes", ints(2, 4, 1))}, ir.IntAttr("axis", 1))
		// The middle output is unused: its gradient is zero.
		return op(b, "Concat", []ir.ValueID{outs[2], outs[0]}, ir.IntAttr("axis", 1))
	}},
	// Losses.
	{name: "loss/crossentropy-smoothing", scalar: true, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("logits", randT(r, dt, -2, 2, 5, 4))
		return CrossEntropy(b, x, b.Const("labels", ints(0, 3, 1, 1, 2)), 0.1)
	}},
	{name: "loss/crossentropy-3d", scalar: true, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("logits", randT(r, dt, -2, 2, 2, 3, 4))
		lab := tensor.FromInt64(tensor.Shape{2, 3}, []int64{0, 3, 1, 1, 2, 3})
		return CrossEntropy(b, x, b.Const("labels", lab), 0)
	}},
	{name: "loss/kldiv-both", scalar: true, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		s := b.Param("student", randT(r, dt, -2, 2, 3, 5))
		t := b.Param("teacher", randT(r, dt, -2, 2, 3, 5))
		return KLDiv(b, s, t, 2.5)
	}},
	{name: "loss/mse", scalar: true, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		return MSE(b, param(b, r, dt, "a", 3, 4), param(b, r, dt, "c", 3, 4))
	}},
	{name: "loss/crossentropy-float32", scalar: true, dtype: tensor.Float32, build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := b.Param("logits", randT(r, dt, -2, 2, 5, 4))
		return CrossEntropy(b, x, b.Const("labels", ints(0, 3, 1, 1, 2)), 0.2)
	}},
	// Shared values: a parameter used twice, a value with two readers.
	{name: "fanout", build: func(b *ir.Builder, r *rand.Rand, dt tensor.DType) ir.ValueID {
		x := param(b, r, dt, "x", 3, 4)
		y := op(b, "Tanh", []ir.ValueID{x})
		return op(b, "Mul", []ir.ValueID{op(b, "Add", []ir.ValueID{y, x}), y})
	}},
}

func TestGradients(t *testing.T) {
	for i, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			opset := tc.opset
			if opset == 0 {
				opset = 13
			}
			dt := tc.dtype
			if dt == 0 {
				dt = tensor.Float64
			}
			r := rand.New(rand.NewSource(int64(100 + i)))
			b := ir.NewBuilder(tc.name, opset)
			y := tc.build(b, r, dt)
			loss := y
			if !tc.scalar {
				// loss = sum(y * R): R is broadcast-free, so y's shape is needed;
				// run the model once to learn it.
				sess, err := infer.NewSession(withOutput(b.G, y), infer.Options{Threads: 1})
				if err != nil {
					t.Fatalf("forward session: %v", err)
				}
				outs, err := sess.RunInputs(context.Background(), nil)
				if err != nil {
					t.Fatalf("forward: %v", err)
				}
				w := b.Const("R", randT(r, dt, -1, 1, outs[0].Shape...))
				loss = op(b, "ReduceSum", []ir.ValueID{op(b, "Mul", []ir.ValueID{y, w})}, ir.IntAttr("keepdims", 0))
			}
			b.Output(loss)
			h, tol := 1e-5, 1e-6
			if dt == tensor.Float32 {
				h, tol = 1e-2, 2e-2
			}
			checkGrads(t, b.G, loss, tc.opts, h, tol)
		})
	}
}

// withOutput returns a clone of g whose only output is y.
func withOutput(g *ir.Graph, y ir.ValueID) *ir.Graph {
	c := g.Clone()
	c.Outputs = []ir.ValueID{y}
	return c
}

func TestUnsupportedOpNamed(t *testing.T) {
	b := ir.NewBuilder("prelu", 13)
	r := rand.New(rand.NewSource(1))
	x := param(b, r, tensor.Float32, "x", 2, 3)
	y := b.Op("Round", "my_round", []ir.ValueID{x})
	loss := MSE(b, y, b.Const("target", randT(r, tensor.Float32, 0, 1, 2, 3)))
	_, err := Build(b.G, loss, Options{})
	if err == nil || !strings.Contains(err.Error(), "my_round") || !strings.Contains(err.Error(), "Round") {
		t.Fatalf("Build error = %v, want one naming node my_round and op Round", err)
	}
}

func TestBuildErrors(t *testing.T) {
	b := ir.NewBuilder("e", 13)
	r := rand.New(rand.NewSource(1))
	x := b.Input("x", tensor.Float32, -1, 3)
	w := b.Const("w", randT(r, tensor.Float32, -1, 1, 3, 2))
	y := b.Op("MatMul", "", []ir.ValueID{x, w})
	loss := MSE(b, y, b.Input("t", tensor.Float32, -1, 2))
	if _, err := Build(b.G, loss, Options{}); err == nil || !strings.Contains(err.Error(), "no parameters") {
		t.Errorf("no params: err = %v", err)
	}
	if _, err := Build(b.G, loss, Options{Params: []ir.ValueID{x}}); err == nil || !strings.Contains(err.Error(), "not a float constant") {
		t.Errorf("input as param: err = %v", err)
	}
	if _, err := Build(b.G, ir.ValueID(len(b.G.Values)+3), Options{Params: []ir.ValueID{w}}); err == nil {
		t.Errorf("bad loss id: no error")
	}
	// An explicitly listed parameter that does not reach the loss gets zeros.
	z := b.Const("unused", randT(r, tensor.Float32, -1, 1, 4))
	p, err := Build(b.G, loss, Options{Params: []ir.ValueID{w, z}})
	if err != nil {
		t.Fatal(err)
	}
	rn := newRunner(t, b.G, p, 1, 0, map[ir.ValueID]*tensor.Tensor{
		x: randT(r, tensor.Float32, -1, 1, 5, 3), b.G.Inputs[1]: randT(r, tensor.Float32, -1, 1, 5, 2)})
	outs := rn.run(t)
	gz := outs[p.OutputIndex(p.Params[1].Grad)]
	if !gz.Shape.Equal(tensor.Shape{4}) {
		t.Fatalf("zero grad shape %v", gz.Shape)
	}
	for i := 0; i < gz.Len(); i++ {
		if gz.Float64At(i) != 0 {
			t.Fatalf("grad of unused param = %v, want zeros", gz)
		}
	}
}
