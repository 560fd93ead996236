//go:build amd64 && !noasm

package int8

// hasAMXKernel reports whether the AMX kernel is built.
const hasAMXKernel = false

// amxImpl returns the AMX kernel's tile shape.
func amxImpl() (impl, bool) { return impl{}, false }

// runAMX computes rows [r0, r1) by column tiles [j0, j1) with AMX.
func (t *Task) runAMX(r0, r1, j0, j1 int) { panic("int8: AMX kernel not built") }
