package main

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/tensor"
)

// TestBenchCompare quantizes LeNet with `goslim quantize` and compares the
// FP32 and INT8 models with `goslim bench --compare`.
func TestBenchCompare(t *testing.T) {
	model := writeLeNet(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 32*28*28)
	for i := range x {
		x[i] = r.Float32()
	}
	calib := filepath.Join(dir, "calib.npy")
	if err := npy.WriteFile(calib, tensor.FromFloat32(tensor.Shape{32, 1, 28, 28}, x)); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "lenet.int8.onnx")
	if code, _, errs := goslim(t, "quantize", model, "--calib", "npy:"+calib, "--out", q, "--layers", "none"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, errs)
	}
	args := []string{"bench", model, "--compare", q, "--batch", "2", "--threads", "1", "--min-time", "20ms",
		"--iters", "2", "--warmup", "1", "--rounds", "2"}
	code, out, errs := goslim(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"FP32", "INT8", "faster than", "nodes run on 8-bit data", "QLinearConv×2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = goslim(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var m struct {
		Speedup float64 `json:"speedup"`
		Models  []struct {
			Precision string `json:"precision"`
			Integer   int    `json:"integer_nodes"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if m.Speedup <= 0 || len(m.Models) != 2 || m.Models[0].Precision != "FP32" || m.Models[1].Precision != "INT8" || m.Models[1].Integer < 5 {
		t.Errorf("compare JSON %s", out)
	}
	if code, _, errs := goslim(t, "bench", model, "--compare", filepath.Join(dir, "missing.onnx")); code == 0 || !strings.Contains(errs, "missing.onnx") {
		t.Errorf("missing --compare model: exit %d, %q", code, errs)
	}
}
