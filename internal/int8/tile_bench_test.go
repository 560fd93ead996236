//go:build amd64 && !noasm

package int8

import (
	"fmt"
	"testing"
)

// BenchmarkTile measures the micro-kernels on L1-resident data.
func BenchmarkTile(b *testing.B) {
	for _, k := range Kernels() {
		if k == KernelGo || k == KernelAMX {
			continue
		}
		for _, safe := range []bool{true, false} {
			im := k.impl(safe, 32)
			if k != KernelAVX2 && !safe {
				continue
			}
			for _, kg := range []int{16, 64, 256} {
				b.Run(fmt.Sprintf("%v/safe=%v/%d", k, safe, kg), func(b *testing.B) {
					a := make([]uint8, im.mr*4*kg)
					bp := make([]int8, kg*nr*4)
					c := make([]int32, im.mr*nr)
					for b.Loop() {
						for j := 0; j < nr; j += im.nc {
							im.call(kg, a, 4*kg, bp[4*j:], c[j:], nr, im.mr, im.nc, false, 1)
						}
					}
					b.ReportMetric(2*float64(im.mr*nr*4*kg)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				})
			}
		}
	}
}

// TestAVX2FastPathSaturates shows why the exact path exists: the fast
// VPMADDUBSW kernel, forced onto full-range weights, gets wrong sums,
// while Kernel.Run (which sees SaturationFree false) does not.
func TestAVX2FastPathSaturates(t *testing.T) {
	if !KernelAVX2.Available() {
		t.Skip("no AVX2")
	}
	M, N, K := 6, 16, 8
	a := make([]uint8, M*K)
	b := make([]int8, K*N)
	for i := range a {
		a[i] = 255
	}
	for i := range b {
		b[i] = 127
	}
	want := make([]int32, M*N)
	GemmRef(want, a, b, M, N, K)
	p := PackB(b, K, N)
	if p.SaturationFree() {
		t.Fatal("full-range weights reported SaturationFree")
	}
	got := make([]int32, M*N)
	tk := Task{Kernel: KernelAVX2, Op: GemmOp{M: M, A: a, B: p, C: got}}
	tk.Run(0, tk.split(impl{mr: 6, nc: 16, tile: tAVX2}, 1))
	if got[0] == want[0] {
		t.Fatalf("fast path did not saturate: %d", got[0])
	}
	KernelAVX2.Run(&GemmOp{M: M, A: a, B: p, C: got})
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("exact path: c[%d] = %d, want %d", i, got[i], want[i])
		}
	}
}
