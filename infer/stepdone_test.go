package infer_test

import (
	"context"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/tensor"
)

// TestStepDone checks that Options.StepDone reports every step once per
// run, in execution order, by a node the step computes: with fusion the
// two Add+Relu pairs of chain run as two steps headed by the Adds.
func TestStepDone(t *testing.T) {
	g, a, _, y := chain(t)
	for _, fuse := range []bool{true, false} {
		var got []int
		s, err := infer.NewSession(g, infer.Options{Threads: 1, NoFusion: !fuse, StepDone: func(n int) { got = append(got, n) }})
		if err != nil {
			t.Fatal(err)
		}
		x := tensor.FromFloat32(tensor.Shape{2, 3}, []float32{1, 2, 3, 4, 5, 6})
		for run := range 2 {
			got = got[:0]
			if _, err := s.Run(context.Background(), map[string]*tensor.Tensor{"x": x}); err != nil {
				t.Fatal(err)
			}
			prod := g.Producers()
			want := []int{prod[a], prod[g.Nodes[prod[y]].Inputs[0]]}
			if !fuse {
				want = []int{0, 1, 2, 3}
			}
			if len(got) != len(want) {
				t.Fatalf("fusion %v run %d: steps %v, want %v", fuse, run, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("fusion %v run %d: steps %v, want %v", fuse, run, got, want)
				}
			}
		}
	}
}
