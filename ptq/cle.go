package ptq

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/ir"
)

// CLEOptions configure Equalize.
type CLEOptions struct {
	// Iterations caps the passes over all layer pairs (default 20).
	Iterations int
	// Tolerance stops early when no scale in a pass moves further than
	// this from 1 (default 1e-3).
	Tolerance float64
}

// CLEReport says what Equalize did.
type CLEReport struct {
	// Pairs lists the equalized layer pairs as "producer -> consumer".
	Pairs []string `json:"pairs"`
	// Iterations is the number of passes run.
	Iterations int `json:"iterations"`
	// SpreadBefore and SpreadAfter average, over the equalized layers'
	// weights, the ratio of the largest to the mean per-channel |w| range
	// (1 is perfectly even; per-tensor quantization suffers when it is large).
	SpreadBefore float64 `json:"spread_before"`
	SpreadAfter  float64 `json:"spread_after"`
}

// Equalize applies cross-layer equalization (Nagel et al. 2019, "Data-Free
// Quantization"): for each pair of layers P -> L joined through ops that
// commute with a positive per-channel scale (Relu, LeakyRelu, pools,
// Flatten, identity; not Clip/ReLU6), channel c of P's output is divided
// by s_c and L's matching input weights are multiplied by it, with
//
//	s_c = sqrt(r1_c / r2_c)
//
// where r1_c is max |w| of P's output channel c and r2_c of L's input
// channel c, so both become sqrt(r1_c·r2_c). P's bias is divided too. The
// FP32 function is unchanged (up to rounding). Depthwise convolutions
// (either side) are supported, which is where equalization matters most:
// their per-channel ranges differ wildly and per-tensor activations of the
// following pointwise layer suffer. Passes repeat until the scales settle.
//
// The returned graph keeps every ValueID; changed weights are new tensors.
func Equalize(g *ir.Graph, opts CLEOptions) (*ir.Graph, *CLEReport, error) {
	if opts.Iterations <= 0 {
		opts.Iterations = 20
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 1e-3
	}
	var edges []edge
	rep := &CLEReport{}
	for _, e := range findEdges(g) {
		if e.homogeneous {
			edges = append(edges, e)
			rep.Pairs = append(rep.Pairs, fmt.Sprintf("%s -> %s", nodeName(g, e.p), nodeName(g, e.l)))
		}
	}
	if len(edges) == 0 {
		return g, rep, nil
	}
	st := newWeightState(g)
	rep.SpreadBefore = spread(g, st, edges)
	for it := 0; it < opts.Iterations; it++ {
		rep.Iterations = it + 1
		moved := 0.0
		for i := range edges {
			e := &edges[i]
			pw, pb, pl := st.pViews(g, e)
			lv, ll := st.lView(g, e)
			for c := 0; c < e.channels; c++ {
				r1, r2 := float64(pw.absMax(c)), float64(lv.absMax(c))
				if r1 == 0 || r2 == 0 {
					continue
				}
				s := math.Sqrt(r1 / r2)
				if !(s > 0) || math.IsInf(s, 0) {
					continue
				}
				moved = max(moved, math.Abs(s-1))
				pw.scale(c, float32(1/s))
				if pb != nil {
					pb.scale(c, float32(1/s))
				}
				lv.scale(c, float32(s))
			}
			st.put(pl.w, pw)
			st.put(pl.b, pb)
			st.put(ll.w, lv)
		}
		if moved < opts.Tolerance {
			break
		}
	}
	rep.SpreadAfter = spread(g, st, edges)
	return st.apply(nil), rep, nil
}

// spread averages max/mean of per-channel |w| ranges over the edges'
// producers and consumers (each weight once, along its output channels).
func spread(g *ir.Graph, st *weightState, edges []edge) float64 {
	seen := map[ir.ValueID]bool{}
	var sum float64
	n := 0
	add := func(ni int) {
		lw, ok := weightsOf(g, &g.Nodes[ni])
		if !ok || seen[lw.w] {
			return
		}
		seen[lw.w] = true
		v := st.view(lw.w, lw.outAxis, 1)
		var mx, mean float64
		for c := range v.channels() {
			r := float64(v.absMax(c))
			mx = max(mx, r)
			mean += r
		}
		mean /= float64(v.channels())
		if mean > 0 {
			sum += mx / mean
			n++
		}
	}
	for _, e := range edges {
		add(e.p)
		add(e.l)
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// nodeName names a node for reports: its name, else op#index.
func nodeName(g *ir.Graph, ni int) string {
	if n := g.Nodes[ni].Name; n != "" {
		return n
	}
	return fmt.Sprintf("%s#%d", g.Nodes[ni].Op, ni)
}
