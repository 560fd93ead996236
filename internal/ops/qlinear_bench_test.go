package ops

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// qBenchConv is a convolution shape of the reference models.
type qBenchConv struct {
	name                   string
	n, c, m, hw, k, stride int
	group                  int
}

var qBenchConvs = []qBenchConv{
	{"resnet8/3x3x16@32", 8, 16, 16, 32, 3, 1, 1},
	{"resnet8/3x3x32@16", 8, 32, 32, 16, 3, 1, 1},
	{"resnet8/3x3x64@8", 8, 64, 64, 8, 3, 1, 1},
	{"resnet8/3x3x16-32s2@32", 8, 16, 32, 32, 3, 2, 1},
	{"mbv2/dw3x3x96@16", 8, 96, 96, 16, 3, 1, 96},
	{"mbv2/dw3x3x144s2@16", 8, 144, 144, 16, 3, 2, 144},
	{"mbv2/pw1x1x96-24@16", 8, 96, 24, 16, 1, 1, 1},
	{"mbv2/pw1x1x24-144@16", 8, 24, 144, 16, 1, 1, 1},
}

// qBenchKernel builds (domain, op) once with input 1.. constant.
func qBenchKernel(b *testing.B, op string, opset int64, attrs ir.Attrs, tier kernel.Tier, in []*tensor.Tensor) kernel.Kernel {
	node := &ir.Node{Op: op, Name: "bench", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: []ir.ValueID{ir.ValueID(len(in))}}
	info := &kernel.Info{Node: node, Opset: opset, Tier: tier, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in))}
	for i, x := range in {
		if x == nil {
			node.Inputs[i] = ir.NoValue
			continue
		}
		node.Inputs[i] = ir.ValueID(i)
		info.Inputs[i] = ir.Type{DType: x.DType, Ranked: true, Shape: ir.ShapeDims(x.Shape)}
		if i > 0 {
			info.Consts[i] = x
		}
	}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// BenchmarkQLinearConv measures QLinearConv (uint8 x int8, per-channel
// weight scales, bias) against the float32 Conv on the same shape, one
// thread, best tier and generic; cpu-GOP/s and cpu-us/op count the
// thread's CPU time only (the machine is shared):
//
//	go test ./internal/ops -run XXX -bench QLinearConv -cpu 1 -count 3
func BenchmarkQLinearConv(b *testing.B) {
	r := rand.New(rand.NewPCG(71, 72))
	for _, s := range qBenchConvs {
		pad := int64(s.k / 2)
		attrs := ir.Attrs{ir.IntAttr("group", int64(s.group)), ir.IntsAttr("strides", int64(s.stride), int64(s.stride)),
			ir.IntsAttr("pads", pad, pad, pad, pad)}
		cg := s.c / s.group
		oh := (s.hw+2*int(pad)-s.k)/s.stride + 1
		ops := 2 * float64(s.n*s.m*oh*oh*cg*s.k*s.k)
		x := qRand(r, tensor.Uint8, s.n, s.c, s.hw, s.hw)
		w := qRand(r, tensor.Int8, s.m, cg, s.k, s.k)
		sw := make([]float64, s.m)
		bias := make([]float64, s.m)
		for i := range sw {
			sw[i] = 0.01
			bias[i] = float64(i)
		}
		bt := qVals(tensor.Int32, bias...)
		bt.Shape = tensor.Shape{s.m}
		swt := qVals(tensor.Float32, sw...)
		swt.Shape = tensor.Shape{s.m}
		qin := []*tensor.Tensor{x, qVals(tensor.Float32, 0.02), qVals(tensor.Uint8, 128), w, swt, qVals(tensor.Int8, 0),
			qVals(tensor.Float32, 0.05), qVals(tensor.Uint8, 128), bt}
		xf := &tensor.Tensor{DType: tensor.Float32, Shape: x.Shape, Data: make([]float32, x.Len())}
		wf := &tensor.Tensor{DType: tensor.Float32, Shape: w.Shape, Data: make([]float32, w.Len())}
		for i := range xf.F32() {
			xf.F32()[i] = float32(x.U8()[i]) / 255
		}
		for i := range wf.F32() {
			wf.F32()[i] = float32(w.I8()[i]) / 128
		}
		bf := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{s.m}, Data: make([]float32, s.m)}
		fin := []*tensor.Tensor{xf, wf, bf}
		tiers := []kernel.Tier{kernel.Best()}
		if kernel.Best() != kernel.TierGeneric {
			tiers = append(tiers, kernel.TierGeneric)
		}
		for _, tier := range tiers {
			for _, v := range []struct {
				name string
				op   string
				in   []*tensor.Tensor
			}{{"int8", "QLinearConv", qin}, {"fp32", "Conv", fin}} {
				b.Run(fmt.Sprintf("%s/%s/%v", s.name, v.name, tier), func(b *testing.B) {
					k := qBenchKernel(b, v.op, 13, attrs, tier, v.in)
					c := kernel.NewCtx(&ir.Node{Op: v.op, Name: "bench"}, 1, nil)
					out := make([]*tensor.Tensor, 1)
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					c0 := qThreadCPU()
					for b.Loop() {
						c.Begin(out)
						if err := k.Run(c, v.in, out); err != nil {
							b.Fatal(err)
						}
					}
					cpu := qThreadCPU() - c0
					b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
					if cpu > 0 {
						b.ReportMetric(ops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GOP/s")
						b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
					}
				})
			}
		}
	}
}
