//go:build !unix

package train

import "time"

// processCPU returns 0: the CPU-time metric is measured on Unix only.
func processCPU() time.Duration { return 0 }
