package calib_test

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

func benchData(n int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	return f32(tensor.Shape{n}, xs...)
}

func BenchmarkMinMaxObserve(b *testing.B) {
	x := benchData(1 << 20)
	m := calib.NewMinMax()
	b.SetBytes(4 << 20)
	for b.Loop() {
		_ = m.Observe(x)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	x := benchData(1 << 20)
	h, _ := calib.NewHistogram(calib.Config{})
	b.SetBytes(4 << 20)
	for b.Loop() {
		_ = h.Observe(x)
	}
}

func benchRange(b *testing.B, m calib.Method) {
	h, _ := calib.NewHistogram(calib.Config{Method: m, Scheme: quant.Scheme{DType: tensor.Int8, Symmetric: true}})
	_ = h.Observe(benchData(1 << 16))
	for b.Loop() {
		h.Range()
	}
}

func BenchmarkRangePercentile(b *testing.B) { benchRange(b, calib.MethodPercentile) }
func BenchmarkRangeEntropy(b *testing.B)    { benchRange(b, calib.MethodEntropy) }
func BenchmarkRangeMSE(b *testing.B)        { benchRange(b, calib.MethodMSE) }
