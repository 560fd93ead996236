// Package vec holds goslim's vectorized float32 loops: elementwise
// arithmetic, activations, exp/sigmoid/tanh/erf, and the row reductions of
// softmax, normalization and pooling. Each loop exists as pure Go (the
// reference, whose doc comment gives the formula) and, on amd64 without
// the noasm build tag, as AVX2 and AVX-512 assembly that the tests check
// against the Go version on random lengths, tails and guard bands.
//
// Conventions: every function writes dst[i] for i < n, where n is the
// length of the first source slice, and reads nothing beyond n elements
// of each source; dst must be at least that long. dst may be the same
// slice as a source (in-place), but must not overlap it otherwise.
//
// NaN inputs give NaN outputs wherever Go's min and max would propagate
// them; the sign of a zero result may differ between implementations
// (max(-0, 0) is +0 in Go and may be -0 in assembly).
package vec

//go:generate go run gen.go

import (
	"math"

	"github.com/goslim/goslim/internal/kernel"
)

// Kernels is the set of loops of one CPU tier. Get one with For; the zero
// value is not usable.
type Kernels struct {
	// Tier is the tier whose code runs.
	Tier kernel.Tier

	// Unary maps: dst[i] = f(x[i]).
	Relu        func(dst, x []float32)                      // max(x, 0)
	Clip        func(dst, x []float32, lo, hi float32)      // min(max(x, lo), hi)
	LeakyRelu   func(dst, x []float32, alpha float32)       // x < 0 ? alpha*x : x
	HardSigmoid func(dst, x []float32, alpha, beta float32) // max(0, min(1, alpha*x+beta))
	HardSwish   func(dst, x []float32)                      // x * max(0, min(1, x/6+1/2))
	AXPB        func(dst, x []float32, a, b float32)        // x*a + b (two roundings)
	// Exp, Sigmoid, Tanh and Erf are within 2 ulp (relative) of the exact
	// value in the assembly tiers; the generic tier computes in float64
	// and rounds once.
	Exp     func(dst, x []float32)
	Sigmoid func(dst, x []float32)
	Tanh    func(dst, x []float32)
	Erf     func(dst, x []float32)

	// Binary maps: dst[i] = a[i] op b[i].
	Add, Sub, Mul, Div func(dst, a, b []float32)
	Max                func(dst, a, b []float32) // max(a, b); NaN in either propagates
	// With a scalar: dst[i] = a[i] op s, or s op a[i] for the R forms.
	AddS, SubS, RSubS, MulS, DivS, RDivS func(dst, a []float32, s float32)

	// Reductions over x (accumulation order differs between tiers).
	Sum    func(x []float32) float32            // sum of x
	MaxOf  func(x []float32) float32            // max of x (NaN propagates; -Inf for empty x)
	SumSqD func(x []float32, m float32) float32 // sum of (x-m)^2
	// ExpSub sets dst[i] = exp(x[i] - m) and returns their sum (softmax).
	ExpSub func(dst, x []float32, m float32) float32
	// Norm sets dst[i] = (x[i]-mean)*inv*scale[i] + bias[i] (bias may be
	// nil: no bias); scale and bias have at least len(x) elements.
	Norm func(dst, x, scale, bias []float32, mean, inv float32)

	// MaxPool2 is 2x2 max pooling with stride 2 over pairs of rows (see
	// MaxPool2Go).
	MaxPool2 func(dst, src []float32, rows, w int)
}

// For returns the loops of the highest tier at most t that this build and
// CPU support (the generic tier with -tags noasm). Tiers above AVX-512
// use AVX-512's loops.
func For(t kernel.Tier) Kernels {
	if t >= kernel.TierAVX512 && kernel.TierAVX512.Available() {
		return avx512Kernels()
	}
	if t >= kernel.TierAVX2 && kernel.TierAVX2.Available() {
		return avx2Kernels()
	}
	return Generic()
}

// Generic returns the pure-Go loops.
func Generic() Kernels {
	return Kernels{
		Tier: kernel.TierGeneric,
		Relu: ReluGo, Clip: ClipGo, LeakyRelu: LeakyReluGo, HardSigmoid: HardSigmoidGo, HardSwish: HardSwishGo,
		AXPB: AXPBGo,
		Exp:  ExpF64, Sigmoid: SigmoidF64, Tanh: TanhF64, Erf: ErfF64,
		Add: AddGo, Sub: SubGo, Mul: MulGo, Div: DivGo, Max: MaxGo,
		AddS: AddSGo, SubS: SubSGo, RSubS: RSubSGo, MulS: MulSGo, DivS: DivSGo, RDivS: RDivSGo,
		Sum: SumGo, MaxOf: MaxOfGo, SumSqD: SumSqDGo, ExpSub: ExpSubF64, Norm: NormGo,
		MaxPool2: MaxPool2Go,
	}
}

// ReluGo is dst[i] = max(x[i], 0).
func ReluGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = max(v, 0)
	}
}

// ClipGo is dst[i] = min(max(x[i], lo), hi).
func ClipGo(dst, x []float32, lo, hi float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = min(max(v, lo), hi)
	}
}

// LeakyReluGo is dst[i] = x[i] < 0 ? alpha*x[i] : x[i].
func LeakyReluGo(dst, x []float32, alpha float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		if v < 0 {
			v *= alpha
		}
		dst[i] = v
	}
}

// HardSigmoidGo is dst[i] = max(0, min(1, alpha*x[i]+beta)), the product
// rounded before the sum.
func HardSigmoidGo(dst, x []float32, alpha, beta float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = max(0, min(1, float32(alpha*v)+beta))
	}
}

// hardSwishAlpha is 1/6 rounded to float32, HardSwish's slope.
const hardSwishAlpha = float32(1.0 / 6)

// HardSwishGo is dst[i] = x[i] * max(0, min(1, x[i]/6 + 1/2)), with 1/6
// rounded to float32 and each operation rounded in turn.
func HardSwishGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v * max(0, min(1, float32(hardSwishAlpha*v)+0.5))
	}
}

// AXPBGo is dst[i] = x[i]*a + b, the product rounded before the sum.
func AXPBGo(dst, x []float32, a, b float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*a) + b
	}
}

// ExpF64 is dst[i] = exp(x[i]) computed in float64 and rounded once.
func ExpF64(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(math.Exp(float64(v)))
	}
}

// SigmoidF64 is dst[i] = 1/(1+exp(-x[i])) computed in float64 (as
// exp(x)/(1+exp(x)) for negative x, so exp never overflows).
func SigmoidF64(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		if v >= 0 {
			dst[i] = float32(1 / (1 + math.Exp(-float64(v))))
		} else {
			e := math.Exp(float64(v))
			dst[i] = float32(e / (1 + e))
		}
	}
}

// TanhF64 is dst[i] = tanh(x[i]) computed in float64.
func TanhF64(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(math.Tanh(float64(v)))
	}
}

// ErfF64 is dst[i] = erf(x[i]) computed in float64.
func ErfF64(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(math.Erf(float64(v)))
	}
}

// AddGo is dst[i] = a[i] + b[i].
func AddGo(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

// SubGo is dst[i] = a[i] - b[i].
func SubGo(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v - b[i]
	}
}

// MulGo is dst[i] = a[i] * b[i].
func MulGo(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v * b[i]
	}
}

// DivGo is dst[i] = a[i] / b[i].
func DivGo(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v / b[i]
	}
}

// MaxGo is dst[i] = max(a[i], b[i]) (NaN in either propagates).
func MaxGo(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = max(v, b[i])
	}
}

// AddSGo is dst[i] = a[i] + s.
func AddSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v + s
	}
}

// SubSGo is dst[i] = a[i] - s.
func SubSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v - s
	}
}

// RSubSGo is dst[i] = s - a[i].
func RSubSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = s - v
	}
}

// MulSGo is dst[i] = a[i] * s.
func MulSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v * s
	}
}

// DivSGo is dst[i] = a[i] / s.
func DivSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = v / s
	}
}

// RDivSGo is dst[i] = s / a[i].
func RDivSGo(dst, a []float32, s float32) {
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = s / v
	}
}

// SumGo returns the sum of x, accumulated in float32 with four partial
// sums.
func SumGo(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// MaxOfGo returns the largest element of x (NaN if any is NaN, -Inf when
// x is empty).
func MaxOfGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// SumSqDGo returns the sum of (x[i]-m)^2.
func SumSqDGo(x []float32, m float32) float32 {
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		d0, d1 := x[i]-m, x[i+1]-m
		s0 += d0 * d0
		s1 += d1 * d1
	}
	if i < len(x) {
		d := x[i] - m
		s0 += d * d
	}
	return s0 + s1
}

// ExpSubF64 sets dst[i] = exp(x[i]-m) (the difference rounded to float32,
// the exponential computed in float64) and returns the sum of dst.
func ExpSubF64(dst, x []float32, m float32) float32 {
	dst = dst[:len(x)]
	var s float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		dst[i] = e
		s += float64(e)
	}
	return float32(s)
}

// NormGo sets dst[i] = (x[i]-mean)*inv*scale[i] + bias[i] (no bias when
// bias is nil), each operation rounded in turn.
func NormGo(dst, x, scale, bias []float32, mean, inv float32) {
	dst, scale = dst[:len(x)], scale[:len(x)]
	if bias == nil {
		for i, v := range x {
			dst[i] = float32(float32((v-mean)*inv) * scale[i])
		}
		return
	}
	bias = bias[:len(x)]
	for i, v := range x {
		dst[i] = float32(float32((v-mean)*inv)*scale[i]) + bias[i]
	}
}
