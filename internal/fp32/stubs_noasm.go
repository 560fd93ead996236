//go:build !amd64 || noasm

package fp32

// archList lists the tiers' kernels: only pure Go without assembly.
var archList = [...]*arch{archGeneric}

func archs() []*arch { return archList[:] }

// asmTile is never called without assembly (every arch has asm == 0).
func asmTile(which, k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	panic("fp32: assembly kernel in a noasm build")
}

// asmPackRows is never called without assembly.
func asmPackRows(which int, dst, src []float32, offs []int32, stride, kb, nb, dstLen int) {
	panic("fp32: assembly kernel in a noasm build")
}

// asmDW is never called without assembly.
func asmDW(which int, out []float32, ldo, outW, outH int, in []float32, rowStep int, offs []int32, w []float32, ep *tileEp) {
	panic("fp32: assembly kernel in a noasm build")
}

// gatherRows is gatherRowsGo without assembly.
func gatherRows(which int, dst []float32, dp int, src []float32, sp, rows, n, stride int) {
	if rows > 0 && n > 0 {
		gatherRowsGo(dst, dp, src, sp, rows, n, stride)
	}
}

// asmTileInd is never called without assembly.
func asmTileInd(k int, a, b, b2 []float32, offs []int32, maxOff int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	panic("fp32: assembly kernel in a noasm build")
}

// hasIndirect reports whether arch a has an indirect micro-kernel (none
// without assembly).
func hasIndirect(a *arch) bool { return false }

// dw3x3Asm reports false: no assembly.
func dw3x3Asm(which int, out, in, w, bias []float32, masks []uint16, planes, H, W, outH, outW, stride, padT, padL int, ep *tileEp) bool {
	return false
}

// dw3x3SmallAsm reports false: no assembly.
func dw3x3SmallAsm(which int, out, in, w, bias []float32, idx []int32, planes, inSize, outSize int, ep *tileEp) bool {
	return false
}

// asmTileInd4 is never called without assembly.
func asmTileInd4(k int, a []float32, b *[4][]float32, offs []int32, maxOff int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	panic("fp32: assembly kernel in a noasm build")
}

// transposeInto is transposeGo without assembly.
func transposeInto(which int, y []float32, ldy int, ct []float32, ldc, rows, n int) {
	if rows > 0 && n > 0 {
		transposeGo(y, ldy, ct, ldc, rows, n)
	}
}
