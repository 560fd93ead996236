package kernel

import (
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/cpu"
)

// Linux arch_prctl codes for dynamically enabled XSAVE state (AMX tiles).
const (
	archReqXcompPerm  = 0x1023
	xfeatureXtileData = 18
)

// amxPermission asks Linux once per process for the AMX tile data state
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); without it the
// first tile instruction kills the process. The permission is process-wide
// state of the OS, so the answer is computed once and never changes.
var amxPermission = sync.OnceValue(func() error {
	if !cpu.X86.HasAMXTile || !cpu.X86.HasAMXInt8 {
		return fmt.Errorf("kernel: this CPU has no AMX-TILE/AMX-INT8 (CPUID leaf 7 EDX bits 24, 25)")
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtileData, 0); e != 0 {
		return fmt.Errorf("kernel: the OS refused AMX tile state: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): %v", e)
	}
	return nil
})

// AMXStatus reports whether the CPU has AMX tiles with INT8 (CPUID) and
// whether the OS granted this process the tile state; the first call asks
// for it. err (nil when granted) says why AMX cannot run.
func AMXStatus() (cpuHas bool, err error) {
	return cpu.X86.HasAMXTile && cpu.X86.HasAMXInt8, amxPermission()
}
