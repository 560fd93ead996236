package rewrite_test

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

type ids = []ir.ValueID

// f32 makes a seeded random float32 tensor.
func f32(seed uint64, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	t, _ := tensor.New(tensor.Float32, shape)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64())
	}
	return t
}

// i64 makes an int64 tensor: a 1-D one of the values, or a scalar when
// scalar is set.
func i64(v ...int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{len(v)}, v) }

func i64s(v int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{}, []int64{v}) }

func f32s(v ...float32) *tensor.Tensor { return tensor.FromFloat32(tensor.Shape{len(v)}, v) }

// expectType builds a graph at opset with build, infers shapes and checks
// the type of the value build returns.
func expectType(t *testing.T, opset int64, build func(b *ir.Builder) ir.ValueID, want string) {
	t.Helper()
	b := ir.NewBuilder("t", opset)
	v := build(b)
	b.Output(v)
	g, err := rewrite.InferShapes(b.G)
	if err != nil {
		t.Fatalf("InferShapes: %v", err)
	}
	if got := g.Values[v].Type.String(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// expectError checks that InferShapes fails with an error containing want.
func expectError(t *testing.T, opset int64, build func(b *ir.Builder) ir.ValueID, want string) {
	t.Helper()
	b := ir.NewBuilder("t", opset)
	b.Output(build(b))
	_, err := rewrite.InferShapes(b.G)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got error %v, want one containing %q", err, want)
	}
}

func TestInferShapesOps(t *testing.T) {
	F := tensor.Float32
	nchw := func(b *ir.Builder) ir.ValueID { return b.Input("x", F, -1, 3, 32, 32) }
	tests := []struct {
		name  string
		opset int64
		build func(b *ir.Builder) ir.ValueID
		want  string
	}{
		{"conv pads", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "c", ids{nchw(b), b.Param("w", f32(1, 8, 3, 3, 3))}, ir.IntsAttr("pads", 1, 1, 1, 1))
		}, "float32[N,8,32,32]"},
		{"conv stride dilation", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "c", ids{nchw(b), b.Param("w", f32(1, 8, 3, 3, 3))},
				ir.IntsAttr("strides", 2, 2), ir.IntsAttr("dilations", 2, 1))
		}, "float32[N,8,14,15]"},
		{"conv same_upper stride", 11, func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "c", ids{b.Input("x", F, 1, 3, 7, 8), b.Param("w", f32(1, 4, 3, 3, 3))},
				ir.StringAttr("auto_pad", "SAME_UPPER"), ir.IntsAttr("strides", 2, 2))
		}, "float32[1,4,4,4]"},
		{"conv group 1d", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "c", ids{b.Input("x", F, 2, 4, 10), b.Param("w", f32(1, 6, 2, 3))}, ir.IntAttr("group", 2))
		}, "float32[2,6,8]"},
		{"conv symbolic spatial kept", 13, func(b *ir.Builder) ir.ValueID {
			x := b.Input("x", F, 1, 3, -1, -1)
			b.G.Values[x].Type.Shape[2].Param = "H"
			return b.Op("Conv", "c", ids{x, b.Param("w", f32(1, 8, 3, 3, 3))}, ir.IntsAttr("pads", 1, 1, 1, 1))
		}, "float32[1,8,H,?]"},
		{"convtranspose", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ConvTranspose", "c", ids{b.Input("x", F, -1, 4, 5, 5), b.Param("w", f32(1, 4, 3, 3, 3))},
				ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("output_padding", 1, 1), ir.IntAttr("group", 2))
		}, "float32[N,6,10,10]"},
		{"convtranspose output_shape", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ConvTranspose", "c", ids{b.Input("x", F, 1, 1, 3, 3), b.Param("w", f32(1, 1, 2, 3, 3))},
				ir.IntsAttr("strides", 3, 2), ir.IntsAttr("output_shape", 10, 8))
		}, "float32[1,2,10,8]"},
		{"maxpool ceil", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("MaxPool", "p", ids{b.Input("x", F, -1, 1, 4, 4)},
				ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntAttr("ceil_mode", 1))
		}, "float32[N,1,2,2]"},
		{"maxpool ceil drops window in padding", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("MaxPool", "p", ids{b.Input("x", F, 1, 1, 5, 5)},
				ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("ceil_mode", 1))
		}, "float32[1,1,3,3]"},
		{"maxpool indices", 13, func(b *ir.Builder) ir.ValueID {
			return b.OpN("MaxPool", "p", 2, ids{nchw(b)}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))[1]
		}, "int64[N,3,16,16]"},
		{"averagepool same_lower", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("AveragePool", "p", ids{b.Input("x", F, 1, 3, 5, 5)}, ir.IntsAttr("kernel_shape", 3, 3),
				ir.StringAttr("auto_pad", "SAME_LOWER"), ir.IntsAttr("strides", 2, 2))
		}, "float32[1,3,3,3]"},
		{"global pool", 13, func(b *ir.Builder) ir.ValueID { return b.Op("GlobalAveragePool", "p", ids{nchw(b)}) }, "float32[N,3,1,1]"},
		{"gemm trans", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Gemm", "g", ids{b.Input("a", F, 5, -1), b.Param("b", f32(1, 7, 5)), b.Param("c", f32(2, 7))},
				ir.IntAttr("transA", 1), ir.IntAttr("transB", 1))
		}, "float32[?,7]"},
		{"matmul batch broadcast", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("MatMul", "m", ids{b.Input("a", F, -1, 1, 4, 5), b.Input("b", F, 3, 5, 6)})
		}, "float32[N,3,4,6]"},
		{"matmul vectors", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("MatMul", "m", ids{b.Input("a", F, 5), b.Input("b", F, 2, 5, 6)})
		}, "float32[2,6]"},
		{"add broadcast symbolic", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Add", "a", ids{b.Input("a", F, -1, 1, 5), b.Input("b", F, 4, 1)})
		}, "float32[N,4,5]"},
		{"add same param", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Add", "a", ids{b.Input("a", F, -1, 5), b.Input("b", F, -1, 1)})
		}, "float32[N,5]"},
		{"equal bool", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Equal", "e", ids{b.Input("a", F, 3, 1), b.Input("b", F, 4)})
		}, "bool[3,4]"},
		{"where", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Where", "w", ids{b.Input("c", tensor.Bool, 3, 1), b.Input("x", tensor.Int32, 1, 4), b.Input("y", tensor.Int32, 1)})
		}, "int32[3,4]"},
		{"pow base dtype", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Pow", "p", ids{b.Input("a", F, 2, 3), b.Input("e", tensor.Int64, 3)})
		}, "float32[2,3]"},
		{"softmax", 13, func(b *ir.Builder) ir.ValueID { return b.Op("Softmax", "s", ids{nchw(b)}) }, "float32[N,3,32,32]"},
		{"dropout mask", 13, func(b *ir.Builder) ir.ValueID { return b.OpN("Dropout", "d", 2, ids{nchw(b)})[1] }, "bool[N,3,32,32]"},
		{"batchnorm stats", 9, func(b *ir.Builder) ir.ValueID {
			p := b.Param("p", f32(1, 3))
			return b.OpN("BatchNormalization", "bn", 5, ids{nchw(b), p, p, p, p})[3]
		}, "float32[3]"},
		{"layernorm mean", 17, func(b *ir.Builder) ir.ValueID {
			return b.OpN("LayerNormalization", "ln", 3, ids{b.Input("x", F, -1, 7, 16), b.Param("s", f32(1, 16))}, ir.IntAttr("axis", -1))[1]
		}, "float32[N,7,1]"},
		{"reshape zero and minus one", 14, func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, -1, 4, 6), b.Const("s", i64(0, -1, 3))})
		}, "float32[N,8,3]"},
		{"reshape symbolic cancel", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, -1, 4, 6), b.Const("s", i64(-1, 24))})
		}, "float32[N,24]"},
		{"reshape allowzero", 14, func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, 0, 4), b.Const("s", i64(4, 0))}, ir.IntAttr("allowzero", 1))
		}, "float32[4,0]"},
		{"reshape unknown shape", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, 2, 4), b.Input("s", tensor.Int64, 3)})
		}, "float32[?,?,?]"},
		{"flatten", 13, func(b *ir.Builder) ir.ValueID { return b.Op("Flatten", "f", ids{nchw(b)}) }, "float32[N,3072]"},
		{"flatten axis 0", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Flatten", "f", ids{b.Input("x", F, 2, 3)}, ir.IntAttr("axis", 0))
		}, "float32[1,6]"},
		{"flatten negative axis", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Flatten", "f", ids{nchw(b)}, ir.IntAttr("axis", -1))
		}, "float32[?,32]"},
		{"transpose", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Transpose", "t", ids{nchw(b)}, ir.IntsAttr("perm", 0, 2, 3, 1))
		}, "float32[N,32,32,3]"},
		{"transpose default", 13, func(b *ir.Builder) ir.ValueID { return b.Op("Transpose", "t", ids{b.Input("x", F, 2, 3, 4)}) }, "float32[4,3,2]"},
		{"concat", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Concat", "c", ids{b.Input("a", F, -1, 3, 4), b.Input("b", F, -1, 5, 4)}, ir.IntAttr("axis", 1))
		}, "float32[N,8,4]"},
		{"split attr", 11, func(b *ir.Builder) ir.ValueID {
			return b.OpN("Split", "s", 2, ids{b.Input("x", F, -1, 10)}, ir.IntAttr("axis", 1), ir.IntsAttr("split", 3, 7))[1]
		}, "float32[N,7]"},
		{"split input", 13, func(b *ir.Builder) ir.ValueID {
			return b.OpN("Split", "s", 2, ids{b.Input("x", F, -1, 10), b.Const("sp", i64(4, 6))}, ir.IntAttr("axis", -1))[0]
		}, "float32[N,4]"},
		{"split equal", 13, func(b *ir.Builder) ir.ValueID { return b.OpN("Split", "s", 3, ids{b.Input("x", F, 9, 2)})[2] }, "float32[3,2]"},
		{"split num_outputs uneven", 18, func(b *ir.Builder) ir.ValueID {
			return b.OpN("Split", "s", 3, ids{b.Input("x", F, 7)}, ir.IntAttr("num_outputs", 3))[2]
		}, "float32[1]"},
		{"slice inputs", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Slice", "s", ids{nchw(b), b.Const("st", i64(1, -10)), b.Const("en", i64(100, -1)), b.Const("ax", i64(2, 3)), b.Const("sp", i64(2, 1))})
		}, "float32[N,3,16,9]"},
		{"slice negative step", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Slice", "s", ids{b.Input("x", F, 10), b.Const("st", i64(-1)), b.Const("en", i64(-1<<62)), b.Const("ax", i64(0)), b.Const("sp", i64(-3))})
		}, "float32[4]"},
		{"slice attrs", 9, func(b *ir.Builder) ir.ValueID {
			return b.Op("Slice", "s", ids{b.Input("x", F, 20, 10, 5)}, ir.IntsAttr("starts", 0, 10), ir.IntsAttr("ends", 3, 10), ir.IntsAttr("axes", 0, 1))
		}, "float32[3,0,5]"},
		{"slice unknown starts", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Slice", "s", ids{nchw(b), b.Input("st", tensor.Int64, 1), b.Const("en", i64(5)), b.Const("ax", i64(1))})
		}, "float32[N,?,32,32]"},
		{"squeeze attr", 11, func(b *ir.Builder) ir.ValueID {
			return b.Op("Squeeze", "s", ids{b.Input("x", F, -1, 1, 5, 1)}, ir.IntsAttr("axes", 1, -1))
		}, "float32[N,5]"},
		{"squeeze all", 13, func(b *ir.Builder) ir.ValueID { return b.Op("Squeeze", "s", ids{b.Input("x", F, 1, 3, 1)}) }, "float32[3]"},
		{"unsqueeze input", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Unsqueeze", "u", ids{b.Input("x", F, -1, 5), b.Const("a", i64(0, -1))})
		}, "float32[1,N,5,1]"},
		{"unsqueeze attr", 11, func(b *ir.Builder) ir.ValueID {
			return b.Op("Unsqueeze", "u", ids{b.Input("x", F, 3)}, ir.IntsAttr("axes", 1))
		}, "float32[3,1]"},
		{"gather", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Gather", "g", ids{b.Input("x", F, -1, 5, 6), b.Input("i", tensor.Int64, 2, 3)}, ir.IntAttr("axis", 1))
		}, "float32[N,2,3,6]"},
		{"shape start end", 15, func(b *ir.Builder) ir.ValueID {
			return b.Op("Shape", "s", ids{nchw(b)}, ir.IntAttr("start", 1), ir.IntAttr("end", -1))
		}, "int64[2]"},
		{"cast", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Cast", "c", ids{nchw(b)}, ir.IntAttr("to", int64(tensor.Float16)))
		}, "float16[N,3,32,32]"},
		{"pad input", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Pad", "p", ids{nchw(b), b.Const("p", i64(0, 0, 1, 2, 0, 0, 3, 4))})
		}, "float32[N,3,36,38]"},
		{"pad attr", 10, func(b *ir.Builder) ir.ValueID {
			return b.Op("Pad", "p", ids{b.Input("x", F, 2, 2)}, ir.IntsAttr("pads", 1, 0, 1, 3))
		}, "float32[4,5]"},
		{"pad axes", 18, func(b *ir.Builder) ir.ValueID {
			return b.Op("Pad", "p", ids{nchw(b), b.Const("p", i64(1, 1, 2, 2)), ir.NoValue, b.Const("a", i64(-2, -1))})
		}, "float32[N,3,35,35]"},
		{"resize scales", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Resize", "r", ids{nchw(b), ir.NoValue, b.Const("s", f32s(1, 1, 2, 0.5))})
		}, "float32[N,3,64,16]"},
		{"resize opset 10", 10, func(b *ir.Builder) ir.ValueID {
			return b.Op("Resize", "r", ids{b.Input("x", F, 1, 1, 3, 3), b.Const("s", f32s(1, 1, 1.7, 2))})
		}, "float32[1,1,5,6]"},
		{"resize sizes", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Resize", "r", ids{nchw(b), ir.NoValue, b.Const("s", f32s()), b.Const("z", i64(2, 3, 10, 12))})
		}, "float32[2,3,10,12]"},
		{"resize not_larger", 18, func(b *ir.Builder) ir.ValueID {
			return b.Op("Resize", "r", ids{b.Input("x", F, 1, 1, 2, 2), ir.NoValue, ir.NoValue, b.Const("z", i64(7, 8))},
				ir.IntsAttr("axes", 2, 3), ir.StringAttr("keep_aspect_ratio_policy", "not_larger"))
		}, "float32[1,1,7,7]"},
		{"reducemean attr", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ReduceMean", "r", ids{nchw(b)}, ir.IntsAttr("axes", 2, 3))
		}, "float32[N,3,1,1]"},
		{"reducesum input no keepdims", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ReduceSum", "r", ids{nchw(b), b.Const("a", i64(1))}, ir.IntAttr("keepdims", 0))
		}, "float32[N,32,32]"},
		{"reducemax all", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ReduceMax", "r", ids{nchw(b)}, ir.IntAttr("keepdims", 0))
		}, "float32[]"},
		{"reducemax axes input", 18, func(b *ir.Builder) ir.ValueID {
			return b.Op("ReduceMax", "r", ids{nchw(b), b.Const("a", i64(-1))})
		}, "float32[N,3,32,1]"},
		{"reducesum noop", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ReduceSum", "r", ids{nchw(b), b.Const("a", i64())}, ir.IntAttr("noop_with_empty_axes", 1))
		}, "float32[N,3,32,32]"},
		{"argmax", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ArgMax", "a", ids{b.Input("x", F, -1, 10)}, ir.IntAttr("axis", 1), ir.IntAttr("keepdims", 0))
		}, "int64[N]"},
		{"constant", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Constant", "c", nil, ir.TensorAttr("value", f32(1, 2, 3)))
		}, "float32[2,3]"},
		{"constant value_ints", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Constant", "c", nil, ir.IntsAttr("value_ints", 1, 2, 3))
		}, "int64[3]"},
		{"constantofshape", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ConstantOfShape", "c", ids{b.Const("s", i64(2, 5))}, ir.TensorAttr("value", tensor.FromInt64(tensor.Shape{1}, []int64{1})))
		}, "int64[2,5]"},
		{"constantofshape from shape", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("ConstantOfShape", "c", ids{b.Op("Shape", "s", ids{nchw(b)})})
		}, "float32[N,3,32,32]"},
		{"expand", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("Expand", "e", ids{b.Input("x", F, 3, 1), b.Const("s", i64(2, 1, 6))})
		}, "float32[2,3,6]"},
		{"quantize", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("QuantizeLinear", "q", ids{nchw(b), b.Const("s", tensor.FromFloat32(tensor.Shape{}, []float32{0.1})),
				b.Const("z", &tensor.Tensor{DType: tensor.Int8, Shape: tensor.Shape{}, Data: []int8{0}})})
		}, "int8[N,3,32,32]"},
		{"quantize default uint8", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("QuantizeLinear", "q", ids{nchw(b), b.Const("s", tensor.FromFloat32(tensor.Shape{}, []float32{0.1}))})
		}, "uint8[N,3,32,32]"},
		{"dequantize", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("DequantizeLinear", "d", ids{b.Input("x", tensor.Int8, -1, 4), b.Const("s", tensor.FromFloat32(tensor.Shape{}, []float32{0.1}))})
		}, "float32[N,4]"},
		{"unknown op keeps unknown", 13, func(b *ir.Builder) ir.ValueID {
			return b.Op("NonZero", "n", ids{nchw(b)})
		}, "undefined[*]"},
		{"unknown domain", 13, func(b *ir.Builder) ir.ValueID {
			v := b.Op("Relu", "r", ids{nchw(b)})
			b.G.Nodes[len(b.G.Nodes)-1].Domain = "com.example"
			return v
		}, "undefined[*]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectType(t, tc.opset, tc.build, tc.want) })
	}
}

// TestInferShapesShapeArithmetic checks the Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape chain PyTorch writes for x.view(x.size(0), -1), and
// integer arithmetic on shape elements.
func TestInferShapesShapeArithmetic(t *testing.T) {
	F := tensor.Float32
	flatten := func(b *ir.Builder) ir.ValueID {
		x := b.Input("x", F, -1, 16, 5, 5)
		sh := b.Op("Shape", "shape", ids{x})
		n := b.Op("Gather", "gather", ids{sh, b.Const("zero", i64s(0))}, ir.IntAttr("axis", 0))
		u := b.Op("Unsqueeze", "unsq", ids{n, b.Const("ax", i64(0))})
		c := b.Op("Concat", "cat", ids{u, b.Const("minus1", i64(-1))}, ir.IntAttr("axis", 0))
		return b.Op("Reshape", "view", ids{x, c})
	}
	expectType(t, 13, flatten, "float32[N,400]")
	expectType(t, 13, func(b *ir.Builder) ir.ValueID {
		x := b.Input("x", F, -1, 4, 6)
		sh := b.Op("Shape", "shape", ids{x})
		tail := b.Op("Slice", "tail", ids{sh, b.Const("st", i64(1)), b.Const("en", i64(3))})
		prod := b.Op("ReduceProd", "prod", ids{tail}) // no rule: unknown
		_ = prod
		d1 := b.Op("Gather", "g1", ids{sh, b.Const("one", i64(1))})
		d2 := b.Op("Gather", "g2", ids{sh, b.Const("two", i64(2))})
		m := b.Op("Mul", "mul", ids{d1, d2})
		n := b.Op("Gather", "g0", ids{sh, b.Const("zero", i64(0))})
		c := b.Op("Concat", "cat", ids{n, m}, ir.IntAttr("axis", 0))
		return b.Op("Reshape", "view", ids{x, c})
	}, "float32[N,24]")
	expectType(t, 13, func(b *ir.Builder) ir.ValueID {
		x := b.Input("x", F, -1, 8)
		sh := b.Op("Shape", "shape", ids{x})
		n := b.Op("Gather", "g0", ids{sh, b.Const("zero", i64s(0))})
		cast := b.Op("Cast", "cast", ids{b.Op("Unsqueeze", "u", ids{n, b.Const("ax0", i64(0))})}, ir.IntAttr("to", int64(tensor.Int64)))
		half := b.Op("Div", "div", ids{b.Const("eight", i64(8)), b.Const("two", i64(2))})
		flat := b.Op("Reshape", "flat", ids{cast, b.Const("m1", i64(-1))})
		c := b.Op("Concat", "cat", ids{flat, half, b.Const("two2", i64(2))}, ir.IntAttr("axis", 0))
		return b.Op("Reshape", "view", ids{x, c})
	}, "float32[N,4,2]")
}

func TestInferShapesErrors(t *testing.T) {
	F := tensor.Float32
	tests := []struct {
		name  string
		build func(b *ir.Builder) ir.ValueID
		want  string
	}{
		{"conv rank 2", func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "conv1", ids{b.Input("x", F, 4, 3), b.Param("w", f32(1, 8, 3, 3, 3))})
		}, `node "conv1" (Conv): input rank 2`},
		{"conv channels", func(b *ir.Builder) ir.ValueID {
			return b.Op("Conv", "conv1", ids{b.Input("x", F, 1, 4, 8, 8), b.Param("w", f32(1, 8, 3, 3, 3))})
		}, `"conv1" (Conv): input has 4 channels`},
		{"matmul inner", func(b *ir.Builder) ir.ValueID {
			return b.Op("MatMul", "mm", ids{b.Input("a", F, 2, 3), b.Input("b", F, 4, 5)})
		}, `"mm" (MatMul): inner dims differ`},
		{"gemm inner", func(b *ir.Builder) ir.ValueID {
			return b.Op("Gemm", "fc", ids{b.Input("a", F, -1, 3), b.Param("b", f32(1, 10, 4))}, ir.IntAttr("transB", 1))
		}, `"fc" (Gemm): inner dims differ`},
		{"concat dims", func(b *ir.Builder) ir.ValueID {
			return b.Op("Concat", "cat", ids{b.Input("a", F, 2, 3), b.Input("b", F, 4, 5)}, ir.IntAttr("axis", 0))
		}, `"cat" (Concat): input 1 has dim 1 = 5`},
		{"concat ranks", func(b *ir.Builder) ir.ValueID {
			return b.Op("Concat", "cat", ids{b.Input("a", F, 2, 3), b.Input("b", F, 4)}, ir.IntAttr("axis", 0))
		}, `"cat" (Concat): inputs have ranks 2 and 1`},
		{"broadcast", func(b *ir.Builder) ir.ValueID {
			return b.Op("Add", "add", ids{b.Input("a", F, 2, 3), b.Input("b", F, 4)})
		}, `"add" (Add): shapes`},
		{"reshape size", func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, 2, 3), b.Const("s", i64(4, 2))})
		}, `"r" (Reshape): cannot reshape`},
		{"reshape infer", func(b *ir.Builder) ir.ValueID {
			return b.Op("Reshape", "r", ids{b.Input("x", F, 2, 3), b.Const("s", i64(-1, 4))})
		}, `"r" (Reshape): cannot reshape 6 elements`},
		{"transpose perm", func(b *ir.Builder) ir.ValueID {
			return b.Op("Transpose", "t", ids{b.Input("x", F, 2, 3)}, ir.IntsAttr("perm", 0, 1, 2))
		}, `"t" (Transpose): perm`},
		{"pool too small", func(b *ir.Builder) ir.ValueID {
			return b.Op("MaxPool", "p", ids{b.Input("x", F, 1, 1, 2, 2)}, ir.IntsAttr("kernel_shape", 3, 3))
		}, `"p" (MaxPool): spatial dim 2`},
		{"split sum", func(b *ir.Builder) ir.ValueID {
			return b.OpN("Split", "s", 2, ids{b.Input("x", F, 10), b.Const("sp", i64(3, 3))})[0]
		}, `"s" (Split): split [3 3] sums to 6`},
		{"squeeze non-one", func(b *ir.Builder) ir.ValueID {
			return b.Op("Squeeze", "s", ids{b.Input("x", F, 2, 3), b.Const("a", i64(0))})
		}, `"s" (Squeeze): cannot squeeze axis 0 of size 2`},
		{"axis range", func(b *ir.Builder) ir.ValueID {
			return b.Op("Gather", "g", ids{b.Input("x", F, 2, 3), b.Input("i", tensor.Int64)}, ir.IntAttr("axis", 2))
		}, `"g" (Gather): axis 2 out of range`},
		{"declared output disagrees", func(b *ir.Builder) ir.ValueID {
			v := b.Op("Relu", "relu", ids{b.Input("x", F, 2, 3)})
			b.G.Values[v].Type = ir.Type{DType: F, Ranked: true, Shape: ir.ShapeDims(tensor.Shape{2, 4})}
			return v
		}, `"relu" (Relu): output "relu_out": inferred type float32[2,3], declared float32[2,4]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectError(t, 13, tc.build, tc.want) })
	}
}

// lenet builds LeNet-5 with a symbolic batch, flattening the PyTorch way
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape).
func lenet(opset int64) (*ir.Builder, ir.ValueID) {
	b := ir.NewBuilder("lenet", opset)
	x := b.Input("input", tensor.Float32, -1, 1, 28, 28)
	h := b.Op("Conv", "conv1", ids{x, b.Param("w1", f32(1, 6, 1, 5, 5)), b.Param("b1", f32(2, 6))}, ir.IntsAttr("pads", 2, 2, 2, 2))
	h = b.Op("Relu", "relu1", ids{h})
	h = b.Op("MaxPool", "pool1", ids{h}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	h = b.Op("Conv", "conv2", ids{h, b.Param("w2", f32(3, 16, 6, 5, 5)), b.Param("b2", f32(4, 16))})
	h = b.Op("Relu", "relu2", ids{h})
	h = b.Op("MaxPool", "pool2", ids{h}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	sh := b.Op("Shape", "shape", ids{h})
	n := b.Op("Gather", "gather", ids{sh, b.Const("zero", i64s(0))})
	var u ir.ValueID
	if opset >= 13 {
		u = b.Op("Unsqueeze", "unsq", ids{n, b.Const("axes0", i64(0))})
	} else {
		u = b.Op("Unsqueeze", "unsq", ids{n}, ir.IntsAttr("axes", 0))
	}
	c := b.Op("Concat", "cat", ids{u, b.Const("minus1", i64(-1))}, ir.IntAttr("axis", 0))
	h = b.Op("Reshape", "flatten", ids{h, c})
	h = b.Op("Gemm", "fc1", ids{h, b.Param("w3", f32(5, 120, 400)), b.Param("b3", f32(6, 120))}, ir.IntAttr("transB", 1))
	h = b.Op("Relu", "relu3", ids{h})
	h = b.Op("Gemm", "fc2", ids{h, b.Param("w4", f32(7, 84, 120)), b.Param("b4", f32(8, 84))}, ir.IntAttr("transB", 1))
	h = b.Op("Relu", "relu4", ids{h})
	out := b.Op("Gemm", "fc3", ids{h, b.Param("w5", f32(9, 10, 84)), b.Param("b5", f32(10, 10))}, ir.IntAttr("transB", 1))
	b.Output(out)
	return b, out
}

// bnParams adds constant BatchNormalization parameters for c channels.
func bnParams(b *ir.Builder, name string, c int, seed uint64) ids {
	scale, bias, mean, v := f32(seed, c), f32(seed+1, c), f32(seed+2, c), f32(seed+3, c)
	for i := range v.F32() {
		v.F32()[i] = 0.5 + v.F32()[i]*v.F32()[i]
	}
	return ids{b.Param(name+"_scale", scale), b.Param(name+"_bias", bias), b.Const(name+"_mean", mean), b.Const(name+"_var", v)}
}

// resnet builds a small ResNet-like graph (stem, one basic block with a
// strided 1x1 downsample, global pooling and a classifier) with a
// symbolic batch.
func resnet(opset int64) (*ir.Builder, ir.ValueID) {
	b := ir.NewBuilder("resnet", opset)
	x := b.Input("input", tensor.Float32, -1, 3, 16, 16)
	convBN := func(name string, in ir.ValueID, cin, cout, k, stride int, seed uint64) ir.ValueID {
		p := int64(k / 2)
		h := b.Op("Conv", name, ids{in, b.Param(name+"_w", f32(seed, cout, cin, k, k))},
			ir.IntsAttr("pads", p, p, p, p), ir.IntsAttr("strides", int64(stride), int64(stride)))
		return b.Op("BatchNormalization", name+"_bn", append(ids{h}, bnParams(b, name+"_bn", cout, seed+10)...))
	}
	h := b.Op("Relu", "stem_relu", ids{convBN("stem", x, 3, 8, 3, 1, 100)})
	y := b.Op("Relu", "b1_relu1", ids{convBN("b1_conv1", h, 8, 16, 3, 2, 200)})
	y = convBN("b1_conv2", y, 16, 16, 3, 1, 300)
	sc := convBN("b1_down", h, 8, 16, 1, 2, 400)
	h = b.Op("Relu", "b1_relu2", ids{b.Op("Add", "b1_add", ids{y, sc})})
	h = b.Op("GlobalAveragePool", "gap", ids{h})
	h = b.Op("Flatten", "flatten", ids{h})
	out := b.Op("Gemm", "fc", ids{h, b.Param("fc_w", f32(500, 10, 16)), b.Param("fc_b", f32(501, 10))}, ir.IntAttr("transB", 1))
	b.Output(out)
	return b, out
}

func TestInferShapesNetworks(t *testing.T) {
	for _, opset := range []int64{11, 13, 17} {
		b, _ := lenet(opset)
		g, err := rewrite.InferShapes(b.G)
		if err != nil {
			t.Fatalf("lenet opset %d: %v", opset, err)
		}
		want := map[string]string{"conv1_out": "float32[N,6,28,28]", "pool2_out": "float32[N,16,5,5]",
			"flatten_out": "float32[N,400]", "fc3_out": "float32[N,10]", "shape_out": "int64[4]", "gather_out": "int64[]"}
		checkTypes(t, g, want)
		if opset == 13 {
			b, _ = resnet(opset)
			g, err = rewrite.InferShapes(b.G)
			if err != nil {
				t.Fatalf("resnet: %v", err)
			}
			checkTypes(t, g, map[string]string{"stem_bn_out": "float32[N,8,16,16]", "b1_add_out": "float32[N,16,8,8]",
				"gap_out": "float32[N,16,1,1]", "flatten_out": "float32[N,16]", "fc_out": "float32[N,10]"})
		}
	}
}

func checkTypes(t *testing.T, g *ir.Graph, want map[string]string) {
	t.Helper()
	for name, w := range want {
		id, ok := g.ValueByName(name)
		if !ok {
			t.Errorf("no value %q", name)
			continue
		}
		if got := g.Values[id].Type.String(); got != w {
			t.Errorf("%s: got %s, want %s", name, got, w)
		}
	}
}

// TestInferShapesDoesNotModifyInput checks that the input graph is left
// alone.
func TestInferShapesDoesNotModifyInput(t *testing.T) {
	b, _ := lenet(13)
	before := b.G.String()
	types := make([]ir.Type, len(b.G.Values))
	for i, v := range b.G.Values {
		types[i] = v.Type
	}
	if _, err := rewrite.InferShapes(b.G); err != nil {
		t.Fatal(err)
	}
	if b.G.String() != before {
		t.Error("graph changed")
	}
	for i, v := range b.G.Values {
		if v.Type.String() != types[i].String() {
			t.Errorf("value %q type changed from %v to %v", v.Name, types[i], v.Type)
		}
	}
}

// TestInferShapesFixtures infers the PyTorch fixtures (symbolic dim
// "batch") with every computed type stripped: the output must come back as
// [batch, 10].
func TestInferShapesFixtures(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/models/*.onnx")
	if len(paths) == 0 {
		t.Skip("no fixtures in testdata/models")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			g, err := onnx.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for id := range g.Values {
				if !g.IsInput(ir.ValueID(id)) && g.Values[id].Const == nil {
					g.Values[id].Type = ir.Type{}
				}
			}
			got, err := rewrite.InferShapes(g)
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Values[got.Outputs[0]].Type.String(); s != "float32[batch,10]" {
				t.Errorf("output type %s, want float32[batch,10]", s)
			}
			for id, v := range got.Values {
				if !v.Type.Ranked || v.Type.DType == 0 {
					t.Errorf("value %d %q left untyped: %v", id, v.Name, v.Type)
				}
			}
		})
	}
}
