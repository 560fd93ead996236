package infer_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// chain builds y = relu(relu(x + c) + x) with a symbolic batch.
func chain(t *testing.T) (*ir.Graph, ir.ValueID, ir.ValueID, ir.ValueID) {
	t.Helper()
	b := ir.NewBuilder("chain", 13)
	x := b.Input("x", tensor.Float32, -1, 3)
	c := b.Const("c", tensor.FromFloat32(tensor.Shape{3}, []float32{1, -2, 3}))
	a := b.Op("Add", "add1", []ir.ValueID{x, c})
	r := b.Op("Relu", "relu1", []ir.ValueID{a})
	a2 := b.Op("Add", "add2", []ir.ValueID{r, x})
	y := b.Op("Relu", "relu2", []ir.ValueID{a2})
	b.Output(y)
	return b.G, a, r, y
}

func TestSessionRun(t *testing.T) {
	g, _, _, _ := chain(t)
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 2, 5} {
		x := make([]float32, batch*3)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		out, err := s.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{batch, 3}, x)})
		if err != nil {
			t.Fatal(err)
		}
		y := out["relu2_out"]
		if y == nil || !y.Shape.Equal(tensor.Shape{batch, 3}) {
			t.Fatalf("batch %d: output %v", batch, y)
		}
		c := []float32{1, -2, 3}
		for i, v := range y.F32() {
			want := max(max(x[i]+c[i%3], 0)+x[i], 0)
			if v != want {
				t.Fatalf("batch %d: y[%d] = %v, want %v", batch, i, v, want)
			}
		}
	}
}

func TestSessionOutputsBelongToCaller(t *testing.T) {
	g, _, _, _ := chain(t)
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32(tensor.Shape{1, 3}, []float32{1, 1, 1})
	o1, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	keep := o1[0].Clone()
	x2 := tensor.FromFloat32(tensor.Shape{1, 3}, []float32{5, 5, 5})
	if _, err := s.RunInputs(context.Background(), []*tensor.Tensor{x2}); err != nil {
		t.Fatal(err)
	}
	for i, v := range o1[0].F32() {
		if v != keep.F32()[i] {
			t.Fatalf("a later run overwrote an earlier output: %v vs %v", o1[0], keep)
		}
	}
}

// TestSessionOutputsRightSized checks that outputs handed to the caller
// have storage of exactly their length, also when the arena buffer behind
// the output slot is larger (a smaller batch after a larger one, an output
// that is a view of a large value), and do not change on later runs.
func TestSessionOutputsRightSized(t *testing.T) {
	b := ir.NewBuilder("views", 13)
	x := b.Input("x", tensor.Float32, -1, 64)
	r := b.Op("Relu", "relu", []ir.ValueID{x})
	shape := b.Const("shape", tensor.FromInt64(tensor.Shape{2}, []int64{-1, 8}))
	b.Output(b.Op("Reshape", "view", []ir.ValueID{r, shape}))
	b.Output(b.Op("ReduceMax", "small", []ir.ValueID{r}, ir.IntsAttr("axes", 1), ir.IntAttr("keepdims", 0)))
	s, err := infer.NewSession(b.G, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var prev []*tensor.Tensor
	var keep []*tensor.Tensor
	for _, batch := range []int{32, 1, 2} {
		x := make([]float32, batch*64)
		for i := range x {
			x[i] = float32(i%13) - float32(batch)
		}
		outs, err := s.RunInputs(ctx, []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{batch, 64}, x)})
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			if d := o.F32(); cap(d) != len(d) || len(d) != o.Shape.Size() {
				t.Fatalf("batch %d: output %d %v has storage len %d cap %d", batch, i, o.Shape, len(d), cap(d))
			}
		}
		for i, o := range prev {
			for j, v := range o.F32() {
				if v != keep[i].F32()[j] {
					t.Fatalf("batch %d overwrote output %d of the previous run", batch, i)
				}
			}
		}
		prev = outs
		keep = []*tensor.Tensor{outs[0].Clone(), outs[1].Clone()}
	}
}

func TestSessionTapSeesEveryValue(t *testing.T) {
	g, a, r, y := chain(t)
	seen := map[ir.ValueID][]float32{}
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Tap: func(id ir.ValueID, t *tensor.Tensor) error {
		seen[id] = append([]float32(nil), t.F32()...)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32(tensor.Shape{1, 3}, []float32{-1, 1, -5})
	if _, err := s.RunInputs(context.Background(), []*tensor.Tensor{x}); err != nil {
		t.Fatal(err)
	}
	want := map[ir.ValueID][]float32{
		g.Inputs[0]: {-1, 1, -5},
		a:           {0, -1, -2},
		r:           {0, 0, 0},
		y:           {0, 1, 0},
	}
	for id, w := range want {
		got, ok := seen[id]
		if !ok {
			t.Fatalf("tap did not see %q", g.Values[id].Name)
		}
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("tap %q = %v, want %v", g.Values[id].Name, got, w)
			}
		}
	}
	if len(seen) != 5 { // x, add1, relu1, add2, relu2
		t.Fatalf("tap saw %d values, want 5", len(seen))
	}
}

func TestSessionKeep(t *testing.T) {
	g, a, _, _ := chain(t)
	s, err := infer.NewSession(g, infer.Options{Threads: 1, Keep: []ir.ValueID{a}})
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 3; run++ {
		v := float32(run)
		x := tensor.FromFloat32(tensor.Shape{1, 3}, []float32{v, v, v})
		if _, err := s.RunInputs(context.Background(), []*tensor.Tensor{x}); err != nil {
			t.Fatal(err)
		}
		k := s.Value(a)
		if k == nil || k.F32()[0] != v+1 || k.F32()[1] != v-2 {
			t.Fatalf("run %d: kept value %v", run, k)
		}
	}
}

func TestSessionErrors(t *testing.T) {
	g, _, _, _ := chain(t)
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		feeds map[string]*tensor.Tensor
		want  string
	}{
		{"missing", map[string]*tensor.Tensor{}, `input "x" is missing`},
		{"unknown", map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{1, 3}, make([]float32, 3)), "z": nil}, `feed "z" is not a graph input`},
		{"shape", map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{1, 4}, make([]float32, 4))}, `input "x" has shape [1 4]`},
		{"rank", map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{3}, make([]float32, 3))}, `input "x" has shape [3]`},
		{"dtype", map[string]*tensor.Tensor{"x": tensor.FromInt64(tensor.Shape{1, 3}, make([]int64, 3))}, `input "x" has dtype int64`},
		{"storage", map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{1, 3}, make([]float32, 2))}, `input "x"`},
	}
	for _, c := range cases {
		_, err := s.Run(ctx, c.feeds)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
	// The session still works after failed runs.
	if _, err := s.Run(ctx, map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{1, 3}, make([]float32, 3))}); err != nil {
		t.Fatal(err)
	}
}

func TestSessionBuildErrors(t *testing.T) {
	b := ir.NewBuilder("bad", 13)
	x := b.Input("x", tensor.Float32, 1)
	b.Output(b.Op("NoSuchOp", "mystery", []ir.ValueID{x}))
	if _, err := infer.NewSession(b.G, infer.Options{}); err == nil || !strings.Contains(err.Error(), `"mystery" (NoSuchOp): unsupported op NoSuchOp`) {
		t.Errorf("unknown op: %v", err)
	}

	b = ir.NewBuilder("nan", 13)
	x = b.Input("x", tensor.Float32, 1)
	c := b.Const("w", tensor.FromFloat32(tensor.Shape{1}, []float32{float32(math.NaN())}))
	b.Output(b.Op("Add", "add", []ir.ValueID{x, c}))
	if _, err := infer.NewSession(b.G, infer.Options{}); err == nil || !strings.Contains(err.Error(), `initializer "w" contains NaN`) {
		t.Errorf("NaN weight: %v", err)
	}

	b = ir.NewBuilder("opset", 22)
	x = b.Input("x", tensor.Float32, 1)
	b.Output(b.Op("Relu", "r", []ir.ValueID{x}))
	if _, err := infer.NewSession(b.G, infer.Options{}); err == nil || !strings.Contains(err.Error(), "opset 22") {
		t.Errorf("opset 22: %v", err)
	}

	g, _, _, _ := chain(t)
	if _, err := infer.NewSession(g, infer.Options{Kernels: "sse9"}); err == nil || !strings.Contains(err.Error(), `unknown tier "sse9"`) {
		t.Errorf("bad tier: %v", err)
	}
}

func TestSessionKernelRecordAndTier(t *testing.T) {
	g, _, _, _ := chain(t)
	s, err := infer.NewSession(g, infer.Options{Kernels: "generic"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Tier().String() != "generic" {
		t.Fatalf("tier %v", s.Tier())
	}
	recs := s.Kernels()
	if len(recs) != 4 || recs[0].Op != "Add" || recs[0].Kernel == "" {
		t.Fatalf("kernel records %+v", recs)
	}
	t.Setenv("GOSLIM_KERNELS", "bogus")
	if _, err := infer.NewSession(g, infer.Options{}); err == nil || !strings.Contains(err.Error(), "GOSLIM_KERNELS") {
		t.Fatalf("bad env tier: %v", err)
	}
}

func TestSessionOldIRInitializerInput(t *testing.T) {
	b := ir.NewBuilder("oldir", 9)
	x := b.Input("x", tensor.Float32, 2)
	c := b.Const("bias", tensor.FromFloat32(tensor.Shape{2}, []float32{10, 20}))
	b.G.Inputs = append(b.G.Inputs, c)
	b.Output(b.Op("Add", "add", []ir.ValueID{x, c}))
	s, err := infer.NewSession(b.G, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	xt := tensor.FromFloat32(tensor.Shape{2}, []float32{1, 2})
	out, err := s.RunInputs(context.Background(), []*tensor.Tensor{xt, nil})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].F32(); got[0] != 11 || got[1] != 22 {
		t.Fatalf("fallback to initializer: %v", got)
	}
	out, err = s.RunInputs(context.Background(), []*tensor.Tensor{xt, tensor.FromFloat32(tensor.Shape{2}, []float32{0, 1})})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].F32(); got[0] != 1 || got[1] != 3 {
		t.Fatalf("fed override: %v", got)
	}
}
