package ops

import (
	"time"

	"github.com/goslim/goslim/internal/cputime"
)

// qThreadCPU returns the calling thread's CPU time (benchmarks lock the
// thread), or 0 where it cannot be read.
func qThreadCPU() time.Duration {
	d, _ := cputime.Thread()
	return d
}
