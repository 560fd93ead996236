package int8

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// randPoolShape returns a random pooling shape: channel counts around the
// 16- and 64-channel steps, windows 1x1..4x4 (and 9x9: more taps than the
// stack list), strides, dilations (when dil), paddings and floor or ceil
// output sizes.
func randPoolShape(rng *rand.Rand, trial int, dil bool) PoolShape {
	c := []int{1, 3, 6, 15, 16, 17, 63, 64, 65, 130}[trial%10]
	s := PoolShape{N: 1 + rng.IntN(3), C: c, H: 1 + rng.IntN(10), W: 1 + rng.IntN(12),
		KH: 1 + rng.IntN(4), KW: 1 + rng.IntN(4), SH: 1 + rng.IntN(3), SW: 1 + rng.IntN(3), DH: 1, DW: 1}
	if trial%13 == 5 {
		s.KH, s.KW = 9, 9
	}
	if dil {
		s.DH, s.DW = 1+rng.IntN(2), 1+rng.IntN(2)
	}
	s.PadT, s.PadL, s.PadB, s.PadR = rng.IntN(s.KH), rng.IntN(s.KW), rng.IntN(s.KH), rng.IntN(s.KW)
	for s.H+s.PadT+s.PadB < (s.KH-1)*s.DH+1 {
		s.PadB++
	}
	for s.W+s.PadL+s.PadR < (s.KW-1)*s.DW+1 {
		s.PadR++
	}
	ext := func(in, k, st, d, pb, pe int, ceil bool) int {
		span := in + pb + pe - ((k-1)*d + 1)
		if ceil {
			return (span+st-1)/st + 1
		}
		return span/st + 1
	}
	ceil := trial%3 == 2
	s.OH = ext(s.H, s.KH, s.SH, s.DH, s.PadT, s.PadB, ceil)
	s.OW = ext(s.W, s.KW, s.SW, s.DW, s.PadL, s.PadR, ceil)
	// ONNX's ceil mode drops a last window that would start in the end
	// padding (internal/ops nnWinAttrs.resolve).
	if ceil && (s.OH-1)*s.SH >= s.H+s.PadT {
		s.OH--
	}
	if ceil && (s.OW-1)*s.SW >= s.W+s.PadL {
		s.OW--
	}
	return s
}

// poolRandBytes returns n random bytes, sometimes only extremes.
func poolRandBytes(rng *rand.Rand, n int, extremes bool) []byte {
	x := make([]byte, n)
	for i := range x {
		x[i] = byte(rng.IntN(256))
		if extremes {
			x[i] = []byte{0, 1, 127, 128, 255}[rng.IntN(5)]
		}
	}
	return x
}

// guarded returns a buffer of n bytes followed by a guard band, filled
// with 0xa5, and a check that the band is intact.
func guarded(n int) ([]byte, func() bool) {
	b := make([]byte, n+guard)
	for i := range b {
		b[i] = 0xa5
	}
	return b[:n], func() bool {
		for _, v := range b[n:] {
			if v != 0xa5 {
				return false
			}
		}
		return true
	}
}

// maxPoolRef is the plain reference of MaxPoolNHWC.
func maxPoolRef(s *PoolShape, x, y []byte, signed bool) {
	for n := range s.N {
		for oh := range s.OH {
			for ow := range s.OW {
				for c := range s.C {
					best, any := 0, false
					for kh := range s.KH {
						for kw := range s.KW {
							ih, iw := oh*s.SH-s.PadT+kh*s.DH, ow*s.SW-s.PadL+kw*s.DW
							if ih < 0 || ih >= s.H || iw < 0 || iw >= s.W {
								continue
							}
							v := int(x[((n*s.H+ih)*s.W+iw)*s.C+c])
							if signed {
								v = int(int8(v))
							}
							if !any || v > best {
								best, any = v, true
							}
						}
					}
					if !any {
						best = 0
						if signed {
							best = -128
						}
					}
					y[((n*s.OH+oh)*s.OW+ow)*s.C+c] = byte(best)
				}
			}
		}
	}
}

// TestMaxPoolNHWC checks MaxPoolNHWC against maxPoolRef on every tier,
// uint8 and int8, whole batches and split row ranges, with guard bands.
func TestMaxPoolNHWC(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	for _, tier := range testTiers() {
		for trial := range 150 {
			s := randPoolShape(rng, trial, true)
			signed := trial%2 == 1
			x := poolRandBytes(rng, s.N*s.H*s.W*s.C, trial%7 == 3)
			want := make([]byte, s.N*s.OH*s.OW*s.C)
			maxPoolRef(&s, x, want, signed)
			got, ok := guarded(len(want))
			rows := s.N * s.OH
			mid := rng.IntN(rows + 1)
			for _, r := range [][2]int{{0, mid}, {mid, rows}} {
				if err := MaxPoolNHWC(tier, &s, x, got, signed, r[0], r[1]); err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
			}
			if !ok() {
				t.Fatalf("%v %+v: guard overwritten", tier, s)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v trial %d signed %v %+v: y[%d] = %d, want %d", tier, trial, signed, s, i, got[i], want[i])
				}
			}
		}
	}
}

// qpoolNCHW is the NCHW arithmetic of internal/ops qpoolKernel (average
// pool, 2-D view) transcribed as the reference: x and y are NCHW.
func qpoolNCHW(s *PoolShape, x, y []byte, signed bool, zx int32, includePad bool, rq *Requant) {
	val := func(v byte) int32 {
		if signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	H, W, KH, KW, SH, SW, PT, PL, PB, PR, OH, OW := s.H, s.W, s.KH, s.KW, s.SH, s.SW, s.PadT, s.PadL, s.PadB, s.PadR, s.OH, s.OW
	for pl := range s.N * s.C {
		src := x[pl*H*W : (pl+1)*H*W]
		dst := y[pl*OH*OW : (pl+1)*OH*OW]
		for oh := range OH {
			h0 := oh*SH - PT
			h1 := min(h0+KH, H)
			hc := min(h0+KH, H+PB) - max(h0, -PT)
			h0 = max(h0, 0)
			for ow := range OW {
				w0 := ow*SW - PL
				w1 := min(w0+KW, W)
				wc := min(w0+KW, W+PR) - max(w0, -PL)
				w0 = max(w0, 0)
				var sum int32
				for ih := h0; ih < h1; ih++ {
					for _, v := range src[ih*W+w0 : ih*W+w1] {
						sum += val(v)
					}
				}
				cnt := (h1 - h0) * (w1 - w0)
				sum -= int32(cnt) * zx
				if includePad {
					cnt = hc * wc
				}
				if cnt <= 0 {
					dst[oh*OW+ow] = uint8(min(max(rq.Zero, rq.Lo), rq.Hi))
					continue
				}
				dst[oh*OW+ow] = uint8(rq.One(sum, cnt))
			}
		}
	}
}

// poolRequant returns an average pool's requantization as the op builds
// it: multiplier k is sx / (sy*k).
func poolRequant(t *testing.T, rng *rand.Rand, taps int, signed bool) (*Requant, int32) {
	sx, sy := 0.01+rng.Float64()*0.1, 0.01+rng.Float64()*0.1
	reals := make([]float64, taps+1)
	for k := 1; k <= taps; k++ {
		reals[k] = sx / (sy * float64(k))
	}
	lo, hi, zy, zx := int32(0), int32(255), int32(rng.IntN(256)), int32(rng.IntN(256))
	if signed {
		lo, hi, zy, zx = -128, 127, zy-128, zx-128
	}
	if rng.IntN(4) == 0 {
		lo = zy // fused Relu
	}
	rq, err := NewRequant(reals, zy, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	return rq, zx
}

// TestAvgPoolNHWC checks AvgPoolNHWC against the op's NCHW arithmetic
// (qpoolNCHW) on every tier, uint8 and int8, count_include_pad 0 and 1,
// floor and ceil output sizes, split row ranges, with guard bands.
func TestAvgPoolNHWC(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	for _, tier := range testTiers() {
		for trial := range 120 {
			s := randPoolShape(rng, trial, false)
			signed := trial%2 == 1
			includePad := trial%4 >= 2
			rq, zx := poolRequant(t, rng, s.KH*s.KW, signed)
			x := poolRandBytes(rng, s.N*s.H*s.W*s.C, trial%7 == 3)
			xc := make([]byte, len(x))
			ToLayout(xc, x, s.N, s.C, s.H*s.W, NHWC, NCHW)
			wantC := make([]byte, s.N*s.OH*s.OW*s.C)
			qpoolNCHW(&s, xc, wantC, signed, zx, includePad, rq)
			want := make([]byte, len(wantC))
			ToLayout(want, wantC, s.N, s.C, s.OH*s.OW, NCHW, NHWC)
			got, ok := guarded(len(want))
			sums := make([]int32, s.C+guard)
			rows := s.N * s.OH
			mid := rng.IntN(rows + 1)
			for _, r := range [][2]int{{0, mid}, {mid, rows}} {
				if err := AvgPoolNHWC(tier, &s, x, got, signed, zx, includePad, rq, r[0], r[1], sums[:s.C]); err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
			}
			for _, v := range sums[s.C:] {
				if v != 0 {
					t.Fatalf("%v %+v: workspace guard overwritten", tier, s)
				}
			}
			if !ok() {
				t.Fatalf("%v %+v: guard overwritten", tier, s)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v trial %d signed %v includePad %v %+v: y[%d] = %d, want %d", tier, trial, signed, includePad, s, i, got[i], want[i])
				}
			}
		}
	}
}

// TestGlobalAvgPoolNHWC checks GlobalAvgPoolNHWC against the op's NCHW
// arithmetic on every tier, uint8 and int8, with guard bands.
func TestGlobalAvgPoolNHWC(t *testing.T) {
	rng := rand.New(rand.NewPCG(85, 86))
	for _, tier := range testTiers() {
		for trial := range 100 {
			n, hw := 1+rng.IntN(3), []int{1, 2, 7, 9, 49, 300}[trial%6]
			c := []int{1, 3, 15, 16, 17, 64, 130, 1280}[trial%8]
			signed := trial%2 == 1
			x := poolRandBytes(rng, n*hw*c, trial%5 == 3)
			sx, sy := 0.01+rng.Float64()*0.1, 0.01+rng.Float64()*0.1
			zy, zx, lo, hi := int32(rng.IntN(256)), int32(rng.IntN(256)), int32(0), int32(255)
			if signed {
				zy, zx, lo, hi = zy-128, zx-128, -128, 127
			}
			rq, err := NewRequant([]float64{sx / (sy * float64(hw))}, zy, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, n*c)
			corr := int32(hw) * zx
			for img := range n {
				for ch := range c {
					var sum int32
					for p := range hw {
						v := int32(x[(img*hw+p)*c+ch])
						if signed {
							v = int32(int8(v))
						}
						sum += v
					}
					want[img*c+ch] = byte(rq.One(sum-corr, 0))
				}
			}
			got, ok := guarded(len(want))
			if err := GlobalAvgPoolNHWC(tier, x, got, n, hw, c, signed, zx, rq, make([]int32, c)); err != nil {
				t.Fatal(err)
			}
			if !ok() {
				t.Fatalf("%v n=%d hw=%d c=%d: guard overwritten", tier, n, hw, c)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v trial %d n=%d hw=%d c=%d signed %v: y[%d] = %d, want %d", tier, trial, n, hw, c, signed, i, got[i], want[i])
				}
			}
		}
	}
}

// TestPoolNHWCErrors checks the argument checks.
func TestPoolNHWCErrors(t *testing.T) {
	tier := kernel.Best()
	s := PoolShape{N: 1, C: 2, H: 4, W: 4, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1, OH: 2, OW: 2}
	x, y := make([]byte, 32), make([]byte, 8)
	if err := MaxPoolNHWC(tier, &s, x, y, false, 0, 2); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	if MaxPoolNHWC(tier, &s, x[:31], y, false, 0, 2) == nil {
		t.Error("short input accepted")
	}
	if MaxPoolNHWC(tier, &s, x, y[:7], false, 0, 2) == nil {
		t.Error("short output accepted")
	}
	if MaxPoolNHWC(tier, &s, x, y, false, 0, 3) == nil {
		t.Error("rows beyond the batch accepted")
	}
	bad := s
	bad.SH = 0
	if MaxPoolNHWC(tier, &bad, x, y, false, 0, 2) == nil {
		t.Error("zero stride accepted")
	}
	rq, _ := NewRequant([]float64{0, 1, 0.5, 0.3, 0.25}, 0, 0, 255)
	if err := AvgPoolNHWC(tier, &s, x, y, false, 0, false, rq, 0, 2, make([]int32, 2)); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	if AvgPoolNHWC(tier, &s, x, y, false, 0, false, rq, 0, 2, make([]int32, 1)) == nil {
		t.Error("short workspace accepted")
	}
	one, _ := NewRequant([]float64{0.5}, 0, 0, 255)
	if AvgPoolNHWC(tier, &s, x, y, false, 0, false, one, 0, 2, make([]int32, 2)) == nil {
		t.Error("requantization without a multiplier per count accepted")
	}
	dil := s
	dil.DH = 2
	if AvgPoolNHWC(tier, &dil, x, y, false, 0, false, rq, 0, 2, make([]int32, 2)) == nil {
		t.Error("dilated average pool accepted")
	}
	if GlobalAvgPoolNHWC(tier, x, y[:1], 1, 16, 2, false, 0, one, make([]int32, 2)) == nil {
		t.Error("short global pool output accepted")
	}
	if GlobalAvgPoolNHWC(tier, x, y, 1, 0, 2, false, 0, one, make([]int32, 2)) == nil {
		t.Error("empty plane accepted")
	}
}
