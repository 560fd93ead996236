package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// registerElementwise registers the elementwise family: broadcasting
// arithmetic (elementwise.go, elementwise_pow.go), unary math
// (elementwise_unary.go), activations (activation*.go), comparison and
// selection (compare.go) and Cast (cast.go); also the AVX2/AVX-512
// entries of pooling and normalization (pool.go, norm.go), whose generic
// entries registerNN adds.
func registerElementwise(t *kernel.Table) {
	registerPoolNormTiers(t)
	ewTiered(t, "", "Add", ewArithBuild(ewAdd))
	ewTiered(t, "", "Sub", ewArithBuild(ewSub))
	ewTiered(t, "", "Mul", ewArithBuild(ewMul))
	ewTiered(t, "", "Div", ewArithBuild(ewDiv))
	ewTiered(t, "goslim", "FusedBinary", ewFusedBinaryBuild)
	add(t, "Pow", simple(ewPow))
	registerUnary(t)
	registerActivations(t)
	registerCompare(t)
	registerCast(t)
}

// ewParallelMin is the output size (elements) above which elementwise
// kernels split their work across threads; ewParallelGrain is the smallest
// chunk a thread gets.
const (
	ewParallelMin   = 1 << 16
	ewParallelGrain = 1 << 14
)

// ewVecBuilder builds a kernel that computes float32 with the given vec
// loops (other dtypes in plain Go).
type ewVecBuilder func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error)

// ewTiered registers op with a generic entry (pure-Go vec loops) and AVX2
// and AVX-512 entries (assembly loops) that take nodes whose first input
// is float32 or float16 (computed in float32) or of unknown static dtype;
// the kernel table picks the highest tier the session allows.
func ewTiered(t *kernel.Table, domain, op string, b ewVecBuilder) {
	t.Add(kernel.Entry{Domain: domain, Op: op, Name: "generic", Priority: kernel.Generic,
		Build: func(info *kernel.Info) (kernel.Kernel, error) { return b(info, vec.Generic()) }})
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		t.Add(kernel.Entry{Domain: domain, Op: op, Name: tier.String() + ".vec", Priority: kernel.Arch, Tier: tier,
			Build: func(info *kernel.Info) (kernel.Kernel, error) {
				if len(info.Inputs) > 0 {
					switch info.Inputs[0].DType {
					case 0, tensor.Float32, tensor.Float16:
					default:
						return nil, kernel.ErrDecline
					}
				}
				return b(info, vec.For(tier))
			}})
	}
}

// ewSingle reports whether work on n elements runs on the calling
// goroutine alone (one thread, or too little work to pay for more).
func ewSingle(c *kernel.Ctx, n int) bool { return n <= ewParallelMin || c.Threads <= 1 }

// ewSplit runs fn over [0, n), split across the context's threads when n
// is large enough to pay for goroutines. fn escapes: kernels that must not
// allocate call their loop directly when ewSingle.
func ewSplit(c *kernel.Ctx, n int, fn func(lo, hi int)) {
	if n <= ewParallelMin || c.Threads <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	kernel.Parallel(min(c.Threads, n/ewParallelGrain), n, fn)
}

// ewPlan is a broadcast iteration plan for one to three inputs: the output
// shape with size-1 dims dropped and neighbouring dims merged wherever every
// input is laid out contiguously (or broadcast) across both, and each
// input's element strides over those dims (0 along broadcast dims). The
// innermost stride of every input is 0 or 1.
type ewPlan struct {
	dims  []int
	st    [3][]int
	n     int // number of inputs
	total int // output elements
}

// newEwPlan plans the broadcast of ins (at most three shapes) to out,
// which must be their broadcast shape.
func newEwPlan(out tensor.Shape, ins ...tensor.Shape) ewPlan {
	p := ewPlan{n: len(ins), total: out.Size()}
	var full [3][]int
	for k, s := range ins {
		full[k] = bstrides(s, out)
	}
	for d, size := range out {
		if size == 1 {
			continue
		}
		if m := len(p.dims); m > 0 {
			merge := true
			for k := 0; k < p.n; k++ {
				if p.st[k][m-1] != full[k][d]*size {
					merge = false
					break
				}
			}
			if merge {
				p.dims[m-1] *= size
				for k := 0; k < p.n; k++ {
					p.st[k][m-1] = full[k][d]
				}
				continue
			}
		}
		p.dims = append(p.dims, size)
		for k := 0; k < p.n; k++ {
			p.st[k] = append(p.st[k], full[k][d])
		}
	}
	if len(p.dims) == 0 {
		p.dims = []int{1}
		for k := 0; k < p.n; k++ {
			p.st[k] = []int{0}
		}
	}
	return p
}

// inner returns input k's stride along the innermost planned dim (0 or 1).
func (p *ewPlan) inner(k int) int { return p.st[k][len(p.dims)-1] }

// walk calls fn for each run of the output range [lo, hi) that lies within
// one innermost row: o is the output offset of the run, n its length and
// off the offsets of the inputs at o. Along a run input k advances by
// p.inner(k).
func (p *ewPlan) walk(lo, hi int, fn func(o, n int, off [3]int)) {
	if lo >= hi {
		return
	}
	r := len(p.dims) - 1
	inner := p.dims[r]
	var buf [8]int
	idx := buf[:0]
	if r > len(buf) {
		idx = make([]int, r)
	} else {
		idx = buf[:r]
	}
	row, col := lo/inner, lo%inner
	var off [3]int
	for k := 0; k < p.n; k++ {
		off[k] = col * p.st[k][r]
	}
	for d := r - 1; d >= 0; d-- {
		idx[d] = row % p.dims[d]
		row /= p.dims[d]
		for k := 0; k < p.n; k++ {
			off[k] += idx[d] * p.st[k][d]
		}
	}
	for o := lo; ; {
		n := min(inner-col, hi-o)
		fn(o, n, off)
		o += n
		if o >= hi {
			return
		}
		for k := 0; k < p.n; k++ {
			off[k] -= col * p.st[k][r]
		}
		col = 0
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			for k := 0; k < p.n; k++ {
				off[k] += p.st[k][d]
			}
			if idx[d] < p.dims[d] {
				break
			}
			for k := 0; k < p.n; k++ {
				off[k] -= p.st[k][d] * p.dims[d]
			}
			idx[d] = 0
		}
	}
}

// ewRow2 computes one run of a binary op: o[j] = f(a[j*sa], b[j*sb]) with
// sa, sb in {0, 1}.
type ewRow2[A, B, U any] func(o []U, a []A, b []B, sa, sb int)

// ewRun2 applies row to every run of the broadcast p of a and b into o,
// splitting large outputs across threads.
func ewRun2[A, B, U any](c *kernel.Ctx, p *ewPlan, o []U, a []A, b []B, row ewRow2[A, B, U]) {
	sa, sb := p.inner(0), p.inner(1)
	if ewSingle(c, p.total) {
		p.walk(0, p.total, func(oo, n int, off [3]int) {
			row(o[oo:oo+n], a[off[0]:], b[off[1]:], sa, sb)
		})
		return
	}
	ewSplit(c, p.total, func(lo, hi int) {
		p.walk(lo, hi, func(oo, n int, off [3]int) {
			row(o[oo:oo+n], a[off[0]:], b[off[1]:], sa, sb)
		})
	})
}

// ewFuncRow makes a row kernel from a scalar function. It is the generic
// path for ops that are not hot enough for hand-written loops.
func ewFuncRow[A, B, U any](f func(A, B) U) ewRow2[A, B, U] {
	return func(o []U, a []A, b []B, sa, sb int) {
		switch {
		case sa == 1 && sb == 1:
			a, b := a[:len(o)], b[:len(o)]
			for i := range o {
				o[i] = f(a[i], b[i])
			}
		case sa == 1:
			y, a := b[0], a[:len(o)]
			for i := range o {
				o[i] = f(a[i], y)
			}
		case sb == 1:
			x, b := a[0], b[:len(o)]
			for i := range o {
				o[i] = f(x, b[i])
			}
		default:
			v := f(a[0], b[0])
			for i := range o {
				o[i] = v
			}
		}
	}
}

// ewBinaryPrep checks the two inputs of a broadcasting binary op that
// wants equal dtypes and returns them with the broadcast plan.
func ewBinaryPrep(c *kernel.Ctx, in []*tensor.Tensor) (a, b *tensor.Tensor, p ewPlan, err error) {
	if a, err = need(c, in, 0, "A"); err != nil {
		return
	}
	if b, err = need(c, in, 1, "B"); err != nil {
		return
	}
	if err = sameDType(c, a, b); err != nil {
		return
	}
	p, err = ewBroadcast(c, a.Shape, b.Shape)
	return
}

// ewBroadcast plans the numpy broadcast of the given shapes.
func ewBroadcast(c *kernel.Ctx, shapes ...tensor.Shape) (ewPlan, error) {
	out, err := BroadcastShapes(shapes...)
	if err != nil {
		return ewPlan{}, c.Errorf("%v", err)
	}
	if n := out.Size(); n < 0 || n > tensor.MaxElements {
		return ewPlan{}, c.Errorf("broadcast shape %v is too large", out)
	}
	return newEwPlan(out, shapes...), nil
}

// ewOutShape returns the broadcast shape of shapes already planned by
// ewBroadcast (so known to broadcast).
func ewOutShape(shapes ...tensor.Shape) tensor.Shape {
	s, _ := BroadcastShapes(shapes...)
	return s
}

// ewArithOp names one of the four basic arithmetic ops.
type ewArithOp uint8

const (
	ewAdd ewArithOp = iota
	ewSub
	ewMul
	ewDiv
)

// ewArithBuild builds Add, Sub, Mul or Div (opsets 7+: numpy broadcasting,
// all numeric dtypes; integer division truncates toward zero and a zero
// divisor is an error).
func ewArithBuild(op ewArithOp) ewVecBuilder {
	return func(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
		return newEwBinKernel(op, vk, nil), nil
	}
}

// ewBinKernel is a broadcasting arithmetic kernel, optionally followed by
// a float32 activation applied to each output run while it is in cache
// (goslim.FusedBinary). The broadcast plan of the last input shapes is
// kept, so runs at steady shapes allocate nothing.
type ewBinKernel struct {
	op    ewArithOp
	row32 ewRow2[float32, float32, float32]
	act   func(o []float32) // nil: none
	plan  ewPlanCache
	task  ewTask32
}

func newEwBinKernel(op ewArithOp, vk vec.Kernels, act func(o []float32)) *ewBinKernel {
	return &ewBinKernel{op: op, row32: ewArithRowVec(op, vk), act: act}
}

func (k *ewBinKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	a, err := need(c, in, 0, "A")
	if err != nil {
		return err
	}
	b, err := need(c, in, 1, "B")
	if err != nil {
		return err
	}
	if err := sameDType(c, a, b); err != nil {
		return err
	}
	p, shape, err := k.plan.get(c, a.Shape, b.Shape)
	if err != nil {
		return err
	}
	if k.act != nil && a.DType != tensor.Float32 {
		return c.Errorf("fused activation needs float32, got %v", a.DType)
	}
	o, err := c.Output(0, a.DType, shape)
	if err != nil {
		return err
	}
	if p.total == 0 {
		return nil
	}
	op := k.op
	switch a.DType {
	case tensor.Float32:
		k.task = ewTask32{p: p, o: o.F32(), a: a.F32(), b: b.F32(), row: k.row32, act: k.act}
		if ewSingle(c, p.total) {
			k.task.Run(0, p.total)
		} else {
			c.ParallelTask(p.total, &k.task)
		}
		k.task = ewTask32{}
	case tensor.Float64:
		ewRun2(c, p, o.F64(), a.F64(), b.F64(), ewArithRow[float64](op))
	case tensor.Float16:
		ewHalfBinary(c, p, a, b, o, k.row32)
	case tensor.Int8:
		return ewArithInt[int8](c, op, p, a, b, o)
	case tensor.Uint8:
		return ewArithInt[uint8](c, op, p, a, b, o)
	case tensor.Int16:
		return ewArithInt[int16](c, op, p, a, b, o)
	case tensor.Uint16:
		return ewArithInt[uint16](c, op, p, a, b, o)
	case tensor.Int32:
		return ewArithInt[int32](c, op, p, a, b, o)
	case tensor.Uint32:
		return ewArithInt[uint32](c, op, p, a, b, o)
	case tensor.Int64:
		return ewArithInt[int64](c, op, p, a, b, o)
	case tensor.Uint64:
		return ewArithInt[uint64](c, op, p, a, b, o)
	default:
		return c.Errorf("dtype %v is not supported", a.DType)
	}
	return nil
}

// ewTask32 is one float32 binary op over a broadcast plan, as a
// kernel.Task (kept in the kernel so parallel runs allocate nothing).
type ewTask32 struct {
	p       *ewPlan
	o, a, b []float32
	row     ewRow2[float32, float32, float32]
	act     func(o []float32)
}

// Run computes output elements [lo, hi).
func (t *ewTask32) Run(lo, hi int) {
	sa, sb := t.p.inner(0), t.p.inner(1)
	t.p.walk(lo, hi, func(oo, n int, off [3]int) {
		o := t.o[oo : oo+n]
		t.row(o, t.a[off[0]:], t.b[off[1]:], sa, sb)
		if t.act != nil {
			t.act(o)
		}
	})
}

// ewPlanCache keeps the broadcast plan of the last input shapes of a
// binary kernel.
type ewPlanCache struct {
	a, b, out tensor.Shape
	p         ewPlan
	ok        bool
}

// get returns the plan and output shape for inputs of shapes as and bs.
func (pc *ewPlanCache) get(c *kernel.Ctx, as, bs tensor.Shape) (*ewPlan, tensor.Shape, error) {
	if pc.ok && pc.a.Equal(as) && pc.b.Equal(bs) {
		return &pc.p, pc.out, nil
	}
	p, err := ewBroadcast(c, as, bs)
	if err != nil {
		return nil, nil, err
	}
	pc.p, pc.ok = p, true
	pc.a = append(pc.a[:0], as...)
	pc.b = append(pc.b[:0], bs...)
	pc.out = ewOutShape(as, bs)
	return &pc.p, pc.out, nil
}

// ewArithRowVec returns the float32 row kernel of op on the vec loops vk.
func ewArithRowVec(op ewArithOp, vk vec.Kernels) ewRow2[float32, float32, float32] {
	vv := [...]func(dst, a, b []float32){vk.Add, vk.Sub, vk.Mul, vk.Div}[op]
	vs := [...]func(dst, a []float32, s float32){vk.AddS, vk.SubS, vk.MulS, vk.DivS}[op]
	sv := [...]func(dst, a []float32, s float32){vk.AddS, vk.RSubS, vk.MulS, vk.RDivS}[op]
	return func(o, a, b []float32, sa, sb int) {
		n := len(o)
		switch {
		case sa == 1 && sb == 1:
			vv(o, a[:n], b[:n])
		case sa == 1:
			vs(o, a[:n], b[0])
		case sb == 1:
			// Add and Mul commute exactly; Sub and Div use the reversed
			// scalar forms.
			sv(o, b[:n], a[0])
		default:
			vs(o[:1], a[:1], b[0])
			v := o[0]
			for i := range o {
				o[i] = v
			}
		}
	}
}

// ewArithInt runs an arithmetic op on integer storage, rejecting division
// by zero.
func ewArithInt[T Number](c *kernel.Ctx, op ewArithOp, p *ewPlan, a, b, o *tensor.Tensor) error {
	bs := b.Data.([]T)
	if op == ewDiv {
		for _, v := range bs {
			if v == 0 {
				return c.Errorf("integer division by zero")
			}
		}
	}
	ewRun2(c, p, o.Data.([]T), a.Data.([]T), bs, ewArithRow[T](op))
	return nil
}

// ewHalfBinary computes a float16 binary op through float32: inputs are
// widened into scratch space, f runs on them and the result is rounded
// back.
func ewHalfBinary(c *kernel.Ctx, p *ewPlan, a, b, o *tensor.Tensor, f ewRow2[float32, float32, float32]) {
	ad, bd, od := a.Data.([]uint16), b.Data.([]uint16), o.Data.([]uint16)
	s := c.Scratch(len(ad) + len(bd) + len(od))
	af, bf, of := s[:len(ad)], s[len(ad):len(ad)+len(bd)], s[len(ad)+len(bd):]
	ewHalfToF32(af, ad)
	ewHalfToF32(bf, bd)
	ewRun2(c, p, of, af, bf, f)
	f32ToHalf(od, of)
}

// ewHalfToF32 widens float16 bits into dst.
func ewHalfToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = tensor.HalfToFloat32(v)
	}
}

// ewArithRow returns the row kernel of op for T.
func ewArithRow[T Number](op ewArithOp) ewRow2[T, T, T] {
	switch op {
	case ewAdd:
		return ewAddRow[T]
	case ewSub:
		return ewSubRow[T]
	case ewMul:
		return ewMulRow[T]
	}
	return ewDivRow[T]
}

// ewAddRow is o[j] = a[j*sa] + b[j*sb].
func ewAddRow[T Number](o, a, b []T, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		a, b := a[:len(o)], b[:len(o)]
		for i := range o {
			o[i] = a[i] + b[i]
		}
	case sa == 1:
		y, a := b[0], a[:len(o)]
		for i := range o {
			o[i] = a[i] + y
		}
	case sb == 1:
		x, b := a[0], b[:len(o)]
		for i := range o {
			o[i] = x + b[i]
		}
	default:
		v := a[0] + b[0]
		for i := range o {
			o[i] = v
		}
	}
}

// ewSubRow is o[j] = a[j*sa] - b[j*sb].
func ewSubRow[T Number](o, a, b []T, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		a, b := a[:len(o)], b[:len(o)]
		for i := range o {
			o[i] = a[i] - b[i]
		}
	case sa == 1:
		y, a := b[0], a[:len(o)]
		for i := range o {
			o[i] = a[i] - y
		}
	case sb == 1:
		x, b := a[0], b[:len(o)]
		for i := range o {
			o[i] = x - b[i]
		}
	default:
		v := a[0] - b[0]
		for i := range o {
			o[i] = v
		}
	}
}

// ewMulRow is o[j] = a[j*sa] * b[j*sb].
func ewMulRow[T Number](o, a, b []T, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		a, b := a[:len(o)], b[:len(o)]
		for i := range o {
			o[i] = a[i] * b[i]
		}
	case sa == 1:
		y, a := b[0], a[:len(o)]
		for i := range o {
			o[i] = a[i] * y
		}
	case sb == 1:
		x, b := a[0], b[:len(o)]
		for i := range o {
			o[i] = x * b[i]
		}
	default:
		v := a[0] * b[0]
		for i := range o {
			o[i] = v
		}
	}
}

// ewDivRow is o[j] = a[j*sa] / b[j*sb] (the caller rules out integer
// division by zero; Go's integer division truncates toward zero).
func ewDivRow[T Number](o, a, b []T, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		a, b := a[:len(o)], b[:len(o)]
		for i := range o {
			o[i] = a[i] / b[i]
		}
	case sa == 1:
		y, a := b[0], a[:len(o)]
		for i := range o {
			o[i] = a[i] / y
		}
	case sb == 1:
		x, b := a[0], b[:len(o)]
		for i := range o {
			o[i] = x / b[i]
		}
	default:
		v := a[0] / b[0]
		for i := range o {
			o[i] = v
		}
	}
}

// binaryLoop applies f elementwise with numpy broadcasting: o has shape
// os, the broadcast of as and bs. It is a single-threaded convenience for
// other op families; elementwise kernels use ewPlan directly.
func binaryLoop[T any, U any](a, b []T, o []U, as, bs, os tensor.Shape, f func(x, y T) U) {
	p := newEwPlan(os, as, bs)
	if p.total <= 0 {
		return
	}
	row := ewFuncRow(f)
	sa, sb := p.inner(0), p.inner(1)
	p.walk(0, p.total, func(oo, n int, off [3]int) {
		row(o[oo:oo+n], a[off[0]:], b[off[1]:], sa, sb)
	})
}

// storeFloat64 writes float64 values into t's storage, converting to its
// dtype (integers truncate toward zero as C casts do).
func storeFloat64(c *kernel.Ctx, t *tensor.Tensor, v []float64) error {
	switch d := t.Data.(type) {
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	case []float64:
		copy(d, v)
	case []uint16:
		switch t.DType {
		case tensor.Float16:
			for i, x := range v {
				d[i] = tensor.Float32ToHalf(float32(x))
			}
		case tensor.BFloat16:
			for i, x := range v {
				d[i] = uint16(math.Float32bits(float32(x)) >> 16)
			}
		default:
			for i, x := range v {
				d[i] = uint16(x)
			}
		}
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []int16:
		for i, x := range v {
			d[i] = int16(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	case []uint32:
		for i, x := range v {
			d[i] = uint32(x)
		}
	case []int64:
		for i, x := range v {
			d[i] = int64(x)
		}
	case []uint64:
		for i, x := range v {
			d[i] = uint64(x)
		}
	case []bool:
		for i, x := range v {
			d[i] = x != 0
		}
	default:
		return c.Errorf("cannot store into %v", t.DType)
	}
	return nil
}
