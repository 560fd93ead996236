//go:build !linux

package bench

import "time"

// threadCPU reports that the thread CPU clock is unavailable.
func threadCPU() (time.Duration, bool) { return 0, false }
