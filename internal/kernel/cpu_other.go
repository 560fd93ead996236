//go:build !amd64 || noasm

package kernel

// Available reports whether this CPU and build can run kernels of tier t.
// Without amd64 assembly only the pure-Go tier exists.
func (t Tier) Available() bool { return t == TierGeneric }
