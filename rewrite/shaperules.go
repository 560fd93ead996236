package rewrite

import (
	"math"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// inferNode returns the output types of one node (one per output slot; a
// shorter list leaves the rest unknown).
func (s *shapeState) inferNode(n *ir.Node) ([]ir.Type, error) {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nil, nil
	}
	x := s.in(n, 0)
	switch n.Op {
	case "Identity":
		if v, ok := s.symOf(n.Input(0)); ok {
			s.setSym(n.Outputs[0], v)
		}
		return []ir.Type{x}, nil
	case "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Relu", "LeakyRelu", "Clip",
		"Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Softmax", "LogSoftmax", "PRelu":
		return []ir.Type{x}, nil
	case "Dropout":
		mask := x
		if s.opset >= 10 {
			mask.DType = tensor.Bool
		}
		return []ir.Type{x, mask}, nil
	case "Add", "Sub", "Mul", "Div", "Pow":
		if s.opset < 7 {
			// Legacy broadcasting (broadcast/axis attributes): B is
			// broadcast to A, so Y has A's type.
			return []ir.Type{x}, nil
		}
		return s.binary(n, x.DType)
	case "Equal", "Greater", "Less":
		if s.opset < 7 {
			t := x
			t.DType = tensor.Bool
			return []ir.Type{t}, nil
		}
		return s.binary(n, tensor.Bool)
	case "Where":
		t, err := broadcastTypes(s.in(n, 1).DType, s.in(n, 0), s.in(n, 1), s.in(n, 2))
		if err != nil {
			return nil, s.errf("%v", err)
		}
		if t.DType == 0 {
			t.DType = s.in(n, 2).DType
		}
		return []ir.Type{t}, nil
	case "Cast":
		t := x
		t.DType = tensor.DType(n.Attrs.Int("to", 0))
		if v, ok := s.symOf(n.Input(0)); ok && (isIntDType(t.DType) || t.DType.IsFloat()) {
			s.setSym(n.Outputs[0], v)
		}
		return []ir.Type{t}, nil
	case "Conv":
		return s.conv(n, false)
	case "ConvTranspose":
		return s.conv(n, true)
	case "MaxPool", "AveragePool":
		return s.pool(n)
	case "GlobalAveragePool", "GlobalMaxPool":
		if !x.Ranked {
			return []ir.Type{{DType: x.DType}}, nil
		}
		if len(x.Shape) < 2 {
			return nil, s.errf("input rank %d, want at least 2", len(x.Shape))
		}
		out := append([]ir.Dim{x.Shape[0], x.Shape[1]}, make([]ir.Dim, len(x.Shape)-2)...)
		for i := 2; i < len(out); i++ {
			out[i] = known(1)
		}
		return []ir.Type{ranked(x.DType, out)}, nil
	case "Gemm":
		return s.gemm(n)
	case "MatMul":
		return s.matmul(n)
	case "BatchNormalization":
		return s.batchNorm(n)
	case "LayerNormalization":
		return s.layerNorm(n)
	case "Reshape":
		return s.reshape(n)
	case "Flatten":
		return s.flatten(n)
	case "Transpose":
		return s.transpose(n)
	case "Concat":
		return s.concat(n)
	case "Split":
		return s.split(n)
	case "Slice":
		return s.slice(n)
	case "Squeeze":
		return s.squeeze(n)
	case "Unsqueeze":
		return s.unsqueeze(n)
	case "Gather":
		return s.gather(n)
	case "Shape":
		return s.shapeOp(n)
	case "Size":
		t := ranked(tensor.Int64, nil)
		if x.Ranked {
			d := prodDims(x.Shape)
			s.setSym(n.Outputs[0], []symInt{symFromDim(d)})
		}
		return []ir.Type{t}, nil
	case "Pad":
		return s.pad(n)
	case "Resize":
		return s.resize(n)
	case "ReduceMean", "ReduceSum", "ReduceMax":
		return s.reduce(n)
	case "ArgMax":
		return s.argMax(n)
	case "Constant":
		return s.constant(n)
	case "ConstantOfShape":
		return s.constantOfShape(n)
	case "Expand":
		return s.expand(n)
	case "QuantizeLinear":
		dt := tensor.Uint8
		if s.has(n, 2) && s.in(n, 2).DType != 0 {
			dt = s.in(n, 2).DType
		}
		if od := n.Attrs.Int("output_dtype", 0); s.opset >= 21 && od != 0 {
			dt = tensor.DType(od)
		}
		t := x
		t.DType = dt
		return []ir.Type{t}, nil
	case "DequantizeLinear":
		dt := tensor.Float32
		if s.opset >= 19 && s.in(n, 1).DType != 0 {
			dt = s.in(n, 1).DType
		}
		t := x
		t.DType = dt
		return []ir.Type{t}, nil
	}
	return nil, nil
}

// binary infers a broadcasting two-input op and tracks integer shape
// arithmetic.
func (s *shapeState) binary(n *ir.Node, dt tensor.DType) ([]ir.Type, error) {
	a, b := s.in(n, 0), s.in(n, 1)
	t, err := broadcastTypes(dt, a, b)
	if err != nil {
		return nil, s.errf("%v", err)
	}
	if isIntDType(dt) && dt == a.DType {
		va, okA := s.symOf(n.Input(0))
		vb, okB := s.symOf(n.Input(1))
		if okA && okB {
			if v, ok := symArith(n.Op, va, vb); ok {
				s.setSym(n.Outputs[0], v)
			}
		}
	}
	return []ir.Type{t}, nil
}

// symArith applies integer Add/Sub/Mul/Div elementwise (with broadcasting
// of single elements) to tracked values.
func symArith(op string, a, b []symInt) ([]symInt, bool) {
	n := max(len(a), len(b))
	if (len(a) != n && len(a) != 1) || (len(b) != n && len(b) != 1) {
		return nil, false
	}
	out := make([]symInt, n)
	for i := range out {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		r := symInt{}
		if x.Known && y.Known {
			switch op {
			case "Add":
				r = symInt{Val: x.Val + y.Val, Known: true}
			case "Sub":
				r = symInt{Val: x.Val - y.Val, Known: true}
			case "Mul":
				r = symInt{Val: x.Val * y.Val, Known: true}
			case "Div":
				if y.Val != 0 {
					r = symInt{Val: x.Val / y.Val, Known: true}
				}
			}
		} else {
			switch {
			case op == "Mul" && x.Known && x.Val == 1, op == "Add" && x.Known && x.Val == 0:
				r = y
			case (op == "Mul" || op == "Div") && y.Known && y.Val == 1,
				(op == "Add" || op == "Sub") && y.Known && y.Val == 0:
				r = x
			case op == "Mul" && ((x.Known && x.Val == 0) || (y.Known && y.Val == 0)):
				r = symInt{Known: true}
			}
		}
		out[i] = r
	}
	return out, true
}

// intsAttr returns an ints attribute or n copies of def.
func intsAttr(n *ir.Node, name string, count int, def int64) []int64 {
	if v, ok := n.Attrs.Ints(name); ok {
		return v
	}
	out := make([]int64, count)
	for i := range out {
		out[i] = def
	}
	return out
}

// conv infers Conv (transpose=false) and ConvTranspose.
//
// Conv: X [N, C, D1..Dn], W [M, C/group, k1..kn] -> [N, M, O1..On] with
// Oi = floor((Di + pad_begin + pad_end - dilation*(ki-1) - 1) / stride) + 1,
// or ceil(Di / stride) for SAME_UPPER/SAME_LOWER.
//
// ConvTranspose: W [C, M/group, k...] -> [N, M, O...] with Oi =
// stride*(Di-1) + output_padding + dilation*(ki-1) + 1 - pad_begin - pad_end,
// Di*stride for SAME_*, or the output_shape attribute.
func (s *shapeState) conv(n *ir.Node, transpose bool) ([]ir.Type, error) {
	x, w := s.in(n, 0), s.in(n, 1)
	if x.Ranked && len(x.Shape) < 3 {
		return nil, s.errf("input rank %d, want at least 3 (N, C, spatial dims)", len(x.Shape))
	}
	if w.Ranked && len(w.Shape) < 3 {
		return nil, s.errf("weight rank %d, want at least 3", len(w.Shape))
	}
	if x.Ranked && w.Ranked && len(x.Shape) != len(w.Shape) {
		return nil, s.errf("input rank %d but weight rank %d", len(x.Shape), len(w.Shape))
	}
	rank := -1
	switch {
	case x.Ranked:
		rank = len(x.Shape)
	case w.Ranked:
		rank = len(w.Shape)
	default:
		if ks, ok := n.Attrs.Ints("kernel_shape"); ok {
			rank = len(ks) + 2
		}
	}
	if rank < 0 {
		return []ir.Type{{DType: x.DType}}, nil
	}
	nsp := rank - 2
	xd, wd := x.Shape, w.Shape
	if !x.Ranked {
		xd = unknownDims(rank)
	}
	if !w.Ranked {
		wd = unknownDims(rank)
	}
	group := n.Attrs.Int("group", 1)
	if group < 1 {
		return nil, s.errf("group %d, want >= 1", group)
	}
	if !transpose {
		if xd[1].Known() && wd[1].Known() && xd[1].Size != wd[1].Size*group {
			return nil, s.errf("input has %d channels but weight %v with group %d wants %d", xd[1].Size, w, group, wd[1].Size*group)
		}
		if wd[0].Known() && wd[0].Size%group != 0 {
			return nil, s.errf("%d output channels not divisible by group %d", wd[0].Size, group)
		}
	} else if xd[1].Known() && wd[0].Known() && xd[1].Size != wd[0].Size {
		return nil, s.errf("input has %d channels but weight %v wants %d", xd[1].Size, w, wd[0].Size)
	}
	kernel := make([]int64, nsp)
	if ks, ok := n.Attrs.Ints("kernel_shape"); ok {
		if len(ks) != nsp {
			return nil, s.errf("kernel_shape has %d dims, want %d", len(ks), nsp)
		}
		copy(kernel, ks)
	} else {
		for i := range kernel {
			kernel[i] = wd[2+i].Size
		}
	}
	for i := range kernel {
		if wd[2+i].Known() && kernel[i] >= 0 && wd[2+i].Size != kernel[i] {
			return nil, s.errf("kernel_shape %v does not match weight %v", kernel, w)
		}
	}
	strides := intsAttr(n, "strides", nsp, 1)
	dil := intsAttr(n, "dilations", nsp, 1)
	pads := intsAttr(n, "pads", 2*nsp, 0)
	if len(strides) != nsp || len(dil) != nsp || len(pads) != 2*nsp {
		return nil, s.errf("strides, dilations or pads do not match %d spatial dims", nsp)
	}
	for i := range nsp {
		if strides[i] < 1 || dil[i] < 1 {
			return nil, s.errf("strides %v and dilations %v must be positive", strides, dil)
		}
	}
	autoPad := n.Attrs.Str("auto_pad", "NOTSET")
	out := make([]ir.Dim, rank)
	out[0] = xd[0]
	if !transpose {
		out[1] = wd[0]
		for i := range nsp {
			d, err := s.windowDim(xd[2+i], kernel[i], strides[i], dil[i], pads[i], pads[nsp+i], autoPad, false)
			if err != nil {
				return nil, err
			}
			out[2+i] = d
		}
		return []ir.Type{ranked(x.DType, out)}, nil
	}
	out[1] = unknownDim
	if wd[1].Known() {
		out[1] = known(wd[1].Size * group)
	}
	outPad := intsAttr(n, "output_padding", nsp, 0)
	if len(outPad) != nsp {
		return nil, s.errf("output_padding has %d values, want %d", len(outPad), nsp)
	}
	if outShape, ok := n.Attrs.Ints("output_shape"); ok && len(outShape) >= nsp {
		outShape = outShape[len(outShape)-nsp:]
		for i := range nsp {
			out[2+i] = known(outShape[i])
		}
		return []ir.Type{ranked(x.DType, out)}, nil
	}
	for i := range nsp {
		in := xd[2+i]
		switch {
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			switch {
			case strides[i] == 1:
				out[2+i] = in
			case in.Known():
				out[2+i] = known(in.Size * strides[i])
			default:
				out[2+i] = unknownDim
			}
		case !in.Known() || kernel[i] < 0:
			out[2+i] = unknownDim
		default:
			pb, pe := pads[i], pads[nsp+i]
			if autoPad == "VALID" {
				pb, pe = 0, 0
			}
			v := strides[i]*(in.Size-1) + outPad[i] + dil[i]*(kernel[i]-1) + 1 - pb - pe
			if v < 0 {
				return nil, s.errf("output dim %d is negative", v)
			}
			out[2+i] = known(v)
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// windowDim computes one spatial output dim of a convolution or pooling
// window (k < 0: unknown kernel size).
func (s *shapeState) windowDim(in ir.Dim, k, stride, dil, pb, pe int64, autoPad string, ceil bool) (ir.Dim, error) {
	switch autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		if stride == 1 {
			return in, nil
		}
		if !in.Known() {
			return unknownDim, nil
		}
		return known(ceilDiv(in.Size, stride)), nil
	case "VALID":
		pb, pe = 0, 0
	case "NOTSET", "":
	default:
		return ir.Dim{}, s.errf("unknown auto_pad %q", autoPad)
	}
	if k < 0 {
		return unknownDim, nil
	}
	eff := dil*(k-1) + 1
	if !in.Known() {
		if stride == 1 && pb+pe == eff-1 {
			return in, nil
		}
		return unknownDim, nil
	}
	num := in.Size + pb + pe - eff
	if num < 0 {
		return ir.Dim{}, s.errf("spatial dim %d (padded %d) is smaller than the kernel extent %d", in.Size, in.Size+pb+pe, eff)
	}
	if !ceil {
		return known(num/stride + 1), nil
	}
	o := ceilDiv(num, stride) + 1
	// A window that would start in the end padding is dropped.
	if (o-1)*stride >= in.Size+pb {
		o--
	}
	return known(o), nil
}

// pool infers MaxPool and AveragePool.
func (s *shapeState) pool(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	ks, ok := n.Attrs.Ints("kernel_shape")
	if !ok {
		return nil, s.errf("kernel_shape attribute is required")
	}
	nsp := len(ks)
	if x.Ranked && len(x.Shape) != nsp+2 {
		return nil, s.errf("input rank %d does not match kernel_shape %v (want rank %d)", len(x.Shape), ks, nsp+2)
	}
	idx := ir.Type{DType: tensor.Int64}
	if !x.Ranked {
		return []ir.Type{{DType: x.DType, Ranked: true, Shape: unknownDims(nsp + 2)}, ranked(tensor.Int64, unknownDims(nsp+2))}, nil
	}
	strides := intsAttr(n, "strides", nsp, 1)
	pads := intsAttr(n, "pads", 2*nsp, 0)
	dil := make([]int64, nsp)
	for i := range dil {
		dil[i] = 1
	}
	if (n.Op == "MaxPool" && s.opset >= 10) || (n.Op == "AveragePool" && s.opset >= 19) {
		dil = intsAttr(n, "dilations", nsp, 1)
	}
	if len(strides) != nsp || len(dil) != nsp || len(pads) != 2*nsp {
		return nil, s.errf("strides, dilations or pads do not match kernel_shape %v", ks)
	}
	for i := range nsp {
		if strides[i] < 1 || dil[i] < 1 || ks[i] < 1 {
			return nil, s.errf("kernel_shape %v, strides %v and dilations %v must be positive", ks, strides, dil)
		}
	}
	ceil := s.opset >= 10 && n.Attrs.Int("ceil_mode", 0) != 0
	autoPad := n.Attrs.Str("auto_pad", "NOTSET")
	out := make([]ir.Dim, nsp+2)
	out[0], out[1] = x.Shape[0], x.Shape[1]
	for i := range nsp {
		d, err := s.windowDim(x.Shape[2+i], ks[i], strides[i], dil[i], pads[i], pads[nsp+i], autoPad, ceil)
		if err != nil {
			return nil, err
		}
		out[2+i] = d
	}
	idx = ranked(tensor.Int64, append([]ir.Dim(nil), out...))
	return []ir.Type{ranked(x.DType, out), idx}, nil
}

// gemm infers Gemm: A' [M, K] x B' [K, N] -> [M, N], where A' and B' are
// A and B transposed per transA and transB.
func (s *shapeState) gemm(n *ir.Node) ([]ir.Type, error) {
	a, b := s.in(n, 0), s.in(n, 1)
	if a.Ranked && len(a.Shape) != 2 {
		return nil, s.errf("A has rank %d, want 2", len(a.Shape))
	}
	if b.Ranked && len(b.Shape) != 2 {
		return nil, s.errf("B has rank %d, want 2", len(b.Shape))
	}
	m, ka, kb, nn := unknownDim, unknownDim, unknownDim, unknownDim
	ta, tb := n.Attrs.Int("transA", 0) != 0, n.Attrs.Int("transB", 0) != 0
	if a.Ranked {
		m, ka = a.Shape[0], a.Shape[1]
		if ta {
			m, ka = ka, m
		}
	}
	if b.Ranked {
		kb, nn = b.Shape[0], b.Shape[1]
		if tb {
			kb, nn = nn, kb
		}
	}
	if _, ok := unifyDim(ka, kb); !ok {
		return nil, s.errf("inner dims differ: A %v (transA=%v) and B %v (transB=%v)", a, ta, b, tb)
	}
	out := ranked(a.DType, []ir.Dim{m, nn})
	if s.has(n, 2) {
		if _, err := broadcastTypes(a.DType, out, s.in(n, 2)); err != nil {
			return nil, s.errf("C %v does not broadcast to [M, N] = %v", s.in(n, 2), out)
		}
	}
	return []ir.Type{out}, nil
}

// matmul infers numpy-style MatMul.
func (s *shapeState) matmul(n *ir.Node) ([]ir.Type, error) {
	a, b := s.in(n, 0), s.in(n, 1)
	dt := a.DType
	if !a.Ranked || !b.Ranked {
		return []ir.Type{{DType: dt}}, nil
	}
	if len(a.Shape) == 0 || len(b.Shape) == 0 {
		return nil, s.errf("MatMul of a scalar (%v x %v)", a, b)
	}
	ad, bd := a.Shape, b.Shape
	if len(ad) == 1 {
		ad = []ir.Dim{known(1), ad[0]}
	}
	if len(bd) == 1 {
		bd = []ir.Dim{bd[0], known(1)}
	}
	if _, ok := unifyDim(ad[len(ad)-1], bd[len(bd)-2]); !ok {
		return nil, s.errf("inner dims differ: %v x %v", a, b)
	}
	batch, err := broadcastTypes(dt, ranked(dt, ad[:len(ad)-2]), ranked(dt, bd[:len(bd)-2]))
	if err != nil {
		return nil, s.errf("batch dims: %v", err)
	}
	out := append([]ir.Dim(nil), batch.Shape...)
	if len(a.Shape) > 1 {
		out = append(out, ad[len(ad)-2])
	}
	if len(b.Shape) > 1 {
		out = append(out, bd[len(bd)-1])
	}
	return []ir.Type{ranked(dt, out)}, nil
}

// batchNorm infers BatchNormalization: Y has X's type; the optional
// statistics outputs are [C].
func (s *shapeState) batchNorm(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	c := unknownDim
	if x.Ranked {
		if len(x.Shape) < 2 {
			return nil, s.errf("input rank %d, want at least 2", len(x.Shape))
		}
		c = x.Shape[1]
	}
	spatial := s.opset >= 9 || n.Attrs.Int("spatial", 1) != 0
	for i := 1; i <= 4 && spatial; i++ {
		p := s.in(n, i)
		if !p.Ranked {
			continue
		}
		if len(p.Shape) != 1 {
			return nil, s.errf("parameter %d has shape %v, want [C]", i, p)
		}
		d, ok := unifyDim(c, p.Shape[0])
		if !ok {
			return nil, s.errf("parameter %d has shape %v but the input has %d channels", i, p, c.Size)
		}
		c = d
	}
	statDT := s.in(n, 3).DType
	if statDT == 0 {
		statDT = x.DType
	}
	types := []ir.Type{x}
	for range len(n.Outputs) - 1 {
		types = append(types, ranked(statDT, []ir.Dim{c}))
	}
	return types, nil
}

// layerNorm infers LayerNormalization: Y has X's type; Mean and InvStdDev
// keep the dims before axis and have size 1 from axis on.
func (s *shapeState) layerNorm(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	stash := tensor.DType(n.Attrs.Int("stash_type", 1))
	if !x.Ranked {
		return []ir.Type{x, {DType: stash}, {DType: stash}}, nil
	}
	axis, err := s.normAxis(n.Attrs.Int("axis", -1), len(x.Shape))
	if err != nil {
		return nil, err
	}
	st := append([]ir.Dim(nil), x.Shape...)
	for i := axis; i < len(st); i++ {
		st[i] = known(1)
	}
	return []ir.Type{x, ranked(stash, st), ranked(stash, append([]ir.Dim(nil), st...))}, nil
}

// reshape infers Reshape, resolving 0 (copy, unless allowzero) and -1
// (inferred) entries, with symbolic dims cancelled between both sides.
func (s *shapeState) reshape(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	var spec []symInt
	ok := false
	if s.opset < 5 {
		if v, has := n.Attrs.Ints("shape"); has {
			spec, ok = knownSyms(v), true
		}
	} else {
		spec, ok = s.symOf(n.Input(1))
	}
	if !ok {
		st := s.in(n, 1)
		if st.Ranked && len(st.Shape) == 1 && st.Shape[0].Known() {
			return []ir.Type{ranked(x.DType, unknownDims(int(st.Shape[0].Size)))}, nil
		}
		return []ir.Type{{DType: x.DType}}, nil
	}
	allowZero := s.opset >= 14 && n.Attrs.Int("allowzero", 0) != 0
	out := make([]ir.Dim, len(spec))
	infer := -1
	for i, e := range spec {
		switch {
		case e.Known && e.Val == -1:
			if infer >= 0 {
				return nil, s.errf("shape %v has more than one -1", symString(spec))
			}
			infer = i
			out[i] = unknownDim
		case e.Known && e.Val == 0 && !allowZero:
			switch {
			case x.Ranked && i < len(x.Shape):
				out[i] = x.Shape[i]
			case x.Ranked:
				return nil, s.errf("shape %v copies dim %d of a rank-%d input", symString(spec), i, len(x.Shape))
			default:
				out[i] = unknownDim
			}
		case e.Known && e.Val < -1:
			return nil, s.errf("shape %v has invalid entry %d", symString(spec), e.Val)
		default:
			out[i] = dimFromSym(e)
		}
	}
	if x.Ranked {
		if infer >= 0 {
			rest := make([]ir.Dim, 0, len(out)-1)
			rest = append(rest, out[:infer]...)
			rest = append(rest, out[infer+1:]...)
			d, err := s.quotient(x.Shape, rest)
			if err != nil {
				return nil, err
			}
			out[infer] = d
		} else if in, o := prodDims(x.Shape), prodDims(out); in.Known() && o.Known() && in.Size != o.Size {
			return nil, s.errf("cannot reshape %v (%d elements) to %v", x, in.Size, ranked(x.DType, out))
		}
		// A shape value reshaped to a vector or scalar keeps its elements.
		if v, ok := s.symOf(n.Input(0)); ok && len(out) <= 1 {
			if o := prodDims(out); o.Known() && o.Size == int64(len(v)) {
				s.setSym(n.Outputs[0], v)
			}
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// quotient returns prod(num)/prod(den) for Reshape's -1: symbolic factors
// present on both sides cancel; the result is known, a single parameter, or
// unknown.
func (s *shapeState) quotient(num, den []ir.Dim) (ir.Dim, error) {
	params := map[string]int{}
	np, dp := int64(1), int64(1)
	for _, d := range num {
		switch {
		case d.Known():
			np *= d.Size
		case d.Param != "":
			params[d.Param]++
		default:
			return unknownDim, nil
		}
	}
	for _, d := range den {
		switch {
		case d.Known():
			dp *= d.Size
		case d.Param != "" && params[d.Param] > 0:
			params[d.Param]--
		default:
			return unknownDim, nil
		}
	}
	left := ""
	for p, c := range params {
		if c > 1 || (c == 1 && left != "") {
			return unknownDim, nil
		}
		if c == 1 {
			left = p
		}
	}
	if left != "" {
		if np == dp {
			return ir.Dim{Size: -1, Param: left}, nil
		}
		return unknownDim, nil
	}
	if dp == 0 {
		if np == 0 {
			return unknownDim, nil
		}
		return ir.Dim{}, s.errf("cannot infer -1 with a zero-sized target")
	}
	if np%dp != 0 {
		return ir.Dim{}, s.errf("cannot reshape %d elements into a multiple of %d", np, dp)
	}
	return known(np / dp), nil
}

func knownSyms(v []int64) []symInt {
	out := make([]symInt, len(v))
	for i, e := range v {
		out[i] = symInt{Val: e, Known: true}
	}
	return out
}

func symString(v []symInt) string {
	s := "["
	for i, e := range v {
		if i > 0 {
			s += " "
		}
		switch {
		case e.Known:
			s += itoa(e.Val)
		case e.Param != "":
			s += e.Param
		default:
			s += "?"
		}
	}
	return s + "]"
}

func itoa(v int64) string { return ir.Dim{Size: v}.String() }

// flatten infers Flatten: [prod(d[:axis]), prod(d[axis:])].
func (s *shapeState) flatten(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{ranked(x.DType, unknownDims(2))}, nil
	}
	axis := n.Attrs.Int("axis", 1)
	r := int64(len(x.Shape))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis > r {
		return nil, s.errf("axis %d out of range for rank %d", n.Attrs.Int("axis", 1), r)
	}
	return []ir.Type{ranked(x.DType, []ir.Dim{prodDims(x.Shape[:axis]), prodDims(x.Shape[axis:])})}, nil
}

// transpose infers Transpose (default perm reverses the dims).
func (s *shapeState) transpose(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	perm, hasPerm := n.Attrs.Ints("perm")
	if !x.Ranked {
		if hasPerm {
			return []ir.Type{ranked(x.DType, unknownDims(len(perm)))}, nil
		}
		return []ir.Type{x}, nil
	}
	r := len(x.Shape)
	if !hasPerm {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	if len(perm) != r {
		return nil, s.errf("perm %v has %d entries for a rank-%d input", perm, len(perm), r)
	}
	ax, err := s.normAxes(perm, r)
	if err != nil {
		return nil, err
	}
	out := make([]ir.Dim, r)
	for i, a := range ax {
		out[i] = x.Shape[a]
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// concat infers Concat: dims other than axis must agree; axis dims add up.
func (s *shapeState) concat(n *ir.Node) ([]ir.Type, error) {
	var dt tensor.DType
	rank := -1
	for i := range n.Inputs {
		t := s.in(n, i)
		if dt == 0 {
			dt = t.DType
		}
		if !t.Ranked {
			continue
		}
		if rank >= 0 && len(t.Shape) != rank {
			return nil, s.errf("inputs have ranks %d and %d", rank, len(t.Shape))
		}
		rank = len(t.Shape)
	}
	if rank < 0 {
		return []ir.Type{{DType: dt}}, nil
	}
	axis, err := s.normAxis(n.Attrs.Int("axis", 0), rank)
	if err != nil {
		return nil, err
	}
	out := unknownDims(rank)
	first := true
	sum := int64(0)
	sumKnown := true
	for i := range n.Inputs {
		t := s.in(n, i)
		if !t.Ranked {
			sumKnown = false
			continue
		}
		for j, d := range t.Shape {
			if j == axis {
				if d.Known() {
					sum += d.Size
				} else {
					sumKnown = false
				}
				continue
			}
			if first {
				out[j] = d
				continue
			}
			u, ok := unifyDim(out[j], d)
			if !ok {
				return nil, s.errf("input %d has dim %d = %d, earlier inputs have %d", i, j, d.Size, out[j].Size)
			}
			out[j] = u
		}
		first = false
	}
	if sumKnown {
		out[axis] = known(sum)
	} else if len(n.Inputs) == 1 {
		out[axis] = s.in(n, 0).Shape[axis]
	}
	if rank == 1 {
		var all []symInt
		ok := true
		for _, in := range n.Inputs {
			v, has := s.symOf(in)
			if !has {
				ok = false
				break
			}
			all = append(all, v...)
		}
		if ok {
			s.setSym(n.Outputs[0], all)
		}
	}
	return []ir.Type{ranked(dt, out)}, nil
}

// split infers Split from the split attribute (opset < 13), the split
// input (13+), num_outputs (18+) or an equal split into the outputs.
func (s *shapeState) split(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	nOut := len(n.Outputs)
	types := make([]ir.Type, nOut)
	if !x.Ranked {
		for i := range types {
			types[i] = ir.Type{DType: x.DType}
		}
		return types, nil
	}
	axis, err := s.normAxis(n.Attrs.Int("axis", 0), len(x.Shape))
	if err != nil {
		return nil, err
	}
	var sizes []int64
	known := false
	if s.opset < 13 {
		sizes, known = n.Attrs.Ints("split")
	} else if s.has(n, 1) {
		sizes, known = s.intsOf(n.Input(1))
		if !known {
			for i := range types {
				types[i] = ranked(x.DType, withDim(x.Shape, axis, unknownDim))
			}
			return types, nil
		}
	}
	if known && len(sizes) == 0 {
		known = false
	}
	d := x.Shape[axis]
	if known {
		if len(sizes) != nOut {
			return nil, s.errf("split %v has %d entries for %d outputs", sizes, len(sizes), nOut)
		}
		sum := int64(0)
		for _, v := range sizes {
			if v < 0 {
				return nil, s.errf("split %v has a negative entry", sizes)
			}
			sum += v
		}
		if d.Known() && sum != d.Size {
			return nil, s.errf("split %v sums to %d, the axis has %d", sizes, sum, d.Size)
		}
	} else if d.Known() {
		parts := int64(nOut)
		if s.opset >= 18 && n.Attrs.Has("num_outputs") {
			parts = n.Attrs.Int("num_outputs", int64(nOut))
			if parts != int64(nOut) {
				return nil, s.errf("num_outputs %d but the node has %d outputs", parts, nOut)
			}
		}
		sizes = make([]int64, nOut)
		if d.Size%parts == 0 {
			for i := range sizes {
				sizes[i] = d.Size / parts
			}
		} else if s.opset >= 18 {
			chunk := ceilDiv(d.Size, parts)
			for i := range sizes {
				sizes[i] = chunk
			}
			sizes[nOut-1] = d.Size - chunk*(parts-1)
			if sizes[nOut-1] < 0 {
				return nil, s.errf("cannot split %d into %d outputs", d.Size, parts)
			}
		} else {
			return nil, s.errf("dim %d of size %d does not split evenly into %d outputs", axis, d.Size, nOut)
		}
	}
	for i := range types {
		dim := unknownDim
		if sizes != nil {
			dim = ir.Dim{Size: sizes[i]}
		}
		types[i] = ranked(x.DType, withDim(x.Shape, axis, dim))
	}
	return types, nil
}

// withDim returns a copy of ds with ds[i] replaced.
func withDim(ds []ir.Dim, i int, d ir.Dim) []ir.Dim {
	out := append([]ir.Dim(nil), ds...)
	out[i] = d
	return out
}

// slice infers Slice (attributes before opset 10, inputs since).
func (s *shapeState) slice(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{{DType: x.DType}}, nil
	}
	r := len(x.Shape)
	var starts, ends, axes, steps []int64
	okS, okE, okA, okT := true, true, true, true
	if s.opset < 10 {
		starts, okS = n.Attrs.Ints("starts")
		ends, okE = n.Attrs.Ints("ends")
		axes, okA = n.Attrs.Ints("axes")
		if !okA {
			okA = true
			axes = nil
		}
	} else {
		starts, okS = s.intsOf(n.Input(1))
		ends, okE = s.intsOf(n.Input(2))
		if s.has(n, 3) {
			axes, okA = s.intsOf(n.Input(3))
		}
		if s.has(n, 4) {
			steps, okT = s.intsOf(n.Input(4))
		}
	}
	if !okA {
		return []ir.Type{ranked(x.DType, unknownDims(r))}, nil
	}
	if axes == nil && okS {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if !okS || !okE || !okT {
		out := append([]ir.Dim(nil), x.Shape...)
		if axes == nil {
			return []ir.Type{ranked(x.DType, unknownDims(r))}, nil
		}
		ax, err := s.normAxes(axes, r)
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			out[a] = unknownDim
		}
		return []ir.Type{ranked(x.DType, out)}, nil
	}
	if len(starts) != len(ends) || len(axes) != len(starts) || (steps != nil && len(steps) != len(starts)) {
		return nil, s.errf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	ax, err := s.normAxes(axes, r)
	if err != nil {
		return nil, err
	}
	out := append([]ir.Dim(nil), x.Shape...)
	type span struct{ start, end, step int64 }
	spans := make([]span, len(ax))
	for i, a := range ax {
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, s.errf("step 0 on axis %d", a)
		}
		spans[i] = span{starts[i], ends[i], step}
		d := x.Shape[a]
		if !d.Known() {
			if starts[i] == 0 && step == 1 && ends[i] >= math.MaxInt32 {
				continue // the whole dim
			}
			out[a] = unknownDim
			continue
		}
		_, _, cnt := sliceRange(d.Size, starts[i], ends[i], step)
		out[a] = known(cnt)
	}
	// Track a slice of a 1-D shape value.
	if r == 1 && len(ax) == 1 {
		if v, ok := s.symOf(n.Input(0)); ok && x.Shape[0].Known() && int64(len(v)) == x.Shape[0].Size {
			st, _, cnt := sliceRange(int64(len(v)), spans[0].start, spans[0].end, spans[0].step)
			res := make([]symInt, 0, cnt)
			for k, i := int64(0), st; k < cnt; k, i = k+1, i+spans[0].step {
				res = append(res, v[i])
			}
			s.setSym(n.Outputs[0], res)
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// sliceRange clamps a Slice start and end to a dim of size d and returns
// the first index, the clamped end and the element count.
func sliceRange(d, start, end, step int64) (int64, int64, int64) {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	var cnt int64
	if step > 0 {
		start = min(max(start, 0), d)
		end = min(max(end, 0), d)
		if end > start {
			cnt = (end - start + step - 1) / step
		}
	} else {
		start = min(max(start, -1), d-1)
		end = min(max(end, -1), d-1)
		if start > end {
			cnt = (start - end - step - 1) / -step
		}
	}
	return start, end, cnt
}

// axesOf reads the axes of Squeeze, Unsqueeze and the Reduce ops: the
// attribute before inputOpset, input 1 since. ok is false when the input
// is present but not constant.
func (s *shapeState) axesOf(n *ir.Node, inputOpset int64) (axes []int64, present, ok bool) {
	if s.opset < inputOpset {
		axes, present = n.Attrs.Ints("axes")
		return axes, present, true
	}
	if !s.has(n, 1) {
		return nil, false, true
	}
	axes, ok = s.intsOf(n.Input(1))
	return axes, true, ok
}

// squeeze infers Squeeze.
func (s *shapeState) squeeze(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	axes, present, ok := s.axesOf(n, 13)
	if !x.Ranked || !ok {
		return []ir.Type{{DType: x.DType}}, nil
	}
	drop := make([]bool, len(x.Shape))
	if present {
		ax, err := s.normAxes(axes, len(x.Shape))
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			if d := x.Shape[a]; d.Known() && d.Size != 1 {
				return nil, s.errf("cannot squeeze axis %d of size %d", a, d.Size)
			}
			drop[a] = true
		}
	} else {
		for i, d := range x.Shape {
			if !d.Known() {
				return []ir.Type{{DType: x.DType}}, nil
			}
			drop[i] = d.Size == 1
		}
	}
	out := []ir.Dim{}
	for i, d := range x.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	if v, ok := s.symOf(n.Input(0)); ok && len(out) == 0 && len(v) == 1 {
		s.setSym(n.Outputs[0], v)
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// unsqueeze infers Unsqueeze (axes refer to the output rank).
func (s *shapeState) unsqueeze(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	axes, present, ok := s.axesOf(n, 13)
	if !present && ok {
		return nil, s.errf("axes are required")
	}
	if !x.Ranked || !ok {
		return []ir.Type{{DType: x.DType}}, nil
	}
	r := len(x.Shape) + len(axes)
	ax, err := s.normAxes(axes, r)
	if err != nil {
		return nil, err
	}
	ins := make([]bool, r)
	for _, a := range ax {
		ins[a] = true
	}
	out := make([]ir.Dim, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = known(1)
			continue
		}
		out[i] = x.Shape[j]
		j++
	}
	if v, ok := s.symOf(n.Input(0)); ok && len(x.Shape) <= 1 {
		s.setSym(n.Outputs[0], v)
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// gather infers Gather: data[:axis] + indices.shape + data[axis+1:].
func (s *shapeState) gather(n *ir.Node) ([]ir.Type, error) {
	x, idx := s.in(n, 0), s.in(n, 1)
	if !x.Ranked || !idx.Ranked {
		return []ir.Type{{DType: x.DType}}, nil
	}
	if len(x.Shape) == 0 {
		return nil, s.errf("Gather on a scalar")
	}
	axis, err := s.normAxis(n.Attrs.Int("axis", 0), len(x.Shape))
	if err != nil {
		return nil, err
	}
	out := append([]ir.Dim(nil), x.Shape[:axis]...)
	out = append(out, idx.Shape...)
	out = append(out, x.Shape[axis+1:]...)
	if len(x.Shape) == 1 {
		if v, ok := s.symOf(n.Input(0)); ok {
			if is, ok := s.intsOf(n.Input(1)); ok {
				res := make([]symInt, len(is))
				for i, k := range is {
					if k < 0 {
						k += int64(len(v))
					}
					if k < 0 || k >= int64(len(v)) {
						return nil, s.errf("index %d out of range for %d elements", is[i], len(v))
					}
					res[i] = v[k]
				}
				s.setSym(n.Outputs[0], res)
			}
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// shapeOp infers Shape (with start and end since opset 15).
func (s *shapeState) shapeOp(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{ranked(tensor.Int64, unknownDims(1))}, nil
	}
	r := int64(len(x.Shape))
	start, end := int64(0), r
	if s.opset >= 15 {
		start = n.Attrs.Int("start", 0)
		end = n.Attrs.Int("end", r)
		if start < 0 {
			start += r
		}
		if end < 0 {
			end += r
		}
		start = min(max(start, 0), r)
		end = min(max(end, 0), r)
		if end < start {
			end = start
		}
	}
	v := make([]symInt, 0, end-start)
	for _, d := range x.Shape[start:end] {
		v = append(v, symFromDim(d))
	}
	s.setSym(n.Outputs[0], v)
	return []ir.Type{ranked(tensor.Int64, []ir.Dim{known(end - start)})}, nil
}

// pad infers Pad: dim + pad_begin + pad_end on each (selected) axis.
func (s *shapeState) pad(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{x}, nil
	}
	r := len(x.Shape)
	var pads []int64
	ok := true
	switch {
	case s.opset < 2:
		pads, ok = n.Attrs.Ints("paddings")
	case s.opset < 11:
		pads, ok = n.Attrs.Ints("pads")
	default:
		pads, ok = s.intsOf(n.Input(1))
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if s.opset >= 18 && s.has(n, 3) {
		av, aok := s.intsOf(n.Input(3))
		if !aok {
			return []ir.Type{ranked(x.DType, unknownDims(r))}, nil
		}
		var err error
		if axes, err = s.normAxes(av, r); err != nil {
			return nil, err
		}
	}
	out := append([]ir.Dim(nil), x.Shape...)
	if !ok {
		for _, a := range axes {
			out[a] = unknownDim
		}
		return []ir.Type{ranked(x.DType, out)}, nil
	}
	if len(pads) != 2*len(axes) {
		return nil, s.errf("pads %v has %d entries, want %d", pads, len(pads), 2*len(axes))
	}
	for i, a := range axes {
		add := pads[i] + pads[len(axes)+i]
		d := x.Shape[a]
		switch {
		case d.Known():
			if d.Size+add < 0 {
				return nil, s.errf("pads %v make dim %d negative", pads, a)
			}
			out[a] = known(d.Size + add)
		case add != 0 || pads[i] != 0:
			out[a] = unknownDim
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// resize infers Resize: sizes when given (adjusted by
// keep_aspect_ratio_policy since opset 18), else floor(dim * scale).
func (s *shapeState) resize(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{x}, nil
	}
	r := len(x.Shape)
	scalesIn, sizesIn := 2, 3
	if s.opset < 11 {
		scalesIn, sizesIn = 1, -1
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if s.opset >= 18 {
		if av, ok := n.Attrs.Ints("axes"); ok {
			var err error
			if axes, err = s.normAxes(av, r); err != nil {
				return nil, err
			}
		}
	}
	out := append([]ir.Dim(nil), x.Shape...)
	unknownAxes := func() []ir.Type {
		for _, a := range axes {
			out[a] = unknownDim
		}
		return []ir.Type{ranked(x.DType, out)}
	}
	if sizesIn > 0 && s.has(n, sizesIn) {
		if st := s.in(n, sizesIn); !st.Ranked || len(st.Shape) != 1 || !st.Shape[0].Known() || st.Shape[0].Size != 0 {
			sizes, ok := s.symOf(n.Input(sizesIn))
			if !ok {
				return unknownAxes(), nil
			}
			if len(sizes) != len(axes) {
				return nil, s.errf("sizes has %d entries for %d axes", len(sizes), len(axes))
			}
			policy := "stretch"
			if s.opset >= 18 {
				policy = n.Attrs.Str("keep_aspect_ratio_policy", "stretch")
			}
			if policy == "stretch" {
				for i, a := range axes {
					out[a] = dimFromSym(sizes[i])
				}
				return []ir.Type{ranked(x.DType, out)}, nil
			}
			if policy != "not_larger" && policy != "not_smaller" {
				return nil, s.errf("unknown keep_aspect_ratio_policy %q", policy)
			}
			scale := math.Inf(1)
			if policy == "not_smaller" {
				scale = math.Inf(-1)
			}
			for i, a := range axes {
				d := x.Shape[a]
				if !sizes[i].Known || !d.Known() || d.Size == 0 {
					return unknownAxes(), nil
				}
				q := float64(sizes[i].Val) / float64(d.Size)
				if policy == "not_larger" {
					scale = min(scale, q)
				} else {
					scale = max(scale, q)
				}
			}
			for _, a := range axes {
				out[a] = known(int64(math.Floor(scale*float64(x.Shape[a].Size) + 0.5)))
			}
			return []ir.Type{ranked(x.DType, out)}, nil
		}
	}
	if !s.has(n, scalesIn) {
		return unknownAxes(), nil
	}
	scales, ok := s.floatsOf(n.Input(scalesIn))
	if !ok {
		return unknownAxes(), nil
	}
	if len(scales) != len(axes) {
		return nil, s.errf("scales has %d entries for %d axes", len(scales), len(axes))
	}
	for i, a := range axes {
		d := x.Shape[a]
		switch {
		case scales[i] == 1:
		case d.Known():
			// float32 arithmetic, as ONNX shape inference and the kernel do.
			out[a] = known(int64(math.Floor(float64(float32(d.Size) * float32(scales[i])))))
		default:
			out[a] = unknownDim
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// reduce infers ReduceMean, ReduceSum and ReduceMax (axes an input since
// opset 13 for ReduceSum and 18 for the others).
func (s *shapeState) reduce(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	inputOpset := int64(18)
	if n.Op == "ReduceSum" {
		inputOpset = 13
	}
	keep := n.Attrs.Int("keepdims", 1) != 0
	axes, present, ok := s.axesOf(n, inputOpset)
	if !x.Ranked {
		return []ir.Type{{DType: x.DType}}, nil
	}
	r := len(x.Shape)
	if !ok {
		if keep {
			return []ir.Type{ranked(x.DType, unknownDims(r))}, nil
		}
		return []ir.Type{{DType: x.DType}}, nil
	}
	red := make([]bool, r)
	if !present || len(axes) == 0 {
		if s.opset >= inputOpset && n.Attrs.Int("noop_with_empty_axes", 0) != 0 {
			return []ir.Type{x}, nil
		}
		for i := range red {
			red[i] = true
		}
	} else {
		ax, err := s.normAxes(axes, r)
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			red[a] = true
		}
	}
	out := []ir.Dim{}
	for i, d := range x.Shape {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, known(1))
		}
	}
	return []ir.Type{ranked(x.DType, out)}, nil
}

// argMax infers ArgMax (int64 indices).
func (s *shapeState) argMax(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	if !x.Ranked {
		return []ir.Type{{DType: tensor.Int64}}, nil
	}
	axis, err := s.normAxis(n.Attrs.Int("axis", 0), len(x.Shape))
	if err != nil {
		return nil, err
	}
	out := []ir.Dim{}
	for i, d := range x.Shape {
		switch {
		case i != axis:
			out = append(out, d)
		case n.Attrs.Int("keepdims", 1) != 0:
			out = append(out, known(1))
		}
	}
	return []ir.Type{ranked(tensor.Int64, out)}, nil
}

// constant infers Constant from whichever value attribute it carries.
func (s *shapeState) constant(n *ir.Node) ([]ir.Type, error) {
	if at, ok := n.Attrs.Get("value_string"); ok && at.Type == ir.AttrString {
		return []ir.Type{ranked(tensor.String, nil)}, nil
	}
	if at, ok := n.Attrs.Get("value_strings"); ok && at.Type == ir.AttrStrings {
		return []ir.Type{ranked(tensor.String, []ir.Dim{known(int64(len(at.Strings)))})}, nil
	}
	t, err := constantTensor(n)
	if err != nil {
		return nil, s.errf("%v", err)
	}
	if t == nil {
		return nil, nil // sparse_value: left unknown unless declared
	}
	if isIntDType(t.DType) && t.Rank() <= 1 && t.Len() <= maxSymLen {
		if v, err := t.Int64s(); err == nil {
			s.setSym(n.Outputs[0], knownSyms(v))
		}
	}
	return []ir.Type{ranked(t.DType, ir.ShapeDims(t.Shape))}, nil
}

// constantOfShape infers ConstantOfShape: shape from the input's values,
// dtype from the value attribute (float32 by default).
func (s *shapeState) constantOfShape(n *ir.Node) ([]ir.Type, error) {
	dt := tensor.Float32
	if v := n.Attrs.Tensor("value"); v != nil {
		dt = v.DType
	}
	if v, ok := s.symOf(n.Input(0)); ok {
		out := make([]ir.Dim, len(v))
		for i, e := range v {
			if e.Known && e.Val < 0 {
				return nil, s.errf("negative dim %d in shape", e.Val)
			}
			out[i] = dimFromSym(e)
		}
		return []ir.Type{ranked(dt, out)}, nil
	}
	if st := s.in(n, 0); st.Ranked && len(st.Shape) == 1 && st.Shape[0].Known() {
		return []ir.Type{ranked(dt, unknownDims(int(st.Shape[0].Size)))}, nil
	}
	return []ir.Type{{DType: dt}}, nil
}

// expand infers Expand: the input broadcast with the shape value.
func (s *shapeState) expand(n *ir.Node) ([]ir.Type, error) {
	x := s.in(n, 0)
	v, ok := s.symOf(n.Input(1))
	if !ok {
		if st := s.in(n, 1); x.Ranked && st.Ranked && len(st.Shape) == 1 && st.Shape[0].Known() {
			return []ir.Type{ranked(x.DType, unknownDims(max(len(x.Shape), int(st.Shape[0].Size))))}, nil
		}
		return []ir.Type{{DType: x.DType}}, nil
	}
	sh := make([]ir.Dim, len(v))
	for i, e := range v {
		if e.Known && e.Val < 0 {
			return nil, s.errf("negative dim %d in shape", e.Val)
		}
		sh[i] = dimFromSym(e)
	}
	t, err := broadcastTypes(x.DType, x, ranked(x.DType, sh))
	if err != nil {
		return nil, s.errf("%v", err)
	}
	return []ir.Type{t}, nil
}

// constantTensor returns the tensor a Constant node produces, or nil for
// forms goslim does not store (sparse_value, strings).
func constantTensor(n *ir.Node) (*tensor.Tensor, error) {
	for _, at := range n.Attrs {
		switch at.Name {
		case "value":
			if at.Tensor == nil {
				return nil, errorString("Constant value attribute holds no tensor")
			}
			return at.Tensor, nil
		case "value_float":
			return tensor.FromFloat32(tensor.Shape{}, []float32{at.Float}), nil
		case "value_floats":
			return tensor.FromFloat32(tensor.Shape{len(at.Floats)}, append([]float32(nil), at.Floats...)), nil
		case "value_int":
			return tensor.FromInt64(tensor.Shape{}, []int64{at.Int}), nil
		case "value_ints":
			return tensor.FromInt64(tensor.Shape{len(at.Ints)}, append([]int64(nil), at.Ints...)), nil
		}
	}
	return nil, nil
}

// errorString is a constant error message.
type errorString string

func (e errorString) Error() string { return string(e) }
