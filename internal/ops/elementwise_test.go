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

// ewRun runs one node of op through the kernel table. Inputs that are nil
// are omitted optional inputs; consts marks inputs the builder sees as
// constants.
func ewRun(op string, opset int64, attrs ir.Attrs, nOut, threads int, consts []bool, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Name: "ew_node", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, nOut)}
	info := &kernel.Info{Node: node, Opset: opset, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, t := range in {
		if t == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}
		if i < len(consts) && consts[i] {
			info.Consts[i] = t
		}
	}
	for i := range node.Outputs {
		node.Outputs[i] = ir.ValueID(len(in) + i)
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		return nil, err
	}
	return kernel.RunNode(k, kernel.NewCtx(node, threads, nil), nOut, in)
}

// ewRun1 runs a single-output node with one thread.
func ewRun1(op string, opset int64, attrs ir.Attrs, in ...*tensor.Tensor) (*tensor.Tensor, error) {
	out, err := ewRun(op, opset, attrs, 1, 1, nil, in...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ewMake builds a tensor of dt from float64 values (converted like a C
// cast; float16 rounded).
func ewMake(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	t, err := tensor.New(dt, shape)
	if err != nil {
		panic(err)
	}
	if len(v) != t.Len() {
		panic(fmt.Sprintf("ewMake: %d values for shape %v", len(v), shape))
	}
	if err := storeFloat64(kernel.NewCtx(nil, 1, nil), t, v); err != nil {
		panic(err)
	}
	return t
}

// ewRand returns n random values in [lo, hi), rounded to integers when
// integral is set.
func ewRand(r *rand.Rand, n int, lo, hi float64, integral bool) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
		if integral {
			v[i] = math.Floor(v[i])
		}
	}
	return v
}

// ewValues returns a tensor's elements as float64.
func ewValues(t *tensor.Tensor) []float64 {
	v := make([]float64, t.Len())
	for i := range v {
		v[i] = t.Float64At(i)
	}
	return v
}

// ewSrcIndex maps flat output index i of shape out to the index in an
// input of shape in that broadcasts to out (the plain reference for
// numpy broadcasting).
func ewSrcIndex(out, in tensor.Shape, i int) int {
	off := len(out) - len(in)
	idx, stride := 0, 1
	for d := len(out) - 1; d >= 0; d-- {
		c := i % out[d]
		i /= out[d]
		if d >= off {
			if in[d-off] != 1 {
				idx += c * stride
			}
			stride *= in[d-off]
		}
	}
	return idx
}

// ewCheck compares got with want: dtype, shape, and values within tol
// relative (exact when tol is 0); NaN matches NaN.
func ewCheck(t *testing.T, name string, got *tensor.Tensor, dt tensor.DType, shape tensor.Shape, want []float64, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil output", name)
	}
	if got.DType != dt || !got.Shape.Equal(shape) {
		t.Fatalf("%s: got %v%v, want %v%v", name, got.DType, got.Shape, dt, shape)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i, w := range want {
		g := got.Float64At(i)
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
			continue
		}
		if tol > 0 && !math.IsInf(w, 0) && math.Abs(g-w) <= tol*(1+math.Abs(w)) {
			continue
		}
		t.Fatalf("%s: element %d = %v, want %v", name, i, g, w)
	}
}

// ewWantErr checks that err is non-nil, names the node and contains sub.
func ewWantErr(t *testing.T, name string, err error, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", name, sub)
	}
	if !strings.Contains(err.Error(), sub) || !strings.Contains(err.Error(), "ew_node") {
		t.Fatalf("%s: error %q, want it to contain %q and the node name", name, err, sub)
	}
}

// ewShapePairs are broadcast cases of different ranks, odd sizes, size-0
// and size-1 dims, and scalars.
var ewShapePairs = [][2]tensor.Shape{
	{{}, {}},
	{{7}, {}},
	{{}, {5}},
	{{1}, {9}},
	{{13}, {13}},
	{{3, 5}, {5}},
	{{3, 5}, {3, 1}},
	{{3, 1}, {1, 5}},
	{{2, 3, 4}, {3, 1}},
	{{2, 1, 4}, {1, 3, 1}},
	{{2, 3, 4, 5}, {1, 3, 1, 1}},
	{{2, 3, 4, 5}, {2, 3, 4, 5}},
	{{1, 1, 1}, {2, 1, 3}},
	{{4, 1, 3, 1, 2}, {5, 3, 1, 1}},
	{{2, 1, 3, 1, 2, 1}, {1, 2, 1, 3, 1, 2}},
	{{0, 3}, {3}},
	{{2, 0}, {1}},
	{{3, 1, 2}, {3, 0, 2}},
}

func TestEwBroadcastAddFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sp := range ewShapePairs {
		for _, swap := range []bool{false, true} {
			as, bs := sp[0], sp[1]
			if swap {
				as, bs = bs, as
			}
			out, err := BroadcastShapes(as, bs)
			if err != nil {
				t.Fatal(err)
			}
			av, bv := ewRand(r, as.Size(), -5, 5, false), ewRand(r, bs.Size(), -5, 5, false)
			want := make([]float64, out.Size())
			for i := range want {
				want[i] = float64(float32(av[ewSrcIndex(out, as, i)]) + float32(bv[ewSrcIndex(out, bs, i)]))
			}
			got, err := ewRun1("Add", 14, nil, ewMake(tensor.Float32, as, av), ewMake(tensor.Float32, bs, bv))
			if err != nil {
				t.Fatalf("%v + %v: %v", as, bs, err)
			}
			ewCheck(t, fmt.Sprintf("%v + %v", as, bs), got, tensor.Float32, out, want, 1e-6)
		}
	}
}

// ewArithRef is the plain reference of one arithmetic op in T.
func ewArithRef[T Number](op string, x, y T) T {
	switch op {
	case "Add":
		return x + y
	case "Sub":
		return x - y
	case "Mul":
		return x * y
	}
	return x / y
}

// ewCheckArith runs op on random T data of the given shapes and compares
// with ewArithRef element by element.
func ewCheckArith[T Number](t *testing.T, r *rand.Rand, dt tensor.DType, op string, as, bs tensor.Shape, threads int) {
	t.Helper()
	integral := dt != tensor.Float32 && dt != tensor.Float64
	lo, hi := -50.0, 50.0
	if dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 || dt == tensor.Uint64 {
		lo = 0
	}
	av, bv := ewRand(r, as.Size(), lo, hi, integral), ewRand(r, bs.Size(), lo, hi, integral)
	if op == "Div" {
		for i := range bv {
			if bv[i] == 0 {
				bv[i] = 3
			}
		}
	}
	a, b := ewMake(dt, as, av), ewMake(dt, bs, bv)
	outs, err := ewRun(op, 14, nil, 1, threads, nil, a, b)
	if err != nil {
		t.Fatalf("%s %v %v %v: %v", op, dt, as, bs, err)
	}
	out, _ := BroadcastShapes(as, bs)
	got := outs[0]
	if got.DType != dt || !got.Shape.Equal(out) {
		t.Fatalf("%s %v: got %v%v, want %v", op, dt, got.DType, got.Shape, out)
	}
	ad, bd, gd := a.Data.([]T), b.Data.([]T), got.Data.([]T)
	for i := range gd {
		w := ewArithRef(op, ad[ewSrcIndex(out, as, i)], bd[ewSrcIndex(out, bs, i)])
		if gd[i] != w && !(w != w && gd[i] != gd[i]) {
			t.Fatalf("%s %v %v %v: element %d = %v, want %v", op, dt, as, bs, i, gd[i], w)
		}
	}
}

func TestEwArithDTypes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][2]tensor.Shape{{{2, 3, 5}, {3, 1}}, {{17}, {}}, {{}, {4, 3}}, {{4, 3}, {4, 3}}, {{1, 3, 2}, {5, 1, 1}}}
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		for _, sp := range shapes {
			ewCheckArith[float32](t, r, tensor.Float32, op, sp[0], sp[1], 1)
			ewCheckArith[float64](t, r, tensor.Float64, op, sp[0], sp[1], 1)
			ewCheckArith[int8](t, r, tensor.Int8, op, sp[0], sp[1], 1)
			ewCheckArith[uint8](t, r, tensor.Uint8, op, sp[0], sp[1], 1)
			ewCheckArith[int16](t, r, tensor.Int16, op, sp[0], sp[1], 1)
			ewCheckArith[uint16](t, r, tensor.Uint16, op, sp[0], sp[1], 1)
			ewCheckArith[int32](t, r, tensor.Int32, op, sp[0], sp[1], 1)
			ewCheckArith[uint32](t, r, tensor.Uint32, op, sp[0], sp[1], 1)
			ewCheckArith[int64](t, r, tensor.Int64, op, sp[0], sp[1], 1)
			ewCheckArith[uint64](t, r, tensor.Uint64, op, sp[0], sp[1], 1)
		}
	}
}

// TestEwParallel checks that outputs large enough to be split across
// threads equal the single-threaded path, for shapes whose chunks start
// mid-row.
func TestEwParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sp := range [][2]tensor.Shape{{{70001}, {70001}}, {{3, 241, 97}, {241, 1}}, {{65537, 2}, {2}}, {{7, 1, 113}, {1, 131, 113}}} {
		for _, op := range []string{"Add", "Div"} {
			ewCheckArith[float32](t, r, tensor.Float32, op, sp[0], sp[1], 4)
			ewCheckArith[int64](t, r, tensor.Int64, op, sp[0], sp[1], 3)
		}
	}
	// Unary, Where and Softmax on a large input with several threads.
	n := 3*ewParallelMin + 17
	xv := ewRand(r, n, -4, 4, false)
	x := ewMake(tensor.Float32, tensor.Shape{n}, xv)
	for _, threads := range []int{1, 4} {
		outs, err := ewRun("Exp", 13, nil, 1, threads, nil, x)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, n)
		for i, v := range xv {
			want[i] = math.Exp(float64(float32(v)))
		}
		ewCheck(t, "Exp parallel", outs[0], tensor.Float32, x.Shape, want, 1e-6)
	}
}

func TestEwPlanCoalesce(t *testing.T) {
	cases := []struct {
		out      tensor.Shape
		in       []tensor.Shape
		wantDims []int
	}{
		{tensor.Shape{2, 3, 4}, []tensor.Shape{{2, 3, 4}, {2, 3, 4}}, []int{24}},
		{tensor.Shape{2, 3, 4}, []tensor.Shape{{2, 3, 4}, {4}}, []int{6, 4}},
		{tensor.Shape{2, 3, 4, 5}, []tensor.Shape{{2, 3, 4, 5}, {1, 3, 1, 1}}, []int{2, 3, 20}},
		{tensor.Shape{1, 1}, []tensor.Shape{{1, 1}, {1}}, []int{1}},
		{tensor.Shape{2, 1, 3}, []tensor.Shape{{2, 1, 3}, {1, 1, 1}}, []int{6}},
	}
	for _, tc := range cases {
		p := newEwPlan(tc.out, tc.in...)
		if fmt.Sprint(p.dims) != fmt.Sprint(tc.wantDims) {
			t.Errorf("plan %v <- %v: dims %v, want %v", tc.out, tc.in, p.dims, tc.wantDims)
		}
		for k := range tc.in {
			if s := p.inner(k); s != 0 && s != 1 {
				t.Errorf("plan %v <- %v: inner stride %d", tc.out, tc.in, s)
			}
		}
	}
}

func TestEwArithErrors(t *testing.T) {
	f := ewMake(tensor.Float32, tensor.Shape{2, 3}, make([]float64, 6))
	g := ewMake(tensor.Float32, tensor.Shape{4}, make([]float64, 4))
	i := ewMake(tensor.Int64, tensor.Shape{2, 3}, make([]float64, 6))
	_, err := ewRun1("Add", 14, nil, f, g)
	ewWantErr(t, "non-broadcastable", err, "cannot be broadcast")
	_, err = ewRun1("Mul", 14, nil, f, i)
	ewWantErr(t, "mixed dtypes", err, "different dtypes")
	_, err = ewRun1("Sub", 14, nil, f)
	ewWantErr(t, "missing input", err, "missing input")
	b := ewMake(tensor.Bool, tensor.Shape{2}, []float64{1, 0})
	_, err = ewRun1("Add", 14, nil, b, b)
	ewWantErr(t, "bool add", err, "not supported")
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Int32, tensor.Int64, tensor.Uint64} {
		a := ewMake(dt, tensor.Shape{3}, []float64{1, 2, 3})
		z := ewMake(dt, tensor.Shape{3}, []float64{1, 0, 1})
		_, err = ewRun1("Div", 14, nil, a, z)
		ewWantErr(t, "div by zero "+dt.String(), err, "division by zero")
	}
}

func TestEwIntDivTruncates(t *testing.T) {
	a := ewMake(tensor.Int32, tensor.Shape{6}, []float64{7, -7, 7, -7, math.MinInt32, 0})
	b := ewMake(tensor.Int32, tensor.Shape{6}, []float64{2, 2, -2, -2, -1, 5})
	got, err := ewRun1("Div", 14, nil, a, b)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "int32 div", got, tensor.Int32, tensor.Shape{6}, []float64{3, -3, -3, 3, math.MinInt32, 0}, 0)
}

func TestEwFloat16Arith(t *testing.T) {
	a := ewMake(tensor.Float16, tensor.Shape{2, 3}, []float64{1, 2.5, -3, 0.5, 100, -0.25})
	b := ewMake(tensor.Float16, tensor.Shape{3}, []float64{2, -1, 0.5})
	for op, want := range map[string][]float64{
		"Add": {3, 1.5, -2.5, 2.5, 99, 0.25},
		"Sub": {-1, 3.5, -3.5, -1.5, 101, -0.75},
		"Mul": {2, -2.5, -1.5, 1, -100, -0.125},
		"Div": {0.5, -2.5, -6, 0.25, -100, -0.5},
	} {
		got, err := ewRun1(op, 14, nil, a, b)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "float16 "+op, got, tensor.Float16, tensor.Shape{2, 3}, want, 0)
	}
}

func TestEwPow(t *testing.T) {
	cases := []struct {
		name   string
		x, y   *tensor.Tensor
		dt     tensor.DType
		shape  tensor.Shape
		want   []float64
		approx bool
	}{
		{"f32^f32", ewMake(tensor.Float32, tensor.Shape{4}, []float64{1, 2, 3, -2}), ewMake(tensor.Float32, tensor.Shape{4}, []float64{4, 5, 0.5, 2}), tensor.Float32, tensor.Shape{4}, []float64{1, 32, math.Sqrt(3), 4}, true},
		{"f32^2 bcast", ewMake(tensor.Float32, tensor.Shape{2, 2}, []float64{1.5, -2, 3, 0}), ewMake(tensor.Float32, tensor.Shape{}, []float64{2}), tensor.Float32, tensor.Shape{2, 2}, []float64{2.25, 4, 9, 0}, false},
		{"f32^i64", ewMake(tensor.Float32, tensor.Shape{3}, []float64{1, 2, 3}), ewMake(tensor.Int64, tensor.Shape{3}, []float64{4, 5, 6}), tensor.Float32, tensor.Shape{3}, []float64{1, 32, 729}, false},
		{"f64^u32", ewMake(tensor.Float64, tensor.Shape{3}, []float64{1, 2, 3}), ewMake(tensor.Uint32, tensor.Shape{1}, []float64{3}), tensor.Float64, tensor.Shape{3}, []float64{1, 8, 27}, false},
		{"i32^i32", ewMake(tensor.Int32, tensor.Shape{4}, []float64{1, 2, 3, -3}), ewMake(tensor.Int32, tensor.Shape{4}, []float64{4, 5, 6, 3}), tensor.Int32, tensor.Shape{4}, []float64{1, 32, 729, -27}, false},
		{"i64^f32", ewMake(tensor.Int64, tensor.Shape{3}, []float64{1, 2, 3}), ewMake(tensor.Float32, tensor.Shape{3}, []float64{4, 5, 0.5}), tensor.Int64, tensor.Shape{3}, []float64{1, 32, 1}, false},
		{"i64 neg exp", ewMake(tensor.Int64, tensor.Shape{4}, []float64{1, -1, 2, -1}), ewMake(tensor.Int64, tensor.Shape{4}, []float64{-2, -3, -1, -2}), tensor.Int64, tensor.Shape{4}, []float64{1, -1, 0, 1}, false},
		{"i64 big exact", ewMake(tensor.Int64, tensor.Shape{1}, []float64{3}), ewMake(tensor.Int64, tensor.Shape{1}, []float64{39}), tensor.Int64, tensor.Shape{1}, []float64{4052555153018976267}, false},
		{"f16^f32", ewMake(tensor.Float16, tensor.Shape{2}, []float64{2, 3}), ewMake(tensor.Float32, tensor.Shape{2}, []float64{3, 2}), tensor.Float16, tensor.Shape{2}, []float64{8, 9}, false},
		{"bcast rank", ewMake(tensor.Float32, tensor.Shape{2, 1}, []float64{2, 3}), ewMake(tensor.Float32, tensor.Shape{1, 3}, []float64{0, 1, 2}), tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 4, 1, 3, 9}, false},
	}
	for _, tc := range cases {
		got, err := ewRun1("Pow", 15, nil, tc.x, tc.y)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tol := 0.0
		if tc.approx {
			tol = 1e-6
		}
		if tc.name == "i64 big exact" {
			if got.I64()[0] != 4052555153018976267 {
				t.Fatalf("%s: got %d", tc.name, got.I64()[0])
			}
			continue
		}
		ewCheck(t, tc.name, got, tc.dt, tc.shape, tc.want, tol)
	}
	_, err := ewRun1("Pow", 15, nil, ewMake(tensor.Float32, tensor.Shape{2}, []float64{1, 2}), ewMake(tensor.Bool, tensor.Shape{2}, []float64{1, 0}))
	ewWantErr(t, "bool exponent", err, "not supported")
}

func TestEwUnaryMath(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		op     string
		lo, hi float64
		f      func(float64) float64
	}{
		{"Sqrt", 0, 10, math.Sqrt},
		{"Exp", -10, 10, math.Exp},
		{"Log", 0.01, 100, math.Log},
		{"Neg", -10, 10, func(x float64) float64 { return -x }},
		{"Abs", -10, 10, math.Abs},
		{"Reciprocal", 0.5, 10, func(x float64) float64 { return 1 / x }},
		{"Erf", -3, 3, math.Erf},
		{"Relu", -3, 3, func(x float64) float64 { return max(x, 0) }},
		{"Sigmoid", -30, 30, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{"Tanh", -5, 5, math.Tanh},
		{"HardSwish", -5, 5, func(x float64) float64 { return x * max(0, min(1, x/6+0.5)) }},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
			for _, shape := range []tensor.Shape{{}, {1}, {3, 7}, {2, 0}, {5, 3, 11}} {
				xv := ewRand(r, shape.Size(), tc.lo, tc.hi, false)
				x := ewMake(dt, shape, xv)
				want := make([]float64, len(xv))
				for i := range xv {
					want[i] = tc.f(x.Float64At(i))
				}
				got, err := ewRun1(tc.op, 14, nil, x)
				if err != nil {
					t.Fatalf("%s %v: %v", tc.op, dt, err)
				}
				tol := 1e-6
				if dt == tensor.Float16 {
					tol = 2e-3
				}
				ewCheck(t, tc.op+" "+dt.String(), got, dt, shape, want, tol)
			}
		}
	}
	// Float-only ops reject integers; Neg rejects unsigned.
	i := ewMake(tensor.Int32, tensor.Shape{2}, []float64{1, 4})
	for _, op := range []string{"Sqrt", "Exp", "Log", "Reciprocal", "Sigmoid", "Tanh", "Softmax"} {
		_, err := ewRun1(op, 14, nil, i)
		ewWantErr(t, op+" int32", err, "not supported")
	}
	_, err := ewRun1("Neg", 13, nil, ewMake(tensor.Uint8, tensor.Shape{1}, []float64{1}))
	ewWantErr(t, "Neg uint8", err, "unsigned")
}

func TestEwUnaryInt(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64} {
		x := ewMake(dt, tensor.Shape{5}, []float64{-3, -1, 0, 2, 5})
		for op, want := range map[string][]float64{
			"Neg":  {3, 1, 0, -2, -5},
			"Abs":  {3, 1, 0, 2, 5},
			"Relu": {0, 0, 0, 2, 5},
			"Erf":  {-0, -0, 0, 0, 0},
		} {
			got, err := ewRun1(op, 14, nil, x)
			if err != nil {
				t.Fatalf("%s %v: %v", op, dt, err)
			}
			ewCheck(t, op+" "+dt.String(), got, dt, x.Shape, want, 0)
		}
	}
	u := ewMake(tensor.Uint16, tensor.Shape{2}, []float64{0, 7})
	got, err := ewRun1("Abs", 13, nil, u)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Abs uint16", got, tensor.Uint16, u.Shape, []float64{0, 7}, 0)
}

// ewBench runs a prepared node repeatedly; the output buffer is allocated
// per run, as the heap allocator does.
func ewBench(b *testing.B, op string, opset int64, attrs ir.Attrs, threads int, in ...*tensor.Tensor) {
	node := &ir.Node{Op: op, Name: "ew_bench", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: []ir.ValueID{ir.ValueID(len(in))}}
	info := &kernel.Info{Node: node, Opset: opset, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		b.Fatal(err)
	}
	c := kernel.NewCtx(node, threads, &ewReuse{})
	b.SetBytes(int64(4 * in[0].Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kernel.RunNode(k, c, 1, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEwAddF32Same(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{1 << 20}, make([]float64, 1<<20))
	ewBench(b, "Add", 14, nil, 1, x, x)
}

func BenchmarkEwAddF32ChannelBias(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{8, 64, 56, 56}, make([]float64, 8*64*56*56))
	bias := ewMake(tensor.Float32, tensor.Shape{64, 1, 1}, make([]float64, 64))
	ewBench(b, "Add", 14, nil, 1, x, bias)
}

func BenchmarkEwMulF32RowBroadcast(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{4096, 3}, make([]float64, 4096*3))
	y := ewMake(tensor.Float32, tensor.Shape{3}, []float64{1, 2, 3})
	ewBench(b, "Mul", 14, nil, 1, x, y)
}

func BenchmarkEwReluF32(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{1 << 20}, make([]float64, 1<<20))
	ewBench(b, "Relu", 14, nil, 1, x)
}

func BenchmarkEwSigmoidF32(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{1 << 20}, make([]float64, 1<<20))
	ewBench(b, "Sigmoid", 13, nil, 1, x)
}

func BenchmarkEwSoftmaxF32(b *testing.B) {
	x := ewMake(tensor.Float32, tensor.Shape{256, 1000}, make([]float64, 256*1000))
	ewBench(b, "Softmax", 13, nil, 1, x)
}

// ewReuse is an Allocator that hands out the same storage every time, so
// benchmarks time the kernel rather than allocation.
type ewReuse struct{ t *tensor.Tensor }

func (r *ewReuse) Alloc(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, int, error) {
	if r.t == nil || r.t.DType != dt || r.t.Len() != shape.Size() {
		t, err := tensor.New(dt, shape)
		if err != nil {
			return nil, -1, err
		}
		r.t = t
	}
	r.t.Shape = shape.Clone()
	return r.t, -1, nil
}
