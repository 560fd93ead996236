package ptq

import (
	"context"
	"math"
	"sort"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
)

// OCSOptions configure SplitOutliers.
type OCSOptions struct {
	// Ratio is the expansion ratio: at most floor(Ratio·C) channels are
	// added to an edge of C channels.
	Ratio float64
	// PerChannel says the weights will be quantized per output channel,
	// which changes which weight splits help.
	PerChannel bool
	// OutlierFactor: a channel is an outlier when its range exceeds
	// OutlierFactor times the median channel range (default 2).
	OutlierFactor float64
	// Calib, when set, gives per-channel activation ranges (Batches
	// batches; 0: one epoch) so activation outliers can be split too.
	Calib   dataset.Reader
	Batches int
	Threads int
	Kernels string
}

// OCSLayer is what SplitOutliers did on one edge.
type OCSLayer struct {
	Producer string `json:"producer"`
	Consumer string `json:"consumer"`
	// Channels is the edge's channel count before splitting.
	Channels int `json:"channels"`
	// WeightSplits halved an input channel of the consumer's weights;
	// ActivationSplits halved an output channel of the producer.
	WeightSplits     int `json:"weight_splits"`
	ActivationSplits int `json:"activation_splits"`
	// WeightRange and ActRange are the consumer's weight range proxy and
	// the edge's activation range before and after ([before, after]).
	WeightRange [2]float64 `json:"weight_range"`
	ActRange    [2]float64 `json:"activation_range,omitzero"`
}

// OCSReport says what SplitOutliers did.
type OCSReport struct {
	Ratio float64    `json:"ratio"`
	Edges int        `json:"edges_considered"`
	Split []OCSLayer `json:"split,omitempty"`
	// ChannelsAdded counts all added channels; ParamsAdded the weights and
	// biases they add, ParamsBefore the model's weight count before.
	ChannelsAdded int   `json:"channels_added"`
	ParamsAdded   int64 `json:"params_added"`
	ParamsBefore  int64 `json:"params_before"`
	// SizeCost is ParamsAdded / ParamsBefore.
	SizeCost float64 `json:"size_cost"`
}

// SplitOutliers applies outlier channel splitting (Zhao et al. 2019) to
// the layer pairs P -> L of g (see Equalize for the pairs; here P must be
// an ungrouped Conv, a Gemm or a MatMul, and L an ungrouped Conv, Gemm or
// MatMul):
//
//   - a weight split of channel c halves L's input weights of c and
//     appends a copy of them, and appends a copy of P's output channel c
//     (weights and bias), so L sees c twice and sums two halves: L's weight
//     range shrinks when c held its largest weights;
//   - an activation split of channel c (only through Relu, LeakyRelu,
//     pools, Flatten: ops with f(x/2) = f(x)/2) halves P's output channel c
//     and appends a copy, and appends a copy of L's input weights of c, so
//     the activation range shrinks when c held its largest values.
//
// Both keep the FP32 function (up to rounding). On each edge channels are
// split greedily, each time the split that shrinks its range the most,
// among channels whose range exceeds OutlierFactor times the median, at
// most floor(Ratio·C) times. Activation ranges come from Calib; without it
// only weights are split.
//
// ValueIDs are kept: changed weights become new tensors and the channel
// dims of the values along each split edge grow.
func SplitOutliers(ctx context.Context, g *ir.Graph, opts OCSOptions) (*ir.Graph, *OCSReport, error) {
	if opts.OutlierFactor <= 0 {
		opts.OutlierFactor = 2
	}
	rep := &OCSReport{Ratio: opts.Ratio, ParamsBefore: weightCount(g)}
	var edges []edge
	for _, e := range findEdges(g) {
		if !e.pGrouped && !e.depthwise {
			edges = append(edges, e)
		}
	}
	rep.Edges = len(edges)
	if len(edges) == 0 || opts.Ratio <= 0 {
		return g, rep, nil
	}
	// Per-channel activation ranges of each edge (before any Flatten).
	actRanges := map[ir.ValueID][2][]float32{}
	if opts.Calib != nil {
		var ids []ir.ValueID
		for _, e := range edges {
			if e.homogeneous {
				ids = append(ids, edgeActValue(&e))
			}
		}
		if len(ids) > 0 {
			st, err := edgeChannelRanges(ctx, g, opts.Calib, ids, opts.Batches, opts.Threads, opts.Kernels)
			if err != nil {
				return nil, nil, err
			}
			for _, id := range ids {
				if lo, hi, ok := st.Range(id); ok {
					actRanges[id] = [2][]float32{lo, hi}
				}
			}
		}
	}
	st := newWeightState(g)
	grow := map[ir.ValueID]int{}
	for i := range edges {
		e := &edges[i]
		budget := int(math.Floor(opts.Ratio*float64(e.channels) + 1e-9))
		if budget == 0 {
			continue
		}
		var act *[2][]float32
		if r, ok := actRanges[edgeActValue(e)]; ok && e.homogeneous && len(r[0]) == e.channels {
			act = &r
		}
		layer, added, params := splitEdge(g, st, e, budget, act, opts)
		if added == 0 {
			continue
		}
		rep.Split = append(rep.Split, layer)
		rep.ChannelsAdded += added
		rep.ParamsAdded += params
		for j, id := range e.vals {
			if e.flatten >= 0 && j >= e.flatten {
				grow[id] += added * e.spatial
			} else {
				grow[id] += added
			}
		}
	}
	if rep.ParamsBefore > 0 {
		rep.SizeCost = float64(rep.ParamsAdded) / float64(rep.ParamsBefore)
	}
	if rep.ChannelsAdded == 0 {
		return g, rep, nil
	}
	return st.apply(grow), rep, nil
}

// edgeActValue is the value whose per-channel range an edge's activation
// splits act on: L's input, or the value before the Flatten.
func edgeActValue(e *edge) ir.ValueID {
	if e.flatten > 0 {
		return e.vals[e.flatten-1]
	}
	return e.vals[len(e.vals)-1]
}

// weightCount counts the elements of float constants read by Conv,
// ConvTranspose, Gemm and MatMul nodes.
func weightCount(g *ir.Graph) int64 {
	seen := map[ir.ValueID]bool{}
	var n int64
	for i := range g.Nodes {
		nd := &g.Nodes[i]
		switch nd.Op {
		case "Conv", "ConvTranspose", "Gemm", "MatMul":
		default:
			continue
		}
		for _, id := range nd.Inputs {
			if t := constOf(g, id); t != nil && !seen[id] {
				seen[id] = true
				n += int64(t.Len())
			}
		}
	}
	return n
}

// splitEdge splits up to budget channels of one edge and returns the
// report entry, the channels added and the parameters added.
func splitEdge(g *ir.Graph, st *weightState, e *edge, budget int, act *[2][]float32, opts OCSOptions) (OCSLayer, int, int64) {
	pw, pb, pl := st.pViews(g, e)
	lv, ll := st.lView(g, e)
	layer := OCSLayer{Producer: nodeName(g, e.p), Consumer: nodeName(g, e.l), Channels: e.channels}
	// R[o][c]: max |w| of L's output channel o over input channel c (per
	// tensor: a single row).
	nOut := ll.outChannels
	rows := 1
	if opts.PerChannel {
		rows = nOut
	}
	R := make([][]float64, rows)
	for o := range R {
		R[o] = make([]float64, lv.channels())
	}
	outerIsOut := ll.outAxis < ll.inAxis
	for o := range lv.outer {
		for c := range lv.c {
			base := (o*lv.c + c) * lv.inner
			for i, x := range lv.data[base : base+lv.inner] {
				r := 0
				if opts.PerChannel {
					if outerIsOut {
						r = o
					} else {
						r = i % nOut
					}
				}
				R[r][c] = max(R[r][c], math.Abs(float64(x)))
			}
		}
	}
	var lo, hi []float64
	if act != nil {
		for c := range act[0] {
			lo = append(lo, float64(act[0][c]))
			hi = append(hi, float64(act[1][c]))
		}
		layer.ActRange[0] = actRangeOf(lo, hi)
	}
	layer.WeightRange[0] = weightProxy(R)
	added := 0
	var params int64
	colSize := int64(lv.outer * lv.inner)
	rowSize := int64(pw.outer * pw.inner)
	for added < budget {
		bestC, bestGain, bestAct := -1, 0.0, false
		// Weight splits.
		colMax := make([]float64, len(R[0]))
		for c := range colMax {
			for o := range R {
				colMax[c] = max(colMax[c], R[o][c])
			}
		}
		wMed := median(colMax)
		base := weightProxy(R)
		for c := range colMax {
			if !(colMax[c] > opts.OutlierFactor*wMed) || base == 0 {
				continue
			}
			if gain := (base - weightProxyHalved(R, c)) / base; gain > bestGain {
				bestC, bestGain, bestAct = c, gain, false
			}
		}
		// Activation splits.
		if lo != nil {
			spans := make([]float64, len(lo))
			for c := range lo {
				spans[c] = hi[c] - lo[c]
			}
			aMed := median(spans)
			ar := actRangeOf(lo, hi)
			for c := range lo {
				if !(spans[c] > opts.OutlierFactor*aMed) || ar == 0 {
					continue
				}
				l2, h2 := lo[c], hi[c]
				lo[c], hi[c] = l2/2, h2/2
				gain := (ar - actRangeOf(lo, hi)) / ar
				lo[c], hi[c] = l2, h2
				if gain > bestGain {
					bestC, bestGain, bestAct = c, gain, true
				}
			}
		}
		if bestC < 0 {
			break
		}
		c := bestC
		if bestAct {
			pw.scale(c, 0.5)
			pw.appendCopy(c, 1)
			if pb != nil {
				pb.scale(c, 0.5)
				pb.appendCopy(c, 1)
			}
			lv.appendCopy(c, 1)
			lo[c], hi[c] = lo[c]/2, hi[c]/2
			lo, hi = append(lo, lo[c]), append(hi, hi[c])
			for o := range R {
				R[o] = append(R[o], R[o][c])
			}
			layer.ActivationSplits++
		} else {
			lv.scale(c, 0.5)
			lv.appendCopy(c, 1)
			pw.appendCopy(c, 1)
			if pb != nil {
				pb.appendCopy(c, 1)
			}
			for o := range R {
				R[o][c] /= 2
				R[o] = append(R[o], R[o][c])
			}
			if lo != nil {
				lo, hi = append(lo, lo[c]), append(hi, hi[c])
			}
			layer.WeightSplits++
		}
		added++
		params += colSize + rowSize
		if pb != nil {
			params++
		}
	}
	layer.WeightRange[1] = weightProxy(R)
	if lo != nil {
		layer.ActRange[1] = actRangeOf(lo, hi)
	}
	if added > 0 {
		st.put(pl.w, pw)
		st.put(pl.b, pb)
		st.put(ll.w, lv)
	}
	return layer, added, params
}

// weightProxy is the sum over rows of the row maxima of R: the sum of the
// per-channel weight ranges (or the per-tensor range for one row).
func weightProxy(R [][]float64) float64 {
	var s float64
	for _, row := range R {
		m := 0.0
		for _, v := range row {
			m = max(m, v)
		}
		s += m
	}
	return s
}

// weightProxyHalved is weightProxy with column c halved.
func weightProxyHalved(R [][]float64, c int) float64 {
	var s float64
	for _, row := range R {
		m := 0.0
		for j, v := range row {
			if j == c {
				v /= 2
			}
			m = max(m, v)
		}
		s += m
	}
	return s
}

// actRangeOf is the per-tensor range [min lo, max hi] widened to include
// 0, as the activation quantizer sees it.
func actRangeOf(lo, hi []float64) float64 {
	l, h := 0.0, 0.0
	for c := range lo {
		l, h = min(l, lo[c]), max(h, hi[c])
	}
	return h - l
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
