package ptq

import (
	"context"
	"fmt"
	"math"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// BiasOptions configure CorrectBias.
type BiasOptions struct {
	// Batches of calibration data per pass (0: one epoch).
	Batches int
	// Threads and Kernels configure the sessions.
	Threads int
	Kernels string
	// Progress is called after each batch.
	Progress func(done, total int, note string)
}

// BiasReport says what CorrectBias did.
type BiasReport struct {
	// Layers is the number of layers corrected, Levels the number of
	// measure-and-correct passes (one per depth level of corrected layers).
	Layers int `json:"layers"`
	Levels int `json:"levels"`
	// MeanAbsError is the mean over corrected layers and channels of
	// |E[y_fp32] - E[y_int8]| before and after the correction.
	MeanAbsError [2]float64 `json:"mean_abs_error"`
}

// biasTargets returns the outputs of the plan's quantized layers that have
// a Bias input (Conv, ConvTranspose, Gemm), with their channel axis (1):
// calibration records their FP32 per-channel means.
func biasTargets(p *Plan) map[ir.ValueID]int {
	out := map[ir.ValueID]int{}
	for i, np := range p.Nodes {
		if !np.Quantized {
			continue
		}
		for _, in := range np.Mark.Inputs {
			if in.Role == Bias {
				if y := p.Graph.Nodes[i].Outputs[0]; y != ir.NoValue {
					out[y] = 1
				}
			}
		}
	}
	return out
}

// biasSite is a correctable bias in the QDQ graph.
type biasSite struct {
	node      int        // the layer's node in the QDQ graph
	fpID, qID ir.ValueID // the layer output in the prepared and the QDQ graph
	bias      ir.ValueID // the constant to rewrite (int32 behind a DQ, or float32)
	scale     []float32  // int32 bias: per-element scales
}

// CorrectBias applies empirical bias correction (Nagel et al. 2019) to the
// QDQ graph res.Graph in place (its constants are replaced by new
// tensors): for each quantized layer with a bias, the per-channel mean of
// its output over the calibration data is measured in the FP32 graph
// (stats.Means, from calibration) and in the QDQ graph, and the difference
// E[y_fp32] - E[y_quant] (the mean error quantization causes) is added to
// the bias. int32 biases stay int32 with their scale (the correction is
// rounded to the bias step).
//
// Layers are corrected level by level in topological order: a layer's
// error is measured only after every corrected layer upstream of it was
// corrected, since part of its error is inherited and correcting both
// would count it twice (correcting all layers at once overshoots deep
// layers). That costs one pass over the calibration batches per level,
// plus one before and one after to report the error. fp is the prepared
// FP32 graph res was made from.
func CorrectBias(ctx context.Context, fp *ir.Graph, res *Result, stats *calib.Stats, r dataset.Reader, opts BiasOptions) (*BiasReport, error) {
	q := res.Graph
	prod := q.Producers()
	var sites []biasSite
	for id, m := range stats.Means {
		if m.Means() == nil || int(id) >= len(res.IDs) || res.IDs[id] == ir.NoValue {
			continue
		}
		qid := res.IDs[id]
		pi := prod[qid]
		if pi < 0 {
			continue
		}
		n := &q.Nodes[pi]
		b := n.Input(2)
		if b == ir.NoValue {
			continue
		}
		s := biasSite{fpID: id, qID: qid, node: pi}
		if bp := prod[b]; bp >= 0 && q.Nodes[bp].Op == "DequantizeLinear" {
			dq := &q.Nodes[bp]
			qc, sc := q.Values[dq.Input(0)].Const, constScale(q, prod, dq.Input(1))
			if qc == nil || sc == nil || qc.DType != tensor.Int32 {
				continue
			}
			s.bias = dq.Input(0)
			s.scale = sc
		} else if c := constOf(q, b); c != nil {
			s.bias = b
		} else {
			continue
		}
		sites = append(sites, s)
	}
	rep := &BiasReport{Layers: len(sites)}
	if len(sites) == 0 {
		return rep, nil
	}
	levels := siteLevels(q, sites)
	rep.Levels = len(levels)
	measure := func(ss []biasSite, note string) (map[ir.ValueID][]float64, error) {
		if err := r.Seek(dataset.Position{}); err != nil {
			return nil, err
		}
		means := map[ir.ValueID]int{}
		for _, s := range ss {
			means[s.qID] = 1
		}
		var progress func(int, int, string)
		if opts.Progress != nil {
			progress = func(d, t int, _ string) { opts.Progress(d, t, note) }
		}
		qs, err := calib.Collect(ctx, q, r, calib.Spec{Values: []ir.ValueID{}, ChannelMeans: means,
			Batches: opts.Batches, Threads: opts.Threads, Kernels: opts.Kernels, Progress: progress})
		if err != nil {
			return nil, fmt.Errorf("ptq: bias correction: %w", err)
		}
		out := map[ir.ValueID][]float64{}
		for _, s := range ss {
			want, got := stats.Means[s.fpID].Means(), qs.Means[s.qID].Means()
			if len(want) != len(got) {
				return nil, fmt.Errorf("ptq: bias correction: value %q has %d channels in FP32 and %d quantized", q.Values[s.qID].Name, len(want), len(got))
			}
			d := make([]float64, len(want))
			for c := range want {
				d[c] = want[c] - got[c]
			}
			out[s.qID] = d
		}
		return out, nil
	}
	meanAbs := func(diffs map[ir.ValueID][]float64) float64 {
		var sum float64
		n := 0
		for _, d := range diffs {
			for _, v := range d {
				sum += math.Abs(v)
				n++
			}
		}
		return sum / float64(max(n, 1))
	}
	before, err := measure(sites, "bias correction: measure")
	if err != nil {
		return nil, err
	}
	rep.MeanAbsError[0] = meanAbs(before)
	for li, lvl := range levels {
		diffs := before
		if li > 0 {
			if diffs, err = measure(lvl, fmt.Sprintf("bias correction %d/%d", li+1, len(levels))); err != nil {
				return nil, err
			}
		}
		for _, s := range lvl {
			if err := applyBiasShift(q, s, diffs[s.qID]); err != nil {
				return nil, err
			}
		}
	}
	after, err := measure(sites, "bias correction: check")
	if err != nil {
		return nil, err
	}
	rep.MeanAbsError[1] = meanAbs(after)
	return rep, nil
}

// siteLevels groups sites by depth: level 0 has no corrected layer
// upstream, level k+1 only sites whose nearest corrected ancestors are at
// most at level k. Sites within a level are independent of each other.
func siteLevels(q *ir.Graph, sites []biasSite) [][]biasSite {
	order, _ := q.Topo()
	prod := q.Producers()
	siteAt := map[int]int{} // node -> site index
	for i, s := range sites {
		siteAt[s.node] = i
	}
	// depth[n]: the level the next site downstream of node n must exceed.
	depth := make([]int, len(q.Nodes))
	level := make([]int, len(sites))
	for _, ni := range order {
		d := 0 // 1 + the highest site level upstream
		for _, in := range q.Nodes[ni].Inputs {
			if in == ir.NoValue || prod[in] < 0 {
				continue
			}
			d = max(d, depth[prod[in]])
		}
		if si, ok := siteAt[ni]; ok {
			level[si] = d
			depth[ni] = d + 1
		} else {
			depth[ni] = d
		}
	}
	var out [][]biasSite
	for i, s := range sites {
		for len(out) <= level[i] {
			out = append(out, nil)
		}
		out[level[i]] = append(out[level[i]], s)
	}
	return out
}

// applyBiasShift adds diff to a bias constant (new tensor).
func applyBiasShift(q *ir.Graph, s biasSite, diff []float64) error {
	v := &q.Values[s.bias]
	old := v.Const
	if old.Len() != len(diff) {
		return fmt.Errorf("ptq: bias correction: bias %q has %d elements for %d channels", v.Name, old.Len(), len(diff))
	}
	switch old.DType {
	case tensor.Int32:
		src := old.I32()
		dst := make([]int32, len(src))
		for i, b := range src {
			sc := s.scale[0]
			if len(s.scale) > 1 {
				sc = s.scale[i]
			}
			nb := math.RoundToEven(float64(b) + diff[i]/float64(sc))
			dst[i] = int32(max(math.MinInt32, min(math.MaxInt32, nb)))
		}
		v.Const = &tensor.Tensor{DType: tensor.Int32, Shape: old.Shape.Clone(), Data: dst}
	case tensor.Float32:
		src := old.F32()
		dst := make([]float32, len(src))
		for i, b := range src {
			dst[i] = float32(float64(b) + diff[i])
		}
		v.Const = tensor.FromFloat32(old.Shape.Clone(), dst)
	default:
		return fmt.Errorf("ptq: bias correction: bias %q is %v", v.Name, old.DType)
	}
	return nil
}

// constScale returns a float32 scale that is a constant or the product of
// two constants (the rewriter's bias scale s_in·s_w, a Mul node), nil
// otherwise.
func constScale(g *ir.Graph, prod []int, id ir.ValueID) []float32 {
	if c := constOf(g, id); c != nil {
		if c.DType != tensor.Float32 {
			return nil
		}
		return c.F32()
	}
	pi := prod[id]
	if pi < 0 || g.Nodes[pi].Op != "Mul" || len(g.Nodes[pi].Inputs) != 2 {
		return nil
	}
	a, b := constOf(g, g.Nodes[pi].Inputs[0]), constOf(g, g.Nodes[pi].Inputs[1])
	if a == nil || b == nil || a.DType != tensor.Float32 || b.DType != tensor.Float32 || (a.Len() != 1 && b.Len() != 1) {
		return nil
	}
	if a.Len() != 1 {
		a, b = b, a
	}
	s := a.F32()[0]
	out := make([]float32, b.Len())
	for i, v := range b.F32() {
		out[i] = s * v
	}
	return out
}
