//go:build linux

package int8

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the calling thread's CPU time (benchmarks lock the
// thread): unlike wall time it excludes the time the VM gives to other
// processes, which makes best-of-N figures stable on a shared machine.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
