package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ortoracle"
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

// qPoolCase is a random 2-D pooling window.
type qPoolCase struct {
	n, c, h, w int
	attrs      ir.Attrs
}

// randQPoolCase returns a random window (dilations only when dil) on an
// input that fits it: kernel 1-3, strides 1-3, pads, ceil_mode, auto_pad.
func randQPoolCase(r *rand.Rand, dil bool) qPoolCase {
	kh, kw := 1+r.IntN(3), 1+r.IntN(3)
	dh, dw := 1, 1
	if dil {
		dh, dw = 1+r.IntN(2), 1+r.IntN(2)
	}
	q := qPoolCase{n: 1 + r.IntN(3), c: 1 + r.IntN(80), h: (kh-1)*dh + 1 + r.IntN(6), w: (kw-1)*dw + 1 + r.IntN(6)}
	q.attrs = ir.Attrs{ir.IntsAttr("kernel_shape", int64(kh), int64(kw)), ir.IntsAttr("strides", int64(1+r.IntN(3)), int64(1+r.IntN(3)))}
	if dil {
		q.attrs = append(q.attrs, ir.IntsAttr("dilations", int64(dh), int64(dw)))
	}
	switch r.IntN(5) {
	case 0:
		q.attrs = append(q.attrs, ir.StringAttr("auto_pad", []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(3)]))
	default:
		q.attrs = append(q.attrs, ir.IntsAttr("pads", int64(r.IntN(kh)), int64(r.IntN(kw)), int64(r.IntN(kh)), int64(r.IntN(kw))),
			ir.IntAttr("ceil_mode", int64(r.IntN(2))))
	}
	return q
}

// TestMaxPool8ChannelsLast checks goslim.MaxPool on 8-bit data: with
// x_channels_last and y_channels_last (all four combinations) it equals
// ai.onnx MaxPool on the NCHW tensor with input and output rewritten by
// q8.ToLayout, bit for bit (random windows, dilations,
// pads, ceil_mode, auto_pad, uint8 and int8, batches, 1-2 threads).
func TestMaxPool8ChannelsLast(t *testing.T) {
	r := rand.New(rand.NewPCG(65, 66))
	for trial := range 60 {
		q := randQPoolCase(r, true)
		switch trial % 12 {
		case 0, 6: // the 2x2 stride-2 fast path
			q.h, q.w = 2*(1+r.IntN(5)), 2*(1+r.IntN(5))
			q.attrs = ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}
		case 11: // more than 64 taps
			q.h, q.w = 9+r.IntN(4), 9+r.IntN(4)
			q.attrs = ir.Attrs{ir.IntsAttr("kernel_shape", 9, 8), ir.IntsAttr("pads", 1, 2, 0, 1)}
		}
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		x := qRand(r, dt, q.n, q.c, q.h, q.w)
		ref := qRun(t, "", "MaxPool", 12, q.attrs, kernel.TierGeneric, 1, 1, nil, x)[0]
		// The float path: the 8-bit kernels must agree with it.
		xf, _ := tensor.New(tensor.Float32, x.Shape)
		for i := range x.Len() {
			xf.F32()[i] = float32(x.Float64At(i))
		}
		reff := qRun(t, "", "MaxPool", 12, q.attrs, kernel.TierGeneric, 1, 1, nil, xf)[0]
		for i := range ref.Len() {
			if ref.Float64At(i) != reff.Float64At(i) && reff.Float64At(i) > -1000 {
				t.Fatalf("trial %d %+v: 8-bit MaxPool element %d = %g, float %g", trial, q, i, ref.Float64At(i), reff.Float64At(i))
			}
		}
		xn := qNHWC(t, x)
		refn := qNHWC(t, ref)
		for _, tier := range qTiers() {
			for _, threads := range []int{1, 2} {
				what := fmt.Sprintf("trial %d %v %v%v %v threads %d", trial, dt, x.Shape, q.attrs, tier, threads)
				got := qRun(t, "goslim", "MaxPool", 1, q.attrs, tier, threads, 1, nil, x)[0]
				qSame(t, what+" NCHW", ref, got)
				got = qRun(t, "goslim", "MaxPool", 1, qLayoutAttrs(q.attrs, true, true), tier, threads, 1, nil, xn)[0]
				qSame(t, what+" NHWC", refn, got)
				got = qRun(t, "goslim", "MaxPool", 1, qLayoutAttrs(q.attrs, true, false), tier, threads, 1, nil, xn)[0]
				qSame(t, what+" NHWC->NCHW", ref, got)
				got = qRun(t, "goslim", "MaxPool", 1, qLayoutAttrs(q.attrs, false, true), tier, threads, 1, nil, x)[0]
				qSame(t, what+" NCHW->NHWC", refn, got)
			}
		}
	}
}

// qPoolScales returns random x_scale, x_zero_point, y_scale,
// y_zero_point inputs of a quantized pool.
func qPoolScales(r *rand.Rand, dt tensor.DType) []*tensor.Tensor {
	return []*tensor.Tensor{qVals(tensor.Float32, 0.01+0.05*r.Float64()), qVals(dt, qRandZero(r, dt)),
		qVals(tensor.Float32, 0.01+0.05*r.Float64()), qVals(dt, qRandZero(r, dt))}
}

// TestQLinearPoolChannelsLast checks QLinearAveragePool and
// QLinearGlobalAveragePool with channels_last=1 (com.microsoft) and
// x_channels_last/y_channels_last (goslim) against the NCHW op with
// q8.ToLayout, bit for bit: random windows, pads, ceil_mode, auto_pad,
// count_include_pad, channel counts across the 64-channel block, 1-D
// windows (channels_last), act_min/act_max, batches, 1-2 threads.
func TestQLinearPoolChannelsLast(t *testing.T) {
	r := rand.New(rand.NewPCG(67, 68))
	for trial := range 40 {
		q := randQPoolCase(r, false)
		q.attrs = append(q.attrs, ir.IntAttr("count_include_pad", int64(r.IntN(2))))
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		sc := qPoolScales(r, dt)
		oneD := trial%5 == 4
		if oneD {
			q.h = 1
			q.attrs = ir.Attrs{ir.IntsAttr("kernel_shape", 3), ir.IntsAttr("strides", 2), ir.IntsAttr("pads", 1, 1), ir.IntAttr("count_include_pad", int64(trial%2))}
			q.w += 3
		}
		x := qRand(r, dt, q.n, q.c, q.h, q.w)
		xn := qNHWC(t, x)
		args := func(x *tensor.Tensor) []*tensor.Tensor { return append([]*tensor.Tensor{x}, sc...) }
		fused := ir.Attrs{ir.IntAttr("act_min", int64(r.IntN(20))-10+[]int64{64, -64}[trial%2]), ir.IntAttr("act_max", 120)}
		for tt := range 2 * len(qTiers()) {
			tier, threads := qTiers()[tt/2], 1+tt%2
			what := fmt.Sprintf("trial %d %v %v%v %v threads %d", trial, dt, x.Shape, q.attrs, tier, threads)
			// Global: NCHW reference [N, C, 1, 1].
			g := qRun(t, "com.microsoft", "QLinearGlobalAveragePool", 1, nil, tier, threads, 1, nil, args(x)...)[0]
			gn := g.Clone()
			gn.Shape = tensor.Shape{q.n, 1, 1, q.c}
			got := qRun(t, "com.microsoft", "QLinearGlobalAveragePool", 1, ir.Attrs{ir.IntAttr("channels_last", 1)}, tier, threads, 1, nil, args(xn)...)[0]
			qSame(t, what+" global channels_last", gn, got)
			for _, yl := range []bool{false, true} {
				want := g
				if yl {
					want = gn
				}
				got = qRun(t, "goslim", "QLinearGlobalAveragePool", 1, qLayoutAttrs(nil, true, yl), tier, threads, 1, nil, args(xn)...)[0]
				qSame(t, fmt.Sprintf("%s global x_channels_last y_channels_last %v", what, yl), want, got)
			}
			gf := qRun(t, "goslim", "QLinearGlobalAveragePool", 1, fused, tier, threads, 1, nil, args(x)...)[0]
			got = qRun(t, "goslim", "QLinearGlobalAveragePool", 1, qLayoutAttrs(fused, true, false), tier, threads, 1, nil, args(xn)...)[0]
			qSame(t, what+" global fused", gf, got)
			// Windowed.
			if oneD {
				x3 := x.Clone()
				x3.Shape = tensor.Shape{q.n, q.c, q.w}
				ref := qRun(t, "com.microsoft", "QLinearAveragePool", 1, q.attrs, tier, threads, 1, nil, args(x3)...)[0]
				ref4 := ref.Clone()
				ref4.Shape = tensor.Shape{q.n, q.c, 1, ref.Shape[2]}
				want := qNHWC(t, ref4)
				want.Shape = tensor.Shape{q.n, ref.Shape[2], q.c}
				xn3 := xn.Clone()
				xn3.Shape = tensor.Shape{q.n, q.w, q.c}
				got = qRun(t, "com.microsoft", "QLinearAveragePool", 1, append(q.attrs, ir.IntAttr("channels_last", 1)), tier, threads, 1, nil, args(xn3)...)[0]
				qSame(t, what+" 1-D channels_last", want, got)
				continue
			}
			ref := qRun(t, "com.microsoft", "QLinearAveragePool", 1, q.attrs, tier, threads, 1, nil, args(x)...)[0]
			want := qNHWC(t, ref)
			got = qRun(t, "com.microsoft", "QLinearAveragePool", 1, append(q.attrs, ir.IntAttr("channels_last", 1)), tier, threads, 1, nil, args(xn)...)[0]
			qSame(t, what+" channels_last", want, got)
			got = qRun(t, "goslim", "QLinearAveragePool", 1, qLayoutAttrs(q.attrs, true, true), tier, threads, 1, nil, args(xn)...)[0]
			qSame(t, what+" x_channels_last", want, got)
			reff := qRun(t, "goslim", "QLinearAveragePool", 1, append(q.attrs, fused...), tier, threads, 1, nil, args(x)...)[0]
			got = qRun(t, "goslim", "QLinearAveragePool", 1, qLayoutAttrs(append(q.attrs, fused...), true, true), tier, threads, 1, nil, args(xn)...)[0]
			qSame(t, what+" fused x_channels_last", qNHWC(t, reff), got)
		}
	}
}

// TestQLinearPoolChannelsLastAgainstORT runs com.microsoft
// QLinearAveragePool and QLinearGlobalAveragePool with channels_last=1 in
// ONNX Runtime and goslim: same output shapes, values within one step and
// >= 99% exactly equal (ORT requantizes in float32).
func TestQLinearPoolChannelsLastAgainstORT(t *testing.T) {
	o := ortoracle.Require(t).With(ortoracle.Options{OptLevel: ortoracle.OptDisabled, Threads: 1})
	r := rand.New(rand.NewPCG(79, 80))
	var cases []qORTCase
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		sc := qPoolScales(r, dt)
		for _, sh := range [][]int{{2, 7, 6, 5}, {1, 9, 70}, {3, 4, 4, 96}} {
			in := append([]*tensor.Tensor{qRand(r, dt, sh...)}, sc...)
			cl := ir.IntAttr("channels_last", 1)
			cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearGlobalAveragePool channels_last %v %v", sh, dt), domain: "com.microsoft",
				op: "QLinearGlobalAveragePool", attrs: ir.Attrs{cl}, in: in, nOut: 1})
			win := ir.Attrs{ir.IntsAttr("kernel_shape", 3, 2), ir.IntsAttr("strides", 2, 1), ir.IntsAttr("pads", 1, 0, 1, 1)}
			if len(sh) == 3 {
				win = ir.Attrs{ir.IntsAttr("kernel_shape", 3), ir.IntsAttr("strides", 2), ir.IntsAttr("pads", 1, 1)}
			}
			for _, inc := range []int64{0, 1} {
				cases = append(cases, qORTCase{name: fmt.Sprintf("QLinearAveragePool channels_last %v %v include_pad %d", sh, dt, inc), domain: "com.microsoft",
					op: "QLinearAveragePool", attrs: append(append(ir.Attrs{cl}, win...), ir.IntAttr("count_include_pad", inc)), in: in, nOut: 1})
			}
		}
	}
	batch := make([]ortoracle.Case, len(cases))
	for i := range cases {
		m, feeds, err := cases[i].model()
		if err != nil {
			t.Fatalf("%s: %v", cases[i].name, err)
		}
		batch[i] = ortoracle.Case{Model: m, Feeds: feeds}
	}
	res, err := o.RunAll(batch)
	if err != nil {
		t.Fatal(err)
	}
	total, diff := 0, 0
	for i, c := range cases {
		if res[i].Err != nil {
			t.Errorf("%s: ORT: %v", c.name, res[i].Err)
			continue
		}
		got, err := qRunErr(c.domain, c.op, 13, c.attrs, kernel.Best(), 1+i%2, 1, map[int]bool{1: true, 2: true, 3: true, 4: true}, c.in...)
		if err != nil {
			t.Errorf("%s: goslim: %v", c.name, err)
			continue
		}
		g, want := got[0], res[i].Outputs["node_out"]
		if want == nil || g.DType != want.DType || !g.Shape.Equal(want.Shape) {
			t.Errorf("%s: got %v%v, ORT %v", c.name, g.DType, g.Shape, want)
			continue
		}
		for e := range want.Len() {
			total++
			if d := math.Abs(g.Float64At(e) - want.Float64At(e)); d != 0 {
				diff++
				if d > 1 {
					t.Errorf("%s: element %d: got %g, ORT %g", c.name, e, g.Float64At(e), want.Float64At(e))
					break
				}
			}
		}
	}
	if float64(diff) > 0.01*float64(total) {
		t.Errorf("%d of %d elements differ from ONNX Runtime", diff, total)
	}
	t.Logf("%d cases; %d of %d output elements differ from ONNX Runtime by one step", len(cases), diff, total)
}

// TestQLinearBinaryChannelsLast checks goslim QLinearAdd and QLinearMul
// with x_channels_last = y_channels_last = 1: the output keeps the
// inputs' physical shape and equals the NCHW op with q8.ToLayout; and that
// the cached table, split across two workers, equals the per-call
// function (non-constant parameters, small inputs).
func TestQLinearBinaryChannelsLast(t *testing.T) {
	r := rand.New(rand.NewPCG(69, 70))
	for _, op := range []string{"QLinearAdd", "QLinearMul"} {
		for trial := range 6 {
			dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
			shape := []int{1 + r.IntN(3), 1 + r.IntN(40), 1 + r.IntN(9), 1 + r.IntN(9)}
			if trial >= 4 { // large enough for two workers
				shape = []int{2, 64, 32, 30 + trial}
			}
			a, b := qRand(r, dt, shape...), qRand(r, dt, shape...)
			params := func(a, b *tensor.Tensor) []*tensor.Tensor {
				return []*tensor.Tensor{a, qVals(tensor.Float32, 0.05), qVals(dt, 3), b, qVals(tensor.Float32, 0.03), qVals(dt, 7),
					qVals(tensor.Float32, 0.0917), qVals(dt, 5)}
			}
			consts := map[int]bool{1: true, 2: true, 4: true, 5: true, 6: true, 7: true}
			ref := qRun(t, "com.microsoft", op, 1, nil, kernel.TierGeneric, 1, 1, nil, params(a, b)...)[0]
			for _, threads := range []int{1, 2} {
				what := fmt.Sprintf("%s %v %v threads %d", op, dt, shape, threads)
				got := qRun(t, "com.microsoft", op, 1, nil, kernel.TierGeneric, threads, 1, consts, params(a, b)...)[0]
				qSame(t, what+" constant parameters", ref, got)
				got = qRun(t, "goslim", op, 1, qLayoutAttrs(nil, true, true), kernel.TierGeneric, threads, 1, consts, params(qNHWC(t, a), qNHWC(t, b))...)[0]
				qSame(t, what, qNHWC(t, ref), got)
			}
		}
	}
}

// TestQLinearLayoutAttrErrors checks that bad layout attributes on the
// pooling and elementwise ops are refused with errors naming them.
func TestQLinearLayoutAttrErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	x4 := qRand(r, tensor.Uint8, 2, 5, 6, 4)
	x3 := qRand(r, tensor.Uint8, 2, 5, 6)
	sc := qPoolScales(r, tensor.Uint8)
	pool := func(x *tensor.Tensor) []*tensor.Tensor { return append([]*tensor.Tensor{x}, sc...) }
	bin := func(a, b *tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{a, sc[0], sc[1], b, sc[0], sc[1], sc[2], sc[3]}
	}
	k22 := ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2)}
	f32, _ := tensor.New(tensor.Float32, tensor.Shape{1, 2, 4, 4})
	for _, c := range []struct {
		name, domain, op string
		attrs            ir.Attrs
		nOut             int
		in               []*tensor.Tensor
		want             string
	}{
		{"maxpool rank 3", "goslim", "MaxPool", qLayoutAttrs(ir.Attrs{ir.IntsAttr("kernel_shape", 2)}, true, true), 1, []*tensor.Tensor{x3}, "rank-4"},
		{"maxpool rank 3 y", "goslim", "MaxPool", qLayoutAttrs(ir.Attrs{ir.IntsAttr("kernel_shape", 2)}, false, true), 1, []*tensor.Tensor{x3}, "rank-4"},
		{"maxpool storage_order", "goslim", "MaxPool", append(qLayoutAttrs(k22, true, true), ir.IntAttr("storage_order", 1)), 1, []*tensor.Tensor{x4}, "storage_order"},
		{"maxpool indices", "goslim", "MaxPool", qLayoutAttrs(k22, true, true), 2, []*tensor.Tensor{x4}, "Indices"},
		{"maxpool float", "goslim", "MaxPool", k22, 1, []*tensor.Tensor{f32}, "uint8 or int8"},
		{"maxpool value 2", "goslim", "MaxPool", ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntAttr("x_channels_last", 2)}, 1, []*tensor.Tensor{x4}, "want 0 or 1"},
		{"avgpool x!=y", "goslim", "QLinearAveragePool", qLayoutAttrs(k22, false, true), 1, pool(x4), "differ"},
		{"avgpool rank 3", "goslim", "QLinearAveragePool", qLayoutAttrs(ir.Attrs{ir.IntsAttr("kernel_shape", 2)}, true, true), 1, pool(x3), "rank-4"},
		{"avgpool both", "goslim", "QLinearAveragePool", append(qLayoutAttrs(k22, true, true), ir.IntAttr("channels_last", 1)), 1, pool(x4), "cannot be combined"},
		{"avgpool com.microsoft x_channels_last", "com.microsoft", "QLinearAveragePool", qLayoutAttrs(k22, true, true), 1, pool(x4), "goslim-domain"},
		{"global rank 3", "goslim", "QLinearGlobalAveragePool", qLayoutAttrs(nil, true, false), 1, pool(x3), "rank-4"},
		{"global channels_last 2", "com.microsoft", "QLinearGlobalAveragePool", ir.Attrs{ir.IntAttr("channels_last", 2)}, 1, pool(x4), "want 0 or 1"},
		{"add x!=y", "goslim", "QLinearAdd", qLayoutAttrs(nil, true, false), 1, bin(x4, x4), "differ"},
		{"add broadcast", "goslim", "QLinearAdd", qLayoutAttrs(nil, true, true), 1, bin(x4, qRand(r, tensor.Uint8, 1, 1, 1, 4)), "same non-batch dims"},
		{"mul rank 3", "goslim", "QLinearMul", qLayoutAttrs(nil, true, true), 1, bin(x3, x3), "same non-batch dims"},
		{"mul com.microsoft", "com.microsoft", "QLinearMul", qLayoutAttrs(nil, true, true), 1, bin(x4, x4), "goslim-domain"},
	} {
		_, err := qRunErr(c.domain, c.op, 12, c.attrs, kernel.TierGeneric, 1, c.nOut, nil, c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// BenchmarkQLinearNHWCOps times the 8-bit elementwise and pooling ops of
// the reference models at batch 32, one thread, best tier, in both
// layouts (with the float32 op for scale); cpu-ns/elem is the thread's
// CPU time per output element (per input element for the global pool):
//
//	go test ./internal/ops -run XXX -bench QLinearNHWCOps -cpu 1 -count 3
func BenchmarkQLinearNHWCOps(b *testing.B) {
	r := rand.New(rand.NewPCG(77, 78))
	sc := qPoolScales(r, tensor.Uint8)
	f32 := func(x *tensor.Tensor) *tensor.Tensor {
		y := &tensor.Tensor{DType: tensor.Float32, Shape: x.Shape, Data: make([]float32, x.Len())}
		for i, v := range x.U8() {
			y.F32()[i] = float32(v)
		}
		return y
	}
	res := qRand(r, tensor.Uint8, 32, 16, 32, 32)
	le := qRand(r, tensor.Uint8, 32, 6, 24, 24)
	le2 := qRand(r, tensor.Uint8, 32, 16, 10, 10)
	gp := qRand(r, tensor.Uint8, 32, 64, 8, 8)
	bin := func(a, b *tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{a, sc[0], sc[1], b, sc[2], sc[3], qVals(tensor.Float32, 0.07), sc[1]}
	}
	pool1 := func(x *tensor.Tensor) []*tensor.Tensor { return append([]*tensor.Tensor{x}, sc...) }
	k22 := ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}
	k33 := ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1)}
	for _, c := range []struct {
		name, domain, op string
		attrs            ir.Attrs
		in               []*tensor.Tensor
		act              []int
		perIn            bool
	}{
		{"resnet8-add/nchw", "com.microsoft", "QLinearAdd", nil, bin(res, res), []int{0, 3}, false},
		{"resnet8-add/nhwc", "goslim", "QLinearAdd", qLayoutAttrs(nil, true, true), bin(res, res), []int{0, 3}, false},
		{"resnet8-add/fp32", "", "Add", nil, []*tensor.Tensor{f32(res), f32(res)}, []int{0, 1}, false},
		{"lenet-maxpool2x2/nchw", "", "MaxPool", k22, []*tensor.Tensor{le}, []int{0}, false},
		{"lenet-maxpool2x2/nhwc", "goslim", "MaxPool", qLayoutAttrs(k22, true, true), []*tensor.Tensor{le}, []int{0}, false},
		{"lenet-pool2/nchw", "", "MaxPool", k22, []*tensor.Tensor{le2}, []int{0}, false},
		{"lenet-pool2/nhwc-nchw", "goslim", "MaxPool", qLayoutAttrs(k22, true, false), []*tensor.Tensor{le2}, []int{0}, false},
		{"maxpool3x3s2/nchw", "", "MaxPool", k33, []*tensor.Tensor{res}, []int{0}, false},
		{"maxpool3x3s2/nhwc", "goslim", "MaxPool", qLayoutAttrs(k33, true, true), []*tensor.Tensor{res}, []int{0}, false},
		{"avgpool3x3s2/nchw", "com.microsoft", "QLinearAveragePool", k33, pool1(res), []int{0}, false},
		{"avgpool3x3s2/nhwc", "goslim", "QLinearAveragePool", qLayoutAttrs(k33, true, true), pool1(res), []int{0}, false},
		{"resnet8-gap/nchw", "com.microsoft", "QLinearGlobalAveragePool", nil, pool1(gp), []int{0}, true},
		{"resnet8-gap/nhwc", "goslim", "QLinearGlobalAveragePool", qLayoutAttrs(nil, true, false), pool1(gp), []int{0}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			node := &ir.Node{Op: c.op, Domain: c.domain, Name: "bench", Attrs: c.attrs, Inputs: make([]ir.ValueID, len(c.in)), Outputs: []ir.ValueID{ir.ValueID(len(c.in))}}
			info := &kernel.Info{Node: node, Opset: 21, Tier: kernel.Best(), Inputs: make([]ir.Type, len(c.in)), Consts: make([]*tensor.Tensor, len(c.in))}
			act := map[int]bool{}
			for _, i := range c.act {
				act[i] = true
			}
			for i, x := range c.in {
				node.Inputs[i] = ir.ValueID(i)
				info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
				if !act[i] {
					info.Consts[i] = x
				}
			}
			k, _, err := NewTable().Lookup(info)
			if err != nil {
				b.Fatal(err)
			}
			ctx := kernel.NewCtx(node, 1, tierSlots{})
			out := make([]*tensor.Tensor, 1)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var elems int
			c0 := qThreadCPU()
			for b.Loop() {
				ctx.Begin(out)
				if err := k.Run(ctx, c.in, out); err != nil {
					b.Fatal(err)
				}
				elems = out[0].Len()
			}
			if c.perIn {
				elems = c.in[0].Len()
			}
			if cpu := qThreadCPU() - c0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(elems), "cpu-ns/elem")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
			}
		})
	}
}

// TestPoolMaxBytes checks the bytewise maximum of poolMax2x2 on every pair
// of byte values, in every lane.
func TestPoolMaxBytes(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			for lane := range 8 {
				sh := uint(8 * lane)
				// The other lanes hold values that make borrows likely.
				x := uint64(a)<<sh | (0x00ff00ff00ff00ff &^ (0xff << sh))
				y := uint64(b)<<sh | (0xff00ff00ff00ff00 &^ (0xff << sh))
				got := poolMaxBytes(x, y)
				for l := range 8 {
					s := uint(8 * l)
					if want := max(uint8(x>>s), uint8(y>>s)); uint8(got>>s) != want {
						t.Fatalf("max(%#x, %#x) lane %d = %#x, want %#x", x, y, l, uint8(got>>s), want)
					}
				}
			}
		}
	}
}

// TestMaxPool8Ranks checks 8-bit MaxPool on 1-D, 2-D (wide rows, SWAR
// words and tails) and 3-D windows against the float32 MaxPool of the
// same values (windows entirely in the padding aside, where the float op
// gives the lowest float), at one and two threads.
func TestMaxPool8Ranks(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for trial := range 30 {
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		nd := 1 + trial%3
		shape := []int{1 + r.IntN(2), 1 + r.IntN(5)}
		var k, s, d, p []int64
		for range nd {
			kk := 1 + r.IntN(4)
			dd := 1 + r.IntN(2)
			shape = append(shape, (kk-1)*dd+1+r.IntN(30/nd))
			k, s, d = append(k, int64(kk)), append(s, int64(1+r.IntN(3))), append(d, int64(dd))
		}
		for i := range 2 * nd {
			p = append(p, int64(r.IntN(int(k[i%nd]))))
		}
		attrs := ir.Attrs{ir.IntsAttr("kernel_shape", k...), ir.IntsAttr("strides", s...), ir.IntsAttr("dilations", d...),
			ir.IntsAttr("pads", p...), ir.IntAttr("ceil_mode", int64(trial/3%2))}
		x := qRand(r, dt, shape...)
		xf, _ := tensor.New(tensor.Float32, x.Shape)
		for i := range x.Len() {
			xf.F32()[i] = float32(x.Float64At(i))
		}
		ref := qRun(t, "", "MaxPool", 12, attrs, kernel.TierGeneric, 1, 1, nil, xf)[0]
		for _, threads := range []int{1, 2} {
			got := qRun(t, "", "MaxPool", 12, attrs, kernel.TierGeneric, threads, 1, nil, x)[0]
			if !got.Shape.Equal(ref.Shape) {
				t.Fatalf("trial %d %v%v: shape %v, float %v", trial, dt, shape, got.Shape, ref.Shape)
			}
			for i := range ref.Len() {
				if w := ref.Float64At(i); w > -1000 && got.Float64At(i) != w {
					t.Fatalf("trial %d %v%v%v threads %d: element %d = %g, float %g", trial, dt, shape, attrs, threads, i, got.Float64At(i), w)
				}
			}
		}
	}
}
