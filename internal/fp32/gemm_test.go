package fp32

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
)

// guard is the value written around matrices to catch out-of-bounds writes.
const guard = float32(-12345.5)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// randEighths returns n multiples of 1/8 in [-4, 4]: products and sums of
// a few hundred of them are exact in float32, so fused and unfused
// multiply-adds agree bit for bit.
func randEighths(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.IntN(65)-32) / 8
	}
	return s
}

// testKernels returns the kernels of every tier available here.
func testKernels() []Kernels {
	var ks []Kernels
	for _, a := range archs() {
		if a.tier.Available() {
			ks = append(ks, Kernels{a})
		}
	}
	return ks
}

// TestFor checks tier selection: each available tier gets its own kernels
// and higher tiers fall back to the best below them.
func TestFor(t *testing.T) {
	if got := For(kernel.TierGeneric).Name(); got != "generic" {
		t.Fatalf("For(generic) = %s", got)
	}
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		want := "generic"
		for _, a := range archs() {
			if a.tier <= tier && a.tier.Available() {
				want = a.name
				break
			}
		}
		if got := For(tier).Name(); got != want {
			t.Fatalf("For(%v) = %s, want %s", tier, got, want)
		}
		if tier.Available() && For(tier).Tier() != tier {
			t.Fatalf("For(%v) runs tier %v", tier, For(tier).Tier())
		}
	}
	if For(kernel.TierAMX).Tier() > kernel.TierAVX512 {
		t.Fatal("no float32 kernels above AVX-512 exist")
	}
}

// TestTileEpLayout checks the tileEp offsets the assembly reads.
func TestTileEpLayout(t *testing.T) {
	var ep tileEp
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"flags", unsafe.Offsetof(ep.flags), 0}, {"alpha", unsafe.Offsetof(ep.alpha), 4},
		{"beta", unsafe.Offsetof(ep.beta), 8}, {"lo", unsafe.Offsetof(ep.lo), 12},
		{"hi", unsafe.Offsetof(ep.hi), 16}, {"leak", unsafe.Offsetof(ep.leak), 20},
		{"fix", unsafe.Offsetof(ep.fix), 24}, {"rowBias", unsafe.Offsetof(ep.rowBias), 32},
		{"colBias", unsafe.Offsetof(ep.colBias), 40},
	} {
		if c.got != c.off {
			t.Errorf("tileEp.%s at offset %d, assembly reads %d", c.name, c.got, c.off)
		}
	}
	if float32(1.0/6) != math.Float32frombits(0x3e2aaaab) {
		t.Error("HardSwish constant 1/6 in gen_tile.go is not float32(1.0/6)")
	}
}

// tileCase runs ar.tile and tileGo on the same random tile and compares
// the stored values (exact when exact) and the guard bands.
func tileCase(t *testing.T, r *rand.Rand, ar *arch, k, mr, ncols int, ep tileEp, act Act, exact bool) {
	t.Helper()
	w := ar.stripWidth(ncols)
	rnd := randSlice
	if exact {
		rnd = randEighths
	}
	a := rnd(r, k*ar.mr)
	b := rnd(r, k*w)
	ldc := ncols + r.IntN(5)
	const band = 19
	cbuf := make([]float32, 2*band+(mr-1)*ldc+ncols)
	for i := range cbuf {
		cbuf[i] = guard
	}
	cin := rnd(r, mr*ldc)
	for i := 0; i < mr; i++ {
		copy(cbuf[band+i*ldc:band+i*ldc+ncols], cin[i*ldc:i*ldc+ncols])
	}
	rb, cb := rnd(r, mr), rnd(r, ncols)
	ep.rowBias, ep.colBias = &rb[0], &cb[0]
	if act.Kind != ActNone {
		ep.setAct(act)
	}
	got := append([]float32(nil), cbuf...)
	want := append([]float32(nil), cbuf...)
	e1, e2 := ep, ep
	ar.tile(k, a, b, got[band:len(got)-band], ldc, mr, ncols, &e1)
	tileGo(k, a, ar.mr, b, w, want[band:len(want)-band], ldc, mr, ncols, &e2)
	name := fmt.Sprintf("%s k=%d mr=%d ncols=%d ldc=%d flags=%#x act=%+v", ar.name, k, mr, ncols, ldc, ep.flags, act)
	for i := range got {
		in := i >= band && i < len(got)-band && (i-band)%ldc < ncols
		if !in {
			if got[i] != guard {
				t.Fatalf("%s: guard element %d overwritten with %g", name, i, got[i])
			}
			continue
		}
		g, wv := got[i], want[i]
		if exact {
			if g != wv && !(g != g && wv != wv) {
				t.Fatalf("%s: C[%d] = %g, twin %g", name, i-band, g, wv)
			}
			continue
		}
		tol := 1e-5 * float64(k+4)
		if d := math.Abs(float64(g - wv)); !(d <= tol*(1+math.Abs(float64(wv)))) {
			t.Fatalf("%s: C[%d] = %g, twin %g", name, i-band, g, wv)
		}
	}
}

// TestTileTwins checks each micro-kernel against its pure-Go twin over all
// row counts, column tails, depths and epilogues, with guard bands.
func TestTileTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActClip, Lo: -1.5, Hi: 0.75},
		{Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.125}}
	for _, k := range testKernels() {
		ar := k.arch()
		for mr := 1; mr <= ar.mr; mr++ {
			for ncols := 1; ncols <= ar.nr; ncols++ {
				for _, depth := range []int{1, 2, 3, 4, 5, 9, 17} {
					flags := uint32(r.IntN(32))
					ep := tileEp{flags: flags, alpha: []float32{0.5, 2, -1.5}[r.IntN(3)], beta: []float32{1, 0.5, -2}[r.IntN(3)]}
					if flags&epBeta1 != 0 {
						ep.beta = 1
					}
					tileCase(t, r, ar, depth, mr, ncols, ep, acts[r.IntN(len(acts))], true)
				}
			}
		}
		for it := 0; it < 200; it++ {
			ep := tileEp{flags: uint32(r.IntN(32)), alpha: float32(r.NormFloat64()), beta: float32(r.NormFloat64())}
			tileCase(t, r, ar, 1+r.IntN(300), 1+r.IntN(ar.mr), 1+r.IntN(ar.nr), ep, acts[r.IntN(len(acts))], false)
		}
	}
}

// TestTileActSpecials feeds NaN, infinities and signed zeros (alpha = -1
// makes -0 from a +0 sum) through the activation epilogues: the kernels
// must equal their twin bit for bit.
func TestTileActSpecials(t *testing.T) {
	nz := float32(math.Copysign(0, -1))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, nz, -3, 3, 6, -6, 0.5, 1e-30, -1e-30}
	acts := []Act{{Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActClip, Lo: nz, Hi: 0},
		{Kind: ActClip, Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.01}}
	for _, k := range testKernels() {
		ar := k.arch()
		for _, act := range acts {
			for _, alpha := range []float32{1, -1} {
				for j0 := 0; j0 < len(specials); j0 += ar.nr {
					vals := specials[j0:min(len(specials), j0+ar.nr)]
					ncols := len(vals)
					// k = 1 with a = 1 puts b's values in the accumulators.
					a := make([]float32, ar.mr)
					a[0] = 1
					b := make([]float32, ar.stripWidth(ncols))
					copy(b, vals)
					got, want := make([]float32, ncols), make([]float32, ncols)
					ep := tileEp{alpha: alpha}
					if alpha != 1 {
						ep.flags = epAlpha
					}
					ep.setAct(act)
					e2 := ep
					ar.tile(1, a, b, got, ncols, 1, ncols, &ep)
					tileGo(1, a, ar.mr, b, len(b), want, ncols, 1, ncols, &e2)
					for j := range got {
						if math.Float32bits(got[j]) != math.Float32bits(want[j]) && !(got[j] != got[j] && want[j] != want[j]) {
							t.Errorf("%s %+v alpha=%g: f(%g) = %g (bits %#x), want %g (bits %#x)", ar.name, act, alpha, vals[j], got[j],
								math.Float32bits(got[j]), want[j], math.Float32bits(want[j]))
						}
					}
				}
			}
		}
	}
}

// gemmCase is one random Gemm problem.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra leading-dimension padding
	padC           int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g pads=%d/%d/%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// runGemmCase runs gemm and GemmRef on the same data; C has guard bands
// before, after and in the row padding, which must stay untouched.
func runGemmCase(t *testing.T, r *rand.Rand, tc gemmCase, name string, gemm gemmFunc) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.padA, bc+tc.padB, tc.n+tc.padC
	lda, ldb, ldc = max(lda, 1), max(ldb, 1), max(ldc, 1)
	a := randSlice(r, ar*lda)
	b := randSlice(r, br*ldb)
	const band = 7
	c0 := make([]float32, tc.m*ldc+2*band)
	for i := range c0 {
		c0[i] = guard
	}
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			if tc.beta == 0 {
				c0[band+i*ldc+j] = float32(math.NaN()) // must not be read
			} else {
				c0[band+i*ldc+j] = float32(r.NormFloat64())
			}
		}
	}
	got := append([]float32(nil), c0...)
	want := append([]float32(nil), c0...)
	gemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got[band:band+tc.m*ldc], ldc)
	GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want[band:band+tc.m*ldc], ldc)
	for i := range got {
		inC := i >= band && i < band+tc.m*ldc && (i-band)%ldc < tc.n
		if !inC {
			if got[i] != guard {
				t.Fatalf("%s %v: guard element %d overwritten with %g", name, tc, i, got[i])
			}
			continue
		}
		tol := 1e-4 * float64(tc.k+1)
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
			t.Fatalf("%s %v: C[%d] = %g, want %g", name, tc, i-band, got[i], want[i])
		}
	}
}

// viaRun is Gemm through k.Run with a workspace of exactly Scratch floats.
func viaRun(k Kernels) gemmFunc {
	return func(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		op := &GemmOp{M: m, N: n, K: kk, Alpha: alpha, Beta: beta, A: Mat{a, lda, transA}, B: Mat{b, ldb, transB}, C: c, LdC: ldc}
		k.Run(make([]float32, k.Scratch(op)), op)
	}
}

// viaPackedB is Gemm with op(B) packed by k.PackB.
func viaPackedB(k Kernels) gemmFunc {
	return func(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		pb := k.PackB(transB, kk, n, b, ldb)
		if pb.K() != kk || pb.N() != n {
			panic("PackedB dimensions")
		}
		op := &GemmOp{M: m, N: n, K: kk, Alpha: alpha, Beta: beta, A: Mat{a, lda, transA}, PB: pb, C: c, LdC: ldc}
		k.Run(make([]float32, k.Scratch(op)), op)
	}
}

// viaPackedA is Gemm with op(A) packed by k.PackA.
func viaPackedA(k Kernels) gemmFunc {
	return func(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		pa := k.PackA(transA, m, kk, a, lda)
		if pa.M() != m || pa.K() != kk {
			panic("PackedA dimensions")
		}
		op := &GemmOp{M: m, N: n, K: kk, Alpha: alpha, Beta: beta, PA: pa, B: Mat{b, ldb, transB}, C: c, LdC: ldc}
		k.Run(nil, op)
	}
}

func TestGemmRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 47, 64, 97}
	for _, k := range testKernels() {
		for it := 0; it < 500; it++ {
			tc := gemmCase{
				transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
				m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
				alpha: []float32{1, -0.5, 2, 0}[r.IntN(4)], beta: []float32{0, 1, 0.5, -2}[r.IntN(4)],
				padA: r.IntN(3), padB: r.IntN(3), padC: r.IntN(3),
			}
			switch it % 3 {
			case 0:
				runGemmCase(t, r, tc, k.Name()+" Run", viaRun(k))
			case 1:
				runGemmCase(t, r, tc, k.Name()+" PackB", viaPackedB(k))
			default:
				runGemmCase(t, r, tc, k.Name()+" PackA", viaPackedA(k))
			}
		}
	}
	runGemmCase(t, r, gemmCase{m: 33, n: 65, k: 17, alpha: 1, beta: 0.5, padC: 2}, "Gemm", Gemm)
}

// TestGemmBlocks covers the block edges of every tier: sizes around its
// depth, row and column blocks.
func TestGemmBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range testKernels() {
		ar := k.arch()
		mc, nc, kc := ar.mc, ar.nc, ar.kc
		cases := []gemmCase{
			{m: mc + 3, n: 9, k: kc + 5, alpha: 1, beta: 0},
			{m: 2*mc + 1, n: nc + 6, k: 3, alpha: 1, beta: 1},
			{transA: true, transB: true, m: mc - 1, n: 33, k: 2*kc + 1, alpha: 0.5, beta: -1, padA: 1, padB: 2, padC: 3},
			{transA: true, m: 5, n: nc + 1, k: kc, alpha: 1, beta: 0, padC: 1},
			{transB: true, m: 130, n: 70, k: 300, alpha: 2, beta: 0.5},
		}
		for i, tc := range cases {
			runGemmCase(t, r, tc, k.Name()+" Run", viaRun(k))
			if i < 2 {
				runGemmCase(t, r, tc, k.Name()+" PackB", viaPackedB(k))
				runGemmCase(t, r, tc, k.Name()+" PackA", viaPackedA(k))
			}
		}
	}
}

// TestGemmEpilogue checks bias and activations against a plain loop.
func TestGemmEpilogue(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: -0.5, Hi: 0.5}, {Kind: ActHardSwish},
		{Kind: ActLeakyRelu, Alpha: 0.2}, {Kind: ActSigmoid}}
	for _, k := range testKernels() {
		for it := 0; it < 120; it++ {
			m, n, kk := 1+r.IntN(40), 1+r.IntN(80), r.IntN(300)
			if it%10 == 0 {
				kk = 0
			}
			a, b := randSlice(r, m*kk), randSlice(r, kk*n)
			c := randSlice(r, m*n)
			op := &GemmOp{M: m, N: n, K: kk, Alpha: 1, Beta: []float32{0, 1, 0.5}[r.IntN(3)], A: Mat{a, max(kk, 1), false},
				B: Mat{b, n, false}, C: c, LdC: n, Act: acts[r.IntN(len(acts))]}
			if r.IntN(2) == 0 {
				op.RowBias = randSlice(r, m)
			}
			if r.IntN(2) == 0 {
				op.ColBias = randSlice(r, n)
			}
			want := append([]float32(nil), c...)
			GemmRef(false, false, m, n, kk, 1, a, max(kk, 1), b, n, op.Beta, want, n)
			for i := 0; i < m; i++ {
				row := want[i*n : (i+1)*n]
				for j := range row {
					if op.RowBias != nil {
						row[j] += op.RowBias[i]
					}
					if op.ColBias != nil {
						row[j] += op.ColBias[j]
					}
				}
				op.Act.Apply(row)
			}
			k.Run(nil, op)
			for i := range c {
				tol := 1e-4 * float64(kk+1)
				if d := math.Abs(float64(c[i] - want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
					t.Fatalf("%s m=%d n=%d k=%d act=%+v rb=%v cb=%v: C[%d] = %g, want %g", k.Name(), m, n, kk, op.Act,
						op.RowBias != nil, op.ColBias != nil, i, c[i], want[i])
				}
			}
		}
	}
}

// TestGemmConvSource checks the implicit-im2col operand against Im2col
// followed by an ordinary product.
func TestGemmConvSource(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, k := range testKernels() {
		for it := 0; it < 60; it++ {
			g := randGeom(r)
			ch := 1 + r.IntN(4)
			K := ch * g.KernelSize()
			out := g.OutSize()
			if out == 0 {
				continue
			}
			col0 := r.IntN(out)
			ncol := 1 + r.IntN(out-col0)
			img := randSlice(r, ch*g.InSize())
			col := make([]float32, K*ncol)
			g.Im2col(col, img, ch, col0, ncol)
			m := 1 + r.IntN(20)
			w := randSlice(r, m*K)
			want := make([]float32, m*ncol)
			GemmRef(false, false, m, ncol, K, 1, w, K, col, ncol, 0, want, ncol)
			got := make([]float32, m*ncol)
			op := &GemmOp{M: m, N: ncol, K: K, Alpha: 1, PA: k.PackA(false, m, K, w, K),
				Conv: &ConvSource{Geom: &g, Image: img, Channels: ch, Col0: col0}, C: got, LdC: ncol}
			k.Run(make([]float32, k.Scratch(op)), op)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4*float64(K+1)*(1+math.Abs(float64(want[i])))) {
					t.Fatalf("%s geom %+v ch=%d cols %d+%d m=%d: C[%d] = %g, want %g", k.Name(), g, ch, col0, ncol, m, i, got[i], want[i])
				}
			}
		}
	}
}

// TestGemmNoAllocs checks that Run with a big enough workspace allocates
// nothing.
func TestGemmNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, k := range testKernels() {
		a, b, c := randSlice(r, 70*90), randSlice(r, 90*50), make([]float32, 70*50)
		op := &GemmOp{M: 70, N: 50, K: 90, Alpha: 1, A: Mat{a, 90, false}, B: Mat{b, 50, false}, C: c, LdC: 50,
			RowBias: a[:70], Act: Act{Kind: ActRelu}}
		ws := make([]float32, k.Scratch(op))
		if n := testing.AllocsPerRun(5, func() { k.Run(ws, op) }); n != 0 {
			t.Errorf("%s: Run allocates %v times", k.Name(), n)
		}
	}
}

// tileBand is the guard band around C in the micro-kernel twin tests.
const tileBand = 15

// guardedTileC returns a C block of mr rows of ncols (stride ldc) with
// random contents inside a guard band, and a copy of it for the twin.
func guardedTileC(r *rand.Rand, mr, ldc, ncols int) (got, want []float32) {
	got = make([]float32, 2*tileBand+(mr-1)*ldc+ncols)
	for i := range got {
		got[i] = guard
	}
	cin := randEighths(r, len(got))
	for i := 0; i < mr; i++ {
		copy(got[tileBand+i*ldc:tileBand+i*ldc+ncols], cin[i*ldc:i*ldc+ncols])
	}
	return got, append([]float32(nil), got...)
}

// randTileEp returns a random epilogue (flags, row bias, activation).
func randTileEp(r *rand.Rand, mr int, acts []Act) tileEp {
	rb := randEighths(r, mr)
	ep := tileEp{flags: uint32(r.IntN(16)) &^ epColBias, alpha: 0.5, beta: -2, rowBias: &rb[0]}
	if ep.flags&epBeta1 != 0 {
		ep.beta = 1
	}
	ep.setAct(acts[r.IntN(len(acts))])
	return ep
}

// checkTileTwin fails on the first element (guard band included) where
// the assembly result differs from the twin's, NaNs counting as equal.
func checkTileTwin(t *testing.T, got, want []float32, label string) {
	t.Helper()
	for i := range got {
		if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: C[%d] = %g, twin %g", label, i-tileBand, got[i], want[i])
		}
	}
}

// TestTileIndTwin checks the indirect micro-kernel against tileIndGo (exact
// inputs, so bit for bit), with guard bands around C.
func TestTileIndTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.5}}
	for _, kern := range testKernels() {
		ar := kern.arch()
		if !hasIndirect(ar) {
			continue
		}
		for it := 0; it < 500; it++ {
			k, mr, ncols := 1+r.IntN(40), 1+r.IntN(ar.mr), 1+r.IntN(ar.nr)
			a := randEighths(r, k*ar.mr)
			b := randEighths(r, 200+ncols)
			offs := make([]int32, k)
			maxOff := 0
			for i := range offs {
				offs[i] = int32(r.IntN(201))
				maxOff = max(maxOff, int(offs[i]))
			}
			ldc := ncols + r.IntN(4)
			got, want := guardedTileC(r, mr, ldc, ncols)
			ep := randTileEp(r, mr, acts)
			e2 := ep
			b2 := b[16:]
			if r.IntN(2) == 0 {
				b2 = randEighths(r, 200+ncols)
			}
			asmTileInd(k, a, b, b2, offs, maxOff, got[tileBand:len(got)-tileBand], ldc, mr, ncols, &ep)
			tileIndGo(k, a, ar.mr, b, b2, offs, want[tileBand:len(want)-tileBand], ldc, mr, ncols, &e2)
			checkTileTwin(t, got, want, fmt.Sprintf("k=%d mr=%d ncols=%d flags=%#x", k, mr, ncols, ep.flags))
		}
	}
}

// TestTileInd4Twin checks the four-row indirect micro-kernel against
// tileInd4Go (exact inputs, so bit for bit), with guard bands around C.
func TestTileInd4Twin(t *testing.T) {
	r := rand.New(rand.NewPCG(37, 38))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.5}}
	for _, kern := range testKernels() {
		ar := kern.arch()
		if !hasIndirect(ar) {
			continue
		}
		for it := 0; it < 400; it++ {
			k, mr, nrows := 1+r.IntN(40), 1+r.IntN(ar.mr), 1+r.IntN(4)
			ncols := 8 * nrows
			a := randEighths(r, k*ar.mr)
			var b [4][]float32
			for j := range b {
				b[j] = randEighths(r, 108)
			}
			offs := make([]int32, k)
			maxOff := 0
			for i := range offs {
				offs[i] = int32(r.IntN(101))
				maxOff = max(maxOff, int(offs[i]))
			}
			ldc := ncols + r.IntN(4)
			got, want := guardedTileC(r, mr, ldc, ncols)
			ep := randTileEp(r, mr, acts)
			e2 := ep
			asmTileInd4(k, a, &b, offs, maxOff, got[tileBand:len(got)-tileBand], ldc, mr, ncols, &ep)
			tileInd4Go(k, a, ar.mr, &b, offs, want[tileBand:len(want)-tileBand], ldc, mr, ncols, &e2)
			checkTileTwin(t, got, want, fmt.Sprintf("k=%d mr=%d rows=%d flags=%#x", k, mr, nrows, ep.flags))
		}
	}
}

// TestWorkspaceGemm checks Workspace.Gemm against GemmRef and that it
// allocates nothing once grown (the package function Gemm gets a fresh
// workspace per call).
func TestWorkspaceGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	var w Workspace
	for _, s := range []struct{ m, n, k int }{{70, 50, 90}, {1, 300, 17}, {33, 1, 5}, {5, 7, 0}} {
		a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
		got, want, plain := make([]float32, s.m*s.n), make([]float32, s.m*s.n), make([]float32, s.m*s.n)
		w.Gemm(false, true, s.m, s.n, s.k, 0.5, a, max(s.k, 1), b, max(s.k, 1), 0, got, s.n)
		Gemm(false, true, s.m, s.n, s.k, 0.5, a, max(s.k, 1), b, max(s.k, 1), 0, plain, s.n)
		GemmRef(false, true, s.m, s.n, s.k, 0.5, a, max(s.k, 1), b, max(s.k, 1), 0, want, s.n)
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4*float64(s.k+1)*(1+math.Abs(float64(want[i])))) || got[i] != plain[i] {
				t.Fatalf("%dx%dx%d: C[%d] = %g (Gemm %g), want %g", s.m, s.n, s.k, i, got[i], plain[i], want[i])
			}
		}
		if n := testing.AllocsPerRun(5, func() {
			w.Gemm(false, true, s.m, s.n, s.k, 0.5, a, max(s.k, 1), b, max(s.k, 1), 0, got, s.n)
		}); n != 0 && s.m*s.n*s.k > 0 {
			t.Errorf("%dx%dx%d: Workspace.Gemm allocates %v times", s.m, s.n, s.k, n)
		}
	}
}

// TestSigmoidMatchesOp checks that a Sigmoid applied by a tier's kernels
// (ApplyAct, and the GEMM epilogue) equals that tier's vector Sigmoid, the
// loop the Sigmoid op runs, bit for bit.
func TestSigmoidMatchesOp(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	x := randSlice(r, 1000)
	for i := range x {
		x[i] *= float32(1 + i%40) // up to about +-80: saturation and tails
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), 88.7, -103.9, float32(math.Inf(1)), float32(math.Inf(-1)))
	sig := Act{Kind: ActSigmoid}
	for _, k := range testKernels() {
		vs := vec.For(k.Tier())
		want := make([]float32, len(x))
		vs.Sigmoid(want, x)
		got := append([]float32(nil), x...)
		k.ApplyAct(sig, got)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: ApplyAct Sigmoid(%g) = %g, vec %g", k.Name(), x[i], got[i], want[i])
			}
		}
		// GEMM epilogue: C = A*I (exact for finite A) then Sigmoid.
		m, n := 3, 1000/3
		ident := make([]float32, n*n)
		for i := 0; i < n; i++ {
			ident[i*n+i] = 1
		}
		c := make([]float32, m*n)
		k.Run(nil, &GemmOp{M: m, N: n, K: n, Alpha: 1, A: Mat{x, n, false}, B: Mat{ident, n, false}, C: c, LdC: n, Act: sig})
		for i := range c {
			if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: GEMM epilogue Sigmoid(%g) = %g, vec %g", k.Name(), x[i], c[i], want[i])
			}
		}
	}
	// Act.Apply is the generic tier's Sigmoid.
	got := append([]float32(nil), x...)
	sig.Apply(got)
	want := make([]float32, len(x))
	vec.SigmoidF64(want, x)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("Act.Apply Sigmoid(%g) = %g, generic %g", x[i], got[i], want[i])
		}
	}
}
