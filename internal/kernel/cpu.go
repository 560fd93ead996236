//go:build amd64 && !noasm

package kernel

import "golang.org/x/sys/cpu"

// Available reports whether this CPU and build can run kernels of tier t.
func (t Tier) Available() bool {
	x := cpu.X86
	avx2 := x.HasAVX2 && x.HasFMA
	avx512 := avx2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL
	switch t {
	case TierGeneric:
		return true
	case TierAVX2:
		return avx2
	case TierAVX512:
		return avx512
	case TierVNNI:
		return avx512 && x.HasAVX512VNNI
	case TierAMX:
		if !(avx512 && x.HasAVX512VNNI && x.HasAMXTile && x.HasAMXInt8) {
			return false
		}
		_, err := AMXStatus()
		return err == nil
	}
	return false
}
