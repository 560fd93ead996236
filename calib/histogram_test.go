package calib_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

func hist(t *testing.T, c calib.Config) *calib.Histogram {
	t.Helper()
	h, err := calib.NewHistogram(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sum(c []uint64) (s uint64) {
	for _, v := range c {
		s += v
	}
	return s
}

// TestHistogramRebin checks that growing the range keeps every count and
// re-bins exactly (bin floor(x/w) at the final width).
func TestHistogramRebin(t *testing.T) {
	h := hist(t, calib.Config{Bins: 256})
	must(t, h.Observe(f32(tensor.Shape{4}, 0, 0, 0, 0))) // zeros only: no range yet
	if _, w, c := h.Counts(); w != 0 || sum(c) != 4 {
		t.Fatalf("zeros: width %g counts %v", w, c)
	}
	var all []float32
	rng := rand.New(rand.NewPCG(1, 1))
	for i, sc := range []float64{0.01, 0.3, 1, 1e3, 0.5, 1e6, 2} {
		xs := make([]float32, 500+i)
		for j := range xs {
			xs[j] = float32(rng.NormFloat64() * sc)
		}
		all = append(all, xs...)
		must(t, h.Observe(f32(tensor.Shape{len(xs)}, xs...)))
		start, w, c := h.Counts()
		if got, want := sum(c), uint64(4+len(all)); got != want || h.Count() != want {
			t.Fatalf("after batch %d: %d counts (Count %d), want %d", i, got, h.Count(), want)
		}
		// Recount from scratch at the final width.
		want := make([]uint64, len(c))
		want[len(c)/2] += 4
		for _, x := range all {
			want[int(math.Floor((float64(x)-start)/w))]++
		}
		for j := range c {
			if c[j] != want[j] {
				t.Fatalf("after batch %d: bin %d has %d, recount %d", i, j, c[j], want[j])
			}
		}
		if -start <= maxAbs(all) || -start > 2*maxAbs(all) {
			t.Fatalf("range %g for max |x| %g", -start, maxAbs(all))
		}
	}
}

func maxAbs(xs []float32) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// gaussianWithOutliers returns n N(0, 1) samples plus a few outliers at
// ±50.
func gaussianWithOutliers(seed uint64, n int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 9))
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	for i := range 10 {
		xs[i*97] = 50
		if i%2 == 1 {
			xs[i*97] = -50
		}
	}
	return f32(tensor.Shape{n}, xs...)
}

// TestHistogramMethodsClipOutliers: percentile and entropy clip 10 outliers
// at ±50 among 200000 N(0, 1) samples, MinMax does not. (MSE rightly keeps
// them: clipping 10 values by 46 costs more than the rounding noise of the
// wide range; TestMSEHeavyTail covers MSE.)
func TestHistogramMethodsClipOutliers(t *testing.T) {
	x := gaussianWithOutliers(1, 200000)
	i8sym := quant.Scheme{DType: tensor.Int8, Symmetric: true}
	i8 := quant.Scheme{DType: tensor.Int8}
	for _, c := range []struct {
		cfg    calib.Config
		lo, hi float32 // the range must lie within [lo, hi] ...
		minAbs float32 // ... and reach at least this far on each side
	}{
		{calib.Config{Method: calib.MethodMinMax}, -50, 50, 50},
		{calib.Config{Method: calib.MethodPercentile, Percentile: 99.9, Scheme: i8sym}, -3.6, 3.6, 3.0},
		{calib.Config{Method: calib.MethodPercentile, Percentile: 99.9, Scheme: i8}, -3.4, 3.4, 2.8},
		{calib.Config{Method: calib.MethodEntropy, Scheme: i8sym}, -12, 12, 2.5},
		{calib.Config{Method: calib.MethodEntropy, Scheme: i8}, -12, 12, 2.5},
	} {
		h := hist(t, c.cfg)
		must(t, h.Observe(x))
		lo, hi := h.Range()
		if lo[0] < c.lo || hi[0] > c.hi || -lo[0] < c.minAbs || hi[0] < c.minAbs {
			t.Errorf("%s %v: range [%g, %g], want within [%g, %g] reaching ±%g", c.cfg.Method, c.cfg.Scheme, lo[0], hi[0], c.lo, c.hi, c.minAbs)
		}
		t.Logf("%s %v: [%g, %g]", c.cfg.Method, c.cfg.Scheme, lo[0], hi[0])
	}
}

func TestPercentileKnown(t *testing.T) {
	// Uniform values 0, 1, ..., 9999 (scaled): percentiles are known.
	xs := make([]float32, 10000)
	for i := range xs {
		xs[i] = float32(i) / 10000
	}
	h := hist(t, calib.Config{Method: calib.MethodPercentile})
	must(t, h.Observe(f32(tensor.Shape{len(xs)}, xs...)))
	for _, c := range []struct{ p, lo, hi float64 }{
		{99, 0.01, 0.99}, {90, 0.1, 0.9}, {100, 0, 0.9999}, {50, 0.5, 0.5},
	} {
		lo, hi := h.Percentile(c.p)
		if math.Abs(float64(lo)-c.lo) > 1e-3 || math.Abs(float64(hi)-c.hi) > 1e-3 {
			t.Errorf("p%g: [%g, %g], want [%g, %g]", c.p, lo, hi, c.lo, c.hi)
		}
	}
	// Symmetric: percentile of |x| on data in [-1, 0.5].
	hs := hist(t, calib.Config{Method: calib.MethodPercentile, Scheme: quant.Scheme{DType: tensor.Int8, Symmetric: true}})
	ys := make([]float32, 3000)
	for i := range ys {
		ys[i] = -1 + float32(i)/2000 // -1 .. 0.4995
	}
	must(t, hs.Observe(f32(tensor.Shape{len(ys)}, ys...)))
	// |x| has density 2 on [0, 0.5] and 1 on [0.5, 1]: 90% of the mass
	// lies below 0.85 (2000 of 3000 below 0.5, 700 more up to 0.85... ).
	lo, hi := hs.Percentile(90)
	if math.Abs(float64(lo)+0.85) > 2e-3 || hi != ys[len(ys)-1] {
		t.Errorf("symmetric p90: [%g, %g], want [-0.85, %g]", lo, hi, ys[len(ys)-1])
	}
}

// TestMSEHeavyTail: for Laplace-distributed data the MSE-optimal clip is
// well inside the maximum, and it beats min/max on the histogram's error.
func TestMSEHeavyTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	xs := make([]float32, 100000)
	for i := range xs {
		xs[i] = float32(rng.ExpFloat64())
		if rng.IntN(2) == 0 {
			xs[i] = -xs[i]
		}
	}
	s := quant.Scheme{DType: tensor.Int8, Symmetric: true}
	h := hist(t, calib.Config{Method: calib.MethodMSE, Scheme: s})
	x := f32(tensor.Shape{len(xs)}, xs...)
	must(t, h.Observe(x))
	lo, hi := h.Range()
	mn, mx := h.MinMax()
	if !(hi[0] < 0.8*mx) || !(lo[0] > 0.8*mn) {
		t.Errorf("MSE range [%g, %g] for data in [%g, %g]", lo[0], hi[0], mn, mx)
	}
	if e1, e2 := fqError(t, s, x, lo[0], hi[0]), fqError(t, s, x, mn, mx); !(e1 < e2) {
		t.Errorf("MSE range error %g not below min/max error %g", e1, e2)
	}
	t.Logf("MSE range [%g, %g], data [%g, %g]", lo[0], hi[0], mn, mx)
}

func fqError(t *testing.T, s quant.Scheme, x *tensor.Tensor, lo, hi float32) float64 {
	p, err := s.ParamsFor([]float32{lo}, []float32{hi})
	must(t, err)
	y, err := p.FakeQuantize(x)
	must(t, err)
	e := 0.0
	for i, v := range x.F32() {
		d := float64(v - y.F32()[i])
		e += d * d
	}
	return e
}

// TestEntropyLevels: one-signed data with an asymmetric uint8 scheme uses
// all 255 levels; the threshold is found and lies within the data.
func TestEntropyOneSided(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	xs := make([]float32, 100000)
	for i := range xs {
		xs[i] = float32(math.Abs(rng.NormFloat64()))
	}
	xs[0] = 40
	h := hist(t, calib.Config{Method: calib.MethodEntropy, Scheme: quant.Scheme{DType: tensor.Uint8}})
	must(t, h.Observe(f32(tensor.Shape{len(xs)}, xs...)))
	lo, hi := h.Range()
	if lo[0] < 0 || hi[0] > 10 || hi[0] < 2.5 {
		t.Errorf("range [%g, %g]", lo[0], hi[0])
	}
}

// TestHistogramDegenerate: constant, zero and tiny data give sensible
// ranges for every method.
func TestHistogramDegenerate(t *testing.T) {
	for _, m := range []calib.Method{calib.MethodMinMax, calib.MethodPercentile, calib.MethodEntropy, calib.MethodMSE} {
		for _, c := range []struct {
			v      float32
			lo, hi float32
		}{{3, 3, 3}, {0, 0, 0}, {-2.5, -2.5, -2.5}, {1e-30, 1e-30, 1e-30}} {
			for _, sym := range []bool{false, true} {
				h := hist(t, calib.Config{Method: m, Scheme: quant.Scheme{DType: tensor.Int8, Symmetric: sym}})
				xs := make([]float32, 100)
				for i := range xs {
					xs[i] = c.v
				}
				must(t, h.Observe(f32(tensor.Shape{100}, xs...)))
				lo, hi := h.Range()
				if lo[0] != c.lo || hi[0] != c.hi {
					t.Errorf("%s sym=%v constant %g: [%g, %g]", m, sym, c.v, lo[0], hi[0])
				}
				if _, err := (quant.Scheme{DType: tensor.Int8, Symmetric: sym}).ParamsFor(lo, hi); err != nil {
					t.Errorf("%s constant %g: %v", m, c.v, err)
				}
			}
		}
		h := hist(t, calib.Config{Method: m})
		if lo, hi := h.Range(); lo != nil || hi != nil {
			t.Errorf("%s: empty histogram has a range", m)
		}
	}
}

// reluData returns n samples of ReLU(N(0, 1) + shift): a spike of exact
// zeros (about half of the data) and a half-normal tail.
func reluData(seed uint64, n int, shift float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, seed))
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(max(0, rng.NormFloat64()+shift))
	}
	return xs
}

// TestEntropyReLU: the spike of exact zeros after a ReLU must not drive
// the entropy search to a tiny threshold (it did: the zero bin dominated
// the divergence, and LeNet's relu1 got 3.98 of 11.2). For ReLU(N(0, 1))
// with uint8 asymmetric (255 levels over [0, t]) and int8 (128 levels),
// the threshold must keep at least 99.9% of the data (t > 3.09) and clip
// the far tail (t < max).
func TestEntropyReLU(t *testing.T) {
	for _, c := range []struct {
		name   string
		scheme quant.Scheme
		shift  float64
	}{
		{"uint8", quant.Scheme{DType: tensor.Uint8}, 0},
		{"int8", quant.Scheme{DType: tensor.Int8}, 0},
		{"uint8 shifted", quant.Scheme{DType: tensor.Uint8}, -0.5},
		{"int8 symmetric", quant.Scheme{DType: tensor.Int8, Symmetric: true}, 0},
	} {
		xs := reluData(7, 200000, c.shift)
		h := hist(t, calib.Config{Method: calib.MethodEntropy, Scheme: c.scheme})
		must(t, h.Observe(f32(tensor.Shape{len(xs)}, xs...)))
		lo, hi := h.Range()
		_, mx := h.MinMax()
		p999 := 3.09 + c.shift
		if lo[0] != 0 || float64(hi[0]) < p999 || hi[0] > mx {
			t.Errorf("%s: range [%g, %g] for ReLU data up to %g: want [0, t] with %g < t <= max", c.name, lo[0], hi[0], mx, p999)
		}
		t.Logf("%s: [%g, %g], max %g", c.name, lo[0], hi[0], mx)
	}
}
