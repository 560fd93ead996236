package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/tensor"
	"github.com/spf13/cobra"
)

func newRunCmd(stdout io.Writer) *cobra.Command {
	var inputs []string
	var outDir, kernels string
	var threads int
	cmd := &cobra.Command{
		Use:   "run MODEL --input NAME=FILE ... --out DIR",
		Short: "Run a model on .npy or .pb inputs and write each output as DIR/<name>.npy",
		Example: `  goslim run lenet.onnx --input x.npy --out out/
  goslim run model.onnx --input images=batch.npy --input mask=mask.pb --out out/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outDir == "" {
				return fmt.Errorf("--out DIR is required")
			}
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			var free []string
			for _, id := range g.Inputs {
				if g.Values[id].Const == nil {
					free = append(free, g.Values[id].Name)
				}
			}
			feeds := map[string]*tensor.Tensor{}
			for _, spec := range inputs {
				name, file, ok := strings.Cut(spec, "=")
				if !ok {
					if len(free) != 1 {
						return fmt.Errorf("--input %q has no NAME=; the model has %d inputs (%s)", spec, len(free), strings.Join(free, ", "))
					}
					name, file = free[0], spec
				}
				if _, dup := feeds[name]; dup {
					return fmt.Errorf("input %q given twice", name)
				}
				t, err := readTensorFile(file)
				if err != nil {
					return err
				}
				feeds[name] = t
			}
			sess, err := infer.NewSession(g, infer.Options{Threads: threads, Kernels: kernels})
			if err != nil {
				return err
			}
			outs, err := sess.Run(context.Background(), feeds)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			absModel, _ := filepath.Abs(args[0])
			for _, id := range g.Outputs {
				name := g.Values[id].Name
				path := filepath.Join(outDir, safeName(name)+".npy")
				if p, _ := filepath.Abs(path); p == absModel {
					return fmt.Errorf("refusing to overwrite the input model %s", args[0])
				}
				t := outs[name]
				if err := writeAtomic(path, func(w io.Writer) error { return npy.Write(w, t) }); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: %v%v -> %s\n", name, t.DType, t.Shape, path)
			}
			fmt.Fprintf(stdout, "threads %d, kernels %s\n", sess.Threads(), sess.Tier())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "input as NAME=FILE (.npy or .pb); NAME= may be omitted for a one-input model")
	cmd.Flags().StringVar(&outDir, "out", "", "folder for the outputs (created if missing)")
	cmd.Flags().IntVar(&threads, "threads", 0, "threads (default: number of cores)")
	cmd.Flags().StringVar(&kernels, "kernels", "", "kernel tier: generic, avx2, avx512, vnni, amx (default: best for this CPU, or $GOSLIM_KERNELS)")
	return cmd
}
