package int8

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/goslim/goslim/internal/kernel"
)

// BenchmarkTuneMC compares row-block sizes in one loop (alternating calls,
// thread CPU time each), so the shared machine's load hits all alike.
func BenchmarkTuneMC(b *testing.B) {
	sizes := []int{1 << 40, 512 << 10, 256 << 10, 128 << 10}
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 8))
			a, bm := randInputs(rng, s.M, s.N, s.K, 0)
			p := PackB(bm, s.K, s.N)
			c := make([]int32, s.M*s.N)
			k := For(kernel.Best())
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := make([]time.Duration, len(sizes))
			for b.Loop() {
				for i, mc := range sizes {
					t := Task{Kernel: k, Op: GemmOp{M: s.M, A: a, B: p, C: c}, mcBytes: mc}
					t0 := threadCPU()
					t.Run(0, t.Split(1))
					cpu[i] += threadCPU() - t0
				}
			}
			ops := 2 * float64(s.M) * float64(s.N) * float64(s.K) * float64(b.N)
			for i, mc := range sizes {
				b.ReportMetric(ops/cpu[i].Seconds()/1e9, fmt.Sprintf("mc%dK", min(mc>>10, 99999)))
			}
		})
	}
}
