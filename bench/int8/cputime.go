package int8bench

import (
	"time"

	"github.com/goslim/goslim/internal/cputime"
)

// ThreadCPU returns the CPU time the calling OS thread has used (call it
// with the goroutine locked to its thread), or 0 when unavailable.
func ThreadCPU() time.Duration {
	d, _ := cputime.Thread()
	return d
}
