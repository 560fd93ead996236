package kernel

import (
	"math"
	"testing"

	"github.com/goslim/goslim/tensor"
)

func TestOutputSize(t *testing.T) {
	cases := []struct {
		shape tensor.Shape
		want  int
	}{
		{tensor.Shape{}, 1},
		{tensor.Shape{0}, 0},
		{tensor.Shape{3, 0, 5}, 0},
		{tensor.Shape{2, 3, 4}, 24},
		{tensor.Shape{-1, 2}, -1},
		{tensor.Shape{tensor.MaxElements}, tensor.MaxElements},
		{tensor.Shape{tensor.MaxElements, 2}, -1},
		{tensor.Shape{math.MaxInt, math.MaxInt}, -1},
		{tensor.Shape{1 << 32, 1 << 32}, -1},
	}
	for _, c := range cases {
		if got := outputSize(c.shape); got != c.want {
			t.Errorf("outputSize(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
}

// TestParallelTaskAndPool checks that ParallelTask covers the range once
// with and without a pool, and that a closed pool still works.
func TestParallelTaskAndPool(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		for _, pooled := range []bool{false, true} {
			c := NewCtx(nil, threads, nil)
			if pooled {
				c.Pool = NewPool(threads)
			}
			for _, n := range []int{0, 1, 2, 7, 100} {
				task := &countTask{hits: make([]int32, n)}
				c.ParallelTask(n, task)
				for i, h := range task.hits {
					if h != 1 {
						t.Fatalf("threads %d pooled %v n %d: index %d visited %d times", threads, pooled, n, i, h)
					}
				}
				hits := make([]int32, n)
				c.Parallel(n, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						hits[i]++
					}
				})
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("Parallel threads %d pooled %v n %d: index %d visited %d times", threads, pooled, n, i, h)
					}
				}
			}
			c.Pool.Close()
			c.Pool.Close() // idempotent
			task := &countTask{hits: make([]int32, 10)}
			c.ParallelTask(10, task)
			for i, h := range task.hits {
				if h != 1 {
					t.Fatalf("after Close: index %d visited %d times", i, h)
				}
			}
		}
	}
}

// countTask counts visits per index (chunks are disjoint, so no races).
type countTask struct{ hits []int32 }

func (c *countTask) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		c.hits[i]++
	}
}

// TestParallelTaskNoAllocs checks that a pooled ParallelTask allocates
// nothing once the workers run.
func TestParallelTaskNoAllocs(t *testing.T) {
	c := NewCtx(nil, 2, nil)
	c.Pool = NewPool(2)
	defer c.Pool.Close()
	task := &countTask{hits: make([]int32, 64)}
	c.ParallelTask(64, task)
	if n := testing.AllocsPerRun(50, func() { c.ParallelTask(64, task) }); n != 0 {
		t.Fatalf("ParallelTask allocated %v times per call", n)
	}
}

// TestSlotHeaders checks that a SlotAllocator's outputs reuse one header
// per slot and that plain allocators get fresh headers.
func TestSlotHeaders(t *testing.T) {
	c := NewCtx(nil, 1, fixedSlots{})
	out := make([]*tensor.Tensor, 1)
	c.Begin(out)
	a, err := c.Output(0, tensor.Float32, tensor.Shape{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	c.Begin(out)
	b, err := c.Output(0, tensor.Float32, tensor.Shape{6})
	if err != nil {
		t.Fatal(err)
	}
	if a != b || !b.Shape.Equal(tensor.Shape{6}) {
		t.Fatalf("slot header not reused: %p %p %v", a, b, b.Shape)
	}
	if n := testing.AllocsPerRun(20, func() {
		c.Begin(out)
		if _, err := c.Output(0, tensor.Float32, tensor.Shape{2, 3}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Output with a slot allocator allocated %v times", n)
	}
	h := NewCtx(nil, 1, nil)
	h.Begin(out)
	x, _ := h.Output(0, tensor.Float32, tensor.Shape{1})
	h.Begin(out)
	y, _ := h.Output(0, tensor.Float32, tensor.Shape{1})
	if x == y {
		t.Fatal("plain allocator reused a header")
	}
}

// fixedSlots is a SlotAllocator that keeps storage of the right size.
type fixedSlots struct{}

func (fixedSlots) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	t, err := tensor.New(dt, shape)
	return t, -1, err
}

func (fixedSlots) AllocSlot(t *tensor.Tensor, dt tensor.DType, n, hint int) (int, error) {
	if d, ok := t.Data.([]float32); ok && len(d) == n {
		return 0, nil
	}
	d, err := tensor.MakeSlice(dt, n)
	t.Data = d
	return 0, err
}
