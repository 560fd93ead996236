package dataset

import "github.com/goslim/goslim/tensor"

// augment applies random crop-with-padding and horizontal flips in place
// to a float32 N×C×H×W batch. Each sample's draw comes from the epoch seed
// and its index in the source, so it does not depend on the batch size or
// on the order of the batches.
//
// Crop: the sample is shifted by (dy, dx), each uniform in
// [-CropPad, CropPad]: out[c][y][x] = in[c][y+dy][x+dx], zero outside the
// image (the zero padding of "pad, then crop H×W at random"). Flip: with
// probability 1/2, out[c][y][x] = in[c][y][W-1-x], applied after the crop.
func augment(t *tensor.Tensor, a Augment, eseed uint64, idx []int) {
	c, h, w := t.Shape[1], t.Shape[2], t.Shape[3]
	size := c * h * w
	data := t.F32()
	var tmp []float32
	if a.CropPad > 0 {
		tmp = make([]float32, size)
	}
	span := uint64(2*a.CropPad + 1)
	for j, i := range idx {
		r := splitmix64(eseed ^ splitmix64(uint64(i)^0x6175676d656e74))
		s := data[j*size : (j+1)*size]
		if a.CropPad > 0 {
			dy := int(r%span) - a.CropPad
			dx := int((r>>21)%span) - a.CropPad
			if dy != 0 || dx != 0 {
				copy(tmp, s)
				shift(s, tmp, c, h, w, dy, dx)
			}
		}
		if a.Flip && (r>>63) == 1 {
			for row := 0; row < c*h; row++ {
				line := s[row*w : (row+1)*w]
				for x, y := 0, w-1; x < y; x, y = x+1, y-1 {
					line[x], line[y] = line[y], line[x]
				}
			}
		}
	}
}

// shift writes dst[c][y][x] = src[c][y+dy][x+dx], or 0 where that falls
// outside the h×w image.
func shift(dst, src []float32, c, h, w, dy, dx int) {
	clear(dst)
	x0, x1 := max(0, -dx), min(w, w-dx)
	if x0 >= x1 {
		return
	}
	for ch := range c {
		for y := max(0, -dy); y < min(h, h-dy); y++ {
			o := ch*h*w + y*w
			i := ch*h*w + (y+dy)*w + dx
			copy(dst[o+x0:o+x1], src[i+x0:i+x1])
		}
	}
}
