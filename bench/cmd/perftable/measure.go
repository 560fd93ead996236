package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goslim/goslim/bench"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/inspect"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// refModel names one reference model file written by gen_models.py.
type refModel struct {
	name  string // file stem
	label string // table label
	input string // per-sample input shape
}

func refModels() []refModel {
	return []refModel{
		{"lenet5", "LeNet-5", "1x28x28"},
		{"mlp", "MLP 784-512-256-10", "1x28x28"},
		{"resnet8", "ResNet-8", "3x32x32"},
		{"mobilenetv2", "MobileNetV2-0.5", "3x96x96"},
	}
}

func modelNames() []string {
	var out []string
	for _, m := range refModels() {
		out = append(out, m.name)
	}
	return out
}

func lookupModel(name string) (refModel, bool) {
	for _, m := range refModels() {
		if m.name == name {
			return m, true
		}
	}
	return refModel{}, false
}

// loaded is a reference model ready to measure.
type loaded struct {
	refModel
	file  []byte    // the ONNX file, run by ORT unchanged
	graph *ir.Graph // what goslim compiles (simplified unless -simplify=false)
	macs  int64     // multiply-accumulates per image
	diff  float64   // max|goslim - ORT| / max|ORT| at batch 2; NaN if not checked
}

// load reads and prepares the selected models.
func load(cfg config) ([]*loaded, error) {
	var out []*loaded
	for _, name := range cfg.models {
		m, _ := lookupModel(name)
		path := filepath.Join(cfg.modelsDir, name+".onnx")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w (build the models with `/usr/bin/python3 bench/models/gen_models.py` or `make perf`)", err)
		}
		g, err := onnx.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		sum, err := inspect.Summarize(g)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if cfg.simplify {
			if g, err = rewrite.Simplify(g, infer.NodeEvaluator(nil)); err != nil {
				return nil, fmt.Errorf("%s: simplify: %w", path, err)
			}
		}
		out = append(out, &loaded{refModel: m, file: b, graph: g, macs: sum.MACs, diff: math.NaN()})
	}
	return out, nil
}

// feedsOf maps graph-input names to the non-nil inputs of RandomInputs.
func feedsOf(g *ir.Graph, inputs []*tensor.Tensor) map[string]*tensor.Tensor {
	feeds := map[string]*tensor.Tensor{}
	for i, id := range g.Inputs {
		if inputs[i] != nil {
			feeds[g.Values[id].Name] = inputs[i]
		}
	}
	return feeds
}

// measure runs the whole benchmark and returns the report.
func measure(ctx context.Context, cfg config, progress func(string, ...any)) (*report, error) {
	models, err := load(cfg)
	if err != nil {
		return nil, err
	}
	rep := &report{cfg: cfg, start: time.Now(), models: models, overheadUs: map[int]float64{}}
	rep.describeMachine()

	if cfg.ort != "off" {
		o, err := ortoracle.Find()
		if err != nil {
			rep.ortMissing = err.Error()
			progress("perftable: ONNX Runtime not available, measuring goslim only: %v", err)
		} else {
			rep.ort = o
			rep.ortVersion = o.Version()
		}
	} else {
		rep.ortMissing = "disabled with -ort=off"
	}

	// The session tier and the kernels that run the compute ops.
	if len(models) > 0 {
		sess, err := infer.NewSession(models[len(models)-1].graph, infer.Options{Threads: 1, Kernels: cfg.kernels})
		if err != nil {
			return nil, err
		}
		rep.tier = sess.Tier().String()
		rep.kernelsUsed = computeKernels(models, cfg.kernels)
	}

	if rep.ort != nil {
		if err := checkAgreement(ctx, rep.ort.With(ortoracle.Options{Threads: 1, OptLevel: cfg.optLevel}), models, cfg.kernels); err != nil {
			return nil, err
		}
	}

	for _, th := range cfg.threads {
		var ort *ortTimer
		if rep.ort != nil {
			if ort, err = newORTTimer(th, cfg.optLevel); err != nil {
				return nil, err
			}
		}
		first := len(rep.rows)
		var overhead []float64 // Identity medians (µs) from every round at this thread count
		for _, m := range models {
			for _, b := range cfg.batches {
				r, id, err := measureRow(ctx, cfg, m, b, th, ort)
				if err != nil {
					return nil, fmt.Errorf("%s batch %d threads %d: %w", m.name, b, th, err)
				}
				overhead = append(overhead, id...)
				if ort != nil {
					progress("perftable: %-12s b%-3d t%d  goslim %9.3f ms  ORT %9.3f ms (%s time, binding overhead included)",
						m.name, b, th, r.goMs, r.ortRaw, r.clock)
				} else {
					progress("perftable: %-12s b%-3d t%d  goslim %9.3f ms (%s time)", m.name, b, th, r.goMs, r.clock)
				}
				rep.rows = append(rep.rows, r)
			}
		}
		if ort != nil {
			us := median(overhead)
			rep.overheadUs[th] = us
			progress("perftable: threads %d: ORT binding overhead %.2f µs per call (median of %d Identity runs)", th, us, len(overhead))
			for i := first; i < len(rep.rows); i++ {
				r := &rep.rows[i]
				r.ortMs = r.ortRaw - us/1000
				if r.ortMs <= 0 {
					r.ortMs = r.ortRaw // the overhead estimate is off; keep the raw time
				}
			}
		}
	}
	if cfg.sgemm {
		progress("perftable: SGEMM 256/512/1024, one thread")
		tier := kernel.TierGeneric
		if cfg.kernels != "" {
			if tier, err = kernel.ParseTier(cfg.kernels); err != nil {
				return nil, err
			}
		} else {
			tier, _ = kernel.Resolve(kernel.TierGeneric, false)
		}
		rep.sgemmTier = tier.String()
		rep.sgemm = measureSGEMM(tier, []int{256, 512, 1024}, cfg.roundTime)
	}
	rep.elapsed = time.Since(rep.start)
	rep.loadEnd = loadAvg()
	return rep, nil
}

// computeKernels lists the kernel entries that run Conv, Gemm and MatMul
// nodes, e.g. "Conv: generic; Gemm: generic".
func computeKernels(models []*loaded, tier string) string {
	used := map[string]map[string]bool{}
	for _, m := range models {
		sess, err := infer.NewSession(m.graph, infer.Options{Threads: 1, Kernels: tier})
		if err != nil {
			continue
		}
		for _, k := range sess.Kernels() {
			if k.FusedInto >= 0 {
				continue // computed by its group's head, listed there
			}
			switch k.Op {
			case "Conv", "Gemm", "MatMul":
				if used[k.Op] == nil {
					used[k.Op] = map[string]bool{}
				}
				used[k.Op][k.Kernel] = true
			}
		}
	}
	var parts []string
	for _, op := range []string{"Conv", "Gemm", "MatMul"} {
		if len(used[op]) == 0 {
			continue
		}
		var ks []string
		for k := range used[op] {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		parts = append(parts, op+": "+strings.Join(ks, ", "))
	}
	return strings.Join(parts, "; ")
}

// checkAgreement runs every model at batch 2 in goslim and ORT (one node
// process for all) and records max|diff| / max|ORT| of the first output.
func checkAgreement(ctx context.Context, ort *ortoracle.Oracle, models []*loaded, tier string) error {
	var cases []ortoracle.Case
	var want []*tensor.Tensor
	for _, m := range models {
		sess, err := infer.NewSession(m.graph, infer.Options{Threads: 1, Kernels: tier})
		if err != nil {
			return err
		}
		inputs, err := bench.RandomInputs(m.graph, 2, nil, 7)
		if err != nil {
			return err
		}
		outs, err := sess.RunInputs(ctx, inputs)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		cases = append(cases, ortoracle.Case{Model: m.file, Feeds: feedsOf(m.graph, inputs)})
		want = append(want, outs[0])
	}
	res, err := ort.RunAll(cases)
	if err != nil {
		return err
	}
	for i, m := range models {
		if res[i].Err != nil {
			return fmt.Errorf("%s: %w", m.name, res[i].Err)
		}
		name := m.graph.Values[m.graph.Outputs[0]].Name
		got, ok := res[i].Outputs[name]
		if !ok {
			return fmt.Errorf("%s: ORT returned no output %q", m.name, name)
		}
		m.diff = relDiff(want[i], got)
	}
	return nil
}

// relDiff returns max|a-b| / max|b| over float32 tensors (Inf when the
// shapes differ).
func relDiff(a, b *tensor.Tensor) float64 {
	x, y := a.F32(), b.F32()
	if len(x) != len(y) || len(x) == 0 {
		return math.Inf(1)
	}
	var d, ref float64
	for i := range x {
		d = max(d, math.Abs(float64(x[i])-float64(y[i])))
		ref = max(ref, math.Abs(float64(y[i])))
	}
	if ref == 0 {
		return d
	}
	return d / ref
}

// identityModel is a 1-element float32 Identity model: ORT's time for it
// is the per-call cost of the Node binding (plus a trivial kernel).
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

// row is one line of the table.
type row struct {
	model   *loaded
	batch   int
	threads int
	goMs    float64 // median over rounds of goslim's per-round median
	ortRaw  float64 // ORT median before subtracting the binding overhead
	ortMs   float64 // after subtracting it; 0 when ORT was not measured
	rounds  int
	// clock is "cpu" (goslim: the calling thread's CPU time; ORT: the node
	// process's CPU time) or "wall".
	clock string
}

// cpuClock reports whether rows with this thread count are timed by CPU
// time: one thread, unless -cpu-time=false. With more threads the work
// of all threads would add up, so they are timed by wall clock.
func cpuClock(cfg config, threads int) bool { return cfg.cpuTime && threads == 1 }

// measureRow times one model, batch and thread count: rounds that
// alternate goslim and ORT (when ort is non-nil). Each ORT round also times
// the Identity model right after the model, so the binding overhead is
// sampled under the same conditions; those medians (µs) are returned for
// the caller to pool, and the row's ortMs is left for it to fill in.
func measureRow(ctx context.Context, cfg config, m *loaded, batch, threads int, ort *ortTimer) (row, []float64, error) {
	r := row{model: m, batch: batch, threads: threads, rounds: cfg.rounds, clock: "wall"}
	useCPU := cpuClock(cfg, threads)
	if useCPU {
		r.clock = "cpu"
	}
	sess, err := infer.NewSession(m.graph, infer.Options{Threads: threads, Kernels: cfg.kernels})
	if err != nil {
		return r, nil, err
	}
	inputs, err := bench.RandomInputs(m.graph, batch, nil, 1)
	if err != nil {
		return r, nil, err
	}
	feeds := feedsOf(m.graph, inputs)
	idModel, idFeeds, err := identityModel()
	if err != nil {
		return r, nil, err
	}
	pick := func(t ortTimes) []float64 {
		if useCPU {
			return t.CPU
		}
		return t.Wall
	}

	// Size ORT's rounds from a short probe, so each round times about
	// cfg.roundTime of work after a warm-up of about a quarter of that.
	ortIters, ortWarm := 0, 0
	if ort != nil {
		probe, _, err := ort.bench(m.file, feeds, idModel, idFeeds, 3, 5, 1)
		if err != nil {
			return r, nil, err
		}
		per := max(medianNs(probe.Wall)/1e6, 1e-3)
		ortIters = clampInt(int(float64(cfg.roundTime.Milliseconds())/per), 5, 20000)
		ortWarm = clampInt(ortIters/4, 3, 2000)
	}

	var goMeds, ortMeds, idMeds []float64
	goRound := func() error {
		res, err := bench.Run(ctx, sess, inputs, batch, bench.Options{Warmup: 2, MinIters: 3, MinTime: cfg.roundTime, CPUTime: useCPU})
		if err != nil {
			return err
		}
		if useCPU && res.Clock != "thread-cpu" {
			return fmt.Errorf("the thread CPU clock is unavailable here; run with -cpu-time=false")
		}
		goMeds = append(goMeds, res.MedianMs)
		return nil
	}
	ortRound := func() error {
		if ort == nil {
			return nil
		}
		mt, it, err := ort.bench(m.file, feeds, idModel, idFeeds, ortWarm, ortIters, 1000)
		if err != nil {
			return err
		}
		ortMeds = append(ortMeds, medianNs(pick(mt))/1e6)
		idMeds = append(idMeds, medianNs(pick(it))/1e3)
		return nil
	}
	for i := 0; i < cfg.rounds; i++ {
		first, second := goRound, ortRound
		if i%2 == 1 {
			first, second = ortRound, goRound
		}
		if err := first(); err != nil {
			return r, nil, err
		}
		if err := second(); err != nil {
			return r, nil, err
		}
	}
	r.goMs = median(goMeds)
	if ort != nil {
		r.ortRaw = median(ortMeds)
	}
	return r, idMeds, nil
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// medianNs is the median of per-call times in nanoseconds.
func medianNs(ns []float64) float64 { return median(ns) }

// median of xs (the mean of the two middle values for even lengths).
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
