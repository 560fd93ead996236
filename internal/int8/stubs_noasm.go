//go:build !amd64 || noasm

package int8

// hasAsm reports whether the assembly kernels are built (not here).
const hasAsm = false

// hasAMXKernel reports whether the AMX kernel is built (not here).
const hasAMXKernel = false

func hasAVXVNNI() bool { return false }

// asmImpl has no assembly kernels to offer.
func asmImpl(Kernel, bool, int) (impl, bool) { return impl{}, false }

// runAMX is never called without assembly.
func (t *Task) runAMX(r0, r1, j0, j1 int) { panic("int8: AMX kernel in a noasm build") }

func tileVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	panic("int8: assembly kernel in a noasm build")
}

func tileAVXVNNIGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	panic("int8: assembly kernel in a noasm build")
}

func tileAVX2Go(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	panic("int8: assembly kernel in a noasm build")
}

// amxSelfTest reports false: no AMX kernel is built.
func amxSelfTest() bool { return false }

func tileVNNI24Go(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	panic("int8: assembly kernel in a noasm build")
}

func tileAVX2WGo(kg int, a []uint8, lda int, b []int8, c []int32, ldc, rows, ncols int, acc bool, nt int) {
	panic("int8: assembly kernel in a noasm build")
}
