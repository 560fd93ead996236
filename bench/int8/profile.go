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
// layers: the time between consecutive QuantizeLinear outputs (the 8-bit
// values between layers, which the lowering never hides) goes to the layer
// that produced the later one. It returns the time per layer kind, largest
// first, and the CPU time per run.
func Profile(ctx context.Context, g *ir.Graph, inputs []*tensor.Tensor, kernels string, d time.Duration) ([]LayerTime, float64, error) {
	prod := g.Producers()
	kind := map[ir.ValueID]string{}
	label := map[ir.ValueID]string{}
	var taps []ir.ValueID
	for _, n := range g.Nodes {
		if n.Op != "QuantizeLinear" {
			continue
		}
		y := n.Outputs[0]
		taps = append(taps, y)
		p := prod[n.Inputs[0]]
		if p < 0 {
			kind[y], label[y] = "input QuantizeLinear", n.Label()
			continue
		}
		pn := &g.Nodes[p]
		if (pn.Op == "Relu" || pn.Op == "Clip") && prod[pn.Inputs[0]] >= 0 {
			pn = &g.Nodes[prod[pn.Inputs[0]]]
		}
		kind[y], label[y] = layerKind(g, pn), pn.Label()
	}
	for _, o := range g.Outputs {
		taps = append(taps, o)
		kind[o], label[o] = "output (DequantizeLinear)", g.Values[o].Name
	}
	acc := map[string]time.Duration{}
	layers := map[string]map[string]bool{}
	var last time.Duration
	tap := func(id ir.ValueID, _ *tensor.Tensor) error {
		now := ThreadCPU()
		k := kind[id]
		acc[k] += now - last
		if layers[k] == nil {
			layers[k] = map[string]bool{}
		}
		layers[k][label[id]] = true
		last = now
		return nil
	}
	sess, err := infer.NewSession(g, infer.Options{Threads: 1, Kernels: kernels, Tap: tap, TapValues: taps})
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
