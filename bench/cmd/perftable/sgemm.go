package main

import (
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/goslim/goslim/internal/cputime"
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
)

// sgemmRounds is how many rounds measureSGEMM times per size.
const sgemmRounds = 5

// sgemmResult is the one-thread SGEMM speed at one square size.
type sgemmResult struct {
	n      int
	gflops float64
}

// measureSGEMM times the float32 GEMM of the session tier on square
// matrices (A and B packed per call, as for activations) with one thread:
// per size, rounds of about roundTime each, by the calling thread's CPU
// time (wall time when that clock is unavailable), best round reported.
func measureSGEMM(tier kernel.Tier, sizes []int, roundTime time.Duration) []sgemmResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := func() time.Duration {
		if d, ok := cputime.Thread(); ok {
			return d
		}
		return time.Duration(time.Now().UnixNano())
	}
	k := fp32.For(tier)
	var out []sgemmResult
	for _, n := range sizes {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		for i := range a {
			a[i], b[i] = r.Float32()-0.5, r.Float32()-0.5
		}
		op := &fp32.GemmOp{M: n, N: n, K: n, Alpha: 1, A: fp32.Mat{Data: a, Ld: n}, B: fp32.Mat{Data: b, Ld: n}, C: c, LdC: n}
		ws := make([]float32, k.Scratch(op))
		k.Run(ws, op)
		best := 0.0
		for round := 0; round < sgemmRounds; round++ {
			iters := 0
			t0 := clock()
			for clock()-t0 < roundTime || iters < 2 {
				k.Run(ws, op)
				iters++
			}
			s := (clock() - t0).Seconds()
			best = max(best, 2*float64(n)*float64(n)*float64(n)*float64(iters)/s/1e9)
		}
		out = append(out, sgemmResult{n: n, gflops: best})
	}
	return out
}
