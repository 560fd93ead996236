package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/int8"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/zoo"
	"github.com/spf13/cobra"
)

// amxReport says whether AMX can run: the CPU's CPUID bits and the OS's
// answer to the tile-state permission request.
type amxReport struct {
	CPU     bool   `json:"cpu"`
	Granted bool   `json:"os_granted"`
	Reason  string `json:"reason,omitempty"`
}

// int8Note says what each INT8 kernel means for speed (GEMM GOP/s ratios
// measured on a Zen 5 VM, 1 thread, M=N=K=1024; docs/performance.md,
// "INT8 GEMM kernels").
func int8Note(k int8.Kernel) string {
	switch k {
	case int8.KernelGo:
		return "no SIMD integer kernel: INT8 runs in pure Go and will be much slower than FP32 here"
	case int8.KernelAVX2:
		return "AVX2 only (VPMADDUBSW/VPMADDWD): INT8 GEMM about 1.5x the FP32 AVX2 GEMM on full-range weights, about 2x with |w| <= 64"
	case int8.KernelAVXVNNI:
		return "AVX-VNNI (ymm): INT8 GEMM about 4x the FP32 AVX2 GEMM"
	case int8.KernelVNNI:
		return "AVX-512 VNNI: INT8 GEMM about 3x the FP32 AVX-512 GEMM"
	case int8.KernelAMX:
		return "AMX tiles: expected several times the AVX-512 VNNI kernel on large products (not yet measured: no AMX machine was available)"
	}
	return ""
}

// hwReport is what `goslim hw --json` prints.
type hwReport struct {
	Arch     string           `json:"arch"`
	Model    string           `json:"cpu_model,omitempty"`
	CPUs     int              `json:"cpus"`
	Features []kernel.Feature `json:"features"`
	Tiers    map[string]bool  `json:"tiers"`
	Best     string           `json:"best_tier"`
	Selected string           `json:"selected_tier"`
	AMX      amxReport        `json:"amx"`
	// FP32GEMM and INT8GEMM name the GEMM kernels of the selected tier;
	// INT8Kernels lists every INT8 kernel this machine can run and
	// INT8ByTier the one each tier picks.
	FP32GEMM    string            `json:"fp32_gemm"`
	INT8GEMM    string            `json:"int8_gemm"`
	INT8Kernels []string          `json:"int8_kernels"`
	INT8ByTier  map[string]string `json:"int8_by_tier"`
	INT8Note    string            `json:"int8_note"`
	// Kernels maps op to the kernel that runs it on a built-in reference
	// model (LeNet-5 and a ResNet-8) at the selected tier.
	Kernels map[string][]string `json:"kernels"`
}

func newHWCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	var kernels string
	cmd := &cobra.Command{
		Use:   "hw",
		Short: "Show the CPU features goslim uses and which kernels will run here",
		Example: `  goslim hw
  goslim hw --json
  GOSLIM_KERNELS=avx2 goslim hw`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := hwReport{Arch: runtime.GOARCH, Model: cpuModel(), CPUs: runtime.NumCPU(), Features: kernel.CPUFeatures(),
				Tiers: map[string]bool{}, Best: kernel.Best().String(), Kernels: map[string][]string{}}
			r.INT8ByTier = map[string]string{}
			for t := kernel.TierGeneric; t <= kernel.TierAMX; t++ {
				r.Tiers[t.String()] = t.Available()
				if t.Available() {
					r.INT8ByTier[t.String()] = int8.For(t).String()
				}
			}
			var amxErr error
			r.AMX.CPU, amxErr = kernel.AMXStatus()
			r.AMX.Granted = amxErr == nil
			if amxErr != nil {
				r.AMX.Reason = amxErr.Error()
			}
			for _, k := range int8.Kernels() {
				r.INT8Kernels = append(r.INT8Kernels, k.String())
			}
			for _, arch := range []string{"lenet", "resnet8"} {
				g, err := zoo.Build(arch, zoo.Options{Seed: 1})
				if err != nil {
					return err
				}
				s, err := infer.NewSession(g, infer.Options{Threads: 1, Kernels: kernels})
				if err != nil {
					return err
				}
				r.Selected = s.Tier().String()
				r.FP32GEMM = fp32.For(s.Tier()).Name()
				k8 := int8.For(s.Tier())
				r.INT8GEMM, r.INT8Note = k8.String(), int8Note(k8)
				for _, k := range s.Kernels() {
					name := k.Kernel
					if strings.HasPrefix(name, "fused into") {
						name = "fused into its producer"
					}
					if !contains(r.Kernels[k.Op], name) {
						r.Kernels[k.Op] = append(r.Kernels[k.Op], name)
					}
				}
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprintf(stdout, "%s, %d CPUs", r.Arch, r.CPUs)
			if r.Model != "" {
				fmt.Fprintf(stdout, ", %s", r.Model)
			}
			fmt.Fprintf(stdout, "\nfeatures:")
			for _, f := range r.Features {
				mark := "-"
				if f.Has {
					mark = "+"
				}
				fmt.Fprintf(stdout, " %s%s", mark, f.Name)
			}
			fmt.Fprintf(stdout, "\ntiers:   ")
			for t := kernel.TierGeneric; t <= kernel.TierAMX; t++ {
				state := "no"
				if r.Tiers[t.String()] {
					state = "yes"
				}
				fmt.Fprintf(stdout, " %s=%s", t, state)
			}
			fmt.Fprintf(stdout, "\nAMX:      cpu=%v os_granted=%v", r.AMX.CPU, r.AMX.Granted)
			if r.AMX.Reason != "" {
				fmt.Fprintf(stdout, " (%s)", r.AMX.Reason)
			}
			fmt.Fprintf(stdout, "\nbest tier %s, selected %s (override with --kernels or %s)\n", r.Best, r.Selected, kernel.EnvTier)
			fmt.Fprintf(stdout, "FP32 GEMM: %s\nINT8 GEMM: %s (available here: %s)\n  %s\nINT8 kernel per tier:", r.FP32GEMM, r.INT8GEMM, strings.Join(r.INT8Kernels, ", "), r.INT8Note)
			for t := kernel.TierGeneric; t <= kernel.TierAMX; t++ {
				if k, ok := r.INT8ByTier[t.String()]; ok {
					fmt.Fprintf(stdout, " %s=%s", t, k)
				}
			}
			fmt.Fprintf(stdout, "\nkernels on the reference models:\n")
			ops := make([]string, 0, len(r.Kernels))
			for op := range r.Kernels {
				ops = append(ops, op)
			}
			sort.Strings(ops)
			for _, op := range ops {
				fmt.Fprintf(stdout, "  %-22s %v\n", op, r.Kernels[op])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&kernels, "kernels", "", "kernel tier to report for: generic, avx2, avx512, vnni, amx")
	return cmd
}

// cpuModel returns the CPU's model name from /proc/cpuinfo ("" when it
// cannot be read, e.g. off Linux).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
