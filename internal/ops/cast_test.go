package ops

import (
	"math"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// ewCastTypes are the dtypes Cast converts between.
var ewCastTypes = []tensor.DType{tensor.Float32, tensor.Float16, tensor.Float64, tensor.Int8, tensor.Uint8,
	tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64, tensor.Bool}

// ewCastRef converts one value the way Cast should: truncation toward
// zero for integers (inputs here are in range), != 0 for bool, float16
// rounding.
func ewCastRef(v float64, dt tensor.DType) float64 {
	switch dt {
	case tensor.Bool:
		if v != 0 {
			return 1
		}
		return 0
	case tensor.Float32:
		return float64(float32(v))
	case tensor.Float16:
		return float64(tensor.HalfToFloat32(tensor.Float32ToHalf(float32(v))))
	case tensor.Float64:
		return v
	}
	return math.Trunc(v)
}

func TestEwCastMatrix(t *testing.T) {
	// Values every type can hold (after its own conversion).
	signed := []float64{0, 1, 2.75, -3.5, 100.25, -0.5, 127, 7}
	unsigned := []float64{0, 1, 2.75, 3.5, 100.25, 0.5, 127, 77}
	isUnsigned := func(dt tensor.DType) bool {
		return dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 || dt == tensor.Uint64
	}
	for _, from := range ewCastTypes {
		for _, to := range ewCastTypes {
			// Negative floats to unsigned integers are out of range
			// (platform-defined); integer wrapping is tested below.
			vals := signed
			if isUnsigned(from) || isUnsigned(to) {
				vals = unsigned
			}
			src := make([]float64, len(vals))
			for i, v := range vals {
				src[i] = ewCastRef(v, from)
			}
			x := ewMake(from, tensor.Shape{2, 4}, src)
			want := make([]float64, len(src))
			for i, v := range src {
				want[i] = ewCastRef(v, to)
			}
			for _, opset := range []int64{9, 13, 19, 21} {
				got, err := ewRun1("Cast", opset, ir.Attrs{ir.IntAttr("to", int64(to)), ir.IntAttr("saturate", 1)}, x)
				if err != nil {
					t.Fatalf("Cast %v->%v: %v", from, to, err)
				}
				ewCheck(t, "Cast "+from.String()+"->"+to.String(), got, to, x.Shape, want, 0)
			}
			like := ewMake(to, tensor.Shape{1}, []float64{0})
			got, err := ewRun1("CastLike", 15, nil, x, like)
			if err != nil {
				t.Fatalf("CastLike %v->%v: %v", from, to, err)
			}
			ewCheck(t, "CastLike "+from.String()+"->"+to.String(), got, to, x.Shape, want, 0)
		}
	}
}

func TestEwCastSpecial(t *testing.T) {
	x := ewMake(tensor.Float32, tensor.Shape{6}, []float64{math.NaN(), math.Inf(1), -0.0, 1e-30, 65520, -2.9})
	got, err := ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Bool))}, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "float->bool", got, tensor.Bool, x.Shape, []float64{1, 1, 0, 1, 1, 1}, 0)
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Float16))}, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "float->half", got, tensor.Float16, x.Shape, []float64{math.NaN(), math.Inf(1), 0, 0, math.Inf(1), -2.900390625}, 0)
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Int32))}, ewMake(tensor.Float64, tensor.Shape{3}, []float64{math.NaN(), -2.9, 2.9}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "NaN->int", got, tensor.Int32, tensor.Shape{3}, []float64{0, -2, 2}, 0)
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Int64))}, ewMake(tensor.Uint64, tensor.Shape{1}, []float64{1 << 40}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "uint64->int64", got, tensor.Int64, tensor.Shape{1}, []float64{1 << 40}, 0)
	// Integer to integer wraps like C.
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Uint8))}, ewMake(tensor.Int16, tensor.Shape{3}, []float64{-3, 300, 255}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "int16->uint8", got, tensor.Uint8, tensor.Shape{3}, []float64{253, 44, 255}, 0)
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Int8))}, ewMake(tensor.Uint32, tensor.Shape{2}, []float64{255, 128}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "uint32->int8", got, tensor.Int8, tensor.Shape{2}, []float64{-1, -128}, 0)
	got, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Uint32))}, ewMake(tensor.Int64, tensor.Shape{1}, []float64{-1}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "int64->uint32", got, tensor.Uint32, tensor.Shape{1}, []float64{4294967295}, 0)

	// Unsupported types fail with the node's name, both ways.
	for _, to := range []int64{int64(tensor.BFloat16), int64(tensor.String), 17, 19, 21, 22, 99} {
		_, err := ewRun1("Cast", 21, ir.Attrs{ir.IntAttr("to", to)}, x)
		ewWantErr(t, "Cast to unsupported", err, "")
	}
	_, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.BFloat16))}, x)
	ewWantErr(t, "Cast to bfloat16", err, "bfloat16")
	bf := &tensor.Tensor{DType: tensor.BFloat16, Shape: tensor.Shape{1}, Data: []uint16{0x3f80}}
	_, err = ewRun1("Cast", 13, ir.Attrs{ir.IntAttr("to", int64(tensor.Float32))}, bf)
	ewWantErr(t, "Cast from bfloat16", err, "bfloat16")
	_, err = ewRun1("Cast", 13, nil, x)
	ewWantErr(t, "Cast without to", err, "to")
}
