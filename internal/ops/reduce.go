package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// Reductions: ReduceSum, ReduceMean, ReduceMax and ArgMax.
//
// Version history the kernels follow (ai.onnx):
//   - ReduceSum: 1, 11 (negative axes), 13 (axes is an optional input,
//     noop_with_empty_axes).
//   - ReduceMean: 1, 11, 13 (bfloat16), 18 (axes input, noop_with_empty_axes).
//   - ReduceMax: 1, 11, 12 (int8/uint8), 13, 18 (axes input,
//     noop_with_empty_axes), 20 (bool).
//   - ArgMax: 1, 11 (negative axis), 12 (select_last_index), 13.
//
// Empty axes reduce over every axis unless noop_with_empty_axes=1, which
// makes the op an identity. Reducing an empty set gives 0 for ReduceSum,
// NaN for a float ReduceMean (0 for integers), and -Inf (or the dtype's
// minimum, false for bool) for ReduceMax. Float32 and float16 sums
// accumulate in float64; integer sums in int64 (uint64 for unsigned 32/64
// bit), wrapping like the narrower dtype on the final store. ReduceMax
// propagates NaN. The kernels accept every numeric dtype goslim stores
// (a superset of each op's ONNX type list).

func registerReduce(t *kernel.Table) {
	add(t, "ReduceSum", reduceBuilder(reduceSum))
	add(t, "ReduceMean", reduceBuilder(reduceMean))
	add(t, "ReduceMax", reduceBuilder(reduceMax))
	add(t, "ArgMax", argMaxBuild)
}

type reduceKind int

const (
	reduceSum reduceKind = iota
	reduceMean
	reduceMax
)

// reduceKernel is a ReduceSum/ReduceMean/ReduceMax node.
type reduceKernel struct {
	kind      reduceKind
	keep      bool
	noop      bool
	axesInput bool    // axes come from input 1 (ReduceSum 13+, others 18+)
	attrAxes  []int64 // axes attribute (older opsets)
}

func reduceBuilder(kind reduceKind) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		a := info.Attrs()
		k := &reduceKernel{
			kind: kind,
			keep: a.Int("keepdims", 1) != 0,
			noop: a.Int("noop_with_empty_axes", 0) != 0,
		}
		inputSince := int64(18)
		if kind == reduceSum {
			inputSince = 13
		}
		k.axesInput = info.Opset >= inputSince
		axes, has := a.Ints("axes")
		if k.axesInput {
			if has {
				return nil, info.Errorf("the axes attribute was replaced by the axes input at opset %d (model opset %d)", inputSince, info.Opset)
			}
		} else {
			k.attrAxes = axes
			if len(info.Node.Inputs) > 1 && info.Node.Inputs[1] >= 0 {
				return nil, info.Errorf("axes is an input only since opset %d (model opset %d); use the axes attribute", inputSince, info.Opset)
			}
		}
		return k, nil
	}
}

// reduceSeg is one run of merged dims that are all reduced or all kept.
type reduceSeg struct {
	n, stride int
	red       bool
}

// reduceLayout describes a reduction over merged segments. The last
// segment is the contiguous inner run; odometers walk the others.
type reduceLayout struct {
	kept, red   []reduceSeg // outer segments (excluding the inner one)
	inner       int         // length of the inner contiguous run
	innerRed    bool        // inner run is reduced (else kept)
	count       int         // number of elements reduced into each output
	outN        int         // number of outputs
	keptN, redN int         // iterations of the kept / reduced odometers
}

// reduceAxesSet normalizes axes for rank into a reduced-dims mask.
func reduceAxesSet(c *kernel.Ctx, axes []int64, rank int) ([]bool, error) {
	mask := make([]bool, rank)
	for _, a := range axes {
		ax, err := normAxis(c, a, rank)
		if err != nil {
			return nil, err
		}
		if mask[ax] {
			return nil, c.Errorf("axis %d repeated in axes %v", a, axes)
		}
		mask[ax] = true
	}
	return mask, nil
}

// reduceMakeLayout merges dims and splits the outer ones into kept and
// reduced odometers.
func reduceMakeLayout(shape tensor.Shape, mask []bool) *reduceLayout {
	l := &reduceLayout{count: 1, outN: 1}
	var segs []reduceSeg
	for d, n := range shape {
		if mask[d] {
			l.count *= n
		} else {
			l.outN *= n
		}
		if n == 1 {
			continue
		}
		if len(segs) > 0 && segs[len(segs)-1].red == mask[d] {
			segs[len(segs)-1].n *= n
		} else {
			segs = append(segs, reduceSeg{n: n, red: mask[d]})
		}
	}
	acc := 1
	for i := len(segs) - 1; i >= 0; i-- {
		segs[i].stride = acc
		acc *= segs[i].n
	}
	l.inner, l.innerRed = 1, true
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		l.inner, l.innerRed = last.n, last.red
		segs = segs[:len(segs)-1]
	}
	l.keptN, l.redN = 1, 1
	for _, s := range segs {
		if s.red {
			l.red = append(l.red, s)
			l.redN *= s.n
		} else {
			l.kept = append(l.kept, s)
			l.keptN *= s.n
		}
	}
	return l
}

// reduceOdo walks the offsets of a set of segments in row-major order.
type reduceOdo struct {
	segs []reduceSeg
	idx  []int
	off  int
}

func newReduceOdo(segs []reduceSeg) *reduceOdo {
	return &reduceOdo{segs: segs, idx: make([]int, len(segs))}
}

// seek positions the odometer at its k-th combination.
func (o *reduceOdo) seek(k int) {
	o.off = 0
	for i := len(o.segs) - 1; i >= 0; i-- {
		s := o.segs[i]
		if s.n == 0 {
			o.idx[i] = 0
			continue
		}
		o.idx[i] = k % s.n
		k /= s.n
		o.off += o.idx[i] * s.stride
	}
}

// next advances to the following combination (wrapping to the first).
func (o *reduceOdo) next() {
	for i := len(o.segs) - 1; i >= 0; i-- {
		s := o.segs[i]
		o.idx[i]++
		o.off += s.stride
		if o.idx[i] < s.n {
			return
		}
		o.off -= s.n * s.stride
		o.idx[i] = 0
	}
}

func (k *reduceKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "data")
	if err != nil {
		return err
	}
	var axes []int64
	if k.axesInput {
		if a := opt(in, 1); a != nil && a.Len() > 0 {
			if axes, err = a.Int64s(); err != nil {
				return c.Errorf("axes: %v", err)
			}
		}
	} else {
		axes = k.attrAxes
	}
	rank := x.Rank()
	if len(axes) == 0 {
		if k.noop {
			_, err := c.Alias(0, 0, x, x.Shape)
			return err
		}
		axes = make([]int64, rank)
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	mask, err := reduceAxesSet(c, axes, rank)
	if err != nil {
		return err
	}
	var oshape tensor.Shape
	for d, n := range x.Shape {
		switch {
		case !mask[d]:
			oshape = append(oshape, n)
		case k.keep:
			oshape = append(oshape, 1)
		}
	}
	if oshape == nil {
		oshape = tensor.Shape{}
	}
	o, err := c.Output(0, x.DType, oshape)
	if err != nil {
		return err
	}
	l := reduceMakeLayout(x.Shape, mask)
	if l.outN == 0 {
		return nil
	}
	mean := k.kind == reduceMean
	switch xs := x.Data.(type) {
	case []float32:
		return k.runFloat32(c, l, xs, o.F32())
	case []float64:
		if k.kind == reduceMax {
			reduceMaxRun(c, l, xs, o.F64())
		} else {
			reduceSumRun[float64, float64](c, l, xs, o.F64(), mean)
		}
	case []uint16:
		if x.DType == tensor.Uint16 {
			return reduceInts(c, k.kind, l, xs, o.Data.([]uint16))
		}
		if x.DType != tensor.Float16 && x.DType != tensor.BFloat16 {
			return c.Errorf("%s does not support %v", c.Node.Op, x.DType)
		}
		xf := make([]float32, len(xs))
		reduceLowToF32(x.DType, xs, xf)
		of := make([]float32, l.outN)
		if err := k.runFloat32(c, l, xf, of); err != nil {
			return err
		}
		reduceF32ToLow(x.DType, of, o.Data.([]uint16))
	case []int8:
		return reduceInts(c, k.kind, l, xs, o.Data.([]int8))
	case []uint8:
		return reduceInts(c, k.kind, l, xs, o.Data.([]uint8))
	case []int16:
		return reduceInts(c, k.kind, l, xs, o.Data.([]int16))
	case []int32:
		return reduceInts(c, k.kind, l, xs, o.Data.([]int32))
	case []int64:
		return reduceInts(c, k.kind, l, xs, o.Data.([]int64))
	case []uint32:
		if k.kind == reduceMax {
			reduceMaxRun(c, l, xs, o.Data.([]uint32))
		} else {
			reduceSumRun[uint32, uint64](c, l, xs, o.Data.([]uint32), mean)
		}
	case []uint64:
		if k.kind == reduceMax {
			reduceMaxRun(c, l, xs, o.Data.([]uint64))
		} else {
			reduceSumRun[uint64, uint64](c, l, xs, o.Data.([]uint64), mean)
		}
	case []bool:
		if k.kind != reduceMax {
			return c.Errorf("%s does not support bool", c.Node.Op)
		}
		reduceAnyRun(c, l, xs, o.Bools())
	default:
		return c.Errorf("%s does not support %v", c.Node.Op, x.DType)
	}
	return nil
}

func (k *reduceKernel) runFloat32(c *kernel.Ctx, l *reduceLayout, xs, os []float32) error {
	if k.kind == reduceMax {
		reduceMaxRun(c, l, xs, os)
	} else {
		reduceSumRun[float32, float64](c, l, xs, os, k.kind == reduceMean)
	}
	return nil
}

// reduceInts runs a reduction over a signed-or-small integer dtype,
// accumulating sums in int64.
func reduceInts[T int8 | uint8 | int16 | uint16 | int32 | int64](c *kernel.Ctx, kind reduceKind, l *reduceLayout, xs, os []T) error {
	if kind == reduceMax {
		reduceMaxRun(c, l, xs, os)
	} else {
		reduceSumRun[T, int64](c, l, xs, os, kind == reduceMean)
	}
	return nil
}

// reduceAcc is the set of accumulator types of sums.
type reduceAcc interface{ ~int64 | ~uint64 | ~float64 }

// reduceParallelMin is the input size below which reductions stay on one
// goroutine.
const reduceParallelMin = 1 << 15

// reduceSplit runs fn over [0, n) output units, in parallel when the
// whole reduction is large enough to pay for goroutines.
func reduceSplit(c *kernel.Ctx, l *reduceLayout, n int, fn func(lo, hi int)) {
	if l.outN*l.count < reduceParallelMin {
		fn(0, n)
		return
	}
	c.Parallel(n, fn)
}

// reduceSumRun computes sums (or means) of xs into os with accumulator A.
func reduceSumRun[T Number, A reduceAcc](c *kernel.Ctx, l *reduceLayout, xs, os []T, mean bool) {
	half := 0.5
	isFloat := A(half) != 0 // float accumulator (0.5 truncates to 0 for integers)
	fin := func(s A) T {
		if mean {
			if l.count == 0 {
				if isFloat {
					return T(math.NaN())
				}
				return 0
			}
			s /= A(l.count)
		}
		return T(s)
	}
	if l.innerRed {
		// Each output sums redN contiguous runs of length inner.
		reduceSplit(c, l, l.outN, func(lo, hi int) {
			ko, ro := newReduceOdo(l.kept), newReduceOdo(l.red)
			ko.seek(lo)
			for oi := lo; oi < hi; oi++ {
				var s A
				ro.seek(0)
				for r := 0; r < l.redN; r++ {
					base := ko.off + ro.off
					s += reduceRunSum[T, A](xs[base : base+l.inner])
					ro.next()
				}
				os[oi] = fin(s)
				ko.next()
			}
		})
		return
	}
	// The inner run is kept: each output row of length inner accumulates
	// redN input rows.
	reduceSplit(c, l, l.keptN, func(lo, hi int) {
		acc := make([]A, l.inner)
		ko, ro := newReduceOdo(l.kept), newReduceOdo(l.red)
		ko.seek(lo)
		for row := lo; row < hi; row++ {
			clear(acc)
			ro.seek(0)
			for r := 0; r < l.redN; r++ {
				base := ko.off + ro.off
				src := xs[base : base+l.inner]
				for j, v := range src {
					acc[j] += A(v)
				}
				ro.next()
			}
			dst := os[row*l.inner : (row+1)*l.inner]
			for j, s := range acc {
				dst[j] = fin(s)
			}
			ko.next()
		}
	})
}

// reduceRunSum sums a contiguous run with four accumulators.
func reduceRunSum[T Number, A reduceAcc](x []T) A {
	var s0, s1, s2, s3 A
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += A(x[i])
		s1 += A(x[i+1])
		s2 += A(x[i+2])
		s3 += A(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += A(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// reduceLowest returns the identity of max for T: -Inf for floats, the
// minimum value for integers.
func reduceLowest[T Number]() T {
	var z T
	var v int64
	switch any(z).(type) {
	case float32, float64:
		inf := math.Inf(-1)
		return T(inf)
	case int8:
		v = math.MinInt8
	case int16:
		v = math.MinInt16
	case int32:
		v = math.MinInt32
	case int64:
		v = math.MinInt64
	}
	return T(v) // 0 for unsigned
}

// reduceMaxRun computes maxima of xs into os; NaN propagates.
func reduceMaxRun[T Number](c *kernel.Ctx, l *reduceLayout, xs, os []T) {
	lowest := reduceLowest[T]()
	if l.innerRed {
		reduceSplit(c, l, l.outN, func(lo, hi int) {
			ko, ro := newReduceOdo(l.kept), newReduceOdo(l.red)
			ko.seek(lo)
			for oi := lo; oi < hi; oi++ {
				m := lowest
				ro.seek(0)
				for r := 0; r < l.redN; r++ {
					base := ko.off + ro.off
					for _, v := range xs[base : base+l.inner] {
						if v > m || v != v {
							m = v
						}
					}
					ro.next()
				}
				os[oi] = m
				ko.next()
			}
		})
		return
	}
	reduceSplit(c, l, l.keptN, func(lo, hi int) {
		ko, ro := newReduceOdo(l.kept), newReduceOdo(l.red)
		ko.seek(lo)
		for row := lo; row < hi; row++ {
			dst := os[row*l.inner : (row+1)*l.inner]
			for j := range dst {
				dst[j] = lowest
			}
			ro.seek(0)
			for r := 0; r < l.redN; r++ {
				base := ko.off + ro.off
				src := xs[base : base+l.inner]
				for j, v := range src {
					if m := dst[j]; v > m || v != v {
						dst[j] = v
					}
				}
				ro.next()
			}
			ko.next()
		}
	})
}

// reduceAnyRun is ReduceMax over bool (logical or; false when empty).
func reduceAnyRun(c *kernel.Ctx, l *reduceLayout, xs, os []bool) {
	reduceSplit(c, l, l.keptN, func(lo, hi int) {
		ko, ro := newReduceOdo(l.kept), newReduceOdo(l.red)
		ko.seek(lo)
		for kr := lo; kr < hi; kr++ {
			if l.innerRed {
				m := false
				ro.seek(0)
				for r := 0; r < l.redN && !m; r++ {
					base := ko.off + ro.off
					for _, v := range xs[base : base+l.inner] {
						m = m || v
					}
					ro.next()
				}
				os[kr] = m
			} else {
				dst := os[kr*l.inner : (kr+1)*l.inner]
				clear(dst)
				ro.seek(0)
				for r := 0; r < l.redN; r++ {
					base := ko.off + ro.off
					for j, v := range xs[base : base+l.inner] {
						dst[j] = dst[j] || v
					}
					ro.next()
				}
			}
			ko.next()
		}
	})
}

// reduceLowToF32 widens float16 or bfloat16 bits into dst.
func reduceLowToF32(dt tensor.DType, src []uint16, dst []float32) {
	if dt == tensor.BFloat16 {
		for i, v := range src {
			dst[i] = math.Float32frombits(uint32(v) << 16)
		}
		return
	}
	for i, v := range src {
		dst[i] = tensor.HalfToFloat32(v)
	}
}

// reduceF32ToLow narrows float32 values to float16 or bfloat16 bits (round
// half to even; NaN stays NaN).
func reduceF32ToLow(dt tensor.DType, src []float32, dst []uint16) {
	if dt == tensor.BFloat16 {
		for i, v := range src {
			dst[i] = reduceF32ToBF16(v)
		}
		return
	}
	for i, v := range src {
		dst[i] = tensor.Float32ToHalf(v)
	}
}

// reduceF32ToBF16 rounds a float32 to bfloat16 bits, half to even.
func reduceF32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// argMaxKernel is an ArgMax node.
type argMaxKernel struct {
	axis int64
	keep bool
	last bool
}

func argMaxBuild(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &argMaxKernel{
		axis: a.Int("axis", 0),
		keep: a.Int("keepdims", 1) != 0,
		last: a.Int("select_last_index", 0) != 0,
	}
	if k.last && info.Opset < 12 {
		return nil, info.Errorf("select_last_index needs opset 12 (model opset %d)", info.Opset)
	}
	return k, nil
}

func (k *argMaxKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "data")
	if err != nil {
		return err
	}
	rank := x.Rank()
	if rank == 0 {
		return c.Errorf("ArgMax needs an input of rank >= 1")
	}
	ax, err := normAxis(c, k.axis, rank)
	if err != nil {
		return err
	}
	n := x.Shape[ax]
	var oshape tensor.Shape
	outer, inner := 1, 1
	for d, s := range x.Shape {
		switch {
		case d < ax:
			outer *= s
		case d > ax:
			inner *= s
		}
		if d != ax {
			oshape = append(oshape, s)
		} else if k.keep {
			oshape = append(oshape, 1)
		}
	}
	if oshape == nil {
		oshape = tensor.Shape{}
	}
	if n == 0 && outer*inner > 0 {
		return c.Errorf("ArgMax over an empty axis %d of shape %v", ax, x.Shape)
	}
	o, err := c.Output(0, tensor.Int64, oshape)
	if err != nil {
		return err
	}
	dst := o.I64()
	switch xs := x.Data.(type) {
	case []float32:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []float64:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []int8:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []uint8:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []int16:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []int32:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []int64:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []uint32:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []uint64:
		argMaxRun(xs, dst, outer, n, inner, k.last)
	case []uint16:
		if x.DType == tensor.Uint16 {
			argMaxRun(xs, dst, outer, n, inner, k.last)
			break
		}
		if x.DType != tensor.Float16 && x.DType != tensor.BFloat16 {
			return c.Errorf("ArgMax does not support %v", x.DType)
		}
		xf := make([]float32, len(xs))
		reduceLowToF32(x.DType, xs, xf)
		argMaxRun(xf, dst, outer, n, inner, k.last)
	default:
		return c.Errorf("ArgMax does not support %v", x.DType)
	}
	return nil
}

// argMaxRun writes, for each (outer, inner) position, the index along the
// middle axis of length n of the largest value. NaN counts as largest
// (numpy's rule); ties go to the first index, or the last when last is set.
func argMaxRun[T Number](xs []T, dst []int64, outer, n, inner int, last bool) {
	best := make([]T, inner)
	for o := 0; o < outer; o++ {
		base := o * n * inner
		idx := dst[o*inner : (o+1)*inner]
		copy(best, xs[base:base+inner])
		clear(idx)
		for i := 1; i < n; i++ {
			row := xs[base+i*inner : base+(i+1)*inner]
			for j, v := range row {
				b := best[j]
				var take bool
				if last {
					take = (v >= b && b == b) || v != v
				} else {
					take = v > b || (v != v && b == b)
				}
				if take {
					best[j] = v
					idx[j] = int64(i)
				}
			}
		}
	}
}
