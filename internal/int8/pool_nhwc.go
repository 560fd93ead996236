package int8

import (
	"fmt"

	"github.com/goslim/goslim/internal/kernel"
)

// Channels-last (NHWC) 8-bit pooling for the INT8 lowering: MaxPool,
// QLinearAveragePool and QLinearGlobalAveragePool on [N, H, W, C] bytes
// (uint8, or int8 stored as their bytes), producing [N, OH, OW, C] (or
// [N, C] for the global pool). Each output pixel works on whole runs of C
// channel bytes: from kernel.TierAVX512 up with AVX-512 kernels (64
// channels per max step, 16 int32 sums per add step), else with Go loops;
// both give the same bits.

// PoolShape is a 2-D pooling window over N channels-last images of H x W
// pixels of C channels (a 1-D pool is the case H = KH = 1): kernel KH x
// KW, strides, dilations, begin/end paddings and the output size OH x OW,
// which the caller computes (floor or ceil mode, auto_pad): windows that
// reach beyond the padded input simply have fewer taps inside the input.
type PoolShape struct {
	N, C       int
	H, W       int
	KH, KW     int
	SH, SW     int
	DH, DW     int
	PadT, PadL int
	PadB, PadR int
	OH, OW     int
}

// check validates the shape and the lengths of x and y (out values per
// output pixel: C) for output rows [r0, r1) of the N*OH rows.
func (s *PoolShape) check(x, y []byte, r0, r1 int) error {
	switch {
	case s.N < 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 || s.KH <= 0 || s.KW <= 0 || s.OH <= 0 || s.OW <= 0:
		return fmt.Errorf("int8: pool: non-positive size in %+v", *s)
	case s.SH <= 0 || s.SW <= 0 || s.DH <= 0 || s.DW <= 0 || s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0:
		return fmt.Errorf("int8: pool: bad strides, dilations or pads in %+v", *s)
	case r0 < 0 || r1 > s.N*s.OH || r0 > r1:
		return fmt.Errorf("int8: pool: output rows [%d, %d) outside [0, %d)", r0, r1, s.N*s.OH)
	case len(x) < s.N*s.H*s.W*s.C || len(y) < s.N*s.OH*s.OW*s.C:
		return fmt.Errorf("int8: pool: %d input and %d output bytes for %d images of %dx%dx%d and %dx%dx%d",
			len(x), len(y), s.N, s.H, s.W, s.C, s.OH, s.OW, s.C)
	}
	return nil
}

// poolTaps returns the range [k0, k1) of kernel indices whose input index
// o*stride - pad + k*dil lies in [0, in) (k0 = k1 = 0 when none does).
func poolTaps(o, stride, pad, dil, k, in int) (int, int) {
	base := o*stride - pad
	k0 := 0
	if base < 0 {
		k0 = (-base + dil - 1) / dil
	}
	last := in - 1 - base
	if last < 0 {
		return 0, 0
	}
	k1 := min(k, last/dil+1)
	if k0 >= k1 {
		return 0, 0
	}
	return k0, k1
}

// poolInterior returns the output columns [lo, hi) whose windows lie
// entirely inside the input (hi <= lo when there are none).
func poolInterior(s *PoolShape) (int, int) {
	lo := (s.PadL + s.SW - 1) / s.SW
	span := s.W - 1 + s.PadL - (s.KW-1)*s.DW
	if span < 0 {
		return lo, lo
	}
	return lo, min(span/s.SW+1, s.OW)
}

// poolMaxStackTaps bounds the windows whose tap lists live on the stack.
const poolMaxStackTaps = 64

// MaxPoolNHWC computes ONNX MaxPool (kernel_shape, strides, pads,
// dilations; pads never win) on channels-last 8-bit images: for output
// rows r in [r0, r1) of the s.N*s.OH rows (row r is image r/OH, output
// row r%OH),
//
//	y[((n*OH+oh)*OW+ow)*C + c] = max over the window's taps inside the image of x[((n*H+ih)*W+iw)*C + c]
//
// comparing uint8 values, or int8 values when signed (x and y hold their
// bytes); a window with no tap inside the image gives the type's lowest
// value (0 or -128). Pass r0 = 0, r1 = s.N*s.OH for the whole batch;
// disjoint row ranges may run concurrently. It allocates nothing for
// windows of up to 64 taps. The results are the same bits on every tier.
func MaxPoolNHWC(t kernel.Tier, s *PoolShape, x, y []byte, signed bool, r0, r1 int) error {
	if err := s.check(x, y, r0, r1); err != nil {
		return err
	}
	asm := requantAsm(t)
	lowest := byte(0)
	if signed {
		lowest = 0x80
	}
	c := s.C
	var offArr [poolMaxStackTaps]int
	offs := offArr[:]
	if s.KH*s.KW > len(offs) {
		offs = make([]int, s.KH*s.KW)
	}
	lo, hi := poolInterior(s)
	img := s.H * s.W * c
	for r := r0; r < r1; r++ {
		n, oh := r/s.OH, r%s.OH
		src := x[n*img : (n+1)*img]
		row := y[r*s.OW*c : (r+1)*s.OW*c]
		kh0, kh1 := poolTaps(oh, s.SH, s.PadT, s.DH, s.KH, s.H)
		for ow := 0; ow < s.OW; {
			np := 1
			kw0, kw1 := 0, s.KW
			if ow >= lo && ow < hi {
				np = hi - ow
			} else {
				kw0, kw1 = poolTaps(ow, s.SW, s.PadL, s.DW, s.KW, s.W)
			}
			dst := row[ow*c : (ow+np)*c]
			taps := offs[:0]
			for kh := kh0; kh < kh1; kh++ {
				ih := oh*s.SH - s.PadT + kh*s.DH
				for kw := kw0; kw < kw1; kw++ {
					taps = append(taps, (ih*s.W+ow*s.SW-s.PadL+kw*s.DW)*c)
				}
			}
			switch {
			case len(taps) == 0:
				for i := range dst {
					dst[i] = lowest
				}
			case !poolMaxAsm(asm, dst, src, taps, c, np, s.SW*c, signed):
				poolMaxGo(dst, src, taps, c, np, s.SW*c, signed)
			}
			ow += np
		}
	}
	return nil
}

// poolMaxGo is the Go twin of poolMaxAVX512: for p < n, ch < c, dst[p*c +
// ch] = max_t x[p*step + offs[t] + ch] (len(offs) >= 1).
func poolMaxGo(dst, x []byte, offs []int, c, n, step int, signed bool) {
	for p := range n {
		d := dst[p*c : (p+1)*c]
		copy(d, x[p*step+offs[0]:][:c])
		for _, o := range offs[1:] {
			src := x[p*step+o:][:c]
			if signed {
				for i, v := range src {
					if int8(v) > int8(d[i]) {
						d[i] = v
					}
				}
				continue
			}
			for i, v := range src {
				d[i] = max(d[i], v)
			}
		}
	}
}

// poolSumGo is the Go twin of poolSumAVX512: sums[ch] (plus its old value
// when accumulate) = sum_{i < n} x[i*stride + ch] for ch < c, bytes read
// as uint8, or int8 when signed.
func poolSumGo(sums []int32, x []byte, c, n, stride int, signed, accumulate bool) {
	sums = sums[:c]
	if !accumulate {
		clear(sums)
	}
	for i := range n {
		src := x[i*stride:][:c]
		if signed {
			for j, v := range src {
				sums[j] += int32(int8(v))
			}
			continue
		}
		for j, v := range src {
			sums[j] += int32(v)
		}
	}
}

// poolSum is poolSumAVX512 on tier t, else poolSumGo.
func poolSum(t kernel.Tier, sums []int32, x []byte, c, n, stride int, signed, accumulate bool) {
	if !poolSumAsm(requantAsm(t), sums, x, c, n, stride, signed, accumulate) {
		poolSumGo(sums, x, c, n, stride, signed, accumulate)
	}
}

// GlobalAvgPoolNHWC computes com.microsoft QLinearGlobalAveragePool on n
// channels-last images of hw pixels of c channels (x: n*hw*c bytes, uint8
// or, when signed, int8) into y (n*c bytes; [N, C, 1, 1] is the same in
// both layouts) with the integer arithmetic of the NCHW op
// (internal/ops qpoolKernel.runGlobal):
//
//	y[n, c] = rq.One(sum_p x[n, p, c] - hw*zx, 0)
//
// where rq is the op's requantization (one multiplier, sx / (sy*hw), zero
// point zy, clamp range of the output type or fused activation) and the
// sum and correction are int32. sums is workspace of at least c words; hw
// must be at least 1 (the op handles an empty plane itself). The results
// are the same bits on every tier.
func GlobalAvgPoolNHWC(t kernel.Tier, x, y []byte, n, hw, c int, signed bool, zx int32, rq *Requant, sums []int32) error {
	switch {
	case n < 0 || hw <= 0 || c <= 0:
		return fmt.Errorf("int8: global average pool: bad size %d images of %d pixels x %d channels", n, hw, c)
	case len(x) < n*hw*c || len(y) < n*c:
		return fmt.Errorf("int8: global average pool: %d input and %d output bytes for %d images of %dx%d", len(x), len(y), n, hw, c)
	case len(sums) < c:
		return fmt.Errorf("int8: global average pool: workspace of %d words, want %d", len(sums), c)
	case rq == nil:
		return fmt.Errorf("int8: global average pool: no requantization")
	}
	corr := int32(hw) * zx
	for i := range n {
		poolSum(t, sums, x[i*hw*c:(i+1)*hw*c], c, hw, c, signed, false)
		rq.RowBytes(t, y[i*c:(i+1)*c], sums[:c], 0, -corr)
	}
	return nil
}

// AvgPoolNHWC computes com.microsoft QLinearAveragePool (2-D or, with H =
// KH = 1, 1-D windows; dilations must be 1) on channels-last images for
// output rows [r0, r1) of the s.N*s.OH rows, with the integer arithmetic
// of the NCHW op (internal/ops qpoolKernel.Run): for each output pixel,
// with h0 = oh*SH - PadT, w0 = ow*SW - PadL,
//
//	rows [max(h0, 0), min(h0+KH, H)), columns [max(w0, 0), min(w0+KW, W)), cnt = their product
//	sum = sum of the window's values (int32) - cnt*zx
//	count = cnt, or with includePad (min(h0+KH, H+PadB) - max(h0, -PadT)) * (min(w0+KW, W+PadR) - max(w0, -PadL))
//	y = count <= 0 ? clamp(rq.Zero, rq.Lo, rq.Hi) : rq.One(sum, count)
//
// where rq is the op's requantization with one multiplier per count
// (index k: sx / (sy*k), k = 1..KH*KW; index 0 unused). sums is workspace
// of at least s.C words. Disjoint row ranges may run concurrently (each
// with its own sums). The results are the same bits on every tier.
func AvgPoolNHWC(t kernel.Tier, s *PoolShape, x, y []byte, signed bool, zx int32, includePad bool, rq *Requant, r0, r1 int, sums []int32) error {
	if err := s.check(x, y, r0, r1); err != nil {
		return err
	}
	switch {
	case s.DH != 1 || s.DW != 1:
		return fmt.Errorf("int8: average pool: dilations %dx%d, want 1", s.DH, s.DW)
	case len(sums) < s.C:
		return fmt.Errorf("int8: average pool: workspace of %d words, want %d", len(sums), s.C)
	case rq == nil || rq.Channels() < s.KH*s.KW+1:
		return fmt.Errorf("int8: average pool: want a requantization with %d multipliers (one per count)", s.KH*s.KW+1)
	}
	c := s.C
	img := s.H * s.W * c
	sums = sums[:c]
	empty := byte(min(max(rq.Zero, rq.Lo), rq.Hi))
	for r := r0; r < r1; r++ {
		n, oh := r/s.OH, r%s.OH
		src := x[n*img : (n+1)*img]
		h0 := oh*s.SH - s.PadT
		h1 := min(h0+s.KH, s.H)
		hc := min(h0+s.KH, s.H+s.PadB) - max(h0, -s.PadT)
		h0 = max(h0, 0)
		for ow := range s.OW {
			w0 := ow*s.SW - s.PadL
			w1 := min(w0+s.KW, s.W)
			wc := min(w0+s.KW, s.W+s.PadR) - max(w0, -s.PadL)
			w0 = max(w0, 0)
			dst := y[(r*s.OW+ow)*c : (r*s.OW+ow+1)*c]
			first := true
			if w1 > w0 {
				for ih := h0; ih < h1; ih++ {
					poolSum(t, sums, src[(ih*s.W+w0)*c:], c, w1-w0, c, signed, !first)
					first = false
				}
			}
			if first {
				clear(sums)
			}
			cnt := (h1 - h0) * (w1 - w0)
			add := -int32(cnt) * zx
			if includePad {
				cnt = hc * wc
			}
			if cnt >= rq.Channels() {
				return fmt.Errorf("int8: average pool: window count %d beyond the %d multipliers", cnt, rq.Channels())
			}
			if cnt <= 0 {
				for i := range dst {
					dst[i] = empty
				}
				continue
			}
			rq.RowBytes(t, dst, sums, cnt, add)
		}
	}
	return nil
}
