package int8bench

import (
	"strings"

	"github.com/goslim/goslim/infer"
)

// OpNote is a node that stayed in FP32 inside a quantized pattern, and why.
type OpNote struct {
	Node   string `json:"node"`
	Op     string `json:"op"`
	Reason string `json:"reason"`
}

// Lowering summarizes a session's kernel records for INT8.
type Lowering struct {
	// Integer counts the nodes that run on 8-bit data (internal QLinear
	// ops and the ONNX ops lowered to 8-bit data); Float the other compute
	// nodes that run (not counting QuantizeLinear and DequantizeLinear,
	// listed apart).
	Integer, Float int
	// ChannelsLast counts the integer nodes that read or write
	// channels-last (NHWC) activations (the kernel record says "NHWC").
	ChannelsLast        int
	Quantize, Dequant   int
	Quantized           bool // the graph has QuantizeLinear or DequantizeLinear nodes
	FP32                []OpNote
	IntegerOps, FloatOp map[string]int
}

// Summarize reads a session's per-node kernel records.
func Summarize(s *infer.Session) Lowering {
	l := Lowering{IntegerOps: map[string]int{}, FloatOp: map[string]int{}}
	for _, r := range s.Kernels() {
		if r.Note != "" {
			l.FP32 = append(l.FP32, OpNote{Node: strings.TrimSuffix(r.Label, " ("+r.Op+")"), Op: r.Op,
				Reason: strings.TrimPrefix(r.Note, "stays FP32: ")})
		}
		switch {
		case r.Op == "QuantizeLinear" || r.Op == "DequantizeLinear":
			l.Quantized = true
			if r.FusedInto >= 0 || r.Kernel == "constant" {
				continue
			}
			if r.Op == "QuantizeLinear" {
				l.Quantize++
			} else {
				l.Dequant++
			}
		case r.FusedInto >= 0 || r.Kernel == "constant":
		case strings.HasPrefix(r.Fused, infer.FusedDomain+".Q") || strings.HasPrefix(r.Fused, "int8 "):
			l.Integer++
			if strings.Contains(r.Kernel, "NHWC") {
				l.ChannelsLast++
			}
			l.IntegerOps[strings.TrimPrefix(strings.TrimPrefix(r.Fused, infer.FusedDomain+"."), "int8 ")]++
		default:
			l.Float++
			l.FloatOp[r.Op]++
		}
	}
	return l
}
