package fp32

import (
	"time"

	"github.com/goslim/goslim/internal/cputime"
)

// threadCPU returns the calling thread's CPU time (benchmarks lock the
// thread), or 0 where it cannot be read: unlike wall time it excludes the
// time the VM gives to other processes.
func threadCPU() time.Duration {
	d, _ := cputime.Thread()
	return d
}
