package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gradPoolPlanes checks a pooling gradient's dY against the input shape
// x_shape (N, C, spatial...) and returns the plane count and the input and
// output plane sizes.
func gradPoolPlanes(c *kernel.Ctx, dy *tensor.Tensor, xs tensor.Shape) (planes, inSize, outSize int, err error) {
	if len(xs) < 3 {
		return 0, 0, 0, c.Errorf("x_shape %v, want rank >= 3 (N, C, spatial...)", xs)
	}
	if dy.Rank() != len(xs) || dy.Shape[0] != xs[0] || dy.Shape[1] != xs[1] {
		return 0, 0, 0, c.Errorf("dY shape %v does not match x_shape %v", dy.Shape, xs)
	}
	planes = xs[0] * xs[1]
	return planes, xs[2:].Size(), dy.Shape[2:].Size(), nil
}

// gradMaxPoolKernel is goslim.MaxPoolGrad(dY, Indices, x_shape) with the
// forward attribute storage_order: dX is zero except that each dY element
// is added at the flat input index the forward MaxPool recorded in Indices
// (row-major, or column-major over the spatial axes when storage_order is
// 1). Windows entirely in the padding (index outside the plane) add
// nothing. Planes run in parallel, each in output order.
type gradMaxPoolKernel struct{ colMajor bool }

func gradBuildMaxPoolGrad(info *kernel.Info) (kernel.Kernel, error) {
	so := info.Attrs().Int("storage_order", 0)
	if so != 0 && so != 1 {
		return nil, info.Errorf("storage_order %d, want 0 or 1", so)
	}
	return &gradMaxPoolKernel{colMajor: so == 1}, nil
}

func (k *gradMaxPoolKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	ind, err := need(c, in, 1, "Indices")
	if err != nil {
		return err
	}
	if err := gradFloats(c, dy); err != nil {
		return err
	}
	if ind.DType != tensor.Int64 || !ind.Shape.Equal(dy.Shape) {
		return c.Errorf("Indices %v%v, want int64 of dY's shape %v", ind.DType, ind.Shape, dy.Shape)
	}
	xs, err := gradShapeArg(c, opt(in, 2), "x_shape")
	if err != nil {
		return err
	}
	planes, inSize, outSize, err := gradPoolPlanes(c, dy, xs)
	if err != nil {
		return err
	}
	dx, err := c.Output(0, dy.DType, xs.Clone())
	if err != nil {
		return err
	}
	var conv []int // column-major strides of the spatial axes, for storage_order 1
	if k.colMajor {
		sp := xs[2:]
		conv = make([]int, len(sp))
		acc := 1
		for d := range sp {
			conv[d] = acc
			acc *= sp[d]
		}
	}
	switch dy.DType {
	case tensor.Float32:
		gradMaxPoolRun(c, dy.F32(), ind.I64(), dx.F32(), planes, inSize, outSize, xs[2:], conv)
	case tensor.Float64:
		gradMaxPoolRun(c, dy.F64(), ind.I64(), dx.F64(), planes, inSize, outSize, xs[2:], conv)
	}
	return nil
}

func gradMaxPoolRun[T Float](c *kernel.Ctx, dy []T, ind []int64, dx []T, planes, inSize, outSize int, sp tensor.Shape, colStr []int) {
	rowStr := sp.Strides()
	workers := nnWorkers(c, planes, 4*float64(planes)*float64(inSize+outSize))
	nnRunWorkers(c, workers, func(wi int) {
		for p := wi; p < planes; p += workers {
			dxp := dx[p*inSize : (p+1)*inSize]
			clear(dxp)
			base := int64(p) * int64(inSize)
			for o, g := range dy[p*outSize : (p+1)*outSize] {
				at := ind[p*outSize+o] - base
				if at < 0 || at >= int64(inSize) {
					continue
				}
				i := int(at)
				if colStr != nil {
					// Column-major flat index to row-major.
					r := 0
					for d := len(colStr) - 1; d >= 0; d-- {
						q := i / colStr[d]
						i -= q * colStr[d]
						r += q * rowStr[d]
					}
					i = r
				}
				dxp[i] += g
			}
		}
	})
}

// gradAvgPoolKernel is goslim.AveragePoolGrad(dY, x_shape) with the
// forward AveragePool's attributes: each dY element, divided by its
// window's divisor (the valid taps, or with count_include_pad the taps
// inside the padded input), is added to every valid tap of its window.
type gradAvgPoolKernel struct {
	win        nnWinAttrs
	includePad bool
}

func gradBuildAvgPoolGrad(info *kernel.Info) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.kernel == nil {
		return nil, info.Errorf("AveragePoolGrad needs the kernel_shape attribute")
	}
	return &gradAvgPoolKernel{win: win, includePad: info.Attrs().Int("count_include_pad", 0) != 0}, nil
}

func (k *gradAvgPoolKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, xs, err := gradShapedIn(c, in, "dY", "x_shape")
	if err != nil {
		return err
	}
	planes, inSize, _, err := gradPoolPlanes(c, dy, xs)
	if err != nil {
		return err
	}
	if len(k.win.kernel) != len(xs)-2 {
		return c.Errorf("kernel_shape %v has %d values, want %d", k.win.kernel, len(k.win.kernel), len(xs)-2)
	}
	win, err := k.win.resolve(c, []int(xs[2:]), k.win.kernel)
	if err != nil {
		return err
	}
	if want := nnSpatialShape(xs[0], xs[1], win.out); !dy.Shape.Equal(want) {
		return c.Errorf("dY shape %v, want %v", dy.Shape, want)
	}
	dx, err := c.Output(0, dy.DType, xs.Clone())
	if err != nil {
		return err
	}
	tab := poolTables(&win)
	switch dy.DType {
	case tensor.Float32:
		gradAvgPoolRun(c, &win, tab, k.includePad, dy.F32(), dx.F32(), planes, inSize)
	case tensor.Float64:
		gradAvgPoolRun(c, &win, tab, k.includePad, dy.F64(), dx.F64(), planes, inSize)
	}
	return nil
}

func gradAvgPoolRun[T Float](c *kernel.Ctx, win *nnWin, tab *poolDims, includePad bool, dy, dx []T, planes, inSize int) {
	nd := win.nd()
	outSize := win.outSize()
	inStr := tensor.Shape(win.in).Strides()
	last := nd - 1
	workers := nnWorkers(c, planes, 2*float64(planes)*float64(outSize)*float64(win.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		oidx := make([]int, nd)
		kidx := make([]int, nd)
		for p := wi; p < planes; p += workers {
			dxp := dx[p*inSize : (p+1)*inSize]
			clear(dxp)
			clear(oidx)
			for _, g := range dy[p*outSize : (p+1)*outSize] {
				n, empty := 1, false
				for d, o := range oidx {
					lo, hi := tab.lo[d][o], tab.hi[d][o]
					if lo >= hi {
						empty = true
					}
					if includePad {
						n *= tab.cnt[d][o]
					} else {
						n *= hi - lo
					}
					kidx[d] = lo
				}
				if !empty && n > 0 {
					v := g / T(n)
					ol := oidx[last]
					s, dl, lo, hi := tab.start[last][ol], win.dil[last], tab.lo[last][ol], tab.hi[last][ol]
					for {
						off := 0
						for d := 0; d < last; d++ {
							off += (tab.start[d][oidx[d]] + kidx[d]*win.dil[d]) * inStr[d]
						}
						for t := lo; t < hi; t++ {
							dxp[off+s+t*dl] += v
						}
						// Advance the outer taps.
						d := last - 1
						for ; d >= 0; d-- {
							kidx[d]++
							if kidx[d] < tab.hi[d][oidx[d]] {
								break
							}
							kidx[d] = tab.lo[d][oidx[d]]
						}
						if d < 0 {
							break
						}
					}
				}
				nnNext(oidx, win.out)
			}
		}
	})
}

// gradGlobalAvgPool is goslim.GlobalAveragePoolGrad(dY, x_shape): dX[n, c,
// ...] = dY[n, c] / (spatial size).
func gradGlobalAvgPool(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, xs, err := gradShapedIn(c, in, "dY", "x_shape")
	if err != nil {
		return err
	}
	planes, inSize, outSize, err := gradPoolPlanes(c, dy, xs)
	if err != nil {
		return err
	}
	if outSize != 1 {
		return c.Errorf("dY shape %v, want spatial size 1", dy.Shape)
	}
	dx, err := c.Output(0, dy.DType, xs.Clone())
	if err != nil {
		return err
	}
	switch dy.DType {
	case tensor.Float32:
		gradSpread(c, dy.F32(), dx.F32(), planes, inSize)
	case tensor.Float64:
		gradSpread(c, dy.F64(), dx.F64(), planes, inSize)
	}
	return nil
}

// gradSpread writes dx[p, :] = dy[p] / size for each of planes planes.
func gradSpread[T Float](c *kernel.Ctx, dy, dx []T, planes, size int) {
	inv := 1 / float64(max(size, 1))
	ewSplit(c, planes*size, func(lo, hi int) {
		for i := lo; i < hi; {
			p := i / size
			end := min(hi, (p+1)*size)
			v := T(float64(dy[p]) * inv)
			for j := i; j < end; j++ {
				dx[j] = v
			}
			i = end
		}
	})
}

// gradMaxPoolXKernel is goslim.MaxPoolGradX(dY, X, Y) with the forward
// MaxPool's window attributes (kernel_shape, strides, pads, auto_pad,
// ceil_mode, dilations): dX is zero except that each dY element is added
// at the position MaxPool's Indices would name, found from X and the
// forward output Y: the first valid tap of the window (taps in row-major
// order) whose X equals Y, or the first NaN when Y is NaN; when no tap
// matches (MaxPool's fast path starts from the lowest float, so a window
// of -Inf gives that), the first maximum by MaxPool's own comparison.
// Needing no Indices lets the forward MaxPool take its fast path. Planes
// run in parallel.
type gradMaxPoolXKernel struct{ win nnWinAttrs }

func gradBuildMaxPoolGradX(info *kernel.Info) (kernel.Kernel, error) {
	win, err := nnReadWin(info, true)
	if err != nil {
		return nil, err
	}
	if win.kernel == nil {
		return nil, info.Errorf("MaxPoolGradX needs the kernel_shape attribute")
	}
	return &gradMaxPoolXKernel{win: win}, nil
}

func (k *gradMaxPoolXKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, x, y, err := gradTripleIn(c, in, "dY", "X", "Y")
	if err != nil {
		return err
	}
	if x.Rank() < 3 || len(k.win.kernel) != x.Rank()-2 {
		return c.Errorf("X shape %v does not fit kernel_shape %v", x.Shape, k.win.kernel)
	}
	win, err := k.win.resolve(c, append([]int(nil), x.Shape[2:]...), k.win.kernel)
	if err != nil {
		return err
	}
	want := nnSpatialShape(x.Shape[0], x.Shape[1], win.out)
	if !dy.Shape.Equal(want) || !y.Shape.Equal(want) {
		return c.Errorf("dY %v and Y %v, want %v", dy.Shape, y.Shape, want)
	}
	dx, err := c.Output(0, dy.DType, x.Shape.Clone())
	if err != nil {
		return err
	}
	planes := x.Shape[0] * x.Shape[1]
	switch dy.DType {
	case tensor.Float32:
		gradMaxPoolXRun(c, &win, dy.F32(), x.F32(), y.F32(), dx.F32(), planes)
	case tensor.Float64:
		gradMaxPoolXRun(c, &win, dy.F64(), x.F64(), y.F64(), dx.F64(), planes)
	}
	return nil
}

func gradMaxPoolXRun[T Float](c *kernel.Ctx, win *nnWin, dy, x, y, dx []T, planes int) {
	inSize, outSize := win.inSize(), win.outSize()
	nd := win.nd()
	workers := nnWorkers(c, planes, 4*float64(planes)*float64(outSize)*float64(win.kSize()))
	nnRunWorkers(c, workers, func(wi int) {
		if nd == 2 {
			for p := wi; p < planes; p += workers {
				gradMaxPoolX2D(win, dy[p*outSize:(p+1)*outSize], x[p*inSize:(p+1)*inSize], y[p*outSize:(p+1)*outSize], dx[p*inSize:(p+1)*inSize])
			}
			return
		}
		oidx, kidx := make([]int, nd), make([]int, nd)
		inStr := tensor.Shape(win.in).Strides()
		// tap returns the flat input offset of tap kidx of window oidx, or
		// -1 outside the input.
		tap := func() int {
			off := 0
			for d := 0; d < nd; d++ {
				q := oidx[d]*win.stride[d] - win.padB[d] + kidx[d]*win.dil[d]
				if q < 0 || q >= win.in[d] {
					return -1
				}
				off += q * inStr[d]
			}
			return off
		}
		K := win.kSize()
		for p := wi; p < planes; p += workers {
			xp, dxp := x[p*inSize:(p+1)*inSize], dx[p*inSize:(p+1)*inSize]
			yp, dyp := y[p*outSize:(p+1)*outSize], dy[p*outSize:(p+1)*outSize]
			clear(dxp)
			clear(oidx)
			for o := range yp {
				yv, nan := yp[o], yp[o] != yp[o]
				at := -1
				clear(kidx)
				for t := 0; t < K; t++ {
					if off := tap(); off >= 0 {
						if v := xp[off]; v == yv || (nan && v != v) {
							at = off
							break
						}
					}
					nnNext(kidx, win.kernel)
				}
				if at < 0 {
					// MaxPool's comparison: the first valid tap, then any
					// greater value, a NaN replacing a number.
					var best T
					clear(kidx)
					for t := 0; t < K; t++ {
						if off := tap(); off >= 0 {
							if v := xp[off]; at < 0 || v > best || (v != v && best == best) {
								best, at = v, off
							}
						}
						nnNext(kidx, win.kernel)
					}
				}
				if at >= 0 {
					dxp[at] += dyp[o]
				}
				nnNext(oidx, win.out)
			}
		}
	})
}

// gradMaxPoolX2D is gradMaxPoolXRun's loop for one plane of a 2-D window.
func gradMaxPoolX2D[T Float](win *nnWin, dy, x, y, dx []T) {
	clear(dx)
	H, W := win.in[0], win.in[1]
	OH, OW := win.out[0], win.out[1]
	if win.kernel[0] == 2 && win.kernel[1] == 2 && win.stride[0] == 2 && win.stride[1] == 2 && win.dil[0] == 1 && win.dil[1] == 1 &&
		win.padB[0] == 0 && win.padB[1] == 0 && 2*OH <= H && 2*OW <= W {
		// 2x2 stride-2 windows inside the plane: taps 0 1 / 2 3, the first
		// equal to Y picked without branching on the data (the order of
		// the assignments makes the lowest matching tap win).
		for oh := 0; oh < OH; oh++ {
			base := 2 * oh * W
			r0, r1 := x[base:base+2*OW], x[base+W:base+W+2*OW]
			yr, gr := y[oh*OW:(oh+1)*OW], dy[oh*OW:(oh+1)*OW]
			for ow, yv := range yr {
				q := 2 * ow
				off := W + 1
				if r1[q] == yv {
					off = W
				}
				if r0[q+1] == yv {
					off = 1
				}
				if r0[q] == yv {
					off = 0
				}
				if off == W+1 && r1[q+1] != yv { // NaN, or a window of -Inf
					if at := gradMaxPoolXWin(win, x, yv, oh, ow); at >= 0 {
						dx[at] += gr[ow]
					}
					continue
				}
				dx[base+q+off] += gr[ow]
			}
		}
		return
	}
	for oh := 0; oh < OH; oh++ {
		for ow := 0; ow < OW; ow++ {
			if at := gradMaxPoolXWin(win, x, y[oh*OW+ow], oh, ow); at >= 0 {
				dx[at] += dy[oh*OW+ow]
			}
		}
	}
}

// gradMaxPoolXWin returns the input offset in plane x of the maximum of
// 2-D window (oh, ow) whose MaxPool output is yv (see gradMaxPoolXKernel),
// or -1 when the window has no valid tap.
func gradMaxPoolXWin[T Float](win *nnWin, x []T, yv T, oh, ow int) int {
	H, W := win.in[0], win.in[1]
	KH, KW := win.kernel[0], win.kernel[1]
	dh, dw := win.dil[0], win.dil[1]
	r0, q0 := oh*win.stride[0]-win.padB[0], ow*win.stride[1]-win.padB[1]
	nan := yv != yv
	for kh := 0; kh < KH; kh++ {
		r := r0 + kh*dh
		if r < 0 || r >= H {
			continue
		}
		for kw := 0; kw < KW; kw++ {
			q := q0 + kw*dw
			if q < 0 || q >= W {
				continue
			}
			if v := x[r*W+q]; v == yv || (nan && v != v) {
				return r*W + q
			}
		}
	}
	at := -1
	var best T
	for kh := 0; kh < KH; kh++ {
		r := r0 + kh*dh
		if r < 0 || r >= H {
			continue
		}
		for kw := 0; kw < KW; kw++ {
			q := q0 + kw*dw
			if q < 0 || q >= W {
				continue
			}
			if v := x[r*W+q]; at < 0 || v > best || (v != v && best == best) {
				best, at = v, r*W+q
			}
		}
	}
	return at
}
