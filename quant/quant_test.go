package quant_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

func TestBounds(t *testing.T) {
	for _, c := range []struct {
		s          quant.Scheme
		qmin, qmax int32
	}{
		{quant.Scheme{DType: tensor.Int8}, -128, 127},
		{quant.Scheme{DType: tensor.Int8, Narrow: true}, -127, 127},
		{quant.Scheme{DType: tensor.Int8, ReduceRange: true}, -64, 63},
		{quant.Scheme{DType: tensor.Int8, ReduceRange: true, Narrow: true}, -63, 63},
		{quant.Scheme{DType: tensor.Uint8}, 0, 255},
		{quant.Scheme{DType: tensor.Uint8, Narrow: true}, 1, 255},
		{quant.Scheme{DType: tensor.Uint8, ReduceRange: true}, 0, 127},
		{quant.Scheme{DType: tensor.Uint8, ReduceRange: true, Narrow: true}, 1, 127},
		{quant.Scheme{DType: tensor.Int16}, -32768, 32767},
		{quant.Scheme{DType: tensor.Uint16, ReduceRange: true}, 0, 32767},
		{quant.Scheme{DType: tensor.Float32}, 0, 0},
	} {
		lo, hi := c.s.Bounds()
		if lo != c.qmin || hi != c.qmax {
			t.Errorf("%v: bounds [%d, %d], want [%d, %d]", c.s, lo, hi, c.qmin, c.qmax)
		}
	}
}

func TestParamsFor(t *testing.T) {
	i8 := quant.Scheme{DType: tensor.Int8}
	u8 := quant.Scheme{DType: tensor.Uint8}
	sym := func(s quant.Scheme) quant.Scheme { s.Symmetric = true; return s }
	narrow := func(s quant.Scheme) quant.Scheme { s.Narrow = true; return s }
	reduce := func(s quant.Scheme) quant.Scheme { s.ReduceRange = true; return s }
	for _, c := range []struct {
		name     string
		s        quant.Scheme
		min, max float32
		scale    float32
		zp       int32
	}{
		{"u8 asym [0,255]", u8, 0, 255, 1, 0},
		{"u8 asym [-1,1]", u8, -1, 1, float32(2.0 / 255), 127}, // 1/float32(2/255) = 127.49999
		{"u8 asym [-1,2]", u8, -1, 2, float32(3.0 / 255), 85},
		{"u8 asym min>0 includes 0", u8, 2, 5.1, 0.02, 0},
		{"u8 asym max<0 includes 0", u8, -5.1, -2, 0.02, 255},
		{"i8 asym [-1,2]", i8, -1, 2, float32(3.0 / 255), -43},
		{"i8 asym min>0", i8, 1, 2.55, 0.01, -128},
		{"i8 sym [-1,2]", sym(i8), -1, 2, float32(4.0 / 255), 0},
		{"i8 sym narrow", narrow(sym(i8)), -3, 1.27, float32(6.0 / 254), 0},
		{"i8 sym reduce", reduce(sym(i8)), -1, 1, float32(2.0 / 127), 0},
		{"i8 sym narrow reduce", narrow(reduce(sym(i8))), -6.3, 1, 0.1, 0},
		{"u8 sym", sym(u8), -1, 1, float32(2.0 / 255), 128},
		{"u8 sym narrow", narrow(sym(u8)), -1, 1, float32(2.0 / 254), 128},
		{"u8 sym reduce", reduce(sym(u8)), 0, 1, float32(2.0 / 127), 64},
		{"u8 asym reduce", reduce(u8), 0, 1.27, 0.01, 0},
		{"degenerate zero u8 asym", u8, 0, 0, 1, 0},
		{"degenerate zero i8 asym", i8, 0, 0, 1, -128},
		{"degenerate zero i8 sym", sym(i8), 0, 0, 1, 0},
		{"degenerate zero u8 sym", sym(u8), 0, 0, 1, 128},
		{"denormal range", u8, 0, 1e-40, 1, 0},
		{"tiny normal range", sym(i8), -1e-30, 1e-30, float32(2e-30 / 255), 0},
		{"constant 3", u8, 3, 3, float32(3.0 / 255), 0},
		{"huge", sym(i8), -math.MaxFloat32, math.MaxFloat32, float32(2 * float64(math.MaxFloat32) / 255), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.s.ParamsFor([]float32{c.min}, []float32{c.max})
			if err != nil {
				t.Fatal(err)
			}
			if p.Scale[0] != c.scale || p.ZeroPoint[0] != c.zp {
				t.Fatalf("scale %g zp %d, want %g %d", p.Scale[0], p.ZeroPoint[0], c.scale, c.zp)
			}
			checkZeroExact(t, c.s, p.Scale[0], p.ZeroPoint[0])
			// The range (widened to 0) maps into the bounds, within half a
			// step at the ends.
			qmin, qmax := c.s.Bounds()
			lo, hi := min(c.min, 0), max(c.max, 0)
			if c.s.Symmetric {
				a := max(-lo, hi)
				lo, hi = -a, a
			}
			for _, x := range []float32{lo, hi} {
				q := float64(x)/float64(p.Scale[0]) + float64(p.ZeroPoint[0])
				if q < float64(qmin)-0.5-1e-4 || q > float64(qmax)+0.5+1e-4 {
					t.Errorf("%g maps to %g, outside [%d, %d]", x, q, qmin, qmax)
				}
			}
		})
	}
}

func checkZeroExact(t *testing.T, s quant.Scheme, scale float32, zp int32) {
	t.Helper()
	qmin, qmax := s.Bounds()
	if zp < qmin || zp > qmax {
		t.Errorf("zero point %d outside [%d, %d]", zp, qmin, qmax)
	}
	q := quant.Quantize(0, scale, zp, qmin, qmax)
	if q != zp || quant.Dequantize(q, scale, zp) != 0 {
		t.Errorf("0 quantizes to %d (zp %d) and back to %g", q, zp, quant.Dequantize(q, scale, zp))
	}
}

// TestParamsForRandom checks invariants on random ranges: 0 exact, zero
// point in bounds, scale normal, the ends within half a step.
func TestParamsForRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		s := quant.Scheme{DType: []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16}[i%4],
			Symmetric: i&4 != 0, Narrow: i&8 != 0, ReduceRange: i&16 != 0}
		e := rng.IntN(60) - 30
		a := float32(rng.NormFloat64() * math.Pow(10, float64(e)))
		b := float32(rng.NormFloat64() * math.Pow(10, float64(e)))
		lo, hi := min(a, b), max(a, b)
		sc, zp, err := s.ScaleZeroPoint(lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		if !(sc >= 0x1p-126) || math.IsInf(float64(sc), 0) {
			t.Fatalf("%v [%g, %g]: scale %g", s, lo, hi, sc)
		}
		checkZeroExact(t, s, sc, zp)
		qmin, qmax := s.Bounds()
		for _, x := range []float32{lo, hi} {
			q := quant.Quantize(x, sc, zp, math.MinInt32+1, math.MaxInt32)
			if (q < qmin-1 || q > qmax+1) && sc != 1 {
				t.Fatalf("%v [%g, %g] scale %g zp %d: %g quantizes to %d", s, lo, hi, sc, zp, x, q)
			}
		}
	}
}

func TestParamsForErrors(t *testing.T) {
	u8 := quant.Scheme{DType: tensor.Uint8}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, c := range []struct {
		name     string
		s        quant.Scheme
		min, max []float32
	}{
		{"nan", u8, []float32{nan}, []float32{1}},
		{"inf", u8, []float32{0}, []float32{inf}},
		{"min>max", u8, []float32{2}, []float32{1}},
		{"empty", u8, nil, nil},
		{"length mismatch", u8, []float32{0, 1}, []float32{1}},
		{"per-tensor with 2", u8, []float32{0, 0}, []float32{1, 1}},
	} {
		if _, err := c.s.ParamsFor(c.min, c.max); !errors.Is(err, quant.ErrRange) {
			t.Errorf("%s: err %v, want ErrRange", c.name, err)
		}
	}
	if _, err := (quant.Scheme{DType: tensor.Float32}).ParamsFor([]float32{0}, []float32{1}); err == nil {
		t.Error("float32 scheme accepted")
	}
	if _, err := (quant.Scheme{DType: tensor.Int8, PerChannel: true}).ParamsFor([]float32{0, 1}, []float32{1, nan}); err == nil {
		t.Error("NaN channel accepted")
	}
}

// refQuantize is the spec's formula written out: round half to even, then
// saturate to the type.
func refQuantize(x, scale float32, zp, lo, hi int32) int32 {
	if x != x {
		return lo
	}
	q := float64(x / scale)
	r := math.Floor(q)
	switch d := q - r; {
	case d > 0.5:
		r++
	case d == 0.5 && math.Mod(r, 2) != 0:
		r++
	}
	r += float64(zp)
	return int32(math.Max(float64(lo), math.Min(float64(hi), r)))
}

// randomInputs returns values with many exact ties (x.5 steps of scale),
// saturating values and specials.
func randomInputs(rng *rand.Rand, n int, scale float32) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		switch i % 5 {
		case 0:
			xs[i] = (float32(rng.IntN(600)-300) + 0.5) * scale // tie
		case 1:
			xs[i] = float32(rng.IntN(600)-300) * scale
		case 2:
			xs[i] = float32(rng.NormFloat64()*100) * scale
		case 3:
			xs[i] = float32(rng.NormFloat64() * 1e6)
		default:
			xs[i] = float32(rng.NormFloat64())
		}
	}
	copy(xs, []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.MaxFloat32, -math.MaxFloat32, 1e-45, -1e-45})
	return xs
}

func TestQuantizeReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16} {
		lo, hi, _ := quant.Limits(dt)
		for range 20 {
			scale := float32(math.Ldexp(1, rng.IntN(20)-10))
			if rng.IntN(2) == 0 {
				scale = float32(rng.Float64()*2 + 1e-3)
			}
			zp := lo + rng.Int32N(hi-lo+1)
			for _, x := range randomInputs(rng, 500, scale) {
				got, want := quant.Quantize(x, scale, zp, lo, hi), refQuantize(x, scale, zp, lo, hi)
				if got != want {
					t.Fatalf("%v: Quantize(%g, %g, %d) = %d, want %d", dt, x, scale, zp, got, want)
				}
			}
		}
	}
}

// runOne runs a one-node graph: op(x, scale, zp) with optional axis.
func runOne(t *testing.T, op string, x, scale, zp *tensor.Tensor, axis *int) *tensor.Tensor {
	t.Helper()
	b := ir.NewBuilder("q", 13)
	dims := make([]int64, len(x.Shape))
	for i, d := range x.Shape {
		dims[i] = int64(d)
	}
	in := b.Input("x", x.DType, dims...)
	var attrs []ir.Attr
	if axis != nil {
		attrs = append(attrs, ir.IntAttr("axis", int64(*axis)))
	}
	out := b.Op(op, op, []ir.ValueID{in, b.Const("scale", scale), b.Const("zp", zp)}, attrs...)
	b.Output(out)
	s, err := infer.NewSession(b.G, infer.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func ints(t *tensor.Tensor) []int64 {
	v, err := t.Int64s()
	if err != nil {
		panic(err)
	}
	return v
}

// TestKernelAgreement checks the reference loops against QuantizeLinear and
// DequantizeLinear run through infer, bit for bit, per tensor and per
// channel (axis 1 and -1), with ties, saturation and specials.
func TestKernelAgreement(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16} {
		for _, mode := range []struct {
			perChannel bool
			axis       int
		}{{false, 0}, {true, 1}, {true, -1}, {true, 0}} {
			s := quant.Scheme{DType: dt, PerChannel: mode.perChannel, Axis: mode.axis}
			shape := tensor.Shape{3, 5, 67}
			c := 1
			if s.PerChannel {
				ax := mode.axis
				if ax < 0 {
					ax += len(shape)
				}
				c = shape[ax]
			}
			lo, hi, _ := quant.Limits(dt)
			p := quant.Params{Scheme: s, Scale: make([]float32, c), ZeroPoint: make([]int32, c)}
			for i := range c {
				p.Scale[i] = float32(math.Ldexp(1, rng.IntN(8)-4))
				if i%2 == 1 {
					p.Scale[i] = float32(rng.Float64() + 0.01)
				}
				p.ZeroPoint[i] = lo + rng.Int32N(hi-lo+1)
			}
			xs := randomInputs(rng, shape.Size(), p.Scale[0])
			x := tensor.FromFloat32(shape, xs)
			var axis *int
			if s.PerChannel {
				axis = &mode.axis
			}
			got, err := p.Quantize(x)
			if err != nil {
				t.Fatal(err)
			}
			want := runOne(t, "QuantizeLinear", x, p.ScaleTensor(), p.ZeroPointTensor(), axis)
			if want.DType != dt || !want.Shape.Equal(got.Shape) {
				t.Fatalf("kernel gave %v %v", want.DType, want.Shape)
			}
			gi, wi := ints(got), ints(want)
			for i := range gi {
				if gi[i] != wi[i] {
					t.Fatalf("%v %+v: element %d (%g): reference %d, kernel %d", dt, mode, i, xs[i], gi[i], wi[i])
				}
			}
			deq, err := p.Dequantize(got)
			if err != nil {
				t.Fatal(err)
			}
			kd := runOne(t, "DequantizeLinear", got, p.ScaleTensor(), p.ZeroPointTensor(), axis)
			for i, v := range deq.F32() {
				if math.Float32bits(v) != math.Float32bits(kd.F32()[i]) {
					t.Fatalf("%v %+v: dequantize element %d: reference %g, kernel %g", dt, mode, i, v, kd.F32()[i])
				}
			}
			fq, err := p.FakeQuantize(x)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range fq.F32() {
				if math.Float32bits(v) != math.Float32bits(deq.F32()[i]) {
					t.Fatalf("FakeQuantize element %d: %g, want %g", i, v, deq.F32()[i])
				}
			}
		}
	}
}

// TestNarrowSaturation checks that Params.Quantize saturates to the
// scheme's bounds while Quantize with Limits saturates to the type.
func TestNarrowSaturation(t *testing.T) {
	s := quant.Scheme{DType: tensor.Int8, Symmetric: true, Narrow: true, ReduceRange: true}
	p, err := s.ParamsFor([]float32{-1}, []float32{1})
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.Quantize(tensor.FromFloat32(tensor.Shape{4}, []float32{-5, -1, 1, 5}))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Data.([]int8); got[0] != -63 || got[1] != -63 || got[2] != 63 || got[3] != 63 {
		t.Errorf("got %v, want [-63 -63 63 63]", got)
	}
	if v := quant.Quantize(-5, p.Scale[0], 0, -128, 127); v != -128 {
		t.Errorf("type saturation gave %d", v)
	}
}

func TestParamsTensors(t *testing.T) {
	s := quant.Scheme{DType: tensor.Uint8, PerChannel: true, Axis: -1}
	p, err := s.ParamsFor([]float32{-1, 0, -2}, []float32{1, 2, 0})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.ScaleTensor(); !st.Shape.Equal(tensor.Shape{3}) || st.DType != tensor.Float32 {
		t.Errorf("scale tensor %v %v", st.DType, st.Shape)
	}
	zt := p.ZeroPointTensor()
	if !zt.Shape.Equal(tensor.Shape{3}) || zt.DType != tensor.Uint8 || zt.U8()[0] != 127 || zt.U8()[1] != 0 || zt.U8()[2] != 255 {
		t.Errorf("zero point tensor %v", zt)
	}
	pt, _ := quant.Scheme{DType: tensor.Int8}.ParamsFor([]float32{-1}, []float32{1})
	if pt.ScaleTensor().Rank() != 0 || pt.ZeroPointTensor().Rank() != 0 || pt.ZeroPointTensor().DType != tensor.Int8 {
		t.Error("per-tensor parameters should give scalars")
	}
	if _, err := p.Quantize(tensor.FromFloat32(tensor.Shape{2, 4}, make([]float32, 8))); err == nil {
		t.Error("channel count mismatch accepted")
	}
	bad := quant.Params{Scheme: quant.Scheme{DType: tensor.Int8, PerChannel: true, Axis: 3}, Scale: []float32{1}, ZeroPoint: []int32{0}}
	if _, err := bad.Quantize(tensor.FromFloat32(tensor.Shape{1}, []float32{1})); err == nil {
		t.Error("axis out of range accepted")
	}
}

func TestQuantizeBias(t *testing.T) {
	q, err := quant.QuantizeBias([]float32{1, -2.5, 0.75}, []float32{0.5})
	if err != nil {
		t.Fatal(err)
	}
	if q[0] != 2 || q[1] != -5 || q[2] != 2 { // 1.5 rounds to even 2
		t.Errorf("got %v", q)
	}
	if _, err := quant.QuantizeBias([]float32{1e10}, []float32{1e-3}); err == nil {
		t.Error("int32 overflow accepted")
	}
	if _, err := quant.QuantizeBias([]float32{1}, []float32{0}); err == nil {
		t.Error("zero scale accepted")
	}
	if _, err := quant.QuantizeBias([]float32{1, 2}, []float32{1, 2, 3}); err == nil {
		t.Error("scale count mismatch accepted")
	}
}
