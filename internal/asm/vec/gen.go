//go:build ignore

// gen writes vec_amd64.s (the AVX2 and AVX-512 loops) and
// stubs_amd64.go (their Go declarations and the per-tier Kernels). Run it
// with go generate after changing a loop; the Go twins in vec.go and
// math.go are the specification each body implements.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"math"
	"os"
	"sort"
	"strings"
)

// level is one vector ISA.
type level struct {
	name   string // "AVX512" or "AVX2"
	width  int    // float32 lanes per register
	nreg   int    // vector registers
	prefix string // register prefix, "Z" or "Y"
}

var (
	avx512 = &level{"AVX512", 16, 32, "Z"}
	avx2   = &level{"AVX2", 8, 16, "Y"}
)

// kind is the shape of a loop.
type kind int

const (
	unary  kind = iota // dst[i] = f(x[i], params...)
	binary             // dst[i] = f(a[i], b[i])
	reduce             // return r(x[i], params...), no dst
	mapRed             // dst[i] = f(x[i], m); return sum dst[i]
	norm               // dst[i] = (x[i]-mean)*inv*scale[i] (+bias[i])
)

// lane is the registers of one unrolled lane: x (input and result), b
// (second input of binary loops), acc (accumulator of reductions), t
// (temporaries) and, on AVX-512, a mask register.
type lane struct {
	x, b, acc string
	t         []string
	k         string
}

// fn is one generated loop.
type fn struct {
	name   string   // Go name stem, e.g. "relu"
	kind   kind     //
	params []string // float32 scalar parameters after the slices
	consts []string // named constants the body uses, register-resident first
	temps  int      // temporaries per lane
	lanes  [2]int   // unrolled lanes for AVX-512 and AVX-2
	// body emits the instructions of one lane; tail is true in the masked
	// tail iteration (where the mask of live lanes is in K1 or e.tailMask).
	body func(e *emitter, l lane, tail bool)
	// accum emits the accumulation of a lane's result l.x into l.acc
	// (reduce and mapRed); tail when masked.
	accum func(e *emitter, l lane, tail bool)
	// combine is the horizontal reduction: VADDPS or VMAXPS.
	combine string
	// init is the initial accumulator constant ("" for zero).
	init   string
	noBias bool // norm without bias
	nan    bool // reduce tracks NaN (maxOf)
}

// constant values, replicated in 64-byte DATA blocks.
var constVals = map[string]uint32{}

func f32c(name string, v float64) { constVals[name] = math.Float32bits(float32(v)) }
func i32c(name string, v int32)   { constVals[name] = uint32(v) }

func init() {
	f32c("zero", 0)
	f32c("one", 1)
	f32c("two", 2)
	f32c("half", 0.5)
	f32c("sixth", float64(float32(1.0/6)))
	f32c("negInf", math.Inf(-1))
	constVals["sign"] = 0x80000000
	constVals["abs"] = 0x7fffffff
	i32c("bias127", 127)
	f32c("expHi", 89)
	f32c("expLo", -104)
	f32c("expLog2e", 1.44269504088896341)
	f32c("expC1", 0.693359375)
	f32c("expC2", -2.12194440e-4)
	f32c("expP0", 1.9875691500e-4)
	f32c("expP1", 1.3981999507e-3)
	f32c("expP2", 8.3334519073e-3)
	f32c("expP3", 4.1665795894e-2)
	f32c("expP4", 1.6666665459e-1)
	f32c("expP5", 5.0000001201e-1)
	f32c("tanhSmall", 0.625)
	f32c("tanhP0", -5.70498872745e-3)
	f32c("tanhP1", 2.06390887954e-2)
	f32c("tanhP2", -5.37397155531e-2)
	f32c("tanhP3", 1.33314422036e-1)
	f32c("tanhP4", -3.33332819422e-1)
	const erfC0 = 1.1283791668252512
	hi := float32(erfC0)
	f32c("erfC0Hi", float64(hi))
	f32c("erfC0Lo", erfC0-float64(hi))
	f32c("erfSmall", 0.9)
	f32c("erfOne", 3.9375)
	for i, v := range []float64{-0.376126349, 0.112837225, -0.0268608909, 0.00520476094, -0.000818544591, 8.55316175e-05} {
		f32c(fmt.Sprintf("erfA%d", i+1), v)
	}
	for i, v := range []float64{0.255395651, -0.10679616, 0.0418054312, -0.015459328, 0.0054233158,
		-0.00185638946, 0.000611071242, -0.000140231947, 6.02170221e-05, -3.57845784e-05} {
		f32c(fmt.Sprintf("erfB%d", i), v)
	}
}

var expConsts = []string{"expLo", "expHi", "expLog2e", "expC1", "expC2", "expP0", "expP1", "expP2", "expP3", "expP4", "expP5", "one", "bias127"}

// emitter writes one function of one level.
type emitter struct {
	lv   *level
	f    *fn
	w    *bytes.Buffer
	reg  map[string]string // constant or parameter -> register
	used map[string]bool   // constants referenced in memory
	// tailMask is the AVX2 register holding the live-lane mask in the
	// tail iteration.
	tailMask string
}

func (e *emitter) p(format string, args ...any) {
	fmt.Fprintf(e.w, "\t"+format+"\n", args...)
}

// c returns an operand for constant or parameter name: its register, or
// its replicated memory block.
func (e *emitter) c(name string) string {
	if r, ok := e.reg[name]; ok {
		return r
	}
	for _, p := range e.f.params {
		if p == name {
			panic("parameter " + name + " has no register")
		}
	}
	if _, ok := constVals[name]; !ok {
		panic("unknown constant " + name)
	}
	e.used[name] = true
	return name + "<>(SB)"
}

// cr returns a register holding constant name: its own, or tmp after a
// load.
func (e *emitter) cr(name, tmp string) string {
	if r, ok := e.reg[name]; ok {
		return r
	}
	e.p("VMOVUPS %s, %s", e.c(name), tmp)
	return tmp
}

func (e *emitter) is512() bool { return e.lv == avx512 }

// sel sets dst = (cond lanes of mask) ? src : dst, where the condition
// is the comparison imm of a and b (a OP b), using lane scratch tmp.
func (e *emitter) blendCmp(imm int, a, b, src, dst string, l lane, tmp string) {
	if e.is512() {
		e.p("VCMPPS $%d, %s, %s, %s", imm, b, a, l.k)
		e.p("VMOVAPS %s, %s, %s", src, l.k, dst)
		return
	}
	e.p("VCMPPS $%d, %s, %s, %s", imm, b, a, tmp)
	e.p("VBLENDVPS %s, %s, %s, %s", tmp, src, dst, dst)
}

// Comparison predicates.
const (
	cmpLT    = 0x11 // LT_OQ
	cmpGE    = 0x1d // GE_OQ
	cmpUnord = 0x03 // UNORD_Q
)

// expBody computes r = exp(r) with temporaries t0..t2 (the algorithm of
// expf in math.go).
func expBody(e *emitter, r string, t []string) {
	t0, t1, t2 := t[0], t[1], t[2]
	e.p("VMAXPS %s, %s, %s", r, e.cr("expLo", t0), r)
	e.p("VMINPS %s, %s, %s", r, e.cr("expHi", t0), r)
	e.p("VMULPS %s, %s, %s", e.c("expLog2e"), r, t0)
	if e.is512() {
		e.p("VRNDSCALEPS $0, %s, %s", t0, t0)
	} else {
		e.p("VROUNDPS $0, %s, %s", t0, t0)
	}
	e.p("VFNMADD231PS %s, %s, %s", e.c("expC1"), t0, r)
	e.p("VFNMADD231PS %s, %s, %s", e.c("expC2"), t0, r)
	e.p("VMULPS %s, %s, %s", r, r, t1)
	e.p("VMOVUPS %s, %s", e.c("expP0"), t2)
	for _, c := range []string{"expP1", "expP2", "expP3", "expP4", "expP5"} {
		e.p("VFMADD213PS %s, %s, %s", e.c(c), r, t2)
	}
	e.p("VFMADD213PS %s, %s, %s", r, t1, t2)
	e.p("VADDPS %s, %s, %s", e.c("one"), t2, t2)
	if e.is512() {
		e.p("VSCALEFPS %s, %s, %s", t0, t2, r)
		return
	}
	e.p("VCVTPS2DQ %s, %s", t0, t0)
	e.p("VPSRAD $1, %s, %s", t0, t1)
	e.p("VPSUBD %s, %s, %s", t1, t0, t0)
	e.p("VPADDD %s, %s, %s", e.c("bias127"), t1, t1)
	e.p("VPSLLD $23, %s, %s", t1, t1)
	e.p("VPADDD %s, %s, %s", e.c("bias127"), t0, t0)
	e.p("VPSLLD $23, %s, %s", t0, t0)
	e.p("VMULPS %s, %s, %s", t1, t2, t2)
	e.p("VMULPS %s, %s, %s", t0, t2, r)
}

func fns() []*fn {
	simple := func(name string, params []string, consts []string, body func(e *emitter, l lane)) *fn {
		return &fn{name: name, kind: unary, params: params, consts: consts, temps: 2, lanes: [2]int{4, 4},
			body: func(e *emitter, l lane, tail bool) { body(e, l) }}
	}
	bin := func(name, op string) *fn {
		return &fn{name: name, kind: binary, lanes: [2]int{4, 4}, body: func(e *emitter, l lane, tail bool) {
			e.p("%s %s, %s, %s", op, l.b, l.x, l.x)
		}}
	}
	scal := func(name, op string, rev bool) *fn {
		return simple(name, []string{"s"}, nil, func(e *emitter, l lane) {
			if rev {
				e.p("%s %s, %s, %s", op, l.x, e.c("s"), l.x)
			} else {
				e.p("%s %s, %s, %s", op, e.c("s"), l.x, l.x)
			}
		})
	}
	fs := []*fn{
		simple("relu", nil, []string{"zero"}, func(e *emitter, l lane) {
			e.p("VMAXPS %s, %s, %s", l.x, e.cr("zero", l.t[0]), l.x)
		}),
		simple("clip", []string{"lo", "hi"}, nil, func(e *emitter, l lane) {
			e.p("VMAXPS %s, %s, %s", l.x, e.c("lo"), l.x)
			e.p("VMINPS %s, %s, %s", l.x, e.c("hi"), l.x)
		}),
		{name: "leakyRelu", kind: unary, params: []string{"alpha"}, consts: []string{"zero"}, temps: 2, lanes: [2]int{4, 4},
			body: func(e *emitter, l lane, tail bool) {
				e.p("VMULPS %s, %s, %s", e.c("alpha"), l.x, l.t[0])
				e.blendCmp(cmpLT, l.x, e.c("zero"), l.t[0], l.x, l, l.t[1])
			}},
		simple("hardSigmoid", []string{"alpha", "beta"}, []string{"zero", "one"}, func(e *emitter, l lane) {
			e.p("VMULPS %s, %s, %s", e.c("alpha"), l.x, l.x)
			e.p("VADDPS %s, %s, %s", e.c("beta"), l.x, l.x)
			e.p("VMINPS %s, %s, %s", l.x, e.cr("one", l.t[0]), l.x)
			e.p("VMAXPS %s, %s, %s", l.x, e.cr("zero", l.t[0]), l.x)
		}),
		simple("hardSwish", nil, []string{"zero", "one", "sixth", "half"}, func(e *emitter, l lane) {
			t := l.t[0]
			e.p("VMULPS %s, %s, %s", e.c("sixth"), l.x, t)
			e.p("VADDPS %s, %s, %s", e.c("half"), t, t)
			e.p("VMINPS %s, %s, %s", t, e.cr("one", l.t[1]), t)
			e.p("VMAXPS %s, %s, %s", t, e.cr("zero", l.t[1]), t)
			e.p("VMULPS %s, %s, %s", t, l.x, l.x)
		}),
		simple("axpb", []string{"a", "b"}, nil, func(e *emitter, l lane) {
			e.p("VMULPS %s, %s, %s", e.c("a"), l.x, l.x)
			e.p("VADDPS %s, %s, %s", e.c("b"), l.x, l.x)
		}),
		{name: "exp", kind: unary, consts: expConsts, temps: 3, lanes: [2]int{4, 2},
			body: func(e *emitter, l lane, tail bool) { expBody(e, l.x, l.t) }},
		{name: "sigmoid", kind: unary, consts: append([]string{"zero", "sign"}, expConsts...), temps: 4, lanes: [2]int{3, 2},
			body: func(e *emitter, l lane, tail bool) {
				t0 := l.t[0]
				e.p("VORPS %s, %s, %s", e.c("sign"), l.x, t0)
				expBody(e, t0, l.t[1:])
				e.p("VADDPS %s, %s, %s", e.c("one"), t0, l.t[1])
				e.blendCmp(cmpGE, l.x, e.c("zero"), e.cr("one", l.t[2]), t0, l, l.t[3])
				e.p("VDIVPS %s, %s, %s", l.t[1], t0, l.x)
			}},
		{name: "tanh", kind: unary, consts: append([]string{"abs", "sign", "one", "two", "tanhSmall", "tanhP0", "tanhP1", "tanhP2", "tanhP3", "tanhP4"}, expConsts...),
			temps: 5, lanes: [2]int{2, 1},
			body: func(e *emitter, l lane, tail bool) {
				t := l.t
				e.p("VANDPS %s, %s, %s", e.c("abs"), l.x, t[0])
				e.p("VADDPS %s, %s, %s", t[0], t[0], t[1])
				expBody(e, t[1], t[2:])
				e.p("VADDPS %s, %s, %s", e.c("one"), t[1], t[1])
				e.p("VDIVPS %s, %s, %s", t[1], e.cr("two", t[2]), t[1])
				e.p("VSUBPS %s, %s, %s", t[1], e.cr("one", t[2]), t[1])
				e.p("VANDPS %s, %s, %s", e.c("sign"), l.x, t[2])
				e.p("VORPS %s, %s, %s", t[2], t[1], t[1])
				e.p("VMULPS %s, %s, %s", l.x, l.x, t[2])
				e.p("VMOVUPS %s, %s", e.c("tanhP0"), t[3])
				for _, c := range []string{"tanhP1", "tanhP2", "tanhP3", "tanhP4"} {
					e.p("VFMADD213PS %s, %s, %s", e.c(c), t[2], t[3])
				}
				e.p("VMULPS %s, %s, %s", t[2], t[3], t[3])
				e.p("VFMADD213PS %s, %s, %s", l.x, l.x, t[3])
				e.blendCmp(cmpLT, t[0], e.c("tanhSmall"), t[3], t[1], l, t[4])
				e.p("VMOVAPS %s, %s", t[1], l.x)
			}},
		{name: "erf", kind: unary, consts: append(append([]string{"abs", "sign", "one", "two", "erfSmall", "erfOne", "erfC0Hi", "erfC0Lo"}, expConsts...),
			"erfA1", "erfA2", "erfA3", "erfA4", "erfA5", "erfA6", "erfB0", "erfB1", "erfB2", "erfB3", "erfB4", "erfB5", "erfB6", "erfB7", "erfB8", "erfB9"),
			temps: 7, lanes: [2]int{2, 1},
			body: func(e *emitter, l lane, tail bool) {
				t := l.t
				a, z, y1, u, q := t[0], t[1], t[2], t[3], t[4]
				e.p("VANDPS %s, %s, %s", e.c("abs"), l.x, a)
				e.p("VMULPS %s, %s, %s", a, a, z)
				// Region 1: y1 = a*C0hi + a*P(z).
				e.p("VMOVUPS %s, %s", e.c("erfA6"), y1)
				for _, c := range []string{"erfA5", "erfA4", "erfA3", "erfA2", "erfA1", "erfC0Lo"} {
					e.p("VFMADD213PS %s, %s, %s", e.c(c), z, y1)
				}
				e.p("VMULPS %s, %s, %s", a, y1, y1)
				e.p("VFMADD231PS %s, %s, %s", e.c("erfC0Hi"), a, y1)
				// Region 2: q = P2(a-2), y2 = 1 - exp(-z)*q.
				e.p("VSUBPS %s, %s, %s", e.c("two"), a, u)
				e.p("VMOVUPS %s, %s", e.c("erfB9"), q)
				for i := 8; i >= 0; i-- {
					e.p("VFMADD213PS %s, %s, %s", e.c(fmt.Sprintf("erfB%d", i)), u, q)
				}
				e.p("VXORPS %s, %s, %s", e.c("sign"), z, z)
				expBody(e, z, []string{u, t[5], t[6]})
				e.p("VFNMADD213PS %s, %s, %s", e.c("one"), z, q)
				e.blendCmp(cmpLT, a, e.c("erfSmall"), y1, q, l, u)
				e.blendCmp(cmpGE, a, e.c("erfOne"), e.cr("one", t[5]), q, l, u)
				e.p("VANDPS %s, %s, %s", e.c("sign"), l.x, u)
				e.p("VORPS %s, %s, %s", u, q, l.x)
			}},
		bin("add", "VADDPS"), bin("sub", "VSUBPS"), bin("mul", "VMULPS"), bin("div", "VDIVPS"),
		{name: "max", kind: binary, temps: 2, lanes: [2]int{4, 3}, body: func(e *emitter, l lane, tail bool) {
			e.p("VMAXPS %s, %s, %s", l.b, l.x, l.t[0])
			e.blendCmp(cmpUnord, l.x, l.x, l.x, l.t[0], l, l.t[1])
			e.p("VMOVAPS %s, %s", l.t[0], l.x)
		}},
		scal("addS", "VADDPS", false), scal("subS", "VSUBPS", false), scal("rsubS", "VSUBPS", true),
		scal("mulS", "VMULPS", false), scal("divS", "VDIVPS", false), scal("rdivS", "VDIVPS", true),
		{name: "sum", kind: reduce, lanes: [2]int{4, 4}, combine: "VADDPS",
			body:  func(e *emitter, l lane, tail bool) {},
			accum: func(e *emitter, l lane, tail bool) { e.accAdd(l, tail) }},
		{name: "maxOf", kind: reduce, lanes: [2]int{4, 3}, combine: "VMAXPS", init: "negInf", nan: true, temps: 2,
			body: func(e *emitter, l lane, tail bool) {},
			accum: func(e *emitter, l lane, tail bool) {
				if e.is512() {
					e.p("VCMPPS $%d, %s, %s, K2", cmpUnord, l.x, l.x)
					e.p("KORW K2, K7, K7")
					if tail {
						e.p("VMAXPS %s, %s, K1, %s", l.x, l.acc, l.acc)
					} else {
						e.p("VMAXPS %s, %s, %s", l.x, l.acc, l.acc)
					}
					return
				}
				if tail {
					e.p("VBLENDVPS %s, %s, %s, %s", e.tailMask, l.x, e.cr("negInf", l.t[1]), l.x)
				}
				e.p("VCMPPS $%d, %s, %s, %s", cmpUnord, l.x, l.x, l.t[0])
				e.p("VORPS %s, Y15, Y15", l.t[0])
				e.p("VMAXPS %s, %s, %s", l.x, l.acc, l.acc)
			}},
		{name: "sumSqD", kind: reduce, params: []string{"m"}, lanes: [2]int{4, 4}, combine: "VADDPS",
			body: func(e *emitter, l lane, tail bool) {
				e.p("VSUBPS %s, %s, %s", e.c("m"), l.x, l.x)
			},
			accum: func(e *emitter, l lane, tail bool) {
				switch {
				case e.is512() && tail:
					e.p("VFMADD231PS %s, %s, K1, %s", l.x, l.x, l.acc)
				case tail:
					e.p("VANDPS %s, %s, %s", e.tailMask, l.x, l.x)
					fallthrough
				default:
					e.p("VFMADD231PS %s, %s, %s", l.x, l.x, l.acc)
				}
			}},
		{name: "expSub", kind: mapRed, params: []string{"m"}, consts: expConsts, temps: 3, lanes: [2]int{4, 2}, combine: "VADDPS",
			body: func(e *emitter, l lane, tail bool) {
				e.p("VSUBPS %s, %s, %s", e.c("m"), l.x, l.x)
				expBody(e, l.x, l.t)
			},
			accum: func(e *emitter, l lane, tail bool) { e.accAdd(l, tail) }},
		{name: "norm", kind: norm, params: []string{"mean", "inv"}, lanes: [2]int{4, 4}, temps: 1},
		{name: "normNB", kind: norm, params: []string{"mean", "inv"}, lanes: [2]int{4, 4}, temps: 1, noBias: true},
	}
	return fs
}

// accAdd adds l.x into l.acc (masked in the tail).
func (e *emitter) accAdd(l lane, tail bool) {
	switch {
	case e.is512() && tail:
		e.p("VADDPS %s, %s, K1, %s", l.x, l.acc, l.acc)
	case tail:
		e.p("VANDPS %s, %s, %s", e.tailMask, l.x, l.x)
		fallthrough
	default:
		e.p("VADDPS %s, %s, %s", l.x, l.acc, l.acc)
	}
}

// goSig returns the Go parameter list and result of f.
func goSig(f *fn) (string, string) {
	var ps []string
	switch f.kind {
	case unary, mapRed:
		ps = append(ps, "dst, x []float32")
	case binary:
		ps = append(ps, "dst, a, b []float32")
	case reduce:
		ps = append(ps, "x []float32")
	case norm:
		if f.noBias {
			ps = append(ps, "dst, x, scale []float32")
		} else {
			ps = append(ps, "dst, x, scale, bias []float32")
		}
	}
	if len(f.params) > 0 {
		ps = append(ps, strings.Join(f.params, ", ")+" float32")
	}
	ret := ""
	if f.kind == reduce || f.kind == mapRed {
		ret = " float32"
	}
	return strings.Join(ps, ", "), ret
}

// frame returns the argument offsets: slices (base offset by name),
// parameters, result, and the total size.
func frame(f *fn) (slices map[string]int, params map[string]int, ret, size int) {
	slices, params = map[string]int{}, map[string]int{}
	var names []string
	switch f.kind {
	case unary, mapRed:
		names = []string{"dst", "x"}
	case binary:
		names = []string{"dst", "a", "b"}
	case reduce:
		names = []string{"x"}
	case norm:
		names = []string{"dst", "x", "scale", "bias"}
		if f.noBias {
			names = names[:3]
		}
	}
	off := 0
	for _, n := range names {
		slices[n] = off
		off += 24
	}
	for _, p := range f.params {
		params[p] = off
		off += 4
	}
	ret = -1
	if f.kind == reduce || f.kind == mapRed {
		off = (off + 7) &^ 7
		ret = off
		off += 4
	}
	return slices, params, ret, off
}

func (lv *level) r(i int) string { return fmt.Sprintf("%s%d", lv.prefix, i) }

// gen emits f for lv.
func gen(w *bytes.Buffer, lv *level, f *fn, used map[string]bool) {
	e := &emitter{lv: lv, f: f, w: w, reg: map[string]string{}, used: used}
	name := f.name + lv.name
	slices, params, ret, size := frame(f)
	fmt.Fprintf(w, "\n// func %s(%s)%s\n", name, func() string { s, _ := goSig(f); return s }(), func() string { _, r := goSig(f); return r }())
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", name, size)

	L := f.lanes[0]
	if lv == avx2 {
		L = f.lanes[1]
	}
	// Register plan: lanes first, then parameters and constants.
	next := 0
	alloc := func() string {
		r := lv.r(next)
		next++
		return r
	}
	lanes := make([]lane, L)
	for i := range lanes {
		lanes[i].x = alloc()
	}
	if f.kind == binary {
		for i := range lanes {
			lanes[i].b = alloc()
		}
	}
	if f.kind == reduce || f.kind == mapRed {
		for i := range lanes {
			lanes[i].acc = alloc()
		}
	}
	for i := range lanes {
		for j := 0; j < f.temps; j++ {
			lanes[i].t = append(lanes[i].t, alloc())
		}
		lanes[i].k = fmt.Sprintf("K%d", 2+i)
	}
	top := lv.nreg
	if lv == avx2 {
		// Y15 holds the tail mask; maxOf also keeps NaN flags in Y15 and
		// moves the mask to Y14.
		top--
		e.tailMask = lv.r(lv.nreg - 1)
		if f.nan {
			top--
			e.tailMask = lv.r(lv.nreg - 2)
		}
	}
	for _, p := range f.params {
		e.reg[p] = alloc()
	}
	for _, c := range f.consts {
		if next < top {
			e.reg[c] = alloc()
		}
	}
	if next > top {
		panic(fmt.Sprintf("%s: out of registers", name))
	}

	// Prologue.
	p := e.p
	for _, n := range []string{"dst", "x", "a", "b", "scale", "bias"} {
		if off, ok := slices[n]; ok {
			reg := map[string]string{"dst": "DI", "x": "SI", "a": "SI", "b": "DX", "scale": "DX", "bias": "R8"}[n]
			p("MOVQ %s_base+%d(FP), %s", n, off, reg)
		}
	}
	src := "x"
	if f.kind == binary {
		src = "a"
	}
	p("MOVQ %s_len+%d(FP), CX", src, slices[src]+8)
	var pnames []string
	for k := range e.reg {
		pnames = append(pnames, k)
	}
	sort.Strings(pnames)
	for _, k := range pnames {
		r := e.reg[k]
		if off, ok := params[k]; ok {
			p("VBROADCASTSS %s+%d(FP), %s", k, off, r)
		} else if k == "zero" {
			p("VXORPS %s, %s, %s", r, r, r)
		} else {
			used[k] = true
			p("VMOVUPS %s<>(SB), %s", k, r)
		}
	}
	for _, l := range lanes {
		if l.acc == "" {
			continue
		}
		if f.init != "" {
			p("VMOVUPS %s, %s", e.c(f.init), l.acc)
		} else {
			p("VXORPS %s, %s, %s", l.acc, l.acc, l.acc)
		}
	}
	if f.nan {
		if lv == avx512 {
			p("KXORW K7, K7, K7")
		} else {
			p("VXORPS Y15, Y15, Y15")
		}
	}
	W := lv.width
	bytesW := 4 * W
	advance := func(k int) {
		for _, n := range []string{"dst", "x", "a", "b", "scale", "bias"} {
			if _, ok := slices[n]; ok {
				reg := map[string]string{"dst": "DI", "x": "SI", "a": "SI", "b": "DX", "scale": "DX", "bias": "R8"}[n]
				p("ADDQ $%d, %s", k*bytesW, reg)
			}
		}
		p("SUBQ $%d, CX", k*W)
	}
	// iteration emits k lanes at full width (tail=false) or one masked.
	iteration := func(k int, tail bool) {
		ls := lanes[:k]
		for i, l := range ls {
			off := i * bytesW
			switch {
			case !tail:
				p("VMOVUPS %d(SI), %s", off, l.x)
			case lv == avx512:
				p("VMOVUPS.Z (SI), K1, %s", l.x)
			default:
				p("VMASKMOVPS (SI), %s, %s", e.tailMask, l.x)
			}
			if f.kind == binary {
				switch {
				case !tail:
					p("VMOVUPS %d(DX), %s", off, l.b)
				case lv == avx512:
					p("VMOVUPS.Z (DX), K1, %s", l.b)
				default:
					p("VMASKMOVPS (DX), %s, %s", e.tailMask, l.b)
				}
			}
		}
		for i, l := range ls {
			if f.kind == norm {
				off := i * bytesW
				p("VSUBPS %s, %s, %s", e.c("mean"), l.x, l.x)
				p("VMULPS %s, %s, %s", e.c("inv"), l.x, l.x)
				switch {
				case !tail:
					p("VMULPS %d(DX), %s, %s", off, l.x, l.x)
					if !f.noBias {
						p("VADDPS %d(R8), %s, %s", off, l.x, l.x)
					}
				case lv == avx512:
					p("VMULPS (DX), %s, K1, %s", l.x, l.x)
					if !f.noBias {
						p("VADDPS (R8), %s, K1, %s", l.x, l.x)
					}
				default:
					p("VMASKMOVPS (DX), %s, %s", e.tailMask, l.t[0])
					p("VMULPS %s, %s, %s", l.t[0], l.x, l.x)
					if !f.noBias {
						p("VMASKMOVPS (R8), %s, %s", e.tailMask, l.t[0])
						p("VADDPS %s, %s, %s", l.t[0], l.x, l.x)
					}
				}
				continue
			}
			f.body(e, l, tail)
		}
		for i, l := range ls {
			off := i * bytesW
			if f.kind != reduce {
				switch {
				case !tail:
					p("VMOVUPS %s, %d(DI)", l.x, off)
				case lv == avx512:
					p("VMOVUPS %s, K1, (DI)", l.x)
				default:
					p("VMASKMOVPS %s, %s, (DI)", l.x, e.tailMask)
				}
			}
			if f.accum != nil {
				f.accum(e, l, tail)
			}
		}
	}
	if L > 1 {
		fmt.Fprintf(w, "loopU:\n")
		p("CMPQ CX, $%d", L*W)
		p("JB loop1")
		iteration(L, false)
		advance(L)
		p("JMP loopU")
	}
	fmt.Fprintf(w, "loop1:\n")
	p("CMPQ CX, $%d", W)
	p("JB tail")
	iteration(1, false)
	advance(1)
	p("JMP loop1")
	fmt.Fprintf(w, "tail:\n")
	p("TESTQ CX, CX")
	p("JE done")
	if lv == avx512 {
		p("MOVQ $1, AX")
		p("SHLQ CX, AX")
		p("DECQ AX")
		p("KMOVW AX, K1")
	} else {
		used["tailMasks"] = true
		p("LEAQ tailMasks<>(SB), AX")
		p("MOVQ $%d, BX", W)
		p("SUBQ CX, BX")
		p("VMOVUPS (AX)(BX*4), %s", e.tailMask)
	}
	iteration(1, true)
	fmt.Fprintf(w, "done:\n")
	if ret >= 0 {
		acc := lanes[0].acc
		for _, l := range lanes[1:] {
			p("%s %s, %s, %s", f.combine, l.acc, acc, acc)
		}
		x0 := "X" + acc[1:]
		y0 := "Y" + acc[1:]
		tmp := lanes[0].x
		xt, yt := "X"+tmp[1:], "Y"+tmp[1:]
		if lv == avx512 {
			p("VEXTRACTF32X8 $1, %s, %s", acc, yt)
			p("%s %s, %s, %s", f.combine, yt, y0, y0)
		}
		p("VEXTRACTF128 $1, %s, %s", y0, xt)
		p("%s %s, %s, %s", f.combine, xt, x0, x0)
		p("VPSHUFD $0x4e, %s, %s", x0, xt)
		p("%s %s, %s, %s", f.combine, xt, x0, x0)
		p("VPSHUFD $0xb1, %s, %s", x0, xt)
		p("%s %s, %s, %s", f.combine, xt, x0, x0)
		if f.nan {
			if lv == avx512 {
				p("KORTESTW K7, K7")
			} else {
				p("VPTEST Y15, Y15")
			}
			p("JE store")
			p("MOVL $0x7fc00000, AX")
			p("MOVL AX, ret+%d(FP)", ret)
			p("VZEROUPPER")
			p("RET")
			fmt.Fprintf(w, "store:\n")
		}
		p("VMOVSS %s, ret+%d(FP)", x0, ret)
	}
	p("VZEROUPPER")
	p("RET")
}

func main() {
	var s bytes.Buffer
	used := map[string]bool{}
	var body bytes.Buffer
	for _, lv := range []*level{avx512, avx2} {
		for _, f := range fns() {
			gen(&body, lv, f, used)
		}
	}
	s.WriteString("// Code generated by gen.go; DO NOT EDIT.\n\n//go:build amd64 && !noasm\n\n#include \"textflag.h\"\n")
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "tailMasks" {
			fmt.Fprintf(&s, "\n")
			for i := 0; i < 16; i++ {
				v := uint32(0xffffffff)
				if i >= 8 {
					v = 0
				}
				fmt.Fprintf(&s, "DATA tailMasks<>+%d(SB)/4, $0x%08x\n", 4*i, v)
			}
			fmt.Fprintf(&s, "GLOBL tailMasks<>(SB), RODATA|NOPTR, $64\n")
			continue
		}
		v := constVals[n]
		fmt.Fprintf(&s, "\n")
		for i := 0; i < 16; i++ {
			fmt.Fprintf(&s, "DATA %s<>+%d(SB)/4, $0x%08x\n", n, 4*i, v)
		}
		fmt.Fprintf(&s, "GLOBL %s<>(SB), RODATA|NOPTR, $64\n", n)
	}
	s.Write(body.Bytes())
	if err := os.WriteFile("vec_amd64.s", s.Bytes(), 0o644); err != nil {
		panic(err)
	}

	// Go declarations, wrappers and the per-tier tables.
	var g bytes.Buffer
	g.WriteString("// Code generated by gen.go; DO NOT EDIT.\n\n//go:build amd64 && !noasm\n\npackage vec\n\nimport \"github.com/goslim/goslim/internal/kernel\"\n")
	for _, lv := range []*level{avx512, avx2} {
		for _, f := range fns() {
			sig, ret := goSig(f)
			fmt.Fprintf(&g, "\n//go:noescape\nfunc %s%s(%s)%s\n", f.name, lv.name, sig, ret)
		}
	}
	for _, lv := range []*level{avx512, avx2} {
		for _, f := range fns() {
			sig, ret := goSig(f)
			w := f.name + lv.name
			var call string
			args := strings.Join(f.params, ", ")
			if args != "" {
				args = ", " + args
			}
			switch f.kind {
			case unary, mapRed:
				call = fmt.Sprintf("%s(dst[:len(x)], x%s)", w, args)
			case binary:
				call = fmt.Sprintf("%s(dst[:len(a)], a, b[:len(a)]%s)", w, args)
			case reduce:
				call = fmt.Sprintf("%s(x%s)", w, args)
			case norm:
				if f.noBias {
					call = fmt.Sprintf("%s(dst[:len(x)], x, scale[:len(x)]%s)", w, args)
				} else {
					call = fmt.Sprintf("%s(dst[:len(x)], x, scale[:len(x)], bias[:len(x)]%s)", w, args)
				}
			}
			if ret != "" {
				call = "return " + call
			}
			fmt.Fprintf(&g, "\nfunc %sW%s(%s)%s { %s }\n", f.name, lv.name, sig, ret, call)
		}
	}
	for _, lv := range []*level{avx512, avx2} {
		l := lv.name
		tier := map[string]string{"AVX512": "kernel.TierAVX512", "AVX2": "kernel.TierAVX2"}[l]
		fmt.Fprintf(&g, `
func %[1]sKernels() Kernels {
	return Kernels{
		Tier: %[2]s,
		Relu: reluW%[3]s, Clip: clipW%[3]s, LeakyRelu: leakyReluW%[3]s, HardSigmoid: hardSigmoidW%[3]s, HardSwish: hardSwishW%[3]s,
		AXPB: axpbW%[3]s, Exp: expW%[3]s, Sigmoid: sigmoidW%[3]s, Tanh: tanhW%[3]s, Erf: erfW%[3]s,
		Add: addW%[3]s, Sub: subW%[3]s, Mul: mulW%[3]s, Div: divW%[3]s, Max: maxW%[3]s,
		AddS: addSW%[3]s, SubS: subSW%[3]s, RSubS: rsubSW%[3]s, MulS: mulSW%[3]s, DivS: divSW%[3]s, RDivS: rdivSW%[3]s,
		Sum: sumW%[3]s, MaxOf: maxOfW%[3]s, SumSqD: sumSqDW%[3]s, ExpSub: expSubW%[3]s,
		Norm: func(dst, x, scale, bias []float32, mean, inv float32) {
			if bias == nil {
				normNBW%[3]s(dst, x, scale, mean, inv)
				return
			}
			normW%[3]s(dst, x, scale, bias, mean, inv)
		},
		MaxPool2: maxPool2W%[3]s,
	}
}
`, strings.ToLower(l), tier, l)
	}
	src, err := format.Source(g.Bytes())
	if err != nil {
		os.Stderr.Write(g.Bytes())
		panic(err)
	}
	if err := os.WriteFile("stubs_amd64.go", src, 0o644); err != nil {
		panic(err)
	}
}
