package ops

import (
	"math"
	"unsafe"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Integer (quantized) operators. The ai.onnx ones are QLinearConv,
// QLinearMatMul, ConvInteger, MatMulInteger (opset 10+) and
// DynamicQuantizeLinear (11+); the com.microsoft ones (ONNX Runtime's
// contrib ops) are QLinearAdd, QLinearMul, QLinearConcat,
// QLinearGlobalAveragePool, QLinearAveragePool, QLinearLeakyRelu,
// QLinearSigmoid and QGemm.
//
// Every op is registered a second time in domain "goslim" with the same
// name and inputs and two optional int attributes act_min and act_max: an
// inclusive clamp of the quantized output (the lowering of QDQ graphs
// fuses Relu and Clip this way). Ops with an int32 or float output clamp
// that output's values instead.
//
// Products run the int8 GEMM (u8 x s8 -> s32, internal/int8) of the
// session's tier: int8 activations are shifted to uint8 by +128 (and
// their zero point with them), uint8 weights to int8 by -128, which leaves
// every zero-point-corrected product unchanged; zero points are corrected
// with row and column sums; accumulators (plus the int32 bias) are
// requantized in fixed point (q8.Requant), so every tier gives the same
// bits. Requantization multipliers are s_a*s_w/s_y in float64 from the
// float32 scales. Elementwise ops use 256-entry tables (unary ops,
// QLinearConcat), fixed-point requantization (pooling) and, for QLinearAdd
// (a float64 sum of two tables) and QLinearMul (fixed point), a
// 65536-entry table over both input bytes, all pure Go. Constant weights
// are packed once when the session is built.

// qlinearOps lists the registered ops: name, domain ("" = ai.onnx), first
// opset in ai.onnx.
var qlinearOps = []struct {
	op, domain string
	since      int64
	build      func(info *kernel.Info, q *qCommon) (kernel.Kernel, error)
}{
	{"QLinearConv", "", 10, buildQConv},
	{"ConvInteger", "", 10, buildQConv},
	{"QLinearMatMul", "", 10, buildQMatMul},
	{"MatMulInteger", "", 10, buildQMatMul},
	{"DynamicQuantizeLinear", "", 11, buildDynQuant},
	{"QGemm", "com.microsoft", 0, buildQMatMul},
	{"QLinearAdd", "com.microsoft", 0, buildQBinary},
	{"QLinearMul", "com.microsoft", 0, buildQBinary},
	{"QLinearConcat", "com.microsoft", 0, buildQConcat},
	{"QLinearGlobalAveragePool", "com.microsoft", 0, buildQPool},
	{"QLinearAveragePool", "com.microsoft", 0, buildQPool},
	{"QLinearLeakyRelu", "com.microsoft", 0, buildQUnary},
	{"QLinearSigmoid", "com.microsoft", 0, buildQUnary},
}

// registerQLinear registers the integer operators in their own domain and
// in domain "goslim".
func registerQLinear(t *kernel.Table) {
	for _, o := range qlinearOps {
		b := o.build
		t.Add(kernel.Entry{Domain: o.domain, Op: o.op, Name: "int8", Priority: kernel.Generic, MinOpset: o.since,
			Build: func(info *kernel.Info) (kernel.Kernel, error) {
				return b(info, &qCommon{lo: math.MinInt32, hi: math.MaxInt32, tier: info.Tier})
			}})
		t.Add(kernel.Entry{Domain: "goslim", Op: o.op, Name: "int8", Priority: kernel.Generic,
			Build: func(info *kernel.Info) (kernel.Kernel, error) {
				q, err := qFusedCommon(info)
				if err != nil {
					return nil, err
				}
				return b(info, q)
			}})
	}
}

// qCommon is what every integer kernel shares: the output clamp of the
// goslim variants (act_min, act_max) and the session tier.
type qCommon struct {
	lo, hi int32
	tier   kernel.Tier
}

// qFusedCommon reads act_min and act_max of a goslim-domain node.
func qFusedCommon(info *kernel.Info) (*qCommon, error) {
	a := info.Attrs()
	lo, hi := a.Int("act_min", math.MinInt32), a.Int("act_max", math.MaxInt32)
	if lo < math.MinInt32 || hi > math.MaxInt32 || lo > hi {
		return nil, info.Errorf("act_min %d, act_max %d: want an int32 range with act_min <= act_max", lo, hi)
	}
	return &qCommon{lo: int32(lo), hi: int32(hi), tier: info.Tier}, nil
}

// outRange returns the clamp range of an output of type dt: the type's
// range narrowed by act_min/act_max. It fails when they do not overlap.
func (q *qCommon) outRange(c *kernel.Ctx, dt tensor.DType) (int32, int32, error) {
	lo, hi := int32(math.MinInt32), int32(math.MaxInt32)
	switch dt {
	case tensor.Uint8:
		lo, hi = 0, 255
	case tensor.Int8:
		lo, hi = -128, 127
	}
	lo, hi = max(lo, q.lo), min(hi, q.hi)
	if lo > hi {
		return 0, 0, c.Errorf("act_min %d, act_max %d leave no %v value", q.lo, q.hi, dt)
	}
	return lo, hi, nil
}

// qIs8 reports whether dt is uint8 or int8.
func qIs8(dt tensor.DType) bool { return dt == tensor.Uint8 || dt == tensor.Int8 }

// qBytes returns the storage of a uint8 or int8 tensor as bytes.
func qBytes(t *tensor.Tensor) []uint8 { return quantBytes(t.Data) }

// qScratch returns n int32 words of the node's scratch space.
func qScratch(c *kernel.Ctx, n int) []int32 {
	if n == 0 {
		return nil
	}
	f := c.Scratch(n)
	return unsafe.Slice((*int32)(unsafe.Pointer(&f[0])), n)
}

// qScales returns the values of scale tensor t (float32, float16 or
// bfloat16), which must hold 1 or n values (n = 1: a scalar only).
func qScales(c *kernel.Ctx, t *tensor.Tensor, name string, n int) ([]float32, error) {
	if t == nil {
		return nil, c.Errorf("missing input %s", name)
	}
	if t.Len() != 1 && (t.Len() != n || t.Rank() != 1) {
		if n == 1 {
			return nil, c.Errorf("%s has shape %v, want a scalar", name, t.Shape)
		}
		return nil, c.Errorf("%s has shape %v, want a scalar or [%d]", name, t.Shape, n)
	}
	s, err := quantScalesF32(c, t)
	if err != nil {
		return nil, c.Errorf("%s: %v", name, err)
	}
	if t.DType == tensor.Int32 {
		return nil, c.Errorf("%s of type int32 is not supported", name)
	}
	for _, v := range s {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return nil, c.Errorf("%s = %g: scales must be positive and finite", name, v)
		}
	}
	return s, nil
}

// qZeros returns the zero points in t (nil: 0), which must hold 1 or n
// values of type dt (when dt is not Undefined).
func qZeros(c *kernel.Ctx, t *tensor.Tensor, name string, n int, dt tensor.DType) ([]int32, error) {
	if t == nil {
		return []int32{0}, nil
	}
	if dt != tensor.Undefined && t.DType != dt {
		return nil, c.Errorf("%s has type %v, want %v", name, t.DType, dt)
	}
	if !qIs8(t.DType) {
		return nil, c.Errorf("%s has type %v, want uint8 or int8", name, t.DType)
	}
	if t.Len() != 1 && t.Len() != n {
		if n == 1 {
			return nil, c.Errorf("%s has shape %v, want a scalar", name, t.Shape)
		}
		return nil, c.Errorf("%s has shape %v, want a scalar or %d values", name, t.Shape, n)
	}
	v, err := t.Int64s()
	if err != nil {
		return nil, c.Errorf("%s: %v", name, err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out, nil
}

// qInput checks that input i is a uint8 or int8 tensor.
func qInput(c *kernel.Ctx, in []*tensor.Tensor, i int, name string) (*tensor.Tensor, error) {
	x, err := need(c, in, i, name)
	if err != nil {
		return nil, err
	}
	if !qIs8(x.DType) {
		return nil, c.Errorf("input %s has type %v, want uint8 or int8", name, x.DType)
	}
	return x, nil
}

// qConstIn returns the constant tensor of input i and whether the input
// is constant or omitted (so a build-time preparation can rely on it).
func qConstIn(info *kernel.Info, i int) (*tensor.Tensor, bool) {
	if i >= len(info.Node.Inputs) || info.Node.Inputs[i] == ir.NoValue {
		return nil, true
	}
	if i < len(info.Consts) && info.Consts[i] != nil {
		return info.Consts[i], true
	}
	return nil, false
}

// qRequant builds the requantization of real multipliers sa*sw[i]/sy
// (sw per channel, or one value) with output zero point zy and range
// [lo, hi].
func qRequant(c *kernel.Ctx, sa float32, sw []float32, sy float32, zy, lo, hi int32) (*q8.Requant, error) {
	real := make([]float64, len(sw))
	for i, w := range sw {
		real[i] = float64(sa) * float64(w) / float64(sy)
	}
	r, err := q8.NewRequant(real, zy, lo, hi)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	return r, nil
}

// qClampI32 clamps int32 values to [lo, hi] (act_min/act_max of int32
// outputs).
func qClampI32(y []int32, lo, hi int32) {
	if lo == math.MinInt32 && hi == math.MaxInt32 {
		return
	}
	for i, v := range y {
		y[i] = min(max(v, lo), hi)
	}
}

// qRound8 saturates round_half_even(v) + z into [lo, hi] (NaN gives lo).
func qRound8(v float64, z, lo, hi int32) int32 {
	f := math.RoundToEven(v) + float64(z)
	switch {
	case f >= float64(hi):
		return hi
	case f > float64(lo):
		return int32(f)
	}
	return lo
}

// bytesOfI32 views int32 words as bytes.
func bytesOfI32(w []int32) []uint8 {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(&w[0])), 4*len(w))
}

// qZero1 returns the scalar zero point t (nil: 0), of type dt when dt is
// not Undefined, without allocating.
func qZero1(c *kernel.Ctx, t *tensor.Tensor, name string, dt tensor.DType) (int32, error) {
	if t == nil {
		return 0, nil
	}
	if dt != tensor.Undefined && t.DType != dt {
		return 0, c.Errorf("%s has type %v, want %v", name, t.DType, dt)
	}
	if !qIs8(t.DType) {
		return 0, c.Errorf("%s has type %v, want uint8 or int8", name, t.DType)
	}
	if t.Len() != 1 {
		return 0, c.Errorf("%s has shape %v, want a scalar", name, t.Shape)
	}
	switch d := t.Data.(type) {
	case []uint8:
		return int32(d[0]), nil
	case []int8:
		return int32(d[0]), nil
	}
	return 0, c.Errorf("%s has type %v, want uint8 or int8", name, t.DType)
}

// qInt8s views bytes as int8 values.
func qInt8s(b []uint8) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}
