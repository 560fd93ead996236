package int8bench

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/ptq"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

func images(n int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(1, 1))
	d := make([]float32, n*28*28)
	for i := range d {
		d[i] = r.Float32()
	}
	return tensor.FromFloat32(tensor.Shape{n, 1, 28, 28}, d)
}

func quantizedLeNet(t *testing.T) *ir.Graph {
	t.Helper()
	g, err := zoo.Build("lenet", zoo.Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := npy.WriteFile(p, images(16)); err != nil {
		t.Fatal(err)
	}
	cal, err := dataset.Open("npy:"+p, dataset.Options{BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ptq.Run(context.Background(), g, nil, ptq.Options{Calib: cal, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out.Graph
}

func TestSamplerSummarizeProfile(t *testing.T) {
	g := quantizedLeNet(t)
	s, err := infer.NewSession(g, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	low := Summarize(s)
	// LeNet: conv1, pool1, conv2 and pool2 touch channels-last data.
	if !low.Quantized || low.Quantize != 1 || low.Dequant != 1 || low.Integer < 5 || low.ChannelsLast != 4 {
		t.Errorf("summary %+v", low)
	}
	x := []*tensor.Tensor{images(2)}
	sm := NewSampler(s, x)
	if err := Alternate(context.Background(), []*Sampler{sm}, 2, 1, 2, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	tm := sm.Timing()
	if tm.Runs < 4 || tm.WallMs <= 0 || tm.Ms() <= 0 {
		t.Errorf("timing %+v", tm)
	}
	prof, total, err := Profile(context.Background(), g, x, "", 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	share := 0.0
	for _, lt := range prof {
		kinds[lt.Kind] = lt.Count
		share += lt.Share
	}
	if kinds["Conv 5x5"] != 2 || kinds["Gemm"] != 3 || kinds["MaxPool"] != 2 || total <= 0 || share > 1.05 {
		t.Errorf("profile %+v total %g share %g", prof, total, share)
	}
}

func TestMedianMin(t *testing.T) {
	d := []time.Duration{3e6, 1e6, 2e6, 10e6}
	if MedianMs(d) != 2.5 || MinMs(d) != 1 || MedianMs(nil) != 0 || MinMs(nil) != 0 {
		t.Errorf("median %g min %g", MedianMs(d), MinMs(d))
	}
}
