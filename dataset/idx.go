package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"

	"github.com/goslim/goslim/tensor"
)

// IDX files (LeCun's format for MNIST) start with two zero bytes, a type
// byte and the number of dimensions, then each dimension as a big-endian
// uint32, then the data, big-endian, in row-major order. idxType maps the
// type byte to a dtype.
func idxType(b byte) (tensor.DType, bool) {
	switch b {
	case 0x08:
		return tensor.Uint8, true
	case 0x09:
		return tensor.Int8, true
	case 0x0B:
		return tensor.Int16, true
	case 0x0C:
		return tensor.Int32, true
	case 0x0D:
		return tensor.Float32, true
	case 0x0E:
		return tensor.Float64, true
	}
	return tensor.Undefined, false
}

// readChunk is the granularity of body reads: memory grows with the bytes
// actually read, never ahead of them by more than this.
const readChunk = 1 << 20

// ReadIDX decodes an IDX file, raw or gzip-compressed (recognized by its
// magic bytes). Element types ubyte, byte, short, int, float and double
// become Uint8, Int8, Int16, Int32, Float32 and Float64 tensors. The
// header may claim any size (up to tensor.MaxElements): the buffer is
// sized by the bytes r can still deliver when r tells (in-memory readers,
// files; times DEFLATE's maximum ratio for gzip) and otherwise grows with
// the data read, so a short file fails with an error instead of a huge
// allocation. Data after the last element is an error.
func ReadIDX(r io.Reader) (*tensor.Tensor, error) {
	avail := remaining(r)
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("idx: gzip: %w", err)
		}
		defer gz.Close()
		src = gz
		if avail >= 0 {
			avail = avail*maxDeflateRatio + readChunk
		}
	}
	var hdr [4]byte
	if n, err := io.ReadFull(src, hdr[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("idx: empty file")
		}
		return nil, fmt.Errorf("idx: truncated header: %w", err)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("idx: wrong magic %02x%02x%02x%02x, not an IDX file", hdr[0], hdr[1], hdr[2], hdr[3])
	}
	dt, ok := idxType(hdr[2])
	if !ok {
		return nil, fmt.Errorf("idx: wrong magic %02x%02x%02x%02x: unknown element type 0x%02x", hdr[0], hdr[1], hdr[2], hdr[3], hdr[2])
	}
	rank := int(hdr[3])
	if rank == 0 {
		return nil, fmt.Errorf("idx: header has no dimensions")
	}
	dimBytes := make([]byte, 4*rank)
	if _, err := io.ReadFull(src, dimBytes); err != nil {
		return nil, fmt.Errorf("idx: truncated header (%d dimensions): %w", rank, err)
	}
	shape := make(tensor.Shape, rank)
	n := 1
	for i := range shape {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if uint64(d) > tensor.MaxElements {
			return nil, fmt.Errorf("idx: dimension %d is %d, above the limit of %d elements", i, d, tensor.MaxElements)
		}
		shape[i] = int(d)
		if shape[i] != 0 && n > tensor.MaxElements/shape[i] {
			return nil, fmt.Errorf("idx: shape %v exceeds the limit of %d elements", shape[:i+1], tensor.MaxElements)
		}
		n *= shape[i]
	}
	if n > tensor.MaxElements {
		return nil, fmt.Errorf("idx: shape %v exceeds the limit of %d elements", shape, tensor.MaxElements)
	}
	size := dt.Size()
	body, err := readCapped(src, n*size, avail)
	if err != nil {
		return nil, err
	}
	if len(body) < n*size {
		return nil, fmt.Errorf("idx: truncated: header says %v %v (%d bytes of data), file has %d", dt, shape, n*size, len(body))
	}
	var extra [1]byte
	if m, err := io.ReadFull(src, extra[:]); m > 0 {
		return nil, fmt.Errorf("idx: data continues after the %d elements of %v", n, shape)
	} else if err != io.EOF {
		return nil, fmt.Errorf("idx: %w", err)
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: decodeBigEndian(dt, body, n)}, nil
}

// ReadIDXFile reads the IDX file at path (raw or .gz); errors name the
// file.
func ReadIDXFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	t, err := ReadIDX(f)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", path, err)
	}
	return t, nil
}

// maxDeflateRatio bounds how many bytes DEFLATE can expand one byte to
// (1032:1 for long runs; rounded up).
const maxDeflateRatio = 1040

// remaining returns how many bytes r still holds when it can tell cheaply
// (in-memory readers, regular and embedded files), or -1.
func remaining(r io.Reader) int64 {
	if v, ok := r.(interface{ Len() int }); ok {
		return int64(v.Len())
	}
	st, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	sk, ok2 := r.(io.Seeker)
	if !ok || !ok2 {
		return -1
	}
	info, err := st.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return -1
	}
	pos, err := sk.Seek(0, io.SeekCurrent)
	if err != nil || pos > info.Size() {
		return -1
	}
	return info.Size() - pos
}

// readCapped reads up to n bytes. When avail >= 0 bounds the bytes r can
// produce, the buffer is allocated once at min(n, avail); otherwise it
// grows with the data read. Running out of data early is not an error
// here: the caller compares lengths to report the truncation.
func readCapped(r io.Reader, n int, avail int64) ([]byte, error) {
	first := min(n, readChunk)
	if avail >= 0 {
		first = int(min(int64(n), avail))
	}
	buf := make([]byte, 0, first)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(len(buf), readChunk)))
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("idx: %w", err)
		}
	}
	return buf, nil
}

// decodeBigEndian converts n big-endian elements of dt.
func decodeBigEndian(dt tensor.DType, b []byte, n int) any {
	be := binary.BigEndian
	switch dt {
	case tensor.Uint8:
		return b[:n:n]
	case tensor.Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out
	case tensor.Int16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(be.Uint16(b[2*i:]))
		}
		return out
	case tensor.Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(be.Uint32(b[4*i:]))
		}
		return out
	case tensor.Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(be.Uint32(b[4*i:]))
		}
		return out
	case tensor.Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(be.Uint64(b[8*i:]))
		}
		return out
	}
	panic("dataset: decodeBigEndian: unexpected dtype " + dt.String())
}

// idxFile is a decoded IDX file and the name to use in messages.
type idxFile struct {
	name string
	t    *tensor.Tensor
}

// openIDXReader decodes an IDX stream; errors name the file.
func openIDXReader(name string, r io.Reader) (idxFile, error) {
	t, err := ReadIDX(r)
	if err != nil {
		return idxFile{}, fmt.Errorf("dataset: %s: %w", name, err)
	}
	return idxFile{name: name, t: t}, nil
}

// openIDX opens idx:IMAGES[,LABELS].
func openIDX(paths []string, opts Options) (source, error) {
	img, err := ReadIDXFile(paths[0])
	if err != nil {
		return nil, err
	}
	images := idxFile{name: paths[0], t: img}
	var labels *idxFile
	if len(paths) > 1 {
		l, err := ReadIDXFile(paths[1])
		if err != nil {
			return nil, err
		}
		labels = &idxFile{name: paths[1], t: l}
	}
	return idxSource(images, labels, opts, 0)
}

// idxSource builds a source from decoded IDX images and optional labels.
// Rank-3 data (N×H×W) are single-channel images, rank 4 is N×C×H×W, rank 2
// is N×D; uint8 data scale to [0, 1], other types convert to float32
// unscaled. classes > 0 bounds the labels.
func idxSource(images idxFile, labels *idxFile, opts Options, classes int) (source, error) {
	t := images.t
	if t.Rank() < 2 {
		return nil, fmt.Errorf("dataset: %s: data has shape %v; want N×H×W images (or N×C×H×W, N×D)", images.name, t.Shape)
	}
	n := t.Shape[0]
	sample := t.Shape[1:].Clone()
	if len(sample) == 2 {
		sample = tensor.Shape{1, sample[0], sample[1]}
	}
	if len(sample) > 3 {
		return nil, fmt.Errorf("dataset: %s: data has shape %v; want N×H×W images (or N×C×H×W, N×D)", images.name, t.Shape)
	}
	var labs []int64
	labName := ""
	if labels != nil {
		var err error
		labs, err = idxLabels(*labels, n, images.name, classes)
		if err != nil {
			return nil, err
		}
		labName = labels.name
	}
	info := InputInfo{Name: opts.inputName(), DType: tensor.Float32, Shape: sample}
	if t.DType == tensor.Uint8 {
		return &u8Source{info: info, data: t.U8(), n: n, labs: labs, name: images.name, labName: labName}, nil
	}
	f, err := toFloat32(t)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", images.name, err)
	}
	f.Shape = append(tensor.Shape{n}, sample...)
	return &tensorSource{ins: []InputInfo{info}, data: []*tensor.Tensor{f}, n: n, labs: labs, name: images.name, labName: labName}, nil
}

// idxLabels checks and converts an IDX label file for n samples.
func idxLabels(l idxFile, n int, imagesName string, classes int) ([]int64, error) {
	t := l.t
	if t.Rank() != 1 && !(t.Rank() == 2 && t.Shape[1] == 1) {
		return nil, fmt.Errorf("dataset: %s: labels have shape %v; want [N]", l.name, t.Shape)
	}
	if t.Shape[0] != n {
		return nil, fmt.Errorf("dataset: %s: %d labels for the %d images of %s", l.name, t.Shape[0], n, imagesName)
	}
	if t.DType.IsFloat() {
		return nil, fmt.Errorf("dataset: %s: labels are %v; want integers", l.name, t.DType)
	}
	labs, err := t.Int64s()
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", l.name, err)
	}
	if classes > 0 {
		for i, v := range labs {
			if v < 0 || v >= int64(classes) {
				return nil, fmt.Errorf("dataset: %s: label %d of sample %d is out of range [0, %d)", l.name, v, i, classes)
			}
		}
	}
	return labs, nil
}
