package int8

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// serialPar is a Parallelizer that runs the units in chunks on the
// calling goroutine (the chunking, not the concurrency, is what differs
// from one thread).
type serialPar struct{ threads int }

func (p serialPar) ParallelTask(n int, t kernel.Task) {
	th := max(min(p.threads, n), 1)
	for i := range th {
		t.Run(i*n/th, (i+1)*n/th)
	}
}

// randBatchShape returns randConvShape's shapes (kinds 0-3) and two more
// kinds: 4, channel counts that are multiples of 4 (the implicit-GEMM
// path) with rows long enough for the vector transposes; 5, wider
// strided and dilated convolutions with up to 80 output channels.
func randBatchShape(rng *rand.Rand, kind int) ConvShape {
	if kind < 4 {
		return randConvShape(rng, kind)
	}
	s := ConvShape{H: 1 + rng.IntN(9), W: 1 + rng.IntN(20), Group: 1, KH: 1 + rng.IntN(4), KW: 1 + rng.IntN(4),
		SH: 1, SW: 1, DH: 1 + rng.IntN(2), DW: 1 + rng.IntN(2),
		PadT: rng.IntN(3), PadL: rng.IntN(3), PadB: rng.IntN(3), PadR: rng.IntN(3)}
	s.C, s.M = 4*(1+rng.IntN(9)), 1+rng.IntN(80)
	if rng.IntN(3) == 0 {
		s.Group = 2
		s.C, s.M = 2*s.C, 2*s.M
	}
	if kind == 5 {
		s.SH, s.SW = 1+rng.IntN(3), 1+rng.IntN(3)
		s.C = 1 + rng.IntN(40)
		s.Group = 1
	}
	for s.H+s.PadT+s.PadB < (s.KH-1)*s.DH+1 {
		s.PadB++
	}
	for s.W+s.PadL+s.PadR < (s.KW-1)*s.DW+1 {
		s.PadR++
	}
	s.OH = (s.H+s.PadT+s.PadB-((s.KH-1)*s.DH+1))/s.SH + 1
	s.OW = (s.W+s.PadL+s.PadR-((s.KW-1)*s.DW+1))/s.SW + 1
	return s
}

// TestConvBatchMatchesRef checks ConvBatch over every layout pair, several
// images, uint8/int8/int32 outputs, signed inputs, weight zero points and
// chunked units against ConvRef per image, with guard bands, on every
// tier; goTaps also runs the implicit-GEMM path on its Go kernel.
func TestConvBatchMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, tier := range testTiers() {
		for trial := range 144 {
			s := randBatchShape(rng, trial%6)
			n := 1 + rng.IntN(3)
			signed := trial%3 == 1
			cg := s.C / s.Group
			w := make([]int8, s.M*cg*s.KH*s.KW)
			for i := range w {
				w[i] = int8(rng.IntN(256) - 128)
				if trial%8 == 6 {
					w[i] = int8(rng.IntN(129) - 64) // the AVX2 fast path
				}
			}
			inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
			x := make([]uint8, n*inImg)
			for i := range x {
				x[i] = uint8(rng.IntN(256))
			}
			var zb []int32
			if trial%5 == 2 {
				zb = make([]int32, s.M)
				for i := range zb {
					zb[i] = int32(rng.IntN(7) - 3)
				}
			}
			za := int32(rng.IntN(256))
			if signed {
				za -= 128
			}
			bias := make([]int32, s.M)
			for i := range bias {
				bias[i] = int32(rng.IntN(20001) - 10000)
			}
			reals := make([]float64, s.M)
			for i := range reals {
				reals[i] = 0.0005 + rng.Float64()*0.004
				if trial%7 == 5 {
					reals[i] = 0.5 + rng.Float64()*2 // shifts below 31
				}
			}
			if trial%5 == 3 {
				reals = reals[:1] // per-tensor
			}
			lo, hi := int32(0), int32(255)
			int8Out := trial%4 == 3
			if int8Out {
				lo, hi = -128, 127
			}
			r, err := NewRequant(reals, int32(rng.IntN(int(hi-lo+1)))+lo, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			cw, err := NewConvWeights(w, zb, s.M, cg, s.KH, s.KW, s.Group)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int8, n*outImg)
			want32 := make([]int32, n*outImg)
			for img := range n {
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, r, want[img*outImg:(img+1)*outImg])
				ConvRef(&s, w, zb, x[img*inImg:(img+1)*inImg], signed, za, bias, nil, want32[img*outImg:(img+1)*outImg])
			}
			for _, lay := range [][2]Layout{{NCHW, NCHW}, {NCHW, NHWC}, {NHWC, NHWC}, {NHWC, NCHW}} {
				xin := make([]uint8, len(x))
				ToLayout(xin, x, n, s.C, s.H*s.W, NCHW, lay[0])
				wantL := make([]uint8, len(want))
				ToLayout(wantL, bytesOfI8(want), n, s.M, s.OH*s.OW, NCHW, lay[1])
				want32L := make([]int32, len(want32))
				for img := range n {
					transposeOrCopy(want32L[img*outImg:(img+1)*outImg], want32[img*outImg:(img+1)*outImg], s.M, s.OH*s.OW, lay[1])
				}
				threads := 1 + trial%3
				for _, goTaps := range []bool{false, true} {
					if goTaps && (tier != kernel.TierGeneric || cw.Depthwise()) {
						continue
					}
					ws := make([]int32, cw.BatchScratch(&s, n, threads, lay[0], lay[1])+guard)
					for i := range ws {
						ws[i] = sentinel
					}
					a := &BatchArgs{N: n, X: xin, In: lay[0], Out: lay[1], Signed: signed, Zero: za, Bias: bias, Req: r,
						WS: ws[:len(ws)-guard], Threads: threads, Par: serialPar{threads}}
					a.task.goTaps = goTaps
					name := func() string {
						return fmt.Sprintf("%v trial %d %v n=%d threads %d goTaps %v %+v", tier, trial, lay, n, threads, goTaps, s)
					}
					got := make([]uint8, len(want)+guard)
					for i := range got {
						got[i] = 0xa5
					}
					var err error
					if int8Out {
						err = ConvBatch(tier, &s, cw, a, int8sOf(got[:len(want)]))
					} else {
						err = ConvBatch(tier, &s, cw, a, got[:len(want)])
					}
					if err != nil {
						t.Fatalf("%s: %v", name(), err)
					}
					for i := range guard {
						if got[len(want)+i] != 0xa5 || ws[len(ws)-guard+i] != sentinel {
							t.Fatalf("%s: guard overwritten", name())
						}
					}
					for i := range wantL {
						if got[i] != wantL[i] {
							t.Fatalf("%s: y[%d] = %d, want %d", name(), i, got[i], wantL[i])
						}
					}
					// int32 sums (no requantization).
					a.Req = nil
					got32 := make([]int32, len(want32)+guard)
					for i := range got32 {
						got32[i] = sentinel
					}
					if err := ConvBatch(tier, &s, cw, a, got32[:len(want32)]); err != nil {
						t.Fatalf("%s: %v", name(), err)
					}
					for i, v := range want32L {
						if got32[i] != v {
							t.Fatalf("%s int32: y[%d] = %d, want %d", name(), i, got32[i], v)
						}
					}
					for i := range guard {
						if got32[len(want32)+i] != sentinel {
							t.Fatalf("%s int32: guard overwritten", name())
						}
					}
				}
			}
		}
	}
}

// transposeOrCopy writes one image of M x P values src as dst in layout
// out.
func transposeOrCopy(dst, src []int32, m, p int, out Layout) {
	if out == NHWC {
		transposeT(dst, src, m, p)
		return
	}
	copy(dst, src)
}

// TestConvTapsAsmMatchesGo checks the implicit-GEMM kernels against
// convTapsGo: random taps, offsets, row strides, partial tiles and
// columns, several tiles per call, with guard bands around C.
func TestConvTapsAsmMatchesGo(t *testing.T) {
	if !implicitTier(kernel.TierVNNI) {
		t.Skip("no AVX-512 VNNI kernels here")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for trial := range 300 {
		mr := []int{8, 12, 16, 24}[trial%4]
		nc := convTapsCols(mr)
		taps, cg := 1+rng.IntN(9), 1+rng.IntN(6)
		nt := 1 + rng.IntN(3)
		rows := mr
		if nt == 1 {
			rows = 1 + rng.IntN(mr)
		}
		ncols := 1 + rng.IntN(nc)
		lda := 4*cg + rng.IntN(9)
		offs := make([]int, taps)
		maxOff := 0
		for i := range offs {
			offs[i] = rng.IntN(200)
			maxOff = max(maxOff, offs[i])
		}
		a := make([]uint8, (nt*mr-1)*lda+maxOff+4*cg)
		for i := range a {
			a[i] = uint8(rng.IntN(256))
		}
		b := make([]int8, (taps*cg-1)*nr*4+4*nc)
		for i := range b {
			b[i] = int8(rng.IntN(256) - 128)
		}
		ldc := ncols + rng.IntN(5)
		clen := ((nt-1)*mr+rows-1)*ldc + ncols
		want := make([]int32, clen+guard)
		got := make([]int32, clen+guard)
		for i := range got {
			got[i], want[i] = sentinel, sentinel
		}
		convTapsGo(mr, taps, cg, a, lda, offs, b, want, ldc, rows, ncols, nt)
		if !convTapsAsm(mr, taps, cg, a, lda, offs, b, got[:clen], ldc, rows, ncols, nt) {
			t.Fatal("assembly kernel did not run")
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d mr %d taps %d cg %d nt %d rows %d ncols %d: c[%d] = %d, want %d", trial, mr, taps, cg, nt, rows, ncols, i, got[i], want[i])
			}
		}
	}
}

// TestConvTapsOffsAsmMatchesGo checks the VNNI kernels with an A offset
// per tile against convTapsOffsGo: every tile shape, random tile offsets
// (in any order, overlapping), taps, groups and columns, guard bands
// around C.
func TestConvTapsOffsAsmMatchesGo(t *testing.T) {
	if !implicitTier(kernel.TierVNNI) {
		t.Skip("no AVX-512 VNNI kernels here")
	}
	rng := rand.New(rand.NewPCG(43, 44))
	for trial := range 300 {
		mr := []int{8, 12, 16, 24}[trial%4]
		nc := convTapsCols(mr)
		taps, cg := 1+rng.IntN(9), 1+rng.IntN(6)
		nt := 1 + rng.IntN(5)
		ncols := 1 + rng.IntN(nc)
		lda := 4*cg + rng.IntN(9)
		offs := make([]int, taps)
		maxOff := 0
		for i := range offs {
			offs[i] = rng.IntN(200)
			maxOff = max(maxOff, offs[i])
		}
		span := (mr-1)*lda + maxOff + 4*cg
		a := make([]uint8, span+rng.IntN(500))
		for i := range a {
			a[i] = uint8(rng.IntN(256))
		}
		toffs := make([]int, nt)
		for i := range toffs {
			toffs[i] = rng.IntN(len(a) - span + 1)
		}
		b := make([]int8, (taps*cg-1)*nr*4+4*nc)
		for i := range b {
			b[i] = int8(rng.IntN(256) - 128)
		}
		ldc := ncols + rng.IntN(5)
		clen := (nt*mr-1)*ldc + ncols
		want := make([]int32, clen+guard)
		got := make([]int32, clen+guard)
		for i := range got {
			got[i], want[i] = sentinel, sentinel
		}
		convTapsOffsGo(mr, taps, cg, a, toffs, lda, offs, b, want, ldc, ncols)
		if !convTapsOffsAsm(mr, taps, cg, a, toffs, lda, offs, b, got[:clen], ldc, ncols) {
			t.Fatal("assembly kernel did not run")
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d mr %d taps %d cg %d nt %d ncols %d: c[%d] = %d, want %d", trial, mr, taps, cg, nt, ncols, i, got[i], want[i])
			}
		}
	}
}

// TestConvTapsYmmMatchesGo checks the AVX-VNNI and AVX2 implicit-GEMM
// kernels (6 x 16) against convTapsGo like TestConvTapsAsmMatchesGo (AVX2
// with weights in [-64, 64], where VPMADDUBSW cannot saturate).
func TestConvTapsYmmMatchesGo(t *testing.T) {
	if !KernelAVXVNNI.Available() && !KernelAVX2.Available() {
		t.Skip("neither the AVX-VNNI nor the AVX2 kernels are available")
	}
	rng := rand.New(rand.NewPCG(45, 46))
	for _, vnni := range []bool{true, false} {
		if (vnni && !KernelAVXVNNI.Available()) || (!vnni && !KernelAVX2.Available()) {
			continue
		}
		for trial := range 200 {
			const mr, nc = 6, 16
			taps, cg := 1+rng.IntN(9), 1+rng.IntN(6)
			nt := 1 + rng.IntN(3)
			rows := mr
			if nt == 1 {
				rows = 1 + rng.IntN(mr)
			}
			ncols := 1 + rng.IntN(nc)
			lda := 4*cg + rng.IntN(9)
			offs := make([]int, taps)
			maxOff := 0
			for i := range offs {
				offs[i] = rng.IntN(200)
				maxOff = max(maxOff, offs[i])
			}
			a := make([]uint8, (nt*mr-1)*lda+maxOff+4*cg)
			for i := range a {
				a[i] = uint8(rng.IntN(256))
			}
			b := make([]int8, (taps*cg-1)*nr*4+4*nc)
			for i := range b {
				b[i] = int8(rng.IntN(129) - 64)
				if vnni {
					b[i] = int8(rng.IntN(256) - 128)
				}
			}
			ldc := ncols + rng.IntN(5)
			clen := ((nt-1)*mr+rows-1)*ldc + ncols
			want := make([]int32, clen+guard)
			got := make([]int32, clen+guard)
			for i := range got {
				got[i], want[i] = sentinel, sentinel
			}
			convTapsGo(mr, taps, cg, a, lda, offs, b, want, ldc, rows, ncols, nt)
			if !convTapsYmmAsm(vnni, taps, cg, a, lda, offs, b, got[:clen], ldc, rows, ncols, nt) {
				t.Fatal("assembly kernel did not run")
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("vnni %v trial %d taps %d cg %d nt %d rows %d ncols %d: c[%d] = %d, want %d", vnni, trial, taps, cg, nt, rows, ncols, i, got[i], want[i])
				}
			}
		}
	}
}

// pathCase is a layer whose path is asserted: weights from [wlo, whi].
type pathCase struct {
	s        ConvShape
	wlo, whi int
}

// pathCases returns layers that together take every path ConvBatch has on
// tier (NHWC unsigned input): full-range weights (gather on avx2 and
// generic), |w| <= 63 (the AVX2 implicit kernels), a grouped convolution
// with Cg%4 != 0 (gather on every tier), a 1x1 (direct).
func pathCases() []pathCase {
	return []pathCase{
		{convShape(16, 9, 9, 24, 3, 1, 1, 1), -128, 127},  // implicit (VNNI tiers), else gather
		{convShape(16, 9, 9, 24, 3, 1, 1, 1), -63, 63},    // implicit on avx2 too
		{convShape(8, 13, 11, 40, 3, 2, 1, 1), -128, 127}, // strided
		{convShape(3, 9, 9, 16, 3, 2, 1, 1), -128, 127},
		{convShape(6, 9, 9, 12, 3, 1, 1, 3), -128, 127},  // Cg = 2: gather on every tier
		{convShape(16, 9, 9, 40, 1, 1, 0, 1), -128, 127}, // direct
		{convShape(12, 10, 10, 12, 3, 1, 1, 3), -128, 127},
		{convShape(8, 32, 32, 16, 3, 1, 1, 1), -128, 127}, // batched strided tiles in every worker
		{convShape(3, 48, 48, 16, 3, 2, 1, 1), -128, 127},
	}
}

// checkPaths fails unless the paths seen on tier include gather and
// direct, and implicit wherever the tier has implicit-GEMM kernels.
func checkPaths(t *testing.T, tier kernel.Tier, seen map[batchPath]bool) {
	t.Helper()
	k := For(tier)
	implicit := hasAsm && (implicitTier(tier) || k == KernelAVXVNNI || k == KernelAVX2)
	if !seen[pathGather] || !seen[pathDirect] || implicit != seen[pathImplicit] {
		t.Errorf("%v: paths taken %v, want gather, direct and implicit %v", tier, seen, implicit)
	}
}

// TestConvBatchAllocs checks that ConvBatch with a long-lived BatchArgs
// allocates nothing, on one thread and on two through a kernel.Ctx with
// a worker pool, for each path (asserted through choosePath).
func TestConvBatchAllocs(t *testing.T) {
	ctx2 := kernel.NewCtx(nil, 2, nil)
	ctx2.Pool = kernel.NewPool(2)
	defer ctx2.Pool.Close()
	for _, tier := range testTiers() {
		seen := map[batchPath]bool{}
		for _, c := range pathCases() {
			s := c.s
			l := newLayer(rand.New(rand.NewPCG(1, 2)), s, 3, c.wlo, c.whi)
			p, _ := choosePath(tier, &s, l.cw, NHWC, false, false)
			seen[p] = true
			for _, threads := range []int{1, 2} {
				a := &l.batch
				a.Threads, a.Par = threads, nil
				if threads > 1 {
					a.Par = ctx2
				}
				a.WS = make([]int32, l.cw.BatchScratch(&s, 3, threads, NHWC, NHWC))
				if n := testing.AllocsPerRun(5, func() {
					if err := ConvBatch(tier, &s, l.cw, a, l.y); err != nil {
						t.Fatal(err)
					}
				}); n != 0 {
					t.Errorf("%v %+v path %d threads %d: %v allocations per run, want 0", tier, s, p, threads, n)
				}
			}
		}
		checkPaths(t, tier, seen)
	}
}

// TestConvBatchErrors checks that ConvBatch and Conv reject bad operands
// with an error naming the problem (never a panic), and that
// NewConvWeights rejects zero points whose w - zb overflows int16.
func TestConvBatchErrors(t *testing.T) {
	s := ConvShape{C: 2, H: 3, W: 3, M: 2, Group: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 3, OW: 3}
	cw, err := NewConvWeights(make([]int8, 4), nil, 2, 2, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	cw3, err := NewConvWeights(make([]int8, 6), nil, 2, 3, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRequant([]float64{0.01}, 0, 0, 255)
	rs, _ := NewRequant([]float64{0.01}, 0, -128, 127)
	r3, _ := NewRequant([]float64{0.01, 0.02, 0.03}, 0, 0, 255)
	r3.Mult, r3.Shift = r3.Mult[:2], r3.Shift[:2] // 2 for 2 channels: valid
	rBad := &Requant{Lo: 0, Hi: 255}              // no multipliers
	rWide, _ := NewRequant([]float64{0.01}, 0, -1, 255)
	ok := func() BatchArgs {
		return BatchArgs{N: 2, X: make([]uint8, 36), In: NHWC, Out: NHWC, Req: r, WS: make([]int32, cw.BatchScratch(&s, 2, 1, NHWC, NHWC))}
	}
	y8, y32, yi8 := make([]uint8, 36), make([]int32, 36), make([]int8, 36)
	for _, c := range []struct {
		name string
		edit func(a *BatchArgs)
		cw   *ConvWeights
		y    any // nil: y8
		want string
	}{
		{"valid", func(a *BatchArgs) {}, nil, nil, ""},
		{"valid per-channel multipliers", func(a *BatchArgs) { a.Req = r3 }, nil, nil, ""},
		{"valid int8 output", func(a *BatchArgs) { a.Req = rs }, nil, yi8, ""},
		{"valid int32 output", func(a *BatchArgs) { a.Req = nil }, nil, y32, ""},
		{"valid signed input", func(a *BatchArgs) { a.Signed, a.Zero = true, -128 }, nil, nil, ""},
		{"short input", func(a *BatchArgs) { a.X = a.X[:35] }, nil, nil, "input"},
		{"short output", func(a *BatchArgs) {}, nil, make([]uint8, 35), "output"},
		{"no workspace", func(a *BatchArgs) { a.WS = nil }, nil, nil, "workspace"},
		{"negative N", func(a *BatchArgs) { a.N = -1 }, nil, nil, "images"},
		{"input layout", func(a *BatchArgs) { a.In = 2 }, nil, nil, "layout"},
		{"output layout", func(a *BatchArgs) { a.Out = 7 }, nil, nil, "layout"},
		{"weights mismatch", func(a *BatchArgs) {}, cw3, nil, "weights"},
		{"short bias", func(a *BatchArgs) { a.Bias = []int32{1} }, nil, nil, "bias"},
		{"uint8 zero above 255", func(a *BatchArgs) { a.Zero = 256 }, nil, nil, "zero point"},
		{"uint8 zero below 0", func(a *BatchArgs) { a.Zero = -1 }, nil, nil, "zero point"},
		{"int8 zero above 127", func(a *BatchArgs) { a.Signed, a.Zero = true, 128 }, nil, nil, "zero point"},
		{"no multipliers", func(a *BatchArgs) { a.Req = rBad }, nil, nil, "multipliers"},
		{"int32 output with requantization", func(a *BatchArgs) {}, nil, y32, "int32"},
		{"uint8 output without requantization", func(a *BatchArgs) { a.Req = nil }, nil, nil, "requantization"},
		{"uint8 range for int8 output", func(a *BatchArgs) {}, nil, yi8, "range"},
		{"range below uint8", func(a *BatchArgs) { a.Req = rWide }, nil, nil, "range"},
	} {
		a := ok()
		c.edit(&a)
		w := cw
		if c.cw != nil {
			w = c.cw
		}
		var y any = y8
		if c.y != nil {
			y = c.y
		}
		var errB, errC error
		ca := ConvArgs{X: a.X, Signed: a.Signed, Zero: a.Zero, Bias: a.Bias, Req: a.Req, WS: make([]int32, cw.ConvScratch(&s, 1))}
		switch y := y.(type) {
		case []uint8:
			errB = ConvBatch(kernel.Best(), &s, w, &a, y)
			errC = Conv(kernel.Best(), &s, w, &ca, y)
		case []int8:
			errB = ConvBatch(kernel.Best(), &s, w, &a, y)
			errC = Conv(kernel.Best(), &s, w, &ca, y)
		case []int32:
			errB = ConvBatch(kernel.Best(), &s, w, &a, y)
			errC = Conv(kernel.Best(), &s, w, &ca, y)
		}
		if c.want == "" {
			if errB != nil || errC != nil {
				t.Errorf("%s: ConvBatch %v, Conv %v", c.name, errB, errC)
			}
			continue
		}
		if errB == nil || !strings.Contains(errB.Error(), c.want) {
			t.Errorf("%s: ConvBatch error %v, want one naming %q", c.name, errB, c.want)
		}
		// Conv has no batch, layouts or N; its input is one image.
		switch c.name {
		case "negative N", "input layout", "output layout", "short input", "no workspace", "short output":
			continue
		}
		if errC == nil || !strings.Contains(errC.Error(), c.want) {
			t.Errorf("%s: Conv error %v, want one naming %q", c.name, errC, c.want)
		}
	}
	// The workspace is checked against the call's own plan: its words
	// suffice, one fewer is an error.
	for _, tier := range testTiers() {
		a := ok()
		p, kind := choosePath(tier, &s, cw, a.In, a.Signed, false)
		pl := newBatchPlan(&s, cw, a.N, a.Threads, p, kind)
		a.WS = make([]int32, pl.words(&s))
		if err := ConvBatch(tier, &s, cw, &a, y8); err != nil {
			t.Errorf("%v: workspace of the plan's %d words: %v", tier, len(a.WS), err)
		}
		a.WS = a.WS[:len(a.WS)-1]
		if err := ConvBatch(tier, &s, cw, &a, y8); err == nil || !strings.Contains(err.Error(), "workspace") {
			t.Errorf("%v: workspace one word short of the plan: error %v", tier, err)
		}
	}
	for _, c := range []struct {
		name string
		w    []int8
		zb   []int32
		ok   bool
	}{
		{"zero point at the int16 edge", []int8{-128, 127}, []int32{32639}, true},
		{"zero point past the int16 edge", []int8{-128, 127}, []int32{32640}, false},
		{"negative zero point past the edge", []int8{-128, 127}, []int32{-32641}, false},
		{"per-channel zero point past the edge", []int8{0, 0}, []int32{0, 40000}, false},
	} {
		_, err := NewConvWeights(c.w, c.zb, 2, 1, 1, 1, 1)
		if (err == nil) != c.ok {
			t.Errorf("NewConvWeights %s: error %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "zero point") {
			t.Errorf("NewConvWeights %s: error %v does not name the zero point", c.name, err)
		}
	}
}

// TestRequantTabMatchesOne checks the table-driven requantization (both
// its float64 path for sums below 2^22 and its 64-bit integer path, and
// the existing kernel on the same table when a shift is below 31)
// against Requant.One: random channel counts, per-tensor and
// per-channel multipliers, sums of every magnitude including the int32
// extremes, lengths that are not multiples of 16.
func TestRequantTabMatchesOne(t *testing.T) {
	if !requantAsm(kernel.Best()) {
		t.Skip("no AVX-512 requantization here")
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for trial := range 200 {
		M := 1 + rng.IntN(70)
		reals := make([]float64, M)
		for i := range reals {
			reals[i] = math.Ldexp(0.5+rng.Float64()/2, -1-rng.IntN(30))
			switch {
			case trial%9 == 4:
				reals[i] = 0.5 + rng.Float64()*3 // shifts below 31
			case trial%9 == 7:
				reals[i] = math.Ldexp(1, -1-rng.IntN(12)) // exact ties
			case trial%9 == 8:
				reals[i] = math.Ldexp(1+float64(rng.IntN(8))/8, -2-rng.IntN(12)) // near and exact ties
			case i%17 == 16:
				reals[i] = 0
			}
		}
		if trial%4 == 1 {
			reals = reals[:1]
		}
		lo, hi := int32(0), int32(255)
		if trial%2 == 1 {
			lo, hi = -128, 127
		}
		r, err := NewRequant(reals, lo+int32(rng.IntN(int(hi-lo+1))), lo+int32(rng.IntN(20)), hi-int32(rng.IntN(20)))
		if err != nil {
			t.Fatal(err)
		}
		L := reqLen(M)
		off := make([]int32, M)
		for i := range off {
			off[i] = int32(rng.IntN(2001) - 1000)
		}
		tab := make([]int32, reqTabLen(L))
		fast := reqTab(tab, M, off, r)
		rows := 1 + rng.IntN(9)
		if trial%2 == 0 {
			rows = 1 + rng.IntN(60) // groups of 64 values across the period's end
		}
		acc := make([]int32, rows*M)
		for i := range acc {
			switch rng.IntN(4) {
			case 0:
				acc[i] = int32(rng.IntN(1<<23) - 1<<22)
			case 1:
				acc[i] = int32(rng.Uint32())
			case 2:
				acc[i] = []int32{math.MinInt32, math.MaxInt32, 1<<22 - 1001, -(1 << 22) + 1000, 0}[rng.IntN(5)]
			default:
				acc[i] = int32(rng.IntN(200001) - 100000)
			}
		}
		if trial%3 == 0 {
			for i := range acc {
				acc[i] = int32(rng.IntN(1<<21) - 1<<20) // all on the float64 path, checked or not
			}
		}
		got := make([]uint8, len(acc)+guard)
		for i := range got {
			got[i] = 0xa5
		}
		z := int64(r.Zero)
		small := trial%3 == 0
		if fast {
			requantTabAsm(got[:len(acc)], acc, tab, !small || trial%2 == 0, r.Zero, r.Lo-r.Zero, r.Hi-r.Zero)
		} else {
			requantColsAsm(got[:len(acc)], acc, tab, 4*reqTabWords, tab[16:], tab[48:], 4*reqTabWords, r.Zero, int64(r.Lo)-z, int64(r.Hi)-z, reqPeriod(tab))
		}
		for i, a := range acc {
			want := uint8(r.One(a+off[i%M], i%M))
			if got[i] != want {
				t.Fatalf("trial %d M %d fast %v: value %d (acc %d, channel %d) = %d, want %d", trial, M, fast, i, a, i%M, got[i], want)
			}
		}
		for i := range guard {
			if got[len(acc)+i] != 0xa5 {
				t.Fatalf("trial %d: guard overwritten", trial)
			}
		}
	}
}

// refBatch returns ConvRef's output for l's n NHWC images in layout out.
func refBatch(l *benchLayer, n int, out Layout) []uint8 {
	s := &l.s
	img, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
	want := make([]uint8, n*outImg)
	xi, yi := make([]uint8, img), make([]uint8, outImg)
	for i := range n {
		ToLayout(xi, l.batch.X[i*img:(i+1)*img], 1, s.C, s.H*s.W, l.batch.In, NCHW)
		ConvRef(s, l.w, nil, xi, l.batch.Signed, l.batch.Zero, l.batch.Bias, l.batch.Req, yi)
		ToLayout(want[i*outImg:(i+1)*outImg], yi, 1, s.M, s.OH*s.OW, NCHW, out)
	}
	return want
}

// TestConvBatchThreads checks that one thread and real worker goroutines
// (a kernel.Ctx with a pool, 2 and 3 threads) equal ConvRef for each path
// (asserted through choosePath) and both output layouts (run with -race
// to check the sharing).
func TestConvBatchThreads(t *testing.T) {
	const n = 5
	for _, tier := range testTiers() {
		seen := map[batchPath]bool{}
		for _, c := range pathCases() {
			s := c.s
			for _, out := range []Layout{NHWC, NCHW} {
				l := newLayer(rand.New(rand.NewPCG(3, 4)), s, n, c.wlo, c.whi)
				p, _ := choosePath(tier, &s, l.cw, NHWC, false, false)
				seen[p] = true
				a := &l.batch
				a.Out = out
				want := refBatch(l, n, out)
				for _, threads := range []int{1, 2, 3} {
					ctx := kernel.NewCtx(nil, threads, nil)
					ctx.Pool = kernel.NewPool(threads)
					a.Threads, a.Par = threads, ctx
					a.WS = make([]int32, l.cw.BatchScratch(&s, n, threads, NHWC, out))
					clear(l.y)
					err := ConvBatch(tier, &s, l.cw, a, l.y)
					ctx.Pool.Close()
					if err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if l.y[i] != want[i] {
							t.Fatalf("%v %+v path %d out %v threads %d: y[%d] = %d, want %d", tier, s, p, out, threads, i, l.y[i], want[i])
						}
					}
				}
			}
		}
		checkPaths(t, tier, seen)
	}
}

// TestConvBatchTableCache checks that a BatchArgs reused across calls
// (and a copy of it) rebuilds its cached requantization table whenever
// the bias, the input zero point or the multipliers change: every call
// equals ConvRef.
func TestConvBatchTableCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	for _, tier := range testTiers() {
		for _, s := range []ConvShape{
			convShape(16, 7, 7, 40, 1, 1, 0, 1), // direct
			convShape(8, 7, 7, 24, 3, 1, 1, 1),  // implicit (VNNI tiers)
		} {
			const n = 2
			l := newBenchLayer(rng, s, n)
			w := make([]int8, s.M*s.C*s.KH*s.KW)
			for i := range w {
				w[i] = int8(rng.IntN(256) - 128)
			}
			cw, err := NewConvWeights(w, nil, s.M, s.C, s.KH, s.KW, 1)
			if err != nil {
				t.Fatal(err)
			}
			newReq := func(scale float64) *Requant {
				reals := make([]float64, s.M)
				for i := range reals {
					reals[i] = scale * (0.5 + rng.Float64())
				}
				r, err := NewRequant(reals, 9, 0, 255)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			a := l.batch
			a.WS = make([]int32, cw.BatchScratch(&s, n, 1, NHWC, NHWC))
			if err := ConvBatch(tier, &s, cw, &a, make([]uint8, n*s.M*s.OH*s.OW)); err != nil {
				t.Fatal(err)
			}
			b := a // a copy after a call (sharing a's table memory): a cache of its own
			b.WS = make([]int32, len(a.WS))
			bias2 := slices.Clone(l.bias)
			r1, r2 := newReq(0.001), newReq(0.002)
			for step, args := range []*BatchArgs{&a, &a, &b, &a, &a, &b, &a, &a} {
				switch step {
				case 3:
					l.bias[5]++ // in place
				case 4:
					a.Req = r2
				case 5:
					b.Bias = bias2
				case 6:
					a.Zero++
				case 7:
					a.Req = r1
				}
				got := make([]uint8, n*s.M*s.OH*s.OW)
				if err := ConvBatch(tier, &s, cw, args, got); err != nil {
					t.Fatal(err)
				}
				want := make([]uint8, len(got))
				img, out := s.C*s.H*s.W, s.M*s.OH*s.OW
				xi := make([]uint8, img)
				for i := range n {
					ToLayout(xi, args.X[i*img:(i+1)*img], 1, s.C, s.H*s.W, NHWC, NCHW)
					yi := make([]uint8, out)
					ConvRef(&s, w, nil, xi, false, args.Zero, args.Bias, args.Req, yi)
					ToLayout(want[i*out:(i+1)*out], yi, 1, s.M, s.OH*s.OW, NCHW, NHWC)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%v %+v step %d: ConvBatch differs from ConvRef", tier, s, step)
				}
			}
		}
	}
}

// TestConvBatchStridedTiles checks the strided implicit path's batched
// tiles (one A offset per tile) against ConvRef: blocks of more than
// maxTileOffs tiles, output rows with a tail after their full tiles,
// blocks starting inside an output row, 16- and 32-column tiles, on every
// tier and on the Go kernels, from NHWC and NCHW input.
func TestConvBatchStridedTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	shapes := []ConvShape{
		convShape(8, 32, 32, 2, 3, 1, 1, 1),  // 2 full 16-row tiles per output row, 192 per block
		convShape(4, 72, 72, 2, 3, 1, 1, 1),  // 3 full 24-row tiles per output row: flushes inside a row
		convShape(8, 20, 20, 40, 3, 1, 1, 1), // 12 + 8 rows per output row, 32 columns
		convShape(3, 48, 48, 16, 3, 2, 1, 1), // a stem: 24-row tiles
		convShape(3, 70, 70, 16, 3, 2, 1, 1), // a stem on 64 + 6 pixels per row (NCHW: the VBMI interleave and its tail)
		convShape(16, 9, 9, 24, 3, 2, 1, 1),  // 5 rows per output row: tails only
	}
	for _, tier := range testTiers() {
		for _, s := range shapes {
			for _, goTaps := range []bool{false, true} {
				if goTaps && tier != kernel.TierGeneric {
					continue
				}
				const n = 3
				l := newBenchLayer(rng, s, n)
				w := make([]int8, s.M*s.C*s.KH*s.KW)
				for i := range w {
					w[i] = int8(rng.IntN(256) - 128)
				}
				cw, err := NewConvWeights(w, nil, s.M, s.C, s.KH, s.KW, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range []Layout{NHWC, NCHW} {
					a := l.batch
					a.In = in
					a.WS = make([]int32, cw.BatchScratch(&s, n, 1, in, NHWC))
					a.task.goTaps = goTaps
					got := make([]uint8, n*s.M*s.OH*s.OW)
					if err := ConvBatch(tier, &s, cw, &a, got); err != nil {
						t.Fatal(err)
					}
					img, out := s.C*s.H*s.W, s.M*s.OH*s.OW
					want := make([]uint8, len(got))
					xi, yi := make([]uint8, img), make([]uint8, out)
					for i := range n {
						ToLayout(xi, a.X[i*img:(i+1)*img], 1, s.C, s.H*s.W, in, NCHW)
						ConvRef(&s, w, nil, xi, false, a.Zero, a.Bias, a.Req, yi)
						ToLayout(want[i*out:(i+1)*out], yi, 1, s.M, s.OH*s.OW, NCHW, NHWC)
					}
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("%v goTaps %v %v in %+v: value %d = %d, want %d", tier, goTaps, in, s, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestInterleave3 checks the VBMI 3-channel interleave against the
// definition: lengths around multiples of 64 (masked tails), flips, guard
// bytes.
func TestInterleave3(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	for _, n := range []int{0, 1, 21, 22, 32, 43, 63, 64, 65, 127, 128, 200, 1000} {
		for _, flip := range []uint8{0, 0x80} {
			x := make([][]uint8, 3)
			for c := range x {
				x[c] = make([]uint8, n, n+64)
				for i := range x[c] {
					x[c][i] = uint8(rng.IntN(256))
				}
			}
			dst := make([]uint8, 3*n+200)
			for i := range dst {
				dst[i] = 0xa5
			}
			if !interleave3Asm(true, dst[:3*n], x[0], x[1], x[2], flip) {
				t.Skip("no VBMI interleave here")
			}
			for p := range n {
				for c := range 3 {
					if got, want := dst[3*p+c], x[c][p]^flip; got != want {
						t.Fatalf("n %d flip %#x: pixel %d channel %d = %d, want %d", n, flip, p, c, got, want)
					}
				}
			}
			for i := 3 * n; i < len(dst); i++ {
				if dst[i] != 0xa5 {
					t.Fatalf("n %d: byte %d beyond the %d pixels written", n, i, n)
				}
			}
		}
	}
}
