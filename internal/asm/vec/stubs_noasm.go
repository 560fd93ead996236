//go:build !amd64 || noasm

package vec

// Without assembly every tier uses the pure-Go loops.
func avx512Kernels() Kernels { return Generic() }

func avx2Kernels() Kernels { return Generic() }
