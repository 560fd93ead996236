package train

import (
	"time"

	"github.com/goslim/goslim/internal/cputime"
)

// processCPU returns the CPU time (user + system) this process has used, or
// 0 where it cannot be read.
func processCPU() time.Duration {
	d, _ := cputime.Process()
	return d
}
