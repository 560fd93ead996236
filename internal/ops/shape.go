package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// Shape and indexing ops only move data, so each is written once over the
// storage slice type: a kernel picks a shapeMover for its input's storage
// (one type switch per call) and the mover's methods run generic loops over
// []T. Float16 and bfloat16 move as their uint16 bits, bool as []bool.
//
// Files: shape_view.go (Reshape, Flatten, Squeeze, Unsqueeze: zero-copy
// views; Shape, Constant, ConstantOfShape), shape_copy.go (Transpose,
// Concat, Split, Slice, Gather, Expand), shape_pad.go (Pad).
func registerShape(t *kernel.Table) {
	add(t, "Reshape", buildReshape)
	add(t, "Flatten", buildFlatten)
	add(t, "Squeeze", buildSqueeze)
	add(t, "Unsqueeze", buildUnsqueeze)
	add(t, "Shape", buildShapeOp)
	add(t, "Constant", buildConstant)
	add(t, "ConstantOfShape", buildConstantOfShape)
	add(t, "Transpose", buildTranspose)
	add(t, "Concat", buildConcat)
	add(t, "Split", buildSplit)
	add(t, "Slice", buildSlice)
	add(t, "Gather", buildGather)
	add(t, "Expand", buildExpand)
	add(t, "Pad", buildPad)
}

// shapeParallelMin is the element count above which data movement is split
// across threads.
const shapeParallelMin = 1 << 16

// shapeMover runs the data-movement loops for one storage type. Arguments
// typed any are storage slices of that type ([]T); v in fill is a []T of
// at least one element or nil for zero.
type shapeMover interface {
	// strided copies rows [lo, hi) of the view into dst (see shapeView).
	strided(dst, src any, v *shapeView, lo, hi int)
	// concat writes, for each outer index o, the blocks srcs[k][o*inner[k]:
	// (o+1)*inner[k]] one after another into dst.
	concat(dst any, srcs []any, inner []int, outer int)
	// gather copies dst[o, j, :] = src[o, idx[j], :] for blocks of inner
	// elements; n is the source axis length.
	gather(dst, src any, idx []int, outer, n, inner int)
	// pad writes the padded tensor described by p.
	pad(dst, src any, p *padPlan, v any)
	// fill sets every element of dst to v[0] (zero when v is nil).
	fill(dst, v any)
}

// shapeMoverOf implements shapeMover for storage type []T.
type shapeMoverOf[T any] struct{}

func (shapeMoverOf[T]) strided(dst, src any, v *shapeView, lo, hi int) {
	stridedCopy(dst.([]T), src.([]T), v, lo, hi)
}

func (shapeMoverOf[T]) concat(dst any, srcs []any, inner []int, outer int) {
	d := dst.([]T)
	pos := 0
	for o := 0; o < outer; o++ {
		for k, s := range srcs {
			n := inner[k]
			pos += copy(d[pos:pos+n], s.([]T)[o*n:(o+1)*n])
		}
	}
}

func (shapeMoverOf[T]) gather(dst, src any, idx []int, outer, n, inner int) {
	d, s := dst.([]T), src.([]T)
	pos := 0
	for o := 0; o < outer; o++ {
		base := o * n * inner
		if inner == 1 {
			for _, j := range idx {
				d[pos] = s[base+j]
				pos++
			}
			continue
		}
		for _, j := range idx {
			off := base + j*inner
			pos += copy(d[pos:pos+inner], s[off:off+inner])
		}
	}
}

func (shapeMoverOf[T]) pad(dst, src any, p *padPlan, v any) {
	var cv T
	if v != nil {
		cv = v.([]T)[0]
	}
	padCopy(dst.([]T), src.([]T), p, cv)
}

func (shapeMoverOf[T]) fill(dst, v any) {
	var x T
	if v != nil {
		x = v.([]T)[0]
	}
	shapeFill(dst.([]T), x)
}

// shapeFill sets every element of d to x.
func shapeFill[T any](d []T, x T) {
	for i := range d {
		d[i] = x
	}
}

// moverFor returns the mover for t's storage, or an error naming the dtype.
func moverFor(c *kernel.Ctx, t *tensor.Tensor) (shapeMover, error) {
	switch t.Data.(type) {
	case []float32:
		return shapeMoverOf[float32]{}, nil
	case []float64:
		return shapeMoverOf[float64]{}, nil
	case []uint16:
		return shapeMoverOf[uint16]{}, nil
	case []int8:
		return shapeMoverOf[int8]{}, nil
	case []uint8:
		return shapeMoverOf[uint8]{}, nil
	case []int16:
		return shapeMoverOf[int16]{}, nil
	case []int32:
		return shapeMoverOf[int32]{}, nil
	case []uint32:
		return shapeMoverOf[uint32]{}, nil
	case []int64:
		return shapeMoverOf[int64]{}, nil
	case []uint64:
		return shapeMoverOf[uint64]{}, nil
	case []bool:
		return shapeMoverOf[bool]{}, nil
	}
	return nil, c.Errorf("dtype %v (storage %T) not supported", t.DType, t.Data)
}

// shapeView is a strided read of a source slice in the row-major order of
// shape: the element at multi-index i is src[off + sum(i[d]*strides[d])].
// Strides may be zero (broadcast) or negative (reversed slices).
type shapeView struct {
	shape   []int
	strides []int
	off     int
}

// simplify drops size-1 dims and merges dims that are contiguous in the
// source, so inner loops run as long as possible. An empty view keeps a
// zero dim.
func (v *shapeView) simplify() {
	sh, st := v.shape[:0:0], v.strides[:0:0]
	for d, n := range v.shape {
		if n == 0 {
			v.shape, v.strides = []int{0}, []int{0}
			return
		}
		if n == 1 {
			continue
		}
		if k := len(sh) - 1; k >= 0 && st[k] == v.strides[d]*n {
			sh[k] *= n
			st[k] = v.strides[d]
			continue
		}
		sh = append(sh, n)
		st = append(st, v.strides[d])
	}
	v.shape, v.strides = sh, st
}

// rows returns the number of innermost rows and the row length.
func (v *shapeView) rows() (rows, inner int) {
	r := len(v.shape)
	if r == 0 {
		return 1, 1
	}
	rows = 1
	for _, n := range v.shape[:r-1] {
		rows *= n
	}
	return rows, v.shape[r-1]
}

// stridedCopy writes rows [lo, hi) of view v of src into dst, which is
// contiguous in v's row-major order. Reference loop: for every multi-index
// i in rows [lo, hi), dst[flat(i)] = src[v.off + sum(i[d]*v.strides[d])].
func stridedCopy[T any](dst, src []T, v *shapeView, lo, hi int) {
	r := len(v.shape)
	if r == 0 {
		if lo == 0 && hi > 0 {
			dst[0] = src[v.off]
		}
		return
	}
	inner, is := v.shape[r-1], v.strides[r-1]
	var buf [8]int
	idx := buf[:0]
	if r-1 > len(buf) {
		idx = make([]int, r-1)
	} else {
		idx = buf[:r-1]
	}
	off, rem := v.off, lo
	for d := r - 2; d >= 0; d-- {
		idx[d] = rem % v.shape[d]
		rem /= v.shape[d]
		off += idx[d] * v.strides[d]
	}
	for row := lo; row < hi; row++ {
		o := dst[row*inner : (row+1)*inner]
		switch is {
		case 1:
			copy(o, src[off:off+inner])
		case 0:
			shapeFill(o, src[off])
		default:
			s := off
			for j := range o {
				o[j] = src[s]
				s += is
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			off += v.strides[d]
			if idx[d] < v.shape[d] {
				break
			}
			off -= v.strides[d] * v.shape[d]
			idx[d] = 0
		}
	}
}

// runView copies view v of src into dst, in parallel for large outputs.
func runView(c *kernel.Ctx, m shapeMover, dst, src *tensor.Tensor, v *shapeView) {
	v.simplify()
	rows, inner := v.rows()
	if rows == 0 || inner == 0 {
		return
	}
	if rows*inner < shapeParallelMin || c.Threads <= 1 {
		m.strided(dst.Data, src.Data, v, 0, rows)
		return
	}
	c.Parallel(rows, func(lo, hi int) { m.strided(dst.Data, src.Data, v, lo, hi) })
}

// shapeDims converts int64 dims (from a shape input or attribute) to a
// Shape, rejecting negative and oversized dims.
func shapeDims(c *kernel.Ctx, what string, dims []int64) (tensor.Shape, error) {
	s := make(tensor.Shape, len(dims))
	for i, d := range dims {
		if d < 0 || d > tensor.MaxElements {
			return nil, c.Errorf("%s %v: dim %d is invalid", what, dims, i)
		}
		s[i] = int(d)
	}
	return s, nil
}

// shapeInts reads an integer input (shapes, axes, starts) as int64s.
func shapeInts(c *kernel.Ctx, t *tensor.Tensor, what string) ([]int64, error) {
	if t.DType != tensor.Int64 && t.DType != tensor.Int32 {
		return nil, c.Errorf("%s must be int64 or int32, got %v", what, t.DType)
	}
	if t.Rank() > 1 {
		return nil, c.Errorf("%s must be a 1-D tensor, got shape %v", what, t.Shape)
	}
	v, err := t.Int64s()
	if err != nil {
		return nil, c.Errorf("%s: %v", what, err)
	}
	return v, nil
}

// shapeAxes normalizes axes against rank, rejecting out-of-range and
// repeated axes.
func shapeAxes(c *kernel.Ctx, axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make([]bool, rank)
	for i, a := range axes {
		n, err := normAxis(c, a, rank)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, c.Errorf("axis %d repeated in %v", a, axes)
		}
		seen[n] = true
		out[i] = n
	}
	return out, nil
}
