package int8

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// randConvShape draws a small convolution; kind 0 general, 1 depthwise,
// 2 pointwise, 3 grouped.
func randConvShape(rng *rand.Rand, kind int) ConvShape {
	s := ConvShape{H: 1 + rng.IntN(11), W: 1 + rng.IntN(13), Group: 1, KH: 1 + rng.IntN(3), KW: 1 + rng.IntN(3),
		SH: 1 + rng.IntN(2), SW: 1 + rng.IntN(2), DH: 1 + rng.IntN(2), DW: 1 + rng.IntN(2),
		PadT: rng.IntN(3), PadL: rng.IntN(3), PadB: rng.IntN(3), PadR: rng.IntN(3)}
	switch kind {
	case 0:
		s.C, s.M = 1+rng.IntN(9), 1+rng.IntN(40)
	case 1:
		s.C = 1 + rng.IntN(12)
		s.M, s.Group = s.C, s.C
		s.DH, s.DW = 1, 1
	case 2:
		s.C, s.M = 1+rng.IntN(70), 1+rng.IntN(70)
		s.KH, s.KW, s.SH, s.SW, s.DH, s.DW = 1, 1, 1, 1, 1, 1
		s.PadT, s.PadL, s.PadB, s.PadR = 0, 0, 0, 0
	case 3:
		s.Group = 2 + rng.IntN(3)
		s.C, s.M = s.Group*(1+rng.IntN(5)), s.Group*(1+rng.IntN(6))
	}
	ext := func(in, k, st, d, pb, pe int) int { return (in+pb+pe-((k-1)*d+1))/st + 1 }
	for s.H+s.PadT+s.PadB < (s.KH-1)*s.DH+1 {
		s.PadB++
	}
	for s.W+s.PadL+s.PadR < (s.KW-1)*s.DW+1 {
		s.PadR++
	}
	s.OH = ext(s.H, s.KH, s.SH, s.DH, s.PadT, s.PadB)
	s.OW = ext(s.W, s.KW, s.SW, s.DW, s.PadL, s.PadR)
	return s
}

func TestConvMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tier := range testTiers() {
		for trial := range 160 {
			s := randConvShape(rng, trial%4)
			signed := trial%3 == 1
			cg := s.C / s.Group
			w := make([]int8, s.M*cg*s.KH*s.KW)
			for i := range w {
				w[i] = int8(rng.IntN(256) - 128)
			}
			x := make([]uint8, s.C*s.H*s.W)
			for i := range x {
				x[i] = uint8(rng.IntN(256))
			}
			var zb []int32
			switch trial % 5 {
			case 1:
				zb = []int32{int32(rng.IntN(20) - 10)}
			case 2:
				zb = make([]int32, s.M)
				for i := range zb {
					zb[i] = int32(rng.IntN(7) - 3)
				}
			}
			za := int32(rng.IntN(256))
			if signed {
				za -= 128
			}
			var bias []int32
			if trial%2 == 0 {
				bias = make([]int32, s.M)
				for i := range bias {
					bias[i] = int32(rng.IntN(20001) - 10000)
				}
			}
			reals := make([]float64, 1+(trial%2)*(s.M-1))
			for i := range reals {
				reals[i] = 0.0005 + rng.Float64()*0.004
			}
			lo, hi := int32(0), int32(255)
			if trial%7 == 3 {
				lo, hi = 10, 200
			}
			r, err := NewRequant(reals, int32(rng.IntN(256)), lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			cw, err := NewConvWeights(w, zb, s.M, cg, s.KH, s.KW, s.Group)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]uint8, s.M*s.OH*s.OW)
			ConvRef(&s, w, zb, x, signed, za, bias, r, want)
			for _, threads := range []int{1, 3} {
				got := make([]uint8, len(want)+guard)
				for i := range got {
					got[i] = 0xa5
				}
				a := &ConvArgs{X: x, Signed: signed, Zero: za, Bias: bias, Req: r,
					WS: make([]int32, cw.ConvScratch(&s, threads)), Threads: threads,
					Par: func(n int, fn func(lo, hi int)) { kernel.Parallel(threads, n, fn) }}
				if err := Conv(tier, &s, cw, a, got[:len(want)]); err != nil {
					t.Fatalf("%+v: %v", s, err)
				}
				for i := range guard {
					if got[len(want)+i] != 0xa5 {
						t.Fatalf("%v %+v: guard overwritten", tier, s)
					}
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%v trial %d threads %d %+v dw=%v: y[%d] = %d, want %d", tier, trial, threads, s, cw.Depthwise(), i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestConvInt32Output(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for trial := range 40 {
		s := randConvShape(rng, trial%4)
		cg := s.C / s.Group
		w := make([]int8, s.M*cg*s.KH*s.KW)
		for i := range w {
			w[i] = int8(rng.IntN(256) - 128)
		}
		x := make([]uint8, s.C*s.H*s.W)
		for i := range x {
			x[i] = uint8(rng.IntN(256))
		}
		zb := []int32{int32(trial%3 - 1)}
		cw, _ := NewConvWeights(w, zb, s.M, cg, s.KH, s.KW, s.Group)
		want := make([]int32, s.M*s.OH*s.OW)
		ConvRef(&s, w, zb, x, false, 7, nil, nil, want)
		got := make([]int32, len(want))
		a := &ConvArgs{X: x, Zero: 7, WS: make([]int32, cw.ConvScratch(&s, 1))}
		if err := Conv(kernel.Best(), &s, cw, a, got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v: y[%d] = %d, want %d", s, i, got[i], want[i])
			}
		}
	}
}

func TestConvSignedOutput(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	s := randConvShape(rng, 0)
	cg := s.C / s.Group
	w := make([]int8, s.M*cg*s.KH*s.KW)
	for i := range w {
		w[i] = int8(rng.IntN(256) - 128)
	}
	x := make([]uint8, s.C*s.H*s.W)
	for i := range x {
		x[i] = uint8(rng.IntN(256))
	}
	r, _ := NewRequant([]float64{0.002}, -5, -128, 127)
	cw, _ := NewConvWeights(w, nil, s.M, cg, s.KH, s.KW, s.Group)
	want := make([]int8, s.M*s.OH*s.OW)
	ConvRef(&s, w, nil, x, true, 3, nil, r, want)
	got := make([]int8, len(want))
	a := &ConvArgs{X: x, Signed: true, Zero: 3, Req: r, WS: make([]int32, cw.ConvScratch(&s, 1))}
	if err := Conv(kernel.Best(), &s, cw, a, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("y[%d] = %d, want %d", i, got[i], want[i])
		}
	}
}

// TestConvWideShapes covers images with at least 16 channels and 16
// columns (the vector transpose) against the reference, per tier.
func TestConvWideShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	shapes := []ConvShape{
		{C: 40, H: 3, W: 37, M: 20, Group: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 3, OW: 37},
		{C: 16, H: 5, W: 16, M: 16, Group: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, OH: 5, OW: 16},
		{C: 33, H: 4, W: 35, M: 7, Group: 1, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, OH: 2, OW: 18},
		{C: 32, H: 2, W: 20, M: 64, Group: 2, KH: 1, KW: 3, SH: 1, SW: 1, DH: 1, DW: 2, PadT: 0, PadL: 2, PadB: 0, PadR: 2, OH: 2, OW: 20},
	}
	for si, s := range shapes {
		cg := s.C / s.Group
		w := make([]int8, s.M*cg*s.KH*s.KW)
		for i := range w {
			w[i] = int8(rng.IntN(256) - 128)
		}
		x := make([]uint8, s.C*s.H*s.W)
		for i := range x {
			x[i] = uint8(rng.IntN(256))
		}
		r, _ := NewRequant([]float64{0.0007}, 100, 0, 255)
		cw, err := NewConvWeights(w, nil, s.M, cg, s.KH, s.KW, s.Group)
		if err != nil {
			t.Fatal(err)
		}
		for _, signed := range []bool{false, true} {
			want := make([]uint8, s.M*s.OH*s.OW)
			ConvRef(&s, w, nil, x, signed, 9, nil, r, want)
			for _, tier := range testTiers() {
				got := make([]uint8, len(want))
				a := &ConvArgs{X: x, Signed: signed, Zero: 9, Req: r, WS: make([]int32, cw.ConvScratch(&s, 1))}
				if err := Conv(tier, &s, cw, a, got); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("shape %d %v signed %v: y[%d] = %d, want %d", si, tier, signed, i, got[i], want[i])
					}
				}
			}
		}
	}
}
