package ops

import (
	"math"
	"unsafe"

	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// QuantizeLinear and DequantizeLinear (ai.onnx opsets 10, 13, 19, 21).
//
//	QuantizeLinear:   y = saturate(round_half_even(x / y_scale) + y_zero_point)
//	DequantizeLinear: y = (x - x_zero_point) * x_scale
//
// Granularity follows the shape of the scale: a scalar (or one element) is
// per-tensor; a 1-D scale of length D[axis] is per-axis (opset 13+); a
// scale of x's rank whose axis dim is ceil(D[axis]/block_size) is blocked
// (opset 21+). The zero point has the scale's shape; absent, it is 0 and
// QuantizeLinear outputs uint8 (or output_dtype, opset 21+).
//
// Precision: x / y_scale is one float32 division, rounded to float16 (or
// bfloat16) first when the scale has that type, since the scale's type sets
// the division's precision; int32 inputs divide in float64. NaN quantizes
// to the output type's minimum (what ONNX Runtime's kernels produce); ±Inf
// saturate. DequantizeLinear subtracts in integers, converts to float32 and
// multiplies in float32, then rounds to the scale's type (float16 and
// bfloat16 outputs). Supported quantized types: uint8, int8, uint16, int16
// (and int32 for DequantizeLinear). Float8 and 4-bit types are refused with
// an error.
//
// Speed: float32 <-> uint8/int8 runs of one scale (per-tensor, per-axis
// rows) use AVX-512 kernels from the AVX-512 tier up (VDIVPS, VRNDSCALEPS,
// clamp, VPMOVDB; VPMOVZXBD/VPMOVSXBD, VCVTDQ2PS, VMULPS), which give the
// same bits as the Go loops (the same IEEE float32 operations).

func registerQuant(t *kernel.Table) {
	add(t, "QuantizeLinear", quantBuild(true))
	add(t, "DequantizeLinear", quantBuild(false))
}

// quantKernel is a QuantizeLinear (quantize=true) or DequantizeLinear node.
type quantKernel struct {
	tier     kernel.Tier
	quantize bool
	opset    int64
	axis     int64
	block    int
	outDType tensor.DType // output_dtype attribute, Undefined when absent
}

// quantTypeName names ONNX element types goslim cannot store, for errors.
func quantTypeName(dt tensor.DType) string {
	switch dt {
	case 17:
		return "float8e4m3fn"
	case 18:
		return "float8e4m3fnuz"
	case 19:
		return "float8e5m2"
	case 20:
		return "float8e5m2fnuz"
	case 21:
		return "uint4"
	case 22:
		return "int4"
	case 23:
		return "float4e2m1"
	case 24:
		return "float8e8m0"
	}
	return dt.String()
}

// quantIntType reports whether dt is an integer type QuantizeLinear can
// produce.
func quantIntType(dt tensor.DType) bool {
	switch dt {
	case tensor.Uint8, tensor.Int8, tensor.Uint16, tensor.Int16:
		return true
	}
	return false
}

func quantBuild(quantize bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		a := info.Attrs()
		k := &quantKernel{tier: info.Tier, quantize: quantize, opset: info.Opset, axis: a.Int("axis", 1)}
		if a.Has("axis") && info.Opset < 13 {
			return nil, info.Errorf("attribute axis needs opset 13 (model opset %d)", info.Opset)
		}
		b := a.Int("block_size", 0)
		switch {
		case b < 0:
			return nil, info.Errorf("block_size %d must not be negative", b)
		case b > 0 && info.Opset < 21:
			return nil, info.Errorf("attribute block_size needs opset 21 (model opset %d)", info.Opset)
		case b > math.MaxInt32:
			return nil, info.Errorf("block_size %d is too large", b)
		}
		k.block = int(b)
		if p := a.Int("precision", 0); p != 0 {
			return nil, info.Errorf("attribute precision (opset 23+) is not supported")
		}
		od := tensor.DType(a.Int("output_dtype", 0))
		if od != tensor.Undefined {
			since := int64(21)
			if !quantize {
				since = 23
			}
			if info.Opset < since {
				return nil, info.Errorf("attribute output_dtype needs opset %d (model opset %d)", since, info.Opset)
			}
			switch {
			case quantize && !quantIntType(od):
				return nil, info.Errorf("QuantizeLinear to %s is not supported (supported: uint8, int8, uint16, int16)", quantTypeName(od))
			case !quantize && od != tensor.Float32 && od != tensor.Float16 && od != tensor.BFloat16:
				return nil, info.Errorf("DequantizeLinear output_dtype %s is not supported (want float32, float16 or bfloat16)", quantTypeName(od))
			}
			k.outDType = od
		}
		// Refuse float8 / 4-bit types early when the static types show them.
		for i, name := range []string{"x", "scale", "zero_point"} {
			if i >= len(info.Inputs) {
				break
			}
			dt := info.Inputs[i].DType
			if dt != tensor.Undefined && !dt.Supported() && dt != tensor.BFloat16 {
				return nil, info.Errorf("input %s of type %s is not supported (float8 and 4-bit quantization are not implemented)", name, quantTypeName(dt))
			}
		}
		return k, nil
	}
}

// Quantization granularities.
const (
	quantPerTensor = iota
	quantPerAxis
	quantBlocked
)

// quantGran maps elements of x, viewed as [outer, n, inner] around the
// axis, to scale indices.
type quantGran struct {
	mode     int
	n, inner int
	sn       int // scale length along the axis (blocked)
	block    int
}

// rowBase returns the scale index of row (o*n + k) (per-tensor, per-axis)
// or of its first element (blocked, where it then advances per element).
func (g *quantGran) rowBase(row int) int {
	switch g.mode {
	case quantPerTensor:
		return 0
	case quantPerAxis:
		return row % g.n
	}
	o, k := row/g.n, row%g.n
	return (o*g.sn + k/g.block) * g.inner
}

// granularity validates the scale and zero-point shapes against x.
func (k *quantKernel) granularity(c *kernel.Ctx, xs tensor.Shape, s, zp *tensor.Tensor) (quantGran, error) {
	if zp != nil && !zp.Shape.Equal(s.Shape) && !(zp.Len() == 1 && s.Len() == 1) {
		return quantGran{}, c.Errorf("zero point shape %v does not match scale shape %v", zp.Shape, s.Shape)
	}
	rank := len(xs)
	if s.Len() == 1 && (k.block == 0 || s.Rank() != rank) {
		return quantGran{mode: quantPerTensor, n: 1, inner: max(xs.Size(), 1)}, nil
	}
	if k.opset < 13 {
		return quantGran{}, c.Errorf("scale of shape %v: opset %d allows only per-tensor (scalar) scales", s.Shape, k.opset)
	}
	if rank == 0 {
		return quantGran{}, c.Errorf("scale of shape %v for a scalar input", s.Shape)
	}
	ax := 0
	if rank > 1 {
		var err error
		if ax, err = normAxis(c, k.axis, rank); err != nil {
			return quantGran{}, err
		}
	}
	g := quantGran{n: xs[ax], inner: 1, block: 1}
	for _, d := range xs[ax+1:] {
		g.inner *= d
	}
	if k.block == 0 {
		if s.Rank() != 1 || s.Len() != xs[ax] {
			return quantGran{}, c.Errorf("scale shape %v: want a scalar or a 1-D tensor of length %d (axis %d of %v)", s.Shape, xs[ax], ax, xs)
		}
		g.mode, g.sn = quantPerAxis, xs[ax]
		return g, nil
	}
	if s.Rank() != rank {
		return quantGran{}, c.Errorf("blocked quantization: scale shape %v must have the rank of x %v", s.Shape, xs)
	}
	want := (xs[ax] + k.block - 1) / k.block
	for d := range xs {
		if d != ax && s.Shape[d] != xs[d] {
			return quantGran{}, c.Errorf("blocked quantization: scale shape %v must equal x shape %v except on axis %d", s.Shape, xs, ax)
		}
	}
	if s.Shape[ax] != want {
		return quantGran{}, c.Errorf("blocked quantization: scale has %d blocks on axis %d, want ceil(%d/%d) = %d", s.Shape[ax], ax, xs[ax], k.block, want)
	}
	g.mode, g.sn, g.block = quantBlocked, want, k.block
	return g, nil
}

// quantParallelMin is the element count below which Q/DQ stay on one
// goroutine.
const quantParallelMin = 1 << 15

// quantEach splits the elements [0, total) into runs sharing a scale
// layout and calls fn(lo, hi, sIdx, perElem): the scale index is sIdx for
// the whole run, or sIdx + (e - lo) for element e when perElem is set.
func quantEach(c *kernel.Ctx, g *quantGran, total int, fn func(lo, hi, sIdx int, perElem bool)) {
	body := func(lo, hi int) {
		for e := lo; e < hi; {
			if g.mode == quantPerTensor {
				fn(e, hi, 0, false)
				return
			}
			row, i := e/g.inner, e%g.inner
			end := min(hi, (row+1)*g.inner)
			b := g.rowBase(row)
			if g.mode == quantBlocked {
				fn(e, end, b+i, true)
			} else {
				fn(e, end, b, false)
			}
			e = end
		}
	}
	if total < quantParallelMin {
		body(0, total)
		return
	}
	c.Parallel(total, body)
}

// quantScalesF32 returns the scale values as float32 (exact for float16
// and bfloat16).
func quantScalesF32(c *kernel.Ctx, s *tensor.Tensor) ([]float32, error) {
	switch s.DType {
	case tensor.Float32:
		return s.F32(), nil
	case tensor.Float16, tensor.BFloat16:
		out := make([]float32, s.Len())
		reduceLowToF32(s.DType, s.Data.([]uint16), out)
		return out, nil
	case tensor.Int32:
		out := make([]float32, s.Len())
		for i, v := range s.I32() {
			out[i] = float32(v)
		}
		return out, nil
	}
	return nil, c.Errorf("scale of type %s is not supported (want float32, float16 or bfloat16)", quantTypeName(s.DType))
}

func (k *quantKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	if k.quantize {
		return k.runQuantize(c, in)
	}
	return k.runDequantize(c, in)
}

func (k *quantKernel) runQuantize(c *kernel.Ctx, in []*tensor.Tensor) error {
	x, err := need(c, in, 0, "x")
	if err != nil {
		return err
	}
	s, err := need(c, in, 1, "y_scale")
	if err != nil {
		return err
	}
	zp := opt(in, 2)
	odt := tensor.Uint8
	switch {
	case zp != nil:
		if k.outDType != tensor.Undefined && k.outDType != zp.DType {
			return c.Errorf("output_dtype %v does not match the zero point type %v", k.outDType, zp.DType)
		}
		odt = zp.DType
	case k.outDType != tensor.Undefined:
		odt = k.outDType
	}
	if !quantIntType(odt) {
		return c.Errorf("QuantizeLinear to %s is not supported (supported: uint8, int8, uint16, int16)", quantTypeName(odt))
	}
	gv, err := k.granularity(c, x.Shape, s, zp)
	if err != nil {
		return err
	}
	if gv.mode == quantPerTensor && (odt == tensor.Uint8 || odt == tensor.Int8) && x.DType == tensor.Float32 && s.DType == tensor.Float32 {
		if done, err := k.quantizeF32PerTensor(c, x, s.F32()[0], zp, odt); done || err != nil {
			return err
		}
	}
	g := gv // escapes (quantEach): allocated only past the fast path
	sc, err := quantScalesF32(c, s)
	if err != nil {
		return err
	}
	var zps []float64
	if zp != nil {
		zi, err := zp.Int64s()
		if err != nil {
			return c.Errorf("zero point: %v", err)
		}
		zps = make([]float64, len(zi))
		for i, v := range zi {
			zps[i] = float64(v)
		}
	}
	var xf []float32
	var xi []int32
	switch x.DType {
	case tensor.Float32:
		xf = x.F32()
	case tensor.Float16, tensor.BFloat16:
		xf = make([]float32, x.Len())
		reduceLowToF32(x.DType, x.Data.([]uint16), xf)
	case tensor.Int32:
		xi = x.I32()
	default:
		return c.Errorf("QuantizeLinear input of type %v is not supported (want float32, float16, bfloat16 or int32)", x.DType)
	}
	o, err := c.Output(0, odt, x.Shape)
	if err != nil {
		return err
	}
	q := quantizer{g: &g, xf: xf, xi: xi, sc: sc, zp: zps, prec: s.DType, tier: k.tier}
	switch d := o.Data.(type) {
	case []uint8:
		quantizeRun(c, &q, d, 0, math.MaxUint8)
	case []int8:
		quantizeRun(c, &q, d, math.MinInt8, math.MaxInt8)
	case []uint16:
		quantizeRun(c, &q, d, 0, math.MaxUint16)
	case []int16:
		quantizeRun(c, &q, d, math.MinInt16, math.MaxInt16)
	}
	return nil
}

// quantizeF32PerTensor is QuantizeLinear's allocation-free path for a
// float32 input, a positive finite float32 scalar scale and an 8-bit
// output (the input of a lowered INT8 graph): the AVX-512 kernel, else
// the general path's Go loop (the same bits). It reports false (nothing
// done) for other scales, and the general path runs.
func (k *quantKernel) quantizeF32PerTensor(c *kernel.Ctx, x *tensor.Tensor, scale float32, zp *tensor.Tensor, odt tensor.DType) (bool, error) {
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return false, nil
	}
	var z int32
	if zp != nil {
		switch d := zp.Data.(type) {
		case []uint8:
			z = int32(d[0])
		case []int8:
			z = int32(d[0])
		default:
			return false, nil
		}
	}
	o, err := c.Output(0, odt, x.Shape)
	if err != nil {
		return true, err
	}
	xf := x.F32()
	switch d := o.Data.(type) {
	case []uint8:
		if !q8.QuantizeF32(k.tier, d, xf, scale, z, 0, math.MaxUint8) {
			for i, v := range xf {
				d[i] = quantSat[uint8](float64(v/scale), float64(z), 0, math.MaxUint8)
			}
		}
	case []int8:
		if !q8.QuantizeF32(k.tier, quantBytes(d), xf, scale, z, math.MinInt8, math.MaxInt8) {
			for i, v := range xf {
				d[i] = quantSat[int8](float64(v/scale), float64(z), math.MinInt8, math.MaxInt8)
			}
		}
	}
	return true, nil
}

// quantizer holds one QuantizeLinear call's operands.
type quantizer struct {
	g    *quantGran
	xf   []float32 // float input (float32, or widened float16/bfloat16)
	xi   []int32   // int32 input
	sc   []float32
	zp   []float64 // nil: zero
	prec tensor.DType
	tier kernel.Tier
}

// quantBytes views uint8 or int8 storage as bytes (nil for other types).
func quantBytes(d any) []byte {
	switch v := d.(type) {
	case []uint8:
		return v
	case []int8:
		if len(v) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v))
	}
	return nil
}

// quantDiv returns x / s in the scale's precision.
func quantDiv(x, s float32, prec tensor.DType) float64 {
	q := x / s
	switch prec {
	case tensor.Float16:
		q = tensor.HalfToFloat32(tensor.Float32ToHalf(q))
	case tensor.BFloat16:
		q = math.Float32frombits(uint32(reduceF32ToBF16(q)) << 16)
	}
	return float64(q)
}

// quantSat saturates round_half_even(q) + zp into [lo, hi]; NaN gives lo.
func quantSat[Q int8 | uint8 | int16 | uint16](q, zp float64, lo, hi Q) Q {
	f := math.RoundToEven(q) + zp
	switch {
	case f >= float64(hi):
		return hi
	case f > float64(lo):
		return Q(f)
	}
	return lo // below the range, or NaN
}

func quantizeRun[Q int8 | uint8 | int16 | uint16](c *kernel.Ctx, q *quantizer, dst []Q, lo, hi Q) {
	quantEach(c, q.g, len(dst), func(l, h, si int, perElem bool) {
		zpAt := func(i int) float64 {
			if q.zp == nil {
				return 0
			}
			return q.zp[i]
		}
		if !perElem {
			s, z := q.sc[si], zpAt(si)
			if q.xi != nil {
				sf := float64(s)
				for e := l; e < h; e++ {
					dst[e] = quantSat(float64(q.xi[e])/sf, z, lo, hi)
				}
				return
			}
			if q.prec == tensor.Float32 {
				if b := quantBytes(any(dst[l:h])); b != nil && q8.QuantizeF32(q.tier, b, q.xf[l:h], s, int32(z), int32(lo), int32(hi)) {
					return
				}
				for e := l; e < h; e++ {
					dst[e] = quantSat(float64(q.xf[e]/s), z, lo, hi)
				}
				return
			}
			for e := l; e < h; e++ {
				dst[e] = quantSat(quantDiv(q.xf[e], s, q.prec), z, lo, hi)
			}
			return
		}
		for e := l; e < h; e++ {
			j := si + e - l
			var v float64
			if q.xi != nil {
				v = float64(q.xi[e]) / float64(q.sc[j])
			} else {
				v = quantDiv(q.xf[e], q.sc[j], q.prec)
			}
			dst[e] = quantSat(v, zpAt(j), lo, hi)
		}
	})
}

func (k *quantKernel) runDequantize(c *kernel.Ctx, in []*tensor.Tensor) error {
	x, err := need(c, in, 0, "x")
	if err != nil {
		return err
	}
	s, err := need(c, in, 1, "x_scale")
	if err != nil {
		return err
	}
	zp := opt(in, 2)
	if zp != nil && zp.DType != x.DType {
		return c.Errorf("zero point type %v does not match input type %v", zp.DType, x.DType)
	}
	gv, err := k.granularity(c, x.Shape, s, zp)
	if err != nil {
		return err
	}
	sc, err := quantScalesF32(c, s)
	if err != nil {
		return err
	}
	if s.DType == tensor.Int32 {
		return c.Errorf("scale of type int32 is not supported by DequantizeLinear")
	}
	if gv.mode == quantPerTensor && (k.outDType == tensor.Undefined || k.outDType == tensor.Float32) && s.DType == tensor.Float32 {
		if xb := quantBytes(x.Data); xb != nil && (zp == nil || quantBytes(zp.Data) != nil) {
			// 8-bit input, float32 scalar scale (the output of a lowered
			// INT8 graph): the AVX-512 kernel or the Go loop below (the
			// same bits), allocation-free.
			var z int32
			if zp != nil {
				z = int32(zp.Float64At(0))
			}
			o, err := c.Output(0, tensor.Float32, x.Shape)
			if err != nil {
				return err
			}
			signed := x.DType == tensor.Int8
			if dst := o.F32(); !q8.Dequantize(k.tier, dst, xb, signed, z, sc[0]) {
				for i, v := range xb {
					q := int32(v)
					if signed {
						q = int32(int8(v))
					}
					dst[i] = float32(int64(q)-int64(z)) * sc[0]
				}
			}
			return nil
		}
	}
	g := gv // escapes (quantEach): allocated only past the fast path
	var zps []int64
	if zp != nil {
		if zps, err = zp.Int64s(); err != nil {
			return c.Errorf("zero point: %v", err)
		}
	}
	odt := s.DType
	if k.outDType != tensor.Undefined {
		odt = k.outDType
	}
	o, err := c.Output(0, odt, x.Shape)
	if err != nil {
		return err
	}
	dst, ok := o.Data.([]float32)
	if !ok {
		dst = make([]float32, o.Len())
	}
	switch xs := x.Data.(type) {
	case []uint8:
		dequantizeRun(c, k.tier, &g, xs, sc, zps, dst)
	case []int8:
		dequantizeRun(c, k.tier, &g, xs, sc, zps, dst)
	case []int16:
		dequantizeRun(c, k.tier, &g, xs, sc, zps, dst)
	case []int32:
		dequantizeRun(c, k.tier, &g, xs, sc, zps, dst)
	case []uint16:
		if x.DType != tensor.Uint16 {
			return c.Errorf("DequantizeLinear input of type %v is not supported", x.DType)
		}
		dequantizeRun(c, k.tier, &g, xs, sc, zps, dst)
	default:
		return c.Errorf("DequantizeLinear input of type %s is not supported (want uint8, int8, uint16, int16 or int32)", quantTypeName(x.DType))
	}
	if !ok {
		reduceF32ToLow(odt, dst, o.Data.([]uint16))
	}
	return nil
}

// dequantizeRun computes dst = float32(x - zp) * scale.
func dequantizeRun[Q int8 | uint8 | int16 | uint16 | int32](c *kernel.Ctx, tier kernel.Tier, g *quantGran, xs []Q, sc []float32, zp []int64, dst []float32) {
	_, signed := any(xs).([]int8)
	quantEach(c, g, len(xs), func(l, h, si int, perElem bool) {
		if !perElem {
			s := sc[si]
			var z int64
			if zp != nil {
				z = zp[si]
			}
			if b := quantBytes(any(xs[l:h])); b != nil && q8.Dequantize(tier, dst[l:h], b, signed, int32(z), s) {
				return
			}
			for e := l; e < h; e++ {
				dst[e] = float32(int64(xs[e])-z) * s
			}
			return
		}
		for e := l; e < h; e++ {
			j := si + e - l
			var z int64
			if zp != nil {
				z = zp[j]
			}
			dst[e] = float32(int64(xs[e])-z) * sc[j]
		}
	})
}
