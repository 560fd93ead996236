package ptq

import (
	"fmt"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
)

// Prepare readies an FP32 model for quantization and returns a new graph:
// it refuses models that are already quantized, then runs rewrite.Simplify (shape inference, constant folding, BatchNorm
// folding into the preceding Conv/Gemm, dead-code removal), so BatchNorm
// never stays FP32 between quantized layers. Value IDs change (Simplify
// compacts them); everything after Prepare keys statistics on the
// prepared graph's IDs.
func Prepare(g *ir.Graph) (*ir.Graph, error) {
	if err := checkNotQuantized(g); err != nil {
		return nil, err
	}
	out, err := rewrite.Simplify(g, infer.NodeEvaluator(nil))
	if err != nil {
		return nil, fmt.Errorf("ptq: %w", err)
	}
	return out, nil
}

// upgradeSafe lists ops whose semantics are the same at opsets 11, 12
// and 13 for the attributes and inputs opset 11 allows (bfloat16 support
// and new optional features aside).
var upgradeSafe = map[string]bool{
	"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Sum": true, "Mean": true, "Min": true, "Max": true,
	"Relu": true, "LeakyRelu": true, "PRelu": true, "Sigmoid": true, "HardSigmoid": true, "Tanh": true,
	"Clip": true, "Elu": true, "Selu": true, "Softplus": true, "Exp": true, "Log": true, "Sqrt": true,
	"Pow": true, "Neg": true, "Abs": true, "Floor": true, "Ceil": true, "Erf": true, "Reciprocal": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "GlobalMaxPool": true, "LpPool": true,
	"Flatten": true, "Reshape": true, "Transpose": true, "Concat": true, "Identity": true, "Dropout": true,
	"BatchNormalization": true, "InstanceNormalization": true, "Pad": true, "Resize": true, "Slice": true,
	"Gather": true, "Shape": true, "Size": true, "Constant": true, "ConstantOfShape": true, "Cast": true,
	"Equal": true, "Less": true, "Greater": true, "Where": true, "Expand": true, "Tile": true,
	"ReduceMean": true, "ReduceMax": true, "ReduceMin": true, "ArgMax": true, "ArgMin": true,
	"DepthToSpace": true, "SpaceToDepth": true, "Not": true, "And": true, "Or": true,
}

// UpgradeOpset returns g importing ai.onnx opset 13 when it imports 11 or
// 12 and every node is an op whose semantics did not change up to 13
// (Softmax, LogSoftmax and Hardmax only on rank-2 inputs along the last
// axis, where opset 13's new axis semantics agree). Per-channel
// DequantizeLinear needs opset 13. Models at opset 13 or later are
// returned unchanged; others are an error naming the blocking node.
func UpgradeOpset(g *ir.Graph) (*ir.Graph, error) {
	v := g.Opset("")
	if v >= 13 {
		return g, nil
	}
	if v < 11 {
		return nil, fmt.Errorf("ptq: the model imports ai.onnx opset %d; per-channel quantization needs opset 13 and goslim upgrades only from 11 or 12 (use per-tensor weights, or re-export the model at opset 13)", v)
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		ok := upgradeSafe[n.Op]
		switch n.Op {
		case "Softmax", "LogSoftmax", "Hardmax":
			t := g.Values[n.Input(0)].Type
			axis := n.Attrs.Int("axis", 1)
			ok = t.Ranked && len(t.Shape) == 2 && (axis == 1 || axis == -1)
		case "Resize":
			ok = n.Attrs.Str("coordinate_transformation_mode", "half_pixel") != "tf_half_pixel_for_nn"
		}
		if !ok {
			return nil, fmt.Errorf("ptq: cannot upgrade the model from opset %d to 13 for per-channel quantization: node %s may change meaning (use per-tensor weights, or re-export at opset 13)", v, n.Label())
		}
	}
	out := g.Clone()
	if out.Opsets == nil {
		out.Opsets = map[string]int64{}
	}
	out.Opsets[""] = 13
	if out.IRVersion < 7 {
		out.IRVersion = 7
	}
	return out, nil
}
