package ops

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// nnRun builds op through the ops table and runs it once with the given
// thread count. constW marks input 1 as a constant (as an initializer
// would be), so builders may precompute from it. The first input's dtype is
// given as its static type, so Typed entries are exercised.
func nnRun(op string, opset int64, attrs ir.Attrs, nOut, threads int, constW bool, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Name: "n", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, nOut)}
	info := &kernel.Info{Node: node, Opset: opset, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, t := range in {
		if t == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		info.Inputs[i] = ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}
	}
	if constW && len(in) > 1 {
		info.Consts[1] = in[1]
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		return nil, err
	}
	return kernel.RunNode(k, kernel.NewCtx(node, threads, nil), nOut, in)
}

// nnTensor makes a tensor of dt holding v (converted as storeFloat64 does).
func nnTensor(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	t, err := tensor.New(dt, shape)
	if err != nil {
		panic(err)
	}
	if err := storeFloat64(kernel.NewCtx(nil, 1, nil), t, v); err != nil {
		panic(err)
	}
	return t
}

// nnRandVals returns n values; integral ones for integer dtypes, values
// exactly representable in float16 otherwise (multiples of 1/8 in [-4, 4]).
func nnRandVals(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(r.IntN(65)-32) / 8
	}
	return v
}

// nnValues returns a tensor's elements as float64.
func nnValues(t *tensor.Tensor) []float64 {
	v := make([]float64, t.Len())
	for i := range v {
		v[i] = t.Float64At(i)
	}
	return v
}

// nnCheck compares a result to the reference values with a relative
// tolerance (0 means exact).
func nnCheck(t *testing.T, name string, got *tensor.Tensor, dt tensor.DType, shape tensor.Shape, want []float64, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no output", name)
	}
	if got.DType != dt || !got.Shape.Equal(shape) {
		t.Fatalf("%s: got %v%v, want %v%v", name, got.DType, got.Shape, dt, shape)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i, w := range want {
		g := got.Float64At(i)
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: element %d = %g, want %g", name, i, g, w)
		}
	}
}

// nnTol is the comparison tolerance for a float dtype.
func nnTol(dt tensor.DType) float64 {
	switch dt {
	case tensor.Float16:
		return 2e-2
	case tensor.Float32:
		return 1e-4
	case tensor.Float64:
		return 1e-10
	}
	return 0
}

// nnWantErr checks that err is an error mentioning sub.
func nnWantErr(t *testing.T, name string, err error, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", name, sub)
	}
	if !strings.Contains(err.Error(), sub) {
		t.Fatalf("%s: error %q does not contain %q", name, err, sub)
	}
}

// nnInts64 converts ints for attributes.
func nnInts64(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// nnNextIdx advances a multi-index; it reports false after the last one.
func nnNextIdx(idx, dims []int) bool {
	for d := len(idx) - 1; d >= 0; d-- {
		idx[d]++
		if idx[d] < dims[d] {
			return true
		}
		idx[d] = 0
	}
	return false
}

func TestNNWinResolve(t *testing.T) {
	c := kernel.NewCtx(nil, 1, nil)
	tests := []struct {
		name    string
		a       nnWinAttrs
		in, k   []int
		out     []int
		padB    []int
		wantErr string
	}{
		{"valid", nnWinAttrs{autoPad: "VALID"}, []int{7}, []int{3}, []int{5}, []int{0}, ""},
		{"same_upper", nnWinAttrs{autoPad: "SAME_UPPER", strides: []int{2}}, []int{7}, []int{4}, []int{4}, []int{1}, ""},
		{"same_lower", nnWinAttrs{autoPad: "SAME_LOWER", strides: []int{2}}, []int{7}, []int{4}, []int{4}, []int{2}, ""},
		{"pads", nnWinAttrs{autoPad: "NOTSET", pads: []int{1, 2}}, []int{5}, []int{3}, []int{6}, []int{1}, ""},
		{"ceil", nnWinAttrs{autoPad: "NOTSET", strides: []int{2}, ceil: true}, []int{4}, []int{3}, []int{2}, []int{0}, ""},
		// The last ceil window would start in the end padding: dropped.
		{"ceil_drop", nnWinAttrs{autoPad: "NOTSET", strides: []int{2}, pads: []int{0, 1}, ceil: true}, []int{4}, []int{2}, []int{2}, []int{0}, ""},
		{"dilated", nnWinAttrs{autoPad: "NOTSET", dilations: []int{2}}, []int{7}, []int{3}, []int{3}, []int{0}, ""},
		{"too_big_strict", nnWinAttrs{autoPad: "NOTSET", strict: true}, []int{2}, []int{3}, nil, nil, "exceeds padded input"},
		{"too_big_pool", nnWinAttrs{autoPad: "NOTSET"}, []int{2}, []int{4}, nil, nil, "exceeds padded input"},
		// Extent 3 on 2 inputs: floor(-1/2 + 1) = 0 windows, or one in ceil mode.
		{"empty_pool", nnWinAttrs{autoPad: "NOTSET", strides: []int{2}}, []int{2}, []int{3}, []int{0}, []int{0}, ""},
		{"empty_pool_ceil", nnWinAttrs{autoPad: "NOTSET", strides: []int{2}, ceil: true}, []int{2}, []int{3}, []int{1}, []int{0}, ""},
		{"bad_len", nnWinAttrs{autoPad: "NOTSET", strides: []int{1, 1}}, []int{5}, []int{3}, nil, nil, "strides has 2 values"},
	}
	for _, tc := range tests {
		w, err := tc.a.resolve(c, tc.in, tc.k)
		if tc.wantErr != "" {
			nnWantErr(t, tc.name, err, tc.wantErr)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tensor.Shape(w.out).Equal(tc.out) || !tensor.Shape(w.padB).Equal(tc.padB) {
			t.Errorf("%s: out %v padB %v, want %v %v", tc.name, w.out, w.padB, tc.out, tc.padB)
		}
	}
}
