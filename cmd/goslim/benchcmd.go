package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/goslim/goslim/bench"
	int8bench "github.com/goslim/goslim/bench/int8"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
	"github.com/spf13/cobra"
)

func newBenchCmd(stdout io.Writer) *cobra.Command {
	var batch, threads, warmup, iters int
	var minTime time.Duration
	var asJSON bool
	var kernels string
	var shapes []string
	var compare string
	var rounds int
	cmd := &cobra.Command{
		Use:   "bench MODEL",
		Short: "Time a model on random input of its shape",
		Example: `  goslim bench resnet8.onnx --batch 32 --threads 1
  goslim bench model.onnx --batch 1 --json
  goslim bench seq.onnx --shape tokens=1x128
  goslim bench resnet8.onnx --compare resnet8.int8.onnx --batch 32 --threads 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 {
				return fmt.Errorf("--batch must be at least 1")
			}
			if threads < 1 {
				return fmt.Errorf("--threads must be at least 1")
			}
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			given := map[string]tensor.Shape{}
			for _, s := range shapes {
				name, dims, ok := strings.Cut(s, "=")
				if !ok {
					return fmt.Errorf("--shape %q: want NAME=DxDx...", s)
				}
				sh, err := parseShape(dims)
				if err != nil {
					return err
				}
				given[name] = sh
			}
			if compare != "" {
				return benchCompare(cmd.Context(), stdout, args[0], compare, g, given, compareOptions{
					batch: batch, threads: threads, kernels: kernels, warmup: warmup, iters: iters,
					minTime: minTime, rounds: rounds, json: asJSON})
			}
			inputs, err := bench.RandomInputs(g, batch, given, 1)
			if err != nil {
				return err
			}
			sess, err := infer.NewSession(g, infer.Options{Threads: threads, Kernels: kernels})
			if err != nil {
				return err
			}
			r, err := bench.Run(context.Background(), sess, inputs, batch,
				bench.Options{Warmup: warmup, MinIters: iters, MinTime: minTime})
			if err != nil {
				return err
			}
			low := int8bench.Summarize(sess)
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				type int8Info struct {
					Integer int                `json:"integer_nodes"`
					FP32Ops []int8bench.OpNote `json:"fp32_ops"`
				}
				var q *int8Info
				if low.Quantized {
					q = &int8Info{Integer: low.Integer, FP32Ops: append([]int8bench.OpNote{}, low.FP32...)}
				}
				return enc.Encode(struct {
					Model string `json:"model"`
					bench.Result
					INT8 *int8Info `json:"int8,omitempty"`
				}{args[0], r, q})
			}
			fmt.Fprintf(stdout, "%s: batch %d, threads %d, kernels %s, %d runs\n", args[0], r.Batch, r.Threads, r.Kernels, r.Iters)
			fmt.Fprintf(stdout, "  median %.3f ms  (p10 %.3f, p90 %.3f)  %.1f samples/s\n", r.MedianMs, r.P10Ms, r.P90Ms, r.SamplesPerS)
			printLowering(stdout, args[0], low)
			return nil
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 1, "batch size (the model's leading symbolic dim)")
	cmd.Flags().IntVar(&threads, "threads", runtime.NumCPU(), "threads")
	cmd.Flags().IntVar(&warmup, "warmup", 3, "untimed runs before timing")
	cmd.Flags().IntVar(&iters, "iters", 10, "minimum timed runs")
	cmd.Flags().DurationVar(&minTime, "min-time", time.Second, "minimum total timed duration")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (keys median_ms, p10_ms, p90_ms, samples_per_s, threads, batch)")
	cmd.Flags().StringVar(&kernels, "kernels", "", "kernel tier: generic, avx2, avx512, vnni, amx")
	cmd.Flags().StringArrayVar(&shapes, "shape", nil, "input shape as NAME=DxDx... for inputs with unknown dims")
	cmd.Flags().StringVar(&compare, "compare", "", "also time OTHER.onnx in the same run (rounds alternate) and compare, e.g. FP32 vs INT8")
	cmd.Flags().IntVar(&rounds, "rounds", 4, "with --compare: alternating measurement rounds")
	return cmd
}

type compareOptions struct {
	batch, threads, warmup, iters, rounds int
	kernels                               string
	minTime                               time.Duration
	json                                  bool
}

// compareSide is one model of a --compare run.
type compareSide struct {
	Model       string             `json:"model"`
	Precision   string             `json:"precision"`
	Timing      int8bench.Timing   `json:"timing"`
	SamplesPerS float64            `json:"samples_per_s"`
	Integer     int                `json:"integer_nodes"`
	Float       int                `json:"float_nodes"`
	FP32Ops     []int8bench.OpNote `json:"fp32_ops,omitempty"`
	low         int8bench.Lowering
}

// benchCompare times model a (already loaded as ga) and model b in
// alternating rounds on the same random inputs and reports which is
// faster and, for quantized models, which ops stayed in FP32 and why.
func benchCompare(ctx context.Context, stdout io.Writer, a, b string, ga *ir.Graph, given map[string]tensor.Shape, o compareOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	gb, err := loadModel(b)
	if err != nil {
		return err
	}
	if o.rounds < 1 {
		return fmt.Errorf("--rounds must be at least 1")
	}
	var samplers []*int8bench.Sampler
	var sides []*compareSide
	for _, m := range []struct {
		path string
		g    *ir.Graph
	}{{a, ga}, {b, gb}} {
		inputs, err := bench.RandomInputs(m.g, o.batch, given, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
		sess, err := infer.NewSession(m.g, infer.Options{Threads: o.threads, Kernels: o.kernels})
		if err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
		low := int8bench.Summarize(sess)
		prec := "FP32"
		if low.Quantized {
			prec = "QDQ in FP32"
			for op := range low.IntegerOps {
				if strings.HasPrefix(op, "Q") {
					prec = "INT8"
				}
			}
		}
		sides = append(sides, &compareSide{Model: m.path, Precision: prec, Integer: low.Integer, Float: low.Float,
			FP32Ops: low.FP32, low: low})
		samplers = append(samplers, int8bench.NewSampler(sess, inputs))
	}
	per := o.minTime / time.Duration(o.rounds)
	minRuns := max(1, o.iters/o.rounds)
	if err := int8bench.Alternate(ctx, samplers, o.rounds, o.warmup, minRuns, per); err != nil {
		return err
	}
	for i, s := range samplers {
		t := s.Timing()
		if o.threads > 1 {
			t.CPUMs = 0 // other threads' work is not in the caller's CPU time
		}
		sides[i].Timing = t
		sides[i].SamplesPerS = float64(o.batch) / (t.Ms() / 1000)
	}
	ratio := sides[0].Timing.Ms() / sides[1].Timing.Ms()
	clock := "per-run CPU time of the running thread"
	if sides[0].Timing.CPUMs == 0 {
		clock = "wall time"
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Batch   int            `json:"batch"`
			Threads int            `json:"threads"`
			Kernels string         `json:"kernels"`
			Clock   string         `json:"clock"`
			Models  []*compareSide `json:"models"`
			// Speedup is the time of the first model over the second's.
			Speedup float64 `json:"speedup"`
		}{o.batch, o.threads, samplers[0].Tier(), clock, sides, ratio})
	}
	fmt.Fprintf(stdout, "batch %d, threads %d, kernels %s; median %s over %d alternating rounds\n",
		o.batch, o.threads, samplers[0].Tier(), clock, o.rounds)
	for _, sd := range sides {
		fmt.Fprintf(stdout, "  %-11s %-40s %9.3f ms  (wall median %.3f, min %.3f; %d runs)  %.1f samples/s\n",
			sd.Precision, sd.Model, sd.Timing.Ms(), sd.Timing.WallMs, sd.Timing.WallMinMs, sd.Timing.Runs, sd.SamplesPerS)
	}
	fast, slow, r := sides[1], sides[0], ratio
	if ratio < 1 {
		fast, slow, r = sides[0], sides[1], 1/ratio
	}
	fmt.Fprintf(stdout, "%s (%s) is %.2fx faster than %s (%s) on this machine\n", fast.Precision, fast.Model, r, slow.Precision, slow.Model)
	for _, sd := range sides {
		printLowering(stdout, sd.Model, sd.low)
	}
	return nil
}

// printLowering describes how a quantized (QDQ) model runs: the nodes on
// 8-bit data and each quantized op that stayed in FP32, with the reason
// from the kernel record. It prints nothing for float models.
func printLowering(w io.Writer, model string, low int8bench.Lowering) {
	if !low.Quantized {
		return
	}
	fmt.Fprintf(w, "%s: %d nodes run on 8-bit data%s (%d with channels-last activations), %d compute nodes in float%s, %d QuantizeLinear and %d DequantizeLinear left\n",
		model, low.Integer, opCounts(low.IntegerOps), low.ChannelsLast, low.Float, opCounts(low.FloatOp), low.Quantize, low.Dequant)
	switch {
	case low.Integer == 0 && len(low.FP32) == 0:
		fmt.Fprintf(w, "  the INT8 lowering is off (%s=off): every quantized op runs DequantizeLinear -> FP32 -> QuantizeLinear\n", infer.Int8EnvVar)
	case len(low.FP32) == 0:
		fmt.Fprintf(w, "  no quantized pattern stayed in FP32\n")
	}
	for _, n := range low.FP32 {
		fmt.Fprintf(w, "  FP32: %s (%s): %s\n", n.Node, n.Op, n.Reason)
	}
}

// opCounts formats op counts as " (Conv×2 Gemm×1)", sorted by name ("" when
// empty).
func opCounts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for op, n := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", op, n))
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, " ") + ")"
}
