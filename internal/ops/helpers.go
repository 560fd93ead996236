package ops

import (
	"fmt"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// Number is the set of storage types arithmetic kernels are generic over.
type Number interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64
}

// Float is the set of floating-point storage types.
type Float interface{ ~float32 | ~float64 }

// need checks that input i is present.
func need(c *kernel.Ctx, in []*tensor.Tensor, i int, name string) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, c.Errorf("missing input %d (%s)", i, name)
	}
	return in[i], nil
}

// opt returns input i or nil when omitted.
func opt(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(c *kernel.Ctx, axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, c.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return int(a), nil
}

// BroadcastShapes returns the numpy-broadcast shape of the given shapes.
func BroadcastShapes(shapes ...tensor.Shape) (tensor.Shape, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make(tensor.Shape, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case o == d || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// bstrides returns the strides of an input of shape s read as if it had
// the broadcast shape out: 0 along broadcast dims.
func bstrides(s, out tensor.Shape) []int {
	st := make([]int, len(out))
	off := len(out) - len(s)
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 1 {
			st[off+i] = acc
		}
		acc *= s[i]
	}
	return st
}

// broadcastIter walks the elements of a broadcast output in row-major
// order, calling fn for runs of the innermost dimension with the starting
// offsets of each input and their inner strides (0 or 1... or any).
type broadcastIter struct {
	out     tensor.Shape
	strides [][]int
}

// forEachRow calls fn(o, offs, n) for each innermost row: o is the output
// offset, offs[k] the offset in input k, n the row length. Inner strides
// are strides[k][rank-1].
func (b *broadcastIter) forEachRow(fn func(o int, offs []int, n int)) {
	rank := len(b.out)
	k := len(b.strides)
	offs := make([]int, k)
	if rank == 0 {
		fn(0, offs, 1)
		return
	}
	inner := b.out[rank-1]
	total := b.out.Size()
	if total == 0 {
		return
	}
	idx := make([]int, rank)
	for o := 0; o < total; o += inner {
		fn(o, offs, inner)
		// advance idx over dims [0, rank-1)
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			for j := 0; j < k; j++ {
				offs[j] += b.strides[j][d]
			}
			if idx[d] < b.out[d] {
				break
			}
			for j := 0; j < k; j++ {
				offs[j] -= b.strides[j][d] * b.out[d]
			}
			idx[d] = 0
		}
	}
}

// sameDType checks that all given inputs share a dtype.
func sameDType(c *kernel.Ctx, ts ...*tensor.Tensor) error {
	for _, t := range ts[1:] {
		if t != nil && t.DType != ts[0].DType {
			return c.Errorf("inputs have different dtypes %v and %v", ts[0].DType, t.DType)
		}
	}
	return nil
}

// toFloat32 converts a tensor of float16 storage to a new float32 slice.
func halfToF32(d []uint16) []float32 {
	out := make([]float32, len(d))
	for i, v := range d {
		out[i] = tensor.HalfToFloat32(v)
	}
	return out
}

func f32ToHalf(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = tensor.Float32ToHalf(v)
	}
}
