package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// ewPow is Pow: Z = X^Y with numpy broadcasting. Since opset 12 the
// exponent may have any numeric dtype; the result has the base's dtype.
// Integer bases with integer exponents are computed exactly (wrapping like
// C); other integer cases go through float64 and truncate.
func ewPow(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	y, err := need(c, in, 1, "Y")
	if err != nil {
		return err
	}
	if !ewIsNumeric(y.DType) {
		return c.Errorf("exponent dtype %v is not supported", y.DType)
	}
	p, err := ewBroadcast(c, x.Shape, y.Shape)
	if err != nil {
		return err
	}
	o, err := c.Output(0, x.DType, ewOutShape(x.Shape, y.Shape))
	if err != nil {
		return err
	}
	if p.total == 0 {
		return nil
	}
	switch x.DType {
	case tensor.Float32:
		if y.DType == tensor.Float32 {
			ewRun2(c, &p, o.F32(), x.F32(), y.F32(), ewPowF32Row)
			return nil
		}
		ewRun2(c, &p, o.F32(), x.F32(), ewAsF64(y), ewFuncRow(ewPowF[float32]))
	case tensor.Float64:
		ewRun2(c, &p, o.F64(), x.F64(), ewAsF64(y), ewFuncRow(ewPowF[float64]))
	case tensor.Float16:
		xd, od := x.Data.([]uint16), o.Data.([]uint16)
		s := c.Scratch(len(xd) + len(od))
		xf, of := s[:len(xd)], s[len(xd):]
		ewHalfToF32(xf, xd)
		ewRun2(c, &p, of, xf, ewAsF64(y), ewFuncRow(ewPowF[float32]))
		f32ToHalf(od, of)
	case tensor.Int8:
		ewPowInt[int8](c, &p, x, y, o)
	case tensor.Uint8:
		ewPowInt[uint8](c, &p, x, y, o)
	case tensor.Int16:
		ewPowInt[int16](c, &p, x, y, o)
	case tensor.Uint16:
		ewPowInt[uint16](c, &p, x, y, o)
	case tensor.Int32:
		ewPowInt[int32](c, &p, x, y, o)
	case tensor.Uint32:
		ewPowInt[uint32](c, &p, x, y, o)
	case tensor.Int64:
		ewPowInt[int64](c, &p, x, y, o)
	case tensor.Uint64:
		ewPowInt[uint64](c, &p, x, y, o)
	default:
		return c.Errorf("base dtype %v is not supported", x.DType)
	}
	return nil
}

// ewPowInt computes Pow for an integer base.
func ewPowInt[T Number](c *kernel.Ctx, p *ewPlan, x, y, o *tensor.Tensor) {
	xs, os := x.Data.([]T), o.Data.([]T)
	if y.DType.IsFloat() {
		ewRun2(c, p, os, xs, ewAsF64(y), ewFuncRow(func(b T, e float64) T {
			return T(math.Pow(float64(b), e))
		}))
		return
	}
	es, _ := y.Int64s() // y is an integer dtype here
	ewRun2(c, p, os, xs, es, ewFuncRow(ewIPow[T]))
}

// ewPowF is T(math.Pow(x, y)).
func ewPowF[T Float](x T, y float64) T { return T(math.Pow(float64(x), y)) }

// ewPowF32Row is the float32 Pow row kernel, with fast paths for the
// constant exponents 2 and 1 (exact, so equal to math.Pow).
func ewPowF32Row(o, a, b []float32, sa, sb int) {
	if sb == 0 && sa == 1 {
		a := a[:len(o)]
		switch b[0] {
		case 2:
			for i, v := range a {
				o[i] = v * v
			}
			return
		case 1:
			copy(o, a)
			return
		}
	}
	ewFuncRow(func(x, y float32) float32 {
		return float32(math.Pow(float64(x), float64(y)))
	})(o, a, b, sa, sb)
}

// ewIPow is x^n in T's wrapping arithmetic. Negative exponents give the
// truncated reciprocal: 1 for x = 1, ±1 for x = -1, 0 otherwise.
func ewIPow[T Number](x T, n int64) T {
	if n < 0 {
		var zero T
		switch {
		case x == 1:
			return 1
		case x < zero && x+1 == 0:
			if n%2 == 0 {
				return 1
			}
			return x
		}
		return 0
	}
	r := T(1)
	for n > 0 {
		if n&1 == 1 {
			r *= x
		}
		x *= x
		n >>= 1
	}
	return r
}

// ewIsNumeric reports whether d is a numeric dtype goslim computes with.
func ewIsNumeric(d tensor.DType) bool {
	return d.Supported() && d != tensor.Bool
}

// ewAsF64 returns the elements of a numeric tensor as float64 (float16
// decoded, bool as 0/1). For float64 tensors it returns the storage itself,
// so callers must not write to the result.
func ewAsF64(t *tensor.Tensor) []float64 {
	switch d := t.Data.(type) {
	case []float64:
		return d
	case []float32:
		return ewConvF64(d)
	case []int8:
		return ewConvF64(d)
	case []uint8:
		return ewConvF64(d)
	case []int16:
		return ewConvF64(d)
	case []int32:
		return ewConvF64(d)
	case []uint32:
		return ewConvF64(d)
	case []int64:
		return ewConvF64(d)
	case []uint64:
		return ewConvF64(d)
	case []uint16:
		if t.DType == tensor.Uint16 {
			return ewConvF64(d)
		}
	}
	out := make([]float64, t.Len())
	for i := range out {
		out[i] = t.Float64At(i)
	}
	return out
}

// ewConvF64 converts a numeric slice to float64.
func ewConvF64[T Number](d []T) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}
