package int8

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/goslim/goslim/internal/kernel"
)

// guard is the number of sentinel elements on each side of C.
const guard = 37

const sentinel = int32(-0x5a5a5a5a)

// testTiers lists the session tiers to test: each available tier whose
// kernel (For) differs from the lower tiers'.
func testTiers() []kernel.Tier {
	var ts []kernel.Tier
	seen := map[Kernel]bool{}
	for t := kernel.TierGeneric; t <= kernel.TierAMX; t++ {
		if t.Available() && !seen[For(t)] {
			seen[For(t)] = true
			ts = append(ts, t)
		}
	}
	return ts
}

// randInputs returns random A and B: mode 0 uniform, 1 all extremes
// (255, -128), 2 random extremes, 3 weights in [-64, 64] (VPMADDUBSW-safe),
// 4 A at 0 or 255 and weight pairs at the edge of VPMADDUBSW-safe (a pair
// sums to +-128 at 255: exactly what the fast path must still get right).
func randInputs(rng *rand.Rand, M, N, K int, mode int) ([]uint8, []int8) {
	a := make([]uint8, M*K)
	b := make([]int8, K*N)
	for i := range a {
		switch mode {
		case 1:
			a[i] = 255
		case 2:
			a[i] = uint8([]int{0, 255}[rng.IntN(2)])
		default:
			a[i] = uint8(rng.IntN(256))
		}
	}
	for i := range b {
		switch mode {
		case 1:
			b[i] = -128
		case 2:
			b[i] = int8([]int{-128, 127}[rng.IntN(2)])
		case 3:
			b[i] = int8(rng.IntN(129) - 64)
		default:
			b[i] = int8(rng.IntN(256) - 128)
		}
	}
	if mode == 4 {
		pairs := [][2]int8{{127, 1}, {1, 127}, {-128, 0}, {0, -128}, {64, 64}, {-64, -64}, {127, -128}, {-128, 127}, {100, 28}, {-100, -28}}
		for k := 0; k < K; k += 2 {
			for j := range N {
				pr := pairs[rng.IntN(len(pairs))]
				b[k*N+j] = pr[0]
				if k+1 < K {
					b[(k+1)*N+j] = pr[1]
				} else if pr[0] > 0 {
					b[k*N+j] = 127
				}
			}
		}
		for i := range a {
			a[i] = uint8([]int{0, 255, 255}[rng.IntN(3)])
		}
	}
	return a, b
}

// gemmCase is one product to check: A with leading dimension lda (>= K)
// and C with ldc (>= N), optionally packed A, accumulation, threads.
type gemmCase struct {
	M, N, K, lda, ldc int
	mode              int
	packA, accumulate bool
	threads           int
}

func checkGemm(t *testing.T, k Kernel, gc gemmCase, rng *rand.Rand) {
	t.Helper()
	M, N, K := gc.M, gc.N, gc.K
	a0, b := randInputs(rng, M, N, K, gc.mode)
	lda, ldc := max(gc.lda, K), max(gc.ldc, N)
	// A with a stride, exactly (M-1)*lda+K long so over-reads would panic.
	a := make([]uint8, (M-1)*lda+K)
	for m := range M {
		copy(a[m*lda:], a0[m*K:m*K+K])
	}
	want := make([]int32, M*N)
	GemmRef(want, a0, b, M, N, K)
	clen := (M-1)*ldc + N
	buf := make([]int32, clen+2*guard)
	for i := range buf {
		buf[i] = sentinel
	}
	c := buf[guard : guard+clen : guard+clen]
	init := make([]int32, M*N)
	if gc.accumulate {
		for i := range init {
			init[i] = int32(rng.Uint32())
		}
		for m := range M {
			copy(c[m*ldc:m*ldc+N], init[m*N:])
		}
	}
	op := &GemmOp{M: M, A: a, LdA: lda, B: PackB(b, K, N), C: c, LdC: ldc, Accumulate: gc.accumulate}
	if gc.packA {
		op.A, op.LdA, op.PA = nil, 0, PackA(a, M, K, lda)
	}
	if gc.threads > 1 {
		k.RunParallel(op, gc.threads, kernel.NewCtx(nil, gc.threads, nil))
	} else {
		k.Run(op)
	}
	for i := range guard {
		if buf[i] != sentinel || buf[len(buf)-1-i] != sentinel {
			t.Fatalf("%v %+v: guard band overwritten", k, gc)
		}
	}
	for m := range M {
		for n := range N {
			if got, w := c[m*ldc+n], want[m*N+n]+init[m*N+n]; got != w {
				t.Fatalf("%v %+v: c[%d,%d] = %d, want %d", k, gc, m, n, got, w)
			}
		}
		for n := N; n < ldc && m < M-1; n++ {
			if c[m*ldc+n] != sentinel {
				t.Fatalf("%v %+v: c[%d,%d] between rows written", k, gc, m, n)
			}
		}
	}
}

func testShapes(rng *rand.Rand) [][3]int {
	shapes := [][3]int{
		{1, 1, 1}, {1, 1, 4}, {2, 3, 5}, {12, 32, 4}, {13, 33, 7}, {11, 31, 3}, {1, 17, 2}, {5, 1, 1}, {4, 9, 1},
		{24, 64, 64}, {25, 17, 129}, {5, 9, 1100}, {14, 47, 1031}, {7, 100, 250}, {37, 65, 513}, {12, 16, 8}, {3, 48, 2},
		{32, 32, 64}, {33, 31, 65}, {64, 48, 127}, {31, 16, 27}, {100, 16, 144},
		{60, 16, 1100}, {50, 13, 2000}, {100, 40, 1100}, {97, 8, 9},
	}
	for range 16 {
		shapes = append(shapes, [3]int{1 + rng.IntN(70), 1 + rng.IntN(90), 1 + rng.IntN(300)})
	}
	return shapes
}

func TestGemmKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := testShapes(rng)
	for _, k := range Kernels() {
		t.Run(k.String(), func(t *testing.T) {
			for i, s := range shapes {
				for mode := range 5 {
					gc := gemmCase{M: s[0], N: s[1], K: s[2], mode: mode}
					switch (i + mode) % 4 {
					case 1:
						gc.lda, gc.ldc = s[2]+rng.IntN(9), s[1]+1+rng.IntN(5)
					case 2:
						gc.packA = true
					case 3:
						gc.accumulate, gc.threads = true, 2+rng.IntN(3)
					}
					checkGemm(t, k, gc, rng)
				}
			}
		})
	}
}

// TestGemmTiers runs Gemm through each available session tier.
func TestGemmTiers(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for tier := kernel.TierGeneric; tier <= kernel.TierAMX; tier++ {
		if !tier.Available() {
			continue
		}
		k := For(tier)
		if !k.Available() {
			t.Fatalf("For(%v) = %v, not available", tier, k)
		}
		for _, s := range [][3]int{{13, 33, 7}, {40, 70, 300}} {
			a, b := randInputs(rng, s[0], s[1], s[2], 0)
			want := make([]int32, s[0]*s[1])
			got := make([]int32, s[0]*s[1])
			GemmRef(want, a, b, s[0], s[1], s[2])
			Gemm(tier, got, a, s[0], PackB(b, s[2], s[1]))
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("tier %v (%v) %v: c[%d] = %d, want %d", tier, k, s, i, got[i], want[i])
				}
			}
		}
	}
}

// TestGemmParallel splits along rows and along columns.
func TestGemmParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k := range Kernels() {
		for _, s := range [][3]int{{200, 20, 50}, {3, 300, 70}, {1, 1000, 33}, {50, 50, 9}} {
			for _, th := range []int{2, 3, 8} {
				checkGemm(t, k, gemmCase{M: s[0], N: s[1], K: s[2], threads: th}, rng)
			}
		}
	}
}

// TestGemmExtremeK checks int32 wrap-around parity for a long K at the extremes.
func TestGemmExtremeK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range Kernels() {
		checkGemm(t, k, gemmCase{M: 13, N: 35, K: 70001, mode: 1}, rng)
	}
}

// TestPairSafeEdge: edge-of-safe weights take the fast AVX2 path.
func TestPairSafeEdge(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	_, b := randInputs(rng, 3, 40, 31, 4)
	if !PackB(b, 31, 40).SaturationFree() {
		t.Fatal("edge weights not SaturationFree")
	}
}

func TestPairSafe(t *testing.T) {
	for _, tc := range []struct {
		b    []int8
		K    int
		want bool
	}{
		{[]int8{64, 64}, 2, true},
		{[]int8{64, 65}, 2, false},
		{[]int8{-64, -64}, 2, true},
		{[]int8{-64, -65}, 2, false},
		{[]int8{127, -128}, 2, true},
		{[]int8{127, 1}, 2, true},
		{[]int8{127, 2}, 2, false},
		{[]int8{-128}, 1, true},
		{[]int8{100, 0, 100}, 3, true}, // pairs (0,1), (2,pad)
		{[]int8{0, 100, 100}, 3, true},
		{[]int8{100, 100, 0}, 3, false},
	} {
		if got := PackB(tc.b, tc.K, 1).SaturationFree(); got != tc.want {
			t.Errorf("%v: SaturationFree = %v, want %v", tc.b, got, tc.want)
		}
	}
}

// TestGemmAllocs checks that Gemm, Run and a prepared Task allocate
// nothing, including tails (K % 4 != 0, M not a multiple of the tile).
func TestGemmAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	M, N, K := 29, 45, 99
	a, b := randInputs(rng, M, N, K, 0)
	pb := PackB(b, K, N)
	c := make([]int32, M*N)
	ctx := kernel.NewCtx(nil, 1, nil)
	ctx2 := kernel.NewCtx(nil, 2, nil)
	ctx2.Pool = kernel.NewPool(2)
	defer ctx2.Pool.Close()
	for _, k := range Kernels() {
		op := &GemmOp{M: M, A: a, B: pb, C: c}
		var task, task2 Task
		if n := testing.AllocsPerRun(5, func() {
			Gemm(kernel.TierGeneric, c, a, M, pb)
			k.Run(op)
			task.Kernel, task.Op = k, *op
			ctx.ParallelTask(task.Split(ctx.Threads), &task)
			task2.Kernel, task2.Op = k, *op
			ctx2.ParallelTask(task2.Split(ctx2.Threads), &task2)
		}); n != 0 {
			t.Errorf("%v: %v allocations per run, want 0", k, n)
		}
	}
}

func TestSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	M, N, K := 9, 21, 23
	a, b := randInputs(rng, M, N, K, 0)
	za := int32(131)
	rs := RowSums(a, M, K, nil)
	p := PackB(b, K, N)
	cs := p.ColSums()
	c := make([]int32, M*N)
	Gemm(kernel.Best(), c, a, M, p)
	for m := range M {
		var s int32
		for k := range K {
			s += int32(a[m*K+k])
		}
		if rs[m] != s {
			t.Fatalf("RowSums[%d] = %d, want %d", m, rs[m], s)
		}
		for n := range N {
			var want int32
			for k := range K {
				want += (int32(a[m*K+k]) - za) * int32(b[k*N+n])
			}
			if got := c[m*N+n] - za*cs[n]; got != want {
				t.Fatalf("zero-point correction [%d,%d] = %d, want %d", m, n, got, want)
			}
		}
	}
}

func TestParseKernel(t *testing.T) {
	for k := KernelGo; k <= KernelAMX; k++ {
		if got, err := ParseKernel(k.String()); err != nil || got != k {
			t.Errorf("ParseKernel(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := ParseKernel("sse"); err == nil {
		t.Error("ParseKernel(sse): no error")
	}
}

// benchShapes are the square sizes and CNN-like shapes (M positions x N
// output channels x K = channels*taps) of the benchmarks.
var benchShapes = []struct {
	name    string
	M, N, K int
}{
	{"256", 256, 256, 256},
	{"512", 512, 512, 512},
	{"1024", 1024, 1024, 1024},
	{"conv3x3_32x32x32_c16", 32 * 32 * 32, 16, 144},
	{"conv3x3_8x8x32_c64", 8 * 8 * 32, 64, 576},
	{"pw_16x16x32_c32to64", 16 * 16 * 32, 64, 32},
	{"pw_12x12x32_c96to24", 12 * 12 * 32, 24, 96},
	{"fc_b32_512to256", 32, 256, 512},
}

// BenchmarkGemm reports GOP/s (a multiply-add counts 2) by wall time and
// by thread CPU time (cpu-GOP/s: excludes time the shared VM gives to
// other processes). Weights are full range except for avx2-safe, which
// uses |w| <= 64 (the AVX2 fast path).
func BenchmarkGemm(b *testing.B) {
	type variant struct {
		name string
		k    Kernel
		mode int
	}
	var vs []variant
	for _, k := range Kernels() {
		vs = append(vs, variant{k.String(), k, 0})
		if k == KernelAVX2 {
			vs = append(vs, variant{"avx2-safe", k, 3})
		}
	}
	for _, v := range vs {
		for _, s := range benchShapes {
			if v.k == KernelGo && s.M*s.N*s.K > 1<<28 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s", v.name, s.name), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				a, bm := randInputs(rng, s.M, s.N, s.K, v.mode)
				p := PackB(bm, s.K, s.N)
				c := make([]int32, s.M*s.N)
				op := &GemmOp{M: s.M, A: a, B: p, C: c}
				ops := 2 * float64(s.M) * float64(s.N) * float64(s.K)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				best := time.Duration(1 << 62)
				c0 := threadCPU()
				for b.Loop() {
					t0 := threadCPU()
					v.k.Run(op)
					best = min(best, threadCPU()-t0)
				}
				cpu := threadCPU() - c0
				b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				if cpu > 0 {
					b.ReportMetric(ops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GOP/s")
					if best > 0 {
						b.ReportMetric(ops/best.Seconds()/1e9, "best-GOP/s")
					}
				}
			})
		}
	}
}

// BenchmarkGemmThreads runs the best kernel at 1024^3 and a conv shape on
// 1 and 2 threads through kernel.Ctx.ParallelTask with a session-style
// worker pool (wall GOP/s: thread CPU time does not add up across threads).
func BenchmarkGemmThreads(b *testing.B) {
	k := For(kernel.Best())
	for _, s := range []struct {
		name    string
		M, N, K int
	}{{"1024", 1024, 1024, 1024}, {"conv3x3_32x32x32_c16", 32 * 32 * 32, 16, 144}} {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/%s/threads=%d", k, s.name, th), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				a, bm := randInputs(rng, s.M, s.N, s.K, 0)
				ctx := kernel.NewCtx(nil, th, nil)
				ctx.Pool = kernel.NewPool(th)
				if ctx.Pool != nil {
					defer ctx.Pool.Close()
				}
				task := Task{Kernel: k, Op: GemmOp{M: s.M, A: a, B: PackB(bm, s.K, s.N), C: make([]int32, s.M*s.N)}}
				for b.Loop() {
					ctx.ParallelTask(task.Split(th), &task)
				}
				b.ReportMetric(2*float64(s.M)*float64(s.N)*float64(s.K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}
