package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/ptq"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// quantizeResult is the JSON output of `goslim quantize --json`.
type quantizeResult struct {
	Model string `json:"model"`
	Out   string `json:"out"`
	*ptq.Report
	GateFailed bool `json:"gate_failed,omitempty"`
}

func newQuantizeCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		configFile, preprocess, kernels, progressMode, perLayer string
		calibSpec, evalSpec, out, method, acts                  string
		batches, batchSize, threads, evalLimit                  int
		percentile, ocs, maxDrop                                float64
		perChannel, perTensor, symmetric, reduceRange           bool
		biasCorr, cle, analyze, asJSON, printConfig, floatOut   bool
		exclude                                                 []string
	)
	cmd := &cobra.Command{
		Use:   "quantize MODEL --calib SPEC --out OUT.onnx",
		Short: "Post-training INT8 quantization to a QDQ ONNX model (runs in goslim and ONNX Runtime)",
		Long: `quantize folds BatchNorm, observes activation ranges on calibration data (no labels needed),
marks the tensors each op needs quantized and writes a QDQ model: int8 symmetric per-channel
weights, int32 biases (scale = s_in*s_w) and uint8 asymmetric per-tensor activations by default.

Calibration methods: minmax, avg (moving average of batch min/max), percentile (--percentile P),
kl (entropy, TensorRT's search) and mse. --cle equalizes consecutive layers' weight ranges,
--ocs R splits outlier channels (R = fraction of channels that may be added), --bias-correction
removes the mean error each layer's quantization causes.

With --eval the report compares FP32 and INT8 top-1 (labels) or agreement (no labels).
--analyze ranks layers by the error quantizing each alone causes; --max-drop X leaves the worst
layers in FP32 until the top-1 drop is at most X points, and exits with code 1 if it cannot
(the best model found is saved anyway).

--config FILE reads a versioned JSON or YAML file with the same fields (see --print-config) plus
per-layer overrides under "layers"; flags given on the command line win. YAML is a strict subset
(block mappings and sequences, one-line [..] and {..}, scalars, comments; no anchors, tags or
multi-line strings): anything else is an error naming the line.`,
		Example: `  goslim quantize lenet.onnx --calib mnist:train --batches 10 --out lenet.int8.onnx
  goslim quantize resnet8.onnx --calib npy:calib.npy --out r8.int8.onnx --method percentile --percentile 99.99
  goslim quantize m.onnx --calib mnist:train --eval mnist:test --analyze --max-drop 0.3 --out m.int8.onnx
  goslim quantize m.onnx --config ptq.yaml --out m.int8.onnx --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			cfg := ptq.DefaultConfig()
			if configFile != "" {
				c, err := ptq.ReadConfig(configFile)
				if err != nil {
					return err
				}
				cfg = c
			}
			if f.Changed("per-channel") && f.Changed("per-tensor") && perChannel == perTensor {
				return fmt.Errorf("--per-channel and --per-tensor contradict each other")
			}
			set := map[string]func(){
				"calib": func() { cfg.Calib = calibSpec }, "eval": func() { cfg.Eval = evalSpec },
				"out": func() { cfg.Out = out }, "batches": func() { cfg.Batches = batches },
				"batch-size": func() { cfg.BatchSize = batchSize }, "method": func() { cfg.Method = method },
				"percentile":  func() { cfg.Percentile = percentile },
				"per-channel": func() { cfg.PerChannel = perChannel },
				"per-tensor":  func() { cfg.PerChannel = !perTensor },
				"activations": func() { cfg.Activations = acts }, "symmetric": func() { cfg.Symmetric = symmetric },
				"reduce-range": func() { cfg.ReduceRange = reduceRange }, "exclude": func() { cfg.Exclude = exclude },
				"ocs": func() { cfg.OCS = ocs }, "bias-correction": func() { cfg.BiasCorrection = biasCorr },
				"cle": func() { cfg.CLE = cle }, "analyze": func() { cfg.Analyze = analyze },
				"max-drop":      func() { v := maxDrop; cfg.MaxDrop = &v },
				"float-outputs": func() { cfg.FloatOutputs = floatOut },
			}
			for name, apply := range set {
				if f.Changed(name) {
					apply()
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if printConfig {
				_, err := stdout.Write(append(cfg.JSON(), '\n'))
				return err
			}
			if cfg.Calib == "" {
				return fmt.Errorf("--calib SPEC is required (e.g. mnist:train, npy:x.npy)")
			}
			if cfg.Out == "" {
				return fmt.Errorf("--out OUT.onnx is required")
			}
			if a, _ := filepath.Abs(cfg.Out); a == mustAbs(args[0]) {
				return fmt.Errorf("refusing to overwrite the input model %s", args[0])
			}
			if perLayer != "" && perLayer != "text" && perLayer != "none" {
				return fmt.Errorf("--layers %q: want text or none", perLayer)
			}
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			calibData, err := openModelData(g, cfg.Calib, cfg.BatchSize, preprocess, 0)
			if err != nil {
				return fmt.Errorf("--calib: %w", err)
			}
			opts := ptq.Options{Calib: calibData, Threads: threads, Kernels: kernels}
			if cfg.Eval != "" {
				if opts.Eval, err = openModelData(g, cfg.Eval, max(cfg.BatchSize, 256), preprocess, evalLimit); err != nil {
					return fmt.Errorf("--eval: %w", err)
				}
			}
			prog, err := newPhaseBar(stderr, progressMode)
			if err != nil {
				return err
			}
			opts.Progress = prog.update
			res, err := ptq.Run(commandContext(cmd), g, cfg, opts)
			prog.close()
			if err != nil {
				return err
			}
			if err := onnx.WriteFile(cfg.Out, res.Graph); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(stdout, quantizeResult{Model: args[0], Out: cfg.Out, Report: res.Report, GateFailed: res.GateFailed}); err != nil {
					return err
				}
			} else {
				printQuantizeReport(stdout, args[0], cfg, res, perLayer != "none")
			}
			if res.GateFailed {
				return &gateError{msg: res.Report.Search.Message}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "versioned JSON or YAML config with the same fields as the flags, plus per-layer overrides (flags win)")
	f.BoolVar(&printConfig, "print-config", false, "print the effective config as JSON and exit")
	f.StringVar(&calibSpec, "calib", "", "calibration data spec (labels not needed), e.g. mnist:train, npy:x.npy")
	f.StringVar(&out, "out", "", "output QDQ model path")
	f.IntVar(&batches, "batches", 0, "calibration batches (0 = one epoch of --calib)")
	f.IntVar(&batchSize, "batch-size", 0, "calibration batch size (default 32)")
	f.StringVar(&method, "method", ptq.MethodMinMax, "range method: "+strings.Join(ptq.Methods(), ", "))
	f.Float64Var(&percentile, "percentile", 99.99, "percentile kept by --method percentile")
	f.BoolVar(&perChannel, "per-channel", true, "quantize weights per output channel (default)")
	f.BoolVar(&perTensor, "per-tensor", false, "quantize weights per tensor")
	f.StringVar(&acts, "activations", "uint8", "activation type: uint8 (asymmetric) or int8")
	f.BoolVar(&symmetric, "symmetric", false, "symmetric activations")
	f.BoolVar(&reduceRange, "reduce-range", false, "7-bit weights (for CPUs without VNNI)")
	f.BoolVar(&floatOut, "float-outputs", false, "leave the model's outputs (logits) in float")
	f.StringArrayVar(&exclude, "exclude", nil, "node name or op type to keep in FP32 (repeatable)")
	f.Float64Var(&ocs, "ocs", 0, "outlier channel splitting: fraction of channels that may be added (e.g. 0.05)")
	f.BoolVar(&biasCorr, "bias-correction", false, "empirical bias correction on the calibration data")
	f.BoolVar(&cle, "cle", false, "cross-layer equalization before calibration")
	f.StringVar(&evalSpec, "eval", "", "evaluation data spec (labels give accuracy)")
	f.IntVar(&evalLimit, "eval-limit", 0, "evaluate only the first N samples (0 = all)")
	f.BoolVar(&analyze, "analyze", false, "rank layers by the error quantizing each alone causes")
	f.Float64Var(&maxDrop, "max-drop", 0, "largest top-1 drop in percentage points; leaves the worst layers in FP32 until met")
	f.StringVar(&preprocess, "preprocess", "", "input normalization (default: the model's metadata): "+strings.Join(dataset.PreprocessPresets(), ", ")+" or JSON")
	addRunFlags(cmd, &threads, &kernels, &progressMode)
	f.StringVar(&perLayer, "layers", "text", "per-layer lists in the text report: text or none")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func mustAbs(p string) string {
	a, _ := filepath.Abs(p)
	return a
}

// openModelData opens a data spec for a model: the model's input name,
// image size and normalization (its metadata unless preprocess is given).
func openModelData(g *ir.Graph, spec string, batch int, preprocess string, limit int) (*dataset.Dataset, error) {
	opts, err := modelDataOptions(g, batch, preprocess, limit)
	if err != nil {
		return nil, err
	}
	return dataset.Open(spec, opts)
}

// modelDataOptions returns the data set options that fit model g: the
// normalization from preprocess (or g's goslim.preprocess metadata), the
// name of g's first non-constant input and, for an image input, its
// channels, height and width.
func modelDataOptions(g *ir.Graph, batch int, preprocess string, limit int) (dataset.Options, error) {
	pp, err := dataset.ResolvePreprocess(preprocess, g.Meta)
	if err != nil {
		return dataset.Options{}, err
	}
	opts := dataset.Options{BatchSize: batch, Preprocess: pp, Limit: limit}
	for _, id := range g.Inputs {
		if g.Values[id].Const == nil {
			opts.InputName = g.Values[id].Name
			break
		}
	}
	if c, h, w, ok := imageInput(g); ok {
		opts.Channels, opts.Height, opts.Width = c, h, w
	}
	return opts, nil
}

// commandContext returns cmd's context, or the background context when
// cmd runs without one (as in tests calling Execute).
func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// addRunFlags defines the --threads, --kernels and --progress flags shared
// by the commands that run a model over a data set.
func addRunFlags(cmd *cobra.Command, threads *int, kernels, progressMode *string) {
	f := cmd.Flags()
	f.IntVar(threads, "threads", 0, "threads (default: number of cores)")
	f.StringVar(kernels, "kernels", "", "kernel tier: generic, avx2, avx512, vnni, amx (default: best for this CPU)")
	f.StringVar(progressMode, "progress", "auto", "progress bar: auto (on a terminal), bar, none")
}

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// phaseBar draws one progress bar per phase on a terminal.
type phaseBar struct {
	w     io.Writer
	on    bool
	bar   *progressbar.ProgressBar
	phase string
}

func newPhaseBar(w io.Writer, mode string) (*phaseBar, error) {
	switch mode {
	case "auto":
		return &phaseBar{w: w, on: isTerminal(w)}, nil
	case "bar":
		return &phaseBar{w: w, on: true}, nil
	case "none":
		return &phaseBar{w: w}, nil
	}
	return nil, fmt.Errorf("--progress %q: want auto, bar or none", mode)
}

func (p *phaseBar) update(done, total int, note string) {
	if !p.on || total <= 0 {
		return
	}
	if p.bar == nil || note != p.phase {
		p.close()
		p.phase = note
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(note), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	p.bar.Set(done)
}

func (p *phaseBar) close() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

// printQuantizeReport writes the report as text.
func printQuantizeReport(w io.Writer, model string, cfg *ptq.Config, res *ptq.Outcome, layers bool) {
	r := res.Report
	fmt.Fprintf(w, "quantized %s -> %s in %.1f s\n", model, cfg.Out, r.Seconds)
	ws := cfg.WeightScheme(&ir.Node{}, 0)
	fmt.Fprintf(w, "  weights %s, activations %s, bias int32\n", ws, cfg.ActivationScheme())
	fmt.Fprintf(w, "  %d of %d nodes quantized (%d layers)\n", r.Quantized, r.Nodes, r.Layers)
	c := r.Calibration
	fmt.Fprintf(w, "  calibration: %s, %d batches (%d samples), %d values, %.2f s\n", c.Method, c.Batches, c.Samples, c.Values, c.Seconds)
	if r.CLE != nil {
		fmt.Fprintf(w, "  CLE: %d layer pairs, %d passes, weight range spread %.2f -> %.2f\n", len(r.CLE.Pairs), r.CLE.Iterations, r.CLE.SpreadBefore, r.CLE.SpreadAfter)
	}
	if r.OCS != nil {
		fmt.Fprintf(w, "  OCS (ratio %g): %d channels split on %d of %d layer pairs, +%d parameters (+%.2f%%)\n",
			r.OCS.Ratio, r.OCS.ChannelsAdded, len(r.OCS.Split), r.OCS.Edges, r.OCS.ParamsAdded, 100*r.OCS.SizeCost)
		if layers {
			for _, l := range r.OCS.Split {
				fmt.Fprintf(w, "    %s -> %s: %d weight + %d activation splits of %d channels\n", l.Producer, l.Consumer, l.WeightSplits, l.ActivationSplits, l.Channels)
			}
		}
	}
	if b := r.BiasCorr; b != nil {
		fmt.Fprintf(w, "  bias correction: %d layers in %d levels, mean |E[fp32]-E[int8]| %.4g -> %.4g\n", b.Layers, b.Levels, b.MeanAbsError[0], b.MeanAbsError[1])
	}
	fmt.Fprintf(w, "  size: %s -> %s (%.1f%%)\n", byteSize(r.Size.FP32Bytes), byteSize(r.Size.QDQBytes), 100*r.Size.Ratio)
	if layers && len(r.FP32) > 0 {
		fmt.Fprintln(w, "  kept in FP32:")
		for _, n := range r.FP32 {
			fmt.Fprintf(w, "    %-24s %-18s %s\n", n.Node, n.Op, n.Reason)
		}
	}
	if len(r.FloatBiases) > 0 {
		fmt.Fprintf(w, "  biases kept float32 (would overflow int32): %s\n", strings.Join(r.FloatBiases, ", "))
	}
	if r.QuantMetrics != nil {
		data := cfg.Eval
		if r.EvalData != "" {
			data = r.EvalData
		}
		q, f := r.QuantMetrics, r.FP32Metrics
		if q.Top1 >= 0 {
			fmt.Fprintf(w, "  eval %s (%d samples): top-1 FP32 %.2f%%, INT8 %.2f%% (drop %.2f points), agreement %.2f%%, SQNR %.1f dB\n",
				data, q.Samples, 100*f.Top1, 100*q.Top1, *r.Drop, 100*q.Agreement, q.SQNR)
		} else {
			fmt.Fprintf(w, "  eval %s (%d samples, no labels): top-1 agreement with FP32 %.2f%%, SQNR %.1f dB\n",
				data, q.Samples, 100*q.Agreement, q.SQNR)
		}
	}
	if len(r.Sensitivity) > 0 && layers {
		fmt.Fprintln(w, "  sensitivity (each layer quantized alone, worst first):")
		for _, l := range r.Sensitivity {
			fmt.Fprintf(w, "    %-24s %-18s SQNR %6.1f dB  drop %5.2f points\n", l.Node, l.Op, l.SQNR, l.Drop)
		}
	}
	if s := r.Search; s != nil {
		fmt.Fprintf(w, "  max-drop %.2f: %s\n", s.MaxDrop, s.Message)
		if len(s.FP32Layers) > 0 {
			names := append([]string(nil), s.FP32Layers...)
			sort.Strings(names)
			fmt.Fprintf(w, "    FP32 layers: %s\n", strings.Join(names, ", "))
		}
	}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
