package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// TestQLinearAddVectorMatchesTable checks same-shape QLinearAdd on the
// vector kernel (q8.AddBytes, AVX-512 tiers) against the generic tier (the
// 64 K table or the per-element function) bit for bit: uint8 and int8,
// constant and run-time parameters, a fused clamp (act_min/act_max on the
// goslim twin), exact rounding ties (scale ratio 0.5), 1 and 2 threads,
// sizes with vector tails.
func TestQLinearAddVectorMatchesTable(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	shapes := [][]int{{4, 64, 24, 24}, {3, 5, 7}, {1, 16, 28, 28}}
	for trial := range 12 {
		dt := []tensor.DType{tensor.Uint8, tensor.Int8}[trial%2]
		sh := shapes[trial%len(shapes)]
		a, b := qRand(r, dt, sh...), qRand(r, dt, sh...)
		sa, sb, sc := 0.01+r.Float64()*0.1, 0.01+r.Float64()*0.1, 0.02+r.Float64()*0.1
		if trial%4 == 3 {
			sa, sb, sc = 0.5, 0.25, 1 // ratios 0.5 and 0.25: ties of round half to even
		}
		za, zb, zc := qRandZero(r, dt), qRandZero(r, dt), qRandZero(r, dt)
		domain, attrs := "com.microsoft", ir.Attrs(nil)
		if trial%3 == 2 {
			lo := int64(zc) + 3
			domain, attrs = "goslim", ir.Attrs{ir.IntAttr("act_min", lo), ir.IntAttr("act_max", lo+90)}
		}
		in := []*tensor.Tensor{a, qVals(tensor.Float32, sa), qVals(dt, za), b, qVals(tensor.Float32, sb), qVals(dt, zb), qVals(tensor.Float32, sc), qVals(dt, zc)}
		for _, consts := range []map[int]bool{nil, {1: true, 2: true, 4: true, 5: true, 6: true, 7: true}} {
			want := qRun(t, domain, "QLinearAdd", 1, attrs, kernel.TierGeneric, 1, 1, consts, in...)[0]
			for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512, kernel.Best()} {
				if !tier.Available() {
					continue
				}
				for _, threads := range []int{1, 2} {
					got := qRun(t, domain, "QLinearAdd", 1, attrs, tier, threads, 1, consts, in...)[0]
					qSame(t, fmt.Sprintf("trial %d %v %v threads %d consts %v", trial, dt, tier, threads, consts != nil), got, want)
				}
			}
		}
	}
}
