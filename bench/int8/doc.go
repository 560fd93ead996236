// Package int8bench measures goslim's INT8 execution against FP32 and
// against ONNX Runtime: per-thread CPU timing of sessions (Sampler,
// Alternate), a summary of the INT8 lowering from the kernel records
// (Summarize), a per-layer-kind CPU profile (Profile) and ONNX Runtime
// timing by process CPU time (ORTBench). `goslim bench --compare` and the
// INT8 table command bench/int8/cmd/int8table use it.
package int8bench
