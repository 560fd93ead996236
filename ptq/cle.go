package ptq

import (
	"context"
	"fmt"
	"math"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
)

// CLEOptions configure Equalize.
type CLEOptions struct {
	// Iterations caps the passes over all layer pairs (default 20).
	Iterations int
	// Tolerance stops early when no scale in a pass moves further than
	// this from 1 (default 1e-3).
	Tolerance float64
	// Calib, when set, is calibration data for pairs joined through a
	// ReLU6 (Clip with lower bound 0 and a finite upper bound): one pass
	// over Batches batches (0: one epoch) measures the per-channel maximum
	// of the Clip's input, which bounds the scales (see Equalize). Without
	// it such pairs are skipped.
	Calib   dataset.Reader
	Batches int
	Threads int
	Kernels string
}

// CLEReport says what Equalize did.
type CLEReport struct {
	// Pairs lists the equalized layer pairs as "producer -> consumer";
	// pairs joined through a ReLU6 end in " (clip)".
	Pairs []string `json:"pairs"`
	// ClipPairs counts the pairs joined through a ReLU6, ClipSaturated
	// the channels of those pairs left unscaled because the calibration
	// data reaches the Clip's upper bound, ClipSkipped the ReLU6 pairs not
	// equalized for lack of calibration data.
	ClipPairs     int `json:"clip_pairs,omitempty"`
	ClipSaturated int `json:"clip_saturated_channels,omitempty"`
	ClipSkipped   int `json:"clip_skipped,omitempty"`
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
// Flatten, identity), channel c of P's output is divided by s_c and L's
// matching input weights are multiplied by it, with
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
// ReLU6 (a Clip with lower bound 0 and upper bound h, the other chain ops
// homogeneous) is not homogeneous: scaling through it gives
// s·Clip(0, h)(x/s) = Clip(0, s·h)(x), a per-channel bound ONNX's Clip
// cannot express. The rule applied when opts.Calib is set: let m_c be the
// largest value of channel c entering the Clip on the calibration data
// and M the largest over all channels. A channel with m_c >= h (the data
// saturates it) keeps s_c = 1; any other channel's scale is raised to at
// least m_c / min(h, M) (tracking the scales already applied), so the
// moved bound s·h stays above every calibrated input and no channel grows
// beyond the tensor's calibrated range. The function is then unchanged for
// every input up to m_c, which includes the whole calibration set; an
// input above m_c (never seen in calibration) can differ: it is clipped
// at s_c·h instead of h. Without calibration data ReLU6 pairs are skipped
// (ClipSkipped). Run does not pass calibration data: on the models
// measured (TestCLEThroughReLU6, an untrained MobileNetV2) the bounded
// scales lowered the SQNR, so --cle equalizes homogeneous pairs only.
//
// The returned graph keeps every ValueID; changed weights are new tensors.
func Equalize(g *ir.Graph, opts CLEOptions) (*ir.Graph, *CLEReport, error) {
	return EqualizeContext(context.Background(), g, opts)
}

// EqualizeContext is Equalize with a context for the calibration pass.
func EqualizeContext(ctx context.Context, g *ir.Graph, opts CLEOptions) (*ir.Graph, *CLEReport, error) {
	if opts.Iterations <= 0 {
		opts.Iterations = 20
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 1e-3
	}
	var edges []edge
	rep := &CLEReport{}
	var clipEdges []edge
	for _, e := range findEdges(g) {
		switch {
		case e.homogeneous:
			edges = append(edges, e)
			rep.Pairs = append(rep.Pairs, fmt.Sprintf("%s -> %s", nodeName(g, e.p), nodeName(g, e.l)))
		case e.clipIn != ir.NoValue:
			clipEdges = append(clipEdges, e)
		}
	}
	// bound[i][c]: the current largest input of channel c to edge i's
	// Clip, divided by the Clip's bound (nil for homogeneous edges).
	var bound [][]float64
	if len(clipEdges) > 0 && opts.Calib == nil {
		rep.ClipSkipped = len(clipEdges)
	} else if len(clipEdges) > 0 {
		ids := make([]ir.ValueID, len(clipEdges))
		for i, e := range clipEdges {
			ids[i] = e.clipIn
		}
		st, err := edgeChannelRanges(ctx, g, opts.Calib, ids, opts.Batches, opts.Threads, opts.Kernels)
		if err != nil {
			return nil, nil, fmt.Errorf("ptq: CLE calibration: %w", err)
		}
		bound = make([][]float64, len(edges))
		for _, e := range clipEdges {
			_, hi, ok := st.Range(e.clipIn)
			if !ok || len(hi) != e.channels {
				rep.ClipSkipped++
				continue
			}
			// The cap is the Clip's bound, or the tensor's calibrated
			// maximum when that is lower: growing a channel beyond the
			// largest one would widen the per-tensor activation range.
			top := 0.0
			for _, m := range hi {
				top = max(top, float64(m))
			}
			limit := min(float64(e.clipHi), top)
			b := make([]float64, e.channels)
			for c, m := range hi {
				if float64(m) >= float64(e.clipHi) {
					b[c] = -1 // saturated: never scaled
					rep.ClipSaturated++
				} else if limit > 0 {
					b[c] = float64(m) / limit
				}
			}
			edges = append(edges, e)
			bound = append(bound, b)
			rep.ClipPairs++
			rep.Pairs = append(rep.Pairs, fmt.Sprintf("%s -> %s (clip)", nodeName(g, e.p), nodeName(g, e.l)))
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
			var b []float64
			if i < len(bound) {
				b = bound[i]
			}
			for c := 0; c < e.channels; c++ {
				r1, r2 := float64(pw.absMax(c)), float64(lv.absMax(c))
				if r1 == 0 || r2 == 0 {
					continue
				}
				s := math.Sqrt(r1 / r2)
				if !(s > 0) || math.IsInf(s, 0) {
					continue
				}
				if b != nil {
					if b[c] < 0 {
						continue // the data reaches the Clip's bound
					}
					s = max(s, b[c]) // keep s·cap above every calibrated input
					b[c] /= s
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
