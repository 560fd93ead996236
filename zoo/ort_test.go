package zoo

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// TestZooORT checks that every architecture, with non-trivial BatchNorm
// statistics, gives the same logits in ONNX Runtime as in goslim.
func TestZooORT(t *testing.T) {
	oracle := ortoracle.Require(t)
	specs := []struct {
		spec string
		o    Options
	}{
		{"lenet", Options{Seed: 1}},
		{"mlp", Options{Seed: 1}},
		{"resnet8", Options{Seed: 1, InC: 1, InH: 28, InW: 28}},
		{"resnet20:0.5", Options{Seed: 1}},
		{"mobilenetv2:0.5", Options{Seed: 1}},
		{"mobilenetv2:0.25", Options{Seed: 1, InH: 64, InW: 64}},
		{"mobilenetv3s", Options{Seed: 1, InC: 1, InH: 28, InW: 28}},
		{"mobilenetv3s:0.5", Options{Seed: 1, InH: 64, InW: 64}},
	}
	var cases []ortoracle.Case
	var want []*tensor.Tensor
	rng := rand.New(rand.NewPCG(7, 7))
	for _, s := range specs {
		g, err := Build(s.spec, s.o)
		if err != nil {
			t.Fatal(err)
		}
		// Perturb BatchNorm statistics and affine parameters so that BN is
		// not the identity.
		for i := range g.Values {
			v := &g.Values[i]
			if v.Const == nil || v.Const.Len() < 2 {
				continue
			}
			name := v.Name
			perturb := func(lo, hi float64) {
				c := v.Const.Clone()
				for j := range c.F32() {
					c.F32()[j] = float32(lo + (hi-lo)*rng.Float64())
				}
				v.Const = c
			}
			switch {
			case strings.HasSuffix(name, ".running_var"):
				perturb(0.5, 2)
			case strings.HasSuffix(name, ".running_mean"), strings.HasSuffix(name, ".bn.bias"):
				perturb(-0.2, 0.2)
			case strings.HasSuffix(name, ".bn.weight"):
				perturb(0.5, 1.5)
			}
		}
		in := g.Values[g.Inputs[0]].Type.Shape
		shape := tensor.Shape{2, int(in[1].Size), int(in[2].Size), int(in[3].Size)}
		x := tensor.FromFloat32(shape, make([]float32, shape.Size()))
		for i := range x.F32() {
			x.F32()[i] = float32(rng.NormFloat64())
		}
		sess, err := infer.NewSession(g, infer.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.RunInputs(context.Background(), []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := onnx.Encode(&buf, g); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, ortoracle.Case{Model: buf.Bytes(), Feeds: map[string]*tensor.Tensor{"input": x}})
		want = append(want, out[0])
	}
	res, err := oracle.RunAll(cases)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("%s: ORT: %v", specs[i].spec, r.Err)
			continue
		}
		got := r.Outputs["logits"]
		var worst float64
		for j, v := range got.F32() {
			w := want[i].F32()[j]
			worst = max(worst, math.Abs(float64(v-w))/(1+math.Abs(float64(w))))
		}
		if worst > 1e-4 {
			t.Errorf("%s: goslim and ORT differ by %.3g (relative)", specs[i].spec, worst)
		}
		t.Logf("%s: max relative difference %.3g", specs[i].spec, worst)
	}
}
