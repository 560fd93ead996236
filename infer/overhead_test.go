package infer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// BenchmarkSessionOverhead times a chain of 16 Relu nodes on 8 values:
// almost all of it is the executor's per-node cost.
func BenchmarkSessionOverhead(b *testing.B) {
	bl := ir.NewBuilder("chain", 14)
	x := bl.Input("x", tensor.Float32, 1, 8)
	y := x
	for i := range 16 {
		y = bl.Op("Relu", fmt.Sprintf("r%d", i), []ir.ValueID{y})
	}
	bl.Output(y)
	s, err := infer.NewSession(bl.G, infer.Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	in := []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{1, 8}, make([]float32, 8))}
	out := []*tensor.Tensor{{}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.RunInto(ctx, in, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/16, "ns/node")
}
