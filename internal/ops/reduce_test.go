package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// famRun builds op through the ops table at opset and runs it once with
// the given thread count. A nil input is an omitted optional input.
func famRun(op string, opset int64, attrs ir.Attrs, threads int, in ...*tensor.Tensor) (*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Name: "n", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: []ir.ValueID{0}}
	info := &kernel.Info{Node: node, Opset: opset, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, t := range in {
		if t == nil {
			node.Inputs[i] = ir.NoValue
		} else {
			node.Inputs[i] = ir.ValueID(i + 1)
			info.Inputs[i] = ir.Type{DType: t.DType}
		}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		return nil, err
	}
	outs, err := kernel.RunNode(k, kernel.NewCtx(node, threads, nil), 1, in)
	if err != nil {
		return nil, err
	}
	if err := outs[0].Check(); err != nil {
		return nil, err
	}
	return outs[0], nil
}

func famInt(name string, v int64) ir.Attr { return ir.Attr{Name: name, Type: ir.AttrInt, Int: v} }
func famInts(name string, v ...int64) ir.Attr {
	return ir.Attr{Name: name, Type: ir.AttrInts, Ints: v}
}
func famFloat(name string, v float32) ir.Attr {
	return ir.Attr{Name: name, Type: ir.AttrFloat, Float: v}
}
func famStr(name, v string) ir.Attr { return ir.Attr{Name: name, Type: ir.AttrString, String: v} }

// famTensor makes a tensor of dt holding v (converted as storeFloat64 does).
func famTensor(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	t, err := tensor.New(dt, shape)
	if err != nil {
		panic(err)
	}
	if len(v) != t.Len() {
		panic(fmt.Sprintf("famTensor: %d values for shape %v", len(v), shape))
	}
	if err := storeFloat64(kernel.NewCtx(nil, 1, nil), t, v); err != nil {
		panic(err)
	}
	return t
}

// famValues returns a tensor's elements as float64.
func famValues(t *tensor.Tensor) []float64 {
	v := make([]float64, t.Len())
	for i := range v {
		v[i] = t.Float64At(i)
	}
	return v
}

// famRandom returns n values suited to dt: small integers for integer
// dtypes, values with fractions for floats.
func famRandom(r *rand.Rand, dt tensor.DType, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		switch dt {
		case tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16:
			v[i] = math.Round((r.Float64()*200-100)*8) / 8
		case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
			v[i] = float64(r.IntN(100))
		case tensor.Bool:
			v[i] = float64(r.IntN(2))
		default:
			v[i] = float64(r.IntN(200) - 100)
		}
	}
	return v
}

// famClose compares got against want: exactly for integer dtypes, within
// rtol for floats (NaN matches NaN).
func famClose(t *testing.T, name string, got *tensor.Tensor, dt tensor.DType, shape tensor.Shape, want []float64, rtol float64) {
	t.Helper()
	if got.DType != dt || !got.Shape.Equal(shape) {
		t.Fatalf("%s: got %v%v, want %v%v", name, got.DType, got.Shape, dt, shape)
	}
	for i, w := range want {
		g := got.Float64At(i)
		ok := g == w || (math.IsNaN(g) && math.IsNaN(w))
		if !ok && dt.IsFloat() && !math.IsInf(w, 0) {
			ok = math.Abs(g-w) <= rtol*math.Max(1, math.Abs(w))
		}
		if !ok {
			t.Fatalf("%s: element %d = %g, want %g (got %v)", name, i, g, w, got)
		}
	}
}

// famWrap converts an integer-valued v to dt with Go's (wrapping)
// integer conversions.
func famWrap(dt tensor.DType, v float64) float64 {
	i := int64(v)
	switch dt {
	case tensor.Int8:
		return float64(int8(i))
	case tensor.Uint8:
		return float64(uint8(i))
	case tensor.Int16:
		return float64(int16(i))
	case tensor.Uint16:
		return float64(uint16(i))
	case tensor.Int32:
		return float64(int32(i))
	case tensor.Uint32:
		return float64(uint32(i))
	}
	return v
}

// famWantErr checks that err is non-nil, names the node and contains sub.
func famWantErr(t *testing.T, name string, err error, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", name, sub)
	}
	if !strings.Contains(err.Error(), sub) || !strings.Contains(err.Error(), `"n"`) {
		t.Fatalf("%s: error %q, want it to contain %q and name the node", name, err, sub)
	}
}

// reduceRef is the plain reference loop: out[o] = combine of every input
// element whose index maps to o.
func reduceRef(kind reduceKind, x []float64, shape tensor.Shape, mask []bool, intDiv bool) []float64 {
	var oshape tensor.Shape
	for d, n := range shape {
		if !mask[d] {
			oshape = append(oshape, n)
		}
	}
	on := oshape.Size()
	acc := make([]float64, on)
	cnt := make([]int, on)
	for i := range acc {
		if kind == reduceMax {
			acc[i] = math.Inf(-1)
		}
	}
	idx := make([]int, len(shape))
	for i := range x {
		rem := i
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = rem % shape[d]
			rem /= shape[d]
		}
		o := 0
		for d := range shape {
			if !mask[d] {
				o = o*shape[d] + idx[d]
			}
		}
		switch kind {
		case reduceMax:
			if x[i] > acc[o] || math.IsNaN(x[i]) || math.IsNaN(acc[o]) {
				if !math.IsNaN(acc[o]) {
					acc[o] = x[i]
				}
			}
		default:
			acc[o] += x[i]
		}
		cnt[o]++
	}
	if kind == reduceMean {
		for i := range acc {
			switch {
			case intDiv && cnt[i] == 0:
				acc[i] = 0
			case intDiv:
				acc[i] = math.Trunc(acc[i] / float64(cnt[i]))
			default:
				acc[i] /= float64(cnt[i])
			}
		}
	}
	return acc
}

func TestReduce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []struct {
		op   string
		kind reduceKind
	}{{"ReduceSum", reduceSum}, {"ReduceMean", reduceMean}, {"ReduceMax", reduceMax}}
	dtypes := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16, tensor.Int32,
		tensor.Int64, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16, tensor.Uint32, tensor.Uint64}
	for iter := 0; iter < 400; iter++ {
		rank := r.IntN(5)
		shape := make(tensor.Shape, rank)
		for d := range shape {
			shape[d] = 1 + r.IntN(5)
			if r.IntN(25) == 0 {
				shape[d] = 0
			}
		}
		mask := make([]bool, rank)
		var axes []int64
		for d := range mask {
			if r.IntN(2) == 0 {
				mask[d] = true
				a := int64(d)
				if r.IntN(2) == 0 {
					a -= int64(rank)
				}
				axes = append(axes, a)
			}
		}
		r.Shuffle(len(axes), func(i, j int) { axes[i], axes[j] = axes[j], axes[i] })
		if len(axes) == 0 {
			for d := range mask {
				mask[d] = true // empty axes reduce everything
			}
		}
		kd := kinds[iter%3]
		dt := dtypes[r.IntN(len(dtypes))]
		keep := r.IntN(2) == 0
		opset := []int64{11, 13, 18, 20}[r.IntN(4)]
		v := famRandom(r, dt, shape.Size())
		x := famTensor(dt, shape, v)
		v = famValues(x) // after rounding to dt
		attrs := ir.Attrs{famInt("keepdims", map[bool]int64{true: 1, false: 0}[keep])}
		var in []*tensor.Tensor
		inputSince := int64(18)
		if kd.kind == reduceSum {
			inputSince = 13
		}
		if opset >= inputSince {
			in = []*tensor.Tensor{x, tensor.FromInt64(tensor.Shape{len(axes)}, axes)}
			if len(axes) == 0 && r.IntN(2) == 0 {
				in = []*tensor.Tensor{x} // omitted axes input
			}
		} else {
			in = []*tensor.Tensor{x}
			if len(axes) > 0 {
				attrs = append(attrs, famInts("axes", axes...))
			}
		}
		name := fmt.Sprintf("%s opset %d %v%v axes %v keep %v", kd.op, opset, dt, shape, axes, keep)
		got, err := famRun(kd.op, opset, attrs, 1+iter%3, in...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		isInt := !dt.IsFloat()
		want := reduceRef(kd.kind, v, shape, mask, isInt)
		if kd.kind == reduceMax && isInt {
			for i, w := range want {
				if math.IsInf(w, -1) { // empty max: the dtype's minimum
					want[i] = float64(map[tensor.DType]int64{tensor.Int8: math.MinInt8, tensor.Int16: math.MinInt16,
						tensor.Int32: math.MinInt32, tensor.Int64: math.MinInt64}[dt])
				}
			}
		}
		// Integer sums wrap like the dtype; floats round through dt.
		if isInt {
			for i, w := range want {
				want[i] = famWrap(dt, w)
			}
		}
		want = famValues(famTensor(dt, tensor.Shape{len(want)}, want))
		var oshape tensor.Shape
		for d, n := range shape {
			if !mask[d] {
				oshape = append(oshape, n)
			} else if keep {
				oshape = append(oshape, 1)
			}
		}
		if oshape == nil {
			oshape = tensor.Shape{}
		}
		rtol := 1e-6
		if dt == tensor.Float16 || dt == tensor.BFloat16 {
			rtol = 1e-2
		}
		famClose(t, name, got, dt, oshape, want, rtol)
	}
}

func TestReduceSpecialCases(t *testing.T) {
	x := famTensor(tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	empty := tensor.FromInt64(tensor.Shape{0}, nil)
	// noop_with_empty_axes: identity.
	got, err := famRun("ReduceSum", 13, ir.Attrs{famInt("noop_with_empty_axes", 1)}, 1, x, empty)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "noop", got, tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6}, 0)
	got, err = famRun("ReduceMean", 18, ir.Attrs{famInt("noop_with_empty_axes", 1)}, 1, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "noop omitted axes", got, tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6}, 0)
	// Empty axes without noop: reduce all.
	got, err = famRun("ReduceSum", 13, ir.Attrs{famInt("keepdims", 0)}, 1, x, empty)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "sum all", got, tensor.Float32, tensor.Shape{}, []float64{21}, 0)
	// Empty reductions.
	z := famTensor(tensor.Float32, tensor.Shape{2, 0}, nil)
	for _, c := range []struct {
		op   string
		want float64
	}{{"ReduceSum", 0}, {"ReduceMean", math.NaN()}, {"ReduceMax", math.Inf(-1)}} {
		got, err := famRun(c.op, 11, ir.Attrs{famInts("axes", 1)}, 1, z)
		if err != nil {
			t.Fatal(err)
		}
		famClose(t, c.op+" empty", got, tensor.Float32, tensor.Shape{2, 1}, []float64{c.want, c.want}, 0)
	}
	// NaN propagates through ReduceMax.
	n := famTensor(tensor.Float32, tensor.Shape{3}, []float64{1, math.NaN(), 3})
	got, err = famRun("ReduceMax", 13, ir.Attrs{famInt("keepdims", 0)}, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "max nan", got, tensor.Float32, tensor.Shape{}, []float64{math.NaN()}, 0)
	// Bool ReduceMax (opset 20).
	b := famTensor(tensor.Bool, tensor.Shape{2, 2}, []float64{0, 0, 0, 1})
	got, err = famRun("ReduceMax", 20, ir.Attrs{famInt("keepdims", 0)}, 1, b, tensor.FromInt64(tensor.Shape{1}, []int64{1}))
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "max bool", got, tensor.Bool, tensor.Shape{2}, []float64{0, 1}, 0)
	// Float32 sums accumulate in float64: 1e8 + many ones stays exact.
	big := make([]float64, 4097)
	big[0] = 1e8
	for i := 1; i < len(big); i++ {
		big[i] = 1
	}
	got, err = famRun("ReduceSum", 11, ir.Attrs{famInt("keepdims", 0)}, 1, famTensor(tensor.Float32, tensor.Shape{len(big)}, big))
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "accurate sum", got, tensor.Float32, tensor.Shape{}, []float64{float64(float32(1e8 + 4096))}, 0)
	// Large input: parallel and serial agree.
	r := rand.New(rand.NewPCG(3, 4))
	lv := famRandom(r, tensor.Float32, 64*33*40)
	lx := famTensor(tensor.Float32, tensor.Shape{64, 33, 40}, lv)
	for _, axes := range [][]int64{{0}, {1}, {2}, {0, 2}} {
		a, err := famRun("ReduceMean", 13, ir.Attrs{famInts("axes", axes...)}, 1, lx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := famRun("ReduceMean", 13, ir.Attrs{famInts("axes", axes...)}, 4, lx)
		if err != nil {
			t.Fatal(err)
		}
		famClose(t, fmt.Sprint("parallel ", axes), b, tensor.Float32, a.Shape, famValues(a), 0)
	}
}

func TestReduceErrors(t *testing.T) {
	x := famTensor(tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	_, err := famRun("ReduceSum", 11, ir.Attrs{famInts("axes", 2)}, 1, x)
	famWantErr(t, "axis out of range", err, "out of range")
	_, err = famRun("ReduceMax", 11, ir.Attrs{famInts("axes", 1, -1)}, 1, x)
	famWantErr(t, "repeated axis", err, "repeated")
	_, err = famRun("ReduceMean", 18, ir.Attrs{famInts("axes", 1)}, 1, x)
	famWantErr(t, "attribute at 18", err, "axes input")
	_, err = famRun("ReduceMean", 13, nil, 1, x, tensor.FromInt64(tensor.Shape{1}, []int64{1}))
	famWantErr(t, "input at 13", err, "axes attribute")
	_, err = famRun("ReduceSum", 13, nil, 1, famTensor(tensor.Bool, tensor.Shape{2}, []float64{0, 1}))
	famWantErr(t, "bool sum", err, "bool")
}

// argMaxRef is the plain reference: first (or last) index of the maximum
// along axis, NaN being the largest.
func argMaxRef(x []float64, shape tensor.Shape, axis int, last bool) []float64 {
	outer, inner := 1, 1
	for d := 0; d < axis; d++ {
		outer *= shape[d]
	}
	for d := axis + 1; d < len(shape); d++ {
		inner *= shape[d]
	}
	n := shape[axis]
	var out []float64
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			best, bi := x[o*n*inner+j], 0
			for i := 1; i < n; i++ {
				v := x[(o*n+i)*inner+j]
				better := v > best || (math.IsNaN(v) && !math.IsNaN(best))
				if last {
					better = better || (v == best) || (math.IsNaN(v) && math.IsNaN(best))
				}
				if better {
					best, bi = v, i
				}
			}
			out = append(out, float64(bi))
		}
	}
	return out
}

func TestArgMax(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	dtypes := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int32, tensor.Int64,
		tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16}
	for iter := 0; iter < 300; iter++ {
		rank := 1 + r.IntN(4)
		shape := make(tensor.Shape, rank)
		for d := range shape {
			shape[d] = 1 + r.IntN(5)
		}
		axis := r.IntN(rank)
		a := int64(axis)
		if r.IntN(2) == 0 {
			a -= int64(rank)
		}
		dt := dtypes[r.IntN(len(dtypes))]
		v := famRandom(r, dt, shape.Size())
		for i := range v {
			v[i] = math.Round(v[i] / 40) // many ties
		}
		if dt.IsFloat() && r.IntN(4) == 0 {
			v[r.IntN(len(v))] = math.NaN()
		}
		last, keep := r.IntN(2) == 0, r.IntN(2) == 0
		x := famTensor(dt, shape, v)
		attrs := ir.Attrs{famInt("axis", a), famInt("keepdims", map[bool]int64{true: 1}[keep]),
			famInt("select_last_index", map[bool]int64{true: 1}[last])}
		got, err := famRun("ArgMax", 13, attrs, 1, x)
		name := fmt.Sprintf("ArgMax %v%v axis %d last %v", dt, shape, a, last)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var oshape tensor.Shape
		for d, n := range shape {
			if d != axis {
				oshape = append(oshape, n)
			} else if keep {
				oshape = append(oshape, 1)
			}
		}
		if oshape == nil {
			oshape = tensor.Shape{}
		}
		famClose(t, name, got, tensor.Int64, oshape, argMaxRef(famValues(x), shape, axis, last), 0)
	}
	x := famTensor(tensor.Float32, tensor.Shape{2, 0}, nil)
	_, err := famRun("ArgMax", 13, ir.Attrs{famInt("axis", 1)}, 1, x)
	famWantErr(t, "empty axis", err, "empty axis")
	_, err = famRun("ArgMax", 11, ir.Attrs{famInt("select_last_index", 1)}, 1, famTensor(tensor.Float32, tensor.Shape{2}, []float64{1, 1}))
	famWantErr(t, "select_last_index at 11", err, "opset 12")
}
