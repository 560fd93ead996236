package zoo

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// counts returns the number of trainable parameters and of non-trainable
// constant elements (BatchNorm running statistics, Clip bounds).
func counts(g *ir.Graph) (trainable, state int) {
	for _, v := range g.Values {
		if v.Const == nil {
			continue
		}
		if v.Trainable {
			trainable += v.Const.Len()
		} else {
			state += v.Const.Len()
		}
	}
	return
}

func TestBuildShapesAndParams(t *testing.T) {
	mnist := Options{InC: 1, InH: 28, InW: 28}
	cifar := Options{InC: 3, InH: 32, InW: 32}
	tests := []struct {
		spec      string
		o         Options
		trainable int // hand-counted, see comments
		state     int
	}{
		// 150+6 + 2400+16 + 48000+120 + 10080+84 + 840+10
		{"lenet", mnist, 61706, 0},
		// conv1 1*2*25+2, conv2 2*4*25+4, fc1 4*25*30+30, fc2 30*21+21, fc3 21*10+10
		{"lenet:0.25", mnist, 52 + 204 + 3030 + 651 + 220, 0},
		// 784*512+512 + 512*256+256 + 256*10+10
		{"mlp", mnist, 401920 + 131328 + 2570, 0},
		// stem 432+32; stage1 2*2304+2*32; stage2 4608+9216+512+3*64;
		// stage3 18432+36864+2048+3*128; fc 650
		{"resnet8", cifar, 464 + 4672 + 14528 + 57728 + 650, 672},
		{"resnet8", mnist, 144 + 32 + 4672 + 14528 + 57728 + 650, 672},
		// stem 464; stage1 3*4672; stage2 14528 + 2*18560;
		// stage3 57728 + 2*73984; fc 650. BN channels 16+96+224+448.
		{"resnet20", cifar, 464 + 3*4672 + 14528 + 2*18560 + 57728 + 2*73984 + 650, 2 * 784},
		// torchvision mobilenet_v2(num_classes=1000): 3,504,872
		{"mobilenetv2", Options{InC: 3, InH: 224, InW: 224, Classes: 1000}, 3504872, 34112 + 2}, // + Clip bounds
		// torchvision mobilenet_v3_small(num_classes=1000): 2,542,856
		{"mobilenetv3s", Options{InC: 3, InH: 224, InW: 224, Classes: 1000}, 2542856, 0},
	}
	for _, tt := range tests {
		g, err := Build(tt.spec, tt.o)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		tr, st := counts(g)
		if tr != tt.trainable {
			t.Errorf("%s %dx%dx%d: %d trainable parameters, want %d", tt.spec, tt.o.InC, tt.o.InH, tt.o.InW, tr, tt.trainable)
		}
		if tt.state != 0 && st != tt.state {
			t.Errorf("%s: %d state elements, want %d", tt.spec, st, tt.state)
		}
	}
}

// TestRunBatches builds every architecture, runs it at batch 1 and 3 and
// checks the logits' shape, that they are finite, and that each image of
// the batch gives the same logits as alone.
func TestRunBatches(t *testing.T) {
	specs := []struct {
		spec string
		o    Options
	}{
		{"lenet", Options{}},
		{"lenet:0.25", Options{Classes: 7}},
		{"mlp:0.5", Options{InC: 3, InH: 8, InW: 8}},
		{"resnet8", Options{InC: 1, InH: 28, InW: 28}},
		{"resnet8:0.5", Options{}},
		{"resnet20:0.25", Options{InC: 3, InH: 16, InW: 16}},
		{"mobilenetv2:0.35", Options{InC: 1, InH: 28, InW: 28}},
		{"mobilenetv2:0.25", Options{InC: 3, InH: 64, InW: 64}},
		{"mobilenetv3s:0.5", Options{InC: 1, InH: 28, InW: 28}},
		{"mobilenetv3s:0.25", Options{InC: 3, InH: 64, InW: 64}},
	}
	for _, s := range specs {
		t.Run(s.spec, func(t *testing.T) {
			g, err := Build(s.spec, s.o)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := infer.NewSession(g, infer.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			in := g.Values[g.Inputs[0]].Type.Shape
			c, h, w := int(in[1].Size), int(in[2].Size), int(in[3].Size)
			classes := s.o.Classes
			if classes == 0 {
				classes = 10
			}
			rng := rand.New(rand.NewPCG(1, 2))
			x := tensor.FromFloat32(tensor.Shape{3, c, h, w}, make([]float32, 3*c*h*w))
			for i := range x.F32() {
				x.F32()[i] = float32(rng.NormFloat64())
			}
			out3, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			if want := (tensor.Shape{3, classes}); !out3[0].Shape.Equal(want) {
				t.Fatalf("batch 3: logits shape %v, want %v", out3[0].Shape, want)
			}
			for i, v := range out3[0].F32() {
				if v != v || v > 1e30 || v < -1e30 {
					t.Fatalf("logit %d = %v", i, v)
				}
			}
			n := c * h * w
			for b := range 3 {
				x1 := tensor.FromFloat32(tensor.Shape{1, c, h, w}, x.F32()[b*n:(b+1)*n])
				out1, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x1})
				if err != nil {
					t.Fatal(err)
				}
				if !out1[0].Shape.Equal(tensor.Shape{1, classes}) {
					t.Fatalf("batch 1: logits shape %v", out1[0].Shape)
				}
				for j, v := range out1[0].F32() {
					if d := v - out3[0].F32()[b*classes+j]; d > 1e-4 || d < -1e-4 {
						t.Fatalf("image %d logit %d: batch 1 gives %v, batch 3 gives %v", b, j, v, out3[0].F32()[b*classes+j])
					}
				}
			}
		})
	}
}

func TestSeeded(t *testing.T) {
	for _, name := range []string{"lenet", "mlp", "resnet8", "mobilenetv2:0.25", "mobilenetv3s:0.25"} {
		a, _ := Build(name, Options{Seed: 5})
		b, _ := Build(name, Options{Seed: 5})
		c, _ := Build(name, Options{Seed: 6})
		same, differ := true, false
		for i := range a.Values {
			if a.Values[i].Const == nil || !a.Values[i].Trainable || a.Values[i].Const.DType != tensor.Float32 {
				continue
			}
			if !slices.Equal(a.Values[i].Const.F32(), b.Values[i].Const.F32()) {
				same = false
			}
			if !slices.Equal(a.Values[i].Const.F32(), c.Values[i].Const.F32()) {
				differ = true
			}
		}
		if !same || !differ {
			t.Errorf("%s: same seed equal = %v, other seed differs = %v", name, same, differ)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, spec := range []string{"", "vgg", "resnet9", "resnet", "resnet2", "lenet:0", "lenet:-1", "lenet:x", "lenet:1e9", "mlp:NaN"} {
		if _, err := Build(spec, Options{}); err == nil {
			t.Errorf("Build(%q) succeeded", spec)
		}
	}
	if _, err := Build("lenet", Options{InH: 8, InW: 8}); err == nil {
		t.Error("lenet on 8x8 succeeded")
	}
	if _, err := Build("mobilenetv3s", Options{Opset: 13}); err == nil {
		t.Error("mobilenetv3s at opset 13 succeeded")
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec  string
		name  string
		width float64
	}{
		{"lenet", "lenet", 0}, {"LeNet:0.25", "lenet", 0.25}, {"resnet8:2", "resnet8", 2},
		{"mobilenet-v2:0.5", "mobilenetv2", 0.5},
	}
	for _, tt := range tests {
		n, w, err := ParseSpec(tt.spec)
		if err != nil || n != tt.name || w != tt.width {
			t.Errorf("ParseSpec(%q) = %q, %v, %v; want %q, %v", tt.spec, n, w, err, tt.name, tt.width)
		}
	}
}

func TestMakeDivisible(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want int
	}{{16, 16}, {32 * 0.5, 16}, {24 * 0.35, 8}, {1, 8}, {1280, 1280}, {96 * 0.75, 72}, {20, 24}, {36.4, 40}} {
		if got := makeDivisible(tt.v); got != tt.want {
			t.Errorf("makeDivisible(%v) = %d, want %d", tt.v, got, tt.want)
		}
	}
}
