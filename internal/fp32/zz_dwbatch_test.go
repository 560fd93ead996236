//go:build amd64 && !noasm

package fp32

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func TestDWBatchTmp(t *testing.T) {
	runtime.LockOSThread()
	for _, c := range []struct{ ch, n, s, B int }{{48, 48, 2, 32}, {96, 24, 1, 32}, {16, 48, 1, 32}, {48, 48, 2, 1}, {96, 24, 1, 1}} {
		o := (c.n-1)/c.s + 1
		g, _ := NewConvGeom([]int{c.n, c.n}, []int{o, o}, []int{3, 3}, []int{c.s, c.s}, []int{1, 1}, []int{1, 1})
		r := rand.New(rand.NewPCG(1, 1))
		B := c.B
		x := randSlice(r, B*c.ch*g.InSize())
		w := randSlice(r, c.ch*9)
		y := make([]float32, B*c.ch*g.OutSize())
		b := randSlice(r, c.ch)
		k := For(3)
		ws := make([]float32, k.DepthwiseScratch(&g))
		best := time.Hour
		for rep := 0; rep < 8*32/B; rep++ {
			c0 := threadCPU()
			for bi := 0; bi < B; bi++ {
				op := &DepthwiseOp{Geom: &g, Channels: c.ch, M: 1, X: x[bi*c.ch*g.InSize():], W: w, Y: y[bi*c.ch*g.OutSize():], LdY: g.OutSize(), Bias: b, Act: Act{Kind: ActClip, Lo: 0, Hi: 6}}
				k.Depthwise(ws, op)
			}
			best = min(best, threadCPU()-c0)
		}
		fmt.Printf("dw b%d ch=%d n=%d s=%d: %.1f us/img\n", B, c.ch, c.n, c.s, float64(best)/1e3/float64(B))
	}
}
