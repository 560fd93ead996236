package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Resize (ai.onnx opsets 10, 11, 13, 18, 19).
//
// Every output coordinate x along a resized axis maps to a coordinate
// x_original of the input (coordinate_transformation_mode), where "taps"
// (input indices and weights) are taken: one for nearest, two for linear,
// four for cubic, or a stretched footprint when antialias=1 downscales.
// The N-D result is the separable product of the per-axis taps, exactly as
// ONNX's reference implementation nests 1-D interpolations. Taps outside
// the input are clamped to its edge, or dropped and the rest renormalized
// with exclude_outside=1. With tf_crop_and_resize an x_original outside
// [0, length-1] yields extrapolation_value.
//
// align_corners, tf_crop_and_resize and half_pixel_symmetric use the
// fractional target length scale*length where the spec says length_resized,
// as the reference does (ONNX's align_corners tests depend on it); with
// sizes and the stretch policy it is the integer size.
//
// Output sizes from scales are floor(length * scale) computed in float32 as
// ONNX shape inference does; roi does not enter the output size (the ONNX
// reference and ONNX Runtime agree on this, the spec text mentions it).
// Opset 10 has neither roi nor sizes: coordinates are "asymmetric" and
// nearest rounds down when upsampling and up when downsampling, as ONNX
// Runtime does for that version. Integer outputs of linear and cubic
// interpolation truncate toward zero like ONNX Runtime and the reference
// (a C cast, numpy's astype), and saturate where those are undefined.

func registerResize(t *kernel.Table) {
	add(t, "Resize", resizeBuild)
}

// Interpolation modes.
const (
	resizeNearest = iota
	resizeLinear
	resizeCubic
)

// Coordinate transformation modes.
const (
	resizeHalfPixel = iota
	resizeHalfPixelSymmetric
	resizePytorchHalfPixel
	resizeAlignCorners
	resizeAsymmetric
	resizeTFHalfPixelForNN
	resizeTFCropAndResize
)

// Nearest rounding modes.
const (
	resizeRoundPreferFloor = iota
	resizeRoundPreferCeil
	resizeFloor
	resizeCeil
	resizeSimple // opset 10: ceil when downsampling, truncate otherwise
)

// keep_aspect_ratio_policy values.
const (
	resizeStretch = iota
	resizeNotLarger
	resizeNotSmaller
)

// resizeKernel holds a Resize node's parsed attributes.
type resizeKernel struct {
	opset     int64
	mode      int
	coord     int
	nearest   int
	policy    int
	cubicA    float64
	exclude   bool
	extrap    float64
	antialias bool
	axes      []int64 // nil: all axes
}

func resizeLookup(info *kernel.Info, attr, val string, names []string) (int, error) {
	for i, n := range names {
		if n == val && n != "" {
			return i, nil
		}
	}
	return 0, info.Errorf("unsupported %s %q", attr, val)
}

func resizeBuild(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &resizeKernel{opset: info.Opset, cubicA: -0.75}
	var err error
	if k.mode, err = resizeLookup(info, "mode", a.Str("mode", "nearest"), []string{"nearest", "linear", "cubic"}); err != nil {
		return nil, err
	}
	// Attributes and their first opset; a non-default value before it is an
	// error rather than silently ignored.
	since := []struct {
		name  string
		opset int64
		def   func(at *ir.Attr) bool
	}{
		{"coordinate_transformation_mode", 11, func(at *ir.Attr) bool { return at.String == "asymmetric" }},
		{"nearest_mode", 11, func(at *ir.Attr) bool { return false }},
		{"cubic_coeff_a", 11, func(at *ir.Attr) bool { return at.Float == -0.75 }},
		{"exclude_outside", 11, func(at *ir.Attr) bool { return at.Int == 0 }},
		{"extrapolation_value", 11, func(at *ir.Attr) bool { return at.Float == 0 }},
		{"antialias", 18, func(at *ir.Attr) bool { return at.Int == 0 }},
		{"axes", 18, func(at *ir.Attr) bool { return false }},
		{"keep_aspect_ratio_policy", 18, func(at *ir.Attr) bool { return at.String == "stretch" }},
	}
	for _, s := range since {
		if at, ok := a.Get(s.name); ok && info.Opset < s.opset && !s.def(at) {
			return nil, info.Errorf("attribute %s needs opset %d (model opset %d)", s.name, s.opset, info.Opset)
		}
	}
	if info.Opset < 11 {
		if k.mode == resizeCubic {
			return nil, info.Errorf("mode cubic needs opset 11 (model opset %d)", info.Opset)
		}
		k.coord, k.nearest = resizeAsymmetric, resizeSimple
		return k, nil
	}
	coords := []string{"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
		"asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"}
	if k.coord, err = resizeLookup(info, "coordinate_transformation_mode", a.Str("coordinate_transformation_mode", "half_pixel"), coords); err != nil {
		return nil, err
	}
	switch {
	case k.coord == resizeTFHalfPixelForNN && info.Opset >= 13:
		return nil, info.Errorf("coordinate_transformation_mode tf_half_pixel_for_nn was removed in opset 13 (model opset %d)", info.Opset)
	case k.coord == resizeHalfPixelSymmetric && info.Opset < 19:
		return nil, info.Errorf("coordinate_transformation_mode half_pixel_symmetric needs opset 19 (model opset %d)", info.Opset)
	}
	nearest := []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
	if k.nearest, err = resizeLookup(info, "nearest_mode", a.Str("nearest_mode", "round_prefer_floor"), nearest); err != nil {
		return nil, err
	}
	k.cubicA = float64(a.Float("cubic_coeff_a", -0.75))
	k.exclude = a.Int("exclude_outside", 0) != 0
	k.extrap = float64(a.Float("extrapolation_value", 0))
	if info.Opset >= 18 {
		k.antialias = a.Int("antialias", 0) != 0
		if axes, ok := a.Ints("axes"); ok {
			k.axes = append([]int64{}, axes...)
		}
		policies := []string{"stretch", "not_larger", "not_smaller"}
		if k.policy, err = resizeLookup(info, "keep_aspect_ratio_policy", a.Str("keep_aspect_ratio_policy", "stretch"), policies); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// resizeDim is the per-axis sampling table: for output coordinate x, taps
// x*k .. x*k+k-1 read input offset off[t] (index times the axis stride)
// with weight w[t].
type resizeDim struct {
	in, out  int
	k        int
	off      []int
	w        []float64
	outside  []bool // tf_crop_and_resize: x maps outside the input (nil if never)
	identity bool   // out == in and every x reads exactly input x
}

// resizePlan is the sampling plan of one Resize call.
type resizePlan struct {
	outShape tensor.Shape
	dims     []resizeDim
}

// plan validates the inputs and computes the output shape and taps.
func (k *resizeKernel) plan(c *kernel.Ctx, shape tensor.Shape, roiT, scT, szT *tensor.Tensor) (*resizePlan, error) {
	rank := len(shape)
	var axes []int
	if k.axes != nil {
		seen := make([]bool, rank)
		for _, a := range k.axes {
			ax, err := normAxis(c, a, rank)
			if err != nil {
				return nil, err
			}
			if seen[ax] {
				return nil, c.Errorf("axis %d repeated in axes %v", a, k.axes)
			}
			seen[ax] = true
			axes = append(axes, ax)
		}
	} else {
		for d := 0; d < rank; d++ {
			axes = append(axes, d)
		}
	}
	n := len(axes)
	switch {
	case scT != nil && szT != nil:
		return nil, c.Errorf("both scales and sizes are given; exactly one is allowed")
	case scT == nil && szT == nil:
		return nil, c.Errorf("one of scales and sizes is required")
	}
	scale := make([]float64, rank)
	outs := make([]int, rank)
	outF := make([]float64, rank) // "output_width": fractional target length
	for d := range scale {
		scale[d], outs[d], outF[d] = 1, shape[d], float64(shape[d])
	}
	if scT != nil {
		if scT.Len() != n {
			return nil, c.Errorf("scales has %d values, want %d", scT.Len(), n)
		}
		if !scT.DType.IsFloat() {
			return nil, c.Errorf("scales must be float, got %v", scT.DType)
		}
		for i, d := range axes {
			s := scT.Float64At(i)
			if !(s > 0) || math.IsInf(s, 0) {
				return nil, c.Errorf("scale %g for axis %d must be positive and finite", s, d)
			}
			prod := float64(float32(shape[d]) * float32(s))
			if prod > tensor.MaxElements {
				return nil, c.Errorf("scale %g makes axis %d too large", s, d)
			}
			scale[d], outs[d], outF[d] = s, int(math.Floor(prod)), s*float64(shape[d])
		}
	} else {
		sizes, err := szT.Int64s()
		if err != nil {
			return nil, c.Errorf("sizes: %v", err)
		}
		if len(sizes) != n {
			return nil, c.Errorf("sizes has %d values, want %d", len(sizes), n)
		}
		for i, d := range axes {
			if sizes[i] < 0 || sizes[i] > tensor.MaxElements {
				return nil, c.Errorf("size %d for axis %d is invalid", sizes[i], d)
			}
			if shape[d] == 0 && sizes[i] != 0 {
				return nil, c.Errorf("cannot resize empty axis %d to %d", d, sizes[i])
			}
		}
		if k.policy == resizeStretch {
			for i, d := range axes {
				outs[d], outF[d] = int(sizes[i]), float64(sizes[i])
				if shape[d] > 0 {
					scale[d] = float64(sizes[i]) / float64(shape[d])
				}
			}
		} else {
			s := math.Inf(1)
			if k.policy == resizeNotSmaller {
				s = math.Inf(-1)
			}
			for i, d := range axes {
				if shape[d] == 0 {
					continue
				}
				r := float64(sizes[i]) / float64(shape[d])
				if k.policy == resizeNotLarger {
					s = min(s, r)
				} else {
					s = max(s, r)
				}
			}
			if math.IsInf(s, 0) || !(s > 0) {
				return nil, c.Errorf("keep_aspect_ratio_policy needs positive sizes and non-empty axes")
			}
			for _, d := range axes {
				f := s * float64(shape[d])
				if f+0.5 > tensor.MaxElements {
					return nil, c.Errorf("resized axis %d is too large", d)
				}
				scale[d], outs[d], outF[d] = s, int(math.Floor(f+0.5)), f
			}
		}
	}
	roiS := make([]float64, rank)
	roiE := make([]float64, rank)
	for d := range roiE {
		roiE[d] = 1
	}
	if k.coord == resizeTFCropAndResize {
		if roiT == nil {
			return nil, c.Errorf("coordinate_transformation_mode tf_crop_and_resize needs the roi input")
		}
		if roiT.Len() != 2*n {
			return nil, c.Errorf("roi has %d values, want %d (starts and ends of %d axes)", roiT.Len(), 2*n, n)
		}
		if !roiT.DType.IsFloat() {
			return nil, c.Errorf("roi must be float, got %v", roiT.DType)
		}
		for i, d := range axes {
			roiS[d], roiE[d] = roiT.Float64At(i), roiT.Float64At(n+i)
		}
	}
	p := &resizePlan{outShape: tensor.Shape(outs), dims: make([]resizeDim, rank)}
	if p.outShape.Size() < 0 || p.outShape.Size() > tensor.MaxElements {
		return nil, c.Errorf("output shape %v is too large", p.outShape)
	}
	resized := make([]bool, rank)
	for _, d := range axes {
		resized[d] = true
	}
	stride := 1
	for d := rank - 1; d >= 0; d-- {
		if resized[d] && outs[d] > 0 {
			p.dims[d] = k.dimTaps(shape[d], outs[d], stride, scale[d], outF[d], roiS[d], roiE[d])
		} else {
			p.dims[d] = resizeIdentityDim(shape[d], stride)
		}
		stride *= shape[d]
	}
	return p, nil
}

// resizeIdentityDim is the table of an axis that is not resized.
func resizeIdentityDim(n, stride int) resizeDim {
	rd := resizeDim{in: n, out: n, k: 1, off: make([]int, n), w: make([]float64, n), identity: true}
	for x := range n {
		rd.off[x], rd.w[x] = x*stride, 1
	}
	return rd
}

// origCoord maps output coordinate x to the input axis.
func (k *resizeKernel) origCoord(x float64, in, out int, scale, outF, rs, re float64) float64 {
	switch k.coord {
	case resizeHalfPixelSymmetric:
		adj := float64(out) / outF
		off := float64(in) / 2 * (1 - adj)
		return off + (x+0.5)/scale - 0.5
	case resizePytorchHalfPixel:
		if out > 1 {
			return (x+0.5)/scale - 0.5
		}
		return 0
	case resizeAlignCorners:
		if outF == 1 {
			return 0
		}
		return x * float64(in-1) / (outF - 1)
	case resizeAsymmetric:
		return x / scale
	case resizeTFHalfPixelForNN:
		return (x + 0.5) / scale
	case resizeTFCropAndResize:
		if outF == 1 {
			return (re-rs)*float64(in-1)/2 + rs*float64(in-1)
		}
		return x*(re-rs)*float64(in-1)/(outF-1) + rs*float64(in-1)
	}
	return (x+0.5)/scale - 0.5 // half_pixel
}

// nearestIndex rounds x_original per nearest_mode.
func (k *resizeKernel) nearestIndex(xo, scale float64) float64 {
	f := math.Floor(xo)
	switch k.nearest {
	case resizeRoundPreferFloor:
		if xo-f <= 0.5 {
			return f
		}
		return f + 1
	case resizeRoundPreferCeil:
		if xo-f < 0.5 {
			return f
		}
		return f + 1
	case resizeFloor:
		return f
	case resizeCeil:
		return math.Ceil(xo)
	}
	if scale < 1 { // opset 10
		return math.Ceil(xo)
	}
	return math.Trunc(xo)
}

// resizeCubicW is the cubic convolution kernel with coefficient a.
func resizeCubicW(x, a float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return ((a*x-5*a)*x+8*a)*x - 4*a
	}
	return 0
}

// dimTaps builds the sampling table of one resized axis.
func (k *resizeKernel) dimTaps(in, out, stride int, scale, outF, rs, re float64) resizeDim {
	rd := resizeDim{in: in, out: out}
	// Tap window relative to floor(x_original): [start, start+K).
	start, kk := 0, 1
	aa := math.Min(scale, 1)
	switch {
	case k.mode == resizeNearest:
	case k.antialias && k.mode == resizeLinear:
		start = int(math.Floor(-1/aa)) + 1
		kk = 2 - 2*start
	case k.antialias && k.mode == resizeCubic:
		start = int(math.Floor(-2/aa)) + 1
		kk = 2 - 2*start
	case k.mode == resizeLinear:
		kk = 2
	default:
		start, kk = -1, 4
	}
	rd.k = kk
	rd.off = make([]int, out*kk)
	rd.w = make([]float64, out*kk)
	last := float64(in - 1)
	for x := 0; x < out; x++ {
		xo := k.origCoord(float64(x), in, out, scale, outF, rs, re)
		off, w := rd.off[x*kk:(x+1)*kk], rd.w[x*kk:(x+1)*kk]
		if k.coord == resizeTFCropAndResize && (xo < 0 || xo > last || math.IsNaN(xo)) {
			if rd.outside == nil {
				rd.outside = make([]bool, out)
			}
			rd.outside[x] = true
			continue // offsets 0, weights 0
		}
		if k.mode == resizeNearest {
			i := min(max(k.nearestIndex(xo, scale), 0), last)
			off[0], w[0] = int(i)*stride, 1
			continue
		}
		f := math.Floor(xo)
		r := xo - f
		switch {
		case k.antialias:
			sum := 0.0
			for t := range w {
				arg := (float64(start+t) - r) * aa
				if k.mode == resizeLinear {
					w[t] = max(0, 1-math.Abs(arg))
				} else {
					w[t] = resizeCubicW(arg, k.cubicA)
				}
				sum += w[t]
			}
			if sum != 0 {
				for t := range w {
					w[t] /= sum
				}
			}
		case k.mode == resizeLinear:
			w[0], w[1] = 1-r, r
		default:
			a := k.cubicA
			w[0] = ((a*(r+1)-5*a)*(r+1)+8*a)*(r+1) - 4*a
			w[1] = ((a+2)*r-(a+3))*r*r + 1
			w[2] = ((a+2)*(1-r)-(a+3))*(1-r)*(1-r) + 1
			w[3] = ((a*(2-r)-5*a)*(2-r)+8*a)*(2-r) - 4*a
		}
		base := int(f) + start
		if k.exclude {
			// Drop taps outside the input and renormalize; if none is
			// inside (x_original far outside, possible only with
			// align_corners and a rounded-up keep_aspect_ratio_policy size),
			// keep the edge-clamped taps instead of dividing by zero.
			sum := 0.0
			for t := range w {
				if i := base + t; i >= 0 && i < in {
					sum += w[t]
				}
			}
			if sum != 0 {
				for t := range w {
					if i := base + t; i < 0 || i >= in {
						w[t] = 0
					} else {
						w[t] /= sum
					}
				}
			}
		}
		for t := range off {
			off[t] = min(max(base+t, 0), in-1) * stride
		}
	}
	rd.identity = resizeIsIdentity(&rd, stride)
	if rd.identity {
		return resizeIdentityDim(in, stride)
	}
	return rd
}

// resizeIsIdentity reports whether the table reads input x, weight 1, for
// every output x.
func resizeIsIdentity(rd *resizeDim, stride int) bool {
	if rd.out != rd.in || rd.outside != nil {
		return false
	}
	for x := 0; x < rd.out; x++ {
		hit := false
		for t := x * rd.k; t < (x+1)*rd.k; t++ {
			switch {
			case rd.w[t] == 0:
			case rd.w[t] == 1 && rd.off[t] == x*stride && !hit:
				hit = true
			default:
				return false
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (k *resizeKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	var roiT, scT, szT *tensor.Tensor
	if k.opset < 11 {
		scT = opt(in, 1)
	} else {
		roiT, scT, szT = opt(in, 1), opt(in, 2), opt(in, 3)
	}
	nonEmpty := func(t *tensor.Tensor) *tensor.Tensor {
		if t != nil && t.Len() == 0 {
			return nil
		}
		return t
	}
	roiT, scT, szT = nonEmpty(roiT), nonEmpty(scT), nonEmpty(szT)
	p, err := k.plan(c, x.Shape, roiT, scT, szT)
	if err != nil {
		return err
	}
	o, err := c.Output(0, x.DType, p.outShape)
	if err != nil {
		return err
	}
	if o.Len() == 0 {
		return nil
	}
	if k.mode == resizeNearest {
		return resizeNearestAny(c, p, x, o, k.extrap)
	}
	return resizeInterpAny(c, p, x, o, k.extrap)
}
