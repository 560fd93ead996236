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
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	if err := gradFloats(c, dy); err != nil {
		return err
	}
	xs, err := gradShapeArg(c, opt(in, 1), "x_shape")
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
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	if err := gradFloats(c, dy); err != nil {
		return err
	}
	xs, err := gradShapeArg(c, opt(in, 1), "x_shape")
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
