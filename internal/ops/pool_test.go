package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// poolCfg is one pooling problem with explicit padding.
type poolCfg struct {
	n, c        int
	in, k       []int
	stride, dil []int
	padB, padE  []int
	ceil        bool
	includePad  bool
	colMajor    bool
}

// poolOut is the reference output size (PyTorch's rule for ceil mode).
func poolOut(in, k, s, d, pb, pe int, ceil bool) int {
	span := in + pb + pe - (k-1)*d - 1
	if !ceil {
		return span/s + 1
	}
	o := int(math.Ceil(float64(span)/float64(s))) + 1
	if (o-1)*s >= in+pb {
		o--
	}
	return o
}

// poolRef computes max (with flat indices) or average pooling by visiting
// every tap of every window.
func poolRef(c poolCfg, x []float64, isMax bool) ([]float64, []float64, tensor.Shape) {
	nd := len(c.in)
	out := make([]int, nd)
	for d := range out {
		out[d] = poolOut(c.in[d], c.k[d], c.stride[d], c.dil[d], c.padB[d], c.padE[d], c.ceil)
	}
	shape := nnSpatialShape(c.n, c.c, out)
	y := make([]float64, shape.Size())
	idx := make([]float64, shape.Size())
	inSize, outSize := nnProd(c.in), nnProd(out)
	rowStr := tensor.Shape(c.in).Strides()
	colStr := make([]int, nd)
	acc := 1
	for d := 0; d < nd; d++ {
		colStr[d] = acc
		acc *= c.in[d]
	}
	for p := 0; p < c.n*c.c; p++ {
		o := make([]int, nd)
		for oi := 0; oi < outSize; oi++ {
			best, at := math.Inf(-1), -1
			sum, cnt, padCnt := 0.0, 0, 0
			t := make([]int, nd)
			for {
				off, lin, inside, inPadded := 0, 0, true, true
				for d := 0; d < nd; d++ {
					q := o[d]*c.stride[d] - c.padB[d] + t[d]*c.dil[d]
					if q < 0 || q >= c.in[d] {
						inside = false
					}
					if q < -c.padB[d] || q >= c.in[d]+c.padE[d] {
						inPadded = false
					}
					off += q * rowStr[d]
					lin += q * colStr[d]
				}
				if inPadded {
					padCnt++
				}
				if inside {
					v := x[p*inSize+off]
					if v > best || at < 0 {
						best = v
						at = off
						if c.colMajor {
							at = lin
						}
					}
					sum += v
					cnt++
				}
				if !nnNextIdx(t, c.k) {
					break
				}
			}
			if isMax {
				y[p*outSize+oi] = best
				// A window entirely in the padding has at == -1 (and
				// best == -Inf, replaced by the dtype's lowest value).
				idx[p*outSize+oi] = float64(p*inSize + at)
			} else {
				div := cnt
				if c.includePad {
					div = padCnt
				}
				y[p*outSize+oi] = sum / float64(div)
			}
			nnNextIdx(o, out)
		}
	}
	return y, idx, shape
}

// poolLowest replaces -Inf (empty max windows) by dt's lowest value.
func poolLowest(v []float64, dt tensor.DType) []float64 {
	low := map[tensor.DType]float64{tensor.Float32: -math.MaxFloat32, tensor.Float64: -math.MaxFloat64,
		tensor.Float16: -65504, tensor.Int8: math.MinInt8, tensor.Uint8: 0}[dt]
	out := make([]float64, len(v))
	for i, x := range v {
		if math.IsInf(x, -1) {
			x = low
		}
		out[i] = x
	}
	return out
}

func randPoolCfg(r *rand.Rand) poolCfg {
	for {
		nd := 1 + r.IntN(3)
		if r.IntN(10) == 0 {
			nd = 4
		}
		c := poolCfg{n: 1 + r.IntN(2), c: 1 + r.IntN(3), ceil: r.IntN(3) == 0, includePad: r.IntN(2) == 0, colMajor: r.IntN(2) == 0}
		ok := true
		for d := 0; d < nd; d++ {
			c.in = append(c.in, 1+r.IntN(8))
			c.k = append(c.k, 1+r.IntN(3))
			c.stride = append(c.stride, 1+r.IntN(3))
			c.dil = append(c.dil, 1+r.IntN(2))
			// Pads smaller than the kernel extent, as the spec requires.
			c.padB = append(c.padB, r.IntN(c.k[d]))
			c.padE = append(c.padE, r.IntN(c.k[d]))
			if c.in[d]+c.padB[d]+c.padE[d] < (c.k[d]-1)*c.dil[d]+1 {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

func (c poolCfg) attrs(isMax bool) ir.Attrs {
	a := ir.Attrs{ir.IntsAttr("kernel_shape", nnInts64(c.k)...), ir.IntsAttr("strides", nnInts64(c.stride)...),
		ir.IntsAttr("dilations", nnInts64(c.dil)...), ir.IntsAttr("pads", append(nnInts64(c.padB), nnInts64(c.padE)...)...),
		ir.IntAttr("ceil_mode", b2i(c.ceil))}
	if isMax {
		a = append(a, ir.IntAttr("storage_order", b2i(c.colMajor)))
	} else {
		a = append(a, ir.IntAttr("count_include_pad", b2i(c.includePad)))
	}
	return a
}

func TestPoolRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for it := 0; it < 300; it++ {
		c := randPoolCfg(r)
		xs := nnSpatialShape(c.n, c.c, c.in)
		xv := nnRandVals(r, xs.Size())
		for _, isMax := range []bool{true, false} {
			want, wantIdx, ys := poolRef(c, xv, isMax)
			op := "AveragePool"
			dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16}
			if isMax {
				op = "MaxPool"
				dts = append(dts, tensor.Int8, tensor.Uint8)
			}
			for _, dt := range dts {
				vals := xv
				if dt == tensor.Uint8 {
					vals = make([]float64, len(xv))
					for i, v := range xv {
						vals[i] = v*8 + 40
					}
					want, wantIdx, _ = poolRef(c, vals, isMax)
				} else if dt == tensor.Int8 {
					vals = make([]float64, len(xv))
					for i, v := range xv {
						vals[i] = v * 8
					}
					want, wantIdx, _ = poolRef(c, vals, isMax)
				}
				nOut := 1
				if isMax && dt == tensor.Float32 {
					nOut = 2
				}
				out, err := nnRun(op, 19, c.attrs(isMax), nOut, 1+it%3, false, nnTensor(dt, xs, vals))
				if err != nil {
					t.Fatalf("%s %+v %v: %v", op, c, dt, err)
				}
				name := fmt.Sprintf("%s %+v %v", op, c, dt)
				nnCheck(t, name, out[0], dt, ys, poolLowest(want, dt), nnTol(dt))
				if nOut == 2 {
					nnCheck(t, name+" Indices", out[1], tensor.Int64, ys, wantIdx, 0)
				}
				if dt == tensor.Uint8 || dt == tensor.Int8 {
					want, wantIdx, _ = poolRef(c, xv, isMax)
				}
			}
		}
	}
}

func TestPoolAutoPad(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	xs := tensor.Shape{1, 2, 7, 6}
	xv := nnRandVals(r, xs.Size())
	// SAME_UPPER with kernel 3, stride 2 on 7x6: out 4x3, pads (1,1)/(1,0)... computed by hand.
	c := poolCfg{n: 1, c: 2, in: []int{7, 6}, k: []int{3, 3}, stride: []int{2, 2}, dil: []int{1, 1},
		padB: []int{1, 0}, padE: []int{1, 1}}
	for _, isMax := range []bool{true, false} {
		op := "MaxPool"
		if !isMax {
			op = "AveragePool"
		}
		want, _, ys := poolRef(c, xv, isMax)
		attrs := ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.StringAttr("auto_pad", "SAME_UPPER")}
		out, err := nnRun(op, 11, attrs, 1, 1, false, nnTensor(tensor.Float32, xs, xv))
		if err != nil {
			t.Fatal(err)
		}
		nnCheck(t, op+" SAME_UPPER", out[0], tensor.Float32, ys, want, 1e-6)
	}
}

func TestGlobalPool(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, shape := range []tensor.Shape{{2, 3, 4, 5}, {1, 2, 7}, {2, 2, 2, 3, 2}, {3, 4, 1}} {
		xv := nnRandVals(r, shape.Size())
		planes := shape[0] * shape[1]
		size := shape.Size() / planes
		wantAvg, wantMax := make([]float64, planes), make([]float64, planes)
		for p := 0; p < planes; p++ {
			wantMax[p] = math.Inf(-1)
			for j := 0; j < size; j++ {
				v := xv[p*size+j]
				wantAvg[p] += v / float64(size)
				wantMax[p] = math.Max(wantMax[p], v)
			}
		}
		ys := shape.Clone()
		for i := 2; i < len(ys); i++ {
			ys[i] = 1
		}
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
			out, err := nnRun("GlobalAveragePool", 13, nil, 1, 1, false, nnTensor(dt, shape, xv))
			if err != nil {
				t.Fatal(err)
			}
			nnCheck(t, "GlobalAveragePool", out[0], dt, ys, wantAvg, nnTol(dt))
			out, err = nnRun("GlobalMaxPool", 13, nil, 1, 1, false, nnTensor(dt, shape, xv))
			if err != nil {
				t.Fatal(err)
			}
			nnCheck(t, "GlobalMaxPool", out[0], dt, ys, wantMax, nnTol(dt))
		}
	}
}

func TestPoolErrors(t *testing.T) {
	x := nnTensor(tensor.Float32, tensor.Shape{1, 1, 4, 4}, make([]float64, 16))
	_, err := nnRun("MaxPool", 12, nil, 1, 1, false, x)
	nnWantErr(t, "no kernel", err, "kernel_shape")
	_, err = nnRun("MaxPool", 12, ir.Attrs{ir.IntsAttr("kernel_shape", 2)}, 1, 1, false, x)
	nnWantErr(t, "kernel len", err, "kernel_shape [2] has 1 values, want 2")
	_, err = nnRun("AveragePool", 11, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("dilations", 2, 2)}, 1, 1, false, x)
	nnWantErr(t, "dilations before 19", err, "dilations=[2 2] is not part of AveragePool at opset 11")
	_, err = nnRun("AveragePool", 11, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("dilations", 1, 1)}, 1, 1, false, x)
	if err != nil {
		t.Errorf("unit dilations before 19: %v", err)
	}
	_, err = nnRun("AveragePool", 19, ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2)}, 1, 1, false, nnTensor(tensor.Int8, tensor.Shape{1, 1, 4, 4}, make([]float64, 16)))
	nnWantErr(t, "dtype", err, "does not support int8")
	_, err = nnRun("MaxPool", 12, ir.Attrs{ir.IntsAttr("kernel_shape", 6, 6)}, 1, 1, false, x)
	nnWantErr(t, "too big", err, "exceeds padded input")
}

func BenchmarkMaxPool3x3s2(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := nnTensor(tensor.Float32, tensor.Shape{1, 64, 112, 112}, nnRandVals(r, 64*112*112))
	attrs := ir.Attrs{ir.IntsAttr("kernel_shape", 3, 3), ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1)}
	for b.Loop() {
		if _, err := nnRun("MaxPool", 12, attrs, 1, 1, false, x); err != nil {
			b.Fatal(err)
		}
	}
}
