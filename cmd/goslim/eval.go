package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/train"
	"github.com/spf13/cobra"
)

// evalResult is the JSON output of `goslim eval --json`.
type evalResult struct {
	Model string `json:"model"`
	Data  string `json:"data"`
	*train.Metrics
	Preprocess string `json:"preprocess,omitempty"`
}

func newEvalCmd(stdout, stderr io.Writer) *cobra.Command {
	var data, preprocess, kernels, progressMode string
	var batch, threads, limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval MODEL --data SPEC",
		Short: "Measure a classifier's accuracy: top-1, top-5, per class, confusion matrix",
		Long: `eval runs a classifier (logits N×C as its first output) over a labelled data set and reports
top-1 and top-5 accuracy, the mean cross-entropy, per-class accuracy and the confusion matrix
(rows: true class, columns: predicted). The input normalization comes from the model's metadata
goslim.preprocess (written by goslim train) unless --preprocess gives one. With --json, top1 and
top5 are fractions in [0, 1].`,
		Example: `  goslim eval lenet.onnx --data mnist:test
  goslim eval resnet8.onnx --data fashion-mnist:test --json
  goslim eval model.onnx --data npy:x.npy,y.npy --preprocess '{"mean":[0.5],"std":[0.5]}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				return fmt.Errorf("--data SPEC is required")
			}
			if batch < 1 {
				return fmt.Errorf("--batch must be at least 1")
			}
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			opts, err := modelDataOptions(g, batch, preprocess, limit)
			if err != nil {
				return err
			}
			ds, err := dataset.Open(data, opts)
			if err != nil {
				return err
			}
			if !ds.HasLabels() {
				return fmt.Errorf("--data %s has no labels", data)
			}
			prog, err := newPhaseBar(stderr, progressMode)
			if err != nil {
				return err
			}
			eo := train.EvalOptions{Threads: threads, Kernels: kernels,
				Progress: func(done, total int) { prog.update(done, total, "evaluating") }}
			m, err := train.Evaluate(commandContext(cmd), g, ds, eo)
			prog.close()
			if err != nil {
				return err
			}
			if asJSON {
				res := evalResult{Model: args[0], Data: data, Metrics: m}
				if pp := opts.Preprocess; !pp.IsIdentity() {
					res.Preprocess = pp.String()
				}
				return writeJSON(stdout, res)
			}
			printMetrics(stdout, m)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "labelled data spec, e.g. mnist:test, fashion-mnist:test, npy:x.npy,y.npy")
	f.IntVar(&batch, "batch", 256, "batch size")
	f.IntVar(&limit, "limit", 0, "evaluate only the first N samples (0 = all)")
	f.StringVar(&preprocess, "preprocess", "", "input normalization (default: the model's metadata): "+strings.Join(dataset.PreprocessPresets(), ", ")+" or JSON")
	addRunFlags(cmd, &threads, &kernels, &progressMode)
	f.BoolVar(&asJSON, "json", false, "print the metrics as JSON")
	return cmd
}

// printMetrics writes the metrics as text: totals, per-class accuracy and
// the confusion matrix.
func printMetrics(w io.Writer, m *train.Metrics) {
	fmt.Fprintf(w, "samples %d: top-1 %.2f%%, top-5 %.2f%%, loss %.4f (%.0f img/s)\n",
		m.Samples, 100*m.Top1, 100*m.Top5, m.Loss, m.ImagesPerSec)
	name := func(c int) string {
		if c < len(m.Classes) {
			return m.Classes[c]
		}
		return fmt.Sprint(c)
	}
	width := 5
	for c := range m.PerClass {
		width = max(width, len(name(c)))
	}
	fmt.Fprintln(w, "per class:")
	for c, a := range m.PerClass {
		n := 0
		for _, v := range m.Confusion[c] {
			n += v
		}
		if a < 0 {
			fmt.Fprintf(w, "  %-*s      -  (0 samples)\n", width, name(c))
			continue
		}
		fmt.Fprintf(w, "  %-*s %6.2f%%  (%d samples)\n", width, name(c), 100*a, n)
	}
	if len(m.Confusion) > 30 {
		fmt.Fprintf(w, "confusion matrix: %d classes, see --json\n", len(m.Confusion))
		return
	}
	cell := 4
	for _, row := range m.Confusion {
		for _, v := range row {
			cell = max(cell, len(fmt.Sprint(v))+1)
		}
	}
	fmt.Fprintln(w, "confusion matrix (rows: true, columns: predicted):")
	fmt.Fprintf(w, "  %-*s", width, "")
	for c := range m.Confusion {
		fmt.Fprintf(w, "%*d", cell, c)
	}
	fmt.Fprintln(w)
	for t, row := range m.Confusion {
		fmt.Fprintf(w, "  %-*s", width, fmt.Sprintf("%d", t))
		for _, v := range row {
			fmt.Fprintf(w, "%*d", cell, v)
		}
		fmt.Fprintln(w)
	}
}
