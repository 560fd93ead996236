package int8

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// randDWShape returns a random depthwise shape: channel counts around the
// 16-channel blocks, kernels from 1x1 to 9x9 (more taps than the stack
// lists hold), strides, dilations and paddings up to the kernel size.
func randDWShape(rng *rand.Rand, trial int) ConvShape {
	c := []int{1, 3, 15, 16, 17, 32, 33, 48, 130}[trial%9]
	k := []int{3, 3, 1, 2, 5, 3, 9}[trial%7]
	s := ConvShape{C: c, M: c, Group: c, H: 1 + rng.IntN(12), W: 1 + rng.IntN(14), KH: k, KW: k,
		SH: 1 + rng.IntN(2), SW: 1 + rng.IntN(3), DH: 1 + rng.IntN(2), DW: 1 + rng.IntN(2)}
	if trial%5 == 3 {
		s.KW = 1 + rng.IntN(4)
	}
	s.PadT, s.PadL, s.PadB, s.PadR = rng.IntN(s.KH+1), rng.IntN(s.KW+1), rng.IntN(s.KH+1), rng.IntN(s.KW+1)
	for s.H+s.PadT+s.PadB < (s.KH-1)*s.DH+1 {
		s.PadB++
	}
	for s.W+s.PadL+s.PadR < (s.KW-1)*s.DW+1 {
		s.PadR++
	}
	s.OH = (s.H+s.PadT+s.PadB-((s.KH-1)*s.DH+1))/s.SH + 1
	s.OW = (s.W+s.PadL+s.PadR-((s.KW-1)*s.DW+1))/s.SW + 1
	return s
}

// TestConvDepthwiseBatchMatchesRef checks convDepthwiseBatch (uint8, int8
// and int32 outputs, unsigned and signed inputs, every layout pair, 1-3
// chunked workers, per-tensor and per-channel requantization, weight zero
// points) against ConvRef per image, with guard bands, on every tier.
func TestConvDepthwiseBatchMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	trials := 120
	if testing.Short() {
		trials = 40
	}
	fast, vnni := 0, 0
	for _, tier := range testTiers() {
		for trial := range trials {
			s := randDWShape(rng, trial)
			n := 1 + rng.IntN(3)
			signed := trial%3 == 1
			taps := s.KH * s.KW
			w := make([]int8, s.M*taps)
			for i := range w {
				w[i] = int8(rng.IntN(256) - 128)
			}
			inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
			x := make([]uint8, n*inImg)
			for i := range x {
				x[i] = uint8(rng.IntN(256))
				if trial%11 == 4 {
					x[i] = []uint8{0, 127, 128, 255}[rng.IntN(4)]
				}
			}
			var zb []int32
			switch trial % 4 {
			case 2:
				zb = make([]int32, s.M)
				for i := range zb {
					zb[i] = int32(rng.IntN(255) - 127)
				}
			case 3:
				zb = []int32{int32(rng.IntN(7) - 3)}
			}
			za := int32(rng.IntN(256))
			if signed {
				za -= 128
			}
			var bias []int32
			if trial%6 != 5 {
				bias = make([]int32, s.M)
				for i := range bias {
					bias[i] = int32(rng.IntN(200001) - 100000)
				}
			}
			nr := s.M
			if trial%2 == 1 {
				nr = 1
			}
			// Multipliers: small (the kernel's int32 sums and RowsBytes),
			// typical, large (saturating), and exact powers of two (ties).
			reals := make([]float64, nr)
			for i := range reals {
				switch trial % 5 {
				case 0:
					// Around the kernel's limit (shift 44): both sides.
					reals[i] = math.Ldexp(1+rng.Float64(), -14-rng.IntN(2))
				case 1, 3:
					reals[i] = 0.0002 + rng.Float64()*0.01
				case 2:
					reals[i] = math.Ldexp(1, -4-rng.IntN(9))
				default:
					reals[i] = 0.05 + rng.Float64()*3
					if rng.IntN(3) == 0 {
						reals[i] = 100 + rng.Float64()*1000
					}
				}
			}
			lo, hi, zy := int32(0), int32(255), int32(rng.IntN(256))
			if trial%7 == 2 {
				zy = 0
				lo = 0 // fused Relu-style clamp
				hi = 200
			}
			if trial%9 == 4 {
				// Bounds beyond 8 bits (the bytes wrap, in ConvRef too):
				// the kernel leaves these to RowsBytes.
				lo, hi = -300, 300
			}
			r, err := NewRequant(reals, zy, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			if r.Hi-r.Zero <= 255 && r.Zero-r.Lo <= 255 {
				fast++ // the kernel may requantize (dwFastReq)
			}
			cw, err := NewConvWeights(w, zb, s.M, 1, s.KH, s.KW, s.Group)
			if err != nil {
				t.Fatal(err)
			}
			if dwVNNIKernel(tier) && s.KH <= 3 && dwFitsI8(cw.dw) && r.Hi-r.Zero <= 255 && r.Zero-r.Lo <= 255 {
				vnni++ // dwBuild3 + dwTaps where dwFastReq holds
			}
			want := make([]uint8, n*outImg)
			want32 := make([]int32, n*outImg)
			for img := range n {
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, r, want[img*outImg:(img+1)*outImg])
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, nil, want32[img*outImg:(img+1)*outImg])
			}
			for _, lay := range [][2]Layout{{NHWC, NHWC}, {NCHW, NCHW}, {NCHW, NHWC}, {NHWC, NCHW}} {
				xin := make([]uint8, len(x))
				ToLayout(xin, x, n, s.C, s.H*s.W, NCHW, lay[0])
				wantL := make([]uint8, len(want))
				ToLayout(wantL, want, n, s.M, s.OH*s.OW, NCHW, lay[1])
				threads := 1 + trial%3
				ws := make([]int32, dwBatchScratch(&s, n, threads, lay[0], lay[1])+guard)
				for i := range ws {
					ws[i] = sentinel
				}
				a := &BatchArgs{N: n, X: xin, In: lay[0], Out: lay[1], Signed: signed, Zero: za, Bias: bias, Req: r,
					WS: ws[:len(ws)-guard], Threads: threads, Par: serialPar{threads}}
				got := make([]uint8, len(want)+guard)
				for i := range got {
					got[i] = 0xa5
				}
				if err := convDepthwiseBatch(tier, &s, cw, a, got[:len(want)]); err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
				for i := range guard {
					if got[len(want)+i] != 0xa5 || ws[len(ws)-guard+i] != sentinel {
						t.Fatalf("%v %+v %v: guard overwritten", tier, s, lay)
					}
				}
				for i := range wantL {
					if got[i] != wantL[i] {
						t.Fatalf("%v trial %d %v n=%d threads %d signed %v %+v: y[%d] = %d, want %d", tier, trial, lay, n, threads, signed, s, i, got[i], wantL[i])
					}
				}
				// int8 outputs: the same bytes with a signed clamp range.
				if trial%4 == 1 {
					r8, err := NewRequant(reals, zy-128, lo-128, hi-128)
					if err != nil {
						t.Fatal(err)
					}
					a.Req = r8
					got8 := make([]int8, len(want))
					if err := convDepthwiseBatch(tier, &s, cw, a, got8); err != nil {
						t.Fatal(err)
					}
					for i := range wantL {
						if uint8(got8[i])^0x80 != wantL[i] {
							t.Fatalf("%v trial %d %v int8: y[%d] = %d, want %d", tier, trial, lay, i, got8[i], int32(wantL[i])-128)
						}
					}
				}
				a.Req = nil
				got32 := make([]int32, len(want32))
				if err := convDepthwiseBatch(tier, &s, cw, a, got32); err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
				for img := range n {
					for m := range s.M {
						for p := range s.OH * s.OW {
							wv := want32[img*outImg+m*s.OH*s.OW+p]
							gi := img*outImg + m*s.OH*s.OW + p
							if lay[1] == NHWC {
								gi = img*outImg + p*s.M + m
							}
							if got32[gi] != wv {
								t.Fatalf("%v trial %d %v int32 %+v: image %d channel %d pos %d = %d, want %d", tier, trial, lay, s, img, m, p, got32[gi], wv)
							}
						}
					}
				}
			}
		}
	}
	if fast == 0 || fast == trials*len(testTiers()) {
		t.Fatalf("%d of %d trials take the kernel's requantization: both paths must be tested", fast, trials*len(testTiers()))
	}
	t.Logf("%d trials for the VPDPBUSD kernels", vnni)
	if dwVNNIKernel(kernel.Best()) && vnni < 10 {
		t.Fatalf("%d trials for the VPDPBUSD kernels", vnni)
	}
}

// TestConvDepthwiseBatchErrors checks the argument checks.
func TestConvDepthwiseBatchErrors(t *testing.T) {
	s := ConvShape{C: 4, H: 3, W: 3, M: 4, Group: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, OH: 3, OW: 3}
	cw, err := NewConvWeights(make([]int8, 36), nil, 4, 1, 3, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRequant([]float64{0.01}, 0, 0, 255)
	ok := BatchArgs{N: 2, X: make([]uint8, 72), In: NHWC, Out: NHWC, Req: r, WS: make([]int32, dwBatchScratch(&s, 2, 1, NHWC, NHWC))}
	tier := testTiers()[len(testTiers())-1]
	if err := convDepthwiseBatch(tier, &s, cw, &ok, make([]uint8, 72)); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	short := ok
	short.X = short.X[:71]
	if convDepthwiseBatch(tier, &s, cw, &short, make([]uint8, 72)) == nil {
		t.Error("short input accepted")
	}
	if convDepthwiseBatch(tier, &s, cw, &ok, make([]uint8, 71)) == nil {
		t.Error("short output accepted")
	}
	noWS := ok
	noWS.WS = noWS.WS[:len(noWS.WS)-1]
	if convDepthwiseBatch(tier, &s, cw, &noWS, make([]uint8, 72)) == nil {
		t.Error("short workspace accepted")
	}
	if convDepthwiseBatch(tier, &s, cw, &ok, make([]int32, 72)) == nil {
		t.Error("int32 output with requantization accepted")
	}
	full, _ := NewConvWeights(make([]int8, 4*4*9), nil, 4, 4, 3, 3, 1)
	s1 := s
	s1.Group = 1
	if convDepthwiseBatch(tier, &s1, full, &ok, make([]uint8, 72)) == nil {
		t.Error("non-depthwise weights accepted")
	}
}

// TestDepthwiseRequantExtremes drives the kernel's requantization with
// sums equal to the bias (1x1 depthwise, x at the zero point): full-range
// int32 sums, multipliers from 2^-40 to 2^20 (ties with powers of two),
// and compares with Requant.One on every tier; trials with multipliers
// below 1 take the kernel's requantization, the others (mostly) RowsBytes.
func TestDepthwiseRequantExtremes(t *testing.T) {
	for _, c := range []int{37, 48} { // 48: also the AVX2 kernel
		testDepthwiseRequantExtremes(t, c)
	}
}

func testDepthwiseRequantExtremes(t *testing.T, c int) {
	rng := rand.New(rand.NewPCG(63, 64))
	const px = 9
	s := ConvShape{C: c, M: c, Group: c, H: 3, W: 3, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 3, OW: 3}
	w := make([]int8, c)
	for i := range w {
		w[i] = int8(rng.IntN(256) - 128)
	}
	cw, err := NewConvWeights(w, nil, c, 1, 1, 1, c)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]uint8, px*c)
	for i := range x {
		x[i] = 77
	}
	for _, tier := range testTiers() {
		for trial := range 200 {
			reals := make([]float64, c)
			bias := make([]int32, c)
			for i := range reals {
				switch trial % 4 {
				case 0:
					reals[i] = math.Ldexp(1, -1-rng.IntN(40))
					bias[i] = int32(rng.IntN(1<<16)) << rng.IntN(16) // many exact ties
				case 1:
					reals[i] = math.Ldexp(0.5+rng.Float64()/2, -rng.IntN(41)) // < 1: the kernel's path
					bias[i] = int32(rng.Uint32())
				case 2:
					reals[i] = math.Ldexp(0.5+rng.Float64()/2, 20-rng.IntN(21)) // >= 1/2, large sums
					bias[i] = int32(rng.Uint32())
				default:
					reals[i] = math.Ldexp(0.5+rng.Float64()/2, -rng.IntN(16))
					bias[i] = int32(rng.IntN(1<<20) - 1<<19)
				}
				if rng.IntN(2) == 0 {
					bias[i] = -bias[i]
				}
			}
			lo, hi, zy := int32(0), int32(255), int32(rng.IntN(256))
			if trial%3 == 1 {
				lo, hi, zy = -128, 127, zy-128
			}
			r, err := NewRequant(reals, zy, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			a := &BatchArgs{N: 1, X: x, In: NHWC, Out: NHWC, Zero: 77, Bias: bias, Req: r,
				WS: make([]int32, dwBatchScratch(&s, 1, 1, NHWC, NHWC))}
			got := make([]uint8, px*c)
			if err := convDepthwiseBatch(tier, &s, cw, a, got); err != nil {
				t.Fatal(err)
			}
			for p := range px {
				for ch := range c {
					if want := uint8(r.One(bias[ch], ch)); got[p*c+ch] != want {
						t.Fatalf("%v trial %d: channel %d sum %d real %g: %d, want %d", tier, trial, ch, bias[ch], reals[ch], got[p*c+ch], want)
					}
				}
			}
		}
	}
}

// TestConvDepthwiseBatchConcurrent runs convDepthwiseBatch on real
// goroutines (kernel.Ctx without a pool) and compares with one thread.
func TestConvDepthwiseBatchConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(65, 66))
	s := ConvShape{C: 40, M: 40, Group: 40, H: 13, W: 11, KH: 3, KW: 3, SH: 2, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	s.OH, s.OW = (13+2-3)/2+1, 11
	w := make([]int8, 40*9)
	for i := range w {
		w[i] = int8(rng.IntN(256) - 128)
	}
	cw, err := NewConvWeights(w, nil, 40, 1, 3, 3, 40)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRequant([]float64{0.003}, 9, 0, 255)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	x := poolRandBytes(rng, n*40*13*11, false)
	out := s.M * s.OH * s.OW
	for _, tier := range testTiers() {
		for _, lay := range [][2]Layout{{NHWC, NHWC}, {NCHW, NHWC}, {NHWC, NCHW}} {
			want := make([]uint8, n*out)
			a := &BatchArgs{N: n, X: x, In: lay[0], Out: lay[1], Zero: 4, Req: r, WS: make([]int32, dwBatchScratch(&s, n, 1, lay[0], lay[1]))}
			if err := convDepthwiseBatch(tier, &s, cw, a, want); err != nil {
				t.Fatal(err)
			}
			got := make([]uint8, n*out)
			a.Threads, a.Par = 3, &kernel.Ctx{Threads: 3}
			a.WS = make([]int32, dwBatchScratch(&s, n, 3, lay[0], lay[1]))
			if err := convDepthwiseBatch(tier, &s, cw, a, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v %v: 3 threads y[%d] = %d, one thread %d", tier, lay, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDWVNNIKernelsMatchTwin checks dwBuild3 (VBMI) and dwTaps (VNNI)
// against their Go twins: element counts around the 64-element steps,
// channel counts around the 16-channel blocks, strides, tap counts and
// dilations, all four weight bytes (the twin multiplies the fourth byte
// too), random multipliers below 1, clamps, and guard bands.
func TestDWVNNIKernelsMatchTwin(t *testing.T) {
	if !dwVNNIKernel(kernel.Best()) {
		t.Skip("no AVX-512 VBMI + VNNI")
	}
	rng := rand.New(rand.NewPCG(67, 68))
	for trial := range 300 {
		n := []int{1, 15, 16, 17, 63, 64, 65, 127, 128, 200, 1000}[trial%11]
		a, b, c := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range n {
			a[i], b[i], c[i] = byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
		}
		flip := uint8(0)
		if trial%2 == 1 {
			flip = 0x80
		}
		got, want := make([]int32, n+guard), make([]int32, n+guard)
		for i := range got {
			got[i], want[i] = sentinel, sentinel
		}
		dwBuild3(got, a, b, c, n, flip)
		dwBuild3Go(want, a, b, c, n, flip)
		for i := range got {
			if g, w := uint32(got[i]), uint32(want[i]); i < n && g&0xffffff != w&0xffffff || i >= n && g != w {
				t.Fatalf("build trial %d n=%d: dst[%d] = %#x, want %#x", trial, n, i, g, w)
			}
		}
	}
	for trial := range 300 {
		ch := []int{1, 5, 15, 16, 17, 31, 32, 33, 48, 70}[trial%10]
		cp := (ch + 15) &^ 15
		n := 1 + rng.IntN(11)
		kw := 1 + rng.IntN(4)
		step := ch * (1 + rng.IntN(2))
		dstep := ch * (1 + rng.IntN(2))
		tb := make([]int32, (n-1)*step+(kw-1)*dstep+cp)
		for i := range tb {
			tb[i] = int32(rng.Uint32())
		}
		w := make([]int32, cp*kw)
		for i := range w {
			w[i] = int32(rng.Uint32())
		}
		scale, add := make([]float64, cp), make([]int32, cp)
		for i := range cp {
			scale[i] = math.Ldexp(0.5+rng.Float64()/2, -1-rng.IntN(14))
			add[i] = int32(rng.IntN(1<<20) - 1<<19)
			if trial%5 == 0 {
				scale[i] = math.Ldexp(1, -1-rng.IntN(12)) // ties
			}
		}
		// Full uint8 and int8 ranges (the saturating modes for even zero
		// points) and a narrower clamp.
		zero := int64(rng.IntN(256))
		lo, hi := -zero, 255-zero
		switch trial % 3 {
		case 0:
			lo, hi = 10-zero, 200-zero
		case 1:
			zero -= 128
			lo, hi = -128-zero, 127-zero
		}
		rq := dwReq{scale: &scale[0], add: &add[0], zero: zero, lo: lo, hi: hi}
		got, want := make([]byte, n*ch+guard), make([]byte, n*ch+guard)
		for i := range got {
			got[i], want[i] = 0xa5, 0xa5
		}
		dwTaps(got, tb, w, ch, n, step, kw, dstep, &rq)
		dwTapsGo(want, tb, w, ch, n, step, kw, dstep, &rq)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("taps trial %d c=%d n=%d kw=%d step %d dstep %d: dst[%d] = %d, want %d", trial, ch, n, kw, step, dstep, i, got[i], want[i])
			}
		}
	}
}

// TestConvDepthwiseBatchPrepCache reuses one BatchArgs over calls that
// change one parameter at a time (bias values in place, multipliers in
// place, clamp, zero points, signedness, weights, tier, shape) and
// compares each result with a fresh BatchArgs; repeated calls with the
// same parameters allocate nothing.
func TestConvDepthwiseBatchPrepCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(69, 70))
	s := ConvShape{C: 40, M: 40, Group: 40, H: 7, W: 9, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, OH: 7, OW: 9}
	s2 := s
	s2.SH, s2.SW, s2.OH, s2.OW = 2, 2, 4, 5
	newW := func() *ConvWeights {
		w := make([]int8, 40*9)
		for i := range w {
			w[i] = int8(rng.IntN(256) - 128)
		}
		cw, err := NewConvWeights(w, nil, 40, 1, 3, 3, 40)
		if err != nil {
			t.Fatal(err)
		}
		return cw
	}
	cw1, cw2 := newW(), newW()
	x := make([]uint8, 2*40*7*9)
	for i := range x {
		x[i] = uint8(rng.IntN(256))
	}
	reals := make([]float64, 40)
	for i := range reals {
		reals[i] = 0.0005 + rng.Float64()*0.002
	}
	r, err := NewRequant(reals, 9, 0, 255)
	if err != nil {
		t.Fatal(err)
	}
	bias := make([]int32, 40)
	for i := range bias {
		bias[i] = int32(rng.IntN(20001) - 10000)
	}
	ws := make([]int32, max(dwBatchScratch(&s, 2, 1, NHWC, NHWC), dwBatchScratch(&s2, 2, 1, NHWC, NHWC)))
	a := &BatchArgs{N: 2, X: x, In: NHWC, Out: NHWC, Zero: 3, Bias: bias, Req: r, WS: ws}
	steps := []func() (kernel.Tier, *ConvShape, *ConvWeights){
		func() (kernel.Tier, *ConvShape, *ConvWeights) { return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { bias[5] += 1000; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { r.Mult[7] /= 2; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { r.Hi = 200; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { r.Zero = 4; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { a.Zero = 11; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { a.Signed = true; return kernel.Best(), &s, cw1 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { return kernel.Best(), &s, cw2 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { a.Bias = nil; return kernel.Best(), &s, cw2 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { return kernel.TierAVX512, &s, cw2 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { return kernel.Best(), &s2, cw2 },
		func() (kernel.Tier, *ConvShape, *ConvWeights) { a.Bias = bias; return kernel.Best(), &s2, cw2 },
	}
	for i, step := range steps {
		tier, sh, cw := step()
		if !tier.Available() {
			continue
		}
		n := 2 * 40 * sh.OH * sh.OW
		got, want := make([]uint8, n), make([]uint8, n)
		if err := convDepthwiseBatch(tier, sh, cw, a, got); err != nil {
			t.Fatal(err)
		}
		fresh := *a
		fresh.dwU8 = dwTask[uint8]{}
		fresh.WS = make([]int32, len(ws))
		if err := convDepthwiseBatch(tier, sh, cw, &fresh, want); err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("step %d: y[%d] = %d, want %d (fresh BatchArgs)", i, j, got[j], want[j])
			}
		}
		if allocs := testing.AllocsPerRun(3, func() {
			if err := convDepthwiseBatch(tier, sh, cw, a, got); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Fatalf("step %d: %v allocations per call", i, allocs)
		}
	}
}
