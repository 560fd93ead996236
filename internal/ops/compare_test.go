package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/tensor"
)

func TestEwCompare(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	ops := map[string]func(x, y float64) bool{
		"Equal":          func(x, y float64) bool { return x == y },
		"Greater":        func(x, y float64) bool { return x > y },
		"Less":           func(x, y float64) bool { return x < y },
		"GreaterOrEqual": func(x, y float64) bool { return x >= y },
		"LessOrEqual":    func(x, y float64) bool { return x <= y },
	}
	dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int8, tensor.Uint8,
		tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64}
	for op, f := range ops {
		for _, dt := range dts {
			for _, sp := range ewShapePairs {
				out, _ := BroadcastShapes(sp[0], sp[1])
				// Small integers make equality common.
				a := ewMake(dt, sp[0], ewRand(r, sp[0].Size(), 0, 4, true))
				b := ewMake(dt, sp[1], ewRand(r, sp[1].Size(), 0, 4, true))
				want := make([]float64, out.Size())
				for i := range want {
					if f(a.Float64At(ewSrcIndex(out, sp[0], i)), b.Float64At(ewSrcIndex(out, sp[1], i))) {
						want[i] = 1
					}
				}
				got, err := ewRun1(op, 13, nil, a, b)
				if err != nil {
					t.Fatalf("%s %v: %v", op, dt, err)
				}
				ewCheck(t, op+" "+dt.String()+sp[0].String()+sp[1].String(), got, tensor.Bool, out, want, 0)
			}
		}
	}
	// NaN compares false, bool Equal works, bool Greater does not.
	n := ewMake(tensor.Float32, tensor.Shape{2}, []float64{math.NaN(), 1})
	got, err := ewRun1("Equal", 13, nil, n, n)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Equal NaN", got, tensor.Bool, tensor.Shape{2}, []float64{0, 1}, 0)
	b1 := ewMake(tensor.Bool, tensor.Shape{4}, []float64{1, 0, 1, 0})
	b2 := ewMake(tensor.Bool, tensor.Shape{2, 1}, []float64{1, 0})
	got, err = ewRun1("Equal", 11, nil, b1, b2)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Equal bool", got, tensor.Bool, tensor.Shape{2, 4}, []float64{1, 0, 1, 0, 0, 1, 0, 1}, 0)
	_, err = ewRun1("Greater", 13, nil, b1, b1)
	ewWantErr(t, "Greater bool", err, "not supported")
	_, err = ewRun1("Less", 13, nil, n, ewMake(tensor.Float64, tensor.Shape{2}, []float64{1, 2}))
	ewWantErr(t, "Less mixed", err, "different dtypes")
}

func TestEwWhere(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	triples := [][3]tensor.Shape{
		{{}, {}, {}},
		{{4}, {4}, {4}},
		{{2, 1}, {1, 3}, {}},
		{{3, 1, 5}, {4, 1}, {1, 1, 5}},
		{{1}, {2, 3}, {3}},
		{{2, 3, 4, 5}, {3, 1, 1}, {2, 1, 4, 5}},
		{{1, 2, 1, 2, 1, 2}, {2, 1, 2, 1, 2, 1}, {1}},
		{{0, 2}, {2}, {1}},
		{{70000}, {70000}, {}},
	}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float16, tensor.Int64, tensor.Uint8, tensor.Bool} {
		for _, tr := range triples {
			out, _ := BroadcastShapes(tr[0], tr[1], tr[2])
			c := ewMake(tensor.Bool, tr[0], ewRand(r, tr[0].Size(), 0, 2, true))
			x := ewMake(dt, tr[1], ewRand(r, tr[1].Size(), 0, 2, true))
			y := ewMake(dt, tr[2], ewRand(r, tr[2].Size(), 2, 9, true))
			if dt == tensor.Bool {
				y = ewMake(dt, tr[2], ewRand(r, tr[2].Size(), 0, 2, true))
			}
			want := make([]float64, out.Size())
			for i := range want {
				if c.Float64At(ewSrcIndex(out, tr[0], i)) != 0 {
					want[i] = x.Float64At(ewSrcIndex(out, tr[1], i))
				} else {
					want[i] = y.Float64At(ewSrcIndex(out, tr[2], i))
				}
			}
			for _, threads := range []int{1, 3} {
				outs, err := ewRun("Where", 16, nil, 1, threads, nil, c, x, y)
				if err != nil {
					t.Fatal(err)
				}
				ewCheck(t, "Where "+dt.String()+tr[0].String()+tr[1].String()+tr[2].String(), outs[0], dt, out, want, 0)
			}
		}
	}
	x := ewMake(tensor.Float32, tensor.Shape{2}, []float64{1, 2})
	_, err := ewRun1("Where", 16, nil, x, x, x)
	ewWantErr(t, "Where float condition", err, "want bool")
	c := ewMake(tensor.Bool, tensor.Shape{2}, []float64{1, 0})
	_, err = ewRun1("Where", 16, nil, c, x, ewMake(tensor.Int32, tensor.Shape{2}, []float64{1, 2}))
	ewWantErr(t, "Where mixed", err, "different dtypes")
	_, err = ewRun1("Where", 16, nil, ewMake(tensor.Bool, tensor.Shape{3}, []float64{1, 0, 1}), x, x)
	ewWantErr(t, "Where shapes", err, "cannot be broadcast")
}
