package int8

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// TestGemvKernelTwin checks the assembly GEMV kernels against their Go
// twin bit for bit: rows 1..4, panel counts around the 8-, 4- and
// 2-panel steps, partial last panels, strides, accumulation, guard bands.
func TestGemvKernelTwin(t *testing.T) {
	ran := false
	for _, k := range []Kernel{KernelVNNI, KernelAVXVNNI} {
		if gemvOK(k, 1) {
			testGemvKernelTwin(t, k)
			ran = true
		}
	}
	if !ran {
		t.Skip("no GEMV assembly kernel here")
	}
}

func testGemvKernelTwin(t *testing.T, k Kernel) {
	rng := rand.New(rand.NewPCG(61, 62))
	asm := gemvVNNIGo
	if k == KernelAVXVNNI {
		asm = gemvAVXVNNIGo
	}
	for trial := range 300 {
		kg := 1 + rng.IntN(70)
		rows := 1 + trial%4
		np := 1 + rng.IntN(21)
		ncols := 1 + rng.IntN(nr)
		if trial%3 == 0 {
			ncols = nr
		}
		lda := 4*kg + rng.IntN(9)
		pstride := kg*nr*4 + 64*rng.IntN(3)
		ldc := (np-1)*nr + ncols + rng.IntN(7)
		acc := trial%2 == 1
		a := make([]uint8, (rows-1)*lda+4*kg)
		for i := range a {
			a[i] = uint8(rng.IntN(256))
		}
		b := make([]int8, (np-1)*pstride+kg*nr*4)
		for i := range b {
			b[i] = int8(rng.IntN(256) - 128)
		}
		clen := (rows-1)*ldc + (np-1)*nr + ncols
		want := make([]int32, clen+2*guard)
		for i := range want {
			want[i] = sentinel
			if i >= guard && i < guard+clen && acc {
				want[i] = int32(rng.Uint32())
			}
		}
		got := append([]int32(nil), want...)
		gemvGo(kg, a, lda, rows, b, pstride, np, want[guard:guard+clen:guard+clen], ldc, ncols, acc)
		asm(kg, a, lda, rows, b, pstride, np, got[guard:guard+clen:guard+clen], ldc, ncols, acc)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%v trial %d (kg %d rows %d np %d ncols %d lda %d ldc %d acc %v): c[%d] = %d, twin %d",
					k, trial, kg, rows, np, ncols, lda, ldc, acc, i-guard, got[i], want[i])
			}
		}
	}
}

// TestGemmSmallM checks products with 1 to 5 rows on every kernel (the
// GEMV path on avx512vnni and amx) against GemmRef: K with tails (and
// over several K blocks, copied when A ends inside a group of 4), N with
// partial panels, strides, packed A, accumulation, threads.
func TestGemmSmallM(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	nk := [][2]int{{1, 1}, {10, 784}, {512, 784}, {256, 512}, {10, 256}, {33, 7}, {130, 1030}, {16, 3}, {300, 2049}, {97, 129}}
	for _, k := range Kernels() {
		for m := 1; m <= 5; m++ {
			for i, s := range nk {
				gc := gemmCase{M: m, N: s[0], K: s[1], mode: (i + m) % 5}
				switch (i + m) % 4 {
				case 1:
					gc.lda, gc.ldc = s[1]+rng.IntN(9), s[0]+1+rng.IntN(5)
				case 2:
					gc.packA = true
				case 3:
					gc.accumulate, gc.threads = true, 2+rng.IntN(3)
				}
				checkGemm(t, k, gc, rng)
			}
		}
	}
}

// TestGemvTaskTwin runs the GEMV path of a Task on the Go twin and on the
// tile kernels (noGemv) and checks both against GemmRef, so the driver
// (units, K blocks of the copied tail, partial panels) is tested on every
// machine, not only where the VNNI kernel runs.
func TestGemvTaskTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(65, 66))
	for trial := range 40 {
		M, N, K := 1+rng.IntN(gemvMaxRows), 1+rng.IntN(300), 1+rng.IntN(1500)
		a, b := randInputs(rng, M, N, K, trial%5)
		want := make([]int32, M*N)
		GemmRef(want, a, b, M, N, K)
		p := PackB(b, K, N)
		for _, twin := range []bool{true, false} {
			c := make([]int32, M*N)
			task := Task{Kernel: KernelGo, Op: GemmOp{M: M, A: a, B: p, C: c}}
			task.split(impl{mr: 12, nc: nr, tile: tGo}, 1)
			// Force the GEMV path (the pure-Go kernel does not take it).
			task.gemv, task.gemvTwin = twin, twin
			n := 1
			if twin {
				n = ((N+nr-1)/nr + gemvUnit - 1) / gemvUnit
			}
			for u := range n {
				task.Run(u, u+1)
			}
			for i := range want {
				if c[i] != want[i] {
					t.Fatalf("trial %d %dx%dx%d twin %v: c[%d] = %d, want %d", trial, M, N, K, twin, i, c[i], want[i])
				}
			}
		}
	}
}

// BenchmarkGemv compares the GEMV path with the tile kernels (noGemv), for
// the avx512vnni and avxvnni kernels, on
// the fully-connected layers of the MLP reference model (784-512-256-10)
// at 1, 2 and 4 rows, and at 32 rows (full 12-row tiles, the last 8 rows
// on the GEMV kernel or on a 12-row tile), in one run, one thread;
// cpu-us/op is thread CPU time per product:
//
//	go test ./internal/int8 -run XXX -bench Gemv -cpu 1 -count 3
func BenchmarkGemv(b *testing.B) {
	for _, k := range []Kernel{KernelVNNI, KernelAVXVNNI} {
		if k.Available() {
			benchGemv(b, k)
		}
	}
}

func benchGemv(b *testing.B, k Kernel) {
	for _, s := range [][2]int{{784, 512}, {512, 256}, {256, 10}} {
		for _, m := range []int{1, 2, 4, 32} {
			for _, path := range []string{"gemv", "tile"} {
				b.Run(fmt.Sprintf("%v/%dx%dx%d/%s", k, m, s[0], s[1], path), func(b *testing.B) {
					rng := rand.New(rand.NewPCG(7, 8))
					a, bm := randInputs(rng, m, s[1], s[0], 0)
					task := Task{Kernel: k, Op: GemmOp{M: m, A: a, B: PackB(bm, s[0], s[1]), C: make([]int32, m*s[1])}, noGemv: path == "tile"}
					if n := task.Split(1); path == "gemv" && m <= gemvMaxRows && !task.gemv || n == 0 {
						b.Skip("no GEMV path for this kernel")
					}
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					c0 := threadCPU()
					for b.Loop() {
						task.Run(0, task.Split(1))
					}
					cpu := threadCPU() - c0
					if cpu > 0 {
						ops := 2 * float64(m*s[0]*s[1]) * float64(b.N)
						b.ReportMetric(ops/cpu.Seconds()/1e9, "cpu-GOP/s")
						b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
					}
				})
			}
		}
	}
}
