package ops

import (
	"fmt"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerCast registers Cast and CastLike.
func registerCast(t *kernel.Table) {
	add(t, "Cast", ewCastBuild)
	add(t, "CastLike", simple(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		like, err := need(c, in, 1, "target_type")
		if err != nil {
			return err
		}
		if msg := castUnsupported(int64(like.DType)); msg != "" {
			return c.Errorf("%s", msg)
		}
		return castRun(c, in, like.DType)
	}))
}

// castUnsupported returns why casting to or from ONNX element type dt is
// not supported, or "" if it is.
func castUnsupported(dt int64) string {
	if dt >= 0 && dt <= 1<<16 && tensor.DType(dt).Supported() {
		return ""
	}
	name := ""
	switch dt {
	case int64(tensor.String):
		name = "string"
	case 14:
		name = "complex64"
	case 15:
		name = "complex128"
	case int64(tensor.BFloat16):
		name = "bfloat16"
	case 17:
		name = "float8e4m3fn"
	case 18:
		name = "float8e4m3fnuz"
	case 19:
		name = "float8e5m2"
	case 20:
		name = "float8e5m2fnuz"
	case 21:
		name = "uint4"
	case 22:
		name = "int4"
	case 23:
		name = "float4e2m1"
	default:
		return fmt.Sprintf("unknown element type %d", dt)
	}
	return "casts to and from " + name + " are not supported"
}

// ewCastBuild builds Cast (attribute to; opset 19's saturate only affects
// float8 types and is ignored). Supported types: float32, float16,
// float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64 and
// bool. Float to integer truncates toward zero (NaN becomes 0, other
// out-of-range values follow Go's conversion, like C on the same CPU);
// anything to bool is x != 0.
func ewCastBuild(info *kernel.Info) (kernel.Kernel, error) {
	to := info.Attrs().Int("to", 0)
	if !info.Attrs().Has("to") {
		return nil, info.Errorf("missing attribute to")
	}
	if msg := castUnsupported(to); msg != "" {
		return nil, info.Errorf("%s", msg)
	}
	if len(info.Inputs) > 0 && info.Inputs[0].DType != tensor.Undefined {
		if msg := castUnsupported(int64(info.Inputs[0].DType)); msg != "" {
			return nil, info.Errorf("%s", msg)
		}
	}
	dt := tensor.DType(to)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		return castRun(c, in, dt)
	}), nil
}

// castRun casts input 0 to dt into output 0 (a view when the dtype
// already matches).
func castRun(c *kernel.Ctx, in []*tensor.Tensor, dt tensor.DType) error {
	x, err := need(c, in, 0, "input")
	if err != nil {
		return err
	}
	if msg := castUnsupported(int64(x.DType)); msg != "" {
		return c.Errorf("%s", msg)
	}
	if x.DType == dt {
		_, err := c.Alias(0, 0, x, x.Shape)
		return err
	}
	o, err := c.Output(0, dt, x.Shape)
	if err != nil {
		return err
	}
	castInto(c, o, x)
	return nil
}

// castInto converts src into dst, whose dtype differs and whose size
// matches.
func castInto(c *kernel.Ctx, dst, src *tensor.Tensor) {
	switch d := src.Data.(type) {
	case []float32:
		castFrom(c, dst, d)
	case []float64:
		castFrom(c, dst, d)
	case []int8:
		castFrom(c, dst, d)
	case []uint8:
		castFrom(c, dst, d)
	case []int16:
		castFrom(c, dst, d)
	case []int32:
		castFrom(c, dst, d)
	case []uint32:
		castFrom(c, dst, d)
	case []int64:
		castFrom(c, dst, d)
	case []uint64:
		castFrom(c, dst, d)
	case []uint16:
		if src.DType == tensor.Uint16 {
			castFrom(c, dst, d)
			return
		}
		// float16: widen to float32 first.
		f := c.Scratch(len(d))
		ewSplit(c, len(d), func(lo, hi int) { ewHalfToF32(f[lo:hi], d[lo:hi]) })
		castFrom(c, dst, f)
	case []bool:
		u := make([]uint8, len(d))
		for i, v := range d {
			if v {
				u[i] = 1
			}
		}
		castFrom(c, dst, u)
	}
}

// castFrom converts numeric values s into dst's dtype.
func castFrom[S Number](c *kernel.Ctx, dst *tensor.Tensor, s []S) {
	switch d := dst.Data.(type) {
	case []float32:
		ewUnaryRun(c, d, s, castPlain[S, float32])
	case []float64:
		ewUnaryRun(c, d, s, castPlain[S, float64])
	case []int8:
		ewUnaryRun(c, d, s, castToInt[S, int8])
	case []uint8:
		ewUnaryRun(c, d, s, castToInt[S, uint8])
	case []int16:
		ewUnaryRun(c, d, s, castToInt[S, int16])
	case []int32:
		ewUnaryRun(c, d, s, castToInt[S, int32])
	case []uint32:
		ewUnaryRun(c, d, s, castToInt[S, uint32])
	case []int64:
		ewUnaryRun(c, d, s, castToInt[S, int64])
	case []uint64:
		ewUnaryRun(c, d, s, castToInt[S, uint64])
	case []uint16:
		if dst.DType == tensor.Uint16 {
			ewUnaryRun(c, d, s, castToInt[S, uint16])
			return
		}
		ewUnaryRun(c, d, s, castToHalf[S])
	case []bool:
		ewUnaryRun(c, d, s, castToBool[S])
	}
}

// castPlain is o = D(x), for float destinations.
func castPlain[S, D Number](o []D, x []S) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = D(v)
	}
}

// castToInt is o = D(x) for integer destinations, with NaN mapped to 0.
func castToInt[S, D Number](o []D, x []S) {
	o = o[:len(x)]
	for i, v := range x {
		if v != v {
			o[i] = 0
			continue
		}
		o[i] = D(v)
	}
}

// castToHalf is o = float16(x) via float32.
func castToHalf[S Number](o []uint16, x []S) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = tensor.Float32ToHalf(float32(v))
	}
}

// castToBool is o = x != 0 (NaN is true).
func castToBool[S Number](o []bool, x []S) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = v != 0
	}
}
