package autodiff_test

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/goslim/goslim/autodiff"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// zooProgram builds spec with a cross-entropy loss and compiles its
// training program.
func zooProgram(t testing.TB, spec string, o zoo.Options, threads int) (*ir.Graph, *autodiff.Program, *infer.Session) {
	t.Helper()
	g, err := zoo.Build(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	b := &ir.Builder{G: g}
	labels := b.Input("labels", tensor.Int64, -1)
	loss := autodiff.CrossEntropy(b, g.Outputs[0], labels, 0.1)
	p, err := autodiff.Build(g, loss, autodiff.Options{})
	if err != nil {
		t.Fatalf("%s: Build: %v", spec, err)
	}
	sess, err := infer.NewSession(p.Graph, infer.Options{Threads: threads})
	if err != nil {
		t.Fatalf("%s: NewSession: %v", spec, err)
	}
	return g, p, sess
}

// zooFeeds returns the program inputs for one batch.
func zooFeeds(g *ir.Graph, p *autodiff.Program, vals map[ir.ValueID]*tensor.Tensor, x, y *tensor.Tensor) []*tensor.Tensor {
	in := make([]*tensor.Tensor, len(p.Graph.Inputs))
	in[0], in[1] = x, y
	for i, id := range p.Graph.Inputs[2:] {
		in[2+i] = vals[id]
	}
	return in
}

// zooVals maps p's parameter and state inputs to model g's constants (not
// copied) and p's seed input, when it has one, to seed.
func zooVals(g *ir.Graph, p *autodiff.Program, seed int64) map[ir.ValueID]*tensor.Tensor {
	vals := map[ir.ValueID]*tensor.Tensor{}
	for _, pr := range p.Params {
		vals[pr.Input] = g.Values[pr.Value].Const
	}
	for _, s := range p.States {
		vals[s.Input] = g.Values[s.Value].Const
	}
	if p.Seed != ir.NoValue {
		vals[p.Seed] = tensor.FromInt64(tensor.Shape{}, []int64{seed})
	}
	return vals
}

// TestZooModelsTrain overfits one small batch with plain SGD for every zoo
// architecture: the program must build, run, give finite gradients of the
// right shapes, and reduce the loss.
func TestZooModelsTrain(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		c, h, w int
		steps   int
		lr      float32
	}{
		{"lenet:0.5", 1, 28, 28, 30, 0.05},
		{"mlp", 1, 8, 8, 30, 0.05},
		{"resnet8:0.5", 3, 16, 16, 30, 0.05},
		{"mobilenetv2:0.25", 3, 16, 16, 20, 0.002},
		{"mobilenetv3s:0.25", 3, 16, 16, 12, 0.01},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			g, p, sess := zooProgram(t, tc.spec, zoo.Options{Classes: 4, InC: tc.c, InH: tc.h, InW: tc.w, Seed: 3}, 4)
			r := rand.New(rand.NewSource(1))
			const n = 8
			x, _ := tensor.New(tensor.Float32, tensor.Shape{n, tc.c, tc.h, tc.w})
			for i := range x.F32() {
				x.F32()[i] = float32(r.NormFloat64())
			}
			y := tensor.FromInt64(tensor.Shape{n}, []int64{0, 1, 2, 3, 0, 1, 2, 3})
			vals := zooVals(g, p, 1)
			var first, last float64
			for step := 0; step < tc.steps; step++ {
				outs, err := sess.RunInputs(context.Background(), zooFeeds(g, p, vals, x, y))
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				loss := outs[0].Float64At(0)
				if step == 0 {
					first = loss
				}
				last = loss
				for _, pr := range p.Params {
					gr := outs[p.OutputIndex(pr.Grad)]
					w := vals[pr.Input]
					if !gr.Shape.Equal(w.Shape) {
						t.Fatalf("grad of %q has shape %v, want %v", g.Values[pr.Value].Name, gr.Shape, w.Shape)
					}
					nw := w.Clone()
					for i, gv := range gr.F32() {
						if math.IsNaN(float64(gv)) || math.IsInf(float64(gv), 0) {
							t.Fatalf("grad of %q is not finite", g.Values[pr.Value].Name)
						}
						nw.F32()[i] -= tc.lr * gv
					}
					vals[pr.Input] = nw
				}
				for _, s := range p.States {
					vals[s.Input] = outs[p.OutputIndex(s.Update)]
				}
			}
			if !(last < first*0.7) {
				t.Errorf("loss %v -> %v after %d steps on one batch, want a clear drop", first, last, tc.steps)
			}
		})
	}
}

// TestZooModelsDirectional checks the whole-model gradient of every zoo
// architecture in float32 against the loss: moving the parameters by
// +-eps along the gradient g changes the loss by -+eps*|g| to first order.
// The tolerance covers float32 rounding and units crossing a kink of
// ReLU/ReLU6/HardSwish within the step (in float64, MobileNetV2 matches
// to 1e-9 at a step of 1e-7 and drifts by up to 2% at 1e-4 for that
// reason).
func TestZooModelsDirectional(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		c, h, w int
	}{
		{"lenet:0.5", 1, 28, 28},
		{"mlp", 1, 8, 8},
		{"resnet8:0.5", 3, 16, 16},
		{"mobilenetv2:0.25", 3, 16, 16},
		{"mobilenetv3s:0.25", 3, 16, 16},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			g, p, sess := zooProgram(t, tc.spec, zoo.Options{Classes: 4, InC: tc.c, InH: tc.h, InW: tc.w, Seed: 5}, 2)
			r := rand.New(rand.NewSource(2))
			x, _ := tensor.New(tensor.Float32, tensor.Shape{8, tc.c, tc.h, tc.w})
			for i := range x.F32() {
				x.F32()[i] = float32(r.NormFloat64())
			}
			y := tensor.FromInt64(tensor.Shape{8}, []int64{3, 1, 2, 0, 0, 1, 2, 3})
			vals := zooVals(g, p, 4)
			outs, err := sess.RunInputs(context.Background(), zooFeeds(g, p, vals, x, y))
			if err != nil {
				t.Fatal(err)
			}
			grads := map[ir.ValueID][]float32{}
			norm2 := 0.0
			for _, pr := range p.Params {
				gr := outs[p.OutputIndex(pr.Grad)].F32()
				grads[pr.Input] = gr
				for _, v := range gr {
					norm2 += float64(v) * float64(v)
				}
			}
			const eps = 3e-5
			e := eps / math.Sqrt(norm2)
			moved := func(sign float64) float64 {
				v2 := map[ir.ValueID]*tensor.Tensor{}
				for k, v := range vals {
					v2[k] = v
				}
				for _, pr := range p.Params {
					w := vals[pr.Input].Clone()
					for i, gv := range grads[pr.Input] {
						w.F32()[i] += float32(sign*e) * gv
					}
					v2[pr.Input] = w
				}
				o, err := sess.RunInputs(context.Background(), zooFeeds(g, p, v2, x, y))
				if err != nil {
					t.Fatal(err)
				}
				return o[0].Float64At(0)
			}
			got := (moved(1) - moved(-1)) / 2
			want := e * norm2
			if math.Abs(got-want) > 0.05*want {
				t.Errorf("loss change along the gradient %v, want %v (|g| = %v)", got, want, math.Sqrt(norm2))
			}
		})
	}
}

// BenchmarkResNet20Step times one training step (forward, loss, backward)
// of ResNet-20 on a 32x3x32x32 batch.
func BenchmarkResNet20Step(b *testing.B) {
	g, p, sess := zooProgram(b, "resnet20", zoo.Options{Classes: 10, InC: 3, InH: 32, InW: 32, Seed: 1}, 0)
	x, _ := tensor.New(tensor.Float32, tensor.Shape{32, 3, 32, 32})
	r := rand.New(rand.NewSource(1))
	for i := range x.F32() {
		x.F32()[i] = float32(r.NormFloat64())
	}
	lab := make([]int64, 32)
	for i := range lab {
		lab[i] = int64(i % 10)
	}
	vals := zooVals(g, p, 1)
	in := zooFeeds(g, p, vals, x, tensor.FromInt64(tensor.Shape{32}, lab))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sess.RunInputs(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
