package int8

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// serialPar is a Parallelizer that runs the units in chunks on the
// calling goroutine (the chunking, not the concurrency, is what differs
// from one thread).
type serialPar struct{ threads int }

func (p serialPar) ParallelTask(n int, t kernel.Task) {
	th := max(min(p.threads, n), 1)
	for i := range th {
		t.Run(i*n/th, (i+1)*n/th)
	}
}

// TestConvBatchMatchesRef checks ConvBatch over every layout pair, several
// images, uint8/int8/int32 outputs and chunked units against ConvRef per
// image, with guard bands.
func TestConvBatchMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, tier := range testTiers() {
		for trial := range 96 {
			s := randConvShape(rng, trial%4)
			n := 1 + rng.IntN(3)
			signed := trial%3 == 1
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
			var zb []int32
			if trial%5 == 2 {
				zb = make([]int32, s.M)
				for i := range zb {
					zb[i] = int32(rng.IntN(7) - 3)
				}
			}
			za := int32(rng.IntN(256))
			if signed {
				za -= 128
			}
			bias := make([]int32, s.M)
			for i := range bias {
				bias[i] = int32(rng.IntN(20001) - 10000)
			}
			reals := make([]float64, s.M)
			for i := range reals {
				reals[i] = 0.0005 + rng.Float64()*0.004
			}
			r, err := NewRequant(reals, int32(rng.IntN(256)), 0, 255)
			if err != nil {
				t.Fatal(err)
			}
			cw, err := NewConvWeights(w, zb, s.M, cg, s.KH, s.KW, s.Group)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]uint8, n*outImg)
			want32 := make([]int32, n*outImg)
			for img := range n {
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, r, want[img*outImg:(img+1)*outImg])
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, nil, want32[img*outImg:(img+1)*outImg])
			}
			for _, lay := range [][2]Layout{{NCHW, NCHW}, {NCHW, NHWC}, {NHWC, NHWC}, {NHWC, NCHW}} {
				xin := make([]uint8, len(x))
				ToLayout(xin, x, n, s.C, s.H*s.W, NCHW, lay[0])
				wantL := make([]uint8, len(want))
				ToLayout(wantL, want, n, s.M, s.OH*s.OW, NCHW, lay[1])
				threads := 1 + trial%3
				a := &BatchArgs{N: n, X: xin, In: lay[0], Out: lay[1], Signed: signed, Zero: za, Bias: bias, Req: r,
					WS: make([]int32, cw.BatchScratch(&s, n, threads, lay[0], lay[1])), Threads: threads, Par: serialPar{threads}}
				got := make([]uint8, len(want)+guard)
				for i := range got {
					got[i] = 0xa5
				}
				if err := ConvBatch(tier, &s, cw, a, got[:len(want)]); err != nil {
					t.Fatalf("%v %+v: %v", tier, s, err)
				}
				for i := range guard {
					if got[len(want)+i] != 0xa5 {
						t.Fatalf("%v %+v %v: guard overwritten", tier, s, lay)
					}
				}
				for i := range wantL {
					if got[i] != wantL[i] {
						t.Fatalf("%v trial %d %v n=%d threads %d %+v: y[%d] = %d, want %d", tier, trial, lay, n, threads, s, i, got[i], wantL[i])
					}
				}
				// int32 sums (no requantization).
				a.Req = nil
				got32 := make([]int32, len(want32))
				if err := ConvBatch(tier, &s, cw, a, got32); err != nil {
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
								t.Fatalf("%v trial %d %v int32: image %d channel %d pos %d = %d, want %d", tier, trial, lay, img, m, p, got32[gi], wv)
							}
						}
					}
				}
			}
		}
	}
}

func TestConvBatchErrors(t *testing.T) {
	s := ConvShape{C: 2, H: 3, W: 3, M: 2, Group: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 3, OW: 3}
	cw, err := NewConvWeights(make([]int8, 4), nil, 2, 2, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRequant([]float64{0.01}, 0, 0, 255)
	ok := BatchArgs{N: 2, X: make([]uint8, 36), In: NHWC, Out: NHWC, Req: r, WS: make([]int32, cw.BatchScratch(&s, 2, 1, NHWC, NHWC))}
	if err := ConvBatch(kernel.Best(), &s, cw, &ok, make([]uint8, 36)); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	short := ok
	short.X = short.X[:35]
	if ConvBatch(kernel.Best(), &s, cw, &short, make([]uint8, 36)) == nil {
		t.Error("short input accepted")
	}
	if ConvBatch(kernel.Best(), &s, cw, &ok, make([]uint8, 35)) == nil {
		t.Error("short output accepted")
	}
	noWS := ok
	noWS.WS = nil
	if ConvBatch(kernel.Best(), &s, cw, &noWS, make([]uint8, 36)) == nil {
		t.Error("missing workspace accepted")
	}
}
