package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// goslimJSON runs goslim with args, fails the test unless it exits 0, and
// decodes its standard output as JSON into v.
func goslimJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, stdout, stderr := goslim(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("%s: bad JSON: %v\n%s", args[0], err, stdout)
	}
}

// writeCalibNPY writes n seeded 1x28x28 images (and, when labels, labels
// 0..9) as .npy files and returns the data spec.
func writeCalibNPY(t *testing.T, n int, labels bool) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*28*28)
	for i := range x {
		x[i] = rng.Float32()
	}
	xp := filepath.Join(dir, "x.npy")
	if err := npy.WriteFile(xp, tensor.FromFloat32(tensor.Shape{n, 1, 28, 28}, x)); err != nil {
		t.Fatal(err)
	}
	if !labels {
		return "npy:" + xp
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % 10)
	}
	yp := filepath.Join(dir, "y.npy")
	if err := npy.WriteFile(yp, tensor.FromInt64(tensor.Shape{n}, y)); err != nil {
		t.Fatal(err)
	}
	return "npy:" + xp + "," + yp
}

func TestQuantizeAndCompareCLI(t *testing.T) {
	model := writeLeNet(t)
	calib := writeCalibNPY(t, 40, false)
	out := filepath.Join(t.TempDir(), "lenet.int8.onnx")
	var rep map[string]any
	goslimJSON(t, &rep, "quantize", model, "--calib", calib, "--batch-size", "8", "--batches", "3",
		"--eval", writeCalibNPY(t, 30, true), "--out", out, "--json", "--progress", "none")
	for _, k := range []string{"config", "calibration", "size", "fp32", "quantized", "top1_drop_points"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if c := rep["calibration"].(map[string]any); c["batches"].(float64) != 3 {
		t.Errorf("calibration %v", c)
	}
	g, err := onnx.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	q := 0
	for _, n := range g.Nodes {
		if n.Op == "QuantizeLinear" {
			q++
		}
	}
	if q == 0 {
		t.Error("no QuantizeLinear in the output")
	}

	code, stdout, stderr := goslim(t, "compare", model, out, "--data", writeCalibNPY(t, 20, true), "--progress", "none")
	if code != 0 || !strings.Contains(stdout, "SQNR") || !strings.Contains(stdout, "top-1 accuracy") {
		t.Errorf("compare exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = goslim(t, "compare", model, out, "--data", calib, "--json")
	var cmp map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &cmp) != nil || cmp["outputs"] == nil {
		t.Errorf("compare --json exit %d:\n%s", code, stdout)
	}
}

func TestQuantizeConfigAndFlags(t *testing.T) {
	model := writeLeNet(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ptq.json")
	if err := os.WriteFile(cfgPath, []byte(`{"version": 1, "method": "percentile", "percentile": 99.9, "per_channel": false, "exclude": ["Gemm"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := goslim(t, "quantize", model, "--config", cfgPath, "--method", "mse", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatal(err)
	}
	if c["method"] != "mse" || c["per_channel"] != false || c["percentile"].(float64) != 99.9 {
		t.Errorf("flags should win over the file: %v", c)
	}
	// The same file as YAML.
	yamlPath := filepath.Join(dir, "ptq.yaml")
	if err := os.WriteFile(yamlPath, []byte("version: 1  # format\nmethod: percentile\npercentile: 99.9\nper_channel: false\nexclude:\n  - Gemm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = goslim(t, "quantize", model, "--config", yamlPath, "--method", "mse", "--print-config")
	var cy map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &cy) != nil || cy["method"] != "mse" || cy["per_channel"] != false ||
		cy["percentile"].(float64) != 99.9 || len(cy["exclude"].([]any)) != 1 {
		t.Errorf("YAML config: exit %d: %s%s", code, stdout, stderr)
	}
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("version: 1\nmethod: &m kl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := goslim(t, "quantize", model, "--config", badYAML, "--print-config"); code != 2 || !strings.Contains(stderr, "line 2") {
		t.Errorf("bad YAML: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "m.onnx")
	code, stdout, stderr = goslim(t, "quantize", model, "--config", cfgPath, "--calib", writeCalibNPY(t, 16, false), "--out", out, "--progress", "none")
	if code != 0 || !strings.Contains(stdout, "excluded by op type") {
		t.Errorf("exit %d:\n%s%s", code, stdout, stderr)
	}
	for _, bad := range [][]string{
		{"quantize", model, "--out", out},                                          // no --calib
		{"quantize", model, "--calib", "npy:/nonexistent.npy", "--out", out},       // missing data
		{"quantize", model, "--calib", writeCalibNPY(t, 4, false), "--out", model}, // overwrite input
		{"quantize", model, "--calib", writeCalibNPY(t, 4, false), "--out", out, "--method", "bogus"},
		{"quantize", model, "--calib", writeCalibNPY(t, 4, false), "--out", out, "--per-channel", "--per-tensor"},
		{"quantize", out, "--calib", writeCalibNPY(t, 4, false), "--out", out + "2"}, // already quantized
	} {
		if code, _, stderr := goslim(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", bad[2:], code, stderr)
		}
	}
}

func TestQuantizeMaxDropGate(t *testing.T) {
	model := writeLeNet(t)
	out := filepath.Join(t.TempDir(), "m.onnx")
	// Exit 0 when the search meets the limit, 1 when it cannot (the best
	// model is written either way); never a usage error.
	code, stdout, stderr := goslim(t, "quantize", model, "--calib", writeCalibNPY(t, 16, false), "--eval", writeCalibNPY(t, 16, false),
		"--activations", "int8", "--max-drop", "0", "--out", out, "--progress", "none")
	if (code != 0 && code != 1) || !strings.Contains(stdout, "max-drop") {
		t.Errorf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}
