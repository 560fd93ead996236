package int8

import (
	"fmt"

	"github.com/goslim/goslim/internal/kernel"
)

// Kernel is one implementation of the u8 x s8 -> s32 GEMM. All kernels
// read the same PackedB and give exactly GemmRef's result.
type Kernel int

// The kernels, slowest first.
const (
	KernelGo      Kernel = iota // pure Go, 12 x 32 tiles (always available)
	KernelAVX2                  // AVX2 VPMADDUBSW + VPMADDWD, 6 x 16 (3 x 16 on int16-widened weights when they could saturate)
	KernelAVXVNNI               // AVX-VNNI: VEX VPDPBUSD on ymm, 6 x 16
	KernelVNNI                  // AVX-512 VNNI: VPDPBUSD on zmm, 12 x 32
	KernelAMX                   // AMX TDPBUSD, 32 x 32 (two by two 16 x 16 tiles)
)

// String returns the kernel's name ("go", "avx2", "avxvnni", "avx512vnni", "amx").
func (k Kernel) String() string {
	switch k {
	case KernelGo:
		return "go"
	case KernelAVX2:
		return "avx2"
	case KernelAVXVNNI:
		return "avxvnni"
	case KernelVNNI:
		return "avx512vnni"
	case KernelAMX:
		return "amx"
	}
	return fmt.Sprintf("kernel(%d)", int(k))
}

// ParseKernel parses a kernel name as printed by String.
func ParseKernel(s string) (Kernel, error) {
	for k := KernelGo; k <= KernelAMX; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("int8: unknown kernel %q (want go, avx2, avxvnni, avx512vnni or amx)", s)
}

// Available reports whether this CPU, OS and build can run the kernel
// (AMX also needs the OS to grant the tile state; see kernel.AMXStatus).
func (k Kernel) Available() bool {
	switch k {
	case KernelGo:
		return true
	case KernelAVX2:
		return hasAsm && kernel.TierAVX2.Available()
	case KernelAVXVNNI:
		return hasAsm && kernel.TierAVX2.Available() && hasAVXVNNI()
	case KernelVNNI:
		return hasAsm && kernel.TierVNNI.Available()
	case KernelAMX:
		return hasAsm && hasAMXKernel && kernel.TierAMX.Available() && amxSelfTest()
	}
	return false
}

// Kernels lists the kernels available here, slowest first.
func Kernels() []Kernel {
	var ks []Kernel
	for k := KernelGo; k <= KernelAMX; k++ {
		if k.Available() {
			ks = append(ks, k)
		}
	}
	return ks
}

// For returns the kernel a session of tier t runs:
//
//	amx     AMX (falls back to the next line when unavailable)
//	vnni    AVX-512 VNNI
//	avx512  AVX-VNNI, else AVX2
//	avx2    AVX-VNNI on CPUs without AVX-512 (Alder Lake and later), else AVX2
//	generic pure Go
//
// so each kernel can be chosen with GOSLIM_KERNELS on an AVX-512 machine
// with AVX-VNNI, and an AVX2-only machine still gets AVX-VNNI.
func For(t kernel.Tier) Kernel {
	switch {
	case t >= kernel.TierAMX && KernelAMX.Available():
		return KernelAMX
	case t >= kernel.TierVNNI && KernelVNNI.Available():
		return KernelVNNI
	case t >= kernel.TierAVX512 && KernelAVXVNNI.Available():
		return KernelAVXVNNI
	case t >= kernel.TierAVX2 && KernelAVXVNNI.Available() && !kernel.TierAVX512.Available():
		return KernelAVXVNNI
	case t >= kernel.TierAVX2 && KernelAVX2.Available():
		return KernelAVX2
	}
	return KernelGo
}

// impl returns the kernel's tiles for B (pairSafe selects AVX2's fast
// path, n the columns). An unavailable kernel runs pure Go.
func (k Kernel) impl(pairSafe bool, n int) impl {
	if k != KernelGo && k.Available() {
		if im, ok := asmImpl(k, pairSafe, n); ok {
			return im
		}
	}
	return impl{mr: 12, nc: nr, tile: tGo}
}

// RowTile returns the rows of the kernel's register tile for B with n
// columns. Callers that split M into blocks (convolutions) should use
// multiples of it, so that only the last block has a partial tile (which
// is copied); 96 is a multiple of every kernel's tile.
func (k Kernel) RowTile(n int) int { return k.impl(true, n).mr }
