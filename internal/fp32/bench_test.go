package fp32

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchShapes are the products timed by BenchmarkSGEMM: squares, and
// skinny convolution-like and batch-1/32 fully connected shapes.
var benchShapes = []struct {
	name    string
	m, n, k int
	packedA bool // A constant and pre-packed (conv weights)
	packedB bool // B constant and pre-packed (FC weights)
}{
	{"sq256", 256, 256, 256, false, false},
	{"sq512", 512, 512, 512, false, false},
	{"sq1024", 1024, 1024, 1024, false, false},
	{"conv_m64_n1024_k576", 64, 1024, 576, true, false},
	{"conv_m16_n3136_k27", 16, 3136, 27, true, false},
	{"conv_m16_n1024_k144", 16, 1024, 144, true, false},
	{"fc_m32_n512_k784", 32, 512, 784, false, true},
	{"fc_m1_n512_k784", 1, 512, 784, false, true},
}

// BenchmarkSGEMM times one-thread SGEMM per tier and shape, reporting
// GFLOP/s (a multiply-add counts 2). Run e.g.
//
//	go test ./internal/fp32 -run '^$' -bench SGEMM -count 5
func BenchmarkSGEMM(b *testing.B) {
	for _, k := range testKernels() {
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("%s/%s", k.Name(), s.name), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				x := randSlice(r, s.m*s.k)
				y := randSlice(r, s.k*s.n)
				z := make([]float32, s.m*s.n)
				op := &GemmOp{M: s.m, N: s.n, K: s.k, Alpha: 1, A: Mat{x, s.k, false}, B: Mat{y, s.n, false}, C: z, LdC: s.n}
				if s.packedA {
					op.PA = k.PackA(false, s.m, s.k, x, s.k)
				}
				if s.packedB {
					op.PB = k.PackB(false, s.k, s.n, y, s.n)
				}
				ws := make([]float32, k.Scratch(op))
				flop := 2 * float64(s.m) * float64(s.n) * float64(s.k)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				c0 := threadCPU()
				for b.Loop() {
					k.Run(ws, op)
				}
				cpu := threadCPU() - c0
				b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu > 0 {
					// Thread CPU time excludes the time the shared VM gives
					// to other processes.
					b.ReportMetric(flop*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
}

// BenchmarkTile times the micro-kernels alone on L1-resident strips.
func BenchmarkTile(b *testing.B) {
	for _, k := range testKernels() {
		ar := k.arch()
		for _, depth := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/k=%d", ar.name, depth), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				pa := randSlice(r, depth*ar.mr)
				pb := randSlice(r, depth*ar.nr)
				c := make([]float32, ar.mr*ar.nr)
				var ep tileEp
				for b.Loop() {
					ar.tile(depth, pa, pb, c, ar.nr, ar.mr, ar.nr, &ep)
				}
				b.ReportMetric(2*float64(depth*ar.mr*ar.nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkConv times Kernels.Conv (the path convolutions take) on the
// skinny shapes of BenchmarkSGEMM: 64 filters of 64x3x3 on 32x32 (M=64,
// N=1024, K=576), 16 of 3x3x3 on 56x56 (M=16, N=3136, K=27), 16 of 16x3x3
// on 32x32 (M=16, N=1024, K=144), stride 1, padding 1, packed weights.
func BenchmarkConv(b *testing.B) {
	shapes := []struct {
		name       string
		m, c, h, w int
	}{{"m64_n1024_k576", 64, 64, 32, 32}, {"m16_n3136_k27", 16, 3, 56, 56}, {"m16_n1024_k144", 16, 16, 32, 32}}
	for _, k := range testKernels() {
		for _, s := range shapes {
			b.Run(fmt.Sprintf("%s/%s", k.Name(), s.name), func(b *testing.B) {
				g, err := NewConvGeom([]int{s.h, s.w}, []int{s.h, s.w}, []int{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
				if err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 1))
				K := s.c * 9
				x, w := randSlice(r, s.c*g.InSize()), randSlice(r, s.m*K)
				op := &ConvOp{Geom: &g, M: s.m, Channels: s.c, X: x, PW: k.PackA(false, s.m, K, w, K), Y: make([]float32, s.m*g.OutSize()),
					LdY: g.OutSize(), NCol: g.OutSize(), Bias: w[:s.m], Act: Act{Kind: ActRelu}}
				ws := make([]float32, k.ConvScratch(op))
				flop := 2 * float64(s.m) * float64(g.OutSize()) * float64(K)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				c0 := threadCPU()
				for b.Loop() {
					k.Conv(ws, op)
				}
				cpu := threadCPU() - c0
				b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu > 0 {
					b.ReportMetric(flop*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
}
