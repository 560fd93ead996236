package int8

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
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

// TestRequantColsBytesTiers checks the vector requantization against the
// Go loop (every tier must give the same bits), with guard bytes.
func TestRequantColsBytesTiers(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	tiers := []kernel.Tier{kernel.TierGeneric, kernel.Best()}
	for trial := range 300 {
		n := 1 + rng.IntN(70)
		nch := 1
		if trial%2 == 1 {
			nch = n + rng.IntN(5)
		}
		reals := make([]float64, nch)
		for i := range reals {
			reals[i] = math.Exp(rng.Float64()*16 - 14)
			if rng.IntN(20) == 0 {
				reals[i] = 0
			}
		}
		lo, hi := int32(0), int32(255)
		if trial%3 == 1 {
			lo, hi = -128, 127
		}
		if trial%5 == 2 {
			lo, hi = lo+7, hi-30
		}
		r, err := NewRequant(reals, lo+int32(rng.IntN(int(hi-lo+1))), lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		acc := make([]int32, n)
		for i := range acc {
			if rng.IntN(4) == 0 {
				acc[i] = int32(rng.Uint32())
			} else {
				acc[i] = int32(rng.IntN(200001) - 100000)
			}
		}
		var add []int32
		if trial%4 != 0 {
			add = make([]int32, n)
			for i := range add {
				add[i] = int32(rng.IntN(2001) - 1000)
			}
		}
		ch0 := 0
		if nch > n {
			ch0 = rng.IntN(nch - n + 1)
		}
		want := make([]uint8, n)
		RequantCols(want, acc, r, ch0, add)
		for _, tier := range tiers {
			buf := make([]byte, n+2*guard)
			for i := range buf {
				buf[i] = 0xa5
			}
			r.ColsBytes(tier, buf[guard:guard+n], acc, ch0, add)
			for i := range guard {
				if buf[i] != 0xa5 || buf[guard+n+i] != 0xa5 {
					t.Fatalf("%v n=%d: guard overwritten", tier, n)
				}
			}
			for i := range want {
				if buf[guard+i] != want[i] {
					t.Fatalf("%v trial %d n=%d ch %d real %g acc %d add %v: %d, want %d", tier, trial, n, ch0+i, reals[r.channel(ch0+i)], acc[i], add != nil, buf[guard+i], want[i])
				}
			}
		}
	}
}

// BenchmarkRequantCols measures requantization of 1024 per-channel values
// per call (Go loop vs the vector kernel).
func BenchmarkRequantCols(b *testing.B) {
	reals := make([]float64, 1024)
	acc := make([]int32, 1024)
	for i := range reals {
		reals[i] = 0.001 + float64(i)*1e-6
		acc[i] = int32(i*977%20000 - 10000)
	}
	r, _ := NewRequant(reals, 3, 0, 255)
	dst := make([]byte, 1024)
	for _, tier := range []kernel.Tier{kernel.TierGeneric, kernel.Best()} {
		b.Run(tier.String(), func(b *testing.B) {
			for b.Loop() {
				r.ColsBytes(tier, dst, acc, 0, acc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/value")
		})
	}
}

// TestQuantizeDequantizeVector checks the vector QuantizeLinear and
// DequantizeLinear conversions against the Go formulas bit for bit
// (ties, NaN, infinities, values far outside the range).
func TestQuantizeDequantizeVector(t *testing.T) {
	if !requantAsm(kernel.Best()) {
		t.Skip("no vector QuantizeLinear/DequantizeLinear kernel on this CPU or build (AVX-512 needed)")
	}
	rng := rand.New(rand.NewPCG(15, 16))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		1e30, -1e30, 2.5, -2.5, 3.5, 0.5, -0.5, 1e-40}
	for trial := range 200 {
		n := 1 + rng.IntN(80)
		x := make([]float32, n)
		scale := float32(math.Exp(rng.Float64()*6 - 5))
		for i := range x {
			switch rng.IntN(6) {
			case 0:
				x[i] = special[rng.IntN(len(special))]
			case 1:
				x[i] = (float32(rng.IntN(600)-300) + 0.5) * scale // ties
			default:
				x[i] = float32(rng.NormFloat64()*200) * scale
			}
		}
		lo, hi := int32(0), int32(255)
		if trial%2 == 1 {
			lo, hi = -128, 127
		}
		zero := lo + int32(rng.IntN(int(hi-lo+1)))
		want := make([]byte, n)
		for i, v := range x {
			f := math.RoundToEven(float64(v/scale)) + float64(zero)
			q := lo
			switch {
			case f >= float64(hi):
				q = hi
			case f > float64(lo):
				q = int32(f)
			}
			want[i] = byte(q)
		}
		got := make([]byte, n+guard)
		if QuantizeF32(kernel.Best(), got[:n], x, scale, zero, lo, hi) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("quantize %g / %g + %d: %d, want %d", x[i], scale, zero, got[i], want[i])
				}
			}
			for i := n; i < len(got); i++ {
				if got[i] != 0 {
					t.Fatal("quantize wrote past the end")
				}
			}
		}
		xb := make([]byte, n)
		for i := range xb {
			xb[i] = byte(rng.IntN(256))
		}
		signed := trial%2 == 1
		fd := make([]float32, n+1)
		fd[n] = 42
		if Dequantize(kernel.Best(), fd[:n], xb, signed, zero, scale) {
			for i, b := range xb {
				v := int32(b)
				if signed {
					v = int32(int8(b))
				}
				if w := float32(v-zero) * scale; math.Float32bits(fd[i]) != math.Float32bits(w) {
					t.Fatalf("dequantize %d: %g, want %g", v, fd[i], w)
				}
			}
			if fd[n] != 42 {
				t.Fatal("dequantize wrote past the end")
			}
		}
	}
}

// TestRequantRowsBytes checks RowsBytes (rows of 16 in one vector call,
// other widths row by row) against RequantCols row by row.
func TestRequantRowsBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for trial := range 40 {
		n := []int{16, 32, 5, 33, 64, 48}[trial%6]
		rows := 1 + rng.IntN(9)
		nch := 1
		if trial%3 != 0 {
			nch = n + 3
		}
		reals := make([]float64, nch)
		for i := range reals {
			reals[i] = math.Exp(rng.Float64()*8 - 10)
		}
		r, err := NewRequant(reals, int32(rng.IntN(256)), 0, 255)
		if err != nil {
			t.Fatal(err)
		}
		acc := make([]int32, rows*n)
		for i := range acc {
			acc[i] = int32(rng.IntN(2000001) - 1000000)
		}
		var add []int32
		if trial%2 == 0 {
			add = make([]int32, n)
			for i := range add {
				add[i] = int32(rng.IntN(20001) - 10000)
			}
		}
		ch0 := 0
		if nch > n {
			ch0 = rng.IntN(nch - n + 1)
		}
		want := make([]byte, rows*n)
		for i := range rows {
			RequantCols(want[i*n:(i+1)*n], acc[i*n:(i+1)*n], r, ch0, add)
		}
		for _, tier := range []kernel.Tier{kernel.TierGeneric, kernel.Best()} {
			got := make([]byte, rows*n+guard)
			r.RowsBytes(tier, got[:rows*n], acc, rows, n, ch0, add)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v trial %d n=%d rows=%d: element %d = %d, want %d", tier, trial, n, rows, i, got[i], want[i])
				}
			}
			for _, v := range got[rows*n:] {
				if v != 0 {
					t.Fatal("RowsBytes wrote past the end")
				}
			}
		}
	}
}
