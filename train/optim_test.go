package train

import (
	"math"
	"testing"

	"github.com/goslim/goslim/tensor"
)

func vec(v ...float32) *tensor.Tensor { return tensor.FromFloat32(tensor.Shape{len(v)}, v) }

// TestOptimizers runs two steps of each optimizer on one scalar parameter
// (starting at 1) and compares with values computed by hand from the
// update formulas (lr 0.1; gradients 0.5 then 0.25).
func TestOptimizers(t *testing.T) {
	tests := []struct {
		name  string
		c     OptimConfig
		decay bool
		want  [2]float64
	}{
		// p = 1 - 0.1*0.5; p = 0.95 - 0.1*0.25
		{"sgd", OptimConfig{}, true, [2]float64{0.95, 0.925}},
		// g = 0.5 + 0.1*1 = 0.6 -> 0.94; g = 0.25 + 0.094 = 0.344 -> 0.9056
		{"sgd wd", OptimConfig{WeightDecay: 0.1}, true, [2]float64{0.94, 0.9056}},
		// decay off for this parameter: as plain SGD
		{"sgd wd masked", OptimConfig{WeightDecay: 0.1}, false, [2]float64{0.95, 0.925}},
		// b = 0.5 -> 0.95; b = 0.45 + 0.25 = 0.7 -> 0.88
		{"momentum", OptimConfig{Momentum: 0.9}, true, [2]float64{0.95, 0.88}},
		// b = 0.5, g = 0.5 + 0.45 = 0.95 -> 0.905;
		// b = 0.7, g = 0.25 + 0.63 = 0.88 -> 0.817
		{"nesterov", OptimConfig{Momentum: 0.9, Nesterov: true}, true, [2]float64{0.905, 0.817}},
		// m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25 -> 1 - 0.1*0.5/(0.5+1e-8);
		// m = 0.07, v = 0.00031225, bc1 = 0.19, bc2 = 0.001999 -> 0.806782040
		{"adam", OptimConfig{Name: "adam"}, true, [2]float64{0.900000002, 0.8067820405}},
		// L2 in the gradient: g = 0.6 (first step still lr-sized),
		// g = 0.25 + 0.09 = 0.34: m = 0.088, v = 0.00047524 -> 0.8050097659
		{"adam wd", OptimConfig{Name: "adam", WeightDecay: 0.1}, true, [2]float64{0.9000000017, 0.8050097659}},
		// decoupled: p *= 1 - 0.1*0.1 first: 0.99 - 0.1 = 0.89;
		// 0.89*0.99 = 0.8811, minus the Adam step 0.0932179615 -> 0.7878820405
		{"adamw", OptimConfig{Name: "adamw", WeightDecay: 0.1}, true, [2]float64{0.890000002, 0.7878820405}},
		{"adamw masked", OptimConfig{Name: "AdamW", WeightDecay: 0.1}, false, [2]float64{0.900000002, 0.8067820405}},
	}
	for _, tt := range tests {
		opt, err := NewOptimizer(tt.c, 1, []bool{tt.decay})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		p := vec(1)
		for i, g := range []float32{0.5, 0.25} {
			if err := opt.Step([]*tensor.Tensor{p}, []*tensor.Tensor{vec(g)}, 0.1); err != nil {
				t.Fatal(err)
			}
			if got := float64(p.F32()[0]); math.Abs(got-tt.want[i]) > 1e-6 {
				t.Errorf("%s: step %d: p = %.9f, want %.9f", tt.name, i+1, got, tt.want[i])
			}
		}
		if _, steps := opt.Slots(); steps != 2 {
			t.Errorf("%s: %d steps recorded", tt.name, steps)
		}
	}
}

// TestOptimizerSlots checks that restoring the slots of one optimizer into
// a fresh one continues bit for bit.
func TestOptimizerSlots(t *testing.T) {
	for _, c := range []OptimConfig{{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}, {Name: "adamw", WeightDecay: 0.05}} {
		a, _ := NewOptimizer(c, 2, nil)
		pa := []*tensor.Tensor{vec(1, -2, 3), vec(0.5)}
		g := func(s float32) []*tensor.Tensor { return []*tensor.Tensor{vec(s, -s, 2*s), vec(s / 3)} }
		for s := range 3 {
			a.Step(pa, g(float32(s)+0.1), 0.05)
		}
		slots, steps := a.Slots()
		b, _ := NewOptimizer(c, 2, nil)
		copied := map[string][]*tensor.Tensor{}
		for k, ts := range slots {
			for _, t := range ts {
				copied[k] = append(copied[k], t.Clone())
			}
		}
		if err := b.SetSlots(copied, steps); err != nil {
			t.Fatal(err)
		}
		pb := []*tensor.Tensor{pa[0].Clone(), pa[1].Clone()}
		for s := 3; s < 6; s++ {
			a.Step(pa, g(float32(s)+0.1), 0.05)
			b.Step(pb, g(float32(s)+0.1), 0.05)
		}
		for i := range pa {
			for j, v := range pa[i].F32() {
				if v != pb[i].F32()[j] {
					t.Fatalf("%s: restored optimizer differs: %v vs %v", c.Name, pa[i].F32(), pb[i].F32())
				}
			}
		}
	}
}

func TestOptimizerErrors(t *testing.T) {
	for _, c := range []OptimConfig{{Name: "lion"}, {Momentum: 1}, {Momentum: -0.1}, {Nesterov: true},
		{WeightDecay: -1}, {Name: "adam", Beta1: 1}, {Name: "adam", Eps: -1}} {
		if _, err := NewOptimizer(c, 1, nil); err == nil {
			t.Errorf("NewOptimizer(%+v) succeeded", c)
		}
	}
	opt, _ := NewOptimizer(OptimConfig{}, 1, nil)
	if err := opt.Step([]*tensor.Tensor{vec(1)}, []*tensor.Tensor{vec(1, 2)}, 0.1); err == nil {
		t.Error("mismatched gradient accepted")
	}
	if err := opt.Step([]*tensor.Tensor{vec(1), vec(2)}, []*tensor.Tensor{vec(1), vec(2)}, 0.1); err == nil {
		t.Error("wrong parameter count accepted")
	}
}

func TestClip(t *testing.T) {
	g := []*tensor.Tensor{vec(3), vec(0, 4)}
	if n := ClipGradNorm(g, 1); n != 5 {
		t.Errorf("norm = %v, want 5", n)
	}
	// scaled by 1/(5+1e-6)
	for i, want := range []float32{0.6, 0, 0.8} {
		got := append(g[0].F32(), g[1].F32()...)[i]
		if math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("clipped[%d] = %v, want %v", i, got, want)
		}
	}
	g = []*tensor.Tensor{vec(0.3, -0.4)}
	if n := ClipGradNorm(g, 1); math.Abs(n-0.5) > 1e-7 || g[0].F32()[0] != 0.3 {
		t.Errorf("below the limit: norm %v, grads %v changed", n, g[0].F32())
	}
	g = []*tensor.Tensor{vec(-3, 0.5, 2)}
	ClipGradValue(g, 1)
	if v := g[0].F32(); v[0] != -1 || v[1] != 0.5 || v[2] != 1 {
		t.Errorf("ClipGradValue = %v", v)
	}
}

func TestSchedules(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []float64
	}{
		{"constant", Constant(0.1), []float64{0.1, 0.1, 0.1}},
		{"step", StepDecay(1, 2, 0.5), []float64{1, 1, 0.5, 0.5, 0.25, 0.25}},
		// (1+cos(pi*s/4))/2
		{"cosine", Cosine(1, 0, 4), []float64{1, 0.8535533906, 0.5, 0.1464466094, 0, 0}},
		{"cosine min", Cosine(1, 0.1, 2), []float64{1, 0.55, 0.1}},
		{"warmup", Warmup(Constant(1), 4), []float64{0.25, 0.5, 0.75, 1, 1}},
		{"warmup cosine", Warmup(Cosine(1, 0, 2), 2), []float64{0.5, 1, 1, 0.5, 0}},
	}
	for _, tt := range tests {
		for i, want := range tt.want {
			if got := tt.s.LR(i); math.Abs(got-want) > 1e-9 {
				t.Errorf("%s: LR(%d) = %v, want %v", tt.name, i, got, want)
			}
		}
	}
}

func TestScheduleConfig(t *testing.T) {
	// 10 steps per epoch, 3 epochs, warm-up 1 epoch, then cosine over 20.
	s, err := ScheduleConfig{LR: 1, WarmupEpochs: 1}.Build(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		step int
		want float64
	}{{0, 0.1}, {9, 1}, {10, 1}, {20, 0.5}, {30, 0}} {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("LR(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	s, err = ScheduleConfig{Name: "step", LR: 1, StepEpochs: 1, Gamma: 0.5}.Build(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.LR(9) != 1 || s.LR(10) != 0.5 || s.LR(25) != 0.25 {
		t.Errorf("step schedule: %v %v %v", s.LR(9), s.LR(10), s.LR(25))
	}
	for _, c := range []ScheduleConfig{{}, {LR: -1}, {LR: 1, Name: "poly"}, {LR: 1, Name: "step"}, {LR: 1, MinLR: -1}} {
		if _, err := c.Build(10, 3); err == nil {
			t.Errorf("Build(%+v) succeeded", c)
		}
	}
}
