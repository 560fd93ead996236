package ops

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// shapeTestDTypes are the storage kinds every data-movement op must handle.
var shapeTestDTypes = []tensor.DType{tensor.Float32, tensor.Float16, tensor.Float64, tensor.Int8,
	tensor.Uint8, tensor.Int16, tensor.Int32, tensor.Int64, tensor.Bool, tensor.Uint16, tensor.Uint64}

// shapeRun builds op through the ops table at the given opset and runs it
// once. threads > 1 exercises the parallel paths.
func shapeRun(op string, opset int64, attrs ir.Attrs, nOut, threads int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Name: "n", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, nOut)}
	info := &kernel.Info{Node: node, Opset: opset, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		return nil, err
	}
	return kernel.RunNode(k, kernel.NewCtx(node, threads, nil), nOut, in)
}

// seqTensor returns a tensor of dt whose element i holds a value derived
// from i (distinct where the dtype allows).
func seqTensor(dt tensor.DType, shape ...int) *tensor.Tensor {
	t, err := tensor.New(dt, shape)
	if err != nil {
		panic(err)
	}
	v := make([]float64, t.Len())
	for i := range v {
		switch dt {
		case tensor.Bool:
			v[i] = float64(i % 3 % 2)
		case tensor.Int8:
			v[i] = float64(i%250 - 125)
		case tensor.Uint8:
			v[i] = float64(i % 256)
		case tensor.Uint16, tensor.Uint32, tensor.Uint64:
			v[i] = float64(i%60000 + 3)
		case tensor.Float16:
			v[i] = float64(i%2000) - 1000.5
		default:
			v[i] = float64(i) - 7.25
		}
	}
	if err := storeFloat64(kernel.NewCtx(nil, 1, nil), t, v); err != nil {
		panic(err)
	}
	return t
}

// scalarOf returns a scalar tensor of dt holding v.
func scalarOf(dt tensor.DType, v float64) *tensor.Tensor {
	t := seqTensor(dt)
	if err := storeFloat64(kernel.NewCtx(nil, 1, nil), t, []float64{v}); err != nil {
		panic(err)
	}
	return t
}

func i64s(v ...int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{len(v)}, v) }

// shapeRef computes the expected output of a data-movement op: element at
// output multi-index idx is x[src(idx)], or cv when src returns -1.
func shapeRef(x *tensor.Tensor, shape tensor.Shape, cv float64, src func(idx []int) int) []float64 {
	n := shape.Size()
	out := make([]float64, n)
	idx := make([]int, len(shape))
	for i := range n {
		rem := i
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = rem % shape[d]
			rem /= shape[d]
		}
		if s := src(idx); s < 0 {
			out[i] = cv
		} else {
			out[i] = x.Float64At(s)
		}
	}
	return out
}

// flatIndex returns the row-major offset of idx in shape.
func flatIndex(shape tensor.Shape, idx []int) int {
	o := 0
	for d, n := range shape {
		o = o*n + idx[d]
	}
	return o
}

func checkTensor(t *testing.T, name string, got *tensor.Tensor, dt tensor.DType, shape tensor.Shape, want []float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no output", name)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if got.DType != dt || !got.Shape.Equal(shape) {
		t.Fatalf("%s: got %v%v, want %v%v", name, got.DType, got.Shape, dt, shape)
	}
	for i, w := range want {
		if g := got.Float64At(i); g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Fatalf("%s: element %d = %v, want %v", name, i, g, w)
		}
	}
}

func wantErr(t *testing.T, name string, err error, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", name, sub)
	}
	if !strings.Contains(err.Error(), sub) {
		t.Fatalf("%s: error %q, want one containing %q", name, err, sub)
	}
}

func TestReshapeFamily(t *testing.T) {
	x := seqTensor(tensor.Float32, 2, 3, 4)
	cases := []struct {
		op        string
		opset     int64
		attrs     ir.Attrs
		in        []*tensor.Tensor
		want      tensor.Shape
		errSubstr string
	}{
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(4, 6)}, tensor.Shape{4, 6}, ""},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(0, -1)}, tensor.Shape{2, 12}, ""},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(-1)}, tensor.Shape{24}, ""},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(2, 0, 2, 2)}, tensor.Shape{2, 3, 2, 2}, ""},
		{"Reshape", 14, ir.Attrs{ir.IntAttr("allowzero", 1)}, []*tensor.Tensor{x, i64s(4, 6)}, tensor.Shape{4, 6}, ""},
		{"Reshape", 14, ir.Attrs{ir.IntAttr("allowzero", 1)}, []*tensor.Tensor{x, i64s(0, 6)}, nil, "cannot reshape"},
		{"Reshape", 14, ir.Attrs{ir.IntAttr("allowzero", 1)}, []*tensor.Tensor{seqTensor(tensor.Float32, 0, 3), i64s(3, 0)}, tensor.Shape{3, 0}, ""},
		{"Reshape", 14, ir.Attrs{ir.IntAttr("allowzero", 1)}, []*tensor.Tensor{seqTensor(tensor.Float32, 0, 3), i64s(-1, 0)}, nil, "-1 together with 0"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(5, -1)}, nil, "cannot reshape"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(-1, -1)}, nil, "more than one -1"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(5, 5)}, nil, "cannot reshape"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(2, 3, 4, 0)}, nil, "rank 3"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(-2, 12)}, nil, "invalid dim"},
		{"Reshape", 13, nil, []*tensor.Tensor{x, i64s(math.MaxInt64, 0)}, nil, "invalid dim"},
		{"Reshape", 13, nil, []*tensor.Tensor{x}, nil, "missing input"},
		{"Flatten", 13, nil, []*tensor.Tensor{x}, tensor.Shape{2, 12}, ""},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", 0)}, []*tensor.Tensor{x}, tensor.Shape{1, 24}, ""},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", 3)}, []*tensor.Tensor{x}, tensor.Shape{24, 1}, ""},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", -1)}, []*tensor.Tensor{x}, tensor.Shape{6, 4}, ""},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", -3)}, []*tensor.Tensor{x}, tensor.Shape{1, 24}, ""},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", 4)}, []*tensor.Tensor{x}, nil, "out of range"},
		{"Flatten", 13, ir.Attrs{ir.IntAttr("axis", -4)}, []*tensor.Tensor{x}, nil, "out of range"},
		{"Squeeze", 11, ir.Attrs{ir.IntsAttr("axes", 0, -2)}, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 3, 1, 2)}, tensor.Shape{3, 2}, ""},
		{"Squeeze", 13, nil, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 3, 1, 2), i64s(2)}, tensor.Shape{1, 3, 2}, ""},
		{"Squeeze", 13, nil, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 3, 1, 2)}, tensor.Shape{3, 2}, ""},
		{"Squeeze", 11, nil, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 1)}, tensor.Shape{}, ""},
		// At opset 13 an axes attribute is not part of the op: ignored.
		{"Squeeze", 13, ir.Attrs{ir.IntsAttr("axes", 0)}, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 3, 1)}, tensor.Shape{3}, ""},
		{"Squeeze", 13, nil, []*tensor.Tensor{x, i64s(1)}, nil, "size is not 1"},
		{"Squeeze", 13, nil, []*tensor.Tensor{x, i64s(3)}, nil, "out of range"},
		{"Squeeze", 13, nil, []*tensor.Tensor{seqTensor(tensor.Float32, 1, 1), i64s(0, -2)}, nil, "repeated"},
		{"Unsqueeze", 11, ir.Attrs{ir.IntsAttr("axes", 0, 4)}, []*tensor.Tensor{x}, tensor.Shape{1, 2, 3, 4, 1}, ""},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{x, i64s(-1, 1)}, tensor.Shape{2, 1, 3, 4, 1}, ""},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{x, i64s(5, 0, 2)}, tensor.Shape{1, 2, 1, 3, 4, 1}, ""},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{seqTensor(tensor.Float32), i64s(0)}, tensor.Shape{1}, ""},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{x, i64s(1, 1)}, nil, "repeated"},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{x, i64s(5)}, nil, "out of range"},
		{"Unsqueeze", 13, nil, []*tensor.Tensor{x}, nil, "missing input"},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s@%d%v%v", tc.op, tc.opset, tc.attrs, tc.in[len(tc.in)-1])
		out, err := shapeRun(tc.op, tc.opset, tc.attrs, 1, 1, tc.in...)
		if tc.errSubstr != "" {
			wantErr(t, name, err, tc.errSubstr)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		x := tc.in[0]
		want := make([]float64, x.Len())
		for i := range want {
			want[i] = x.Float64At(i)
		}
		checkTensor(t, name, out[0], x.DType, tc.want, want)
		if x.Len() > 0 && &out[0].F32()[0] != &x.F32()[0] {
			t.Errorf("%s: output is a copy, want a view of the input", name)
		}
	}
	// Every dtype is viewed, not converted.
	for _, dt := range shapeTestDTypes {
		x := seqTensor(dt, 3, 1, 5)
		out, err := shapeRun("Reshape", 13, nil, 1, 1, x, i64s(5, 3))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, x.Len())
		for i := range want {
			want[i] = x.Float64At(i)
		}
		checkTensor(t, "Reshape "+dt.String(), out[0], dt, tensor.Shape{5, 3}, want)
		out, err = shapeRun("Squeeze", 13, nil, 1, 1, x)
		if err != nil {
			t.Fatal(err)
		}
		checkTensor(t, "Squeeze "+dt.String(), out[0], dt, tensor.Shape{3, 5}, want)
	}
}

// permutations returns all permutations of 0..n-1.
func permutations(n int) [][]int64 {
	if n == 0 {
		return [][]int64{{}}
	}
	var out [][]int64
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int64{}, p[:i]...), int64(n-1)), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestTranspose(t *testing.T) {
	for _, shape := range []tensor.Shape{{}, {7}, {3, 5}, {2, 3, 5}, {2, 1, 3, 5}, {3, 0, 2}} {
		for _, perm := range permutations(len(shape)) {
			for _, dt := range shapeTestDTypes {
				x := seqTensor(dt, shape...)
				out, err := shapeRun("Transpose", 13, ir.Attrs{ir.IntsAttr("perm", perm...)}, 1, 1, x)
				if err != nil {
					t.Fatal(err)
				}
				os := make(tensor.Shape, len(shape))
				for i, p := range perm {
					os[i] = shape[p]
				}
				want := shapeRef(x, os, 0, func(idx []int) int {
					src := make([]int, len(shape))
					for i, p := range perm {
						src[p] = idx[i]
					}
					return flatIndex(shape, src)
				})
				checkTensor(t, fmt.Sprintf("Transpose %v%v perm %v", dt, shape, perm), out[0], dt, os, want)
			}
		}
	}
	// Default perm reverses; large inputs take the parallel path.
	x := seqTensor(tensor.Float32, 67, 31, 41)
	out, err := shapeRun("Transpose", 13, nil, 1, 4, x)
	if err != nil {
		t.Fatal(err)
	}
	os := tensor.Shape{41, 31, 67}
	checkTensor(t, "Transpose default", out[0], tensor.Float32, os, shapeRef(x, os, 0, func(idx []int) int {
		return flatIndex(x.Shape, []int{idx[2], idx[1], idx[0]})
	}))
	for _, perm := range [][]int64{{0, 1}, {0, 0, 1}, {0, 1, 3}, {0, 1, 2, 3}} {
		_, err := shapeRun("Transpose", 13, ir.Attrs{ir.IntsAttr("perm", perm...)}, 1, 1, seqTensor(tensor.Float32, 2, 3, 4))
		wantErr(t, fmt.Sprint("perm ", perm), err, "perm")
	}
}

func TestConcat(t *testing.T) {
	for _, dt := range shapeTestDTypes {
		for axis := -3; axis < 3; axis++ {
			a := int((axis + 3) % 3)
			shapes := []tensor.Shape{{2, 3, 4}, {2, 3, 4}, {2, 3, 4}}
			shapes[1][a] = 0
			shapes[2][a] = 5
			var in []*tensor.Tensor
			for _, s := range shapes {
				in = append(in, seqTensor(dt, s...))
			}
			out, err := shapeRun("Concat", 13, ir.Attrs{ir.IntAttr("axis", int64(axis))}, 1, 1, in...)
			if err != nil {
				t.Fatal(err)
			}
			os := tensor.Shape{2, 3, 4}
			os[a] = shapes[0][a] + shapes[1][a] + shapes[2][a]
			// Reference: element by element over the output.
			want := make([]float64, os.Size())
			idx := make([]int, 3)
			for i := range want {
				rem := i
				for d := 2; d >= 0; d-- {
					idx[d] = rem % os[d]
					rem /= os[d]
				}
				k, pos := 0, idx[a]
				for pos >= shapes[k][a] {
					pos -= shapes[k][a]
					k++
				}
				src := append([]int{}, idx...)
				src[a] = pos
				want[i] = in[k].Float64At(flatIndex(shapes[k], src))
			}
			checkTensor(t, fmt.Sprintf("Concat %v axis %d", dt, axis), out[0], dt, os, want)
		}
	}
	x := seqTensor(tensor.Float32, 2, 3)
	for _, tc := range []struct {
		in    []*tensor.Tensor
		axis  int64
		errSS string
	}{
		{[]*tensor.Tensor{x, seqTensor(tensor.Float32, 3, 3)}, 1, "dim 0 differs"},
		{[]*tensor.Tensor{x, seqTensor(tensor.Float32, 2, 3, 1)}, 1, "ranks differ"},
		{[]*tensor.Tensor{x, seqTensor(tensor.Int64, 2, 3)}, 1, "dtype"},
		{[]*tensor.Tensor{x, x}, 2, "out of range"},
		{[]*tensor.Tensor{seqTensor(tensor.Float32), seqTensor(tensor.Float32)}, 0, "scalars"},
	} {
		_, err := shapeRun("Concat", 13, ir.Attrs{ir.IntAttr("axis", tc.axis)}, 1, 1, tc.in...)
		wantErr(t, "Concat error", err, tc.errSS)
	}
	_, err := shapeRun("Concat", 13, nil, 1, 1, x, x)
	wantErr(t, "Concat without axis", err, "axis")
}

func TestSplit(t *testing.T) {
	x := seqTensor(tensor.Float32, 4, 7)
	cases := []struct {
		name  string
		opset int64
		attrs ir.Attrs
		in    []*tensor.Tensor
		nOut  int
		axis  int
		sizes []int
		errSS string
	}{
		{"attr", 11, ir.Attrs{ir.IntAttr("axis", 1), ir.IntsAttr("split", 2, 0, 5)}, []*tensor.Tensor{x}, 3, 1, []int{2, 0, 5}, ""},
		{"attr negative axis", 11, ir.Attrs{ir.IntAttr("axis", -2), ir.IntsAttr("split", 1, 3)}, []*tensor.Tensor{x}, 2, 0, []int{1, 3}, ""},
		{"equal", 11, nil, []*tensor.Tensor{x}, 2, 0, []int{2, 2}, ""},
		{"input", 13, ir.Attrs{ir.IntAttr("axis", 1)}, []*tensor.Tensor{x, i64s(3, 4)}, 2, 1, []int{3, 4}, ""},
		{"equal 13", 13, ir.Attrs{ir.IntAttr("axis", 1)}, []*tensor.Tensor{x}, 7, 1, []int{1, 1, 1, 1, 1, 1, 1}, ""},
		{"uneven 13", 13, ir.Attrs{ir.IntAttr("axis", 1)}, []*tensor.Tensor{x}, 3, 1, nil, "equal parts"},
		{"num_outputs", 18, ir.Attrs{ir.IntAttr("axis", 1), ir.IntAttr("num_outputs", 3)}, []*tensor.Tensor{x}, 3, 1, []int{3, 3, 1}, ""},
		{"num_outputs even", 18, ir.Attrs{ir.IntAttr("num_outputs", 2)}, []*tensor.Tensor{x}, 2, 0, []int{2, 2}, ""},
		{"num_outputs 4 of 7", 18, ir.Attrs{ir.IntAttr("axis", 1), ir.IntAttr("num_outputs", 4)}, []*tensor.Tensor{x}, 4, 1, []int{2, 2, 2, 1}, ""},
		{"num_outputs too many", 18, ir.Attrs{ir.IntAttr("num_outputs", 3)}, []*tensor.Tensor{seqTensor(tensor.Float32, 4)}, 3, 0, nil, "chunks"},
		{"num_outputs mismatch", 18, ir.Attrs{ir.IntAttr("num_outputs", 3)}, []*tensor.Tensor{x}, 2, 0, nil, "num_outputs"},
		{"empty input", 13, nil, []*tensor.Tensor{x, i64s()}, 2, 0, []int{2, 2}, ""},
		{"input 18", 18, ir.Attrs{ir.IntAttr("axis", 1)}, []*tensor.Tensor{x, i64s(6, 1)}, 2, 1, []int{6, 1}, ""},
		{"bad sum", 13, nil, []*tensor.Tensor{x, i64s(1, 2)}, 2, 0, nil, "does not sum"},
		{"negative", 13, nil, []*tensor.Tensor{x, i64s(5, -1)}, 2, 0, nil, "negative"},
		{"count", 13, nil, []*tensor.Tensor{x, i64s(1, 1, 2)}, 2, 0, nil, "entries"},
		{"axis", 13, ir.Attrs{ir.IntAttr("axis", 2)}, []*tensor.Tensor{x}, 2, 0, nil, "out of range"},
	}
	for _, tc := range cases {
		for _, dt := range shapeTestDTypes {
			in := append([]*tensor.Tensor{seqTensor(dt, tc.in[0].Shape...)}, tc.in[1:]...)
			out, err := shapeRun("Split", tc.opset, tc.attrs, tc.nOut, 1, in...)
			if tc.errSS != "" {
				wantErr(t, tc.name, err, tc.errSS)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			start := 0
			for i, s := range tc.sizes {
				os := in[0].Shape.Clone()
				os[tc.axis] = s
				want := shapeRef(in[0], os, 0, func(idx []int) int {
					src := append([]int{}, idx...)
					src[tc.axis] += start
					return flatIndex(in[0].Shape, src)
				})
				checkTensor(t, fmt.Sprintf("%s %v output %d", tc.name, dt, i), out[i], dt, os, want)
				start += s
			}
		}
	}
}

// sliceRef lists the source indices start:end:step selects on a dim of
// size n, walking the range element by element.
func sliceRef(start, end, step int64, n int) []int {
	clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
	if start < 0 {
		start += int64(n)
	}
	if end < 0 {
		end += int64(n)
	}
	var out []int
	if step > 0 {
		for i := clamp(start, 0, int64(n)); i < clamp(end, 0, int64(n)); i += step {
			out = append(out, int(i))
		}
	} else {
		for i := clamp(start, 0, int64(n)-1); i > clamp(end, -1, int64(n)-1); i += step {
			out = append(out, int(i))
		}
	}
	return out
}

func TestSlice(t *testing.T) {
	const big, small = math.MaxInt64, math.MinInt64
	shape := tensor.Shape{5, 6, 7}
	cases := []struct {
		starts, ends, axes, steps []int64
	}{
		{[]int64{1}, []int64{4}, nil, nil},
		{[]int64{0, 1, 2}, []int64{5, 5, 6}, nil, nil},
		{[]int64{-1, 0}, []int64{-6, 7}, []int64{2, 0}, []int64{-1, 2}},
		{[]int64{big, -2}, []int64{small, 1}, []int64{1, -1}, []int64{-2, -3}},
		{[]int64{small}, []int64{big}, []int64{-2}, []int64{4}},
		{[]int64{2}, []int64{2}, []int64{0}, nil},
		{[]int64{4}, []int64{1}, []int64{2}, nil},
		{[]int64{10}, []int64{20}, []int64{1}, nil},
		{[]int64{-10}, []int64{-20}, []int64{1}, []int64{-1}},
		{[]int64{3}, []int64{-100}, []int64{0}, []int64{small}},
		{[]int64{0}, []int64{100}, []int64{0}, []int64{big}},
		{[]int64{1, 1, 1}, []int64{-1, -1, -1}, []int64{2, 1, 0}, []int64{2, 3, 1}},
	}
	for _, tc := range cases {
		for _, dt := range shapeTestDTypes {
			x := seqTensor(dt, shape...)
			in := []*tensor.Tensor{x, i64s(tc.starts...), i64s(tc.ends...)}
			if tc.axes != nil || tc.steps != nil {
				in = append(in, nil)
				if tc.axes != nil {
					in[3] = i64s(tc.axes...)
				}
			}
			if tc.steps != nil {
				in = append(in, i64s(tc.steps...))
			}
			out, err := shapeRun("Slice", 13, nil, 1, 1, in...)
			name := fmt.Sprintf("Slice %v %v", dt, tc)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			lists := make([][]int, 3)
			for d := range lists {
				for i := range shape[d] {
					lists[d] = append(lists[d], i)
				}
			}
			for i := range tc.starts {
				d := i
				if tc.axes != nil {
					d = int((tc.axes[i] + 3) % 3)
				}
				step := int64(1)
				if tc.steps != nil {
					step = tc.steps[i]
				}
				lists[d] = sliceRef(tc.starts[i], tc.ends[i], step, shape[d])
			}
			os := tensor.Shape{len(lists[0]), len(lists[1]), len(lists[2])}
			want := shapeRef(x, os, 0, func(idx []int) int {
				return flatIndex(shape, []int{lists[0][idx[0]], lists[1][idx[1]], lists[2][idx[2]]})
			})
			checkTensor(t, name, out[0], dt, os, want)
		}
	}
	x := seqTensor(tensor.Float32, shape...)
	// Opset < 10: attributes.
	out, err := shapeRun("Slice", 9, ir.Attrs{ir.IntsAttr("starts", 1, -3), ir.IntsAttr("ends", 100, -1), ir.IntsAttr("axes", 0, 2)}, 1, 1, x)
	if err != nil {
		t.Fatal(err)
	}
	os := tensor.Shape{4, 6, 2}
	checkTensor(t, "Slice@9", out[0], tensor.Float32, os, shapeRef(x, os, 0, func(idx []int) int {
		return flatIndex(shape, []int{idx[0] + 1, idx[1], idx[2] + 4})
	}))
	// int32 inputs.
	out, err = shapeRun("Slice", 13, nil, 1, 1, x, &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{1}, Data: []int32{math.MaxInt32}},
		&tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{1}, Data: []int32{math.MinInt32}}, nil,
		&tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{1}, Data: []int32{-1}})
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Slice int32", out[0], tensor.Float32, shape, shapeRef(x, shape, 0, func(idx []int) int {
		return flatIndex(shape, []int{4 - idx[0], idx[1], idx[2]})
	}))
	for _, tc := range []struct {
		in    []*tensor.Tensor
		errSS string
	}{
		{[]*tensor.Tensor{x, i64s(0), i64s(1), i64s(0), i64s(0)}, "step 0"},
		{[]*tensor.Tensor{x, i64s(0), i64s(1), i64s(3)}, "out of range"},
		{[]*tensor.Tensor{x, i64s(0, 0), i64s(1, 1), i64s(1, -2)}, "repeated"},
		{[]*tensor.Tensor{x, i64s(0, 0), i64s(1)}, "entries"},
		{[]*tensor.Tensor{x, i64s(0, 0, 0, 0), i64s(1, 1, 1, 1)}, "rank"},
		{[]*tensor.Tensor{x, seqTensor(tensor.Float32, 1), i64s(1)}, "int64 or int32"},
		{[]*tensor.Tensor{x, i64s(0)}, "missing input"},
	} {
		_, err := shapeRun("Slice", 13, nil, 1, 1, tc.in...)
		wantErr(t, "Slice error", err, tc.errSS)
	}
}

func TestGather(t *testing.T) {
	shape := tensor.Shape{3, 4, 5}
	idx64 := &tensor.Tensor{DType: tensor.Int64, Shape: tensor.Shape{2, 2}, Data: []int64{0, -1, 2, 1}}
	idx32 := &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{3}, Data: []int32{1, -3, 0}}
	scalar := &tensor.Tensor{DType: tensor.Int64, Shape: tensor.Shape{}, Data: []int64{-2}}
	for _, dt := range shapeTestDTypes {
		x := seqTensor(dt, shape...)
		for axis := -3; axis < 3; axis++ {
			a := (axis + 3) % 3
			for _, it := range []*tensor.Tensor{idx64, idx32, scalar} {
				out, err := shapeRun("Gather", 13, ir.Attrs{ir.IntAttr("axis", int64(axis))}, 1, 1, x, it)
				if err != nil {
					t.Fatal(err)
				}
				var os tensor.Shape
				os = append(os, shape[:a]...)
				os = append(os, it.Shape...)
				os = append(os, shape[a+1:]...)
				ir := it.Rank()
				want := shapeRef(x, os, 0, func(idx []int) int {
					j := int(it.Float64At(flatIndex(it.Shape, idx[a:a+ir])))
					if j < 0 {
						j += shape[a]
					}
					src := append(append(append([]int{}, idx[:a]...), j), idx[a+ir:]...)
					return flatIndex(shape, src)
				})
				checkTensor(t, fmt.Sprintf("Gather %v axis %d %v", dt, axis, it), out[0], dt, os, want)
			}
		}
	}
	x := seqTensor(tensor.Float32, shape...)
	_, err := shapeRun("Gather", 13, nil, 1, 1, x, i64s(3))
	wantErr(t, "index 3", err, "out of range")
	_, err = shapeRun("Gather", 13, nil, 1, 1, x, i64s(-4))
	wantErr(t, "index -4", err, "out of range")
	_, err = shapeRun("Gather", 13, ir.Attrs{ir.IntAttr("axis", 3)}, 1, 1, x, i64s(0))
	wantErr(t, "axis 3", err, "out of range")
	_, err = shapeRun("Gather", 13, nil, 1, 1, x, seqTensor(tensor.Float32, 1))
	wantErr(t, "float indices", err, "int64 or int32")
	// Empty indices give an empty output.
	out, err := shapeRun("Gather", 13, ir.Attrs{ir.IntAttr("axis", 1)}, 1, 1, x, i64s())
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Gather empty", out[0], tensor.Float32, tensor.Shape{3, 0, 5}, nil)
}

func TestShapeOp(t *testing.T) {
	x := seqTensor(tensor.Float32, 2, 3, 4, 5)
	for _, tc := range []struct {
		opset      int64
		attrs      ir.Attrs
		want       []float64
		start, end int64
	}{
		{13, nil, []float64{2, 3, 4, 5}, 0, 0},
		{13, ir.Attrs{ir.IntAttr("start", 1)}, []float64{2, 3, 4, 5}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("start", 1)}, []float64{3, 4, 5}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("start", -1)}, []float64{5}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("end", -1)}, []float64{2, 3, 4}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("start", 1), ir.IntAttr("end", 3)}, []float64{3, 4}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("start", -10), ir.IntAttr("end", 10)}, []float64{2, 3, 4, 5}, 0, 0},
		{15, ir.Attrs{ir.IntAttr("start", 3), ir.IntAttr("end", 1)}, []float64{}, 0, 0},
		{21, ir.Attrs{ir.IntAttr("end", 0)}, []float64{}, 0, 0},
	} {
		out, err := shapeRun("Shape", tc.opset, tc.attrs, 1, 1, x)
		if err != nil {
			t.Fatal(err)
		}
		checkTensor(t, fmt.Sprint("Shape", tc.opset, tc.attrs), out[0], tensor.Int64, tensor.Shape{len(tc.want)}, tc.want)
	}
	out, err := shapeRun("Shape", 13, nil, 1, 1, seqTensor(tensor.Bool))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Shape scalar", out[0], tensor.Int64, tensor.Shape{0}, nil)
}

func TestConstant(t *testing.T) {
	v := seqTensor(tensor.Float16, 2, 3)
	for _, tc := range []struct {
		attrs ir.Attrs
		dt    tensor.DType
		shape tensor.Shape
		want  []float64
		errSS string
	}{
		{ir.Attrs{ir.TensorAttr("value", v)}, tensor.Float16, tensor.Shape{2, 3}, []float64{v.Float64At(0), v.Float64At(1), v.Float64At(2), v.Float64At(3), v.Float64At(4), v.Float64At(5)}, ""},
		{ir.Attrs{ir.FloatAttr("value_float", 1.5)}, tensor.Float32, tensor.Shape{}, []float64{1.5}, ""},
		{ir.Attrs{ir.FloatsAttr("value_floats", 1, 2.5)}, tensor.Float32, tensor.Shape{2}, []float64{1, 2.5}, ""},
		{ir.Attrs{ir.IntAttr("value_int", -3)}, tensor.Int64, tensor.Shape{}, []float64{-3}, ""},
		{ir.Attrs{ir.IntsAttr("value_ints", 4, 5, 6)}, tensor.Int64, tensor.Shape{3}, []float64{4, 5, 6}, ""},
		{ir.Attrs{ir.IntsAttr("value_ints")}, tensor.Int64, tensor.Shape{0}, nil, ""},
		{ir.Attrs{ir.StringAttr("value_string", "x")}, 0, nil, nil, "string tensors are not supported"},
		{ir.Attrs{{Name: "value_strings", Type: ir.AttrStrings, Strings: []string{"a"}}}, 0, nil, nil, "string tensors are not supported"},
		{ir.Attrs{{Name: "sparse_value", Type: 11}}, 0, nil, nil, "sparse"},
		{nil, 0, nil, nil, "no value"},
		{ir.Attrs{ir.IntAttr("value_int", 1), ir.FloatAttr("value_float", 1)}, 0, nil, nil, "more than one"},
		{ir.Attrs{ir.IntAttr("value", 1)}, 0, nil, nil, "not a tensor"},
	} {
		out, err := shapeRun("Constant", 13, tc.attrs, 1, 1)
		if tc.errSS != "" {
			wantErr(t, fmt.Sprint(tc.attrs), err, tc.errSS)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkTensor(t, fmt.Sprint(tc.attrs), out[0], tc.dt, tc.shape, tc.want)
	}
	// The output is a copy: writing it leaves the attribute alone.
	out, err := shapeRun("Constant", 13, ir.Attrs{ir.TensorAttr("value", v)}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	out[0].Data.([]uint16)[0] = 0x7bff
	if v.Data.([]uint16)[0] == 0x7bff {
		t.Fatal("Constant output shares storage with its attribute")
	}
}

func TestConstantOfShape(t *testing.T) {
	for _, dt := range shapeTestDTypes {
		val := seqTensor(dt, 1)
		if dt == tensor.Bool {
			val.Data.([]bool)[0] = true
		}
		for _, shape := range []tensor.Shape{{}, {3}, {2, 0, 4}, {2, 3, 4}} {
			dims := make([]int64, len(shape))
			for i, d := range shape {
				dims[i] = int64(d)
			}
			out, err := shapeRun("ConstantOfShape", 9, ir.Attrs{ir.TensorAttr("value", val)}, 1, 1, i64s(dims...))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, shape.Size())
			for i := range want {
				want[i] = val.Float64At(0)
			}
			checkTensor(t, fmt.Sprint("ConstantOfShape ", dt, shape), out[0], dt, shape, want)
		}
	}
	out, err := shapeRun("ConstantOfShape", 9, nil, 1, 1, i64s(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "ConstantOfShape default", out[0], tensor.Float32, tensor.Shape{2, 2}, []float64{0, 0, 0, 0})
	_, err = shapeRun("ConstantOfShape", 9, nil, 1, 1, i64s(2, -1))
	wantErr(t, "negative dim", err, "invalid")
	_, err = shapeRun("ConstantOfShape", 9, nil, 1, 1, i64s(1<<20, 1<<20))
	wantErr(t, "huge", err, "too large")
	_, err = shapeRun("ConstantOfShape", 9, ir.Attrs{ir.TensorAttr("value", seqTensor(tensor.Float32, 2))}, 1, 1, i64s(2))
	wantErr(t, "two-element value", err, "one element")
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		in    tensor.Shape
		shape []int64
		want  tensor.Shape
		errSS string
	}{
		{tensor.Shape{3, 1}, []int64{2, 1, 6}, tensor.Shape{2, 3, 6}, ""},
		{tensor.Shape{3, 1}, []int64{3, 4}, tensor.Shape{3, 4}, ""},
		{tensor.Shape{3, 4}, []int64{1, 1}, tensor.Shape{3, 4}, ""},
		{tensor.Shape{1, 4}, []int64{5, 1}, tensor.Shape{5, 4}, ""},
		{tensor.Shape{}, []int64{2, 3}, tensor.Shape{2, 3}, ""},
		{tensor.Shape{2, 1}, []int64{}, tensor.Shape{2, 1}, ""},
		{tensor.Shape{1, 3}, []int64{0, 3}, tensor.Shape{0, 3}, ""},
		{tensor.Shape{3, 2}, []int64{3, 4}, nil, "cannot expand"},
		{tensor.Shape{3}, []int64{-1}, nil, "invalid"},
	} {
		for _, dt := range shapeTestDTypes {
			x := seqTensor(dt, tc.in...)
			out, err := shapeRun("Expand", 13, nil, 1, 1, x, i64s(tc.shape...))
			name := fmt.Sprintf("Expand %v%v to %v", dt, tc.in, tc.shape)
			if tc.errSS != "" {
				wantErr(t, name, err, tc.errSS)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			off := len(tc.want) - len(tc.in)
			want := shapeRef(x, tc.want, 0, func(idx []int) int {
				src := make([]int, len(tc.in))
				for d := range src {
					if tc.in[d] != 1 {
						src[d] = idx[off+d]
					}
				}
				return flatIndex(tc.in, src)
			})
			checkTensor(t, name, out[0], dt, tc.want, want)
		}
	}
	// A large broadcast takes the parallel path.
	x := seqTensor(tensor.Int64, 1, 300)
	out, err := shapeRun("Expand", 13, nil, 1, 4, x, i64s(400, 300))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Expand parallel", out[0], tensor.Int64, tensor.Shape{400, 300}, shapeRef(x, tensor.Shape{400, 300}, 0, func(idx []int) int { return idx[1] }))
}

// padRefIndex maps output position i on an axis of size n padded by b, e
// to a source index (-1 for the constant) by walking numpy's rules: crop,
// then extend one element at a time.
func padRefIndex(i, n int, b, e int64, mode string) int {
	// Cropped source positions.
	lo, hi := 0, n
	if b < 0 {
		lo = int(-b)
	}
	if e < 0 {
		hi = n + int(e)
	}
	src := []int{}
	for j := lo; j < hi; j++ {
		src = append(src, j)
	}
	left := []int{}
	for k := 0; k < int(max(b, 0)); k++ {
		var v int
		switch mode {
		case "constant":
			v = -1
		case "edge":
			v = src[0]
		case "wrap":
			v = src[(len(src)-1-k%len(src)+len(src))%len(src)]
		case "reflect":
			v = reflectAt(src, -(k + 1))
		}
		left = append([]int{v}, left...)
	}
	if i < len(left) {
		return left[i]
	}
	i -= len(left)
	if i < len(src) {
		return src[i]
	}
	i -= len(src)
	switch mode {
	case "constant":
		return -1
	case "edge":
		return src[len(src)-1]
	case "wrap":
		return src[i%len(src)]
	}
	return reflectAt(src, len(src)+i)
}

// reflectAt returns src at position p of the infinite mirror extension
// (..., s2, s1, s0, s1, s2, ..., sn-1, sn-2, ...), walking step by step.
func reflectAt(src []int, p int) int {
	pos, dir := 0, 1
	if p < 0 {
		dir = -1
	}
	for range max(p, -p) {
		if len(src) == 1 {
			break
		}
		if pos+dir < 0 || pos+dir >= len(src) {
			dir = -dir
		}
		pos += dir
	}
	return src[pos]
}

func TestPad(t *testing.T) {
	shape := tensor.Shape{3, 4}
	cases := []struct {
		pads []int64
		axes []int64
	}{
		{[]int64{0, 0, 0, 0}, nil},
		{[]int64{1, 2, 2, 1}, nil},
		{[]int64{0, 3, 0, 3}, nil},
		{[]int64{2, 5, 4, 7}, nil},
		{[]int64{-1, 1, 0, -2}, nil},
		{[]int64{-1, -1, 2, -1}, nil},
		{[]int64{1, 3}, []int64{-1}},
		{[]int64{2, 0}, []int64{0}},
	}
	for _, mode := range []string{"constant", "reflect", "edge", "wrap"} {
		for _, tc := range cases {
			for _, dt := range shapeTestDTypes {
				x := seqTensor(dt, shape...)
				cv := seqTensor(dt, 3).Float64At(2)
				cvt := scalarOf(dt, cv)
				b, e := make([]int64, 2), make([]int64, 2)
				if tc.axes == nil {
					copy(b, tc.pads[:2])
					copy(e, tc.pads[2:])
				} else {
					a := (tc.axes[0] + 2) % 2
					b[a], e[a] = tc.pads[0], tc.pads[1]
				}
				os := tensor.Shape{shape[0] + int(b[0]+e[0]), shape[1] + int(b[1]+e[1])}
				want := shapeRef(x, os, cv, func(idx []int) int {
					i := padRefIndex(idx[0], shape[0], b[0], e[0], mode)
					j := padRefIndex(idx[1], shape[1], b[1], e[1], mode)
					if i < 0 || j < 0 {
						return -1
					}
					return i*shape[1] + j
				})
				name := fmt.Sprintf("Pad %s %v %v axes %v", mode, dt, tc.pads, tc.axes)
				var in []*tensor.Tensor
				opset := int64(19)
				if tc.axes != nil {
					in = []*tensor.Tensor{x, i64s(tc.pads...), cvt, i64s(tc.axes...)}
				} else {
					in = []*tensor.Tensor{x, i64s(tc.pads...), cvt}
					if mode == "constant" && dt == tensor.Float32 {
						opset = 11
					}
				}
				out, err := shapeRun("Pad", opset, ir.Attrs{ir.StringAttr("mode", mode)}, 1, 1, in...)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				checkTensor(t, name, out[0], dt, os, want)
			}
		}
	}
	x := seqTensor(tensor.Float32, 2, 3)
	// Opset < 11: attributes, value converted to the dtype.
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Int32, tensor.Float16} {
		xi := seqTensor(dt, 2, 3)
		out, err := shapeRun("Pad", 7, ir.Attrs{ir.IntsAttr("pads", 0, 1, 1, 0), ir.FloatAttr("value", 2.5)}, 1, 1, xi)
		if err != nil {
			t.Fatal(err)
		}
		cv := 2.5
		if dt == tensor.Int32 {
			cv = 2
		}
		os := tensor.Shape{3, 4}
		checkTensor(t, "Pad@7 "+dt.String(), out[0], dt, os, shapeRef(xi, os, cv, func(idx []int) int {
			if idx[0] >= 2 || idx[1] < 1 {
				return -1
			}
			return idx[0]*3 + idx[1] - 1
		}))
	}
	// Omitted constant_value is zero.
	out, err := shapeRun("Pad", 13, nil, 1, 1, x, i64s(1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Pad zero", out[0], tensor.Float32, tensor.Shape{3, 3}, []float64{0, 0, 0, x.Float64At(0), x.Float64At(1), x.Float64At(2), x.Float64At(3), x.Float64At(4), x.Float64At(5)})
	// Large pads take the parallel path.
	big := seqTensor(tensor.Float32, 8, 120, 70)
	out, err = shapeRun("Pad", 19, ir.Attrs{ir.StringAttr("mode", "reflect")}, 1, 4, big, i64s(0, 3, 2, 1, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	os := tensor.Shape{9, 127, 77}
	checkTensor(t, "Pad parallel", out[0], tensor.Float32, os, shapeRef(big, os, 0, func(idx []int) int {
		return flatIndex(big.Shape, []int{padRefIndex(idx[0], 8, 0, 1, "reflect"), padRefIndex(idx[1], 120, 3, 4, "reflect"), padRefIndex(idx[2], 70, 2, 5, "reflect")})
	}))
	for _, tc := range []struct {
		opset int64
		attrs ir.Attrs
		in    []*tensor.Tensor
		errSS string
	}{
		{13, nil, []*tensor.Tensor{x, i64s(1, 1)}, "entries"},
		{13, nil, []*tensor.Tensor{x, i64s(-3, 0, 0, 0)}, "invalid"},
		{13, nil, []*tensor.Tensor{x, i64s(-2, 0, -1, 0)}, "crop more"},
		{13, ir.Attrs{ir.StringAttr("mode", "edge")}, []*tensor.Tensor{seqTensor(tensor.Float32, 0, 3), i64s(1, 0, 0, 0)}, "empty axis"},
		{13, ir.Attrs{ir.StringAttr("mode", "mirror")}, []*tensor.Tensor{x, i64s(1, 0, 0, 0)}, "mode"},
		{13, nil, []*tensor.Tensor{x, i64s(1, 0, 0, 0), seqTensor(tensor.Float64)}, "dtype"},
		{13, nil, []*tensor.Tensor{x, i64s(1, 0, 0, 0), seqTensor(tensor.Float32, 2)}, "one element"},
		{13, nil, []*tensor.Tensor{x, i64s(1, 0, 0, 0), nil, i64s(0)}, "opset 18"},
		{18, nil, []*tensor.Tensor{x, i64s(1, 0, 0, 0), nil, i64s(0, 0)}, "repeated"},
		{13, nil, []*tensor.Tensor{x, i64s(math.MaxInt64, 0, 0, 0)}, "invalid"},
		{13, nil, []*tensor.Tensor{x, i64s(1<<30, 0, 1<<30, 0)}, "too large"},
		{7, nil, []*tensor.Tensor{x}, "pads attribute"},
	} {
		_, err := shapeRun("Pad", tc.opset, tc.attrs, 1, 1, tc.in...)
		wantErr(t, fmt.Sprint("Pad error ", tc.in[1:]), err, tc.errSS)
	}
	// Constant padding of an empty axis works.
	out, err = shapeRun("Pad", 13, nil, 1, 1, seqTensor(tensor.Float32, 0, 2), i64s(1, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "Pad empty", out[0], tensor.Float32, tensor.Shape{1, 3}, []float64{0, 0, 0})
}
