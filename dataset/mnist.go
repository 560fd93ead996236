package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goslim/goslim/dataset/mnist"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the Fashion-MNIST IDX files, read by fashion-mnist:train and
// fashion-mnist:test.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTPackage is the Debian package providing FashionMNISTDir.
const FashionMNISTPackage = "dataset-fashion-mnist"

// digitClasses returns MNIST's class names "0".."9".
func digitClasses() []string {
	c := make([]string, 10)
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return c
}

// fashionClasses returns Fashion-MNIST's class names in label order.
func fashionClasses() []string {
	return []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
}

// mnistFiles returns the base names (without .gz) of a split's image and
// label files; MNIST and Fashion-MNIST share them.
func mnistFiles(split string) (images, labels string) {
	if split == SplitTest {
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
	}
	return "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
}

// openMNIST opens mnist:train|test from the embedded files, or mnist:DIR.
func openMNIST(s Spec, opts Options) (source, error) {
	if len(s.Paths) > 0 {
		return openMNISTDir(s.Paths[0], s.Split, opts)
	}
	imgName, labName := mnist.TrainImages, mnist.TrainLabels
	if s.Split == SplitTest {
		imgName, labName = mnist.TestImages, mnist.TestLabels
	}
	read := func(name string) (idxFile, error) {
		f, err := mnist.Open(name)
		if err != nil {
			return idxFile{}, fmt.Errorf("dataset: %w", err)
		}
		defer f.Close()
		return openIDXReader("mnist (embedded) "+name, f)
	}
	img, err := read(imgName)
	if err != nil {
		return nil, err
	}
	lab, err := read(labName)
	if err != nil {
		return nil, err
	}
	return idxSource(img, &lab, opts, 10)
}

// openFashion opens fashion-mnist:train|test from dir (normally
// FashionMNISTDir), or fashion-mnist:DIR.
func openFashion(s Spec, opts Options, dir string) (source, error) {
	if len(s.Paths) > 0 {
		return openMNISTDir(s.Paths[0], s.Split, opts)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dataset: fashion-mnist: %s not found; install Debian's %s (apt-get install %s) or pass fashion-mnist:DIR",
			dir, FashionMNISTPackage, FashionMNISTPackage)
	}
	return openMNISTDir(dir, s.Split, opts)
}

// openMNISTDir reads a split's IDX files (name or name.gz) from dir; labels
// must lie in 0..9.
func openMNISTDir(dir, split string, opts Options) (source, error) {
	imgBase, labBase := mnistFiles(split)
	find := func(base string) (string, error) {
		for _, name := range []string{base + ".gz", base} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("dataset: %s: neither %s.gz nor %s found", dir, base, base)
	}
	imgPath, err := find(imgBase)
	if err != nil {
		return nil, err
	}
	labPath, err := find(labBase)
	if err != nil {
		return nil, err
	}
	img, err := ReadIDXFile(imgPath)
	if err != nil {
		return nil, err
	}
	lab, err := ReadIDXFile(labPath)
	if err != nil {
		return nil, err
	}
	return idxSource(idxFile{name: imgPath, t: img}, &idxFile{name: labPath, t: lab}, opts, 10)
}
