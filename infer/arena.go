package infer

import (
	"unsafe"

	"github.com/goslim/goslim/tensor"
)

// arena recycles tensor storage between values of one session. Buffers are
// reference counted (a view made by Ctx.Alias shares its input's buffer)
// and return to a per-dtype free list when the last value using them dies.
//
// Steady state: every output slot remembers the buffer it got last run
// (the hint of AllocSlot) and takes it again when it is free and large
// enough. Runs with the same input shapes make the same sequence of
// allocations and releases, so from the second such run on every slot
// gets its previous buffer back, and the slot's tensor header (owned by
// its kernel.Ctx) still holds a slice of exactly that storage: a run
// allocates nothing.
type arena struct {
	bufs []buffer
	free [][]int // per dtype: indices of free buffers, unordered
}

type buffer struct {
	dt    tensor.DType
	data  any // full-capacity storage slice
	cap   int
	refs  int
	inUse bool
}

func newArena() *arena { return &arena{} }

// freeList returns the free list of dt, growing the table as needed.
func (a *arena) freeList(dt tensor.DType) *[]int {
	if int(dt) >= len(a.free) {
		a.free = append(a.free, make([][]int, int(dt)+1-len(a.free))...)
	}
	return &a.free[dt]
}

// Alloc implements kernel.Allocator with a fresh header.
func (a *arena) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	t := &tensor.Tensor{DType: dt, Shape: shape.Clone()}
	h, err := a.AllocSlot(t, dt, shape.Size(), -1)
	if err != nil {
		return nil, -1, err
	}
	return t, h, nil
}

// AllocSlot implements kernel.SlotAllocator: the hinted buffer when it is
// free and fits, else best-fit reuse of a free buffer of the same dtype,
// else growth of the largest free one, else a new buffer.
func (a *arena) AllocSlot(t *tensor.Tensor, dt tensor.DType, n, hint int) (int, error) {
	fl := a.freeList(dt)
	pick := -1 // index into *fl
	if hint >= 0 && hint < len(a.bufs) {
		if b := &a.bufs[hint]; !b.inUse && b.dt == dt && b.cap >= n {
			for i, bi := range *fl {
				if bi == hint {
					pick = i
					break
				}
			}
		}
	}
	if pick < 0 {
		for i, bi := range *fl {
			if c := a.bufs[bi].cap; c >= n && (pick < 0 || c < a.bufs[(*fl)[pick]].cap) {
				pick = i
			}
		}
	}
	if pick < 0 && len(*fl) > 0 {
		// Nothing fits: grow the largest free buffer rather than adding one,
		// which keeps the buffer count bounded by the peak live count.
		pick = 0
		for i, bi := range *fl {
			if a.bufs[bi].cap > a.bufs[(*fl)[pick]].cap {
				pick = i
			}
		}
		data, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return -1, err
		}
		b := &a.bufs[(*fl)[pick]]
		b.data, b.cap = data, n
	}
	var h int
	if pick >= 0 {
		h = (*fl)[pick]
		(*fl)[pick] = (*fl)[len(*fl)-1]
		*fl = (*fl)[:len(*fl)-1]
	} else {
		data, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return -1, err
		}
		h = len(a.bufs)
		a.bufs = append(a.bufs, buffer{dt: dt, data: data, cap: n})
	}
	b := &a.bufs[h]
	b.refs, b.inUse = 1, true
	if !sameView(t.Data, b.data, n) {
		t.Data = reslice(b.data, n)
	}
	return h, nil
}

// detach returns a copy of a value for the caller, with storage of
// exactly the value's length: the arena buffer behind a value may be
// larger (it is reused across values and runs) and is overwritten by the
// next run, so a result handed out never pins or aliases it.
func detach(t *tensor.Tensor) *tensor.Tensor {
	c := &tensor.Tensor{}
	if copyInto(c, t) != nil {
		return t.Clone() // storage copyInto does not know: Clone copies it
	}
	return c
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
		fl := a.freeList(b.dt)
		*fl = append(*fl, h)
	}
}

// reset frees every buffer (after a failed run).
func (a *arena) reset() {
	for dt := range a.free {
		a.free[dt] = a.free[dt][:0]
	}
	for h := range a.bufs {
		b := &a.bufs[h]
		b.refs, b.inUse = 0, false
		fl := a.freeList(b.dt)
		*fl = append(*fl, h)
	}
}

// sameView reports whether cur is already the first n elements of the
// storage slice data (so the header can keep it without boxing a new slice
// into an interface, which would allocate).
func sameView(cur, data any, n int) bool {
	switch d := data.(type) {
	case []float32:
		return viewOf(cur, d, n)
	case []float64:
		return viewOf(cur, d, n)
	case []uint16:
		return viewOf(cur, d, n)
	case []int8:
		return viewOf(cur, d, n)
	case []uint8:
		return viewOf(cur, d, n)
	case []int16:
		return viewOf(cur, d, n)
	case []int32:
		return viewOf(cur, d, n)
	case []uint32:
		return viewOf(cur, d, n)
	case []int64:
		return viewOf(cur, d, n)
	case []uint64:
		return viewOf(cur, d, n)
	case []bool:
		return viewOf(cur, d, n)
	}
	return false
}

func viewOf[T any](cur any, d []T, n int) bool {
	v, ok := cur.([]T)
	return ok && len(v) == n && unsafe.SliceData(v) == unsafe.SliceData(d)
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
