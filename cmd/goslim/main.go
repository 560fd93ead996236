// Command goslim compresses and runs ONNX models: inspect, run and bench
// today; distillation, quantization and the compression pipeline build on
// the same engine.
//
// Exit codes: 0 ok, 1 an accuracy gate failed (the best model is still
// saved), 2 bad usage or bad input.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// gateError marks a failed accuracy gate (exit code 1).
type gateError struct{ msg string }

func (e *gateError) Error() string { return e.msg }

// run executes the CLI with the given arguments and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "goslim: %v\n", err)
	var ge *gateError
	if errors.As(err, &ge) {
		return 1
	}
	return 2
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "goslim",
		Short: "Make neural networks small and fast: ONNX engine, distillation and INT8 quantization in pure Go",
		Long: `goslim takes a trained ONNX model, makes it small and fast, proves that accuracy held,
and runs the result with its own engine, as one static binary.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newInspectCmd(stdout), newRunCmd(stdout), newBenchCmd(stdout), newDemoCmd(stdout), newTrainCmd(stdout, stderr), newEvalCmd(stdout, stderr))
	root.AddCommand(newQuantizeCmd(stdout, stderr), newCompareCmd(stdout, stderr))
	root.AddCommand(newHWCmd(stdout))
	return root
}
