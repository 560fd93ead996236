//go:build amd64 && !noasm

package int8

import (
	"fmt"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

func BenchmarkTileVNNI(b *testing.B) {
	if !kernel.TierVNNI.Available() {
		b.Skip("no VNNI")
	}
	for _, kg := range []int{16, 64, 256} {
		b.Run(fmt.Sprint(kg), func(b *testing.B) {
			a := make([]uint8, mr*4*kg)
			bp := make([]int8, kg*nr*4)
			c := make([]int32, mr*nr)
			for b.Loop() {
				tileVNNIGo(kg, a, 4*kg, bp, c, nr, mr, nr, false)
			}
			b.ReportMetric(2*float64(mr*nr*4*kg)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
		})
	}
}
