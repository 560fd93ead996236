package int8

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// TestConvBatchResidual checks the fused residual addition against
// ConvRef followed by AddParams.AddOne per element, for GEMM and
// depthwise convolutions, every layout pair, uint8 and int8 data, chunked
// workers and every tier.
func TestConvBatchResidual(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	for _, tier := range testTiers() {
		for trial := range 40 {
			s := randConvShape(rng, trial%4)
			n := 1 + rng.IntN(3)
			signed := trial%2 == 1
			cg := s.C / s.Group
			w := make([]int8, s.M*cg*s.KH*s.KW)
			for i := range w {
				w[i] = int8(rng.IntN(256) - 128)
			}
			inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
			x := make([]uint8, n*inImg)
			for i := range x {
				x[i] = uint8(rng.IntN(256))
			}
			res := make([]uint8, n*outImg)
			for i := range res {
				res[i] = uint8(rng.IntN(256))
			}
			za, lo, hi := int32(rng.IntN(256)), int32(0), int32(255)
			if signed {
				za, lo, hi = za-128, -128, 127
			}
			reals := make([]float64, s.M)
			for i := range reals {
				reals[i] = 0.0005 + rng.Float64()*0.004
			}
			r, err := NewRequant(reals, lo+int32(rng.IntN(200)), lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			p := AddParams{Signed: signed, Za: r.Zero, Zb: lo + int32(rng.IntN(256)), Zc: lo + int32(rng.IntN(256)),
				Ra: 0.2 + rng.Float64(), Rb: 0.2 + rng.Float64(), Lo: lo, Hi: hi}
			cw, err := NewConvWeights(w, nil, s.M, cg, s.KH, s.KW, s.Group)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]uint8, n*outImg)
			for img := range n {
				if signed {
					ConvRef(&s, w, nil, x[img*inImg:(img+1)*inImg], signed, za, nil, r, int8sOf(want[img*outImg:(img+1)*outImg]))
				} else {
					ConvRef(&s, w, nil, x[img*inImg:(img+1)*inImg], signed, za, nil, r, want[img*outImg:(img+1)*outImg])
				}
			}
			for _, lay := range [][2]Layout{{NCHW, NCHW}, {NCHW, NHWC}, {NHWC, NHWC}, {NHWC, NCHW}} {
				xin := make([]uint8, len(x))
				ToLayout(xin, x, n, s.C, s.H*s.W, NCHW, lay[0])
				wantL := make([]uint8, len(want))
				ToLayout(wantL, want, n, s.M, s.OH*s.OW, NCHW, lay[1])
				for i := range wantL {
					wantL[i] = p.AddOne(wantL[i], res[i])
				}
				threads := 1 + trial%3
				a := &BatchArgs{N: n, X: xin, In: lay[0], Out: lay[1], Signed: signed, Zero: za, Req: r,
					WS: make([]int32, cw.BatchScratch(&s, n, threads, lay[0], lay[1])), Threads: threads, Par: serialPar{threads},
					Residual: res, ResAdd: &p}
				got := make([]uint8, len(want))
				if signed {
					err = ConvBatch(tier, &s, cw, a, int8sOf(got))
				} else {
					err = ConvBatch(tier, &s, cw, a, got)
				}
				if err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
				for i := range wantL {
					if got[i] != wantL[i] {
						t.Fatalf("%v trial %d %v n=%d dw=%v %+v: y[%d] = %d, want %d", tier, trial, lay, n, cw.Depthwise(), s, i, got[i], wantL[i])
					}
				}
			}
		}
	}
	// int32 output or missing constants: errors.
	s := ConvShape{C: 2, H: 3, W: 3, M: 2, Group: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 3, OW: 3}
	cw, _ := NewConvWeights(make([]int8, 4), nil, 2, 2, 1, 1, 1)
	a := &BatchArgs{N: 1, X: make([]uint8, 18), WS: make([]int32, cw.BatchScratch(&s, 1, 1, NCHW, NCHW)), Residual: make([]uint8, 18)}
	if ConvBatch(kernel.Best(), &s, cw, a, make([]int32, 18)) == nil {
		t.Error("residual with int32 output accepted")
	}
}
