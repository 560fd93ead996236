//go:build amd64 && !noasm

package vec

import "math"

// maxPool2AVX512 is MaxPool2Go for all columns (masked tail).
//
//go:noescape
func maxPool2AVX512(dst, src []float32, rows, w int)

// maxPool2AVX2 is MaxPool2Go for the first w/2 &^ 7 outputs of each row.
//
//go:noescape
func maxPool2AVX2(dst, src []float32, rows, w int)

func maxPool2WAVX512(dst, src []float32, rows, w int) {
	if rows <= 0 || w < 2 {
		return
	}
	maxPool2AVX512(dst[:rows*(w/2)], src[:2*rows*w], rows, w)
}

func maxPool2WAVX2(dst, src []float32, rows, w int) {
	if rows <= 0 || w < 2 {
		return
	}
	ow := w / 2
	dst, src = dst[:rows*ow], src[:2*rows*w]
	done := ow &^ 7
	if done > 0 {
		maxPool2AVX2(dst, src, rows, w)
	}
	if done == ow {
		return
	}
	for r := range rows {
		a, b, d := src[2*r*w:(2*r+1)*w], src[(2*r+1)*w:(2*r+2)*w], dst[r*ow:(r+1)*ow]
		for o := done; o < ow; o++ {
			d[o] = max(-math.MaxFloat32, a[2*o], a[2*o+1], b[2*o], b[2*o+1])
		}
	}
}
