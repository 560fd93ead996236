package ops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// tierCheckName fails unless a float32 kernel chosen at a tier is that
// tier's entry ("avx512.im2col" at avx512).
func tierCheckName(t *testing.T, what, name, tier string) {
	t.Helper()
	if !strings.HasPrefix(name, tier+".") {
		t.Fatalf("%s: kernel %q chosen at tier %s", what, name, tier)
	}
}

// TestMatrixTiersConv runs float32 Conv on every tier available here
// (through Info.Tier, as GOSLIM_KERNELS does) against the direct reference,
// covering the im2col, wide, pointwise (also transposed), depthwise and 3x3
// depthwise paths with constant and run-time weights.
func TestMatrixTiersConv(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	cfg2 := func(n, cg, mg, group, h, w, k, s, p int, bias bool) convCfg {
		return convCfg{n: n, cg: cg, mg: mg, group: group, in: []int{h, w}, k: []int{k, k}, stride: []int{s, s},
			dil: []int{1, 1}, padB: []int{p, p}, padE: []int{p, p}, bias: bias}
	}
	fixed := []convCfg{
		cfg2(2, 3, 16, 1, 32, 32, 3, 1, 1, true),  // wide, row mode
		cfg2(1, 16, 32, 1, 33, 31, 3, 2, 1, true), // stride 2
		cfg2(1, 16, 16, 1, 16, 16, 3, 1, 1, true), // 16-wide rows paired
		cfg2(2, 32, 24, 1, 8, 8, 3, 1, 1, false),  // narrow rows: wide + copy
		cfg2(3, 24, 40, 1, 3, 3, 1, 1, 0, true),   // pointwise, transposed (batched)
		cfg2(1, 24, 40, 1, 2, 5, 1, 1, 0, true),   // pointwise, transposed
		cfg2(1, 8, 48, 1, 20, 20, 1, 1, 0, true),  // pointwise
		cfg2(2, 1, 1, 48, 24, 24, 3, 2, 1, true),  // 3x3 depthwise stride 2
		cfg2(1, 1, 1, 40, 7, 9, 3, 1, 1, true),    // 3x3 depthwise stride 1
		cfg2(1, 1, 2, 8, 11, 11, 5, 2, 2, true),   // depthwise 5x5, multiplier 2
		cfg2(1, 4, 6, 1, 13, 17, 7, 3, 3, true),   // large kernel
		{n: 1, cg: 2, mg: 5, group: 1, in: []int{5, 6, 7}, k: []int{2, 3, 2}, stride: []int{1, 2, 1}, dil: []int{1, 1, 2},
			padB: []int{1, 0, 1}, padE: []int{0, 1, 1}, bias: true}, // 3-D: general path
	}
	for _, tier := range fusedTiers() {
		cases := append([]convCfg(nil), fixed...)
		for i := 0; i < 80; i++ {
			cases = append(cases, randConvCfg(r))
		}
		for i, c := range cases {
			C, M := c.cg*c.group, c.mg*c.group
			xs := nnSpatialShape(c.n, C, c.in)
			ws := nnSpatialShape(M, c.cg, c.k)
			xv, wv, bv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size()), nnRandVals(r, M)
			want, ys := convRef(c, xv, wv, bv)
			in := []*tensor.Tensor{nnTensor(tensor.Float32, xs, xv), nnTensor(tensor.Float32, ws, wv)}
			if c.bias {
				in = append(in, nnTensor(tensor.Float32, tensor.Shape{M}, bv))
			}
			name := fmt.Sprintf("Conv %v tier=%v", c, tier)
			got, kname := fusedRun(t, "", "Conv", 11, c.attrs(), tier, 1+i%2, i%3 != 0, in...)
			tierCheckName(t, name, kname, tier.String())
			nnCheck(t, name+" "+kname, got, tensor.Float32, ys, want, 1e-4)
		}
	}
}

// TestMatrixTiersGemm runs float32 Gemm, MatMul and ConvTranspose on every
// tier against the reference loops.
func TestMatrixTiersGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, tier := range fusedTiers() {
		for it := 0; it < 60; it++ {
			m, n, k := 1+r.IntN(40), 1+r.IntN(70), r.IntN(60)
			if it%10 == 0 {
				m, n, k = 33+r.IntN(100), 100+r.IntN(200), 300+r.IntN(400)
			}
			transA, transB := r.IntN(2) == 1, r.IntN(2) == 1
			alpha, beta := []float64{1, 0.5, -2}[r.IntN(3)], []float64{1, 0, 0.25}[r.IntN(3)]
			cShapes := []tensor.Shape{nil, {}, {n}, {1, n}, {m, 1}, {m, n}, {1, 1}}
			cs := cShapes[r.IntN(len(cShapes))]
			as, bs := tensor.Shape{m, k}, tensor.Shape{k, n}
			if transA {
				as = tensor.Shape{k, m}
			}
			if transB {
				bs = tensor.Shape{n, k}
			}
			av, bv := nnRandVals(r, as.Size()), nnRandVals(r, bs.Size())
			in := []*tensor.Tensor{nnTensor(tensor.Float32, as, av), nnTensor(tensor.Float32, bs, bv)}
			var cv []float64
			if cs != nil {
				cv = nnRandVals(r, cs.Size())
				in = append(in, nnTensor(tensor.Float32, cs, cv))
			}
			want := gemmRef(transA, transB, m, n, k, alpha, beta, av, bv, cv, cs)
			attrs := ir.Attrs{ir.IntAttr("transA", b2i(transA)), ir.IntAttr("transB", b2i(transB)),
				ir.FloatAttr("alpha", float32(alpha)), ir.FloatAttr("beta", float32(beta))}
			name := fmt.Sprintf("Gemm tA=%v tB=%v m=%d n=%d k=%d C=%v tier=%v", transA, transB, m, n, k, cs, tier)
			got, kname := fusedRun(t, "", "Gemm", 13, attrs, tier, 1+it%2, it%2 == 0, in...)
			tierCheckName(t, name, kname, tier.String())
			nnCheck(t, name, got, tensor.Float32, tensor.Shape{m, n}, want, 1e-4*float64(k+1))
		}
		for i, sh := range [][2]tensor.Shape{{{3}, {3, 4}}, {{5, 2, 3}, {3, 4}}, {{2, 1, 2, 3}, {3, 3, 4}}, {{65, 130}, {130, 70}},
			{{3, 40, 50}, {3, 50, 60}}, {{1, 37, 200}, {200, 150}}, {{32, 784}, {784, 512}}, {{1, 256}, {256, 120}}} {
			av, bv := nnRandVals(r, sh[0].Size()), nnRandVals(r, sh[1].Size())
			want, ys := matmulRef(sh[0], sh[1], av, bv)
			name := fmt.Sprintf("MatMul %v x %v tier=%v", sh[0], sh[1], tier)
			got, kname := fusedRun(t, "", "MatMul", 13, nil, tier, 1+i%2, i%2 == 0,
				nnTensor(tensor.Float32, sh[0], av), nnTensor(tensor.Float32, sh[1], bv))
			tierCheckName(t, name, kname, tier.String())
			nnCheck(t, name, got, tensor.Float32, ys, want, 1e-3)
		}
		for it := 0; it < 20; it++ {
			c := convTCfg{n: 1 + r.IntN(2), cg: 1 + r.IntN(4), mg: 1 + r.IntN(4), group: 1 + r.IntN(2), bias: r.IntN(2) == 0,
				in: []int{2 + r.IntN(6), 2 + r.IntN(6)}, k: []int{1 + r.IntN(3), 1 + r.IntN(3)}, stride: []int{1 + r.IntN(2), 1 + r.IntN(2)},
				dil: []int{1, 1}, padB: []int{0, 0}, padE: []int{0, 0}, opad: []int{0, 0}}
			C, M := c.cg*c.group, c.mg*c.group
			xs, ws := nnSpatialShape(c.n, C, c.in), nnSpatialShape(C, c.mg, c.k)
			xv, wv, bv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size()), nnRandVals(r, M)
			want, ys := convTRef(c, xv, wv, bv)
			attrs := ir.Attrs{ir.IntsAttr("strides", nnInts64(c.stride)...), ir.IntAttr("group", int64(c.group))}
			in := []*tensor.Tensor{nnTensor(tensor.Float32, xs, xv), nnTensor(tensor.Float32, ws, wv)}
			if c.bias {
				in = append(in, nnTensor(tensor.Float32, tensor.Shape{M}, bv))
			}
			name := fmt.Sprintf("ConvTranspose %+v tier=%v", c, tier)
			got, kname := fusedRun(t, "", "ConvTranspose", 11, attrs, tier, 1, it%2 == 0, in...)
			tierCheckName(t, name, kname, tier.String())
			nnCheck(t, name, got, tensor.Float32, ys, want, 1e-4)
		}
	}
}
