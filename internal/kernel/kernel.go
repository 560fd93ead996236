// Package kernel defines how goslim's executor finds and calls operator
// implementations: the Kernel signature, the build-time Info a kernel
// builder sees, the run-time Ctx it computes with, CPU tiers, and the Table
// that maps (domain, op) to prioritized entries.
//
// Lookup order: entries for the node's (domain, op) are tried from the
// highest Priority down; an entry is skipped when its Tier exceeds the
// session's tier (or the CPU lacks it), when Accept rejects the node, or
// when its builder returns ErrDecline. Priorities follow gomlx: Generic
// (any dtype) < Typed (one dtype, tuned) < Arch (assembly).
package kernel

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Kernel computes one node. in holds the node's inputs (nil for omitted
// optional inputs); out has one nil slot per node output, which Run fills
// through Ctx.Output or Ctx.Alias.
type Kernel interface {
	Run(c *Ctx, in, out []*tensor.Tensor) error
}

// Func adapts a function to Kernel.
type Func func(c *Ctx, in, out []*tensor.Tensor) error

// Run calls f.
func (f Func) Run(c *Ctx, in, out []*tensor.Tensor) error { return f(c, in, out) }

// Priorities of table entries.
const (
	Generic = 0  // handles every dtype the op allows
	Typed   = 10 // specialized for one dtype or attribute set
	Arch    = 20 // assembly or CPU-feature specific
)

// ErrDecline is returned by a Builder that cannot handle this particular
// node (dtype, attributes); lookup then tries the next entry.
var ErrDecline = errors.New("kernel: declined")

// Info is what a kernel builder knows when the session is compiled.
type Info struct {
	Graph *ir.Graph
	Node  *ir.Node
	// Opset is the imported opset version of the node's domain.
	Opset int64
	// Inputs are the static types of the inputs (zero Type for omitted or
	// unknown), Consts the constant input tensors (nil where not constant).
	Inputs []ir.Type
	Consts []*tensor.Tensor
	// Tier is the highest CPU tier the session may use.
	Tier Tier
}

// Attrs returns the node's attributes.
func (i *Info) Attrs() ir.Attrs { return i.Node.Attrs }

// Errorf formats an error that names the node.
func (i *Info) Errorf(format string, args ...any) error {
	return fmt.Errorf("node %s: %s", i.Node.Label(), fmt.Sprintf(format, args...))
}

// Builder makes a kernel for one node.
type Builder func(info *Info) (Kernel, error)

// Entry is one implementation of an op.
type Entry struct {
	Domain string // "" for ai.onnx
	Op     string
	// Name identifies the implementation in per-node kernel records
	// ("generic", "fp32.im2col", "avx512.gemm", ...).
	Name     string
	Priority int
	// Tier is the CPU tier the implementation needs.
	Tier Tier
	// MinOpset and MaxOpset bound the opset versions of the op's domain this
	// entry implements (0 = no bound).
	MinOpset, MaxOpset int64
	Build              Builder
}

type key struct{ domain, op string }

// Table maps (domain, op) to entries. Build one with a constructor such as
// ops.NewTable; tables are not shared mutable state.
type Table struct {
	entries map[key][]Entry
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{entries: map[key][]Entry{}} }

// Add registers an entry. Entries of equal priority keep insertion order.
func (t *Table) Add(e Entry) {
	if e.Domain == "ai.onnx" {
		e.Domain = ""
	}
	k := key{e.Domain, e.Op}
	es := append(t.entries[k], e)
	sort.SliceStable(es, func(a, b int) bool {
		if es[a].Priority != es[b].Priority {
			return es[a].Priority > es[b].Priority
		}
		return es[a].Tier > es[b].Tier
	})
	t.entries[k] = es
}

// Has reports whether any entry exists for the op.
func (t *Table) Has(domain, op string) bool {
	if domain == "ai.onnx" {
		domain = ""
	}
	return len(t.entries[key{domain, op}]) > 0
}

// Ops lists the registered ops as "op" or "domain.op", sorted.
func (t *Table) Ops() []string {
	var out []string
	for k := range t.entries {
		if k.domain == "" {
			out = append(out, k.op)
		} else {
			out = append(out, k.domain+"."+k.op)
		}
	}
	sort.Strings(out)
	return out
}

// Entries returns the entries of an op, highest priority first.
func (t *Table) Entries(domain, op string) []Entry {
	return t.entries[key{domain, op}]
}

// Lookup builds the best kernel for the node described by info.
func (t *Table) Lookup(info *Info) (Kernel, Entry, error) {
	n := info.Node
	domain := n.Domain
	if domain == "ai.onnx" {
		domain = ""
	}
	es := t.entries[key{domain, n.Op}]
	if len(es) == 0 {
		if domain == "" {
			return nil, Entry{}, fmt.Errorf("node %s: unsupported op %s", n.Label(), n.Op)
		}
		return nil, Entry{}, fmt.Errorf("node %s: unsupported op %s in domain %q", n.Label(), n.Op, domain)
	}
	var firstErr error
	opsetOK := false
	for _, e := range es {
		if (e.MinOpset > 0 && info.Opset < e.MinOpset) || (e.MaxOpset > 0 && info.Opset > e.MaxOpset) {
			continue
		}
		opsetOK = true
		if e.Tier > info.Tier || !e.Tier.Available() {
			continue
		}
		k, err := e.Build(info)
		if errors.Is(err, ErrDecline) {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return k, e, nil
	}
	if firstErr != nil {
		return nil, Entry{}, firstErr
	}
	if !opsetOK {
		return nil, Entry{}, fmt.Errorf("node %s: op %s is not supported at opset %d", n.Label(), n.Op, info.Opset)
	}
	return nil, Entry{}, fmt.Errorf("node %s: no %s kernel accepts this node at tier %v", n.Label(), n.Op, info.Tier)
}

// Tier is a CPU capability level. Higher tiers include the lower ones'
// requirements where hardware allows (an AVX-512 machine also runs AVX2).
type Tier int

// CPU tiers, lowest first.
const (
	TierGeneric Tier = iota // pure Go
	TierAVX2                // AVX2 + FMA
	TierAVX512              // AVX-512 F/BW/DQ/VL
	TierVNNI                // AVX-512 VNNI (and AVX-VNNI)
	TierAMX                 // AMX tiles with int8
)

var tierNames = []string{"generic", "avx2", "avx512", "vnni", "amx"}

// String returns the tier's name as used by GOSLIM_KERNELS.
func (t Tier) String() string {
	if t >= 0 && int(t) < len(tierNames) {
		return tierNames[t]
	}
	return fmt.Sprintf("tier(%d)", int(t))
}

// ParseTier parses a tier name ("generic", "avx2", "avx512", "vnni", "amx").
func ParseTier(s string) (Tier, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range tierNames {
		if s == n {
			return Tier(i), nil
		}
	}
	return 0, fmt.Errorf("kernel: unknown tier %q (want one of %s)", s, strings.Join(tierNames, ", "))
}

// EnvTier is the environment variable that overrides the kernel tier.
const EnvTier = "GOSLIM_KERNELS"

// Best returns the highest tier this CPU supports (TierGeneric in noasm
// builds).
func Best() Tier {
	best := TierGeneric
	for t := TierGeneric; t <= TierAMX; t++ {
		if t.Available() {
			best = t
		}
	}
	return best
}

// Resolve picks the session tier: want if set (> 0 or explicitly generic via
// explicit=true), else GOSLIM_KERNELS, else Best. Asking for a tier the CPU
// lacks is an error.
func Resolve(want Tier, explicit bool) (Tier, error) {
	if !explicit {
		if env := os.Getenv(EnvTier); env != "" {
			t, err := ParseTier(env)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", EnvTier, err)
			}
			want, explicit = t, true
		}
	}
	if !explicit {
		return Best(), nil
	}
	if !want.Available() {
		return 0, fmt.Errorf("kernel: tier %v is not available on this CPU or build (best is %v)", want, Best())
	}
	return want, nil
}

// Feature is a CPU feature and whether this machine has it.
type Feature struct {
	Name string `json:"name"`
	Has  bool   `json:"has"`
}
