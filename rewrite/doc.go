// Package rewrite holds goslim's graph-to-graph passes: shape and dtype
// inference, constant folding, BatchNormalization folding and dead-code
// removal, plus Simplify, which chains them.
//
// Every pass takes an *ir.Graph and returns a NEW graph (built from
// g.Clone()); the input graph is never modified, and constant tensors are
// never written in place (new tensors are created where values change).
//
// Value IDs: InferShapes, FoldConstants and FoldBatchNorm keep every
// ValueID of the input graph (FoldBatchNorm appends new constants after
// the existing values). RemoveDead compacts Graph.Values and returns an
// old-to-new map with ir.NoValue for dropped values, so statistics keyed by
// ValueID can be carried over (ARCHITECTURE.md, "Stable IDs").
package rewrite
