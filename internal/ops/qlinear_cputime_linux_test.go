//go:build linux

package ops

import (
	"time"

	"golang.org/x/sys/unix"
)

// qThreadCPU returns the calling thread's CPU time (benchmarks lock the
// thread), which excludes what the shared machine gives to other processes.
func qThreadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
