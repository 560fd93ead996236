//go:build !amd64 || noasm

package fp32

// archList lists the tiers' kernels: only pure Go without assembly.
var archList = [...]*arch{archGeneric}

func archs() []*arch { return archList[:] }

// asmTile is never called without assembly (every arch has asm == 0).
func asmTile(which, k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	panic("fp32: assembly kernel in a noasm build")
}
