package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerCompare registers the comparison ops (bool output, numpy
// broadcasting) and Where.
func registerCompare(t *kernel.Table) {
	add(t, "Equal", ewCompare(ewEq))
	add(t, "Greater", ewCompare(ewGt))
	add(t, "Less", ewCompare(ewLt))
	add(t, "GreaterOrEqual", ewCompare(ewGe))
	add(t, "LessOrEqual", ewCompare(ewLe))
	add(t, "Where", simple(ewWhere))
}

// ewCmpOp names a comparison.
type ewCmpOp uint8

const (
	ewEq ewCmpOp = iota
	ewGt
	ewLt
	ewGe
	ewLe
)

// ewCompare builds a comparison kernel. Every numeric dtype is accepted
// (float16 compares as float32); Equal also takes bool.
func ewCompare(op ewCmpOp) kernel.Builder {
	return simple(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		a, b, p, err := ewBinaryPrep(c, in)
		if err != nil {
			return err
		}
		if !ewIsNumeric(a.DType) && !(a.DType == tensor.Bool && op == ewEq) {
			return c.Errorf("dtype %v is not supported", a.DType)
		}
		o, err := c.Output(0, tensor.Bool, ewOutShape(a.Shape, b.Shape))
		if err != nil {
			return err
		}
		if p.total == 0 {
			return nil
		}
		ob := o.Bools()
		switch a.DType {
		case tensor.Bool:
			ewRun2(c, &p, ob, a.Bools(), b.Bools(), ewFuncRow(func(x, y bool) bool { return x == y }))
		case tensor.Float32:
			ewRun2(c, &p, ob, a.F32(), b.F32(), ewCmpRow[float32](op))
		case tensor.Float64:
			ewRun2(c, &p, ob, a.F64(), b.F64(), ewCmpRow[float64](op))
		case tensor.Float16:
			ad, bd := a.Data.([]uint16), b.Data.([]uint16)
			s := c.Scratch(len(ad) + len(bd))
			af, bf := s[:len(ad)], s[len(ad):]
			ewHalfToF32(af, ad)
			ewHalfToF32(bf, bd)
			ewRun2(c, &p, ob, af, bf, ewCmpRow[float32](op))
		case tensor.Int8:
			ewCmpTyped[int8](c, op, &p, a, b, ob)
		case tensor.Uint8:
			ewCmpTyped[uint8](c, op, &p, a, b, ob)
		case tensor.Int16:
			ewCmpTyped[int16](c, op, &p, a, b, ob)
		case tensor.Uint16:
			ewCmpTyped[uint16](c, op, &p, a, b, ob)
		case tensor.Int32:
			ewCmpTyped[int32](c, op, &p, a, b, ob)
		case tensor.Uint32:
			ewCmpTyped[uint32](c, op, &p, a, b, ob)
		case tensor.Int64:
			ewCmpTyped[int64](c, op, &p, a, b, ob)
		case tensor.Uint64:
			ewCmpTyped[uint64](c, op, &p, a, b, ob)
		}
		return nil
	})
}

func ewCmpTyped[T Number](c *kernel.Ctx, op ewCmpOp, p *ewPlan, a, b *tensor.Tensor, o []bool) {
	ewRun2(c, p, o, a.Data.([]T), b.Data.([]T), ewCmpRow[T](op))
}

// ewCmpRow returns the row kernel of a comparison (false whenever a NaN
// is involved, except that NaN != NaN makes Equal false too).
func ewCmpRow[T Number](op ewCmpOp) ewRow2[T, T, bool] {
	switch op {
	case ewEq:
		return ewFuncRow(func(x, y T) bool { return x == y })
	case ewGt:
		return ewFuncRow(func(x, y T) bool { return x > y })
	case ewLt:
		return ewFuncRow(func(x, y T) bool { return x < y })
	case ewGe:
		return ewFuncRow(func(x, y T) bool { return x >= y })
	}
	return ewFuncRow(func(x, y T) bool { return x <= y })
}

// ewWhere is Where: output = condition ? X : Y with three-way numpy
// broadcasting. X and Y may have any dtype (they must match); condition
// is bool.
func ewWhere(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	cond, err := need(c, in, 0, "condition")
	if err != nil {
		return err
	}
	x, err := need(c, in, 1, "X")
	if err != nil {
		return err
	}
	y, err := need(c, in, 2, "Y")
	if err != nil {
		return err
	}
	if cond.DType != tensor.Bool {
		return c.Errorf("condition has dtype %v, want bool", cond.DType)
	}
	if err := sameDType(c, x, y); err != nil {
		return err
	}
	p, err := ewBroadcast(c, cond.Shape, x.Shape, y.Shape)
	if err != nil {
		return err
	}
	o, err := c.Output(0, x.DType, ewOutShape(cond.Shape, x.Shape, y.Shape))
	if err != nil {
		return err
	}
	if p.total == 0 {
		return nil
	}
	cd := cond.Bools()
	switch xd := x.Data.(type) {
	case []float32:
		ewWhereTyped(c, &p, o.Data.([]float32), cd, xd, y.Data.([]float32))
	case []float64:
		ewWhereTyped(c, &p, o.Data.([]float64), cd, xd, y.Data.([]float64))
	case []uint16:
		ewWhereTyped(c, &p, o.Data.([]uint16), cd, xd, y.Data.([]uint16))
	case []int8:
		ewWhereTyped(c, &p, o.Data.([]int8), cd, xd, y.Data.([]int8))
	case []uint8:
		ewWhereTyped(c, &p, o.Data.([]uint8), cd, xd, y.Data.([]uint8))
	case []int16:
		ewWhereTyped(c, &p, o.Data.([]int16), cd, xd, y.Data.([]int16))
	case []int32:
		ewWhereTyped(c, &p, o.Data.([]int32), cd, xd, y.Data.([]int32))
	case []uint32:
		ewWhereTyped(c, &p, o.Data.([]uint32), cd, xd, y.Data.([]uint32))
	case []int64:
		ewWhereTyped(c, &p, o.Data.([]int64), cd, xd, y.Data.([]int64))
	case []uint64:
		ewWhereTyped(c, &p, o.Data.([]uint64), cd, xd, y.Data.([]uint64))
	case []bool:
		ewWhereTyped(c, &p, o.Data.([]bool), cd, xd, y.Data.([]bool))
	default:
		return c.Errorf("dtype %v is not supported", x.DType)
	}
	return nil
}

// ewWhereTyped selects between x and y over the broadcast p.
func ewWhereTyped[T any](c *kernel.Ctx, p *ewPlan, o []T, cd []bool, x, y []T) {
	sc, sx, sy := p.inner(0), p.inner(1), p.inner(2)
	ewSplit(c, p.total, func(lo, hi int) {
		p.walk(lo, hi, func(oo, n int, off [3]int) {
			os, cs, xs, ys := o[oo:oo+n], cd[off[0]:], x[off[1]:], y[off[2]:]
			if sc == 1 && sx == 1 && sy == 1 {
				cs, xs, ys = cs[:n], xs[:n], ys[:n]
				for i := range os {
					if cs[i] {
						os[i] = xs[i]
					} else {
						os[i] = ys[i]
					}
				}
				return
			}
			for i := range os {
				if cs[i*sc] {
					os[i] = xs[i*sx]
				} else {
					os[i] = ys[i*sy]
				}
			}
		})
	})
}
