package int8

import "math"

// AddParams are the constants of a quantized elementwise addition
// (com.microsoft QLinearAdd):
//
//	y = clamp(round_half_even(float64(a-Za)*Ra + float64(b-Zb)*Rb) + Zc, Lo, Hi)
//
// with Ra = A_scale/C_scale and Rb = B_scale/C_scale in float64, each
// product rounded to float64 before the sum (the arithmetic of a 256-entry
// table per input, so a 64 K lookup table of all (a, b) pairs gives the
// same bits). Signed selects int8 inputs (bytes read as int8).
type AddParams struct {
	Signed     bool
	Za, Zb, Zc int32
	Ra, Rb     float64
	Lo, Hi     int32
}

// AddOne is the scalar definition of AddBytes for one pair of bytes.
func (p *AddParams) AddOne(a, b uint8) uint8 {
	va, vb := int32(a), int32(b)
	if p.Signed {
		va, vb = int32(int8(a)), int32(int8(b))
	}
	f := math.RoundToEven(float64(va-p.Za)*p.Ra+float64(vb-p.Zb)*p.Rb) + float64(p.Zc)
	switch {
	case f >= float64(p.Hi):
		return uint8(p.Hi)
	case f > float64(p.Lo):
		return uint8(int32(f))
	}
	return uint8(p.Lo)
}

// addBytesGo is AddBytes' loop in Go.
func addBytesGo(p *AddParams, y, a, b []uint8) {
	b = b[:len(y)]
	a = a[:len(y)]
	for i := range y {
		y[i] = p.AddOne(a[i], b[i])
	}
}
