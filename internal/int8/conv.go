package int8

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/goslim/goslim/internal/kernel"
)

// ConvShape is a 2-D convolution of one NCHW image (a 1-D convolution is
// the case H = KH = 1): C input channels of H x W, M output channels of
// OH x OW, Group groups, kernel KH x KW, strides, dilations and begin/end
// paddings.
type ConvShape struct {
	C, H, W    int
	M, Group   int
	KH, KW     int
	SH, SW     int
	DH, DW     int
	PadT, PadL int
	PadB, PadR int
	OH, OW     int
}

// check validates the shape's internal consistency.
func (s *ConvShape) check() error {
	switch {
	case s.C <= 0 || s.H <= 0 || s.W <= 0 || s.M <= 0 || s.Group <= 0 || s.KH <= 0 || s.KW <= 0:
		return fmt.Errorf("int8: conv: non-positive size in %+v", *s)
	case s.C%s.Group != 0 || s.M%s.Group != 0:
		return fmt.Errorf("int8: conv: %d input and %d output channels not divisible by %d groups", s.C, s.M, s.Group)
	case s.SH <= 0 || s.SW <= 0 || s.DH <= 0 || s.DW <= 0 || s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0:
		return fmt.Errorf("int8: conv: bad strides, dilations or pads in %+v", *s)
	case s.OH <= 0 || s.OW <= 0 ||
		(s.OH-1)*s.SH+(s.KH-1)*s.DH >= s.H+s.PadT+s.PadB || (s.OW-1)*s.SW+(s.KW-1)*s.DW >= s.W+s.PadL+s.PadR:
		return fmt.Errorf("int8: conv: output %dx%d does not fit the padded input of %+v", s.OH, s.OW, *s)
	}
	return nil
}

// pointwise reports a 1x1 convolution with unit strides, no padding and
// one group: the transposed input is the GEMM operand as it is.
func (s *ConvShape) pointwise() bool {
	return s.KH == 1 && s.KW == 1 && s.SH == 1 && s.SW == 1 && s.Group == 1 &&
		s.PadT == 0 && s.PadL == 0 && s.PadB == 0 && s.PadR == 0
}

// ConvWeights are a convolution's int8 weights (M, C/group, KH, KW)
// prepared once: per group, W^T packed as the right GEMM operand with the
// reduction index ordered (kh, kw, c) to match the rows of the input
// patches; or, for depthwise convolutions (one input and one output
// channel per group), the zero-point-corrected taps of a direct kernel.
type ConvWeights struct {
	M, Cg, KH, KW, Group int
	k                    int // KH*KW*Cg
	packed               []*PackedB
	colSum               []int32 // per output channel: sum of its weights
	zb                   []int32 // per output channel zero point; nil when all 0
	dw                   []int32 // depthwise: w - zb, M x KH*KW
	dwSum                []int32 // depthwise: sum of w - zb per channel

	// ConvBatch's extras (see prepareBatch).
	batch batchWeights
}

// NewConvWeights prepares weights w (row-major M x Cg x KH x KW) with
// zero points zb (nil, one value, or one per output channel).
func NewConvWeights(w []int8, zb []int32, M, Cg, KH, KW, group int) (*ConvWeights, error) {
	if M <= 0 || Cg <= 0 || KH <= 0 || KW <= 0 || group <= 0 || M%group != 0 {
		return nil, fmt.Errorf("int8: conv weights: bad shape M=%d Cg=%d %dx%d group %d", M, Cg, KH, KW, group)
	}
	k := KH * KW * Cg
	if len(w) < M*k {
		return nil, fmt.Errorf("int8: conv weights: %d values, want %d", len(w), M*k)
	}
	if len(zb) != 0 && len(zb) != 1 && len(zb) != M {
		return nil, fmt.Errorf("int8: conv weights: %d zero points for %d output channels", len(zb), M)
	}
	cw := &ConvWeights{M: M, Cg: Cg, KH: KH, KW: KW, Group: group, k: k}
	zbAt := func(m int) int32 {
		switch len(zb) {
		case 0:
			return 0
		case 1:
			return zb[0]
		}
		return zb[m]
	}
	// w - zb must fit int16 (the depthwise assembly kernels hold it so).
	for m := range M {
		z := int64(zbAt(m))
		for _, v := range w[m*k : (m+1)*k] {
			if d := int64(v) - z; d > 32767 || d < -32767 {
				return nil, fmt.Errorf("int8: conv weights: channel %d: zero point %d is more than 32767 from weight %d", m, z, v)
			}
		}
	}
	for m := range M {
		if zbAt(m) != 0 {
			cw.zb = make([]int32, M)
			for i := range cw.zb {
				cw.zb[i] = zbAt(i)
			}
			break
		}
	}
	mg := M / group
	if Cg == 1 && mg == 1 {
		taps := KH * KW
		cw.dw = make([]int32, M*taps)
		cw.dwSum = make([]int32, M)
		for m := range M {
			for t := range taps {
				v := int32(w[m*taps+t]) - zbAt(m)
				cw.dw[m*taps+t] = v
				cw.dwSum[m] += v
			}
		}
		return cw, nil
	}
	// W^T per group, rows ordered (kh, kw, c), padded with zero rows to a
	// multiple of 4 so that patch rows need no copy in Gemm.
	kp := (k + 3) &^ 3
	bt := make([]int8, kp*mg)
	cw.packed = make([]*PackedB, group)
	cw.colSum = make([]int32, M)
	for g := range group {
		for j := range mg {
			m := g*mg + j
			for c := range Cg {
				for t := range KH * KW {
					bt[(t*Cg+c)*mg+j] = w[(m*Cg+c)*KH*KW+t]
				}
			}
		}
		cw.packed[g] = PackB(bt, kp, mg)
		copy(cw.colSum[g*mg:], cw.packed[g].ColSums())
	}
	cw.prepareBatch(w)
	return cw, nil
}

// Depthwise reports whether the weights run the direct depthwise kernel.
func (cw *ConvWeights) Depthwise() bool { return cw.dw != nil }

// convRowAlign aligns patch-row blocks to the GEMM's register-tile rows.
const convRowAlign = 12

// convBlockBytes bounds the patch rows one GEMM call reads.
const convBlockBytes = 48 << 10

// convPlan is the buffer layout of one Conv call.
type convPlan struct {
	cs, hp, wp, p int // transposed-input row stride, padded height and width, output positions
	kp            int // reduction length padded to 4
	rows          int // patch rows per block (multiple of convRowAlign)
	blocks        int // blocks per group
	xt            int // bytes of the transposed input (int32 words)
	perThread     int // int32 words per thread
	plane         int // depthwise: bytes of the padded plane buffer
}

func (cw *ConvWeights) plan(s *ConvShape, threads int) convPlan {
	var pl convPlan
	pl.p = s.OH * s.OW
	pl.hp, pl.wp = s.H+s.PadT+s.PadB, s.W+s.PadL+s.PadR
	if cw.dw != nil {
		// Padded plane (bytes, with slack for the vector kernel's wide
		// rows) and accumulators (OH full padded rows), per thread.
		pl.plane = max(pl.hp*pl.wp, (s.KH-1)*s.DH*pl.wp+(s.KW-1)*s.DW+s.SW*(s.OH*pl.wp-1)+1) + dwSlack
		pl.perThread = (pl.plane+3)/4 + max(pl.p, s.OH*pl.wp)
		return pl
	}
	pl.kp = (cw.k + 3) &^ 3
	pl.cs = s.C
	if s.pointwise() {
		pl.cs = pl.kp
	}
	pl.xt = (pl.hp*pl.wp*pl.cs + 3) / 4
	pl.rows = max(convRowAlign, convBlockBytes/pl.kp/convRowAlign*convRowAlign)
	pl.rows = min(pl.rows, (pl.p+convRowAlign-1)/convRowAlign*convRowAlign)
	pl.blocks = (pl.p + pl.rows - 1) / pl.rows
	mg := s.M / s.Group
	// A block (bytes), C block, row sums, eight requantized rows.
	pl.perThread = (pl.rows*pl.kp+3)/4 + pl.rows*mg + pl.rows + 2*mg
	return pl
}

// ConvScratch returns the int32 words of workspace Conv needs for shape s
// with up to threads parallel workers.
func (cw *ConvWeights) ConvScratch(s *ConvShape, threads int) int {
	pl := cw.plan(s, threads)
	return pl.xt + s.M + max(threads, 1)*pl.perThread
}

// bytesOf views int32 words as bytes.
func bytesOf(w []int32) []uint8 {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(&w[0])), 4*len(w))
}

// ConvArgs are the run-time operands of one Conv call.
type ConvArgs struct {
	// X is one image, C x H x W; when Signed, it holds int8 values
	// (stored as their bytes) and Zero is an int8 zero point.
	X      []uint8
	Signed bool
	Zero   int32
	// Bias is nil or one int32 per output channel, added to the
	// accumulators before requantization.
	Bias []int32
	Req  *Requant
	// WS is workspace of at least ConvScratch words.
	WS []int32
	// Threads bounds the parallel workers; Par runs fn over [0, n) in
	// contiguous chunks (nil: serially).
	Threads int
	Par     func(n int, fn func(lo, hi int))
}

// Conv computes one image of a quantized convolution:
//
//	Y[m, p] = requant(sum_k (X'[p, k] - za) * (W[m, k] - zb[m]) + bias[m])
//
// with X' the input patches padded WITH THE ZERO POINT (so padding taps
// contribute nothing). y (M x OH x OW, channel-major) receives uint8 or
// int8 values per the requantization's range, or, when a.Req is nil, the
// int32 sums themselves (y must then be []int32). int8 activations are
// shifted to uint8 by +128 (zero point too), which changes no product of
// zero-point-corrected values. The GEMM path transposes the padded image to
// rows of channels, gathers patch rows in blocks that fit the L1/L2 cache,
// multiplies them with the packed weights (1x1 convolutions use the
// transposed image directly) and requantizes each block into Y; the
// depthwise path runs a direct loop per channel. Results do not depend on
// the tier or the thread count.
func Conv[T uint8 | int8 | int32](tier kernel.Tier, s *ConvShape, cw *ConvWeights, a *ConvArgs, y []T) error {
	if err := s.check(); err != nil {
		return err
	}
	if cw.M != s.M || cw.Group != s.Group || cw.Cg*s.Group != s.C || cw.KH != s.KH || cw.KW != s.KW {
		return fmt.Errorf("int8: conv: weights M=%d Cg=%d %dx%d group %d do not match %+v", cw.M, cw.Cg, cw.KH, cw.KW, cw.Group, *s)
	}
	threads := max(a.Threads, 1)
	if a.Par == nil {
		threads = 1
	}
	pl := cw.plan(s, threads)
	if len(a.X) < s.C*s.H*s.W || len(y) < s.M*pl.p || len(a.WS) < pl.xt+s.M+threads*pl.perThread {
		return fmt.Errorf("int8: conv: short input, output or workspace")
	}
	if err := checkRunArgs(s, a.Signed, a.Zero, a.Bias, a.Req, y); err != nil {
		return err
	}
	za := a.Zero
	var flip uint8
	if a.Signed {
		flip, za = 0x80, za+128
	}
	par := a.Par
	if par == nil || threads == 1 {
		par = func(n int, fn func(lo, hi int)) { fn(0, n) }
	}
	ws := a.WS
	if cw.dw != nil {
		par(threads, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				c0, c1 := t*s.M/threads, (t+1)*s.M/threads
				buf := ws[pl.xt+s.M+t*pl.perThread : pl.xt+s.M+(t+1)*pl.perThread]
				convDepthwise(tier, s, cw, &pl, a, flip, za, y, buf, c0, c1)
			}
		})
		return nil
	}
	xt := bytesOf(ws[:pl.xt])[:pl.hp*pl.wp*pl.cs]
	transposePad(tier, xt, a.X, s, &pl, flip, uint8(za))
	off := ws[pl.xt : pl.xt+s.M]
	for m := range s.M {
		var b, zb int32
		if a.Bias != nil {
			b = a.Bias[m]
		}
		if cw.zb != nil {
			zb = cw.zb[m]
		}
		off[m] = b - za*cw.colSum[m] + int32(cw.k)*za*zb
	}
	jobs := s.Group * pl.blocks
	par(threads, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			buf := ws[pl.xt+s.M+t*pl.perThread : pl.xt+s.M+(t+1)*pl.perThread]
			for j := t * jobs / threads; j < (t+1)*jobs/threads; j++ {
				convBlock(tier, s, cw, &pl, a, xt, off, y, buf, j/pl.blocks, j%pl.blocks)
			}
		}
	})
	return nil
}

// checkRunArgs checks the run-time operands Conv and ConvBatch share: the
// input zero point within the input type, the output type against the
// requantization (int32 exactly when there is none; a clamp range within
// uint8 or int8), one multiplier or one per channel, a bias per channel.
func checkRunArgs[T uint8 | int8 | int32](s *ConvShape, signed bool, zero int32, bias []int32, r *Requant, y []T) error {
	zlo, zhi, typ := int32(0), int32(255), "uint8"
	if signed {
		zlo, zhi, typ = -128, 127, "int8"
	}
	if zero < zlo || zero > zhi {
		return fmt.Errorf("int8: conv: input zero point %d outside the %s range [%d, %d]", zero, typ, zlo, zhi)
	}
	if bias != nil && len(bias) < s.M {
		return fmt.Errorf("int8: conv: %d bias values for %d channels", len(bias), s.M)
	}
	var lo, hi int32
	switch any(y).(type) {
	case []int32:
		if r != nil {
			return fmt.Errorf("int8: conv: int32 output with a requantization (want uint8 or int8)")
		}
		return nil
	case []uint8:
		lo, hi = 0, 255
	default:
		lo, hi = -128, 127
	}
	if r == nil {
		return fmt.Errorf("int8: conv: 8-bit output without a requantization (int32 output goes with none)")
	}
	if r.Lo < lo || r.Hi > hi {
		return fmt.Errorf("int8: conv: requantization range [%d, %d] does not fit the %T output", r.Lo, r.Hi, y)
	}
	if len(r.Mult) != 1 && len(r.Mult) < s.M || len(r.Shift) != len(r.Mult) {
		return fmt.Errorf("int8: conv: %d requantization multipliers (%d shifts) for %d channels, want 1 or %d", len(r.Mult), len(r.Shift), s.M, s.M)
	}
	return nil
}

// transposePad writes the image x (C x H x W) as rows of channels
// xt[(ih*wp + iw)*cs + c] over the padded plane, padding with the zero
// point z (and the row tail beyond C with 0), flipping the sign bit of
// int8 inputs.
func transposePad(tier kernel.Tier, xt, x []uint8, s *ConvShape, pl *convPlan, flip, z uint8) {
	cs := pl.cs
	// Padding rows and columns get the zero point (interior positions are
	// overwritten below), the row tail beyond C gets 0.
	fill := func(p0, p1 int) {
		seg := xt[p0*cs : p1*cs]
		for i := range seg {
			seg[i] = z
		}
	}
	fill(0, s.PadT*pl.wp)
	for ih := range s.H {
		r := (ih + s.PadT) * pl.wp
		fill(r, r+s.PadL)
		fill(r+s.PadL+s.W, r+pl.wp)
	}
	fill((s.PadT+s.H)*pl.wp, pl.hp*pl.wp)
	if cs > s.C {
		for p := range pl.hp * pl.wp {
			clear(xt[p*cs+s.C : (p+1)*cs])
		}
	}
	if s.PadT == 0 && s.PadL == 0 && s.PadB == 0 && s.PadR == 0 && s.H > 1 {
		// Without padding the plane is one row of H*W positions (longer
		// runs for the vector transpose).
		s1 := *s
		s1.W, s1.H = s.H*s.W, 1
		s = &s1
	}
	hw := s.H * s.W
	for ih := range s.H {
		rowOut := xt[((ih+s.PadT)*pl.wp+s.PadL)*cs:]
		transposeChannels(requantAsm(tier), rowOut, cs, x, hw, ih*s.W, s.W, s.C, flip)
	}
}

// transposeChannels writes w positions of c channels of the planar image
// x (plane stride hw; position iw of channel ch at x[ch*hw+off+iw]) as
// pixel rows dst[iw*cs+ch], flipping the sign bit by flip. vec allows the
// AVX-512 16x16 tile transpose (the tier passes requantAsm).
func transposeChannels(vec bool, dst []uint8, cs int, x []uint8, hw, off, w, c int, flip uint8) {
	ch := 0
	if vec && w >= 16 {
		// 16 channels x 16 positions per AVX-512 tile.
		for ; ch+16 <= c; ch += 16 {
			iw := 0
			for ; iw+16 <= w; iw += 16 {
				transpose16(true, dst[iw*cs+ch:], cs, x[ch*hw+off+iw:], hw, flip)
			}
			for ; iw < w; iw++ {
				for cc := ch; cc < ch+16; cc++ {
					dst[iw*cs+cc] = x[cc*hw+off+iw] ^ flip
				}
			}
		}
	}
	// Eight channels at a time: one 8-byte store per position.
	flip8 := uint64(flip) * 0x0101010101010101
	for ; ch+8 <= c; ch += 8 {
		x0 := x[ch*hw+off:][:w]
		x1 := x[(ch+1)*hw+off:][:w]
		x2 := x[(ch+2)*hw+off:][:w]
		x3 := x[(ch+3)*hw+off:][:w]
		x4 := x[(ch+4)*hw+off:][:w]
		x5 := x[(ch+5)*hw+off:][:w]
		x6 := x[(ch+6)*hw+off:][:w]
		x7 := x[(ch+7)*hw+off:][:w]
		for iw := range x0 {
			v := uint64(x0[iw]) | uint64(x1[iw])<<8 | uint64(x2[iw])<<16 | uint64(x3[iw])<<24 |
				uint64(x4[iw])<<32 | uint64(x5[iw])<<40 | uint64(x6[iw])<<48 | uint64(x7[iw])<<56
			binary.LittleEndian.PutUint64(dst[iw*cs+ch:], v^flip8)
		}
	}
	for ; ch < c; ch++ {
		src := x[ch*hw+off:][:w]
		for iw, v := range src {
			dst[iw*cs+ch] = v ^ flip
		}
	}
}

// convBlock computes patch-row block bi of group g: gathers the block's
// patches, runs the GEMM and requantizes into y.
func convBlock[T uint8 | int8 | int32](tier kernel.Tier, s *ConvShape, cw *ConvWeights, pl *convPlan, a *ConvArgs, xt []uint8, off []int32, y []T, buf []int32, g, bi int) {
	mg := s.M / s.Group
	p0 := bi * pl.rows
	rows := min(pl.rows, pl.p-p0)
	kp, cg := pl.kp, cw.Cg
	ab := bytesOf(buf[:(pl.rows*kp+3)/4])
	cb := buf[(pl.rows*kp+3)/4:][:pl.rows*mg]
	rs := buf[(pl.rows*kp+3)/4+pl.rows*mg:][:pl.rows]
	var am []uint8
	if s.pointwise() {
		am = xt[p0*kp : (p0+rows)*kp]
	} else {
		am = ab[:rows*kp]
		contig := s.DW == 1 && cg == pl.cs
		for r := range rows {
			p := p0 + r
			oh, ow := p/s.OW, p%s.OW
			row := am[r*kp : (r+1)*kp]
			t := 0
			for kh := range s.KH {
				ih := oh*s.SH + kh*s.DH
				base := (ih*pl.wp+ow*s.SW)*pl.cs + g*cg
				if contig {
					// The KW taps of all channels are adjacent in xt.
					copy(row[t*cg:(t+s.KW)*cg], xt[base:base+s.KW*cg])
					t += s.KW
					continue
				}
				for kw := range s.KW {
					src := base + kw*s.DW*pl.cs
					copy(row[t*cg:(t+1)*cg], xt[src:src+cg])
					t++
				}
			}
			clear(row[cw.k:])
		}
	}
	c := cb[:rows*mg]
	Gemm(tier, c, am, rows, cw.packed[g])
	if cw.zb != nil {
		RowSums(am, rows, kp, rs)
	}
	r := a.Req
	if r == nil {
		yi := any(y).([]int32)
		for j := range mg {
			m := g*mg + j
			o := off[m]
			var zb int32
			if cw.zb != nil {
				zb = cw.zb[m]
			}
			dst := yi[m*pl.p+p0 : m*pl.p+p0+rows]
			for i := range dst {
				dst[i] = c[i*mg+j] + o - zb*rs[i]
			}
		}
		return
	}
	var yb []uint8
	switch yt := any(y).(type) {
	case []uint8:
		yb = yt
	case []int8:
		yb = bytesOfI8(yt)
	}
	// Requantize eight rows (positions) at a time into tmp (row-major),
	// then store each channel's eight bytes at once.
	tmp := bytesOf(rs[pl.rows:][:2*mg])[:8*mg]
	offs := off[g*mg : (g+1)*mg]
	for i0 := 0; i0 < rows; i0 += 8 {
		nr8 := min(8, rows-i0)
		if cw.zb != nil {
			zbs := cw.zb[g*mg : (g+1)*mg]
			for i := i0; i < i0+nr8; i++ {
				row := c[i*mg : (i+1)*mg]
				for j := range row {
					row[j] -= zbs[j] * rs[i]
				}
			}
		}
		r.RowsBytes(tier, tmp[:nr8*mg], c[i0*mg:(i0+nr8)*mg], nr8, mg, g*mg, offs)
		dst := yb[g*mg*pl.p+p0+i0:]
		if nr8 == 8 {
			t0, t1, t2, t3 := tmp[:mg], tmp[mg:2*mg], tmp[2*mg:3*mg], tmp[3*mg:4*mg]
			t4, t5, t6, t7 := tmp[4*mg:5*mg], tmp[5*mg:6*mg], tmp[6*mg:7*mg], tmp[7*mg:8*mg]
			for j := range t0 {
				v := uint64(t0[j]) | uint64(t1[j])<<8 | uint64(t2[j])<<16 | uint64(t3[j])<<24 |
					uint64(t4[j])<<32 | uint64(t5[j])<<40 | uint64(t6[j])<<48 | uint64(t7[j])<<56
				binary.LittleEndian.PutUint64(dst[j*pl.p:], v)
			}
			continue
		}
		for i := range nr8 {
			for j, v := range tmp[i*mg : (i+1)*mg] {
				dst[j*pl.p+i] = v
			}
		}
	}
}

// bytesOfI8 views int8 values as bytes.
func bytesOfI8(v []int8) []uint8 {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(&v[0])), len(v))
}

// dwSlack is the number of bytes the vector depthwise kernel may read
// past the last input it uses.
const dwSlack = 32

// convDepthwise runs the direct depthwise kernel for channels [c0, c1):
// each channel's plane is copied into a buffer padded with the zero
// point, accumulated tap by tap (AVX-512 for strides 1 and 2 from
// kernel.TierAVX512 up, else Go; the same sums) and requantized.
func convDepthwise[T uint8 | int8 | int32](tier kernel.Tier, s *ConvShape, cw *ConvWeights, pl *convPlan, a *ConvArgs, flip uint8, za int32, y []T, buf []int32, c0, c1 int) {
	hp, wp := pl.hp, pl.wp
	plane := bytesOf(buf[:(pl.plane+3)/4])[:pl.plane]
	acc := buf[(pl.plane+3)/4:][:max(pl.p, s.OH*wp)]
	taps := s.KH * s.KW
	hw := s.H * s.W
	// The vector kernel computes all OH rows of a channel in one call.
	vec := requantAsm(tier) && s.SW <= 2
	var offArr [16]int
	offs := offArr[:0]
	if taps > len(offArr) {
		offs = make([]int, 0, taps)
	}
	for kh := range s.KH {
		for kw := range s.KW {
			offs = append(offs, kh*s.DH*wp+kw*s.DW)
		}
	}
	z := uint8(za)
	fill := func(seg []uint8) {
		for i := range seg {
			seg[i] = z
		}
	}
	clear(plane[hp*wp:])
	for m := c0; m < c1; m++ {
		// Zero-point padding (the interior is overwritten below).
		fill(plane[:s.PadT*wp])
		fill(plane[(s.PadT+s.H)*wp : hp*wp])
		x := a.X[m*hw : (m+1)*hw]
		for ih := range s.H {
			r := plane[(ih+s.PadT)*wp:][:wp]
			fill(r[:s.PadL])
			fill(r[s.PadL+s.W:])
			row := r[s.PadL:][:s.W]
			src := x[ih*s.W : (ih+1)*s.W]
			if flip == 0 {
				copy(row, src)
			} else {
				for i, v := range src {
					row[i] = v ^ flip
				}
			}
		}
		w := cw.dw[m*taps : (m+1)*taps]
		if !vec || !dwRowAsm(acc[:s.OH*s.OW], plane, offs, w, s.SW, s.OH, s.SH*wp) {
			for oh := range s.OH {
				out := acc[oh*s.OW : (oh+1)*s.OW]
				in := plane[oh*s.SH*wp:]
				clear(out)
				for t, wv := range w {
					if wv == 0 {
						continue
					}
					src := in[offs[t]:]
					if s.SW == 1 {
						src = src[:len(out)]
						for i, v := range src {
							out[i] += wv * int32(v)
						}
						continue
					}
					for i := range out {
						out[i] += wv * int32(src[i*s.SW])
					}
				}
			}
		}
		var b int32
		if a.Bias != nil {
			b = a.Bias[m]
		}
		add := b - za*cw.dwSum[m]
		accP := acc[:pl.p]
		switch yt := any(y).(type) {
		case []uint8:
			a.Req.RowBytes(tier, yt[m*pl.p:(m+1)*pl.p], accP, m, add)
		case []int8:
			a.Req.RowBytes(tier, bytesOfI8(yt[m*pl.p:(m+1)*pl.p]), accP, m, add)
		case []int32:
			for i, v := range accP {
				yt[m*pl.p+i] = v + add
			}
		}
	}
}

// ConvRef is the plain reference of Conv for tests: direct loops over
// (x - za) * (w - zb) with zero-point padding, bias, then requantization
// (x holds int8 bytes when signed).
func ConvRef[T uint8 | int8 | int32](s *ConvShape, w []int8, zb []int32, x []uint8, signed bool, za int32, bias []int32, r *Requant, y []T) {
	cg, mg := s.C/s.Group, s.M/s.Group
	for m := range s.M {
		g := m / mg
		var z int32
		switch len(zb) {
		case 1:
			z = zb[0]
		case s.M:
			z = zb[m]
		}
		for oh := range s.OH {
			for ow := range s.OW {
				var acc int32
				for c := range cg {
					for kh := range s.KH {
						for kw := range s.KW {
							ih := oh*s.SH + kh*s.DH - s.PadT
							iw := ow*s.SW + kw*s.DW - s.PadL
							if ih < 0 || ih >= s.H || iw < 0 || iw >= s.W {
								continue
							}
							xv := int32(x[((g*cg+c)*s.H+ih)*s.W+iw])
							if signed {
								xv = int32(int8(uint8(xv)))
							}
							wv := int32(w[((m*cg+c)*s.KH+kh)*s.KW+kw])
							acc += (xv - za) * (wv - z)
						}
					}
				}
				if bias != nil {
					acc += bias[m]
				}
				if r == nil {
					y[(m*s.OH+oh)*s.OW+ow] = T(acc)
				} else {
					y[(m*s.OH+oh)*s.OW+ow] = T(r.One(acc, m))
				}
			}
		}
	}
}
