package calib_test

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

// smallGraph is input [N,3,2,2] -> Relu -> Mul(by 2) -> Sqrt, with IDs.
type smallGraph struct {
	g                   *ir.Graph
	in, relu, mul, sqrt ir.ValueID
	two                 ir.ValueID
}

func newSmallGraph() smallGraph {
	b := ir.NewBuilder("small", 13)
	var s smallGraph
	s.in = b.Input("input", tensor.Float32, -1, 3, 2, 2)
	s.relu = b.Op("Relu", "relu", []ir.ValueID{s.in})
	s.two = b.Const("two", f32(tensor.Shape{}, 2))
	s.mul = b.Op("Mul", "mul", []ir.ValueID{s.relu, s.two})
	s.sqrt = b.Op("Sqrt", "sqrt", []ir.ValueID{s.in})
	b.Output(s.mul, s.sqrt)
	s.g = b.G
	return s
}

// writeData writes n samples of shape [3,2,2] (values from fn) as an .npy
// file and opens it with the given batch size.
func writeData(t *testing.T, n, bs int, shape tensor.Shape, fn func(i int) float32) (*dataset.Dataset, []float32) {
	t.Helper()
	full := append(tensor.Shape{n}, shape...)
	xs := make([]float32, full.Size())
	for i := range xs {
		xs[i] = fn(i)
	}
	path := filepath.Join(t.TempDir(), "x.npy")
	must(t, npy.WriteFile(path, tensor.FromFloat32(full, xs)))
	d, err := dataset.Open("npy:"+path, dataset.Options{BatchSize: bs})
	must(t, err)
	return d, xs
}

func TestCollect(t *testing.T) {
	s := newSmallGraph()
	rng := rand.New(rand.NewPCG(1, 2))
	d, xs := writeData(t, 37, 8, tensor.Shape{3, 2, 2}, func(int) float32 { return float32(math.Abs(rng.NormFloat64())) })
	// Reference: min/max of x, relu = x, mul = 2x, sqrt; channel means of mul.
	lo, hi := slices.Min(xs), slices.Max(xs)
	var sums [3]float64
	for i, x := range xs {
		sums[(i/4)%3] += 2 * float64(x)
	}
	var progress []int
	st, err := calib.Collect(context.Background(), s.g, d, calib.Spec{
		ChannelMeans: map[ir.ValueID]int{s.mul: 1},
		Progress: func(done, total int, note string) {
			if total != 5 {
				t.Errorf("total %d, want 5", total)
			}
			progress = append(progress, done)
		},
	})
	must(t, err)
	if !slices.Equal(progress, []int{1, 2, 3, 4, 5}) {
		t.Errorf("progress %v", progress)
	}
	if st.Batches != 5 || st.Samples != 37 {
		t.Errorf("batches %d samples %d", st.Batches, st.Samples)
	}
	if got := st.Values(); !slices.Equal(got, []ir.ValueID{s.in, s.relu, s.mul, s.sqrt}) {
		t.Errorf("observed %v", got)
	}
	check := func(id ir.ValueID, wl, wh float32) {
		t.Helper()
		gl, gh, ok := st.Range(id)
		if !ok || gl[0] != wl || gh[0] != wh {
			t.Errorf("value %q: [%v, %v], want [%g, %g]", s.g.Values[id].Name, gl, gh, wl, wh)
		}
	}
	check(s.in, lo, hi)
	check(s.relu, lo, hi)
	check(s.mul, 2*lo, 2*hi)
	check(s.sqrt, float32(math.Sqrt(float64(lo))), float32(math.Sqrt(float64(hi))))
	if _, _, ok := st.Range(s.two); ok {
		t.Error("a constant was observed")
	}
	m := st.Means[s.mul].Means()
	for c := range 3 {
		if want := sums[c] / (37 * 4); math.Abs(m[c]-want) > 1e-9 {
			t.Errorf("mean %d: %g, want %g", c, m[c], want)
		}
	}

	// Workers split the batches; MinMax and histograms merge exactly.
	for _, workers := range []int{1, 3} {
		d.Reset(0)
		factory := func(ir.ValueID) calib.Factory {
			f, _ := calib.Config{Method: calib.MethodEntropy}.Factory()
			return f
		}
		st2, err := calib.Collect(context.Background(), s.g, d, calib.Spec{Workers: workers, Observer: factory, Batches: 4})
		must(t, err)
		if st2.Batches != 4 || st2.Samples != 32 {
			t.Errorf("workers %d: batches %d samples %d", workers, st2.Batches, st2.Samples)
		}
		if workers == 1 {
			continue
		}
		d.Reset(0)
		st1, err := calib.Collect(context.Background(), s.g, d, calib.Spec{Observer: factory, Batches: 4})
		must(t, err)
		for _, id := range st1.Values() {
			_, _, c1 := st1.Observers[id].(*calib.Histogram).Counts()
			_, _, c2 := st2.Observers[id].(*calib.Histogram).Counts()
			if !slices.Equal(c1, c2) {
				t.Errorf("value %d: histograms differ between 1 and %d workers", id, workers)
			}
		}
	}

	// Chosen values only, means only, and more batches than the data has.
	d.Reset(0)
	var notes []string
	st3, err := calib.Collect(context.Background(), s.g, d, calib.Spec{
		Values:       []ir.ValueID{s.relu},
		Observer:     func(ir.ValueID) calib.Factory { return nil },
		ChannelMeans: map[ir.ValueID]int{s.mul: -3},
		Batches:      100,
		Progress: func(done, total int, note string) {
			if note != "" {
				notes = append(notes, note)
			}
		},
	})
	must(t, err)
	if len(st3.Observers) != 0 || len(st3.Means) != 1 || st3.Batches != 5 {
		t.Errorf("observers %d means %d batches %d", len(st3.Observers), len(st3.Means), st3.Batches)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "ended after 5 of 100") {
		t.Errorf("notes %q", notes)
	}
}

// TestCollectParams: collected ranges feed quant.ParamsFor directly, also
// for a constant activation.
func TestCollectConstant(t *testing.T) {
	s := newSmallGraph()
	d, _ := writeData(t, 16, 4, tensor.Shape{3, 2, 2}, func(int) float32 { return -1 }) // Relu gives all zeros
	st, err := calib.Collect(context.Background(), s.g, d, calib.Spec{})
	if err == nil {
		t.Fatal("sqrt(-1) = NaN not reported")
	}
	var ve *calib.ValueError
	if !errors.As(err, &ve) || ve.Value != s.sqrt || ve.Batch != 1 || !errors.Is(err, calib.ErrNonFinite) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), `batch 1: value "sqrt_out"`) {
		t.Errorf("message %q", err)
	}
	d.Reset(0)
	st, err = calib.Collect(context.Background(), s.g, d, calib.Spec{Values: []ir.ValueID{s.relu, s.mul}})
	must(t, err)
	for _, id := range []ir.ValueID{s.relu, s.mul} {
		lo, hi, ok := st.Range(id)
		if !ok || lo[0] != 0 || hi[0] != 0 {
			t.Fatalf("constant zero activation: [%v, %v]", lo, hi)
		}
		p, err := quant.Scheme{DType: tensor.Uint8}.ParamsFor(lo, hi)
		if err != nil || p.Scale[0] != 1 || p.ZeroPoint[0] != 0 {
			t.Errorf("params %+v, %v", p, err)
		}
	}
}

// fakeReader yields n random batches of shape [bs, 3, 2, 2]; NaN at batch
// nanAt (1-based) if > 0.
type fakeReader struct {
	n, bs, pos, nanAt int
	shape             tensor.Shape
	dtype             tensor.DType
	rng               *rand.Rand
}

func (r *fakeReader) Next(ctx context.Context) (dataset.Batch, error) {
	if r.pos >= r.n {
		return dataset.Batch{}, io.EOF
	}
	r.pos++
	shape := r.shape
	if shape == nil {
		shape = tensor.Shape{r.bs, 3, 2, 2}
	}
	t, _ := tensor.New(r.dtype, shape)
	if xs, ok := t.Data.([]float32); ok {
		for i := range xs {
			xs[i] = float32(r.rng.NormFloat64())
		}
		if r.pos == r.nanAt {
			xs[len(xs)/2] = float32(math.NaN())
		}
	}
	return dataset.Batch{Inputs: []dataset.Input{{Name: "input", Tensor: t}}, Index: make([]int, shape[0])}, nil
}
func (r *fakeReader) Len() int                      { return r.n }
func (r *fakeReader) Reset(uint64)                  { r.pos = 0 }
func (r *fakeReader) Position() dataset.Position    { return dataset.Position{Index: r.pos} }
func (r *fakeReader) Seek(p dataset.Position) error { r.pos = p.Index; return nil }
func newFake(n int) *fakeReader {
	return &fakeReader{n: n, bs: 2, dtype: tensor.Float32, rng: rand.New(rand.NewPCG(uint64(n), 3))}
}

func TestCollectErrors(t *testing.T) {
	s := newSmallGraph()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		r    dataset.Reader
		spec calib.Spec
		want string
	}{
		{"zero batches", newFake(0), calib.Spec{}, "no batches"},
		{"zero batches requested many", newFake(0), calib.Spec{Batches: 10}, "no batches"},
		{"shape", &fakeReader{n: 3, bs: 2, shape: tensor.Shape{2, 3, 2, 5}, dtype: tensor.Float32, rng: rand.New(rand.NewPCG(1, 1))}, calib.Spec{}, `batch 1: infer: input "input" has shape [2 3 2 5]`},
		{"dtype", &fakeReader{n: 3, bs: 2, dtype: tensor.Int32, rng: rand.New(rand.NewPCG(1, 1))}, calib.Spec{}, `batch 1: infer: input "input" has dtype int32`},
		{"nan input", &fakeReader{n: 5, bs: 2, nanAt: 3, dtype: tensor.Float32, rng: rand.New(rand.NewPCG(1, 1))}, calib.Spec{Values: []ir.ValueID{s.in}}, `batch 3: value "input": `},
		{"constant value", newFake(2), calib.Spec{Values: []ir.ValueID{s.two}}, `"two" is a constant`},
		{"bad id", newFake(2), calib.Spec{Values: []ir.ValueID{99}}, "out of range"},
		{"bad mean id", newFake(2), calib.Spec{ChannelMeans: map[ir.ValueID]int{-2: 1}}, "out of range"},
		{"bad mean axis", newFake(2), calib.Spec{ChannelMeans: map[ir.ValueID]int{s.mul: 4}}, `batch 1: value "mul_out": channel axis 4 out of range`},
	} {
		_, err := calib.Collect(ctx, s.g, c.r, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	// Input names that do not match.
	d, _ := writeData(t, 4, 2, tensor.Shape{3, 2, 2}, func(int) float32 { return 1 })
	b := ir.NewBuilder("named", 13)
	b.Output(b.Op("Relu", "r", []ir.ValueID{b.Input("x", tensor.Float32, -1, 3, 2, 2)}))
	if _, err := calib.Collect(ctx, b.G, d, calib.Spec{}); err == nil || !strings.Contains(err.Error(), `batch 1: the data has input "input", the model's inputs are ["x"]`) {
		t.Errorf("unknown input name: %v", err)
	}
	b = ir.NewBuilder("two", 13)
	b.Output(b.Op("Add", "a", []ir.ValueID{b.Input("input", tensor.Float32, -1, 3, 2, 2), b.Input("y", tensor.Float32, -1, 3, 2, 2)}))
	d.Reset(0)
	if _, err := calib.Collect(ctx, b.G, d, calib.Spec{}); err == nil || !strings.Contains(err.Error(), `batch 1: the data has no input "y" (data inputs: ["input"]; model inputs: ["input" "y"])`) {
		t.Errorf("missing input: %v", err)
	}

	// A NaN in the input propagates through Relu and Mul.
	_, err := calib.Collect(ctx, s.g, &fakeReader{n: 5, bs: 2, nanAt: 2, dtype: tensor.Float32, rng: rand.New(rand.NewPCG(1, 1))}, calib.Spec{Values: []ir.ValueID{s.mul}})
	if !errors.Is(err, calib.ErrNonFinite) || !strings.Contains(err.Error(), `batch 2: value "mul_out"`) {
		t.Errorf("NaN through Relu/Mul: %v", err)
	}
	// Cancellation.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := calib.Collect(cctx, s.g, newFake(3), calib.Spec{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestCollectMemoryBounded: the heap does not grow with the number of
// batches (observers fold and keep nothing).
func TestCollectMemoryBounded(t *testing.T) {
	b := ir.NewBuilder("mem", 13)
	x := b.Input("input", tensor.Float32, -1, 3, 2, 2)
	y := x
	for range 6 {
		y = b.Op("Relu", "r", []ir.ValueID{b.Op("Neg", "n", []ir.ValueID{y})})
	}
	b.Output(y)
	r := &fakeReader{n: 300, bs: 64, dtype: tensor.Float32, rng: rand.New(rand.NewPCG(9, 9))}
	var heap [301]uint64
	factory := func(ir.ValueID) calib.Factory {
		f, _ := calib.Config{Method: calib.MethodPercentile}.Factory()
		return f
	}
	var ms runtime.MemStats
	_, err := calib.Collect(context.Background(), b.G, r, calib.Spec{
		Observer: factory, Threads: 1, Batches: 300,
		ChannelMeans: map[ir.ValueID]int{y: 1},
		Progress: func(done, _ int, _ string) {
			if done == 30 || done == 300 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				heap[done] = ms.HeapAlloc
			}
		},
	})
	must(t, err)
	if grow := int64(heap[300]) - int64(heap[30]); grow > 256<<10 {
		t.Errorf("heap grew by %d bytes from batch 30 to 300", grow)
	}
	t.Logf("heap at batch 30: %d, at 300: %d", heap[30], heap[300])
}
