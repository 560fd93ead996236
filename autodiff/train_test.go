package autodiff

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// heNormal returns a float32 weight with He-normal values.
func heNormal(r *rand.Rand, fanIn int, shape ...int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, shape)
	s := math.Sqrt(2 / float64(fanIn))
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64() * s)
	}
	return t
}

func zerosF32(shape ...int) *tensor.Tensor {
	t, _ := tensor.New(tensor.Float32, shape)
	return t
}

func onesF32(shape ...int) *tensor.Tensor {
	t := zerosF32(shape...)
	for i := range t.F32() {
		t.F32()[i] = 1
	}
	return t
}

// trainer runs plain SGD on a program.
type trainer struct {
	model  *ir.Graph
	p      *Program
	rn     *runner
	losses []float64
}

func newTrainer(t testing.TB, model *ir.Graph, loss ir.ValueID, threads int) *trainer {
	t.Helper()
	p, err := Build(model, loss, Options{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return &trainer{model: model, p: p, rn: newRunner(t, model, p, threads, 0, nil)}
}

// step runs one SGD step on a batch and records the loss.
func (tr *trainer) step(t testing.TB, feeds map[ir.ValueID]*tensor.Tensor, lr float32, seed int64) {
	for id, v := range feeds {
		tr.rn.vals[id] = v
	}
	if tr.p.Seed != ir.NoValue {
		tr.rn.vals[tr.p.Seed] = &tensor.Tensor{DType: tensor.Int64, Shape: tensor.Shape{}, Data: []int64{seed}}
	}
	outs := tr.rn.run(t)
	tr.losses = append(tr.losses, outs[0].Float64At(0))
	for _, pr := range tr.p.Params {
		w := tr.rn.vals[pr.Input].Clone()
		g := outs[tr.p.OutputIndex(pr.Grad)].F32()
		for i := range w.F32() {
			w.F32()[i] -= lr * g[i]
		}
		tr.rn.vals[pr.Input] = w
	}
	for _, s := range tr.p.States {
		tr.rn.vals[s.Input] = outs[tr.p.OutputIndex(s.Update)]
	}
}

// trained returns the inference model with the trained values.
func (tr *trainer) trained(t testing.TB) *ir.Graph {
	vals := map[ir.ValueID]*tensor.Tensor{}
	for _, pr := range tr.p.Params {
		vals[pr.Value] = tr.rn.vals[pr.Input]
	}
	for _, s := range tr.p.States {
		vals[s.Value] = tr.rn.vals[s.Input]
	}
	g, err := WithValues(tr.model, vals)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// blobs makes n points of dim d in k Gaussian clusters, float32, with
// int64 labels.
func blobs(r *rand.Rand, n, d, k int) (*tensor.Tensor, *tensor.Tensor) {
	centers := make([][]float64, k)
	for c := range centers {
		centers[c] = make([]float64, d)
		for j := range centers[c] {
			centers[c][j] = r.NormFloat64() * 2
		}
	}
	x := zerosF32(n, d)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		c := i % k
		y[i] = int64(c)
		for j := 0; j < d; j++ {
			x.F32()[i*d+j] = float32(centers[c][j] + 0.5*r.NormFloat64())
		}
	}
	return x, tensor.FromInt64(tensor.Shape{n}, y)
}

// accuracy runs the model (inputs x and y, first output the logits) and
// compares the argmax with y.
func accuracy(t testing.TB, g *ir.Graph, x, y *tensor.Tensor) float64 {
	sess, err := infer.NewSession(g, infer.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x, y})
	if err != nil {
		t.Fatal(err)
	}
	logits := outs[0]
	n, k := logits.Shape[0], logits.Shape[1]
	ok := 0
	for i := 0; i < n; i++ {
		best := 0
		for j := 1; j < k; j++ {
			if logits.Float64At(i*k+j) > logits.Float64At(i*k+best) {
				best = j
			}
		}
		if int64(best) == y.I64()[i] {
			ok++
		}
	}
	return float64(ok) / float64(n)
}

// mlp builds x -> Gemm -> Relu -> Gemm -> logits with a cross-entropy
// loss; the model's only output is the logits.
func mlp(r *rand.Rand, d, h, k int) (model *ir.Graph, x, y, loss ir.ValueID) {
	b := ir.NewBuilder("mlp", 13)
	x = b.Input("x", tensor.Float32, -1, int64(d))
	y = b.Input("y", tensor.Int64, -1)
	z := b.Op("Gemm", "fc1", []ir.ValueID{x, b.Param("w1", heNormal(r, d, d, h)), b.Param("b1", zerosF32(h))})
	z = b.Op("Relu", "", []ir.ValueID{z})
	logits := b.Op("Gemm", "fc2", []ir.ValueID{z, b.Param("w2", heNormal(r, h, k, h)), b.Param("b2", zerosF32(k))}, ir.IntAttr("transB", 1))
	b.Output(logits)
	loss = CrossEntropy(b, logits, y, 0)
	return b.G, x, y, loss
}

func TestTrainMLP(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	model, x, y, loss := mlp(r, 8, 32, 4)
	xs, ys := blobs(r, 128, 8, 4)
	tr := newTrainer(t, model, loss, 2)
	if _, ok := tr.p.Outputs["fc2_out"]; !ok {
		t.Errorf("Program.Outputs = %v, want the logits kept", tr.p.Outputs)
	}
	for s := 0; s < 300; s++ {
		tr.step(t, map[ir.ValueID]*tensor.Tensor{x: xs, y: ys}, 0.1, int64(s))
	}
	first, last := tr.losses[0], tr.losses[len(tr.losses)-1]
	if !(last < first/20) {
		t.Errorf("loss %v -> %v, want a drop by more than 20x", first, last)
	}
	// The exported inference graph (model minus the loss output) classifies
	// the training data.
	inf := tr.trained(t)
	if acc := accuracy(t, inf, xs, ys); acc < 0.95 {
		t.Errorf("accuracy %v, want >= 0.95", acc)
	}
}

// convNet builds a small LeNet-like classifier for 1x12x12 images:
// conv3x3(6)+BN+Relu, maxpool2, conv3x3(8)+Relu, maxpool2, flatten,
// dropout, fc(4), with a cross-entropy loss (label smoothing 0.05).
func convNet(r *rand.Rand) (model *ir.Graph, x, y, loss ir.ValueID) {
	b := ir.NewBuilder("convnet", 13)
	x = b.Input("x", tensor.Float32, -1, 1, 12, 12)
	y = b.Input("y", tensor.Int64, -1)
	z := b.Op("Conv", "conv1", []ir.ValueID{x, b.Param("c1w", heNormal(r, 9, 6, 1, 3, 3)), b.Param("c1b", zerosF32(6))},
		ir.IntsAttr("pads", 1, 1, 1, 1))
	z = b.Op("BatchNormalization", "bn1", []ir.ValueID{z, b.Param("bn1s", onesF32(6)), b.Param("bn1b", zerosF32(6)),
		b.Const("bn1m", zerosF32(6)), b.Const("bn1v", onesF32(6))})
	z = b.Op("Relu", "", []ir.ValueID{z})
	z = b.Op("MaxPool", "pool1", []ir.ValueID{z}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	z = b.Op("Conv", "conv2", []ir.ValueID{z, b.Param("c2w", heNormal(r, 54, 8, 6, 3, 3)), b.Param("c2b", zerosF32(8))},
		ir.IntsAttr("pads", 1, 1, 1, 1))
	z = b.Op("Relu", "", []ir.ValueID{z})
	z = b.Op("MaxPool", "pool2", []ir.ValueID{z}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	z = b.Op("Flatten", "", []ir.ValueID{z})
	z = b.Op("Dropout", "drop", []ir.ValueID{z, b.Const("ratio", tensor.FromFloat32(tensor.Shape{}, []float32{0.1}))})
	logits := b.Op("Gemm", "fc", []ir.ValueID{z, b.Param("fw", heNormal(r, 72, 72, 4)), b.Param("fb", zerosF32(4))})
	b.Output(logits)
	loss = CrossEntropy(b, logits, y, 0.05)
	return b.G, x, y, loss
}

// quadrants makes n noisy 12x12 images whose class is the quadrant holding
// a bright 3x3 square.
func quadrants(r *rand.Rand, n int) (*tensor.Tensor, *tensor.Tensor) {
	x := zerosF32(n, 1, 12, 12)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		c := r.Intn(4)
		y[i] = int64(c)
		img := x.F32()[i*144 : (i+1)*144]
		for j := range img {
			img[j] = float32(0.3 * r.NormFloat64())
		}
		r0, c0 := (c/2)*6+r.Intn(4), (c%2)*6+r.Intn(4)
		for a := 0; a < 3; a++ {
			for b := 0; b < 3; b++ {
				img[(r0+a)*12+c0+b] += 1.5
			}
		}
	}
	return x, tensor.FromInt64(tensor.Shape{n}, y)
}

func trainConvNet(t testing.TB, threads, steps int) *trainer {
	r := rand.New(rand.NewSource(2))
	model, x, y, loss := convNet(r)
	xs, ys := quadrants(r, 256)
	tr := newTrainer(t, model, loss, threads)
	const batch = 32
	for s := 0; s < steps; s++ {
		lo := (s * batch) % 256
		bx := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{batch, 1, 12, 12}, Data: xs.F32()[lo*144 : (lo+batch)*144]}
		by := tensor.FromInt64(tensor.Shape{batch}, ys.I64()[lo:lo+batch])
		tr.step(t, map[ir.ValueID]*tensor.Tensor{x: bx, y: by}, 0.05, int64(1000+s))
	}
	return tr
}

func TestTrainConvNet(t *testing.T) {
	tr := trainConvNet(t, 4, 300)
	avg := func(l []float64) float64 {
		s := 0.0
		for _, v := range l {
			s += v
		}
		return s / float64(len(l))
	}
	first, last := avg(tr.losses[:8]), avg(tr.losses[len(tr.losses)-8:])
	if !(last < first/5) {
		t.Errorf("mean loss of the first 8 steps %v, last 8 steps %v: want a drop by more than 5x", first, last)
	}
	// Running statistics were updated.
	for _, s := range tr.p.States {
		if tr.rn.vals[s.Input] == tr.model.Values[s.Value].Const {
			t.Errorf("state %q never updated", tr.model.Values[s.Value].Name)
		}
	}
	r := rand.New(rand.NewSource(99))
	xs, ys := quadrants(r, 200)
	inf := tr.trained(t)
	if acc := accuracy(t, inf, xs, ys); acc < 0.9 {
		t.Errorf("held-out accuracy %v, want >= 0.9", acc)
	}
}

// TestTrainDeterministic trains the conv net twice with the same seeds and
// requires bit-identical losses and parameters; it also compares one and
// four threads.
func TestTrainDeterministic(t *testing.T) {
	a := trainConvNet(t, 3, 40)
	b := trainConvNet(t, 3, 40)
	c := trainConvNet(t, 1, 40)
	for name, o := range map[string]*trainer{"same threads": b, "1 vs 3 threads": c} {
		for i := range a.losses {
			if math.Float64bits(a.losses[i]) != math.Float64bits(o.losses[i]) {
				t.Fatalf("%s: loss of step %d differs: %v vs %v", name, i, a.losses[i], o.losses[i])
			}
		}
		for _, pr := range a.p.Params {
			x, y := a.rn.vals[pr.Input].F32(), o.rn.vals[pr.Input].F32()
			for i := range x {
				if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
					t.Fatalf("%s: parameter %q differs at %d", name, a.model.Values[pr.Value].Name, i)
				}
			}
		}
	}
}

// TestProgramLayout checks the documented order of program inputs and
// outputs, and that model IDs and names are kept.
func TestProgramLayout(t *testing.T) {
	model, x, y, loss := convNet(rand.New(rand.NewSource(1)))
	p, err := Build(model, loss, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := p.Graph
	want := []ir.ValueID{x, y}
	for _, pr := range p.Params {
		if pr.Input != pr.Value || g.Values[pr.Value].Name != model.Values[pr.Value].Name || g.Values[pr.Value].Const != nil {
			t.Errorf("param %q: input %d value %d, const kept %v", model.Values[pr.Value].Name, pr.Input, pr.Value, g.Values[pr.Value].Const != nil)
		}
		want = append(want, pr.Input)
	}
	for _, s := range p.States {
		want = append(want, s.Input)
	}
	want = append(want, p.Seed)
	if len(p.Params) != 8 || len(p.States) != 2 || p.Seed == ir.NoValue {
		t.Fatalf("%d params, %d states, seed %d; want 8, 2 and a seed", len(p.Params), len(p.States), p.Seed)
	}
	if !equalIDs(g.Inputs, want) {
		t.Errorf("inputs %v, want %v", g.Inputs, want)
	}
	outs := []ir.ValueID{loss, model.Outputs[0]}
	for _, pr := range p.Params {
		outs = append(outs, pr.Grad)
	}
	for _, s := range p.States {
		outs = append(outs, s.Update)
	}
	if !equalIDs(g.Outputs, outs) {
		t.Errorf("outputs %v, want %v", g.Outputs, outs)
	}
	if p.InputIndex(y) != 1 || p.OutputIndex(loss) != 0 || p.OutputIndex(x) != -1 {
		t.Errorf("InputIndex/OutputIndex wrong")
	}
	for id := range model.Values {
		if g.Values[id].Name != model.Values[id].Name {
			t.Fatalf("value %d renamed from %q to %q", id, model.Values[id].Name, g.Values[id].Name)
		}
	}
	// The model is unchanged.
	for _, n := range model.Nodes {
		if n.Domain == Domain && n.Op != "CrossEntropy" {
			t.Errorf("model gained node %s", n.Label())
		}
	}
}

func equalIDs(a, b []ir.ValueID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
