//go:build amd64 && !noasm

package int8

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/goslim/goslim/internal/kernel"
)

// TestAMXArgsLayout checks the offsets the assembly reads (gen_tile.go).
func TestAMXArgsLayout(t *testing.T) {
	var p amxArgs
	got := []uintptr{unsafe.Offsetof(p.a), unsafe.Offsetof(p.lda), unsafe.Offsetof(p.b), unsafe.Offsetof(p.bstride),
		unsafe.Offsetof(p.c), unsafe.Offsetof(p.ldc), unsafe.Offsetof(p.mtiles), unsafe.Offsetof(p.np),
		unsafe.Offsetof(p.ksteps), unsafe.Offsetof(p.acc)}
	for i, o := range got {
		if o != uintptr(64+8*i) {
			t.Fatalf("amxArgs field %d at offset %d, want %d", i, o, 64+8*i)
		}
	}
}

// TestAMXDriver runs the AMX driver (K blocks, tails, tile
// configurations, bounds) on the Go emulation of the AMX kernels, on
// every shape of the kernel tests, against GemmRef.
func TestAMXDriver(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	shapes := append(testShapes(rng), [3]int{300, 40, 1100}, [3]int{70, 70, 1100}, [3]int{64, 64, 64}, [3]int{33, 17, 2}, [3]int{100, 1, 1})
	for i, s := range shapes {
		M, N, K := s[0], s[1], s[2]
		a0, b := randInputs(rng, M, N, K, i%4)
		lda, ldc := K+(i%3)*rng.IntN(7), N+(i%2)*rng.IntN(5)
		a := make([]uint8, (M-1)*lda+K)
		for m := range M {
			copy(a[m*lda:], a0[m*K:m*K+K])
		}
		want := make([]int32, M*N)
		GemmRef(want, a0, b, M, N, K)
		c := make([]int32, (M-1)*ldc+N)
		acc := i%5 == 4
		if acc {
			for m := range M {
				for n := range N {
					c[m*ldc+n] = int32(m - n)
					want[m*N+n] += int32(m - n)
				}
			}
		}
		op := GemmOp{M: M, A: a, LdA: lda, B: PackB(b, K, N), C: c, LdC: ldc, Accumulate: acc}
		if i%4 == 2 {
			op.A, op.LdA, op.PA = nil, 0, PackA(a, M, K, lda)
		}
		threads := 1 + i%3
		tk := Task{Kernel: KernelAMX, Op: op, amxEmu: true}
		n := tk.split(impl{mr: 32, nc: 32, amx: true}, threads)
		chunk := (n + threads - 1) / threads
		for lo := 0; lo < n; lo += chunk {
			tk.Run(lo, min(lo+chunk, n))
		}
		for m := range M {
			for j := range N {
				if c[m*ldc+j] != want[m*N+j] {
					t.Fatalf("%v lda=%d ldc=%d acc=%v threads=%d: c[%d,%d] = %d, want %d", s, lda, ldc, acc, threads, m, j, c[m*ldc+j], want[m*N+j])
				}
			}
		}
	}
}

// TestAMXAvailability: where the AMX tier is unavailable (no AMX, or the OS
// refused the tile state) nothing may hand out the AMX kernel; where it is
// available the kernel must pass its self-test and be offered.
func TestAMXAvailability(t *testing.T) {
	if !kernel.TierAMX.Available() {
		if KernelAMX.Available() || slices.Contains(Kernels(), KernelAMX) || For(kernel.TierAMX) == KernelAMX {
			t.Fatal("AMX kernel offered although the AMX tier is unavailable")
		}
	} else if hasAsm && hasAMXKernel && (!amxSelfTest() || For(kernel.TierAMX) != KernelAMX) {
		t.Fatal("AMX tier available but the AMX kernel fails its self-test or is not chosen")
	}
	if _, err := kernel.AMXStatus(); err != nil {
		t.Logf("AMX not usable here: %v", err)
	}
}
