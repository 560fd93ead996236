//go:build amd64 && !noasm

package int8

import "sync"

// hasAMXKernel reports whether the AMX kernel is built.
const hasAMXKernel = true

// amxArgs is the argument block of the AMX kernels (offsets fixed in
// gen_tile.go): cfg is the 64-byte tile configuration (palette 1), a the
// first row of A at the K block (row stride lda bytes), b the first
// panel of B at the K block (panels bstride bytes apart), c the first
// element of C (row stride ldc bytes); mtiles row tiles of 32 rows by np
// panels of 32 columns, ksteps steps of 64 k-values; acc != 0 adds to C.
type amxArgs struct {
	cfg     [64]byte
	a       *uint8
	lda     int
	b       *int8
	bstride int
	c       *int32
	ldc     int
	mtiles  int
	np      int
	ksteps  int
	acc     int
}

// amx11, amx12, amx21, amx22 are the AMX kernels for 1 or 2 row halves by
// 1 or 2 column halves of 16 (the halves' actual rows and columns come
// from the tile configuration). Each call configures the tiles, computes
// and releases them: no tile state survives a call, so the goroutine can
// be rescheduled between calls.
//
//go:noescape
func amx11(p *amxArgs)

//go:noescape
func amx12(p *amxArgs)

//go:noescape
func amx21(p *amxArgs)

//go:noescape
func amx22(p *amxArgs)

// setTile sets tile i's rows and bytes per row in the configuration.
func (p *amxArgs) setTile(i, rows, colsb int) {
	p.cfg[16+2*i] = byte(colsb)
	p.cfg[17+2*i] = byte(colsb >> 8)
	p.cfg[48+i] = byte(rows)
}

// amxImpl returns the AMX kernel's tile shape (32 x 32 blocks).
func amxImpl() (impl, bool) { return impl{mr: 32, nc: 32, amx: true}, true }

// amxTail is the tail buffer of the AMX driver: rows that would read past
// the end of A (at most 63 rows of 64 bytes when K < 64, else one row of
// one K block).
const amxTail = 64 * 64

// runAMX computes rows [r0, r1) by panels [j0, j1) with AMX: K in blocks
// of kc groups, rows reading A in place where the 64-byte k-steps stay
// inside A, the last rows through a stack buffer.
func (t *Task) runAMX(r0, r1, j0, j1 int) {
	b, a, lda := t.Op.B, t.a, t.lda
	K, kg := b.K, b.kp/4
	ms := r1
	for ms > r0 && (ms > t.rowsAvail || (ms-1)*lda+b.ks > len(a)) {
		ms--
	}
	var buf [amxTail]uint8
	for g0 := 0; g0 < kg; g0 += kc {
		gn := min(kc, kg-g0)
		steps := (4*gn + 63) / 64
		ldt := 64 * steps
		acc := g0 > 0 || t.Op.Accumulate
		if ms < r1 {
			if (r1-ms)*ldt > len(buf) {
				panic("int8: internal error: AMX tail too long")
			}
			k0, k1 := 4*g0, min(4*(g0+gn), K)
			for r := ms; r < r1; r++ {
				row := buf[(r-ms)*ldt : (r-ms+1)*ldt]
				n := copy(row, a[r*lda+k0:r*lda+k1])
				clear(row[n:])
			}
			t.amxRegion(buf[:], ldt, 0, ms, r1, j0, j1, g0, steps, acc)
		}
		// Rows read in place go in blocks of about mcBytes of A (L2).
		mb := max(32, mcBytes/ldt/32*32)
		for m0 := r0; m0 < ms; m0 += mb {
			m1 := min(m0+mb, ms)
			t.amxRegion(a, lda, m0*lda+4*g0, m0, m1, j0, j1, g0, steps, acc)
		}
	}
}

// amxRegion computes rows [ra, rb) of C by panels [j0, j1) for one K
// block from A rows in a (row ra at a[aoff], stride lda): full 32-row
// tiles and full panels in one call, the partial row tile and partial
// panel in calls with their own tile configuration.
func (t *Task) amxRegion(a []uint8, lda, aoff, ra, rb, j0, j1, g0, steps int, acc bool) {
	b, N, ldc := t.Op.B, t.Op.B.N, t.ldc
	rows := rb - ra
	rFull := rows / 32 * 32
	pFull := j1
	if j1*nr > N {
		pFull = j1 - 1
	}
	for _, rp := range [2][2]int{{0, rFull}, {rFull, rows}} {
		if rp[0] >= rp[1] {
			continue
		}
		for _, pp := range [2][2]int{{j0, pFull}, {pFull, j1}} {
			if pp[0] >= pp[1] {
				continue
			}
			nrows := min(32, rp[1]-rp[0])
			ncols := min(32, N-(pp[1]-1)*nr) // columns of the last panel of the part
			var p amxArgs
			h0, h1 := min(16, nrows), max(0, nrows-16)
			c0, c1 := min(16, ncols), max(0, ncols-16)
			p.cfg[0] = 1 // palette 1
			p.setTile(0, h0, 4*c0)
			p.setTile(4, h0, 64)
			p.setTile(6, 16, 4*c0)
			if c1 > 0 {
				p.setTile(1, h0, 4*c1)
				p.setTile(7, 16, 4*c1)
			}
			if h1 > 0 {
				p.setTile(2, h1, 4*c0)
				p.setTile(5, h1, 64)
				if c1 > 0 {
					p.setTile(3, h1, 4*c1)
				}
			}
			mtiles := (rp[1] - rp[0] + 31) / 32
			np := pp[1] - pp[0]
			// Bounds of what the kernel touches.
			aLo := aoff + rp[0]*lda
			aHi := aoff + (rp[1]-1)*lda + 64*steps
			bLo := pp[0]*b.ks*nr + g0*nr*4
			bHi := (pp[1]-1)*b.ks*nr + (g0+16*steps-1)*nr*4 + 4*ncols
			cLo := (ra+rp[0])*ldc + pp[0]*nr
			cHi := (ra+rp[1]-1)*ldc + (pp[1]-1)*nr + ncols
			_, _, _ = a[aLo:aHi], b.data[bLo:bHi], t.Op.C[cLo:cHi]
			p.a, p.lda = &a[aLo], lda
			p.b, p.bstride = &b.data[bLo], b.ks*nr
			p.c, p.ldc = &t.Op.C[cLo], 4*ldc
			p.mtiles, p.np, p.ksteps = mtiles, np, steps
			if acc {
				p.acc = 1
			}
			switch {
			case t.amxEmu:
				amxEmulate(&p)
			case h1 > 0 && c1 > 0:
				amx22(&p)
			case h1 > 0:
				amx21(&p)
			case c1 > 0:
				amx12(&p)
			default:
				amx11(&p)
			}
		}
	}
}

// amxSelfTest runs the AMX kernel once on shapes with every kind of tail
// and compares it with GemmRef; KernelAMX is only offered when it passes.
// The kernel could not be run where it was written (no AMX CPU), so this
// guards machines that have AMX against a silently wrong kernel. The
// answer is a fixed property of the machine, computed once.
var amxSelfTest = sync.OnceValue(func() bool {
	seed := uint32(12345)
	next := func() uint32 { seed = seed*1664525 + 1013904223; return seed >> 8 }
	for _, s := range [][3]int{{45, 37, 70}, {16, 16, 64}, {3, 50, 1100}, {70, 100, 7}} {
		M, N, K := s[0], s[1], s[2]
		a := make([]uint8, M*K)
		bm := make([]int8, K*N)
		for i := range a {
			a[i] = uint8(next())
		}
		for i := range bm {
			bm[i] = int8(next())
		}
		want := make([]int32, M*N)
		got := make([]int32, M*N)
		GemmRef(want, a, bm, M, N, K)
		var tk Task
		tk.Kernel, tk.Op = KernelAMX, GemmOp{M: M, A: a, B: PackB(bm, K, N), C: got}
		tk.Run(0, tk.split(impl{mr: 32, nc: 32, amx: true}, 1))
		for i := range want {
			if got[i] != want[i] {
				return false
			}
		}
	}
	return true
})
