// Package ortoracle runs ONNX models in ONNX Runtime so tests and benchmarks
// can compare goslim against it. It is a development tool: it drives
// ONNX Runtime for Node.js (npm package onnxruntime-node) through the
// `node` executable, one process per call, and never links ORT into goslim.
//
// ORT is looked up in a cache folder: $GOSLIM_ORT_DIR if set, else
// <module root>/.cache/ort, which must contain node_modules/onnxruntime-node.
// Install it there (from the module root; 1.30.0 is the version tested) with
//
//	npm install --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0
//
// --ignore-scripts skips the package's postinstall step, which only fetches
// optional GPU binaries; the CPU library ships in the npm package.
//
// Each call writes the models and their inputs (raw little-endian bytes plus
// a JSON manifest) into a temporary folder, runs an embedded script with
// node and reads the outputs back. RunAll runs many models in one process.
package ortoracle

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goslim/goslim/tensor"
)

//go:embed oracle.js
var script []byte

// EnvDir names the environment variable that overrides the ORT cache folder.
const EnvDir = "GOSLIM_ORT_DIR"

// Graph optimization levels of ONNX Runtime (SessionOptions.graphOptimizationLevel).
const (
	OptDisabled = "disabled"
	OptBasic    = "basic"
	OptExtended = "extended"
	OptAll      = "all"
)

// Options configure how ORT runs a model. The zero value means
// graphOptimizationLevel "all" and one intra-op thread.
type Options struct {
	// OptLevel is ORT's graphOptimizationLevel: OptDisabled, OptBasic,
	// OptExtended or OptAll (default).
	OptLevel string
	// Threads is ORT's intraOpNumThreads (default 1).
	Threads int
}

// Oracle runs models in ONNX Runtime. It holds no open process; each call
// starts node afresh. An Oracle is safe for concurrent use.
type Oracle struct {
	node    string // path of the node executable
	module  string // absolute path of node_modules/onnxruntime-node
	version string
	opts    Options
}

// Find locates node and onnxruntime-node and checks that ORT loads. The
// error says what is missing and how to install it.
func Find() (*Oracle, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("ortoracle: node (Node.js) not found on PATH: %w", err)
	}
	module := filepath.Join(dir, "node_modules", "onnxruntime-node")
	if _, err := os.Stat(filepath.Join(module, "package.json")); err != nil {
		return nil, fmt.Errorf("ortoracle: onnxruntime-node not installed in %s (install with `npm install --prefix %s --ignore-scripts onnxruntime-node`, or set %s)", dir, dir, EnvDir)
	}
	o := &Oracle{node: node, module: module}
	var res result
	if err := o.call(job{Mode: "version"}, nil, &res); err != nil {
		return nil, err
	}
	o.version = res.Version
	return o, nil
}

// Dir returns the ORT cache folder: $GOSLIM_ORT_DIR, else .cache/ort under
// the module root (the nearest folder above the working directory that
// holds go.mod).
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return filepath.Abs(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ortoracle: %w", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "ort"), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("ortoracle: no go.mod above %s; set %s to the ORT cache folder", wd, EnvDir)
		}
		d = parent
	}
}

// Version returns the onnxruntime-node version, e.g. "1.30.0".
func (o *Oracle) Version() string { return o.version }

// With returns a copy of o that runs models with the given options.
func (o *Oracle) With(opts Options) *Oracle {
	c := *o
	c.opts = opts
	return &c
}

// Run runs model (a serialized ONNX ModelProto) on feeds keyed by input name
// and returns every graph output keyed by name. An ORT failure (invalid
// model, unimplemented op, bad feed) is returned as an *Error carrying ORT's
// message.
func (o *Oracle) Run(model []byte, feeds map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	res, err := o.RunAll([]Case{{Model: model, Feeds: feeds}})
	if err != nil {
		return nil, err
	}
	return res[0].Outputs, res[0].Err
}

// Case is one model and its feeds for RunAll.
type Case struct {
	Model []byte // serialized ONNX ModelProto
	Feeds map[string]*tensor.Tensor
}

// Result is the outcome of one Case: the outputs keyed by name, or the
// error ORT reported for that model (an *Error).
type Result struct {
	Outputs map[string]*tensor.Tensor
	Err     error
}

// RunAll runs several models in one node process, which saves the process
// start (a few hundred milliseconds) per model. Each model gets its own
// session. The returned error is for failures outside ORT (node missing,
// I/O); per-model ORT failures are in the results.
func (o *Oracle) RunAll(cases []Case) ([]Result, error) {
	var res result
	dir, err := o.exec(job{Mode: "run"}, cases, &res)
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(cases))
	for i, r := range res.Runs {
		if r.Error != "" {
			out[i].Err = &Error{Msg: r.Error}
			continue
		}
		out[i].Outputs = make(map[string]*tensor.Tensor, len(r.Outputs))
		for _, spec := range r.Outputs {
			b, err := os.ReadFile(filepath.Join(dir, spec.File))
			if err != nil {
				return nil, fmt.Errorf("ortoracle: output %q: %w", spec.Name, err)
			}
			t, err := decodeRaw(spec, b)
			if err != nil {
				return nil, err
			}
			out[i].Outputs[spec.Name] = t
		}
	}
	return out, nil
}

// Bench runs model warmup times untimed, then iters times, and returns the
// wall time of each timed session.run call, measured inside node (process
// start, model loading and session creation are excluded).
func (o *Oracle) Bench(model []byte, feeds map[string]*tensor.Tensor, warmup, iters int) ([]time.Duration, error) {
	if warmup < 0 || iters < 1 {
		return nil, fmt.Errorf("ortoracle: bench needs warmup >= 0 and iters >= 1, got %d and %d", warmup, iters)
	}
	var res result
	if err := o.call(job{Mode: "bench", Warmup: warmup, Iters: iters}, []Case{{Model: model, Feeds: feeds}}, &res); err != nil {
		return nil, err
	}
	r := res.Runs[0]
	if r.Error != "" {
		return nil, &Error{Msg: r.Error}
	}
	if len(r.Times) != iters {
		return nil, fmt.Errorf("ortoracle: bench returned %d times, want %d", len(r.Times), iters)
	}
	times := make([]time.Duration, iters)
	for i, ns := range r.Times {
		times[i] = time.Duration(ns)
	}
	return times, nil
}

// job is the manifest oracle.js reads.
type job struct {
	Module   string   `json:"module"`
	Mode     string   `json:"mode"` // "version", "run" or "bench"
	OptLevel string   `json:"optLevel,omitempty"`
	Threads  int      `json:"threads,omitempty"`
	Runs     []runJob `json:"runs,omitempty"`
	Warmup   int      `json:"warmup,omitempty"`
	Iters    int      `json:"iters,omitempty"`
}

// runJob is one model file and its inputs.
type runJob struct {
	Model  string     `json:"model"`
	Inputs []tensorIO `json:"inputs"`
}

// tensorIO describes one tensor stored as a raw little-endian file.
type tensorIO struct {
	Name string  `json:"name"`
	Type string  `json:"type"` // ORT's type name: "float32", "int64", "bool", ...
	Dims []int64 `json:"dims"`
	File string  `json:"file"`
}

// result is what oracle.js writes back.
type result struct {
	Error   string      `json:"error"`
	Version string      `json:"version"`
	Runs    []runResult `json:"runs"`
}

type runResult struct {
	Error   string     `json:"error"`
	Outputs []tensorIO `json:"outputs"`
	Times   []int64    `json:"times"` // nanoseconds
}

// call runs a job and removes its folder.
func (o *Oracle) call(j job, cases []Case, res *result) error {
	dir, err := o.exec(j, cases, res)
	if dir != "" {
		os.RemoveAll(dir)
	}
	return err
}

// exec writes the job folder, runs node and decodes result.json. It returns
// the folder (to be removed by the caller) even on error.
func (o *Oracle) exec(j job, cases []Case, res *result) (string, error) {
	dir, err := os.MkdirTemp("", "goslim-ort-")
	if err != nil {
		return "", fmt.Errorf("ortoracle: %w", err)
	}
	j.Module = o.module
	if j.Mode != "version" {
		j.OptLevel = o.opts.OptLevel
		if j.OptLevel == "" {
			j.OptLevel = OptAll
		}
		switch j.OptLevel {
		case OptDisabled, OptBasic, OptExtended, OptAll:
		default:
			return dir, fmt.Errorf("ortoracle: unknown optimization level %q", j.OptLevel)
		}
		j.Threads = o.opts.Threads
		if j.Threads <= 0 {
			j.Threads = 1
		}
		for ci, c := range cases {
			r := runJob{Model: fmt.Sprintf("model%d.onnx", ci), Inputs: []tensorIO{}}
			if err := os.WriteFile(filepath.Join(dir, r.Model), c.Model, 0o600); err != nil {
				return dir, fmt.Errorf("ortoracle: %w", err)
			}
			names := make([]string, 0, len(c.Feeds))
			for name := range c.Feeds {
				names = append(names, name)
			}
			sort.Strings(names)
			for i, name := range names {
				spec, b, err := encodeRaw(name, c.Feeds[name])
				if err != nil {
					return dir, err
				}
				spec.File = fmt.Sprintf("r%d_in%d.bin", ci, i)
				if err := os.WriteFile(filepath.Join(dir, spec.File), b, 0o600); err != nil {
					return dir, fmt.Errorf("ortoracle: %w", err)
				}
				r.Inputs = append(r.Inputs, spec)
			}
			j.Runs = append(j.Runs, r)
		}
		if len(j.Runs) == 0 {
			return dir, nil
		}
	}
	mb, err := json.Marshal(j)
	if err != nil {
		return dir, fmt.Errorf("ortoracle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "job.json"), mb, 0o600); err != nil {
		return dir, fmt.Errorf("ortoracle: %w", err)
	}
	js := filepath.Join(dir, "oracle.js")
	if err := os.WriteFile(js, script, 0o600); err != nil {
		return dir, fmt.Errorf("ortoracle: %w", err)
	}
	cmd := exec.Command(o.node, js, dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	rb, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if runErr != nil {
			return dir, fmt.Errorf("ortoracle: node failed: %v: %s", runErr, msg)
		}
		return dir, fmt.Errorf("ortoracle: node wrote no result: %s", msg)
	}
	if err := json.Unmarshal(rb, res); err != nil {
		return dir, fmt.Errorf("ortoracle: bad result: %w", err)
	}
	if res.Error != "" {
		return dir, fmt.Errorf("ortoracle: node: %s", res.Error)
	}
	if runErr != nil {
		return dir, fmt.Errorf("ortoracle: node failed: %v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	if j.Mode != "version" && len(res.Runs) != len(j.Runs) {
		return dir, fmt.Errorf("ortoracle: node returned %d results for %d models", len(res.Runs), len(j.Runs))
	}
	return dir, nil
}

// Error is a failure reported by ONNX Runtime itself (session creation or
// run), as opposed to a failure to start node or exchange data.
type Error struct {
	Msg string // ORT's message
}

func (e *Error) Error() string { return "ortoracle: onnxruntime: " + e.Msg }

// IsORTError reports whether err came from ONNX Runtime itself.
func IsORTError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// ortTypes lists the dtypes the oracle exchanges, in ONNX enum order.
func ortTypes() []tensor.DType {
	return []tensor.DType{tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Uint16, tensor.Int16,
		tensor.Int32, tensor.Int64, tensor.Bool, tensor.Float16, tensor.Float64, tensor.Uint32, tensor.Uint64}
}

// ortType returns ORT's tensor type name for dt ("float32", "int64", ...).
func ortType(dt tensor.DType) (string, bool) {
	for _, d := range ortTypes() {
		if d == dt {
			return dt.String(), true
		}
	}
	return "", false
}

func dtypeOf(name string) (tensor.DType, bool) {
	for _, d := range ortTypes() {
		if d.String() == name {
			return d, true
		}
	}
	return 0, false
}

// encodeRaw serializes t as little-endian bytes (bool as one byte 0/1).
func encodeRaw(name string, t *tensor.Tensor) (tensorIO, []byte, error) {
	if err := t.Check(); err != nil {
		return tensorIO{}, nil, fmt.Errorf("ortoracle: input %q: %w", name, err)
	}
	typ, ok := ortType(t.DType)
	if !ok {
		return tensorIO{}, nil, fmt.Errorf("ortoracle: input %q: dtype %v is not supported", name, t.DType)
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	le := binary.LittleEndian
	b := make([]byte, 0, t.Len()*t.DType.Size())
	switch d := t.Data.(type) {
	case []float32:
		for _, v := range d {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case []float64:
		for _, v := range d {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	case []uint16:
		for _, v := range d {
			b = le.AppendUint16(b, v)
		}
	case []int8:
		for _, v := range d {
			b = append(b, byte(v))
		}
	case []uint8:
		b = append(b, d...)
	case []int16:
		for _, v := range d {
			b = le.AppendUint16(b, uint16(v))
		}
	case []int32:
		for _, v := range d {
			b = le.AppendUint32(b, uint32(v))
		}
	case []uint32:
		for _, v := range d {
			b = le.AppendUint32(b, v)
		}
	case []int64:
		for _, v := range d {
			b = le.AppendUint64(b, uint64(v))
		}
	case []uint64:
		for _, v := range d {
			b = le.AppendUint64(b, v)
		}
	case []bool:
		for _, v := range d {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return tensorIO{Name: name, Type: typ, Dims: dims}, b, nil
}

// decodeRaw is the inverse of encodeRaw for an output ORT wrote.
func decodeRaw(spec tensorIO, b []byte) (*tensor.Tensor, error) {
	dt, ok := dtypeOf(spec.Type)
	if !ok {
		return nil, fmt.Errorf("ortoracle: output %q has type %s, which goslim does not read", spec.Name, spec.Type)
	}
	shape := make(tensor.Shape, len(spec.Dims))
	for i, d := range spec.Dims {
		shape[i] = int(d)
	}
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("ortoracle: output %q: %w", spec.Name, err)
	}
	if want := t.Len() * dt.Size(); len(b) != want {
		return nil, fmt.Errorf("ortoracle: output %q: %d bytes, want %d for %v%v", spec.Name, len(b), want, dt, shape)
	}
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = le.Uint16(b[2*i:])
		}
	case []int8:
		for i := range d {
			d[i] = int8(b[i])
		}
	case []uint8:
		copy(d, b)
	case []int16:
		for i := range d {
			d[i] = int16(le.Uint16(b[2*i:]))
		}
	case []int32:
		for i := range d {
			d[i] = int32(le.Uint32(b[4*i:]))
		}
	case []uint32:
		for i := range d {
			d[i] = le.Uint32(b[4*i:])
		}
	case []int64:
		for i := range d {
			d[i] = int64(le.Uint64(b[8*i:]))
		}
	case []uint64:
		for i := range d {
			d[i] = le.Uint64(b[8*i:])
		}
	case []bool:
		for i := range d {
			d[i] = b[i] != 0
		}
	}
	return t, nil
}
