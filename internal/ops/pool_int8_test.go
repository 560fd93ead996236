package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/tensor"
)

// TestMaxPool2x2Int8 checks the 8-bit 2x2/stride-2 MaxPool fast path
// (whole planes, odd and even sizes, full-range values, 1-3 threads)
// against the reference pooling.
func TestMaxPool2x2Int8(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sizes := [][2]int{{2, 2}, {3, 3}, {4, 6}, {5, 7}, {24, 24}, {13, 28}, {2, 9}}
	for it, hw := range sizes {
		for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
			c := poolCfg{n: 1 + it%3, c: 1 + (it*5)%7, in: []int{hw[0], hw[1]}, k: []int{2, 2},
				stride: []int{2, 2}, dil: []int{1, 1}, padB: []int{0, 0}, padE: []int{0, 0}}
			xs := nnSpatialShape(c.n, c.c, c.in)
			vals := make([]float64, xs.Size())
			for i := range vals {
				if dt == tensor.Uint8 {
					vals[i] = float64(r.IntN(256))
				} else {
					vals[i] = float64(r.IntN(256) - 128)
				}
			}
			want, _, ys := poolRef(c, vals, true)
			out, err := nnRun("MaxPool", 12, c.attrs(true), 1, 1+it%3, false, nnTensor(dt, xs, vals))
			if err != nil {
				t.Fatalf("%v %v: %v", hw, dt, err)
			}
			nnCheck(t, fmt.Sprintf("MaxPool 2x2 %v %v", hw, dt), out[0], dt, ys, poolLowest(want, dt), 0)
		}
	}
}

// TestAveragePoolAllPadRows checks float32 AveragePool windows whose rows
// all lie in the padding (dilated window, pads smaller than the kernel):
// with count_include_pad they average to 0 like the float64 path, never
// NaN.
func TestAveragePoolAllPadRows(t *testing.T) {
	c := poolCfg{n: 1, c: 1, in: []int{2, 3}, k: []int{2, 1}, stride: []int{1, 1}, dil: []int{3, 1},
		padB: []int{1, 0}, padE: []int{1, 0}, includePad: true}
	xs := nnSpatialShape(c.n, c.c, c.in)
	vals := []float64{1, 2, 3, 4, 5, 6}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
		want, _, ys := poolRef(c, vals, false)
		out, err := nnRun("AveragePool", 19, c.attrs(false), 1, 1, false, nnTensor(dt, xs, vals))
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		nnCheck(t, fmt.Sprintf("AveragePool all-pad rows %v", dt), out[0], dt, ys, want, 0)
	}
}
