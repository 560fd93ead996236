// Package npy reads and writes NumPy's .npy and .npz files.
//
// Read accepts format versions 1.0, 2.0 and 3.0 with little- or big-endian
// data in C order (big-endian data is byte-swapped on read). The dtypes are
// those goslim stores: <f4 <f8 <f2 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1.
// Write produces version 1.0 files (2.0 when the header does not fit), the
// same bytes numpy.save writes for a C-contiguous array.
//
// A header can claim any shape; Read never allocates more than the data
// actually present (plus a small constant) and refuses shapes above
// tensor.MaxElements, so hostile files fail with an error instead of
// exhausting memory.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/goslim/goslim/tensor"
)

// magic starts every .npy file.
const magic = "\x93NUMPY"

// MaxHeaderLen bounds the header dictionary's length. numpy itself refuses
// headers above 10000 bytes by default; goslim allows more but not
// gigabytes.
const MaxHeaderLen = 1 << 20

// chunkBytes is the read granularity; allocations grow with the data read,
// never ahead of it by more than this.
const chunkBytes = 1 << 16

// descrs maps a dtype to its little-endian NumPy type string.
var descrs = map[tensor.DType]string{
	tensor.Float32: "<f4", tensor.Float64: "<f8", tensor.Float16: "<f2",
	tensor.Int8: "|i1", tensor.Uint8: "|u1", tensor.Int16: "<i2", tensor.Uint16: "<u2",
	tensor.Int32: "<i4", tensor.Uint32: "<u4", tensor.Int64: "<i8", tensor.Uint64: "<u8",
	tensor.Bool: "|b1",
}

// kinds maps a NumPy type string without its byte-order character to a dtype.
var kinds = map[string]tensor.DType{
	"f4": tensor.Float32, "f8": tensor.Float64, "f2": tensor.Float16,
	"i1": tensor.Int8, "u1": tensor.Uint8, "i2": tensor.Int16, "u2": tensor.Uint16,
	"i4": tensor.Int32, "u4": tensor.Uint32, "i8": tensor.Int64, "u8": tensor.Uint64,
	"b1": tensor.Bool,
}

// header is the parsed header dictionary.
type header struct {
	dtype   tensor.DType
	order   binary.ByteOrder
	fortran bool
	shape   tensor.Shape
}

// Read decodes one .npy array from r. It reads exactly the header and the
// array's bytes, so several arrays written back to back can be read in turn.
func Read(r io.Reader) (*tensor.Tensor, error) {
	return read(r, remaining(r))
}

// ReadFile reads the .npy file at path; errors name the file.
func ReadFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// remaining returns how many bytes r still holds when r can tell cheaply
// (in-memory readers, regular files), or -1.
func remaining(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		st, err := v.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return st.Size() - pos
	}
	return -1
}

// read decodes an array; avail is the number of bytes r holds, or -1 when
// unknown.
func read(r io.Reader, avail int64) (*tensor.Tensor, error) {
	var pre [8]byte
	if n, err := io.ReadFull(r, pre[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("npy: empty input")
		}
		return nil, fmt.Errorf("npy: truncated magic (%d bytes)", n)
	}
	if string(pre[:6]) != magic {
		return nil, fmt.Errorf("npy: not a .npy file (bad magic %q)", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int64
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: truncated header length")
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: truncated header length")
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	if hlen > MaxHeaderLen {
		return nil, fmt.Errorf("npy: header of %d bytes exceeds the %d-byte limit", hlen, MaxHeaderLen)
	}
	if avail >= 0 {
		avail -= 8 + 2
		if major > 1 {
			avail -= 2
		}
		if hlen > avail {
			return nil, fmt.Errorf("npy: header claims %d bytes, only %d remain", hlen, max(avail, 0))
		}
		avail -= hlen
	}
	hb, err := readBytes(r, int(hlen))
	if err != nil {
		return nil, fmt.Errorf("npy: truncated header: %w", err)
	}
	h, err := parseHeader(string(hb), major >= 3)
	if err != nil {
		return nil, err
	}
	if h.fortran && len(h.shape) > 1 {
		return nil, fmt.Errorf("npy: array of shape %v is in Fortran order; goslim reads C order only (save numpy.ascontiguousarray(a))", h.shape)
	}
	n := h.shape.Size()
	if n < 0 || n > tensor.MaxElements {
		return nil, fmt.Errorf("npy: shape %v exceeds the %d-element limit", h.shape, tensor.MaxElements)
	}
	size := h.dtype.Size()
	if avail >= 0 && int64(n)*int64(size) > avail {
		return nil, fmt.Errorf("npy: shape %v of %v needs %d data bytes, only %d remain", h.shape, h.dtype, int64(n)*int64(size), avail)
	}
	data, err := readData(r, h.dtype, h.order, n)
	if err != nil {
		return nil, fmt.Errorf("npy: shape %v of %v: %w", h.shape, h.dtype, err)
	}
	return &tensor.Tensor{DType: h.dtype, Shape: h.shape, Data: data}, nil
}

// readBytes reads exactly n bytes, growing its buffer with the data read.
func readBytes(r io.Reader, n int) ([]byte, error) {
	var buf bytes.Buffer
	m, err := buf.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if int(m) < n {
		return nil, fmt.Errorf("got %d of %d bytes", m, n)
	}
	return buf.Bytes(), nil
}

// readData reads n elements of dt stored in the given byte order.
func readData(r io.Reader, dt tensor.DType, order binary.ByteOrder, n int) (any, error) {
	switch dt {
	case tensor.Float32:
		return readElems[float32](r, order, n, 4)
	case tensor.Float64:
		return readElems[float64](r, order, n, 8)
	case tensor.Float16, tensor.Uint16:
		return readElems[uint16](r, order, n, 2)
	case tensor.Int8:
		return readElems[int8](r, order, n, 1)
	case tensor.Uint8:
		return readElems[uint8](r, order, n, 1)
	case tensor.Int16:
		return readElems[int16](r, order, n, 2)
	case tensor.Int32:
		return readElems[int32](r, order, n, 4)
	case tensor.Uint32:
		return readElems[uint32](r, order, n, 4)
	case tensor.Int64:
		return readElems[int64](r, order, n, 8)
	case tensor.Uint64:
		return readElems[uint64](r, order, n, 8)
	case tensor.Bool:
		return readElems[bool](r, order, n, 1)
	}
	return nil, fmt.Errorf("unsupported dtype %v", dt)
}

// readElems reads n fixed-size elements chunk by chunk. The result grows
// by doubling as data arrives, so a header that lies about the shape costs
// at most about twice the bytes actually present.
func readElems[T bool | int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | float64](r io.Reader, order binary.ByteOrder, n, size int) ([]T, error) {
	out := make([]T, 0, min(n, chunkBytes/size))
	scratch := make([]byte, min(n*size, chunkBytes))
	for len(out) < n {
		k := min(n-len(out), len(scratch)/size)
		if m, err := io.ReadFull(r, scratch[:k*size]); err != nil {
			got := int64(len(out))*int64(size) + int64(m)
			return nil, fmt.Errorf("truncated data: got %d of %d bytes", got, int64(n)*int64(size))
		}
		if cap(out)-len(out) < k {
			grown := make([]T, len(out), min(n, max(2*cap(out), len(out)+k)))
			copy(grown, out)
			out = grown
		}
		l := len(out)
		out = out[:l+k]
		if _, err := binary.Decode(scratch[:k*size], order, out[l:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseHeader parses the header dictionary, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
func parseHeader(s string, utf8 bool) (*header, error) {
	if !utf8 {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, fmt.Errorf("npy: header has non-ASCII byte 0x%02x at offset %d (only version 3.0 allows UTF-8)", s[i], i)
			}
		}
	}
	p := &dictParser{s: s}
	var h header
	var seen [3]bool
	p.skipSpace()
	if !p.eat('{') {
		return nil, p.errorf("header does not start with '{'")
	}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if !p.eat(':') {
			return nil, p.errorf("missing ':' after key %q", key)
		}
		p.skipSpace()
		switch key {
		case "descr":
			if p.peek() == '[' {
				return nil, p.errorf("structured dtype (descr is a list); goslim reads plain numeric arrays only")
			}
			d, err := p.str()
			if err != nil {
				return nil, err
			}
			h.dtype, h.order, err = parseDescr(d)
			if err != nil {
				return nil, err
			}
			seen[0] = true
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
				h.fortran = false
			default:
				return nil, p.errorf("fortran_order is not True or False")
			}
			seen[1] = true
		case "shape":
			sh, err := p.tuple()
			if err != nil {
				return nil, err
			}
			h.shape = sh
			seen[2] = true
		default:
			return nil, p.errorf("unexpected header key %q", key)
		}
		p.skipSpace()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, p.errorf("expected ',' or '}' after key %q", key)
		}
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, p.errorf("trailing bytes after the header dictionary")
	}
	for i, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[i] {
			return nil, fmt.Errorf("npy: header has no %q key", k)
		}
	}
	return &h, nil
}

// parseDescr maps a NumPy type string ("<f4", "|u1", ">i8") to a dtype and
// byte order.
func parseDescr(d string) (tensor.DType, binary.ByteOrder, error) {
	if len(d) != 3 {
		return 0, nil, fmt.Errorf("npy: unsupported dtype %q", d)
	}
	dt, ok := kinds[d[1:]]
	if !ok {
		return 0, nil, fmt.Errorf("npy: unsupported dtype %q (goslim reads bool, int8..int64, uint8..uint64, float16, float32, float64)", d)
	}
	switch d[0] {
	case '<':
		return dt, binary.LittleEndian, nil
	case '>':
		return dt, binary.BigEndian, nil
	case '|', '=':
		if dt.Size() == 1 {
			return dt, binary.LittleEndian, nil
		}
		if d[0] == '=' {
			return 0, nil, fmt.Errorf("npy: dtype %q has native byte order; want '<' or '>'", d)
		}
	}
	return 0, nil, fmt.Errorf("npy: dtype %q has invalid byte order %q", d, d[0])
}

// dictParser scans the header's Python literal.
type dictParser struct {
	s string
	i int
}

func (p *dictParser) errorf(format string, args ...any) error {
	return fmt.Errorf("npy: bad header at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *dictParser) skipSpace() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *dictParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *dictParser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) word(w string) bool {
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str parses a quoted string without escapes (numpy never writes any).
func (p *dictParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("expected a quoted string")
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", p.errorf("escape sequences in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

// tuple parses a shape tuple: (), (3,), (2, 3) with optional Python 2 "L"
// suffixes.
func (p *dictParser) tuple() (tensor.Shape, error) {
	if !p.eat('(') {
		return nil, p.errorf("shape is not a tuple")
	}
	shape := tensor.Shape{}
	for {
		p.skipSpace()
		if p.eat(')') {
			return shape, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if start == p.i {
			return nil, p.errorf("shape entry is not a non-negative integer")
		}
		d, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil || d > tensor.MaxElements {
			return nil, p.errorf("shape dimension %s exceeds the %d-element limit", p.s[start:p.i], tensor.MaxElements)
		}
		if len(shape) >= 64 {
			return nil, p.errorf("shape has more than 64 dimensions")
		}
		shape = append(shape, int(d))
		p.eat('L')
		p.skipSpace()
		if p.eat(')') {
			return shape, nil
		}
		if !p.eat(',') {
			return nil, p.errorf("expected ',' or ')' in shape")
		}
	}
}

// Write encodes t as a .npy file (format 1.0, or 2.0 when the header does
// not fit 1.0's 16-bit length) in C order and little-endian byte order.
func Write(w io.Writer, t *tensor.Tensor) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	descr, ok := descrs[t.DType]
	if !ok {
		return fmt.Errorf("npy: dtype %v has no NumPy equivalent", t.DType)
	}
	var dict strings.Builder
	fmt.Fprintf(&dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr)
	for i, d := range t.Shape {
		if i > 0 {
			dict.WriteString(", ")
		}
		dict.WriteString(strconv.Itoa(d))
	}
	if len(t.Shape) == 1 {
		dict.WriteByte(',')
	}
	dict.WriteString("), }")
	// numpy pads with spaces and a final newline so that the data starts
	// at a multiple of 64 bytes.
	version, lenBytes := byte(1), 2
	total := len(magic) + 2 + lenBytes + dict.Len() + 1
	pad := (64 - total%64) % 64
	if dict.Len()+pad+1 > 0xffff {
		version, lenBytes = 2, 4
		total = len(magic) + 2 + lenBytes + dict.Len() + 1
		pad = (64 - total%64) % 64
	}
	hlen := dict.Len() + pad + 1
	buf := make([]byte, 0, len(magic)+2+lenBytes+hlen)
	buf = append(buf, magic...)
	buf = append(buf, version, 0)
	if version == 1 {
		buf = binary.LittleEndian.AppendUint16(buf, uint16(hlen))
	} else {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(hlen))
	}
	buf = append(buf, dict.String()...)
	buf = append(buf, strings.Repeat(" ", pad)...)
	buf = append(buf, '\n')
	if _, err := w.Write(buf); err != nil {
		return err
	}
	return writeData(w, t.Data)
}

// WriteFile writes t to path as a .npy file.
func WriteFile(path string, t *tensor.Tensor) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, t); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeData(w io.Writer, data any) error {
	switch d := data.(type) {
	case []float32:
		return writeElems(w, d, 4)
	case []float64:
		return writeElems(w, d, 8)
	case []uint16:
		return writeElems(w, d, 2)
	case []int8:
		return writeElems(w, d, 1)
	case []uint8:
		_, err := w.Write(d)
		return err
	case []int16:
		return writeElems(w, d, 2)
	case []int32:
		return writeElems(w, d, 4)
	case []uint32:
		return writeElems(w, d, 4)
	case []int64:
		return writeElems(w, d, 8)
	case []uint64:
		return writeElems(w, d, 8)
	case []bool:
		return writeElems(w, d, 1)
	}
	return errors.New("npy: unsupported storage")
}

// writeElems encodes data little-endian in chunks.
func writeElems[T bool | int8 | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | float64](w io.Writer, data []T, size int) error {
	scratch := make([]byte, min(len(data)*size, chunkBytes))
	for len(data) > 0 {
		k := min(len(data), len(scratch)/size)
		if _, err := binary.Encode(scratch[:k*size], binary.LittleEndian, data[:k]); err != nil {
			return err
		}
		if _, err := w.Write(scratch[:k*size]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}
