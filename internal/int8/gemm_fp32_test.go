package int8

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
)

// BenchmarkGemmFP32 runs the FP32 GEMM on the shapes of BenchmarkGemm for
// each FP32 tier, as the baseline the INT8 kernels are compared with in
// the same run (GFLOP/s reported as GOP/s and cpu-GOP/s), weights packed
// once. Only the square and FC shapes: goslim's FP32 convolutions do not
// run as this product (they read image rows in place; see
// internal/fp32 BenchmarkConv), so a GEMM figure there would mislead.
func BenchmarkGemmFP32(b *testing.B) {
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		if !tier.Available() {
			continue
		}
		k := fp32.For(tier)
		for _, s := range benchShapes {
			if strings.HasPrefix(s.name, "conv") || strings.HasPrefix(s.name, "pw") {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s", k.Name(), s.name), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				a := make([]float32, s.M*s.K)
				w := make([]float32, s.K*s.N)
				for i := range a {
					a[i] = rng.Float32()
				}
				for i := range w {
					w[i] = rng.Float32() - 0.5
				}
				op := &fp32.GemmOp{M: s.M, N: s.N, K: s.K, Alpha: 1, A: fp32.Mat{Data: a, Ld: s.K},
					PB: k.PackB(false, s.K, s.N, w, s.N), C: make([]float32, s.M*s.N), LdC: s.N}
				ws := make([]float32, k.Scratch(op))
				ops := 2 * float64(s.M) * float64(s.N) * float64(s.K)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0 := threadCPU()
				for b.Loop() {
					k.Run(ws, op)
				}
				cpu := threadCPU() - c0
				b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				if cpu > 0 {
					b.ReportMetric(ops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GOP/s")
				}
			})
		}
	}
}
