package ops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// convCfg is one convolution problem with explicit padding.
type convCfg struct {
	n, cg, mg, group int
	in, k            []int
	stride, dil      []int
	padB, padE       []int
	bias             bool
}

func (c convCfg) String() string {
	return fmt.Sprintf("n=%d cg=%d mg=%d group=%d in=%v k=%v stride=%v dil=%v pads=%v/%v bias=%v",
		c.n, c.cg, c.mg, c.group, c.in, c.k, c.stride, c.dil, c.padB, c.padE, c.bias)
}

func (c convCfg) attrs() ir.Attrs {
	pads := append(nnInts64(c.padB), nnInts64(c.padE)...)
	return ir.Attrs{
		ir.IntsAttr("strides", nnInts64(c.stride)...), ir.IntsAttr("dilations", nnInts64(c.dil)...),
		ir.IntsAttr("pads", pads...), ir.IntAttr("group", int64(c.group)), ir.IntsAttr("kernel_shape", nnInts64(c.k)...),
	}
}

// convRef is the direct-convolution reference: for every output element,
// the sum over its group's input channels and kernel taps.
func convRef(c convCfg, x, w, b []float64) ([]float64, tensor.Shape) {
	nd := len(c.in)
	out := make([]int, nd)
	for d := range out {
		out[d] = (c.in[d]+c.padB[d]+c.padE[d]-(c.k[d]-1)*c.dil[d]-1)/c.stride[d] + 1
	}
	C, M := c.cg*c.group, c.mg*c.group
	shape := nnSpatialShape(c.n, M, out)
	y := make([]float64, shape.Size())
	inStr := tensor.Shape(c.in).Strides()
	inSize, outSize, kSize := nnProd(c.in), nnProd(out), nnProd(c.k)
	o := make([]int, nd)
	t := make([]int, nd)
	for n := 0; n < c.n; n++ {
		for m := 0; m < M; m++ {
			g := m / c.mg
			clear(o)
			for oi := 0; oi < outSize; oi++ {
				s := 0.0
				if c.bias {
					s = b[m]
				}
				for ci := 0; ci < c.cg; ci++ {
					clear(t)
					for ti := 0; ti < kSize; ti++ {
						off, ok := 0, true
						for d := 0; d < nd; d++ {
							q := o[d]*c.stride[d] - c.padB[d] + t[d]*c.dil[d]
							if q < 0 || q >= c.in[d] {
								ok = false
							}
							off += q * inStr[d]
						}
						if ok {
							s += w[(m*c.cg+ci)*kSize+ti] * x[(n*C+g*c.cg+ci)*inSize+off]
						}
						nnNextIdx(t, c.k)
					}
				}
				y[(n*M+m)*outSize+oi] = s
				nnNextIdx(o, out)
			}
		}
	}
	return y, shape
}

func randConvCfg(r *rand.Rand) convCfg {
	for {
		nd := 1 + r.IntN(3)
		if r.IntN(8) == 0 {
			nd = 4 // the direct N-D path
		}
		c := convCfg{n: 1 + r.IntN(2), cg: 1 + r.IntN(3), mg: 1 + r.IntN(3), group: []int{1, 1, 2, 3}[r.IntN(4)], bias: r.IntN(2) == 0}
		if r.IntN(4) == 0 { // depthwise
			c.cg, c.group, c.mg = 1, 2+r.IntN(4), 1+r.IntN(2)
		}
		maxIn := 9
		if nd >= 3 {
			maxIn = 5
		}
		for d := 0; d < nd; d++ {
			c.in = append(c.in, 1+r.IntN(maxIn))
			c.k = append(c.k, 1+r.IntN(3))
			c.stride = append(c.stride, 1+r.IntN(3))
			c.dil = append(c.dil, 1+r.IntN(2))
			c.padB = append(c.padB, r.IntN(3))
			c.padE = append(c.padE, r.IntN(3))
		}
		ok := true
		for d := 0; d < nd; d++ {
			if c.in[d]+c.padB[d]+c.padE[d] < (c.k[d]-1)*c.dil[d]+1 {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

func runConvCase(t *testing.T, r *rand.Rand, c convCfg, dt tensor.DType, threads int, constW bool) {
	t.Helper()
	nd := len(c.in)
	C, M := c.cg*c.group, c.mg*c.group
	xs := nnSpatialShape(c.n, C, c.in)
	ws := nnSpatialShape(M, c.cg, c.k)
	xv, wv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size())
	bv := nnRandVals(r, M)
	want, ys := convRef(c, xv, wv, bv)
	in := []*tensor.Tensor{nnTensor(dt, xs, xv), nnTensor(dt, ws, wv)}
	if c.bias {
		in = append(in, nnTensor(dt, tensor.Shape{M}, bv))
	}
	out, err := nnRun("Conv", 11, c.attrs(), 1, threads, constW, in...)
	if err != nil {
		t.Fatalf("%v %v: %v", c, dt, err)
	}
	nnCheck(t, fmt.Sprintf("Conv %dD %v %v threads=%d", nd, c, dt, threads), out[0], dt, ys, want, nnTol(dt))
}

func TestConvRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for it := 0; it < 300; it++ {
		c := randConvCfg(r)
		runConvCase(t, r, c, tensor.Float32, 1+it%3, it%2 == 0)
		if it%4 == 0 {
			runConvCase(t, r, c, tensor.Float64, 1+it%2, false)
		}
		if it%6 == 0 {
			runConvCase(t, r, c, tensor.Float16, 1, it%12 == 0)
		}
	}
}

// TestConvLarge covers column tiling, the parallel split of a single
// image, 1x1 (pointwise) convolutions and the depthwise path.
func TestConvLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := []convCfg{
		{n: 1, cg: 64, mg: 8, group: 1, in: []int{24, 24}, k: []int{3, 3}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}, bias: true},
		{n: 2, cg: 16, mg: 24, group: 1, in: []int{15, 17}, k: []int{1, 1}, stride: []int{1, 1}, dil: []int{1, 1}, padB: []int{0, 0}, padE: []int{0, 0}, bias: true},
		{n: 1, cg: 1, mg: 1, group: 32, in: []int{33, 31}, k: []int{3, 3}, stride: []int{2, 2}, dil: []int{1, 1}, padB: []int{1, 1}, padE: []int{1, 1}, bias: true},
		{n: 1, cg: 1, mg: 2, group: 8, in: []int{20, 20}, k: []int{5, 5}, stride: []int{1, 1}, dil: []int{2, 2}, padB: []int{4, 4}, padE: []int{4, 4}},
		{n: 3, cg: 4, mg: 4, group: 2, in: []int{9, 10, 11}, k: []int{3, 2, 3}, stride: []int{1, 2, 1}, dil: []int{1, 1, 2}, padB: []int{1, 0, 2}, padE: []int{0, 1, 2}, bias: true},
	}
	for _, c := range cases {
		for _, threads := range []int{1, 3} {
			runConvCase(t, r, c, tensor.Float32, threads, threads == 3)
		}
	}
}

func TestConvAutoPad(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	// SAME_UPPER / SAME_LOWER / VALID equal explicit pads computed by hand.
	tests := []struct {
		auto       string
		in, k, s   int
		padB, padE int
	}{
		{"SAME_UPPER", 7, 4, 2, 1, 2},
		{"SAME_LOWER", 7, 4, 2, 2, 1},
		{"SAME_UPPER", 5, 3, 1, 1, 1},
		{"VALID", 7, 3, 2, 0, 0},
	}
	for _, tc := range tests {
		c := convCfg{n: 1, cg: 2, mg: 3, group: 1, in: []int{tc.in, tc.in}, k: []int{tc.k, tc.k}, stride: []int{tc.s, tc.s},
			dil: []int{1, 1}, padB: []int{tc.padB, tc.padB}, padE: []int{tc.padE, tc.padE}}
		xs := nnSpatialShape(1, 2, c.in)
		ws := nnSpatialShape(3, 2, c.k)
		xv, wv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size())
		want, ys := convRef(c, xv, wv, nil)
		attrs := ir.Attrs{ir.StringAttr("auto_pad", tc.auto), ir.IntsAttr("strides", int64(tc.s), int64(tc.s))}
		out, err := nnRun("Conv", 11, attrs, 1, 1, false, nnTensor(tensor.Float32, xs, xv), nnTensor(tensor.Float32, ws, wv))
		if err != nil {
			t.Fatal(err)
		}
		nnCheck(t, "Conv "+tc.auto, out[0], tensor.Float32, ys, want, 1e-5)
	}
}

func TestConvErrors(t *testing.T) {
	x := nnTensor(tensor.Float32, tensor.Shape{1, 2, 5, 5}, make([]float64, 50))
	tests := []struct {
		name  string
		attrs ir.Attrs
		in    []*tensor.Tensor
		want  string
	}{
		{"weight rank", nil, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3}, make([]float64, 18))}, "weight rank 3, want 4"},
		{"channels", nil, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 3, 3, 3}, make([]float64, 81))}, "channels"},
		{"group", ir.Attrs{ir.IntAttr("group", 2)}, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 1, 3, 3}, make([]float64, 27))}, "not divisible by group"},
		{"bias", nil, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54)), nnTensor(tensor.Float32, tensor.Shape{2}, make([]float64, 2))}, "bias shape"},
		{"kernel_shape", ir.Attrs{ir.IntsAttr("kernel_shape", 2, 2)}, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "kernel_shape"},
		{"too small", nil, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 7, 7}, make([]float64, 294))}, "exceeds padded input"},
		{"dtype", nil, []*tensor.Tensor{nnTensor(tensor.Int32, tensor.Shape{1, 2, 5, 5}, make([]float64, 50)), nnTensor(tensor.Int32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "does not support int32"},
		{"mixed", nil, []*tensor.Tensor{x, nnTensor(tensor.Float64, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "different dtypes"},
		{"auto_pad", ir.Attrs{ir.StringAttr("auto_pad", "SAME")}, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "unknown auto_pad"},
		{"pads len", ir.Attrs{ir.IntsAttr("pads", 1, 1)}, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "pads has 2 values, want 4"},
		{"negative stride", ir.Attrs{ir.IntsAttr("strides", 0, 1)}, []*tensor.Tensor{x, nnTensor(tensor.Float32, tensor.Shape{3, 2, 3, 3}, make([]float64, 54))}, "out of range"},
	}
	for _, tc := range tests {
		_, err := nnRun("Conv", 11, tc.attrs, 1, 1, false, tc.in...)
		nnWantErr(t, tc.name, err, tc.want)
		if err != nil && !strings.Contains(err.Error(), `node "n" (Conv)`) {
			t.Errorf("%s: error %q does not name the node", tc.name, err)
		}
	}
}

// convTCfg is one transposed-convolution problem with explicit padding.
type convTCfg struct {
	n, cg, mg, group int
	in, k            []int
	stride, dil      []int
	padB, padE, opad []int
	bias             bool
}

// convTRef scatters every input element through the kernel.
func convTRef(c convTCfg, x, w, b []float64) ([]float64, tensor.Shape) {
	nd := len(c.in)
	out := make([]int, nd)
	for d := range out {
		out[d] = c.stride[d]*(c.in[d]-1) + c.opad[d] + (c.k[d]-1)*c.dil[d] + 1 - c.padB[d] - c.padE[d]
	}
	C, M := c.cg*c.group, c.mg*c.group
	shape := nnSpatialShape(c.n, M, out)
	y := make([]float64, shape.Size())
	outStr := tensor.Shape(out).Strides()
	inSize, outSize, kSize := nnProd(c.in), nnProd(out), nnProd(c.k)
	for n := 0; n < c.n; n++ {
		for m := 0; m < M; m++ {
			if c.bias {
				for i := 0; i < outSize; i++ {
					y[(n*M+m)*outSize+i] = b[m]
				}
			}
		}
		for ci := 0; ci < C; ci++ {
			g := ci / c.cg
			i := make([]int, nd)
			for ii := 0; ii < inSize; ii++ {
				xv := x[(n*C+ci)*inSize+ii]
				t := make([]int, nd)
				for ti := 0; ti < kSize; ti++ {
					off, ok := 0, true
					for d := 0; d < nd; d++ {
						q := i[d]*c.stride[d] - c.padB[d] + t[d]*c.dil[d]
						if q < 0 || q >= out[d] {
							ok = false
						}
						off += q * outStr[d]
					}
					if ok {
						for mo := 0; mo < c.mg; mo++ {
							y[(n*M+g*c.mg+mo)*outSize+off] += xv * w[(ci*c.mg+mo)*kSize+ti]
						}
					}
					nnNextIdx(t, c.k)
				}
				nnNextIdx(i, c.in)
			}
		}
	}
	return y, shape
}

func TestConvTransposeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for it := 0; it < 200; it++ {
		nd := 1 + r.IntN(3)
		if it%10 == 0 {
			nd = 4
		}
		c := convTCfg{n: 1 + r.IntN(2), cg: 1 + r.IntN(3), mg: 1 + r.IntN(3), group: 1 + r.IntN(3), bias: r.IntN(2) == 0}
		for d := 0; d < nd; d++ {
			c.in = append(c.in, 1+r.IntN(5))
			c.k = append(c.k, 1+r.IntN(3))
			c.stride = append(c.stride, 1+r.IntN(3))
			c.dil = append(c.dil, 1+r.IntN(2))
			c.opad = append(c.opad, r.IntN(c.stride[d]))
			c.padB = append(c.padB, r.IntN(2))
			c.padE = append(c.padE, r.IntN(2))
		}
		bad := false
		for d := 0; d < nd; d++ {
			if c.stride[d]*(c.in[d]-1)+c.opad[d]+(c.k[d]-1)*c.dil[d]+1-c.padB[d]-c.padE[d] < 1 {
				bad = true
			}
		}
		if bad {
			continue
		}
		C, M := c.cg*c.group, c.mg*c.group
		xs := nnSpatialShape(c.n, C, c.in)
		ws := nnSpatialShape(C, c.mg, c.k)
		xv, wv, bv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size()), nnRandVals(r, M)
		want, ys := convTRef(c, xv, wv, bv)
		attrs := ir.Attrs{ir.IntsAttr("strides", nnInts64(c.stride)...), ir.IntsAttr("dilations", nnInts64(c.dil)...),
			ir.IntsAttr("pads", append(nnInts64(c.padB), nnInts64(c.padE)...)...), ir.IntsAttr("output_padding", nnInts64(c.opad)...),
			ir.IntAttr("group", int64(c.group))}
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
			if dt == tensor.Float16 && it%5 != 0 {
				continue
			}
			in := []*tensor.Tensor{nnTensor(dt, xs, xv), nnTensor(dt, ws, wv)}
			if c.bias {
				in = append(in, nnTensor(dt, tensor.Shape{M}, bv))
			}
			out, err := nnRun("ConvTranspose", 11, attrs, 1, 1+it%3, it%2 == 0, in...)
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			nnCheck(t, fmt.Sprintf("ConvTranspose %+v %v", c, dt), out[0], dt, ys, want, nnTol(dt))
		}
	}
}

// TestConvTransposeOutputShape checks output_shape and auto_pad, which
// derive the padding: the result must equal the explicit-pads result.
func TestConvTransposeOutputShape(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	c := convTCfg{n: 1, cg: 2, mg: 3, group: 1, in: []int{4, 5}, k: []int{3, 3}, stride: []int{2, 3}, dil: []int{1, 1},
		opad: []int{0, 0}}
	xs := nnSpatialShape(1, 2, c.in)
	ws := nnSpatialShape(2, 3, c.k)
	xv, wv := nnRandVals(r, xs.Size()), nnRandVals(r, ws.Size())
	x, w := nnTensor(tensor.Float32, xs, xv), nnTensor(tensor.Float32, ws, wv)
	// Full size is 2*3+3 = 9 by 3*4+3 = 15.
	tests := []struct {
		name       string
		attrs      ir.Attrs
		padB, padE []int
	}{
		{"output_shape", ir.Attrs{ir.IntsAttr("output_shape", 8, 12)}, []int{1, 2}, []int{0, 1}},
		{"output_shape_full_rank", ir.Attrs{ir.IntsAttr("output_shape", 1, 3, 8, 12)}, []int{1, 2}, []int{0, 1}},
		{"same_upper", ir.Attrs{ir.StringAttr("auto_pad", "SAME_UPPER")}, []int{0, 0}, []int{1, 0}},
		{"same_lower", ir.Attrs{ir.StringAttr("auto_pad", "SAME_LOWER")}, []int{1, 0}, []int{0, 0}},
		{"bigger", ir.Attrs{ir.IntsAttr("output_shape", 10, 15)}, []int{0, 0}, []int{-1, 0}},
	}
	for _, tc := range tests {
		cc := c
		cc.padB, cc.padE = tc.padB, tc.padE
		want, ys := convTRef(cc, xv, wv, nil)
		attrs := append(ir.Attrs{ir.IntsAttr("strides", 2, 3)}, tc.attrs...)
		out, err := nnRun("ConvTranspose", 11, attrs, 1, 1, false, x, w)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		nnCheck(t, "ConvTranspose "+tc.name, out[0], tensor.Float32, ys, want, 1e-5)
	}
}

func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := nnTensor(tensor.Float32, tensor.Shape{1, 64, 56, 56}, nnRandVals(r, 64*56*56))
	w := nnTensor(tensor.Float32, tensor.Shape{64, 64, 3, 3}, nnRandVals(r, 64*64*9))
	attrs := ir.Attrs{ir.IntsAttr("pads", 1, 1, 1, 1)}
	b.SetBytes(2 * 64 * 64 * 9 * 56 * 56) // flops
	for b.Loop() {
		if _, err := nnRun("Conv", 11, attrs, 1, 1, true, x, w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConvDepthwise3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := nnTensor(tensor.Float32, tensor.Shape{1, 128, 56, 56}, nnRandVals(r, 128*56*56))
	w := nnTensor(tensor.Float32, tensor.Shape{128, 1, 3, 3}, nnRandVals(r, 128*9))
	attrs := ir.Attrs{ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("group", 128)}
	b.SetBytes(2 * 128 * 9 * 56 * 56)
	for b.Loop() {
		if _, err := nnRun("Conv", 11, attrs, 1, 1, true, x, w); err != nil {
			b.Fatal(err)
		}
	}
}
