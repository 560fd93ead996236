// Command int8prof prints where one thread's CPU time goes in ONNX models
// (typically goslim ptq's QDQ output, run with the INT8 lowering): per
// layer kind, timed per step of the same session a benchmark runs (see
// int8bench.Profile), on deterministic inputs of the given batch size.
//
//	go run ./bench/int8/cmd/int8prof -batch 32 model.int8.onnx [more.onnx ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	int8bench "github.com/goslim/goslim/bench/int8"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

func main() {
	batch := flag.Int("batch", 32, "batch size")
	dur := flag.Duration("time", 2*time.Second, "CPU time to profile each model for")
	kernels := flag.String("kernels", "", "goslim kernel tier (default: best)")
	flag.Parse()
	if flag.NArg() == 0 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "usage: int8prof [-batch N] [-time D] [-kernels TIER] MODEL.onnx...")
		os.Exit(2)
	}
	for _, f := range flag.Args() {
		if err := profile(f, *batch, *kernels, *dur); err != nil {
			fmt.Fprintf(os.Stderr, "int8prof: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
}

func profile(path string, batch int, kernels string, d time.Duration) error {
	g, err := onnx.ReadFile(path)
	if err != nil {
		return err
	}
	if len(g.Inputs) != 1 {
		return fmt.Errorf("%d graph inputs; int8prof feeds models with one", len(g.Inputs))
	}
	in := g.Values[g.Inputs[0]]
	if !in.Type.Ranked || len(in.Type.Shape) == 0 {
		return fmt.Errorf("input %q has no static shape", in.Name)
	}
	shape := tensor.Shape{batch}
	for i, dim := range in.Type.Shape[1:] {
		if !dim.Known() {
			return fmt.Errorf("input %q: dimension %d is not fixed", in.Name, i+1)
		}
		shape = append(shape, int(dim.Size))
	}
	x, err := tensor.New(tensor.Float32, shape)
	if err != nil {
		return err
	}
	for i := range x.F32() {
		x.F32()[i] = float32(i%97) / 97
	}
	prof, total, err := int8bench.Profile(context.Background(), g, []*tensor.Tensor{x}, kernels, d)
	if err != nil {
		return err
	}
	fmt.Printf("%s batch %d: %.3f ms CPU per run\n", path, batch, total)
	for _, lt := range prof {
		fmt.Printf("  %-28s x%-3d %8.3f ms %5.1f%%\n", lt.Kind, lt.Count, lt.Ms, 100*lt.Share)
	}
	return nil
}
