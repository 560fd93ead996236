package kernel

import (
	"fmt"
	"sync"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Allocator hands out tensors whose storage may be recycled from earlier
// values. Their contents are undefined. The returned handle identifies the
// storage for the executor's lifetime tracking (-1 when untracked).
type Allocator interface {
	Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error)
}

// heap is the Allocator used when none is set: plain allocation.
type heap struct{}

func (heap) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	t, err := tensor.New(dt, shape)
	return t, -1, err
}

// Ctx is what a kernel sees while it runs: output allocation, the thread
// budget, scratch space and the node for error messages. The executor
// reuses one Ctx per node across runs.
type Ctx struct {
	Node    *ir.Node
	Threads int
	Alloc   Allocator
	out     []*tensor.Tensor
	// AliasOf[i] >= 0 records that output i shares storage with input
	// AliasOf[i] (set by Alias); the executor uses it for buffer lifetimes.
	AliasOf []int
	// Handles[i] is the allocator handle of output i (-1 if none).
	Handles []int
	scratch []float32
}

// NewCtx returns a context for running a kernel outside a session (tests,
// constant folding, autodiff). alloc may be nil for plain allocation.
func NewCtx(node *ir.Node, threads int, alloc Allocator) *Ctx {
	if threads < 1 {
		threads = 1
	}
	if alloc == nil {
		alloc = heap{}
	}
	return &Ctx{Node: node, Threads: threads, Alloc: alloc}
}

// Begin prepares the context for one kernel call writing into out.
func (c *Ctx) Begin(out []*tensor.Tensor) {
	c.out = out
	if cap(c.AliasOf) < len(out) {
		c.AliasOf = make([]int, len(out))
	}
	c.AliasOf = c.AliasOf[:len(out)]
	if cap(c.Handles) < len(out) {
		c.Handles = make([]int, len(out))
	}
	c.Handles = c.Handles[:len(out)]
	for i := range out {
		out[i] = nil
		c.AliasOf[i] = -1
		c.Handles[i] = -1
	}
}

// Output allocates output i with undefined contents: the kernel must write
// every element (use OutputZero when accumulating).
func (c *Ctx) Output(i int, dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	if i >= len(c.out) {
		return nil, c.Errorf("kernel wrote output %d but the node has %d outputs", i, len(c.out))
	}
	if n := shape.Size(); n < 0 || n > tensor.MaxElements {
		return nil, c.Errorf("output %d shape %v is invalid or too large", i, shape)
	}
	t, h, err := c.Alloc.Alloc(dt, shape)
	if err != nil {
		return nil, c.Errorf("output %d: %v", i, err)
	}
	c.out[i] = t
	c.Handles[i] = h
	return t, nil
}

// OutputZero allocates output i filled with zeros.
func (c *Ctx) OutputZero(i int, dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	t, err := c.Output(i, dt, shape)
	if err != nil {
		return nil, err
	}
	Zero(t)
	return t, nil
}

// Alias makes output i a view of input tensor src (input index j) with a
// new shape of the same element count, without copying.
func (c *Ctx) Alias(i, j int, src *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	if shape.Size() != src.Len() {
		return nil, c.Errorf("cannot view %v as %v", src.Shape, shape)
	}
	if i >= len(c.out) {
		return nil, c.Errorf("kernel wrote output %d but the node has %d outputs", i, len(c.out))
	}
	t := &tensor.Tensor{DType: src.DType, Shape: shape.Clone(), Data: src.Data}
	c.out[i] = t
	c.AliasOf[i] = j
	return t, nil
}

// Scratch returns a float32 work buffer of n elements, reused across calls
// of this node (contents undefined).
func (c *Ctx) Scratch(n int) []float32 {
	if cap(c.scratch) < n {
		c.scratch = make([]float32, n)
	}
	return c.scratch[:n]
}

// Errorf formats an error that names the node.
func (c *Ctx) Errorf(format string, args ...any) error {
	if c.Node == nil {
		return fmt.Errorf(format, args...)
	}
	return fmt.Errorf("node %s: %s", c.Node.Label(), fmt.Sprintf(format, args...))
}

// Parallel splits [0, n) into at most c.Threads contiguous chunks and runs
// fn on each, waiting for all. With one thread (or n small) it calls fn
// directly, so a single-threaded session never pays for goroutines.
func (c *Ctx) Parallel(n int, fn func(lo, hi int)) {
	Parallel(c.Threads, n, fn)
}

// Parallel is Ctx.Parallel for callers without a Ctx.
func Parallel(threads, n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if threads <= 1 || n == 1 {
		fn(0, n)
		return
	}
	if threads > n {
		threads = n
	}
	var wg sync.WaitGroup
	chunk := (n + threads - 1) / threads
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// Zero sets every element of t to zero.
func Zero(t *tensor.Tensor) {
	switch d := t.Data.(type) {
	case []float32:
		clear(d)
	case []float64:
		clear(d)
	case []uint16:
		clear(d)
	case []int8:
		clear(d)
	case []uint8:
		clear(d)
	case []int16:
		clear(d)
	case []int32:
		clear(d)
	case []uint32:
		clear(d)
	case []int64:
		clear(d)
	case []uint64:
		clear(d)
	case []bool:
		clear(d)
	}
}

// RunNode runs kernel k once outside a session and returns its outputs.
func RunNode(k Kernel, c *Ctx, nOut int, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, nOut)
	c.Begin(out)
	if err := k.Run(c, in, out); err != nil {
		return nil, err
	}
	return out, nil
}
