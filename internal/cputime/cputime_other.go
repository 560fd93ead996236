//go:build !linux

package cputime

import "time"

// Thread reports that the per-thread CPU clock is only read on Linux.
func Thread() (time.Duration, bool) { return 0, false }

// Process reports that the process CPU clock is only read on Linux.
func Process() (time.Duration, bool) { return 0, false }
