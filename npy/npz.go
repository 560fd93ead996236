package npy

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/goslim/goslim/tensor"
)

// ReadNPZ reads a .npz archive (numpy.savez or numpy.savez_compressed: a
// zip of .npy files, stored or deflated) of the given size. The map is
// keyed by entry name without the ".npy" suffix, as numpy.load does.
// Every entry must be a .npy file; errors name the entry.
func ReadNPZ(r io.ReaderAt, size int64) (map[string]*tensor.Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("npz: not a zip archive: %w", err)
	}
	out := make(map[string]*tensor.Tensor, len(zr.File))
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory entry
		}
		key, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("npz: entry %q is not a .npy file", f.Name)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("npz: entry %q appears more than once", f.Name)
		}
		t, err := readEntry(f)
		if err != nil {
			return nil, fmt.Errorf("npz: entry %q: %w", f.Name, err)
		}
		out[key] = t
	}
	return out, nil
}

// readEntry decodes one archive member. archive/zip refuses to return more
// bytes than the entry declares, so the declared size bounds the read.
func readEntry(f *zip.File) (*tensor.Tensor, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	avail := int64(-1)
	if f.UncompressedSize64 <= 1<<62 {
		avail = int64(f.UncompressedSize64)
	}
	return read(rc, avail)
}

// ReadNPZFile reads the .npz file at path; errors name the file.
func ReadNPZFile(path string) (map[string]*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := ReadNPZ(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteNPZ writes arrays as an uncompressed .npz archive (as numpy.savez
// does), entries named key+".npy" in sorted key order.
func WriteNPZ(w io.Writer, arrays map[string]*tensor.Tensor) error {
	keys := make([]string, 0, len(arrays))
	for k := range arrays {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	zw := zip.NewWriter(w)
	for _, k := range keys {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: zip.Store})
		if err != nil {
			return fmt.Errorf("npz: entry %q: %w", k, err)
		}
		if err := Write(fw, arrays[k]); err != nil {
			return fmt.Errorf("npz: entry %q: %w", k, err)
		}
	}
	return zw.Close()
}
