package dataset

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goslim/goslim/tensor"
)

// requireFashionMNIST skips the test when Debian's Fashion-MNIST is not
// installed, and fails it under CI=true, where scripts/install-test-deps.sh
// should have installed it.
func requireFashionMNIST(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "train-labels-idx1-ubyte.gz")); err == nil {
		return
	}
	msg := "Fashion-MNIST not found in " + FashionMNISTDir + "; install Debian's " + FashionMNISTPackage +
		" (apt-get install " + FashionMNISTPackage + ", or run scripts/install-test-deps.sh as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// checkMNISTLike reads a whole MNIST-like split and checks the sample
// count, the first labels, the label range, the pixel range and the first
// image's pixel sum (in units of 1/255).
func checkMNISTLike(t *testing.T, spec string, n int, first []int64, sum0 int) {
	t.Helper()
	const bs = 5000
	d := open(t, spec, Options{BatchSize: bs})
	if d.Samples() != n || d.Len() != n/bs || d.NumClasses() != 10 || len(d.Classes()) != 10 {
		t.Fatalf("%s: %d samples, %d batches, %d classes", spec, d.Samples(), d.Len(), d.NumClasses())
	}
	var labs []int64
	for k, b := range readAll(t, d) {
		x := b.Inputs[0].Tensor
		if !x.Shape.Equal(tensor.Shape{bs, 1, 28, 28}) {
			t.Fatalf("%s: shape %v", spec, x.Shape)
		}
		for _, v := range x.F32() {
			if v < 0 || v > 1 {
				t.Fatalf("%s: pixel %v outside [0, 1]", spec, v)
			}
		}
		if k == 0 {
			sum := 0.0
			for _, v := range x.F32()[:784] {
				sum += float64(v) * 255
			}
			if int(sum+0.5) != sum0 {
				t.Errorf("%s: first image sums to %v/255, want %d", spec, sum, sum0)
			}
		}
		labs = append(labs, b.Labels.I64()...)
	}
	if len(labs) != n || !slices.Equal(labs[:len(first)], first) {
		t.Errorf("%s: %d labels, first %v, want %d, %v", spec, len(labs), labs[:len(first)], n, first)
	}
	var counts [10]int
	for _, l := range labs {
		if l < 0 || l > 9 {
			t.Fatalf("%s: label %d", spec, l)
		}
		counts[l]++
	}
	for c, k := range counts {
		if k < n/20 {
			t.Errorf("%s: class %d has only %d samples", spec, c, k)
		}
	}
}

func TestEmbeddedMNIST(t *testing.T) {
	checkMNISTLike(t, "mnist:train", 60000, []int64{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}, 27525)
	checkMNISTLike(t, "mnist:test", 10000, []int64{7, 2, 1, 0, 4, 1}, 18454)
}

func TestFashionMNIST(t *testing.T) {
	requireFashionMNIST(t)
	checkMNISTLike(t, "fashion-mnist:train", 60000, []int64{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 76247)
	checkMNISTLike(t, "fashion-mnist:test", 10000, []int64{9, 2, 1, 1, 6, 1}, 33456)
	d := open(t, "fashion-mnist:"+FashionMNISTDir+",test", Options{Limit: 3})
	if d.Samples() != 3 || d.Classes()[9] != "Ankle boot" {
		t.Errorf("fashion-mnist:DIR,test: %d samples, classes %v", d.Samples(), d.Classes())
	}
}

func TestFashionMNISTMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	_, err := openFashion(Spec{Kind: KindFashionMNIST, Split: SplitTrain}, Options{}, missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") ||
		!strings.Contains(err.Error(), "fashion-mnist:DIR") {
		t.Errorf("error %v does not explain how to get Fashion-MNIST", err)
	}
}

func TestMNISTDir(t *testing.T) {
	// mnist:DIR reads raw or gzip files by their usual names.
	dir := t.TempDir()
	writeFile(t, dir, "t10k-images-idx3-ubyte", idxBytes(0x08, []int{3, 28, 28}, pixels(3, 784)))
	writeFile(t, dir, "t10k-labels-idx1-ubyte.gz", gzipBytes(idxBytes(0x08, []int{3}, []byte{9, 0, 4})))
	d := open(t, "mnist:"+dir+",test", Options{})
	b := readAll(t, d)[0]
	if !slices.Equal(b.Labels.I64(), []int64{9, 0, 4}) || d.Classes()[9] != "9" {
		t.Errorf("labels %v classes %v", b.Labels.I64(), d.Classes())
	}
}

// BenchmarkMNISTNext measures batch throughput over the embedded MNIST
// training set (decoded once, outside the timer).
func BenchmarkMNISTNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"plain", Options{BatchSize: 64}},
		{"shuffle_augment_normalize", Options{BatchSize: 64, Shuffle: true, Seed: 1,
			Augment: Augment{CropPad: 2, Flip: true}, Preprocess: Preprocess{Mean: []float32{0.1307}, Std: []float32{0.3081}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := open(b, "mnist:train", bc.opts)
			ctx := context.Background()
			samples := 0
			b.ResetTimer()
			for b.Loop() {
				batch, err := d.Next(ctx)
				if err == io.EOF {
					d.Seek(Position{Epoch: d.Position().Epoch + 1})
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				samples += batch.Len()
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
