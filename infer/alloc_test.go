package infer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// allocRandInput returns a seeded input of the graph's input shape with
// the given batch.
func allocRandInput(t testing.TB, g *ir.Graph, batch int) *tensor.Tensor {
	v := &g.Values[g.Inputs[0]]
	shape := tensor.Shape{batch}
	for _, d := range v.Type.Shape[1:] {
		shape = append(shape, int(d.Size))
	}
	x := tensor.FromFloat32(shape, make([]float32, shape.Size()))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range x.F32() {
		x.F32()[i] = 2*r.Float32() - 1
	}
	return x
}

// countingKernel counts the heap allocations of one kernel's calls: the
// fewest seen in one call (the process-wide counter also sees the
// occasional allocation of another goroutine).
type countingKernel struct {
	k      kernel.Kernel
	allocs uint64
	calls  int
}

func (c *countingKernel) Run(ctx *kernel.Ctx, in, out []*tensor.Tensor) error {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	err := c.k.Run(ctx, in, out)
	runtime.ReadMemStats(&b)
	if n := b.Mallocs - a.Mallocs; c.calls == 0 || n < c.allocs {
		c.allocs = n
	}
	c.calls++
	return err
}

// allocCulprits runs s twice more with every kernel wrapped in a counter
// and names the nodes that allocated.
func allocCulprits(s *Session, in []*tensor.Tensor) string {
	counters := make([]*countingKernel, len(s.steps))
	for i := range s.steps {
		counters[i] = &countingKernel{k: s.steps[i].k}
		s.steps[i].k = counters[i]
	}
	defer func() {
		for i := range s.steps {
			s.steps[i].k = counters[i].k
		}
	}()
	out := make([]*tensor.Tensor, len(s.g.Outputs))
	for i := range out {
		out[i] = &tensor.Tensor{}
	}
	for range 4 {
		if err := s.RunInto(context.Background(), in, out); err != nil {
			return err.Error()
		}
	}
	var b strings.Builder
	for i, c := range counters {
		if c.allocs > 0 {
			st := &s.steps[i]
			fmt.Fprintf(&b, "\n  %s [%s]: %d allocs per call", st.ctx.Node.Label(), s.records[s.recordOf(st.node)].Kernel, c.allocs)
		}
	}
	return b.String()
}

// recordOf returns the index of node ni's record.
func (s *Session) recordOf(ni int) int {
	for i, r := range s.records {
		if r.Node == ni {
			return i
		}
	}
	return 0
}

// TestRunIntoAllocatesNothing checks the steady state of the reference
// models (LeNet-5, ResNet-8, the MLP and MobileNetV2-0.5 on 3x96x96):
// after warm-up, RunInto allocates nothing, at one and two threads and
// batch 1 and 8. On failure it names the kernels that allocate.
func TestRunIntoAllocatesNothing(t *testing.T) {
	models := []struct {
		name string
		opts zoo.Options
	}{
		{"lenet", zoo.Options{}},
		{"resnet8", zoo.Options{InC: 3, InH: 32, InW: 32}},
		{"mlp", zoo.Options{}},
		{"mobilenetv2", zoo.Options{Width: 0.5, InC: 3, InH: 96, InW: 96}},
	}
	for _, m := range models {
		g, err := zoo.Build(m.name, m.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{1, 8} {
				s, err := NewSession(g, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				in := []*tensor.Tensor{allocRandInput(t, g, batch)}
				out := []*tensor.Tensor{{}}
				ctx := context.Background()
				run := func() {
					if err := s.RunInto(ctx, in, out); err != nil {
						t.Fatal(err)
					}
				}
				run()
				run()
				if n := testing.AllocsPerRun(10, run); n != 0 {
					t.Errorf("%s threads %d batch %d: %v allocations per RunInto:%s", m.name, threads, batch, n, allocCulprits(s, in))
				}
			}
		}
	}
}

// AllocCulprits runs s a few more times with every kernel wrapped in an
// allocation counter and names the nodes that allocated (for the
// allocation tests of package infer_test, which can import ptq).
func AllocCulprits(s *Session, in []*tensor.Tensor) string { return allocCulprits(s, in) }
