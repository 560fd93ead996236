package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// tiers returns the kernel sets this machine and build can run, generic
// first.
func tiers() []Kernels {
	ks := []Kernels{Generic()}
	for _, t := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		if t.Available() {
			ks = append(ks, For(t))
		}
	}
	return ks
}

// lengths covers empty, every tail of one and several vectors, and a few
// larger sizes.
func lengths() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 127, 128, 129, 255, 1000, 1023, 4097)
}

// specials are values every loop must handle.
var specials = []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5, float32(math.NaN()),
	float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
	-math.SmallestNonzeroFloat32, 1e-30, -1e-30, 6, -6, 3, -3, 88.5, -88.5, 100, -100, 1e10, -1e10}

// randVec returns n values: mostly uniform in [-scale, scale], with a
// sprinkle of specials.
func randVec(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		if r.IntN(8) == 0 {
			v[i] = specials[r.IntN(len(specials))]
		} else {
			v[i] = (2*r.Float32() - 1) * scale
		}
	}
	return v
}

// guard is the sentinel around outputs; a loop that writes it wrote out of
// bounds.
const guardLen = 19

var guardVal = float32(-12345.5)

// guarded returns a slice of n elements with guard bands on both sides
// and the whole backing array.
func guarded(n int) (dst, all []float32) {
	all = make([]float32, n+2*guardLen)
	for i := range all {
		all[i] = guardVal
	}
	return all[guardLen : guardLen+n : guardLen+n], all
}

func checkGuards(t *testing.T, name string, all []float32, n int) {
	t.Helper()
	for i := 0; i < guardLen; i++ {
		if all[i] != guardVal || all[guardLen+n+i] != guardVal {
			t.Fatalf("%s n=%d: wrote outside dst", name, n)
		}
	}
}

// same reports whether a and b are equal as values (NaNs equal, -0 == 0).
func same(a, b float32) bool { return a == b || (a != a && b != b) }

// ulps returns the distance of got from the exact value want in units of
// the float32 spacing at want (subnormal spacing near zero); NaN vs NaN and
// equal infinities are 0.
func ulps(got float32, want float64) float64 {
	g := float64(got)
	switch {
	case math.IsNaN(want) || math.IsNaN(g):
		if math.IsNaN(want) && math.IsNaN(g) {
			return 0
		}
		return math.Inf(1)
	case math.IsInf(want, 0) || math.IsInf(g, 0):
		if float32(want) == got {
			return 0
		}
		return math.Inf(1)
	}
	w := float32(want)
	if math.IsInf(float64(w), 0) {
		w = math.MaxFloat32 * float32(math.Copysign(1, want))
	}
	a := math.Abs(float64(w))
	sp := float64(math.Nextafter32(float32(a), float32(math.Inf(1)))) - a
	sp = max(sp, math.SmallestNonzeroFloat32)
	return math.Abs(g-want) / sp
}

type unaryCase struct {
	name string
	got  func(k Kernels) func(dst, x []float32)
	ref  func(dst, x []float32)
}

func unaryCases() []unaryCase {
	return []unaryCase{
		{"Relu", func(k Kernels) func(dst, x []float32) { return k.Relu }, ReluGo},
		{"Clip", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.Clip(d, x, -0.75, 2.5) }
		}, func(d, x []float32) { ClipGo(d, x, -0.75, 2.5) }},
		{"ClipInf", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.Clip(d, x, float32(math.Inf(-1)), 6) }
		}, func(d, x []float32) { ClipGo(d, x, float32(math.Inf(-1)), 6) }},
		{"LeakyRelu", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.LeakyRelu(d, x, 0.1) }
		}, func(d, x []float32) { LeakyReluGo(d, x, 0.1) }},
		{"HardSigmoid", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.HardSigmoid(d, x, 0.2, 0.5) }
		}, func(d, x []float32) { HardSigmoidGo(d, x, 0.2, 0.5) }},
		{"HardSwish", func(k Kernels) func(dst, x []float32) { return k.HardSwish }, HardSwishGo},
		{"AXPB", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.AXPB(d, x, 1.7, -0.3) }
		}, func(d, x []float32) { AXPBGo(d, x, 1.7, -0.3) }},
		{"AddS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.AddS(d, x, 0.375) } },
			func(d, x []float32) { AddSGo(d, x, 0.375) }},
		{"SubS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.SubS(d, x, 0.375) } },
			func(d, x []float32) { SubSGo(d, x, 0.375) }},
		{"RSubS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.RSubS(d, x, 0.375) } },
			func(d, x []float32) { RSubSGo(d, x, 0.375) }},
		{"MulS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.MulS(d, x, -1.25) } },
			func(d, x []float32) { MulSGo(d, x, -1.25) }},
		{"DivS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.DivS(d, x, 3) } },
			func(d, x []float32) { DivSGo(d, x, 3) }},
		{"RDivS", func(k Kernels) func(dst, x []float32) { return func(d, x []float32) { k.RDivS(d, x, 3) } },
			func(d, x []float32) { RDivSGo(d, x, 3) }},
		{"Norm", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.Norm(d, x, normScale[:len(x)], normBias[:len(x)], 0.25, 1.5) }
		}, func(d, x []float32) { NormGo(d, x, normScale[:len(x)], normBias[:len(x)], 0.25, 1.5) }},
		{"NormNoBias", func(k Kernels) func(dst, x []float32) {
			return func(d, x []float32) { k.Norm(d, x, normScale[:len(x)], nil, -0.5, 0.75) }
		}, func(d, x []float32) { NormGo(d, x, normScale[:len(x)], nil, -0.5, 0.75) }},
	}
}

var normScale, normBias = func() ([]float32, []float32) {
	r := rand.New(rand.NewPCG(99, 1))
	return randVec(r, 8192, 2), randVec(r, 8192, 2)
}()

// TestUnaryExact checks every exactly-rounded unary loop of every tier
// against its Go twin: same values, guard bands intact, in place too.
func TestUnaryExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range tiers() {
		for _, c := range unaryCases() {
			f := c.got(k)
			for _, n := range lengths() {
				x := randVec(r, n, 10)
				want := make([]float32, n)
				c.ref(want, x)
				dst, all := guarded(n)
				f(dst, x)
				checkGuards(t, c.name, all, n)
				for i := range want {
					if !same(dst[i], want[i]) {
						t.Fatalf("%v %s n=%d: [%d] f(%v) = %v, want %v", k.Tier, c.name, n, i, x[i], dst[i], want[i])
					}
				}
				in := append([]float32(nil), x...)
				f(in, in)
				for i := range want {
					if !same(in[i], want[i]) {
						t.Fatalf("%v %s n=%d in place: [%d] = %v, want %v", k.Tier, c.name, n, i, in[i], want[i])
					}
				}
			}
		}
	}
}

func TestBinaryExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	type bc struct {
		name string
		got  func(k Kernels) func(dst, a, b []float32)
		ref  func(dst, a, b []float32)
	}
	cases := []bc{
		{"Add", func(k Kernels) func(dst, a, b []float32) { return k.Add }, AddGo},
		{"Sub", func(k Kernels) func(dst, a, b []float32) { return k.Sub }, SubGo},
		{"Mul", func(k Kernels) func(dst, a, b []float32) { return k.Mul }, MulGo},
		{"Div", func(k Kernels) func(dst, a, b []float32) { return k.Div }, DivGo},
		{"Max", func(k Kernels) func(dst, a, b []float32) { return k.Max }, MaxGo},
	}
	for _, k := range tiers() {
		for _, c := range cases {
			f := c.got(k)
			for _, n := range lengths() {
				a, b := randVec(r, n, 10), randVec(r, n, 10)
				want := make([]float32, n)
				c.ref(want, a, b)
				dst, all := guarded(n)
				f(dst, a, b)
				checkGuards(t, c.name, all, n)
				for i := range want {
					if !same(dst[i], want[i]) {
						t.Fatalf("%v %s n=%d: [%d] f(%v, %v) = %v, want %v", k.Tier, c.name, n, i, a[i], b[i], dst[i], want[i])
					}
				}
				// In place on either operand.
				a2 := append([]float32(nil), a...)
				f(a2, a2, b)
				b2 := append([]float32(nil), b...)
				f(b2, a, b2)
				for i := range want {
					if !same(a2[i], want[i]) || !same(b2[i], want[i]) {
						t.Fatalf("%v %s n=%d in place: [%d] = %v, %v, want %v", k.Tier, c.name, n, i, a2[i], b2[i], want[i])
					}
				}
			}
		}
	}
}

// mathCase is a transcendental loop with its exact reference.
type mathCase struct {
	name  string
	got   func(k Kernels) func(dst, x []float32)
	twin  func(dst, x []float32)
	exact func(float64) float64
	lo    float32 // sweep range
	hi    float32
	ulps  float64 // allowed error against exact
}

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func mathCases() []mathCase {
	return []mathCase{
		{"Exp", func(k Kernels) func(dst, x []float32) { return k.Exp }, ExpGo, math.Exp, -105, 90, 2},
		{"Sigmoid", func(k Kernels) func(dst, x []float32) { return k.Sigmoid }, SigmoidGo, sigmoid64, -110, 110, 2.5},
		{"Tanh", func(k Kernels) func(dst, x []float32) { return k.Tanh }, TanhGo, math.Tanh, -12, 12, 2.5},
		{"Erf", func(k Kernels) func(dst, x []float32) { return k.Erf }, ErfGo, math.Erf, -5, 5, 2},
	}
}

// sweep returns a dense grid over [lo, hi], the specials, values near
// zero and random values, for accuracy checks.
func sweep(r *rand.Rand, lo, hi float32) []float32 {
	var xs []float32
	const steps = 200000
	for i := 0; i <= steps; i++ {
		xs = append(xs, lo+(hi-lo)*float32(i)/steps)
	}
	for e := -40; e <= 5; e++ {
		v := float32(math.Ldexp(1.2345, e))
		xs = append(xs, v, -v)
	}
	xs = append(xs, specials...)
	for i := 0; i < 50000; i++ {
		xs = append(xs, lo+(hi-lo)*r.Float32())
	}
	return xs
}

// TestMathAccuracy checks the transcendental loops of every tier, and
// their Go twins, against float64 math.
func TestMathAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range mathCases() {
		xs := sweep(r, c.lo, c.hi)
		impls := []struct {
			name string
			f    func(dst, x []float32)
		}{{"go twin", c.twin}}
		for _, k := range tiers() {
			impls = append(impls, struct {
				name string
				f    func(dst, x []float32)
			}{k.Tier.String(), c.got(k)})
		}
		for _, im := range impls {
			dst := make([]float32, len(xs))
			im.f(dst, xs)
			worst, at := 0.0, float32(0)
			for i, x := range xs {
				if u := ulps(dst[i], c.exact(float64(x))); u > worst {
					worst, at = u, x
				}
			}
			if worst > c.ulps {
				t.Errorf("%s %s: max error %.2f ulp at x=%v (f=%v, exact %v), want <= %v", c.name, im.name, worst, at,
					func() float32 { d := []float32{0}; im.f(d, []float32{at}); return d[0] }(), c.exact(float64(at)), c.ulps)
			}
			t.Logf("%s %s: max error %.2f ulp", c.name, im.name, worst)
		}
	}
}

// TestMathTwins checks that the assembly follows its Go twin (within one
// ulp: the twin's FMA rounds through float64) on every length, with guard
// bands.
func TestMathTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range tiers()[1:] {
		for _, c := range mathCases() {
			f := c.got(k)
			for _, n := range lengths() {
				x := randVec(r, n, 20)
				want := make([]float32, n)
				c.twin(want, x)
				dst, all := guarded(n)
				f(dst, x)
				checkGuards(t, c.name, all, n)
				for i := range want {
					if u := ulps(dst[i], float64(want[i])); u > 1 {
						t.Fatalf("%v %s n=%d: f(%v) = %v, twin %v", k.Tier, c.name, n, x[i], dst[i], want[i])
					}
				}
			}
		}
	}
}

// near reports whether got is within tol of want relative to scale.
func near(got, want, scale float64, tol float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) == math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol*scale
}

func TestReductions(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, k := range tiers() {
		for _, n := range lengths() {
			x := make([]float32, n)
			for i := range x {
				x[i] = 4*r.Float32() - 2
			}
			var sum, abs, ssq, absq float64
			mx := math.Inf(-1)
			m := float32(0.3)
			for _, v := range x {
				sum += float64(v)
				abs += math.Abs(float64(v))
				d := float64(v - m)
				ssq += d * d
				absq += d * d
				mx = max(mx, float64(v))
			}
			name := fmt.Sprintf("%v n=%d", k.Tier, n)
			if got := k.Sum(x); !near(float64(got), sum, abs+1e-30, 1e-6) {
				t.Fatalf("%s: Sum = %v, want %v", name, got, sum)
			}
			if got := k.MaxOf(x); float64(got) != mx {
				t.Fatalf("%s: MaxOf = %v, want %v", name, got, mx)
			}
			if got := k.SumSqD(x, m); !near(float64(got), ssq, absq+1e-30, 1e-6) {
				t.Fatalf("%s: SumSqD = %v, want %v", name, got, ssq)
			}
			dst, all := guarded(n)
			s := k.ExpSub(dst, x, 1.5)
			checkGuards(t, "ExpSub", all, n)
			var es float64
			for i, v := range x {
				e := math.Exp(float64(v - 1.5))
				es += e
				if ulps(dst[i], e) > 2 {
					t.Fatalf("%s: ExpSub[%d] = %v, want %v", name, i, dst[i], e)
				}
			}
			if !near(float64(s), es, es+1e-30, 1e-6) {
				t.Fatalf("%s: ExpSub sum = %v, want %v", name, s, es)
			}
			// NaN anywhere makes the max NaN; -Inf is the max of nothing.
			if n > 0 {
				y := append([]float32(nil), x...)
				y[r.IntN(n)] = float32(math.NaN())
				if got := k.MaxOf(y); got == got {
					t.Fatalf("%s: MaxOf with a NaN = %v", name, got)
				}
				for i := range y {
					y[i] = float32(math.Inf(-1))
				}
				if got := k.MaxOf(y); !math.IsInf(float64(got), -1) {
					t.Fatalf("%s: MaxOf(-Inf...) = %v", name, got)
				}
			} else if got := k.MaxOf(x); !math.IsInf(float64(got), -1) {
				t.Fatalf("%s: MaxOf(empty) = %v", name, got)
			}
		}
	}
}

// TestForTiers checks that For picks the highest available tier at most
// the one asked for.
func TestForTiers(t *testing.T) {
	for tier := kernel.TierGeneric; tier <= kernel.TierAMX; tier++ {
		got := For(tier).Tier
		if got > tier || !got.Available() {
			t.Errorf("For(%v) = %v", tier, got)
		}
		for hi := tier; hi > got; hi-- {
			if hi.Available() && hi <= kernel.TierAVX512 {
				t.Errorf("For(%v) = %v, but %v is available", tier, got, hi)
			}
		}
	}
}

func benchUnary(b *testing.B, f func(dst, x []float32)) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randVec(r, 4096, 5)
	for i := range x {
		if x[i] != x[i] || math.IsInf(float64(x[i]), 0) {
			x[i] = 1
		}
	}
	dst := make([]float32, len(x))
	b.SetBytes(int64(8 * len(x)))
	for b.Loop() {
		f(dst, x)
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// BenchmarkUnary pairs each transcendental and activation loop of every
// tier with its Go twin (and the float64 reference) on 4096 values.
func BenchmarkUnary(b *testing.B) {
	for _, c := range mathCases() {
		b.Run(c.name+"/go-twin", func(b *testing.B) { benchUnary(b, c.twin) })
		for _, k := range tiers() {
			b.Run(c.name+"/"+k.Tier.String(), func(b *testing.B) { benchUnary(b, c.got(k)) })
		}
	}
	for _, c := range unaryCases()[:6] {
		for _, k := range tiers() {
			b.Run(c.name+"/"+k.Tier.String(), func(b *testing.B) { benchUnary(b, c.got(k)) })
		}
	}
}

func BenchmarkBinaryAdd(b *testing.B) {
	for _, k := range tiers() {
		b.Run(k.Tier.String(), func(b *testing.B) {
			x, y, dst := make([]float32, 4096), make([]float32, 4096), make([]float32, 4096)
			b.SetBytes(12 * 4096)
			for b.Loop() {
				k.Add(dst, x, y)
			}
		})
	}
}

func BenchmarkReductions(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(2, 2)), 4096, 1)
	for i := range x {
		if x[i] != x[i] || math.IsInf(float64(x[i]), 0) {
			x[i] = 0
		}
	}
	dst := make([]float32, len(x))
	for _, k := range tiers() {
		b.Run("Sum/"+k.Tier.String(), func(b *testing.B) {
			b.SetBytes(4 * 4096)
			for b.Loop() {
				k.Sum(x)
			}
		})
		b.Run("MaxOf/"+k.Tier.String(), func(b *testing.B) {
			b.SetBytes(4 * 4096)
			for b.Loop() {
				k.MaxOf(x)
			}
		})
		b.Run("ExpSub/"+k.Tier.String(), func(b *testing.B) {
			b.SetBytes(8 * 4096)
			for b.Loop() {
				k.ExpSub(dst, x, 1)
			}
		})
	}
}

// TestMaxPool2 checks MaxPool2 of every tier against MaxPool2Go on odd
// and even widths, every tail, NaNs and -Inf, with guard bands.
func TestMaxPool2(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, k := range tiers() {
		for _, w := range []int{1, 2, 3, 4, 7, 8, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 224} {
			for _, rows := range []int{0, 1, 2, 5} {
				src := randVec(r, 2*rows*w, 5)
				if len(src) > 0 && r.IntN(2) == 0 {
					src[r.IntN(len(src))] = float32(math.Inf(-1))
				}
				ow := w / 2
				want := make([]float32, rows*ow)
				MaxPool2Go(want, src, rows, w)
				dst, all := guarded(rows * ow)
				k.MaxPool2(dst, src, rows, w)
				checkGuards(t, "MaxPool2", all, rows*ow)
				for i := range want {
					if !same(dst[i], want[i]) {
						t.Fatalf("%v w=%d rows=%d: [%d] = %v, want %v", k.Tier, w, rows, i, dst[i], want[i])
					}
				}
			}
		}
		// All -Inf windows give the lowest float32, like the general loop.
		src := []float32{float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))}
		dst := []float32{0}
		k.MaxPool2(dst, src, 1, 2)
		if dst[0] != -math.MaxFloat32 {
			t.Fatalf("%v: max of -Inf = %v", k.Tier, dst[0])
		}
	}
}

func BenchmarkMaxPool2(b *testing.B) {
	src := randVec(rand.New(rand.NewPCG(1, 2)), 6*24*24, 1)
	dst := make([]float32, 6*12*12)
	for _, k := range tiers() {
		b.Run(k.Tier.String(), func(b *testing.B) {
			for b.Loop() {
				k.MaxPool2(dst, src, 6*12, 24)
			}
		})
	}
}
