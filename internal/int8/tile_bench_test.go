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
