package bench_test

import (
	"context"
	"math"
	"testing"

	"github.com/goslim/goslim/bench"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/inspect"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
)

// refModel is one of the four reference models with its expected cost.
type refModel struct {
	name  string
	build func() (*ir.Graph, error)
	mmac  float64 // MMAC per image, as in the project's reference table
}

func refModelList() []refModel {
	return []refModel{
		{"LeNet", refLeNet5, 0.28},
		{"MLP", refMLP, 0.54},
		{"ResNet8", refResNet8, 12.5},
		{"MobileNetV2", refMobileNetV2, 17.6},
	}
}

// prepare builds a reference model and simplifies it as goslim's tools do.
func prepare(tb testing.TB, build func() (*ir.Graph, error)) (*ir.Graph, int64) {
	tb.Helper()
	g, err := build()
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := inspect.Summarize(g)
	if err != nil {
		tb.Fatal(err)
	}
	if len(sum.Unknown) > 0 {
		tb.Fatalf("MACs unknown for %v", sum.Unknown)
	}
	sg, err := rewrite.Simplify(g, infer.NodeEvaluator(nil))
	if err != nil {
		tb.Fatal(err)
	}
	return sg, sum.MACs
}

// TestReferenceModels checks that the Go builders have the reference cost
// and run at batch 2 to finite [2, 10] logits.
func TestReferenceModels(t *testing.T) {
	for _, m := range refModelList() {
		t.Run(m.name, func(t *testing.T) {
			g, macs := prepare(t, m.build)
			if got := float64(macs) / 1e6; math.Abs(got-m.mmac) > 0.01*m.mmac+0.005 {
				t.Errorf("%.3f MMAC per image, want about %.2f", got, m.mmac)
			}
			sess, err := infer.NewSession(g, infer.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			in, err := bench.RandomInputs(g, 2, nil, 1)
			if err != nil {
				t.Fatal(err)
			}
			out, err := sess.RunInputs(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || len(out[0].Shape) != 2 || out[0].Shape[0] != 2 || out[0].Shape[1] != 10 {
				t.Fatalf("output %v, want one [2 10] tensor", out[0].Shape)
			}
			for _, v := range out[0].F32() {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("non-finite output %v", out[0].F32())
				}
			}
		})
	}
}

// benchModel times one model at the given batch on one thread and reports
// images per second and GFLOP/s (a multiply-accumulate counts 2).
func benchModel(b *testing.B, build func() (*ir.Graph, error), batch int) {
	g, macs := prepare(b, build)
	sess, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	in, err := bench.RandomInputs(g, batch, nil, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // warm the arena and caches
		if _, err := sess.RunInputs(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := sess.RunInputs(ctx, in); err != nil {
			b.Fatal(err)
		}
		n++
	}
	sec := b.Elapsed().Seconds() / float64(n)
	b.ReportMetric(float64(batch)/sec, "img/s")
	b.ReportMetric(2*float64(macs)*float64(batch)/sec/1e9, "GFLOP/s")
}

func benchBatches(b *testing.B, build func() (*ir.Graph, error)) {
	b.Run("batch=1", func(b *testing.B) { benchModel(b, build, 1) })
	b.Run("batch=32", func(b *testing.B) { benchModel(b, build, 32) })
}

// BenchmarkLeNet times LeNet-5 (1x28x28, 0.28 MMAC) on one thread.
func BenchmarkLeNet(b *testing.B) { benchBatches(b, refLeNet5) }

// BenchmarkMLP times the 784-512-256-10 MLP (0.54 MMAC) on one thread.
func BenchmarkMLP(b *testing.B) { benchBatches(b, refMLP) }

// BenchmarkResNet8 times ResNet-8 (3x32x32, 12.5 MMAC) on one thread.
func BenchmarkResNet8(b *testing.B) { benchBatches(b, refResNet8) }

// BenchmarkMobileNetV2 times MobileNetV2 width 0.5 (3x96x96, 17.6 MMAC) on
// one thread.
func BenchmarkMobileNetV2(b *testing.B) { benchBatches(b, refMobileNetV2) }
