package main

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

	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/tensor"
)

//go:embed ortbench.js
var ortBenchJS []byte

// ortTimer times ONNX Runtime models by wall clock and process CPU time
// through ortbench.js (internal/ortoracle's Bench reports wall time only).
type ortTimer struct {
	node, module string
	threads      int
	optLevel     string
}

// newORTTimer locates node and onnxruntime-node as internal/ortoracle
// does (Find has already checked that ORT loads).
func newORTTimer(threads int, optLevel string) (*ortTimer, error) {
	dir, err := ortoracle.Dir()
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node (Node.js) not found on PATH: %w", err)
	}
	return &ortTimer{node: node, module: filepath.Join(dir, "node_modules", "onnxruntime-node"), threads: threads, optLevel: optLevel}, nil
}

// ortTimes are the per-call times of one ortbench.js run, in nanoseconds.
type ortTimes struct {
	Wall []float64 `json:"wall"`
	CPU  []float64 `json:"cpu"`
}

// ortInput is a float32 input written as a raw file.
type ortInput struct {
	Name string `json:"name"`
	Dims []int  `json:"dims"`
	File string `json:"file"`
}

// bench times model (iters calls after warmup) and then the Identity
// model idModel (idIters calls) in one node process.
func (o *ortTimer) bench(model []byte, feeds map[string]*tensor.Tensor, idModel []byte, idFeeds map[string]*tensor.Tensor,
	warmup, iters, idIters int) (m, id ortTimes, err error) {
	dir, err := os.MkdirTemp("", "goslim-perftable-")
	if err != nil {
		return m, id, err
	}
	defer os.RemoveAll(dir)
	write := func(name string, data []byte) error { return os.WriteFile(filepath.Join(dir, name), data, 0o600) }
	input := func(prefix string, feeds map[string]*tensor.Tensor) (ortInput, error) {
		if len(feeds) != 1 {
			return ortInput{}, fmt.Errorf("perftable times models with one input, got %d", len(feeds))
		}
		for name, t := range feeds {
			if t.DType != tensor.Float32 {
				return ortInput{}, fmt.Errorf("input %q is %v, want float32", name, t.DType)
			}
			b := make([]byte, 4*t.Len())
			for i, v := range t.F32() {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			in := ortInput{Name: name, Dims: []int(t.Shape), File: prefix + ".bin"}
			return in, write(in.File, b)
		}
		panic("unreachable")
	}
	in, err := input("input", feeds)
	if err != nil {
		return m, id, err
	}
	idIn, err := input("idinput", idFeeds)
	if err != nil {
		return m, id, err
	}
	if err := write("model.onnx", model); err != nil {
		return m, id, err
	}
	if err := write("identity.onnx", idModel); err != nil {
		return m, id, err
	}
	if err := write("ortbench.js", ortBenchJS); err != nil {
		return m, id, err
	}
	job, _ := json.Marshal(map[string]any{"module": o.module, "threads": o.threads, "optLevel": o.optLevel,
		"warmup": warmup, "iters": iters, "idIters": idIters, "model": "model.onnx", "idModel": "identity.onnx",
		"input": in, "idInput": idIn})
	if err := write("job.json", job); err != nil {
		return m, id, err
	}
	cmd := exec.Command(o.node, filepath.Join(dir, "ortbench.js"), dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return m, id, fmt.Errorf("ortbench.js wrote no result (%v): %s", runErr, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Error    string   `json:"error"`
		Model    ortTimes `json:"model"`
		Identity ortTimes `json:"identity"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return m, id, fmt.Errorf("ortbench.js result: %w", err)
	}
	if res.Error != "" {
		return m, id, fmt.Errorf("onnxruntime: %s", res.Error)
	}
	if len(res.Model.Wall) != iters || len(res.Model.CPU) != iters || len(res.Identity.Wall) != idIters || len(res.Identity.CPU) != idIters {
		return m, id, fmt.Errorf("ortbench.js returned %d/%d times, want %d/%d", len(res.Model.Wall), len(res.Identity.Wall), iters, idIters)
	}
	return res.Model, res.Identity, nil
}
