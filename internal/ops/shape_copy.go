package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// buildTranspose: Transpose(data) -> transposed, out.shape[i] =
// data.shape[perm[i]]; perm defaults to reversing the dims.
func buildTranspose(info *kernel.Info) (kernel.Kernel, error) {
	perm, hasPerm := info.Attrs().Ints("perm")
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		r := x.Rank()
		p := make([]int, r)
		if hasPerm {
			if len(perm) != r {
				return c.Errorf("perm %v has %d entries, data has rank %d", perm, len(perm), r)
			}
			ax, err := shapeAxes(c, perm, r)
			if err != nil {
				return c.Errorf("perm %v is not a permutation of rank %d", perm, r)
			}
			copy(p, ax)
		} else {
			for i := range p {
				p[i] = r - 1 - i
			}
		}
		st := x.Shape.Strides()
		v := shapeView{shape: make([]int, r), strides: make([]int, r)}
		for i, a := range p {
			v.shape[i] = x.Shape[a]
			v.strides[i] = st[a]
		}
		m, err := moverFor(c, x)
		if err != nil {
			return err
		}
		o, err := c.Output(0, x.DType, tensor.Shape(v.shape).Clone())
		if err != nil {
			return err
		}
		runView(c, m, o, x, &v)
		return nil
	}), nil
}

// buildConcat: Concat(inputs...) -> inputs joined along axis (negative since
// opset 11). All inputs share dtype, rank and every other dim; empty
// inputs are allowed.
func buildConcat(info *kernel.Info) (kernel.Kernel, error) {
	if !info.Attrs().Has("axis") {
		return nil, info.Errorf("Concat needs the axis attribute")
	}
	axis := info.Attrs().Int("axis", 0)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		if len(in) == 0 {
			return c.Errorf("Concat has no inputs")
		}
		x0, err := need(c, in, 0, "inputs")
		if err != nil {
			return err
		}
		r := x0.Rank()
		if r == 0 {
			return c.Errorf("cannot concatenate scalars")
		}
		a, err := normAxis(c, axis, r)
		if err != nil {
			return err
		}
		shape := x0.Shape.Clone()
		shape[a] = 0
		for i := range in {
			t, err := need(c, in, i, "inputs")
			if err != nil {
				return err
			}
			if t.DType != x0.DType {
				return c.Errorf("input %d has dtype %v, input 0 has %v", i, t.DType, x0.DType)
			}
			if t.Rank() != r {
				return c.Errorf("input %d has shape %v, input 0 has %v: ranks differ", i, t.Shape, x0.Shape)
			}
			for d := range r {
				if d != a && t.Shape[d] != x0.Shape[d] {
					return c.Errorf("input %d has shape %v, input 0 has %v: dim %d differs", i, t.Shape, x0.Shape, d)
				}
			}
			if shape[a] > tensor.MaxElements-t.Shape[a] {
				return c.Errorf("concatenated dim %d too large", a)
			}
			shape[a] += t.Shape[a]
		}
		m, err := moverFor(c, x0)
		if err != nil {
			return err
		}
		o, err := c.Output(0, x0.DType, shape)
		if err != nil {
			return err
		}
		outer := shape[:a].Size()
		rest := shape[a+1:].Size()
		srcs := make([]any, len(in))
		inner := make([]int, len(in))
		for i, t := range in {
			srcs[i] = t.Data
			inner[i] = t.Shape[a] * rest
		}
		if o.Len() > 0 {
			m.concat(o.Data, srcs, inner, outer)
		}
		return nil
	}), nil
}

// buildSplit: Split(input[, split]) -> outputs, consecutive pieces along
// axis. The sizes come from the split attribute (before opset 13), the
// split input (13+), num_outputs (18+: ceil(dim/n) each, the last one
// smaller), or else equal parts, one per output.
func buildSplit(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	axis := a.Int("axis", 0)
	attrSplit, hasAttrSplit := a.Ints("split")
	if info.Opset >= 13 {
		hasAttrSplit = false
	}
	numOut := int64(0)
	if info.Opset >= 18 && a.Has("num_outputs") {
		numOut = a.Int("num_outputs", 0)
		if numOut < 1 || numOut != int64(len(info.Node.Outputs)) {
			return nil, info.Errorf("num_outputs %d, the node has %d outputs", numOut, len(info.Node.Outputs))
		}
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "input")
		if err != nil {
			return err
		}
		ax, err := normAxis(c, axis, x.Rank())
		if err != nil {
			return err
		}
		dim := x.Shape[ax]
		n := len(out)
		if n == 0 {
			return c.Errorf("Split has no outputs")
		}
		var sizes []int64
		switch {
		case hasAttrSplit:
			sizes = attrSplit
		case info.Opset >= 13 && opt(in, 1) != nil && in[1].Len() > 0:
			if numOut > 0 {
				return c.Errorf("both the split input and num_outputs are given")
			}
			if sizes, err = shapeInts(c, in[1], "split"); err != nil {
				return err
			}
		case info.Opset >= 18:
			// num_outputs (equal to the output count): ceil-sized chunks.
			chunk := (dim + n - 1) / n
			last := dim - chunk*(n-1)
			if last < 0 || (last == 0 && dim > 0) {
				return c.Errorf("cannot split dim %d of %v into %d chunks of %d", ax, x.Shape, n, chunk)
			}
			sizes = make([]int64, n)
			for i := range sizes {
				sizes[i] = int64(chunk)
			}
			sizes[n-1] = int64(last)
		default:
			if n == 0 || dim%n != 0 {
				return c.Errorf("cannot split dim %d of %v into %d equal parts", ax, x.Shape, n)
			}
			sizes = make([]int64, n)
			for i := range sizes {
				sizes[i] = int64(dim / n)
			}
		}
		if len(sizes) != n {
			return c.Errorf("split %v has %d entries, the node has %d outputs", sizes, len(sizes), n)
		}
		total := int64(0)
		for _, s := range sizes {
			if s < 0 {
				return c.Errorf("split %v has a negative size", sizes)
			}
		}
		for _, s := range sizes {
			total += s
			if total > int64(dim) {
				break
			}
		}
		if total != int64(dim) {
			return c.Errorf("split %v does not sum to dim %d of %v", sizes, ax, x.Shape)
		}
		m, err := moverFor(c, x)
		if err != nil {
			return err
		}
		st := x.Shape.Strides()
		start := 0
		for i, s := range sizes {
			shape := x.Shape.Clone()
			shape[ax] = int(s)
			o, err := c.Output(i, x.DType, shape)
			if err != nil {
				return err
			}
			v := shapeView{shape: shape.Clone(), strides: append([]int{}, st...), off: start * st[ax]}
			runView(c, m, o, x, &v)
			start += int(s)
		}
		return nil
	}), nil
}

// buildSlice: Slice(data, starts, ends[, axes[, steps]]) (opset 10+; the
// attributes starts, ends, axes before) -> data[starts:ends:steps] along
// axes. Negative starts/ends count from the back; both are clamped to the
// dim (for negative steps start to [0, dim-1] and end to [-1, dim-1]).
func buildSlice(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	attrStarts, hasStarts := a.Ints("starts")
	attrEnds, hasEnds := a.Ints("ends")
	attrAxes, hasAxes := a.Ints("axes")
	useAttrs := info.Opset < 10
	if useAttrs && (!hasStarts || !hasEnds) {
		return nil, info.Errorf("Slice needs the starts and ends attributes at opset %d", info.Opset)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		starts, ends, axes, steps := attrStarts, attrEnds, attrAxes, []int64(nil)
		haveAxes := hasAxes
		if !useAttrs {
			ts, err := need(c, in, 1, "starts")
			if err != nil {
				return err
			}
			te, err := need(c, in, 2, "ends")
			if err != nil {
				return err
			}
			if starts, err = shapeInts(c, ts, "starts"); err != nil {
				return err
			}
			if ends, err = shapeInts(c, te, "ends"); err != nil {
				return err
			}
			haveAxes = false
			if t := opt(in, 3); t != nil {
				if axes, err = shapeInts(c, t, "axes"); err != nil {
					return err
				}
				haveAxes = true
			}
			if t := opt(in, 4); t != nil {
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
		r := x.Rank()
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
		st := x.Shape.Strides()
		v := shapeView{shape: x.Shape.Clone(), strides: append([]int{}, st...)}
		for i, d := range ax {
			step := int64(1)
			if steps != nil {
				step = steps[i]
			}
			if step == 0 {
				return c.Errorf("slice step 0 on axis %d", d)
			}
			begin, n := sliceRange(starts[i], ends[i], step, int64(x.Shape[d]))
			v.shape[d] = int(n)
			if n > 1 {
				// n > 1 implies |step| < dim, so this cannot overflow.
				v.strides[d] = st[d] * int(step)
			}
			if n > 0 {
				v.off += int(begin) * st[d]
			}
		}
		m, err := moverFor(c, x)
		if err != nil {
			return err
		}
		o, err := c.Output(0, x.DType, tensor.Shape(v.shape).Clone())
		if err != nil {
			return err
		}
		runView(c, m, o, x, &v)
		return nil
	}), nil
}

// sliceRange returns the first index and the element count of
// start:end:step over a dim of size n, following ONNX's clamping rules.
// step must not be 0.
func sliceRange(start, end, step, n int64) (begin, count int64) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
		if end <= start {
			return start, 0
		}
		return start, (end-start-1)/step + 1
	}
	start = min(max(start, 0), n-1)
	end = min(max(end, -1), n-1)
	if start <= end {
		return start, 0
	}
	s := int64(math.MaxInt64)
	if step != math.MinInt64 {
		s = -step
	}
	return start, (start-end-1)/s + 1
}

// buildGather: Gather(data, indices) -> out with out[i.., j.., k..] =
// data[i.., indices[j..], k..] along axis; negative indices count from
// the back.
func buildGather(info *kernel.Info) (kernel.Kernel, error) {
	axis := info.Attrs().Int("axis", 0)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		it, err := need(c, in, 1, "indices")
		if err != nil {
			return err
		}
		if it.DType != tensor.Int64 && it.DType != tensor.Int32 {
			return c.Errorf("indices must be int64 or int32, got %v", it.DType)
		}
		a, err := normAxis(c, axis, x.Rank())
		if err != nil {
			return err
		}
		n := x.Shape[a]
		idx := make([]int, it.Len())
		switch d := it.Data.(type) {
		case []int64:
			err = gatherIndices(c, idx, d, n)
		case []int32:
			err = gatherIndices(c, idx, d, n)
		}
		if err != nil {
			return err
		}
		shape := make(tensor.Shape, 0, x.Rank()-1+it.Rank())
		shape = append(shape, x.Shape[:a]...)
		shape = append(shape, it.Shape...)
		shape = append(shape, x.Shape[a+1:]...)
		m, err := moverFor(c, x)
		if err != nil {
			return err
		}
		o, err := c.Output(0, x.DType, shape)
		if err != nil {
			return err
		}
		if o.Len() > 0 {
			m.gather(o.Data, x.Data, idx, x.Shape[:a].Size(), n, x.Shape[a+1:].Size())
		}
		return nil
	}), nil
}

// gatherIndices normalizes indices into [0, n) or reports the first one
// out of range.
func gatherIndices[I int32 | int64](c *kernel.Ctx, dst []int, src []I, n int) error {
	for i, v := range src {
		j := int64(v)
		if j < 0 {
			j += int64(n)
		}
		if j < 0 || j >= int64(n) {
			return c.Errorf("index %d out of range for axis size %d", v, n)
		}
		dst[i] = int(j)
	}
	return nil
}

// buildExpand: Expand(input, shape) -> input broadcast with shape
// (bidirectionally: a 1 in shape keeps the input's dim).
func buildExpand(info *kernel.Info) (kernel.Kernel, error) {
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "input")
		if err != nil {
			return err
		}
		st, err := need(c, in, 1, "shape")
		if err != nil {
			return err
		}
		dims, err := shapeInts(c, st, "shape")
		if err != nil {
			return err
		}
		want, err := shapeDims(c, "shape", dims)
		if err != nil {
			return err
		}
		shape, err := BroadcastShapes(x.Shape, want)
		if err != nil {
			return c.Errorf("cannot expand %v to %v", x.Shape, dims)
		}
		m, err := moverFor(c, x)
		if err != nil {
			return err
		}
		o, err := c.Output(0, x.DType, shape)
		if err != nil {
			return err
		}
		v := shapeView{shape: shape.Clone(), strides: bstrides(x.Shape, shape)}
		runView(c, m, o, x, &v)
		return nil
	}), nil
}
