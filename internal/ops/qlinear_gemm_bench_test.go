package ops

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// BenchmarkQGemm measures QGemm (uint8 activations, int8 per-channel
// weights, int32 bias; 8-bit output, or float for the logits layer) on
// the layers of the MLP reference model (784-512-256-10) at batch 1 and
// 32, against float32 Gemm on the same shapes, one thread, best tier, in
// one run; cpu-us/op is the thread's CPU time per call (the machine is
// shared):
//
//	go test ./internal/ops -run XXX -bench QGemm -cpu 1 -count 3
func BenchmarkQGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(99, 100))
	for _, s := range []struct {
		k, n     int
		floatOut bool
	}{{784, 512, false}, {512, 256, false}, {256, 10, true}} {
		for _, m := range []int{1, 32} {
			c := qgemmCase{op: "QGemm", m: m, k: s.k, n: s.n, adt: tensor.Uint8, perChannel: true, floatOut: s.floatOut}
			qin := c.inputs(r)
			x := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{m, s.k}, Data: make([]float32, m*s.k)}
			w := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{s.k, s.n}, Data: make([]float32, s.k*s.n)}
			bias := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{s.n}, Data: make([]float32, s.n)}
			for i := range x.F32() {
				x.F32()[i] = r.Float32()
			}
			for i := range w.F32() {
				w.F32()[i] = r.Float32() - 0.5
			}
			fin := []*tensor.Tensor{x, w, bias}
			for _, v := range []struct {
				name string
				in   []*tensor.Tensor
			}{{"int8", qin}, {"fp32", fin}} {
				b.Run(fmt.Sprintf("%dx%dx%d/%s", m, s.k, s.n, v.name), func(b *testing.B) {
					var k kernel.Kernel
					var ctx *kernel.Ctx
					if v.name == "int8" {
						var done func()
						k, ctx, done = qgemmKernel(b, c, kernel.Best(), 1, v.in)
						defer done()
					} else {
						k, ctx = gemmF32Kernel(b, v.in)
					}
					out := make([]*tensor.Tensor, 1)
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					c0 := qThreadCPU()
					for b.Loop() {
						ctx.Begin(out)
						if err := k.Run(ctx, v.in, out); err != nil {
							b.Fatal(err)
						}
					}
					if cpu := qThreadCPU() - c0; cpu > 0 {
						b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
						b.ReportMetric(2*float64(m*s.k*s.n)*float64(b.N)/cpu.Seconds()/1e9, "cpu-GOP/s")
					}
				})
			}
		}
	}
}

// gemmF32Kernel builds float32 Gemm (B and C constant) at the best tier
// with a session-like slot allocator, one thread.
func gemmF32Kernel(tb testing.TB, in []*tensor.Tensor) (kernel.Kernel, *kernel.Ctx) {
	node := &ir.Node{Op: "Gemm", Name: "gemm", Inputs: []ir.ValueID{0, 1, 2}, Outputs: []ir.ValueID{3}}
	info := &kernel.Info{Node: node, Opset: 13, Tier: kernel.Best(), Inputs: make([]ir.Type, 3), Consts: []*tensor.Tensor{nil, in[1], in[2]}}
	for i, x := range in {
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		tb.Fatal(err)
	}
	return k, kernel.NewCtx(node, 1, tierSlots{})
}
