//go:build !(linux && amd64)

package kernel

import "errors"

// AMXStatus reports whether the CPU has AMX tiles with INT8 and whether
// the OS granted them; goslim uses AMX on linux/amd64 only.
func AMXStatus() (cpuHas bool, err error) {
	return false, errors.New("kernel: AMX is used on linux/amd64 only")
}
