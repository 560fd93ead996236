// Package dataset streams training, evaluation and calibration data as
// batches of named tensors.
//
// A source is named by a spec string (see ParseSpec):
//
//	mnist:train | mnist:test           MNIST, embedded in the binary (package dataset/mnist)
//	mnist:DIR[,train|test]             MNIST IDX files (raw or .gz) in DIR
//	fashion-mnist:train | :test        Fashion-MNIST from Debian's dataset-fashion-mnist
//	fashion-mnist:DIR[,train|test]     Fashion-MNIST IDX files in DIR
//	idx:IMAGES[,LABELS]                any IDX image file, optional IDX label file
//	folder:DIR                         DIR/<class>/*.png|*.jpg, classes in sorted order
//	npy:X.npy[,Y.npy]                  NumPy arrays, samples along the first axis
//	npz:FILE                           NumPy archive with array x and optional y
//	pb:DIR                             ONNX TensorProto files DIR[/set]/input_K.pb
//
// Images (IDX and folder sources, uint8 NumPy arrays) become float32
// N×C×H×W scaled to [0, 1]; float64 and float16 NumPy data become
// float32, other dtypes (int64 token ids, ...) and pb tensors stay as
// stored. Any further normalization belongs to the model: a Preprocess
// stored in the model's metadata under MetaPreprocess, applied by eval,
// quantize and train alike through Options.Preprocess.
//
// Open returns a Dataset, a Reader: Next returns batches until io.EOF at
// the end of an epoch. The order within epoch e is a permutation drawn
// from the base seed and e (when shuffling), and augmentation draws from
// the base seed, e and the sample's index, so Position and Seek restore a
// run exactly: a resumed training run sees the same batches, bit for bit,
// as one that never stopped.
//
// IDX, NumPy and pb sources are decoded once at Open (IDX and uint8
// images as compact uint8, converted to float32 per batch); folder sources
// decode their images lazily, per batch, in parallel.
//
// Every error about bad data names the file.
package dataset

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"runtime"

	"github.com/goslim/goslim/tensor"
)

// DefaultBatchSize is the batch size used when Options.BatchSize is 0.
const DefaultBatchSize = 32

// DefaultInputName names the single input of sources that carry no input
// names (everything but pb) when Options.InputName is empty.
const DefaultInputName = "input"

// Reader streams batches. Next returns io.EOF after the last batch of an
// epoch and keeps returning it until Seek or Reset starts another epoch.
type Reader interface {
	// Next returns the next batch of the current epoch, or io.EOF.
	Next(ctx context.Context) (Batch, error)
	// Len returns the number of batches in one epoch (for progress and ETAs).
	Len() int
	// Reset sets a new base seed and rewinds to the start of epoch 0.
	Reset(seed uint64)
	// Position returns where the next call to Next continues.
	Position() Position
	// Seek moves to a position, usually one returned by Position before a
	// checkpoint; Seek(Position{Epoch: e}) starts epoch e.
	Seek(p Position) error
}

// Position is a place in the stream: the epoch and how many samples of that
// epoch were already returned. It is independent of the batch size, so a
// run resumed with another batch size continues at the same sample.
type Position struct {
	Epoch int `json:"epoch"`
	Index int `json:"index"`
}

// Input is one named input tensor of a batch.
type Input struct {
	Name   string
	Tensor *tensor.Tensor
}

// Batch is a group of samples: one tensor per model input, the batch size
// along the first axis of each.
type Batch struct {
	// Inputs holds the model inputs, in the source's order.
	Inputs []Input
	// Labels holds the class labels as int64 with shape [N], or nil when the
	// source has none.
	Labels *tensor.Tensor
	// Index holds each row's sample number in the source (before
	// shuffling), e.g. to name misclassified samples.
	Index []int
}

// Len returns the number of samples in the batch.
func (b *Batch) Len() int { return len(b.Index) }

// Get returns the input with the given name, or nil.
func (b *Batch) Get(name string) *tensor.Tensor {
	for _, in := range b.Inputs {
		if in.Name == name {
			return in.Tensor
		}
	}
	return nil
}

// Feeds returns the inputs keyed by name, as infer.Session.Run takes them.
func (b *Batch) Feeds() map[string]*tensor.Tensor {
	m := make(map[string]*tensor.Tensor, len(b.Inputs))
	for _, in := range b.Inputs {
		m[in.Name] = in.Tensor
	}
	return m
}

// Augment selects training-time augmentation of image inputs (float32
// C×H×W samples). The zero value does nothing; eval, calibration and
// quantization leave it zero.
type Augment struct {
	// CropPad > 0 zero-pads each image by CropPad pixels on every side and
	// crops a random H×W window back out (a random shift of up to CropPad
	// pixels in each direction).
	CropPad int `json:"crop_pad,omitempty"`
	// Flip mirrors each image horizontally with probability 1/2.
	Flip bool `json:"flip,omitempty"`
}

// Enabled reports whether a does anything.
func (a Augment) Enabled() bool { return a.CropPad > 0 || a.Flip }

// Options configure Open.
type Options struct {
	// BatchSize is the number of samples per batch (0 means
	// DefaultBatchSize).
	BatchSize int
	// DropLast drops the last batch of an epoch when it is smaller than
	// BatchSize; by default it is returned.
	DropLast bool
	// Shuffle visits the samples of each epoch in a random order drawn from
	// Seed and the epoch number.
	Shuffle bool
	// Seed is the base seed for shuffling and augmentation.
	Seed uint64
	// Augment selects random augmentation (training only).
	Augment Augment
	// Preprocess is applied to the first input (float32 N×C×...) after
	// augmentation: normally the model's MetaPreprocess.
	Preprocess Preprocess
	// InputName names the single input of sources without names (default
	// DefaultInputName); for pb sources it names an unnamed single input.
	InputName string
	// Channels, Height and Width give the model's input size C×H×W; zero
	// means any. Folder images are converted to Channels (1 = grayscale,
	// 3 = RGB) and resized to Height×Width; the first input of other
	// sources must already have that sample shape.
	Channels, Height, Width int
	// Classes, when > 0, is the number of classes: labels must lie in
	// [0, Classes).
	Classes int
	// Limit, when > 0, keeps only the first Limit samples of the source.
	Limit int
	// Workers is the number of goroutines decoding folder images (0 means
	// GOMAXPROCS).
	Workers int
}

// InputInfo describes one input of a source: its name, dtype and the shape
// of one sample (without the batch axis).
type InputInfo struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
}

// source is one kind of data. Samples are numbered 0..len()-1.
type source interface {
	// len returns the number of samples.
	len() int
	// inputs describes the inputs.
	inputs() []InputInfo
	// labels returns every sample's label, or nil.
	labels() []int64
	// files names the data file (or directory) and the labels file for
	// messages; labels may be "".
	files() (data, labels string)
	// load writes samples idx into dst (one tensor per input, shaped
	// [len(idx), sample...]); every element must be written.
	load(ctx context.Context, idx []int, dst []*tensor.Tensor) error
}

// Dataset is a Reader over one source. It is not safe for concurrent use.
type Dataset struct {
	spec    Spec
	opts    Options
	src     source
	n       int
	bs      int
	seed    uint64
	pos     Position
	perm    []int32 // sample order of permEpoch, when shuffling
	permFor int     // epoch perm belongs to, or -1
	classes []string
	ncls    int
}

var _ Reader = (*Dataset)(nil)

// Open parses spec (see ParseSpec) and opens the source.
func Open(spec string, opts Options) (*Dataset, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return OpenSpec(s, opts)
}

// OpenSpec opens a parsed source.
func OpenSpec(s Spec, opts Options) (*Dataset, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	var (
		src     source
		classes []string
		err     error
	)
	switch s.Kind {
	case KindMNIST:
		src, err = openMNIST(s, opts)
		classes = digitClasses()
	case KindFashionMNIST:
		src, err = openFashion(s, opts, FashionMNISTDir)
		classes = fashionClasses()
	case KindIDX:
		src, err = openIDX(s.Paths, opts)
	case KindFolder:
		var fs *folderSource
		fs, err = openFolder(s.Paths[0], opts)
		if err == nil {
			src, classes = fs, fs.classes
		}
	case KindNPY:
		src, err = openNPY(s.Paths, opts)
	case KindNPZ:
		src, err = openNPZ(s.Paths[0], opts)
	case KindPB:
		src, err = openPB(s.Paths[0], opts)
	default:
		err = fmt.Errorf("dataset: unknown source kind %q", s.Kind)
	}
	if err != nil {
		return nil, err
	}
	return newDataset(s, opts, src, classes)
}

// check validates the options that do not depend on the source.
func (o *Options) check() error {
	switch {
	case o.BatchSize < 0:
		return fmt.Errorf("dataset: batch size %d is negative", o.BatchSize)
	case o.Limit < 0:
		return fmt.Errorf("dataset: limit %d is negative", o.Limit)
	case o.Classes < 0:
		return fmt.Errorf("dataset: class count %d is negative", o.Classes)
	case o.Channels < 0 || o.Height < 0 || o.Width < 0:
		return fmt.Errorf("dataset: input size %dx%dx%d has a negative dimension", o.Channels, o.Height, o.Width)
	case o.Augment.CropPad < 0:
		return fmt.Errorf("dataset: crop padding %d is negative", o.Augment.CropPad)
	case o.Workers < 0:
		return fmt.Errorf("dataset: worker count %d is negative", o.Workers)
	}
	return o.Preprocess.Validate(o.Channels)
}

// inputName returns the name of a single unnamed input.
func (o *Options) inputName() string {
	if o.InputName != "" {
		return o.InputName
	}
	return DefaultInputName
}

// workers returns the number of decoding goroutines.
func (o *Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// newDataset checks the source against the options and wraps it.
func newDataset(s Spec, opts Options, src source, classes []string) (*Dataset, error) {
	data, labFile := src.files()
	n := src.len()
	if opts.Limit > 0 && opts.Limit < n {
		n = opts.Limit
	}
	if n == 0 {
		return nil, fmt.Errorf("dataset: %s: no samples", data)
	}
	ins := src.inputs()
	first := ins[0]
	if opts.Channels > 0 || opts.Height > 0 || opts.Width > 0 {
		if !matchCHW(first.Shape, opts) {
			return nil, fmt.Errorf("dataset: %s: samples are %v, the model wants %s", data, first.Shape, wantCHW(opts))
		}
	}
	if opts.Augment.Enabled() && (first.DType != tensor.Float32 || len(first.Shape) != 3) {
		return nil, fmt.Errorf("dataset: %s: augmentation needs float32 C×H×W images, samples are %v %v", data, first.DType, first.Shape)
	}
	if !opts.Preprocess.IsIdentity() {
		if first.DType != tensor.Float32 || len(first.Shape) < 1 {
			return nil, fmt.Errorf("dataset: %s: preprocessing needs float32 N×C×... inputs, samples are %v %v", data, first.DType, first.Shape)
		}
		if err := opts.Preprocess.Validate(first.Shape[0]); err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", data, err)
		}
	}
	ncls := len(classes)
	if labs := src.labels(); labs != nil {
		limit := opts.Classes
		if limit == 0 {
			limit = ncls
		}
		for i, l := range labs[:n] {
			if l < 0 || (limit > 0 && l >= int64(limit)) {
				if limit > 0 {
					return nil, fmt.Errorf("dataset: %s: label %d of sample %d is out of range [0, %d)", labFile, l, i, limit)
				}
				return nil, fmt.Errorf("dataset: %s: label %d of sample %d is negative", labFile, l, i)
			}
			if int(l) >= ncls && len(classes) == 0 {
				ncls = int(l) + 1
			}
		}
		if opts.Classes > 0 {
			ncls = opts.Classes
		}
	}
	bs := opts.BatchSize
	if bs == 0 {
		bs = DefaultBatchSize
	}
	if opts.DropLast && n < bs {
		return nil, fmt.Errorf("dataset: %s: %d samples make no full batch of %d (DropLast)", data, n, bs)
	}
	return &Dataset{spec: s, opts: opts, src: src, n: n, bs: bs, seed: opts.Seed, permFor: -1, classes: classes, ncls: ncls}, nil
}

// matchCHW reports whether a sample shape is C×H×W with the requested
// non-zero dimensions.
func matchCHW(s tensor.Shape, o Options) bool {
	if len(s) != 3 {
		return false
	}
	for i, want := range [3]int{o.Channels, o.Height, o.Width} {
		if want != 0 && s[i] != want {
			return false
		}
	}
	return true
}

// wantCHW formats the requested sample size, "?" for any.
func wantCHW(o Options) string {
	f := func(v int) string {
		if v == 0 {
			return "?"
		}
		return fmt.Sprint(v)
	}
	return "[" + f(o.Channels) + " " + f(o.Height) + " " + f(o.Width) + "]"
}

// Spec returns the source's spec.
func (d *Dataset) Spec() Spec { return d.spec }

// Samples returns the number of samples per epoch (after Options.Limit).
func (d *Dataset) Samples() int { return d.n }

// BatchSize returns the number of samples per full batch.
func (d *Dataset) BatchSize() int { return d.bs }

// Inputs describes the inputs of every batch (sample shapes, without the
// batch axis).
func (d *Dataset) Inputs() []InputInfo {
	ins := d.src.inputs()
	out := make([]InputInfo, len(ins))
	for i, in := range ins {
		out[i] = InputInfo{Name: in.Name, DType: in.DType, Shape: in.Shape.Clone()}
	}
	return out
}

// HasLabels reports whether batches carry labels.
func (d *Dataset) HasLabels() bool { return d.src.labels() != nil }

// Classes returns the class names when the source knows them (MNIST digits,
// Fashion-MNIST names, folder names), else nil.
func (d *Dataset) Classes() []string { return append([]string(nil), d.classes...) }

// NumClasses returns the number of classes: the known class names,
// Options.Classes, or the largest label plus one; 0 without labels.
func (d *Dataset) NumClasses() int { return d.ncls }

// Len returns the number of batches per epoch.
func (d *Dataset) Len() int {
	if d.opts.DropLast {
		return d.n / d.bs
	}
	return (d.n + d.bs - 1) / d.bs
}

// Reset sets a new base seed and rewinds to the start of epoch 0.
func (d *Dataset) Reset(seed uint64) {
	d.seed = seed
	d.pos = Position{}
	d.perm, d.permFor = nil, -1
}

// Position returns where the next call to Next continues.
func (d *Dataset) Position() Position { return d.pos }

// Seek moves to p: epoch p.Epoch, after its first p.Index samples.
func (d *Dataset) Seek(p Position) error {
	if p.Epoch < 0 || p.Index < 0 || p.Index > d.n {
		return fmt.Errorf("dataset: position %+v outside epochs of %d samples", p, d.n)
	}
	d.pos = p
	return nil
}

// Next returns the next batch of the current epoch, or io.EOF after the
// last one. A failed Next does not advance the position.
func (d *Dataset) Next(ctx context.Context) (Batch, error) {
	if err := ctx.Err(); err != nil {
		return Batch{}, err
	}
	rem := d.n - d.pos.Index
	bs := d.bs
	if rem <= 0 || (d.opts.DropLast && rem < bs) {
		return Batch{}, io.EOF
	}
	bs = min(bs, rem)
	eseed := epochSeed(d.seed, d.pos.Epoch)
	idx := make([]int, bs)
	if d.opts.Shuffle {
		if d.permFor != d.pos.Epoch {
			d.perm = permutation(d.n, eseed, d.perm)
			d.permFor = d.pos.Epoch
		}
		for j := range idx {
			idx[j] = int(d.perm[d.pos.Index+j])
		}
	} else {
		for j := range idx {
			idx[j] = d.pos.Index + j
		}
	}
	ins := d.src.inputs()
	b := Batch{Inputs: make([]Input, len(ins)), Index: idx}
	dst := make([]*tensor.Tensor, len(ins))
	for k, in := range ins {
		t, err := tensor.New(in.DType, append(tensor.Shape{bs}, in.Shape...))
		if err != nil {
			return Batch{}, fmt.Errorf("dataset: input %q: %w", in.Name, err)
		}
		dst[k] = t
		b.Inputs[k] = Input{Name: in.Name, Tensor: t}
	}
	if err := d.src.load(ctx, idx, dst); err != nil {
		return Batch{}, err
	}
	if labs := d.src.labels(); labs != nil {
		l := make([]int64, bs)
		for j, i := range idx {
			l[j] = labs[i]
		}
		b.Labels = tensor.FromInt64(tensor.Shape{bs}, l)
	}
	if d.opts.Augment.Enabled() {
		augment(dst[0], d.opts.Augment, eseed, idx)
	}
	if !d.opts.Preprocess.IsIdentity() {
		if err := d.opts.Preprocess.Apply(dst[0]); err != nil {
			return Batch{}, err
		}
	}
	d.pos.Index += bs
	return b, nil
}

// splitmix64 is SplitMix64's output function, used to derive seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// epochSeed derives epoch e's seed from the base seed.
func epochSeed(seed uint64, epoch int) uint64 {
	return splitmix64(seed ^ splitmix64(uint64(epoch)^0x65706f6368))
}

// permutation returns a uniformly random permutation of 0..n-1 drawn from
// a PCG seeded with seed (Fisher-Yates with Lemire's bounded draw, written
// out so the order never depends on the Go release). buf is reused when
// large enough.
func permutation(n int, seed uint64, buf []int32) []int32 {
	if cap(buf) < n {
		buf = make([]int32, n)
	}
	p := buf[:n]
	for i := range p {
		p[i] = int32(i)
	}
	rng := rand.NewPCG(seed, 0x73687566666c65)
	for i := n - 1; i > 0; i-- {
		j := boundedDraw(rng, uint64(i)+1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// boundedDraw returns a uniform integer in [0, n) (Lemire's method).
func boundedDraw(rng *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(rng.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(rng.Uint64(), n)
		}
	}
	return hi
}
