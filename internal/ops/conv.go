package ops

import (
	"math"
	"slices"

	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// convKernel implements Conv (opsets 1 and 11 semantics; the two differ
// only in documentation) and goslim.FusedConv (Conv, then an activation):
//
//	Y[n, m, o...] = B[m] + sum_{c < C/group, t} W[m, c, t...] * X[n, g*C/group + c, o*stride - padB + t*dil]
//
// with g = m / (M/group) and zero padding. float32 runs the fp32 GEMM of
// the kernel's tier: per image and group, Y_g = W_g * col(X_g) with the
// column matrix packed straight from the image (implicit im2col; 1x1
// convolutions read X as the matrix), constant weights packed once at
// build time, and the bias and activation applied to each output tile in
// the GEMM epilogue. Depthwise convolutions (one input channel per group)
// run a direct loop. float16 computes in float32; float64 and convolutions
// with more than three spatial axes use a direct loop.
type convKernel struct {
	win   nnWinAttrs
	group int
	// act is the activation of goslim.FusedConv (none for Conv).
	act fp32.Act
	// fk is the float32 kernel set of the entry's tier.
	fk fp32.Kernels
	// wF32 caches a constant float16 weight converted to float32.
	wF32 []float32
	// packed holds the constant float32 (or float16) weight packed per
	// group for fk, used when the run-time weight is wConst.
	wConst *tensor.Tensor
	packed []*fp32.PackedA
	// packedT holds, for 1x1 convolutions whose static output has fewer
	// than 32 positions, W^T per group packed as a right operand (the
	// transposed product keeps vector lanes full; see fp32.ConvOp.PWT).
	packedT []*fp32.PackedB
	// st is the per-call state of the float32 path, kept so that a call
	// allocates nothing (calls on one kernel never overlap).
	st convState
}

// convState is the state of one float32 convolution call: the resolved
// window (cached per input shape), the problem and the parallel jobs. A
// kernel keeps one; code running one kernel's convolution from several
// goroutines at once gives each its own.
type convState struct {
	winIn, winK []int // spatial input and kernel sizes win was resolved for
	win         nnWin
	winOK       bool
	shape       tensor.Shape // output shape buffer
	p           convProblem
	geom        fp32.ConvGeom
	job         convJob
	dw          dwJob
	pt          ptJob
}

// window returns the window of a for spatial input sizes in and kernel
// sizes k, resolving it only when they differ from the last call's.
func (st *convState) window(c *kernel.Ctx, a *nnWinAttrs, in, k []int) (*nnWin, error) {
	if st.winOK && slices.Equal(st.winIn, in) && slices.Equal(st.winK, k) {
		return &st.win, nil
	}
	st.winOK = false
	st.winIn = append(st.winIn[:0], in...)
	st.winK = append(st.winK[:0], k...)
	win, err := a.resolve(c, st.winIn, st.winK)
	if err != nil {
		return nil, err
	}
	st.win, st.winOK = win, true
	return &st.win, nil
}

// outShape returns [n, m, out...] in the state's buffer.
func (st *convState) outShape(n, m int, out []int) tensor.Shape {
	st.shape = append(append(st.shape[:0], n, m), out...)
	return st.shape
}

// fusedAct reads the activation attributes of goslim.FusedConv and
// goslim.FusedGemm: activation ("Relu", "Clip", "HardSwish", "LeakyRelu",
// "Sigmoid" or ""), clip_min and clip_max (default -Inf and +Inf, for
// missing Clip bounds) and LeakyRelu's slope (default 0.01) in
// "activation_alpha". FusedConv also accepts the slope as "alpha";
// FusedGemm cannot, since its "alpha" is Gemm's.
func fusedAct(info *kernel.Info, gemm bool) (fp32.Act, error) {
	a := info.Attrs()
	slope := a.Float("activation_alpha", 0.01)
	if !gemm && !a.Has("activation_alpha") {
		slope = a.Float("alpha", 0.01)
	}
	act, err := fp32.ParseAct(a.Str("activation", ""),
		a.Float("clip_min", float32(math.Inf(-1))), a.Float("clip_max", float32(math.Inf(1))), slope)
	if err != nil {
		return act, info.Errorf("%v", err)
	}
	return act, nil
}

// convAlgo names the float32 convolution algorithms, as they appear in
// kernel entry names ("avx512.im2col").
type convAlgo string

const (
	convIm2col    convAlgo = "im2col"    // implicit im2col + packed GEMM
	convPointwise convAlgo = "pointwise" // 1x1, stride 1, no padding: X is the GEMM operand
	convDepthwise convAlgo = "depthwise" // one input channel per group: direct loop
)

// convClassify returns the algorithm the float32 path will take for the
// node, judged from its attributes and the static weight shape ("" when
// the weight shape is unknown).
func convClassify(info *kernel.Info) convAlgo {
	var ws []int
	if len(info.Consts) > 1 && info.Consts[1] != nil {
		ws = info.Consts[1].Shape
	} else if len(info.Inputs) > 1 && info.Inputs[1].Ranked {
		for _, d := range info.Inputs[1].Shape {
			if !d.Known() {
				return ""
			}
			ws = append(ws, int(d.Size))
		}
	}
	if len(ws) < 3 {
		return ""
	}
	a := info.Attrs()
	g := int(a.Int("group", 1))
	if ws[1] == 1 && g > 1 && ws[0]/g <= 4 && len(ws) <= 5 {
		return convDepthwise
	}
	for _, k := range ws[2:] {
		if k != 1 {
			return convIm2col
		}
	}
	if st, ok := a.Ints("strides"); ok {
		for _, v := range st {
			if v != 1 {
				return convIm2col
			}
		}
	}
	if pads, ok := a.Ints("pads"); ok {
		for _, v := range pads {
			if v != 0 {
				return convIm2col
			}
		}
	}
	if ap := a.Str("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "" && ap != "VALID" {
		// SAME with 1x1 and stride 1 pads nothing either.
		if st, ok := a.Ints("strides"); ok {
			for _, v := range st {
				if v != 1 {
					return convIm2col
				}
			}
		}
	}
	return convPointwise
}

// convBuilder returns the builder of Conv (fused=false) or FusedConv for
// the float32 kernels fk.
func convBuilder(fk fp32.Kernels, fused bool) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		k, err := newConvKernel(info, fk)
		if err != nil {
			return nil, err
		}
		if fused {
			if k.act, err = fusedAct(info, false); err != nil {
				return nil, err
			}
		}
		return k, nil
	}
}

func newConvKernel(info *kernel.Info, fk fp32.Kernels) (*convKernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.ceil {
		return nil, info.Errorf("Conv has no ceil_mode attribute")
	}
	win.strict = true
	g := info.Attrs().Int("group", 1)
	if g < 1 || g > nnMaxAttr {
		return nil, info.Errorf("group %d must be positive", g)
	}
	k := &convKernel{win: win, group: int(g), fk: fk}
	if len(info.Consts) > 1 && info.Consts[1] != nil {
		w := info.Consts[1]
		if w.DType == tensor.Float16 {
			k.wF32 = halfToF32(w.Data.([]uint16))
		}
		k.packWeights(w)
		if k.packed != nil && convClassify(info) == convPointwise && convSmallStatic(info) {
			kk := w.Len() / w.Shape[0]
			mg := w.Shape[0] / k.group
			wf := k.wF32
			if wf == nil {
				wf = w.F32()
			}
			k.packedT = make([]*fp32.PackedB, k.group)
			for gi := range k.packedT {
				k.packedT[gi] = k.fk.PackB(true, kk, mg, wf[gi*mg*kk:(gi+1)*mg*kk], kk)
			}
		}
	}
	return k, nil
}

// convSmallStatic reports whether the node's input has known spatial
// dimensions with fewer than 32 positions in total.
func convSmallStatic(info *kernel.Info) bool {
	if len(info.Inputs) == 0 || !info.Inputs[0].Ranked || len(info.Inputs[0].Shape) < 3 {
		return false
	}
	n := int64(1)
	for _, d := range info.Inputs[0].Shape[2:] {
		if !d.Known() {
			return false
		}
		n *= d.Size
	}
	return n < 32
}

// packWeights packs a constant float32/float16 weight (M, C/group, k...)
// per group as the GEMM's left operand (M/group x C/group*K), unless the
// convolution is depthwise (which reads W directly).
func (k *convKernel) packWeights(w *tensor.Tensor) {
	if (w.DType != tensor.Float32 && w.DType != tensor.Float16) || w.Rank() < 3 || w.Rank() > 5 || w.Check() != nil {
		return
	}
	m, cg := w.Shape[0], w.Shape[1]
	if m%k.group != 0 || m == 0 || cg == 0 {
		return
	}
	mg := m / k.group
	if cg == 1 && k.group > 1 && mg <= 4 {
		return // depthwise
	}
	kk := w.Len() / m
	wf := k.wF32
	if wf == nil {
		wf = w.F32()
	}
	k.packed = make([]*fp32.PackedA, k.group)
	for gi := range k.packed {
		k.packed[gi] = k.fk.PackA(false, mg, kk, wf[gi*mg*kk:(gi+1)*mg*kk], kk)
	}
	k.wConst = w
}

// convShapes checks X (N, C, D...), W (M, C/group, k...) and B (M) and
// returns N, C, M and the spatial input and kernel sizes.
func convShapes(c *kernel.Ctx, x, w, b *tensor.Tensor, group int, kernelAttr []int) (n, ch, m int, in, k []int, err error) {
	if x.Rank() < 3 {
		return 0, 0, 0, nil, nil, c.Errorf("input X rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	if w.Rank() != x.Rank() {
		return 0, 0, 0, nil, nil, c.Errorf("weight rank %d, want %d", w.Rank(), x.Rank())
	}
	n, ch, m = x.Shape[0], x.Shape[1], w.Shape[0]
	if ch != w.Shape[1]*group {
		return 0, 0, 0, nil, nil, c.Errorf("input has %d channels but weight %v with group %d wants %d", ch, w.Shape, group, w.Shape[1]*group)
	}
	if m%group != 0 {
		return 0, 0, 0, nil, nil, c.Errorf("%d output channels not divisible by group %d", m, group)
	}
	in = []int(x.Shape[2:])
	k = []int(w.Shape[2:])
	if kernelAttr != nil {
		if len(kernelAttr) != len(k) {
			return 0, 0, 0, nil, nil, c.Errorf("kernel_shape %v has %d values, want %d", kernelAttr, len(kernelAttr), len(k))
		}
		for i := range k {
			if kernelAttr[i] != k[i] {
				return 0, 0, 0, nil, nil, c.Errorf("kernel_shape %v does not match weight shape %v", kernelAttr, w.Shape)
			}
		}
	}
	for i, v := range k {
		if v < 1 {
			return 0, 0, 0, nil, nil, c.Errorf("weight %v has empty kernel axis %d", w.Shape, i)
		}
	}
	if b != nil && (b.Rank() != 1 || b.Shape[0] != m) {
		return 0, 0, 0, nil, nil, c.Errorf("bias shape %v, want [%d]", b.Shape, m)
	}
	return n, ch, m, in, k, nil
}

func (k *convKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	w, err := need(c, in, 1, "W")
	if err != nil {
		return err
	}
	b := opt(in, 2)
	if !nnFloatDType(x.DType) {
		return c.Errorf("Conv does not support %v", x.DType)
	}
	if err := sameDType(c, x, w, b); err != nil {
		return err
	}
	n, ch, m, inSp, kSp, err := convShapes(c, x, w, b, k.group, k.win.kernel)
	if err != nil {
		return err
	}
	st := &k.st
	win, err := st.window(c, &k.win, inSp, kSp)
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, st.outShape(n, m, win.out))
	if err != nil {
		return err
	}
	if y.Len() == 0 {
		return nil
	}
	st.p = convProblem{n: n, c: ch, m: m, g: k.group, win: win, act: k.act, fk: k.fk}
	p := &st.p
	if w == k.wConst {
		p.packed, p.packedT = k.packed, k.packedT
	}
	switch x.DType {
	case tensor.Float32:
		var bias []float32
		if b != nil {
			bias = b.F32()
		}
		convF32(c, st, x.F32(), w.F32(), bias, y.F32())
	case tensor.Float64:
		var bias []float64
		if b != nil {
			bias = b.F64()
		}
		convDirect(c, p, x.F64(), w.F64(), bias, y.F64())
		k.act.ApplyF64(y.F64())
	case tensor.Float16:
		wf := k.wF32
		if wf == nil || len(wf) != w.Len() {
			wf = nnToF32(w)
		}
		yf := make([]float32, y.Len())
		// The activation runs on the rounded float16 values, as the
		// unfused activation op would.
		p.act = fp32.Act{}
		convF32(c, st, nnToF32(x), wf, nnToF32(b), yf)
		f32ToHalf(y.Data.([]uint16), yf)
		fusedActHalf(k.fk, k.act, y.Data.([]uint16), yf)
	}
	return nil
}

// fusedActHalf applies act to float16 values h in place, through float32
// like the unfused activation ops (buf holds at least len(h) values).
func fusedActHalf(fk fp32.Kernels, act fp32.Act, h []uint16, buf []float32) {
	if act.Kind == fp32.ActNone {
		return
	}
	buf = buf[:len(h)]
	for i, v := range h {
		buf[i] = tensor.HalfToFloat32(v)
	}
	fk.ApplyAct(act, buf)
	f32ToHalf(h, buf)
}

// convProblem is a resolved convolution: batch n, input channels c,
// output channels m, groups g and the spatial window; act, fk and packed
// are the float32 path's activation, kernels and packed weights (nil:
// pack per call).
type convProblem struct {
	n, c, m, g int
	win        *nnWin
	act        fp32.Act
	fk         fp32.Kernels
	packed     []*fp32.PackedA
	packedT    []*fp32.PackedB
}

// convF32 computes the float32 convolution st.p into y (fully
// overwritten).
func convF32(c *kernel.Ctx, st *convState, x, w, b, y []float32) {
	p := &st.p
	win := p.win
	if win.nd() > 3 {
		convDirect(c, p, x, w, b, y)
		p.fk.ApplyAct(p.act, y)
		return
	}
	var err error
	st.geom, err = fp32.NewConvGeom(win.in, win.out, win.kernel, win.stride, win.dil, win.padB)
	if err != nil {
		// Unreachable: the window was validated.
		convDirect(c, p, x, w, b, y)
		p.fk.ApplyAct(p.act, y)
		return
	}
	geom := &st.geom
	cg, mg := p.c/p.g, p.m/p.g
	if cg == 1 && p.g > 1 && mg <= 4 {
		convDepthwiseF32(c, st, x, w, b, y)
		return
	}
	outSize, K := geom.OutSize(), geom.KernelSize()
	kk := cg * K
	// Units are (image, group, column tile); columns are split (in whole
	// output rows when they are long enough) only to give every thread
	// work when images and groups are too few.
	tile := outSize
	flops := 2 * float64(p.n) * float64(p.m) * float64(outSize) * float64(kk)
	if c.Threads > 1 && flops >= convMinParallelFlops {
		if want := (c.Threads + p.n*p.g - 1) / (p.n * p.g); want > 1 {
			tile = min(outSize, max(64, (outSize+want-1)/want))
			if outW := geom.Out[2]; outW >= 16 {
				tile = min(outSize, (tile+outW-1)/outW*outW)
			}
		}
	}
	tiles := (outSize + tile - 1) / tile
	units := p.n * p.g * tiles
	workers := convWorkers(c, units, flops)
	fk := p.fk
	sizing := fp32.ConvOp{Geom: geom, M: mg, Channels: cg, NCol: tile, LdY: outSize}
	if p.packed != nil {
		sizing.PW = p.packed[0]
	}
	if p.packedT != nil {
		sizing.PWT = p.packedT[0]
	}
	per := 0
	for t := 0; t < tiles; t++ {
		sizing.Col0 = t * tile
		sizing.NCol = min(tile, outSize-t*tile)
		per = max(per, fk.ConvScratch(&sizing))
	}
	if p.packedT != nil && p.g == 1 && p.n > 1 && outSize < 32 && geom.KernelSize() == 1 && geom.InSize() == outSize &&
		geom.Stride == [3]int{1, 1, 1} && geom.Pad == [3]int{} {
		convPointwiseBatchT(c, st, outSize, x, b, y)
		return
	}
	st.job = convJob{p: p, geom: geom, x: x, w: w, b: b, y: y, tile: tile, tiles: tiles, units: units, workers: workers}
	st.job.scratch = c.Scratch(workers * per)
	st.job.per = per
	if workers <= 1 {
		st.job.run(0)
		return
	}
	c.ParallelTask(workers, &st.job)
}

// ptJob is convPointwiseBatchT's parallel work: worker wi computes images
// [wi*chunk, ...).
type ptJob struct {
	op         fp32.PointwiseTOp
	fk         fp32.Kernels
	x, y       []float32
	scratch    []float32
	per, chunk int
	n, c, m    int
	size       int
}

// Run runs workers [lo, hi) (kernel.Task).
func (j *ptJob) Run(lo, hi int) {
	for wi := lo; wi < hi; wi++ {
		q := j.op
		i0 := wi * j.chunk
		q.Batch = min(j.chunk, j.n-i0)
		q.X, q.Y = j.x[i0*j.c*j.size:], j.y[i0*j.m*j.size:]
		j.fk.PointwiseT(j.scratch[wi*j.per:(wi+1)*j.per], &q)
	}
}

// convPointwiseBatchT runs a 1x1 convolution with small outputs for a
// batch as one transposed GEMM per worker (its images' positions are the
// rows; see fp32.PointwiseTOp), so the packed W^T is read once per worker.
func convPointwiseBatchT(c *kernel.Ctx, st *convState, size int, x, b, y []float32) {
	p := &st.p
	flops := 2 * float64(p.n) * float64(p.m) * float64(size) * float64(p.c)
	workers := convWorkers(c, p.n, flops)
	chunk := (p.n + workers - 1) / workers
	workers = (p.n + chunk - 1) / chunk
	j := &st.pt
	j.op = fp32.PointwiseTOp{Batch: chunk, Channels: p.c, M: p.m, Size: size, PWT: p.packedT[0], Bias: b, Act: p.act}
	j.per = p.fk.PointwiseTScratch(&j.op)
	j.scratch = c.Scratch(workers * j.per)
	if workers <= 1 {
		j.op.X, j.op.Y = x, y
		p.fk.PointwiseT(j.scratch, &j.op)
		return
	}
	j.fk, j.x, j.y, j.chunk, j.n, j.c, j.m, j.size = p.fk, x, y, chunk, p.n, p.c, p.m, size
	c.ParallelTask(workers, j)
}

// convMinParallelFlops is the work (floating-point operations) from which
// a float32 convolution is split across threads. Handing work to another
// thread and waiting for it costs several microseconds, far more when the
// other CPU is busy, so convolutions of a single small image (ResNet-8,
// MobileNetV2 at batch 1: at most a few MFLOP each, a few tens of
// microseconds) run on the calling thread alone: splitting them measured
// slower than one thread on this machine.
const convMinParallelFlops = 1 << 23

// convWorkers returns the number of workers for a float32 convolution of
// units independent parts and the given flops.
func convWorkers(c *kernel.Ctx, units int, flops float64) int {
	if flops < convMinParallelFlops {
		return 1
	}
	return nnWorkers(c, units, flops)
}

// convJob is the float32 GEMM convolution split into units of (image,
// group, column tile), worker wi doing units wi, wi+workers, ...
type convJob struct {
	p              *convProblem
	geom           *fp32.ConvGeom
	x, w, b, y     []float32
	scratch        []float32
	per            int
	tile, tiles    int
	units, workers int
}

// Run runs workers [lo, hi) (kernel.Task).
func (j *convJob) Run(lo, hi int) {
	for wi := lo; wi < hi; wi++ {
		j.run(wi)
	}
}

func (j *convJob) run(wi int) {
	p := j.p
	cg, mg := p.c/p.g, p.m/p.g
	inSize, outSize := j.geom.InSize(), j.geom.OutSize()
	kk := cg * j.geom.KernelSize()
	ws := j.scratch[wi*j.per : (wi+1)*j.per]
	for u := wi; u < j.units; u += j.workers {
		t := u % j.tiles
		ng := u / j.tiles
		gi, ni := ng%p.g, ng/p.g
		col0 := t * j.tile
		op := fp32.ConvOp{Geom: j.geom, M: mg, Channels: cg, Col0: col0, NCol: min(j.tile, outSize-col0),
			X: j.x[(ni*p.c+gi*cg)*inSize : (ni*p.c+(gi+1)*cg)*inSize], Y: j.y[(ni*p.m+gi*mg)*outSize:], LdY: outSize, Act: p.act}
		if p.packedT != nil {
			op.PWT = p.packedT[gi]
		}
		if p.packed != nil {
			op.PW = p.packed[gi]
		} else {
			op.W = j.w[gi*mg*kk : (gi+1)*mg*kk]
		}
		if j.b != nil {
			op.Bias = j.b[gi*mg : (gi+1)*mg]
		}
		p.fk.Conv(ws, &op)
	}
}

// dwJob is the 2-D depthwise convolution split into units of (image,
// block of input channels), worker wi doing units wi, wi+workers, ...
type dwJob struct {
	p              *convProblem
	g              *fp32.ConvGeom
	x, w, b, y     []float32
	scratch        []float32
	per, blk, nblk int
	units, workers int
}

// Run runs workers [lo, hi) (kernel.Task).
func (j *dwJob) Run(lo, hi int) {
	for wi := lo; wi < hi; wi++ {
		j.run(wi)
	}
}

func (j *dwJob) run(wi int) {
	p, g := j.p, j.g
	inSize, outSize, K := g.InSize(), g.OutSize(), g.KernelSize()
	mg := p.m / p.g
	ws := j.scratch[wi*j.per : (wi+1)*j.per]
	for u := wi; u < j.units; u += j.workers {
		ni, c0 := u/j.nblk, u%j.nblk*j.blk
		c1 := min(p.g, c0+j.blk)
		op := fp32.DepthwiseOp{Geom: g, Channels: c1 - c0, M: mg, X: j.x[(ni*p.c+c0)*inSize : (ni*p.c+c1)*inSize],
			W: j.w[c0*mg*K : c1*mg*K], Y: j.y[(ni*p.m+c0*mg)*outSize:], LdY: outSize, Act: p.act}
		if j.b != nil {
			op.Bias = j.b[c0*mg : c1*mg]
		}
		p.fk.Depthwise(ws, &op)
	}
}

// convDepthwiseF32 is the direct float32 convolution for groups with one
// input channel each (depthwise, with a channel multiplier mg <= 4): each
// output plane accumulates kernel-tap-weighted rows of its input plane
// (fp32's Depthwise kernel of the tier for one or two spatial axes, a Go
// loop for three).
func convDepthwiseF32(c *kernel.Ctx, st *convState, x, w, b, y []float32) {
	p, g := &st.p, &st.geom
	inSize, outSize, K := g.InSize(), g.OutSize(), g.KernelSize()
	mg := p.m / p.g
	if g.In[0] == 1 && g.Kernel[0] == 1 && g.Out[0] == 1 {
		// At most two spatial axes: the fp32 kernel of the tier, on units of
		// (image, block of input channels).
		blk := p.g
		if c.Threads > 1 {
			blk = max(1, (p.g+c.Threads-1)/c.Threads)
		}
		nblk := (p.g + blk - 1) / blk
		units := p.n * nblk
		workers := convWorkers(c, units, 2*float64(p.n*p.m)*float64(outSize)*float64(K))
		per := p.fk.DepthwiseScratch(g)
		st.dw = dwJob{p: p, g: g, x: x, w: w, b: b, y: y, scratch: c.Scratch(workers * per), per: per, blk: blk, nblk: nblk,
			units: units, workers: workers}
		if workers <= 1 {
			st.dw.run(0)
			return
		}
		c.ParallelTask(workers, &st.dw)
		return
	}
	units := p.n * p.m
	workers := nnWorkers(c, units, 2*float64(units)*float64(outSize)*float64(K))
	inD, inH, inW := g.In[0], g.In[1], g.In[2]
	outD, outH, outW := g.Out[0], g.Out[1], g.Out[2]
	sd, sh, sw := g.Stride[0], g.Stride[1], g.Stride[2]
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < units; u += workers {
			ni, mi := u/p.m, u%p.m
			ci := mi / mg
			xp := x[(ni*p.c+ci)*inSize : (ni*p.c+ci+1)*inSize]
			yp := y[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
			wm := w[mi*K : (mi+1)*K]
			bv := float32(0)
			if b != nil {
				bv = b[mi]
			}
			for i := range yp {
				yp[i] = bv
			}
			for t, wv := range wm {
				kd := t / (g.Kernel[1] * g.Kernel[2])
				kh := t / g.Kernel[2] % g.Kernel[1]
				kw := t % g.Kernel[2]
				offD := kd*g.Dilation[0] - g.Pad[0]
				offH := kh*g.Dilation[1] - g.Pad[1]
				offW := kw*g.Dilation[2] - g.Pad[2]
				// Valid output columns: 0 <= ow*sw + offW < inW.
				lo, hi := nnValidRange(offW, sw, inW, outW)
				if lo >= hi {
					continue
				}
				for od := 0; od < outD; od++ {
					id := od*sd + offD
					if id < 0 || id >= inD {
						continue
					}
					for oh := 0; oh < outH; oh++ {
						ih := oh*sh + offH
						if ih < 0 || ih >= inH {
							continue
						}
						line := xp[(id*inH+ih)*inW : (id*inH+ih+1)*inW]
						row := yp[(od*outH+oh)*outW : (od*outH+oh+1)*outW]
						row = row[lo:hi]
						if sw == 1 {
							src := line[lo+offW : hi+offW]
							for i, v := range src {
								row[i] += wv * v
							}
						} else {
							base := lo*sw + offW
							for i := range row {
								row[i] += wv * line[base+i*sw]
							}
						}
					}
				}
			}
			p.fk.ApplyAct(p.act, yp)
		}
	})
}

// nnValidRange returns the range [lo, hi) of window positions o < n whose
// coordinate o*stride + off lies in [0, size).
func nnValidRange(off, stride, size, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if size-off > 0 {
		hi = (size - off + stride - 1) / stride
	}
	lo, hi = min(lo, n), min(hi, n)
	return lo, max(lo, hi)
}

// convDirect is the direct N-D convolution for any float type: the
// reference formula of convKernel evaluated per output element.
func convDirect[T Float](c *kernel.Ctx, p *convProblem, x, w, b, y []T) {
	win := p.win
	nd := win.nd()
	inSize, outSize, K := win.inSize(), win.outSize(), win.kSize()
	cg, mg := p.c/p.g, p.m/p.g
	inStr := tensor.Shape(win.in).Strides()
	// Per tap: offset of each axis from the window start, and the linear
	// input offset when all coordinates are valid.
	tapOff := make([]int, K*nd)
	tapLin := make([]int, K)
	kidx := make([]int, nd)
	for t := 0; t < K; t++ {
		for d := 0; d < nd; d++ {
			o := kidx[d] * win.dil[d]
			tapOff[t*nd+d] = o
			tapLin[t] += o * inStr[d]
		}
		nnNext(kidx, win.kernel)
	}
	units := p.n * p.m
	workers := nnWorkers(c, units, 2*float64(units)*float64(outSize)*float64(cg*K))
	nnRunWorkers(c, workers, func(wi int) {
		start := make([]int, nd)
		oidx := make([]int, nd)
		for u := wi; u < units; u += workers {
			ni, mi := u/p.m, u%p.m
			gi := mi / mg
			yp := y[(ni*p.m+mi)*outSize : (ni*p.m+mi+1)*outSize]
			wm := w[mi*cg*K : (mi+1)*cg*K]
			clear(oidx)
			for o := range yp {
				base := 0
				inside := true
				for d := 0; d < nd; d++ {
					start[d] = oidx[d]*win.stride[d] - win.padB[d]
					base += start[d] * inStr[d]
					if start[d] < 0 || start[d]+(win.kernel[d]-1)*win.dil[d] >= win.in[d] {
						inside = false
					}
				}
				var acc T
				if b != nil {
					acc = b[mi]
				}
				for ci := 0; ci < cg; ci++ {
					xp := x[(ni*p.c+gi*cg+ci)*inSize : (ni*p.c+gi*cg+ci+1)*inSize]
					wc := wm[ci*K : (ci+1)*K]
					if inside {
						for t, wv := range wc {
							acc += wv * xp[base+tapLin[t]]
						}
						continue
					}
					for t, wv := range wc {
						ok := true
						for d := 0; d < nd; d++ {
							if q := start[d] + tapOff[t*nd+d]; q < 0 || q >= win.in[d] {
								ok = false
								break
							}
						}
						if ok {
							acc += wv * xp[base+tapLin[t]]
						}
					}
				}
				yp[o] = acc
				nnNext(oidx, win.out)
			}
		}
	})
}

// nnNext advances a row-major multi-index over shape dims (wrapping to all
// zeros after the last element).
func nnNext(idx, dims []int) {
	for d := len(idx) - 1; d >= 0; d-- {
		idx[d]++
		if idx[d] < dims[d] {
			return
		}
		idx[d] = 0
	}
}
