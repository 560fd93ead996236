package fp32

// Packed layouts. A block of op(A) (mb x kb) is stored as strips of mr
// rows: strip s (rows s*mr...) starts at s*mr*kb and holds, for each p <
// kb, the mr values op(A)[s*mr+r][p] (zero past the last row). A panel of
// op(B) (kb x nb) is stored as strips of nr columns: the strip of columns
// j... starts at j*kb and holds, for each p, w values op(B)[p][j+c], where
// w = stripWidth(columns left) (nr, or fewer for the last strip), zero
// past the last column.

// packA packs the mb x kb block of op(A) at (i0, p0) into dst.
func packA(mr int, trans bool, mb, kb int, a []float32, lda, i0, p0 int, dst []float32) {
	for s := 0; s < mb; s += mr {
		rows := min(mr, mb-s)
		d := dst[s*kb : (s+mr)*kb]
		if rows < mr {
			clear(d) // rows past the block stay zero
		}
		if trans {
			// op(A)[i][p] = a[p*lda+i]: rows values are contiguous per p.
			if rows == 8 && mr == 8 {
				for p := 0; p < kb; p++ {
					off := (p0+p)*lda + i0 + s
					*(*[8]float32)(d[p*8 : p*8+8]) = *(*[8]float32)(a[off : off+8])
				}
				continue
			}
			for p := 0; p < kb; p++ {
				off := (p0+p)*lda + i0 + s
				copy(d[p*mr:p*mr+rows], a[off:off+rows])
			}
			continue
		}
		if rows == 8 && mr == 8 {
			packA8(kb, a, lda, (i0+s)*lda+p0, d)
			continue
		}
		for r := 0; r < rows; r++ {
			off := (i0+s+r)*lda + p0
			for p, v := range a[off : off+kb] {
				d[p*mr+r] = v
			}
		}
	}
}

// packA8 interleaves 8 rows of kb values (row r at off+r*lda) into d.
func packA8(kb int, a []float32, lda, off int, d []float32) {
	r0 := a[off : off+kb]
	r1 := a[off+lda : off+lda+kb]
	r2 := a[off+2*lda : off+2*lda+kb]
	r3 := a[off+3*lda : off+3*lda+kb]
	r4 := a[off+4*lda : off+4*lda+kb]
	r5 := a[off+5*lda : off+5*lda+kb]
	r6 := a[off+6*lda : off+6*lda+kb]
	r7 := a[off+7*lda : off+7*lda+kb]
	d = d[:8*kb]
	for p := range r0 {
		dd := d[p*8 : p*8+8 : p*8+8]
		dd[0], dd[1], dd[2], dd[3] = r0[p], r1[p], r2[p], r3[p]
		dd[4], dd[5], dd[6], dd[7] = r4[p], r5[p], r6[p], r7[p]
	}
}

// packRows packs the kb x nb panel whose row p is src[off(p):off(p)+nb],
// off(p) = offs[p] or p*stride when offs is nil, into dst (kb, nb >= 1).
func (ar *arch) packRows(dst, src []float32, offs []int32, stride, kb, nb int) {
	if ar.asm != 0 {
		asmPackRows(ar.asm, dst, src, offs, stride, kb, nb, kb*roundUp(nb, ar.vl))
		return
	}
	packRowsGo(ar.nr, ar.vl, dst, src, offs, stride, kb, nb)
}

// packRowsGo is the pure-Go twin of the assembly packers (packRowsAVX512,
// packRowsAVX2) and the generic tier's packer:
//
//	for p < kb, j < nb: dst[s*kb + p*w + c] = src[off(p) + j]
//
// with j = s + c, s a multiple of nr, w = min(nr, roundUp(nb-s, vl)) and
// zeros for c past the last column of the last strip.
func packRowsGo(nr, vl int, dst, src []float32, offs []int32, stride, kb, nb int) {
	for p := 0; p < kb; p++ {
		off := p * stride
		if offs != nil {
			off = int(offs[p])
		}
		row := src[off : off+nb]
		s := 0
		for ; s+nr <= nb; s += nr {
			d := s*kb + p*nr
			copy(dst[d:d+nr], row[s:s+nr])
		}
		if s < nb {
			cols := nb - s
			w := min(nr, roundUp(cols, vl))
			d := dst[s*kb+p*w : s*kb+p*w+w]
			copy(d, row[s:])
			clear(d[cols:])
		}
	}
}

// packB packs the kb x nb panel of op(B) at (p0, j0) into dst.
func (ar *arch) packB(trans bool, kb, nb int, b []float32, ldb, p0, j0 int, dst []float32) {
	nr := ar.nr
	if !trans {
		// op(B)[p][j] = b[p*ldb+j]: rows are contiguous.
		ar.packRows(dst, b[p0*ldb+j0:], nil, ldb, kb, nb)
		return
	}
	// op(B)[p][j] = b[j*ldb+p]: columns are contiguous.
	for s := 0; s < nb; s += nr {
		cols := min(nr, nb-s)
		w := ar.stripWidth(cols)
		d := dst[s*kb : s*kb+kb*w]
		for c := 0; c < cols; c++ {
			off := (j0+s+c)*ldb + p0
			for p, v := range b[off : off+kb] {
				d[p*w+c] = v
			}
		}
		for c := cols; c < w; c++ {
			for p := 0; p < kb; p++ {
				d[p*w+c] = 0
			}
		}
	}
}

// scatterRow stores row p (nb values) of a kb-deep panel into its strips.
func (ar *arch) scatterRow(row []float32, p, kb int, dst []float32) {
	nr, nb := ar.nr, len(row)
	s := 0
	for ; s+nr <= nb; s += nr {
		off := s*kb + p*nr
		copy(dst[off:off+nr], row[s:s+nr])
	}
	if s < nb {
		cols := nb - s
		w := ar.stripWidth(cols)
		off := s*kb + p*w
		d := dst[off : off+w]
		copy(d, row[s:])
		clear(d[cols:])
	}
}

// ConvSource is the right-hand operand of a convolution as a GEMM: the
// column matrix of an image (see ConvGeom.Im2col), packed straight from the
// image without materializing it. Row q = c*KernelSize + t of the matrix is
// tap t of channel c; column j is window position Col0 + j.
type ConvSource struct {
	Geom     *ConvGeom
	Image    []float32 // Channels x Geom.InSize() values
	Channels int
	Col0     int
}

// pack packs the kb x nb panel at (p0, j0) of the column matrix into dst;
// row is scratch for one row of nb values.
func (cs *ConvSource) pack(ar *arch, kb, nb, p0, j0 int, dst, row []float32) {
	g := cs.Geom
	K, inSize := g.KernelSize(), g.InSize()
	row = row[:nb]
	for p := 0; p < kb; p++ {
		q := p0 + p
		c, t := q/K, q%K
		g.tapRow(row, cs.Image[c*inSize:(c+1)*inSize], t, cs.Col0+j0, false)
		ar.scatterRow(row, p, kb, dst)
	}
}
