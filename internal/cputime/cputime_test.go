package cputime

import (
	"runtime"
	"testing"
)

func TestThreadAdvances(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := Thread()
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("thread CPU clock unavailable on linux")
		}
		t.Skip("no thread CPU clock on " + runtime.GOOS)
	}
	x := 0
	for i := range 50_000_000 {
		x += i ^ (x >> 3)
	}
	t1, _ := Thread()
	if p, ok := Process(); !ok || p < t1-t0 {
		t.Fatalf("process CPU time %v (ok %v) below this thread's %v", p, ok, t1-t0)
	}
	if t1 <= t0 {
		t.Fatalf("thread CPU time did not advance: %v -> %v (x=%d)", t0, t1, x)
	}
}
