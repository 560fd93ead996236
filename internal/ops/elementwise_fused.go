package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// ewFusedBinaryBuild builds goslim.FusedBinary, which the session's fusion
// pass emits for Add, Sub, Mul or Div followed by an activation: inputs A
// and B as in the ONNX op, attribute "op" (Add, Sub, Mul, Div) and the
// activation attributes of goslim.FusedConv ("activation" = Relu, Clip,
// HardSwish, LeakyRelu or Sigmoid; "clip_min", "clip_max";
// "activation_alpha"). It computes exactly what the two unfused kernels
// compute at the same tier, applying the activation to each output run
// while it is in cache. float32 only: other static dtypes decline, so the
// session keeps the nodes unfused.
func ewFusedBinaryBuild(info *kernel.Info, vk vec.Kernels) (kernel.Kernel, error) {
	if len(info.Inputs) > 0 && info.Inputs[0].DType != tensor.Float32 {
		return nil, kernel.ErrDecline
	}
	a := info.Attrs()
	var op ewArithOp
	switch a.Str("op", "") {
	case "Add":
		op = ewAdd
	case "Sub":
		op = ewSub
	case "Mul":
		op = ewMul
	case "Div":
		op = ewDiv
	default:
		return nil, info.Errorf("FusedBinary op %q, want Add, Sub, Mul or Div", a.Str("op", ""))
	}
	act, err := ewActRow(a.Str("activation", ""), a.Float("clip_min", float32(math.Inf(-1))),
		a.Float("clip_max", float32(math.Inf(1))), a.Float("activation_alpha", 0.01), vk)
	if err != nil {
		return nil, info.Errorf("%v", err)
	}
	return newEwBinKernel(op, vk, act), nil
}

// ewActRow returns an in-place float32 activation on the vec loops vk, as
// the unfused activation kernels compute it (nil for none).
func ewActRow(name string, lo, hi, alpha float32, vk vec.Kernels) (func(o []float32), error) {
	switch name {
	case "":
		return nil, nil
	case "Relu":
		return func(o []float32) { vk.Relu(o, o) }, nil
	case "Clip":
		return func(o []float32) { vk.Clip(o, o, lo, hi) }, nil
	case "HardSwish":
		return func(o []float32) { vk.HardSwish(o, o) }, nil
	case "LeakyRelu":
		return func(o []float32) { vk.LeakyRelu(o, o, alpha) }, nil
	case "Sigmoid":
		return func(o []float32) { vk.Sigmoid(o, o) }, nil
	}
	return nil, errUnknownActivation(name)
}

type errUnknownActivation string

func (e errUnknownActivation) Error() string {
	return "unknown activation " + string(e) + " (want Relu, Clip, HardSwish, LeakyRelu, Sigmoid or empty)"
}
