package ops

import (
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// Pad modes.
const (
	padConstant = iota
	padReflect
	padEdge
	padWrap
)

// padPlan describes a padded copy: for each output axis, maps[d][i] is
// the source index along d that output index i reads, or -1 for the
// constant. Negative pads crop first; reflect, edge and wrap then refer to
// the cropped extent.
type padPlan struct {
	outShape   tensor.Shape
	srcStrides []int
	maps       [][]int
	// ib, ie bound the interior of the last axis: output indices whose
	// source indices are consecutive.
	ib, ie int
	// lo, hi bound the rows of the output (all dims but the last) to write.
	lo, hi int
}

// buildPad: Pad(data, pads[, constant_value[, axes]]) -> padded. Before
// opset 11 pads and value are attributes; axes is an input since 18. pads
// holds [begin_0, ..., begin_k, end_0, ..., end_k]; negative pads crop.
// Modes: constant, reflect (mirror without the edge, numpy's reflect),
// edge (repeat the edge), wrap (periodic, opset 19).
func buildPad(info *kernel.Info) (kernel.Kernel, error) {
	a := info.Attrs()
	mode := padConstant
	switch s := a.Str("mode", "constant"); s {
	case "constant":
	case "reflect":
		mode = padReflect
	case "edge":
		mode = padEdge
	case "wrap":
		mode = padWrap
	default:
		return nil, info.Errorf("Pad mode %q not supported", s)
	}
	attrPads, hasPads := a.Ints("pads")
	attrValue := a.Float("value", 0)
	useAttrs := info.Opset < 11
	if useAttrs && !hasPads {
		return nil, info.Errorf("Pad needs the pads attribute at opset %d", info.Opset)
	}
	return kernel.Func(func(c *kernel.Ctx, in, out []*tensor.Tensor) error {
		x, err := need(c, in, 0, "data")
		if err != nil {
			return err
		}
		r := x.Rank()
		pads := attrPads
		var cval any
		axes := []int(nil)
		if useAttrs {
			if attrValue != 0 {
				v, err := tensor.MakeSlice(x.DType, 1)
				if err != nil {
					return c.Errorf("%v", err)
				}
				if err := storeFloat64(c, &tensor.Tensor{DType: x.DType, Shape: tensor.Shape{1}, Data: v}, []float64{float64(attrValue)}); err != nil {
					return err
				}
				cval = v
			}
		} else {
			tp, err := need(c, in, 1, "pads")
			if err != nil {
				return err
			}
			if tp.DType != tensor.Int64 {
				return c.Errorf("pads must be int64, got %v", tp.DType)
			}
			if pads, err = shapeInts(c, tp, "pads"); err != nil {
				return err
			}
			if t := opt(in, 2); t != nil {
				if t.DType != x.DType {
					return c.Errorf("constant_value has dtype %v, data %v", t.DType, x.DType)
				}
				if t.Len() != 1 {
					return c.Errorf("constant_value must have one element, has shape %v", t.Shape)
				}
				cval = t.Data
			}
			if t := opt(in, 3); t != nil {
				if info.Opset < 18 {
					return c.Errorf("Pad axes input needs opset 18, model has %d", info.Opset)
				}
				ax, err := shapeInts(c, t, "axes")
				if err != nil {
					return err
				}
				if axes, err = shapeAxes(c, ax, r); err != nil {
					return err
				}
			}
		}
		if axes == nil {
			axes = make([]int, r)
			for i := range axes {
				axes[i] = i
			}
		}
		if len(pads) != 2*len(axes) {
			return c.Errorf("pads %v has %d entries, want %d for %d axes", pads, len(pads), 2*len(axes), len(axes))
		}
		begin := make([]int64, r)
		end := make([]int64, r)
		for i, d := range axes {
			begin[d], end[d] = pads[i], pads[i+len(axes)]
		}
		p, err := padMakePlan(c, x.Shape, begin, end, mode)
		if err != nil {
			return err
		}
		m, err := moverFor(c, x)
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
		rows := p.outShape[:max(r-1, 0)].Size()
		if o.Len() < shapeParallelMin || c.Threads <= 1 {
			p.lo, p.hi = 0, rows
			m.pad(o.Data, x.Data, p, cval)
			return nil
		}
		c.Parallel(rows, func(lo, hi int) {
			q := *p
			q.lo, q.hi = lo, hi
			m.pad(o.Data, x.Data, &q, cval)
		})
		return nil
	}), nil
}

// padMakePlan computes the output shape and per-axis source index maps.
func padMakePlan(c *kernel.Ctx, in tensor.Shape, begin, end []int64, mode int) (*padPlan, error) {
	r := len(in)
	p := &padPlan{outShape: make(tensor.Shape, r), srcStrides: in.Strides(), maps: make([][]int, r)}
	for d := range r {
		n := int64(in[d])
		b, e := begin[d], end[d]
		if b > tensor.MaxElements || e > tensor.MaxElements || b < -n || e < -n {
			return nil, c.Errorf("pads %d, %d invalid for axis %d of size %d", b, e, d, n)
		}
		lo, hi := max(-b, 0), n-max(-e, 0)
		if hi < lo {
			return nil, c.Errorf("pads %d, %d crop more than axis %d of size %d", b, e, d, n)
		}
		m := hi - lo
		size := m + max(b, 0) + max(e, 0)
		if size > tensor.MaxElements {
			return nil, c.Errorf("padded axis %d too large", d)
		}
		if m == 0 && size > 0 && mode != padConstant {
			return nil, c.Errorf("cannot pad empty axis %d in %s mode", d, padModeName(mode))
		}
		p.outShape[d] = int(size)
		mp := make([]int, size)
		off := max(b, 0)
		for i := range mp {
			q := int64(i) - off
			if q < 0 || q >= m {
				q = padSource(q, m, mode)
			}
			if q >= 0 {
				q += lo
			}
			mp[i] = int(q)
		}
		p.maps[d] = mp
		p.ib, p.ie = int(off), int(off+m)
	}
	if n := p.outShape.Size(); n < 0 || n > tensor.MaxElements {
		return nil, c.Errorf("padded shape %v too large", p.outShape)
	}
	return p, nil
}

// padSource maps a position q outside [0, m) of an axis of length m > 0 to
// the source position the mode reads, or -1 for the constant.
func padSource(q, m int64, mode int) int64 {
	switch mode {
	case padEdge:
		return min(max(q, 0), m-1)
	case padWrap:
		return ((q % m) + m) % m
	case padReflect:
		if m == 1 {
			return 0
		}
		period := 2 * (m - 1)
		q = ((q % period) + period) % period
		if q >= m {
			q = period - q
		}
		return q
	}
	return -1
}

func padModeName(mode int) string {
	return [...]string{"constant", "reflect", "edge", "wrap"}[mode]
}

// padCopy writes output rows [p.lo, p.hi) of the padded tensor. Reference
// loop: for every output multi-index i, dst[flat(i)] = src[sum(maps[d][i[d]]
// * srcStrides[d])] if no maps[d][i[d]] is -1, else cv.
func padCopy[T any](dst, src []T, p *padPlan, cv T) {
	r := len(p.outShape)
	if r == 0 {
		if p.lo == 0 && p.hi > 0 {
			dst[0] = src[0]
		}
		return
	}
	inMap := p.maps[r-1]
	inner := len(inMap)
	ib, ie := p.ib, p.ie
	var buf [8]int
	idx := buf[:0]
	if r-1 > len(buf) {
		idx = make([]int, r-1)
	} else {
		idx = buf[:r-1]
	}
	rem := p.lo
	for d := r - 2; d >= 0; d-- {
		idx[d] = rem % p.outShape[d]
		rem /= p.outShape[d]
	}
	for row := p.lo; row < p.hi; row++ {
		o := dst[row*inner : (row+1)*inner]
		base := 0
		for d := 0; d < r-1; d++ {
			s := p.maps[d][idx[d]]
			if s < 0 {
				base = -1
				break
			}
			base += s * p.srcStrides[d]
		}
		if base < 0 {
			shapeFill(o, cv)
		} else {
			for j := 0; j < ib; j++ {
				o[j] = padAt(src, base, inMap[j], cv)
			}
			if ie > ib {
				copy(o[ib:ie], src[base+inMap[ib]:base+inMap[ib]+ie-ib])
			}
			for j := ie; j < inner; j++ {
				o[j] = padAt(src, base, inMap[j], cv)
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < p.outShape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

// padAt reads src[base+j], or cv when j is -1.
func padAt[T any](src []T, base, j int, cv T) T {
	if j < 0 {
		return cv
	}
	return src[base+j]
}
