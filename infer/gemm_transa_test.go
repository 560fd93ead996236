package infer_test

import (
	"context"
	"math"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// TestGemmTransAManyRows: transA with more output rows than the inner
// dimension, split over threads, must match a reference (it once panicked).
func TestGemmTransAManyRows(t *testing.T) {
	const m, k, n = 300, 7, 33
	b := ir.NewBuilder("g", 13)
	a := b.Input("a", tensor.Float32, k, m)
	bw := make([]float32, k*n)
	for i := range bw {
		bw[i] = float32(i%11) - 5
	}
	w := b.Const("w", tensor.FromFloat32(tensor.Shape{k, n}, bw))
	b.Output(b.Op("Gemm", "gemm", []ir.ValueID{a, w}, ir.IntAttr("transA", 1)))
	av := make([]float32, k*m)
	for i := range av {
		av[i] = float32(i%13)/13 - 0.5
	}
	for _, threads := range []int{1, 2, 4} {
		for _, tier := range []string{"generic", ""} {
			s, err := infer.NewSession(b.G, infer.Options{Threads: threads, Kernels: tier})
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.RunInputs(context.Background(), []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{k, m}, av)})
			if err != nil {
				t.Fatal(err)
			}
			y := out[0].F32()
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var want float64
					for p := 0; p < k; p++ {
						want += float64(av[p*m+i]) * float64(bw[p*n+j])
					}
					if math.Abs(float64(y[i*n+j])-want) > 1e-4*(1+math.Abs(want)) {
						t.Fatalf("threads %d tier %q: y[%d,%d] = %v, want %v", threads, tier, i, j, y[i*n+j], want)
					}
				}
			}
		}
	}
}
