// Package quant holds the arithmetic of linear quantization and nothing
// else: a Scheme (integer type, symmetric or not, per-tensor or per-channel,
// narrow range, reduce_range), the Params (scales and zero points) a scheme
// gives for a real range, and reference loops for quantize and dequantize
// that agree bit for bit with the QuantizeLinear and DequantizeLinear
// kernels of package infer.
//
// The formulas are ONNX's:
//
//	QuantizeLinear:   q = saturate(round_half_even(x / scale) + zero_point)
//	DequantizeLinear: x = (q - zero_point) * scale
//
// with x / scale one float32 division, the rounding done in float64 on that
// float32 quotient (exact), and (q - zero_point) * scale one float32
// multiplication of an exactly converted integer. NaN quantizes to the
// lowest code (what ONNX Runtime and goslim's kernels produce); ±Inf
// saturate.
//
// Which tensors are quantized, and where the ranges come from, is decided
// elsewhere (package calib observes ranges, package ptq marks tensors and
// inserts QuantizeLinear/DequantizeLinear nodes).
package quant

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/goslim/goslim/tensor"
)

// Scheme describes how real values map to integers.
//
// The integer range [qmin, qmax] (see Bounds) is the dtype's full range,
// narrowed by one code at the bottom with Narrow (int8 [-127, 127], uint8
// [1, 255]) and halved with ReduceRange (7 bits: int8 [-64, 63], uint8
// [0, 127]; both: int8 [-63, 63], uint8 [1, 127]). ReduceRange is for CPUs
// whose int8 dot-product path (VPMADDUBSW without VNNI) adds pairs of
// uint8×int8 products into int16 and would saturate with full-range
// weights; it is meant for weights.
type Scheme struct {
	// DType is the integer type: tensor.Int8 or tensor.Uint8 (tensor.Int16
	// and tensor.Uint16 are accepted too).
	DType tensor.DType `json:"dtype"`
	// Symmetric forces the range to [-a, a] with a = max(|min|, |max|) and
	// the zero point to the middle of [qmin, qmax] (0 for int8, 128 for
	// uint8, 64 for uint8 with ReduceRange).
	Symmetric bool `json:"symmetric,omitempty"`
	// PerChannel gives each index along Axis its own scale and zero point.
	PerChannel bool `json:"per_channel,omitempty"`
	// Axis is the channel axis when PerChannel is set; negative counts from
	// the end (ONNX allows axis -1). Ignored otherwise.
	Axis int `json:"axis,omitempty"`
	// Narrow drops the lowest code (int8 -128, uint8 0) so that the
	// symmetric range is exactly symmetric.
	Narrow bool `json:"narrow,omitempty"`
	// ReduceRange uses one bit less (7 bits for 8-bit types).
	ReduceRange bool `json:"reduce_range,omitempty"`
}

// Validate reports whether s is usable.
func (s Scheme) Validate() error {
	switch s.DType {
	case tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16:
	default:
		return fmt.Errorf("quant: scheme dtype %v is not supported (want int8, uint8, int16 or uint16)", s.DType)
	}
	return nil
}

// String describes the scheme briefly, e.g. "int8 symmetric per-channel(axis 0) narrow".
func (s Scheme) String() string {
	var b strings.Builder
	b.WriteString(s.DType.String())
	if s.Symmetric {
		b.WriteString(" symmetric")
	} else {
		b.WriteString(" asymmetric")
	}
	if s.PerChannel {
		fmt.Fprintf(&b, " per-channel(axis %d)", s.Axis)
	} else {
		b.WriteString(" per-tensor")
	}
	if s.Narrow {
		b.WriteString(" narrow")
	}
	if s.ReduceRange {
		b.WriteString(" reduce-range")
	}
	return b.String()
}

// Limits returns the full range of an integer dtype (what QuantizeLinear
// saturates to). ok is false for other dtypes.
func Limits(dt tensor.DType) (lo, hi int32, ok bool) {
	switch dt {
	case tensor.Int8:
		return math.MinInt8, math.MaxInt8, true
	case tensor.Uint8:
		return 0, math.MaxUint8, true
	case tensor.Int16:
		return math.MinInt16, math.MaxInt16, true
	case tensor.Uint16:
		return 0, math.MaxUint16, true
	}
	return 0, 0, false
}

// Bounds returns the integer range [qmin, qmax] the scheme uses (see
// Scheme). It returns 0, 0 for an invalid scheme.
func (s Scheme) Bounds() (qmin, qmax int32) {
	lo, hi, ok := Limits(s.DType)
	if !ok {
		return 0, 0
	}
	if s.ReduceRange {
		// One bit less: signed types halve both ends, unsigned the top.
		if lo < 0 {
			lo, hi = lo/2, hi/2
		} else {
			hi /= 2
		}
	}
	if s.Narrow {
		lo++
	}
	return lo, hi
}

// Params are the quantization parameters of one tensor: one scale and zero
// point (per-tensor), or one per channel along Scheme.Axis.
type Params struct {
	// Scheme is the scheme the parameters were computed for.
	Scheme Scheme
	// Scale holds the scales (1 element per-tensor, C per-channel); every
	// scale is a positive, finite, normal float32.
	Scale []float32
	// ZeroPoint holds the zero points, each within Scheme.Bounds.
	ZeroPoint []int32
}

// Len returns the number of channels (1 for per-tensor parameters).
func (p *Params) Len() int { return len(p.Scale) }

// ErrRange is wrapped by the errors ParamsFor returns for unusable ranges.
var ErrRange = errors.New("bad range")

// ParamsFor returns the parameters that map the real range [min[c], max[c]]
// of each channel c onto the scheme's integers. Per-tensor schemes take
// 1-element slices; per-channel schemes take one element per channel.
//
// For each channel:
//   - the range is widened to include 0 (min = min(min, 0), max = max(max,
//     0)), so 0 is always exactly representable: it quantizes to the zero
//     point, which dequantizes to exactly 0;
//   - symmetric: a = max(|min|, |max|), scale = 2a / (qmax - qmin),
//     zero point = round_half_even((qmin + qmax) / 2);
//   - asymmetric: scale = (max - min) / (qmax - qmin), zero point =
//     round_half_even(qmin - min / scale) clamped to [qmin, qmax];
//   - scales are computed in float64 and rounded to float32; the zero point
//     is computed from the float32 scale;
//   - a degenerate range (all zeros, or a scale below the smallest normal
//     float32) gets scale 1 and the scheme's usual zero point (the symmetric
//     middle, or qmin for asymmetric schemes): 0 stays exact and nothing
//     divides by zero.
//
// NaN or infinite bounds and min > max are errors (wrapping ErrRange).
func (s Scheme) ParamsFor(min, max []float32) (Params, error) {
	if err := s.Validate(); err != nil {
		return Params{}, err
	}
	if len(min) != len(max) {
		return Params{}, fmt.Errorf("quant: %d minimums for %d maximums: %w", len(min), len(max), ErrRange)
	}
	if len(min) == 0 {
		return Params{}, fmt.Errorf("quant: empty range: %w", ErrRange)
	}
	if !s.PerChannel && len(min) != 1 {
		return Params{}, fmt.Errorf("quant: per-tensor scheme given %d ranges: %w", len(min), ErrRange)
	}
	p := Params{Scheme: s, Scale: make([]float32, len(min)), ZeroPoint: make([]int32, len(min))}
	for c := range min {
		sc, zp, err := s.ScaleZeroPoint(min[c], max[c])
		if err != nil {
			if len(min) > 1 {
				return Params{}, fmt.Errorf("quant: channel %d: %w", c, err)
			}
			return Params{}, fmt.Errorf("quant: %w", err)
		}
		p.Scale[c], p.ZeroPoint[c] = sc, zp
	}
	return p, nil
}

// ScaleZeroPoint computes one channel's scale and zero point as ParamsFor
// documents.
func (s Scheme) ScaleZeroPoint(min, max float32) (scale float32, zeroPoint int32, err error) {
	if err := s.Validate(); err != nil {
		return 0, 0, err
	}
	lo, hi := float64(min), float64(max)
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 0, 0, fmt.Errorf("range [%g, %g] is not finite: %w", min, max, ErrRange)
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("range [%g, %g] has min > max: %w", min, max, ErrRange)
	}
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	qmin, qmax := s.Bounds()
	dq := float64(qmax) - float64(qmin)
	if s.Symmetric {
		a := math.Max(-lo, hi)
		lo, hi = -a, a
	}
	sc := float32((hi - lo) / dq)
	mid := int32(math.RoundToEven((float64(qmin) + float64(qmax)) / 2))
	if !(sc >= 0x1p-126) || math.IsInf(float64(sc), 0) {
		// Degenerate (or underflowing) range: any scale keeps 0 exact.
		if s.Symmetric {
			return 1, mid, nil
		}
		return 1, qmin, nil
	}
	if s.Symmetric {
		return sc, mid, nil
	}
	zp := math.RoundToEven(float64(qmin) - lo/float64(sc))
	zp = math.Max(float64(qmin), math.Min(float64(qmax), zp))
	return sc, int32(zp), nil
}

// Quantize returns ONNX QuantizeLinear of one value:
// saturate(round_half_even(x / scale) + zeroPoint) into [lo, hi], with
// x / scale a float32 division; NaN gives lo. With lo, hi from Limits it
// equals the kernel bit for bit.
func Quantize(x, scale float32, zeroPoint, lo, hi int32) int32 {
	f := math.RoundToEven(float64(x/scale)) + float64(zeroPoint)
	switch {
	case f >= float64(hi):
		return hi
	case f > float64(lo):
		return int32(f)
	}
	return lo // below the range, or NaN
}

// Dequantize returns ONNX DequantizeLinear of one value:
// float32(q - zeroPoint) * scale, one float32 multiplication.
func Dequantize(q int32, scale float32, zeroPoint int32) float32 {
	return float32(int64(q)-int64(zeroPoint)) * scale
}

// FakeQuantize returns Dequantize(Quantize(x, scale, zeroPoint, lo, hi),
// scale, zeroPoint): the value x takes after a Q/DQ pair.
func FakeQuantize(x, scale float32, zeroPoint, lo, hi int32) float32 {
	return Dequantize(Quantize(x, scale, zeroPoint, lo, hi), scale, zeroPoint)
}

// Channels describes how the elements of a tensor of the given shape map to
// channels: viewed as [outer, c, inner] around the scheme's axis, element e
// belongs to channel (e / inner) % c. Per-tensor parameters give c = 1,
// inner = the element count. It fails when the axis is out of range or the
// parameter count does not match the axis dimension.
func (p *Params) Channels(shape tensor.Shape) (c, inner int, err error) {
	n := shape.Size()
	if !p.Scheme.PerChannel {
		if len(p.Scale) != 1 {
			return 0, 0, fmt.Errorf("quant: per-tensor parameters with %d scales", len(p.Scale))
		}
		return 1, max(n, 1), nil
	}
	ax := p.Scheme.Axis
	if ax < 0 {
		ax += len(shape)
	}
	if ax < 0 || ax >= len(shape) {
		return 0, 0, fmt.Errorf("quant: channel axis %d out of range for shape %v", p.Scheme.Axis, shape)
	}
	if shape[ax] != len(p.Scale) {
		return 0, 0, fmt.Errorf("quant: %d channel scales for axis %d of shape %v", len(p.Scale), ax, shape)
	}
	inner = 1
	for _, d := range shape[ax+1:] {
		inner *= d
	}
	return shape[ax], max(inner, 1), nil
}

// Quantize quantizes a float32 tensor to the scheme's dtype: the
// QuantizeLinear formula, saturating to Scheme.Bounds (which equal the
// dtype's limits unless Narrow or ReduceRange narrow them; values inside
// the calibrated range never reach the bounds).
func (p *Params) Quantize(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("quant: cannot quantize a %v tensor (want float32)", x.DType)
	}
	if len(p.ZeroPoint) != len(p.Scale) {
		return nil, fmt.Errorf("quant: %d zero points for %d scales", len(p.ZeroPoint), len(p.Scale))
	}
	c, inner, err := p.Channels(x.Shape)
	if err != nil {
		return nil, err
	}
	out, err := tensor.New(p.Scheme.DType, x.Shape.Clone())
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	lo, hi := p.Scheme.Bounds()
	xs := x.F32()
	switch d := out.Data.(type) {
	case []int8:
		quantizeInto(d, xs, p, c, inner, lo, hi)
	case []uint8:
		quantizeInto(d, xs, p, c, inner, lo, hi)
	case []int16:
		quantizeInto(d, xs, p, c, inner, lo, hi)
	case []uint16:
		quantizeInto(d, xs, p, c, inner, lo, hi)
	default:
		return nil, fmt.Errorf("quant: scheme dtype %v is not supported", p.Scheme.DType)
	}
	return out, nil
}

func quantizeInto[Q int8 | uint8 | int16 | uint16](dst []Q, xs []float32, p *Params, c, inner int, lo, hi int32) {
	for e, x := range xs {
		ch := (e / inner) % c
		dst[e] = Q(Quantize(x, p.Scale[ch], p.ZeroPoint[ch], lo, hi))
	}
}

// Dequantize returns the float32 tensor of DequantizeLinear(q) with these
// parameters; q must have the scheme's dtype.
func (p *Params) Dequantize(q *tensor.Tensor) (*tensor.Tensor, error) {
	if q.DType != p.Scheme.DType {
		return nil, fmt.Errorf("quant: cannot dequantize a %v tensor with %v parameters", q.DType, p.Scheme.DType)
	}
	if len(p.ZeroPoint) != len(p.Scale) {
		return nil, fmt.Errorf("quant: %d zero points for %d scales", len(p.ZeroPoint), len(p.Scale))
	}
	c, inner, err := p.Channels(q.Shape)
	if err != nil {
		return nil, err
	}
	out := make([]float32, q.Len())
	switch d := q.Data.(type) {
	case []int8:
		dequantizeInto(out, d, p, c, inner)
	case []uint8:
		dequantizeInto(out, d, p, c, inner)
	case []int16:
		dequantizeInto(out, d, p, c, inner)
	case []uint16:
		dequantizeInto(out, d, p, c, inner)
	default:
		return nil, fmt.Errorf("quant: cannot dequantize a %v tensor", q.DType)
	}
	return tensor.FromFloat32(q.Shape.Clone(), out), nil
}

func dequantizeInto[Q int8 | uint8 | int16 | uint16](dst []float32, qs []Q, p *Params, c, inner int) {
	for e, q := range qs {
		ch := (e / inner) % c
		dst[e] = Dequantize(int32(q), p.Scale[ch], p.ZeroPoint[ch])
	}
}

// FakeQuantize returns the float32 tensor a Q/DQ pair with these
// parameters produces from x (saturating to Scheme.Bounds).
func (p *Params) FakeQuantize(x *tensor.Tensor) (*tensor.Tensor, error) {
	q, err := p.Quantize(x)
	if err != nil {
		return nil, err
	}
	return p.Dequantize(q)
}

// ScaleTensor returns the scales as a float32 tensor for a QuantizeLinear
// or DequantizeLinear node: a scalar for per-tensor parameters, a 1-D
// tensor of length C for per-channel ones.
func (p *Params) ScaleTensor() *tensor.Tensor {
	s := append([]float32(nil), p.Scale...)
	if !p.Scheme.PerChannel {
		return tensor.FromFloat32(tensor.Shape{}, s)
	}
	return tensor.FromFloat32(tensor.Shape{len(s)}, s)
}

// ZeroPointTensor returns the zero points as a tensor of the scheme's
// dtype, shaped like ScaleTensor.
func (p *Params) ZeroPointTensor() *tensor.Tensor {
	shape := tensor.Shape{}
	if p.Scheme.PerChannel {
		shape = tensor.Shape{len(p.ZeroPoint)}
	}
	t := &tensor.Tensor{DType: p.Scheme.DType, Shape: shape}
	switch p.Scheme.DType {
	case tensor.Int8:
		t.Data = convertInts[int8](p.ZeroPoint)
	case tensor.Uint8:
		t.Data = convertInts[uint8](p.ZeroPoint)
	case tensor.Int16:
		t.Data = convertInts[int16](p.ZeroPoint)
	case tensor.Uint16:
		t.Data = convertInts[uint16](p.ZeroPoint)
	default:
		t.DType, t.Data = tensor.Int32, append([]int32(nil), p.ZeroPoint...)
	}
	return t
}

func convertInts[Q int8 | uint8 | int16 | uint16](zp []int32) []Q {
	out := make([]Q, len(zp))
	for i, v := range zp {
		out[i] = Q(v)
	}
	return out
}

// QuantizeBias quantizes biases to int32 with zero point 0, as QDQ models
// store the bias of Conv and Gemm: q[i] = round_half_even(b[i] / scale),
// where scale has 1 element or one per bias element (normally input scale ×
// weight scale, computed by the caller in float32). The division is done in
// float64. A scale that is not positive and finite, or a bias that does not
// fit in int32, is an error.
func QuantizeBias(b []float32, scale []float32) ([]int32, error) {
	if len(scale) != 1 && len(scale) != len(b) {
		return nil, fmt.Errorf("quant: %d bias scales for %d biases", len(scale), len(b))
	}
	out := make([]int32, len(b))
	for i, v := range b {
		s := scale[0]
		if len(scale) > 1 {
			s = scale[i]
		}
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("quant: bias scale %g is not positive and finite", s)
		}
		f := math.RoundToEven(float64(v) / float64(s))
		if !(f >= math.MinInt32 && f <= math.MaxInt32) {
			return nil, fmt.Errorf("quant: bias %d (%g) / scale %g does not fit in int32", i, v, s)
		}
		out[i] = int32(f)
	}
	return out, nil
}
