package ptq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
)

// Options are the inputs of Run that are not configuration: the data, the
// thread budget and a progress callback.
type Options struct {
	// Calib is the calibration data (labels are not needed). Required.
	Calib dataset.Reader
	// Eval is the evaluation data for the accuracy report, --analyze and
	// --max-drop; nil means none (the analysis and search then use the
	// calibration data and measure agreement with FP32 instead of accuracy).
	Eval dataset.Reader
	// EvalBatches limits the evaluation batches (0: one epoch).
	EvalBatches int
	// Threads and Kernels configure every inference session.
	Threads int
	Kernels string
	// Reference, when set, is the FP32 evaluation to compare with (see
	// NewReference): Eval and EvalBatches are then ignored and the FP32
	// model is not evaluated again. It must come from the same model.
	Reference *Reference
	// Progress is called as work advances; note names the phase
	// ("calibrate", "evaluate", "analyze", "search", ...).
	Progress func(done, total int, note string)
}

// NodeStatus names a node left in FP32 and why.
type NodeStatus struct {
	Node   string `json:"node"`
	Op     string `json:"op"`
	Reason string `json:"reason"`
}

// CalibReport describes the calibration run.
type CalibReport struct {
	Method  string  `json:"method"`
	Batches int     `json:"batches"`
	Samples int     `json:"samples"`
	Values  int     `json:"values"`
	Seconds float64 `json:"seconds"`
}

// SizeReport compares the serialized sizes of the FP32 input model and the
// QDQ model.
type SizeReport struct {
	FP32Bytes int64   `json:"fp32_bytes"`
	QDQBytes  int64   `json:"qdq_bytes"`
	Ratio     float64 `json:"ratio"`
}

// Report is what Run did, for humans (cmd prints it) and machines (JSON).
type Report struct {
	Config *Config `json:"config"`
	// Nodes counts the prepared graph's nodes; Quantized those running on
	// quantized tensors; Layers the quantized layers (non-passthrough).
	Nodes     int `json:"nodes"`
	Quantized int `json:"quantized_nodes"`
	Layers    int `json:"quantized_layers"`
	// FP32 lists the nodes that stay FP32 although a rule exists for their
	// op, or that were excluded, with the reason.
	FP32        []NodeStatus `json:"fp32_nodes,omitempty"`
	FloatBiases []string     `json:"float_biases,omitempty"`
	Calibration CalibReport  `json:"calibration"`
	CLE         *CLEReport   `json:"cle,omitempty"`
	OCS         *OCSReport   `json:"ocs,omitempty"`
	BiasCorr    *BiasReport  `json:"bias_correction,omitempty"`
	// FP32Metrics and QuantMetrics evaluate both models (Options.Eval, or
	// the calibration data when only --analyze/--max-drop ask for it);
	// Drop is the top-1 drop in percentage points (against labels, else
	// against FP32's own top-1).
	EvalData     string        `json:"eval_data,omitempty"`
	FP32Metrics  *Metrics      `json:"fp32,omitempty"`
	QuantMetrics *Metrics      `json:"quantized,omitempty"`
	Drop         *float64      `json:"top1_drop_points,omitempty"`
	Sensitivity  []LayerError  `json:"sensitivity,omitempty"`
	Search       *SearchReport `json:"search,omitempty"`
	Size         SizeReport    `json:"size"`
	Seconds      float64       `json:"seconds"`
}

// Outcome is Run's result: the best QDQ model found and the report.
type Outcome struct {
	Graph  *ir.Graph
	Report *Report
	// GateFailed is set when Config.MaxDrop could not be met; Graph is
	// then the model with the smallest drop found.
	GateFailed bool
}

// Run quantizes an FP32 model:
//
//	Prepare (fold BatchNorm, simplify) -> opset upgrade when per-channel
//	-> CLE (Config.CLE) -> OCS (Config.OCS) -> plan (rules mark tensors)
//	-> calibrate (calib.Collect over Options.Calib) -> Quantize (rewriter)
//	-> bias correction (Config.BiasCorrection) -> evaluation, sensitivity
//	analysis (Config.Analyze) and the max-drop search (Config.MaxDrop).
//
// The input graph is not modified.
func Run(ctx context.Context, g *ir.Graph, cfg *Config, opts Options) (*Outcome, error) {
	start := time.Now()
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Calib == nil {
		return nil, errors.New("ptq: calibration data is required")
	}
	rep := &Report{Config: cfg.Clone()}
	fp32Bytes, err := encodedSize(g)
	if err != nil {
		return nil, err
	}
	pg, err := Prepare(g)
	if err != nil {
		return nil, err
	}
	if cfg.PerChannel || anyLayerPerChannel(cfg) {
		if pg, err = UpgradeOpset(pg); err != nil {
			return nil, err
		}
	}
	if cfg.CLE {
		var cr *CLEReport
		if pg, cr, err = Equalize(pg, CLEOptions{}); err != nil {
			return nil, err
		}
		rep.CLE = cr
	}
	if cfg.OCS > 0 {
		var or *OCSReport
		if pg, or, err = SplitOutliers(ctx, pg, OCSOptions{Ratio: cfg.OCS, PerChannel: cfg.PerChannel,
			Calib: opts.Calib, Batches: cfg.Batches, Threads: opts.Threads, Kernels: opts.Kernels}); err != nil {
			return nil, err
		}
		rep.OCS = or
	}
	plan, err := NewPlan(pg, cfg)
	if err != nil {
		return nil, err
	}
	search := cfg.Analyze || cfg.MaxDrop != nil
	observe := plan.Observed()
	if search {
		observe = candidateValues(pg, cfg)
	}
	var means map[ir.ValueID]int
	if cfg.BiasCorrection {
		means = biasTargets(plan)
	}
	t0 := time.Now()
	stats, err := Calibrate(ctx, pg, opts.Calib, cfg, observe, means, opts)
	if err != nil {
		return nil, err
	}
	ranges := StatsRanges(stats)
	rep.Calibration = CalibReport{Method: cfg.Method, Batches: stats.Batches, Samples: stats.Samples,
		Values: len(observe), Seconds: time.Since(t0).Seconds()}

	build := func(c *Config) (*Result, *Plan, error) {
		p, err := NewPlan(pg, c)
		if err != nil {
			return nil, nil, err
		}
		acts, err := GroupParams(p, ranges, c)
		if err != nil {
			return nil, nil, err
		}
		res, err := Quantize(p, acts, c)
		if err != nil {
			return nil, nil, err
		}
		if c.BiasCorrection {
			br, err := CorrectBias(ctx, pg, res, stats, opts.Calib, BiasOptions{Batches: c.Batches,
				Threads: opts.Threads, Kernels: opts.Kernels, Progress: opts.Progress})
			if err != nil {
				return nil, nil, err
			}
			if c == cfg {
				rep.BiasCorr = br
			}
		}
		return res, p, nil
	}
	res, plan, err := build(cfg)
	if err != nil {
		return nil, err
	}
	describePlan(rep, plan, res)
	if rep.Layers == 0 {
		return nil, fmt.Errorf("ptq: no node of the model can be quantized (%s); nothing to do", fp32Summary(rep.FP32))
	}
	out := &Outcome{Graph: res.Graph, Report: rep}

	evalReader := opts.Eval
	if evalReader == nil && search && opts.Reference == nil {
		evalReader = opts.Calib
		rep.EvalData = "calibration data (no --eval given)"
	}
	if evalReader != nil || opts.Reference != nil {
		if opts.Progress != nil {
			opts.Progress(0, 1, "evaluate")
		}
		var ref *refSet
		if opts.Reference != nil {
			ref = opts.Reference.set
		} else if ref, err = newRefSet(ctx, pg, evalReader, opts.EvalBatches, opts.Threads, opts.Kernels); err != nil {
			return nil, err
		}
		fp := ref.fp32
		rep.FP32Metrics = &fp
		qm, err := ref.eval(ctx, res.Graph)
		if err != nil {
			return nil, err
		}
		rep.QuantMetrics = qm
		d := ref.drop(qm)
		rep.Drop = &d
		if search {
			layers, err := analyze(ctx, ref, cfg, build, opts.Progress)
			if err != nil {
				return nil, err
			}
			rep.Sensitivity = layers
		}
		if cfg.MaxDrop != nil {
			best, sr, err := maxDropSearch(ctx, ref, cfg, build, rep.Sensitivity, res, qm, opts.Progress)
			if err != nil {
				return nil, err
			}
			rep.Search = sr
			out.Graph = best.res.Graph
			if best.plan != plan {
				describePlan(rep, best.plan, best.res)
			}
			rep.QuantMetrics = best.metrics
			d := ref.drop(best.metrics)
			rep.Drop = &d
			out.GateFailed = !sr.Reached
		}
	}
	out.Graph = matchValueInfo(out.Graph, g)
	qdqBytes, err := encodedSize(out.Graph)
	if err != nil {
		return nil, err
	}
	rep.Size = SizeReport{FP32Bytes: fp32Bytes, QDQBytes: qdqBytes, Ratio: float64(qdqBytes) / float64(fp32Bytes)}
	rep.Seconds = time.Since(start).Seconds()
	return out, nil
}

func anyLayerPerChannel(cfg *Config) bool {
	for _, l := range cfg.Layers {
		if l.PerChannel != nil && *l.PerChannel {
			return true
		}
	}
	return false
}

// describePlan fills the node counts and the FP32 list.
func describePlan(rep *Report, p *Plan, res *Result) {
	g := p.Graph
	rules := rep.Config.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	rep.Nodes, rep.Quantized, rep.Layers, rep.FP32 = len(g.Nodes), 0, 0, nil
	for i, np := range p.Nodes {
		n := &g.Nodes[i]
		switch {
		case np.Quantized:
			rep.Quantized++
			if np.Layer {
				rep.Layers++
			}
		default:
			if _, ok := rules.Lookup(n.Op); ok || np.Reason != "no rule for op "+n.Op {
				if np.Reason == "input not quantized" && !isComputeOp(n.Op) {
					continue
				}
				rep.FP32 = append(rep.FP32, NodeStatus{Node: n.Name, Op: n.Op, Reason: np.Reason})
			}
		}
	}
	rep.FloatBiases = res.FloatBiases
}

// isComputeOp reports ops that are layers in their own right.
func isComputeOp(op string) bool {
	switch op {
	case "Conv", "ConvTranspose", "Gemm", "MatMul":
		return true
	}
	return false
}

// ObserverConfig returns the calib configuration for cfg's method and
// activation scheme.
func ObserverConfig(cfg *Config) calib.Config {
	c := calib.Config{Scheme: cfg.ActivationScheme(), Percentile: cfg.Percentile}
	switch cfg.Method {
	case MethodMinMax:
		c.Method = calib.MethodMinMax
	case MethodAvg:
		c.Method = calib.MethodMovingAverage
	case MethodPercentile:
		c.Method = calib.MethodPercentile
	case MethodKL:
		c.Method = calib.MethodEntropy
	case MethodMSE:
		c.Method = calib.MethodMSE
	}
	return c
}

// Calibrate runs calib.Collect on g over cfg.Batches batches of r (from
// its start) observing values with cfg's method, plus per-channel means of
// the values in means (value -> channel axis). Graph inputs and outputs
// are always observed with MinMax: clipping methods (percentile, kl, mse)
// trade outliers for resolution inside the network, but clipping the
// input data (e.g. the few bright pixels of an MNIST digit, which the
// entropy search cuts off) or the model's own outputs (logits) only
// distorts them.
func Calibrate(ctx context.Context, g *ir.Graph, r dataset.Reader, cfg *Config, values []ir.ValueID, means map[ir.ValueID]int, opts Options) (*calib.Stats, error) {
	f, err := ObserverConfig(cfg).Factory()
	if err != nil {
		return nil, fmt.Errorf("ptq: %w", err)
	}
	if err := r.Seek(dataset.Position{}); err != nil {
		return nil, fmt.Errorf("ptq: %w", err)
	}
	var progress func(done, total int, note string)
	if opts.Progress != nil {
		progress = func(done, total int, note string) {
			if note == "" {
				note = "calibrate"
			}
			opts.Progress(done, total, note)
		}
	}
	if values == nil {
		values = []ir.ValueID{}
	}
	minmax := func() calib.Observer { return calib.NewMinMax() }
	observer := func(id ir.ValueID) calib.Factory {
		if slicesContains(g.Outputs, id) || g.IsInput(id) {
			return minmax // never clip the model's inputs and outputs
		}
		return f
	}
	return calib.Collect(ctx, g, r, calib.Spec{Values: values,
		Observer: observer, ChannelMeans: means,
		Batches: cfg.Batches, Threads: opts.Threads, Kernels: opts.Kernels, Progress: progress})
}

// StatsRanges converts calibration statistics to per-tensor ranges.
func StatsRanges(st *calib.Stats) map[ir.ValueID]Range {
	out := make(map[ir.ValueID]Range, len(st.Observers))
	for id := range st.Observers {
		lo, hi, ok := st.Range(id)
		if ok && len(lo) == 1 {
			out[id] = Range{lo[0], hi[0]}
		}
	}
	return out
}

// candidateValues returns every non-constant float32 value that any
// selection of layers could quantize: the activation inputs and outputs
// of nodes that have a rule (the sensitivity analysis and the max-drop
// search re-plan with other layer sets on the same statistics).
func candidateValues(g *ir.Graph, cfg *Config) []ir.ValueID {
	rules := cfg.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	seen := make([]bool, len(g.Values))
	rc := &RuleContext{Graph: g, Config: cfg}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		rule, ok := rules.Lookup(n.Op)
		if !ok || (n.Domain != "" && n.Domain != "ai.onnx") {
			continue
		}
		m, _, ok := rule(rc, n)
		if !ok {
			continue
		}
		for _, in := range m.Inputs {
			if id := n.Input(in.Slot); in.Role == Activation && id != ir.NoValue {
				seen[id] = true
			}
		}
		if len(n.Outputs) > 0 && n.Outputs[0] != ir.NoValue {
			seen[n.Outputs[0]] = true
		}
	}
	var ids []ir.ValueID
	for id, s := range seen {
		v := &g.Values[id]
		if s && (v.Const == nil || g.IsInput(ir.ValueID(id))) {
			ids = append(ids, ir.ValueID(id))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// encodedSize returns the size of g serialized as ONNX.
func encodedSize(g *ir.Graph) (int64, error) {
	var w countWriter
	if err := onnx.Encode(&w, g); err != nil {
		return 0, fmt.Errorf("ptq: %w", err)
	}
	return int64(w), nil
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)

// matchValueInfo returns q without static types on intermediate values
// when the source model had none (PyTorch and goslim's own exports carry
// no value_info): Prepare typed every value, and writing those types
// would add a few percent to small models. Graph inputs, outputs and
// constants keep their types; the engine and ONNX Runtime infer the rest.
func matchValueInfo(q, src *ir.Graph) *ir.Graph {
	for id := range src.Values {
		v := &src.Values[id]
		if v.Const == nil && !src.IsInput(ir.ValueID(id)) && !slicesContains(src.Outputs, ir.ValueID(id)) &&
			(v.Type.Ranked || v.Type.DType != 0) {
			return q // the source had value_info: keep ours
		}
	}
	out := q.Clone()
	for id := range out.Values {
		v := &out.Values[id]
		if v.Const == nil && !out.IsInput(ir.ValueID(id)) && !slicesContains(out.Outputs, ir.ValueID(id)) {
			v.Type = ir.Type{}
		}
	}
	return out
}

// fp32Summary lists a few FP32 nodes and their reasons.
func fp32Summary(ns []NodeStatus) string {
	if len(ns) == 0 {
		return "no op has a quantization rule"
	}
	var parts []string
	for i, n := range ns {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ns)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", n.Op, n.Node, n.Reason))
	}
	return strings.Join(parts, "; ")
}
