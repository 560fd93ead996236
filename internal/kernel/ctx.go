package kernel

import (
	"fmt"
	"math/bits"
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

// SlotAllocator is an Allocator that fills a tensor header owned by the
// caller. A Ctx whose allocator implements it keeps one header per output
// slot and reuses it on every call, so a steady-state run allocates
// nothing: the executor's arena implements it. Plain allocators (tests,
// constant folding) get a fresh header per output instead, so results of
// earlier calls stay valid.
type SlotAllocator interface {
	Allocator
	// AllocSlot points t.Data at storage for n elements of dt (t.Data may
	// still hold this slot's previous storage, which the allocator may keep
	// when it fits). hint is the handle the slot received last time (-1 if
	// none); allocators use it to give a slot the same buffer every run.
	AllocSlot(t *tensor.Tensor, dt tensor.DType, n, hint int) (handle int, err error)
}

// heap is the Allocator used when none is set: plain allocation.
type heap struct{}

func (heap) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	t, err := tensor.New(dt, shape)
	return t, -1, err
}

// Ctx is what a kernel sees while it runs: output allocation, the thread
// budget, scratch space and the node for error messages. The executor
// reuses one Ctx per node across runs; calls on one Ctx never overlap.
type Ctx struct {
	Node    *ir.Node
	Threads int
	Alloc   Allocator
	// Pool, when set, runs the parallel chunks of Parallel and ParallelTask
	// on persistent worker goroutines instead of new ones.
	Pool *Pool
	out  []*tensor.Tensor
	// AliasOf[i] >= 0 records that output i shares storage with input
	// AliasOf[i] (set by Alias); the executor uses it for buffer lifetimes.
	AliasOf []int
	// Handles[i] is the allocator handle of output i (-1 if none).
	Handles []int
	scratch []float32

	slots SlotAllocator // Alloc as a SlotAllocator, or nil
	hdr   []tensor.Tensor
	hint  []int
	wg    sync.WaitGroup
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
	c := &Ctx{Node: node, Threads: threads, Alloc: alloc}
	c.slots, _ = alloc.(SlotAllocator)
	return c
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
	if c.slots != nil && len(c.hdr) < len(out) {
		c.hdr = append(c.hdr, make([]tensor.Tensor, len(out)-len(c.hdr))...)
		for len(c.hint) < len(out) {
			c.hint = append(c.hint, -1)
		}
	}
	for i := range out {
		out[i] = nil
		c.AliasOf[i] = -1
		c.Handles[i] = -1
	}
}

// header returns the reusable header of output slot i with the given
// dtype and a copy of shape.
func (c *Ctx) header(i int, dt tensor.DType, shape tensor.Shape) *tensor.Tensor {
	t := &c.hdr[i]
	t.DType = dt
	t.Shape = append(t.Shape[:0], shape...)
	return t
}

// Output allocates output i with undefined contents: the kernel must write
// every element (use OutputZero when accumulating). The shape is copied.
func (c *Ctx) Output(i int, dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	if i >= len(c.out) {
		return nil, c.Errorf("kernel wrote output %d but the node has %d outputs", i, len(c.out))
	}
	n := outputSize(shape)
	if n < 0 {
		return nil, c.Errorf("output %d shape %s is invalid or too large", i, shape.String())
	}
	if c.slots != nil {
		t := c.header(i, dt, shape)
		h, err := c.slots.AllocSlot(t, dt, n, c.hint[i])
		if err != nil {
			return nil, c.Errorf("output %d: %v", i, err)
		}
		c.hint[i] = h
		c.out[i] = t
		c.Handles[i] = h
		return t, nil
	}
	// The clone keeps shape from escaping through the interface call, so
	// kernels can pass shapes built on their stack.
	t, h, err := c.Alloc.Alloc(dt, shape.Clone())
	if err != nil {
		return nil, c.Errorf("output %d: %v", i, err)
	}
	c.out[i] = t
	c.Handles[i] = h
	return t, nil
}

// outputSize returns the element count of shape, or -1 when a dim is
// negative or the count exceeds tensor.MaxElements (one multiply per dim,
// no division: this runs for every output of every node).
func outputSize(shape tensor.Shape) int {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > tensor.MaxElements {
			return -1
		}
		n = lo
	}
	return int(n)
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
		return nil, c.Errorf("cannot view %s as %s", src.Shape.String(), shape.String())
	}
	if i >= len(c.out) {
		return nil, c.Errorf("kernel wrote output %d but the node has %d outputs", i, len(c.out))
	}
	var t *tensor.Tensor
	if c.slots != nil {
		t = c.header(i, src.DType, shape)
		t.Data = src.Data
	} else {
		t = &tensor.Tensor{DType: src.DType, Shape: shape.Clone(), Data: src.Data}
	}
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
// directly, so a single-threaded session never pays for goroutines. The
// closure fn escapes to the heap; kernels that must not allocate use
// ParallelTask, or call their loop directly when c.Threads is 1.
func (c *Ctx) Parallel(n int, fn func(lo, hi int)) {
	if c.Pool == nil || c.Threads <= 1 || n <= 1 {
		Parallel(c.Threads, n, fn)
		return
	}
	c.ParallelTask(n, funcTask(fn))
}

// Task is work over an index range that ParallelTask splits across
// threads. Kernels keep their Task in a long-lived struct (the kernel or
// its scratch), so passing it allocates nothing.
type Task interface {
	Run(lo, hi int)
}

type funcTask func(lo, hi int)

func (f funcTask) Run(lo, hi int) { f(lo, hi) }

// ParallelTask is Parallel for a Task: it splits [0, n) into at most
// c.Threads contiguous chunks, runs the first on the calling goroutine and
// the others on the session's worker pool (or new goroutines when there is
// none), and returns when all are done. With one thread it calls t.Run(0,
// n) directly. Parallel calls on one Ctx must not nest (a chunk must not
// call Parallel or ParallelTask of the same Ctx).
func (c *Ctx) ParallelTask(n int, t Task) {
	if n <= 0 {
		return
	}
	threads := min(c.Threads, n)
	if threads <= 1 {
		t.Run(0, n)
		return
	}
	chunk := (n + threads - 1) / threads
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		c.wg.Add(1)
		if c.Pool != nil {
			c.Pool.submit(job{t: t, lo: lo, hi: hi, wg: &c.wg})
		} else {
			go runJob(job{t: t, lo: lo, hi: hi, wg: &c.wg})
		}
	}
	t.Run(0, chunk)
	c.wg.Wait()
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

// job is one chunk of a ParallelTask call.
type job struct {
	t      Task
	lo, hi int
	wg     *sync.WaitGroup
}

func runJob(j job) {
	defer j.wg.Done()
	j.t.Run(j.lo, j.hi)
}

// Pool is a fixed set of worker goroutines that run the chunks of
// ParallelTask for every Ctx of one session, so parallel kernels neither
// start goroutines nor allocate per call. Workers start on first use;
// Close stops them.
type Pool struct {
	workers int
	once    sync.Once
	jobs    chan job
	mu      sync.Mutex
	closed  bool
}

// NewPool returns a pool for a thread budget of threads: threads-1
// workers, since the calling goroutine runs one chunk itself. It returns
// nil for one thread.
func NewPool(threads int) *Pool {
	if threads <= 1 {
		return nil
	}
	return &Pool{workers: threads - 1}
}

func (p *Pool) submit(j job) {
	p.once.Do(func() {
		p.jobs = make(chan job, 4*p.workers)
		for range p.workers {
			go func(jobs <-chan job) {
				for j := range jobs {
					runJob(j)
				}
			}(p.jobs)
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go runJob(j)
		return
	}
	p.jobs <- j // workers never take mu, so this cannot deadlock
}

// Close stops the workers once their queued work is done. A closed pool
// still works: it falls back to new goroutines.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.once.Do(func() {}) // never start workers after Close
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		if p.jobs != nil {
			close(p.jobs)
		}
	}
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
