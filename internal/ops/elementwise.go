package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

func registerElementwise(t *kernel.Table) {
	add(t, "Add", binaryArith(func(a, b float64) float64 { return a + b }, addT[float32], addT[float64], addT[int32], addT[int64]))
	add(t, "Relu", simple(relu))
}

func addT[T Number](a, b T) T { return a + b }

// binaryArith builds a broadcasting binary kernel. The typed functions
// cover the common dtypes without conversion; every other numeric dtype
// (and float16) goes through float64.
func binaryArith(f64 func(a, b float64) float64, f32 func(a, b float32) float32, ff64 func(a, b float64) float64,
	i32 func(a, b int32) int32, i64 func(a, b int64) int64) kernel.Builder {
	return simple(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		a, err := need(c, in, 0, "A")
		if err != nil {
			return err
		}
		b, err := need(c, in, 1, "B")
		if err != nil {
			return err
		}
		if err := sameDType(c, a, b); err != nil {
			return err
		}
		shape, err := BroadcastShapes(a.Shape, b.Shape)
		if err != nil {
			return c.Errorf("%v", err)
		}
		o, err := c.Output(0, a.DType, shape)
		if err != nil {
			return err
		}
		switch a.DType {
		case tensor.Float32:
			binaryLoop(a.F32(), b.F32(), o.F32(), a.Shape, b.Shape, shape, f32)
		case tensor.Float64:
			binaryLoop(a.F64(), b.F64(), o.F64(), a.Shape, b.Shape, shape, ff64)
		case tensor.Int32:
			binaryLoop(a.I32(), b.I32(), o.I32(), a.Shape, b.Shape, shape, i32)
		case tensor.Int64:
			binaryLoop(a.I64(), b.I64(), o.I64(), a.Shape, b.Shape, shape, i64)
		default:
			if !a.DType.Supported() || a.DType == tensor.Bool {
				return c.Errorf("dtype %v not supported", a.DType)
			}
			return binaryViaFloat64(c, a, b, o, f64)
		}
		return nil
	})
}

// binaryLoop applies f elementwise with numpy broadcasting.
func binaryLoop[T any, U any](a, b []T, o []U, as, bs, os tensor.Shape, f func(x, y T) U) {
	if as.Equal(bs) {
		for i := range o {
			o[i] = f(a[i], b[i])
		}
		return
	}
	if len(b) == 1 {
		y := b[0]
		for i := range o {
			o[i] = f(a[i%len(a)], y)
		}
		return
	}
	if len(a) == 1 {
		x := a[0]
		for i := range o {
			o[i] = f(x, b[i%len(b)])
		}
		return
	}
	it := broadcastIter{out: os, strides: [][]int{bstrides(as, os), bstrides(bs, os)}}
	r := len(os) - 1
	sa, sb := it.strides[0][r], it.strides[1][r]
	it.forEachRow(func(oo int, offs []int, n int) {
		ia, ib := offs[0], offs[1]
		for j := 0; j < n; j++ {
			o[oo+j] = f(a[ia], b[ib])
			ia += sa
			ib += sb
		}
	})
}

func binaryViaFloat64(c *kernel.Ctx, a, b, o *tensor.Tensor, f func(x, y float64) float64) error {
	av := make([]float64, a.Len())
	bv := make([]float64, b.Len())
	for i := range av {
		av[i] = a.Float64At(i)
	}
	for i := range bv {
		bv[i] = b.Float64At(i)
	}
	ov := make([]float64, o.Len())
	binaryLoop(av, bv, ov, a.Shape, b.Shape, o.Shape, f)
	return storeFloat64(c, o, ov)
}

// storeFloat64 writes float64 values into t's storage, converting to its
// dtype (integers truncate toward zero as C casts do).
func storeFloat64(c *kernel.Ctx, t *tensor.Tensor, v []float64) error {
	switch d := t.Data.(type) {
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	case []float64:
		copy(d, v)
	case []uint16:
		switch t.DType {
		case tensor.Float16:
			for i, x := range v {
				d[i] = tensor.Float32ToHalf(float32(x))
			}
		case tensor.BFloat16:
			for i, x := range v {
				d[i] = uint16(math.Float32bits(float32(x)) >> 16)
			}
		default:
			for i, x := range v {
				d[i] = uint16(x)
			}
		}
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []int16:
		for i, x := range v {
			d[i] = int16(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	case []uint32:
		for i, x := range v {
			d[i] = uint32(x)
		}
	case []int64:
		for i, x := range v {
			d[i] = int64(x)
		}
	case []uint64:
		for i, x := range v {
			d[i] = uint64(x)
		}
	case []bool:
		for i, x := range v {
			d[i] = x != 0
		}
	default:
		return c.Errorf("cannot store into %v", t.DType)
	}
	return nil
}

func relu(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32:
		xs, os := x.F32(), o.F32()
		for i, v := range xs {
			os[i] = max(v, 0)
		}
	case tensor.Float64:
		xs, os := x.F64(), o.F64()
		for i, v := range xs {
			os[i] = max(v, 0)
		}
	default:
		return c.Errorf("Relu does not support %v", x.DType)
	}
	return nil
}
