package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// qAllocs builds (domain, op) at the best tier with every input but the
// first (the activation; the first two for two-activation ops, see act)
// constant, runs it once with a session-like slot allocator and returns
// the allocations of a steady-state run, the kernel and its context
// (whose parallel chunks run on pool).
func qAllocs(t *testing.T, pool *kernel.Pool, domain, op string, attrs ir.Attrs, threads int, act []int, in ...*tensor.Tensor) (float64, kernel.Kernel, *kernel.Ctx) {
	t.Helper()
	node := &ir.Node{Op: op, Domain: domain, Name: "alloc", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: []ir.ValueID{ir.ValueID(len(in))}}
	info := &kernel.Info{Node: node, Opset: 21, Tier: kernel.Best(), Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	isAct := map[int]bool{}
	for _, i := range act {
		isAct[i] = true
	}
	for i, x := range in {
		if x == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if !isAct[i] {
			info.Consts[i] = x
		}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	ctx := kernel.NewCtx(node, threads, tierSlots{})
	ctx.Pool = pool
	out := make([]*tensor.Tensor, 1)
	var runErr error
	run := func() {
		ctx.Begin(out)
		if err := k.Run(ctx, in, out); err != nil && runErr == nil {
			runErr = err
		}
	}
	run()
	n := testing.AllocsPerRun(10, run)
	if runErr != nil {
		t.Fatalf("%s: %v", op, runErr)
	}
	return n, k, ctx
}

// qConvInputs returns QLinearConv inputs for a batch of n images of c x
// h x w (uint8 activations, int8 per-channel weights, bias).
func qConvInputs(r *rand.Rand, dt tensor.DType, xShape []int, m, cg, kh, kw int) []*tensor.Tensor {
	sw, zw := make([]float64, m), make([]float64, m)
	for i := range sw {
		sw[i] = 0.001 + r.Float64()*0.01
	}
	b := make([]float64, m)
	for i := range b {
		b[i] = float64(r.IntN(2001) - 1000)
	}
	return []*tensor.Tensor{qRand(r, dt, xShape...), qVals(tensor.Float32, 0.02), qVals(dt, qRandZero(r, dt)),
		qRand(r, tensor.Int8, m, cg, kh, kw), qVals(tensor.Float32, sw...), qVals(tensor.Int8, zw...),
		qVals(tensor.Float32, 0.05), qVals(dt, qRandZero(r, dt)), qVals(tensor.Int32, b...)}
}

// qConvBatchAllocs returns the allocations of one q8.ConvBatch call on the
// problem the conv kernel k ran last (its own long-lived arguments), so
// the test can tell the op's allocations from the int8 driver's.
func qConvBatchAllocs(k *qconvKernel, c *kernel.Ctx, x *tensor.Tensor, zx int32) float64 {
	cs := &k.cache
	a := &q8.BatchArgs{N: cs.n, X: qBytes(x), In: qLayout(k.xLast), Out: qLayout(k.yLast), Signed: x.DType == tensor.Int8,
		Zero: zx, Req: k.rq, Threads: c.Threads, Par: c}
	a.WS = make([]int32, k.cw.BatchScratch(&cs.s, cs.n, c.Threads, a.In, a.Out))
	size := cs.y.Size()
	if k.integer {
		y := make([]int32, size)
		return testing.AllocsPerRun(10, func() { _ = q8.ConvBatch(k.q.tier, &cs.s, k.cw, a, y) })
	}
	y := make([]uint8, size)
	return testing.AllocsPerRun(10, func() { _ = q8.ConvBatch(k.q.tier, &cs.s, k.cw, a, y) })
}

// TestQLinearConvNoAllocs checks that QLinearConv and ConvInteger with
// constant weights allocate nothing per run in steady state, in every
// layout and at one and two threads.
func TestQLinearConvNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	pool := kernel.NewPool(2)
	defer pool.Close()
	for _, cs := range []struct {
		name                  string
		c, m, group, h, kh, s int
	}{
		{"3x3", 8, 16, 1, 9, 3, 1},
		{"1x1", 16, 8, 1, 7, 1, 1},
		{"dw3x3s2", 8, 8, 8, 9, 3, 2},
	} {
		for _, xl := range []int64{0, 1} {
			for _, yl := range []int64{0, 1} {
				for _, threads := range []int{1, 2} {
					xShape := []int{4, cs.c, cs.h, cs.h}
					if xl == 1 {
						xShape = []int{4, cs.h, cs.h, cs.c}
					}
					p := int64(cs.kh / 2)
					attrs := ir.Attrs{ir.IntAttr("group", int64(cs.group)), ir.IntsAttr("strides", int64(cs.s), int64(cs.s)),
						ir.IntsAttr("pads", p, p, p, p), ir.IntAttr("x_channels_last", xl), ir.IntAttr("y_channels_last", yl)}
					in := qConvInputs(r, tensor.Uint8, xShape, cs.m, cs.c/cs.group, cs.kh, cs.kh)
					what := fmt.Sprintf("%s x_channels_last=%d y_channels_last=%d threads %d", cs.name, xl, yl, threads)
					ci := []*tensor.Tensor{in[0], in[3], in[2], in[5]}
					for _, op := range []struct {
						name string
						in   []*tensor.Tensor
					}{{"QLinearConv", in}, {"ConvInteger", ci}} {
						n, k, ctx := qAllocs(t, pool, "goslim", op.name, attrs, threads, []int{0}, op.in...)
						if n != 0 {
							zx, _ := qZero1(ctx, in[2], "x_zero_point", tensor.Uint8)
							base := qConvBatchAllocs(k.(*qconvKernel), ctx, in[0], zx)
							t.Errorf("%s %s: %v allocations per run (q8.ConvBatch alone: %v)", op.name, what, n, base)
						}
					}
				}
			}
		}
	}
}

// TestQLinearElemNoAllocs checks that the 8-bit elementwise and pooling
// kernels with constant scales and zero points allocate nothing per run in
// steady state, in both layouts and at one and two threads (inputs large
// enough to run in parallel at two).
func TestQLinearElemNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(75, 76))
	pool := kernel.NewPool(2)
	defer pool.Close()
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		sc := qPoolScales(r, dt)
		x := qRand(r, dt, 4, 64, 24, 24)
		xn := qNHWC(t, x)
		bin := func(a, b *tensor.Tensor) []*tensor.Tensor {
			return []*tensor.Tensor{a, sc[0], sc[1], b, sc[2], sc[3], qVals(tensor.Float32, 0.07), sc[1]}
		}
		pool1 := func(x *tensor.Tensor) []*tensor.Tensor { return append([]*tensor.Tensor{x}, sc...) }
		win := ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1)}
		cases := []struct {
			name, domain, op string
			attrs            ir.Attrs
			act              []int
			in               []*tensor.Tensor
		}{
			{"add", "com.microsoft", "QLinearAdd", nil, []int{0, 3}, bin(x, qRand(r, dt, 4, 64, 24, 24))},
			{"add broadcast", "com.microsoft", "QLinearAdd", nil, []int{0, 3}, bin(x, qRand(r, dt, 1, 64, 1, 1))},
			{"mul NHWC", "goslim", "QLinearMul", qLayoutAttrs(nil, true, true), []int{0, 3}, bin(xn, qRand(r, dt, 4, 24, 24, 64))},
			{"mul broadcast", "com.microsoft", "QLinearMul", nil, []int{0, 3}, bin(x, qRand(r, dt, 4, 64, 1, 1))},
			{"concat", "com.microsoft", "QLinearConcat", ir.Attrs{ir.IntAttr("axis", 1)}, []int{2, 5},
				[]*tensor.Tensor{sc[2], sc[3], x, sc[0], sc[1], qRand(r, dt, 4, 8, 24, 24), qVals(tensor.Float32, 0.03), sc[3]}},
			{"leakyrelu", "com.microsoft", "QLinearLeakyRelu", nil, []int{0}, pool1(x)},
			{"sigmoid", "goslim", "QLinearSigmoid", nil, []int{0}, pool1(x)},
			{"global", "com.microsoft", "QLinearGlobalAveragePool", nil, []int{0}, pool1(x)},
			{"global channels_last", "com.microsoft", "QLinearGlobalAveragePool", ir.Attrs{ir.IntAttr("channels_last", 1)}, []int{0}, pool1(xn)},
			{"global NHWC", "goslim", "QLinearGlobalAveragePool", qLayoutAttrs(nil, true, false), []int{0}, pool1(xn)},
			{"avgpool", "com.microsoft", "QLinearAveragePool", win, []int{0}, pool1(x)},
			{"avgpool NHWC", "goslim", "QLinearAveragePool", qLayoutAttrs(win, true, true), []int{0}, pool1(xn)},
			{"maxpool", "", "MaxPool", win, []int{0}, []*tensor.Tensor{x}},
			{"maxpool 2x2", "", "MaxPool", ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}, []int{0}, []*tensor.Tensor{x}},
			{"goslim maxpool", "goslim", "MaxPool", win, []int{0}, []*tensor.Tensor{x}},
			{"goslim maxpool NHWC", "goslim", "MaxPool", qLayoutAttrs(win, true, true), []int{0}, []*tensor.Tensor{xn}},
			{"goslim maxpool NHWC->NCHW", "goslim", "MaxPool", qLayoutAttrs(win, true, false), []int{0}, []*tensor.Tensor{xn}},
			{"goslim maxpool NCHW->NHWC", "goslim", "MaxPool", qLayoutAttrs(win, false, true), []int{0}, []*tensor.Tensor{x}},
		}
		for _, c := range cases {
			for _, threads := range []int{1, 2} {
				if n, _, _ := qAllocs(t, pool, c.domain, c.op, c.attrs, threads, c.act, c.in...); n != 0 {
					t.Errorf("%s (%s.%s) %v threads %d: %v allocations per run", c.name, c.domain, c.op, dt, threads, n)
				}
			}
		}
	}
}
