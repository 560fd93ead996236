package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

func TestEwLeakyHardSigmoid(t *testing.T) {
	xv := []float64{-3, -0.5, 0, 0.25, 4, 11}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
		x := ewMake(dt, tensor.Shape{2, 3}, xv)
		got, err := ewRun1("LeakyRelu", 16, ir.Attrs{ir.FloatAttr("alpha", 0.1)}, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "LeakyRelu "+dt.String(), got, dt, x.Shape, []float64{-0.3, -0.05, 0, 0.25, 4, 11}, 1e-3)
		got, err = ewRun1("LeakyRelu", 16, nil, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "LeakyRelu default "+dt.String(), got, dt, x.Shape, []float64{-0.03, -0.005, 0, 0.25, 4, 11}, 1e-3)
		got, err = ewRun1("HardSigmoid", 6, nil, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "HardSigmoid "+dt.String(), got, dt, x.Shape, []float64{0, 0.4, 0.5, 0.55, 1, 1}, 1e-3)
		got, err = ewRun1("HardSigmoid", 6, ir.Attrs{ir.FloatAttr("alpha", 0.5), ir.FloatAttr("beta", 0.6)}, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "HardSigmoid attrs "+dt.String(), got, dt, x.Shape, []float64{0, 0.35, 0.6, 0.725, 1, 1}, 1e-3)
	}
}

func TestEwPRelu(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cases := [][2]tensor.Shape{
		{{2, 3, 4}, {3, 1}},
		{{2, 3, 4}, {4}},
		{{2, 3, 4}, {}},
		{{2, 3, 4}, {2, 3, 4}},
		{{5}, {1}},
		{{2, 3, 4, 5}, {3, 1, 1}},
	}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int32, tensor.Int64} {
		for _, sp := range cases {
			integral := dt == tensor.Int32 || dt == tensor.Int64
			xv, sv := ewRand(r, sp[0].Size(), -5, 5, integral), ewRand(r, sp[1].Size(), -2, 2, integral)
			x, s := ewMake(dt, sp[0], xv), ewMake(dt, sp[1], sv)
			want := make([]float64, len(xv))
			for i := range want {
				v, a := x.Float64At(i), s.Float64At(ewSrcIndex(sp[0], sp[1], i))
				if v < 0 {
					v *= a
				}
				want[i] = v
			}
			got, err := ewRun1("PRelu", 16, nil, x, s)
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-6
			if dt == tensor.Float16 {
				tol = 2e-3
			}
			ewCheck(t, "PRelu "+dt.String()+sp[0].String()+sp[1].String(), got, dt, sp[0], want, tol)
		}
	}
	// The slope must broadcast to X without growing it.
	x := ewMake(tensor.Float32, tensor.Shape{3}, []float64{1, 2, 3})
	s := ewMake(tensor.Float32, tensor.Shape{2, 3}, make([]float64, 6))
	_, err := ewRun1("PRelu", 16, nil, x, s)
	ewWantErr(t, "PRelu growing slope", err, "does not broadcast")
	_, err = ewRun1("PRelu", 16, nil, x, ewMake(tensor.Float32, tensor.Shape{2}, []float64{1, 2}))
	ewWantErr(t, "PRelu bad slope", err, "does not broadcast")
}

func TestEwClip(t *testing.T) {
	xv := []float64{-5, -1, 0, 0.5, 2, 9}
	shape := tensor.Shape{2, 3}
	// Opset 6: attributes, defaults unbounded.
	x := ewMake(tensor.Float32, shape, xv)
	got, err := ewRun1("Clip", 6, ir.Attrs{ir.FloatAttr("min", -1), ir.FloatAttr("max", 1)}, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Clip-6", got, tensor.Float32, shape, []float64{-1, -1, 0, 0.5, 1, 1}, 0)
	got, err = ewRun1("Clip", 6, ir.Attrs{ir.FloatAttr("max", 1)}, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Clip-6 max only", got, tensor.Float32, shape, []float64{-5, -1, 0, 0.5, 1, 1}, 0)
	// Opset 11+: inputs, each optional.
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int8, tensor.Uint8, tensor.Int32, tensor.Int64, tensor.Uint64} {
		xv := []float64{0, 1, 2, 3, 7, 9}
		x := ewMake(dt, shape, xv)
		lo, hi := ewMake(dt, tensor.Shape{}, []float64{2}), ewMake(dt, tensor.Shape{}, []float64{7})
		for _, tc := range []struct {
			name   string
			lo, hi *tensor.Tensor
			want   []float64
		}{
			{"both", lo, hi, []float64{2, 2, 2, 3, 7, 7}},
			{"min only", lo, nil, []float64{2, 2, 2, 3, 7, 9}},
			{"max only", nil, hi, []float64{0, 1, 2, 3, 7, 7}},
			{"none", nil, nil, xv},
			{"min > max", hi, lo, []float64{2, 2, 2, 2, 2, 2}},
		} {
			ins := []*tensor.Tensor{x, tc.lo, tc.hi}
			if tc.hi == nil {
				ins = ins[:2]
				if tc.lo == nil {
					ins = ins[:1]
				}
			}
			got, err := ewRun1("Clip", 13, nil, ins...)
			if err != nil {
				t.Fatalf("Clip %v %s: %v", dt, tc.name, err)
			}
			ewCheck(t, "Clip "+dt.String()+" "+tc.name, got, dt, shape, tc.want, 0)
		}
	}
	nan := ewMake(tensor.Float32, tensor.Shape{1}, []float64{math.NaN()})
	got, err = ewRun1("Clip", 13, nil, nan, ewMake(tensor.Float32, tensor.Shape{}, []float64{0}), ewMake(tensor.Float32, tensor.Shape{}, []float64{1}))
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Clip NaN", got, tensor.Float32, tensor.Shape{1}, []float64{math.NaN()}, 0)
	_, err = ewRun1("Clip", 13, nil, x, ewMake(tensor.Float64, tensor.Shape{}, []float64{0}))
	ewWantErr(t, "Clip min dtype", err, "dtype")
	_, err = ewRun1("Clip", 13, nil, x, ewMake(tensor.Float32, tensor.Shape{2}, []float64{0, 1}))
	ewWantErr(t, "Clip min shape", err, "scalar")
	_, err = ewRun1("Clip", 6, nil, ewMake(tensor.Int32, tensor.Shape{1}, []float64{1}))
	ewWantErr(t, "Clip-6 int", err, "not supported")
}

// ewSoftmaxRef computes softmax or log-softmax of x over the dims [from,
// to) of shape, plainly in float64.
func ewSoftmaxRef(x []float64, shape tensor.Shape, from, to int, log bool) []float64 {
	outer := tensor.Shape(shape[:from]).Size()
	n := tensor.Shape(shape[from:to]).Size()
	inner := tensor.Shape(shape[to:]).Size()
	out := make([]float64, len(x))
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			at := func(k int) int { return (o*n+k)*inner + j }
			m := math.Inf(-1)
			for k := 0; k < n; k++ {
				m = max(m, x[at(k)])
			}
			s := 0.0
			for k := 0; k < n; k++ {
				s += math.Exp(x[at(k)] - m)
			}
			for k := 0; k < n; k++ {
				if log {
					out[at(k)] = x[at(k)] - m - math.Log(s)
				} else {
					out[at(k)] = math.Exp(x[at(k)]-m) / s
				}
			}
		}
	}
	return out
}

func TestEwSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	shapes := []tensor.Shape{{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 5}, {3, 0, 2}}
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		log := op == "LogSoftmax"
		for _, shape := range shapes {
			for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
				xv := ewRand(r, shape.Size(), -6, 6, false)
				x := ewMake(dt, shape, xv)
				xv = ewValues(x)
				tol := 1e-5
				if dt == tensor.Float16 {
					tol = 5e-3
				}
				for axis := -len(shape); axis < len(shape); axis++ {
					a := axis
					if a < 0 {
						a += len(shape)
					}
					attrs := ir.Attrs{ir.IntAttr("axis", int64(axis))}
					got, err := ewRun1(op, 13, attrs, x)
					if err != nil {
						t.Fatal(err)
					}
					ewCheck(t, op+"-13 "+shape.String(), got, dt, shape, ewSoftmaxRef(xv, shape, a, a+1, log), tol)
					got, err = ewRun1(op, 11, attrs, x)
					if err != nil {
						t.Fatal(err)
					}
					ewCheck(t, op+"-11 "+shape.String(), got, dt, shape, ewSoftmaxRef(xv, shape, a, len(shape), log), tol)
				}
				// Defaults: axis -1 at 13, axis 1 (coerced) before.
				got, err := ewRun1(op, 13, nil, x)
				if err != nil {
					t.Fatal(err)
				}
				ewCheck(t, op+"-13 default", got, dt, shape, ewSoftmaxRef(xv, shape, len(shape)-1, len(shape), log), tol)
				if len(shape) > 1 {
					got, err = ewRun1(op, 1, nil, x)
					if err != nil {
						t.Fatal(err)
					}
					ewCheck(t, op+"-1 default", got, dt, shape, ewSoftmaxRef(xv, shape, 1, len(shape), log), tol)
				}
			}
		}
		// Large values must not overflow.
		x := ewMake(tensor.Float32, tensor.Shape{2, 3}, []float64{10000, 10001, 10002, -10000, 0, 10000})
		got, err := ewRun1(op, 13, nil, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, op+" large", got, tensor.Float32, x.Shape, ewSoftmaxRef(ewValues(x), x.Shape, 1, 2, log), 1e-5)
		_, err = ewRun1(op, 13, ir.Attrs{ir.IntAttr("axis", 2)}, x)
		ewWantErr(t, op+" bad axis", err, "axis")
	}
	// A large softmax split across threads, with inner > 1.
	shape := tensor.Shape{64, 33, 40}
	xv := ewRand(r, shape.Size(), -3, 3, false)
	x := ewMake(tensor.Float32, shape, xv)
	xv = ewValues(x)
	outs, err := ewRun("Softmax", 13, ir.Attrs{ir.IntAttr("axis", 1)}, 1, 4, nil, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Softmax parallel", outs[0], tensor.Float32, shape, ewSoftmaxRef(xv, shape, 1, 2, false), 1e-5)
}

func TestEwIdentityDropout(t *testing.T) {
	x := ewMake(tensor.Float32, tensor.Shape{2, 2}, []float64{1, -2, 3, 4})
	got, err := ewRun1("Identity", 16, nil, x)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Identity", got, tensor.Float32, x.Shape, ewValues(x), 0)
	b := ewMake(tensor.Bool, tensor.Shape{3}, []float64{1, 0, 1})
	got, err = ewRun1("Identity", 13, nil, b)
	if err != nil {
		t.Fatal(err)
	}
	ewCheck(t, "Identity bool", got, tensor.Bool, b.Shape, []float64{1, 0, 1}, 0)

	// Opset 7: the mask has the data dtype; 10+: bool.
	for _, tc := range []struct {
		opset int64
		mdt   tensor.DType
	}{{7, tensor.Float32}, {10, tensor.Bool}, {13, tensor.Bool}} {
		outs, err := ewRun("Dropout", tc.opset, ir.Attrs{ir.FloatAttr("ratio", 0.3)}, 2, 1, nil, x)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "Dropout output", outs[0], tensor.Float32, x.Shape, ewValues(x), 0)
		ewCheck(t, "Dropout mask", outs[1], tc.mdt, x.Shape, []float64{1, 1, 1, 1}, 0)
	}
	ratio := ewMake(tensor.Float32, tensor.Shape{}, []float64{0.5})
	zero := ewMake(tensor.Float32, tensor.Shape{}, []float64{0})
	tr := ewMake(tensor.Bool, tensor.Shape{}, []float64{1})
	fa := ewMake(tensor.Bool, tensor.Shape{}, []float64{0})
	// training_mode false (or omitted, or ratio 0): identity.
	for _, ins := range [][]*tensor.Tensor{{x, ratio}, {x, ratio, fa}, {x, zero, tr}, {x, nil, fa}} {
		outs, err := ewRun("Dropout", 13, nil, 2, 1, nil, ins...)
		if err != nil {
			t.Fatal(err)
		}
		ewCheck(t, "Dropout-13", outs[0], tensor.Float32, x.Shape, ewValues(x), 0)
		ewCheck(t, "Dropout-13 mask", outs[1], tensor.Bool, x.Shape, []float64{1, 1, 1, 1}, 0)
	}
	// Training mode: a constant true is caught when building, a fed one
	// when running.
	_, err = ewRun("Dropout", 13, nil, 1, 1, []bool{false, true, true}, x, ratio, tr)
	ewWantErr(t, "Dropout const training", err, "training-mode Dropout is not supported by the executor")
	_, err = ewRun("Dropout", 12, nil, 1, 1, []bool{false, false, true}, x, nil, tr)
	ewWantErr(t, "Dropout const training default ratio", err, "training-mode Dropout is not supported")
	_, err = ewRun("Dropout", 13, nil, 1, 1, nil, x, ratio, tr)
	ewWantErr(t, "Dropout fed training", err, "training-mode Dropout is not supported")
	if _, err = ewRun("Dropout", 13, nil, 1, 1, []bool{false, true, true}, x, zero, tr); err != nil {
		t.Fatalf("Dropout const training with ratio 0: %v", err)
	}
}
