package int8

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestQuantizeMultiplier(t *testing.T) {
	tests := []struct {
		real    float64
		wantErr bool
	}{
		{0, false}, {1e-30, false}, {2.5e-10, false}, {0.0001234, false}, {0.5, false}, {1, false},
		{0.99999999999, false}, {3.75, false}, {1 << 29, false},
		{1 << 30, true}, {-1, true}, {math.NaN(), true}, {math.Inf(1), true},
	}
	for _, tc := range tests {
		m, s, err := QuantizeMultiplier(tc.real)
		if (err != nil) != tc.wantErr {
			t.Fatalf("QuantizeMultiplier(%g): err = %v, want error %v", tc.real, err, tc.wantErr)
		}
		if err != nil {
			continue
		}
		if s < 1 || s > 63 {
			t.Fatalf("QuantizeMultiplier(%g): shift %d out of [1, 63]", tc.real, s)
		}
		if m == 0 {
			if tc.real*math.Pow(2, 62) >= 0.5 {
				t.Fatalf("QuantizeMultiplier(%g): zero multiplier for a value that matters", tc.real)
			}
			continue
		}
		if m < 1<<30 {
			t.Fatalf("QuantizeMultiplier(%g): mult %d below 2^30", tc.real, m)
		}
		got := float64(m) * math.Pow(2, -float64(s))
		if rel := math.Abs(got-tc.real) / tc.real; rel > math.Pow(2, -31) {
			t.Fatalf("QuantizeMultiplier(%g) = %d * 2^-%d = %g: relative error %g", tc.real, m, s, got, rel)
		}
	}
}

// TestRequantMatchesFloat64 compares fixed-point requantization with the
// float64 reference round_half_even(acc*real)+zero, clamped: never more
// than one step apart, equal on >= 99.9% of elements, and exactly equal
// (ties included) for multipliers that are exact in 31 bits.
func TestRequantMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type rng2 struct{ lo, hi int32 }
	ranges := []rng2{{0, 255}, {-128, 127}, {7, 200}}
	total, diff, ties := 0, 0, 0
	for trial := range 400 {
		var real float64
		exact := trial%4 == 0
		if exact {
			// 1..255 times a power of two: exact in 31 bits.
			real = float64(1+rng.IntN(255)) * math.Pow(2, -float64(8+rng.IntN(20)))
		} else {
			real = math.Exp(rng.Float64()*14 - 13) // ~2e-6 .. ~2.7
		}
		rg := ranges[trial%len(ranges)]
		zero := rg.lo + int32(rng.IntN(int(rg.hi-rg.lo+1)))
		r, err := NewRequant([]float64{real}, zero, rg.lo, rg.hi)
		if err != nil {
			t.Fatal(err)
		}
		acc := make([]int32, 257)
		scale := 300 / real // accumulators that land around the output range
		for i := range acc {
			switch i % 5 {
			case 0:
				acc[i] = int32(rng.Uint32())
			case 1:
				acc[i] = int32((rng.Float64()*2 - 1) * math.Min(scale, 1<<30))
				if exact {
					// real = p*2^-e with p odd gives ties at acc = (2k+1)*2^(e-1).
					e := int(-math.Logb(real)) + 9
					for e > 1 && math.Ldexp(real, e-1) == math.Trunc(math.Ldexp(real, e-1)) {
						e--
					}
					if e-1 < 24 {
						acc[i] = int32(2*(rng.IntN(200)-100)+1) << (e - 1)
					}
				}
			default:
				acc[i] = int32((rng.Float64()*2 - 1) * math.Min(scale, 1<<30))
			}
		}
		add := int32(rng.IntN(2001) - 1000)
		du := make([]uint8, len(acc))
		ds := make([]int8, len(acc))
		for i, a := range acc {
			want := RequantRef(a+add, real, zero, rg.lo, rg.hi)
			got := r.One(a+add, 0)
			total++
			if x := float64(a+add) * real; x-math.Floor(x) == 0.5 {
				ties++
			}
			if got != want {
				diff++
				if exact || got-want > 1 || want-got > 1 {
					t.Fatalf("real=%g zero=%d acc=%d: fixed point %d, float64 %d", real, zero, a+add, got, want)
				}
			}
			if rg.lo >= 0 {
				RequantRow(du[i:i+1], acc[i:i+1], r, 0, add)
				if int32(du[i]) != got {
					t.Fatalf("RequantRow u8 %d != One %d", du[i], got)
				}
			} else {
				RequantCols(ds[i:i+1], acc[i:i+1], r, 0, []int32{add})
				if int32(ds[i]) != got {
					t.Fatalf("RequantCols s8 %d != One %d", ds[i], got)
				}
			}
		}
	}
	if float64(diff) > 0.001*float64(total) {
		t.Fatalf("%d of %d requantized values differ from the float64 reference", diff, total)
	}
	t.Logf("%d of %d values differ from the float64 reference by one step (%d exact ties)", diff, total, ties)
	if ties == 0 {
		t.Fatal("no rounding ties tested")
	}
}

func TestRequantPerChannel(t *testing.T) {
	reals := []float64{0.001, 0.5, 0, 1.5e-7, 0.0123}
	r, err := NewRequant(reals, 3, 0, 255)
	if err != nil {
		t.Fatal(err)
	}
	acc := []int32{1000, -7, 12345, 1 << 30, -250}
	add := []int32{5, 6, 7, 8, 9}
	dst := make([]uint8, len(acc))
	RequantCols(dst, acc, r, 0, add)
	for j := range acc {
		if want := RequantRef(acc[j]+add[j], reals[j], 3, 0, 255); int32(dst[j]) != want {
			t.Fatalf("channel %d: %d, want %d", j, dst[j], want)
		}
	}
	if _, err := NewRequant([]float64{1}, 0, 5, 4); err == nil {
		t.Fatal("empty clamp range accepted")
	}
	if _, err := NewRequant([]float64{-1}, 0, 0, 255); err == nil {
		t.Fatal("negative multiplier accepted")
	}
}
