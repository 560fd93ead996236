//go:build !linux

package ops

import "time"

// qThreadCPU is not available outside Linux (benchmarks then report wall
// time only).
func qThreadCPU() time.Duration { return 0 }
