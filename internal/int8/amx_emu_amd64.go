//go:build amd64 && !noasm

package int8

import "unsafe"

// amxEmulate does in Go what the AMX kernels (amx11 .. amx22) do, tile by
// tile and pointer by pointer, following the tile configuration in p.cfg:
// tiles 0-3 C, 4-5 A, 6-7 B; tiles with 0 rows are unused. Tests run the
// AMX driver on it (Task.amxEmu), since the machine the kernels were
// written on has no AMX.
func amxEmulate(p *amxArgs) {
	rows := func(i int) int { return int(p.cfg[48+i]) }
	colsb := func(i int) int { return int(p.cfg[16+2*i]) | int(p.cfg[17+2*i])<<8 }
	var tile [8][16][64]byte
	load := func(i int, base unsafe.Pointer, stride int) {
		for r := range rows(i) {
			copy(tile[i][r][:colsb(i)], unsafe.Slice((*byte)(unsafe.Add(base, r*stride)), colsb(i)))
		}
	}
	store := func(i int, base unsafe.Pointer, stride int) {
		for r := range rows(i) {
			copy(unsafe.Slice((*byte)(unsafe.Add(base, r*stride)), colsb(i)), tile[i][r][:colsb(i)])
		}
	}
	word := func(i, r, n int) int32 {
		return int32(uint32(tile[i][r][4*n]) | uint32(tile[i][r][4*n+1])<<8 | uint32(tile[i][r][4*n+2])<<16 | uint32(tile[i][r][4*n+3])<<24)
	}
	setWord := func(i, r, n int, v int32) {
		tile[i][r][4*n], tile[i][r][4*n+1], tile[i][r][4*n+2], tile[i][r][4*n+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	dp := func(c, a, b int) { // TDPBUSD c += a (u8) . b (s8)
		if rows(a) != rows(c) || colsb(b) != colsb(c) || colsb(a)/4 != rows(b) {
			panic("int8: amxEmulate: TDPBUSD with mismatched tiles")
		}
		for m := range rows(c) {
			for n := range colsb(c) / 4 {
				s := word(c, m, n)
				for k := range rows(b) {
					for q := range 4 {
						s += int32(tile[a][m][4*k+q]) * int32(int8(tile[b][k][4*n+q]))
					}
				}
				setWord(c, m, n, s)
			}
		}
	}
	used := func(i int) bool { return rows(i) > 0 }
	// Positions are byte offsets from the argument pointers, turned into
	// pointers only at each access (the kernels' running pointers may end
	// past the operands, which a Go pointer must not).
	a, b, c := unsafe.Pointer(p.a), unsafe.Pointer(p.b), unsafe.Pointer(p.c)
	bp, cp := 0, 0
	for range p.np {
		ap, ct := 0, cp
		for range p.mtiles {
			for i := range 4 {
				if !used(i) {
					continue
				}
				off := ct + 16*p.ldc*(i/2) + 64*(i&1)
				if p.acc != 0 {
					load(i, unsafe.Add(c, off), p.ldc)
				} else {
					tile[i] = [16][64]byte{}
				}
			}
			a0, bk := ap, bp
			for range p.ksteps {
				load(4, unsafe.Add(a, a0), p.lda)
				if used(5) {
					load(5, unsafe.Add(a, a0+16*p.lda), p.lda)
				}
				load(6, unsafe.Add(b, bk), 128)
				if used(7) {
					load(7, unsafe.Add(b, bk+64), 128)
				}
				for i := range 4 {
					if used(i) {
						dp(i, 4+i/2, 6+i&1)
					}
				}
				a0, bk = a0+64, bk+2048
			}
			for i := range 4 {
				if used(i) {
					store(i, unsafe.Add(c, ct+16*p.ldc*(i/2)+64*(i&1)), p.ldc)
				}
			}
			ap, ct = ap+32*p.lda, ct+32*p.ldc
		}
		bp, cp = bp+p.bstride, cp+128
	}
}
