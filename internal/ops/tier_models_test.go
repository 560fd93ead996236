package ops_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// TestTierModels runs the PyTorch reference models of testdata/models
// through a session at every kernel tier this machine has (Options.Kernels,
// and GOSLIM_KERNELS for one of them), checks the outputs against PyTorch's
// and that every Conv, Gemm and MatMul node records a kernel of that tier.
func TestTierModels(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "models")
	models := []string{"lenet5", "resnet8", "mobilenetv2", "mobilenetv3_op13"}
	var tiers []kernel.Tier
	for tr := kernel.TierGeneric; tr <= kernel.TierAVX512; tr++ {
		if tr.Available() {
			tiers = append(tiers, tr)
		}
	}
	for _, name := range models {
		g0, err := onnx.ReadFile(filepath.Join(dir, name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := rewrite.Simplify(g0, infer.NodeEvaluator(nil))
		if err != nil {
			t.Fatal(err)
		}
		x, err := npy.ReadFile(filepath.Join(dir, name+"_input.npy"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := npy.ReadFile(filepath.Join(dir, name+"_output.npy"))
		if err != nil {
			t.Fatal(err)
		}
		for i, tier := range tiers {
			opts := infer.Options{Threads: 1 + i%2, Kernels: tier.String()}
			if i == len(tiers)-1 {
				// The environment variable selects the tier the same way.
				t.Setenv(kernel.EnvTier, tier.String())
				opts.Kernels = ""
			}
			s, err := infer.NewSession(g, opts)
			if err != nil {
				t.Fatalf("%s at %v: %v", name, tier, err)
			}
			if s.Tier() != tier {
				t.Fatalf("%s: session tier %v, want %v", name, s.Tier(), tier)
			}
			for _, k := range s.Kernels() {
				if k.FusedInto >= 0 {
					continue // computed by its group's head, checked there
				}
				switch k.Op {
				case "Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm":
					if !strings.HasPrefix(k.Kernel, tier.String()+".") {
						t.Errorf("%s at %v: node %s runs %q", name, tier, k.Label, k.Kernel)
					}
				}
			}
			out, err := s.RunInputs(context.Background(), []*tensor.Tensor{x})
			if err != nil {
				t.Fatalf("%s at %v: %v", name, tier, err)
			}
			got, ref := out[0].F32(), want.F32()
			if len(got) != len(ref) {
				t.Fatalf("%s at %v: %d outputs, want %d", name, tier, len(got), len(ref))
			}
			for j := range got {
				if d := math.Abs(float64(got[j] - ref[j])); !(d <= 1e-3*(1+math.Abs(float64(ref[j])))) {
					t.Fatalf("%s at %v: output %d = %g, PyTorch %g", name, tier, j, got[j], ref[j])
				}
			}
		}
		t.Setenv(kernel.EnvTier, "")
	}
}
