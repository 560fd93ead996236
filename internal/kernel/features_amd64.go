//go:build amd64

package kernel

import "golang.org/x/sys/cpu"

// CPUFeatures lists the x86 features goslim's kernel tiers depend on and
// whether this CPU has them (independent of build tags).
func CPUFeatures() []Feature {
	x := cpu.X86
	return []Feature{
		{"avx2", x.HasAVX2}, {"fma", x.HasFMA},
		{"avx512f", x.HasAVX512F}, {"avx512bw", x.HasAVX512BW}, {"avx512dq", x.HasAVX512DQ}, {"avx512vl", x.HasAVX512VL},
		{"avx512vnni", x.HasAVX512VNNI}, {"avxvnni", x.HasAVXVNNI},
		{"amx-tile", x.HasAMXTile}, {"amx-int8", x.HasAMXInt8}, {"amx-bf16", x.HasAMXBF16},
	}
}
