// Package onnxpb holds the Go types generated from ONNX's onnx.proto
// (copied from Debian's python3-onnx, ONNX 1.12, Apache-2.0 licensed).
//
// Regenerate with `go generate` after installing protoc (Debian
// protobuf-compiler) and protoc-gen-go
// (go install google.golang.org/protobuf/cmd/protoc-gen-go@latest).
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/goslim/goslim/onnx/internal/onnxpb onnx.proto
