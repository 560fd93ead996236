package fp32

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
)

// ActKind names an activation applied in a kernel epilogue.
type ActKind uint8

// Activations a fused epilogue can apply. Each computes exactly what the
// ONNX op of the same name computes in goslim's unfused kernels (same
// float32 operations in the same order), so fusing never changes a value.
const (
	ActNone      ActKind = iota // identity
	ActRelu                     // max(x, 0)
	ActClip                     // min(max(x, Lo), Hi)
	ActHardSwish                // x * max(0, min(1, x/6 + 1/2))
	ActLeakyRelu                // x < 0 ? Alpha*x : x
	ActSigmoid                  // 1/(1+exp(-x)), computed in float64
)

var actNames = [...]string{"", "Relu", "Clip", "HardSwish", "LeakyRelu", "Sigmoid"}

// String returns the ONNX op name of the activation ("" for none).
func (k ActKind) String() string {
	if int(k) < len(actNames) {
		return actNames[k]
	}
	return fmt.Sprintf("ActKind(%d)", int(k))
}

// Act is an activation with its parameters: Lo and Hi bound Clip (use
// -Inf/+Inf for a missing bound), Alpha is LeakyRelu's slope.
type Act struct {
	Kind   ActKind
	Lo, Hi float32
	Alpha  float32
}

// ParseAct returns the activation named like its ONNX op ("Relu", "Clip",
// "HardSwish", "LeakyRelu", "Sigmoid", or "" for none).
func ParseAct(name string, lo, hi, alpha float32) (Act, error) {
	for i, n := range actNames {
		if n == name {
			return Act{Kind: ActKind(i), Lo: lo, Hi: hi, Alpha: alpha}, nil
		}
	}
	return Act{}, fmt.Errorf("fp32: unknown activation %q (want Relu, Clip, HardSwish, LeakyRelu, Sigmoid or empty)", name)
}

// Apply applies the activation to x in place. It is the reference for the
// vectorized epilogues:
//
//	Relu:      x = max(x, 0)
//	Clip:      x = min(max(x, Lo), Hi)
//	HardSwish: x = x * max(0, min(1, (1/6)*x + 0.5))
//	LeakyRelu: if x < 0 { x = x*Alpha }
//	Sigmoid:   x = 1/(1+exp(-x)) (x >= 0), exp(x)/(1+exp(x)) (x < 0), in float64
//
// with Go's min and max (NaN propagates; max(-0, 0) = 0). Sigmoid is
// vec.SigmoidF64, the generic tier's Sigmoid op; the assembly tiers'
// Sigmoid ops are within 2 ulp of it, and Kernels.ApplyAct and the fused
// epilogues use the tier's own loop, so a fused Sigmoid equals the
// separate op of the same tier bit for bit.
func (a Act) Apply(x []float32) {
	switch a.Kind {
	case ActRelu:
		for i, v := range x {
			x[i] = max(v, 0)
		}
	case ActClip:
		lo, hi := a.Lo, a.Hi
		for i, v := range x {
			x[i] = min(max(v, lo), hi)
		}
	case ActHardSwish:
		const alpha, beta = float32(1.0 / 6), float32(0.5)
		for i, v := range x {
			x[i] = v * max(0, min(1, alpha*v+beta))
		}
	case ActLeakyRelu:
		al := a.Alpha
		for i, v := range x {
			if v < 0 {
				v *= al
			}
			x[i] = v
		}
	case ActSigmoid:
		vec.SigmoidF64(x, x)
	}
}

// ApplyF64 is Apply for float64 values (the same formulas in float64).
func (a Act) ApplyF64(x []float64) {
	switch a.Kind {
	case ActRelu:
		for i, v := range x {
			x[i] = max(v, 0)
		}
	case ActClip:
		lo, hi := float64(a.Lo), float64(a.Hi)
		for i, v := range x {
			x[i] = min(max(v, lo), hi)
		}
	case ActHardSwish:
		const alpha, beta = 1.0 / 6, 0.5
		for i, v := range x {
			x[i] = v * max(0, min(1, alpha*v+beta))
		}
	case ActLeakyRelu:
		al := float64(a.Alpha)
		for i, v := range x {
			if v < 0 {
				v *= al
			}
			x[i] = v
		}
	case ActSigmoid:
		for i, v := range x {
			if v >= 0 {
				x[i] = 1 / (1 + math.Exp(-v))
			} else {
				e := math.Exp(v)
				x[i] = e / (1 + e)
			}
		}
	}
}
