package ptq

import (
	"context"
	"fmt"
	"sort"
)

// LayerError is the error quantizing one layer alone causes.
type LayerError struct {
	// Node and Op name the layer; Index is its node index in the prepared
	// graph.
	Node  string `json:"node"`
	Op    string `json:"op"`
	Index int    `json:"index"`
	// SQNR of the first output against FP32 (dB); higher is better.
	SQNR float64 `json:"sqnr_db"`
	// Top1 is the accuracy (-1 without labels); Drop the top-1 drop in
	// percentage points (against labels, else against FP32's top-1).
	Top1 float64 `json:"top1"`
	Drop float64 `json:"drop_points"`
}

// SearchStep is one model tried by the max-drop search.
type SearchStep struct {
	FP32Layers []string `json:"fp32_layers"`
	Drop       float64  `json:"drop_points"`
	SQNR       float64  `json:"sqnr_db"`
}

// SearchReport says what the max-drop search did.
type SearchReport struct {
	MaxDrop float64      `json:"max_drop_points"`
	Reached bool         `json:"reached"`
	Steps   []SearchStep `json:"steps"`
	// FP32Layers are the layers the saved model keeps in FP32.
	FP32Layers []string `json:"fp32_layers"`
	// Message explains the outcome in one sentence.
	Message string `json:"message"`
}

// builder quantizes the prepared graph under a config.
type builder func(c *Config) (*Result, *Plan, error)

// analyze quantizes each layer of cfg's plan alone and ranks the layers,
// worst first (largest drop, then lowest SQNR).
func analyze(ctx context.Context, ref *refSet, cfg *Config, build builder, progress func(int, int, string)) ([]LayerError, error) {
	full, err := NewPlan(ref.graph(), cfg)
	if err != nil {
		return nil, err
	}
	layers := full.Layers()
	out := make([]LayerError, 0, len(layers))
	for k, li := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := cfg.Clone()
		c.only = map[int]bool{li: true}
		c.BiasCorrection = false
		res, _, err := build(c)
		if err != nil {
			return nil, fmt.Errorf("ptq: analyzing %s: %w", nodeName(full.Graph, li), err)
		}
		m, err := ref.eval(ctx, res.Graph)
		if err != nil {
			return nil, err
		}
		n := &full.Graph.Nodes[li]
		out = append(out, LayerError{Node: nodeName(full.Graph, li), Op: n.Op, Index: li,
			SQNR: m.SQNR, Top1: m.Top1, Drop: ref.drop(m)})
		if progress != nil {
			progress(k+1, len(layers), "analyze")
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Drop != out[j].Drop {
			return out[i].Drop > out[j].Drop
		}
		return out[i].SQNR < out[j].SQNR
	})
	return out, nil
}

// candidate is a model the search evaluated.
type candidate struct {
	res     *Result
	plan    *Plan
	metrics *Metrics
	drop    float64
	fp32    []string
}

// maxDropSearch leaves the worst layers (by sensitivity) in FP32, one more
// at a time, until the drop is within cfg.MaxDrop, keeping at least one
// layer quantized. It returns the first model that meets the limit, or
// the one with the smallest drop.
func maxDropSearch(ctx context.Context, ref *refSet, cfg *Config, build builder, sens []LayerError, res0 *Result, m0 *Metrics, progress func(int, int, string)) (*candidate, *SearchReport, error) {
	limit := *cfg.MaxDrop
	p0, err := NewPlan(ref.graph(), cfg)
	if err != nil {
		return nil, nil, err
	}
	best := &candidate{res: res0, plan: p0, metrics: m0, drop: ref.drop(m0)}
	sr := &SearchReport{MaxDrop: limit}
	sr.Steps = append(sr.Steps, SearchStep{FP32Layers: []string{}, Drop: best.drop, SQNR: m0.SQNR})
	if best.drop <= limit {
		sr.Reached, sr.FP32Layers = true, []string{}
		sr.Message = fmt.Sprintf("the fully quantized model is within %.2f points (drop %.2f)", limit, best.drop)
		return best, sr, nil
	}
	skip := map[int]bool{}
	var names []string
	// At most all layers but one go back to FP32: a model without a
	// quantized layer is the FP32 model, not an answer.
	for k, l := range sens[:max(len(sens)-1, 0)] {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		skip[l.Index] = true
		names = append(names, l.Node)
		c := cfg.Clone()
		c.skip = cloneSet(skip)
		res, plan, err := build(c)
		if err != nil {
			return nil, nil, err
		}
		m, err := ref.eval(ctx, res.Graph)
		if err != nil {
			return nil, nil, err
		}
		d := ref.drop(m)
		sr.Steps = append(sr.Steps, SearchStep{FP32Layers: append([]string(nil), names...), Drop: d, SQNR: m.SQNR})
		if progress != nil {
			progress(k+1, len(sens)-1, "search")
		}
		if d < best.drop {
			best = &candidate{res: res, plan: plan, metrics: m, drop: d, fp32: append([]string(nil), names...)}
		}
		if d <= limit {
			best = &candidate{res: res, plan: plan, metrics: m, drop: d, fp32: append([]string(nil), names...)}
			sr.Reached = true
			break
		}
	}
	sr.FP32Layers = best.fp32
	if sr.FP32Layers == nil {
		sr.FP32Layers = []string{}
	}
	if sr.Reached {
		sr.Message = fmt.Sprintf("drop %.2f <= %.2f points with %d layer(s) in FP32", best.drop, limit, len(best.fp32))
	} else {
		sr.Message = fmt.Sprintf("cannot reach a drop <= %.2f points: the best model found (saved) drops %.2f with %d layer(s) in FP32", limit, best.drop, len(best.fp32))
	}
	return best, sr, nil
}
