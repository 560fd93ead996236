package dataset

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// writeIDXSet writes n images of h×w and labels i%classes as IDX files
// (gzip-compressed when gz) and returns their paths.
func writeIDXSet(t testing.TB, dir string, n, h, w, classes int, gz bool) (images, labels string) {
	t.Helper()
	img := idxBytes(0x08, []int{n, h, w}, pixels(n, h*w))
	lab := make([]byte, n)
	for i := range lab {
		lab[i] = byte(i % classes)
	}
	labf := idxBytes(0x08, []int{n}, lab)
	ext := ""
	if gz {
		img, labf, ext = gzipBytes(img), gzipBytes(labf), ".gz"
	}
	return writeFile(t, dir, "images.idx"+ext, img), writeFile(t, dir, "labels.idx"+ext, labf)
}

// readAll reads one epoch.
func readAll(t testing.TB, r Reader) []Batch {
	t.Helper()
	var out []Batch
	for {
		b, err := r.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// open opens a spec or fails the test.
func open(t testing.TB, spec string, opts Options) *Dataset {
	t.Helper()
	d, err := Open(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// order returns the sample indices of an epoch's batches.
func order(bs []Batch) []int {
	var o []int
	for _, b := range bs {
		o = append(o, b.Index...)
	}
	return o
}

func TestIDXSource(t *testing.T) {
	dir := t.TempDir()
	const n, h, w = 7, 3, 4
	img, lab := writeIDXSet(t, dir, n, h, w, 3, true)
	d := open(t, "idx:"+img+","+lab, Options{BatchSize: 3})
	if d.Len() != 3 || d.Samples() != n || !d.HasLabels() || d.NumClasses() != 3 {
		t.Fatalf("Len %d Samples %d HasLabels %v NumClasses %d", d.Len(), d.Samples(), d.HasLabels(), d.NumClasses())
	}
	want := []InputInfo{{Name: DefaultInputName, DType: tensor.Float32, Shape: tensor.Shape{1, h, w}}}
	if !reflect.DeepEqual(d.Inputs(), want) {
		t.Errorf("Inputs = %+v, want %+v", d.Inputs(), want)
	}
	bs := readAll(t, d)
	if len(bs) != 3 || bs[2].Len() != 1 {
		t.Fatalf("got %d batches, last of %d", len(bs), bs[len(bs)-1].Len())
	}
	px := pixels(n, h*w)
	for _, b := range bs {
		x := b.Get(DefaultInputName)
		if !x.Shape.Equal(tensor.Shape{b.Len(), 1, h, w}) {
			t.Fatalf("batch shape %v", x.Shape)
		}
		if !b.Labels.Shape.Equal(tensor.Shape{b.Len()}) || b.Labels.DType != tensor.Int64 {
			t.Fatalf("labels %v %v", b.Labels.DType, b.Labels.Shape)
		}
		for j, i := range b.Index {
			if b.Labels.I64()[j] != int64(i%3) {
				t.Errorf("sample %d: label %d", i, b.Labels.I64()[j])
			}
			for k := range h * w {
				if got, want := x.F32()[j*h*w+k], float32(px[i*h*w+k])/255; got != want {
					t.Fatalf("sample %d pixel %d = %v, want %v", i, k, got, want)
				}
			}
		}
		if f := b.Feeds(); len(f) != 1 || f[DefaultInputName] != x {
			t.Errorf("Feeds = %v", f)
		}
	}
	if got := order(bs); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("order %v", got)
	}
	if _, err := d.Next(context.Background()); err != io.EOF {
		t.Errorf("after the epoch: %v, want io.EOF", err)
	}

	// Images only (calibration), a custom input name, DropLast and Limit.
	d = open(t, "idx:"+img, Options{BatchSize: 2, DropLast: true, Limit: 5, InputName: "x"})
	if d.HasLabels() || d.Len() != 2 {
		t.Errorf("HasLabels %v Len %d", d.HasLabels(), d.Len())
	}
	bs = readAll(t, d)
	if len(bs) != 2 || bs[0].Labels != nil || bs[0].Inputs[0].Name != "x" {
		t.Errorf("got %d batches, labels %v, name %q", len(bs), bs[0].Labels, bs[0].Inputs[0].Name)
	}
}

func TestIDXNonByte(t *testing.T) {
	dir := t.TempDir()
	var body []byte
	for i := range 6 {
		body = append(body, 0, byte(i)) // int16
	}
	p := writeFile(t, dir, "x.idx", idxBytes(0x0B, []int{3, 2}, body))
	d := open(t, "idx:"+p, Options{BatchSize: 4})
	bs := readAll(t, d)
	x := bs[0].Inputs[0].Tensor
	if !x.Shape.Equal(tensor.Shape{3, 2}) || !slices.Equal(x.F32(), []float32{0, 1, 2, 3, 4, 5}) {
		t.Errorf("got %v %v", x.Shape, x.F32())
	}
}

func TestShuffleDeterministic(t *testing.T) {
	dir := t.TempDir()
	img, lab := writeIDXSet(t, dir, 50, 2, 2, 5, false)
	spec := "idx:" + img + "," + lab
	epochOrder := func(seed uint64, epoch int) []int {
		d := open(t, spec, Options{BatchSize: 8, Shuffle: true, Seed: seed})
		if err := d.Seek(Position{Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
		return order(readAll(t, d))
	}
	a := epochOrder(1, 0)
	sorted := slices.Sorted(slices.Values(a))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("epoch order %v is not a permutation", a)
		}
	}
	if slices.Equal(a, sorted) {
		t.Error("shuffled order is the identity")
	}
	if !slices.Equal(a, epochOrder(1, 0)) {
		t.Error("same seed, same epoch: different order")
	}
	if slices.Equal(a, epochOrder(2, 0)) {
		t.Error("another seed gives the same order")
	}
	if slices.Equal(a, epochOrder(1, 1)) {
		t.Error("the next epoch repeats the order")
	}
	// Without Shuffle the order is the file order in every epoch.
	d := open(t, spec, Options{BatchSize: 8})
	d.Seek(Position{Epoch: 3})
	if got := order(readAll(t, d)); !slices.Equal(got, sorted) {
		t.Errorf("unshuffled order %v", got)
	}
	// The permutation is pinned: it must not change between Go releases
	// or refactorings, or resumed runs would diverge.
	if got := permutation(10, 42, nil); !slices.Equal(got, []int32{1, 5, 9, 8, 3, 2, 7, 0, 6, 4}) {
		t.Errorf("permutation(10, 42) = %v", got)
	}
}

// batchesEqual reports whether two batches hold the same data.
func batchesEqual(a, b Batch) bool {
	return reflect.DeepEqual(a.Index, b.Index) && reflect.DeepEqual(a.Labels, b.Labels) && reflect.DeepEqual(a.Inputs, b.Inputs)
}

func TestPositionRestore(t *testing.T) {
	dir := t.TempDir()
	img, lab := writeIDXSet(t, dir, 23, 5, 6, 4, false)
	spec := "idx:" + img + "," + lab
	opts := Options{BatchSize: 4, Shuffle: true, Seed: 7, Augment: Augment{CropPad: 2, Flip: true},
		Preprocess: Preprocess{Mean: []float32{0.5}, Std: []float32{0.25}}}

	// The uninterrupted run: three epochs, positions recorded before each batch.
	ref := open(t, spec, opts)
	var all []Batch
	var pos []Position
	for e := range 3 {
		ref.Seek(Position{Epoch: e})
		for {
			p := ref.Position()
			b, err := ref.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			all, pos = append(all, b), append(pos, p)
		}
	}
	// Resume from every recorded position in a fresh reader.
	for k, p := range pos {
		d := open(t, spec, opts)
		if err := d.Seek(p); err != nil {
			t.Fatal(err)
		}
		for m := k; m < len(all) && pos[m].Epoch == p.Epoch; m++ {
			b, err := d.Next(context.Background())
			if err != nil {
				t.Fatalf("resume at %+v: %v", p, err)
			}
			if !batchesEqual(b, all[m]) {
				t.Fatalf("resume at %+v: batch %d differs", p, m)
			}
		}
	}
	// A position in the middle of a batch (another batch size) continues
	// with the same samples.
	d := open(t, spec, Options{BatchSize: 5, Shuffle: true, Seed: 7})
	d.Seek(Position{Epoch: 1, Index: 6})
	ep1 := order(all[6:12]) // epoch 1: batches 6..11 (23 samples in batches of 4)
	want := ep1[6:]
	if got := order(readAll(t, d)); !slices.Equal(got, want) {
		t.Errorf("resume mid-batch: %v, want %v", got, want)
	}
	// Reset rewinds and reseeds.
	ref.Reset(7)
	if ref.Position() != (Position{}) {
		t.Errorf("after Reset: %+v", ref.Position())
	}
	b, _ := ref.Next(context.Background())
	if !batchesEqual(b, all[0]) {
		t.Error("Reset(7) does not replay epoch 0")
	}
	ref.Reset(8)
	b, _ = ref.Next(context.Background())
	if batchesEqual(b, all[0]) {
		t.Error("Reset(8) replays seed 7")
	}
	for _, p := range []Position{{-1, 0}, {0, -1}, {0, 24}} {
		if err := ref.Seek(p); err == nil {
			t.Errorf("Seek(%+v): no error", p)
		}
	}
	if err := ref.Seek(Position{Epoch: 0, Index: 23}); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Next(context.Background()); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
}

func TestNextCanceled(t *testing.T) {
	img, _ := writeIDXSet(t, t.TempDir(), 3, 2, 2, 2, false)
	d := open(t, "idx:"+img, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	if d.Position() != (Position{}) {
		t.Error("a failed Next advanced")
	}
}

// shifted applies the reference augmentation to one C×H×W sample.
func shifted(s []float32, c, h, w, dy, dx int, flip bool) []float32 {
	out := make([]float32, len(s))
	for ch := range c {
		for y := range h {
			for x := range w {
				sx := x
				if flip {
					sx = w - 1 - x
				}
				yy, xx := y+dy, sx+dx
				if yy >= 0 && yy < h && xx >= 0 && xx < w {
					out[(ch*h+y)*w+x] = s[(ch*h+yy)*w+xx]
				}
			}
		}
	}
	return out
}

func TestAugment(t *testing.T) {
	dir := t.TempDir()
	const n, h, w, pad = 64, 5, 6, 2
	img, _ := writeIDXSet(t, dir, n, h, w, 2, false)
	spec := "idx:" + img
	plain := readAll(t, open(t, spec, Options{BatchSize: n}))[0].Inputs[0].Tensor.F32()
	for _, a := range []Augment{{CropPad: pad}, {Flip: true}, {CropPad: pad, Flip: true}} {
		got := readAll(t, open(t, spec, Options{BatchSize: n, Augment: a, Seed: 3}))[0].Inputs[0].Tensor.F32()
		again := readAll(t, open(t, spec, Options{BatchSize: n, Augment: a, Seed: 3}))[0].Inputs[0].Tensor.F32()
		other := readAll(t, open(t, spec, Options{BatchSize: n, Augment: a, Seed: 4}))[0].Inputs[0].Tensor.F32()
		if !slices.Equal(got, again) {
			t.Errorf("%+v: same seed, different output", a)
		}
		if slices.Equal(got, other) {
			t.Errorf("%+v: another seed gives the same output", a)
		}
		changed, flips := 0, 0
		for i := range n {
			s, o := plain[i*h*w:(i+1)*h*w], got[i*h*w:(i+1)*h*w]
			found := false
			for dy := -a.CropPad; dy <= a.CropPad && !found; dy++ {
				for dx := -a.CropPad; dx <= a.CropPad && !found; dx++ {
					for _, flip := range []bool{false, true} {
						if (flip && !a.Flip) || !slices.Equal(shifted(s, 1, h, w, dy, dx, flip), o) {
							continue
						}
						found = true
						if flip {
							flips++
						}
						break
					}
				}
			}
			if !found {
				t.Fatalf("%+v: sample %d is no shift/flip of the input", a, i)
			}
			if !slices.Equal(s, o) {
				changed++
			}
		}
		if changed < n/3 || (a.Flip && (flips < n/5 || flips > 4*n/5)) {
			t.Errorf("%+v: %d of %d samples changed, %d flipped", a, changed, n, flips)
		}
	}
	// The batch size does not change a sample's augmentation.
	a := Augment{CropPad: pad, Flip: true}
	big := readAll(t, open(t, spec, Options{BatchSize: n, Augment: a, Seed: 3}))[0].Inputs[0].Tensor.F32()
	var small []float32
	for _, b := range readAll(t, open(t, spec, Options{BatchSize: 5, Augment: a, Seed: 3})) {
		small = append(small, b.Inputs[0].Tensor.F32()...)
	}
	if !slices.Equal(big, small) {
		t.Error("augmentation depends on the batch size")
	}
}

func TestShiftReference(t *testing.T) {
	const c, h, w = 2, 3, 4
	src := make([]float32, c*h*w)
	for i := range src {
		src[i] = float32(i + 1)
	}
	for dy := -4; dy <= 4; dy++ {
		for dx := -5; dx <= 5; dx++ {
			got := make([]float32, len(src))
			shift(got, src, c, h, w, dy, dx)
			if want := shifted(src, c, h, w, dy, dx, false); !slices.Equal(got, want) {
				t.Errorf("shift(%d, %d) = %v, want %v", dy, dx, got, want)
			}
		}
	}
}

func TestNPYSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, x *tensor.Tensor) string {
		p := filepath.Join(dir, name)
		if err := npy.WriteFile(p, x); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// uint8 N×H×W×C images are transposed to N×C×H×W and scaled.
	const n, h, w, c = 4, 2, 5, 3
	px := pixels(n, h*w*c)
	x := write("x.npy", &tensor.Tensor{DType: tensor.Uint8, Shape: tensor.Shape{n, h, w, c}, Data: px})
	y := write("y.npy", tensor.FromInt64(tensor.Shape{n}, []int64{3, 1, 0, 2}))
	d := open(t, "npy:"+x+","+y, Options{BatchSize: n})
	b := readAll(t, d)[0]
	got := b.Inputs[0].Tensor
	if !got.Shape.Equal(tensor.Shape{n, c, h, w}) || !slices.Equal(b.Labels.I64(), []int64{3, 1, 0, 2}) {
		t.Fatalf("shape %v labels %v", got.Shape, b.Labels.I64())
	}
	for i := range n {
		for ch := range c {
			for p := range h * w {
				if got.F32()[((i*c)+ch)*h*w+p] != float32(px[(i*h*w+p)*c+ch])/255 {
					t.Fatalf("sample %d channel %d pixel %d", i, ch, p)
				}
			}
		}
	}
	// float64 becomes float32; int64 token inputs stay int64.
	f := write("f.npy", &tensor.Tensor{DType: tensor.Float64, Shape: tensor.Shape{3, 2}, Data: []float64{1, 2, 3, 4, 5, 6.5}})
	b = readAll(t, open(t, "npy:"+f, Options{BatchSize: 2}))[1]
	if !slices.Equal(b.Inputs[0].Tensor.F32(), []float32{5, 6.5}) {
		t.Errorf("float64: %v", b.Inputs[0].Tensor.F32())
	}
	tok := write("tok.npy", tensor.FromInt64(tensor.Shape{2, 3}, []int64{1, 2, 3, 4, 5, 6}))
	b = readAll(t, open(t, "npy:"+tok, Options{BatchSize: 2, InputName: "ids"}))[0]
	if in := b.Get("ids"); in == nil || in.DType != tensor.Int64 || !slices.Equal(in.I64(), []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("int64 input: %+v", in)
	}
	// Labels [N,1] of int32 are accepted.
	y2 := write("y2.npy", &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{2, 1}, Data: []int32{1, 0}})
	b = readAll(t, open(t, "npy:"+tok+","+y2, Options{}))[0]
	if !slices.Equal(b.Labels.I64(), []int64{1, 0}) {
		t.Errorf("int32 labels: %v", b.Labels.I64())
	}
}

func TestNPZSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.npz")
	var buf bytes.Buffer
	x := &tensor.Tensor{DType: tensor.Uint8, Shape: tensor.Shape{3, 2, 2}, Data: []uint8{0, 51, 102, 153, 204, 255, 0, 0, 0, 0, 0, 0}}
	if err := npy.WriteNPZ(&buf, map[string]*tensor.Tensor{"x": x, "y": tensor.FromInt64(tensor.Shape{3}, []int64{0, 1, 1})}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "d.npz", buf.Bytes())
	d := open(t, "npz:"+p, Options{Channels: 1, Height: 2, Width: 2})
	b := readAll(t, d)[0]
	if !b.Inputs[0].Tensor.Shape.Equal(tensor.Shape{3, 1, 2, 2}) || !slices.Equal(b.Labels.I64(), []int64{0, 1, 1}) {
		t.Fatalf("got %v %v", b.Inputs[0].Tensor.Shape, b.Labels.I64())
	}
	if got := b.Inputs[0].Tensor.F32()[:6]; !slices.Equal(got, []float32{0, 0.2, 0.4, 0.6, 0.8, 1}) {
		t.Errorf("values %v", got)
	}
}

// writePB writes a TensorProto file.
func writePB(t testing.TB, path, name string, x *tensor.Tensor) {
	t.Helper()
	var buf bytes.Buffer
	if err := onnx.WriteTensor(&buf, name, x); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(path), filepath.Base(path), buf.Bytes())
}

func TestPBSource(t *testing.T) {
	// One flat directory with one unnamed input.
	flat := t.TempDir()
	writePB(t, filepath.Join(flat, "input_0.pb"), "", tensor.FromFloat32(tensor.Shape{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	b := readAll(t, open(t, "pb:"+flat, Options{InputName: "data"}))[0]
	if b.Get("data") == nil || b.Labels != nil {
		t.Fatalf("flat: %+v", b)
	}
	// ONNX-style test_data_set_N directories, two named inputs, labels,
	// natural order (2 before 10).
	dir := t.TempDir()
	for _, s := range []struct {
		set string
		n   int
	}{{"test_data_set_10", 1}, {"test_data_set_2", 2}, {"test_data_set_0", 1}} {
		base := float32(len(s.set))
		vals := make([]float32, s.n*2)
		ids := make([]int64, s.n)
		labs := make([]int64, s.n)
		for i := range s.n {
			vals[2*i], vals[2*i+1] = base, float32(i)
			ids[i] = int64(len(s.set)*10 + i)
			labs[i] = int64(i)
		}
		writePB(t, filepath.Join(dir, s.set, "input_0.pb"), "x", tensor.FromFloat32(tensor.Shape{s.n, 2}, vals))
		writePB(t, filepath.Join(dir, s.set, "input_1.pb"), "ids", tensor.FromInt64(tensor.Shape{s.n}, ids))
		writePB(t, filepath.Join(dir, s.set, "labels.pb"), "", tensor.FromInt64(tensor.Shape{s.n}, labs))
		writeFile(t, filepath.Join(dir, s.set), "output_0.pb", []byte("ignored"))
	}
	d := open(t, "pb:"+dir, Options{BatchSize: 10})
	if got := d.Inputs(); len(got) != 2 || got[0].Name != "x" || got[1].Name != "ids" || got[1].DType != tensor.Int64 {
		t.Fatalf("inputs %+v", got)
	}
	b = readAll(t, d)[0]
	// set_0 (len 15), set_2 (len 15, 2 samples), set_10 (len 16).
	if got := b.Get("x").F32(); !slices.Equal(got, []float32{15, 0, 15, 0, 15, 1, 16, 0}) {
		t.Errorf("x = %v", got)
	}
	if got := b.Get("ids").I64(); !slices.Equal(got, []int64{150, 150, 151, 160}) {
		t.Errorf("ids = %v", got)
	}
	if got := b.Labels.I64(); !slices.Equal(got, []int64{0, 0, 1, 0}) {
		t.Errorf("labels = %v", got)
	}
}

func TestNaturalCompare(t *testing.T) {
	in := []string{"set_10", "set_2", "a", "set_02x", "set_1", "b1", "set_2"}
	slices.SortFunc(in, naturalCompare)
	want := []string{"a", "b1", "set_1", "set_2", "set_2", "set_02x", "set_10"}
	if !slices.Equal(in, want) {
		t.Errorf("got %v, want %v", in, want)
	}
}

// writePNG writes an image as PNG.
func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(path), filepath.Base(path), buf.Bytes())
}

// grayImage returns a w×h gray image with pixel (x, y) = base + 10x + y.
func grayImage(w, h, base int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetGray(x, y, color.Gray{Y: uint8(base + 10*x + y)})
		}
	}
	return m
}

func TestFolderSource(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "cat", "b.png"), grayImage(4, 3, 0))
	writePNG(t, filepath.Join(dir, "cat", "a.PNG"), grayImage(4, 3, 100))
	rgb := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for y := range 3 {
		for x := range 4 {
			rgb.SetNRGBA(x, y, color.NRGBA{R: uint8(50 * x), G: uint8(60 * y), B: 200, A: 255})
		}
	}
	writePNG(t, filepath.Join(dir, "dog", "x.png"), rgb)
	writeFile(t, filepath.Join(dir, "dog"), "notes.txt", []byte("not an image"))
	writeFile(t, filepath.Join(dir, "dog"), ".hidden.png", []byte("skipped"))
	writeFile(t, dir, "README", []byte("top-level files are ignored"))

	// Size from the first image, channels from its color model (gray).
	d := open(t, "folder:"+dir, Options{BatchSize: 8, Workers: 2})
	if !slices.Equal(d.Classes(), []string{"cat", "dog"}) || d.NumClasses() != 2 || d.Samples() != 3 {
		t.Fatalf("classes %v (%d), %d samples", d.Classes(), d.NumClasses(), d.Samples())
	}
	b := readAll(t, d)[0]
	x := b.Inputs[0].Tensor
	if !x.Shape.Equal(tensor.Shape{3, 1, 3, 4}) || !slices.Equal(b.Labels.I64(), []int64{0, 0, 1}) {
		t.Fatalf("shape %v labels %v", x.Shape, b.Labels.I64())
	}
	// a.PNG sorts before b.png: base 100.
	if got, want := x.F32()[1*4+2], float32(100+20+1)/255; got != want {
		t.Errorf("a.PNG (2,1) = %v, want %v", got, want)
	}
	if got, want := x.F32()[2*12+4+2], float32(luma(100, 60, 200))/255; got != want {
		t.Errorf("RGB as gray (2,1) = %v, want %v", got, want)
	}

	// RGB at the model's size: gray images replicate, RGB keeps channels,
	// everything resized to 6×8.
	d = open(t, "folder:"+dir, Options{BatchSize: 8, Channels: 3, Height: 6, Width: 8})
	x = readAll(t, d)[0].Inputs[0].Tensor
	if !x.Shape.Equal(tensor.Shape{3, 3, 6, 8}) {
		t.Fatalf("shape %v", x.Shape)
	}
	f := x.F32()
	plane := 6 * 8
	if !slices.Equal(f[:plane], f[plane:2*plane]) {
		t.Error("gray image: channels differ")
	}
	blue := f[2*3*plane+2*plane : 3*3*plane]
	for _, v := range blue {
		if v != float32(200)/255 {
			t.Fatalf("constant blue plane resized to %v", v)
		}
	}
}

func TestFolderJPEG(t *testing.T) {
	dir := t.TempDir()
	m := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range m.Pix {
		m.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "only"), "a.jpg", buf.Bytes())
	writeFile(t, filepath.Join(dir, "only"), "b.JPEG", buf.Bytes())
	for _, c := range []int{1, 3} {
		x := readAll(t, open(t, "folder:"+dir, Options{Channels: c, Height: 8, Width: 8}))[0].Inputs[0].Tensor
		if !x.Shape.Equal(tensor.Shape{2, c, 8, 8}) {
			t.Fatalf("shape %v", x.Shape)
		}
		for _, v := range x.F32() {
			if v < 125.0/255 || v > 131.0/255 {
				t.Fatalf("channels %d: gray JPEG decodes to %v", c, v)
			}
		}
	}
}

func TestResizeBilinear(t *testing.T) {
	// 2×2 -> 4×4 with half-pixel centers: rows and columns interpolate
	// 0, 0.25, 0.75, 1 between the edges.
	src := []float32{0, 1, 2, 3}
	dst := make([]float32, 16)
	resizeBilinear(dst, 4, 4, src, 2, 2)
	want := []float32{
		0, 0.25, 0.75, 1,
		0.5, 0.75, 1.25, 1.5,
		1.5, 1.75, 2.25, 2.5,
		2, 2.25, 2.75, 3,
	}
	if !slices.Equal(dst, want) {
		t.Errorf("upscale: %v", dst)
	}
	// 4×4 -> 2×2 averages the middle pairs.
	src = []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	dst = make([]float32, 4)
	resizeBilinear(dst, 2, 2, src, 4, 4)
	if want := []float32{2.5, 4.5, 10.5, 12.5}; !slices.Equal(dst, want) {
		t.Errorf("downscale: %v, want %v", dst, want)
	}
}

func TestPreprocessOption(t *testing.T) {
	img, _ := writeIDXSet(t, t.TempDir(), 3, 2, 2, 2, false)
	plain := readAll(t, open(t, "idx:"+img, Options{}))[0].Inputs[0].Tensor.F32()
	p := Preprocess{Mean: []float32{0.1307}, Std: []float32{0.3081}}
	got := readAll(t, open(t, "idx:"+img, Options{Preprocess: p}))[0].Inputs[0].Tensor.F32()
	for i, v := range plain {
		if want := (v - 0.1307) / 0.3081; got[i] != want {
			t.Fatalf("element %d = %v, want %v", i, got[i], want)
		}
	}
	_, err := Open("idx:"+img, Options{Preprocess: Preprocess{Mean: []float32{0.1, 0.2, 0.3}}})
	if err == nil || !strings.Contains(err.Error(), img) || !strings.Contains(err.Error(), "3 means for 1 channels") {
		t.Errorf("3-channel preprocess on gray data: %v", err)
	}
}

// TestBadData checks that every kind of bad data is refused with an error
// that names the offending file.
func TestBadData(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, b []byte) string { return writeFile(t, dir, name, b) }
	img := mk("img.idx", idxBytes(0x08, []int{4, 2, 2}, pixels(4, 4)))
	img32 := mk("img32.idx", idxBytes(0x08, []int{4, 3, 3}, pixels(4, 9)))
	labs := mk("labs.idx", idxBytes(0x08, []int{4}, []byte{0, 1, 2, 3}))
	labs3 := mk("labs3.idx", idxBytes(0x08, []int{3}, []byte{0, 1, 2}))
	labs2d := mk("labs2d.idx", idxBytes(0x08, []int{2, 2}, []byte{0, 1, 2, 3}))
	labsF := mk("labsf.idx", idxBytes(0x0D, []int{4}, make([]byte, 16)))
	magic := mk("magic.idx", append([]byte{8, 0}, idxBytes(0x08, []int{4, 2, 2}, pixels(4, 4))[2:]...))
	trunc := mk("trunc.idx.gz", gzipBytes(idxBytes(0x08, []int{4, 2, 2}, pixels(4, 4))[:20]))
	vec := mk("vec.idx", idxBytes(0x08, []int{4}, []byte{1, 2, 3, 4}))

	// MNIST-like directory with a label 10.
	mnistDir := filepath.Join(dir, "mnist")
	writeFile(t, mnistDir, "train-images-idx3-ubyte", idxBytes(0x08, []int{2, 28, 28}, pixels(2, 784)))
	writeFile(t, mnistDir, "train-labels-idx1-ubyte.gz", gzipBytes(idxBytes(0x08, []int{2}, []byte{3, 10})))
	// fashion-mnist:DIR with only the train split.
	fmDir := filepath.Join(dir, "fm")
	writeFile(t, fmDir, "train-images-idx3-ubyte.gz", gzipBytes(idxBytes(0x08, []int{1, 28, 28}, pixels(1, 784))))

	npyX := filepath.Join(dir, "x.npy")
	npy.WriteFile(npyX, &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{3, 1, 2, 2}, Data: make([]float32, 12)})
	npyY := filepath.Join(dir, "y.npy")
	npy.WriteFile(npyY, tensor.FromInt64(tensor.Shape{2}, []int64{0, 1}))
	npyNeg := filepath.Join(dir, "neg.npy")
	npy.WriteFile(npyNeg, tensor.FromInt64(tensor.Shape{3}, []int64{0, -1, 1}))
	npyFY := filepath.Join(dir, "fy.npy")
	npy.WriteFile(npyFY, tensor.FromFloat32(tensor.Shape{3}, []float32{0, 1, 1}))
	npzNoX := filepath.Join(dir, "nox.npz")
	var buf bytes.Buffer
	npy.WriteNPZ(&buf, map[string]*tensor.Tensor{"data": tensor.FromFloat32(tensor.Shape{1}, []float32{1})})
	mk("nox.npz", buf.Bytes())

	emptyDir := filepath.Join(dir, "empty")
	os.MkdirAll(emptyDir, 0o755)
	emptyClass := filepath.Join(dir, "emptyclass")
	writePNG(t, filepath.Join(emptyClass, "a", "1.png"), grayImage(2, 2, 0))
	os.MkdirAll(filepath.Join(emptyClass, "b"), 0o755)
	writeFile(t, filepath.Join(emptyClass, "b"), "x.txt", nil)
	sizes := filepath.Join(dir, "sizes")
	writePNG(t, filepath.Join(sizes, "a", "1.png"), grayImage(3, 3, 0))
	writePNG(t, filepath.Join(sizes, "a", "2.png"), grayImage(4, 3, 0))
	corrupt := filepath.Join(dir, "corrupt")
	writePNG(t, filepath.Join(corrupt, "a", "1.png"), grayImage(3, 3, 0))
	bad := writeFile(t, filepath.Join(corrupt, "a"), "2.png", []byte("\x89PNG\r\n\x1a\ngarbage"))
	twoClasses := filepath.Join(dir, "two")
	writePNG(t, filepath.Join(twoClasses, "a", "1.png"), grayImage(2, 2, 0))
	writePNG(t, filepath.Join(twoClasses, "b", "1.png"), grayImage(2, 2, 0))
	notImg := filepath.Join(dir, "notimg")
	notImgFile := writeFile(t, filepath.Join(notImg, "a"), "1.jpg", []byte("GIF89a"))

	pbMismatch := filepath.Join(dir, "pbm")
	writePB(t, filepath.Join(pbMismatch, "s0", "input_0.pb"), "x", tensor.FromFloat32(tensor.Shape{1, 2}, []float32{1, 2}))
	writePB(t, filepath.Join(pbMismatch, "s1", "input_0.pb"), "x", tensor.FromFloat32(tensor.Shape{1, 3}, []float32{1, 2, 3}))
	pbGap := filepath.Join(dir, "pbgap")
	writePB(t, filepath.Join(pbGap, "input_0.pb"), "x", tensor.FromFloat32(tensor.Shape{1, 2}, []float32{1, 2}))
	writePB(t, filepath.Join(pbGap, "input_2.pb"), "y", tensor.FromFloat32(tensor.Shape{1, 2}, []float32{1, 2}))
	pbBatch := filepath.Join(dir, "pbbatch")
	writePB(t, filepath.Join(pbBatch, "input_0.pb"), "x", tensor.FromFloat32(tensor.Shape{2, 2}, []float32{1, 2, 3, 4}))
	writePB(t, filepath.Join(pbBatch, "input_1.pb"), "y", tensor.FromFloat32(tensor.Shape{1, 2}, []float32{1, 2}))
	pbJunk := filepath.Join(dir, "pbjunk")
	junk := writeFile(t, pbJunk, "input_0.pb", []byte{0xff, 0xff, 0xff})
	pbNone := filepath.Join(dir, "pbnone")
	writeFile(t, pbNone, "data.bin", nil)

	tests := []struct {
		name, spec string
		opts       Options
		file, why  string
	}{
		{"wrong magic", "idx:" + magic, Options{}, magic, "wrong magic"},
		{"truncated", "idx:" + trunc + "," + labs, Options{}, trunc, "truncated"},
		{"missing file", "idx:" + filepath.Join(dir, "nope.idx"), Options{}, "nope.idx", "no such file"},
		{"count mismatch", "idx:" + img + "," + labs3, Options{}, labs3, "3 labels for the 4 images of " + img},
		{"labels not 1-D", "idx:" + img + "," + labs2d, Options{}, labs2d, "want [N]"},
		{"float labels", "idx:" + img + "," + labsF, Options{}, labsF, "want integers"},
		{"label out of range", "idx:" + img + "," + labs, Options{Classes: 3}, labs, "label 3 of sample 3 is out of range [0, 3)"},
		{"mnist label 10", "mnist:" + mnistDir, Options{}, filepath.Join(mnistDir, "train-labels-idx1-ubyte.gz"), "label 10 of sample 1 is out of range [0, 10)"},
		{"mnist dir missing split", "mnist:" + mnistDir + ",test", Options{}, mnistDir, "t10k-images-idx3-ubyte.gz nor"},
		{"fashion dir missing labels", "fashion-mnist:" + fmDir, Options{}, fmDir, "train-labels-idx1-ubyte"},
		{"image size", "idx:" + img32 + "," + labs, Options{Height: 2, Width: 2}, img32, "samples are [1 3 3], the model wants [? 2 2]"},
		{"image channels", "idx:" + img, Options{Channels: 3}, img, "the model wants [3 ? ?]"},
		{"not images", "idx:" + vec, Options{}, vec, "want N×H×W"},
		{"augment vectors", "npy:" + npyY, Options{Augment: Augment{Flip: true}}, npyY, "augmentation needs"},
		{"npy count mismatch", "npy:" + npyX + "," + npyY, Options{}, npyY, "2 labels for the 3 samples of " + npyX},
		{"npy negative label", "npy:" + npyX + "," + npyNeg, Options{}, npyNeg, "label -1 of sample 1 is negative"},
		{"npy float labels", "npy:" + npyX + "," + npyFY, Options{}, npyFY, "want integers"},
		{"npy size", "npy:" + npyX, Options{Height: 28, Width: 28}, npyX, "the model wants [? 28 28]"},
		{"npz without x", "npz:" + npzNoX, Options{}, npzNoX, `no array "x" (arrays: data)`},
		{"empty folder", "folder:" + emptyDir, Options{}, emptyDir, "empty folder"},
		{"empty class folder", "folder:" + emptyClass, Options{}, filepath.Join(emptyClass, "b"), "empty class folder"},
		{"too many classes", "folder:" + twoClasses, Options{Classes: 1}, twoClasses, "2 class folders, but the model has 1 classes"},
		{"folder channels", "folder:" + sizes, Options{Channels: 4}, sizes, "4 channels"},
		{"folder half size", "folder:" + sizes, Options{Height: 4}, sizes, "give both height and width"},
		{"folder not an image", "folder:" + notImg, Options{}, notImgFile, "not a PNG or JPEG"},
		{"pb shape mismatch", "pb:" + pbMismatch, Options{}, filepath.Join(pbMismatch, "s1", "input_0.pb"), "input \"x\" float32 [3]"},
		{"pb gap", "pb:" + pbGap, Options{}, pbGap, "input_1.pb is missing"},
		{"pb batch mismatch", "pb:" + pbBatch, Options{}, filepath.Join(pbBatch, "input_1.pb"), "batch of 1"},
		{"pb junk", "pb:" + pbJunk, Options{}, junk, "not a TensorProto"},
		{"pb none", "pb:" + pbNone, Options{}, pbNone, "no input_0.pb"},
	}
	for _, tt := range tests {
		_, err := Open(tt.spec, tt.opts)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		t.Logf("%s: %v", tt.name, err)
		if !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: error %q, want it to name %s and say %q", tt.name, err, tt.file, tt.why)
		}
	}

	// Errors found while reading a batch name the image too.
	for _, tt := range []struct {
		dir, file, why string
	}{
		{sizes, filepath.Join(sizes, "a", "2.png"), "image is 4x3 (W×H), want 3x3"},
		{corrupt, bad, "png"},
	} {
		d := open(t, "folder:"+tt.dir, Options{BatchSize: 4})
		_, err := d.Next(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("folder %s: error %v, want it to name %s and say %q", tt.dir, err, tt.file, tt.why)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	img, _ := writeIDXSet(t, t.TempDir(), 3, 2, 2, 2, false)
	for _, o := range []Options{
		{BatchSize: -1}, {Limit: -1}, {Classes: -2}, {Height: -1}, {Augment: Augment{CropPad: -1}},
		{Workers: -1}, {Preprocess: Preprocess{Std: []float32{0}}},
	} {
		if _, err := Open("idx:"+img, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestDropLastTooFew(t *testing.T) {
	img, _ := writeIDXSet(t, t.TempDir(), 3, 2, 2, 2, false)
	if _, err := Open("idx:"+img, Options{BatchSize: 4, DropLast: true}); err == nil || !strings.Contains(err.Error(), img) {
		t.Errorf("DropLast with 3 samples in batches of 4: %v", err)
	}
	d := open(t, "idx:"+img, Options{BatchSize: 4})
	if d.Len() != 1 || d.BatchSize() != 4 {
		t.Errorf("Len %d BatchSize %d", d.Len(), d.BatchSize())
	}
}
