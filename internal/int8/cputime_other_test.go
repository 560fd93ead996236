//go:build !linux

package int8

import "time"

// threadCPU is unavailable: benchmarks report wall time only.
func threadCPU() time.Duration { return 0 }
