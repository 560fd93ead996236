package fp32

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// guard is the value written around matrices to catch out-of-bounds writes.
const guard = float32(-12345.5)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// gemmCase is one random Gemm problem.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra leading-dimension padding
	padC           int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g pads=%d/%d/%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

// runGemmCase runs gemm and GemmRef on the same data; C has guard bands
// before, after and in the row padding, which must stay untouched.
func runGemmCase(t *testing.T, r *rand.Rand, tc gemmCase, gemm func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.padA, bc+tc.padB, tc.n+tc.padC
	lda, ldb, ldc = max(lda, 1), max(ldb, 1), max(ldc, 1)
	a := randSlice(r, ar*lda)
	b := randSlice(r, br*ldb)
	const band = 7
	c0 := make([]float32, tc.m*ldc+2*band)
	for i := range c0 {
		c0[i] = guard
	}
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			if tc.beta == 0 {
				c0[band+i*ldc+j] = float32(math.NaN()) // must not be read
			} else {
				c0[band+i*ldc+j] = float32(r.NormFloat64())
			}
		}
	}
	got := append([]float32(nil), c0...)
	want := append([]float32(nil), c0...)
	gemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got[band:band+tc.m*ldc], ldc)
	GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want[band:band+tc.m*ldc], ldc)
	for i := range got {
		inC := i >= band && i < band+tc.m*ldc && (i-band)%ldc < tc.n
		if !inC {
			if got[i] != guard {
				t.Fatalf("%v: guard element %d overwritten with %g", tc, i, got[i])
			}
			continue
		}
		tol := 1e-4 * float64(tc.k+1)
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
			t.Fatalf("%v: C[%d] = %g, want %g", tc, i-band, got[i], want[i])
		}
	}
}

func TestGemmRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 97}
	for it := 0; it < 600; it++ {
		tc := gemmCase{
			transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
			m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
			alpha: []float32{1, -0.5, 2, 0}[r.IntN(4)], beta: []float32{0, 1, 0.5, -2}[r.IntN(4)],
			padA: r.IntN(3), padB: r.IntN(3), padC: r.IntN(3),
		}
		runGemmCase(t, r, tc, Gemm)
	}
}

// TestGemmBlocks covers the block edges of the packed path: sizes around
// gemmMC, gemmKC and gemmNC.
func TestGemmBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []gemmCase{
		{m: gemmMC + 3, n: 9, k: gemmKC + 5, alpha: 1, beta: 0},
		{m: 2*gemmMC + 1, n: gemmNC + 6, k: 3, alpha: 1, beta: 1},
		{transA: true, transB: true, m: gemmMC - 1, n: 33, k: 2*gemmKC + 1, alpha: 0.5, beta: -1, padA: 1, padB: 2, padC: 3},
		{transA: true, m: 5, n: gemmNC + 1, k: gemmKC, alpha: 1, beta: 0, padC: 1},
		{transB: true, m: 130, n: 70, k: 300, alpha: 2, beta: 0.5},
	}
	for _, tc := range cases {
		runGemmCase(t, r, tc, Gemm)
	}
}

// gemmViaPacked is Gemm through PackB and GemmPacked.
func gemmViaPacked(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	pb := PackB(transB, k, n, b, ldb)
	if pb.K() != k || pb.N() != n {
		panic("PackedB dimensions")
	}
	GemmPacked(transA, m, alpha, a, lda, pb, beta, c, ldc)
}

func TestGemmPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 9, 17, 33}
	for it := 0; it < 300; it++ {
		tc := gemmCase{
			transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
			m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
			alpha: []float32{1, -0.5, 0}[r.IntN(3)], beta: []float32{0, 1, 0.5}[r.IntN(3)],
			padA: r.IntN(3), padB: r.IntN(3), padC: r.IntN(3),
		}
		runGemmCase(t, r, tc, gemmViaPacked)
	}
	for _, tc := range []gemmCase{
		{m: 5, n: gemmNC + 7, k: gemmKC + 3, alpha: 1, beta: 0, padB: 1},
		{transA: true, transB: true, m: gemmMC + 1, n: 2*gemmNC + 1, k: 2*gemmKC + 9, alpha: 1, beta: 1},
	} {
		runGemmCase(t, r, tc, gemmViaPacked)
	}
}

func BenchmarkGemmSmallM(b *testing.B) {
	const n, k = 512, 512
	for _, m := range []int{1, 2, 8, 32} {
		r := rand.New(rand.NewPCG(1, 1))
		x := randSlice(r, m*k)
		y := randSlice(r, k*n)
		z := make([]float32, m*n)
		pb := PackB(false, k, n, y, n)
		b.Run(fmt.Sprintf("m=%d/Gemm", m), func(b *testing.B) {
			b.SetBytes(int64(2 * m * n * k))
			for b.Loop() {
				Gemm(false, false, m, n, k, 1, x, k, y, n, 0, z, n)
			}
		})
		b.Run(fmt.Sprintf("m=%d/GemmPacked", m), func(b *testing.B) {
			b.SetBytes(int64(2 * m * n * k))
			b.ReportAllocs()
			for b.Loop() {
				GemmPacked(false, m, 1, x, k, pb, 0, z, n)
			}
		})
	}
}

func BenchmarkGemm(b *testing.B) {
	for _, sz := range []int{64, 256, 512} {
		for _, tr := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/transB=%v", sz, tr), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				x := randSlice(r, sz*sz)
				y := randSlice(r, sz*sz)
				z := make([]float32, sz*sz)
				b.SetBytes(int64(2 * sz * sz * sz)) // flops, reported as MB/s = MFLOP/s
				b.ReportAllocs()
				for b.Loop() {
					Gemm(false, tr, sz, sz, sz, 1, x, sz, y, sz, 0, z, sz)
				}
			})
		}
	}
}

func BenchmarkGemmRef(b *testing.B) {
	const sz = 256
	r := rand.New(rand.NewPCG(1, 1))
	x := randSlice(r, sz*sz)
	y := randSlice(r, sz*sz)
	z := make([]float32, sz*sz)
	b.SetBytes(int64(2 * sz * sz * sz))
	for b.Loop() {
		GemmRef(false, false, sz, sz, sz, 1, x, sz, y, sz, 0, z, sz)
	}
}
