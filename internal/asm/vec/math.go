package vec

import "math"

// The float32 approximations below are the algorithms of the assembly
// tiers, written in Go: the assembly is checked against them (and both
// against float64 math). fmaf stands for the vector FMA instruction.

// Exp constants: exp(x) = 2^n * exp(r) with n = round(x*log2(e)) and
// r = x - n*ln2 (ln2 split in two for an exact first step), exp(r) by a
// degree-6 polynomial on |r| <= ln2/2 (Cephes expf). Inputs are clamped
// to [expLo, expHi]: below, the result underflows to 0; above, it
// overflows to +Inf.
const (
	expHi    = 89.0
	expLo    = -104.0
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
	// roundMagic is 1.5*2^23: adding and subtracting it rounds a float32
	// of magnitude below 2^22 to the nearest integer (ties to even).
	roundMagic = 12582912.0
)

// fmaf returns a*b+c (rounded through float64; used by the Go models of
// the assembly, which rounds once).
func fmaf(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// pow2 returns 2^n for -126 <= n <= 127.
func pow2(n int32) float32 { return math.Float32frombits(uint32(n+127) << 23) }

// expf is the float32 exp of the assembly tiers.
func expf(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	fn := float32(float32(x*expLog2e)+roundMagic) - roundMagic
	r := fmaf(-fn, expC1, x)
	r = fmaf(-fn, expC2, r)
	z := r * r
	p := fmaf(expP0, r, expP1)
	p = fmaf(p, r, expP2)
	p = fmaf(p, r, expP3)
	p = fmaf(p, r, expP4)
	p = fmaf(p, r, expP5)
	y := fmaf(p, z, r) + 1
	// y * 2^n in two steps, so that n down to -150 gives the correctly
	// rounded subnormal and n = 128 gives +Inf.
	n := int32(fn)
	n1 := n >> 1
	return y * pow2(n1) * pow2(n-n1)
}

// sigmoidf is 1/(1+exp(-x)) as the assembly computes it: with
// e = exp(-|x|), (x >= 0 ? 1 : e) / (1 + e).
func sigmoidf(x float32) float32 {
	e := expf(-float32(math.Abs(float64(x))))
	num := float32(1)
	if !(x >= 0) {
		num = e
	}
	return num / (1 + e)
}

// Tanh: for |x| < tanhSmall an odd polynomial (Cephes tanhf), else
// sign(x) * (1 - 2/(exp(2|x|)+1)).
const (
	tanhSmall = 0.625
	tanhP0    = -5.70498872745e-3
	tanhP1    = 2.06390887954e-2
	tanhP2    = -5.37397155531e-2
	tanhP3    = 1.33314422036e-1
	tanhP4    = -3.33332819422e-1
)

// tanhf is the float32 tanh of the assembly tiers.
func tanhf(x float32) float32 {
	a := float32(math.Abs(float64(x)))
	if a < tanhSmall {
		z := x * x
		p := fmaf(tanhP0, z, tanhP1)
		p = fmaf(p, z, tanhP2)
		p = fmaf(p, z, tanhP3)
		p = fmaf(p, z, tanhP4)
		return fmaf(p*z, x, x)
	}
	t := 1 - 2/(expf(2*a)+1)
	return float32(math.Copysign(float64(t), float64(x)))
}

// Erf: for |x| < erfSmall, x * P1(x^2) with P1's constant term split in
// two for accuracy; for erfSmall <= |x| < erfOne, 1 - exp(-x^2) * P2(|x|-2);
// above, 1. P1 and P2 are weighted least-squares fits (relative error of
// erf in both regions), within 1.2 ulp with an exact exp.
const (
	erfSmall = 0.9
	erfOne   = 3.9375
	erfC0    = 1.1283791668252512
	erfC0Hi  = float32(erfC0)
	erfC0Lo  = float32(erfC0 - float64(erfC0Hi))
	erfA1    = -0.376126349
	erfA2    = 0.112837225
	erfA3    = -0.0268608909
	erfA4    = 0.00520476094
	erfA5    = -0.000818544591
	erfA6    = 8.55316175e-05
	erfB0    = 0.255395651
	erfB1    = -0.10679616
	erfB2    = 0.0418054312
	erfB3    = -0.015459328
	erfB4    = 0.0054233158
	erfB5    = -0.00185638946
	erfB6    = 0.000611071242
	erfB7    = -0.000140231947
	erfB8    = 6.02170221e-05
	erfB9    = -3.57845784e-05
)

// erff is the float32 erf of the assembly tiers.
func erff(x float32) float32 {
	a := float32(math.Abs(float64(x)))
	var y float32
	switch {
	case a < erfSmall:
		z := a * a
		p := fmaf(erfA6, z, erfA5)
		p = fmaf(p, z, erfA4)
		p = fmaf(p, z, erfA3)
		p = fmaf(p, z, erfA2)
		p = fmaf(p, z, erfA1)
		p = fmaf(p, z, erfC0Lo)
		y = fmaf(a, erfC0Hi, a*p)
	case a >= erfOne:
		y = 1
	default: // also NaN
		u := a - 2
		q := fmaf(erfB9, u, erfB8)
		q = fmaf(q, u, erfB7)
		q = fmaf(q, u, erfB6)
		q = fmaf(q, u, erfB5)
		q = fmaf(q, u, erfB4)
		q = fmaf(q, u, erfB3)
		q = fmaf(q, u, erfB2)
		q = fmaf(q, u, erfB1)
		q = fmaf(q, u, erfB0)
		y = fmaf(-expf(-(a * a)), q, 1)
	}
	return float32(math.Copysign(float64(y), float64(x)))
}

// ExpGo is dst[i] = exp(x[i]) with the float32 algorithm of the assembly
// tiers (expf).
func ExpGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = expf(v)
	}
}

// SigmoidGo is dst[i] = 1/(1+exp(-x[i])) with the algorithm of the
// assembly tiers.
func SigmoidGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = sigmoidf(v)
	}
}

// TanhGo is dst[i] = tanh(x[i]) with the algorithm of the assembly tiers.
func TanhGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = tanhf(v)
	}
}

// ErfGo is dst[i] = erf(x[i]) with the algorithm of the assembly tiers.
func ErfGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = erff(v)
	}
}

// ExpSubGo sets dst[i] = exp(x[i]-m) (expf) and returns the sum of dst.
func ExpSubGo(dst, x []float32, m float32) float32 {
	dst = dst[:len(x)]
	var s float32
	for i, v := range x {
		e := expf(v - m)
		dst[i] = e
		s += e
	}
	return s
}
