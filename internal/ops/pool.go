package ops

import (
	"encoding/binary"
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	q8 "github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// poolKernel implements MaxPool (opsets 1, 8, 10, 11, 12) and AveragePool
// (opsets 1, 7, 10, 11, 19) over N-D inputs (N, C, D1, ..., Dn):
//
//	Y[n, c, o] = max / mean of X[n, c, o*stride - padB + t*dil] over taps t
//
// counting only taps inside the input (padding never wins a max, a NaN
// tap makes the max NaN); with
// count_include_pad the mean divides by the taps inside the padded input.
// MaxPool's optional Indices output holds the flat index of the max in X
// (row-major, or column-major over the spatial axes with storage_order 1).
// A window entirely in the padding yields the dtype's lowest finite value
// and index plane_offset-1, as ONNX Runtime does.
type poolKernel struct {
	win          nnWinAttrs
	isMax        bool
	includePad   bool
	storageOrder int64
	vk           vec.Kernels
	cache        poolCache
	task         poolTask32
	task8        pool8Task
	// only8 marks goslim.MaxPool (8-bit data only); last and outLast that
	// its input and its output are channels-last (x_channels_last,
	// y_channels_last); channels-last inputs are pooled by q8.MaxPoolNHWC
	// of tier.
	only8, last, outLast bool
	tier                 kernel.Tier
}

// poolCache is the resolved window of the last input shape, so runs at
// steady shapes neither resolve nor allocate.
type poolCache struct {
	in    tensor.Shape
	win   nnWin
	job   poolJob // three spatial axes (padded with leading 1s) when nd <= 3
	shape tensor.Shape
	// inner2 reports that every window of the last axis lies inside the
	// input (no clipping by padding), so its taps need no table.
	inner2 bool
	// pool2 reports a 2x2 window with stride 2, no padding and no partial
	// window (vec MaxPool2 computes whole planes).
	pool2 bool
	// n and ch are the batch and channel counts (the job's planes are
	// n*ch images of the spatial axes in NCHW).
	n, ch int
}

// registerPool8 registers goslim.MaxPool, the 8-bit max pooling the INT8
// lowering's layout pass writes for ai.onnx MaxPool on 8-bit activations.
func registerPool8(t *kernel.Table) {
	t.Add(kernel.Entry{Domain: "goslim", Op: "MaxPool", Name: "int8", Priority: kernel.Generic, Build: buildMaxPool8})
}

// buildMaxPool8 builds goslim.MaxPool: ONNX MaxPool (opset 12: kernel_shape,
// strides, pads, dilations, ceil_mode, auto_pad; storage_order must be 0;
// no Indices output) over uint8 or int8 data, with the int attributes
// x_channels_last and y_channels_last (0 or 1, default 0; rank-4 input
// when either is 1): x_channels_last=1 says the input is stored
// channels-last, [N, H, W, C], and is pooled by q8.MaxPoolNHWC (whole runs
// of C channel bytes per tap); y_channels_last=1 says the output is
// [N, OH, OW, C]. Mixed layouts pool into scratch and transpose the
// (smaller) output, so a channels-last activation can be pooled before it
// turns NCHW (for a Flatten). Results equal MaxPool on the NCHW tensor
// with the layouts rewritten, bit for bit. A steady-state run allocates
// nothing (windows of up to 64 taps).
func buildMaxPool8(info *kernel.Info) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.kernel == nil {
		return nil, info.Errorf("MaxPool needs the kernel_shape attribute")
	}
	if so := info.Attrs().Int("storage_order", 0); so != 0 {
		return nil, info.Errorf("storage_order %d: goslim.MaxPool supports 0 only", so)
	}
	if len(info.Node.Outputs) > 1 && info.Node.Outputs[1] != ir.NoValue {
		return nil, info.Errorf("goslim.MaxPool has no Indices output")
	}
	xl, yl, err := qReadLayouts(info)
	if err != nil {
		return nil, err
	}
	return &poolKernel{win: win, isMax: true, vk: vec.Generic(), only8: true, last: xl, outLast: yl, tier: info.Tier}, nil
}

func buildMaxPool(info *kernel.Info) (kernel.Kernel, error) {
	return buildMaxPoolVec(info, vec.Generic())
}

func buildMaxPoolVec(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	win, err := nnReadWin(info, info.Opset >= 10)
	if err != nil {
		return nil, err
	}
	if win.kernel == nil {
		return nil, info.Errorf("MaxPool needs the kernel_shape attribute")
	}
	so := info.Attrs().Int("storage_order", 0)
	if so != 0 && so != 1 {
		return nil, info.Errorf("storage_order %d, want 0 or 1", so)
	}
	return &poolKernel{win: win, isMax: true, storageOrder: so, vk: vk}, nil
}

func buildAveragePool(info *kernel.Info) (kernel.Kernel, error) {
	return buildAveragePoolVec(info, vec.Generic())
}

func buildAveragePoolVec(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	win, err := nnReadWin(info, info.Opset >= 19)
	if err != nil {
		return nil, err
	}
	if win.kernel == nil {
		return nil, info.Errorf("AveragePool needs the kernel_shape attribute")
	}
	return &poolKernel{win: win, includePad: info.Attrs().Int("count_include_pad", 0) != 0, vk: vk}, nil
}

// registerPoolNormTiers registers the AVX2 and AVX-512 entries of the
// pooling and normalization ops (their generic entries are in registerNN):
// the same kernels on the vec loops of the tier.
func registerPoolNormTiers(t *kernel.Table) {
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		for _, op := range []struct {
			name     string
			minOpset int64
			b        ewVecBuilder
		}{
			{"MaxPool", 0, buildMaxPoolVec},
			{"AveragePool", 0, buildAveragePoolVec},
			{"GlobalAveragePool", 0, globalPoolBuild(false)},
			{"GlobalMaxPool", 0, globalPoolBuild(true)},
			{"BatchNormalization", 0, buildBatchNormVec},
			{"LayerNormalization", 17, buildLayerNormVec},
		} {
			t.Add(kernel.Entry{Op: op.name, Name: tier.String() + ".vec", Priority: kernel.Arch, Tier: tier, MinOpset: op.minOpset,
				Build: func(info *kernel.Info) (kernel.Kernel, error) {
					if len(info.Inputs) > 0 {
						switch info.Inputs[0].DType {
						case 0, tensor.Float32, tensor.Float16:
						default:
							return nil, kernel.ErrDecline
						}
					}
					return op.b(info, vec.For(tier))
				}})
		}
	}
}

// poolDims holds, per spatial axis and output position, the range of
// valid kernel taps [lo, hi) and the window start coordinate.
type poolDims struct {
	lo, hi, start [][]int
	// cnt[d][o] counts the taps inside the padded input (for
	// count_include_pad).
	cnt [][]int
}

func poolTables(w *nnWin) *poolDims {
	nd := w.nd()
	p := &poolDims{lo: make([][]int, nd), hi: make([][]int, nd), start: make([][]int, nd), cnt: make([][]int, nd)}
	for d := 0; d < nd; d++ {
		n := w.out[d]
		p.lo[d], p.hi[d], p.start[d], p.cnt[d] = make([]int, n), make([]int, n), make([]int, n), make([]int, n)
		for o := 0; o < n; o++ {
			s := o*w.stride[d] - w.padB[d]
			p.start[d][o] = s
			lo, hi := nnValidRange(s, w.dil[d], w.in[d], w.kernel[d])
			p.lo[d][o], p.hi[d][o] = lo, hi
			clo, chi := nnValidRange(s+w.padB[d], w.dil[d], w.in[d]+w.padB[d]+w.padE[d], w.kernel[d])
			p.cnt[d][o] = chi - clo
		}
	}
	return p
}

func (k *poolKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	name := "AveragePool"
	if k.isMax {
		name = "MaxPool"
	}
	switch x.DType {
	case tensor.Float32, tensor.Float64, tensor.Float16:
		if k.only8 {
			return c.Errorf("goslim.MaxPool takes uint8 or int8 data, got %v", x.DType)
		}
	case tensor.Int8, tensor.Uint8:
		if !k.isMax {
			return c.Errorf("%s does not support %v", name, x.DType)
		}
	default:
		return c.Errorf("%s does not support %v", name, x.DType)
	}
	if x.Rank() < 3 {
		return c.Errorf("input X rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	if (k.last || k.outLast) && x.Rank() != 4 {
		return c.Errorf("x_channels_last and y_channels_last need a rank-4 input, got X of shape %v", x.Shape)
	}
	nd := x.Rank() - 2
	if len(k.win.kernel) != nd {
		return c.Errorf("kernel_shape %v has %d values, want %d", k.win.kernel, len(k.win.kernel), nd)
	}
	if !k.cache.in.Equal(x.Shape) || k.cache.shape == nil {
		n, ch, spatial := x.Shape[0], x.Shape[1], x.Shape[2:]
		if k.last {
			ch, spatial = x.Shape[3], x.Shape[1:3]
		}
		k.cache = poolCache{}
		win, err := k.win.resolve(c, append([]int(nil), spatial...), k.win.kernel)
		if err != nil {
			return err
		}
		k.cache = poolCache{in: x.Shape.Clone(), win: win, shape: nnSpatialShape(n, ch, win.out), n: n, ch: ch}
		if k.outLast {
			k.cache.shape = tensor.Shape{n, win.out[0], win.out[1], ch}
		}
		k.cache.job = poolJob{win: &k.cache.win, tab: poolTables(&k.cache.win), planes: n * ch,
			colMajor: k.storageOrder == 1, includePad: k.includePad}
		if nd <= 3 {
			k.cache.job = *poolPad3(&k.cache.job)
			w3, t3 := k.cache.job.win, k.cache.job.tab
			k.cache.pool2 = nd == 2 && w3.kernel[1] == 2 && w3.kernel[2] == 2 && w3.stride[1] == 2 && w3.stride[2] == 2 &&
				w3.dil[1] == 1 && w3.dil[2] == 1 && w3.padB[1] == 0 && w3.padB[2] == 0 &&
				w3.out[1] == w3.in[1]/2 && w3.out[2] == w3.in[2]/2
			k.cache.inner2 = true
			for o := range w3.out[2] {
				if t3.lo[2][o] != 0 || t3.hi[2][o] != w3.kernel[2] || t3.start[2][o] != t3.start[2][0]+o*w3.stride[2] {
					k.cache.inner2 = false
				}
			}
		}
	}
	y, err := c.Output(0, x.DType, k.cache.shape)
	if err != nil {
		return err
	}
	var idx []int64
	if k.isMax && nnWants(c, out, 1) {
		it, err := c.Output(1, tensor.Int64, k.cache.shape)
		if err != nil {
			return err
		}
		idx = it.I64()
	}
	if y.Len() == 0 {
		return nil
	}
	job := &k.cache.job
	if x.DType == tensor.Float32 && idx == nil && nd <= 2 {
		k.run2D32(c, job, x.F32(), y.F32())
		return nil
	}
	if k.isMax && idx == nil && qIs8(x.DType) && (nd <= 3 || k.last || k.outLast) {
		return k.runMax8(c, x, y)
	}
	if k.isMax {
		switch x.DType {
		case tensor.Float32:
			poolMax(c, job, x.F32(), y.F32(), idx, -math.MaxFloat32)
		case tensor.Float64:
			poolMax(c, job, x.F64(), y.F64(), idx, -math.MaxFloat64)
		case tensor.Int8:
			poolMax(c, job, x.I8(), y.I8(), idx, math.MinInt8)
		case tensor.Uint8:
			poolMax(c, job, x.U8(), y.U8(), idx, 0)
		case tensor.Float16:
			yf := make([]float32, y.Len())
			poolMax(c, job, nnToF32(x), yf, idx, -65504) // lowest float16
			f32ToHalf(y.Data.([]uint16), yf)
		}
		return nil
	}
	switch x.DType {
	case tensor.Float32:
		poolAvg(c, job, x.F32(), y.F32())
	case tensor.Float64:
		poolAvg(c, job, x.F64(), y.F64())
	case tensor.Float16:
		yf := make([]float32, y.Len())
		poolAvg(c, job, nnToF32(x), yf)
		f32ToHalf(y.Data.([]uint16), yf)
	}
	return nil
}

// run2D32 pools float32 planes of one or two spatial axes (padded to
// three) without Indices: each output row first reduces its window's
// input rows with the vec loops (max or sum across rows, vectorized along
// the row), then reduces each window's columns of that row. Sums add the
// rows first, so averages may differ from the tap-order sum in the last
// bit.
func (k *poolKernel) run2D32(c *kernel.Ctx, j *poolJob, x, y []float32) {
	w := j.win
	workers := nnWorkers(c, j.planes, float64(j.planes)*float64(w.outSize())*float64(w.kSize()))
	k.task = poolTask32{k: k, j: j, x: x, y: y, workers: workers, tmp: c.Scratch(workers * w.in[2])}
	if workers == 1 {
		k.task.Run(0, 1)
	} else {
		c.ParallelTask(workers, &k.task)
	}
	k.task = poolTask32{}
}

// poolTask32 is run2D32's work for workers [lo, hi), each taking every
// workers-th plane.
type poolTask32 struct {
	k       *poolKernel
	j       *poolJob
	x, y    []float32
	tmp     []float32
	workers int
}

// Run pools the planes of workers [lo, hi).
func (t *poolTask32) Run(lo, hi int) {
	j, vk, isMax := t.j, t.k.vk, t.k.isMax
	w, tab := j.win, j.tab
	inSize, outSize := w.inSize(), w.outSize()
	in2, out1, out2 := w.in[2], w.out[1], w.out[2]
	d1, d2 := w.dil[1], w.dil[2]
	st1, lo1, hi1, cnt1 := tab.start[1], tab.lo[1], tab.hi[1], tab.cnt[1]
	st2, lo2, hi2, cnt2 := tab.start[2], tab.lo[2], tab.hi[2], tab.cnt[2]
	const lowest = -math.MaxFloat32
	nan := float32(math.NaN())
	if isMax && t.k.cache.pool2 {
		if t.workers == 1 && w.in[1]%2 == 0 {
			// Planes of even height are one run of row pairs.
			vk.MaxPool2(t.y, t.x, j.planes*out1, in2)
			return
		}
		for wi := lo; wi < hi; wi++ {
			for p := wi; p < j.planes; p += t.workers {
				vk.MaxPool2(t.y[p*outSize:(p+1)*outSize], t.x[p*inSize:(p+1)*inSize], out1, in2)
			}
		}
		return
	}
	for wi := lo; wi < hi; wi++ {
		tmp := t.tmp[wi*in2 : (wi+1)*in2]
		for p := wi; p < j.planes; p += t.workers {
			xp := t.x[p*inSize : (p+1)*inSize]
			yp := t.y[p*outSize : (p+1)*outSize]
			for oh := 0; oh < out1; oh++ {
				yr := yp[oh*out2 : (oh+1)*out2]
				rows := hi1[oh] - lo1[oh]
				if rows <= 0 {
					// Every tap of these windows lies in the padding: MaxPool
					// gives the lowest value, AveragePool 0 over a nonzero
					// count_include_pad count (as poolAvg does) and NaN (0/0)
					// otherwise.
					for ow := range yr {
						switch {
						case isMax:
							yr[ow] = lowest
						case j.includePad && cnt1[oh]*cnt2[ow] > 0:
							yr[ow] = 0
						default:
							yr[ow] = nan
						}
					}
					continue
				}
				ih := st1[oh] + lo1[oh]*d1
				row := xp[ih*in2 : (ih+1)*in2]
				if rows > 1 {
					next := xp[(ih+d1)*in2 : (ih+d1+1)*in2]
					if isMax {
						vk.Max(tmp, row, next)
					} else {
						vk.Add(tmp, row, next)
					}
					for r := 2; r < rows; r++ {
						ih2 := ih + r*d1
						next = xp[ih2*in2 : (ih2+1)*in2]
						if isMax {
							vk.Max(tmp, tmp, next)
						} else {
							vk.Add(tmp, tmp, next)
						}
					}
					row = tmp
				}
				if t.k.cache.inner2 {
					if isMax {
						poolMaxRow2(yr, row, st2[0], w.stride[2], w.kernel[2], d2)
						continue
					}
					n := rows
					if j.includePad {
						n = cnt1[oh]
					}
					poolAvgRow2(yr, row, st2[0], w.stride[2], w.kernel[2], d2, float32(n*w.kernel[2]))
					continue
				}
				for ow := range yr {
					s, a, b := st2[ow], lo2[ow], hi2[ow]
					if isMax {
						m := float32(lowest)
						for kw := a; kw < b; kw++ {
							m = max(m, row[s+kw*d2])
						}
						yr[ow] = m
						continue
					}
					var sum float32
					for kw := a; kw < b; kw++ {
						sum += row[s+kw*d2]
					}
					n := rows * (b - a)
					if j.includePad {
						n = cnt1[oh] * cnt2[ow]
					}
					if n == 0 {
						yr[ow] = nan
					} else {
						yr[ow] = sum / float32(n)
					}
				}
			}
		}
	}
}

// poolAvgRow2 is poolMaxRow2 for average pooling: the sum of the k taps
// divided by n (the window's tap count).
func poolAvgRow2(y, row []float32, s0, stride, k, dil int, n float32) {
	for o := range y {
		b := s0 + o*stride
		var sum float32
		for kw := 0; kw < k; kw++ {
			sum += row[b+kw*dil]
		}
		y[o] = sum / n
	}
}

// poolMaxRow2 is the column step of run2D32 for max pooling when every
// window of the row lies inside it: y[o] = max of the k taps of row from
// s0 + o*stride, dil apart (from the lowest float32, like the general
// loop).
func poolMaxRow2(y, row []float32, s0, stride, k, dil int) {
	const lowest = -math.MaxFloat32
	switch {
	case k == 2 && stride == 2 && dil == 1:
		row = row[s0 : s0+2*len(y)]
		for o := range y {
			y[o] = max(max(lowest, row[2*o]), row[2*o+1])
		}
	case k == 3 && dil == 1:
		for o := range y {
			b := s0 + o*stride
			y[o] = max(max(max(lowest, row[b]), row[b+1]), row[b+2])
		}
	default:
		for o := range y {
			b := s0 + o*stride
			m := float32(lowest)
			for kw := 0; kw < k; kw++ {
				m = max(m, row[b+kw*dil])
			}
			y[o] = m
		}
	}
}

// poolJob is one resolved pooling problem over planes (N*C) planes.
type poolJob struct {
	win        *nnWin
	tab        *poolDims
	planes     int
	colMajor   bool
	includePad bool
}

// poolIter walks the valid taps of one window: the taps of the outer
// spatial axes one combination at a time (row), the last axis as a range
// the caller loops over.
type poolIter struct {
	j              *poolJob
	oidx, kidx     []int
	strRow, strCol []int
}

func newPoolIter(j *poolJob) *poolIter {
	it := &poolIter{j: j, oidx: make([]int, j.win.nd()), kidx: make([]int, j.win.nd())}
	it.strRow = tensor.Shape(j.win.in).Strides()
	it.strCol = it.strRow
	if j.colMajor {
		it.strCol = make([]int, len(it.strRow))
		acc := 1
		for d := range it.strCol {
			it.strCol[d] = acc
			acc *= j.win.in[d]
		}
	}
	return it
}

// begin positions the iterator on the first tap row of the window at
// it.oidx; it reports false when the window has no valid tap.
func (it *poolIter) begin() bool {
	t := it.j.tab
	for d, o := range it.oidx {
		if t.lo[d][o] >= t.hi[d][o] {
			return false
		}
		it.kidx[d] = t.lo[d][o]
	}
	return true
}

// row returns the plane offset and Indices offset of the current outer
// taps, and for the last axis the start coordinate, dilation, strides and
// valid tap range.
func (it *poolIter) row() (off, lin, start, dil, sRow, sCol, lo, hi int) {
	w, t := it.j.win, it.j.tab
	last := len(it.oidx) - 1
	for d := 0; d < last; d++ {
		q := t.start[d][it.oidx[d]] + it.kidx[d]*w.dil[d]
		off += q * it.strRow[d]
		lin += q * it.strCol[d]
	}
	o := it.oidx[last]
	return off, lin, t.start[last][o], w.dil[last], it.strRow[last], it.strCol[last], t.lo[last][o], t.hi[last][o]
}

// next advances to the next tap row; it reports false after the last.
func (it *poolIter) next() bool {
	t := it.j.tab
	for d := len(it.oidx) - 2; d >= 0; d-- {
		it.kidx[d]++
		if it.kidx[d] < t.hi[d][it.oidx[d]] {
			return true
		}
		it.kidx[d] = t.lo[d][it.oidx[d]]
	}
	return false
}

func poolMaxND[T Number](c *kernel.Ctx, j *poolJob, x, y []T, idx []int64, lowest T) {
	inSize, outSize := j.win.inSize(), j.win.outSize()
	workers := nnWorkers(c, j.planes, float64(j.planes)*float64(outSize)*float64(j.win.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		it := newPoolIter(j)
		for p := wi; p < j.planes; p += workers {
			xp := x[p*inSize : (p+1)*inSize]
			yp := y[p*outSize : (p+1)*outSize]
			clear(it.oidx)
			for o := range yp {
				best, at := lowest, -1
				if it.begin() {
					for {
						off, lin, s, dl, sr, sc, lo, hi := it.row()
						for k := lo; k < hi; k++ {
							q := s + k*dl
							if v := xp[off+q*sr]; v > best || at < 0 || (v != v && best == best) {
								best, at = v, lin+q*sc
							}
						}
						if !it.next() {
							break
						}
					}
				}
				yp[o] = best
				if idx != nil {
					idx[p*outSize+o] = int64(p*inSize + at)
				}
				nnNext(it.oidx, j.win.out)
			}
		}
	})
}

func poolAvgND[T Float](c *kernel.Ctx, j *poolJob, x, y []T) {
	inSize, outSize := j.win.inSize(), j.win.outSize()
	nd := j.win.nd()
	workers := nnWorkers(c, j.planes, float64(j.planes)*float64(outSize)*float64(j.win.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		it := newPoolIter(j)
		for p := wi; p < j.planes; p += workers {
			xp := x[p*inSize : (p+1)*inSize]
			yp := y[p*outSize : (p+1)*outSize]
			clear(it.oidx)
			for o := range yp {
				var sum T
				n := 0
				if it.begin() {
					for {
						off, _, s, dl, sr, _, lo, hi := it.row()
						for k := lo; k < hi; k++ {
							sum += xp[off+(s+k*dl)*sr]
						}
						n += hi - lo
						if !it.next() {
							break
						}
					}
				}
				if j.includePad {
					n = 1
					for d := 0; d < nd; d++ {
						n *= j.tab.cnt[d][it.oidx[d]]
					}
				}
				if n == 0 {
					yp[o] = T(math.NaN())
				} else {
					yp[o] = sum / T(n)
				}
				nnNext(it.oidx, j.win.out)
			}
		}
	})
}

// poolPad3 returns the job with its window extended to three spatial
// axes by leading axes of size 1 (which change neither the row- nor the
// column-major flat indices).
func poolPad3(j *poolJob) *poolJob {
	w := j.win
	pre := 3 - w.nd()
	one := func(v []int, fill int) []int {
		out := make([]int, 0, 3)
		for i := 0; i < pre; i++ {
			out = append(out, fill)
		}
		return append(out, v...)
	}
	w3 := &nnWin{in: one(w.in, 1), out: one(w.out, 1), kernel: one(w.kernel, 1), stride: one(w.stride, 1),
		dil: one(w.dil, 1), padB: one(w.padB, 0), padE: one(w.padE, 0)}
	j3 := *j
	j3.win, j3.tab = w3, poolTables(w3)
	return &j3
}

// poolMax computes max pooling (and Indices when idx is not nil).
func poolMax[T Number](c *kernel.Ctx, j *poolJob, x, y []T, idx []int64, lowest T) {
	if j.win.nd() > 3 {
		poolMaxND(c, j, x, y, idx, lowest)
		return
	}
	if j.win.nd() < 3 {
		j = poolPad3(j)
	}
	w, t := j.win, j.tab
	inSize, outSize := w.inSize(), w.outSize()
	in1, in2 := w.in[1], w.in[2]
	cs0, cs1, cs2 := 1, w.in[0], w.in[0]*in1 // column-major strides
	if !j.colMajor {
		cs0, cs1, cs2 = in1*in2, in2, 1
	}
	out0, out1, out2 := w.out[0], w.out[1], w.out[2]
	d0, d1, d2 := w.dil[0], w.dil[1], w.dil[2]
	st0, st1, st2 := t.start[0], t.start[1], t.start[2]
	lo0, lo1, lo2 := t.lo[0], t.lo[1], t.lo[2]
	hi0, hi1, hi2 := t.hi[0], t.hi[1], t.hi[2]
	workers := nnWorkers(c, j.planes, float64(j.planes)*float64(outSize)*float64(w.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		for p := wi; p < j.planes; p += workers {
			xp := x[p*inSize : (p+1)*inSize]
			yp := y[p*outSize : (p+1)*outSize]
			o := 0
			for od := 0; od < out0; od++ {
				for oh := 0; oh < out1; oh++ {
					for ow := 0; ow < out2; ow++ {
						best, at := lowest, -1
						sw, lw, hw := st2[ow], lo2[ow], hi2[ow]
						for kd := lo0[od]; kd < hi0[od]; kd++ {
							id := st0[od] + kd*d0
							for kh := lo1[oh]; kh < hi1[oh]; kh++ {
								ih := st1[oh] + kh*d1
								line := xp[(id*in1+ih)*in2 : (id*in1+ih+1)*in2]
								if idx == nil {
									// Branch-free max; NaN propagates.
									for kw := lw; kw < hw; kw++ {
										best = max(best, line[sw+kw*d2])
									}
									at = 0
									continue
								}
								for kw := lw; kw < hw; kw++ {
									iw := sw + kw*d2
									if v := line[iw]; v > best || at < 0 || (v != v && best == best) {
										best, at = v, id*cs0+ih*cs1+iw*cs2
									}
								}
							}
						}
						yp[o] = best
						if idx != nil {
							idx[p*outSize+o] = int64(p*inSize + at)
						}
						o++
					}
				}
			}
		}
	})
}

// pool8Task is 8-bit MaxPool without Indices over units split across
// workers: planes (NCHW) or output rows of an image (channels-last).
type pool8Task struct {
	k              *poolKernel
	x              *tensor.Tensor
	yb             []uint8 // the output in the input's layout
	units, workers int
	rows           bool         // NCHW windows of at most two axes: poolMaxRows
	tmp            []uint8      // poolMaxRows: one input row per worker
	ps             q8.PoolShape // channels-last
	errs           []error      // per worker (channels-last)
}

// runMax8 computes 8-bit max pooling of at most three spatial axes (two
// when channels-last) without Indices, allocating nothing.
func (k *poolKernel) runMax8(c *kernel.Ctx, x, y *tensor.Tensor) error {
	t := &k.task8
	w := k.cache.job.win
	t.k, t.x, t.yb = k, x, qBytes(y)
	t.units = k.cache.job.planes
	if k.last {
		t.units = k.cache.n * w.out[1]
	}
	t.workers = nnWorkers(c, t.units, float64(y.Len())*float64(w.kSize()))
	t.rows = !k.last && !k.cache.pool2 && w.in[0] == 1 && w.out[0] == 1
	need := 0
	if k.last != k.outLast {
		need += len(t.yb)
	}
	if t.rows {
		need += t.workers * w.in[2]
	}
	scratch := bytesOfI32(qScratch(c, (need+3)/4))
	if k.last != k.outLast {
		t.yb, scratch = scratch[:len(t.yb)], scratch[len(t.yb):]
	}
	if t.rows {
		t.tmp = scratch[:t.workers*w.in[2]]
	}
	if k.last {
		if cap(t.errs) < t.workers {
			t.errs = make([]error, t.workers)
		}
		t.errs = t.errs[:t.workers]
		clear(t.errs)
		t.ps = q8.PoolShape{N: k.cache.n, C: k.cache.ch, H: w.in[1], W: w.in[2], KH: w.kernel[1], KW: w.kernel[2],
			SH: w.stride[1], SW: w.stride[2], DH: w.dil[1], DW: w.dil[2], PadT: w.padB[1], PadL: w.padB[2],
			PadB: w.padE[1], PadR: w.padE[2], OH: w.out[1], OW: w.out[2]}
	}
	c.ParallelTask(t.workers, t)
	yb := t.yb
	t.x, t.yb, t.tmp = nil, nil, nil
	if k.last {
		for _, err := range t.errs {
			if err != nil {
				return c.Errorf("%v", err)
			}
		}
	}
	if k.last != k.outLast {
		from, to := q8.NCHW, q8.NHWC
		if k.last {
			from, to = q8.NHWC, q8.NCHW
		}
		q8.ToLayout(qBytes(y), yb, k.cache.n, k.cache.ch, w.out[1]*w.out[2], from, to)
	}
	return nil
}

// Run pools the units of workers [lo, hi).
func (t *pool8Task) Run(lo, hi int) {
	for w := lo; w < hi; w++ {
		u0, u1 := w*t.units/t.workers, (w+1)*t.units/t.workers
		if t.k.last {
			t.errs[w] = q8.MaxPoolNHWC(t.k.tier, &t.ps, qBytes(t.x), t.yb, t.x.DType == tensor.Int8, u0, u1)
			continue
		}
		switch {
		case t.k.cache.pool2:
			poolMax2x2(&t.k.cache.job, qBytes(t.x), t.yb, u0, u1, t.x.DType == tensor.Int8)
		case t.rows:
			rl := t.k.cache.job.win.in[2]
			poolMaxRows(&t.k.cache.job, qBytes(t.x), t.yb, u0, u1, t.x.DType == tensor.Int8, t.tmp[w*rl:(w+1)*rl])
		case t.x.DType == tensor.Int8:
			poolMaxPlanes(&t.k.cache.job, t.x.I8(), qInt8s(t.yb), u0, u1, math.MinInt8)
		default:
			poolMaxPlanes(&t.k.cache.job, t.x.U8(), t.yb, u0, u1, 0)
		}
	}
}

// poolMaxRows is 8-bit MaxPool without Indices over planes [p0, p1) of a
// job of at most two spatial axes (padded to three, the first of size
// 1), int8 when signed: for each output row the bytewise maximum of its
// window's input rows (eight bytes per word, into vmax, one input row),
// then each output's maximum over its columns of vmax, all without
// data-dependent branches. int8 values are compared as uint8 with the
// sign bit flipped; a window with no tap inside the input gives the
// type's lowest value.
func poolMaxRows(j *poolJob, x, y []uint8, p0, p1 int, signed bool, vmax []uint8) {
	w, t := j.win, j.tab
	H, W, OH, OW := w.in[1], w.in[2], w.out[1], w.out[2]
	d1, d2 := w.dil[1], w.dil[2]
	var flip uint64
	if signed {
		flip = poolHigh8
	}
	f8 := uint8(flip)
	vmax = vmax[:W]
	for p := p0; p < p1; p++ {
		xp := x[p*H*W : (p+1)*H*W]
		yp := y[p*OH*OW : (p+1)*OH*OW]
		for oh := range OH {
			yr := yp[oh*OW : (oh+1)*OW]
			k0, k1 := t.lo[1][oh], t.hi[1][oh]
			if k0 >= k1 {
				for i := range yr {
					yr[i] = f8 // the lowest value: 0, or -128 flipped
				}
				continue
			}
			ih := t.start[1][oh] + k0*d1
			row := xp[ih*W : (ih+1)*W]
			i := 0
			for ; i+8 <= W; i += 8 {
				binary.LittleEndian.PutUint64(vmax[i:], binary.LittleEndian.Uint64(row[i:])^flip)
			}
			for ; i < W; i++ {
				vmax[i] = row[i] ^ f8
			}
			for kh := k0 + 1; kh < k1; kh++ {
				ih := t.start[1][oh] + kh*d1
				row := xp[ih*W : (ih+1)*W]
				i := 0
				for ; i+8 <= W; i += 8 {
					m := poolMaxBytes(binary.LittleEndian.Uint64(vmax[i:]), binary.LittleEndian.Uint64(row[i:])^flip)
					binary.LittleEndian.PutUint64(vmax[i:], m)
				}
				for ; i < W; i++ {
					vmax[i] = max(vmax[i], row[i]^f8)
				}
			}
			for ow := range yr {
				s, l0, l1 := t.start[2][ow], t.lo[2][ow], t.hi[2][ow]
				best := 0
				for kw := l0; kw < l1; kw++ {
					d := best - int(vmax[s+kw*d2])
					best -= d & (d >> 63)
				}
				yr[ow] = uint8(best) ^ f8
			}
		}
	}
}

// poolMaxPlanes is poolMax without Indices over planes [p0, p1) of a job
// padded to three spatial axes. The maximum is taken without branches
// (data-dependent branches mispredict on about every other tap).
func poolMaxPlanes[T int8 | uint8](j *poolJob, x, y []T, p0, p1 int, lowest T) {
	w, t := j.win, j.tab
	inSize, outSize := w.inSize(), w.outSize()
	in1, in2 := w.in[1], w.in[2]
	d0, d1, d2 := w.dil[0], w.dil[1], w.dil[2]
	for p := p0; p < p1; p++ {
		xp := x[p*inSize : (p+1)*inSize]
		yp := y[p*outSize : (p+1)*outSize]
		o := 0
		for od := range w.out[0] {
			for oh := range w.out[1] {
				for ow := range w.out[2] {
					best := int(lowest)
					sw, lw, hw := t.start[2][ow], t.lo[2][ow], t.hi[2][ow]
					for kd := t.lo[0][od]; kd < t.hi[0][od]; kd++ {
						id := t.start[0][od] + kd*d0
						for kh := t.lo[1][oh]; kh < t.hi[1][oh]; kh++ {
							ih := t.start[1][oh] + kh*d1
							line := xp[(id*in1+ih)*in2 : (id*in1+ih+1)*in2]
							for kw := lw; kw < hw; kw++ {
								d := best - int(line[sw+kw*d2])
								best -= d & (d >> 63)
							}
						}
					}
					yp[o] = T(best)
					o++
				}
			}
		}
	}
}

// poolMax2x2 is MaxPool with a 2x2 window and stride 2 over whole planes
// [p0, p1) (no padding, no partial window, no Indices) for the 8-bit types
// the INT8 lowering keeps between layers (int8 when signed): each output
// row is the pairwise maximum of two input rows, four outputs at a time
// from 8-byte words with bytewise maxima (no data-dependent branches).
func poolMax2x2(j *poolJob, x, y []uint8, p0, p1 int, signed bool) {
	w := j.win
	inH, inW, outH, outW := w.in[1], w.in[2], w.out[1], w.out[2]
	inSize, outSize := inH*inW, outH*outW
	var flip uint64 // int8: compare as uint8 with the sign bit flipped
	if signed {
		flip = poolHigh8
	}
	for p := p0; p < p1; p++ {
		xp := x[p*inSize : (p+1)*inSize]
		yp := y[p*outSize : (p+1)*outSize]
		for oh := range outH {
			r0 := xp[2*oh*inW : 2*oh*inW+2*outW]
			r1 := xp[(2*oh+1)*inW : (2*oh+1)*inW+2*outW]
			yr := yp[oh*outW : (oh+1)*outW]
			ow := 0
			for ; ow+4 <= len(yr); ow += 4 {
				m := poolMaxBytes(binary.LittleEndian.Uint64(r0[2*ow:])^flip, binary.LittleEndian.Uint64(r1[2*ow:])^flip)
				m = poolMaxBytes(m, m>>8) & 0x00ff00ff00ff00ff // even bytes: max of each pair
				m = (m | m>>8) & 0x0000ffff0000ffff
				m |= m >> 16
				binary.LittleEndian.PutUint32(yr[ow:], uint32(m^flip))
			}
			for ; ow < len(yr); ow++ {
				f := uint8(flip)
				yr[ow] = max(r0[2*ow]^f, r0[2*ow+1]^f, r1[2*ow]^f, r1[2*ow+1]^f) ^ f
			}
		}
	}
}

// poolHigh8 is the high bit of every byte of a word.
const poolHigh8 = 0x8080808080808080

// poolMaxBytes returns the bytewise unsigned maximum of a and b.
func poolMaxBytes(a, b uint64) uint64 {
	low := (b | poolHigh8) - (a &^ poolHigh8) // high bit: b's low 7 bits >= a's
	ge := ((b &^ a) | (^(a ^ b) & low)) & poolHigh8
	return a ^ ((a ^ b) & ((ge >> 7) * 0xff))
}

// poolAvg computes average pooling.
func poolAvg[T Float](c *kernel.Ctx, j *poolJob, x, y []T) {
	if j.win.nd() > 3 {
		poolAvgND(c, j, x, y)
		return
	}
	if j.win.nd() < 3 {
		j = poolPad3(j)
	}
	w, t := j.win, j.tab
	inSize, outSize := w.inSize(), w.outSize()
	in1, in2 := w.in[1], w.in[2]
	out0, out1, out2 := w.out[0], w.out[1], w.out[2]
	d0, d1, d2 := w.dil[0], w.dil[1], w.dil[2]
	st0, st1, st2 := t.start[0], t.start[1], t.start[2]
	lo0, lo1, lo2 := t.lo[0], t.lo[1], t.lo[2]
	hi0, hi1, hi2 := t.hi[0], t.hi[1], t.hi[2]
	cnt0, cnt1, cnt2 := t.cnt[0], t.cnt[1], t.cnt[2]
	includePad := j.includePad
	workers := nnWorkers(c, j.planes, float64(j.planes)*float64(outSize)*float64(w.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		for p := wi; p < j.planes; p += workers {
			xp := x[p*inSize : (p+1)*inSize]
			yp := y[p*outSize : (p+1)*outSize]
			o := 0
			for od := 0; od < out0; od++ {
				for oh := 0; oh < out1; oh++ {
					for ow := 0; ow < out2; ow++ {
						var sum T
						sw, lw, hw := st2[ow], lo2[ow], hi2[ow]
						for kd := lo0[od]; kd < hi0[od]; kd++ {
							id := st0[od] + kd*d0
							for kh := lo1[oh]; kh < hi1[oh]; kh++ {
								ih := st1[oh] + kh*d1
								line := xp[(id*in1+ih)*in2 : (id*in1+ih+1)*in2]
								for kw := lw; kw < hw; kw++ {
									sum += line[sw+kw*d2]
								}
							}
						}
						// Valid ranges are never inverted (lo <= hi), so the
						// product counts the taps inside the input.
						n := (hi0[od] - lo0[od]) * (hi1[oh] - lo1[oh]) * (hw - lw)
						if includePad {
							n = cnt0[od] * cnt1[oh] * cnt2[ow]
						}
						if n == 0 {
							yp[o] = T(math.NaN())
						} else {
							yp[o] = sum / T(n)
						}
						o++
					}
				}
			}
		}
	})
}

// globalAveragePool averages each (n, c) plane: Y has shape (N, C, 1, ...).
func globalAveragePool(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	return globalPool(c, in, false, vec.Generic())
}

// globalMaxPool takes the max of each (n, c) plane (NaN propagates).
func globalMaxPool(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	return globalPool(c, in, true, vec.Generic())
}

// globalPoolBuild builds GlobalMaxPool (isMax) or GlobalAveragePool on
// the vec loops vk.
func globalPoolBuild(isMax bool) ewVecBuilder {
	return func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
			return globalPool(c, in, isMax, vk)
		}), nil
	}
}

func globalPool(c *kernel.Ctx, in []*tensor.Tensor, isMax bool, vk vec.Kernels) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	if !nnFloatDType(x.DType) {
		return c.Errorf("global pooling does not support %v", x.DType)
	}
	if x.Rank() < 3 {
		return c.Errorf("input X rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	var buf [8]int
	shape := tensor.Shape(append(buf[:0], x.Shape...))
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	y, err := c.Output(0, x.DType, shape)
	if err != nil {
		return err
	}
	planes := x.Shape[0] * x.Shape[1]
	size := 1
	if planes > 0 {
		size = x.Len() / planes
	}
	switch x.DType {
	case tensor.Float32:
		xs, ys := x.F32(), y.F32()
		if size == 0 {
			globalPoolT(xs, ys, planes, size, isMax)
			break
		}
		if size < 16 {
			// Planes shorter than a vector: a call per plane would cost more
			// than the plane.
			globalPoolSmall32(xs, ys, size, isMax)
			break
		}
		for p := range ys {
			if isMax {
				ys[p] = vk.MaxOf(xs[p*size : (p+1)*size])
			} else {
				ys[p] = vk.Sum(xs[p*size:(p+1)*size]) / float32(size)
			}
		}
	case tensor.Float64:
		globalPoolT(x.F64(), y.F64(), planes, size, isMax)
	case tensor.Float16:
		yf := make([]float32, planes)
		globalPoolT(nnToF32(x), yf, planes, size, isMax)
		f32ToHalf(y.Data.([]uint16), yf)
	}
	return nil
}

// globalPoolSmall32 pools float32 planes of 1 to 15 values in plain Go.
func globalPoolSmall32(x, y []float32, size int, isMax bool) {
	n := float32(size)
	for p := range y {
		xp := x[p*size : (p+1)*size]
		if isMax {
			m := xp[0]
			for _, v := range xp[1:] {
				m = max(m, v)
			}
			y[p] = m
			continue
		}
		var s float32
		for _, v := range xp {
			s += v
		}
		y[p] = s / n
	}
}

func globalPoolT[T Float](x, y []T, planes, size int, isMax bool) {
	for p := 0; p < planes; p++ {
		xp := x[p*size : (p+1)*size]
		if size == 0 {
			y[p] = T(math.NaN())
			if isMax {
				y[p] = T(math.Inf(-1))
			}
			continue
		}
		if isMax {
			m := xp[0]
			for _, v := range xp[1:] {
				m = max(m, v)
			}
			y[p] = m
			continue
		}
		var s float64
		for _, v := range xp {
			s += float64(v)
		}
		y[p] = T(s / float64(size))
	}
}
