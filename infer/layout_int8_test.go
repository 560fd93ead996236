package infer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/cputime"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// layouts returns, by label, the internal op of every lowered node that
// runs a step (Fused) followed by its layout, the suffix of its Kernel
// text (" NHWC", " NCHW->NHWC", " NHWC->NCHW").
func layouts(s *infer.Session) map[string]string {
	got := map[string]string{}
	for _, r := range s.Kernels() {
		if r.FusedInto < 0 && r.Fused != "" {
			got[r.Label] = r.Fused
			for _, suf := range []string{" NHWC->NCHW", " NCHW->NHWC", " NHWC"} {
				if strings.HasSuffix(r.Kernel, suf) {
					got[r.Label] += suf
					break
				}
			}
		}
	}
	return got
}

// wantLayouts gives the expected record of each lowered node of a zoo
// model, from the rules of the layout pass.
func wantLayouts(t *testing.T, spec string, s *infer.Session) map[string]string {
	t.Helper()
	want := map[string]string{}
	switch {
	case spec == "lenet":
		// pool2's output feeds Flatten (NCHW): pool2 pools NHWC data
		// and writes NCHW.
		want = map[string]string{
			`"conv1" (Conv)`: "goslim.QLinearConv NCHW->NHWC", `"pool1" (MaxPool)`: "int8 MaxPool NHWC",
			`"conv2" (Conv)`: "goslim.QLinearConv NHWC", `"pool2" (MaxPool)`: "int8 MaxPool NHWC->NCHW",
			`"flatten" (Flatten)`: "int8 Flatten", `"fc1" (Gemm)`: "goslim.QGemm", `"fc2" (Gemm)`: "goslim.QGemm",
			`"fc3" (Gemm)`: "goslim.QGemm",
		}
	case spec == "mlp":
		for _, r := range s.Kernels() {
			if r.Op == "Gemm" {
				want[r.Label] = "goslim.QGemm"
			}
		}
	default:
		// ResNet and MobileNetV2: everything from the first Conv's output
		// to the GlobalAveragePool's input is NHWC.
		first := true
		for _, r := range s.Kernels() {
			if r.FusedInto >= 0 {
				continue
			}
			switch r.Op {
			case "Conv":
				want[r.Label] = "goslim.QLinearConv NHWC"
				if first {
					want[r.Label] = "goslim.QLinearConv NCHW->NHWC"
					first = false
				}
			case "Add":
				want[r.Label] = "goslim.QLinearAdd NHWC"
			case "GlobalAveragePool":
				want[r.Label] = "goslim.QLinearGlobalAveragePool NHWC->NCHW"
			case "Flatten":
				want[r.Label] = "int8 Flatten"
			case "Gemm":
				want[r.Label] = "goslim.QGemm"
			}
		}
	}
	return want
}

func newSession(t testing.TB, g *ir.Graph, o infer.Options) *infer.Session {
	t.Helper()
	s, err := infer.NewSession(g, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameBits fails unless a and b hold the same values bit for bit.
func sameBits(t *testing.T, what string, a, b *tensor.Tensor) {
	t.Helper()
	if !a.Shape.Equal(b.Shape) || a.DType != b.DType {
		t.Fatalf("%s: %v %v vs %v %v", what, a.DType, a.Shape, b.DType, b.Shape)
	}
	for i := range a.Len() {
		if x, y := a.Float64At(i), b.Float64At(i); x != y {
			t.Fatalf("%s: element %d of %d: %g vs %g", what, i, a.Len(), x, y)
		}
	}
}

// TestInt8LayoutDecision checks which values the layout pass stores NHWC
// in the zoo models (through the kernel records), with reference kernels
// that honour the layout attributes, and that the outputs are those of
// the NCHW lowering bit for bit.
func TestInt8LayoutDecision(t *testing.T) {
	for _, z := range int8Zoo {
		t.Run(z.spec, func(t *testing.T) {
			m := quantizeZoo(t, z.spec, z.o, nil)
			s := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable()})
			got := layouts(s)
			want := wantLayouts(t, z.spec, s)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			nchw := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable(), NoChannelsLast: true})
			for k, v := range layouts(nchw) {
				if strings.Contains(v, "NHWC") {
					t.Errorf("NoChannelsLast: %s runs as %q", k, v)
				}
			}
			for _, batch := range []int{1, 3} {
				x := randImages(uint64(20+batch), batch, m.in)
				sameBits(t, fmt.Sprintf("batch %d", batch), run1(t, nchw, x), run1(t, s, x))
			}
		})
	}
}

// TestInt8LayoutProtected keeps the output of ResNet-8's first residual
// Add: it stays NCHW, so do the Add's inputs (one layout per Add), which
// demotes the stem's output; the rest is unchanged. The kept value and
// the outputs equal the NCHW lowering's.
func TestInt8LayoutProtected(t *testing.T) {
	m := quantizeZoo(t, "resnet8", zoo.Options{Seed: 3, InC: 3, InH: 32, InW: 32}, nil)
	var kept ir.ValueID = ir.NoValue
	cons := m.g.Consumers()
	for _, n := range m.g.Nodes {
		if n.Name == "layer1.0.add" {
			v := n.Outputs[0]
			for r := &m.g.Nodes[cons[v][0]]; ; r = &m.g.Nodes[cons[v][0]] {
				v = r.Outputs[0]
				if r.Op == "QuantizeLinear" {
					break
				}
			}
			kept = v
		}
	}
	if kept == ir.NoValue || m.g.Values[kept].Type.DType == tensor.Float32 {
		t.Fatal("no quantized output of layer1.0.add")
	}
	s := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable(), Keep: []ir.ValueID{kept}})
	got := layouts(s)
	want := map[string]string{
		`"stem.conv" (Conv)`:         "goslim.QLinearConv",
		`"layer1.0.conv1" (Conv)`:    "goslim.QLinearConv NCHW->NHWC",
		`"layer1.0.conv2" (Conv)`:    "goslim.QLinearConv NHWC->NCHW",
		`"layer1.0.add" (Add)`:       "goslim.QLinearAdd",
		`"layer2.0.conv1" (Conv)`:    "goslim.QLinearConv NCHW->NHWC",
		`"layer2.0.shortcut" (Conv)`: "goslim.QLinearConv NCHW->NHWC",
		`"layer2.0.conv2" (Conv)`:    "goslim.QLinearConv NHWC",
		`"layer2.0.add" (Add)`:       "goslim.QLinearAdd NHWC",
		`"pool" (GlobalAveragePool)`: "goslim.QLinearGlobalAveragePool NHWC->NCHW",
		`"layer3.0.shortcut" (Conv)`: "goslim.QLinearConv NHWC",
		`"layer3.0.conv2" (Conv)`:    "goslim.QLinearConv NHWC",
		`"layer3.0.add" (Add)`:       "goslim.QLinearAdd NHWC",
		`"fc" (Gemm)`:                "goslim.QGemm",
		`"flatten" (Flatten)`:        "int8 Flatten",
		`"layer3.0.conv1" (Conv)`:    "goslim.QLinearConv NHWC",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	ref := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable(), Keep: []ir.ValueID{kept}, NoChannelsLast: true})
	x := randImages(31, 2, m.in)
	sameBits(t, "output", run1(t, ref, x), run1(t, s, x))
	sameBits(t, "kept value", ref.Value(kept), s.Value(kept))
}

// TestInt8LayoutSwitch checks GOSLIM_INT8=nchw.
func TestInt8LayoutSwitch(t *testing.T) {
	m := quantizeZoo(t, "lenet", zoo.Options{Seed: 3}, nil)
	t.Setenv(infer.Int8EnvVar, "nchw")
	s := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable()})
	n, _ := lowered(s)
	if n < 8 {
		t.Errorf("%s=nchw: %d nodes lowered, want 8", infer.Int8EnvVar, n)
	}
	for k, v := range layouts(s) {
		if strings.Contains(v, "NHWC") {
			t.Errorf("%s=nchw: %s runs as %q", infer.Int8EnvVar, k, v)
		}
	}
}

// TestInt8LayoutKernels compares, with the table's own integer kernels,
// the channels-last lowering with the NCHW lowering: same outputs bit for
// bit on the zoo models at batch 1 and 3, on every tier this CPU has, with
// 1 and 2 threads. Which nodes run NHWC depends on which kernels take the
// layout attributes (logged).
func TestInt8LayoutKernels(t *testing.T) {
	for _, z := range int8Zoo {
		t.Run(z.spec, func(t *testing.T) {
			m := quantizeZoo(t, z.spec, z.o, nil)
			for _, tier := range []string{"generic", "avx2", "avx512", "vnni", "amx"} {
				if tr, _ := kernel.ParseTier(tier); !tr.Available() {
					continue
				}
				for _, threads := range []int{1, 2} {
					s := newSession(t, m.g, infer.Options{Threads: threads, Kernels: tier})
					ref := newSession(t, m.g, infer.Options{Threads: threads, Kernels: tier, NoChannelsLast: true})
					nhwc := 0
					for _, v := range layouts(s) {
						if strings.Contains(v, "NHWC") {
							nhwc++
						}
					}
					if threads == 1 {
						t.Logf("%s tier %s: %d nodes read or write NHWC", z.spec, tier, nhwc)
					}
					for _, batch := range []int{1, 3} {
						x := randImages(uint64(40+batch), batch, m.in)
						sameBits(t, fmt.Sprintf("%s tier %s threads %d batch %d", z.spec, tier, threads, batch),
							run1(t, ref, x), run1(t, s, x))
					}
				}
			}
		})
	}
}

// broadcastModel has an Add that broadcasts a [N,C,1,1] value over a
// [N,C,H,W] one (it stays NCHW, so does the Conv output it reads) and two
// Convs in a row after it (the value between them is NHWC).
func broadcastModel() *ir.Graph {
	r := rand.New(rand.NewPCG(21, 22))
	param := func(shape ...int) *tensor.Tensor {
		sh := tensor.Shape(shape)
		d := make([]float32, sh.Size())
		for i := range d {
			d[i] = r.Float32() - 0.5
		}
		return tensor.FromFloat32(sh, d)
	}
	b := ir.NewBuilder("broadcast", 13)
	x := b.Input("input", tensor.Float32, -1, 3, 8, 8)
	conv := func(name string, in ir.ValueID, c, m int) ir.ValueID {
		return b.Op("Conv", name, []ir.ValueID{in, b.Param(name+".w", param(m, c, 3, 3)), b.Param(name+".b", param(m))},
			ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntsAttr("kernel_shape", 3, 3))
	}
	a := b.Op("Relu", "relu1", []ir.ValueID{conv("conv1", x, 3, 8)})
	g := b.Op("GlobalAveragePool", "gap", []ir.ValueID{a})
	s := b.Op("Add", "add", []ir.ValueID{a, g})
	c2 := b.Op("Relu", "relu2", []ir.ValueID{conv("conv2", s, 8, 8)})
	c3 := conv("conv3", c2, 8, 4)
	b.Output(c3)
	return b.G
}

// TestInt8LayoutBroadcast checks that a broadcasting Add keeps its
// inputs NCHW, and that the model's outputs do not depend on the layout.
func TestInt8LayoutBroadcast(t *testing.T) {
	m := quantizeGraph(t, "broadcast", broadcastModel(), nil)
	s := newSession(t, m.g, infer.Options{Threads: 1, Table: refTable()})
	got := layouts(s)
	want := map[string]string{
		`"conv1" (Conv)`: "goslim.QLinearConv", `"gap" (GlobalAveragePool)`: "goslim.QLinearGlobalAveragePool",
		`"add" (Add)`: "goslim.QLinearAdd", `"conv2" (Conv)`: "goslim.QLinearConv NCHW->NHWC",
		`"conv3" (Conv)`: "goslim.QLinearConv NHWC->NCHW",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	for _, table := range []*kernel.Table{refTable(), nil} {
		a := newSession(t, m.g, infer.Options{Threads: 1, Table: table})
		b := newSession(t, m.g, infer.Options{Threads: 1, Table: table, NoChannelsLast: true})
		x := randImages(5, 3, m.in)
		sameBits(t, "output", run1(t, b, x), run1(t, a, x))
	}
}

// BenchmarkInt8Layout runs the INT8 lowering of LeNet-5, ResNet-8
// (3x32x32) and MobileNetV2-0.5 (3x96x96), quantized by goslim ptq, at
// batch 32 on one thread, with 8-bit activations NCHW (NoChannelsLast)
// and channels-last, and reports the thread CPU time per run
// (cpu-ms/op; wall time on a shared machine is noisy):
//
//	go test ./infer -run '^$' -bench Int8Layout -cpu 1 -count 3
func BenchmarkInt8Layout(b *testing.B) {
	models := []struct {
		spec string
		o    zoo.Options
	}{
		{"lenet", zoo.Options{Seed: 3}},
		{"resnet8", zoo.Options{Seed: 3, InC: 3, InH: 32, InW: 32}},
		{"mobilenetv2:0.5", zoo.Options{Seed: 3, InC: 3, InH: 96, InW: 96}},
	}
	for _, z := range models {
		m := quantizeZoo(b, z.spec, z.o, nil)
		in := []*tensor.Tensor{randImages(7, 32, m.in)}
		for _, layout := range []string{"nchw", "nhwc"} {
			b.Run(z.spec+"/"+layout, func(b *testing.B) {
				s := newSession(b, m.g, infer.Options{Threads: 1, NoChannelsLast: layout == "nchw"})
				out := []*tensor.Tensor{{}}
				ctx := context.Background()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				if err := s.RunInto(ctx, in, out); err != nil {
					b.Fatal(err)
				}
				c0, ok := cputime.Thread()
				b.ResetTimer()
				for b.Loop() {
					if err := s.RunInto(ctx, in, out); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if c1, _ := cputime.Thread(); ok {
					b.ReportMetric(float64(c1-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
				}
			})
		}
	}
}
