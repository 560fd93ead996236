package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// ewSoftmaxBuild builds Softmax (log = false) or LogSoftmax (log = true).
// Before opset 13 the input is coerced to 2D at axis (default 1), so the
// normalization runs over all dims from axis on; since 13 it runs along
// axis alone (default -1). Both subtract the maximum first, so large
// inputs do not overflow.
func ewSoftmaxBuild(log bool) ewVecBuilder {
	return func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		coerce := info.Opset < 13
		def := int64(-1)
		if coerce {
			def = 1
		}
		return &ewSoftmaxKernel{log: log, coerce: coerce, axis: info.Attrs().Int("axis", def), vk: vk}, nil
	}
}

// ewSoftmaxKernel computes float32 (and float16, through float32) with the
// vec loops of its tier and float64 in plain Go, without allocating.
type ewSoftmaxKernel struct {
	log, coerce bool
	axis        int64
	vk          vec.Kernels
	acc64       []float64 // float64 scratch of the strided case
	task        ewSoftmaxTask
}

func (k *ewSoftmaxKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "input")
	if err != nil {
		return err
	}
	switch x.DType {
	case tensor.Float32, tensor.Float64, tensor.Float16:
	default:
		return c.Errorf("dtype %v is not supported (want a float dtype)", x.DType)
	}
	ax, err := normAxis(c, k.axis, len(x.Shape))
	if err != nil {
		return err
	}
	outer := tensor.Shape(x.Shape[:ax]).Size()
	n, inner := x.Shape[ax], tensor.Shape(x.Shape[ax+1:]).Size()
	if k.coerce {
		n, inner = n*inner, 1
	}
	o, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	if o.Len() == 0 {
		return nil
	}
	sm := ewSoftmax{outer: outer, n: n, inner: inner, log: k.log}
	switch x.DType {
	case tensor.Float32:
		k.run32(c, sm, o.F32(), x.F32(), 0)
	case tensor.Float64:
		if inner > 1 && cap(k.acc64) < 2*inner {
			k.acc64 = make([]float64, 2*inner)
		}
		ewSoftmaxRun(c, sm, o.F64(), x.F64(), k.acc64)
	case tensor.Float16:
		xd, od := x.Data.([]uint16), o.Data.([]uint16)
		s := c.Scratch(2*len(xd) + k.scratchLen(c, sm))
		xf, of := s[:len(xd)], s[len(xd):2*len(xd)]
		ewHalfToF32(xf, xd)
		k.run32(c, sm, of, xf, 2*len(xd))
		f32ToHalf(od, of)
	}
	return nil
}

// ewSoftmax is the [outer, n, inner] view of a softmax: it normalizes
// over n for every (outer, inner) pair.
type ewSoftmax struct {
	outer, n, inner int
	log             bool
}

// workers returns how many workers a softmax of total elements gets.
func (sm ewSoftmax) workers(c *kernel.Ctx, total int) int {
	if total <= ewParallelMin || c.Threads <= 1 || sm.outer < 2 {
		return 1
	}
	return min(c.Threads, sm.outer, total/ewParallelGrain+1)
}

// scratchLen is the float32 scratch the strided case needs per run.
func (k *ewSoftmaxKernel) scratchLen(c *kernel.Ctx, sm ewSoftmax) int {
	if sm.inner == 1 {
		return 0
	}
	return sm.workers(c, sm.outer*sm.n*sm.inner) * 2 * sm.inner
}

// run32 computes a float32 softmax of x into o; the strided case uses the
// context's scratch from offset off on.
func (k *ewSoftmaxKernel) run32(c *kernel.Ctx, sm ewSoftmax, o, x []float32, off int) {
	workers := sm.workers(c, len(x))
	var scratch []float32
	if sm.inner > 1 {
		scratch = c.Scratch(off + workers*2*sm.inner)[off:]
	}
	k.task = ewSoftmaxTask{vk: k.vk, sm: sm, o: o, x: x, scratch: scratch, workers: workers}
	if workers == 1 {
		k.task.Run(0, 1)
	} else {
		c.ParallelTask(workers, &k.task)
	}
	k.task = ewSoftmaxTask{vk: k.vk}
}

// ewSoftmaxTask runs the outer blocks of worker w (a share of them) for
// each w in [lo, hi).
type ewSoftmaxTask struct {
	vk      vec.Kernels
	sm      ewSoftmax
	o, x    []float32
	scratch []float32
	workers int
}

// Run processes the blocks of workers [lo, hi).
func (t *ewSoftmaxTask) Run(lo, hi int) {
	sm := t.sm
	block := sm.n * sm.inner
	chunk := (sm.outer + t.workers - 1) / t.workers
	for w := lo; w < hi; w++ {
		var acc []float32
		if sm.inner > 1 {
			acc = t.scratch[w*2*sm.inner : (w+1)*2*sm.inner]
		}
		for b := w * chunk; b < min(sm.outer, (w+1)*chunk); b++ {
			xs, os := t.x[b*block:(b+1)*block], t.o[b*block:(b+1)*block]
			if sm.inner == 1 {
				ewSoftmaxRowVec(t.vk, os, xs, sm.log)
			} else {
				ewSoftmaxStridedVec(t.vk, os, xs, sm.n, sm.inner, sm.log, acc)
			}
		}
	}
}

// ewSoftmaxRowVec normalizes one contiguous float32 row:
// o = exp(x-m)/sum, or x - m - log(sum) for LogSoftmax, with m = max(x).
func ewSoftmaxRowVec(vk vec.Kernels, o, x []float32, log bool) {
	o = o[:len(x)]
	m := vk.MaxOf(x)
	s := vk.ExpSub(o, x, m)
	if log {
		vk.SubS(o, x, m)
		vk.SubS(o, o, float32(math.Log(float64(s))))
		return
	}
	vk.MulS(o, o, 1/s)
}

// ewSoftmaxStridedVec normalizes n float32 rows of length inner along n
// (one outer block), sweeping whole rows; acc holds 2*inner float32s.
func ewSoftmaxStridedVec(vk vec.Kernels, o, x []float32, n, inner int, log bool, acc []float32) {
	mx, sum := acc[:inner], acc[inner:2*inner]
	copy(mx, x[:inner])
	for k := 1; k < n; k++ {
		vk.Max(mx, mx, x[k*inner:(k+1)*inner])
	}
	clear(sum)
	for k := range n {
		row, orow := x[k*inner:(k+1)*inner], o[k*inner:(k+1)*inner]
		vk.Sub(orow, row, mx)
		vk.Exp(orow, orow)
		vk.Add(sum, sum, orow)
	}
	if log {
		for j := range sum {
			sum[j] = mx[j] + float32(math.Log(float64(sum[j])))
		}
		for k := range n {
			vk.Sub(o[k*inner:(k+1)*inner], x[k*inner:(k+1)*inner], sum)
		}
		return
	}
	for j := range sum {
		sum[j] = 1 / sum[j]
	}
	for k := range n {
		orow := o[k*inner : (k+1)*inner]
		vk.Mul(orow, orow, sum)
	}
}

// ewSoftmaxRun computes the softmax of x into o in plain Go (float64 and
// callers without vec loops), splitting the outer blocks across threads
// when the tensor is large. acc, when it holds 2*inner values, is the
// single-threaded strided scratch.
func ewSoftmaxRun[T Float](c *kernel.Ctx, sm ewSoftmax, o, x []T, acc []float64) {
	block := sm.n * sm.inner
	run := func(lo, hi int, acc []float64) {
		if sm.inner > 1 && len(acc) < 2*sm.inner {
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
	if w := sm.workers(c, len(x)); w <= 1 {
		run(0, sm.outer, acc[:min(len(acc), cap(acc))])
		return
	}
	kernel.Parallel(sm.workers(c, len(x)), sm.outer, func(lo, hi int) { run(lo, hi, nil) })
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
