package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/goslim/goslim/tensor"
)

// want recomputes the values testdata/gen.py stores for a dtype and shape.
func want(dt tensor.DType, shape tensor.Shape) *tensor.Tensor {
	n := shape.Size()
	t, err := tensor.New(dt, shape)
	if err != nil {
		panic(err)
	}
	for i := 0; i < n; i++ {
		v := float64(i)
		switch dt {
		case tensor.Float32, tensor.Float64, tensor.Float16:
			v = v*0.5 - 1
		case tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64:
			v--
		}
		switch d := t.Data.(type) {
		case []float32:
			d[i] = float32(v)
		case []float64:
			d[i] = v
		case []uint16:
			if dt == tensor.Float16 {
				d[i] = tensor.Float32ToHalf(float32(v))
			} else {
				d[i] = uint16(v)
			}
		case []int8:
			d[i] = int8(v)
		case []uint8:
			d[i] = uint8(v)
		case []int16:
			d[i] = int16(v)
		case []int32:
			d[i] = int32(v)
		case []uint32:
			d[i] = uint32(v)
		case []int64:
			d[i] = int64(v)
		case []uint64:
			d[i] = uint64(v)
		case []bool:
			d[i] = i%3 == 0
		}
	}
	return t
}

func TestReadNumpyFiles(t *testing.T) {
	tests := []struct {
		file  string
		dt    tensor.DType
		shape tensor.Shape
	}{
		{"f4.npy", tensor.Float32, tensor.Shape{2, 3}},
		{"f8.npy", tensor.Float64, tensor.Shape{}},
		{"f2.npy", tensor.Float16, tensor.Shape{5}},
		{"i1.npy", tensor.Int8, tensor.Shape{2, 2}},
		{"u1.npy", tensor.Uint8, tensor.Shape{4}},
		{"i2.npy", tensor.Int16, tensor.Shape{3}},
		{"u2.npy", tensor.Uint16, tensor.Shape{3}},
		{"i4.npy", tensor.Int32, tensor.Shape{2, 1, 2}},
		{"u4.npy", tensor.Uint32, tensor.Shape{3}},
		{"i8.npy", tensor.Int64, tensor.Shape{4}},
		{"u8.npy", tensor.Uint64, tensor.Shape{2}},
		{"b1.npy", tensor.Bool, tensor.Shape{2, 3}},
		{"empty_f4.npy", tensor.Float32, tensor.Shape{0, 3}},
		{"be_f4.npy", tensor.Float32, tensor.Shape{2, 3}},
		{"be_i8.npy", tensor.Int64, tensor.Shape{3}},
		{"v2_f4.npy", tensor.Float32, tensor.Shape{2, 3}},
		{"v3_f4.npy", tensor.Float32, tensor.Shape{2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(tc.dt, tc.shape); !reflect.DeepEqual(got, w) {
				t.Fatalf("got %v, want %v", got, w)
			}
			// Through a reader that cannot tell its length, one byte at a time.
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got2, err := Read(iotest.OneByteReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, got2) {
				t.Fatalf("streamed read differs: %v vs %v", got2, got)
			}
			// Little-endian version 1.0 files are rewritten byte for byte.
			if !strings.HasPrefix(tc.file, "be_") && !strings.HasPrefix(tc.file, "v") {
				var buf bytes.Buffer
				if err := Write(&buf, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), raw) {
					t.Fatalf("Write differs from numpy.save:\n got %q\nwant %q", buf.Bytes(), raw)
				}
			}
		})
	}
}

func TestReadNumpyErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"fortran_f4.npy", "Fortran order"},
		{"c8.npy", `unsupported dtype "<c8"`},
	}
	for _, tc := range tests {
		_, err := ReadFile(filepath.Join("testdata", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.file, err, tc.want)
		}
	}
}

func TestReadNPZ(t *testing.T) {
	for _, file := range []string{"stored.npz", "deflated.npz"} {
		m, err := ReadNPZFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		w := map[string]*tensor.Tensor{
			"x":   want(tensor.Float32, tensor.Shape{2, 3}),
			"idx": want(tensor.Int64, tensor.Shape{4}),
		}
		if !reflect.DeepEqual(m, w) {
			t.Errorf("%s: got %v, want %v", file, m, w)
		}
	}
}

func TestNPZRoundTrip(t *testing.T) {
	arrays := map[string]*tensor.Tensor{
		"a":     want(tensor.Float32, tensor.Shape{3, 4}),
		"b/c":   want(tensor.Bool, tensor.Shape{5}),
		"empty": want(tensor.Int8, tensor.Shape{0}),
	}
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, arrays); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, arrays) {
		t.Fatalf("got %v, want %v", got, arrays)
	}
	if _, err := ReadNPZ(bytes.NewReader([]byte("not a zip")), 9); err == nil || !strings.Contains(err.Error(), "not a zip") {
		t.Errorf("garbage: error %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	dts := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16, tensor.Int8, tensor.Uint8,
		tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64, tensor.Bool}
	shapes := []tensor.Shape{{}, {0}, {1}, {7}, {2, 3}, {3, 0, 2}, {2, 3, 5, 7}, {20000}}
	for _, dt := range dts {
		for _, sh := range shapes {
			src := want(dt, sh)
			var buf bytes.Buffer
			if err := Write(&buf, src); err != nil {
				t.Fatal(err)
			}
			if off := bytes.IndexByte(buf.Bytes(), '\n') + 1; off%64 != 0 {
				t.Errorf("%v%v: data starts at %d, not a multiple of 64", dt, sh, off)
			}
			got, err := Read(&buf)
			if err != nil {
				t.Fatalf("%v%v: %v", dt, sh, err)
			}
			if !reflect.DeepEqual(got, src) {
				t.Fatalf("%v%v: round trip changed the tensor", dt, sh)
			}
			if buf.Len() != 0 {
				t.Fatalf("%v%v: %d bytes left unread", dt, sh, buf.Len())
			}
		}
	}
	// A bfloat16 tensor has no NumPy dtype.
	bf := &tensor.Tensor{DType: tensor.BFloat16, Shape: tensor.Shape{1}, Data: []uint16{0}}
	if err := Write(io.Discard, bf); err == nil || !strings.Contains(err.Error(), "bfloat16") {
		t.Errorf("bfloat16: error %v", err)
	}
	// Several arrays back to back.
	var buf bytes.Buffer
	a, b := want(tensor.Int32, tensor.Shape{3}), want(tensor.Float64, tensor.Shape{2, 2})
	if err := Write(&buf, a); err != nil {
		t.Fatal(err)
	}
	if err := Write(&buf, b); err != nil {
		t.Fatal(err)
	}
	r := iotest.HalfReader(&buf)
	for _, w := range []*tensor.Tensor{a, b} {
		got, err := Read(r)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("sequential read: %v, %v; want %v", got, err, w)
		}
	}
}

// TestLongHeader reads a version 2.0 file whose header is longer than
// version 1.0's 16-bit length allows.
func TestLongHeader(t *testing.T) {
	dict := "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }"
	dict += strings.Repeat(" ", 70000-len(dict)-1) + "\n"
	var buf bytes.Buffer
	buf.WriteString(magic)
	buf.Write([]byte{2, 0})
	binary.Write(&buf, binary.LittleEndian, uint32(len(dict)))
	buf.WriteString(dict)
	binary.Write(&buf, binary.LittleEndian, []int32{7, -8})
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if w := (&tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{2}, Data: []int32{7, -8}}); !reflect.DeepEqual(got, w) {
		t.Fatalf("got %v, want %v", got, w)
	}
}

// file builds a version 1.0 .npy from a header dictionary and data bytes.
func file(dict string, data []byte) []byte {
	var b []byte
	b = append(b, magic...)
	b = append(b, 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	b = append(b, dict...)
	b = append(b, '\n')
	return append(b, data...)
}

func TestReadErrors(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	eight := make([]byte, 8)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty input"},
		{"short magic", []byte("\x93NUM"), "truncated magic"},
		{"bad magic", []byte("PK\x03\x04xxxxxxxx"), "not a .npy file"},
		{"version", []byte(magic + "\x04\x00\x10\x00"), "unsupported format version 4.0"},
		{"no header len", []byte(magic + "\x01\x00\x10"), "truncated header length"},
		{"header past end", file(ok, eight)[:20], "header claims"},
		{"huge header v2", append([]byte(magic+"\x02\x00"), 0xff, 0xff, 0xff, 0x7f), "exceeds the 1048576-byte limit"},
		{"not a dict", file("['descr']", nil), "does not start with '{'"},
		{"missing shape", file("{'descr': '<f4', 'fortran_order': False}", nil), `no "shape" key`},
		{"missing descr", file("{'fortran_order': False, 'shape': ()}", nil), `no "descr" key`},
		{"unknown key", file("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", nil), `unexpected header key "x"`},
		{"structured", file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}", nil), "structured dtype"},
		{"object", file("{'descr': '|O', 'fortran_order': False, 'shape': ()}", nil), `unsupported dtype "|O"`},
		{"unicode", file("{'descr': '<U3', 'fortran_order': False, 'shape': ()}", nil), `unsupported dtype "<U3"`},
		{"native order", file("{'descr': '=f4', 'fortran_order': False, 'shape': ()}", nil), "native byte order"},
		{"bar order", file("{'descr': '|f4', 'fortran_order': False, 'shape': ()}", nil), "invalid byte order"},
		{"fortran", file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}", make([]byte, 16)), "Fortran order"},
		{"bad bool", file("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", nil), "fortran_order is not True or False"},
		{"negative dim", file("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", nil), "not a non-negative integer"},
		{"huge dim", file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", nil), "exceeds the"},
		{"huge shape", file("{'descr': '<f8', 'fortran_order': False, 'shape': (1048576, 1048576)}", eight), "exceeds the 2147483648-element limit"},
		{"large shape, little data", file("{'descr': '<f8', 'fortran_order': False, 'shape': (1024, 1024, 1024)}", eight), "needs 8589934592 data bytes, only 8 remain"},
		{"truncated data", file(ok, eight[:5]), "needs 8 data bytes, only 5 remain"},
		{"trailing", file(ok+"x", eight), "trailing bytes"},
		{"unterminated", file("{'descr': '<f4", nil), "unterminated string"},
		{"non-ascii v1", file("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'é': 1}", nil), "non-ASCII"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			// The same input through a reader that hides its length.
			if _, err := Read(iotest.HalfReader(bytes.NewReader(tc.in))); err == nil {
				t.Fatal("streamed read succeeded")
			}
		})
	}
}

// TestHostileShapeMemory checks that a header claiming gigabytes with no
// data behind it allocates little, whether or not the reader tells its
// length.
func TestHostileShapeMemory(t *testing.T) {
	in := file("{'descr': '<f8', 'fortran_order': False, 'shape': (2147483648,)}", make([]byte, 16))
	for _, hide := range []bool{false, true} {
		alloc := allocated(func() {
			var r io.Reader = bytes.NewReader(in)
			if hide {
				r = iotest.HalfReader(r)
			}
			if _, err := Read(r); err == nil {
				t.Fatal("no error")
			}
		})
		if alloc > 1<<20 {
			t.Errorf("hidden length %v: reading a %d-byte hostile file allocated %d bytes", hide, len(in), alloc)
		}
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.npy")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Int64, tensor.Bool, tensor.Float16} {
		var buf bytes.Buffer
		if err := Write(&buf, want(dt, tensor.Shape{2, 3})); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got *tensor.Tensor
		var err error
		alloc := allocated(func() { got, err = Read(bytes.NewReader(in)) })
		// Decoded storage is as large as the data bytes; growth by doubling
		// and the read chunks add a bounded amount on top.
		if limit := uint64(10<<20 + 4*len(in)); alloc > limit {
			t.Fatalf("reading %d bytes allocated %d", len(in), alloc)
		}
		if err != nil {
			return
		}
		if err := got.Check(); err != nil {
			t.Fatalf("Read returned an invalid tensor: %v", err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, got); err != nil {
			t.Fatalf("Write after Read: %v", err)
		}
		again, err := Read(&buf)
		if err != nil {
			t.Fatalf("Read after Write: %v", err)
		}
		if !reflect.DeepEqual(got, again) && !hasNaN(got) {
			t.Fatalf("round trip changed %v into %v", got, again)
		}
	})
}

func hasNaN(t *tensor.Tensor) bool {
	for i := 0; i < t.Len(); i++ {
		if v := t.Float64At(i); v != v {
			return true
		}
	}
	return false
}

func ExampleRead() {
	var buf bytes.Buffer
	Write(&buf, tensor.FromFloat32(tensor.Shape{2, 2}, []float32{1, 2, 3, 4}))
	t, err := Read(&buf)
	fmt.Println(t, err)
	// Output: float32[2 2]{1, 2, 3, 4} <nil>
}

// zipOf builds a stored zip archive of the given entries.
func zipOf(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadNPZErrors(t *testing.T) {
	var good bytes.Buffer
	if err := Write(&good, want(tensor.Float32, tensor.Shape{2})); err != nil {
		t.Fatal(err)
	}
	hostile := file("{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824,)}", make([]byte, 8))
	tests := []struct {
		name    string
		entries map[string][]byte
		want    string
	}{
		{"hostile shape", map[string][]byte{"a.npy": good.Bytes(), "big.npy": hostile}, `entry "big.npy"`},
		{"not npy", map[string][]byte{"a.npy": good.Bytes(), "notes.txt": []byte("hi")}, `entry "notes.txt" is not a .npy file`},
		{"bad member", map[string][]byte{"a.npy": []byte("garbage")}, `entry "a.npy": npy: truncated magic`},
	}
	for _, tc := range tests {
		in := zipOf(t, tc.entries)
		var err error
		alloc := allocated(func() { _, err = ReadNPZ(bytes.NewReader(in), int64(len(in))) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
		if alloc > 1<<20 {
			t.Errorf("%s: allocated %d bytes", tc.name, alloc)
		}
	}
}
