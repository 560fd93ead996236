package fp32

import (
	"math"
	"math/rand/v2"
	"testing"
)

// im2colRef is the plain reference loop for Im2col.
func im2colRef(g *ConvGeom, dst, src []float32, channels, col0, ncol int) {
	K := g.KernelSize()
	for c := 0; c < channels; c++ {
		for kd := 0; kd < g.Kernel[0]; kd++ {
			for kh := 0; kh < g.Kernel[1]; kh++ {
				for kw := 0; kw < g.Kernel[2]; kw++ {
					t := (kd*g.Kernel[1]+kh)*g.Kernel[2] + kw
					for j := 0; j < ncol; j++ {
						o := col0 + j
						od, oh, ow := o/(g.Out[1]*g.Out[2]), o/g.Out[2]%g.Out[1], o%g.Out[2]
						id := od*g.Stride[0] - g.Pad[0] + kd*g.Dilation[0]
						ih := oh*g.Stride[1] - g.Pad[1] + kh*g.Dilation[1]
						iw := ow*g.Stride[2] - g.Pad[2] + kw*g.Dilation[2]
						v := float32(0)
						if id >= 0 && id < g.In[0] && ih >= 0 && ih < g.In[1] && iw >= 0 && iw < g.In[2] {
							v = src[c*g.InSize()+(id*g.In[1]+ih)*g.In[2]+iw]
						}
						dst[(c*K+t)*ncol+j] = v
					}
				}
			}
		}
	}
}

func randGeom(r *rand.Rand) ConvGeom {
	nd := 1 + r.IntN(3)
	in, out, k, s, d, p := make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd)
	for i := 0; i < nd; i++ {
		in[i] = 1 + r.IntN(9)
		k[i] = 1 + r.IntN(4)
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

func TestIm2col(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for it := 0; it < 400; it++ {
		g := randGeom(r)
		ch := 1 + r.IntN(3)
		col0 := r.IntN(g.OutSize())
		ncol := 1 + r.IntN(g.OutSize()-col0)
		src := randSlice(r, ch*g.InSize())
		K := g.KernelSize()
		got := make([]float32, ch*K*ncol+3)
		want := make([]float32, ch*K*ncol)
		for i := range got {
			got[i] = guard
		}
		g.Im2col(got, src, ch, col0, ncol)
		im2colRef(&g, want, src, ch, col0, ncol)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v ch=%d cols [%d,+%d): col[%d] = %g, want %g", g, ch, col0, ncol, i, got[i], want[i])
			}
		}
		for i := len(want); i < len(got); i++ {
			if got[i] != guard {
				t.Fatalf("%+v: guard %d overwritten", g, i)
			}
		}
		// Col2im is the adjoint: <Im2col(x), y> == <x, Col2im(y)>.
		y := randSlice(r, ch*K*ncol)
		back := make([]float32, ch*g.InSize())
		g.Col2im(back, y, ch, col0, ncol)
		var lhs, rhs float64
		for i := range y {
			lhs += float64(want[i]) * float64(y[i])
		}
		for i := range back {
			rhs += float64(src[i]) * float64(back[i])
		}
		if math.Abs(lhs-rhs) > 1e-3*(1+math.Abs(lhs)) {
			t.Fatalf("%+v: Col2im not adjoint: %g vs %g", g, lhs, rhs)
		}
	}
}

func TestNewConvGeomErrors(t *testing.T) {
	one := []int{1}
	if _, err := NewConvGeom([]int{1, 1, 1, 1}, []int{1, 1, 1, 1}, []int{1, 1, 1, 1}, []int{1, 1, 1, 1}, []int{1, 1, 1, 1}, []int{0, 0, 0, 0}); err == nil {
		t.Error("4 dims accepted")
	}
	if _, err := NewConvGeom(one, one, []int{0}, one, one, []int{0}); err == nil {
		t.Error("kernel 0 accepted")
	}
}
