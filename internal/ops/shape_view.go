package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// buildReshape: Reshape(data, shape) -> reshaped, a zero-copy view. A 0 in
// shape copies the input dim (or means an empty dim when allowzero=1,
// opset 14+); one -1 is inferred from the element count.
func buildReshape(info *kernel.Info) (kernel.Kernel, error) {
	allowZero := info.Opset >= 14 && info.Attrs().Int("allowzero", 0) != 0
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
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
		shape, err := reshapeTarget(c, x.Shape, dims, allowZero)
		if err != nil {
			return err
		}
		_, err = c.Alias(0, 0, x, shape)
		return err
	}), nil
}

// reshapeTarget resolves Reshape's requested dims against the input shape.
func reshapeTarget(c *kernel.Ctx, in tensor.Shape, dims []int64, allowZero bool) (tensor.Shape, error) {
	out := make(tensor.Shape, len(dims))
	infer := -1
	known := 1
	hasZero := false
	for i, d := range dims {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, c.Errorf("reshape to %v: more than one -1", dims)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, c.Errorf("reshape %v to %v: dim %d is 0 (copy) but the input has rank %d", in, dims, i, len(in))
			}
			out[i] = in[i]
		case d < 0 || d > tensor.MaxElements:
			return nil, c.Errorf("reshape to %v: invalid dim %d", dims, d)
		default:
			out[i] = int(d)
		}
		if out[i] == 0 {
			hasZero = true
		} else if known > tensor.MaxElements/out[i] {
			return nil, c.Errorf("reshape to %v: too many elements", dims)
		}
		known *= out[i]
	}
	n := in.Size()
	if infer >= 0 {
		if allowZero && hasZero {
			return nil, c.Errorf("reshape to %v: -1 together with 0 when allowzero=1", dims)
		}
		if known == 0 {
			if n != 0 {
				return nil, c.Errorf("cannot reshape %v to %v", in, dims)
			}
			// An empty input with a 0 among the other dims: the -1 is taken as 0.
			out[infer] = 0
		} else {
			if n%known != 0 {
				return nil, c.Errorf("cannot reshape %v (%d elements) to %v", in, n, dims)
			}
			out[infer] = n / known
		}
	} else if known != n {
		return nil, c.Errorf("cannot reshape %v (%d elements) to %v", in, n, dims)
	}
	return out, nil
}

// buildFlatten: Flatten(input) -> 2-D view (prod(dims[:axis]), prod(dims[axis:])).
// axis is in [-rank, rank] (negative since opset 11), default 1.
func buildFlatten(info *kernel.Info) (kernel.Kernel, error) {
	axis := info.Attrs().Int("axis", 1)
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "input")
		if err != nil {
			return err
		}
		r := int64(x.Rank())
		a := axis
		if a < 0 {
			a += r
		}
		if a < 0 || a > r {
			return c.Errorf("axis %d out of range for rank %d", axis, r)
		}
		outer := x.Shape[:a].Size()
		inner := x.Shape[a:].Size()
		_, err = c.Alias(0, 0, x, tensor.Shape{outer, inner})
		return err
	}), nil
}

// buildSqueeze: Squeeze(data[, axes]) -> view without the given size-1
// dims (all size-1 dims when axes is absent). axes is an attribute before
// opset 13 and an optional input from 13.
func buildSqueeze(info *kernel.Info) (kernel.Kernel, error) {
	attrAxes, hasAttr := info.Attrs().Ints("axes")
	axesInput := info.Opset >= 13
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		axes, has := attrAxes, hasAttr && !axesInput
		if axesInput {
			if t := opt(in, 1); t != nil {
				if axes, err = shapeInts(c, t, "axes"); err != nil {
					return err
				}
				has = true
			}
		}
		drop := make([]bool, x.Rank())
		if has {
			ax, err := shapeAxes(c, axes, x.Rank())
			if err != nil {
				return err
			}
			for _, a := range ax {
				if x.Shape[a] != 1 {
					return c.Errorf("cannot squeeze axis %d of shape %v: size is not 1", a, x.Shape)
				}
				drop[a] = true
			}
		} else {
			for a, d := range x.Shape {
				drop[a] = d == 1
			}
		}
		shape := make(tensor.Shape, 0, x.Rank())
		for a, d := range x.Shape {
			if !drop[a] {
				shape = append(shape, d)
			}
		}
		_, err = c.Alias(0, 0, x, shape)
		return err
	}), nil
}

// buildUnsqueeze: Unsqueeze(data[, axes]) -> view with size-1 dims inserted
// at axes (indices of the output). axes is an attribute before opset 13 and
// a required input from 13.
func buildUnsqueeze(info *kernel.Info) (kernel.Kernel, error) {
	attrAxes, hasAttr := info.Attrs().Ints("axes")
	axesInput := info.Opset >= 13
	if !axesInput && !hasAttr {
		return nil, info.Errorf("Unsqueeze needs the axes attribute at opset %d", info.Opset)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		axes := attrAxes
		if axesInput {
			t, err := need(c, in, 1, "axes")
			if err != nil {
				return err
			}
			if axes, err = shapeInts(c, t, "axes"); err != nil {
				return err
			}
		}
		r := x.Rank() + len(axes)
		ax, err := shapeAxes(c, axes, r)
		if err != nil {
			return err
		}
		shape := make(tensor.Shape, r)
		for _, a := range ax {
			shape[a] = -1
		}
		j := 0
		for a := range shape {
			if shape[a] == -1 {
				shape[a] = 1
				continue
			}
			shape[a] = x.Shape[j]
			j++
		}
		_, err = c.Alias(0, 0, x, shape)
		return err
	}), nil
}

// buildShapeOp: Shape(data) -> int64 1-D tensor of data's dims, restricted
// to [start, end) since opset 15 (negative counts from the back, clamped).
func buildShapeOp(info *kernel.Info) (kernel.Kernel, error) {
	start := info.Attrs().Int("start", 0)
	end, hasEnd := int64(0), false
	if at, ok := info.Attrs().Get("end"); ok && at.Type == ir.AttrInt {
		end, hasEnd = at.Int, true
	}
	if info.Opset < 15 {
		start, hasEnd = 0, false
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		r := int64(x.Rank())
		clampDim := func(v int64) int64 {
			if v < 0 {
				v += r
			}
			return min(max(v, 0), r)
		}
		s, e := clampDim(start), r
		if hasEnd {
			e = clampDim(end)
		}
		n := max(e-s, 0)
		o, err := c.Output(0, tensor.Int64, tensor.Shape{int(n)})
		if err != nil {
			return err
		}
		d := o.I64()
		for i := range d {
			d[i] = int64(x.Shape[s+int64(i)])
		}
		return nil
	}), nil
}

// buildConstant: Constant() -> the tensor in the value attribute, or (opset
// 12+) a float32/int64 scalar or 1-D tensor from value_float(s) or
// value_int(s). String and sparse values are not supported.
func buildConstant(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	var t *tensor.Tensor
	for _, at := range a {
		if t != nil {
			return nil, info.Errorf("Constant has more than one value attribute (%q)", at.Name)
		}
		switch at.Name {
		case "value":
			if at.Type != ir.AttrTensor || at.Tensor == nil {
				return nil, info.Errorf("Constant attribute value is not a tensor")
			}
			t = at.Tensor
		case "value_float":
			t = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{}, Data: []float32{at.Float}}
		case "value_floats":
			t = tensor.FromFloat32(tensor.Shape{len(at.Floats)}, append([]float32{}, at.Floats...))
		case "value_int":
			t = tensor.FromInt64(tensor.Shape{}, []int64{at.Int})
		case "value_ints":
			t = tensor.FromInt64(tensor.Shape{len(at.Ints)}, append([]int64{}, at.Ints...))
		case "value_string", "value_strings":
			return nil, info.Errorf("Constant attribute %s: string tensors are not supported", at.Name)
		case "sparse_value":
			return nil, info.Errorf("Constant attribute sparse_value: sparse tensors are not supported")
		default:
			return nil, info.Errorf("Constant has unknown attribute %q", at.Name)
		}
	}
	if t == nil {
		return nil, info.Errorf("Constant has no value attribute")
	}
	if err := t.Check(); err != nil {
		return nil, info.Errorf("Constant value: %v", err)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		m, err := moverFor(c, t)
		if err != nil {
			return err
		}
		o, err := c.Output(0, t.DType, t.Shape)
		if err != nil {
			return err
		}
		v := shapeView{shape: t.Shape.Clone(), strides: t.Shape.Strides()}
		runView(c, m, o, t, &v)
		return nil
	}), nil
}

// buildConstantOfShape: ConstantOfShape(shape) -> tensor of that shape
// filled with the one-element value attribute (default float32 0).
func buildConstantOfShape(info *kernel.Info) (kernel.Kernel, error) {
	val := info.Attrs().Tensor("value")
	if val == nil {
		if info.Attrs().Has("value") {
			return nil, info.Errorf("ConstantOfShape attribute value is not a tensor")
		}
		val = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{1}, Data: []float32{0}}
	}
	if err := val.Check(); err != nil {
		return nil, info.Errorf("ConstantOfShape value: %v", err)
	}
	if val.Len() != 1 {
		return nil, info.Errorf("ConstantOfShape value must have one element, has shape %v", val.Shape)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		st, err := need(c, in, 0, "input")
		if err != nil {
			return err
		}
		if st.DType != tensor.Int64 {
			return c.Errorf("shape input must be int64, got %v", st.DType)
		}
		dims, err := shapeInts(c, st, "shape")
		if err != nil {
			return err
		}
		shape, err := shapeDims(c, "shape", dims)
		if err != nil {
			return err
		}
		m, err := moverFor(c, val)
		if err != nil {
			return err
		}
		o, err := c.Output(0, val.DType, shape)
		if err != nil {
			return err
		}
		m.fill(o.Data, val.Data)
		return nil
	}), nil
}
