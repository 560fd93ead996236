package int8

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goslim/goslim/internal/kernel"
)

// benchTier is the tier the convolution benchmarks run: AVX-512 VNNI
// where available (the target tier), else the best one.
func benchTier() kernel.Tier {
	if t, err := kernel.ParseTier(os.Getenv("GOSLIM_BENCH_TIER")); err == nil && t.Available() {
		return t
	}
	if kernel.TierVNNI.Available() {
		return kernel.TierVNNI
	}
	return kernel.Best()
}

// benchConv is one convolution of a reference model.
type benchConv struct {
	name string
	s    ConvShape
}

// convShape returns the shape of a square KxK convolution with stride st
// and symmetric padding pad on C x H x W input.
func convShape(c, h, w, m, k, st, pad, group int) ConvShape {
	return ConvShape{C: c, H: h, W: w, M: m, Group: group, KH: k, KW: k, SH: st, SW: st, DH: 1, DW: 1,
		PadT: pad, PadL: pad, PadB: pad, PadR: pad, OH: (h+2*pad-k)/st + 1, OW: (w+2*pad-k)/st + 1}
}

// benchModels returns the GEMM convolutions (no depthwise) of the
// reference models of bench/refmodels_test.go: ResNet-8 on 3x32x32,
// MobileNetV2-0.5 on 3x96x96 and LeNet-5 on 1x28x28.
func benchModels() map[string][]benchConv {
	resnet := []benchConv{
		{"stem", convShape(3, 32, 32, 16, 3, 1, 1, 1)},
		{"l1.conv1", convShape(16, 32, 32, 16, 3, 1, 1, 1)},
		{"l1.conv2", convShape(16, 32, 32, 16, 3, 1, 1, 1)},
		{"l2.conv1", convShape(16, 32, 32, 32, 3, 2, 1, 1)},
		{"l2.conv2", convShape(32, 16, 16, 32, 3, 1, 1, 1)},
		{"l2.down", convShape(16, 32, 32, 32, 1, 2, 0, 1)},
		{"l3.conv1", convShape(32, 16, 16, 64, 3, 2, 1, 1)},
		{"l3.conv2", convShape(64, 8, 8, 64, 3, 1, 1, 1)},
		{"l3.down", convShape(32, 16, 16, 64, 1, 2, 0, 1)},
	}
	divisible := func(v float64) int {
		n := max(8, int(v+4)/8*8)
		if float64(n) < 0.9*v {
			n += 8
		}
		return n
	}
	hw, cin := 48, divisible(16)
	mobile := []benchConv{{"stem", convShape(3, 96, 96, cin, 3, 2, 1, 1)}}
	for bi, st := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		cout := divisible(float64(st[1]) * 0.5)
		for i := range st[2] {
			stride := 1
			if i == 0 {
				stride = st[3]
			}
			hid := cin * st[0]
			if st[0] != 1 {
				mobile = append(mobile, benchConv{fmt.Sprintf("b%d.%d.expand", bi, i), convShape(cin, hw, hw, hid, 1, 1, 0, 1)})
			}
			hw = (hw+2-3)/stride + 1
			mobile = append(mobile, benchConv{fmt.Sprintf("b%d.%d.project", bi, i), convShape(hid, hw, hw, cout, 1, 1, 0, 1)})
			cin = cout
		}
	}
	mobile = append(mobile, benchConv{"last", convShape(cin, hw, hw, 1280, 1, 1, 0, 1)})
	lenet := []benchConv{
		{"conv1", convShape(1, 28, 28, 6, 5, 1, 0, 1)},
		{"conv2", convShape(6, 12, 12, 16, 5, 1, 0, 1)},
	}
	return map[string][]benchConv{"resnet8": resnet, "mobilenetv2": mobile, "lenet": lenet}
}

// benchLayer holds one layer's prepared operands.
type benchLayer struct {
	s     ConvShape
	w     []int8 // the weights cw was made from (M x Cg x KH x KW)
	cw    *ConvWeights
	x     []uint8
	y     []uint8
	bias  []int32
	r     *Requant
	batch BatchArgs
	conv  ConvArgs
}

// newBenchLayer returns layer s for n NHWC images with weights drawn from
// the full range [-127, 127] (real quantized weights: on AVX2 they are not
// VPMADDUBSW-safe, so the benchmark measures the path real models take).
func newBenchLayer(rng *rand.Rand, s ConvShape, n int) *benchLayer {
	return newLayer(rng, s, n, -127, 127)
}

// newLayer is newBenchLayer with weights drawn from [wlo, whi].
func newLayer(rng *rand.Rand, s ConvShape, n, wlo, whi int) *benchLayer {
	cg := s.C / s.Group
	w := make([]int8, s.M*cg*s.KH*s.KW)
	for i := range w {
		w[i] = int8(wlo + rng.IntN(whi-wlo+1))
	}
	cw, err := NewConvWeights(w, nil, s.M, cg, s.KH, s.KW, s.Group)
	if err != nil {
		panic(err)
	}
	reals := make([]float64, s.M)
	for i := range reals {
		reals[i] = 0.001 + rng.Float64()*0.002
	}
	r, err := NewRequant(reals, 3, 0, 255)
	if err != nil {
		panic(err)
	}
	l := &benchLayer{s: s, w: w, cw: cw, x: make([]uint8, n*s.C*s.H*s.W), y: make([]uint8, n*s.M*s.OH*s.OW), bias: make([]int32, s.M), r: r}
	for i := range l.x {
		l.x[i] = uint8(rng.IntN(256))
	}
	l.batch = BatchArgs{N: n, X: l.x, In: NHWC, Out: NHWC, Zero: 7, Bias: l.bias, Req: r,
		WS: make([]int32, cw.BatchScratch(&s, n, 1, NHWC, NHWC)), Threads: 1}
	l.conv = ConvArgs{Zero: 7, Bias: l.bias, Req: r, WS: make([]int32, cw.ConvScratch(&s, 1)), Threads: 1}
	return l
}

// BenchmarkConvBatch measures the GEMM convolutions of each reference
// model at batch 1 and 32 on one thread: "batch" is ConvBatch NHWC in ->
// NHWC out, "perimage" the per-image NCHW driver Conv (the baseline).
// GMAC/s counts int8 multiply-adds per second of the thread's CPU time.
func BenchmarkConvBatch(b *testing.B) {
	tier := benchTier()
	models := benchModels()
	for _, model := range []string{"resnet8", "mobilenetv2", "lenet"} {
		for _, n := range []int{1, 32} {
			rng := rand.New(rand.NewPCG(5, uint64(n)))
			var layers []*benchLayer
			macs := 0.0
			for _, c := range models[model] {
				layers = append(layers, newBenchLayer(rng, c.s, n))
				macs += float64(n * c.s.M * c.s.OH * c.s.OW * c.s.KH * c.s.KW * c.s.C / c.s.Group)
			}
			for _, drv := range []string{"batch", "perimage"} {
				b.Run(fmt.Sprintf("%s/b%d/%s", model, n, drv), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					var cpu time.Duration
					for b.Loop() {
						c0 := threadCPU()
						for _, l := range layers {
							if drv == "batch" {
								if err := ConvBatch(tier, &l.s, l.cw, &l.batch, l.y); err != nil {
									b.Fatal(err)
								}
								continue
							}
							in, out := l.s.C*l.s.H*l.s.W, l.s.M*l.s.OH*l.s.OW
							for img := range n {
								l.conv.X = l.x[img*in : (img+1)*in]
								if err := Conv(tier, &l.s, l.cw, &l.conv, l.y[img*out:(img+1)*out]); err != nil {
									b.Fatal(err)
								}
							}
						}
						cpu += threadCPU() - c0
					}
					if cpu > 0 {
						b.ReportMetric(macs*float64(b.N)/cpu.Seconds()/1e9, "GMAC/s")
					}
				})
			}
		}
	}
}

// BenchmarkConvBatchLayers measures ConvBatch per layer (batch 32, one
// thread, NHWC in and out; "stem-nchw" is the first layer on NCHW input,
// as the models run it after their input QuantizeLinear) in GMAC/s of
// thread CPU time.
func BenchmarkConvBatchLayers(b *testing.B) {
	tier := benchTier()
	for _, model := range []string{"resnet8", "mobilenetv2", "lenet"} {
		convs := benchModels()[model]
		convs = append(convs, benchConv{convs[0].name + "-nchw", convs[0].s})
		for _, c := range convs {
			b.Run(model+"/"+c.name, func(b *testing.B) {
				l := newBenchLayer(rand.New(rand.NewPCG(6, 7)), c.s, 32)
				if strings.HasSuffix(c.name, "-nchw") {
					l.batch.In = NCHW
				}
				macs := float64(32 * c.s.M * c.s.OH * c.s.OW * c.s.KH * c.s.KW * c.s.C / c.s.Group)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var cpu time.Duration
				for b.Loop() {
					c0 := threadCPU()
					if err := ConvBatch(tier, &l.s, l.cw, &l.batch, l.y); err != nil {
						b.Fatal(err)
					}
					cpu += threadCPU() - c0
				}
				if cpu > 0 {
					b.ReportMetric(macs*float64(b.N)/cpu.Seconds()/1e9, "GMAC/s")
				}
			})
		}
	}
}

// BenchmarkConvTaps measures the implicit-GEMM kernels on L1-resident
// data (taps x cg groups of 4 k-values, 8 tiles per call) in GMAC/s of
// thread CPU time.
func BenchmarkConvTaps(b *testing.B) {
	if !implicitTier(kernel.TierVNNI) {
		b.Skip("no AVX-512 VNNI kernels here")
	}
	for _, mr := range []int{8, 12, 16, 24} {
		for _, tc := range [][2]int{{3, 3}, {3, 12}, {9, 4}, {3, 24}} {
			taps, cg := tc[0], tc[1]
			b.Run(fmt.Sprintf("mr%d/taps%d/cg%d", mr, taps, cg), func(b *testing.B) {
				nc, nt := convTapsCols(mr), 8
				lda := 4 * cg
				offs := make([]int, taps)
				for i := range offs {
					offs[i] = i * 64
				}
				a := make([]uint8, (nt*mr-1)*lda+offs[taps-1]+4*cg)
				bw := make([]int8, taps*cg*nr*4)
				c := make([]int32, nt*mr*nc)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var cpu time.Duration
				for b.Loop() {
					c0 := threadCPU()
					for range 100 {
						convTapsAsm(mr, taps, cg, a, lda, offs, bw, c, nc, mr, nc, nt)
					}
					cpu += threadCPU() - c0
				}
				macs := float64(100*nt*mr*nc*taps*cg*4) * float64(b.N)
				b.ReportMetric(macs/cpu.Seconds()/1e9, "GMAC/s")
			})
		}
	}
}

// BenchmarkRequantTab measures ConvBatch's table-driven requantization
// (its float32 path; "checked" also runs the range check of the float64
// path's precondition) against the Requant.RowsBytes kernel on 96 rows of
// 48 channels, in values per nanosecond of thread CPU time.
func BenchmarkRequantTab(b *testing.B) {
	if !requantAsm(kernel.Best()) {
		b.Skip("no AVX-512 requantization here")
	}
	rng := rand.New(rand.NewPCG(8, 9))
	const M, rows = 48, 96
	reals := make([]float64, M)
	for i := range reals {
		reals[i] = 0.0005 + rng.Float64()*0.002
	}
	r, _ := NewRequant(reals, 5, 0, 255)
	off := make([]int32, M)
	acc := make([]int32, M*rows)
	for i := range acc {
		acc[i] = int32(rng.IntN(200001) - 100000)
	}
	tab := make([]int32, reqTabLen(reqLen(M)))
	reqTab(tab, M, off, r)
	dst := make([]uint8, len(acc))
	for _, kind := range []string{"tab", "tab-checked", "rowsbytes"} {
		b.Run(kind, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			for b.Loop() {
				c0 := threadCPU()
				for range 100 {
					switch kind {
					case "rowsbytes":
						r.RowsBytes(kernel.Best(), dst, acc, rows, M, 0, off)
					default:
						requantTabAsm(dst, acc, tab, kind == "tab-checked", r.Zero, r.Lo-r.Zero, r.Hi-r.Zero)
					}
				}
				cpu += threadCPU() - c0
			}
			b.ReportMetric(float64(100*len(acc))*float64(b.N)/float64(cpu.Nanoseconds()), "values/ns")
		})
	}
}
