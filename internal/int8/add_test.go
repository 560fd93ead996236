package int8

import (
	"math/rand/v2"
	"testing"
)

// TestAddBytesMatchesOne checks the vector addition against AddOne on
// every (a, b) byte pair, for unsigned and signed data, several scale
// ratios (including ties of round half to even) and clamps, per tier, with
// lengths that leave tails and a guard band.
func TestAddBytesMatchesOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	params := []AddParams{
		{Za: 0, Zb: 0, Zc: 0, Ra: 1, Rb: 1, Lo: 0, Hi: 255},
		{Za: 3, Zb: 130, Zc: 7, Ra: 0.5, Rb: 0.5, Lo: 0, Hi: 255}, // ties
		{Za: 128, Zb: 0, Zc: 128, Ra: 0.731, Rb: 1.9, Lo: 0, Hi: 255},
		{Signed: true, Za: -3, Zb: 5, Zc: -10, Ra: 0.25, Rb: 0.75, Lo: -128, Hi: 127},
		{Signed: true, Za: 0, Zb: 0, Zc: 0, Ra: 0.013, Rb: 2.5, Lo: -20, Hi: 100},
		{Za: 17, Zb: 200, Zc: 90, Ra: 0.3333333333, Rb: 0.6666666667, Lo: 90, Hi: 255}, // fused Relu
		{Za: 128, Zb: 127, Zc: 128, Ra: 5000.25, Rb: 0.001, Lo: 0, Hi: 255}, // beyond the float32 bound: float64 lanes only
	}
	for i := range 4 {
		params = append(params, AddParams{Signed: i%2 == 1, Za: int32(rng.IntN(256)) - 128*int32(i%2), Zb: int32(rng.IntN(256)) - 128*int32(i%2),
			Zc: int32(rng.IntN(256)) - 128*int32(i%2), Ra: rng.Float64() * 3, Rb: rng.Float64() * 3, Lo: -128 * int32(i%2), Hi: 255 - 128*int32(i%2)})
	}
	n := 1 << 16
	a, b := make([]uint8, n), make([]uint8, n)
	for i := range n {
		a[i], b[i] = uint8(i>>8), uint8(i)
	}
	for _, tier := range testTiers() {
		for pi, p := range params {
			for _, m := range []int{n, n - 1, 15, 17, 0} {
				y := make([]uint8, m+guard)
				for i := range y {
					y[i] = 0xa5
				}
				AddBytes(tier, &p, y[:m], a, b)
				for i := range m {
					if want := p.AddOne(a[i], b[i]); y[i] != want {
						t.Fatalf("%v params %d (%+v) n=%d: a=%d b=%d: got %d, want %d", tier, pi, p, m, a[i], b[i], y[i], want)
					}
				}
				for i := m; i < m+guard; i++ {
					if y[i] != 0xa5 {
						t.Fatalf("%v params %d n=%d: guard byte %d written", tier, pi, m, i-m)
					}
				}
			}
		}
	}
}

// BenchmarkAddBytes times the vector addition against a 64 K lookup table
// (the previous QLinearAdd path) on ResNet-8's residual size (28x28x16 per
// image, batch 32), in bytes per second.
func BenchmarkAddBytes(b *testing.B) {
	p := AddParams{Za: 3, Zb: 130, Zc: 7, Ra: 0.61, Rb: 0.47, Lo: 0, Hi: 255}
	n := 32 * 28 * 28 * 16
	x, w, y := make([]uint8, n), make([]uint8, n), make([]uint8, n)
	for i := range n {
		x[i], w[i] = uint8(i*7), uint8(i*13+5)
	}
	lut := make([]uint8, 1<<16)
	for i := range lut {
		lut[i] = p.AddOne(uint8(i>>8), uint8(i))
	}
	b.Run("lut", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			for i := range y {
				y[i] = lut[int(x[i])<<8|int(w[i])]
			}
		}
	})
	for _, tier := range testTiers() {
		b.Run(tier.String(), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				AddBytes(tier, &p, y, x, w)
			}
		})
	}
}
