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

// qRun builds (domain, op) at the given tier and runs it once; inputs
// whose index is in consts are constant at build time.
func qRun(t *testing.T, domain, op string, opset int64, attrs ir.Attrs, tier kernel.Tier, threads, nOut int, consts map[int]bool, in ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	out, err := qRunErr(domain, op, opset, attrs, tier, threads, nOut, consts, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out
}

func qRunErr(domain, op string, opset int64, attrs ir.Attrs, tier kernel.Tier, threads, nOut int, consts map[int]bool, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Domain: domain, Name: "q", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, nOut)}
	info := &kernel.Info{Node: node, Opset: opset, Tier: tier, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, x := range in {
		if x == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if consts[i] {
			info.Consts[i] = x
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

// qTiers are the tiers the integer kernels are checked on.
func qTiers() []kernel.Tier {
	ts := []kernel.Tier{kernel.TierGeneric}
	if b := kernel.Best(); b != kernel.TierGeneric {
		ts = append(ts, b)
	}
	return ts
}

// qRand returns a random uint8 or int8 tensor.
func qRand(r *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	t, _ := tensor.New(dt, shape)
	switch d := t.Data.(type) {
	case []uint8:
		for i := range d {
			d[i] = uint8(r.IntN(256))
		}
	case []int8:
		for i := range d {
			d[i] = int8(r.IntN(256) - 128)
		}
	}
	return t
}

// qScalarT returns a scalar (or 1-D when vals has several) tensor of dt.
func qVals(dt tensor.DType, vals ...float64) *tensor.Tensor {
	shape := tensor.Shape{}
	if len(vals) > 1 {
		shape = tensor.Shape{len(vals)}
	}
	t, _ := tensor.New(dt, shape)
	for i, v := range vals {
		switch d := t.Data.(type) {
		case []uint8:
			d[i] = uint8(v)
		case []int8:
			d[i] = int8(v)
		case []int32:
			d[i] = int32(v)
		case []float32:
			d[i] = float32(v)
		}
	}
	return t
}

// qRandZero returns a random zero point of dt.
func qRandZero(r *rand.Rand, dt tensor.DType) float64 {
	if dt == tensor.Int8 {
		return float64(r.IntN(256) - 128)
	}
	return float64(r.IntN(256))
}

// qRangeOf returns the range of dt.
func qRangeOf(dt tensor.DType) (float64, float64) {
	if dt == tensor.Int8 {
		return -128, 127
	}
	return 0, 255
}

// qQuant is the float64 reference quantization of v.
func qQuant(v, s, z float64, dt tensor.DType) float64 {
	lo, hi := qRangeOf(dt)
	return math.Min(math.Max(math.RoundToEven(v/s)+z, lo), hi)
}

// qCompare checks got against the reference: every element within one
// quantization step, >= 99.9% equal (for tiny outputs: all but one).
func qCompare(t *testing.T, what string, got *tensor.Tensor, want []float64) {
	t.Helper()
	if got.Len() != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, got.Len(), len(want))
	}
	diff := 0
	for i, w := range want {
		g := got.Float64At(i)
		if g != w {
			diff++
			if math.Abs(g-w) > 1 {
				t.Fatalf("%s: element %d = %g, reference %g", what, i, g, w)
			}
		}
	}
	if float64(diff) > math.Max(1, 0.001*float64(len(want))) {
		t.Fatalf("%s: %d of %d elements differ from the reference by one step", what, diff, len(want))
	}
}

// qSame checks that two results are bit-identical.
func qSame(t *testing.T, what string, a, b *tensor.Tensor) {
	t.Helper()
	if a.DType != b.DType || !a.Shape.Equal(b.Shape) {
		t.Fatalf("%s: %v%v vs %v%v", what, a.DType, a.Shape, b.DType, b.Shape)
	}
	for i := range a.Len() {
		if a.Float64At(i) != b.Float64At(i) {
			t.Fatalf("%s: element %d: %g vs %g", what, i, a.Float64At(i), b.Float64At(i))
		}
	}
}

// qDeq returns (x - z[c]) * s[c] of element i, where c = ch(i).
func qDeqAll(x *tensor.Tensor, s, z []float64, ch func(i int) int) []float64 {
	out := make([]float64, x.Len())
	for i := range out {
		c := 0
		if ch != nil && len(s) > 1 {
			c = ch(i)
		}
		zc := z[0]
		if len(z) > 1 {
			zc = z[ch(i)]
		}
		out[i] = (x.Float64At(i) - zc) * s[c]
	}
	return out
}

type qconvCase struct {
	n, c, m, group, h, w, kh, kw, sh, sw, dh, dw int
	pads                                         [4]int // top, left, bottom, right
	oneD                                         bool
}

func (q qconvCase) outHW() (int, int) {
	oh := (q.h+q.pads[0]+q.pads[2]-((q.kh-1)*q.dh+1))/q.sh + 1
	ow := (q.w+q.pads[1]+q.pads[3]-((q.kw-1)*q.dw+1))/q.sw + 1
	return oh, ow
}

func randQConvCase(r *rand.Rand, kind int) qconvCase {
	q := qconvCase{n: 1 + r.IntN(2), group: 1, h: 1 + r.IntN(9), w: 1 + r.IntN(10), kh: 1 + r.IntN(3), kw: 1 + r.IntN(3),
		sh: 1 + r.IntN(2), sw: 1 + r.IntN(2), dh: 1 + r.IntN(2), dw: 1 + r.IntN(2),
		pads: [4]int{r.IntN(2), r.IntN(2), r.IntN(2), r.IntN(2)}}
	switch kind {
	case 0:
		q.c, q.m = 1+r.IntN(7), 1+r.IntN(20)
	case 1: // depthwise
		q.c = 1 + r.IntN(9)
		q.m, q.group = q.c, q.c
	case 2: // pointwise
		q.c, q.m = 1+r.IntN(40), 1+r.IntN(40)
		q.kh, q.kw, q.sh, q.sw, q.dh, q.dw, q.pads = 1, 1, 1, 1, 1, 1, [4]int{}
	case 3: // grouped
		q.group = 2 + r.IntN(2)
		q.c, q.m = q.group*(1+r.IntN(3)), q.group*(1+r.IntN(4))
	case 4: // 1-D
		q.oneD = true
		q.h, q.kh, q.sh, q.dh, q.pads[0], q.pads[2] = 1, 1, 1, 1, 0, 0
		q.c, q.m = 1+r.IntN(6), 1+r.IntN(9)
	}
	for q.h+q.pads[0]+q.pads[2] < (q.kh-1)*q.dh+1 {
		q.pads[2]++
	}
	for q.w+q.pads[1]+q.pads[3] < (q.kw-1)*q.dw+1 {
		q.pads[3]++
	}
	return q
}

// TestQLinearConvReference checks QLinearConv against the float64
// reference (dequantize, convolve, quantize) on random shapes, and that
// tiers, thread counts and constant or run-time weights agree bit for bit.
func TestQLinearConvReference(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for trial := range 60 {
		q := randQConvCase(r, trial%5)
		xdt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		wdt := []tensor.DType{tensor.Int8, tensor.Uint8}[(trial/2)%2]
		ydt := []tensor.DType{tensor.Uint8, tensor.Int8}[(trial/4)%2]
		cg := q.c / q.group
		xs := []int{q.n, q.c, q.h, q.w}
		ws := []int{q.m, cg, q.kh, q.kw}
		attrs := ir.Attrs{ir.IntAttr("group", int64(q.group)), ir.IntsAttr("strides", []int64{int64(q.sh), int64(q.sw)}...),
			ir.IntsAttr("dilations", []int64{int64(q.dh), int64(q.dw)}...),
			ir.IntsAttr("pads", []int64{int64(q.pads[0]), int64(q.pads[1]), int64(q.pads[2]), int64(q.pads[3])}...)}
		if q.oneD {
			xs = []int{q.n, q.c, q.w}
			ws = []int{q.m, cg, q.kw}
			attrs = ir.Attrs{ir.IntAttr("group", int64(q.group)), ir.IntsAttr("strides", []int64{int64(q.sw)}...),
				ir.IntsAttr("dilations", []int64{int64(q.dw)}...), ir.IntsAttr("pads", []int64{int64(q.pads[1]), int64(q.pads[3])}...)}
		}
		x := qRand(r, xdt, xs...)
		w := qRand(r, wdt, ws...)
		sx := 0.01 + r.Float64()*0.05
		zx := qRandZero(r, xdt)
		perCh := trial%3 != 0
		nsw := 1
		if perCh {
			nsw = q.m
		}
		sw, zw := make([]float64, nsw), make([]float64, nsw)
		for i := range sw {
			sw[i] = 0.002 + r.Float64()*0.02
			if trial%5 == 3 {
				zw[i] = qRandZero(r, wdt)
			} else if wdt == tensor.Uint8 {
				zw[i] = 128
			}
		}
		var bias *tensor.Tensor
		if trial%2 == 0 {
			bias = qRand(r, tensor.Int8, q.m) // small values
			b32 := make([]float64, q.m)
			for i := range b32 {
				b32[i] = bias.Float64At(i) * 37
			}
			bias = qVals(tensor.Int32, b32...)
			if q.m == 1 {
				bias.Shape = tensor.Shape{1}
			}
		}
		oh, ow := q.outHW()
		if q.oneD {
			oh = 1
		}
		// Reference output scale: about the spread of the real outputs.
		sy := sx * sw[0] * math.Sqrt(float64(cg*q.kh*q.kw)) * 40
		zy := qRandZero(r, ydt)
		want := make([]float64, q.n*q.m*oh*ow)
		xd := qDeqAll(x, []float64{sx}, []float64{zx}, nil)
		for n := range q.n {
			for m := range q.m {
				g := m / (q.m / q.group)
				wc := 0
				if perCh {
					wc = m
				}
				for o1 := range oh {
					for o2 := range ow {
						var acc float64
						for c := range cg {
							for k1 := range q.kh {
								for k2 := range q.kw {
									ih := o1*q.sh + k1*q.dh - q.pads[0]
									iw := o2*q.sw + k2*q.dw - q.pads[1]
									if ih < 0 || ih >= q.h || iw < 0 || iw >= q.w {
										continue
									}
									xv := xd[((n*q.c+g*cg+c)*q.h+ih)*q.w+iw]
									wv := (w.Float64At(((m*cg+c)*q.kh+k1)*q.kw+k2) - zw[wc]) * sw[wc]
									acc += xv * wv
								}
							}
						}
						if bias != nil {
							acc += bias.Float64At(m) * sx * sw[wc]
						}
						want[((n*q.m+m)*oh+o1)*ow+o2] = qQuant(acc, sy, zy, ydt)
					}
				}
			}
		}
		in := []*tensor.Tensor{x, qVals(tensor.Float32, sx), qVals(xdt, zx), w, qVals(tensor.Float32, sw...), qVals(wdt, zw...),
			qVals(tensor.Float32, sy), qVals(ydt, zy), bias}
		var first *tensor.Tensor
		for _, tier := range qTiers() {
			for _, threads := range []int{1, 2} {
				for _, constW := range []bool{true, false} {
					consts := map[int]bool{}
					if constW {
						for i := 1; i < len(in); i++ {
							consts[i] = true
						}
					}
					got := qRun(t, "", "QLinearConv", 10, attrs, tier, threads, 1, consts, in...)[0]
					what := fmt.Sprintf("trial %d %+v x %v w %v y %v %v threads %d constW %v", trial, q, xdt, wdt, ydt, tier, threads, constW)
					if first == nil {
						first = got
						qCompare(t, what, got, want)
					} else {
						qSame(t, what, first, got)
					}
				}
			}
		}
	}
}

// TestConvIntegerExact checks ConvInteger against integer loops.
func TestConvIntegerExact(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for trial := range 20 {
		q := randQConvCase(r, trial%4)
		xdt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		wdt := []tensor.DType{tensor.Uint8, tensor.Int8}[(trial/2)%2]
		cg := q.c / q.group
		x := qRand(r, xdt, q.n, q.c, q.h, q.w)
		w := qRand(r, wdt, q.m, cg, q.kh, q.kw)
		zx, zw := qRandZero(r, xdt), qRandZero(r, wdt)
		attrs := ir.Attrs{ir.IntAttr("group", int64(q.group)), ir.IntsAttr("strides", []int64{int64(q.sh), int64(q.sw)}...),
			ir.IntsAttr("dilations", []int64{int64(q.dh), int64(q.dw)}...),
			ir.IntsAttr("pads", []int64{int64(q.pads[0]), int64(q.pads[1]), int64(q.pads[2]), int64(q.pads[3])}...)}
		oh, ow := q.outHW()
		got := qRun(t, "", "ConvInteger", 10, attrs, kernel.Best(), 1, 1, map[int]bool{1: true, 3: true}, x, w, qVals(xdt, zx), qVals(wdt, zw))[0]
		if got.DType != tensor.Int32 {
			t.Fatalf("ConvInteger output %v", got.DType)
		}
		for n := range q.n {
			for m := range q.m {
				g := m / (q.m / q.group)
				for o1 := range oh {
					for o2 := range ow {
						var acc float64
						for c := range cg {
							for k1 := range q.kh {
								for k2 := range q.kw {
									ih := o1*q.sh + k1*q.dh - q.pads[0]
									iw := o2*q.sw + k2*q.dw - q.pads[1]
									if ih < 0 || ih >= q.h || iw < 0 || iw >= q.w {
										continue
									}
									acc += (x.Float64At(((n*q.c+g*cg+c)*q.h+ih)*q.w+iw) - zx) * (w.Float64At(((m*cg+c)*q.kh+k1)*q.kw+k2) - zw)
								}
							}
						}
						i := ((n*q.m+m)*oh+o1)*ow + o2
						if got.Float64At(i) != acc {
							t.Fatalf("trial %d %+v: y[%d] = %g, want %g", trial, q, i, got.Float64At(i), acc)
						}
					}
				}
			}
		}
	}
}

// qmmRef is the float64 product of dequantized A (M x K, per-row za/sa)
// and B (K x N, per-column zb/sb) for batch-free shapes.
func qmmRef(a, b *tensor.Tensor, m, n, kk int, sa, za, sb, zb []float64, transA, transB bool) []float64 {
	pick := func(v []float64, i int) float64 {
		if len(v) == 1 {
			return v[0]
		}
		return v[i]
	}
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for k := range kk {
				ai, bi := i*kk+k, k*n+j
				if transA {
					ai = k*m + i
				}
				if transB {
					bi = j*kk + k
				}
				s += (a.Float64At(ai) - pick(za, i)) * pick(sa, i) * (b.Float64At(bi) - pick(zb, j)) * pick(sb, j)
			}
			out[i*n+j] = s
		}
	}
	return out
}

func TestQLinearMatMulReference(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for trial := range 40 {
		m, n, kk := 1+r.IntN(30), 1+r.IntN(40), 1+r.IntN(70)
		adt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		bdt := []tensor.DType{tensor.Int8, tensor.Uint8}[(trial/2)%2]
		ydt := []tensor.DType{tensor.Uint8, tensor.Int8}[(trial/4)%2]
		a := qRand(r, adt, m, kk)
		b := qRand(r, bdt, kk, n)
		sa, za := []float64{0.02 + r.Float64()*0.01}, []float64{qRandZero(r, adt)}
		nb := 1
		if trial%3 == 1 {
			nb = n
		}
		sb, zb := make([]float64, nb), make([]float64, nb)
		for j := range sb {
			sb[j] = 0.003 + r.Float64()*0.01
			zb[j] = qRandZero(r, bdt)
			if trial%5 != 0 {
				zb[j] = 0
				if bdt == tensor.Uint8 {
					zb[j] = 128
				}
			}
		}
		ref := qmmRef(a, b, m, n, kk, sa, za, sb, zb, false, false)
		sy := sa[0] * sb[0] * math.Sqrt(float64(kk)) * 61.37
		zy := qRandZero(r, ydt)
		want := make([]float64, len(ref))
		for i, v := range ref {
			want[i] = qQuant(v, sy, zy, ydt)
		}
		in := []*tensor.Tensor{a, qVals(tensor.Float32, sa...), qVals(adt, za...), b, qVals(tensor.Float32, sb...), qVals(bdt, zb...),
			qVals(tensor.Float32, sy), qVals(ydt, zy)}
		var first *tensor.Tensor
		for _, tier := range qTiers() {
			for _, threads := range []int{1, 2} {
				for _, constB := range []bool{true, false} {
					got := qRun(t, "", "QLinearMatMul", 10, nil, tier, threads, 1, map[int]bool{3: constB, 5: constB}, in...)[0]
					what := fmt.Sprintf("trial %d %dx%dx%d %v %v %v %v", trial, m, n, kk, adt, bdt, ydt, tier)
					if first == nil {
						first = got
						qCompare(t, what, got, want)
					} else {
						qSame(t, what, first, got)
					}
				}
			}
		}
	}
}

func TestQLinearMatMulBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(37, 38))
	a := qRand(r, tensor.Uint8, 3, 1, 5, 7)
	b := qRand(r, tensor.Int8, 2, 7, 4)
	in := []*tensor.Tensor{a, qVals(tensor.Float32, 0.1), qVals(tensor.Uint8, 3), b, qVals(tensor.Float32, 0.05), qVals(tensor.Int8, 0),
		qVals(tensor.Float32, 0.5), qVals(tensor.Uint8, 100)}
	got := qRun(t, "", "QLinearMatMul", 10, nil, kernel.Best(), 1, 1, map[int]bool{3: true}, in...)[0]
	if !got.Shape.Equal(tensor.Shape{3, 2, 5, 4}) {
		t.Fatalf("shape %v", got.Shape)
	}
	want := make([]float64, 0, got.Len())
	for i := range 3 {
		for j := range 2 {
			as := &tensor.Tensor{DType: tensor.Uint8, Shape: tensor.Shape{5, 7}, Data: a.U8()[i*35 : (i+1)*35]}
			bs := &tensor.Tensor{DType: tensor.Int8, Shape: tensor.Shape{7, 4}, Data: b.I8()[j*28 : (j+1)*28]}
			for _, v := range qmmRef(as, bs, 5, 4, 7, []float64{0.1}, []float64{3}, []float64{0.05}, []float64{0}, false, false) {
				want = append(want, qQuant(v, 0.5, 100, tensor.Uint8))
			}
		}
	}
	qCompare(t, "batched", got, want)
}

func TestMatMulIntegerExact(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 40))
	for trial := range 20 {
		m, n, kk := 1+r.IntN(20), 1+r.IntN(30), 1+r.IntN(40)
		adt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		bdt := []tensor.DType{tensor.Uint8, tensor.Int8}[(trial/2)%2]
		a, b := qRand(r, adt, m, kk), qRand(r, bdt, kk, n)
		za := make([]float64, 1+(trial%3/2)*(m-1))
		for i := range za {
			za[i] = qRandZero(r, adt)
		}
		zb := make([]float64, 1+(trial%4/3)*(n-1))
		for i := range zb {
			zb[i] = qRandZero(r, bdt)
		}
		got := qRun(t, "", "MatMulInteger", 10, nil, kernel.Best(), 1, 1, map[int]bool{1: trial%2 == 0}, a, b, qVals(adt, za...), qVals(bdt, zb...))[0]
		want := qmmRef(a, b, m, n, kk, []float64{1}, za, []float64{1}, zb, false, false)
		for i, w := range want {
			if got.Float64At(i) != w {
				t.Fatalf("trial %d: y[%d] = %g, want %g", trial, i, got.Float64At(i), w)
			}
		}
	}
}

func TestQGemmReference(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for trial := range 16 {
		m, n, kk := 1+r.IntN(20), 1+r.IntN(30), 1+r.IntN(50)
		transA, transB := trial%2 == 1, trial/2%2 == 1
		adt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial/4%2]
		as, bs := []int{m, kk}, []int{kk, n}
		if transA {
			as = []int{kk, m}
		}
		if transB {
			bs = []int{n, kk}
		}
		a, b := qRand(r, adt, as...), qRand(r, tensor.Int8, bs...)
		sa, za := 0.03, qRandZero(r, adt)
		sb := []float64{0.01}
		if trial%3 == 0 {
			sb = make([]float64, n)
			for j := range sb {
				sb[j] = 0.005 + r.Float64()*0.01
			}
		}
		alpha := 1.0
		if trial%4 == 2 {
			alpha = 0.5
		}
		cv := make([]float64, n)
		for j := range cv {
			cv[j] = float64(r.IntN(2001) - 1000)
		}
		ref := qmmRef(a, b, m, n, kk, []float64{sa}, []float64{za}, sb, []float64{0}, transA, transB)
		for i := range ref {
			sbj := sb[0]
			if len(sb) > 1 {
				sbj = sb[i%n]
			}
			ref[i] = alpha * (ref[i] + cv[i%n]*sa*sbj)
		}
		attrs := ir.Attrs{ir.IntAttr("transA", int64(trial%2)), ir.IntAttr("transB", int64(trial/2%2)), ir.FloatAttr("alpha", float32(alpha))}
		c := qVals(tensor.Int32, cv...)
		if n == 1 {
			c.Shape = tensor.Shape{1}
		}
		in := []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(adt, za), b, qVals(tensor.Float32, sb...), qVals(tensor.Int8, 0), c}
		// Float output.
		got := qRun(t, "com.microsoft", "QGemm", 1, attrs, kernel.Best(), 1, 1, map[int]bool{3: true, 5: true}, in...)[0]
		for i, w := range ref {
			if g := got.Float64At(i); math.Abs(g-w) > 1e-4*math.Max(1, math.Abs(w)) {
				t.Fatalf("trial %d float: y[%d] = %g, want %g", trial, i, g, w)
			}
		}
		// Quantized output.
		sy, zy := 0.05*math.Sqrt(float64(kk)), qRandZero(r, adt)
		want := make([]float64, len(ref))
		for i, v := range ref {
			want[i] = qQuant(v, sy, zy, adt)
		}
		got = qRun(t, "com.microsoft", "QGemm", 1, attrs, kernel.Best(), 2, 1, map[int]bool{3: true, 5: true}, append(in, qVals(tensor.Float32, sy), qVals(adt, zy))...)[0]
		qCompare(t, fmt.Sprintf("QGemm trial %d", trial), got, want)
	}
}

func TestQLinearBinaryReference(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	shapes := [][2][]int{{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{3, 1}, {1, 5}}, {{7}, {}}, {{64, 600}, {64, 600}}, {{2, 64, 300}, {64, 1}}}
	for _, op := range []string{"QLinearAdd", "QLinearMul"} {
		for trial, sh := range shapes {
			dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
			a, b := qRand(r, dt, sh[0]...), qRand(r, dt, sh[1]...)
			sa, sb, sc := 0.05, 0.03, 0.07
			if op == "QLinearMul" {
				sc = 0.3917 // no exact rounding ties (the float64 reference breaks them at random)
			}
			za, zb, zc := qRandZero(r, dt), qRandZero(r, dt), qRandZero(r, dt)
			out, _ := BroadcastShapes(a.Shape, b.Shape)
			got := qRun(t, "com.microsoft", op, 1, nil, kernel.Best(), 1, 1, nil, a, qVals(tensor.Float32, sa), qVals(dt, za), b, qVals(tensor.Float32, sb), qVals(dt, zb), qVals(tensor.Float32, sc), qVals(dt, zc))[0]
			if !got.Shape.Equal(out) {
				t.Fatalf("%s shape %v, want %v", op, got.Shape, out)
			}
			// Constant scales and zero points: the cached table, same bits.
			gotC := qRun(t, "com.microsoft", op, 1, nil, kernel.Best(), 1, 1, map[int]bool{1: true, 2: true, 4: true, 5: true, 6: true, 7: true},
				a, qVals(tensor.Float32, sa), qVals(dt, za), b, qVals(tensor.Float32, sb), qVals(dt, zb), qVals(tensor.Float32, sc), qVals(dt, zc))[0]
			qSame(t, op+" constant parameters", got, gotC)
			want := make([]float64, out.Size())
			it := broadcastIter{out: out, strides: [][]int{bstrides(a.Shape, out), bstrides(b.Shape, out)}}
			ia, ib := it.strides[0][len(out)-1], it.strides[1][len(out)-1]
			it.forEachRow(func(o int, offs []int, n int) {
				for j := range n {
					x := (a.Float64At(offs[0]+j*ia) - za) * sa
					y := (b.Float64At(offs[1]+j*ib) - zb) * sb
					v := x + y
					if op == "QLinearMul" {
						v = x * y
					}
					want[o+j] = qQuant(v, sc, zc, dt)
				}
			})
			qCompare(t, op, got, want)
		}
	}
}

func TestQLinearUnaryReference(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, op := range []string{"QLinearLeakyRelu", "QLinearSigmoid"} {
		for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
			x := qRand(r, dt, 3, 50)
			sx, zx, sy, zy := 0.05, qRandZero(r, dt), 0.0213, qRandZero(r, dt)
			if op == "QLinearSigmoid" {
				sy = 1.0 / 256
			}
			got := qRun(t, "com.microsoft", op, 1, ir.Attrs{ir.FloatAttr("alpha", 0.1)}, kernel.Best(), 1, 1, nil,
				x, qVals(tensor.Float32, sx), qVals(dt, zx), qVals(tensor.Float32, sy), qVals(dt, zy))[0]
			want := make([]float64, x.Len())
			for i := range want {
				v := (x.Float64At(i) - zx) * sx
				if op == "QLinearSigmoid" {
					v = 1 / (1 + math.Exp(-v))
				} else if v < 0 {
					v *= float64(float32(0.1))
				}
				want[i] = qQuant(v, sy, zy, dt)
			}
			qCompare(t, op, got, want)
		}
	}
}

func TestQLinearConcatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		x1, x2 := qRand(r, dt, 2, 3, 4), qRand(r, dt, 2, 5, 4)
		s1, z1, s2, z2, sy, zy := 0.05, qRandZero(r, dt), 0.02, qRandZero(r, dt), 0.05, 0.0
		zy = z1
		got := qRun(t, "com.microsoft", "QLinearConcat", 1, ir.Attrs{ir.IntAttr("axis", 1)}, kernel.Best(), 1, 1, nil,
			qVals(tensor.Float32, sy), qVals(dt, zy), x1, qVals(tensor.Float32, s1), qVals(dt, z1), x2, qVals(tensor.Float32, s2), qVals(dt, z2))[0]
		if !got.Shape.Equal(tensor.Shape{2, 8, 4}) {
			t.Fatalf("shape %v", got.Shape)
		}
		var want []float64
		for o := range 2 {
			for i := range 12 {
				want = append(want, qQuant((x1.Float64At(o*12+i)-z1)*s1, sy, zy, dt))
			}
			for i := range 20 {
				want = append(want, qQuant((x2.Float64At(o*20+i)-z2)*s2, sy, zy, dt))
			}
		}
		qCompare(t, "QLinearConcat", got, want)
	}
}

func TestQLinearPoolReference(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	for trial := range 8 {
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		n, ch, h, w := 2, 3, 5+r.IntN(4), 4+r.IntN(5)
		x := qRand(r, dt, n, ch, h, w)
		sx, zx, sy, zy := 0.05, qRandZero(r, dt), 0.0437, qRandZero(r, dt)
		sc := []*tensor.Tensor{qVals(tensor.Float32, sx), qVals(dt, zx), qVals(tensor.Float32, sy), qVals(dt, zy)}
		// Global.
		got := qRun(t, "com.microsoft", "QLinearGlobalAveragePool", 1, nil, kernel.Best(), 2, 1, nil, append([]*tensor.Tensor{x}, sc...)...)[0]
		if !got.Shape.Equal(tensor.Shape{n, ch, 1, 1}) {
			t.Fatalf("global shape %v", got.Shape)
		}
		want := make([]float64, n*ch)
		for p := range want {
			var s float64
			for i := range h * w {
				s += (x.Float64At(p*h*w+i) - zx) * sx
			}
			want[p] = qQuant(s/float64(h*w), sy, zy, dt)
		}
		qCompare(t, "QLinearGlobalAveragePool", got, want)
		// Windowed.
		inc := trial / 2 % 2
		attrs := ir.Attrs{ir.IntsAttr("kernel_shape", []int64{3, 2}...), ir.IntsAttr("strides", []int64{2, 1}...),
			ir.IntsAttr("pads", []int64{1, 0, 1, 1}...), ir.IntAttr("count_include_pad", int64(inc))}
		got = qRun(t, "com.microsoft", "QLinearAveragePool", 1, attrs, kernel.Best(), 1, 1, nil, append([]*tensor.Tensor{x}, sc...)...)[0]
		oh, ow := (h+2-3)/2+1, (w+1-2)/1+1
		if !got.Shape.Equal(tensor.Shape{n, ch, oh, ow}) {
			t.Fatalf("pool shape %v", got.Shape)
		}
		want = want[:0]
		for p := range n * ch {
			for o1 := range oh {
				for o2 := range ow {
					var s float64
					cnt := 0
					for k1 := range 3 {
						for k2 := range 2 {
							ih, iw := o1*2+k1-1, o2+k2
							if inc == 1 {
								cnt++
							}
							if ih < 0 || ih >= h || iw >= w {
								continue
							}
							if inc == 0 {
								cnt++
							}
							s += (x.Float64At((p*h+ih)*w+iw) - zx) * sx
						}
					}
					want = append(want, qQuant(s/float64(cnt), sy, zy, dt))
				}
			}
		}
		qCompare(t, "QLinearAveragePool", got, want)
	}
}

func TestDynamicQuantizeLinear(t *testing.T) {
	x := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{6}, Data: []float32{0, 2, -3, -2.5, 1.34, 0.5}}
	out := qRun(t, "", "DynamicQuantizeLinear", 11, nil, kernel.Best(), 1, 3, nil, x)
	// From the ONNX operator documentation example.
	if s := out[1].F32()[0]; s != float32(5)/255 {
		t.Fatalf("scale %g", s)
	}
	if z := out[2].U8()[0]; z != 153 {
		t.Fatalf("zero point %d", z)
	}
	want := []uint8{153, 255, 0, 26, 221, 179}
	for i, w := range want {
		if out[0].U8()[i] != w {
			t.Fatalf("y = %v, want %v", out[0].U8(), want)
		}
	}
	zeros := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{3}, Data: []float32{0, 0, 0}}
	out = qRun(t, "", "DynamicQuantizeLinear", 11, nil, kernel.Best(), 1, 3, nil, zeros)
	if out[1].F32()[0] != 0 || out[2].U8()[0] != 0 || out[0].U8()[0] != 0 {
		t.Fatalf("all-zero input: %v %v %v", out[0].U8(), out[1].F32(), out[2].U8())
	}
}

// TestGoslimActClamp checks the goslim-domain variants: the same result as
// the standard op, clamped to [act_min, act_max].
func TestGoslimActClamp(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	x, w := qRand(r, tensor.Uint8, 1, 4, 6, 6), qRand(r, tensor.Int8, 5, 4, 3, 3)
	in := []*tensor.Tensor{x, qVals(tensor.Float32, 0.05), qVals(tensor.Uint8, 120), w, qVals(tensor.Float32, 0.01), qVals(tensor.Int8, 0),
		qVals(tensor.Float32, 0.2), qVals(tensor.Uint8, 128), nil}
	attrs := ir.Attrs{ir.IntsAttr("pads", []int64{1, 1, 1, 1}...)}
	base := qRun(t, "", "QLinearConv", 10, attrs, kernel.Best(), 1, 1, map[int]bool{3: true}, in...)[0]
	fused := qRun(t, "goslim", "QLinearConv", 1, append(attrs, ir.IntAttr("act_min", 128), ir.IntAttr("act_max", 200)), kernel.Best(), 1, 1, map[int]bool{3: true}, in...)[0]
	for i := range base.Len() {
		want := min(max(base.U8()[i], 128), 200)
		if fused.U8()[i] != want {
			t.Fatalf("element %d: fused %d, want %d", i, fused.U8()[i], want)
		}
	}
	if _, err := qRunErr("goslim", "QLinearConv", 1, append(attrs, ir.IntAttr("act_min", 300)), kernel.Best(), 1, 1, nil, in...); err == nil {
		t.Fatal("act_min above the uint8 range accepted")
	}
}

// TestQLinearErrors checks that bad inputs give errors naming the node.
func TestQLinearErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	x, w := qRand(r, tensor.Uint8, 1, 4, 6, 6), qRand(r, tensor.Int8, 5, 4, 3, 3)
	good := func() []*tensor.Tensor {
		return []*tensor.Tensor{x, qVals(tensor.Float32, 0.05), qVals(tensor.Uint8, 120), w, qVals(tensor.Float32, 0.01), qVals(tensor.Int8, 0),
			qVals(tensor.Float32, 0.2), qVals(tensor.Uint8, 128)}
	}
	cases := map[string]func(in []*tensor.Tensor){
		"zero scale": func(in []*tensor.Tensor) { in[1] = qVals(tensor.Float32, 0) },
		"float x": func(in []*tensor.Tensor) {
			in[0] = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{1, 4, 6, 6}, Data: make([]float32, 144)}
		},
		"zp type":          func(in []*tensor.Tensor) { in[2] = qVals(tensor.Int8, 1) },
		"w_scale length":   func(in []*tensor.Tensor) { in[4] = qVals(tensor.Float32, 0.1, 0.2) },
		"channel mismatch": func(in []*tensor.Tensor) { in[3] = qRand(r, tensor.Int8, 5, 3, 3, 3) },
		"bias type":        func(in []*tensor.Tensor) { in = append(in, qVals(tensor.Float32, 1, 2, 3, 4, 5)) },
	}
	for name, mod := range cases {
		in := good()
		mod(in)
		if name == "bias type" {
			in = append(in, qVals(tensor.Float32, 1, 2, 3, 4, 5))
		}
		if _, err := qRunErr("", "QLinearConv", 10, nil, kernel.Best(), 1, 1, nil, in...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
