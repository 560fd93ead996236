package calib_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

func f32(shape tensor.Shape, xs ...float32) *tensor.Tensor { return tensor.FromFloat32(shape, xs) }

func wantRange(t *testing.T, o calib.Observer, lo, hi []float32) {
	t.Helper()
	gl, gh := o.Range()
	if !slices.Equal(gl, lo) || !slices.Equal(gh, hi) {
		t.Errorf("range [%v, %v], want [%v, %v]", gl, gh, lo, hi)
	}
}

func TestMinMax(t *testing.T) {
	m := calib.NewMinMax()
	if lo, hi := m.Range(); lo != nil || hi != nil {
		t.Error("empty observer has a range")
	}
	must(t, m.Observe(f32(tensor.Shape{2, 2}, 1, -2, 3, 0.5)))
	must(t, m.Observe(f32(tensor.Shape{0})))
	must(t, m.Observe(f32(tensor.Shape{3}, 0, 5, -1)))
	wantRange(t, m, []float32{-2}, []float32{5})

	// float16 and float64 inputs.
	h := &tensor.Tensor{DType: tensor.Float16, Shape: tensor.Shape{2}, Data: []uint16{tensor.Float32ToHalf(-7), tensor.Float32ToHalf(0.25)}}
	must(t, m.Observe(h))
	d := &tensor.Tensor{DType: tensor.Float64, Shape: tensor.Shape{1}, Data: []float64{9}}
	must(t, m.Observe(d))
	wantRange(t, m, []float32{-7}, []float32{9})

	// Non-finite values are rejected and leave the range unchanged.
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		err := m.Observe(f32(tensor.Shape{3}, 100, bad, -100))
		if !errors.Is(err, calib.ErrNonFinite) {
			t.Errorf("%g: err %v, want ErrNonFinite", bad, err)
		}
	}
	wantRange(t, m, []float32{-7}, []float32{9})
	if err := m.Observe(&tensor.Tensor{DType: tensor.Int64, Shape: tensor.Shape{1}, Data: []int64{1}}); err == nil {
		t.Error("int64 tensor accepted")
	}
	if err := m.Merge(calib.NewMinMaxPerChannel(0)); err == nil {
		t.Error("merged a per-channel MinMax into a per-tensor one")
	}
	if err := m.Merge(calib.NewChannelMean(0)); err == nil {
		t.Error("merged a ChannelMean into a MinMax")
	}
}

func TestMinMaxPerChannel(t *testing.T) {
	x := f32(tensor.Shape{2, 3, 2},
		1, 2, -3, 4, 5, 6,
		-1, 0, 7, 8, 9, -10)
	for _, axis := range []int{1, -2} {
		m := calib.NewMinMaxPerChannel(axis)
		must(t, m.Observe(x))
		wantRange(t, m, []float32{-1, -3, -10}, []float32{2, 8, 9})
	}
	m := calib.NewMinMaxPerChannel(-1)
	must(t, m.Observe(x))
	wantRange(t, m, []float32{-3, -10}, []float32{9, 8})
	if err := m.Observe(f32(tensor.Shape{3}, 1, 2, 3)); err == nil {
		t.Error("channel count change accepted")
	}
	if err := calib.NewMinMaxPerChannel(3).Observe(x); err == nil {
		t.Error("axis 3 of a rank-3 tensor accepted")
	}
}

func TestMovingAverage(t *testing.T) {
	m := calib.NewMovingAverage(0.5)
	must(t, m.Observe(f32(tensor.Shape{2}, -2, 4)))
	must(t, m.Observe(f32(tensor.Shape{2}, 0, 8)))
	must(t, m.Observe(f32(tensor.Shape{2}, -4, 0)))
	// min: -2 -> -1 -> -2.5; max: 4 -> 6 -> 3.
	wantRange(t, m, []float32{-2.5}, []float32{3})

	pc := calib.NewMovingAveragePerChannel(0.25, 0)
	must(t, pc.Observe(f32(tensor.Shape{2, 2}, 0, 4, -4, 0)))
	must(t, pc.Observe(f32(tensor.Shape{2, 2}, 4, 8, 0, 0)))
	// channel 0: min 0 -> 1, max 4 -> 5; channel 1: min -4 -> -3, max 0.
	wantRange(t, pc, []float32{1, -3}, []float32{5, 0})

	// Merge weights by batch count.
	a, b := calib.NewMovingAverage(0.5), calib.NewMovingAverage(0.5)
	must(t, a.Observe(f32(tensor.Shape{1}, 3)))
	must(t, b.Observe(f32(tensor.Shape{1}, 6)))
	must(t, b.Observe(f32(tensor.Shape{1}, 6)))
	must(t, a.Merge(b))
	wantRange(t, a, []float32{5}, []float32{5})
	if err := a.Merge(calib.NewMovingAverage(0.1)); err == nil {
		t.Error("merged observers of different momentum")
	}
}

func TestChannelMean(t *testing.T) {
	x := f32(tensor.Shape{2, 2, 3},
		1, 2, 3, 10, 10, 10,
		5, 6, 7, -1, -2, -3)
	m := calib.NewChannelMean(1)
	must(t, m.Observe(x))
	if got := m.Means(); !slices.Equal(got, []float64{4, 4}) {
		t.Errorf("means %v, want [4 4]", got)
	}
	wantRange(t, m, []float32{1, -3}, []float32{7, 10})
	if m.Count() != 6 {
		t.Errorf("count %d, want 6", m.Count())
	}
	m2 := calib.NewChannelMean(1)
	must(t, m2.Observe(f32(tensor.Shape{1, 2, 1}, 10, 4)))
	must(t, m.Merge(m2))
	if got := m.Means(); !slices.Equal(got, []float64{(24 + 10) / 7.0, (24 + 4) / 7.0}) {
		t.Errorf("merged means %v", got)
	}
	if err := m.Observe(f32(tensor.Shape{1, 3}, 1, 2, float32(math.NaN()))); !errors.Is(err, calib.ErrNonFinite) && err == nil {
		t.Error("NaN accepted")
	}
}

// TestMergeEqualsAll checks that observing splits of the data and merging
// equals observing it all, for every exactly mergeable observer.
func TestMergeEqualsAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var batches []*tensor.Tensor
	for i := range 12 {
		n := 3 * (1 + rng.IntN(40))
		xs := make([]float32, n)
		sc := math.Ldexp(1, i-6) // ranges grow and shrink across batches
		for j := range xs {
			xs[j] = float32(rng.NormFloat64() * sc)
		}
		if i == 4 {
			clear(xs)
		}
		batches = append(batches, f32(tensor.Shape{n / 3, 3}, xs...))
	}
	makers := map[string]calib.Factory{
		"minmax":     func() calib.Observer { return calib.NewMinMax() },
		"perchannel": func() calib.Observer { return calib.NewMinMaxPerChannel(1) },
		"mean":       func() calib.Observer { return calib.NewChannelMean(1) },
	}
	for _, m := range []calib.Method{calib.MethodMinMax, calib.MethodPercentile, calib.MethodEntropy, calib.MethodMSE} {
		f, err := calib.Config{Method: m, Bins: 256, Scheme: quant.Scheme{DType: tensor.Int8, Symmetric: m == calib.MethodPercentile}}.Factory()
		must(t, err)
		makers["hist-"+string(m)] = f
	}
	for name, f := range makers {
		all := f()
		for _, b := range batches {
			must(t, all.Observe(b))
		}
		for split := range 4 {
			parts := []calib.Observer{f(), f(), f()}
			for i, b := range batches {
				must(t, parts[(i*7+split)%3].Observe(b))
			}
			must(t, parts[2].Merge(parts[0]))
			must(t, parts[2].Merge(parts[1]))
			al, ah := all.Range()
			pl, ph := parts[2].Range()
			if !slices.Equal(al, pl) || !slices.Equal(ah, ph) {
				t.Errorf("%s split %d: merged [%v %v], all at once [%v %v]", name, split, pl, ph, al, ah)
			}
			if h, ok := all.(*calib.Histogram); ok {
				s1, w1, c1 := h.Counts()
				s2, w2, c2 := parts[2].(*calib.Histogram).Counts()
				if s1 != s2 || w1 != w2 || !slices.Equal(c1, c2) {
					t.Errorf("%s split %d: merged counts differ", name, split)
				}
			}
			if mm, ok := all.(*calib.ChannelMean); ok {
				got, want := parts[2].(*calib.ChannelMean).Means(), mm.Means()
				for c := range want {
					if math.Abs(got[c]-want[c]) > 1e-12 {
						t.Errorf("%s: mean %d %g, want %g", name, c, got[c], want[c])
					}
				}
			}
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []calib.Config{
		{Method: "bogus"},
		{Method: calib.MethodEntropy, PerChannel: true},
		{Method: calib.MethodPercentile, Percentile: 101},
		{Method: calib.MethodPercentile, Percentile: -1},
		{Method: calib.MethodMovingAverage, Momentum: 2},
		{Method: calib.MethodMSE, Bins: 1000},
		{Method: calib.MethodMSE, Bins: 128},
		{Scheme: quant.Scheme{DType: tensor.Float32}},
	} {
		if _, err := c.Factory(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	for c, want := range map[calib.Config]string{
		{}: "*calib.MinMax",
		{Method: calib.MethodMinMax, PerChannel: true, Axis: 0}: "*calib.MinMax",
		{Method: calib.MethodMovingAverage}:                     "*calib.MovingAverageMinMax",
		{Method: calib.MethodPercentile}:                        "*calib.Histogram",
		{Method: calib.MethodEntropy}:                           "*calib.Histogram",
		{Method: calib.MethodMSE}:                               "*calib.Histogram",
	} {
		f, err := c.Factory()
		must(t, err)
		a, b := f(), f()
		if a == b {
			t.Error("factory returned the same observer twice")
		}
		if got := typeName(a); got != want {
			t.Errorf("%+v: %s, want %s", c, got, want)
		}
	}
	if _, err := calib.NewHistogram(calib.Config{Method: calib.MethodMovingAverage}); err == nil {
		t.Error("moving-average histogram accepted")
	}
}

func typeName(o calib.Observer) string {
	switch o.(type) {
	case *calib.MinMax:
		return "*calib.MinMax"
	case *calib.MovingAverageMinMax:
		return "*calib.MovingAverageMinMax"
	case *calib.Histogram:
		return "*calib.Histogram"
	}
	return "?"
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
