package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/zoo"
	"github.com/spf13/cobra"
)

// hwReport is what `goslim hw --json` prints.
type hwReport struct {
	Arch     string           `json:"arch"`
	CPUs     int              `json:"cpus"`
	Features []kernel.Feature `json:"features"`
	Tiers    map[string]bool  `json:"tiers"`
	Best     string           `json:"best_tier"`
	Selected string           `json:"selected_tier"`
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
			r := hwReport{Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Features: kernel.CPUFeatures(),
				Tiers: map[string]bool{}, Best: kernel.Best().String(), Kernels: map[string][]string{}}
			for t := kernel.TierGeneric; t <= kernel.TierAMX; t++ {
				r.Tiers[t.String()] = t.Available()
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
			fmt.Fprintf(stdout, "%s, %d CPUs\nfeatures:", r.Arch, r.CPUs)
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
			fmt.Fprintf(stdout, "\nbest tier %s, selected %s (override with --kernels or %s)\nkernels on the reference models:\n", r.Best, r.Selected, kernel.EnvTier)
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

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
