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

// TestQGemmLargeReference checks QGemm and QLinearMatMul on
// fully-connected shapes large enough for the threaded paths (small M,
// the GEMV path of internal/int8, and M = 32; K not a multiple of 4),
// with weight zero points (per-row corrections), int8 and uint8 A,
// quantized and float outputs, against the float64 reference; every
// tier, thread count and constant or run-time B gives the same bits.
func TestQGemmLargeReference(t *testing.T) {
	r := rand.New(rand.NewPCG(93, 94))
	type tc struct {
		op       string
		m, k, n  int
		adt, bdt tensor.DType
		zb       bool
		floatOut bool
	}
	cases := []tc{
		{"QGemm", 1, 784, 512, tensor.Uint8, tensor.Int8, false, false},
		{"QGemm", 2, 301, 77, tensor.Int8, tensor.Int8, false, true},
		{"QGemm", 3, 255, 130, tensor.Uint8, tensor.Int8, false, false},
		{"QGemm", 4, 129, 96, tensor.Uint8, tensor.Int8, false, true},
		{"QGemm", 32, 203, 100, tensor.Int8, tensor.Int8, false, false},
		{"QLinearMatMul", 1, 333, 200, tensor.Uint8, tensor.Uint8, true, false},
		{"QLinearMatMul", 4, 130, 300, tensor.Int8, tensor.Int8, true, false},
		{"QLinearMatMul", 9, 257, 65, tensor.Uint8, tensor.Int8, false, false},
	}
	for _, c := range cases {
		a, b := qRand(r, c.adt, c.m, c.k), qRand(r, c.bdt, c.k, c.n)
		sa, za := 0.02, qRandZero(r, c.adt)
		sb, zb := make([]float64, c.n), make([]float64, c.n)
		for j := range sb {
			sb[j] = 0.002 + 0.004*r.Float64()
			if c.bdt == tensor.Uint8 {
				zb[j] = 128
			}
			if c.zb {
				zb[j] = qRandZero(r, c.bdt)
			}
		}
		if c.op == "QGemm" {
			for j := range zb {
				zb[j] = zb[0] // QGemm here: per-tensor weight zero point
			}
		}
		ref := qmmRef(a, b, c.m, c.n, c.k, []float64{sa}, []float64{za}, sb, zb, false, false)
		var in []*tensor.Tensor
		domain, opset := "", int64(10)
		sy := 0.004 * sa * math.Sqrt(float64(c.k)) * 140 // outputs spread over about +-40 steps
		zy := qRandZero(r, c.adt)
		zbT := qVals(c.bdt, zb...)
		if c.op == "QGemm" {
			domain, opset = "com.microsoft", 1
			zbT = qVals(c.bdt, zb[0])
			bias := make([]float64, c.n)
			for j := range bias {
				bias[j] = float64(r.IntN(2001) - 1000)
				ref2 := bias[j] * sa * sb[j]
				for i := range c.m {
					ref[i*c.n+j] += ref2
				}
			}
			bt := qVals(tensor.Int32, bias...)
			in = []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(c.adt, za), b, qVals(tensor.Float32, sb...), zbT, bt}
			if !c.floatOut {
				in = append(in, qVals(tensor.Float32, sy), qVals(c.adt, zy))
			}
		} else {
			in = []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(c.adt, za), b, qVals(tensor.Float32, sb...), zbT,
				qVals(tensor.Float32, sy), qVals(c.adt, zy)}
		}
		var first *tensor.Tensor
		for _, tier := range qTiers() {
			for _, threads := range []int{1, 2} {
				for _, constB := range []bool{true, false} {
					what := fmt.Sprintf("%s %dx%dx%d %v %v tier %v threads %d constB %v", c.op, c.m, c.k, c.n, c.adt, c.bdt, tier, threads, constB)
					got := qRun(t, domain, c.op, opset, nil, tier, threads, 1, map[int]bool{1: true, 2: true, 3: constB, 4: true, 5: true, 6: true, 7: true, 8: true}, in...)[0]
					if first == nil {
						first = got
						if c.floatOut {
							for i, w := range ref {
								if g := got.Float64At(i); math.Abs(g-w) > 1e-4*math.Max(1, math.Abs(w)) {
									t.Fatalf("%s: y[%d] = %g, want %g", what, i, g, w)
								}
							}
						} else {
							want := make([]float64, len(ref))
							for i, v := range ref {
								want[i] = qQuant(v, sy, zy, c.adt)
							}
							qCompare(t, what, got, want)
						}
					} else {
						qSame(t, what, first, got)
					}
				}
			}
		}
	}
}

// TestQGemmFloatActClamp checks that goslim.QGemm with a float output
// clamps it to act_min/act_max in the epilogue.
func TestQGemmFloatActClamp(t *testing.T) {
	r := rand.New(rand.NewPCG(95, 96))
	a, b := qRand(r, tensor.Uint8, 3, 40), qRand(r, tensor.Int8, 40, 20)
	in := []*tensor.Tensor{a, qVals(tensor.Float32, 0.02), qVals(tensor.Uint8, 128), b, qVals(tensor.Float32, 0.01), qVals(tensor.Int8, 0), nil}
	consts := map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}
	base := qRun(t, "com.microsoft", "QGemm", 1, nil, kernel.Best(), 1, 1, consts, in...)[0]
	fused := qRun(t, "goslim", "QGemm", 1, ir.Attrs{ir.IntAttr("act_min", 0), ir.IntAttr("act_max", 1)}, kernel.Best(), 1, 1, consts, in...)[0]
	lo, hi := 0, 0
	for i, v := range base.F32() {
		want := min(max(v, 0), 1)
		if fused.F32()[i] != want {
			t.Fatalf("element %d: fused %g, want %g", i, fused.F32()[i], want)
		}
		if v < 0 {
			lo++
		}
		if v > 1 {
			hi++
		}
	}
	if lo == 0 || hi == 0 {
		t.Fatalf("the clamp was not exercised (%d below, %d above)", lo, hi)
	}
}

// TestQGemmYFloat checks goslim.QGemm and goslim.QLinearMatMul with
// y_float = 1 against the unfused 8-bit product followed by
// DequantizeLinear, bit for bit (uint8 and int8 outputs, act_min/act_max,
// one and two threads, small and large M), and that QGemm without
// y_scale ignores it (float output as before).
func TestQGemmYFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(101, 102))
	for _, c := range []qgemmCase{
		{op: "QGemm", m: 1, k: 256, n: 10, adt: tensor.Uint8, perChannel: true},
		{op: "QGemm", m: 32, k: 300, n: 130, adt: tensor.Int8, perChannel: true},
		{op: "QLinearMatMul", m: 3, k: 77, n: 40, adt: tensor.Uint8},
		{op: "QLinearMatMul", m: 40, k: 200, n: 50, adt: tensor.Int8, perChannel: true},
	} {
		in := c.inputs(r)
		consts := map[int]bool{}
		for i := 1; i < len(in); i++ {
			consts[i] = true
		}
		for _, act := range []ir.Attrs{nil, {ir.IntAttr("act_min", 100), ir.IntAttr("act_max", 120)}} {
			for _, threads := range []int{1, 2} {
				q := qRun(t, "goslim", c.op, 1, act, kernel.Best(), threads, 1, consts, in...)[0]
				yi := len(in) - 2
				deq := qRun(t, "", "DequantizeLinear", 21, nil, kernel.Best(), 1, 1, map[int]bool{1: true, 2: true}, q, in[yi], in[yi+1])[0]
				got := qRun(t, "goslim", c.op, 1, append(act, ir.IntAttr("y_float", 1)), kernel.Best(), threads, 1, consts, in...)[0]
				if got.DType != tensor.Float32 || !got.Shape.Equal(deq.Shape) {
					t.Fatalf("%v: y_float output %v%v, want float32%v", c, got.DType, got.Shape, deq.Shape)
				}
				for i, w := range deq.F32() {
					if got.F32()[i] != w {
						t.Fatalf("%v act %v threads %d: y[%d] = %g, Q -> DQ %g", c, act, threads, i, got.F32()[i], w)
					}
				}
			}
		}
	}
	c := qgemmCase{op: "QGemm", m: 2, k: 50, n: 7, adt: tensor.Uint8, floatOut: true}
	in := c.inputs(r)
	consts := map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true}
	want := qRun(t, "goslim", "QGemm", 1, nil, kernel.Best(), 1, 1, consts, in...)[0]
	got := qRun(t, "goslim", "QGemm", 1, ir.Attrs{ir.IntAttr("y_float", 1)}, kernel.Best(), 1, 1, consts, in...)[0]
	qSame(t, "QGemm without y_scale, y_float 1", want, got)
	if _, err := qRunErr("goslim", "QGemm", 1, ir.Attrs{ir.IntAttr("y_float", 2)}, kernel.Best(), 1, 1, consts, in...); err == nil {
		t.Fatal("y_float = 2 accepted")
	}
}
