package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/goslim/goslim/bench"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/inspect"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
	"github.com/spf13/cobra"
)

func newDemoCmd(stdout io.Writer) *cobra.Command {
	var outDir string
	var threads int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the engine end to end on a built-in LeNet-5 and say what it did",
		Long: `demo builds LeNet-5 in memory (seeded weights, nothing downloaded), writes it as ONNX and
reads it back, infers shapes, simplifies the graph, runs it on a batch, checks that batch 1 and
batch 8 agree, and times batch 1 and batch 32.`,
		Example: `  goslim demo
  goslim demo --out demo/   # also keep lenet.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(stdout, outDir, threads)
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "", "folder to save the demo model in (optional)")
	cmd.Flags().IntVar(&threads, "threads", 1, "threads for the timing runs")
	return cmd
}

func runDemo(w io.Writer, outDir string, threads int) error {
	ctx := context.Background()
	step := func(format string, args ...any) { fmt.Fprintf(w, "• "+format+"\n", args...) }

	g, err := zoo.LeNet(zoo.Options{Seed: 1})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, g); err != nil {
		return err
	}
	size := buf.Len()
	g, err = onnx.Decode(&buf)
	if err != nil {
		return err
	}
	step("built LeNet-5 (seed 1), encoded it as ONNX (%s) and decoded it back", inspect.HumanBytes(int64(size)))
	if outDir != "" {
		path := filepath.Join(outDir, "lenet.onnx")
		if err := onnx.WriteFile(path, g); err != nil {
			return err
		}
		step("saved %s", path)
	}
	s, err := inspect.Summarize(g)
	if err != nil {
		return err
	}
	step("inspected it:")
	fmt.Fprint(w, indent(s.String()))

	simple, err := rewrite.Simplify(g, infer.NodeEvaluator(nil))
	if err != nil {
		return err
	}
	step("simplified the graph (constant folding, BatchNorm folding, dead code): %d -> %d nodes", len(g.Nodes), len(simple.Nodes))

	sess, err := infer.NewSession(simple, infer.Options{Threads: threads})
	if err != nil {
		return err
	}
	x8, err := bench.RandomInputs(simple, 8, nil, 42)
	if err != nil {
		return err
	}
	out8, err := sess.RunInputs(ctx, x8)
	if err != nil {
		return err
	}
	preds := argmaxRows(out8[0])
	step("ran a batch of 8 random images: predicted classes %v", preds)

	// batch 1 must give the same answer as row 0 of batch 8
	img := x8[0]
	per := img.Len() / img.Shape[0]
	one := tensor.FromFloat32(append(tensor.Shape{1}, img.Shape[1:]...), img.F32()[:per])
	out1, err := sess.RunInputs(ctx, []*tensor.Tensor{one})
	if err != nil {
		return err
	}
	maxDiff := 0.0
	for i, v := range out1[0].F32() {
		d := float64(v - out8[0].F32()[i])
		if d < 0 {
			d = -d
		}
		maxDiff = max(maxDiff, d)
	}
	step("batch 1 vs row 0 of batch 8: max |diff| = %.2g", maxDiff)

	counts := map[string]int{}
	for _, k := range sess.Kernels() {
		counts[k.Op+"/"+k.Kernel]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	step("kernels (tier %s):", sess.Tier())
	for _, k := range keys {
		fmt.Fprintf(w, "    %-28s ×%d\n", k, counts[k])
	}
	for _, batch := range []int{1, 32} {
		in, err := bench.RandomInputs(simple, batch, nil, 7)
		if err != nil {
			return err
		}
		r, err := bench.Run(ctx, sess, in, batch, bench.Options{MinTime: 300 * time.Millisecond})
		if err != nil {
			return err
		}
		step("batch %2d, %d thread(s): median %.3f ms, %.0f images/s (%d runs)", batch, r.Threads, r.MedianMs, r.SamplesPerS, r.Iters)
	}
	fmt.Fprintln(w, "Next: goslim inspect|run|bench MODEL.onnx on your own models (goslim --help).")
	return nil
}

func argmaxRows(t *tensor.Tensor) []int {
	rows, cols := t.Shape[0], t.Shape[1]
	out := make([]int, rows)
	d := t.F32()
	for r := 0; r < rows; r++ {
		best := 0
		for c := 1; c < cols; c++ {
			if d[r*cols+c] > d[r*cols+best] {
				best = c
			}
		}
		out[r] = best
	}
	return out
}

func indent(s string) string {
	var b bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n")) {
		b.WriteString("    ")
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}
