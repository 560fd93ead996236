package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// resizeRefOpts configures resizeRef.
type resizeRefOpts struct {
	mode, coord, nearest string // nearest "" = opset-10 rounding
	cubicA               float64
	exclude, antialias   bool
	extrap               float64
	axes                 []int // nil: all
	policy               string
	scales               []float64
	sizes                []int64
	roi                  []float64
}

// resizeRef follows onnx/reference/ops/op_resize.py literally: nested 1-D
// interpolations, neighbours found by sorting distances in an edge-padded
// copy, coefficients from the reference's formulas. Where goslim follows
// the spec text or ONNX Runtime instead, so does this port: output sizes
// from scales are floor(float32(len) * float32(scale)); with sizes and the
// stretch policy output_width is the integer size; pytorch_half_pixel maps
// a length-1 output to 0; exclude_outside does not apply to nearest;
// opset 10 rounds nearest with ceil when downsampling, else truncation.
func resizeRef(x []float64, shape tensor.Shape, o resizeRefOpts) (tensor.Shape, []float64) {
	r := len(shape)
	axes := o.axes
	if axes == nil {
		for d := 0; d < r; d++ {
			axes = append(axes, d)
		}
	}
	inAxes := make([]bool, r)
	for _, d := range axes {
		inAxes[d] = true
	}
	scale := make([]float64, r)
	out := make(tensor.Shape, r)
	outF := make([]float64, r)
	roiS, roiE := make([]float64, r), make([]float64, r)
	for d := range shape {
		scale[d], out[d], roiE[d] = 1, shape[d], 1
	}
	if o.scales != nil {
		for i, d := range axes {
			scale[d] = o.scales[i]
			out[d] = int(math.Floor(float64(float32(shape[d]) * float32(o.scales[i]))))
			outF[d] = scale[d] * float64(shape[d])
		}
	} else {
		for i, d := range axes {
			out[d] = int(o.sizes[i])
			scale[d] = float64(o.sizes[i]) / float64(shape[d])
			outF[d] = float64(o.sizes[i])
		}
		if o.policy == "not_larger" || o.policy == "not_smaller" {
			s := scale[axes[0]]
			for _, d := range axes {
				if o.policy == "not_larger" {
					s = math.Min(s, scale[d])
				} else {
					s = math.Max(s, scale[d])
				}
			}
			for _, d := range axes {
				scale[d] = s
				out[d] = int(s*float64(shape[d]) + 0.5)
				outF[d] = s * float64(shape[d])
			}
		}
	}
	if o.roi != nil {
		for i, d := range axes {
			roiS[d], roiE[d] = o.roi[i], o.roi[len(axes)+i]
		}
	}
	strides := shape.Strides()
	res := make([]float64, out.Size())
	idx := make([]int, r)
	var nd func(off, d int) float64
	nd = func(off, d int) float64 {
		if d == r {
			return x[off]
		}
		if !inAxes[d] {
			return nd(off+idx[d]*strides[d], d+1)
		}
		row := make([]float64, shape[d])
		for i := range row {
			row[i] = nd(off+i*strides[d], d+1)
		}
		return resizeRef1D(row, scale[d], out[d], outF[d], float64(idx[d]), roiS[d], roiE[d], o)
	}
	for i := range res {
		rem := i
		for d := r - 1; d >= 0; d-- {
			idx[d] = rem % out[d]
			rem /= out[d]
		}
		res[i] = nd(0, 0)
	}
	return out, res
}

func resizeRef1D(data []float64, scale float64, outInt int, outW, x, rs, re float64, o resizeRefOpts) float64 {
	in := float64(len(data))
	var xo float64
	switch o.coord {
	case "align_corners":
		if outW == 1 {
			xo = 0
		} else {
			xo = x * (in - 1) / (outW - 1)
		}
	case "asymmetric":
		xo = x / scale
	case "tf_crop_and_resize":
		if outW == 1 {
			xo = (re - rs) * (in - 1) / 2
		} else {
			xo = x * (re - rs) * (in - 1) / (outW - 1)
		}
		xo += rs * (in - 1)
		if xo < 0 || xo > in-1 {
			return o.extrap
		}
	case "pytorch_half_pixel":
		if outInt == 1 {
			xo = 0
		} else {
			xo = (x+0.5)/scale - 0.5
		}
	case "half_pixel_symmetric":
		adj := float64(outInt) / outW
		center := in / 2
		xo = center*(1-adj) + (x+0.5)/scale - 0.5
	case "tf_half_pixel_for_nn":
		xo = (x + 0.5) / scale
	default:
		xo = (x+0.5)/scale - 0.5
	}
	ratio := xo - math.Floor(xo)
	if ratio == 0 {
		ratio = 1
	}
	var coeffs []float64
	switch o.mode {
	case "nearest":
		mode := o.nearest
		if mode == "" {
			mode = "floor"
			if scale < 1 {
				mode = "ceil"
			}
		}
		c := [2]bool{}
		switch {
		case ratio == 1:
			c = [2]bool{false, true}
		case mode == "round_prefer_floor":
			c = [2]bool{ratio <= 0.5, ratio > 0.5}
		case mode == "round_prefer_ceil":
			c = [2]bool{ratio < 0.5, ratio >= 0.5}
		case mode == "floor":
			c = [2]bool{true, false}
		default:
			c = [2]bool{false, true}
		}
		for _, b := range c {
			coeffs = append(coeffs, map[bool]float64{true: 1}[b])
		}
	case "linear":
		if o.antialias {
			s := math.Min(scale, 1)
			start := int(math.Floor(-1/s) + 1)
			fp := 2 - 2*start
			sum := 0.0
			for i := start; i < start+fp; i++ {
				v := math.Min(math.Max(1-math.Abs((float64(i)-ratio)*s), 0), 1)
				coeffs = append(coeffs, v)
				sum += v
			}
			for i := range coeffs {
				coeffs[i] /= sum
			}
		} else {
			coeffs = []float64{1 - ratio, ratio}
		}
	default:
		a := o.cubicA
		if o.antialias {
			s := math.Min(scale, 1)
			iStart := int(math.Floor(-2/s) + 1)
			iEnd := 2 - iStart
			sum := 0.0
			for i := iStart; i < iEnd; i++ {
				v := math.Abs(s * (float64(i) - ratio))
				v2, v3 := v*v, v*v*v
				var c float64
				switch {
				case v <= 1:
					c = (a+2)*v3 - (a+3)*v2 + 1
				case v < 2:
					c = a*v3 - 5*a*v2 + 8*a*v - 4*a
				}
				coeffs = append(coeffs, c)
				sum += c
			}
			for i := range coeffs {
				coeffs[i] /= sum
			}
		} else {
			r := ratio
			coeffs = []float64{
				((a*(r+1)-5*a)*(r+1)+8*a)*(r+1) - 4*a,
				((a+2)*r-(a+3))*r*r + 1,
				((a+2)*(1-r)-(a+3))*(1-r)*(1-r) + 1,
				((a*((1-r)+1)-5*a)*((1-r)+1)+8*a)*((1-r)+1) - 4*a,
			}
		}
	}
	n := len(coeffs)
	// get_neighbor: the n indexes nearest to x_original, ties to the
	// smaller, read from an edge-padded copy. In exact arithmetic these are
	// base-n/2+1 .. base+n/2 with base = x_original - ratio; computing them
	// so avoids the reference's float ties (x + pad can round a tiny
	// fraction away and pick neighbours that do not match the coefficients).
	// Beyond the padded copy (reachable only when align_corners meets a
	// keep_aspect_ratio_policy that rounds the size up) indexes clamp to the
	// edge, as goslim does; the reference would take the last n entries.
	pad := (n + 1) / 2
	padded := make([]float64, len(data)+2*pad)
	for i := range padded {
		padded[i] = data[min(max(i-pad, 0), len(data)-1)]
	}
	base := int(math.Round(xo - ratio))
	cand := make([]int, n)
	for i := range cand {
		cand[i] = base - n/2 + 1 + i + pad
	}
	if o.exclude && o.mode != "nearest" {
		// goslim keeps the edge-clamped taps when none is inside, where
		// the reference would divide by zero.
		sum := 0.0
		for i, c := range cand {
			if c-pad >= 0 && c-pad < len(data) {
				sum += coeffs[i]
			}
		}
		if sum != 0 {
			for i, c := range cand {
				if c-pad < 0 || c-pad >= len(data) {
					coeffs[i] = 0
				}
				coeffs[i] /= sum
			}
		}
	}
	v := 0.0
	for i, c := range cand {
		v += coeffs[i] * padded[min(max(c, 0), len(padded)-1)]
	}
	return v
}

// resizeRunOpts runs the Resize kernel with the options of o at opset.
func resizeRunOpts(x *tensor.Tensor, o resizeRefOpts, opset int64, threads int) (*tensor.Tensor, error) {
	attrs := ir.Attrs{famStr("mode", o.mode)}
	if opset >= 11 {
		attrs = append(attrs, famStr("coordinate_transformation_mode", o.coord), famFloat("cubic_coeff_a", float32(o.cubicA)),
			famFloat("extrapolation_value", float32(o.extrap)))
		if o.nearest != "" {
			attrs = append(attrs, famStr("nearest_mode", o.nearest))
		}
		if o.exclude {
			attrs = append(attrs, famInt("exclude_outside", 1))
		}
	}
	if o.antialias {
		attrs = append(attrs, famInt("antialias", 1))
	}
	if o.policy != "" {
		attrs = append(attrs, famStr("keep_aspect_ratio_policy", o.policy))
	}
	if o.axes != nil {
		var a []int64
		for _, d := range o.axes {
			a = append(a, int64(d))
		}
		attrs = append(attrs, famInts("axes", a...))
	}
	var sc, sz, roi *tensor.Tensor
	if o.scales != nil {
		sc = famTensor(tensor.Float32, tensor.Shape{len(o.scales)}, o.scales)
	}
	if o.sizes != nil {
		sz = tensor.FromInt64(tensor.Shape{len(o.sizes)}, o.sizes)
	}
	if o.roi != nil {
		roi = famTensor(tensor.Float32, tensor.Shape{len(o.roi)}, o.roi)
	}
	if opset < 11 {
		return famRun("Resize", opset, attrs, threads, x, sc)
	}
	if sz == nil {
		return famRun("Resize", opset, attrs, threads, x, roi, sc)
	}
	return famRun("Resize", opset, attrs, threads, x, roi, sc, sz)
}

// TestResizeReference compares random Resize configurations, every mode
// and coordinate transformation, with the reference port.
func TestResizeReference(t *testing.T) { resizeReferenceRun(t, 7, 1500) }

func resizeReferenceRun(t *testing.T, seed uint64, iters int) {
	r := rand.New(rand.NewPCG(seed, 8))
	coords := []string{"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
		"asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"}
	nearest := []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
	scaleSet := []float64{0.5, 0.6, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 0.34}
	for iter := 0; iter < iters; iter++ {
		rank := 1 + r.IntN(4)
		shape := make(tensor.Shape, rank)
		for d := range shape {
			shape[d] = 1 + r.IntN(4)
		}
		o := resizeRefOpts{mode: []string{"nearest", "linear", "cubic"}[r.IntN(3)], cubicA: -0.75}
		if r.IntN(3) == 0 {
			o.cubicA = -0.5
		}
		opset := int64(19)
		o.coord = coords[r.IntN(len(coords))]
		switch o.coord {
		case "tf_half_pixel_for_nn":
			opset = 11 + r.Int64N(2)
			o.mode = "nearest"
		case "half_pixel_symmetric":
		default:
			opset = []int64{11, 13, 18, 19}[r.IntN(4)]
		}
		if o.mode == "nearest" {
			o.nearest = nearest[r.IntN(len(nearest))]
		}
		if r.IntN(12) == 0 && o.mode != "cubic" {
			opset, o.coord, o.nearest = 10, "asymmetric", ""
		}
		if opset >= 11 {
			o.exclude = r.IntN(3) == 0
			o.extrap = []float64{0, -1, 10}[r.IntN(3)]
		}
		if opset >= 18 {
			o.antialias = r.IntN(2) == 0 && o.mode != "nearest"
			if r.IntN(3) == 0 {
				perm := r.Perm(rank)
				o.axes = perm[:1+r.IntN(rank)]
			}
		}
		naxes := rank
		if o.axes != nil {
			naxes = len(o.axes)
		}
		if r.IntN(2) == 0 || opset < 11 {
			for range naxes {
				o.scales = append(o.scales, scaleSet[r.IntN(len(scaleSet))])
			}
		} else {
			for range naxes {
				o.sizes = append(o.sizes, 1+r.Int64N(6))
			}
			if opset >= 18 && r.IntN(3) == 0 {
				o.policy = []string{"not_larger", "not_smaller"}[r.IntN(2)]
			}
		}
		if o.coord == "tf_crop_and_resize" {
			for range naxes {
				o.roi = append(o.roi, math.Round((r.Float64()*0.7-0.2)*20)/20)
			}
			for range naxes {
				o.roi = append(o.roi, math.Round((0.5+r.Float64()*0.7)*20)/20)
			}
		}
		// The kernel receives scales and roi as float32.
		for i, v := range o.scales {
			o.scales[i] = float64(float32(v))
		}
		for i, v := range o.roi {
			o.roi[i] = float64(float32(v))
		}
		dt := []tensor.DType{tensor.Float64, tensor.Float32}[r.IntN(2)]
		xv := famRandom(r, dt, shape.Size())
		x := famTensor(dt, shape, xv)
		wshape, want := resizeRef(xv, shape, o)
		name := fmt.Sprintf("iter %d opset %d %v%v %+v", iter, opset, dt, shape, o)
		got, err := resizeRunOpts(x, o, opset, 1+iter%2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rtol := 1e-9
		if dt == tensor.Float32 {
			rtol = 2e-5
		}
		famClose(t, name, got, dt, wshape, want, rtol)
	}
}

// TestResizeHand checks values derived by hand.
func TestResizeHand(t *testing.T) {
	f32 := func(shape tensor.Shape, v ...float64) *tensor.Tensor { return famTensor(tensor.Float32, shape, v) }
	cases := []struct {
		name  string
		x     *tensor.Tensor
		o     resizeRefOpts
		opset int64
		shape tensor.Shape
		want  []float64
	}{
		{"nearest 2x", f32(tensor.Shape{1, 1, 2, 2}, 1, 2, 3, 4),
			resizeRefOpts{mode: "nearest", coord: "half_pixel", nearest: "round_prefer_floor", scales: []float64{1, 1, 2, 2}}, 13,
			tensor.Shape{1, 1, 4, 4}, []float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}},
		// half_pixel: x_original = -0.25, 0.25, 0.75, 1.25, clamped at the edges.
		{"linear half_pixel", f32(tensor.Shape{2}, 1, 2),
			resizeRefOpts{mode: "linear", coord: "half_pixel", scales: []float64{2}}, 13,
			tensor.Shape{4}, []float64{1, 1.25, 1.75, 2}},
		{"linear align_corners", f32(tensor.Shape{2}, 1, 2),
			resizeRefOpts{mode: "linear", coord: "align_corners", sizes: []int64{4}}, 13,
			tensor.Shape{4}, []float64{1, 4.0 / 3, 5.0 / 3, 2}},
		// asymmetric 2x, x=1 -> 0.5: taps at -1(=0), 0, 1, 2 with
		// coefficients -0.09375, 0.59375, 0.59375, -0.09375.
		{"cubic asymmetric", f32(tensor.Shape{4}, 0, 1, 2, 3),
			resizeRefOpts{mode: "cubic", coord: "asymmetric", cubicA: -0.75, scales: []float64{2}}, 13,
			tensor.Shape{8}, []float64{0, 0.40625, 1, 1.5, 2, 2.59375, 3, 3.09375}},
		// antialias, scale 0.5: footprint of 4 taps with weights
		// 1/8, 3/8, 3/8, 1/8 around x_original 0.5 and 2.5.
		{"linear antialias", f32(tensor.Shape{4}, 0, 1, 2, 3),
			resizeRefOpts{mode: "linear", coord: "half_pixel", antialias: true, scales: []float64{0.5}}, 18,
			tensor.Shape{2}, []float64{0.625, 2.375}},
		// tf_crop_and_resize: roi [0.5, 1.5] of length 3 maps x to 1, 2, 3;
		// 3 is outside [0, 2].
		{"crop extrapolation", f32(tensor.Shape{3}, 10, 20, 30),
			resizeRefOpts{mode: "linear", coord: "tf_crop_and_resize", roi: []float64{0.5, 1.5}, extrap: -7, sizes: []int64{3}}, 13,
			tensor.Shape{3}, []float64{20, 30, -7}},
		// opset 10 nearest: truncation when upsampling, ceil when downsampling.
		{"opset 10 up", f32(tensor.Shape{3}, 1, 2, 3),
			resizeRefOpts{mode: "nearest", scales: []float64{2}}, 10,
			tensor.Shape{6}, []float64{1, 1, 2, 2, 3, 3}},
		{"opset 10 down", f32(tensor.Shape{1, 4}, 1, 2, 3, 4),
			resizeRefOpts{mode: "nearest", scales: []float64{1, 0.6}}, 10,
			tensor.Shape{1, 2}, []float64{1, 3}},
		// not_larger: sizes (2, 6) for 2x4 keep the ratio with scale 1.
		{"not_larger", f32(tensor.Shape{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8),
			resizeRefOpts{mode: "nearest", coord: "half_pixel", nearest: "round_prefer_floor", policy: "not_larger", sizes: []int64{2, 6}}, 18,
			tensor.Shape{2, 4}, []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		// axes: only the last axis doubles.
		{"axes", f32(tensor.Shape{2, 2}, 1, 2, 3, 4),
			resizeRefOpts{mode: "nearest", coord: "asymmetric", nearest: "floor", axes: []int{1}, scales: []float64{2}}, 18,
			tensor.Shape{2, 4}, []float64{1, 1, 2, 2, 3, 3, 4, 4}},
	}
	for _, c := range cases {
		if c.o.cubicA == 0 {
			c.o.cubicA = -0.75
		}
		if c.o.coord == "" {
			c.o.coord = "asymmetric"
		}
		got, err := resizeRunOpts(c.x, c.o, c.opset, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		famClose(t, c.name, got, tensor.Float32, c.shape, c.want, 1e-6)
		// The reference port agrees with the hand values.
		_, ref := resizeRef(famValues(c.x), c.x.Shape, c.o)
		famClose(t, c.name+" (reference)", famTensor(tensor.Float64, c.shape, ref), tensor.Float64, c.shape, c.want, 1e-6)
	}
}

// TestResizeDTypes checks nearest on every storage type (a pure gather)
// and linear rounding on integers.
func TestResizeDTypes(t *testing.T) {
	o := resizeRefOpts{mode: "nearest", coord: "asymmetric", nearest: "floor", cubicA: -0.75, scales: []float64{1, 2, 1.5}}
	shape := tensor.Shape{2, 3, 2}
	xv := []float64{1, 0, 3, 4, 5, 0, 7, 8, 9, 10, 0, 12}
	wshape, want := resizeRef(xv, shape, o)
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16, tensor.Int8,
		tensor.Uint8, tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64, tensor.Bool} {
		x := famTensor(dt, shape, xv)
		got, err := resizeRunOpts(x, o, 13, 1)
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		famClose(t, dt.String(), got, dt, wshape, famValues(famTensor(dt, wshape, want)), 0)
	}
	// uint8 linear: 0 and 255 -> x_original 0.25, 0.75 give 63.75, 191.25,
	// truncated as ONNX Runtime does.
	x := famTensor(tensor.Uint8, tensor.Shape{2}, []float64{0, 255})
	got, err := resizeRunOpts(x, resizeRefOpts{mode: "linear", coord: "half_pixel", scales: []float64{2}}, 13, 1)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "uint8 linear", got, tensor.Uint8, tensor.Shape{4}, []float64{0, 63, 191, 255}, 0)
	// Exact integer results survive float error: x_original 2/3 gives
	// 1/3*1 + 2/3*7 = 5, which float64 weights compute as 4.999999999999999.
	x = famTensor(tensor.Uint8, tensor.Shape{2}, []float64{1, 7})
	got, err = resizeRunOpts(x, resizeRefOpts{mode: "linear", coord: "align_corners", sizes: []int64{4}}, 13, 1)
	if err != nil {
		t.Fatal(err)
	}
	famClose(t, "uint8 exact thirds", got, tensor.Uint8, tensor.Shape{4}, []float64{1, 3, 5, 7}, 0)
	// int8 cubic overshoot saturates.
	x = famTensor(tensor.Int8, tensor.Shape{4}, []float64{-128, -128, 127, 127})
	got, err = resizeRunOpts(x, resizeRefOpts{mode: "cubic", coord: "asymmetric", cubicA: -0.75, scales: []float64{2}}, 13, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, ref := resizeRef(famValues(x), x.Shape, resizeRefOpts{mode: "cubic", coord: "asymmetric", cubicA: -0.75, scales: []float64{2}})
	for i := range ref {
		ref[i] = math.Min(math.Max(math.Trunc(ref[i]), -128), 127)
	}
	famClose(t, "int8 cubic", got, tensor.Int8, tensor.Shape{8}, ref, 0)
	_, err = resizeRunOpts(famTensor(tensor.Bool, tensor.Shape{2}, []float64{0, 1}), resizeRefOpts{mode: "linear", coord: "half_pixel", scales: []float64{2}}, 13, 1)
	famWantErr(t, "bool linear", err, "bool")
}

// TestResizeFastPaths checks the 2-D bilinear fast path and the parallel
// paths against the general serial code.
func TestResizeFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for iter := 0; iter < 40; iter++ {
		shape := tensor.Shape{1 + r.IntN(3), 1 + r.IntN(4), 2 + r.IntN(8), 2 + r.IntN(8)}
		k := &resizeKernel{opset: 13, mode: resizeLinear, coord: iter % 5, cubicA: -0.75}
		if k.coord == resizeTFHalfPixelForNN {
			k.coord = resizeHalfPixel
		}
		sc := famTensor(tensor.Float32, tensor.Shape{4}, []float64{1, 1, []float64{0.5, 2, 1.7, 3}[r.IntN(4)], []float64{0.6, 2, 2.5}[r.IntN(3)]})
		c := kernel.NewCtx(nil, 1, nil)
		p, err := k.plan(c, shape, nil, sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		x := famRandom(r, tensor.Float32, shape.Size())
		src := make([]float32, len(x))
		for i, v := range x {
			src[i] = float32(v)
		}
		n := p.outShape.Size()
		fast, slow := make([]float32, n), make([]float32, n)
		if !resizeBilinear2D(c, p, src, fast) {
			t.Fatalf("fast path declined %v", shape)
		}
		resizeInterp(c, p, src, slow, 0)
		for i := range fast {
			if d := math.Abs(float64(fast[i] - slow[i])); d > 1e-4*math.Max(1, math.Abs(float64(slow[i]))) {
				t.Fatalf("bilinear fast path %v element %d: %g vs %g", shape, i, fast[i], slow[i])
			}
		}
	}
	// Large tensors: 4 threads equal 1 thread for every mode.
	x := famTensor(tensor.Float32, tensor.Shape{2, 3, 40, 50}, famRandom(r, tensor.Float32, 2*3*40*50))
	for _, mode := range []string{"nearest", "linear", "cubic"} {
		o := resizeRefOpts{mode: mode, coord: "half_pixel", cubicA: -0.75, scales: []float64{1, 1, 2, 1.5}}
		a, err := resizeRunOpts(x, o, 13, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := resizeRunOpts(x, o, 13, 4)
		if err != nil {
			t.Fatal(err)
		}
		famClose(t, "parallel "+mode, b, tensor.Float32, a.Shape, famValues(a), 0)
	}
}

func TestResizeErrors(t *testing.T) {
	x := famTensor(tensor.Float32, tensor.Shape{1, 1, 2, 2}, []float64{1, 2, 3, 4})
	sc := famTensor(tensor.Float32, tensor.Shape{4}, []float64{1, 1, 2, 2})
	sz := tensor.FromInt64(tensor.Shape{4}, []int64{1, 1, 4, 4})
	nearest := ir.Attrs{famStr("mode", "nearest")}
	_, err := famRun("Resize", 13, nearest, 1, x, nil, sc, sz)
	famWantErr(t, "scales and sizes", err, "both scales and sizes")
	_, err = famRun("Resize", 13, nearest, 1, x, nil, nil, nil)
	famWantErr(t, "neither", err, "one of scales and sizes")
	empty := famTensor(tensor.Float32, tensor.Shape{0}, nil)
	_, err = famRun("Resize", 11, nearest, 1, x, empty, empty)
	famWantErr(t, "empty scales", err, "one of scales and sizes")
	crop := ir.Attrs{famStr("mode", "linear"), famStr("coordinate_transformation_mode", "tf_crop_and_resize")}
	_, err = famRun("Resize", 13, crop, 1, x, famTensor(tensor.Float32, tensor.Shape{4}, []float64{0, 0, 1, 1}), nil, sz)
	famWantErr(t, "bad roi length", err, "roi has 4 values, want 8")
	_, err = famRun("Resize", 13, crop, 1, x, nil, nil, sz)
	famWantErr(t, "missing roi", err, "needs the roi input")
	_, err = famRun("Resize", 13, nearest, 1, x, nil, famTensor(tensor.Float32, tensor.Shape{2}, []float64{2, 2}))
	famWantErr(t, "scales length", err, "scales has 2 values, want 4")
	_, err = famRun("Resize", 13, nearest, 1, x, nil, famTensor(tensor.Float32, tensor.Shape{4}, []float64{1, 1, -2, 2}))
	famWantErr(t, "negative scale", err, "positive")
	_, err = famRun("Resize", 18, ir.Attrs{famStr("mode", "nearest"), famInts("axes", 2, 3)}, 1, x, nil, nil, sz)
	famWantErr(t, "sizes length with axes", err, "sizes has 4 values, want 2")
	_, err = famRun("Resize", 18, ir.Attrs{famStr("mode", "nearest"), famInts("axes", 2, -2)}, 1, x, nil, nil, resizeI64(4, 4))
	famWantErr(t, "repeated axes", err, "repeated")
	_, err = famRun("Resize", 17, ir.Attrs{famStr("mode", "linear"), famInt("antialias", 1)}, 1, x, nil, sc)
	famWantErr(t, "antialias at 17", err, "antialias needs opset 18")
	_, err = famRun("Resize", 18, ir.Attrs{famStr("coordinate_transformation_mode", "half_pixel_symmetric")}, 1, x, nil, sc)
	famWantErr(t, "half_pixel_symmetric at 18", err, "needs opset 19")
	_, err = famRun("Resize", 13, ir.Attrs{famStr("coordinate_transformation_mode", "tf_half_pixel_for_nn")}, 1, x, nil, sc)
	famWantErr(t, "tf_half_pixel_for_nn at 13", err, "removed in opset 13")
	_, err = famRun("Resize", 10, ir.Attrs{famStr("mode", "cubic")}, 1, x, sc)
	famWantErr(t, "cubic at 10", err, "needs opset 11")
	_, err = famRun("Resize", 13, ir.Attrs{famStr("mode", "bicubic")}, 1, x, nil, sc)
	famWantErr(t, "bad mode", err, "unsupported mode")
	_, err = famRun("Resize", 13, ir.Attrs{famStr("nearest_mode", "round")}, 1, x, nil, sc)
	famWantErr(t, "bad nearest_mode", err, "unsupported nearest_mode")
	_, err = famRun("Resize", 13, nearest, 1, x, nil, famTensor(tensor.Float32, tensor.Shape{4}, []float64{1, 1, 1e9, 1e9}))
	famWantErr(t, "huge scale", err, "too large")
}

func resizeI64(v ...int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{len(v)}, v) }

func benchmarkResize(b *testing.B, mode string, threads int) {
	x := famTensor(tensor.Float32, tensor.Shape{1, 64, 128, 128}, make([]float64, 64*128*128))
	sc := famTensor(tensor.Float32, tensor.Shape{4}, []float64{1, 1, 2, 2})
	attrs := ir.Attrs{famStr("mode", mode)}
	node := &ir.Node{Op: "Resize", Name: "n", Attrs: attrs, Inputs: []ir.ValueID{1, ir.NoValue, 2}, Outputs: []ir.ValueID{0}}
	k, _, err := NewTable().Lookup(&kernel.Info{Node: node, Opset: 13, Inputs: make([]ir.Type, 3), Consts: make([]*tensor.Tensor, 3)})
	if err != nil {
		b.Fatal(err)
	}
	c := kernel.NewCtx(node, threads, nil)
	in := []*tensor.Tensor{x, nil, sc}
	b.SetBytes(int64(4 * 4 * x.Len()))
	for b.Loop() {
		if _, err := kernel.RunNode(k, c, 1, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResizeNearest2x(b *testing.B)  { benchmarkResize(b, "nearest", 1) }
func BenchmarkResizeBilinear2x(b *testing.B) { benchmarkResize(b, "linear", 1) }
func BenchmarkResizeCubic2x(b *testing.B)    { benchmarkResize(b, "cubic", 1) }
