package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// Resize execution: output rows (all axes but the last) are walked by
// resizeRowIter, which expands the taps of the outer axes into (input
// offset, weight) combinations; the last axis is applied per element.

// resizeParallelMin is the output size below which Resize stays on one
// goroutine.
const resizeParallelMin = 1 << 14

func resizeParallel(c *kernel.Ctx, total, rows int, fn func(lo, hi int)) {
	if total < resizeParallelMin {
		fn(0, rows)
		return
	}
	c.Parallel(rows, fn)
}

// resizeRowIter walks output rows and keeps the tap combinations of the
// outer axes for the current row.
type resizeRowIter struct {
	p       *resizePlan
	idx     []int // output coordinates of axes 0..rank-2
	base    []int // input offsets of the combinations
	w       []float64
	nb      []int // expansion buffers
	nw      []float64
	outside bool // some outer axis maps outside the input (tf_crop_and_resize)
}

func newResizeRowIter(p *resizePlan) *resizeRowIter {
	r := len(p.dims)
	n := 1
	for d := 0; d < r-1; d++ {
		n *= p.dims[d].k
	}
	return &resizeRowIter{p: p, idx: make([]int, max(r-1, 0)),
		base: make([]int, 0, n), w: make([]float64, 0, n),
		nb: make([]int, 0, n), nw: make([]float64, 0, n)}
}

// seek positions the iterator at output row row.
func (it *resizeRowIter) seek(row int) {
	for d := len(it.idx) - 1; d >= 0; d-- {
		n := it.p.dims[d].out
		it.idx[d] = row % n
		row /= n
	}
	it.build()
}

// next advances to the following row.
func (it *resizeRowIter) next() {
	for d := len(it.idx) - 1; d >= 0; d-- {
		it.idx[d]++
		if it.idx[d] < it.p.dims[d].out {
			break
		}
		it.idx[d] = 0
	}
	it.build()
}

func (it *resizeRowIter) build() {
	it.base = append(it.base[:0], 0)
	it.w = append(it.w[:0], 1)
	it.outside = false
	for d, x := range it.idx {
		dim := &it.p.dims[d]
		if dim.outside != nil && dim.outside[x] {
			it.outside = true
			return
		}
		if dim.k == 1 {
			off, wt := dim.off[x], dim.w[x]
			for i := range it.base {
				it.base[i] += off
				it.w[i] *= wt
			}
			continue
		}
		offs, ws := dim.off[x*dim.k:(x+1)*dim.k], dim.w[x*dim.k:(x+1)*dim.k]
		it.nb, it.nw = it.nb[:0], it.nw[:0]
		for i, b := range it.base {
			for t, wt := range ws {
				if wt != 0 {
					it.nb = append(it.nb, b+offs[t])
					it.nw = append(it.nw, it.w[i]*wt)
				}
			}
		}
		it.base, it.nb = it.nb, it.base
		it.w, it.nw = it.nw, it.w
	}
}

// resizeGather is nearest-neighbour resizing: a pure gather, exact for
// every dtype. Rows reading the same input row as the previous one are
// copied (the common 2x upsampling case).
func resizeGather[T any](c *kernel.Ctx, p *resizePlan, src, dst []T, extrap T) {
	r := len(p.dims)
	if r == 0 {
		dst[0] = src[0]
		return
	}
	last := &p.dims[r-1]
	w := last.out
	rows := len(dst) / w
	resizeParallel(c, len(dst), rows, func(lo, hi int) {
		it := newResizeRowIter(p)
		it.seek(lo)
		prev := -1
		for row := lo; row < hi; row++ {
			d := dst[row*w : (row+1)*w]
			switch {
			case it.outside:
				for j := range d {
					d[j] = extrap
				}
				prev = -1
			case it.base[0] == prev:
				copy(d, dst[(row-1)*w:row*w])
			default:
				b := it.base[0]
				switch {
				case last.identity:
					copy(d, src[b:b+w])
				case last.outside == nil:
					for j, o := range last.off {
						d[j] = src[b+o]
					}
				default:
					for j, o := range last.off {
						if last.outside[j] {
							d[j] = extrap
						} else {
							d[j] = src[b+o]
						}
					}
				}
				prev = b
			}
			it.next()
		}
	})
}

// resizeWeights converts the plan's weights to F.
func resizeWeights[F Float](p *resizePlan) [][]F {
	ws := make([][]F, len(p.dims))
	for d := range p.dims {
		ws[d] = make([]F, len(p.dims[d].w))
		for i, v := range p.dims[d].w {
			ws[d][i] = F(v)
		}
	}
	return ws
}

// resizeInterp is linear or cubic resizing in precision F: for each
// output element, the sum over outer tap combinations c of w_c times the
// last axis' taps, Σ_t w_t * src[base_c + off_t].
func resizeInterp[F Float](c *kernel.Ctx, p *resizePlan, src, dst []F, extrap F) {
	r := len(p.dims)
	if r == 0 {
		dst[0] = src[0]
		return
	}
	last := &p.dims[r-1]
	w, k := last.out, last.k
	lw := resizeWeights[F](p)[r-1]
	rows := len(dst) / w
	resizeParallel(c, len(dst), rows, func(lo, hi int) {
		it := newResizeRowIter(p)
		it.seek(lo)
		cw := make([]F, cap(it.base))
		for row := lo; row < hi; row++ {
			d := dst[row*w : (row+1)*w]
			if it.outside {
				for j := range d {
					d[j] = extrap
				}
				it.next()
				continue
			}
			nc := len(it.base)
			for i := 0; i < nc; i++ {
				cw[i] = F(it.w[i])
			}
			for j := range d {
				if last.outside != nil && last.outside[j] {
					d[j] = extrap
					continue
				}
				offs, wj := last.off[j*k:(j+1)*k], lw[j*k:(j+1)*k]
				var acc F
				for i, b := range it.base {
					var s F
					for t, o := range offs {
						s += wj[t] * src[b+o]
					}
					acc += cw[i] * s
				}
				d[j] = acc
			}
			it.next()
		}
	})
}

// resizeBilinear2D is the float32 fast path for linear resizing of the last
// two axes only (NCHW images): four taps per output pixel, no tap
// expansion. It reports false when the plan does not fit.
func resizeBilinear2D(c *kernel.Ctx, p *resizePlan, src, dst []float32) bool {
	r := len(p.dims)
	if r < 2 {
		return false
	}
	for d := 0; d < r-2; d++ {
		if !p.dims[d].identity {
			return false
		}
	}
	dy, dx := &p.dims[r-2], &p.dims[r-1]
	if dy.k != 2 || dx.k != 2 || dy.outside != nil || dx.outside != nil {
		return false
	}
	h, w, oh, ow := dy.in, dx.in, dy.out, dx.out
	wy := make([]float32, len(dy.w))
	for i, v := range dy.w {
		wy[i] = float32(v)
	}
	wx := make([]float32, len(dx.w))
	for i, v := range dx.w {
		wx[i] = float32(v)
	}
	rows := len(dst) / ow
	resizeParallel(c, len(dst), rows, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, y := row/oh, row%oh
			plane := src[pl*h*w : (pl+1)*h*w]
			r0 := plane[dy.off[2*y] : dy.off[2*y]+w]
			r1 := plane[dy.off[2*y+1] : dy.off[2*y+1]+w]
			a, b := wy[2*y], wy[2*y+1]
			d := dst[row*ow : (row+1)*ow]
			for x := range d {
				i0, i1 := dx.off[2*x], dx.off[2*x+1]
				u, v := wx[2*x], wx[2*x+1]
				d[x] = a*(u*r0[i0]+v*r0[i1]) + b*(u*r1[i0]+v*r1[i1])
			}
		}
	})
	return true
}

// resizeNearestAny dispatches nearest resizing on the dtype.
func resizeNearestAny(c *kernel.Ctx, p *resizePlan, x, o *tensor.Tensor, extrap float64) error {
	switch xs := x.Data.(type) {
	case []float32:
		resizeGather(c, p, xs, o.F32(), float32(extrap))
	case []float64:
		resizeGather(c, p, xs, o.F64(), extrap)
	case []uint16:
		var e uint16
		switch x.DType {
		case tensor.Float16:
			e = tensor.Float32ToHalf(float32(extrap))
		case tensor.BFloat16:
			e = reduceF32ToBF16(float32(extrap))
		default:
			e = resizeIntScalar[uint16](extrap)
		}
		resizeGather(c, p, xs, o.Data.([]uint16), e)
	case []int8:
		resizeGather(c, p, xs, o.Data.([]int8), resizeIntScalar[int8](extrap))
	case []uint8:
		resizeGather(c, p, xs, o.Data.([]uint8), resizeIntScalar[uint8](extrap))
	case []int16:
		resizeGather(c, p, xs, o.Data.([]int16), resizeIntScalar[int16](extrap))
	case []int32:
		resizeGather(c, p, xs, o.Data.([]int32), resizeIntScalar[int32](extrap))
	case []uint32:
		resizeGather(c, p, xs, o.Data.([]uint32), resizeIntScalar[uint32](extrap))
	case []int64:
		resizeGather(c, p, xs, o.Data.([]int64), resizeIntScalar[int64](extrap))
	case []uint64:
		resizeGather(c, p, xs, o.Data.([]uint64), resizeIntScalar[uint64](extrap))
	case []bool:
		resizeGather(c, p, xs, o.Bools(), extrap != 0)
	default:
		return c.Errorf("Resize does not support %v", x.DType)
	}
	return nil
}

// resizeInterpAny dispatches linear and cubic resizing on the dtype:
// float32 directly (with the 2-D bilinear fast path), float16/bfloat16
// through float32, float64 and integers through float64.
func resizeInterpAny(c *kernel.Ctx, p *resizePlan, x, o *tensor.Tensor, extrap float64) error {
	switch x.DType {
	case tensor.Float32:
		if !resizeBilinear2D(c, p, x.F32(), o.F32()) {
			resizeInterp(c, p, x.F32(), o.F32(), float32(extrap))
		}
		return nil
	case tensor.Float64:
		resizeInterp(c, p, x.F64(), o.F64(), extrap)
		return nil
	case tensor.Float16, tensor.BFloat16:
		xf := make([]float32, x.Len())
		reduceLowToF32(x.DType, x.Data.([]uint16), xf)
		of := make([]float32, o.Len())
		if !resizeBilinear2D(c, p, xf, of) {
			resizeInterp(c, p, xf, of, float32(extrap))
		}
		reduceF32ToLow(x.DType, of, o.Data.([]uint16))
		return nil
	case tensor.Bool:
		return c.Errorf("Resize mode linear/cubic does not support bool")
	}
	var xf []float64
	switch xs := x.Data.(type) {
	case []int8:
		xf = resizeWiden(xs)
	case []uint8:
		xf = resizeWiden(xs)
	case []int16:
		xf = resizeWiden(xs)
	case []uint16:
		xf = resizeWiden(xs)
	case []int32:
		xf = resizeWiden(xs)
	case []uint32:
		xf = resizeWiden(xs)
	case []int64:
		xf = resizeWiden(xs)
	case []uint64:
		xf = resizeWiden(xs)
	default:
		return c.Errorf("Resize does not support %v", x.DType)
	}
	of := make([]float64, o.Len())
	resizeInterp(c, p, xf, of, extrap)
	resizeStoreInts(o, of)
	return nil
}

func resizeWiden[T Number](xs []T) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		out[i] = float64(v)
	}
	return out
}

// resizeStoreInts truncates v toward zero (as ONNX Runtime's casts and the
// reference's astype do) and saturates it into o's integer storage.
func resizeStoreInts(o *tensor.Tensor, v []float64) {
	switch d := o.Data.(type) {
	case []int8:
		resizeTruncSat(d, v, math.MinInt8, math.MaxInt8)
	case []uint8:
		resizeTruncSat(d, v, 0, math.MaxUint8)
	case []int16:
		resizeTruncSat(d, v, math.MinInt16, math.MaxInt16)
	case []uint16:
		resizeTruncSat(d, v, 0, math.MaxUint16)
	case []int32:
		resizeTruncSat(d, v, math.MinInt32, math.MaxInt32)
	case []uint32:
		resizeTruncSat(d, v, 0, math.MaxUint32)
	case []int64:
		resizeTruncSat(d, v, math.MinInt64, math.MaxInt64)
	case []uint64:
		resizeTruncSat(d, v, 0, math.MaxUint64)
	}
}

// resizeTruncSat stores trunc(v) clamped to [lo, hi] (NaN stores 0). A
// value within rounding error (1e-9 relative) of an integer counts as that
// integer, so an exact result such as 42 computed as 41.999999999 does not
// truncate to 41.
func resizeTruncSat[T int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64](dst []T, v []float64, lo, hi T) {
	flo, fhi := float64(lo), float64(hi)
	for i, f := range v {
		if r := math.Round(f); math.Abs(f-r) <= 1e-9*math.Max(1, math.Abs(f)) {
			f = r
		}
		f = math.Trunc(f)
		switch {
		case f != f:
			dst[i] = 0
		case f <= flo:
			dst[i] = lo
		case f >= fhi:
			dst[i] = hi
		default:
			dst[i] = T(f)
		}
	}
}

// resizeIntScalar converts the extrapolation value for an integer dtype.
func resizeIntScalar[T int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64](v float64) T {
	d := make([]T, 1)
	resizeStoreInts(&tensor.Tensor{Data: d}, []float64{v})
	return d[0]
}
