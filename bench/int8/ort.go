package int8bench

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/tensor"
)

//go:embed ortcpu.js
var ortScript []byte

// ORTModel is one model for ORTTimes: the ONNX file and its one float32
// input.
type ORTModel struct {
	File   []byte
	Input  string
	X      *tensor.Tensor
	Warmup int
	Iters  int // timed calls per round
}

// ORTTimes holds one model's per-call samples.
type ORTTimes struct {
	Wall, CPU []time.Duration
}

// ORTBench runs the models in one Node.js process with ONNX Runtime (one
// intra-op thread, graph optimization "all"), in rounds that take turns,
// and returns per-call wall and process CPU times, plus ORT's version.
// ORT is found as ortoracle finds it ($GOSLIM_ORT_DIR or .cache/ort).
func ORTBench(models []ORTModel, rounds int) ([]ORTTimes, string, error) {
	ortDir, err := ortoracle.Dir()
	if err != nil {
		return nil, "", err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "", fmt.Errorf("int8bench: node not found: %w", err)
	}
	module := filepath.Join(ortDir, "node_modules", "onnxruntime-node")
	if _, err := os.Stat(filepath.Join(module, "package.json")); err != nil {
		return nil, "", fmt.Errorf("int8bench: onnxruntime-node not installed in %s", ortDir)
	}
	dir, err := os.MkdirTemp("", "goslim-int8-ort-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	type jm struct {
		Model  string `json:"model"`
		Input  string `json:"input"`
		Name   string `json:"name"`
		Dims   []int  `json:"dims"`
		Warmup int    `json:"warmup"`
		Iters  int    `json:"iters"`
	}
	job := struct {
		Module string `json:"module"`
		Rounds int    `json:"rounds"`
		Models []jm   `json:"models"`
	}{Module: module, Rounds: rounds}
	for i, m := range models {
		if m.X.DType != tensor.Float32 {
			return nil, "", fmt.Errorf("int8bench: ORT input must be float32")
		}
		j := jm{Model: fmt.Sprintf("m%d.onnx", i), Input: fmt.Sprintf("x%d.bin", i), Name: m.Input,
			Dims: m.X.Shape, Warmup: m.Warmup, Iters: m.Iters}
		if err := os.WriteFile(filepath.Join(dir, j.Model), m.File, 0o600); err != nil {
			return nil, "", err
		}
		raw := make([]byte, 4*m.X.Len())
		for k, v := range m.X.F32() {
			binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(v))
		}
		if err := os.WriteFile(filepath.Join(dir, j.Input), raw, 0o600); err != nil {
			return nil, "", err
		}
		job.Models = append(job.Models, j)
	}
	jb, _ := json.Marshal(job)
	if err := os.WriteFile(filepath.Join(dir, "job.json"), jb, 0o600); err != nil {
		return nil, "", err
	}
	js := filepath.Join(dir, "ortcpu.js")
	if err := os.WriteFile(js, ortScript, 0o600); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(node, js, dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	rb, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, "", fmt.Errorf("int8bench: node wrote no result (%v): %s", runErr, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Error   string `json:"error"`
		Version string `json:"version"`
		Runs    []struct {
			Wall []float64 `json:"wall"`
			CPU  []float64 `json:"cpu"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(rb, &res); err != nil {
		return nil, "", fmt.Errorf("int8bench: bad ORT result: %w", err)
	}
	if res.Error != "" {
		return nil, "", fmt.Errorf("int8bench: onnxruntime: %s", res.Error)
	}
	if len(res.Runs) != len(models) {
		return nil, "", fmt.Errorf("int8bench: ORT returned %d results for %d models", len(res.Runs), len(models))
	}
	out := make([]ORTTimes, len(models))
	for i, r := range res.Runs {
		for k := range r.Wall {
			out[i].Wall = append(out[i].Wall, time.Duration(r.Wall[k]))
			out[i].CPU = append(out[i].CPU, time.Duration(r.CPU[k]))
		}
	}
	return out, res.Version, nil
}
