package vec

import "math"

// MaxPool2Go is 2x2 max pooling with stride 2 and no padding over rows
// pairs of input rows of width w: for r < rows and o < w/2,
//
//	dst[r*(w/2)+o] = max(lowest, src[2r*w+2o], src[2r*w+2o+1],
//	                     src[(2r+1)*w+2o], src[(2r+1)*w+2o+1])
//
// with lowest the most negative float32 (as ONNX Runtime starts its max)
// and Go's max (NaN propagates). An odd last column of a row is ignored.
func MaxPool2Go(dst, src []float32, rows, w int) {
	ow := w / 2
	_ = dst[:rows*ow]
	_ = src[:2*rows*w]
	for r := range rows {
		a, b := src[2*r*w:2*r*w+w], src[(2*r+1)*w:(2*r+1)*w+w]
		d := dst[r*ow : (r+1)*ow]
		for o := range d {
			d[o] = max(-math.MaxFloat32, a[2*o], a[2*o+1], b[2*o], b[2*o+1])
		}
	}
}
