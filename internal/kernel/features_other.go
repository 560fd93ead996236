//go:build !amd64

package kernel

// CPUFeatures lists the x86 features goslim's kernel tiers depend on; on
// other architectures there are none.
func CPUFeatures() []Feature { return nil }
