package main

import (
	"fmt"
	"io"
	"os"

	"github.com/goslim/goslim/inspect"
	"github.com/spf13/cobra"
)

func newInspectCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Describe a model: inputs, outputs, ops, parameters, MACs, bytes",
		Example: `  goslim inspect model.onnx
  goslim inspect model.onnx --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			s, err := inspect.Summarize(g)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				out := struct {
					File      string `json:"file"`
					FileBytes int64  `json:"file_bytes"`
					*inspect.Summary
				}{File: args[0], Summary: s}
				if st, err := os.Stat(args[0]); err == nil {
					out.FileBytes = st.Size()
				}
				return writeJSON(stdout, out)
			}
			fmt.Fprintf(stdout, "model  %s (opsets %v, producer %q)\n", args[0], g.Opsets, g.ProducerName)
			fmt.Fprint(stdout, s.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (keys inputs, outputs, ops, params, macs, bytes)")
	return cmd
}
