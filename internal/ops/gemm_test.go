package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// gemmRef computes alpha*op(A)*op(B) + beta*C with C broadcast.
func gemmRef(transA, transB bool, m, n, k int, alpha, beta float64, a, b, cv []float64, cs tensor.Shape) []float64 {
	y := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				av := a[i*k+p]
				if transA {
					av = a[p*m+i]
				}
				bv := b[p*n+j]
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			y[i*n+j] = alpha * s
			if cv != nil {
				ci, cj := 0, 0
				if len(cs) == 2 && cs[0] != 1 {
					ci = i
				}
				if len(cs) >= 1 && cs[len(cs)-1] != 1 {
					cj = j
				}
				stride := 1
				if len(cs) >= 1 {
					stride = cs[len(cs)-1]
				}
				y[i*n+j] += beta * cv[ci*stride+cj]
			}
		}
	}
	return y
}

func TestGemmOp(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64}
	for it := 0; it < 250; it++ {
		dt := dts[it%len(dts)]
		m, n, k := 1+r.IntN(20), 1+r.IntN(20), r.IntN(20)
		if it%25 == 0 {
			m, n, k = 70+r.IntN(60), 60+r.IntN(60), 50+r.IntN(300)
		}
		if dt == tensor.Float16 {
			k = min(k, 8)
		}
		transA, transB := r.IntN(2) == 1, r.IntN(2) == 1
		alpha, beta := []float64{1, 0.5, -2}[r.IntN(3)], []float64{1, 0, 0.25}[r.IntN(3)]
		integer := dt != tensor.Float32 && dt != tensor.Float64 && dt != tensor.Float16
		if integer {
			alpha, beta = 1, 1
		}
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
		if integer {
			for i := range av {
				av[i] = float64(r.IntN(7))
			}
			for i := range bv {
				bv[i] = float64(r.IntN(7))
			}
		}
		in := []*tensor.Tensor{nnTensor(dt, as, av), nnTensor(dt, bs, bv)}
		var cv []float64
		if cs != nil {
			cv = nnRandVals(r, cs.Size())
			if integer {
				for i := range cv {
					cv[i] = float64(r.IntN(7))
				}
			}
			in = append(in, nnTensor(dt, cs, cv))
		}
		want := gemmRef(transA, transB, m, n, k, alpha, beta, av, bv, cv, cs)
		attrs := ir.Attrs{ir.IntAttr("transA", b2i(transA)), ir.IntAttr("transB", b2i(transB)),
			ir.FloatAttr("alpha", float32(alpha)), ir.FloatAttr("beta", float32(beta))}
		out, err := nnRun("Gemm", 13, attrs, 1, 1+it%3, it%2 == 0, in...)
		if err != nil {
			t.Fatalf("Gemm %v m=%d n=%d k=%d C=%v: %v", dt, m, n, k, cs, err)
		}
		tol := nnTol(dt)
		if dt == tensor.Float32 {
			tol = 1e-4 * float64(k+1)
		}
		nnCheck(t, fmt.Sprintf("Gemm %v tA=%v tB=%v m=%d n=%d k=%d C=%v", dt, transA, transB, m, n, k, cs), out[0], dt, tensor.Shape{m, n}, want, tol)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestGemmOpErrors(t *testing.T) {
	a := nnTensor(tensor.Float32, tensor.Shape{2, 3}, make([]float64, 6))
	b := nnTensor(tensor.Float32, tensor.Shape{3, 4}, make([]float64, 12))
	bad := nnTensor(tensor.Float32, tensor.Shape{2, 4}, make([]float64, 8))
	_, err := nnRun("Gemm", 13, nil, 1, 1, false, a, bad)
	nnWantErr(t, "inner", err, "inner dimensions differ")
	_, err = nnRun("Gemm", 9, nil, 1, 1, false, a, b)
	nnWantErr(t, "C required", err, "input C is required before opset 11")
	_, err = nnRun("Gemm", 13, nil, 1, 1, false, a, b, nnTensor(tensor.Float32, tensor.Shape{3, 4}, make([]float64, 12)))
	nnWantErr(t, "C shape", err, "cannot broadcast")
	_, err = nnRun("Gemm", 13, nil, 1, 1, false, nnTensor(tensor.Float32, tensor.Shape{2, 3, 1}, make([]float64, 6)), b)
	nnWantErr(t, "rank", err, "rank-2")
	_, err = nnRun("Gemm", 13, nil, 1, 1, false, nnTensor(tensor.Int8, tensor.Shape{2, 3}, make([]float64, 6)), nnTensor(tensor.Int8, tensor.Shape{3, 4}, make([]float64, 12)))
	nnWantErr(t, "dtype", err, "does not support int8")
}

// matmulRef is numpy.matmul over float64 values.
func matmulRef(as, bs tensor.Shape, a, b []float64) ([]float64, tensor.Shape) {
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = tensor.Shape{1, as[0]}
	}
	if len(bs) == 1 {
		b2 = tensor.Shape{bs[0], 1}
	}
	m, k, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
	batch, err := BroadcastShapes(a2[:len(a2)-2], b2[:len(b2)-2])
	if err != nil {
		panic(err)
	}
	out := append(tensor.Shape{}, batch...)
	if len(as) > 1 {
		out = append(out, m)
	}
	if len(bs) > 1 {
		out = append(out, n)
	}
	y := make([]float64, out.Size())
	idx := make([]int, len(batch))
	nb := batch.Size()
	for bi := 0; bi < nb; bi++ {
		// Offsets of the operands for this batch index.
		off := func(s tensor.Shape) int {
			o, st := 0, 1
			for d := len(s) - 1; d >= 0; d-- {
				i := idx[len(idx)-len(s)+d]
				if s[d] == 1 {
					i = 0
				}
				o += i * st
				st *= s[d]
			}
			return o
		}
		oa := off(a2[:len(a2)-2]) * m * k
		ob := off(b2[:len(b2)-2]) * k * n
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := 0.0
				for p := 0; p < k; p++ {
					s += a[oa+i*k+p] * b[ob+p*n+j]
				}
				y[bi*m*n+i*n+j] = s
			}
		}
		nnNextIdx(idx, batch)
	}
	return y, out
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	shapes := [][2]tensor.Shape{
		{{3}, {3}},
		{{3}, {3, 4}},
		{{2, 3}, {3}},
		{{5, 2, 3}, {3, 4}},
		{{2, 3}, {4, 3, 5}},
		{{2, 1, 2, 3}, {3, 3, 4}},
		{{1, 3}, {4, 3, 2}},
		{{4, 1, 3}, {1, 3, 2}},
		{{3, 7}, {2, 1, 7, 5}},
		{{6}, {2, 6, 3}},
		{{2, 4, 6}, {6}},
		{{2, 0, 3}, {3, 4}},
		{{2, 3, 0}, {0, 4}},
		{{65, 130}, {130, 70}},
		{{3, 40, 50}, {3, 50, 60}},
		{{1, 37, 200}, {200, 150}},
	}
	dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64}
	for i, sh := range shapes {
		for _, dt := range dts {
			av, bv := nnRandVals(r, sh[0].Size()), nnRandVals(r, sh[1].Size())
			integer := dt != tensor.Float32 && dt != tensor.Float64 && dt != tensor.Float16
			if integer || dt == tensor.Float16 {
				for j := range av {
					av[j] = float64(r.IntN(5))
				}
				for j := range bv {
					bv[j] = float64(r.IntN(5))
				}
			}
			want, ys := matmulRef(sh[0], sh[1], av, bv)
			out, err := nnRun("MatMul", 13, nil, 1, 1+i%3, i%2 == 0, nnTensor(dt, sh[0], av), nnTensor(dt, sh[1], bv))
			if err != nil {
				t.Fatalf("MatMul %v x %v %v: %v", sh[0], sh[1], dt, err)
			}
			tol := nnTol(dt)
			if dt == tensor.Float32 {
				tol = 1e-3
			}
			nnCheck(t, fmt.Sprintf("MatMul %v x %v %v", sh[0], sh[1], dt), out[0], dt, ys, want, tol)
		}
	}
}

func TestMatMulErrors(t *testing.T) {
	f := func(s ...int) *tensor.Tensor {
		return nnTensor(tensor.Float32, s, make([]float64, tensor.Shape(s).Size()))
	}
	_, err := nnRun("MatMul", 13, nil, 1, 1, false, f(2, 3), f(4, 5))
	nnWantErr(t, "inner", err, "inner dimensions differ")
	_, err = nnRun("MatMul", 13, nil, 1, 1, false, f(2, 2, 3), f(3, 3, 4))
	nnWantErr(t, "batch", err, "batch dimensions")
	_, err = nnRun("MatMul", 13, nil, 1, 1, false, nnTensor(tensor.Float32, tensor.Shape{}, []float64{1}), f(3))
	nnWantErr(t, "scalar", err, "rank >= 1")
}

func BenchmarkMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			x := nnTensor(tensor.Float32, tensor.Shape{8, 128, 256}, nnRandVals(r, 8*128*256))
			w := nnTensor(tensor.Float32, tensor.Shape{256, 256}, nnRandVals(r, 256*256))
			b.SetBytes(2 * 8 * 128 * 256 * 256)
			for b.Loop() {
				if _, err := nnRun("MatMul", 13, nil, 1, threads, true, x, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPackedConstB runs MatMul and Gemm with a constant float32 B (packed
// at build time) on several threads, against the reference.
func TestPackedConstB(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	as, bs := tensor.Shape{3, 50, 120}, tensor.Shape{120, 90}
	av, bv := nnRandVals(r, as.Size()), nnRandVals(r, bs.Size())
	want, ys := matmulRef(as, bs, av, bv)
	for _, threads := range []int{1, 3} {
		out, err := nnRun("MatMul", 13, nil, 1, threads, true, nnTensor(tensor.Float32, as, av), nnTensor(tensor.Float32, bs, bv))
		if err != nil {
			t.Fatal(err)
		}
		nnCheck(t, fmt.Sprintf("MatMul packed threads=%d", threads), out[0], tensor.Float32, ys, want, 1e-3)
	}
	// Gemm with transB (PyTorch Linear): B is (N, K).
	m, n, k := 150, 70, 110
	av, bv = nnRandVals(r, m*k), nnRandVals(r, n*k)
	cv := nnRandVals(r, n)
	want = gemmRef(false, true, m, n, k, 1, 1, av, bv, cv, tensor.Shape{n})
	for _, threads := range []int{1, 3} {
		out, err := nnRun("Gemm", 13, ir.Attrs{ir.IntAttr("transB", 1)}, 1, threads, true,
			nnTensor(tensor.Float32, tensor.Shape{m, k}, av), nnTensor(tensor.Float32, tensor.Shape{n, k}, bv), nnTensor(tensor.Float32, tensor.Shape{n}, cv))
		if err != nil {
			t.Fatal(err)
		}
		nnCheck(t, fmt.Sprintf("Gemm packed threads=%d", threads), out[0], tensor.Float32, tensor.Shape{m, n}, want, 1e-3)
	}
}
