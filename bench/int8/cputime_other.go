//go:build !linux

package int8bench

import "time"

// ThreadCPU returns 0: per-thread CPU time is only read on Linux.
func ThreadCPU() time.Duration { return 0 }
