package ortoracle_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

func encode(t *testing.T, g *ir.Graph) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sample returns a 2x3 tensor of dt with distinct, representable values
// (negative ones for signed types).
func sample(dt tensor.DType) *tensor.Tensor {
	x, _ := tensor.New(dt, tensor.Shape{2, 3})
	for i := 0; i < 6; i++ {
		v := float64(i) - 2
		switch d := x.Data.(type) {
		case []float32:
			d[i] = float32(v) * 1.5
		case []float64:
			d[i] = v * 1.25
		case []uint16:
			if dt == tensor.Float16 {
				d[i] = tensor.Float32ToHalf(float32(v) * 0.5)
			} else {
				d[i] = uint16(i * 1000)
			}
		case []int8:
			d[i] = int8(v * 40)
		case []uint8:
			d[i] = uint8(i * 50)
		case []int16:
			d[i] = int16(v * 9000)
		case []int32:
			d[i] = int32(v * 1e9)
		case []uint32:
			d[i] = uint32(i) * 7e8
		case []int64:
			d[i] = int64(v) << 40
		case []uint64:
			d[i] = uint64(i) << 60
		case []bool:
			d[i] = i%2 == 0
		}
	}
	return x
}

// TestRoundTrip sends each dtype through Identity and checks the bits.
func TestRoundTrip(t *testing.T) {
	o := ortoracle.Require(t)
	if o.Version() == "" {
		t.Error("empty version")
	}
	dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int8,
		tensor.Uint8, tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64,
		tensor.Uint64, tensor.Bool}
	var cases []ortoracle.Case
	for _, dt := range dts {
		b := ir.NewBuilder("id", 21)
		x := b.Input("x", dt, 2, 3)
		y := b.Op("Identity", "id", []ir.ValueID{x})
		b.G.Values[y].Type = ir.Type{DType: dt, Ranked: true, Shape: ir.ShapeDims(tensor.Shape{2, 3})}
		b.Output(y)
		cases = append(cases, ortoracle.Case{Model: encode(t, b.G), Feeds: map[string]*tensor.Tensor{"x": sample(dt)}})
	}
	res, err := o.RunAll(cases)
	if err != nil {
		t.Fatal(err)
	}
	for i, dt := range dts {
		in := cases[i].Feeds["x"]
		got := res[i].Outputs["id_out"]
		switch {
		case res[i].Err != nil:
			t.Errorf("%v: %v", dt, res[i].Err)
		case got == nil:
			t.Errorf("%v: no output id_out in %v", dt, res[i].Outputs)
		case got.DType != dt || !got.Shape.Equal(in.Shape) || got.String() != in.String():
			t.Errorf("%v: got %v, want %v", dt, got, in)
		}
	}
}

// TestScalarAndOptLevels runs Add on scalars with every optimization level.
func TestScalarAndOptLevels(t *testing.T) {
	o := ortoracle.Require(t)
	b := ir.NewBuilder("add", 13)
	x := b.Input("x", tensor.Float32)
	c := b.Const("c", tensor.FromFloat32(tensor.Shape{}, []float32{2.5}))
	y := b.Op("Add", "add", []ir.ValueID{x, c})
	b.Output(y)
	model := encode(t, b.G)
	for _, lvl := range []string{"", ortoracle.OptDisabled, ortoracle.OptBasic, ortoracle.OptExtended, ortoracle.OptAll} {
		outs, err := o.With(ortoracle.Options{OptLevel: lvl}).Run(model, map[string]*tensor.Tensor{
			"x": tensor.FromFloat32(tensor.Shape{}, []float32{1})})
		if err != nil {
			t.Fatalf("%q: %v", lvl, err)
		}
		got := outs["add_out"]
		if got == nil || len(got.Shape) != 0 || got.F32()[0] != 3.5 {
			t.Fatalf("%q: got %v, want scalar 3.5", lvl, got)
		}
	}
	if _, err := o.With(ortoracle.Options{OptLevel: "max"}).Run(model, nil); err == nil {
		t.Error("unknown optimization level accepted")
	}
}

// TestORTError checks that ORT's own message comes back as an error.
func TestORTError(t *testing.T) {
	o := ortoracle.Require(t)
	b := ir.NewBuilder("bad", 13)
	x := b.Input("x", tensor.Float32, 2)
	y := b.Op("NoSuchOp", "bad", []ir.ValueID{x})
	b.Output(y)
	_, err := o.Run(encode(t, b.G), map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{2}, []float32{1, 2})})
	if err == nil || !ortoracle.IsORTError(err) || !strings.Contains(err.Error(), "NoSuchOp") {
		t.Fatalf("got error %v, want an ORT error naming NoSuchOp", err)
	}
	// A feed with the wrong dtype is refused by ORT too.
	b2 := ir.NewBuilder("relu", 13)
	x2 := b2.Input("x", tensor.Float32, 2)
	b2.Output(b2.Op("Relu", "relu", []ir.ValueID{x2}))
	_, err = o.Run(encode(t, b2.G), map[string]*tensor.Tensor{"x": tensor.FromInt64(tensor.Shape{2}, []int64{1, 2})})
	if !ortoracle.IsORTError(err) {
		t.Fatalf("got error %v, want an ORT error", err)
	}
}

func TestBench(t *testing.T) {
	o := ortoracle.Require(t)
	b := ir.NewBuilder("relu", 13)
	x := b.Input("x", tensor.Float32, 64)
	b.Output(b.Op("Relu", "relu", []ir.ValueID{x}))
	times, err := o.Bench(encode(t, b.G), map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{64}, make([]float32, 64))}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 5 {
		t.Fatalf("got %d times, want 5", len(times))
	}
	for _, d := range times {
		if d <= 0 {
			t.Fatalf("non-positive time %v", d)
		}
	}
	if _, err := o.Bench(nil, nil, 0, 0); err == nil {
		t.Error("iters 0 accepted")
	}
}

func TestFindMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ortoracle.EnvDir, dir)
	got, err := ortoracle.Dir()
	if err != nil || got != dir {
		t.Fatalf("Dir() = %q, %v; want %q", got, err, dir)
	}
	if _, err := ortoracle.Find(); err == nil || !strings.Contains(err.Error(), "onnxruntime-node") {
		t.Fatalf("Find() error %v, want one naming onnxruntime-node", err)
	}
}

// TestRunAll runs a good and a bad model in one process.
func TestRunAll(t *testing.T) {
	o := ortoracle.Require(t)
	good := ir.NewBuilder("neg", 13)
	x := good.Input("x", tensor.Int32, 3)
	good.Output(good.Op("Neg", "neg", []ir.ValueID{x}))
	bad := ir.NewBuilder("bad", 13)
	bx := bad.Input("x", tensor.Int32, 3)
	bad.Output(bad.Op("Conv", "conv", []ir.ValueID{bx})) // Conv needs W
	feeds := map[string]*tensor.Tensor{"x": {DType: tensor.Int32, Shape: tensor.Shape{3}, Data: []int32{1, -2, 3}}}
	res, err := o.RunAll([]ortoracle.Case{{Model: encode(t, good.G), Feeds: feeds}, {Model: encode(t, bad.G), Feeds: feeds}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2", len(res))
	}
	if res[0].Err != nil || res[0].Outputs["neg_out"].String() != "int32[3]{-1, 2, -3}" {
		t.Errorf("good model: %v %v", res[0].Outputs, res[0].Err)
	}
	if !ortoracle.IsORTError(res[1].Err) {
		t.Errorf("bad model: got error %v, want an ORT error", res[1].Err)
	}
	t.Logf("ORT says: %v", res[1].Err)
	if res, err := o.RunAll(nil); err != nil || len(res) != 0 {
		t.Errorf("RunAll(nil) = %v, %v", res, err)
	}
}
