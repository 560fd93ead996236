package fp32

import "fmt"

// ConvGeom is the spatial geometry of a convolution with at most three
// spatial dimensions, ordered (D, H, W). Convolutions of lower rank use
// leading dimensions of size 1 (with kernel, stride and dilation 1 and no
// padding); NewConvGeom does this.
//
// In is the image size, Out the number of window positions along each
// dimension; window position o along a dimension covers image coordinates
// o*Stride - Pad + t*Dilation for t < Kernel. Coordinates outside [0, In)
// are padding (zero).
type ConvGeom struct {
	In, Out, Kernel, Stride, Dilation, Pad [3]int
}

// NewConvGeom builds a ConvGeom from per-dimension slices of equal length
// (1 to 3). pad holds the start padding of each dimension.
func NewConvGeom(in, out, kernel, stride, dilation, pad []int) (ConvGeom, error) {
	n := len(in)
	if n < 1 || n > 3 || len(out) != n || len(kernel) != n || len(stride) != n || len(dilation) != n || len(pad) != n {
		return ConvGeom{}, fmt.Errorf("fp32: ConvGeom needs 1 to 3 spatial dims of equal length, got in=%v out=%v kernel=%v stride=%v dilation=%v pad=%v",
			in, out, kernel, stride, dilation, pad)
	}
	var g ConvGeom
	for i := 0; i < 3; i++ {
		g.In[i], g.Out[i], g.Kernel[i], g.Stride[i], g.Dilation[i] = 1, 1, 1, 1, 1
	}
	off := 3 - n
	for i := 0; i < n; i++ {
		if in[i] < 0 || out[i] < 0 || kernel[i] < 1 || stride[i] < 1 || dilation[i] < 1 {
			return ConvGeom{}, fmt.Errorf("fp32: bad ConvGeom dim %d: in=%d out=%d kernel=%d stride=%d dilation=%d", i, in[i], out[i], kernel[i], stride[i], dilation[i])
		}
		g.In[off+i], g.Out[off+i], g.Kernel[off+i] = in[i], out[i], kernel[i]
		g.Stride[off+i], g.Dilation[off+i], g.Pad[off+i] = stride[i], dilation[i], pad[i]
	}
	return g, nil
}

// InSize returns the number of image positions (D*H*W).
func (g *ConvGeom) InSize() int { return g.In[0] * g.In[1] * g.In[2] }

// OutSize returns the number of window positions.
func (g *ConvGeom) OutSize() int { return g.Out[0] * g.Out[1] * g.Out[2] }

// KernelSize returns the number of taps of one window.
func (g *ConvGeom) KernelSize() int { return g.Kernel[0] * g.Kernel[1] * g.Kernel[2] }

// Im2col writes columns [col0, col0+ncol) of the column matrix of an image
// with the given number of channels into dst, a (channels*KernelSize) x
// ncol row-major matrix:
//
//	dst[(c*K + t)*ncol + j] = src[c][pos(col0+j, t)], or 0 in the padding,
//
// where t enumerates kernel taps in row-major (kd, kh, kw) order and
// pos(o, t) is the image coordinate tap t of window o reads. src holds
// channels x InSize values.
func (g *ConvGeom) Im2col(dst, src []float32, channels, col0, ncol int) {
	g.walk(dst, src, channels, col0, ncol, false)
}

// Col2im is the adjoint of Im2col: it adds each column-matrix entry into
// the image position it was read from, skipping padding:
//
//	dst[c][pos(col0+j, t)] += src[(c*K + t)*ncol + j]
//
// dst holds channels x InSize values; src is (channels*K) x ncol.
func (g *ConvGeom) Col2im(dst, src []float32, channels, col0, ncol int) {
	g.walk(src, dst, channels, col0, ncol, true)
}

// walk implements Im2col (add=false: col[...] = img[...]) and Col2im
// (add=true: img[...] += col[...]).
func (g *ConvGeom) walk(col, img []float32, channels, col0, ncol int, add bool) {
	K := g.KernelSize()
	inSize := g.InSize()
	if ncol <= 0 {
		return
	}
	col = col[:channels*K*ncol]
	img = img[:channels*inSize]
	for c := 0; c < channels; c++ {
		im := img[c*inSize : (c+1)*inSize]
		for t := 0; t < K; t++ {
			g.tapRow(col[(c*K+t)*ncol:(c*K+t+1)*ncol], im, t, col0, add)
		}
	}
}

// tapRow handles one row of the column matrix: kernel tap t of the channel
// plane im, for window positions col0 ... col0+len(row)-1. With add=false
// it fills row (zeros in the padding); with add=true it adds row into im.
func (g *ConvGeom) tapRow(row, im []float32, t, col0 int, add bool) {
	ncol := len(row)
	if ncol == 0 {
		return
	}
	inD, inH, inW := g.In[0], g.In[1], g.In[2]
	outH, outW := g.Out[1], g.Out[2]
	sd, sh, sw := g.Stride[0], g.Stride[1], g.Stride[2]
	od := col0 / (outH * outW)
	oh := col0 / outW % outH
	ow := col0 % outW
	kd := t / (g.Kernel[1] * g.Kernel[2])
	kh := t / g.Kernel[2] % g.Kernel[1]
	kw := t % g.Kernel[2]
	offD := kd*g.Dilation[0] - g.Pad[0]
	offH := kh*g.Dilation[1] - g.Pad[1]
	offW := kw*g.Dilation[2] - g.Pad[2]
	for j := 0; j < ncol; {
		run := min(ncol-j, outW-ow)
		seg := row[j : j+run]
		id := od*sd + offD
		ih := oh*sh + offH
		if id < 0 || id >= inD || ih < 0 || ih >= inH {
			if !add {
				clear(seg)
			}
		} else {
			line := im[(id*inH+ih)*inW : (id*inH+ih+1)*inW]
			iw0 := ow*sw + offW
			// Valid taps: 0 <= iw0 + q*sw < inW.
			lo := 0
			if iw0 < 0 {
				lo = min((-iw0+sw-1)/sw, run)
			}
			hi := 0
			if inW-iw0 > 0 {
				hi = min((inW-iw0+sw-1)/sw, run)
			}
			hi = max(hi, lo)
			if lo == hi {
				if !add {
					clear(seg)
				}
			} else if add {
				seg = seg[lo:hi]
				if sw == 1 {
					dst := line[iw0+lo : iw0+hi]
					for q, v := range seg {
						dst[q] += v
					}
				} else {
					for q, v := range seg {
						line[iw0+(lo+q)*sw] += v
					}
				}
			} else {
				clear(seg[:lo])
				clear(seg[hi:])
				mid := seg[lo:hi]
				if sw == 1 {
					copy(mid, line[iw0+lo:iw0+hi])
				} else {
					base := iw0 + lo*sw
					src := line[base : base+(len(mid)-1)*sw+1]
					for q := range mid {
						mid[q] = src[q*sw]
					}
				}
			}
		}
		j += run
		ow = 0
		oh++
		if oh == outH {
			oh = 0
			od++
		}
	}
}
