// Package autodiff builds reverse-mode gradients of IR graphs, graph to
// graph.
//
// Build takes a model graph in inference form plus a scalar loss value in
// it and returns a Program: a new ir.Graph holding the forward pass in
// training mode, the loss, and the backward pass as ordinary nodes. The
// Program runs on infer.Session like any graph, so it uses the same kernel
// table, CPU tiers, threads and memory planner (forward activations that
// backward nodes read simply live until their last reader).
//
// # Program layout
//
// Value IDs of the model are kept: a value of the model has the same ID
// (and name) in Program.Graph; Build only appends values and nodes and
// rewrites a few forward nodes in place (below). Graph inputs are, in
// order: the model's own inputs (data, labels, teacher logits...), the
// parameters (Program.Params, each a former Trainable constant, now an
// input without a default, fed from the caller's parameter store every
// step), the states (Program.States: BatchNorm running mean and variance)
// and, when the model has Dropout, the int64 scalar seed (Program.Seed).
// Graph outputs are, in order: the loss, the kept forward values
// (Program.Outputs, in the order Options.Outputs or the model's outputs
// list them), one gradient per parameter (Program.Params order) and one
// new value per state (Program.States order). Program.InputIndex and
// Program.OutputIndex map IDs to positions for infer.Session.RunInputs.
//
// # Training-mode forward
//
// BatchNormalization becomes goslim.BatchNormTrain: it normalizes with the
// batch statistics (mean and biased variance over every axis but 1) and
// outputs the new running statistics with ONNX momentum semantics,
//
//	running = momentum*running + (1-momentum)*batch,
//
// where the batch variance of the running update is the unbiased one
// (divided by count-1), as PyTorch does. Options.FreezeBatchNorm keeps the
// inference form instead (running statistics used and not updated).
// Dropout becomes goslim.DropoutTrain, whose mask is a counter-based hash of
// the seed input, a per-node salt and the element index, so runs are
// reproducible for a given seed and independent of the thread count.
//
// # Gradient rules
//
// A Rule per (domain, op) emits the backward nodes of one forward node
// (Rules, DefaultRules). Rules use standard ONNX ops where they fit (Mul,
// Div, Neg, Pow, Log, Where, Greater, Reshape, Transpose, Concat, Cast,
// ConstantOfShape, Add to accumulate) and internal ops of domain "goslim"
// for the rest (their kernels split work by shape, not
// by thread count, so gradients do not depend on the thread count). Backward traversal starts from the loss with
// a gradient of ones and visits only nodes that receive a gradient and have
// an input reachable from a parameter; such a node without a rule is an
// error naming the node and op. Ops off that path (shape arithmetic,
// ArgMax, comparisons) need no rule.
//
// Internal goslim ops (all registered in internal/ops):
//
//	forward, training mode: BatchNormTrain, DropoutTrain
//	losses: CrossEntropy, KLDiv, MSE (see the functions of the same names)
//	backward: SumTo, MatMulGrad, GemmGrad, ConvGradInput, ConvGradWeight,
//	  MaxPoolGradX (from X and Y; MaxPoolGrad takes Indices), AveragePoolGrad,
//	  GlobalAveragePoolGrad, BatchNormGrad,
//	  LayerNormGrad, SoftmaxGrad, LogSoftmaxGrad, ReluGrad, LeakyReluGrad,
//	  SigmoidGrad, TanhGrad, HardSigmoidGrad, HardSwishGrad, ClipGrad,
//	  ErfGrad, GeluGrad, ConcatGrad, SliceGrad, DropoutGrad, ReduceGrad,
//	  CrossEntropyGrad, KLDivGrad, MSEGrad
//
// onnx.Encode refuses goslim ops, so a Program is never exported: the
// trained model is the original inference graph with the new parameter
// values (WithValues).
package autodiff
