package train

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// tinyData returns n synthetic c×h×w images (h, w >= 12) in [0, 1] of
// `classes` (at most 3) classes, written as npy files: noise plus a bright
// 4×4 patch whose column band (left, middle, right) is the class and
// whose row is random.
func tinyData(t *testing.T, n, c, h, w, classes int, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	d := c * h * w
	x := make([]float32, n*d)
	y := make([]int64, n)
	for i := range n {
		for j := range d {
			x[i*d+j] = float32(0.5 * rng.Float64())
		}
		k := rng.IntN(classes)
		y[i] = int64(k)
		r0, c0 := rng.IntN(h-3), k*(w/3)+rng.IntN(w/3-3)
		for ch := range c {
			for r := r0; r < r0+4; r++ {
				for col := c0; col < c0+4; col++ {
					x[i*d+ch*h*w+r*w+col] += 0.5
				}
			}
		}
	}
	return writeNPY(t, tensor.FromFloat32(tensor.Shape{n, c, h, w}, x), tensor.FromInt64(tensor.Shape{n}, y))
}

func openTiny(t *testing.T, spec string, shuffle bool, seed uint64) *dataset.Dataset {
	t.Helper()
	ds, err := dataset.Open(spec, dataset.Options{BatchSize: 16, DropLast: shuffle, Shuffle: shuffle, Seed: seed,
		Preprocess: dataset.Preprocess{Mean: []float32{0.5}, Std: []float32{0.29}}})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func tinyModel(t *testing.T, arch string) *ir.Graph {
	t.Helper()
	g, err := zoo.Build(arch, zoo.Options{InC: 1, InH: 12, InW: 12, Classes: 3, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFitLearns(t *testing.T) {
	spec := tinyData(t, 200, 1, 12, 12, 3, 1)
	for _, arch := range []string{"mlp:0.1", "lenet:0.5", "resnet8:0.25"} {
		tr, err := New(tinyModel(t, arch), Config{Epochs: 6, Threads: 1, Seed: 1,
			Optimizer: OptimConfig{Name: "adam"}, Schedule: ScheduleConfig{LR: 3e-3}})
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		res, err := tr.Fit(context.Background(), openTiny(t, spec, true, 1), openTiny(t, spec, false, 0))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		first, last := res.History[0], res.History[len(res.History)-1]
		t.Logf("%s: loss %.3f -> %.3f, acc %.2f -> %.2f, val top1 %.2f", arch, first.Loss, last.Loss, first.Acc, last.Acc, last.ValTop1)
		if !(last.Loss < first.Loss) || last.ValTop1 < 0.6 {
			t.Errorf("%s did not learn: loss %.3f -> %.3f, val top1 %.2f", arch, first.Loss, last.Loss, last.ValTop1)
		}
		if res.Steps != 6*(200/16) || len(res.History) != 6 {
			t.Errorf("%s: %d steps, %d epochs", arch, res.Steps, len(res.History))
		}
	}
}

// snapshot copies every store tensor.
func snapshot(s *Store) map[ir.ValueID][]float32 {
	m := map[ir.ValueID][]float32{}
	for _, ids := range [][]ir.ValueID{s.params, s.states} {
		for _, id := range ids {
			m[id] = slices.Clone(s.Value(id).F32())
		}
	}
	return m
}

func sameHistory(a, b []EpochStats) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Seconds, y.Seconds, x.ImagesPerSec, y.ImagesPerSec = 0, 0, 0, 0
		if x != y {
			return false
		}
	}
	return true
}

// TestResumeBitIdentical trains 2 epochs straight and compares with runs
// stopped (after epoch 1, and in the middle of epoch 2) and resumed from
// their checkpoints: parameters, BatchNorm statistics and history must be
// bit-identical.
func TestResumeBitIdentical(t *testing.T) {
	spec := tinyData(t, 96, 1, 12, 12, 3, 2)
	conf := func(dir string) Config {
		return Config{Epochs: 2, Threads: 1, Seed: 7, CheckpointDir: dir,
			Optimizer: OptimConfig{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3},
			Schedule:  ScheduleConfig{LR: 0.05, WarmupEpochs: 0.5}, ClipNorm: 5}
	}
	for _, arch := range []string{"resnet8:0.25", "lenet:0.5"} {
		model := tinyModel(t, arch)
		straight, err := New(model, conf(""))
		if err != nil {
			t.Fatal(err)
		}
		want, err := straight.Fit(context.Background(), openTiny(t, spec, true, 3), openTiny(t, spec, false, 0))
		if err != nil {
			t.Fatal(err)
		}
		wantVals := snapshot(straight.Store())

		for _, stopAt := range []string{"epoch", "step"} {
			dir := t.TempDir()
			c := conf(dir)
			switch stopAt {
			case "epoch":
				c.OnEpoch = func(es *EpochStats) error {
					if es.Epoch == 1 {
						return ErrStop
					}
					return nil
				}
			case "step":
				c.OnStep = func(s *StepInfo) error {
					if s.Step == 9 { // 6 steps per epoch: mid epoch 2
						return ErrStop
					}
					return nil
				}
			}
			first, err := New(model, c)
			if err != nil {
				t.Fatal(err)
			}
			r1, err := first.Fit(context.Background(), openTiny(t, spec, true, 3), openTiny(t, spec, false, 0))
			if err != nil || !r1.Stopped {
				t.Fatalf("%s/%s: first part: %v, stopped %v", arch, stopAt, err, r1 != nil && r1.Stopped)
			}
			c = conf(dir)
			c.Resume = true
			second, err := New(model, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := second.Fit(context.Background(), openTiny(t, spec, true, 3), openTiny(t, spec, false, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Resumed || got.Steps != want.Steps {
				t.Errorf("%s/%s: resumed %v, steps %d want %d", arch, stopAt, got.Resumed, got.Steps, want.Steps)
			}
			gotVals := snapshot(second.Store())
			for id, w := range wantVals {
				if !slices.Equal(w, gotVals[id]) {
					t.Errorf("%s/%s: %s differs after resume", arch, stopAt, model.Values[id].Name)
					break
				}
			}
			if !sameHistory(want.History, got.History) {
				t.Errorf("%s/%s: history differs:\n%+v\n%+v", arch, stopAt, want.History, got.History)
			}
		}
	}
}

// TestCancelResume cancels the context mid-run and resumes.
func TestCancelResume(t *testing.T) {
	spec := tinyData(t, 64, 1, 12, 12, 3, 5)
	model := tinyModel(t, "lenet:0.5")
	conf := Config{Epochs: 2, Threads: 1, Seed: 2, Schedule: ScheduleConfig{LR: 0.02}}
	straight, _ := New(model, conf)
	if _, err := straight.Fit(context.Background(), openTiny(t, spec, true, 1), nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	c := conf
	c.CheckpointDir = dir
	c.OnStep = func(s *StepInfo) error {
		if s.Step == 3 {
			cancel()
		}
		return nil
	}
	tr, _ := New(model, c)
	r, err := tr.Fit(ctx, openTiny(t, spec, true, 1), nil)
	if !errors.Is(err, context.Canceled) || r == nil || r.Steps != 3 {
		t.Fatalf("cancelled run: %v, %+v", err, r)
	}
	c.OnStep, c.Resume = nil, true
	tr, _ = New(model, c)
	if _, err := tr.Fit(context.Background(), openTiny(t, spec, true, 1), nil); err != nil {
		t.Fatal(err)
	}
	a, b := snapshot(straight.Store()), snapshot(tr.Store())
	for id := range a {
		if !slices.Equal(a[id], b[id]) {
			t.Fatalf("%s differs after cancel and resume", model.Values[id].Name)
		}
	}
}
