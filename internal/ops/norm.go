package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// bnKernel implements BatchNormalization (opsets 7, 9, 14, 15). Inference
// mode computes, per channel c (axis 1),
//
//	Y = (X - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c]
//
// Opsets 7-8 with spatial=0 take per-activation parameters of shape
// (C, D1, ..., Dn). Training mode (training_mode=1, opset 14+) normalizes
// with the batch statistics (mean and population variance over all axes
// but 1) and outputs running_mean = mean*momentum + batch_mean*(1-momentum)
// and running_var likewise. Before opset 14 the training outputs (mean,
// var, saved_mean, saved_var) are not supported and requesting one is an
// error.
type bnKernel struct {
	eps, momentum float64
	training      bool
	spatial       bool
	opset         int64
	vk            vec.Kernels
	// coef holds the inference coefficients Y = X*a + b; when the four
	// parameters are constants (params), they are computed once.
	params [4]*tensor.Tensor
	coef   bnCoef
}

// bnCoef holds per-channel inference coefficients in float64 and float32.
type bnCoef struct {
	a, b     []float64
	a32, b32 []float32
	ok       bool
}

func buildBatchNorm(info *kernel.Info) (kernel.Kernel, error) {
	return buildBatchNormVec(info, vec.Generic())
}

func buildBatchNormVec(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &bnKernel{
		eps:      float64(a.Float("epsilon", 1e-5)),
		momentum: float64(a.Float("momentum", 0.9)),
		spatial:  true,
		opset:    info.Opset,
		vk:       vk,
	}
	if len(info.Consts) >= 5 && info.Consts[1] != nil && info.Consts[2] != nil && info.Consts[3] != nil && info.Consts[4] != nil {
		k.params = [4]*tensor.Tensor{info.Consts[1], info.Consts[2], info.Consts[3], info.Consts[4]}
	}
	// Attributes of other versions are tolerated at their default values
	// and rejected otherwise, never silently ignored.
	if info.Opset < 9 {
		k.spatial = a.Int("spatial", 1) != 0
	} else if a.Int("spatial", 1) == 0 {
		return nil, info.Errorf("attribute spatial=0 is not part of BatchNormalization at opset %d", info.Opset)
	}
	if info.Opset >= 14 {
		k.training = a.Int("training_mode", 0) != 0
	} else if a.Int("training_mode", 0) != 0 {
		return nil, info.Errorf("attribute training_mode is not part of BatchNormalization at opset %d", info.Opset)
	}
	return k, nil
}

// bnParam returns a float parameter tensor as float64 values.
func bnParam(c *kernel.Ctx, t *tensor.Tensor, name string) ([]float64, error) {
	if !nnFloatDType(t.DType) {
		return nil, c.Errorf("%s has dtype %v, want a float type", name, t.DType)
	}
	v := make([]float64, t.Len())
	for i := range v {
		v[i] = t.Float64At(i)
	}
	return v, nil
}

func (k *bnKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	if !nnFloatDType(x.DType) {
		return c.Errorf("BatchNormalization does not support %v", x.DType)
	}
	if x.Rank() < 2 {
		return c.Errorf("input X rank %d, want at least 2 (N, C, ...)", x.Rank())
	}
	names := [...]string{"scale", "B", "input_mean", "input_var"}
	var parT [4]*tensor.Tensor
	for i, name := range names {
		t, err := need(c, in, i+1, name)
		if err != nil {
			return err
		}
		if !nnFloatDType(t.DType) {
			return c.Errorf("%s has dtype %v, want a float type", name, t.DType)
		}
		parT[i] = t
	}
	n, ch := x.Shape[0], x.Shape[1]
	size := 1
	for _, d := range x.Shape[2:] {
		size *= d
	}
	perElem := false
	for i, t := range parT {
		switch {
		case t.Len() == ch:
		case !k.spatial && t.Len() == ch*size:
			perElem = true
		default:
			return c.Errorf("%s shape %s does not match %d channels", names[i], parT[i].Shape.String(), ch)
		}
	}
	if !k.training {
		for i := 1; i < len(out); i++ {
			if nnWants(c, out, i) {
				if k.opset >= 14 {
					return c.Errorf("output %d (running statistics) is only defined with training_mode=1", i)
				}
				return c.Errorf("training outputs (mean, var, saved_mean, saved_var) of BatchNormalization opset %d are not supported; only output Y (inference)", k.opset)
			}
		}
	}
	if k.training || perElem {
		return k.runGeneral(c, x, parT, out, n, ch, size, perElem)
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	if !k.coef.ok || parT != k.params || k.params[0] == nil {
		k.coef.set(parT, ch, k.eps)
		k.coef.ok = parT == k.params && k.params[0] != nil
	}
	switch x.DType {
	case tensor.Float32:
		xs, ys := x.F32(), y.F32()
		for i := 0; i < n*ch; i++ {
			c := i % ch
			k.vk.AXPB(ys[i*size:(i+1)*size], xs[i*size:(i+1)*size], k.coef.a32[c], k.coef.b32[c])
		}
	case tensor.Float64:
		bnApply(x.F64(), y.F64(), k.coef.a, k.coef.b, n, ch, size, false)
	case tensor.Float16:
		yf := make([]float32, y.Len())
		bnApply(nnToF32(x), yf, k.coef.a, k.coef.b, n, ch, size, false)
		f32ToHalf(y.Data.([]uint16), yf)
	}
	return nil
}

// set computes a = scale/sqrt(var+eps) and b = B - mean*a per channel.
func (cf *bnCoef) set(par [4]*tensor.Tensor, ch int, eps float64) {
	if cap(cf.a) < ch {
		cf.a, cf.b = make([]float64, ch), make([]float64, ch)
		cf.a32, cf.b32 = make([]float32, ch), make([]float32, ch)
	}
	cf.a, cf.b, cf.a32, cf.b32 = cf.a[:ch], cf.b[:ch], cf.a32[:ch], cf.b32[:ch]
	for i := range cf.a {
		a := par[0].Float64At(i) / math.Sqrt(par[3].Float64At(i)+eps)
		cf.a[i] = a
		cf.b[i] = par[1].Float64At(i) - par[2].Float64At(i)*a
		cf.a32[i], cf.b32[i] = float32(cf.a[i]), float32(cf.b[i])
	}
}

// runGeneral handles training mode and per-activation parameters
// (allocating as it goes).
func (k *bnKernel) runGeneral(c *kernel.Ctx, x *tensor.Tensor, parT [4]*tensor.Tensor, out []*tensor.Tensor, n, ch, size int, perElem bool) error {
	names := [...]string{"scale", "B", "input_mean", "input_var"}
	var par [4][]float64
	for i, t := range parT {
		var err error
		if par[i], err = bnParam(c, t, names[i]); err != nil {
			return err
		}
	}
	if perElem {
		for i := range par {
			if len(par[i]) != ch*size {
				// Mixed per-channel and per-activation parameters: expand.
				par[i] = bnExpand(par[i], size)
			}
		}
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	mean, vr := par[2], par[3]
	if k.training {
		if perElem {
			return c.Errorf("training mode needs per-channel parameters")
		}
		bm, bv := bnBatchStats(x, n, ch, size)
		for i, slot := range [2]int{1, 2} {
			if !nnWants(c, out, slot) {
				continue
			}
			src := [2][]float64{par[2], par[3]}[i]
			cur := [2][]float64{bm, bv}[i]
			ot, err := c.Output(slot, parT[2+i].DType, tensor.Shape{ch})
			if err != nil {
				return err
			}
			run := make([]float64, ch)
			for j := range run {
				run[j] = src[j]*k.momentum + cur[j]*(1-k.momentum)
			}
			if err := storeFloat64(c, ot, run); err != nil {
				return err
			}
		}
		mean, vr = bm, bv
	}
	// Y = X*a + b with a = scale/sqrt(var+eps), b = B - mean*a.
	np := len(mean)
	av := make([]float64, np)
	bv := make([]float64, np)
	for i := range av {
		av[i] = par[0][i] / math.Sqrt(vr[i]+k.eps)
		bv[i] = par[1][i] - mean[i]*av[i]
	}
	switch x.DType {
	case tensor.Float32:
		bnApply(x.F32(), y.F32(), av, bv, n, ch, size, perElem)
	case tensor.Float64:
		bnApply(x.F64(), y.F64(), av, bv, n, ch, size, perElem)
	case tensor.Float16:
		yf := make([]float32, y.Len())
		bnApply(nnToF32(x), yf, av, bv, n, ch, size, perElem)
		f32ToHalf(y.Data.([]uint16), yf)
	}
	return nil
}

// bnExpand repeats each per-channel value size times.
func bnExpand(p []float64, size int) []float64 {
	out := make([]float64, len(p)*size)
	for i, v := range p {
		for j := 0; j < size; j++ {
			out[i*size+j] = v
		}
	}
	return out
}

// bnBatchStats returns the per-channel mean and population variance of x
// over the batch and spatial axes.
func bnBatchStats(x *tensor.Tensor, n, ch, size int) (mean, vr []float64) {
	mean = make([]float64, ch)
	vr = make([]float64, ch)
	cnt := float64(n * size)
	if cnt == 0 {
		return mean, vr
	}
	for i := 0; i < n*ch; i++ {
		c := i % ch
		for j := 0; j < size; j++ {
			mean[c] += x.Float64At(i*size + j)
		}
	}
	for c := range mean {
		mean[c] /= cnt
	}
	for i := 0; i < n*ch; i++ {
		c := i % ch
		for j := 0; j < size; j++ {
			d := x.Float64At(i*size+j) - mean[c]
			vr[c] += d * d
		}
	}
	for c := range vr {
		vr[c] /= cnt
	}
	return mean, vr
}

// bnApply computes y = x*a + b per channel (or per activation).
func bnApply[T Float](x, y []T, a, b []float64, n, ch, size int, perElem bool) {
	for i := 0; i < n*ch; i++ {
		c := i % ch
		xs := x[i*size : (i+1)*size]
		ys := y[i*size : (i+1)*size]
		if perElem {
			as, bs := a[c*size:(c+1)*size], b[c*size:(c+1)*size]
			for j, v := range xs {
				ys[j] = T(float64(v)*as[j] + bs[j])
			}
			continue
		}
		av, bv := T(a[c]), T(b[c])
		for j, v := range xs {
			ys[j] = v*av + bv
		}
	}
}

// lnKernel implements LayerNormalization (opset 17): for each index of
// the axes before axis, over the normalized axes [axis, rank),
//
//	Y = (X - mean) / sqrt(var + epsilon) * Scale + B
//
// with the population variance, Scale and B broadcast to the normalized
// shape. Optional outputs Mean and InvStdDev have shape X.shape[:axis]
// followed by ones, of dtype float32 (stash_type 1) or float64 (11).
// Statistics are computed in float64.
type lnKernel struct {
	axis  int64
	eps   float64
	stash tensor.DType
	vk    vec.Kernels
	// scale and bias expanded to the normalized shape in float32, for the
	// tensors (and shape) they were made from.
	sc32, b32 []float32
	scT, bT   *tensor.Tensor
	norm      tensor.Shape
	constSB   [2]*tensor.Tensor // Scale and B when constant
	task      lnTask32
}

func buildLayerNorm(info *kernel.Info) (kernel.Kernel, error) {
	return buildLayerNormVec(info, vec.Generic())
}

func buildLayerNormVec(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	a := info.Attrs()
	k := &lnKernel{axis: a.Int("axis", -1), eps: float64(a.Float("epsilon", 1e-5)), vk: vk}
	for i := 1; i <= 2 && i < len(info.Consts); i++ {
		k.constSB[i-1] = info.Consts[i]
	}
	switch st := a.Int("stash_type", 1); st {
	case 1:
		k.stash = tensor.Float32
	case 11:
		k.stash = tensor.Float64
	default:
		return nil, info.Errorf("stash_type %d is not supported (want 1, float32)", st)
	}
	return k, nil
}

// lnExpand broadcasts a Scale or B tensor to the normalized shape and
// returns its values as float64 (inner values).
func lnExpand(c *kernel.Ctx, t *tensor.Tensor, norm tensor.Shape, name string) ([]float64, error) {
	if !nnFloatDType(t.DType) {
		return nil, c.Errorf("%s has dtype %v, want a float type", name, t.DType)
	}
	if t.Rank() > len(norm) {
		return nil, c.Errorf("%s shape %v does not broadcast to the normalized shape %v", name, t.Shape, norm)
	}
	off := len(norm) - t.Rank()
	for i, d := range t.Shape {
		if d != 1 && d != norm[off+i] {
			return nil, c.Errorf("%s shape %v does not broadcast to the normalized shape %v", name, t.Shape, norm)
		}
	}
	inner := norm.Size()
	out := make([]float64, inner)
	if t.Len() == inner {
		for i := range out {
			out[i] = t.Float64At(i)
		}
		return out, nil
	}
	st := bstrides(t.Shape, norm)
	idx := make([]int, len(norm))
	for i := range out {
		src := 0
		for d := range idx {
			src += idx[d] * st[d]
		}
		out[i] = t.Float64At(src)
		nnNext(idx, norm)
	}
	return out, nil
}

func (k *lnKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	if !nnFloatDType(x.DType) {
		return c.Errorf("LayerNormalization does not support %v", x.DType)
	}
	sc, err := need(c, in, 1, "Scale")
	if err != nil {
		return err
	}
	b := opt(in, 2)
	r := x.Rank()
	if r == 0 {
		return c.Errorf("input X must have rank >= 1")
	}
	axis, err := normAxis(c, k.axis, r)
	if err != nil {
		return err
	}
	norm := x.Shape[axis:]
	inner := norm.Size()
	outer := 1
	for _, d := range x.Shape[:axis] {
		outer *= d
	}
	if x.DType == tensor.Float64 {
		return k.runF64(c, x, sc, b, out, axis, outer, inner)
	}
	if err := k.expand32(c, sc, b, norm); err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	var buf [8]int
	statShape := tensor.Shape(append(buf[:0], x.Shape...))
	for i := axis; i < r; i++ {
		statShape[i] = 1
	}
	var mt, it *tensor.Tensor
	if nnWants(c, out, 1) {
		if mt, err = c.Output(1, k.stash, statShape); err != nil {
			return err
		}
	}
	if nnWants(c, out, 2) {
		if it, err = c.Output(2, k.stash, statShape); err != nil {
			return err
		}
	}
	xs, ys := []float32(nil), []float32(nil)
	if x.DType == tensor.Float32 {
		xs, ys = x.F32(), y.F32()
	} else {
		s := c.Scratch(2 * x.Len())
		xs, ys = s[:x.Len()], s[x.Len():]
		ewHalfToF32(xs, x.Data.([]uint16))
	}
	var bias []float32
	if b != nil {
		bias = k.b32
	}
	workers := nnWorkers(c, outer, 8*float64(outer)*float64(inner))
	k.task = lnTask32{vk: k.vk, x: xs, y: ys, scale: k.sc32, bias: bias, inner: inner, outer: outer,
		eps: k.eps, mean: mt, inv: it, workers: workers}
	if workers == 1 {
		k.task.Run(0, 1)
	} else {
		c.ParallelTask(workers, &k.task)
	}
	k.task = lnTask32{}
	if x.DType == tensor.Float16 {
		f32ToHalf(y.Data.([]uint16), ys)
	}
	return nil
}

// expand32 broadcasts Scale and B to the normalized shape in float32,
// reusing the previous expansion for the same constant tensors.
func (k *lnKernel) expand32(c *kernel.Ctx, sc, b *tensor.Tensor, norm tensor.Shape) error {
	if sc == k.scT && b == k.bT && sc == k.constSB[0] && b == k.constSB[1] && k.norm.Equal(norm) {
		return nil
	}
	var err error
	if k.sc32, err = lnExpand32(c, k.sc32, sc, norm, "Scale"); err != nil {
		return err
	}
	if b != nil {
		if k.b32, err = lnExpand32(c, k.b32, b, norm, "B"); err != nil {
			return err
		}
	}
	k.scT, k.bT, k.norm = sc, b, append(k.norm[:0], norm...)
	return nil
}

// lnExpand32 is lnExpand into float32 storage dst (grown as needed); a
// tensor that already has the normalized size is converted without
// allocating.
func lnExpand32(c *kernel.Ctx, dst []float32, t *tensor.Tensor, norm tensor.Shape, name string) ([]float32, error) {
	inner := norm.Size()
	if t.Len() != inner || t.Rank() > len(norm) {
		v, err := lnExpand(c, t, norm, name)
		if err != nil {
			return dst, err
		}
		return lnTo32(dst, v), nil
	}
	if !nnFloatDType(t.DType) {
		return dst, c.Errorf("%s has dtype %v, want a float type", name, t.DType)
	}
	off := len(norm) - t.Rank()
	for i, d := range t.Shape {
		if d != norm[off+i] {
			v, err := lnExpand(c, t, norm, name)
			if err != nil {
				return dst, err
			}
			return lnTo32(dst, v), nil
		}
	}
	if cap(dst) < inner {
		dst = make([]float32, inner)
	}
	dst = dst[:inner]
	switch d := t.Data.(type) {
	case []float32:
		copy(dst, d)
	default:
		for i := range dst {
			dst[i] = float32(t.Float64At(i))
		}
	}
	return dst, nil
}

// lnTo32 converts v into dst's storage (grown as needed).
func lnTo32(dst []float32, v []float64) []float32 {
	if cap(dst) < len(v) {
		dst = make([]float32, len(v))
	}
	dst = dst[:len(v)]
	for i, x := range v {
		dst[i] = float32(x)
	}
	return dst
}

// lnTask32 normalizes float32 rows; worker w takes a contiguous share.
type lnTask32 struct {
	vk                vec.Kernels
	x, y, scale, bias []float32
	inner, outer      int
	eps               float64
	mean, inv         *tensor.Tensor // optional statistics outputs
	workers           int
}

// Run normalizes the rows of workers [lo, hi).
func (t *lnTask32) Run(lo, hi int) {
	chunk := (t.outer + t.workers - 1) / t.workers
	n := float32(t.inner)
	for r := lo * chunk; r < min(t.outer, hi*chunk); r++ {
		xs := t.x[r*t.inner : (r+1)*t.inner]
		ys := t.y[r*t.inner : (r+1)*t.inner]
		mean := t.vk.Sum(xs) / n
		v := t.vk.SumSqD(xs, mean) / n
		inv := float32(1 / math.Sqrt(float64(v)+t.eps))
		if t.inner > 0 {
			t.vk.Norm(ys, xs, t.scale, t.bias, mean, inv)
		}
		lnStore(t.mean, r, mean)
		lnStore(t.inv, r, inv)
	}
}

// lnStore writes v to element r of a float32 or float64 statistics
// tensor (nil: not requested).
func lnStore(t *tensor.Tensor, r int, v float32) {
	if t == nil {
		return
	}
	switch d := t.Data.(type) {
	case []float32:
		d[r] = v
	case []float64:
		d[r] = float64(v)
	}
}

// runF64 is LayerNormalization on float64 data, statistics in float64.
func (k *lnKernel) runF64(c *kernel.Ctx, x, sc, b *tensor.Tensor, out []*tensor.Tensor, axis, outer, inner int) error {
	r := x.Rank()
	norm := x.Shape[axis:]
	scale, err := lnExpand(c, sc, norm, "Scale")
	if err != nil {
		return err
	}
	var bias []float64
	if b != nil {
		if bias, err = lnExpand(c, b, norm, "B"); err != nil {
			return err
		}
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	statShape := x.Shape.Clone()
	for i := axis; i < r; i++ {
		statShape[i] = 1
	}
	var means, invs []float64
	var mt, it *tensor.Tensor
	if nnWants(c, out, 1) {
		if mt, err = c.Output(1, k.stash, statShape); err != nil {
			return err
		}
		means = make([]float64, outer)
	}
	if nnWants(c, out, 2) {
		if it, err = c.Output(2, k.stash, statShape); err != nil {
			return err
		}
		invs = make([]float64, outer)
	}
	lnRows(c, x.F64(), y.F64(), scale, bias, outer, inner, k.eps, means, invs)
	if mt != nil {
		if err := storeFloat64(c, mt, means); err != nil {
			return err
		}
	}
	if it != nil {
		if err := storeFloat64(c, it, invs); err != nil {
			return err
		}
	}
	return nil
}

// lnRows normalizes outer rows of inner values each; means and invs, when
// not nil, receive each row's mean and 1/sqrt(var+eps).
func lnRows[T Float](c *kernel.Ctx, x, y []T, scale, bias []float64, outer, inner int, eps float64, means, invs []float64) {
	workers := nnWorkers(c, outer, 8*float64(outer)*float64(inner))
	chunk := (outer + workers - 1) / workers
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi * chunk; r < min(outer, (wi+1)*chunk); r++ {
			xs := x[r*inner : (r+1)*inner]
			ys := y[r*inner : (r+1)*inner]
			var s float64
			for _, v := range xs {
				s += float64(v)
			}
			mean := s / float64(inner)
			var q float64
			for _, v := range xs {
				d := float64(v) - mean
				q += d * d
			}
			inv := 1 / math.Sqrt(q/float64(inner)+eps)
			if means != nil {
				means[r] = mean
			}
			if invs != nil {
				invs[r] = inv
			}
			for j, v := range xs {
				o := (float64(v) - mean) * inv * scale[j]
				if bias != nil {
					o += bias[j]
				}
				ys[j] = T(o)
			}
		}
	})
}
