package infer_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// tierGraph chains the vectorized ops: MaxPool, Sigmoid, Add+Relu (fused),
// Softmax, LayerNormalization, GlobalAveragePool.
func tierGraph(t *testing.T) *ir.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(31, 32))
	b := ir.NewBuilder("tiers", 17)
	x := b.Input("x", tensor.Float32, -1, 3, 10, 10)
	p := b.Op("MaxPool", "pool", []ir.ValueID{x}, ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
	s := b.Op("Sigmoid", "sig", []ir.ValueID{p})
	a := b.Op("Add", "add", []ir.ValueID{s, b.Const("c", fuseRand(r, 3, 1, 1))})
	a = b.Op("Relu", "relu", []ir.ValueID{a})
	sm := b.Op("Softmax", "softmax", []ir.ValueID{a}, ir.IntAttr("axis", 1))
	ln := b.Op("LayerNormalization", "ln", []ir.ValueID{sm, b.Const("scale", fuseRand(r, 5)), b.Const("bias", fuseRand(r, 5))})
	b.Output(b.Op("GlobalAveragePool", "gap", []ir.ValueID{ln}))
	return b.G
}

// TestSessionKernelTiers runs the same graph at every tier this machine
// has through Options.Kernels and through GOSLIM_KERNELS: each run's
// records name its tier's entries, and the outputs agree with the generic
// tier.
func TestSessionKernelTiers(t *testing.T) {
	g := tierGraph(t)
	x := fuseRand(rand.New(rand.NewPCG(33, 34)), 2, 3, 10, 10)
	run := func(opts infer.Options) ([]float32, []infer.NodeKernel) {
		t.Helper()
		s, err := infer.NewSession(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		return out[0].F32(), s.Kernels()
	}
	want, recs := run(infer.Options{Threads: 1, Kernels: "generic"})
	for _, r := range recs {
		if r.Tier != kernel.TierGeneric {
			t.Fatalf("generic session ran %+v", r)
		}
	}
	for _, tier := range []kernel.Tier{kernel.TierAVX2, kernel.TierAVX512} {
		if !tier.Available() {
			continue
		}
		for _, viaEnv := range []bool{false, true} {
			opts := infer.Options{Threads: 2}
			if viaEnv {
				t.Setenv(kernel.EnvTier, tier.String())
			} else {
				opts.Kernels = tier.String()
			}
			got, recs := run(opts)
			for _, r := range recs {
				if r.FusedInto < 0 && !strings.HasPrefix(r.Kernel, tier.String()+".") {
					t.Errorf("%v (env %v): %s ran %q", tier, viaEnv, r.Label, r.Kernel)
				}
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
					t.Fatalf("%v: output[%d] = %v, generic %v", tier, i, got[i], want[i])
				}
			}
		}
	}
}
