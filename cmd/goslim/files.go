package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// writeAtomic writes a file through a temporary file in the same folder and
// a rename, so readers never see a partial file.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// readTensorFile reads a .npy file or an ONNX TensorProto .pb file.
func readTensorFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		t, err := npy.Read(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	case ".pb":
		t, _, err := onnx.ReadTensor(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s: unknown tensor file type (want .npy or .pb)", path)
}

// loadModel reads an ONNX model file.
func loadModel(path string) (*ir.Graph, error) {
	return onnx.ReadFile(path)
}

// safeName maps a tensor name to a file name: every character outside
// [A-Za-z0-9._-] becomes '_'.
func safeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	s := string(b)
	if s == "" || s == "." || s == ".." {
		s = "_" + s
	}
	return s
}

// parseShape parses "1x3x224x224" (or comma separated) into a shape.
func parseShape(s string) (tensor.Shape, error) {
	s = strings.ReplaceAll(s, ",", "x")
	var shape tensor.Shape
	for _, p := range strings.Split(s, "x") {
		var d int
		if _, err := fmt.Sscanf(p, "%d", &d); err != nil || d < 0 || fmt.Sprint(d) != p {
			return nil, fmt.Errorf("bad shape %q (want e.g. 1x3x224x224)", s)
		}
		shape = append(shape, d)
	}
	return shape, nil
}
