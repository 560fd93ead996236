package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ptq"
	"github.com/spf13/cobra"
)

// compareResult is the JSON output of `goslim compare --json`.
type compareResult struct {
	A    string `json:"a"`
	B    string `json:"b"`
	Data string `json:"data"`
	*ptq.Comparison
}

func newCompareCmd(stdout, stderr io.Writer) *cobra.Command {
	var data, preprocess, kernels, progressMode string
	var batch, batches, threads, limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compare A.onnx B.onnx --data SPEC",
		Short: "Compare two models' outputs on data: max error, SQNR, top-1 agreement (and accuracy with labels)",
		Long: `compare runs model A (the reference, e.g. FP32) and model B (e.g. its INT8 QDQ version) on the
same data and reports, for every output of A (matched by name in B), the largest and mean
absolute difference, the signal-to-quantization-noise ratio 10*log10(sum a^2 / sum (a-b)^2) in dB
and, for outputs shaped N×C, how often both models pick the same top-1 class. With labelled data
it also reports both models' top-1 accuracy. Inputs are normalized with A's metadata
(goslim.preprocess) unless --preprocess is given.`,
		Example: `  goslim compare lenet.onnx lenet.int8.onnx --data mnist:test
  goslim compare model.onnx model.int8.onnx --data npy:x.npy --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				return fmt.Errorf("--data SPEC is required")
			}
			if batch < 1 {
				return fmt.Errorf("--batch must be at least 1")
			}
			a, err := loadModel(args[0])
			if err != nil {
				return err
			}
			b, err := loadModel(args[1])
			if err != nil {
				return err
			}
			ds, err := openModelData(a, data, batch, preprocess, limit)
			if err != nil {
				return err
			}
			prog, err := newPhaseBar(stderr, progressMode)
			if err != nil {
				return err
			}
			c, err := ptq.Compare(commandContext(cmd), a, b, ds, ptq.CompareOptions{Batches: batches, Threads: threads, Kernels: kernels, Progress: prog.update})
			prog.close()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, compareResult{A: args[0], B: args[1], Data: data, Comparison: c})
			}
			fmt.Fprintf(stdout, "%s vs %s on %s: %d samples\n", args[0], args[1], data, c.Samples)
			for _, o := range c.Outputs {
				agree := "-"
				if o.Top1Agreement >= 0 {
					agree = fmt.Sprintf("%.2f%%", 100*o.Top1Agreement)
				}
				fmt.Fprintf(stdout, "  %-20s max |a-b| %-11.4g mean %-11.4g SQNR %6.1f dB  top-1 agreement %s\n",
					o.Name, o.MaxAbsErr, o.MeanAbsErr, o.SQNR, agree)
			}
			if c.Labelled {
				fmt.Fprintf(stdout, "  top-1 accuracy: A %.2f%%, B %.2f%% (drop %.2f points)\n", 100*c.Top1A, 100*c.Top1B, 100*(c.Top1A-c.Top1B))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "data spec, e.g. mnist:test, npy:x.npy[,y.npy]")
	f.IntVar(&batch, "batch", 256, "batch size")
	f.IntVar(&batches, "batches", 0, "compare only the first N batches (0 = all)")
	f.IntVar(&limit, "limit", 0, "use only the first N samples (0 = all)")
	f.StringVar(&preprocess, "preprocess", "", "input normalization (default: A's metadata): "+strings.Join(dataset.PreprocessPresets(), ", ")+" or JSON")
	addRunFlags(cmd, &threads, &kernels, &progressMode)
	f.BoolVar(&asJSON, "json", false, "print the comparison as JSON")
	return cmd
}
