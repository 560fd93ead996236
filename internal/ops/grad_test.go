package ops

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// gradRun builds a goslim-domain op through the table and runs it once;
// want lists the requested outputs (nil: all nOut).
func gradRun(op string, attrs ir.Attrs, want []bool, threads int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	return gradRunTier(kernel.TierGeneric, op, attrs, want, threads, in...)
}

// gradRunTier is gradRun in a session of the given tier.
func gradRunTier(tier kernel.Tier, op string, attrs ir.Attrs, want []bool, threads int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	node := &ir.Node{Op: op, Domain: gradDomain, Name: "n", Attrs: attrs, Inputs: make([]ir.ValueID, len(in)), Outputs: make([]ir.ValueID, len(want))}
	for i, w := range want {
		if !w {
			node.Outputs[i] = ir.NoValue
		}
	}
	info := &kernel.Info{Node: node, Opset: 1, Inputs: make([]ir.Type, len(in)), Consts: make([]*tensor.Tensor, len(in)), Tier: tier}
	k, _, err := NewTable().Lookup(info)
	if err != nil {
		return nil, err
	}
	return kernel.RunNode(k, kernel.NewCtx(node, threads, nil), len(want), in)
}

func gradRand(r *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	t, _ := tensor.New(dt, shape)
	for i := 0; i < t.Len(); i++ {
		v := r.Float64()*2 - 1
		switch d := t.Data.(type) {
		case []float32:
			d[i] = float32(v)
		case []float64:
			d[i] = v
		}
	}
	return t
}

// gradTo64 converts a float32 tensor to float64 (exactly).
func gradTo64(t *tensor.Tensor) *tensor.Tensor {
	o, _ := tensor.New(tensor.Float64, t.Shape)
	for i := range o.F64() {
		o.F64()[i] = t.Float64At(i)
	}
	return o
}

func gradShapeT(s tensor.Shape) *tensor.Tensor {
	v := make([]int64, len(s))
	for i, d := range s {
		v[i] = int64(d)
	}
	return tensor.FromInt64(tensor.Shape{len(v)}, v)
}

// gradClose checks a float32 result against a float64 reference with a
// tolerance relative to the reference's largest magnitude.
func gradClose(t *testing.T, name string, got, want *tensor.Tensor, rel float64) {
	t.Helper()
	if !got.Shape.Equal(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	scale := 1e-30
	for i := 0; i < want.Len(); i++ {
		scale = math.Max(scale, math.Abs(want.Float64At(i)))
	}
	for i := 0; i < want.Len(); i++ {
		if d := math.Abs(got.Float64At(i) - want.Float64At(i)); d > rel*scale || math.IsNaN(got.Float64At(i)) {
			t.Fatalf("%s: element %d = %v, want %v (scale %v)", name, i, got.Float64At(i), want.Float64At(i), scale)
		}
	}
}

// gradBitEqual checks two results for bit equality.
func gradBitEqual(t *testing.T, name string, a, b []*tensor.Tensor) {
	t.Helper()
	for k := range a {
		if (a[k] == nil) != (b[k] == nil) {
			t.Fatalf("%s: output %d presence differs", name, k)
		}
		if a[k] == nil {
			continue
		}
		for i := 0; i < a[k].Len(); i++ {
			x, y := a[k].Float64At(i), b[k].Float64At(i)
			if math.Float64bits(x) != math.Float64bits(y) {
				t.Fatalf("%s: output %d element %d differs across thread counts: %v vs %v", name, k, i, x, y)
			}
		}
	}
}

type gradConvTC struct {
	name   string
	x, w   []int
	attrs  ir.Attrs
	needsB bool
}

var gradConvTCs = []gradConvTC{
	{name: "3x3-pad", x: []int{2, 3, 7, 6}, w: []int{5, 3, 3, 3}, attrs: ir.Attrs{ir.IntsAttr("pads", 1, 1, 1, 1)}},
	{name: "stride-dil-asym", x: []int{2, 4, 9, 8}, w: []int{3, 4, 3, 2},
		attrs: ir.Attrs{ir.IntsAttr("strides", 2, 3), ir.IntsAttr("dilations", 2, 1), ir.IntsAttr("pads", 1, 0, 2, 1)}},
	{name: "dil-stride1", x: []int{2, 3, 9, 8}, w: []int{4, 3, 3, 2},
		attrs: ir.Attrs{ir.IntsAttr("dilations", 2, 1), ir.IntsAttr("pads", 1, 0, 2, 1)}},
	// Padding beyond dilation*(kernel-1): dX takes the col2im path.
	{name: "1x1-pad", x: []int{2, 3, 5, 4}, w: []int{4, 3, 1, 1}, attrs: ir.Attrs{ir.IntsAttr("pads", 1, 0, 1, 2)}},
	{name: "groups", x: []int{3, 6, 5, 5}, w: []int{4, 3, 3, 3}, attrs: ir.Attrs{ir.IntAttr("group", 2)}},
	{name: "depthwise-mult2", x: []int{2, 5, 8, 7}, w: []int{10, 1, 3, 3},
		attrs: ir.Attrs{ir.IntAttr("group", 5), ir.StringAttr("auto_pad", "SAME_LOWER"), ir.IntsAttr("strides", 2, 2)}},
	{name: "pointwise", x: []int{2, 7, 4, 5}, w: []int{9, 7, 1, 1}},
	{name: "1d", x: []int{3, 2, 11}, w: []int{4, 2, 5}, attrs: ir.Attrs{ir.IntsAttr("pads", 2, 2), ir.IntsAttr("strides", 2)}},
	{name: "3d", x: []int{1, 2, 4, 5, 4}, w: []int{3, 2, 2, 3, 2}, attrs: ir.Attrs{ir.IntsAttr("pads", 1, 1, 0, 0, 1, 1)}},
	// Many input channels and a large image: several column tiles and
	// channel blocks, and 40 output channels: three dW row blocks.
	{name: "tiles", x: []int{1, 64, 33, 30}, w: []int{40, 64, 3, 3}, attrs: ir.Attrs{ir.IntsAttr("pads", 1, 1, 1, 1)}},
	// A 1x1 stride-2 shortcut: one of the four phases is read.
	{name: "1x1-stride2", x: []int{2, 6, 9, 8}, w: []int{4, 6, 1, 1}, attrs: ir.Attrs{ir.IntsAttr("strides", 2, 2)}},
	// Stride 2: the wide dW layout with four phases, several column tiles.
	{name: "tiles-stride2", x: []int{1, 64, 65, 63}, w: []int{8, 64, 3, 3},
		attrs: ir.Attrs{ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 0, 1, 2)}},
	// A 7x7 kernel: several column tiles for dX too.
	{name: "tiles-7x7", x: []int{1, 64, 33, 30}, w: []int{8, 64, 7, 7}, attrs: ir.Attrs{ir.IntsAttr("pads", 3, 3, 3, 3)}},
}

// TestGradConvF32 checks the float32 GEMM/im2col/col2im gradients of Conv
// against the float64 direct loops, and that results do not depend on the
// thread count.
func TestGradConvF32(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, tc := range gradConvTCs {
		t.Run(tc.name, func(t *testing.T) {
			x := gradRand(r, tensor.Float32, tc.x...)
			w := gradRand(r, tensor.Float32, tc.w...)
			y, err := shapeRun("Conv", 13, tc.attrs, 1, 1, x, w)
			if err != nil {
				t.Fatal(err)
			}
			dy := gradRand(r, tensor.Float32, y[0].Shape...)
			xs := gradShapeT(x.Shape)
			ref, err := gradRun("ConvGradInput", tc.attrs, []bool{true}, 2, gradTo64(dy), gradTo64(w), xs)
			if err != nil {
				t.Fatal(err)
			}
			refW, err := gradRun("ConvGradWeight", tc.attrs, []bool{true, true}, 2, gradTo64(dy), gradTo64(x), gradTo64(w))
			if err != nil {
				t.Fatal(err)
			}
			for _, tier := range gradTiers() {
				var prevI, prevW []*tensor.Tensor
				for _, th := range []int{1, 3, 8} {
					gi, err := gradRunTier(tier, "ConvGradInput", tc.attrs, []bool{true}, th, dy, w, xs)
					if err != nil {
						t.Fatal(err)
					}
					gw, err := gradRunTier(tier, "ConvGradWeight", tc.attrs, []bool{true, true}, th, dy, x, w)
					if err != nil {
						t.Fatal(err)
					}
					gradClose(t, tier.String()+" dX", gi[0], ref[0], 1e-5)
					gradClose(t, tier.String()+" dW", gw[0], refW[0], 1e-5)
					gradClose(t, tier.String()+" dB", gw[1], refW[1], 1e-5)
					if prevI != nil {
						gradBitEqual(t, "dX", prevI, gi)
						gradBitEqual(t, "dW", prevW, gw)
					}
					prevI, prevW = gi, gw
				}
			}
			// dW alone and dB alone.
			gb, err := gradRun("ConvGradWeight", tc.attrs, []bool{false, true}, 2, dy, x, w)
			if err != nil || gb[0] != nil || gb[1] == nil {
				t.Fatalf("dB only: %v %v", gb, err)
			}
		})
	}
}

// gradTiers returns the kernel tiers this build and CPU run.
func gradTiers() []kernel.Tier {
	var ts []kernel.Tier
	for _, t := range []kernel.Tier{kernel.TierGeneric, kernel.TierAVX2, kernel.TierAVX512} {
		if t.Available() {
			ts = append(ts, t)
		}
	}
	return ts
}

// TestGradConvDirectAdjoint checks the float64 direct loops against the
// forward Conv: <dY, conv(X, W)> must equal <dX(dY), X> = <dW(dY), W>
// (convolution without bias is bilinear).
func TestGradConvDirectAdjoint(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	dot := func(a, b *tensor.Tensor) float64 {
		s := 0.0
		for i := 0; i < a.Len(); i++ {
			s += a.Float64At(i) * b.Float64At(i)
		}
		return s
	}
	for _, tc := range gradConvTCs[:9] {
		x := gradRand(r, tensor.Float64, tc.x...)
		w := gradRand(r, tensor.Float64, tc.w...)
		y, err := shapeRun("Conv", 13, tc.attrs, 1, 1, x, w)
		if err != nil {
			t.Fatal(err)
		}
		dy := gradRand(r, tensor.Float64, y[0].Shape...)
		gi, err := gradRun("ConvGradInput", tc.attrs, []bool{true}, 1, dy, w, gradShapeT(x.Shape))
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gradRun("ConvGradWeight", tc.attrs, []bool{true, false}, 1, dy, x, w)
		if err != nil {
			t.Fatal(err)
		}
		want := dot(dy, y[0])
		if a, b := dot(gi[0], x), dot(gw[0], w); math.Abs(a-want) > 1e-9*math.Max(1, math.Abs(want)) || math.Abs(b-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: <dY,Y>=%v <dX,X>=%v <dW,W>=%v", tc.name, want, a, b)
		}
	}
}

// TestGradMatMulF32 checks MatMulGrad's float32 paths against float64 and
// across thread counts.
func TestGradMatMulF32(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, tc := range []struct{ a, b []int }{
		{[]int{70, 33}, []int{33, 45}},
		{[]int{3, 40, 17}, []int{17, 9}},
		{[]int{2, 1, 35, 6}, []int{3, 6, 40}},
		{[]int{50, 6}, []int{2, 6, 7}},
		{[]int{6}, []int{2, 6, 7}},
		{[]int{2, 5, 6}, []int{6}},
		{[]int{4, 0}, []int{0, 3}},
	} {
		a := gradRand(r, tensor.Float32, tc.a...)
		b := gradRand(r, tensor.Float32, tc.b...)
		y, err := shapeRun("MatMul", 13, nil, 1, 1, a, b)
		if err != nil {
			t.Fatal(err)
		}
		dy := gradRand(r, tensor.Float32, y[0].Shape...)
		ref, err := gradRun("MatMulGrad", nil, []bool{true, true}, 1, gradTo64(dy), gradTo64(a), gradTo64(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, tier := range gradTiers() {
			var prev []*tensor.Tensor
			for _, th := range []int{1, 4} {
				g, err := gradRunTier(tier, "MatMulGrad", nil, []bool{true, true}, th, dy, a, b)
				if err != nil {
					t.Fatal(err)
				}
				gradClose(t, tier.String()+" dA", g[0], ref[0], 1e-5)
				gradClose(t, tier.String()+" dB", g[1], ref[1], 1e-5)
				if prev != nil {
					gradBitEqual(t, "MatMulGrad", prev, g)
				}
				prev = g
			}
		}
	}
}

// TestGradGemmF32 checks GemmGrad's layouts for every transA/transB
// combination against float64 and across thread counts.
func TestGradGemmF32(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	const m, n, k = 70, 45, 9 // m > k: transposed products with more rows than the inner size
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			as, bs := []int{m, k}, []int{k, n}
			if ta {
				as = []int{k, m}
			}
			if tb {
				bs = []int{n, k}
			}
			flag := func(v bool) int64 {
				if v {
					return 1
				}
				return 0
			}
			attrs := ir.Attrs{ir.IntAttr("transA", flag(ta)), ir.IntAttr("transB", flag(tb)), ir.FloatAttr("alpha", 0.75)}
			a, b := gradRand(r, tensor.Float32, as...), gradRand(r, tensor.Float32, bs...)
			dy := gradRand(r, tensor.Float32, m, n)
			ref, err := gradRun("GemmGrad", attrs, []bool{true, true}, 1, gradTo64(dy), gradTo64(a), gradTo64(b))
			if err != nil {
				t.Fatal(err)
			}
			// Reference by the definition: d op(A)[i][p] = alpha * sum_j dY[i][j]*op(B)[p][j].
			opB := func(p, j int) float64 {
				if tb {
					return b.Float64At(j*k + p)
				}
				return b.Float64At(p*n + j)
			}
			for i := 0; i < m; i++ {
				for p := 0; p < k; p++ {
					s := 0.0
					for j := 0; j < n; j++ {
						s += dy.Float64At(i*n+j) * opB(p, j)
					}
					at := i*k + p
					if ta {
						at = p*m + i
					}
					if got := ref[0].Float64At(at); math.Abs(got-0.75*s) > 1e-9 {
						t.Fatalf("transA=%v transB=%v: dA[%d][%d] = %v, want %v", ta, tb, i, p, got, 0.75*s)
					}
				}
			}
			for _, tier := range gradTiers() {
				var prev []*tensor.Tensor
				for _, th := range []int{1, 5} {
					g, err := gradRunTier(tier, "GemmGrad", attrs, []bool{true, true}, th, dy, a, b)
					if err != nil {
						t.Fatal(err)
					}
					gradClose(t, tier.String()+" dA", g[0], ref[0], 1e-5)
					gradClose(t, tier.String()+" dB", g[1], ref[1], 1e-5)
					if prev != nil {
						gradBitEqual(t, "GemmGrad", prev, g)
					}
					prev = g
				}
			}
		}
	}
}

// TestGradThreadIndependence runs the other gradient kernels with 1 and 6
// threads on inputs large enough to be split and requires equal bits.
func TestGradThreadIndependence(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	x := gradRand(r, tensor.Float32, 8, 16, 24, 24)
	dy := gradRand(r, tensor.Float32, 8, 16, 24, 24)
	ch := gradRand(r, tensor.Float32, 16)
	pos := gradRand(r, tensor.Float32, 16)
	for i := range pos.F32() {
		pos.F32()[i] = 0.5 + pos.F32()[i]*pos.F32()[i]
	}
	logits := gradRand(r, tensor.Float32, 300, 10)
	labels := make([]int64, 300)
	for i := range labels {
		labels[i] = int64(r.Intn(10))
	}
	lab := tensor.FromInt64(tensor.Shape{300}, labels)
	one := tensor.FromFloat32(tensor.Shape{}, []float32{1})
	ln := gradRand(r, tensor.Float32, 600, 300)
	dln := gradRand(r, tensor.Float32, 600, 300)
	mean := gradRand(r, tensor.Float32, 600, 1)
	cases := []struct {
		op    string
		attrs ir.Attrs
		want  []bool
		in    []*tensor.Tensor
	}{
		{"BatchNormTrain", nil, []bool{true, true, true, true, true}, []*tensor.Tensor{x, ch, ch, ch, pos}},
		{"BatchNormGrad", nil, []bool{true, true, true}, []*tensor.Tensor{dy, x, ch, ch, pos}},
		{"LayerNormGrad", ir.Attrs{ir.IntAttr("axis", 1)}, []bool{true, true, true},
			[]*tensor.Tensor{dln, ln, gradRand(r, tensor.Float32, 300), mean, mean, gradRand(r, tensor.Float32, 300)}},
		{"CrossEntropy", ir.Attrs{ir.FloatAttr("label_smoothing", 0.1)}, []bool{true}, []*tensor.Tensor{logits, lab}},
		{"CrossEntropyGrad", nil, []bool{true}, []*tensor.Tensor{one, logits, lab}},
		{"KLDiv", ir.Attrs{ir.FloatAttr("temperature", 3)}, []bool{true}, []*tensor.Tensor{logits, logits}},
		{"MSE", nil, []bool{true}, []*tensor.Tensor{x, dy}},
		{"SumTo", nil, []bool{true}, []*tensor.Tensor{dy, gradShapeT(tensor.Shape{16, 1, 1})}},
		{"SoftmaxGrad", ir.Attrs{ir.IntAttr("axis", 1)}, []bool{true}, []*tensor.Tensor{dy, x}},
		{"DropoutTrain", ir.Attrs{ir.FloatAttr("ratio", 0.25)}, []bool{true, true},
			[]*tensor.Tensor{x, tensor.FromInt64(tensor.Shape{}, []int64{42})}},
		{"AveragePoolGrad", ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("pads", 1, 1, 1, 1)}, []bool{true},
			[]*tensor.Tensor{dy, gradShapeT(x.Shape)}},
	}
	for _, tc := range cases {
		a, err := gradRun(tc.op, tc.attrs, tc.want, 1, tc.in...)
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		b, err := gradRun(tc.op, tc.attrs, tc.want, 6, tc.in...)
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		gradBitEqual(t, tc.op, a, b)
	}
}

func TestGradGeluForward(t *testing.T) {
	x := tensor.FromFloat32(tensor.Shape{4}, []float32{-2, 0, 1, 3})
	for _, tc := range []struct {
		approx string
		want   []float64
	}{
		{"none", []float64{-0.04550026389635842, 0, 0.8413447460685429, 2.9959507790731877}},
		{"tanh", []float64{-0.04540230591222, 0, 0.8411919906082768, 2.996362607918227}},
	} {
		out, err := shapeRun("Gelu", 20, ir.Attrs{ir.StringAttr("approximate", tc.approx)}, 1, 1, x)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range tc.want {
			if g := out[0].Float64At(i); math.Abs(g-w) > 1e-6 {
				t.Errorf("Gelu %s(%v) = %v, want %v", tc.approx, x.Float64At(i), g, w)
			}
		}
	}
	if _, err := shapeRun("Gelu", 19, nil, 1, 1, x); err == nil {
		t.Errorf("Gelu at opset 19: no error")
	}
	if _, err := shapeRun("Gelu", 20, ir.Attrs{ir.StringAttr("approximate", "fast")}, 1, 1, x); err == nil {
		t.Errorf("Gelu approximate=fast: no error")
	}
}

func TestGradDropoutTrain(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	x := gradRand(r, tensor.Float32, 200, 100)
	seed := tensor.FromInt64(tensor.Shape{}, []int64{9})
	run := func(salt int64, seed *tensor.Tensor) []*tensor.Tensor {
		out, err := gradRun("DropoutTrain", ir.Attrs{ir.FloatAttr("ratio", 0.3), ir.IntAttr("salt", salt)}, []bool{true, true}, 3, x, seed)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := run(0, seed)
	kept := 0
	for i, m := range a[1].Bools() {
		y, xv := a[0].F32()[i], x.F32()[i]
		if m {
			kept++
			if math.Abs(float64(y-xv/0.7)) > 1e-6 {
				t.Fatalf("kept element %d: y=%v, want %v", i, y, xv/0.7)
			}
		} else if y != 0 {
			t.Fatalf("dropped element %d: y=%v", i, y)
		}
	}
	if frac := float64(kept) / float64(x.Len()); math.Abs(frac-0.7) > 0.02 {
		t.Errorf("kept fraction %v, want about 0.7", frac)
	}
	gradBitEqual(t, "same seed", a, run(0, seed))
	diff := func(b []*tensor.Tensor) int {
		n := 0
		for i, m := range b[1].Bools() {
			if m != a[1].Bools()[i] {
				n++
			}
		}
		return n
	}
	if diff(run(1, seed)) < 1000 {
		t.Errorf("another salt gives nearly the same mask")
	}
	if diff(run(0, tensor.FromInt64(tensor.Shape{}, []int64{10}))) < 1000 {
		t.Errorf("another seed gives nearly the same mask")
	}
	dx, err := gradRun("DropoutGrad", ir.Attrs{ir.FloatAttr("ratio", 0.3)}, []bool{true}, 2, x, a[1])
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.F32() {
		if dx[0].F32()[i] != a[0].F32()[i] {
			t.Fatalf("DropoutGrad(x, mask) must equal Dropout(x) at %d", i)
		}
	}
}

func TestGradBatchNormTrainStats(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	x := gradRand(r, tensor.Float64, 3, 2, 2, 2)
	scale := gradRand(r, tensor.Float64, 2)
	bias := gradRand(r, tensor.Float64, 2)
	rm := tensor.FromFloat32(tensor.Shape{2}, []float32{0.5, -0.25})
	rv := tensor.FromFloat32(tensor.Shape{2}, []float32{1, 2})
	out, err := gradRun("BatchNormTrain", ir.Attrs{ir.FloatAttr("momentum", 0.8), ir.FloatAttr("epsilon", 1e-3)},
		[]bool{true, true, true, true, true}, 1, x, scale, bias, rm, rv)
	if err != nil {
		t.Fatal(err)
	}
	m := float64(float32(0.8))
	for c := 0; c < 2; c++ {
		var vals []float64
		for n := 0; n < 3; n++ {
			for i := 0; i < 4; i++ {
				vals = append(vals, x.F64()[(n*2+c)*4+i])
			}
		}
		mu, q := 0.0, 0.0
		for _, v := range vals {
			mu += v
		}
		mu /= 12
		for _, v := range vals {
			q += (v - mu) * (v - mu)
		}
		inv := 1 / math.Sqrt(q/12+float64(float32(1e-3)))
		checks := []struct {
			name      string
			got, want float64
			tol       float64
		}{
			{"saved mean", out[1].Float64At(c), mu, 1e-12},
			{"saved inv std", out[2].Float64At(c), inv, 1e-12},
			{"running mean", out[3].Float64At(c), m*rm.Float64At(c) + (1-m)*mu, 1e-6},
			{"running var (unbiased)", out[4].Float64At(c), m*rv.Float64At(c) + (1-m)*q/11, 1e-6},
			{"y[0]", out[0].F64()[c*4], (x.F64()[c*4]-mu)*inv*scale.F64()[c] + bias.F64()[c], 1e-12},
		}
		for _, ck := range checks {
			if math.Abs(ck.got-ck.want) > ck.tol {
				t.Errorf("channel %d %s = %v, want %v", c, ck.name, ck.got, ck.want)
			}
		}
	}
	if out[3].DType != tensor.Float32 || out[1].DType != tensor.Float64 {
		t.Errorf("dtypes: running %v (want the statistic's float32), saved %v (want X's float64)", out[3].DType, out[1].DType)
	}
}

// TestGradErrors checks that bad inputs give errors naming the node, not
// panics.
func TestGradErrors(t *testing.T) {
	f := func(shape ...int) *tensor.Tensor { t, _ := tensor.New(tensor.Float32, shape); return t }
	i64 := func(v ...int64) *tensor.Tensor { return tensor.FromInt64(tensor.Shape{len(v)}, v) }
	one := tensor.FromFloat32(tensor.Shape{}, []float32{1})
	for _, tc := range []struct {
		op    string
		attrs ir.Attrs
		nOut  int
		in    []*tensor.Tensor
		want  string
	}{
		{"SumTo", nil, 1, []*tensor.Tensor{f(2, 3), i64(4)}, "does not broadcast"},
		{"SumTo", nil, 1, []*tensor.Tensor{f(2, 3), i64(-1)}, "invalid dim"},
		{"SumTo", nil, 1, []*tensor.Tensor{tensor.FromInt64(tensor.Shape{1}, []int64{1}), i64(1)}, "float32 or float64"},
		{"ConvGradInput", nil, 1, []*tensor.Tensor{f(1, 2, 3, 3), f(2, 1, 3, 3), i64(1, 1, 6, 6)}, "dY shape"},
		{"ConvGradWeight", nil, 2, []*tensor.Tensor{f(1, 2, 3, 3), f(1, 3, 5, 5), f(2, 1, 3, 3)}, "channels"},
		{"MatMulGrad", nil, 2, []*tensor.Tensor{f(2, 2), f(2, 3), f(3, 4)}, "dY shape"},
		{"MaxPoolGrad", nil, 1, []*tensor.Tensor{f(1, 1, 2, 2), f(1, 1, 2, 2), i64(1, 1, 4, 4)}, "Indices"},
		{"AveragePoolGrad", ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2)}, 1, []*tensor.Tensor{f(1, 1, 3, 3), i64(1, 1, 5, 5)}, "dY shape"},
		{"BatchNormGrad", nil, 3, []*tensor.Tensor{f(2, 3), f(2, 3), f(2), f(3), f(3)}, "channels"},
		{"LayerNormGrad", nil, 3, []*tensor.Tensor{f(2, 3), f(2, 3), f(3), f(3), f(2)}, "elements"},
		{"SoftmaxGrad", nil, 1, []*tensor.Tensor{f(2, 3), f(3, 2)}, "differs"},
		{"CrossEntropy", nil, 1, []*tensor.Tensor{f(2, 3), i64(0, 3)}, "outside"},
		{"CrossEntropy", nil, 1, []*tensor.Tensor{f(2, 3), i64(0)}, "labels shape"},
		{"CrossEntropyGrad", nil, 1, []*tensor.Tensor{f(2), f(2, 3), i64(0, 1)}, "scalar"},
		{"KLDiv", ir.Attrs{ir.FloatAttr("temperature", 0)}, 1, []*tensor.Tensor{f(2, 3), f(2, 3)}, "temperature"},
		{"MSEGrad", nil, 2, []*tensor.Tensor{one, f(2, 3), f(3, 2)}, "differs"},
		{"ConcatGrad", ir.Attrs{ir.IntAttr("axis", 1)}, 2, []*tensor.Tensor{f(2, 5), i64(2, 2), i64(2, 2)}, "sum to"},
		{"SliceGrad", nil, 1, []*tensor.Tensor{f(2, 2), i64(4, 4), i64(0), i64(3)}, "slice shape"},
		{"DropoutTrain", ir.Attrs{ir.FloatAttr("ratio", 1)}, 2, []*tensor.Tensor{f(2), i64(1)}, "ratio"},
		{"DropoutTrain", nil, 2, []*tensor.Tensor{f(2), f(1)}, "seed"},
		{"ReduceGrad", ir.Attrs{ir.IntsAttr("axes", 1)}, 1, []*tensor.Tensor{f(2, 3), i64(2, 3)}, "dY shape"},
		{"ReluGrad", nil, 1, []*tensor.Tensor{f(2, 3), f(2, 2)}, "differs"},
	} {
		want := make([]bool, tc.nOut)
		for i := range want {
			want[i] = true
		}
		_, err := gradRun(tc.op, tc.attrs, want, 2, tc.in...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"n"`) {
			t.Errorf("%s: err = %v, want one naming the node and containing %q", tc.op, err, tc.want)
		}
	}
}

// TestGradBatchNormTrainF32 checks the float32 BatchNormTrain (the tier's
// vector kernels) against the float64 loop on planes with odd sizes, on
// every tier, and that the result does not depend on the thread count.
func TestGradBatchNormTrainF32(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	for _, shape := range [][]int{{5, 3, 7, 9}, {2, 4, 33}, {64, 2, 1, 1}} {
		x := gradRand(r, tensor.Float32, shape...)
		for i := range x.F32() {
			x.F32()[i] = 3 + 2*x.F32()[i] // a mean away from 0
		}
		ch := shape[1]
		scale, bias := gradRand(r, tensor.Float32, ch), gradRand(r, tensor.Float32, ch)
		rm, rv := gradRand(r, tensor.Float32, ch), gradRand(r, tensor.Float32, ch)
		for i := range rv.F32() {
			rv.F32()[i] += 2
		}
		want := []bool{true, true, true, true, true}
		ref, err := gradRun("BatchNormTrain", nil, want, 1, gradTo64(x), scale, bias, rm, rv)
		if err != nil {
			t.Fatal(err)
		}
		for _, tier := range gradTiers() {
			var prev []*tensor.Tensor
			for _, th := range []int{1, 3} {
				got, err := gradRunTier(tier, "BatchNormTrain", nil, want, th, x, scale, bias, rm, rv)
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					gradClose(t, fmt.Sprintf("%v %v output %d", shape, tier, i), got[i], ref[i], 1e-5)
				}
				if prev != nil {
					gradBitEqual(t, "BatchNormTrain", prev, got)
				}
				prev = got
			}
		}
	}
}

// TestGradMaxPoolX checks MaxPoolGradX (from X and Y) against MaxPoolGrad
// (from the forward Indices) bit for bit, with ties, NaN, -Inf windows and
// both forward paths (with Indices, and the fast path without).
func TestGradMaxPoolX(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	cases := []struct {
		name  string
		x     []int
		attrs ir.Attrs
	}{
		{"2x2s2", []int{2, 3, 8, 6}, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2)}},
		{"3x3s2-pads-ceil", []int{1, 2, 7, 6}, ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2),
			ir.IntsAttr("pads", 1, 1, 1, 0), ir.IntAttr("ceil_mode", 1)}},
		{"dil", []int{2, 2, 7, 7}, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 3), ir.IntsAttr("dilations", 2, 1)}},
		{"1d", []int{2, 3, 11}, ir.Attrs{ir.IntsAttr("kernel_shape", 3), ir.IntsAttr("strides", 2), ir.IntsAttr("pads", 1, 1)}},
		{"3d", []int{1, 2, 4, 5, 4}, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2, 2), ir.IntsAttr("strides", 1, 2, 2)}},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
			x := gradRand(r, dt, tc.x...)
			for i := 0; i < x.Len(); i++ {
				v := math.Round(x.Float64At(i) * 3) // few levels: many ties
				switch i % 37 {
				case 5:
					v = math.NaN()
				case 11, 12, 13, 14, 15:
					v = math.Inf(-1)
				}
				switch d := x.Data.(type) {
				case []float32:
					d[i] = float32(v)
				case []float64:
					d[i] = v
				}
			}
			fw, err := shapeRun("MaxPool", 12, tc.attrs, 2, 1, x)
			if err != nil {
				t.Fatal(err)
			}
			fast, err := shapeRun("MaxPool", 12, tc.attrs, 1, 1, x)
			if err != nil {
				t.Fatal(err)
			}
			dy := gradRand(r, dt, fw[0].Shape...)
			want, err := gradRun("MaxPoolGrad", nil, []bool{true}, 1, dy, fw[1], gradShapeT(x.Shape))
			if err != nil {
				t.Fatal(err)
			}
			for _, y := range []*tensor.Tensor{fw[0], fast[0]} {
				for _, th := range []int{1, 3} {
					got, err := gradRun("MaxPoolGradX", tc.attrs, []bool{true}, th, dy, x, y)
					if err != nil {
						t.Fatal(err)
					}
					gradBitEqual(t, tc.name+" "+dt.String(), want, got)
				}
			}
		}
	}
}

// TestGradBatchNormGradF32 checks the float32 BatchNormGrad (the tier's
// vector kernels) against the float64 loop, with batch and frozen
// statistics, dX omitted or not, on every tier and thread count.
func TestGradBatchNormGradF32(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, shape := range [][]int{{5, 3, 7, 9}, {2, 4, 33}, {64, 2, 1, 1}} {
		ch := shape[1]
		x := gradRand(r, tensor.Float32, shape...)
		for i := range x.F32() {
			x.F32()[i] = 3 + 2*x.F32()[i]
		}
		dy := gradRand(r, tensor.Float32, shape...)
		scale, bias := gradRand(r, tensor.Float32, ch), gradRand(r, tensor.Float32, ch)
		rm, rv := gradRand(r, tensor.Float32, ch), gradRand(r, tensor.Float32, ch)
		for i := range rv.F32() {
			rv.F32()[i] += 2
		}
		st, err := gradRun("BatchNormTrain", nil, []bool{true, true, true}, 1, x, scale, bias, rm, rv)
		if err != nil {
			t.Fatal(err)
		}
		for _, frozen := range []int64{0, 1} {
			mean, stat := st[1], st[2]
			if frozen == 1 {
				mean, stat = rm, rv
			}
			attrs := ir.Attrs{ir.IntAttr("frozen", frozen)}
			for _, want := range [][]bool{{true, true, true}, {false, true, true}} {
				ref, err := gradRun("BatchNormGrad", attrs, want, 1, gradTo64(dy), gradTo64(x), scale, mean, stat)
				if err != nil {
					t.Fatal(err)
				}
				for _, tier := range gradTiers() {
					var prev []*tensor.Tensor
					for _, th := range []int{1, 3} {
						got, err := gradRunTier(tier, "BatchNormGrad", attrs, want, th, dy, x, scale, mean, stat)
						if err != nil {
							t.Fatal(err)
						}
						for i, w := range want {
							if w {
								gradClose(t, fmt.Sprintf("%v frozen=%d %v output %d", shape, frozen, tier, i), got[i], ref[i], 2e-5)
							}
						}
						if prev != nil {
							gradBitEqual(t, "BatchNormGrad", prev, got)
						}
						prev = got
					}
				}
			}
		}
	}
}
