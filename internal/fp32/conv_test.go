package fp32

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
)

// randConvGeom returns a random geometry; half are stride-1 with at most
// two spatial axes (the wide path), some 1x1 (the pointwise path).
func randConvGeom(r *rand.Rand) ConvGeom {
	switch r.IntN(4) {
	case 0:
		return randGeom(r)
	case 1: // pointwise
		n := 1 + r.IntN(40)
		g, _ := NewConvGeom([]int{n}, []int{n}, []int{1}, []int{1}, []int{1}, []int{0})
		if r.IntN(2) == 0 {
			h, w := 1+r.IntN(9), 1+r.IntN(40)
			g, _ = NewConvGeom([]int{h, w}, []int{h, w}, []int{1, 1}, []int{1, 1}, []int{1, 1}, []int{0, 0})
		}
		return g
	}
	nd := 1 + r.IntN(2)
	in, out, k, s, d, p := make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd)
	for i := 0; i < nd; i++ {
		in[i] = 1 + r.IntN(40)
		k[i] = 1 + r.IntN(4)
		s[i] = 1
		d[i] = 1 + r.IntN(2)
		p[i] = r.IntN(3)
		pe := r.IntN(3)
		ext := (k[i]-1)*d[i] + 1
		out[i] = max(in[i]+p[i]+pe-ext+1, 1)
	}
	g, err := NewConvGeom(in, out, k, s, d, p)
	if err != nil {
		panic(err)
	}
	return g
}

// TestConv checks Kernels.Conv (all three paths, all tiers) against
// Im2col followed by GemmRef, bias and activation, with guard bands around
// and between the rows of Y.
func TestConv(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActSigmoid}}
	for _, k := range testKernels() {
		modes := map[convMode]int{}
		for it := 0; it < 300; it++ {
			g := randConvGeom(r)
			out := g.OutSize()
			ch := 1 + r.IntN(5)
			m := 1 + r.IntN(20)
			K := ch * g.KernelSize()
			col0 := 0
			ncol := out
			if r.IntN(3) == 0 {
				col0 = r.IntN(out)
				ncol = 1 + r.IntN(out-col0)
			}
			x := randSlice(r, ch*g.InSize())
			w := randSlice(r, m*K)
			var bias []float32
			if r.IntN(2) == 0 {
				bias = randSlice(r, m)
			}
			act := acts[r.IntN(len(acts))]
			// Reference.
			col := make([]float32, K*ncol)
			im2colRef(&g, col, x, ch, col0, ncol)
			want := make([]float32, m*ncol)
			GemmRef(false, false, m, ncol, K, 1, w, K, col, ncol, 0, want, ncol)
			for i := 0; i < m; i++ {
				row := want[i*ncol : (i+1)*ncol]
				if bias != nil {
					for j := range row {
						row[j] += bias[i]
					}
				}
				act.Apply(row)
			}
			ldy := out + r.IntN(3)
			const band = 11
			ybuf := make([]float32, 2*band+(m-1)*ldy+out)
			for i := range ybuf {
				ybuf[i] = guard
			}
			op := &ConvOp{Geom: &g, M: m, Channels: ch, X: x, W: w, Y: ybuf[band : len(ybuf)-band], LdY: ldy,
				Col0: col0, NCol: ncol, Bias: bias, Act: act}
			if r.IntN(2) == 0 {
				op.W, op.PW = nil, k.PackA(false, m, K, w, K)
			}
			if g.KernelSize() == 1 && r.IntN(2) == 0 {
				op.PWT = k.PackB(true, K, m, w, K)
			}
			modes[op.mode()]++
			k.Conv(make([]float32, k.ConvScratch(op)), op)
			name := fmt.Sprintf("%s mode=%d geom=%+v ch=%d m=%d cols=%d+%d act=%v", k.Name(), op.mode(), g, ch, m, col0, ncol, act.Kind)
			for i, v := range ybuf {
				j := i - band
				row, o := j/ldy, j%ldy
				if j < 0 || i >= len(ybuf)-band || o < col0 || o >= col0+ncol {
					if v != guard {
						t.Fatalf("%s: guard element %d overwritten with %g", name, i, v)
					}
					continue
				}
				wv := want[row*ncol+o-col0]
				if d := math.Abs(float64(v - wv)); !(d <= 1e-4*float64(K+1)*(1+math.Abs(float64(wv)))) {
					t.Fatalf("%s: Y[%d][%d] = %g, want %g", name, row, o, v, wv)
				}
			}
		}
		if modes[convGeneral] == 0 || modes[convWide] == 0 || modes[convPointwise] == 0 || modes[convPointwiseT] == 0 {
			t.Fatalf("%s: paths not all covered: %v", k.Name(), modes)
		}
	}
}

// TestPackRowsTwin checks the assembly packers against packRowsGo, with
// guard bands after the panel.
func TestPackRowsTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, k := range testKernels() {
		ar := k.arch()
		for it := 0; it < 300; it++ {
			kb, nb := 1+r.IntN(20), 1+r.IntN(3*ar.nr)
			stride := nb + r.IntN(5)
			src := randSlice(r, kb*stride+40)
			var offs []int32
			if r.IntN(2) == 0 {
				offs = make([]int32, kb)
				for i := range offs {
					offs[i] = int32(r.IntN(len(src) - nb + 1))
				}
			}
			n := kb * roundUp(nb, ar.vl)
			const band = 16
			got := make([]float32, n+2*band)
			want := make([]float32, n+2*band)
			for i := range got {
				got[i], want[i] = guard, guard
			}
			ar.packRows(got[band:band+n], src, offs, stride, kb, nb)
			packRowsGo(ar.nr, ar.vl, want[band:band+n], src, offs, stride, kb, nb)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s kb=%d nb=%d stride=%d offs=%v: dst[%d] = %g, twin %g", ar.name, kb, nb, stride, offs != nil, i, got[i], want[i])
				}
			}
		}
	}
}

// randDWGeom returns a random geometry with at most two spatial axes.
func randDWGeom(r *rand.Rand) ConvGeom {
	nd := 1 + r.IntN(2)
	in, out, k, s, d, p := make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd)
	for i := 0; i < nd; i++ {
		in[i] = 1 + r.IntN(50)
		k[i] = 1 + r.IntN(5)
		s[i] = 1 + r.IntN(3)
		d[i] = 1 + r.IntN(2)
		p[i] = r.IntN(3)
		pe := r.IntN(3)
		ext := (k[i]-1)*d[i] + 1
		out[i] = max((in[i]+p[i]+pe-ext)/s[i]+1, 1)
	}
	g, err := NewConvGeom(in, out, k, s, d, p)
	if err != nil {
		panic(err)
	}
	return g
}

// TestDepthwise checks Kernels.Depthwise on every tier against Im2col with
// a per-filter dot product, with guard bands around and between planes.
func TestDepthwise(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.1}, {Kind: ActSigmoid}}
	for _, k := range testKernels() {
		for it := 0; it < 300; it++ {
			g := randDWGeom(r)
			if it%3 == 0 { // common 3x3 shapes
				n := 1 + r.IntN(40)
				s := 1 + r.IntN(2)
				g, _ = NewConvGeom([]int{n, n}, []int{(n-1)/s + 1, (n-1)/s + 1}, []int{3, 3}, []int{s, s}, []int{1, 1}, []int{1, 1})
			}
			K, out := g.KernelSize(), g.OutSize()
			m := 1 + r.IntN(3)
			x := randSlice(r, g.InSize())
			w := randSlice(r, m*K)
			var bias []float32
			if r.IntN(2) == 0 {
				bias = randSlice(r, m)
			}
			act := acts[r.IntN(len(acts))]
			col := make([]float32, K*out)
			im2colRef(&g, col, x, 1, 0, out)
			ldy := out + r.IntN(4)
			const band = 13
			ybuf := make([]float32, 2*band+(m-1)*ldy+out)
			for i := range ybuf {
				ybuf[i] = guard
			}
			op := &DepthwiseOp{Geom: &g, Channels: 1, M: m, X: x, W: w, Y: ybuf[band : len(ybuf)-band], LdY: ldy, Bias: bias, Act: act}
			k.Depthwise(make([]float32, k.DepthwiseScratch(&g)), op)
			name := fmt.Sprintf("%s geom=%+v m=%d act=%v bias=%v", k.Name(), g, m, act.Kind, bias != nil)
			for i, v := range ybuf {
				j := i - band
				f, o := j/ldy, j%ldy
				if j < 0 || i >= len(ybuf)-band || o >= out {
					if v != guard {
						t.Fatalf("%s: guard element %d overwritten with %g", name, i, v)
					}
					continue
				}
				var s float32
				if bias != nil {
					s = bias[f]
				}
				for tt := 0; tt < K; tt++ {
					s += w[f*K+tt] * col[tt*out+o]
				}
				want := []float32{s}
				act.Apply(want)
				if d := math.Abs(float64(v - want[0])); !(d <= 1e-5*float64(K+1)*(1+math.Abs(float64(want[0])))) {
					t.Fatalf("%s: Y[%d][%d] = %g, want %g", name, f, o, v, want[0])
				}
			}
		}
	}
}

// TestDepthwiseTwin checks the assembly depthwise kernels against
// dwConvGo bit for bit (exact inputs), with guard bands.
func TestDepthwiseTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: -1, Hi: 2}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.25}}
	for _, k := range testKernels() {
		ar := k.arch()
		if ar.asm == 0 {
			continue
		}
		for it := 0; it < 300; it++ {
			outW, outH := 1+r.IntN(70), 1+r.IntN(4)
			taps := 1 + r.IntN(10)
			rowStep := outW + r.IntN(10)
			offs := make([]int32, taps)
			for i := range offs {
				offs[i] = int32(r.IntN(20))
			}
			in := randEighths(r, 20+(outH-1)*rowStep+outW)
			w := randEighths(r, taps)
			bias := randEighths(r, 1)
			ldo := outW + r.IntN(3)
			const band = 17
			got := make([]float32, 2*band+(outH-1)*ldo+outW)
			for i := range got {
				got[i] = guard
			}
			want := append([]float32(nil), got...)
			var ep tileEp
			if r.IntN(2) == 0 {
				ep.flags = epRowBias
				ep.rowBias = &bias[0]
			}
			ep.setAct(acts[r.IntN(len(acts))])
			e2 := ep
			asmDW(ar.asm, got[band:len(got)-band], ldo, outW, outH, in, rowStep, offs, w, &ep)
			dwConvGo(want[band:len(want)-band], ldo, outW, outH, in, rowStep, offs, w, &e2)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s outW=%d outH=%d taps=%d flags=%#x: out[%d] = %g, twin %g", ar.name, outW, outH, taps, ep.flags, i-band, got[i], want[i])
				}
			}
		}
	}
}

// TestGatherRowsTwin checks the assembly row gather (stride 1 and 2)
// against gatherRowsGo, with guard bands around and between the rows.
func TestGatherRowsTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, k := range testKernels() {
		ar := k.arch()
		for it := 0; it < 400; it++ {
			rows, n, stride := 1+r.IntN(4), 1+r.IntN(70), 1+r.IntN(3)
			sp := (n-1)*stride + 1 + r.IntN(4)
			dp := n + r.IntN(4)
			src := randSlice(r, (rows-1)*sp+(n-1)*stride+1)
			const band = 9
			got := make([]float32, 2*band+(rows-1)*dp+n)
			for i := range got {
				got[i] = guard
			}
			want := append([]float32(nil), got...)
			gatherRows(ar.asm, got[band:len(got)-band], dp, src, sp, rows, n, stride)
			gatherRowsGo(want[band:len(want)-band], dp, src, sp, rows, n, stride)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s rows=%d n=%d stride=%d: dst[%d] = %g, twin %g", ar.name, rows, n, stride, i-band, got[i], want[i])
				}
			}
		}
	}
}

// TestDW3x3Twin checks the AVX-512 3x3 depthwise kernel against dw3x3Go
// bit for bit (exact inputs) over sizes, strides, paddings and planes,
// with guard bands after the output.
func TestDW3x3Twin(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.25}}
	for _, kern := range testKernels() {
		ar := kern.arch()
		for it := 0; it < 400; it++ {
			planes, H, W := 1+r.IntN(4), 1+r.IntN(40), 1+r.IntN(70)
			stride, padT, padL := 1+r.IntN(2), r.IntN(3), r.IntN(3)
			padB, padR := r.IntN(3), r.IntN(3)
			outH, outW := (H+padT+padB-3)/stride+1, (W+padL+padR-3)/stride+1
			if outH < 1 || outW < 1 {
				continue
			}
			in := randEighths(r, planes*H*W)
			w := randEighths(r, planes*9)
			var bias []float32
			if r.IntN(2) == 0 {
				bias = randEighths(r, planes)
			}
			n := planes * outH * outW
			const band = 21
			buf := make([]float32, n+2*band)
			for i := range buf {
				buf[i] = guard
			}
			wbuf := append([]float32(nil), buf...)
			got, want := buf[band:], wbuf[band:]
			masks := make([]uint16, (outW+15)/16*8)
			dw3x3Masks(masks, W, outW, stride, padL)
			var ep tileEp
			ep.setAct(acts[r.IntN(len(acts))])
			e2 := ep
			if !dw3x3Asm(ar.asm, got[:n], in, w, bias, masks, planes, H, W, outH, outW, stride, padT, padL, &ep) {
				continue
			}
			dw3x3Go(want[:n], in, w, bias, planes, H, W, outH, outW, stride, padT, padL, &e2)
			for i := range buf {
				if i < band && buf[i] != guard {
					t.Fatalf("guard element %d before the output overwritten", i)
				}
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("planes=%d H=%d W=%d stride=%d pads=%d,%d out=%dx%d: out[%d] = %g, twin %g",
						planes, H, W, stride, padT, padL, outH, outW, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDW3x3SmallTwin checks the one-register-per-plane 3x3 depthwise
// kernel against dw3x3Go bit for bit, with guard bands around the output.
func TestDW3x3SmallTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Lo: 0, Hi: 6}, {Kind: ActHardSwish}, {Kind: ActLeakyRelu, Alpha: 0.25}}
	ran := 0
	for _, kern := range testKernels() {
		ar := kern.arch()
		for it := 0; it < 500; it++ {
			H, W := 1+r.IntN(5), 1+r.IntN(5)
			stride, padT, padL, padB, padR := 1+r.IntN(2), r.IntN(2), r.IntN(2), r.IntN(2), r.IntN(2)
			outH, outW := (H+padT+padB-3)/stride+1, (W+padL+padR-3)/stride+1
			if H*W > 15 || outH < 1 || outW < 1 || outH*outW > 16 {
				continue
			}
			g, err := NewConvGeom([]int{H, W}, []int{outH, outW}, []int{3, 3}, []int{stride, stride}, []int{1, 1}, []int{padT, padL})
			if err != nil {
				t.Fatal(err)
			}
			planes := 1 + r.IntN(5)
			in := randEighths(r, planes*H*W)
			w := randEighths(r, planes*9)
			var bias []float32
			if r.IntN(2) == 0 {
				bias = randEighths(r, planes)
			}
			n := planes * outH * outW
			const band = 19
			buf := make([]float32, n+2*band)
			for i := range buf {
				buf[i] = guard
			}
			wbuf := append([]float32(nil), buf...)
			idx := make([]int32, 9*16)
			dw3x3SmallIdx(idx, &g)
			var ep tileEp
			ep.setAct(acts[r.IntN(len(acts))])
			e2 := ep
			if !dw3x3SmallAsm(ar.asm, buf[band:band+n], in, w, bias, idx, planes, H*W, outH*outW, &ep) {
				continue
			}
			ran++
			dw3x3Go(wbuf[band:band+n], in, w, bias, planes, H, W, outH, outW, stride, padT, padL, &e2)
			for i := range buf {
				if buf[i] != wbuf[i] {
					t.Fatalf("%dx%d stride %d pads %d,%d: element %d = %g, twin %g", H, W, stride, padT, padL, i-band, buf[i], wbuf[i])
				}
			}
		}
	}
	if ran == 0 && hasIndirect(For(kernel.TierAVX512).arch()) {
		t.Fatal("small 3x3 kernel never ran")
	}
}

// TestTransposeTwin checks the scatter transpose against transposeGo, with
// guard bands around and between the rows of y.
func TestTransposeTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 40))
	for _, k := range testKernels() {
		ar := k.arch()
		for it := 0; it < 300; it++ {
			rows, n := 1+r.IntN(20), 1+r.IntN(70)
			ldc := n + r.IntN(4)
			ldy := rows + r.IntN(4)
			ct := randSlice(r, (rows-1)*ldc+n)
			const band = 13
			got := make([]float32, 2*band+(n-1)*ldy+rows)
			for i := range got {
				got[i] = guard
			}
			want := append([]float32(nil), got...)
			transposeInto(ar.asm, got[band:len(got)-band], ldy, ct, ldc, rows, n)
			transposeGo(want[band:len(want)-band], ldy, ct, ldc, rows, n)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s rows=%d n=%d: y[%d] = %g, twin %g", ar.name, rows, n, i-band, got[i], want[i])
				}
			}
		}
	}
}

// TestPointwiseT checks the batched transposed 1x1 convolution against a
// plain loop on every tier.
func TestPointwiseT(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, k := range testKernels() {
		for it := 0; it < 40; it++ {
			B, C, M, S := 1+r.IntN(5), 1+r.IntN(40), 1+r.IntN(50), 1+r.IntN(31)
			x, w, bias := randSlice(r, B*C*S), randSlice(r, M*C), randSlice(r, M)
			act := []Act{{}, {Kind: ActRelu}, {Kind: ActSigmoid}}[r.IntN(3)]
			op := &PointwiseTOp{Batch: B, Channels: C, M: M, Size: S, X: x, PWT: k.PackB(true, C, M, w, C), Y: make([]float32, B*M*S), Act: act}
			if r.IntN(2) == 0 {
				op.Bias = bias
			}
			k.PointwiseT(nil, op)
			for b := 0; b < B; b++ {
				for m := 0; m < M; m++ {
					for s := 0; s < S; s++ {
						var v float32
						for c := 0; c < C; c++ {
							v += w[m*C+c] * x[(b*C+c)*S+s]
						}
						if op.Bias != nil {
							v += bias[m]
						}
						want := []float32{v}
						act.Apply(want)
						got := op.Y[(b*M+m)*S+s]
						if d := math.Abs(float64(got - want[0])); !(d <= 1e-4*float64(C+1)*(1+math.Abs(float64(want[0])))) {
							t.Fatalf("%s B=%d C=%d M=%d S=%d: Y[%d][%d][%d] = %g, want %g", k.Name(), B, C, M, S, b, m, s, got, want[0])
						}
					}
				}
			}
		}
	}
}
