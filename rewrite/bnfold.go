package rewrite

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// FoldBatchNorm returns a copy of g in which each inference-mode
// BatchNormalization that directly follows a Conv, ConvTranspose or Gemm
// is folded into that node. With per-channel
//
//	s = gamma / sqrt(var + eps)
//
// the producer's weights and bias become
//
//	w' = w * s          (scaled along the output-channel axis)
//	b' = (b - mean) * s + beta   (b = 0 when the producer has no bias)
//
// The output-channel axis is axis 0 of a Conv weight [M, C/group, k...];
// for a ConvTranspose weight [C, M/group, k...] it is axis 1 within each
// group (output channel g*(M/group)+j scales W[c, j, ...] for the input
// channels c of group g); for Gemm it is N, the last dim of the result
// (column n of B, or row n when transB=1), and the new C is
// (beta*C - mean) * s + beta_bn as a [N] tensor with the attribute beta set
// to 1 (alpha is unchanged).
//
// Conditions: the BatchNormalization is in inference mode (training_mode 0
// since opset 14, spatial 1 before opset 9) and has only its Y output; its
// scale, B, mean and var are constants of length equal to the producer's
// output channels; the producer's weight is a constant of dtype float32,
// float64 or float16, its bias (Gemm: C) is a constant or absent (a Gemm C
// must not vary along the rows: scalar, [N], [1], [1, N] or [1, 1]); and
// the producer's output is read only by the BatchNormalization and is not
// a graph output.
//
// The producer then writes the BatchNormalization's output ValueID (so
// consumers and taps keep their IDs) and the BatchNormalization node is
// removed; the producer's old output ID is left without a producer (unused;
// RemoveDead drops it). New constants are appended to Graph.Values (old
// tensors are never written; other users of the old weights keep them).
// The new weight is Trainable if the old weight was; the new bias if the
// old bias was, or, without an old bias, if the weight was. Arithmetic is
// done in float64 and rounded once to the weight's dtype.
func FoldBatchNorm(g *ir.Graph) (*ir.Graph, error) {
	out := g.Clone()
	f := &bnFolder{g: out, opset: out.Opset(""), names: map[string]bool{}}
	for _, v := range out.Values {
		f.names[v.Name] = true
	}
	f.isInput = map[ir.ValueID]bool{}
	for _, id := range out.Inputs {
		f.isInput[id] = true
	}
	f.isOutput = map[ir.ValueID]bool{}
	for _, id := range out.Outputs {
		f.isOutput[id] = true
	}
	prod := out.Producers()
	consumers := out.Consumers()
	order, err := out.Topo()
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	removed := make([]bool, len(out.Nodes))
	for _, bi := range order {
		bn := &out.Nodes[bi]
		if bn.Op != "BatchNormalization" || (bn.Domain != "" && bn.Domain != "ai.onnx") {
			continue
		}
		x := bn.Input(0)
		if x < 0 || int(x) >= len(prod) || prod[x] < 0 || removed[prod[x]] {
			continue
		}
		pi := prod[x]
		p := &out.Nodes[pi]
		if len(consumers[x]) != 1 || f.isOutput[x] || len(p.Outputs) != 1 || p.Outputs[0] != x {
			continue
		}
		ok, err := f.fold(p, bn)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		y := bn.Outputs[0]
		p.Outputs[0] = y
		removed[bi] = true
		if int(y) < len(prod) {
			prod[y] = pi // a following BatchNormalization can fold again
		}
	}
	nodes := out.Nodes[:0:0]
	for i, n := range out.Nodes {
		if !removed[i] {
			nodes = append(nodes, n)
		}
	}
	out.Nodes = nodes
	return out, nil
}

type bnFolder struct {
	g                 *ir.Graph
	opset             int64
	names             map[string]bool
	isInput, isOutput map[ir.ValueID]bool
}

// constOf returns a non-overridable constant tensor, or nil.
func (f *bnFolder) constOf(id ir.ValueID) *tensor.Tensor {
	if id == ir.NoValue || id < 0 || int(id) >= len(f.g.Values) || f.isInput[id] {
		return nil
	}
	return f.g.Values[id].Const
}

// addConst appends a constant value named after base.
func (f *bnFolder) addConst(base string, t *tensor.Tensor, trainable bool, doc string) ir.ValueID {
	name := base
	for i := 1; f.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	f.names[name] = true
	return f.g.AddValue(ir.Value{Name: name, Const: t, Trainable: trainable, Doc: doc,
		Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}})
}

// fold rewrites p's weight and bias inputs to absorb bn; it reports false
// (and changes nothing) when the pattern does not apply.
func (f *bnFolder) fold(p, bn *ir.Node) (bool, error) {
	if p.Domain != "" && p.Domain != "ai.onnx" {
		return false, nil
	}
	if p.Op != "Conv" && p.Op != "ConvTranspose" && p.Op != "Gemm" {
		return false, nil
	}
	if f.opset >= 14 && bn.Attrs.Int("training_mode", 0) != 0 {
		return false, nil
	}
	if f.opset < 9 && bn.Attrs.Int("spatial", 1) == 0 {
		return false, nil
	}
	for _, o := range bn.Outputs[1:] {
		if o != ir.NoValue {
			return false, nil
		}
	}
	var prm [4][]float64
	for i := range prm {
		t := f.constOf(bn.Input(i + 1))
		if t == nil || t.Rank() != 1 {
			return false, nil
		}
		v, ok := floats64(t)
		if !ok {
			return false, nil
		}
		prm[i] = v
	}
	c := len(prm[0])
	for _, v := range prm[1:] {
		if len(v) != c {
			return false, nil
		}
	}
	eps := float64(bn.Attrs.Float("epsilon", 1e-5))
	scale := make([]float64, c)
	shift := make([]float64, c)
	for i := range c {
		scale[i] = prm[0][i] / math.Sqrt(prm[3][i]+eps)
		shift[i] = prm[1][i] - prm[2][i]*scale[i]
	}
	wID := p.Input(1)
	wt := f.constOf(wID)
	if wt == nil || !foldableFloat(wt.DType) {
		return false, nil
	}
	w, _ := floats64(wt)
	bID := p.Input(2)
	var bt *tensor.Tensor
	if bID != ir.NoValue {
		if bt = f.constOf(bID); bt == nil || bt.DType != wt.DType {
			return false, nil
		}
	}
	var b []float64 // per output channel, before BN
	switch p.Op {
	case "Conv":
		if wt.Rank() < 3 || wt.Shape[0] != c {
			return false, nil
		}
		inner := wt.Len() / c
		for i := range w {
			w[i] *= scale[i/inner]
		}
		if bt != nil {
			if bt.Len() != c || bt.Rank() != 1 {
				return false, nil
			}
			b, _ = floats64(bt)
		}
	case "ConvTranspose":
		group := int(p.Attrs.Int("group", 1))
		if wt.Rank() < 3 || group < 1 || wt.Shape[0]%group != 0 || wt.Shape[1]*group != c {
			return false, nil
		}
		perGroupOut := wt.Shape[1]
		perGroupIn := wt.Shape[0] / group
		k := wt.Len() / (wt.Shape[0] * wt.Shape[1])
		for i := range w {
			cin := i / (perGroupOut * k)
			j := (i / k) % perGroupOut
			w[i] *= scale[(cin/perGroupIn)*perGroupOut+j]
		}
		if bt != nil {
			if bt.Len() != c || bt.Rank() != 1 {
				return false, nil
			}
			b, _ = floats64(bt)
		}
	case "Gemm":
		if wt.Rank() != 2 {
			return false, nil
		}
		transB := p.Attrs.Int("transB", 0) != 0
		rows, cols := wt.Shape[0], wt.Shape[1]
		if transB {
			if rows != c {
				return false, nil
			}
			for i := range w {
				w[i] *= scale[i/cols]
			}
		} else {
			if cols != c {
				return false, nil
			}
			for i := range w {
				w[i] *= scale[i%cols]
			}
		}
		if bt != nil {
			cv, _ := floats64(bt)
			b = make([]float64, c)
			switch {
			case len(cv) == 1 && bt.Rank() <= 2:
				for i := range b {
					b[i] = cv[0]
				}
			case len(cv) == c && (bt.Rank() == 1 || (bt.Rank() == 2 && bt.Shape[0] == 1)):
				copy(b, cv)
			default:
				return false, nil // C varies along the rows
			}
			beta := float64(p.Attrs.Float("beta", 1))
			for i := range b {
				b[i] *= beta
			}
		}
	}
	if b == nil {
		b = make([]float64, c)
	}
	for i := range b {
		b[i] = b[i]*scale[i] + shift[i]
	}
	wv := &f.g.Values[wID]
	doc := "folded BatchNormalization " + bn.Label()
	newW := f.addConst(wv.Name+"_bnfold", fromFloats64(wt.DType, wt.Shape, w), wv.Trainable, doc)
	biasTrain := f.g.Values[wID].Trainable
	biasName := wv.Name + "_bnfold_bias"
	if bt != nil {
		biasTrain = f.g.Values[bID].Trainable
		biasName = f.g.Values[bID].Name + "_bnfold"
	}
	newB := f.addConst(biasName, fromFloats64(wt.DType, tensor.Shape{c}, b), biasTrain, doc)
	for len(p.Inputs) < 3 {
		p.Inputs = append(p.Inputs, ir.NoValue)
	}
	p.Inputs[1], p.Inputs[2] = newW, newB
	if p.Op == "Gemm" {
		p.Attrs = p.Attrs.Set(ir.FloatAttr("beta", 1))
	}
	return true, nil
}

// foldableFloat reports the weight dtypes FoldBatchNorm rewrites.
func foldableFloat(dt tensor.DType) bool {
	return dt == tensor.Float32 || dt == tensor.Float64 || dt == tensor.Float16
}

// floats64 copies a float32, float64 or float16 tensor to float64.
func floats64(t *tensor.Tensor) ([]float64, bool) {
	out := make([]float64, t.Len())
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []uint16:
		if t.DType != tensor.Float16 {
			return nil, false
		}
		for i, v := range d {
			out[i] = float64(tensor.HalfToFloat32(v))
		}
	default:
		return nil, false
	}
	return out, true
}

// fromFloats64 makes a new tensor of dtype dt (float32, float64 or
// float16) from float64 values.
func fromFloats64(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	t := &tensor.Tensor{DType: dt, Shape: shape.Clone()}
	switch dt {
	case tensor.Float64:
		t.Data = append([]float64(nil), v...)
	case tensor.Float16:
		d := make([]uint16, len(v))
		for i, x := range v {
			d[i] = tensor.Float32ToHalf(float32(x))
		}
		t.Data = d
	default:
		d := make([]float32, len(v))
		for i, x := range v {
			d[i] = float32(x)
		}
		t.Data = d
	}
	return t
}
