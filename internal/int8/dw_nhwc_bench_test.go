package int8

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/goslim/goslim/internal/kernel"
)

// mobileNetV2DW lists the 17 depthwise layers of MobileNetV2-0.5 at the
// benchmark input 3x96x96 (bench/models): channels, input size, stride;
// all 3x3 with padding 1.
var mobileNetV2DW = [][3]int{
	{16, 48, 1}, {48, 48, 2}, {96, 24, 1}, {96, 24, 2}, {96, 12, 1}, {96, 12, 1},
	{96, 12, 2}, {192, 6, 1}, {192, 6, 1}, {192, 6, 1}, {192, 6, 1}, {288, 6, 1},
	{288, 6, 1}, {288, 6, 2}, {480, 3, 1}, {480, 3, 1}, {480, 3, 1},
}

// dwBenchLayer is one prepared depthwise layer for the benchmarks.
type dwBenchLayer struct {
	s     ConvShape
	cw    *ConvWeights
	r     *Requant
	bias  []int32
	nchw  []uint8 // n images NCHW
	nhwc  []uint8 // the same images NHWC
	y     []uint8
	ca    ConvArgs
	ba    BatchArgs
	macs  int
	label string
}

func newDWBenchLayer(rng *rand.Rand, c, hw, stride, n int) *dwBenchLayer {
	s := ConvShape{C: c, M: c, Group: c, H: hw, W: hw, KH: 3, KW: 3, SH: stride, SW: stride, DH: 1, DW: 1,
		PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	s.OH, s.OW = (hw-1)/stride+1, (hw-1)/stride+1
	w := make([]int8, c*9)
	for i := range w {
		w[i] = int8(rng.IntN(255) - 127)
	}
	cw, err := NewConvWeights(w, nil, c, 1, 3, 3, c)
	if err != nil {
		panic(err)
	}
	reals := make([]float64, c)
	bias := make([]int32, c)
	for i := range reals {
		reals[i] = 0.0001 + rng.Float64()*0.001
		bias[i] = int32(rng.IntN(2001) - 1000)
	}
	r, err := NewRequant(reals, 3, 0, 255)
	if err != nil {
		panic(err)
	}
	l := &dwBenchLayer{s: s, cw: cw, r: r, bias: bias, macs: n * c * s.OH * s.OW * 9,
		label: fmt.Sprintf("c%d_%dx%d_s%d", c, hw, hw, stride)}
	l.nchw = make([]uint8, n*c*hw*hw)
	for i := range l.nchw {
		l.nchw[i] = uint8(rng.IntN(256))
	}
	l.nhwc = make([]uint8, len(l.nchw))
	ToLayout(l.nhwc, l.nchw, n, c, hw*hw, NCHW, NHWC)
	l.y = make([]uint8, n*c*s.OH*s.OW)
	l.ca = ConvArgs{Zero: 7, Bias: bias, Req: r, WS: make([]int32, cw.ConvScratch(&s, 1)), Threads: 1}
	l.ba = BatchArgs{N: n, X: l.nhwc, In: NHWC, Out: NHWC, Zero: 7, Bias: bias, Req: r,
		WS: make([]int32, dwBatchScratch(&s, n, 1, NHWC, NHWC)), Threads: 1}
	return l
}

// old runs the per-image NCHW path (Conv, convDepthwise) over all images.
func (l *dwBenchLayer) old(tier kernel.Tier) {
	in, out := l.s.C*l.s.H*l.s.W, l.s.M*l.s.OH*l.s.OW
	for img := range l.ba.N {
		l.ca.X = l.nchw[img*in : (img+1)*in]
		if err := Conv(tier, &l.s, l.cw, &l.ca, l.y[img*out:(img+1)*out]); err != nil {
			panic(err)
		}
	}
}

// new runs convDepthwiseBatch NHWC -> NHWC over all images.
func (l *dwBenchLayer) new(tier kernel.Tier) {
	if err := convDepthwiseBatch(tier, &l.s, l.cw, &l.ba, l.y); err != nil {
		panic(err)
	}
}

// BenchmarkDepthwiseNHWC measures MobileNetV2-0.5's 17 depthwise layers
// at batch 32 (one thread) on the per-image NCHW path (Conv) and the
// channels-last batch path (convDepthwiseBatch, NHWC in and out), both in
// every iteration, by thread CPU time: old-ms and new-ms per batch of all
// layers, their ratio (speedup) and the new path's GMAC/s.
func BenchmarkDepthwiseNHWC(b *testing.B) {
	const n = 32
	rng := rand.New(rand.NewPCG(5, 6))
	var layers []*dwBenchLayer
	macs := 0
	for _, d := range mobileNetV2DW {
		l := newDWBenchLayer(rng, d[0], d[1], d[2], n)
		layers = append(layers, l)
		macs += l.macs
	}
	for _, tier := range testTiers() {
		b.Run(fmt.Sprintf("mobilenetv2/%v", tier), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var oldT, newT time.Duration
			for b.Loop() {
				t0 := threadCPU()
				for _, l := range layers {
					l.old(tier)
				}
				t1 := threadCPU()
				for _, l := range layers {
					l.new(tier)
				}
				t2 := threadCPU()
				oldT += t1 - t0
				newT += t2 - t1
			}
			if newT > 0 {
				it := float64(b.N)
				b.ReportMetric(oldT.Seconds()*1e3/it, "old-ms")
				b.ReportMetric(newT.Seconds()*1e3/it, "new-ms")
				b.ReportMetric(oldT.Seconds()/newT.Seconds(), "speedup")
				b.ReportMetric(float64(macs)*it/newT.Seconds()/1e9, "new-GMAC/s")
			}
		})
	}
}

// BenchmarkDepthwiseNHWCLayer measures each layer alone on the best tier
// (old and new path per iteration, thread CPU time).
func BenchmarkDepthwiseNHWCLayer(b *testing.B) {
	const n = 32
	rng := rand.New(rand.NewPCG(5, 6))
	tier := kernel.Best()
	for _, d := range mobileNetV2DW {
		l := newDWBenchLayer(rng, d[0], d[1], d[2], n)
		b.Run(l.label, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var oldT, newT time.Duration
			for b.Loop() {
				t0 := threadCPU()
				l.old(tier)
				t1 := threadCPU()
				l.new(tier)
				t2 := threadCPU()
				oldT += t1 - t0
				newT += t2 - t1
			}
			if newT > 0 {
				it := float64(b.N)
				b.ReportMetric(oldT.Seconds()*1e6/it, "old-us")
				b.ReportMetric(newT.Seconds()*1e6/it, "new-us")
				b.ReportMetric(oldT.Seconds()/newT.Seconds(), "speedup")
			}
		})
	}
}

// maxPool2x2NCHW is the NCHW 2x2 stride-2 max pool internal/ops ran
// before 7ca5b01 (poolMax2x2, one byte at a time: pairwise row maxima over
// whole planes), the old path of BenchmarkPoolNHWC; the op now handles 8
// bytes per word, so the ratio overstates the gain over today's NCHW op.
func maxPool2x2NCHW(x, y []byte, planes, h, w int) {
	oh, ow := h/2, w/2
	for p := range planes {
		xp, yp := x[p*h*w:(p+1)*h*w], y[p*oh*ow:(p+1)*oh*ow]
		for r := range oh {
			r0, r1 := xp[2*r*w:2*r*w+2*ow], xp[(2*r+1)*w:(2*r+1)*w+2*ow]
			yr := yp[r*ow : (r+1)*ow]
			for i := range yr {
				yr[i] = max(r0[2*i], r0[2*i+1], r1[2*i], r1[2*i+1])
			}
		}
	}
}

// globalAvgNCHW is the NCHW arithmetic of the QLinearGlobalAveragePool op
// (per plane: sum, correction, Requant.One), the old path of
// BenchmarkPoolNHWC.
func globalAvgNCHW(x, y []byte, planes, size int, zx int32, rq *Requant) {
	corr := int32(size) * zx
	for p := range planes {
		var s int32
		for _, v := range x[p*size : (p+1)*size] {
			s += int32(v)
		}
		y[p] = byte(rq.One(s-corr, 0))
	}
}

// BenchmarkPoolNHWC measures the channels-last pools at batch 32 on the
// best tier against the NCHW loops the ops ran before (both in every
// iteration, thread CPU time): LeNet-5's two 2x2 max pools and the global
// average pools of MobileNetV2-0.5 (1280 x 3x3) and ResNet-8 (64 x 8x8).
func BenchmarkPoolNHWC(b *testing.B) {
	const n = 32
	tier := kernel.Best()
	rng := rand.New(rand.NewPCG(7, 8))
	type job struct {
		name     string
		old, new func()
	}
	var jobs []job
	for _, d := range [][3]int{{6, 24, 24}, {16, 8, 8}} {
		c, h, w := d[0], d[1], d[2]
		x := poolRandBytes(rng, n*c*h*w, false)
		y := make([]byte, n*c*h*w/4)
		s := PoolShape{N: n, C: c, H: h, W: w, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1, OH: h / 2, OW: w / 2}
		jobs = append(jobs, job{fmt.Sprintf("maxpool2x2_c%d_%dx%d", c, h, w),
			func() { maxPool2x2NCHW(x, y, n*c, h, w) },
			func() {
				if err := MaxPoolNHWC(tier, &s, x, y, false, 0, n*s.OH); err != nil {
					panic(err)
				}
			}})
	}
	for _, d := range [][2]int{{1280, 9}, {64, 64}} {
		c, hw := d[0], d[1]
		x := poolRandBytes(rng, n*c*hw, false)
		y := make([]byte, n*c)
		rq, err := NewRequant([]float64{0.7 / float64(hw)}, 5, 0, 255)
		if err != nil {
			panic(err)
		}
		sums := make([]int32, c)
		jobs = append(jobs, job{fmt.Sprintf("globalavg_c%d_%d", c, hw),
			func() { globalAvgNCHW(x, y, n*c, hw, 3, rq) },
			func() {
				if err := GlobalAvgPoolNHWC(tier, x, y, n, hw, c, false, 3, rq, sums); err != nil {
					panic(err)
				}
			}})
	}
	for _, j := range jobs {
		b.Run(j.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var oldT, newT time.Duration
			for b.Loop() {
				t0 := threadCPU()
				j.old()
				t1 := threadCPU()
				j.new()
				t2 := threadCPU()
				oldT += t1 - t0
				newT += t2 - t1
			}
			if newT > 0 {
				it := float64(b.N)
				b.ReportMetric(oldT.Seconds()*1e6/it, "old-us")
				b.ReportMetric(newT.Seconds()*1e6/it, "new-us")
				b.ReportMetric(oldT.Seconds()/newT.Seconds(), "speedup")
			}
		})
	}
}
