package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// ewSoftmaxBuild builds Softmax (log = false) or LogSoftmax (log = true).
// Before opset 13 the input is coerced to 2D at axis (default 1), so the
// normalization runs over all dims from axis on; since 13 it runs along
// axis alone (default -1). Both subtract the maximum first, so large
// inputs do not overflow.
func ewSoftmaxBuild(log bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		coerce := info.Opset < 13
		def := int64(-1)
		if coerce {
			def = 1
		}
		axis := info.Attrs().Int("axis", def)
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			x, err := need(c, in, 0, "input")
			if err != nil {
				return err
			}
			switch x.DType {
			case tensor.Float32, tensor.Float64, tensor.Float16:
			default:
				return c.Errorf("dtype %v is not supported (want a float dtype)", x.DType)
			}
			ax, err := normAxis(c, axis, len(x.Shape))
			if err != nil {
				return err
			}
			outer := tensor.Shape(x.Shape[:ax]).Size()
			n, inner := x.Shape[ax], tensor.Shape(x.Shape[ax+1:]).Size()
			if coerce {
				n, inner = n*inner, 1
			}
			o, err := c.Output(0, x.DType, x.Shape)
			if err != nil {
				return err
			}
			if o.Len() == 0 {
				return nil
			}
			sm := ewSoftmax{outer: outer, n: n, inner: inner, log: log}
			switch x.DType {
			case tensor.Float32:
				ewSoftmaxRun(c, sm, o.F32(), x.F32())
			case tensor.Float64:
				ewSoftmaxRun(c, sm, o.F64(), x.F64())
			case tensor.Float16:
				xd, od := x.Data.([]uint16), o.Data.([]uint16)
				s := c.Scratch(2 * len(xd))
				xf, of := s[:len(xd)], s[len(xd):]
				ewHalfToF32(xf, xd)
				ewSoftmaxRun(c, sm, of, xf)
				f32ToHalf(od, of)
			}
			return nil
		}), nil
	}
}

// ewSoftmax is the [outer, n, inner] view of a softmax: it normalizes
// over n for every (outer, inner) pair.
type ewSoftmax struct {
	outer, n, inner int
	log             bool
}

// ewSoftmaxRun computes the softmax of x into o, splitting the outer
// blocks across threads when the tensor is large.
func ewSoftmaxRun[T Float](c *kernel.Ctx, sm ewSoftmax, o, x []T) {
	block := sm.n * sm.inner
	run := func(lo, hi int) {
		var acc []float64
		if sm.inner > 1 {
			acc = make([]float64, 2*sm.inner)
		}
		for b := lo; b < hi; b++ {
			xs, os := x[b*block:(b+1)*block], o[b*block:(b+1)*block]
			if sm.inner == 1 {
				ewSoftmaxRow(os, xs, sm.log)
			} else {
				ewSoftmaxStrided(os, xs, sm.n, sm.inner, sm.log, acc)
			}
		}
	}
	if len(x) <= ewParallelMin || c.Threads <= 1 || sm.outer < 2 {
		run(0, sm.outer)
		return
	}
	kernel.Parallel(min(c.Threads, sm.outer, len(x)/ewParallelGrain+1), sm.outer, run)
}

// ewSoftmaxRow normalizes one contiguous row.
func ewSoftmaxRow[T Float](o, x []T, log bool) {
	o = o[:len(x)]
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	sum := 0.0
	if log {
		for _, v := range x {
			sum += math.Exp(float64(v - m))
		}
		ls := T(math.Log(sum))
		for i, v := range x {
			o[i] = v - m - ls
		}
		return
	}
	for i, v := range x {
		e := math.Exp(float64(v - m))
		o[i] = T(e)
		sum += e
	}
	r := T(1 / sum)
	for i := range o {
		o[i] *= r
	}
}

// ewSoftmaxStrided normalizes n rows of length inner along n (one outer
// block), sweeping whole rows for cache locality. acc holds 2*inner
// float64s of scratch.
func ewSoftmaxStrided[T Float](o, x []T, n, inner int, log bool, acc []float64) {
	mx, sum := acc[:inner], acc[inner:2*inner]
	for j := range inner {
		mx[j] = float64(x[j])
	}
	for k := 1; k < n; k++ {
		row := x[k*inner : (k+1)*inner]
		for j, v := range row {
			mx[j] = max(mx[j], float64(v))
		}
	}
	clear(sum)
	for k := range n {
		row, orow := x[k*inner:(k+1)*inner], o[k*inner:(k+1)*inner]
		for j, v := range row {
			e := math.Exp(float64(v) - mx[j])
			sum[j] += e
			if !log {
				orow[j] = T(e)
			}
		}
	}
	if log {
		for j := range sum {
			sum[j] = mx[j] + math.Log(sum[j])
		}
		for k := range n {
			row, orow := x[k*inner:(k+1)*inner], o[k*inner:(k+1)*inner]
			for j, v := range row {
				orow[j] = T(float64(v) - sum[j])
			}
		}
		return
	}
	for j := range sum {
		sum[j] = 1 / sum[j]
	}
	for k := range n {
		orow := o[k*inner : (k+1)*inner]
		for j := range orow {
			orow[j] = T(float64(orow[j]) * sum[j])
		}
	}
}
