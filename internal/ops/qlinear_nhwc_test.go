package ops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// qNHWC returns the rank-4 tensor t (N, C, H, W) stored channels-last,
// with physical shape (N, H, W, C): through q8.ToLayout for 8-bit data,
// element by element otherwise.
func qNHWC(t *testing.T, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	if x.Rank() != 4 {
		t.Fatalf("qNHWC of shape %v", x.Shape)
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	y, err := tensor.New(x.DType, tensor.Shape{n, h, w, c})
	if err != nil {
		t.Fatal(err)
	}
	if qIs8(x.DType) {
		q8.ToLayout(qBytes(y), qBytes(x), n, c, h*w, q8.NCHW, q8.NHWC)
		return y
	}
	xs, ys := x.I32(), y.I32()
	for i := range n {
		for ch := range c {
			for p := range h * w {
				ys[(i*h*w+p)*c+ch] = xs[(i*c+ch)*h*w+p]
			}
		}
	}
	return y
}

// qLayoutAttrs returns attrs plus x_channels_last and y_channels_last.
func qLayoutAttrs(attrs ir.Attrs, xl, yl bool) ir.Attrs {
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	out := append(ir.Attrs(nil), attrs...)
	return append(out, ir.IntAttr("x_channels_last", b(xl)), ir.IntAttr("y_channels_last", b(yl)))
}

// TestQLinearConvChannelsLast checks that goslim.QLinearConv and
// goslim.ConvInteger with x_channels_last / y_channels_last equal the
// NCHW op with the input and output rewritten by q8.ToLayout, bit for
// bit: random shapes, uint8 and int8 activations, int8 and uint8
// per-channel weights, pads, strides, dilations, groups, depthwise, 1x1,
// batches of 1 to 4, constant and run-time weights, every tier, one and
// two threads.
func TestQLinearConvChannelsLast(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	for trial := range 32 {
		q := randQConvCase(r, trial%4) // 2-D kinds only
		q.n = 1 + r.IntN(4)
		xdt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		wdt := []tensor.DType{tensor.Int8, tensor.Uint8}[(trial/2)%2]
		ydt := []tensor.DType{tensor.Uint8, tensor.Int8}[(trial/4)%2]
		cg := q.c / q.group
		attrs := ir.Attrs{ir.IntAttr("group", int64(q.group)), ir.IntsAttr("strides", int64(q.sh), int64(q.sw)),
			ir.IntsAttr("dilations", int64(q.dh), int64(q.dw)),
			ir.IntsAttr("pads", int64(q.pads[0]), int64(q.pads[1]), int64(q.pads[2]), int64(q.pads[3]))}
		x := qRand(r, xdt, q.n, q.c, q.h, q.w)
		w := qRand(r, wdt, q.m, cg, q.kh, q.kw)
		sw, zw := make([]float64, q.m), make([]float64, q.m)
		for i := range sw {
			sw[i] = 0.002 + r.Float64()*0.02
			zw[i] = qRandZero(r, wdt)
		}
		b := make([]float64, q.m)
		for i := range b {
			b[i] = float64(r.IntN(4001) - 2000)
		}
		bias := qVals(tensor.Int32, b...)
		bias.Shape = tensor.Shape{q.m}
		sy := 0.02 * sw[0] * float64(cg*q.kh*q.kw) * 4
		in := []*tensor.Tensor{x, qVals(tensor.Float32, 0.02), qVals(xdt, qRandZero(r, xdt)), w, qVals(tensor.Float32, sw...),
			qVals(wdt, zw...), qVals(tensor.Float32, sy), qVals(ydt, qRandZero(r, ydt)), bias}
		if q.m == 1 {
			in[4].Shape, in[5].Shape = tensor.Shape{1}, tensor.Shape{1}
		}
		ci := []*tensor.Tensor{x, w, in[2], in[5]}
		for _, op := range []struct {
			name string
			in   []*tensor.Tensor
		}{{"QLinearConv", in}, {"ConvInteger", ci}} {
			ref := qRun(t, "", op.name, 10, attrs, qTiers()[0], 1, 1, nil, op.in...)[0]
			refNHWC := qNHWC(t, ref)
			xNHWC := qNHWC(t, x)
			for _, tier := range qTiers() {
				for _, threads := range []int{1, 2} {
					for _, constW := range []bool{true, false} {
						consts := map[int]bool{}
						if constW {
							for i := 1; i < len(op.in); i++ {
								consts[i] = true
							}
						}
						for _, xl := range []bool{false, true} {
							for _, yl := range []bool{false, true} {
								args := append([]*tensor.Tensor(nil), op.in...)
								if xl {
									args[0] = xNHWC
								}
								got := qRun(t, "goslim", op.name, 10, qLayoutAttrs(attrs, xl, yl), tier, threads, 1, consts, args...)[0]
								want := ref
								if yl {
									want = refNHWC
								}
								what := fmt.Sprintf("trial %d %s %+v x %v w %v y %v %v threads %d constW %v x_channels_last %v y_channels_last %v",
									trial, op.name, q, xdt, wdt, ydt, tier, threads, constW, xl, yl)
								qSame(t, what, want, got)
							}
						}
					}
				}
			}
		}
	}
}

// TestQLinearConvLayoutErrors checks that bad layout attributes and
// shapes are refused with errors naming the problem.
func TestQLinearConvLayoutErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(63, 64))
	x4 := qRand(r, tensor.Uint8, 2, 5, 6, 4) // as NHWC: C = 4
	w := qRand(r, tensor.Int8, 3, 4, 3, 3)
	conv := func(x, w *tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{x, qVals(tensor.Float32, 0.1), qVals(tensor.Uint8, 3), w, qVals(tensor.Float32, 0.01),
			qVals(tensor.Int8, 0), qVals(tensor.Float32, 0.2), qVals(tensor.Uint8, 7)}
	}
	for _, c := range []struct {
		name, domain, op string
		attrs            ir.Attrs
		in               []*tensor.Tensor
		want             string
	}{
		{"ai.onnx x_channels_last", "", "QLinearConv", qLayoutAttrs(nil, true, false), conv(x4, w), "goslim-domain"},
		{"ai.onnx y_channels_last", "", "ConvInteger", qLayoutAttrs(nil, false, true), []*tensor.Tensor{x4, w}, "goslim-domain"},
		{"value 2", "goslim", "QLinearConv", ir.Attrs{ir.IntAttr("x_channels_last", 2)}, conv(x4, w), "want 0 or 1"},
		{"rank 3", "goslim", "QLinearConv", qLayoutAttrs(nil, true, false),
			conv(qRand(r, tensor.Uint8, 2, 5, 4), qRand(r, tensor.Int8, 3, 4, 3)), "rank-4"},
		{"rank 3 y", "goslim", "ConvInteger", qLayoutAttrs(nil, false, true),
			[]*tensor.Tensor{qRand(r, tensor.Uint8, 2, 4, 5), qRand(r, tensor.Int8, 3, 4, 3)}, "rank-4"},
		{"channels", "goslim", "QLinearConv", qLayoutAttrs(nil, true, true), conv(qRand(r, tensor.Uint8, 2, 4, 6, 5), w), "channels-last shape"},
	} {
		_, err := qRunErr(c.domain, c.op, 10, c.attrs, qTiers()[0], 1, 1, map[int]bool{3: true}, c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// ai.onnx nodes accept the attributes at their default 0.
	if _, err := qRunErr("", "QLinearConv", 10, qLayoutAttrs(nil, false, false), qTiers()[0], 1, 1, nil,
		conv(qRand(r, tensor.Uint8, 2, 4, 6, 5), w)...); err != nil {
		t.Errorf("ai.onnx QLinearConv with x_channels_last=0: %v", err)
	}
}
