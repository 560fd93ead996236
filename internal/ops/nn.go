package ops

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// registerNN registers the neural-network ops: convolutions, matrix
// products, pooling and normalization. Ops with a tuned float32 path get a
// Typed entry (named after the path) that declines other static dtypes,
// and a generic entry that handles every dtype the op allows.
func registerNN(t *kernel.Table) {
	registerMatrixOps(t) // Conv, ConvTranspose, Gemm, MatMul, goslim.FusedConv/FusedGemm (gemm.go)
	add(t, "MaxPool", buildMaxPool)
	add(t, "AveragePool", buildAveragePool)
	add(t, "GlobalAveragePool", simple(globalAveragePool))
	add(t, "GlobalMaxPool", simple(globalMaxPool))
	add(t, "BatchNormalization", buildBatchNorm)
	t.Add(kernel.Entry{Op: "LayerNormalization", Name: "generic", Priority: kernel.Generic, MinOpset: 17, Build: buildLayerNorm})
}

// nnAdd registers op twice: a Typed entry named fast used when the first
// input is statically float32, and the generic entry. Both run the same
// kernel, which picks the float32 path from the run-time dtype; the entries
// differ only in the name recorded for the node.
func nnAdd(t *kernel.Table, op, fast string, b kernel.Builder) {
	t.Add(kernel.Entry{Op: op, Name: fast, Priority: kernel.Typed, Build: func(info *kernel.Info) (kernel.Kernel, error) {
		if len(info.Inputs) == 0 || info.Inputs[0].DType != tensor.Float32 {
			return nil, kernel.ErrDecline
		}
		return b(info)
	}})
	add(t, op, b)
}

// nnWants reports whether output i of the node is requested (present and
// not an omitted optional output).
func nnWants(c *kernel.Ctx, out []*tensor.Tensor, i int) bool {
	if i >= len(out) {
		return false
	}
	if c.Node != nil && i < len(c.Node.Outputs) && c.Node.Outputs[i] == ir.NoValue {
		return false
	}
	return true
}

// nnMaxAttr bounds window attributes (kernel sizes, strides, pads,
// dilations) so that shape arithmetic cannot overflow.
const nnMaxAttr = 1 << 30

// nnIntsAttr reads an ints attribute as []int, checking each value lies in
// [lo, nnMaxAttr]. It returns nil when the attribute is absent.
func nnIntsAttr(info *kernel.Info, name string, lo int64) ([]int, error) {
	v, ok := info.Attrs().Ints(name)
	if !ok {
		return nil, nil
	}
	out := make([]int, len(v))
	for i, x := range v {
		if x < lo || x > nnMaxAttr {
			return nil, info.Errorf("attribute %s=%v: value %d out of range [%d, %d]", name, v, x, lo, nnMaxAttr)
		}
		out[i] = int(x)
	}
	return out, nil
}

// nnWinAttrs holds the sliding-window attributes shared by Conv,
// ConvTranspose and the pooling ops, as read from the node.
type nnWinAttrs struct {
	kernel    []int // kernel_shape, nil if absent
	strides   []int // nil means 1 along every axis
	dilations []int // nil means 1 along every axis
	pads      []int // [x1_begin, x2_begin, ..., x1_end, x2_end, ...]; nil means 0
	autoPad   string
	ceil      bool
	// strict makes an input smaller than the kernel extent an error
	// (Conv); pools follow the output-size formula, which allows an empty
	// output when the extent exceeds the padded input by less than a stride.
	strict bool
}

// nnReadWin reads and checks the window attributes of a node. withDil
// says whether the op version has a dilations attribute; when it does not,
// dilations other than 1 are an error rather than silently ignored.
func nnReadWin(info *kernel.Info, withDil bool) (nnWinAttrs, error) {
	var w nnWinAttrs
	var err error
	if w.kernel, err = nnIntsAttr(info, "kernel_shape", 1); err != nil {
		return w, err
	}
	if w.strides, err = nnIntsAttr(info, "strides", 1); err != nil {
		return w, err
	}
	if w.dilations, err = nnIntsAttr(info, "dilations", 1); err != nil {
		return w, err
	}
	if w.dilations != nil && !withDil {
		for _, d := range w.dilations {
			if d != 1 {
				return w, info.Errorf("attribute dilations=%v is not part of %s at opset %d", w.dilations, info.Node.Op, info.Opset)
			}
		}
		w.dilations = nil // all ones: the default, harmless
	}
	if w.pads, err = nnIntsAttr(info, "pads", 0); err != nil {
		return w, err
	}
	w.autoPad = info.Attrs().Str("auto_pad", "NOTSET")
	switch w.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	case "":
		w.autoPad = "NOTSET"
	default:
		return w, info.Errorf("unknown auto_pad %q", w.autoPad)
	}
	w.ceil = info.Attrs().Int("ceil_mode", 0) != 0
	return w, nil
}

// nnWin is a window resolved against a concrete input: per spatial axis
// the input size, output size, kernel size, stride, dilation and the
// begin/end padding.
type nnWin struct {
	in, out, kernel, stride, dil, padB, padE []int
}

// nd returns the number of spatial axes.
func (w *nnWin) nd() int { return len(w.in) }

// inSize returns the product of the input spatial sizes.
func (w *nnWin) inSize() int { return nnProd(w.in) }

// outSize returns the product of the output spatial sizes.
func (w *nnWin) outSize() int { return nnProd(w.out) }

// kSize returns the number of taps of the kernel.
func (w *nnWin) kSize() int { return nnProd(w.kernel) }

func nnProd(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// nnCheckLen checks that an optional per-axis attribute has nd values.
func nnCheckLen(c *kernel.Ctx, name string, v []int, n int) error {
	if v != nil && len(v) != n {
		return c.Errorf("attribute %s has %d values, want %d", name, len(v), n)
	}
	return nil
}

// resolve computes the forward (Conv, pooling) window of the attributes
// for spatial input sizes in and kernel sizes k:
//
//	out = floor((in + padB + padE - ((k-1)*dil + 1)) / stride) + 1
//
// (ceil instead of floor in ceil mode, dropping a last window that would
// start in the end padding), with auto_pad SAME_* choosing pads so that
// out = ceil(in / stride) and VALID meaning no padding.
func (a *nnWinAttrs) resolve(c *kernel.Ctx, in, k []int) (nnWin, error) {
	nd := len(in)
	w := nnWin{in: in, kernel: k, out: make([]int, nd), stride: make([]int, nd), dil: make([]int, nd),
		padB: make([]int, nd), padE: make([]int, nd)}
	if err := nnCheckLen(c, "strides", a.strides, nd); err != nil {
		return w, err
	}
	if err := nnCheckLen(c, "dilations", a.dilations, nd); err != nil {
		return w, err
	}
	if err := nnCheckLen(c, "pads", a.pads, 2*nd); err != nil {
		return w, err
	}
	for i := 0; i < nd; i++ {
		w.stride[i], w.dil[i] = 1, 1
		if a.strides != nil {
			w.stride[i] = a.strides[i]
		}
		if a.dilations != nil {
			w.dil[i] = a.dilations[i]
		}
		if a.pads != nil && a.autoPad == "NOTSET" {
			w.padB[i], w.padE[i] = a.pads[i], a.pads[nd+i]
		}
		ext := (k[i]-1)*w.dil[i] + 1
		s := w.stride[i]
		switch a.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			// A negative total (stride larger than the kernel extent) is
			// clamped to no padding, as ONNX Runtime's Conv and TensorFlow do.
			out := (in[i] + s - 1) / s
			total := max(0, (out-1)*s+ext-in[i])
			if a.autoPad == "SAME_UPPER" {
				w.padB[i] = total / 2
			} else {
				w.padB[i] = total - total/2
			}
			w.padE[i] = total - w.padB[i]
			w.out[i] = out
			continue
		}
		// For pools span may be slightly negative: an empty output by the
		// spec's floor formula (or, in ceil mode, one partial window).
		span := in[i] + w.padB[i] + w.padE[i] - ext
		if a.ceil {
			w.out[i] = nnCeilDiv(span, s) + 1
			if w.out[i] > 0 && (w.out[i]-1)*s >= in[i]+w.padB[i] {
				w.out[i]--
			}
		} else {
			w.out[i] = nnFloorDiv(span, s) + 1
		}
		if w.out[i] < 0 || (a.strict && span < 0) {
			return w, c.Errorf("spatial axis %d: kernel extent %d exceeds padded input size %d", i, ext, in[i]+w.padB[i]+w.padE[i])
		}
	}
	return w, nil
}

// nnFloorDiv returns floor(a/b) for b > 0.
func nnFloorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// nnCeilDiv returns ceil(a/b) for b > 0.
func nnCeilDiv(a, b int) int { return -nnFloorDiv(-a, b) }

// nnSpatialShape returns the output shape [n, ch, out...].
func nnSpatialShape(n, ch int, out []int) tensor.Shape {
	s := make(tensor.Shape, 0, 2+len(out))
	s = append(s, n, ch)
	return append(s, out...)
}

// nnToF32 returns the values of a float16 or float32 tensor as float32
// (float32 storage is returned as is, float16 converted into a new slice).
func nnToF32(t *tensor.Tensor) []float32 {
	if t == nil {
		return nil
	}
	if t.DType == tensor.Float32 {
		return t.F32()
	}
	return halfToF32(t.Data.([]uint16))
}

// nnFloatDType reports whether dt is one of the float dtypes the NN ops
// compute with.
func nnFloatDType(dt tensor.DType) bool {
	return dt == tensor.Float32 || dt == tensor.Float64 || dt == tensor.Float16
}

// nnWorkers returns how many parallel workers a job of units independent
// pieces and roughly flops floating-point operations deserves: one unless
// the work is large enough to pay for goroutines.
func nnWorkers(c *kernel.Ctx, units int, flops float64) int {
	const minPerWorker = 1 << 18
	w := min(c.Threads, units)
	if lim := int(math.Min(flops/minPerWorker, float64(math.MaxInt32))); lim < w {
		w = lim
	}
	return max(w, 1)
}

// nnRunWorkers runs fn(worker) for worker < n on the context's threads.
func nnRunWorkers(c *kernel.Ctx, n int, fn func(worker int)) {
	if n <= 1 {
		fn(0)
		return
	}
	c.Parallel(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(i)
		}
	})
}
