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

// testTiers lists the tiers to test: generic, and VNNI when available.
func testTiers() []kernel.Tier {
	ts := []kernel.Tier{kernel.TierGeneric}
	if kernel.TierVNNI.Available() {
		ts = append(ts, kernel.TierVNNI)
	}
	return ts
}

func randInputs(rng *rand.Rand, M, N, K int, mode int) ([]uint8, []int8) {
	a := make([]uint8, M*K)
	b := make([]int8, K*N)
	for i := range a {
		switch mode {
		case 0:
			a[i] = uint8(rng.IntN(256))
		case 1:
			a[i] = 255
		default:
			a[i] = uint8([]int{0, 255}[rng.IntN(2)])
		}
	}
	for i := range b {
		switch mode {
		case 0:
			b[i] = int8(rng.IntN(256) - 128)
		case 1:
			b[i] = -128
		default:
			b[i] = int8([]int{-128, 127}[rng.IntN(2)])
		}
	}
	return a, b
}

func checkGemm(t *testing.T, tier kernel.Tier, M, N, K, mode int, rng *rand.Rand) {
	t.Helper()
	a, b := randInputs(rng, M, N, K, mode)
	want := make([]int32, M*N)
	GemmRef(want, a, b, M, N, K)
	buf := make([]int32, M*N+2*guard)
	for i := range buf {
		buf[i] = sentinel
	}
	c := buf[guard : guard+M*N : guard+M*N]
	Gemm(tier, c, a, M, PackB(b, K, N))
	for i := range guard {
		if buf[i] != sentinel || buf[len(buf)-1-i] != sentinel {
			t.Fatalf("%v M=%d N=%d K=%d: guard band overwritten", tier, M, N, K)
		}
	}
	for i := range want {
		if c[i] != want[i] {
			t.Fatalf("%v M=%d N=%d K=%d mode=%d: c[%d,%d] = %d, want %d", tier, M, N, K, mode, i/N, i%N, c[i], want[i])
		}
	}
}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{
		{1, 1, 1}, {1, 1, 4}, {2, 3, 5}, {12, 32, 4}, {13, 33, 7}, {11, 31, 3},
		{24, 64, 64}, {25, 17, 129}, {5, 9, 1100}, {14, 47, 1031}, {7, 100, 250}, {37, 65, 513}, {12, 16, 8}, {3, 48, 2},
	}
	for range 20 {
		shapes = append(shapes, [3]int{1 + rng.IntN(50), 1 + rng.IntN(90), 1 + rng.IntN(300)})
	}
	for _, tier := range testTiers() {
		for _, s := range shapes {
			for mode := range 3 {
				checkGemm(t, tier, s[0], s[1], s[2], mode, rng)
			}
		}
	}
}

// TestGemmExtremeK checks int32 wrap-around parity for a long K at the extremes.
func TestGemmExtremeK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tier := range testTiers() {
		checkGemm(t, tier, 13, 35, 70001, 1, rng)
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

func BenchmarkGemm(b *testing.B) {
	for _, tier := range testTiers() {
		for _, n := range []int{256, 512, 1024} {
			b.Run(fmt.Sprintf("%v/%d", tier, n), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				a, bm := randInputs(rng, n, n, n, 0)
				p := PackB(bm, n, n)
				c := make([]int32, n*n)
				ops := 2 * float64(n) * float64(n) * float64(n)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				best := time.Duration(1 << 62)
				c0 := threadCPU()
				for b.Loop() {
					t0 := threadCPU()
					Gemm(tier, c, a, n, p)
					best = min(best, threadCPU()-t0)
				}
				cpu := threadCPU() - c0
				b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				if cpu > 0 {
					// Thread CPU time excludes what the shared VM gives to
					// other processes: mean over all calls, and the best call.
					b.ReportMetric(ops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GOP/s")
					b.ReportMetric(ops/best.Seconds()/1e9, "best-GOP/s")
				}
			})
		}
	}
}
