package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/goslim/goslim/tensor"
)

// idxBytes encodes an IDX file: magic (type byte, rank), dims, body.
func idxBytes(typ byte, dims []int, body []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, body...)
}

// gzipBytes compresses b.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pixels returns n deterministic uint8 images of size elements each.
func pixels(n, size int) []byte {
	b := make([]byte, n*size)
	for i := range b {
		b[i] = byte(i*7 + i/size*13)
	}
	return b
}

func TestReadIDXTypes(t *testing.T) {
	be := binary.BigEndian
	var i16, i32, f32, f64 []byte
	for _, v := range []int{-2, 0, 3} {
		i16 = be.AppendUint16(i16, uint16(int16(v)))
		i32 = be.AppendUint32(i32, uint32(int32(v)))
		f32 = be.AppendUint32(f32, math.Float32bits(float32(v)/2))
		f64 = be.AppendUint64(f64, math.Float64bits(float64(v)/4))
	}
	tests := []struct {
		typ  byte
		body []byte
		want *tensor.Tensor
	}{
		{0x08, []byte{0, 128, 255}, &tensor.Tensor{DType: tensor.Uint8, Shape: tensor.Shape{3}, Data: []uint8{0, 128, 255}}},
		{0x09, []byte{0xfe, 0, 3}, &tensor.Tensor{DType: tensor.Int8, Shape: tensor.Shape{3}, Data: []int8{-2, 0, 3}}},
		{0x0B, i16, &tensor.Tensor{DType: tensor.Int16, Shape: tensor.Shape{3}, Data: []int16{-2, 0, 3}}},
		{0x0C, i32, &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{3}, Data: []int32{-2, 0, 3}}},
		{0x0D, f32, &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{3}, Data: []float32{-1, 0, 1.5}}},
		{0x0E, f64, &tensor.Tensor{DType: tensor.Float64, Shape: tensor.Shape{3}, Data: []float64{-0.5, 0, 0.75}}},
	}
	for _, tt := range tests {
		raw := idxBytes(tt.typ, []int{3}, tt.body)
		for _, in := range [][]byte{raw, gzipBytes(raw)} {
			got, err := ReadIDX(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("type 0x%02x: %v", tt.typ, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("type 0x%02x: got %+v, want %+v", tt.typ, got, tt.want)
			}
		}
	}
	// Rank 3 images.
	body := pixels(2, 6)
	got, err := ReadIDX(bytes.NewReader(idxBytes(0x08, []int{2, 2, 3}, body)))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Shape.Equal(tensor.Shape{2, 2, 3}) || !bytes.Equal(got.U8(), body) {
		t.Errorf("rank 3: got %v %v", got.Shape, got.U8())
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := idxBytes(0x08, []int{2, 3}, pixels(2, 3))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"short header", []byte{0, 0, 8}, "truncated header"},
		{"wrong magic", append([]byte{1, 2}, good[2:]...), "wrong magic"},
		{"png magic", []byte("\x89PNG\r\n\x1a\n...."), "wrong magic"},
		{"unknown type", idxBytes(0x0A, []int{1}, []byte{0}), "unknown element type 0x0a"},
		{"no dims", idxBytes(0x08, nil, nil), "no dimensions"},
		{"short dims", good[:9], "truncated header"},
		{"truncated body", good[:len(good)-1], "truncated"},
		{"truncated gz body", gzipBytes(good[:len(good)-2]), "truncated"},
		{"trailing", append(append([]byte{}, good...), 7), "continues after"},
		{"too many elements", idxBytes(0x08, []int{1 << 16, 1 << 16, 2}, nil), "exceeds the limit"},
		{"broken gzip", append([]byte{0x1f, 0x8b}, good...), "gzip"},
	}
	for _, tt := range tests {
		_, err := ReadIDX(bytes.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	// A corrupted gzip checksum is reported too.
	gz := gzipBytes(good)
	gz[len(gz)-8] ^= 0xff
	if _, err := ReadIDX(bytes.NewReader(gz)); err == nil {
		t.Error("bad gzip checksum: no error")
	}
}

// TestReadIDXHostileSize checks that a header claiming 2^31 elements over
// a tiny body fails without allocating anything near that size.
func TestReadIDXHostileSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"uint8 2^31", idxBytes(0x08, []int{1 << 15, 1 << 16}, make([]byte, 100))},
		{"float64 2^31", idxBytes(0x0E, []int{1 << 31}, make([]byte, 100))},
		{"gzip uint8 2^31", gzipBytes(idxBytes(0x08, []int{1 << 31}, make([]byte, 100)))},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadIDX(bytes.NewReader(tt.in))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s: error %v, want truncated", tt.name, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte input", tt.name, got, len(tt.in))
		}
	}
}

func TestReadIDXFileNamesFile(t *testing.T) {
	p := writeFile(t, t.TempDir(), "bad.idx", []byte{1, 2, 3, 4, 5})
	_, err := ReadIDXFile(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name %s", err, p)
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes(0x08, []int{2, 3}, pixels(2, 3)))
	f.Add(gzipBytes(idxBytes(0x08, []int{2, 2, 2}, pixels(2, 4))))
	f.Add(idxBytes(0x0D, []int{1}, []byte{0x3f, 0x80, 0, 0}))
	f.Add(idxBytes(0x0E, []int{1 << 31}, nil))
	f.Add(idxBytes(0x0C, []int{0, 5}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := got.Check(); err != nil {
			t.Fatalf("decoded tensor is inconsistent: %v", err)
		}
		if len(b) >= 2 && b[0] != 0x1f && got.Len()*got.DType.Size() > len(b) {
			t.Fatalf("%d elements of %v from %d raw bytes", got.Len(), got.DType, len(b))
		}
	})
}
