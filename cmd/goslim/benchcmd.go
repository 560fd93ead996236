package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/goslim/goslim/bench"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/tensor"
	"github.com/spf13/cobra"
)

func newBenchCmd(stdout io.Writer) *cobra.Command {
	var batch, threads, warmup, iters int
	var minTime time.Duration
	var asJSON bool
	var kernels string
	var shapes []string
	cmd := &cobra.Command{
		Use:   "bench MODEL",
		Short: "Time a model on random input of its shape",
		Example: `  goslim bench resnet8.onnx --batch 32 --threads 1
  goslim bench model.onnx --batch 1 --json
  goslim bench seq.onnx --shape tokens=1x128`,
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
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Model string `json:"model"`
					bench.Result
				}{args[0], r})
			}
			fmt.Fprintf(stdout, "%s: batch %d, threads %d, kernels %s, %d runs\n", args[0], r.Batch, r.Threads, r.Kernels, r.Iters)
			fmt.Fprintf(stdout, "  median %.3f ms  (p10 %.3f, p90 %.3f)  %.1f samples/s\n", r.MedianMs, r.P10Ms, r.P90Ms, r.SamplesPerS)
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
	return cmd
}
