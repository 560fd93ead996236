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

// qgemmCase is a fully-connected layer as the INT8 lowering emits it:
// QGemm (or QLinearMatMul) with constant weights, scales and zero points.
type qgemmCase struct {
	op         string
	m, k, n    int
	adt        tensor.DType
	floatOut   bool // QGemm without y_scale (float logits)
	perChannel bool // per-column weight scales
}

// inputs returns the node's inputs (the first, A, is the activation).
func (c qgemmCase) inputs(r *rand.Rand) []*tensor.Tensor {
	a := qRand(r, c.adt, c.m, c.k)
	w := qRand(r, tensor.Int8, c.k, c.n)
	sb := []float64{0.004}
	if c.perChannel {
		sb = make([]float64, c.n)
		for j := range sb {
			sb[j] = 0.002 + 0.004*r.Float64()
		}
	}
	za := qRandZero(r, c.adt)
	if c.op == "QLinearMatMul" {
		return []*tensor.Tensor{a, qVals(tensor.Float32, 0.02), qVals(c.adt, za), w, qVals(tensor.Float32, sb...), qVals(tensor.Int8, 0),
			qVals(tensor.Float32, 0.3), qVals(tensor.Uint8, 17)}
	}
	bias := make([]float64, c.n)
	for j := range bias {
		bias[j] = float64(r.IntN(4001) - 2000)
	}
	bt := qVals(tensor.Int32, bias...)
	bt.Shape = tensor.Shape{c.n}
	in := []*tensor.Tensor{a, qVals(tensor.Float32, 0.02), qVals(c.adt, za), w, qVals(tensor.Float32, sb...), qVals(tensor.Int8, 0), bt}
	if !c.floatOut {
		in = append(in, qVals(tensor.Float32, 0.3), qVals(c.adt, qRandZero(r, c.adt)))
	}
	return in
}

func (c qgemmCase) String() string {
	s := fmt.Sprintf("%s/%dx%dx%d/%v", c.op, c.m, c.k, c.n, c.adt)
	if c.floatOut {
		s += "/float"
	}
	if c.perChannel {
		s += "/perchannel"
	}
	return s
}

// qgemmKernel builds the case's node at tier with every input but A
// constant and returns the kernel and a context with a session-like
// slot allocator (and a worker pool when threads > 1; closed by the
// returned func).
func qgemmKernel(tb testing.TB, c qgemmCase, tier kernel.Tier, threads int, in []*tensor.Tensor) (kernel.Kernel, *kernel.Ctx, func()) {
	tb.Helper()
	domain := ""
	if c.op == "QGemm" {
		domain = "com.microsoft"
	}
	node := &ir.Node{Op: c.op, Domain: domain, Name: "qgemm", Inputs: make([]ir.ValueID, len(in)), Outputs: []ir.ValueID{ir.ValueID(len(in))}}
	info := &kernel.Info{Node: node, Opset: 21, Tier: tier, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, x := range in {
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if i > 0 {
			info.Consts[i] = x
		}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		tb.Fatalf("%v: %v", c, err)
	}
	ctx := kernel.NewCtx(node, threads, tierSlots{})
	done := func() {}
	if threads > 1 {
		pool := kernel.NewPool(threads)
		ctx.Pool = pool
		done = pool.Close
	}
	return k, ctx, done
}

var qgemmAllocCases = []qgemmCase{
	{op: "QGemm", m: 1, k: 784, n: 512, adt: tensor.Uint8, perChannel: true},
	{op: "QGemm", m: 32, k: 784, n: 512, adt: tensor.Uint8, perChannel: true},
	{op: "QGemm", m: 3, k: 256, n: 10, adt: tensor.Uint8, perChannel: true, floatOut: true},
	{op: "QGemm", m: 32, k: 100, n: 37, adt: tensor.Int8},
	{op: "QLinearMatMul", m: 1, k: 512, n: 256, adt: tensor.Uint8},
	{op: "QLinearMatMul", m: 17, k: 70, n: 300, adt: tensor.Int8, perChannel: true},
}

// TestQGemmDoesNotAllocate checks that QGemm and QLinearMatMul with
// constant weights, scales and zero points allocate nothing per run once
// warm, at one and two threads (with the session's worker pool).
func TestQGemmDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(91, 92))
	for _, c := range qgemmAllocCases {
		in := c.inputs(r)
		for _, threads := range []int{1, 2} {
			k, ctx, done := qgemmKernel(t, c, kernel.Best(), threads, in)
			out := make([]*tensor.Tensor, 1)
			run := func() {
				ctx.Begin(out)
				if err := k.Run(ctx, in, out); err != nil {
					t.Fatalf("%v: %v", c, err)
				}
			}
			run()
			if n := testing.AllocsPerRun(10, run); n != 0 {
				t.Errorf("%v threads %d: %v allocations per run", c, threads, n)
			}
			// The steady state (cached parameters and additions) gives
			// the bits of a freshly built kernel's first run.
			domain := ""
			if c.op == "QGemm" {
				domain = "com.microsoft"
			}
			consts := map[int]bool{}
			for i := 1; i < len(in); i++ {
				consts[i] = true
			}
			qSame(t, fmt.Sprintf("%v threads %d steady state", c, threads), out[0], qRun(t, domain, c.op, 21, nil, kernel.Best(), threads, 1, consts, in...)[0])
			done()
		}
	}
}

// TestQuantizeIODoesNotAllocate checks that the QuantizeLinear at the
// input of a lowered INT8 graph and the DequantizeLinear at its output
// (per-tensor float32 scale, 8-bit zero point) allocate nothing per run
// once warm, and give the bits of the general (per-axis) path (NaN,
// infinities, ties and out-of-range values included).
func TestQuantizeIODoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(97, 98))
	xf := make([]float64, 1000)
	for i := range xf {
		xf[i] = (r.Float64() - 0.3) * 3
	}
	copy(xf, []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.5 * 0.01, 1.5 * 0.01, -2.5 * 0.01, 1e9, -1e9})
	x := qVals(tensor.Float32, xf...)
	x.Shape = tensor.Shape{1, 1000}
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		cases := []struct {
			op string
			in []*tensor.Tensor
		}{
			{"QuantizeLinear", []*tensor.Tensor{x, qVals(tensor.Float32, 0.01), qVals(dt, qRandZero(r, dt))}},
			{"DequantizeLinear", []*tensor.Tensor{qRand(r, dt, 1, 1000), qVals(tensor.Float32, 0.037), qVals(dt, qRandZero(r, dt))}},
		}
		for _, c := range cases {
			node := &ir.Node{Op: c.op, Name: "io", Inputs: []ir.ValueID{0, 1, 2}, Outputs: []ir.ValueID{3}}
			info := &kernel.Info{Node: node, Opset: 21, Tier: kernel.Best(), Inputs: make([]ir.Type, 3), Consts: []*tensor.Tensor{nil, c.in[1], c.in[2]}}
			for i, v := range c.in {
				info.Inputs[i] = ir.Type{DType: v.DType, Ranked: true, Shape: ir.ShapeDims(v.Shape)}
			}
			k, _, err := NewTable().Lookup(info)
			if err != nil {
				t.Fatal(err)
			}
			ctx := kernel.NewCtx(node, 1, tierSlots{})
			out := make([]*tensor.Tensor, 1)
			run := func() {
				ctx.Begin(out)
				if err := k.Run(ctx, c.in, out); err != nil {
					t.Fatalf("%s: %v", c.op, err)
				}
			}
			run()
			if n := testing.AllocsPerRun(10, run); n != 0 {
				t.Errorf("%s %v: %v allocations per run", c.op, dt, n)
			}
			// Reference: the general path, on the same scale and zero point
			// repeated per element of axis 1.
			ss, zs := make([]float64, 1000), make([]float64, 1000)
			for i := range ss {
				ss[i], zs[i] = c.in[1].Float64At(0), c.in[2].Float64At(0)
			}
			gen := qRun(t, "", c.op, 21, nil, kernel.TierGeneric, 1, 1, map[int]bool{1: true, 2: true}, c.in[0], qVals(tensor.Float32, ss...), qVals(dt, zs...))[0]
			if c.op == "DequantizeLinear" {
				for i, v := range gen.F32() {
					if out[0].F32()[i] != v {
						t.Fatalf("%s %v: element %d = %g, general path %g", c.op, dt, i, out[0].F32()[i], v)
					}
				}
				continue
			}
			qSame(t, fmt.Sprintf("%s %v", c.op, dt), out[0], gen)
		}
	}
}
