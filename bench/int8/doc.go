// Package int8bench measures goslim's INT8 execution against FP32 and
// against ONNX Runtime: per-thread CPU timing (ThreadCPU, Measure) shared
// by `goslim bench --compare` and the INT8 table command in
// bench/int8/cmd/int8table.
package int8bench
