package fp32

import (
	"unsafe"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
)

// arch is one tier's GEMM geometry and micro-kernel. Values are built once
// (archGeneric, and archAVX2/archAVX512 in stubs_amd64.go) and never change.
type arch struct {
	tier kernel.Tier
	name string
	// mr x nr is the register tile: packed A strips hold mr rows, packed B
	// strips nr columns. vl is the vector length: the last B strip of a
	// panel is only as wide as its columns rounded up to vl.
	mr, nr, vl int
	// kc, mc, nc bound the depth, row and column blocks (L1/L2/L3).
	kc, mc, nc int
	// asm selects the micro-kernel: 0 for tileGeneric, else the assembly
	// kernel asmTile runs.
	asm int
	// sigmoid is the Sigmoid loop of the tier's vector kernels (package
	// vec), which the Sigmoid op of the same tier runs: fused epilogues
	// apply it so that they equal the unfused op bit for bit.
	sigmoid func(dst, x []float32)
}

// applyAct applies act to x in place as the separate activation op of
// the tier computes it.
func (a *arch) applyAct(act Act, x []float32) {
	if act.Kind == ActSigmoid && a.sigmoid != nil {
		a.sigmoid(x, x)
		return
	}
	act.Apply(x)
}

// ApplyAct applies act to x in place with the values the activation op of
// this tier computes (Sigmoid through the tier's vector loop; the other
// activations are exact and equal Act.Apply).
func (k Kernels) ApplyAct(act Act, x []float32) { k.arch().applyAct(act, x) }

// tile runs the micro-kernel (the contract of tileGo with mrPack = a.mr
// and w = the strip width for ncols columns). A switch rather than a
// function value keeps ep on the caller's stack.
func (a *arch) tile(k int, pa, pb, c []float32, ldc, mr, ncols int, ep *tileEp) {
	if a.asm == 0 {
		tileGeneric(k, pa, pb, c, ldc, mr, ncols, ep)
		return
	}
	asmTile(a.asm, k, pa, pb, c, ldc, mr, ncols, ep)
}

// archGeneric is the pure-Go tier.
var archGeneric = &arch{tier: kernel.TierGeneric, name: "generic", mr: genericMR, nr: genericNR, vl: genericNR,
	kc: 256, mc: 96, nc: 1024, sigmoid: vec.SigmoidF64}

// Kernels is the float32 kernel set of one CPU tier: the GEMM driver with
// that tier's micro-kernel and packing layout. Get one with For.
type Kernels struct{ a *arch }

// For returns the kernels of the highest tier at most t that this build
// and CPU support (TierGeneric with -tags noasm). Tiers above AVX-512
// (VNNI, AMX) have no float32 kernels of their own and use AVX-512's.
func For(t kernel.Tier) Kernels {
	for _, a := range archs() {
		if a.tier <= t && a.tier.Available() {
			return Kernels{a}
		}
	}
	return Kernels{archGeneric}
}

// Best returns the kernels of the session tier goslim would pick by
// default: GOSLIM_KERNELS when set and valid, else the best this CPU has.
func Best() Kernels {
	t, err := kernel.Resolve(0, false)
	if err != nil {
		t = kernel.Best()
	}
	return For(t)
}

// Tier returns the tier whose code these kernels run.
func (k Kernels) Tier() kernel.Tier { return k.arch().tier }

// Name returns the tier's name ("generic", "avx2", "avx512"), as used in
// per-node kernel records ("avx512.gemm").
func (k Kernels) Name() string { return k.arch().name }

func (k Kernels) arch() *arch {
	if k.a == nil {
		return archGeneric
	}
	return k.a
}

// ptrSlice returns the n floats starting at p.
func ptrSlice(p *float32, n int) []float32 { return unsafe.Slice(p, n) }

// roundUp rounds x up to a multiple of m.
func roundUp(x, m int) int { return (x + m - 1) / m * m }

// blockSize splits total into equal blocks of at most limit (a multiple
// of align, as limit is) and returns the block size. Equal blocks avoid a
// thin last block (a depth of 576 becomes 2 x 288, not 256+256+64).
func blockSize(total, limit, align int) int {
	if total <= limit {
		return max(total, 1)
	}
	n := (total + limit - 1) / limit
	return min(roundUp((total+n-1)/n, align), limit)
}

func (a *arch) kBlock(k int) int { return blockSize(k, a.kc, 8) }
func (a *arch) mBlock(m int) int { return blockSize(m, a.mc, a.mr) }
func (a *arch) nBlock(n int) int { return blockSize(n, a.nc, a.nr) }

// stripWidth returns the packed width of a B strip with cols columns.
func (a *arch) stripWidth(cols int) int { return min(a.nr, roundUp(cols, a.vl)) }
