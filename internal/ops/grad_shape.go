package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerGradShape registers the gradients of data-movement ops.
func registerGradShape(t *kernel.Table) {
	gradAdd(t, "ConcatGrad", gradBuildConcatGrad)
	gradAdd(t, "SliceGrad", gradBuildSliceGrad)
}

// gradBuildConcatGrad builds goslim.ConcatGrad(dY, shape_1, ..., shape_k)
// with the forward Concat's axis: output i is the slab of dY along axis
// that input i filled (outputs may be omitted).
func gradBuildConcatGrad(info *kernel.Info) (kernel.Kernel, error) {
	axis := info.Attrs().Int("axis", 0)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		dy, err := need(c, in, 0, "dY")
		if err != nil {
			return err
		}
		if err := gradFloats(c, dy); err != nil {
			return err
		}
		r := dy.Rank()
		ax, err := normAxis(c, axis, r)
		if err != nil {
			return err
		}
		k := len(in) - 1
		if len(out) != k {
			return c.Errorf("ConcatGrad has %d shapes but %d outputs", k, len(out))
		}
		shapes := make([]tensor.Shape, k)
		total := 0
		for i := range shapes {
			if shapes[i], err = gradShapeArg(c, in[i+1], "shape"); err != nil {
				return err
			}
			s := shapes[i]
			if len(s) != r {
				return c.Errorf("shape %v of input %d, want rank %d", s, i, r)
			}
			for d := range s {
				if d != ax && s[d] != dy.Shape[d] {
					return c.Errorf("shape %v of input %d does not match dY shape %v", s, i, dy.Shape)
				}
			}
			total += s[ax]
		}
		if total != dy.Shape[ax] {
			return c.Errorf("input shapes sum to %d along axis %d, dY has %d", total, ax, dy.Shape[ax])
		}
		outer, inner := dy.Shape[:ax].Size(), dy.Shape[ax+1:].Size()
		off := 0
		for i, s := range shapes {
			w := s[ax] * inner
			if nnWants(c, out, i) {
				o, err := c.Output(i, dy.DType, s.Clone())
				if err != nil {
					return err
				}
				switch dy.DType {
				case tensor.Float32:
					gradSlab(dy.F32(), o.F32(), outer, total*inner, off, w)
				case tensor.Float64:
					gradSlab(dy.F64(), o.F64(), outer, total*inner, off, w)
				}
			}
			off += w
		}
		return nil
	}), nil
}

// gradSlab copies, for each of outer rows of src (row length rowLen), the
// w elements at off into dst.
func gradSlab[T any](src, dst []T, outer, rowLen, off, w int) {
	for o := 0; o < outer; o++ {
		copy(dst[o*w:(o+1)*w], src[o*rowLen+off:o*rowLen+off+w])
	}
}

// gradBuildSliceGrad builds goslim.SliceGrad(dY, x_shape[, starts, ends[,
// axes[, steps]]]): dX of shape x_shape is zero except at the elements
// the forward Slice read, which receive dY. Without the starts input the
// forward node's attributes starts, ends and axes are used (opset < 10).
func gradBuildSliceGrad(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	attrStarts, _ := a.Ints("starts")
	attrEnds, _ := a.Ints("ends")
	attrAxes, hasAxes := a.Ints("axes")
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		dy, xs, err := gradShapedIn(c, in, "dY", "x_shape")
		if err != nil {
			return err
		}
		starts, ends, axes, steps := attrStarts, attrEnds, attrAxes, []int64(nil)
		haveAxes := hasAxes
		if t := opt(in, 2); t != nil {
			if starts, err = shapeInts(c, t, "starts"); err != nil {
				return err
			}
			te, err := need(c, in, 3, "ends")
			if err != nil {
				return err
			}
			if ends, err = shapeInts(c, te, "ends"); err != nil {
				return err
			}
			haveAxes = false
			if t := opt(in, 4); t != nil {
				if axes, err = shapeInts(c, t, "axes"); err != nil {
					return err
				}
				haveAxes = true
			}
			if t := opt(in, 5); t != nil {
				if steps, err = shapeInts(c, t, "steps"); err != nil {
					return err
				}
				if len(steps) != len(starts) {
					return c.Errorf("steps has %d entries, starts %d", len(steps), len(starts))
				}
			}
		}
		if len(ends) != len(starts) {
			return c.Errorf("starts has %d entries, ends %d", len(starts), len(ends))
		}
		r := len(xs)
		var ax []int
		if haveAxes {
			if len(axes) != len(starts) {
				return c.Errorf("axes has %d entries, starts %d", len(axes), len(starts))
			}
			if ax, err = shapeAxes(c, axes, r); err != nil {
				return err
			}
		} else {
			if len(starts) > r {
				return c.Errorf("%d starts for rank %d", len(starts), r)
			}
			ax = make([]int, len(starts))
			for i := range ax {
				ax[i] = i
			}
		}
		st := xs.Strides()
		shape := xs.Clone()
		strides := append([]int{}, st...)
		off := 0
		for i, d := range ax {
			step := int64(1)
			if steps != nil {
				step = steps[i]
			}
			if step == 0 {
				return c.Errorf("slice step 0 on axis %d", d)
			}
			begin, n := sliceRange(starts[i], ends[i], step, int64(xs[d]))
			shape[d] = int(n)
			strides[d] = st[d] * int(step)
			if n > 0 {
				off += int(begin) * st[d]
			}
		}
		if !dy.Shape.Equal(shape) {
			return c.Errorf("dY shape %v, want the slice shape %v", dy.Shape, shape)
		}
		dx, err := c.Output(0, dy.DType, xs.Clone())
		if err != nil {
			return err
		}
		switch dy.DType {
		case tensor.Float32:
			gradScatterView(dy.F32(), dx.F32(), shape, strides, off)
		case tensor.Float64:
			gradScatterView(dy.F64(), dx.F64(), shape, strides, off)
		}
		return nil
	}), nil
}

// gradScatterView zeroes dst and writes src (row-major over shape) to the
// strided view of dst at offset off.
func gradScatterView[T Float](src, dst []T, shape tensor.Shape, strides []int, off int) {
	clear(dst)
	n := shape.Size()
	if n == 0 {
		return
	}
	r := len(shape)
	if r == 0 {
		dst[off] = src[0]
		return
	}
	inner, is := shape[r-1], strides[r-1]
	idx := make([]int, r)
	o := off
	for i := 0; i < n; i += inner {
		row := src[i : i+inner]
		for j, v := range row {
			dst[o+j*is] = v
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			o += strides[d]
			if idx[d] < shape[d] {
				break
			}
			o -= strides[d] * shape[d]
			idx[d] = 0
		}
	}
}
