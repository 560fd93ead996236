package rewrite_test

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// refRun evaluates a float32 graph made of Conv, ConvTranspose (2-D,
// groups, strides, pads, output_padding), Gemm, BatchNormalization
// (inference), Relu, Add, GlobalAveragePool and Flatten with plain float64 reference loops.
// It checks the BatchNorm-folding arithmetic independently of goslim's
// kernels.
func refRun(g *ir.Graph, feeds ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	vals := make([]*tensor.Tensor, len(g.Values))
	for id, v := range g.Values {
		vals[id] = v.Const
	}
	for i, id := range g.Inputs {
		vals[id] = feeds[i]
	}
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	for _, ni := range order {
		n := &g.Nodes[ni]
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, id := range n.Inputs {
			if id != ir.NoValue {
				in[i] = vals[id]
			}
		}
		var out *tensor.Tensor
		switch n.Op {
		case "Conv":
			out = refConv(n, in)
		case "ConvTranspose":
			out = refConvTranspose(n, in)
		case "Gemm":
			out = refGemm(n, in)
		case "BatchNormalization":
			out = refBN(n, in)
		case "Relu":
			out = in[0].Clone()
			for i, v := range out.F32() {
				out.F32()[i] = max(v, 0)
			}
		case "Add":
			if !in[0].Shape.Equal(in[1].Shape) {
				return nil, fmt.Errorf("refRun: Add without broadcasting only")
			}
			out = in[0].Clone()
			for i, v := range in[1].F32() {
				out.F32()[i] += v
			}
		case "GlobalAveragePool":
			x := in[0]
			nc, hw := x.Shape[0]*x.Shape[1], x.Len()/(x.Shape[0]*x.Shape[1])
			out, _ = tensor.New(tensor.Float32, tensor.Shape{x.Shape[0], x.Shape[1], 1, 1})
			for i := range nc {
				acc := 0.0
				for _, v := range x.F32()[i*hw : (i+1)*hw] {
					acc += float64(v)
				}
				out.F32()[i] = float32(acc / float64(hw))
			}
		case "Flatten":
			out = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{in[0].Shape[0], in[0].Len() / in[0].Shape[0]}, Data: in[0].Data}
		default:
			return nil, fmt.Errorf("refRun: op %s", n.Op)
		}
		vals[n.Outputs[0]] = out
	}
	res := make([]*tensor.Tensor, len(g.Outputs))
	for i, id := range g.Outputs {
		res[i] = vals[id]
	}
	return res, nil
}

func refPads(n *ir.Node) (ph, pw, sh, sw int) {
	p, _ := n.Attrs.Ints("pads")
	s, _ := n.Attrs.Ints("strides")
	ph, pw, sh, sw = 0, 0, 1, 1
	if len(p) == 4 {
		ph, pw = int(p[0]), int(p[1])
	}
	if len(s) == 2 {
		sh, sw = int(s[0]), int(s[1])
	}
	return
}

// refConv: out[n,m,oh,ow] = b[m] + sum_{c,kh,kw} x[n, g*Cg+c, oh*s-p+kh, ow*s-p+kw] * w[m,c,kh,kw].
func refConv(n *ir.Node, in []*tensor.Tensor) *tensor.Tensor {
	x, w := in[0], in[1]
	group := int(n.Attrs.Int("group", 1))
	ph, pw, sh, sw := refPads(n)
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	M, Cg, KH, KW := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	OH, OW := (H+2*ph-KH)/sh+1, (W+2*pw-KW)/sw+1
	out, _ := tensor.New(tensor.Float32, tensor.Shape{N, M, OH, OW})
	xd, wd, od := x.F32(), w.F32(), out.F32()
	Mg := M / group
	for b := range N {
		for m := range M {
			gi := m / Mg
			for oh := range OH {
				for ow := range OW {
					acc := 0.0
					if len(in) > 2 && in[2] != nil {
						acc = float64(in[2].F32()[m])
					}
					for c := range Cg {
						ci := gi*Cg + c
						for kh := range KH {
							ih := oh*sh - ph + kh
							if ih < 0 || ih >= H {
								continue
							}
							for kw := range KW {
								iw := ow*sw - pw + kw
								if iw < 0 || iw >= W {
									continue
								}
								acc += float64(xd[((b*C+ci)*H+ih)*W+iw]) * float64(wd[((m*Cg+c)*KH+kh)*KW+kw])
							}
						}
					}
					od[((b*M+m)*OH+oh)*OW+ow] = float32(acc)
				}
			}
		}
	}
	return out
}

// refConvTranspose scatters: out[n, g*Mg+j, ih*s-p+kh, iw*s-p+kw] += x[n,c,ih,iw] * w[c,j,kh,kw].
func refConvTranspose(n *ir.Node, in []*tensor.Tensor) *tensor.Tensor {
	x, w := in[0], in[1]
	group := int(n.Attrs.Int("group", 1))
	ph, pw, sh, sw := refPads(n)
	op, _ := n.Attrs.Ints("output_padding")
	oph, opw := 0, 0
	if len(op) == 2 {
		oph, opw = int(op[0]), int(op[1])
	}
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	Mg, KH, KW := w.Shape[1], w.Shape[2], w.Shape[3]
	M := Mg * group
	Cg := C / group
	OH, OW := sh*(H-1)+KH-2*ph+oph, sw*(W-1)+KW-2*pw+opw
	acc := make([]float64, N*M*OH*OW)
	xd, wd := x.F32(), w.F32()
	for b := range N {
		for c := range C {
			gi := c / Cg
			for ih := range H {
				for iw := range W {
					xv := float64(xd[((b*C+c)*H+ih)*W+iw])
					for j := range Mg {
						m := gi*Mg + j
						for kh := range KH {
							oh := ih*sh - ph + kh
							if oh < 0 || oh >= OH {
								continue
							}
							for kw := range KW {
								ow := iw*sw - pw + kw
								if ow < 0 || ow >= OW {
									continue
								}
								acc[((b*M+m)*OH+oh)*OW+ow] += xv * float64(wd[((c*Mg+j)*KH+kh)*KW+kw])
							}
						}
					}
				}
			}
		}
	}
	out, _ := tensor.New(tensor.Float32, tensor.Shape{N, M, OH, OW})
	for i := range acc {
		m := (i / (OH * OW)) % M
		if len(in) > 2 && in[2] != nil {
			acc[i] += float64(in[2].F32()[m])
		}
		out.F32()[i] = float32(acc[i])
	}
	return out
}

// refGemm: Y = alpha * A' B' + beta * C (C broadcast as scalar, [N], [1,N] or [M,N]).
func refGemm(n *ir.Node, in []*tensor.Tensor) *tensor.Tensor {
	a, b := in[0], in[1]
	ta, tb := n.Attrs.Int("transA", 0) != 0, n.Attrs.Int("transB", 0) != 0
	alpha, beta := float64(n.Attrs.Float("alpha", 1)), float64(n.Attrs.Float("beta", 1))
	M, K := a.Shape[0], a.Shape[1]
	if ta {
		M, K = K, M
	}
	N := b.Shape[1]
	if tb {
		N = b.Shape[0]
	}
	at := func(i, k int) float64 {
		if ta {
			return float64(a.F32()[k*M+i])
		}
		return float64(a.F32()[i*K+k])
	}
	bt := func(k, j int) float64 {
		if tb {
			return float64(b.F32()[j*K+k])
		}
		return float64(b.F32()[k*N+j])
	}
	out, _ := tensor.New(tensor.Float32, tensor.Shape{M, N})
	for i := range M {
		for j := range N {
			acc := 0.0
			for k := range K {
				acc += at(i, k) * bt(k, j)
			}
			acc *= alpha
			if len(in) > 2 && in[2] != nil {
				c := in[2]
				var cv float64
				switch {
				case c.Len() == 1:
					cv = float64(c.F32()[0])
				case c.Len() == N:
					cv = float64(c.F32()[j])
				default:
					cv = float64(c.F32()[i*N+j])
				}
				acc += beta * cv
			}
			out.F32()[i*N+j] = float32(acc)
		}
	}
	return out
}

// refBN: y = (x - mean) / sqrt(var + eps) * scale + bias along axis 1.
func refBN(n *ir.Node, in []*tensor.Tensor) *tensor.Tensor {
	x := in[0]
	eps := float64(n.Attrs.Float("epsilon", 1e-5))
	C := x.Shape[1]
	inner := x.Len() / (x.Shape[0] * C)
	out := x.Clone()
	for i, v := range x.F32() {
		c := (i / inner) % C
		s := float64(in[1].F32()[c]) / math.Sqrt(float64(in[4].F32()[c])+eps)
		out.F32()[i] = float32((float64(v)-float64(in[3].F32()[c]))*s + float64(in[2].F32()[c]))
	}
	return out
}

// relErr returns max|a-b| / max(max|b|, tiny).
func relErr(a, b *tensor.Tensor) float64 {
	if !a.Shape.Equal(b.Shape) {
		return math.Inf(1)
	}
	diff, ref := 0.0, 1e-30
	for i := range a.Len() {
		diff = max(diff, math.Abs(a.Float64At(i)-b.Float64At(i)))
		ref = max(ref, math.Abs(b.Float64At(i)))
	}
	return diff / ref
}
