package vec

import "testing"

// BenchmarkSmall times calls on 9 values: the per-call cost that matters
// for short rows (small pooling windows, tiny channels).
func BenchmarkSmall(b *testing.B) {
	x := make([]float32, 9)
	for i := range x {
		x[i] = float32(i)
	}
	for _, k := range tiers() {
		b.Run("Sum9/"+k.Tier.String(), func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += k.Sum(x)
			}
			_ = s
		})
		b.Run("Relu9/"+k.Tier.String(), func(b *testing.B) {
			d := make([]float32, 9)
			for b.Loop() {
				k.Relu(d, x)
			}
		})
	}
}
