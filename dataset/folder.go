package dataset

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/goslim/goslim/tensor"
)

// maxImagePixels bounds the size of one folder image (64 megapixels), so a
// hostile header cannot make the decoder allocate gigabytes.
const maxImagePixels = 1 << 26

// folderSource reads DIR/<class>/<image> lazily: each batch decodes its
// images (PNG or JPEG), converts them to the wanted channel count and
// resizes them bilinearly to H×W.
type folderSource struct {
	dir     string
	classes []string
	paths   []string
	labs    []int64
	info    InputInfo
	resize  bool // resize to info.Shape; otherwise every image must match it
	workers int
}

func (s *folderSource) len() int                     { return len(s.paths) }
func (s *folderSource) inputs() []InputInfo          { return []InputInfo{s.info} }
func (s *folderSource) labels() []int64              { return s.labs }
func (s *folderSource) files() (data, labels string) { return s.dir, s.dir }

// openFolder lists DIR's class subfolders (sorted by name; label = index)
// and their PNG and JPEG files (sorted by name). Hidden entries are
// skipped, as are files with other extensions. Without Options.Height and
// Width, the first image's size is the sample size and every image must
// have it; without Options.Channels, grayscale first images give 1
// channel, others 3.
func openFolder(dir string, opts Options) (*folderSource, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	s := &folderSource{dir: dir, workers: opts.workers()}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		files, err := os.ReadDir(sub)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		label := int64(len(s.classes))
		count := 0
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") || !isImageName(f.Name()) {
				continue
			}
			s.paths = append(s.paths, filepath.Join(sub, f.Name()))
			s.labs = append(s.labs, label)
			count++
		}
		if count == 0 {
			return nil, fmt.Errorf("dataset: %s: empty class folder (no .png, .jpg or .jpeg files)", sub)
		}
		s.classes = append(s.classes, e.Name())
	}
	if len(s.classes) == 0 {
		return nil, fmt.Errorf("dataset: %s: empty folder: want one subfolder of PNG/JPEG images per class", dir)
	}
	if opts.Classes > 0 && len(s.classes) > opts.Classes {
		return nil, fmt.Errorf("dataset: %s: %d class folders, but the model has %d classes", dir, len(s.classes), opts.Classes)
	}
	c, h, w := opts.Channels, opts.Height, opts.Width
	if (h == 0) != (w == 0) {
		return nil, fmt.Errorf("dataset: %s: input size %dx%d: give both height and width, or neither", dir, h, w)
	}
	s.resize = h > 0
	if c == 0 || h == 0 {
		cfg, gray, err := imageConfig(s.paths[0])
		if err != nil {
			return nil, err
		}
		if c == 0 {
			c = 3
			if gray {
				c = 1
			}
		}
		if h == 0 {
			h, w = cfg.Height, cfg.Width
		}
	}
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("dataset: %s: %d channels; folder images convert to 1 (grayscale) or 3 (RGB)", dir, c)
	}
	s.info = InputInfo{Name: opts.inputName(), DType: tensor.Float32, Shape: tensor.Shape{c, h, w}}
	return s, nil
}

// isImageName reports whether a file name has a PNG or JPEG extension.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// load decodes the chosen images on up to s.workers goroutines. The error
// reported is the one of the first failing sample, so it does not depend
// on scheduling.
func (s *folderSource) load(ctx context.Context, idx []int, dst []*tensor.Tensor) error {
	out := dst[0].F32()
	size := s.info.Shape.Size()
	errs := make([]error, len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(s.workers, len(idx)) {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= len(idx) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[j] = err
					continue
				}
				errs[j] = s.decode(s.paths[idx[j]], out[j*size:(j+1)*size])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decode reads one image into dst (C×H×W float32 in [0, 1]).
func (s *folderSource) decode(path string, dst []float32) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	img, err := decodeImage(b)
	if err != nil {
		return fmt.Errorf("dataset: %s: %w", path, err)
	}
	c, h, w := s.info.Shape[0], s.info.Shape[1], s.info.Shape[2]
	bounds := img.Bounds()
	sh, sw := bounds.Dy(), bounds.Dx()
	if !s.resize && (sh != h || sw != w) {
		return fmt.Errorf("dataset: %s: image is %dx%d (W×H), want %dx%d like the first image; give the model's input size to resize",
			path, sw, sh, w, h)
	}
	planes := imagePlanes(img, c)
	if sh == h && sw == w {
		copy(dst, planes)
		return nil
	}
	for ch := range c {
		resizeBilinear(dst[ch*h*w:(ch+1)*h*w], h, w, planes[ch*sh*sw:(ch+1)*sh*sw], sh, sw)
	}
	return nil
}

// imageFormat recognizes PNG and JPEG by their magic bytes.
func imageFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte{0xff, 0xd8}):
		return "jpeg"
	}
	return ""
}

// decodeConfig reads an image's size and color model.
func decodeConfig(b []byte) (image.Config, error) {
	switch imageFormat(b) {
	case "png":
		return png.DecodeConfig(bytes.NewReader(b))
	case "jpeg":
		return jpeg.DecodeConfig(bytes.NewReader(b))
	}
	return image.Config{}, fmt.Errorf("not a PNG or JPEG image")
}

// decodeImage decodes a PNG or JPEG of at most maxImagePixels pixels.
func decodeImage(b []byte) (image.Image, error) {
	cfg, err := decodeConfig(b)
	if err != nil {
		return nil, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxImagePixels/max(cfg.Height, 1) {
		return nil, fmt.Errorf("image size %dx%d is empty or above %d pixels", cfg.Width, cfg.Height, maxImagePixels)
	}
	if imageFormat(b) == "png" {
		return png.Decode(bytes.NewReader(b))
	}
	return jpeg.Decode(bytes.NewReader(b))
}

// imageConfig reads the size of the image at path and whether it is
// grayscale.
func imageConfig(path string) (image.Config, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Config{}, false, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	head := make([]byte, 1<<16)
	n, _ := f.Read(head)
	head = head[:n]
	cfg, err := decodeConfig(head)
	if err != nil {
		// The header may lie beyond the first 64 KiB (large JPEG metadata).
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return image.Config{}, false, fmt.Errorf("dataset: %w", rerr)
		}
		if cfg, err = decodeConfig(b); err != nil {
			return image.Config{}, false, fmt.Errorf("dataset: %s: %w", path, err)
		}
	}
	gray := cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model
	return cfg, gray, nil
}

// imagePlanes converts an image to c planes (1: luma, 3: R, G, B) of
// float32 in [0, 1]. Alpha is ignored: premultiplied formats give the
// color over black, non-premultiplied ones the color as stored.
func imagePlanes(img image.Image, c int) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	out := make([]float32, c*plane)
	put := func(i int, r, g, bl uint8) {
		if c == 1 {
			out[i] = float32(luma(r, g, bl)) / 255
			return
		}
		out[i] = float32(r) / 255
		out[plane+i] = float32(g) / 255
		out[2*plane+i] = float32(bl) / 255
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				f := float32(v) / 255
				for ch := range c {
					out[ch*plane+y*w+x] = f
				}
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				px, py := b.Min.X+x, b.Min.Y+y
				yy := m.Y[m.YOffset(px, py)]
				if c == 1 {
					out[y*w+x] = float32(yy) / 255
					continue
				}
				ci := m.COffset(px, py)
				r, g, bl := color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
				put(y*w+x, r, g, bl)
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				put(y*w+x, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			}
		}
	}
	return out
}

// luma is the 8-bit luminance Go's color.GrayModel computes (ITU-R BT.601
// weights 0.299, 0.587, 0.114).
func luma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
}

// resizeBilinear resamples one sh×sw plane to dh×dw with bilinear
// interpolation on pixel centers (source coordinate (d+0.5)·s/d - 0.5,
// clamped to the edge; OpenCV's INTER_LINEAR, no antialiasing).
func resizeBilinear(dst []float32, dh, dw int, src []float32, sh, sw int) {
	type tap struct {
		i0, i1 int
		f      float32
	}
	taps := func(d, s int) []tap {
		t := make([]tap, d)
		scale := float64(s) / float64(d)
		for i := range t {
			p := (float64(i)+0.5)*scale - 0.5
			if p < 0 {
				p = 0
			}
			i0 := int(p)
			if i0 > s-1 {
				i0 = s - 1
			}
			i1 := min(i0+1, s-1)
			t[i] = tap{i0, i1, float32(p - float64(i0))}
		}
		return t
	}
	xs, ys := taps(dw, sw), taps(dh, sh)
	for y, ty := range ys {
		r0 := src[ty.i0*sw : (ty.i0+1)*sw]
		r1 := src[ty.i1*sw : (ty.i1+1)*sw]
		o := dst[y*dw : (y+1)*dw]
		for x, tx := range xs {
			top := r0[tx.i0] + (r0[tx.i1]-r0[tx.i0])*tx.f
			bot := r1[tx.i0] + (r1[tx.i1]-r1[tx.i0])*tx.f
			o[x] = top + (bot-top)*ty.f
		}
	}
}
