package ptq

import (
	"context"
	"math"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// An edge is a producer layer P whose output channels feed a consumer
// layer L's input channels through ops that keep channels apart (Relu,
// Clip, pools, Flatten). Cross-layer equalization rescales channels along
// an edge and outlier channel splitting duplicates them; both keep the
// FP32 function.
type edge struct {
	p, l int
	// vals are P's output, then each chain op's output; the last is L's
	// input. Their axis 1 is the channel axis (features after a Flatten).
	vals []ir.ValueID
	// flatten is the index in vals of a Flatten's output, or -1; spatial
	// is the number of features per channel after it (1 without).
	flatten, spatial int
	// homogeneous: every chain op commutes with a positive per-channel
	// scale (f(a·x) = a·f(x)), so channels may be scaled, not just copied.
	homogeneous bool
	// clipIn is the input of the chain's one Clip with lower bound 0 (or
	// none) and a finite upper bound clipHi > 0 (ReLU6), when every other
	// chain op is homogeneous; NoValue otherwise. Such an edge may be
	// scaled only where the data keeps the Clip's upper bound inactive
	// (see Equalize).
	clipIn ir.ValueID
	clipHi float32
	// depthwise: L is a depthwise Conv (its input channel c is its
	// weight's rows c·mult..(c+1)·mult).
	depthwise bool
	// channels is P's output channel count; pGrouped is set when P is a
	// grouped (depthwise) Conv, whose output channels cannot be duplicated.
	channels int
	pGrouped bool
}

// chanView views a float32 tensor as [outer, c, inner] around one axis,
// for per-channel scaling and channel duplication.
type chanView struct {
	shape               tensor.Shape
	axis                int
	outer, c, inner     int
	data                []float32
	group               int // channel = group consecutive indices along axis (Flatten blocks, depthwise rows)
	trainable, modified bool
}

// newChanView copies t (float32) into a view along axis, with channels of
// group consecutive indices.
func newChanView(t *tensor.Tensor, axis, group int) *chanView {
	v := &chanView{shape: t.Shape.Clone(), axis: axis, group: group, data: append([]float32(nil), t.F32()...)}
	v.dims()
	return v
}

func (v *chanView) dims() {
	v.outer, v.inner = 1, 1
	for i, d := range v.shape {
		switch {
		case i < v.axis:
			v.outer *= d
		case i > v.axis:
			v.inner *= d
		}
	}
	v.c = v.shape[v.axis] / v.group
	v.inner *= v.group
}

// channels returns the channel count.
func (v *chanView) channels() int { return v.c }

// absMax returns max |x| over channel ch.
func (v *chanView) absMax(ch int) float32 {
	var m float32
	for o := range v.outer {
		base := (o*v.c + ch) * v.inner
		for _, x := range v.data[base : base+v.inner] {
			m = max(m, float32(math.Abs(float64(x))))
		}
	}
	return m
}

// scale multiplies channel ch by f.
func (v *chanView) scale(ch int, f float32) {
	for o := range v.outer {
		base := (o*v.c + ch) * v.inner
		for i := base; i < base+v.inner; i++ {
			v.data[i] *= f
		}
	}
	v.modified = true
}

// appendCopy adds a channel at the end holding f times channel ch.
func (v *chanView) appendCopy(ch int, f float32) {
	nc := v.c + 1
	data := make([]float32, v.outer*nc*v.inner)
	for o := range v.outer {
		copy(data[o*nc*v.inner:], v.data[o*v.c*v.inner:(o+1)*v.c*v.inner])
		src := v.data[(o*v.c+ch)*v.inner : (o*v.c+ch+1)*v.inner]
		dst := data[(o*nc+v.c)*v.inner : (o*nc+v.c+1)*v.inner]
		for i, x := range src {
			dst[i] = x * f
		}
	}
	v.data, v.c = data, nc
	v.shape[v.axis] += v.group
	v.modified = true
}

// tensor returns the view's data as a new tensor.
func (v *chanView) tensor() *tensor.Tensor {
	return tensor.FromFloat32(v.shape.Clone(), v.data)
}

// chainOps are the ops an edge may pass through; the value says whether
// the op is positively homogeneous per channel.
var chainOps = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Identity": true, "MaxPool": true, "AveragePool": true,
	"GlobalAveragePool": true, "GlobalMaxPool": true, "Flatten": true, "Clip": false,
}

// layerWeights describes a layer's weight and bias inputs for edges.
type layerWeights struct {
	w, b          ir.ValueID // NoValue when absent
	outAxis       int        // axis of output channels in w
	inAxis        int        // axis of input channels in w (-1 for depthwise handling)
	group         int64
	inChannels    int // the layer's input channel (feature) count
	outChannels   int
	convLike      bool // Conv: input and output rank >= 3
	depthwise     bool
	biasScalesOut bool // the bias is [outChannels]
}

// constOf returns a float32 constant that is not a graph input.
func constOf(g *ir.Graph, id ir.ValueID) *tensor.Tensor {
	if id == ir.NoValue {
		return nil
	}
	v := &g.Values[id]
	if v.Const == nil || v.Const.DType != tensor.Float32 || g.IsInput(id) {
		return nil
	}
	return v.Const
}

// weightsOf returns the weights of a Conv, Gemm or MatMul with constant
// float32 weights (and a constant 1-D bias when present), ok false
// otherwise.
func weightsOf(g *ir.Graph, n *ir.Node) (layerWeights, bool) {
	lw := layerWeights{w: n.Input(1), b: ir.NoValue}
	w := constOf(g, lw.w)
	if w == nil || (n.Domain != "" && n.Domain != "ai.onnx") {
		return lw, false
	}
	switch n.Op {
	case "Conv":
		if w.Rank() < 3 {
			return lw, false
		}
		lw.group = n.Attrs.Int("group", 1)
		lw.outAxis, lw.inAxis, lw.convLike = 0, 1, true
		lw.outChannels = w.Shape[0]
		lw.inChannels = w.Shape[1] * int(lw.group)
		lw.depthwise = lw.group > 1 && w.Shape[1] == 1 && int(lw.group) == lw.inChannels
		if lw.group > 1 && !lw.depthwise {
			return lw, false
		}
		if b := n.Input(2); b != ir.NoValue {
			bt := constOf(g, b)
			if bt == nil || bt.Rank() != 1 || bt.Len() != lw.outChannels {
				return lw, false
			}
			lw.b = b
		}
	case "Gemm":
		if w.Rank() != 2 || n.Attrs.Int("transA", 0) != 0 {
			return lw, false
		}
		lw.outAxis, lw.inAxis = 1, 0
		if n.Attrs.Int("transB", 0) != 0 {
			lw.outAxis, lw.inAxis = 0, 1
		}
		lw.outChannels, lw.inChannels = w.Shape[lw.outAxis], w.Shape[lw.inAxis]
		if b := n.Input(2); b != ir.NoValue {
			bt := constOf(g, b)
			if bt == nil || bt.Rank() != 1 || bt.Len() != lw.outChannels {
				return lw, false
			}
			lw.b = b
		}
	case "MatMul":
		if w.Rank() != 2 {
			return lw, false
		}
		a := g.Values[n.Input(0)].Type
		if !a.Ranked || len(a.Shape) != 2 {
			return lw, false
		}
		lw.outAxis, lw.inAxis = 1, 0
		lw.outChannels, lw.inChannels = w.Shape[1], w.Shape[0]
	default:
		return lw, false
	}
	return lw, true
}

// findEdges returns the edges of g in topological order of their
// producers. Each weight tensor must be read by its layer only.
func findEdges(g *ir.Graph) []edge {
	order, err := g.Topo()
	if err != nil {
		return nil
	}
	cons := g.Consumers()
	isOut := make([]bool, len(g.Values))
	for _, id := range g.Outputs {
		isOut[id] = true
	}
	soleUse := func(id ir.ValueID) bool { return id == ir.NoValue || len(cons[id]) == 1 }
	var edges []edge
	for _, pi := range order {
		p := &g.Nodes[pi]
		pw, ok := weightsOf(g, p)
		if !ok || !soleUse(pw.w) || !soleUse(pw.b) || len(p.Outputs) != 1 {
			continue
		}
		e := edge{p: pi, flatten: -1, spatial: 1, homogeneous: true, channels: pw.outChannels, pGrouped: pw.group > 1,
			clipIn: ir.NoValue}
		clips, otherHom := 0, true
		x := p.Outputs[0]
		for {
			e.vals = append(e.vals, x)
			if isOut[x] || len(cons[x]) != 1 {
				e.l = -1
				break
			}
			ni := cons[x][0]
			n := &g.Nodes[ni]
			if n.Input(0) != x || len(n.Outputs) != 1 {
				e.l = -1
				break
			}
			if hom, ok := chainOps[n.Op]; ok && (n.Domain == "" || n.Domain == "ai.onnx") {
				if n.Op == "Clip" {
					for _, s := range []int{1, 2} {
						if id := n.Input(s); id != ir.NoValue && constOf(g, id) == nil {
							ok = false
						}
					}
				}
				if n.Op == "Flatten" {
					sh, known := spatialSize(g.Values[x].Type)
					if e.flatten >= 0 || n.Attrs.Int("axis", 1) != 1 || !known {
						ok = false
					} else {
						e.spatial = sh
						e.flatten = len(e.vals)
					}
				}
				if !ok {
					e.l = -1
					break
				}
				if n.Op == "Clip" {
					clips++
					if lo, hi, ok := clipBounds(g, n); ok && (lo == 0 || math.IsInf(float64(lo), -1)) && hi > 0 {
						if math.IsInf(float64(hi), 1) {
							hom = lo == 0 // Clip(0, inf) is a Relu
						} else {
							e.clipIn, e.clipHi = x, hi
						}
					} else {
						clips++ // not equalizable
					}
				} else {
					otherHom = otherHom && hom
				}
				e.homogeneous = e.homogeneous && hom
				x = n.Outputs[0]
				continue
			}
			e.l = ni
			break
		}
		if e.l < 0 {
			continue
		}
		if clips != 1 || !otherHom || e.flatten >= 0 {
			e.clipIn = ir.NoValue
		}
		l := &g.Nodes[e.l]
		lw, ok := weightsOf(g, l)
		if !ok || !soleUse(lw.w) || l.Input(0) != x {
			continue
		}
		// Conv consumers need channels on axis 1 of a rank >= 3 input from a
		// Conv (no Flatten); Gemm/MatMul consumers need a rank-2 input: from
		// a Gemm/MatMul producer, or from a Conv through a Flatten.
		if lw.convLike && (!pw.convLike || e.flatten >= 0) {
			continue
		}
		if !lw.convLike && pw.convLike && e.flatten < 0 {
			continue
		}
		if lw.inChannels != pw.outChannels*e.spatial {
			continue
		}
		e.depthwise = lw.depthwise
		edges = append(edges, e)
	}
	return edges
}

// spatialSize returns the product of the dims after axis 1 of a ranked
// type of rank >= 2, when they are known.
func spatialSize(t ir.Type) (int, bool) {
	if !t.Ranked || len(t.Shape) < 2 {
		return 0, false
	}
	n := 1
	for _, d := range t.Shape[2:] {
		if !d.Known() {
			return 0, false
		}
		n *= int(d.Size)
	}
	return n, true
}

// weightState holds the float32 constants a transform has changed so far.
type weightState struct {
	g   *ir.Graph
	cur map[ir.ValueID]*tensor.Tensor
}

func newWeightState(g *ir.Graph) *weightState {
	return &weightState{g: g, cur: map[ir.ValueID]*tensor.Tensor{}}
}

func (s *weightState) get(id ir.ValueID) *tensor.Tensor {
	if t, ok := s.cur[id]; ok {
		return t
	}
	return s.g.Values[id].Const
}

// view returns a copy of a constant's current data viewed along axis.
func (s *weightState) view(id ir.ValueID, axis, group int) *chanView {
	return newChanView(s.get(id), axis, group)
}

// put stores a modified view back.
func (s *weightState) put(id ir.ValueID, v *chanView) {
	if v != nil && v.modified {
		s.cur[id] = v.tensor()
	}
}

// apply returns a clone of the graph with the changed constants (same
// ValueIDs, new tensors; the old tensors are not written) and with axis 1
// of the values in grow widened by the given amounts.
func (s *weightState) apply(grow map[ir.ValueID]int) *ir.Graph {
	out := s.g.Clone()
	for id, t := range s.cur {
		v := &out.Values[id]
		v.Const = t
		v.Type = ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}
	}
	for id, k := range grow {
		t := &out.Values[id].Type
		if t.Ranked && len(t.Shape) >= 2 && t.Shape[1].Known() {
			t.Shape[1].Size += int64(k)
		}
	}
	return out
}

// lView returns L's weight viewed along its input channels (depthwise:
// along the rows of each channel).
func (s *weightState) lView(g *ir.Graph, e *edge) (*chanView, layerWeights) {
	lw, _ := weightsOf(g, &g.Nodes[e.l])
	if e.depthwise {
		return s.view(lw.w, 0, lw.outChannels/lw.inChannels), lw
	}
	return s.view(lw.w, lw.inAxis, e.spatial), lw
}

// pViews returns P's weight (and bias, or nil) viewed along its output
// channels.
func (s *weightState) pViews(g *ir.Graph, e *edge) (w, b *chanView, lw layerWeights) {
	lw, _ = weightsOf(g, &g.Nodes[e.p])
	w = s.view(lw.w, lw.outAxis, 1)
	if lw.b != ir.NoValue {
		b = s.view(lw.b, 0, 1)
	}
	return w, b, lw
}

// clipBounds returns a Clip's bounds (inputs from opset 11, attributes
// before; absent bounds are ±Inf); ok is false when a bound is not a
// constant scalar.
func clipBounds(g *ir.Graph, n *ir.Node) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if g.Opset("") < 11 {
		return n.Attrs.Float("min", lo), n.Attrs.Float("max", hi), true
	}
	for slot, dst := range []*float32{&lo, &hi} {
		id := n.Input(slot + 1)
		if id == ir.NoValue {
			continue
		}
		c := constOf(g, id)
		if c == nil || c.Len() != 1 {
			return 0, 0, false
		}
		*dst = c.F32()[0]
	}
	return lo, hi, true
}

// edgeChannelRanges rewinds r and collects the per-channel (axis 1)
// min/max of the values ids over batches batches of it (0: one epoch), as
// CLE and OCS need for the activations along their edges.
func edgeChannelRanges(ctx context.Context, g *ir.Graph, r dataset.Reader, ids []ir.ValueID, batches, threads int, kernels string) (*calib.Stats, error) {
	if err := r.Seek(dataset.Position{}); err != nil {
		return nil, err
	}
	return calib.Collect(ctx, g, r, calib.Spec{Values: ids,
		Observer: func(ir.ValueID) calib.Factory {
			return func() calib.Observer { return calib.NewMinMaxPerChannel(1) }
		},
		Batches: batches, Threads: threads, Kernels: kernels})
}
