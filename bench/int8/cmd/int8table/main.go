// Command int8table measures goslim INT8 against goslim FP32 and ONNX
// Runtime INT8 (QDQ) and FP32 on the reference models, one thread, and
// prints a Markdown section (optionally replacing the "## INT8" section at
// the end of a file).
//
//	go run ./bench/int8/cmd/int8table -models .cache/bench-models -out docs/performance.md
//
// For each model (bench/models/gen_models.py writes them) it quantizes the
// FP32 file with goslim ptq (defaults: int8 per-channel symmetric weights,
// uint8 per-tensor activations, minmax) calibrated on -calib random
// uniform [0,1) images, checks that the lowered INT8 session agrees with
// the unlowered DQ -> FP32 -> Q session within one output quantization
// step, then times goslim FP32 and INT8 sessions in alternating rounds
// (per-run CPU time of the running thread and wall time) and ONNX Runtime
// running the FP32 file and the QDQ file (wall time measured inside Node;
// the binding overhead, timed on a 1-element Identity model in the same
// rounds, is subtracted).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goslim/goslim/bench"
	int8bench "github.com/goslim/goslim/bench/int8"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/ptq"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

type config struct {
	models    string
	out       string
	names     []string
	batches   []int
	calib     int
	rounds    int
	roundTime time.Duration
	ort       bool
	kernels   string
	keep      string
	profile   bool
}

func main() {
	var cfg config
	var names, batches string
	flag.StringVar(&cfg.models, "models", ".cache/bench-models", "folder with the FP32 reference models (gen_models.py)")
	flag.StringVar(&cfg.out, "out", "", `replace (or append) the "## INT8" section at the end of this Markdown file`)
	flag.StringVar(&names, "only", "lenet5,mlp,resnet8,mobilenetv2", "models to measure")
	flag.StringVar(&batches, "batches", "1,32", "batch sizes")
	flag.IntVar(&cfg.calib, "calib", 64, "random calibration images")
	flag.IntVar(&cfg.rounds, "rounds", 4, "alternating measurement rounds per row")
	flag.DurationVar(&cfg.roundTime, "round-time", 500*time.Millisecond, "time per engine per round")
	flag.BoolVar(&cfg.ort, "ort", true, "also time ONNX Runtime (when installed)")
	flag.StringVar(&cfg.kernels, "kernels", "", "goslim kernel tier (default: best)")
	flag.StringVar(&cfg.keep, "keep", "", "write the QDQ models to this folder")
	flag.BoolVar(&cfg.profile, "profile", true, "profile each INT8 model by layer kind at the largest batch")
	flag.Parse()
	cfg.names = strings.Split(names, ",")
	for _, b := range strings.Split(batches, ",") {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "int8table: bad batch %q\n", b)
			os.Exit(2)
		}
		cfg.batches = append(cfg.batches, n)
	}
	sec, err := measure(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "int8table: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(sec)
	if cfg.out != "" {
		if err := replaceSection(cfg.out, sec); err != nil {
			fmt.Fprintf(os.Stderr, "int8table: %v\n", err)
			os.Exit(1)
		}
	}
}

// model is one reference model in both precisions.
type model struct {
	name       string
	fp32, qdq  *ir.Graph
	fp32File   []byte
	qdqFile    []byte
	agree      string // lowered vs unlowered agreement
	prof       []int8bench.LayerTime
	profMs     float64
	profBatch  int
	low        int8bench.Lowering
	lowCount   string
	ortAgree   string
	quantizeMs float64
}

type row struct {
	m                       *model
	batch                   int
	fp32, int8              int8bench.Timing
	ortFP32, ortINT8        float64 // CPU ms, binding overhead subtracted; 0 when not measured
	ortFP32Raw, ortQDQRaw   float64 // CPU ms before subtracting
	ortFP32Wall, ortQDQWall float64 // wall ms, overhead not subtracted
}

func measure(ctx context.Context, cfg config) (string, error) {
	var ort *ortoracle.Oracle
	ortNote := ""
	if cfg.ort {
		o, err := ortoracle.Find()
		if err != nil {
			ortNote = "ONNX Runtime not available: " + err.Error()
		} else {
			ort = o
		}
	}
	var models []*model
	for _, name := range cfg.names {
		m, err := prepare(ctx, cfg, name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		models = append(models, m)
		fmt.Fprintf(os.Stderr, "int8table: %s quantized; %s; lowered: %s\n", name, m.agree, m.lowCount)
	}
	var rows []row
	var idUs []float64
	tier := ""
	for _, m := range models {
		for _, b := range cfg.batches {
			r, id, t, err := measureRow(ctx, cfg, m, b, ort != nil)
			if err != nil {
				return "", fmt.Errorf("%s batch %d: %w", m.name, b, err)
			}
			tier = t
			if len(id) > 0 {
				idUs = append(idUs, id[0])
			}
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "int8table: %-12s b%-3d goslim FP32 %.3f INT8 %.3f ms CPU (wall %.3f, %.3f); ORT FP32 %.3f QDQ %.3f ms CPU (wall %.3f, %.3f)\n",
				m.name, b, r.fp32.Ms(), r.int8.Ms(), r.fp32.WallMs, r.int8.WallMs, r.ortFP32Raw, r.ortQDQRaw, r.ortFP32Wall, r.ortQDQWall)
		}
	}
	if cfg.profile {
		b := cfg.batches[len(cfg.batches)-1]
		for _, m := range models {
			inputs, err := bench.RandomInputs(m.qdq, b, nil, 1)
			if err != nil {
				return "", err
			}
			if m.prof, m.profMs, err = int8bench.Profile(ctx, m.qdq, inputs, cfg.kernels, time.Second); err != nil {
				return "", fmt.Errorf("%s: profile: %w", m.name, err)
			}
			m.profBatch = b
		}
	}
	overhead := 0.0
	if len(idUs) > 0 {
		overhead = median(idUs) / 1000
		for i := range rows {
			r := &rows[i]
			r.ortFP32 = max(r.ortFP32Raw-overhead, r.ortFP32Raw*0.5)
			r.ortINT8 = max(r.ortQDQRaw-overhead, r.ortQDQRaw*0.5)
		}
	}
	return report(cfg, models, rows, tier, ort, ortNote, overhead), nil
}

// prepare loads a reference model, quantizes it with goslim ptq and checks
// the lowering against the unlowered reference.
func prepare(ctx context.Context, cfg config, name string) (*model, error) {
	path := filepath.Join(cfg.models, name+".onnx")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (build the models with `/usr/bin/python3 bench/models/gen_models.py`)", err)
	}
	g, err := onnx.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if g, err = rewrite.Simplify(g, infer.NodeEvaluator(nil)); err != nil {
		return nil, err
	}
	in := g.Values[g.Inputs[0]].Type
	var shape tensor.Shape
	for _, d := range in.Shape[1:] {
		shape = append(shape, int(d.Size))
	}
	dir, err := os.MkdirTemp("", "int8table")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	calPath := filepath.Join(dir, "calib.npy")
	if err := npy.WriteFile(calPath, images(1, cfg.calib, shape)); err != nil {
		return nil, err
	}
	cal, err := dataset.Open("npy:"+calPath, dataset.Options{BatchSize: 16})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	out, err := ptq.Run(ctx, g, ptq.DefaultConfig(), ptq.Options{Calib: cal, Threads: 1})
	if err != nil {
		return nil, err
	}
	m := &model{name: name, fp32: g, qdq: out.Graph, fp32File: b, quantizeMs: float64(time.Since(t0).Microseconds()) / 1000}
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, out.Graph); err != nil {
		return nil, err
	}
	m.qdqFile = buf.Bytes()
	if cfg.keep != "" {
		if err := os.WriteFile(filepath.Join(cfg.keep, name+".int8.onnx"), m.qdqFile, 0o644); err != nil {
			return nil, err
		}
	}
	// Agreement: lowered vs DQ -> FP32 -> Q on 64 random images.
	low, err := infer.NewSession(out.Graph, infer.Options{Threads: 1, Kernels: cfg.kernels})
	if err != nil {
		return nil, err
	}
	ref, err := infer.NewSession(out.Graph, infer.Options{Threads: 1, Kernels: cfg.kernels, NoInt8Lowering: true})
	if err != nil {
		return nil, err
	}
	x := images(9, 64, shape)
	a, err := ref.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		return nil, err
	}
	c, err := low.RunInputs(ctx, []*tensor.Tensor{x})
	if err != nil {
		return nil, err
	}
	step := outStep(out.Graph)
	within, maxSteps := 0, 0
	for i, v := range a[0].F32() {
		d := math.Abs(float64(v) - float64(c[0].F32()[i]))
		maxSteps = max(maxSteps, int(math.Round(d/step)))
		if d <= step*1.001 {
			within++
		}
	}
	m.agree = fmt.Sprintf("%.2f%% of outputs within one step (max %d)", 100*float64(within)/float64(a[0].Len()), maxSteps)
	m.low = int8bench.Summarize(low)
	var ops []string
	for op, n := range m.low.IntegerOps {
		ops = append(ops, fmt.Sprintf("%s×%d", op, n))
	}
	sort.Strings(ops)
	m.lowCount = strings.Join(ops, " ")
	return m, nil
}

// outStep is the scale of the output's DequantizeLinear.
func outStep(g *ir.Graph) float64 {
	for _, n := range g.Nodes {
		if n.Op == "DequantizeLinear" && len(n.Outputs) == 1 && n.Outputs[0] == g.Outputs[0] {
			if c := g.Values[n.Inputs[1]].Const; c != nil {
				return float64(c.F32()[0])
			}
		}
	}
	return math.NaN()
}

func images(seed uint64, n int, shape tensor.Shape) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	sh := append(tensor.Shape{n}, shape...)
	d := make([]float32, sh.Size())
	for i := range d {
		d[i] = r.Float32()
	}
	return tensor.FromFloat32(sh, d)
}

// measureRow times one model at one batch size.
func measureRow(ctx context.Context, cfg config, m *model, batch int, useORT bool) (row, []float64, string, error) {
	r := row{m: m, batch: batch}
	var samplers []*int8bench.Sampler
	var feeds map[string]*tensor.Tensor
	for _, g := range []*ir.Graph{m.fp32, m.qdq} {
		sess, err := infer.NewSession(g, infer.Options{Threads: 1, Kernels: cfg.kernels})
		if err != nil {
			return r, nil, "", err
		}
		inputs, err := bench.RandomInputs(g, batch, nil, 1)
		if err != nil {
			return r, nil, "", err
		}
		feeds = map[string]*tensor.Tensor{g.Values[g.Inputs[0]].Name: inputs[0]}
		samplers = append(samplers, int8bench.NewSampler(sess, inputs))
	}
	runtime.GC()
	if err := int8bench.Alternate(ctx, samplers, cfg.rounds, 3, 3, cfg.roundTime); err != nil {
		return r, nil, "", err
	}
	r.fp32, r.int8 = samplers[0].Timing(), samplers[1].Timing()
	if !useORT {
		return r, nil, samplers[1].Tier(), nil
	}
	idModel, idFeeds, err := identityModel()
	if err != nil {
		return r, nil, "", err
	}
	iters := func(ms float64) int {
		return min(max(int(float64(cfg.roundTime.Milliseconds())/max(ms, 1e-3)), 5), 20000)
	}
	x := feeds[m.qdq.Values[m.qdq.Inputs[0]].Name]
	ts, _, err := int8bench.ORTBench([]int8bench.ORTModel{
		{File: m.fp32File, Input: m.fp32.Values[m.fp32.Inputs[0]].Name, X: x, Warmup: 5, Iters: iters(r.fp32.WallMs)},
		{File: m.qdqFile, Input: m.qdq.Values[m.qdq.Inputs[0]].Name, X: x, Warmup: 5, Iters: iters(r.fp32.WallMs)},
		{File: idModel, Input: "x", X: idFeeds["x"], Warmup: 100, Iters: 500},
	}, cfg.rounds)
	if err != nil {
		return r, nil, "", err
	}
	r.ortFP32Raw, r.ortQDQRaw = int8bench.MedianMs(ts[0].CPU), int8bench.MedianMs(ts[1].CPU)
	r.ortFP32Wall, r.ortQDQWall = int8bench.MedianMs(ts[0].Wall), int8bench.MedianMs(ts[1].Wall)
	return r, []float64{int8bench.MedianMs(ts[2].CPU) * 1000, int8bench.MedianMs(ts[2].Wall) * 1000}, samplers[1].Tier(), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// identityModel is a 1-element Identity model: ORT's time for it is the
// per-call cost of the Node binding.
func identityModel() ([]byte, map[string]*tensor.Tensor, error) {
	b := ir.NewBuilder("identity", 13)
	x := b.Input("x", tensor.Float32, 1)
	y := b.Op("Identity", "id", []ir.ValueID{x})
	b.G.Values[y].Name = "y"
	b.Output(y)
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, b.G); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), map[string]*tensor.Tensor{"x": tensor.FromFloat32(tensor.Shape{1}, []float32{1})}, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

var labels = map[string]string{"lenet5": "LeNet-5", "mlp": "MLP 784-512-256-10", "resnet8": "ResNet-8", "mobilenetv2": "MobileNetV2-0.5"}

func label(name string) string {
	if l, ok := labels[name]; ok {
		return l
	}
	return name
}

func report(cfg config, models []*model, rows []row, tier string, ort *ortoracle.Oracle, ortNote string, overhead float64) string {
	var b strings.Builder
	commit := gitCommit()
	fmt.Fprintf(&b, "## INT8\n\n")
	fmt.Fprintf(&b, "Measured %s UTC at commit %s with\n\n", time.Now().UTC().Format("2006-01-02 15:04"), commit)
	fmt.Fprintf(&b, "    go run ./bench/int8/cmd/int8table -models .cache/bench-models -out docs/performance.md")
	if cfg.rounds != 4 {
		fmt.Fprintf(&b, " -rounds %d", cfg.rounds)
	}
	if cfg.roundTime != 500*time.Millisecond {
		fmt.Fprintf(&b, " -round-time %s", cfg.roundTime)
	}
	fmt.Fprintf(&b, "\n\n")
	fmt.Fprintf(&b, "One thread, goslim kernel tier %s. INT8 models: the FP32 reference models quantized by goslim ptq with\n", tier)
	fmt.Fprintf(&b, "its defaults (int8 per-channel weights, int32 bias, uint8 per-tensor activations, minmax) on %d random\n", cfg.calib)
	fmt.Fprintf(&b, "[0,1) images; goslim runs the QDQ file with its INT8 lowering (integer kernels); ONNX Runtime runs the\n")
	fmt.Fprintf(&b, "same QDQ file (graph optimization \"all\", which fuses the QDQ groups into its QLinear kernels) and the FP32 file.\n")
	fmt.Fprintf(&b, "All times are medians of per-run **CPU time** (the machine is shared by several jobs, so wall time mostly\n")
	fmt.Fprintf(&b, "measures the load): goslim's is the running thread's CPU time (sessions with one thread compute on the\n")
	fmt.Fprintf(&b, "caller's thread), ORT's the Node process's CPU time per `session.run` (intra-op threads 1) minus that of a\n")
	if ort != nil {
		fmt.Fprintf(&b, "1-element Identity model timed in the same process (binding overhead, %.1f µs; the subtraction never takes more than half of a raw ORT time, so where the overhead exceeds half (batch-1 rows of the small models) ORT is shown slower than the plain difference), ORT %s.\n", overhead*1000, ort.Version())
	} else {
		fmt.Fprintf(&b, "1-element Identity model. %s\n", ortNote)
	}
	fmt.Fprintf(&b, "goslim alternates FP32 and INT8 over %d rounds; ORT alternates FP32, QDQ and Identity over %d rounds in one process.\n", cfg.rounds, cfg.rounds)
	fmt.Fprintf(&b, "\"vs ORT best\" is ORT's faster precision's time over goslim INT8's (> 1: goslim INT8 is faster).\n\n")
	fmt.Fprintf(&b, "| model | batch | goslim FP32 ms | goslim INT8 ms | INT8 vs FP32 | ORT FP32 ms | ORT INT8 ms | vs ORT best | goslim INT8 img/s |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		vs, ortF, ortQ := "-", "-", "-"
		if r.ortFP32 > 0 {
			best := min(r.ortFP32, r.ortINT8)
			vs = fmt.Sprintf("%.2fx", best/r.int8.Ms())
			ortF, ortQ = fmt.Sprintf("%.3f", r.ortFP32), fmt.Sprintf("%.3f", r.ortINT8)
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.2fx | %s | %s | %s | %.0f |\n", label(r.m.name), r.batch,
			r.fp32.Ms(), r.int8.Ms(), r.fp32.Ms()/r.int8.Ms(), ortF, ortQ, vs, float64(r.batch)/(r.int8.Ms()/1000))
	}
	fmt.Fprintf(&b, "\nLowering and agreement (INT8 session vs the same QDQ graph run as DQ -> FP32 -> Q, 64 random images):\n\n")
	for _, m := range models {
		fmt.Fprintf(&b, "- %s: %s; on 8-bit data: %s", label(m.name), m.agree, m.lowCount)
		if len(m.low.FP32) > 0 {
			var ns []string
			for _, n := range m.low.FP32 {
				ns = append(ns, fmt.Sprintf("%s (%s): %s", n.Node, n.Op, n.Reason))
			}
			fmt.Fprintf(&b, "; FP32: %s", strings.Join(ns, "; "))
		}
		fmt.Fprintf(&b, "\n")
	}
	if cfg.profile {
		fmt.Fprintf(&b, "\nWhere goslim INT8's time goes (batch %d, CPU ms per run by layer kind, timed per session step in the\n", cfg.batches[len(cfg.batches)-1])
		fmt.Fprintf(&b, "benchmarked session itself: a lowered layer is one step; a layer left in float also counts its own nodes):\n\n")
		for _, m := range models {
			var parts []string
			for _, lt := range m.prof {
				if lt.Share < 0.01 {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s ×%d %.3f (%.0f%%)", lt.Kind, lt.Count, lt.Ms, 100*lt.Share))
			}
			fmt.Fprintf(&b, "- %s (%.3f ms): %s\n", label(m.name), m.profMs, strings.Join(parts, ", "))
		}
	}
	return b.String()
}

func gitCommit() string {
	b, err := os.ReadFile(".git/HEAD")
	if err != nil {
		return "unknown"
	}
	ref := strings.TrimSpace(strings.TrimPrefix(string(b), "ref: "))
	if c, err := os.ReadFile(filepath.Join(".git", ref)); err == nil {
		return strings.TrimSpace(string(c))[:7]
	}
	if len(ref) >= 7 {
		return ref[:7]
	}
	return ref
}

// replaceSection replaces the "## INT8" section of a Markdown file (from
// its heading to the next "## " heading) by sec, moved to the end.
func replaceSection(path, sec string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	if i := strings.Index(s, "\n## INT8\n"); i >= 0 {
		rest := s[i+1:]
		end := len(rest)
		if j := strings.Index(rest[3:], "\n## "); j >= 0 {
			end = j + 3 + 1
		}
		s = s[:i+1] + rest[end:]
	}
	s = strings.TrimRight(s, "\n") + "\n\n" + sec
	return os.WriteFile(path, []byte(s), 0o644)
}
