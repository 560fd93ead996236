//go:build !amd64 || noasm

package int8

import "github.com/goslim/goslim/internal/kernel"

// AddBytes computes y[i] = p's addition of a[i] and b[i] for i < len(y)
// (a and b at least as long), in Go (the same bits as AddOne).
func AddBytes(_ kernel.Tier, p *AddParams, y, a, b []uint8) { addBytesGo(p, y, a, b) }

// AddVectorized reports whether AddBytes runs vector code on tier t: never
// in this build.
func AddVectorized(kernel.Tier) bool { return false }
