package int8bench

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// LayerTime is the CPU time per run of one kind of layer.
type LayerTime struct {
	Kind   string  // e.g. "Conv 3x3", "Conv 1x1", "Conv depthwise", "Add", "input QuantizeLinear"
	Count  int     // layers of that kind
	Ms     float64 // CPU ms per run, all layers of the kind
	Share  float64 // fraction of the profiled run time
	Layers []string
}

// Profile runs a QDQ graph's session (one thread, the INT8 lowering on)
// for about d of CPU time and attributes the running thread's CPU time to
// layers through infer.Options.StepDone (no taps, so the session is the
// one that is benchmarked: same lowering, same layouts): a step's time
// goes to the node it computes (a lowered group's head, e.g. the Conv of
// DQ -> Conv -> Q), the graph input's QuantizeLinear to "input
// QuantizeLinear", DequantizeLinear steps feeding graph outputs to
// "output (DequantizeLinear)". It returns the time per layer kind, largest
// first, and the CPU time per run.
func Profile(ctx context.Context, g *ir.Graph, inputs []*tensor.Tensor, kernels string, d time.Duration) ([]LayerTime, float64, error) {
	prod := g.Producers()
	isOut := map[ir.ValueID]bool{}
	for _, o := range g.Outputs {
		isOut[o] = true
	}
	kind := make([]string, len(g.Nodes))
	for ni := range g.Nodes {
		n := &g.Nodes[ni]
		switch {
		case n.Op == "QuantizeLinear" && n.Input(0) != ir.NoValue && prod[n.Input(0)] < 0:
			kind[ni] = "input QuantizeLinear"
		case n.Op == "DequantizeLinear" && len(n.Outputs) == 1 && isOut[n.Outputs[0]]:
			kind[ni] = "output (DequantizeLinear)"
		default:
			kind[ni] = layerKind(g, n)
		}
	}
	acc := map[string]time.Duration{}
	layers := map[string]map[string]bool{}
	var last time.Duration
	done := func(ni int) {
		now := ThreadCPU()
		k := kind[ni]
		acc[k] += now - last
		if layers[k] == nil {
			layers[k] = map[string]bool{}
		}
		layers[k][g.Nodes[ni].Label()] = true
		last = now
	}
	sess, err := infer.NewSession(g, infer.Options{Threads: 1, Kernels: kernels, StepDone: done})
	if err != nil {
		return nil, 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := sess.RunInputs(ctx, inputs); err != nil {
		return nil, 0, err
	}
	clear(acc)
	runs := 0
	start := ThreadCPU()
	for runs < 3 || ThreadCPU()-start < d {
		last = ThreadCPU()
		if _, err := sess.RunInputs(ctx, inputs); err != nil {
			return nil, 0, err
		}
		runs++
	}
	total := float64(ThreadCPU()-start) / float64(runs) / 1e6
	var out []LayerTime
	for k, v := range acc {
		ms := float64(v) / float64(runs) / 1e6
		lt := LayerTime{Kind: k, Count: len(layers[k]), Ms: ms, Share: ms / total}
		for l := range layers[k] {
			lt.Layers = append(lt.Layers, l)
		}
		sort.Strings(lt.Layers)
		out = append(out, lt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ms > out[j].Ms })
	return out, total, nil
}

// layerKind names a layer for the profile: convolutions by shape.
func layerKind(g *ir.Graph, n *ir.Node) string {
	if n.Op != "Conv" {
		return n.Op
	}
	var w *tensor.Tensor
	if id := n.Input(1); id != ir.NoValue {
		if c := g.Values[id].Const; c != nil {
			w = c
		} else if p := g.Producers()[id]; p >= 0 && g.Nodes[p].Input(0) != ir.NoValue {
			w = g.Values[g.Nodes[p].Input(0)].Const
		}
	}
	if w == nil || w.Rank() != 4 {
		return "Conv"
	}
	if grp := n.Attrs.Int("group", 1); grp > 1 && w.Shape[1] == 1 {
		return fmt.Sprintf("Conv depthwise %dx%d", w.Shape[2], w.Shape[3])
	}
	return fmt.Sprintf("Conv %dx%d", w.Shape[2], w.Shape[3])
}
