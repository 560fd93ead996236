// Package ops implements goslim's operators as kernels (pure Go) and
// registers them in a kernel.Table. Each file registers one family:
// elementwise math and activations, neural-network ops (conv, gemm,
// pooling, normalization), shape and indexing ops, reductions, resize,
// quantization ops. Kernels check their inputs and return errors that name
// the node; they never panic on bad input.
package ops

import (
	"github.com/goslim/goslim/internal/kernel"
)

// NewTable returns a table holding every op goslim implements.
func NewTable() *kernel.Table {
	t := kernel.NewTable()
	registerElementwise(t)
	registerNN(t)
	registerShape(t)
	registerReduce(t)
	registerResize(t)
	registerQuant(t)
	registerQLinear(t)
	registerPool8(t)
	registerGrad(t)
	return t
}

// add registers a generic (pure-Go, all dtypes) entry.
func add(t *kernel.Table, op string, b kernel.Builder) {
	t.Add(kernel.Entry{Op: op, Name: "generic", Priority: kernel.Generic, Build: b})
}

// simple wraps a stateless kernel function as a builder.
func simple(f kernel.Func) kernel.Builder {
	return func(*kernel.Info) (kernel.Kernel, error) { return f, nil }
}
