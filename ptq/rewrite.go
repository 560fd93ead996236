package ptq

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// Range is the calibrated real range of one activation value.
type Range struct {
	Min, Max float32
}

// MetaQuantization is the metadata key (ir.Graph.Meta) under which the
// rewriter records the quantization provenance as JSON.
const MetaQuantization = "goslim.quantization"

// Result is a quantized graph and what the rewriter did.
type Result struct {
	// Graph is the QDQ graph.
	Graph *ir.Graph
	// IDs maps every ValueID of the planned graph to its ID in Graph, or
	// ir.NoValue when the value was dropped (float weights replaced by
	// their int8 form).
	IDs []ir.ValueID
	// Activations holds the parameters of each plan group (Plan.Groups).
	Activations []quant.Params
	// Weights maps a node index of the planned graph to the parameters of
	// its weight input.
	Weights map[int]quant.Params
	// FloatBiases lists the nodes whose bias stayed float32 (it did not
	// fit int32 with scale s_in·s_w), by label.
	FloatBiases []string
}

// GroupParams computes the activation parameters of every plan group from
// the calibrated ranges: a group's range is the union of its members'
// ranges; constant members contribute their own data's range. A
// non-constant member without a range is an error, and so is a NaN or
// infinite range (a broken model or broken calibration data).
func GroupParams(p *Plan, ranges map[ir.ValueID]Range, cfg *Config) ([]quant.Params, error) {
	g := p.Graph
	scheme := cfg.ActivationScheme()
	out := make([]quant.Params, len(p.Groups))
	for gi, grp := range p.Groups {
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, id := range grp {
			v := &g.Values[id]
			var r Range
			if v.Const != nil && !g.IsInput(id) {
				mn, mx, ok := tensorRange(v.Const)
				if !ok {
					return nil, fmt.Errorf("ptq: constant %q has no finite float32 range", v.Name)
				}
				r = Range{mn, mx}
			} else {
				var ok bool
				r, ok = ranges[id]
				if !ok {
					return nil, fmt.Errorf("ptq: no calibration range for value %q", v.Name)
				}
			}
			if !finite(float64(r.Min)) || !finite(float64(r.Max)) || r.Min > r.Max {
				return nil, fmt.Errorf("ptq: value %q has calibrated range [%g, %g]; the model or the calibration data produce NaN or infinite activations", v.Name, r.Min, r.Max)
			}
			lo, hi = min(lo, r.Min), max(hi, r.Max)
		}
		prm, err := scheme.ParamsFor([]float32{lo}, []float32{hi})
		if err != nil {
			return nil, fmt.Errorf("ptq: value %q: %w", g.Values[grp[0]].Name, err)
		}
		out[gi] = prm
	}
	return out, nil
}

// tensorRange returns the min and max of a float32 tensor (ok false for
// other dtypes, empty tensors and non-finite data).
func tensorRange(t *tensor.Tensor) (lo, hi float32, ok bool) {
	if t.DType != tensor.Float32 || t.Len() == 0 {
		return 0, 0, false
	}
	d := t.F32()
	lo, hi = d[0], d[0]
	for _, v := range d {
		if v != v || math.IsInf(float64(v), 0) {
			return 0, 0, false
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi, true
}

// channelRanges returns per-channel min and max of a float32 tensor along
// axis (one channel for per-tensor schemes).
func channelRanges(t *tensor.Tensor, s quant.Scheme) (mins, maxs []float32, err error) {
	if t.DType != tensor.Float32 {
		return nil, nil, fmt.Errorf("weight is %v, want float32", t.DType)
	}
	c, inner := 1, max(t.Len(), 1)
	if s.PerChannel {
		if s.Axis < 0 || s.Axis >= t.Rank() {
			return nil, nil, fmt.Errorf("channel axis %d out of range for shape %v", s.Axis, t.Shape)
		}
		p := quant.Params{Scheme: s, Scale: make([]float32, t.Shape[s.Axis])}
		if c, inner, err = p.Channels(t.Shape); err != nil {
			return nil, nil, err
		}
	}
	mins, maxs = make([]float32, c), make([]float32, c)
	for i := range mins {
		mins[i], maxs[i] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for e, v := range t.F32() {
		if v != v || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("weight holds %g", v)
		}
		ch := (e / inner) % c
		mins[ch], maxs[ch] = min(mins[ch], v), max(maxs[ch], v)
	}
	for i := range mins {
		if mins[i] > maxs[i] { // empty channel
			mins[i], maxs[i] = 0, 0
		}
	}
	return mins, maxs, nil
}

// WeightParams returns the parameters for a weight tensor under scheme s.
func WeightParams(w *tensor.Tensor, s quant.Scheme) (quant.Params, error) {
	mins, maxs, err := channelRanges(w, s)
	if err != nil {
		return quant.Params{}, err
	}
	return s.ParamsFor(mins, maxs)
}

// rewriter builds the QDQ graph.
type rewriter struct {
	src   *ir.Graph
	g     *ir.Graph
	names map[string]bool
}

func (r *rewriter) unique(base string) string {
	name := base
	for i := 2; r.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	r.names[name] = true
	return name
}

func (r *rewriter) addConst(name string, t *tensor.Tensor) ir.ValueID {
	return r.g.AddValue(ir.Value{Name: r.unique(name), Const: t,
		Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}})
}

// addQDQNode appends a QuantizeLinear or DequantizeLinear node and returns
// its output.
func (r *rewriter) addQDQNode(op, base string, x, scale, zp ir.ValueID, outType ir.Type, axis int, perAxis bool) ir.ValueID {
	y := r.g.AddValue(ir.Value{Name: r.unique(base), Type: outType})
	var attrs ir.Attrs
	if perAxis {
		attrs = ir.Attrs{ir.IntAttr("axis", int64(axis))}
	}
	ins := []ir.ValueID{x, scale, zp}
	if zp == ir.NoValue {
		ins = ins[:2]
	}
	r.g.AddNode(ir.Node{Op: op, Name: r.unique(strings.ToUpper(base)), Inputs: ins,
		Outputs: []ir.ValueID{y}, Attrs: attrs})
	return y
}

// Quantize rewrites the planned graph into QDQ form with the given
// activation parameters (one per plan group, see GroupParams):
//
//   - each quantized activation x gets x -> QuantizeLinear -> DequantizeLinear
//     -> x_dq, and every reader of x (other than that QuantizeLinear) reads
//     x_dq; a constant activation (a Concat input) is stored quantized
//     with a DequantizeLinear;
//   - each Weight input is stored as an int8 initializer with per-channel
//     (axis attribute) or per-tensor scales feeding a DequantizeLinear (the
//     zero point input is omitted when it is 0, ONNX's default);
//   - each Bias input is stored as int32 with scale s_in·s_w[c] and zero
//     point 0 (omitted); when it does not fit int32 it stays float32
//     (Result.FloatBiases); per-channel bias scales are not stored but
//     computed by a Mul node (named BSi) of the input's scale and the
//     weight scales, which are in the file anyway (ONNX Runtime folds it
//     into a constant before fusing the QDQ group);
//   - names are short, since they repeat in the file and small models
//     would otherwise grow by several percent: for value ID i of the
//     planned graph (activation group k), qi and dqi are the quantized and
//     dequantized values, sk and zk the scale and zero point; weights use
//     wqi, wsi, wzi, wdqi and biases bqi, bsi, bdqi; each node is named
//     after its output in upper case (Qi, DQi, WDQi, BDQi);
//   - a quantized graph output keeps its name on the dequantized value (the
//     float value it replaces gets a "_float" suffix).
//
// ValueIDs of the planned graph are kept until a final dead-code removal,
// which drops the float weights; Result.IDs maps old IDs to new ones. The
// graph's ai.onnx opset must be at least 10, and 13 with per-channel
// weights (see UpgradeOpset). Provenance is stored in Meta under
// MetaQuantization.
func Quantize(p *Plan, acts []quant.Params, cfg *Config) (*Result, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	src := p.Graph
	if len(acts) != len(p.Groups) {
		return nil, fmt.Errorf("ptq: %d activation parameter sets for %d groups", len(acts), len(p.Groups))
	}
	opset := src.Opset("")
	if opset < 10 {
		return nil, fmt.Errorf("ptq: the model imports ai.onnx opset %d; QuantizeLinear/DequantizeLinear need opset 10 or later", opset)
	}
	r := &rewriter{src: src, g: src.Clone(), names: map[string]bool{}}
	for _, v := range src.Values {
		r.names[v.Name] = true
	}
	g := r.g
	nOrig := len(src.Nodes)
	res := &Result{Activations: acts, Weights: map[int]quant.Params{}}

	// Activations.
	dq := make([]ir.ValueID, len(src.Values))
	for id := range dq {
		dq[id] = ir.NoValue
	}
	groupScale := make([]ir.ValueID, len(p.Groups))
	groupZP := make([]ir.ValueID, len(p.Groups))
	for i := range groupScale {
		groupScale[i], groupZP[i] = ir.NoValue, ir.NoValue
	}
	for id := range src.Values {
		gi := p.Group(ir.ValueID(id))
		if gi < 0 {
			continue
		}
		prm := &acts[gi]
		v := src.Values[id]
		if groupScale[gi] == ir.NoValue {
			// One scale and zero point per group, named after its first member.
			groupScale[gi] = r.addConst(fmt.Sprintf("s%d", gi), prm.ScaleTensor())
			groupZP[gi] = r.addConst(fmt.Sprintf("z%d", gi), prm.ZeroPointTensor())
		}
		scale, zp := groupScale[gi], groupZP[gi]
		var q ir.ValueID
		if v.Const != nil && !src.IsInput(ir.ValueID(id)) {
			qt, err := prm.Quantize(v.Const)
			if err != nil {
				return nil, fmt.Errorf("ptq: constant %q: %w", v.Name, err)
			}
			q = r.addConst(fmt.Sprintf("q%d", id), qt)
		} else {
			// The integer value is left untyped: only its DequantizeLinear
			// reads it, and its value_info would cost file size.
			q = r.addQDQNode("QuantizeLinear", fmt.Sprintf("q%d", id), ir.ValueID(id), scale, zp, ir.Type{}, 0, false)
		}
		dType := v.Type
		dType.Shape = append([]ir.Dim(nil), v.Type.Shape...)
		if dType.DType == tensor.Undefined {
			dType.DType = tensor.Float32
		}
		dq[id] = r.addQDQNode("DequantizeLinear", fmt.Sprintf("dq%d", id), q, scale, zp, dType, 0, false)
	}
	for ni := 0; ni < nOrig; ni++ {
		n := &g.Nodes[ni]
		for i, in := range n.Inputs {
			if in != ir.NoValue && dq[in] != ir.NoValue {
				n.Inputs[i] = dq[in]
			}
		}
	}

	// Weights and biases.
	type wkey struct {
		id     ir.ValueID
		scheme quant.Scheme
	}
	weights := map[wkey]ir.ValueID{}
	wscales := map[wkey]ir.ValueID{}
	wparams := map[wkey]quant.Params{}
	for ni := 0; ni < nOrig; ni++ {
		np := &p.Nodes[ni]
		if !np.Quantized {
			continue
		}
		srcNode := &src.Nodes[ni]
		n := &g.Nodes[ni]
		slotParams := map[int]quant.Params{}
		slotScales := map[int]ir.ValueID{}
		for _, in := range np.Mark.Inputs {
			if in.Role != Weight {
				continue
			}
			id := srcNode.Input(in.Slot)
			v := &src.Values[id]
			s := cfg.WeightScheme(srcNode, in.Axis)
			k := wkey{id, s}
			if _, ok := weights[k]; !ok {
				prm, err := WeightParams(v.Const, s)
				if err != nil {
					return nil, fmt.Errorf("ptq: node %s: weight %q: %w", srcNode.Label(), v.Name, err)
				}
				widenForBias(&prm, p, acts, srcNode, np.Mark, in.Slot)
				qt, err := prm.Quantize(v.Const)
				if err != nil {
					return nil, fmt.Errorf("ptq: node %s: weight %q: %w", srcNode.Label(), v.Name, err)
				}
				qid := r.addConst(fmt.Sprintf("wq%d", id), qt)
				scale := r.addConst(fmt.Sprintf("ws%d", id), prm.ScaleTensor())
				zp := ir.NoValue // symmetric int8: zero point 0, the default
				if !zeroInts(prm.ZeroPoint) || prm.Scheme.DType != tensor.Int8 {
					zp = r.addConst(fmt.Sprintf("wz%d", id), prm.ZeroPointTensor())
				}
				wType := ir.Type{DType: tensor.Float32, Ranked: true, Shape: ir.ShapeDims(v.Const.Shape)}
				weights[k] = r.addQDQNode("DequantizeLinear", fmt.Sprintf("wdq%d", id), qid, scale, zp, wType, s.Axis, s.PerChannel)
				wscales[k] = scale
				wparams[k] = prm
			}
			n.Inputs[in.Slot] = weights[k]
			slotParams[in.Slot] = wparams[k]
			slotScales[in.Slot] = wscales[k]
			res.Weights[ni] = wparams[k]
		}
		for _, in := range np.Mark.Inputs {
			if in.Role != Bias {
				continue
			}
			wp, ok := slotParams[in.WeightSlot]
			gi := p.Group(srcNode.Input(in.From))
			if !ok || gi < 0 {
				continue
			}
			bid := srcNode.Input(in.Slot)
			bv := &src.Values[bid]
			q, scales, ok := biasInt32(bv.Const, acts[gi].Scale[0], wp.Scale)
			if !ok {
				res.FloatBiases = append(res.FloatBiases, srcNode.Label())
				continue
			}
			qid := r.addConst(fmt.Sprintf("bq%d", bid), q)
			sShape, perAxis := tensor.Shape{len(scales)}, true
			if len(wp.Scale) == 1 { // per-tensor weights: one bias scale
				sShape, scales, perAxis = tensor.Shape{}, scales[:1], false
			}
			var scale ir.ValueID
			if perAxis && len(scales) == len(wp.Scale) {
				// s_in·s_w[c] computed in the graph from the two scales
				// already stored: a float32 product, the same bits as
				// scales, and 4 bytes per channel less in the file.
				scale = r.g.AddValue(ir.Value{Name: r.unique(fmt.Sprintf("bs%d", bid)),
					Type: ir.Type{DType: tensor.Float32, Ranked: true, Shape: ir.ShapeDims(sShape)}})
				r.g.AddNode(ir.Node{Op: "Mul", Name: r.unique(fmt.Sprintf("BS%d", bid)),
					Inputs: []ir.ValueID{groupScale[gi], slotScales[in.WeightSlot]}, Outputs: []ir.ValueID{scale}})
			} else {
				scale = r.addConst(fmt.Sprintf("bs%d", bid), tensor.FromFloat32(sShape, scales))
			}
			bType := ir.Type{DType: tensor.Float32, Ranked: true, Shape: ir.ShapeDims(bv.Const.Shape)}
			n.Inputs[in.Slot] = r.addQDQNode("DequantizeLinear", fmt.Sprintf("bdq%d", bid), qid, scale, ir.NoValue, bType, 0, perAxis)
		}
	}
	perAxis := false
	for i := len(src.Nodes); i < len(g.Nodes); i++ {
		if g.Nodes[i].Attrs.Has("axis") {
			perAxis = true
		}
	}
	if perAxis && opset < 13 {
		return nil, fmt.Errorf("ptq: the model imports ai.onnx opset %d; per-channel (per-axis) DequantizeLinear needs opset 13 or later (use per-tensor weights, or UpgradeOpset)", opset)
	}

	// Graph outputs keep their names on the dequantized values.
	for i, id := range g.Outputs {
		if d := dq[id]; d != ir.NoValue {
			name := g.Values[id].Name
			delete(r.names, name)
			g.Values[id].Name = r.unique(name + "_float")
			g.Values[d].Name = name
			r.names[name] = true
			g.Outputs[i] = d
		}
	}
	if g.Meta == nil {
		g.Meta = map[string]string{}
	} else {
		g.Meta = cloneStrings(g.Meta)
	}
	g.Meta[MetaQuantization] = provenance(cfg)
	out, ids := rewrite.RemoveDead(g)
	res.Graph, res.IDs = out, ids[:len(src.Values)]
	if err := out.Verify(); err != nil {
		return nil, fmt.Errorf("ptq: rewritten graph is invalid (a bug): %w", err)
	}
	return res, nil
}

// biasHeadroom is the largest |bias / scale| widenForBias allows (int32
// with room for the accumulation an integer kernel adds to it).
const biasHeadroom = 1 << 30

// widenForBias raises the scale of weight channels whose bias would not
// fit int32 with scale s_in·s_w: channels with (near-)zero weights but a
// bias, typical of units that weight decay switched off. The channel's
// scale becomes |b| / (s_in·2^30), which costs it weight precision it does
// not have anyway, and keeps the bias exact and integer.
func widenForBias(prm *quant.Params, p *Plan, acts []quant.Params, n *ir.Node, m Mark, weightSlot int) {
	for _, in := range m.Inputs {
		if in.Role != Bias || in.WeightSlot != weightSlot {
			continue
		}
		gi := p.Group(n.Input(in.From))
		b := constOf(p.Graph, n.Input(in.Slot))
		if gi < 0 || b == nil || len(prm.Scale) == 0 || b.Len()%len(prm.Scale) != 0 {
			return
		}
		sIn := float64(acts[gi].Scale[0])
		for i, v := range b.F32() {
			c := i % len(prm.Scale)
			need := math.Abs(float64(v)) / (sIn * biasHeadroom)
			if float64(prm.Scale[c]) < need {
				prm.Scale[c] = float32(need * (1 + 1e-6))
			}
		}
	}
}

// biasInt32 quantizes a float32 bias with scale sIn·sW[i mod len(sW)]
// (per-tensor weights have one scale; a grouped ConvTranspose has M/group
// weight scales for M biases). ok is false when a scale is not a normal
// positive float32 or a bias does not fit int32.
func biasInt32(b *tensor.Tensor, sIn float32, sW []float32) (*tensor.Tensor, []float32, bool) {
	n := b.Len()
	if n == 0 || len(sW) == 0 || n%len(sW) != 0 {
		return nil, nil, false
	}
	scales := make([]float32, n)
	for i := range scales {
		scales[i] = sIn * sW[i%len(sW)]
		if !(scales[i] >= math.SmallestNonzeroFloat32*(1<<23)) || math.IsInf(float64(scales[i]), 0) {
			return nil, nil, false
		}
	}
	q, err := quant.QuantizeBias(b.F32(), scales)
	if err != nil {
		return nil, nil, false
	}
	return &tensor.Tensor{DType: tensor.Int32, Shape: b.Shape.Clone(), Data: q}, scales, true
}

func cloneStrings(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// provenance describes the quantization for the model's metadata.
func provenance(cfg *Config) string {
	// The metadata key names the tool, the file's ops the format, and
	// biases are always int32 with scale s_in·s_w: only the choices are
	// recorded (every byte counts on small models).
	type prov struct {
		Method         string   `json:"method"`
		Weights        string   `json:"weights"`
		Activations    string   `json:"activations"`
		Exclude        []string `json:"exclude,omitempty"`
		OCS            float64  `json:"ocs,omitempty"`
		CLE            bool     `json:"cle,omitempty"`
		BiasCorrection bool     `json:"bias_correction,omitempty"`
	}
	ex := append([]string(nil), cfg.Exclude...)
	for name, l := range cfg.Layers {
		if l.Exclude {
			ex = append(ex, name)
		}
	}
	sort.Strings(ex)
	w := cfg.WeightScheme(&ir.Node{}, 0)
	b, _ := json.Marshal(prov{Method: cfg.Method,
		Weights: w.String(), Activations: cfg.ActivationScheme().String(),
		Exclude: ex, OCS: cfg.OCS, CLE: cfg.CLE,
		BiasCorrection: cfg.BiasCorrection})
	return string(b)
}

func zeroInts(v []int32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
