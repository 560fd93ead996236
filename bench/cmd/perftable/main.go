// Command perftable times goslim's FP32 engine on the reference models and,
// when ONNX Runtime for Node.js is installed, ONNX Runtime on the same
// models in the same run, and prints a Markdown table of latencies,
// throughputs and the goslim/ORT ratio.
//
// It is a development tool, run by `make perf` (see bench/README.md):
//
//	/usr/bin/python3 bench/models/gen_models.py        # once: .cache/bench-models/*.onnx
//	go run ./bench/cmd/perftable -out docs/performance.md
//
// goslim runs each model after rewrite.Simplify (its standard graph
// clean-up) through infer.Session, timed by bench.Run. ONNX Runtime runs
// the exported file unchanged at graphOptimizationLevel "all" with
// intraOpNumThreads equal to goslim's thread count, through
// internal/ortoracle (one node process per measurement round). Timing
// session.run from Node adds a binding overhead of several microseconds per
// call; perftable times a 1-element Identity model in every ORT round,
// right after the model, and subtracts the median of those times from every
// ORT time.
//
// The VM this project runs on is noisy, so every row is measured in rounds
// that alternate goslim and ORT (the order flips each round); each cell is
// the median over rounds of the per-round median.
//
// ONNX Runtime is a comparison tool only: goslim never links or needs it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goslim/goslim/internal/ortoracle"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	modelsDir string
	out       string
	models    []string
	threads   []int
	batches   []int
	rounds    int
	roundTime time.Duration
	kernels   string
	ort       string // "auto" or "off"
	optLevel  string
	simplify  bool
	cpuTime   bool // time one-thread rows by CPU time
	sgemm     bool // also time SGEMM 256/512/1024
}

// run parses args, measures and prints the report; it returns the exit
// code (0 ok, 2 bad usage or a failed measurement).
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "perftable: %v\n", err)
		return 2
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	rep, err := measure(context.Background(), cfg, progress)
	if err != nil {
		fmt.Fprintf(stderr, "perftable: %v\n", err)
		return 2
	}
	var buf bytes.Buffer
	rep.write(&buf)
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return 2
	}
	if cfg.out != "" {
		if err := appendSection(cfg.out, buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "perftable: %v\n", err)
			return 2
		}
		progress("perftable: appended to %s", cfg.out)
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("perftable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: perftable [flags]\n\nTimes goslim (and ONNX Runtime when installed) on the reference models\nbuilt by bench/models/gen_models.py and prints a Markdown table.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.modelsDir, "models", "", "folder with the reference models (default <module root>/.cache/bench-models)")
	fs.StringVar(&cfg.out, "out", "", "also append the report as a section to this Markdown file")
	only := fs.String("only", strings.Join(modelNames(), ","), "models to measure, comma separated")
	threads := fs.String("threads", "1,2", "thread counts, comma separated")
	batches := fs.String("batches", "1,32", "batch sizes, comma separated")
	fs.IntVar(&cfg.rounds, "rounds", 5, "measurement rounds per row (goslim and ORT alternate)")
	fs.DurationVar(&cfg.roundTime, "round-time", 300*time.Millisecond, "timed work per engine per round")
	fs.StringVar(&cfg.kernels, "kernels", "", "goslim kernel tier (generic, avx2, avx512, vnni, amx; default best)")
	fs.StringVar(&cfg.ort, "ort", "auto", `"auto": compare with ONNX Runtime when installed; "off": goslim only`)
	fs.StringVar(&cfg.optLevel, "ort-opt", ortoracle.OptAll, "ONNX Runtime graphOptimizationLevel (disabled, basic, extended, all)")
	fs.BoolVar(&cfg.simplify, "simplify", true, "run rewrite.Simplify on each model before goslim compiles it")
	fs.BoolVar(&cfg.sgemm, "sgemm", true, "also time one-thread SGEMM at 256, 512 and 1024")
	fs.BoolVar(&cfg.cpuTime, "cpu-time", true, "time one-thread rows by CPU time (goslim: the calling thread's, ORT: the node process's); rows with more threads always use wall time")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.threads, err = parseInts("-threads", *threads); err != nil {
		return cfg, err
	}
	if cfg.batches, err = parseInts("-batches", *batches); err != nil {
		return cfg, err
	}
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := lookupModel(name); !ok {
			return cfg, fmt.Errorf("-only: unknown model %q (have %s)", name, strings.Join(modelNames(), ", "))
		}
		cfg.models = append(cfg.models, name)
	}
	if len(cfg.models) == 0 {
		return cfg, fmt.Errorf("-only: no models")
	}
	if cfg.rounds < 1 {
		return cfg, fmt.Errorf("-rounds must be at least 1")
	}
	if cfg.roundTime <= 0 {
		return cfg, fmt.Errorf("-round-time must be positive")
	}
	switch cfg.ort {
	case "auto", "off":
	default:
		return cfg, fmt.Errorf(`-ort must be "auto" or "off", got %q`, cfg.ort)
	}
	switch cfg.optLevel {
	case ortoracle.OptDisabled, ortoracle.OptBasic, ortoracle.OptExtended, ortoracle.OptAll:
	default:
		return cfg, fmt.Errorf("-ort-opt: unknown level %q", cfg.optLevel)
	}
	if cfg.modelsDir == "" {
		root, err := moduleRoot()
		if err != nil {
			return cfg, err
		}
		cfg.modelsDir = filepath.Join(root, ".cache", "bench-models")
	}
	return cfg, nil
}

// parseInts parses "1,2,4" into positive integers.
func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, p)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty list", flagName)
	}
	return out, nil
}

// moduleRoot returns the nearest folder above the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s; give the models folder with -models", wd)
		}
		d = parent
	}
}

// appendSection appends a report section to a Markdown file, writing the
// file's title first when the file is new or empty, or inserts it before
// the file's "## INT8" part when it has one.
func appendSection(path string, section []byte) error {
	st, err := os.Stat(path)
	fresh := errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if !fresh {
		// The FP32 sections go before the INT8 part of the file, when there
		// is one (written by bench/int8; the INT8 heading is a level-2 "INT8").
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(old, []byte("\n## INT8\n")); i >= 0 {
			var buf bytes.Buffer
			buf.Write(bytes.TrimRight(old[:i], "\n"))
			buf.WriteString("\n\n")
			buf.Write(section)
			buf.Write(old[i:])
			return os.WriteFile(path, buf.Bytes(), 0o644)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if fresh {
		buf.WriteString(docHeader)
	}
	buf.WriteString("\n")
	buf.Write(section)
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// docHeader opens a new docs/performance.md.
const docHeader = `# Performance

Measured with ` + "`make perf`" + ` (bench/cmd/perftable; see bench/README.md), one section per
run, newest last. Models: LeNet-5 (1x28x28), MLP 784-512-256-10, ResNet-8 (3x32x32,
stages 16/32/64) and MobileNetV2 width 0.5 (3x96x96, 10 classes), seeded random weights,
exported by PyTorch at opset 13 with a dynamic batch. ONNX Runtime is timed through its
Node.js binding; the binding overhead, measured on a 1-element Identity model, is subtracted.
Target: goslim/ORT <= 1.2.
`
