package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// quantRefScaleIndex maps element i of x to its scale index from first
// principles: per-tensor 0; per-axis the axis coordinate; blocked the
// scale tensor's flat index with the axis coordinate divided by block.
func quantRefScaleIndex(i int, xs tensor.Shape, sShape tensor.Shape, axis, block int) int {
	if tensor.Shape(sShape).Size() == 1 && (block == 0 || len(sShape) != len(xs)) {
		return 0
	}
	idx := make([]int, len(xs))
	for d := len(xs) - 1; d >= 0; d-- {
		idx[d] = i % xs[d]
		i /= xs[d]
	}
	if block == 0 {
		return idx[axis]
	}
	j := 0
	for d := range xs {
		c := idx[d]
		if d == axis {
			c /= block
		}
		j = j*sShape[d] + c
	}
	return j
}

// quantRange returns the saturation bounds of a quantized dtype.
func quantRange(dt tensor.DType) (float64, float64) {
	switch dt {
	case tensor.Int8:
		return -128, 127
	case tensor.Uint16:
		return 0, 65535
	case tensor.Int16:
		return -32768, 32767
	}
	return 0, 255
}

// quantCase is a random Q/DQ configuration: shapes of x and scale, axis and
// block size.
type quantCase struct {
	xs, ss tensor.Shape
	axis   int
	block  int
	opset  int64
}

func quantRandomCase(r *rand.Rand) quantCase {
	rank := 1 + r.IntN(4)
	xs := make(tensor.Shape, rank)
	for d := range xs {
		xs[d] = 1 + r.IntN(6)
	}
	c := quantCase{xs: xs, axis: r.IntN(rank), opset: []int64{10, 13, 19, 21}[r.IntN(4)]}
	g := r.IntN(3)
	switch {
	case g == 0 || c.opset < 13:
		if r.IntN(2) == 0 {
			c.ss = tensor.Shape{}
		} else {
			c.ss = tensor.Shape{1}
		}
	case g == 1 || c.opset < 21:
		c.ss = tensor.Shape{xs[c.axis]}
	default:
		c.block = 1 + r.IntN(4)
		c.ss = xs.Clone()
		c.ss[c.axis] = (xs[c.axis] + c.block - 1) / c.block
	}
	return c
}

func (c quantCase) attrs() ir.Attrs {
	var a ir.Attrs
	if c.opset >= 13 {
		ax := int64(c.axis)
		if ax > 0 && len(c.xs)%2 == 0 {
			ax -= int64(len(c.xs)) // exercise negative axes
		}
		a = append(a, famInt("axis", ax))
	}
	if c.block > 0 {
		a = append(a, famInt("block_size", int64(c.block)))
	}
	return a
}

func TestQuantizeLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for iter := 0; iter < 600; iter++ {
		c := quantRandomCase(r)
		odt := []tensor.DType{tensor.Uint8, tensor.Int8, tensor.Uint16, tensor.Int16}[r.IntN(4)]
		if c.opset < 21 {
			odt = []tensor.DType{tensor.Uint8, tensor.Int8}[r.IntN(2)]
		}
		xdt := tensor.Float32
		if c.opset >= 19 && r.IntN(3) == 0 {
			xdt = tensor.Float16
		} else if r.IntN(5) == 0 {
			xdt = tensor.Int32
		}
		sdt := tensor.Float32
		if xdt == tensor.Float16 {
			sdt = tensor.Float16
		}
		useZP := r.IntN(3) != 0
		if !useZP && c.opset < 21 {
			odt = tensor.Uint8 // no output_dtype before opset 21
		}
		lo, hi := quantRange(odt)
		n := c.xs.Size()
		xv := make([]float64, n)
		for i := range xv {
			switch {
			case xdt == tensor.Int32:
				xv[i] = float64(r.IntN(2001) - 1000)
			case r.IntN(6) == 0:
				xv[i] = float64(r.IntN(41)-20) / 2 // exact ties
			default:
				xv[i] = (r.Float64()*2 - 1) * 300
			}
		}
		sn := c.ss.Size()
		sv := make([]float64, sn)
		zv := make([]float64, sn)
		for i := range sv {
			sv[i] = []float64{0.5, 1, 0.1, 0.037, 2.5, 3}[r.IntN(6)]
			zv[i] = math.Round(lo + r.Float64()*(hi-lo))
		}
		x := famTensor(xdt, c.xs, xv)
		s := famTensor(sdt, c.ss, sv)
		xv, sv = famValues(x), famValues(s)
		in := []*tensor.Tensor{x, s}
		attrs := c.attrs()
		if useZP {
			in = append(in, famTensor(odt, c.ss, zv))
		} else {
			clear(zv)
			if odt != tensor.Uint8 {
				attrs = append(attrs, famInt("output_dtype", int64(odt)))
			}
		}
		name := fmt.Sprintf("iter %d opset %d x %v%v scale %v%v block %d axis %d -> %v zp %v", iter, c.opset, xdt, c.xs, sdt, c.ss, c.block, c.axis, odt, useZP)
		got, err := famRun("QuantizeLinear", c.opset, attrs, 1+iter%3, in...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := make([]float64, n)
		for i := range want {
			j := quantRefScaleIndex(i, c.xs, c.ss, c.axis, c.block)
			var q float64
			switch xdt {
			case tensor.Int32:
				q = xv[i] / sv[j]
			case tensor.Float16:
				q = float64(tensor.HalfToFloat32(tensor.Float32ToHalf(float32(xv[i]) / float32(sv[j]))))
			default:
				q = float64(float32(xv[i]) / float32(sv[j]))
			}
			want[i] = math.Min(math.Max(math.RoundToEven(q)+zv[j], lo), hi)
		}
		famClose(t, name, got, odt, c.xs, want, 0)
	}
}

func TestDequantizeLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for iter := 0; iter < 600; iter++ {
		c := quantRandomCase(r)
		xdt := []tensor.DType{tensor.Uint8, tensor.Int8, tensor.Int32}[r.IntN(3)]
		if c.opset >= 21 && r.IntN(2) == 0 {
			xdt = []tensor.DType{tensor.Uint16, tensor.Int16}[r.IntN(2)]
		}
		sdt := tensor.Float32
		if c.opset >= 19 && r.IntN(3) == 0 {
			sdt = tensor.Float16
		}
		lo, hi := quantRange(xdt)
		if xdt == tensor.Int32 {
			lo, hi = -1e6, 1e6
		}
		n := c.xs.Size()
		xv := make([]float64, n)
		for i := range xv {
			xv[i] = math.Round(lo + r.Float64()*(hi-lo))
		}
		sn := c.ss.Size()
		sv, zv := make([]float64, sn), make([]float64, sn)
		for i := range sv {
			sv[i] = r.Float64() * 0.2
			zv[i] = math.Round(lo + r.Float64()*(hi-lo))
		}
		x := famTensor(xdt, c.xs, xv)
		s := famTensor(sdt, c.ss, sv)
		sv = famValues(s)
		in := []*tensor.Tensor{x, s}
		if xdt != tensor.Int32 && r.IntN(3) != 0 {
			in = append(in, famTensor(xdt, c.ss, zv))
		} else {
			clear(zv)
		}
		name := fmt.Sprintf("iter %d opset %d x %v%v scale %v%v block %d axis %d", iter, c.opset, xdt, c.xs, sdt, c.ss, c.block, c.axis)
		got, err := famRun("DequantizeLinear", c.opset, c.attrs(), 1+iter%3, in...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := make([]float64, n)
		for i := range want {
			j := quantRefScaleIndex(i, c.xs, c.ss, c.axis, c.block)
			y := float32(xv[i]-zv[j]) * float32(sv[j])
			if sdt == tensor.Float16 {
				y = tensor.HalfToFloat32(tensor.Float32ToHalf(y))
			}
			want[i] = float64(y)
		}
		famClose(t, name, got, sdt, c.xs, want, 0)
	}
}

func TestQuantHand(t *testing.T) {
	// ONNX's QuantizeLinear example: 3/2 = 1.5 rounds to 2.
	x := famTensor(tensor.Float32, tensor.Shape{6}, []float64{0, 2, 3, 1000, -254, -1000})
	got, err := famRun("QuantizeLinear", 13, nil, 1, x, famTensor(tensor.Float32, tensor.Shape{}, []float64{2}),
		famTensor(tensor.Uint8, tensor.Shape{}, []float64{128}))
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "onnx example", got, tensor.Uint8, tensor.Shape{6}, []float64{128, 129, 130, 255, 1, 0}, 0)
	// Round half to even, saturation, NaN and infinities.
	nan, inf := math.NaN(), math.Inf(1)
	x = famTensor(tensor.Float32, tensor.Shape{11}, []float64{0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000, -1000, nan, inf, -inf})
	got, err = famRun("QuantizeLinear", 13, nil, 1, x, famTensor(tensor.Float32, tensor.Shape{}, []float64{1}),
		famTensor(tensor.Int8, tensor.Shape{}, []float64{0}))
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "ties and saturation", got, tensor.Int8, tensor.Shape{11}, []float64{0, 2, 2, 0, -2, -2, 127, -128, -128, 127, -128}, 0)
	// Default output: uint8 with zero point 0.
	got, err = famRun("QuantizeLinear", 10, nil, 1, famTensor(tensor.Float32, tensor.Shape{3}, []float64{-3, 3, 300}),
		famTensor(tensor.Float32, tensor.Shape{}, []float64{1}))
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "default uint8", got, tensor.Uint8, tensor.Shape{3}, []float64{0, 3, 255}, 0)
	// Blocked, axis 1, block 2 (values worked by hand).
	x = famTensor(tensor.Float32, tensor.Shape{3, 4}, []float64{6, 12, 50, 5, 1, 8, 4, 5, 0, 20, 10, 4})
	s := famTensor(tensor.Float32, tensor.Shape{3, 2}, []float64{1.5, 2.5, 3, 4.9, 5.1, 6.9})
	zp := famTensor(tensor.Uint8, tensor.Shape{3, 2}, []float64{0, 1, 1, 0, 2, 3})
	attrs := ir.Attrs{famInt("axis", 1), famInt("block_size", 2)}
	got, err = famRun("QuantizeLinear", 21, attrs, 1, x, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "blocked", got, tensor.Uint8, tensor.Shape{3, 4}, []float64{4, 8, 21, 3, 1, 4, 1, 1, 2, 6, 4, 4}, 0)
	back, err := famRun("DequantizeLinear", 21, attrs, 1, got, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "blocked dequantize", back, tensor.Float32, tensor.Shape{3, 4},
		[]float64{6, 12, 50, 5, 0, 9, 4.9, 4.9, 0, 20.4, 6.9, 6.9}, 1e-6)
	// Round trip: |DQ(Q(x)) - x| <= scale/2 inside the range.
	r := rand.New(rand.NewPCG(15, 16))
	xv := make([]float64, 1000)
	for i := range xv {
		xv[i] = r.Float64()*25 - 12.5
	}
	x = famTensor(tensor.Float32, tensor.Shape{1000}, xv)
	sc, z := famTensor(tensor.Float32, tensor.Shape{}, []float64{0.1}), famTensor(tensor.Int8, tensor.Shape{}, []float64{3})
	q, err := famRun("QuantizeLinear", 13, nil, 1, x, sc, z)
	if err != nil {
		t.Fatal(err)
	}
	y, err := famRun("DequantizeLinear", 13, nil, 1, q, sc, z)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range famValues(y) {
		if math.Abs(v-xv[i]) > 0.05+1e-6 {
			t.Fatalf("round trip %d: %g -> %g", i, xv[i], v)
		}
	}
}

func TestQuantParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	shape := tensor.Shape{8, 64, 130}
	xv := famRandom(r, tensor.Float32, shape.Size())
	x := famTensor(tensor.Float32, shape, xv)
	sv := make([]float64, 64)
	for i := range sv {
		sv[i] = 0.1 + float64(i)/100
	}
	s := famTensor(tensor.Float32, tensor.Shape{64}, sv)
	zp := famTensor(tensor.Int8, tensor.Shape{64}, make([]float64, 64))
	a, err := famRun("QuantizeLinear", 13, nil, 1, x, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	b, err := famRun("QuantizeLinear", 13, nil, 4, x, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "parallel quantize", b, tensor.Int8, shape, famValues(a), 0)
	da, err := famRun("DequantizeLinear", 13, nil, 1, a, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	db, err := famRun("DequantizeLinear", 13, nil, 4, a, s, zp)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "parallel dequantize", db, tensor.Float32, shape, famValues(da), 0)
	// Blocked, with parallel chunks starting inside rows (49049 elements,
	// inner length 7).
	shape = tensor.Shape{7, 1001, 7}
	x = famTensor(tensor.Float32, shape, famRandom(r, tensor.Float32, shape.Size()))
	ss := tensor.Shape{7, 334, 7}
	bv := make([]float64, ss.Size())
	for i := range bv {
		bv[i] = 0.05 + float64(i%17)/10
	}
	s = famTensor(tensor.Float32, ss, bv)
	attrs := ir.Attrs{famInt("axis", 1), famInt("block_size", 3), famInt("output_dtype", int64(tensor.Int16))}
	a, err = famRun("QuantizeLinear", 21, attrs, 1, x, s)
	if err != nil {
		t.Fatal(err)
	}
	b, err = famRun("QuantizeLinear", 21, attrs, 4, x, s)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "parallel blocked quantize", b, tensor.Int16, shape, famValues(a), 0)
	xv = famValues(x)
	for i, v := range famValues(b) {
		j := quantRefScaleIndex(i, shape, ss, 1, 3)
		if w := math.RoundToEven(float64(float32(xv[i]) / float32(bv[j]))); v != w {
			t.Fatalf("blocked element %d: %g, want %g", i, v, w)
		}
	}
	attrs = attrs[:2]
	da, err = famRun("DequantizeLinear", 21, attrs, 1, b, s)
	if err != nil {
		t.Fatal(err)
	}
	db, err = famRun("DequantizeLinear", 21, attrs, 4, b, s)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "parallel blocked dequantize", db, tensor.Float32, shape, famValues(da), 0)
}

func TestQuantErrors(t *testing.T) {
	x := famTensor(tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	s1 := famTensor(tensor.Float32, tensor.Shape{}, []float64{1})
	s3 := famTensor(tensor.Float32, tensor.Shape{3}, []float64{1, 1, 1})
	u8 := famTensor(tensor.Uint8, tensor.Shape{}, []float64{0})
	_, err := famRun("QuantizeLinear", 10, ir.Attrs{famInt("axis", 1)}, 1, x, s1)
	famWantErr(t, "axis at 10", err, "axis needs opset 13")
	_, err = famRun("QuantizeLinear", 10, nil, 1, x, s3)
	famWantErr(t, "per-axis at 10", err, "only per-tensor")
	_, err = famRun("QuantizeLinear", 13, ir.Attrs{famInt("axis", 0)}, 1, x, s3)
	famWantErr(t, "per-axis length", err, "length 2")
	_, err = famRun("QuantizeLinear", 19, ir.Attrs{famInt("block_size", 2)}, 1, x, s1)
	famWantErr(t, "block_size at 19", err, "block_size needs opset 21")
	_, err = famRun("QuantizeLinear", 19, ir.Attrs{famInt("output_dtype", int64(tensor.Int8))}, 1, x, s1)
	famWantErr(t, "output_dtype at 19", err, "output_dtype needs opset 21")
	_, err = famRun("QuantizeLinear", 21, ir.Attrs{famInt("output_dtype", int64(tensor.Int8))}, 1, x, s1, u8)
	famWantErr(t, "output_dtype mismatch", err, "does not match")
	_, err = famRun("QuantizeLinear", 21, ir.Attrs{famInt("output_dtype", 17)}, 1, x, s1)
	famWantErr(t, "float8 output", err, "float8e4m3fn")
	_, err = famRun("QuantizeLinear", 21, ir.Attrs{famInt("output_dtype", 22)}, 1, x, s1)
	famWantErr(t, "int4 output", err, "int4")
	_, err = famRun("QuantizeLinear", 21, ir.Attrs{famInt("axis", 1), famInt("block_size", 2)}, 1, x,
		famTensor(tensor.Float32, tensor.Shape{2, 1}, []float64{1, 1}))
	famWantErr(t, "block count", err, "want ceil(3/2) = 2")
	_, err = famRun("QuantizeLinear", 21, ir.Attrs{famInt("axis", 1), famInt("block_size", 2)}, 1, x,
		famTensor(tensor.Float32, tensor.Shape{2}, []float64{1, 1}))
	famWantErr(t, "block rank", err, "rank")
	_, err = famRun("QuantizeLinear", 13, ir.Attrs{famInt("axis", 1)}, 1, x, s3, famTensor(tensor.Uint8, tensor.Shape{2}, []float64{0, 0}))
	famWantErr(t, "zero point shape", err, "does not match scale shape")
	_, err = famRun("QuantizeLinear", 13, nil, 1, x, s1, famTensor(tensor.Int32, tensor.Shape{}, []float64{0}))
	famWantErr(t, "int32 output", err, "not supported")
	_, err = famRun("QuantizeLinear", 13, nil, 1, famTensor(tensor.Int8, tensor.Shape{1}, []float64{1}), s1)
	famWantErr(t, "int8 input", err, "not supported")
	_, err = famRun("QuantizeLinear", 13, ir.Attrs{famInt("axis", 2)}, 1, x, s3)
	famWantErr(t, "axis range", err, "out of range")
	_, err = famRun("QuantizeLinear", 23, ir.Attrs{famInt("precision", int64(tensor.Float32))}, 1, x, s1)
	famWantErr(t, "precision", err, "precision")
	q := famTensor(tensor.Uint8, tensor.Shape{2}, []float64{1, 2})
	_, err = famRun("DequantizeLinear", 13, nil, 1, q, s1, famTensor(tensor.Int8, tensor.Shape{}, []float64{0}))
	famWantErr(t, "dequantize zero point type", err, "does not match input type")
	_, err = famRun("DequantizeLinear", 21, ir.Attrs{famInt("output_dtype", int64(tensor.Float16))}, 1, q, s1)
	famWantErr(t, "dequantize output_dtype at 21", err, "output_dtype needs opset 23")
	_, err = famRun("DequantizeLinear", 13, nil, 1, x, s1)
	famWantErr(t, "dequantize float input", err, "not supported")
	_, err = famRun("DequantizeLinear", 13, nil, 1, q, famTensor(tensor.Float64, tensor.Shape{}, []float64{1}))
	famWantErr(t, "dequantize float64 scale", err, "not supported")
}

// TestQuantTiers checks that QuantizeLinear and DequantizeLinear give the
// same bits on every tier (the AVX-512 float32 <-> 8-bit kernels against
// the Go loops), per tensor and per axis, with NaN, infinities and ties.
func TestQuantTiers(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for iter := range 60 {
		shape := []int{1 + r.IntN(4), 1 + r.IntN(5), 1 + r.IntN(40)}
		n := shape[0] * shape[1] * shape[2]
		x := &tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: make([]float32, n)}
		for i := range x.F32() {
			switch r.IntN(10) {
			case 0:
				x.F32()[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30}[r.IntN(4)]
			case 1:
				x.F32()[i] = float32(r.IntN(61)-30) / 2
			default:
				x.F32()[i] = float32(r.NormFloat64() * 40)
			}
		}
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[iter%2]
		ns := 1
		if iter%3 == 1 {
			ns = shape[1]
		}
		sv, zv := make([]float64, ns), make([]float64, ns)
		for i := range sv {
			sv[i] = []float64{0.5, 0.1, 0.037, 2.5}[r.IntN(4)]
			zv[i] = qRandZero(r, dt)
		}
		s, z := qVals(tensor.Float32, sv...), qVals(dt, zv...)
		attrs := ir.Attrs{ir.IntAttr("axis", 1)}
		var qs, ds []*tensor.Tensor
		for _, tier := range qTiers() {
			q := qRun(t, "", "QuantizeLinear", 13, attrs, tier, 1+iter%2, 1, nil, x, s, z)[0]
			qs = append(qs, q)
			ds = append(ds, qRun(t, "", "DequantizeLinear", 13, attrs, tier, 1, 1, nil, q, s, z)[0])
		}
		for i := 1; i < len(qs); i++ {
			qSame(t, fmt.Sprintf("QuantizeLinear iter %d", iter), qs[0], qs[i])
			qSame(t, fmt.Sprintf("DequantizeLinear iter %d", iter), ds[0], ds[i])
		}
	}
}

// BenchmarkQuantize measures QuantizeLinear and DequantizeLinear of a
// 32x3x32x32 float32 <-> uint8 tensor per tier (one thread):
//
//	go test ./internal/ops -run XXX -bench 'Quantize' -cpu 1
func BenchmarkQuantize(b *testing.B) {
	n := 32 * 3 * 32 * 32
	x := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{32, 3, 32, 32}, Data: make([]float32, n)}
	for i := range x.F32() {
		x.F32()[i] = float32(i%255) / 255
	}
	s, z := qVals(tensor.Float32, 1.0/255), qVals(tensor.Uint8, 0)
	q, _ := qRunErr("", "QuantizeLinear", 13, nil, kernel.TierGeneric, 1, 1, nil, x, s, z)
	for _, tier := range qTiers() {
		for _, v := range []struct {
			op string
			in []*tensor.Tensor
		}{{"QuantizeLinear", []*tensor.Tensor{x, s, z}}, {"DequantizeLinear", []*tensor.Tensor{q[0], s, z}}} {
			b.Run(v.op+"/"+tier.String(), func(b *testing.B) {
				k := qBenchKernel(b, v.op, 13, nil, tier, v.in)
				c := kernel.NewCtx(&ir.Node{Op: v.op, Name: "bench"}, 1, nil)
				out := make([]*tensor.Tensor, 1)
				for b.Loop() {
					c.Begin(out)
					if err := k.Run(c, v.in, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
			})
		}
	}
}
