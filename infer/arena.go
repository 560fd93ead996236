package infer

import (
	"github.com/goslim/goslim/tensor"
)

// arena recycles tensor storage between values of one session. Buffers are
// reference counted (a view made by Ctx.Alias shares its input's buffer)
// and return to a per-dtype free list when the last value using them dies.
// Graph outputs are detached from the arena when a run ends.
type arena struct {
	bufs []buffer
	free map[tensor.DType][]int // buffer indices, unordered
}

type buffer struct {
	dt    tensor.DType
	data  any // full-capacity storage slice
	cap   int
	refs  int
	inUse bool
}

func newArena() *arena { return &arena{free: map[tensor.DType][]int{}} }

// Alloc implements kernel.Allocator: best-fit reuse of a free buffer of the
// same dtype, else a new one.
func (a *arena) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	n := shape.Size()
	best := -1
	fl := a.free[dt]
	for i, bi := range fl {
		if c := a.bufs[bi].cap; c >= n && (best < 0 || c < a.bufs[fl[best]].cap) {
			best = i
		}
	}
	if best < 0 && len(fl) > 0 {
		// Nothing fits: grow the largest free buffer rather than adding one,
		// which keeps the buffer count bounded by the peak live count.
		best = 0
		for i, bi := range fl {
			if a.bufs[bi].cap > a.bufs[fl[best]].cap {
				best = i
			}
		}
		data, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return nil, -1, err
		}
		a.bufs[fl[best]].data, a.bufs[fl[best]].cap = data, n
	}
	var h int
	if best >= 0 {
		h = fl[best]
		fl[best] = fl[len(fl)-1]
		a.free[dt] = fl[:len(fl)-1]
	} else {
		data, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return nil, -1, err
		}
		h = len(a.bufs)
		a.bufs = append(a.bufs, buffer{dt: dt, data: data, cap: n})
	}
	b := &a.bufs[h]
	b.refs, b.inUse = 1, true
	return &tensor.Tensor{DType: dt, Shape: shape.Clone(), Data: reslice(b.data, n)}, h, nil
}

func (a *arena) retain(h int) {
	if h >= 0 {
		a.bufs[h].refs++
	}
}

func (a *arena) release(h int) {
	if h < 0 {
		return
	}
	b := &a.bufs[h]
	b.refs--
	if b.refs == 0 && b.inUse {
		b.inUse = false
		a.free[b.dt] = append(a.free[b.dt], h)
	}
}

// detach removes a buffer from the arena for good: its storage now belongs
// to the caller. A fresh slice takes its place for later runs.
func (a *arena) detach(h int) {
	if h < 0 {
		return
	}
	b := &a.bufs[h]
	data, _ := tensor.MakeSlice(b.dt, 0)
	b.data, b.cap, b.refs, b.inUse = data, 0, 0, false
	a.free[b.dt] = append(a.free[b.dt], h)
}

// reset frees every buffer (after a failed run).
func (a *arena) reset() {
	for dt := range a.free {
		a.free[dt] = a.free[dt][:0]
	}
	for h := range a.bufs {
		a.bufs[h].refs, a.bufs[h].inUse = 0, false
		a.free[a.bufs[h].dt] = append(a.free[a.bufs[h].dt], h)
	}
}

func reslice(data any, n int) any {
	switch d := data.(type) {
	case []float32:
		return d[:n]
	case []float64:
		return d[:n]
	case []uint16:
		return d[:n]
	case []int8:
		return d[:n]
	case []uint8:
		return d[:n]
	case []int16:
		return d[:n]
	case []int32:
		return d[:n]
	case []uint32:
		return d[:n]
	case []int64:
		return d[:n]
	case []uint64:
		return d[:n]
	case []bool:
		return d[:n]
	}
	panic("infer: bad buffer storage")
}
