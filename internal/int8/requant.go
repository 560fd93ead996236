package int8

import (
	"fmt"
	"math"

	"github.com/goslim/goslim/internal/kernel"
)

// Requantization maps an int32 accumulator acc (a sum of products of
// zero-point-corrected 8-bit values, plus an int32 bias) to an 8-bit
// output:
//
//	y = clamp(round_half_even(acc * real) + zero, lo, hi)
//
// with real = s_a*s_w/s_y. Every tier uses the same fixed-point
// arithmetic: real is stored as a 31-bit multiplier mult in [2^30, 2^31)
// and a right shift s (real ~ mult * 2^-s), and y is the exact
// round-half-even of acc*mult / 2^s computed in int64:
//
//	p = acc*mult; y = (p + 2^(s-1) - 1 + ((p >> s) & 1)) >> s
//
// Accuracy: mult carries real with a relative error below 2^-31, so
// |acc*mult/2^s - acc*real| < |acc*real| * 2^-31. For any output that is
// not clamped (|acc*real| < 2^10) the error is below 2^-21: the result
// equals the float64 reference round_half_even(acc*real) except when
// acc*real lies within 2^-21 of a rounding tie, and then differs by one
// quantization step. Multipliers that are exact in 31 bits (powers of two,
// products of short binary fractions) give the reference exactly, ties
// included (TestRequantMatchesFloat64).

// QuantizeMultiplier returns the fixed-point form of a non-negative real
// multiplier: real ~ mult * 2^-shift with mult in [2^30, 2^31) and shift
// in [1, 63]; real = 0 (or one so small that every int32 accumulator
// rounds to 0) gives mult 0. It fails for NaN, negative or infinite
// values and for real >= 2^30.
func QuantizeMultiplier(real float64) (mult int32, shift uint, err error) {
	switch {
	case math.IsNaN(real) || math.IsInf(real, 0) || real < 0:
		return 0, 0, fmt.Errorf("int8: requantization multiplier %g must be finite and non-negative", real)
	case real == 0:
		return 0, 1, nil
	}
	frac, exp := math.Frexp(real) // real = frac * 2^exp, frac in [0.5, 1)
	m := int64(math.Round(frac * (1 << 31)))
	if m == 1<<31 {
		m >>= 1
		exp++
	}
	s := 31 - exp
	switch {
	case s > 63:
		// |acc*mult| < 2^62 <= 2^(s-2): every result rounds to 0.
		return 0, 1, nil
	case s < 1:
		return 0, 0, fmt.Errorf("int8: requantization multiplier %g is too large (limit 2^30)", real)
	}
	return int32(m), uint(s), nil
}

// Requant holds the requantization parameters of one output tensor: a
// fixed-point multiplier per output channel (one entry for per-tensor
// scales), the output zero point and the inclusive clamp range in the
// quantized domain (the type's range, narrowed by a fused Relu or Clip).
type Requant struct {
	Mult  []int32
	Shift []uint
	Zero  int32
	Lo    int32
	Hi    int32
	// vmult and vshift are Mult and Shift as int32 for the vector kernel
	// (16 copies for per-tensor); set by NewRequant.
	vmult, vshift []int32
}

// requantZeros is the add operand of vector calls without additions.
var requantZeros [16]int32

// NewRequant returns the requantization of multipliers real (one per
// channel, or a single one for all), output zero point zero and clamp
// range [lo, hi]. It fails when a multiplier is invalid (see
// QuantizeMultiplier) or lo > hi.
func NewRequant(real []float64, zero, lo, hi int32) (*Requant, error) {
	if lo > hi {
		return nil, fmt.Errorf("int8: empty clamp range [%d, %d]", lo, hi)
	}
	if len(real) == 0 {
		return nil, fmt.Errorf("int8: no requantization multipliers")
	}
	r := &Requant{Mult: make([]int32, len(real)), Shift: make([]uint, len(real)), Zero: zero, Lo: lo, Hi: hi}
	for i, v := range real {
		m, s, err := QuantizeMultiplier(v)
		if err != nil {
			return nil, fmt.Errorf("channel %d: %w", i, err)
		}
		r.Mult[i], r.Shift[i] = m, s
	}
	if len(real) == 1 {
		r.vmult, r.vshift = make([]int32, 16), make([]int32, 16)
		for i := range 16 {
			r.vmult[i], r.vshift[i] = r.Mult[0], int32(r.Shift[0])
		}
	} else {
		r.vmult, r.vshift = r.Mult, make([]int32, len(real))
		for i, s := range r.Shift {
			r.vshift[i] = int32(s)
		}
	}
	return r, nil
}

// RowBytes is RequantRow for uint8 or int8 outputs viewed as bytes, on
// tier t (see ColsBytes).
func (r *Requant) RowBytes(t kernel.Tier, dst []byte, acc []int32, ch int, add int32) {
	if !requantAsm(t) || r.vmult == nil || len(acc) < len(dst) {
		RequantRow(dst, acc, r, ch, add)
		return
	}
	if len(dst) == 0 {
		return
	}
	c := r.channel(ch)
	var m, s, a [16]int32
	for i := range 16 {
		m[i], s[i], a[i] = r.Mult[c], int32(r.Shift[c]), add
	}
	z := int64(r.Zero)
	requantColsAsm(dst, acc, a[:], 0, m[:], s[:], 0, r.Zero, int64(r.Lo)-z, int64(r.Hi)-z, 0)
}

// RowsBytes applies ColsBytes to rows consecutive rows of n values (acc
// and dst row-major with n values per row, the same channels ch0.. and
// additions add in every row); when n is a multiple of 16 all rows go to
// the vector kernel in one call.
func (r *Requant) RowsBytes(t kernel.Tier, dst []byte, acc []int32, rows, n, ch0 int, add []int32) {
	if n%16 == 0 && n > 0 && rows > 1 && requantAsm(t) && r.vmult != nil && len(dst) >= rows*n && len(acc) >= rows*n && (add == nil || len(add) >= n) {
		r.colsAsm(dst[:rows*n], acc, ch0, n, add, n/16)
		return
	}
	for i := range rows {
		r.ColsBytes(t, dst[i*n:(i+1)*n], acc[i*n:(i+1)*n], ch0, add)
	}
}

// ColsBytes is RequantCols for uint8 or int8 outputs viewed as bytes
// (dst[j] is the byte of the value) on tier t: from kernel.TierAVX512 up
// an AVX-512 kernel (16 values per step), else the Go loop; both give the
// same bits. add may be nil.
func (r *Requant) ColsBytes(t kernel.Tier, dst []byte, acc []int32, ch0 int, add []int32) {
	n := len(dst)
	if n == 0 {
		return
	}
	if !requantAsm(t) || r.vmult == nil || len(acc) < n || (add != nil && len(add) < n) {
		RequantCols(dst, acc, r, ch0, add)
		return
	}
	r.colsAsm(dst, acc, ch0, n, add, 0)
}

// colsAsm runs the AVX-512 requantization on dst (len(dst) values; the
// channels ch0..ch0+n-1 and additions add repeat every period groups of
// 16 values, 0: no repeat).
func (r *Requant) colsAsm(dst []byte, acc []int32, ch0, n int, add []int32, period int) {
	astep := 64
	if add == nil {
		add, astep = requantZeros[:], 0
	}
	mult, shift, mstep := r.vmult, r.vshift, 0
	if len(r.Mult) > 1 {
		mult, shift, mstep = r.vmult[ch0:ch0+n], r.vshift[ch0:ch0+n], 64
	}
	z := int64(r.Zero)
	requantColsAsm(dst, acc, add, astep, mult, shift, mstep, r.Zero, int64(r.Lo)-z, int64(r.Hi)-z, period)
}

// Channels returns the number of multipliers (1 for per-tensor).
func (r *Requant) Channels() int { return len(r.Mult) }

// channel returns the multiplier index of channel ch (0 for per-tensor).
func (r *Requant) channel(ch int) int {
	if len(r.Mult) == 1 {
		return 0
	}
	return ch
}

// requantOne requantizes one accumulator.
func requantOne(acc int32, mult int64, shift uint, zero, lo, hi int64) int32 {
	p := int64(acc) * mult
	v := (p+(int64(1)<<(shift-1))-1+((p>>shift)&1))>>shift + zero
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	return int32(v)
}

// One requantizes a single accumulator of channel ch (after adding any
// bias and zero-point corrections).
func (r *Requant) One(acc int32, ch int) int32 {
	c := r.channel(ch)
	return requantOne(acc, int64(r.Mult[c]), r.Shift[c], int64(r.Zero), int64(r.Lo), int64(r.Hi))
}

// RequantRow writes dst[i] = requant(acc[i] + add) for channel ch of r
// (len(dst) <= len(acc)). add carries the bias and the zero-point
// corrections of the channel; the int32 addition wraps.
func RequantRow[T uint8 | int8](dst []T, acc []int32, r *Requant, ch int, add int32) {
	c := r.channel(ch)
	mult, shift := int64(r.Mult[c]), r.Shift[c]
	zero, lo, hi := int64(r.Zero), int64(r.Lo), int64(r.Hi)
	acc = acc[:len(dst)]
	if mult == 0 {
		v := T(min(max(zero, lo), hi))
		for i := range dst {
			dst[i] = v
		}
		return
	}
	round := int64(1)<<(shift-1) - 1
	for i, a := range acc {
		p := int64(a+add) * mult
		v := (p+round+((p>>shift)&1))>>shift + zero
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		dst[i] = T(v)
	}
}

// RequantCols writes dst[j] = requant(acc[j] + add[j]) where element j
// belongs to channel ch0+j (a row of a GEMM output whose columns are
// output channels). add may be nil (no additions).
func RequantCols[T uint8 | int8](dst []T, acc []int32, r *Requant, ch0 int, add []int32) {
	zero, lo, hi := int64(r.Zero), int64(r.Lo), int64(r.Hi)
	acc = acc[:len(dst)]
	if add != nil {
		add = add[:len(dst)]
	}
	if len(r.Mult) == 1 {
		mult, shift := int64(r.Mult[0]), r.Shift[0]
		for j, a := range acc {
			if add != nil {
				a += add[j]
			}
			dst[j] = T(requantOne(a, mult, shift, zero, lo, hi))
		}
		return
	}
	mults := r.Mult[ch0 : ch0+len(dst)]
	shifts := r.Shift[ch0 : ch0+len(dst)]
	for j, a := range acc {
		if add != nil {
			a += add[j]
		}
		dst[j] = T(requantOne(a, int64(mults[j]), shifts[j], zero, lo, hi))
	}
}

// RequantRef is the float64 reference of requantization:
// clamp(round_half_even(acc*real) + zero, lo, hi).
func RequantRef(acc int32, real float64, zero, lo, hi int32) int32 {
	v := math.RoundToEven(float64(acc)*real) + float64(zero)
	return int32(math.Min(math.Max(v, float64(lo)), float64(hi)))
}
