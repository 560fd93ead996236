//go:build !linux

package fp32

import "time"

// threadCPU is unavailable: benchmarks report wall time only.
func threadCPU() time.Duration { return 0 }
