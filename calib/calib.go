// Package calib collects the statistics post-training quantization needs:
// observers fold activations one batch at a time (never keeping them) into
// ranges, histograms and per-channel means, and Collect runs an FP32 graph
// over calibration batches through infer's value tap to feed them.
//
// Observers:
//
//	MinMax               running min/max (per-tensor or per-channel)
//	MovingAverageMinMax  exponential moving average of per-batch min/max
//	Histogram            fixed bins that re-bin as the range grows; its Range
//	                     is min/max, a percentile, the KL-entropy threshold
//	                     (TensorRT's search) or the MSE-optimal clip
//	ChannelMean          per-channel means (bias correction) and min/max
//
// Every observer rejects NaN and ±Inf with an error wrapping ErrNonFinite,
// can be merged with another of the same configuration (calibration split
// across workers), and holds a fixed amount of state: O(channels) for
// MinMax, MovingAverageMinMax and ChannelMean, 2×Bins counters for
// Histogram, whatever the number of batches.
//
// Range reports the clip range [min, max] before any widening: turning it
// into scales and zero points (which widens it to include 0) is
// quant.Scheme.ParamsFor's job. Ranges are nil when nothing was observed.
package calib

import (
	"errors"
	"fmt"
	"math"

	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

// Observer folds tensors into statistics.
type Observer interface {
	// Observe folds one tensor into the statistics. The tensor may be
	// reused by the caller after the call: observers keep nothing of it.
	// Floating-point tensors (float32, float16, float64) are accepted;
	// NaN or ±Inf elements give an error wrapping ErrNonFinite and leave
	// the statistics unchanged. Empty tensors are ignored.
	Observe(t *tensor.Tensor) error
	// Range returns the clip range: 1-element slices for per-tensor
	// observers, one element per channel for per-channel ones, nil when
	// nothing was observed.
	Range() (min, max []float32)
	// Merge folds another observer's statistics into this one, as if this
	// observer had seen its data too. The other observer must have the
	// same type and configuration; it is not modified.
	Merge(other Observer) error
}

// Factory makes a fresh observer. Configurations hold factories, never
// observer instances, so every value and every worker gets its own.
type Factory func() Observer

// ErrNonFinite is wrapped by the errors observers return for NaN or
// infinite elements.
var ErrNonFinite = errors.New("NaN or infinite values")

// Method names a range algorithm.
type Method string

// Range algorithms.
const (
	// MethodMinMax: the running minimum and maximum.
	MethodMinMax Method = "minmax"
	// MethodMovingAverage: exponential moving average of per-batch min/max.
	MethodMovingAverage Method = "moving-average"
	// MethodPercentile: clip at a percentile of the histogram.
	MethodPercentile Method = "percentile"
	// MethodEntropy: TensorRT's KL-divergence threshold search.
	MethodEntropy Method = "entropy"
	// MethodMSE: the clip that minimizes the quantize-dequantize error.
	MethodMSE Method = "mse"
)

// Methods lists the range algorithms, for flags and help texts.
func Methods() []Method {
	return []Method{MethodMinMax, MethodMovingAverage, MethodPercentile, MethodEntropy, MethodMSE}
}

// Defaults for Config's zero fields.
const (
	DefaultPercentile = 99.99
	DefaultMomentum   = 0.01
	DefaultBins       = 2048
)

// Config selects and configures an observer. The zero value is a
// per-tensor MinMax.
type Config struct {
	// Method is the range algorithm (default MethodMinMax).
	Method Method `json:"method,omitempty"`
	// PerChannel makes MinMax and MovingAverage keep one range per index
	// along Axis (negative counts from the end). Histogram methods are
	// per-tensor only.
	PerChannel bool `json:"per_channel,omitempty"`
	Axis       int  `json:"axis,omitempty"`
	// Percentile in (0, 100] for MethodPercentile (default 99.99). With a
	// symmetric Scheme it is taken of |x| and the range is [-t, t]; with an
	// asymmetric one the range is the (100-p)th to the pth percentile.
	Percentile float64 `json:"percentile,omitempty"`
	// Momentum in (0, 1] for MethodMovingAverage (default 0.01): after the
	// first batch, min += Momentum × (batch min - min), likewise max.
	Momentum float64 `json:"momentum,omitempty"`
	// Bins is the number of histogram bins on each side of 0: a power of
	// two from 256 to 1<<20 (default 2048, as TensorRT's |x| histogram).
	Bins int `json:"bins,omitempty"`
	// Scheme is the quantization scheme the range is for: the entropy
	// search's level count and the MSE search's quantizer follow it, and
	// percentiles fold to |x| when it is symmetric. Zero means int8
	// asymmetric.
	Scheme quant.Scheme `json:"scheme,omitzero"`
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Method == "" {
		c.Method = MethodMinMax
	}
	if c.Percentile == 0 {
		c.Percentile = DefaultPercentile
	}
	if c.Momentum == 0 {
		c.Momentum = DefaultMomentum
	}
	if c.Bins == 0 {
		c.Bins = DefaultBins
	}
	if c.Scheme.DType == tensor.Undefined {
		c.Scheme.DType = tensor.Int8
	}
	return c
}

// Validate reports whether c (with defaults filled in) is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch c.Method {
	case MethodMinMax, MethodMovingAverage:
	case MethodPercentile, MethodEntropy, MethodMSE:
		if c.PerChannel {
			return fmt.Errorf("calib: method %s is per-tensor only", c.Method)
		}
	default:
		return fmt.Errorf("calib: unknown method %q (want one of %v)", c.Method, Methods())
	}
	if !(c.Percentile > 0 && c.Percentile <= 100) {
		return fmt.Errorf("calib: percentile %g is outside (0, 100]", c.Percentile)
	}
	if !(c.Momentum > 0 && c.Momentum <= 1) {
		return fmt.Errorf("calib: momentum %g is outside (0, 1]", c.Momentum)
	}
	if c.Bins < 256 || c.Bins > 1<<20 || c.Bins&(c.Bins-1) != 0 {
		return fmt.Errorf("calib: histogram bins %d: want a power of two from 256 to %d", c.Bins, 1<<20)
	}
	if err := c.Scheme.Validate(); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	return nil
}

// New returns a fresh observer for c.
func (c Config) New() (Observer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	switch c.Method {
	case MethodMinMax:
		if c.PerChannel {
			return NewMinMaxPerChannel(c.Axis), nil
		}
		return NewMinMax(), nil
	case MethodMovingAverage:
		if c.PerChannel {
			return NewMovingAveragePerChannel(c.Momentum, c.Axis), nil
		}
		return NewMovingAverage(c.Momentum), nil
	}
	return NewHistogram(c)
}

// Factory validates c and returns a factory of its observers.
func (c Config) Factory() (Factory, error) {
	if _, err := c.New(); err != nil {
		return nil, err
	}
	return func() Observer {
		o, _ := c.New()
		return o
	}, nil
}

// MinMax keeps the running minimum and maximum, per tensor or per channel.
// Merge is exact: merging observers equals observing all their data.
type MinMax struct {
	perChannel bool
	axis       int
	min, max   []float32 // nil until something is observed
}

// NewMinMax returns a per-tensor MinMax.
func NewMinMax() *MinMax { return &MinMax{} }

// NewMinMaxPerChannel returns a MinMax with one range per index along axis
// (negative counts from the end).
func NewMinMaxPerChannel(axis int) *MinMax { return &MinMax{perChannel: true, axis: axis} }

// Observe folds t into the ranges.
func (m *MinMax) Observe(t *tensor.Tensor) error {
	lo, hi, err := batchMinMax(t, m.perChannel, m.axis, len(m.min))
	if err != nil || lo == nil {
		return err
	}
	if m.min == nil {
		m.min, m.max = lo, hi
		return nil
	}
	widenRange(m.min, m.max, lo, hi)
	return nil
}

// Range returns copies of the ranges (nil before any data).
func (m *MinMax) Range() (min, max []float32) { return cloneRange(m.min, m.max) }

// Merge folds another MinMax of the same configuration into m.
func (m *MinMax) Merge(other Observer) error {
	o, ok := other.(*MinMax)
	if !ok {
		return fmt.Errorf("calib: cannot merge %T into *calib.MinMax", other)
	}
	if o.perChannel != m.perChannel || o.axis != m.axis {
		return errors.New("calib: cannot merge MinMax observers of different configurations")
	}
	if o.min == nil {
		return nil
	}
	if m.min == nil {
		m.min, m.max = cloneRange(o.min, o.max)
		return nil
	}
	if len(o.min) != len(m.min) {
		return fmt.Errorf("calib: cannot merge MinMax observers of %d and %d channels", len(m.min), len(o.min))
	}
	widenRange(m.min, m.max, o.min, o.max)
	return nil
}

// cloneRange returns copies of lo and hi (nil, nil when lo is nil).
func cloneRange(lo, hi []float32) ([]float32, []float32) {
	if lo == nil {
		return nil, nil
	}
	return append([]float32(nil), lo...), append([]float32(nil), hi...)
}

// widenRange widens the per-channel range [dlo, dhi] to take in [lo, hi]
// (of the same length).
func widenRange(dlo, dhi, lo, hi []float32) {
	for c := range lo {
		dlo[c], dhi[c] = min(dlo[c], lo[c]), max(dhi[c], hi[c])
	}
}

// MovingAverageMinMax keeps an exponential moving average of each batch's
// minimum and maximum (PyTorch's MovingAverageMinMaxObserver): the first
// batch sets the range, later ones move it by Momentum × (batch - range).
// It is order-dependent, so Merge cannot equal sequential observation: it
// averages the two ranges weighted by their batch counts.
type MovingAverageMinMax struct {
	momentum   float64
	perChannel bool
	axis       int
	batches    int
	min, max   []float64
}

// NewMovingAverage returns a per-tensor moving-average observer; momentum
// must lie in (0, 1] (Config.Validate checks it; other values are clamped).
func NewMovingAverage(momentum float64) *MovingAverageMinMax {
	return &MovingAverageMinMax{momentum: clampMomentum(momentum)}
}

// NewMovingAveragePerChannel returns a per-channel moving-average observer
// along axis.
func NewMovingAveragePerChannel(momentum float64, axis int) *MovingAverageMinMax {
	return &MovingAverageMinMax{momentum: clampMomentum(momentum), perChannel: true, axis: axis}
}

func clampMomentum(m float64) float64 {
	if !(m > 0) {
		return DefaultMomentum
	}
	return min(m, 1)
}

// Observe folds one batch's min/max into the averages.
func (m *MovingAverageMinMax) Observe(t *tensor.Tensor) error {
	lo, hi, err := batchMinMax(t, m.perChannel, m.axis, len(m.min))
	if err != nil || lo == nil {
		return err
	}
	if m.min == nil {
		m.min, m.max = make([]float64, len(lo)), make([]float64, len(lo))
		for c := range lo {
			m.min[c], m.max[c] = float64(lo[c]), float64(hi[c])
		}
		m.batches = 1
		return nil
	}
	for c := range lo {
		m.min[c] += m.momentum * (float64(lo[c]) - m.min[c])
		m.max[c] += m.momentum * (float64(hi[c]) - m.max[c])
	}
	m.batches++
	return nil
}

// Range returns the averaged ranges (nil before any data).
func (m *MovingAverageMinMax) Range() (min, max []float32) {
	if m.min == nil {
		return nil, nil
	}
	min, max = make([]float32, len(m.min)), make([]float32, len(m.max))
	for c := range m.min {
		min[c], max[c] = float32(m.min[c]), float32(m.max[c])
	}
	return min, max
}

// Merge averages the two ranges weighted by their batch counts.
func (m *MovingAverageMinMax) Merge(other Observer) error {
	o, ok := other.(*MovingAverageMinMax)
	if !ok {
		return fmt.Errorf("calib: cannot merge %T into *calib.MovingAverageMinMax", other)
	}
	if o.perChannel != m.perChannel || o.axis != m.axis || o.momentum != m.momentum {
		return errors.New("calib: cannot merge MovingAverageMinMax observers of different configurations")
	}
	if o.min == nil {
		return nil
	}
	if m.min == nil {
		m.min, m.max, m.batches = append([]float64(nil), o.min...), append([]float64(nil), o.max...), o.batches
		return nil
	}
	if len(o.min) != len(m.min) {
		return fmt.Errorf("calib: cannot merge MovingAverageMinMax observers of %d and %d channels", len(m.min), len(o.min))
	}
	wa := float64(m.batches) / float64(m.batches+o.batches)
	for c := range m.min {
		m.min[c] = wa*m.min[c] + (1-wa)*o.min[c]
		m.max[c] = wa*m.max[c] + (1-wa)*o.max[c]
	}
	m.batches += o.batches
	return nil
}

// ChannelMean keeps per-channel sums (in float64) and counts along an axis,
// for bias correction: the mean of each output channel of a Conv or Gemm
// over all other axes. Its Range is the per-channel min/max. Merge is exact
// up to float64 summation order.
type ChannelMean struct {
	axis     int
	sum      []float64
	count    []int64
	min, max []float32
}

// NewChannelMean returns a ChannelMean along axis (1 for N×C×H×W Conv
// outputs, -1 for Gemm/MatMul outputs).
func NewChannelMean(axis int) *ChannelMean { return &ChannelMean{axis: axis} }

// Observe folds t into the sums.
func (m *ChannelMean) Observe(t *tensor.Tensor) error {
	v, err := newView(t, true, m.axis, len(m.sum))
	if err != nil || v.n == 0 {
		return err
	}
	sum := make([]float64, v.c)
	lo, hi := make([]float32, v.c), make([]float32, v.c)
	for c := range lo {
		lo[c], hi[c] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	finite := true
	var buf [chunk]float32
	v.rows(&buf, func(c int, xs []float32) {
		var s float64
		for _, x := range xs {
			s += float64(x)
		}
		sum[c] += s
		var ok bool
		lo[c], hi[c], ok = scanMinMax(xs, lo[c], hi[c])
		finite = finite && ok
	})
	if !finite {
		return nonFinite(t)
	}
	if m.sum == nil {
		m.sum, m.count, m.min, m.max = sum, make([]int64, v.c), lo, hi
	} else {
		for c := range sum {
			m.sum[c] += sum[c]
		}
		widenRange(m.min, m.max, lo, hi)
	}
	per := int64(v.n / v.c)
	for c := range m.count {
		m.count[c] += per
	}
	return nil
}

// Means returns the per-channel means (nil before any data).
func (m *ChannelMean) Means() []float64 {
	if m.sum == nil {
		return nil
	}
	out := make([]float64, len(m.sum))
	for c, s := range m.sum {
		out[c] = s / float64(m.count[c])
	}
	return out
}

// Count returns how many elements each channel has seen.
func (m *ChannelMean) Count() int64 {
	if m.count == nil {
		return 0
	}
	return m.count[0]
}

// Range returns the per-channel min/max (nil before any data).
func (m *ChannelMean) Range() (min, max []float32) { return cloneRange(m.min, m.max) }

// Merge adds another ChannelMean's sums and counts.
func (m *ChannelMean) Merge(other Observer) error {
	o, ok := other.(*ChannelMean)
	if !ok {
		return fmt.Errorf("calib: cannot merge %T into *calib.ChannelMean", other)
	}
	if o.axis != m.axis {
		return errors.New("calib: cannot merge ChannelMean observers of different axes")
	}
	if o.sum == nil {
		return nil
	}
	if m.sum == nil {
		m.sum, m.count = append([]float64(nil), o.sum...), append([]int64(nil), o.count...)
		m.min, m.max = cloneRange(o.min, o.max)
		return nil
	}
	if len(o.sum) != len(m.sum) {
		return fmt.Errorf("calib: cannot merge ChannelMean observers of %d and %d channels", len(m.sum), len(o.sum))
	}
	for c := range m.sum {
		m.sum[c] += o.sum[c]
		m.count[c] += o.count[c]
	}
	widenRange(m.min, m.max, o.min, o.max)
	return nil
}

// chunk is the size of the conversion buffer for float16 and float64
// tensors.
const chunk = 1024

// view walks a floating-point tensor as rows of `inner` elements, row r
// belonging to channel r % c.
type view struct {
	t        *tensor.Tensor
	n        int // elements
	c, inner int
}

// newView checks t's dtype and, per channel, the axis; want > 0 is the
// channel count earlier batches had.
func newView(t *tensor.Tensor, perChannel bool, axis, want int) (view, error) {
	switch t.DType {
	case tensor.Float32, tensor.Float16, tensor.Float64:
	default:
		return view{}, fmt.Errorf("calib: cannot observe a %v tensor (want float32, float16 or float64)", t.DType)
	}
	if err := t.Check(); err != nil {
		return view{}, fmt.Errorf("calib: %w", err)
	}
	n := t.Len()
	if !perChannel {
		return view{t: t, n: n, c: 1, inner: max(n, 1)}, nil
	}
	ax := axis
	if ax < 0 {
		ax += len(t.Shape)
	}
	if ax < 0 || ax >= len(t.Shape) {
		return view{}, fmt.Errorf("calib: channel axis %d out of range for shape %v", axis, t.Shape)
	}
	c := t.Shape[ax]
	if want > 0 && c != want && n > 0 {
		return view{}, fmt.Errorf("calib: shape %v has %d channels on axis %d, earlier tensors had %d", t.Shape, c, ax, want)
	}
	inner := 1
	for _, d := range t.Shape[ax+1:] {
		inner *= d
	}
	return view{t: t, n: n, c: max(c, 1), inner: max(inner, 1)}, nil
}

// rows calls fn for each row (float32 rows directly, others converted in
// chunks through buf, so a row may come in several calls).
func (v *view) rows(buf *[chunk]float32, fn func(c int, xs []float32)) {
	switch d := v.t.Data.(type) {
	case []float32:
		for r, off := 0, 0; off < v.n; r, off = r+1, off+v.inner {
			fn(r%v.c, d[off:off+v.inner])
		}
	case []float64:
		for r, off := 0, 0; off < v.n; r, off = r+1, off+v.inner {
			row := d[off : off+v.inner]
			for len(row) > 0 {
				k := min(len(row), chunk)
				for i, x := range row[:k] {
					buf[i] = float32(x) // beyond float32 becomes ±Inf: reported
				}
				fn(r%v.c, buf[:k])
				row = row[k:]
			}
		}
	case []uint16:
		for r, off := 0, 0; off < v.n; r, off = r+1, off+v.inner {
			row := d[off : off+v.inner]
			for len(row) > 0 {
				k := min(len(row), chunk)
				for i, h := range row[:k] {
					buf[i] = tensor.HalfToFloat32(h)
				}
				fn(r%v.c, buf[:k])
				row = row[k:]
			}
		}
	}
}

// batchMinMax returns one tensor's per-channel (or 1-element) min and max,
// nil for an empty tensor; want is the channel count of earlier tensors.
func batchMinMax(t *tensor.Tensor, perChannel bool, axis, want int) (lo, hi []float32, err error) {
	v, err := newView(t, perChannel, axis, want)
	if err != nil || v.n == 0 {
		return nil, nil, err
	}
	lo, hi = make([]float32, v.c), make([]float32, v.c)
	for c := range lo {
		lo[c], hi[c] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	finite := true
	var buf [chunk]float32
	v.rows(&buf, func(c int, xs []float32) {
		var ok bool
		lo[c], hi[c], ok = scanMinMax(xs, lo[c], hi[c])
		finite = finite && ok
	})
	if !finite {
		return nil, nil, nonFinite(t)
	}
	return lo, hi, nil
}

// scanMinMax folds xs into the running min l and max h; ok is false when
// an element is NaN or ±Inf (then l and h are meaningless).
func scanMinMax(xs []float32, l, h float32) (float32, float32, bool) {
	var z0, z1 float32
	l1, h1 := l, h
	i := 0
	for ; i+2 <= len(xs); i += 2 {
		a, b := xs[i], xs[i+1]
		z0 += a - a // NaN from here on if a is NaN or ±Inf
		z1 += b - b
		if a < l {
			l = a
		}
		if a > h {
			h = a
		}
		if b < l1 {
			l1 = b
		}
		if b > h1 {
			h1 = b
		}
	}
	for ; i < len(xs); i++ {
		a := xs[i]
		z0 += a - a
		if a < l {
			l = a
		}
		if a > h {
			h = a
		}
	}
	if l1 < l {
		l = l1
	}
	if h1 > h {
		h = h1
	}
	return l, h, z0 == 0 && z1 == 0
}

// nonFinite describes the NaN and Inf elements of t (float64 values
// beyond float32's range count as ±Inf).
func nonFinite(t *tensor.Tensor) error {
	nan, inf := 0, 0
	for i := range t.Len() {
		switch v := t.Float64At(i); {
		case math.IsNaN(v):
			nan++
		case math.Abs(v) > math.MaxFloat32:
			inf++
		}
	}
	return fmt.Errorf("calib: %d of %d elements are not finite (%d NaN, %d ±Inf): %w", nan+inf, t.Len(), nan, inf, ErrNonFinite)
}
