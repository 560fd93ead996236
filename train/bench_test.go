package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// BenchmarkTrainStep times one SGD training step (forward, backward,
// optimizer) of zoo models on random 1x28x28 images at batch 64 and 128,
// one thread, and reports images per second by wall clock (img/s) and by
// the process's CPU time (cpu-img/s, steadier on a shared machine).
//
//	go test ./train -run '^$' -bench TrainStep -cpu 1 -count 3
func BenchmarkTrainStep(b *testing.B) {
	for _, bc := range []struct {
		arch  string
		batch int
	}{{"lenet", 64}, {"resnet8", 64}, {"resnet8", 128}} {
		b.Run(fmt.Sprintf("%s/b%d", bc.arch, bc.batch), func(b *testing.B) {
			g, err := zoo.Build(bc.arch, zoo.Options{InC: 1, InH: 28, InW: 28, Classes: 10, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			tr, err := New(g, Config{Epochs: 1, Threads: 1,
				Optimizer: OptimConfig{Name: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4}})
			if err != nil {
				b.Fatal(err)
			}
			bt := benchBatch(bc.batch, 1, 28, 28, 10)
			params := tr.store.tensors(tr.store.params)
			ctx := context.Background()
			for range 2 { // warm the arena
				if _, err := tr.step(ctx, bt, params, 0.01); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			for b.Loop() {
				if _, err := tr.step(ctx, bt, params, 0.01); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.batch)/time.Since(start).Seconds(), "img/s")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N*bc.batch)/cpu.Seconds(), "cpu-img/s")
			}
		})
	}
}

// benchBatch returns a batch of n random images with random labels.
func benchBatch(n, c, h, w, classes int) *dataset.Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int64, n)
	idx := make([]int, n)
	for i := range y {
		y[i] = int64(rng.IntN(classes))
		idx[i] = i
	}
	return &dataset.Batch{Inputs: []dataset.Input{{Name: "input", Tensor: tensor.FromFloat32(tensor.Shape{n, c, h, w}, x)}},
		Labels: tensor.FromInt64(tensor.Shape{n}, y), Index: idx}
}
