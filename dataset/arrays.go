package dataset

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// u8Source holds 8-bit images compactly (one byte per pixel, N×C×H×W) and
// scales them to float32 in [0, 1] per batch.
type u8Source struct {
	info    InputInfo
	data    []uint8
	n       int
	labs    []int64
	name    string
	labName string
}

func (s *u8Source) len() int                     { return s.n }
func (s *u8Source) inputs() []InputInfo          { return []InputInfo{s.info} }
func (s *u8Source) labels() []int64              { return s.labs }
func (s *u8Source) files() (data, labels string) { return s.name, s.labName }

// load writes float32(v)/255 for every byte of the chosen samples.
func (s *u8Source) load(_ context.Context, idx []int, dst []*tensor.Tensor) error {
	var lut [256]float32
	for v := range lut {
		lut[v] = float32(v) / 255
	}
	size := s.info.Shape.Size()
	out := dst[0].F32()
	for j, i := range idx {
		o := out[j*size : (j+1)*size]
		for k, v := range s.data[i*size : (i+1)*size] {
			o[k] = lut[v]
		}
	}
	return nil
}

// tensorSource holds whole tensors with the samples along axis 0 and
// copies rows per batch.
type tensorSource struct {
	ins     []InputInfo
	data    []*tensor.Tensor
	n       int
	labs    []int64
	name    string
	labName string
}

func (s *tensorSource) len() int                     { return s.n }
func (s *tensorSource) inputs() []InputInfo          { return s.ins }
func (s *tensorSource) labels() []int64              { return s.labs }
func (s *tensorSource) files() (data, labels string) { return s.name, s.labName }

func (s *tensorSource) load(_ context.Context, idx []int, dst []*tensor.Tensor) error {
	for k, t := range s.data {
		row := s.ins[k].Shape.Size()
		switch d := t.Data.(type) {
		case []float32:
			gatherRows(dst[k].Data.([]float32), d, idx, row)
		case []float64:
			gatherRows(dst[k].Data.([]float64), d, idx, row)
		case []uint16:
			gatherRows(dst[k].Data.([]uint16), d, idx, row)
		case []int8:
			gatherRows(dst[k].Data.([]int8), d, idx, row)
		case []uint8:
			gatherRows(dst[k].Data.([]uint8), d, idx, row)
		case []int16:
			gatherRows(dst[k].Data.([]int16), d, idx, row)
		case []int32:
			gatherRows(dst[k].Data.([]int32), d, idx, row)
		case []uint32:
			gatherRows(dst[k].Data.([]uint32), d, idx, row)
		case []int64:
			gatherRows(dst[k].Data.([]int64), d, idx, row)
		case []uint64:
			gatherRows(dst[k].Data.([]uint64), d, idx, row)
		case []bool:
			gatherRows(dst[k].Data.([]bool), d, idx, row)
		default:
			return fmt.Errorf("dataset: %s: unsupported storage %T", s.name, t.Data)
		}
	}
	return nil
}

// gatherRows copies rows idx of src (row elements each) to consecutive
// rows of dst.
func gatherRows[T any](dst, src []T, idx []int, row int) {
	for j, i := range idx {
		copy(dst[j*row:(j+1)*row], src[i*row:(i+1)*row])
	}
}

// toFloat32 converts a float64, float16 or integer tensor to float32
// (values unchanged, not scaled).
func toFloat32(t *tensor.Tensor) (*tensor.Tensor, error) {
	switch t.DType {
	case tensor.Float32:
		return t, nil
	case tensor.Float16:
		src := t.Data.([]uint16)
		out := make([]float32, len(src))
		for i, v := range src {
			out[i] = tensor.HalfToFloat32(v)
		}
		return tensor.FromFloat32(t.Shape.Clone(), out), nil
	case tensor.Float64, tensor.Int8, tensor.Int16, tensor.Int32, tensor.Uint8:
		out := make([]float32, t.Len())
		for i := range out {
			out[i] = float32(t.Float64At(i))
		}
		return tensor.FromFloat32(t.Shape.Clone(), out), nil
	}
	return nil, fmt.Errorf("cannot convert %v data to float32", t.DType)
}

// openNPY opens npy:X.npy[,Y.npy].
func openNPY(paths []string, opts Options) (source, error) {
	x, err := npy.ReadFile(paths[0])
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var y *tensor.Tensor
	labName := ""
	if len(paths) > 1 {
		labName = paths[1]
		if y, err = npy.ReadFile(paths[1]); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
	}
	return arraySource(x, y, paths[0], labName, opts)
}

// openNPZ opens npz:FILE (array x, optional array y).
func openNPZ(path string, opts Options) (source, error) {
	arrs, err := npy.ReadNPZFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	x, ok := arrs["x"]
	if !ok {
		keys := make([]string, 0, len(arrs))
		for k := range arrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("dataset: %s: no array \"x\" (arrays: %s)", path, strings.Join(keys, ", "))
	}
	y := arrs["y"]
	labName := ""
	if y != nil {
		labName = path + ":y"
	}
	return arraySource(x, y, path+":x", labName, opts)
}

// arraySource builds a source from a data array with samples along axis 0
// and optional labels. uint8 data are 8-bit images: rank 3 (N×H×W) gains a
// channel axis, rank 4 in N×H×W×C layout is transposed to N×C×H×W, and
// values scale to [0, 1]. float64 and float16 data become float32; other
// dtypes stay as they are.
func arraySource(x, y *tensor.Tensor, name, labName string, opts Options) (source, error) {
	if x.Rank() < 1 {
		return nil, fmt.Errorf("dataset: %s: data is a scalar; want samples along the first axis", name)
	}
	n := x.Shape[0]
	var labs []int64
	if y != nil {
		var err error
		if labs, err = arrayLabels(y, n, name, labName); err != nil {
			return nil, err
		}
	}
	info := InputInfo{Name: opts.inputName(), DType: x.DType, Shape: x.Shape[1:].Clone()}
	if x.DType == tensor.Uint8 {
		data := x.U8()
		shape := info.Shape
		switch {
		case len(shape) == 2:
			shape = tensor.Shape{1, shape[0], shape[1]}
		case len(shape) == 3 && isNHWC(shape, opts.Channels):
			data = nhwcToNCHW(data, n, shape[0], shape[1], shape[2])
			shape = tensor.Shape{shape[2], shape[0], shape[1]}
		}
		info.DType, info.Shape = tensor.Float32, shape
		return &u8Source{info: info, data: data, n: n, labs: labs, name: name, labName: labName}, nil
	}
	if x.DType == tensor.Float64 || x.DType == tensor.Float16 {
		f, err := toFloat32(x)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", name, err)
		}
		x, info.DType = f, tensor.Float32
	}
	return &tensorSource{ins: []InputInfo{info}, data: []*tensor.Tensor{x}, n: n, labs: labs, name: name, labName: labName}, nil
}

// isNHWC reports whether a uint8 image sample shape is H×W×C rather than
// C×H×W: the last axis matches the wanted channel count (or, when that is
// unknown, is 1, 3 or 4) and the first does not.
func isNHWC(s tensor.Shape, channels int) bool {
	if channels > 0 {
		return s[0] != channels && s[2] == channels
	}
	isC := func(v int) bool { return v == 1 || v == 3 || v == 4 }
	return !isC(s[0]) && isC(s[2])
}

// nhwcToNCHW transposes n images of h×w×c bytes to c×h×w.
func nhwcToNCHW(src []uint8, n, h, w, c int) []uint8 {
	out := make([]uint8, len(src))
	plane := h * w
	for i := range n {
		s := src[i*plane*c : (i+1)*plane*c]
		o := out[i*plane*c : (i+1)*plane*c]
		for p := range plane {
			for ch := range c {
				o[ch*plane+p] = s[p*c+ch]
			}
		}
	}
	return out
}

// arrayLabels checks a label array for n samples: integers, shape [N] or
// [N, 1].
func arrayLabels(y *tensor.Tensor, n int, name, labName string) ([]int64, error) {
	if y.Rank() != 1 && !(y.Rank() == 2 && y.Shape[1] == 1) {
		return nil, fmt.Errorf("dataset: %s: labels have shape %v; want [N]", labName, y.Shape)
	}
	if y.Shape[0] != n {
		return nil, fmt.Errorf("dataset: %s: %d labels for the %d samples of %s", labName, y.Shape[0], n, name)
	}
	if y.DType.IsFloat() || y.DType == tensor.Bool {
		return nil, fmt.Errorf("dataset: %s: labels are %v; want integers", labName, y.DType)
	}
	labs, err := y.Int64s()
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", labName, err)
	}
	return labs, nil
}

// pbSet is one directory of TensorProto files.
type pbSet struct {
	dir    string
	inputs []string // input_K.pb paths in K order
	labels string   // labels.pb path or ""
}

// openPB opens pb:DIR: either DIR itself holds input_0.pb, input_1.pb, ...
// or its subdirectories do (ONNX's test_data_set_0, test_data_set_1, ...,
// taken in natural order). Each file holds one input for a batch of
// samples along its first axis; the TensorProto's name is the input name.
// An optional labels.pb beside them holds integer labels [N].
func openPB(dir string, opts Options) (source, error) {
	sets, err := pbSets(dir)
	if err != nil {
		return nil, err
	}
	var (
		ins     []InputInfo
		parts   [][]*tensor.Tensor // per input, per set
		labs    []int64
		labName string
		n       int
	)
	for si, set := range sets {
		setN := -1
		if si > 0 && len(set.inputs) != len(ins) {
			return nil, fmt.Errorf("dataset: %s: %d inputs, but %s has %d", set.dir, len(set.inputs), sets[0].dir, len(ins))
		}
		for k, path := range set.inputs {
			t, name, err := readPB(path)
			if err != nil {
				return nil, err
			}
			if t.Rank() < 1 {
				return nil, fmt.Errorf("dataset: %s: tensor is a scalar; want a batch along the first axis", path)
			}
			if name == "" {
				name = "input_" + strconv.Itoa(k)
				if len(set.inputs) == 1 {
					name = opts.inputName()
				}
			}
			if setN < 0 {
				setN = t.Shape[0]
			} else if t.Shape[0] != setN {
				return nil, fmt.Errorf("dataset: %s: batch of %d, but %s has %d", path, t.Shape[0], set.inputs[0], setN)
			}
			info := InputInfo{Name: name, DType: t.DType, Shape: t.Shape[1:].Clone()}
			if si == 0 {
				ins = append(ins, info)
				parts = append(parts, nil)
			} else if want := ins[k]; want.Name != info.Name || want.DType != info.DType || !want.Shape.Equal(info.Shape) {
				return nil, fmt.Errorf("dataset: %s: input %q %v %v, but %s has %q %v %v",
					path, info.Name, info.DType, info.Shape, sets[0].inputs[k], want.Name, want.DType, want.Shape)
			}
			parts[k] = append(parts[k], t)
		}
		if (set.labels != "") != (sets[0].labels != "") {
			return nil, fmt.Errorf("dataset: %s: labels.pb present in some sets but not others (compare %s)", set.dir, sets[0].dir)
		}
		if set.labels != "" {
			y, _, err := readPB(set.labels)
			if err != nil {
				return nil, err
			}
			l, err := arrayLabels(y, setN, set.inputs[0], set.labels)
			if err != nil {
				return nil, err
			}
			labs = append(labs, l...)
			labName = set.labels
		}
		n += setN
	}
	if n > tensor.MaxElements {
		return nil, fmt.Errorf("dataset: %s: %d samples is too many", dir, n)
	}
	data := make([]*tensor.Tensor, len(ins))
	for k, in := range ins {
		t, err := concatRows(parts[k], in, n)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", dir, err)
		}
		data[k] = t
	}
	if len(sets) > 1 && labName != "" {
		labName = filepath.Join(dir, "*", "labels.pb")
	}
	return &tensorSource{ins: ins, data: data, n: n, labs: labs, name: dir, labName: labName}, nil
}

// readPB reads one TensorProto file; errors name the file.
func readPB(path string) (*tensor.Tensor, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	t, name, err := onnx.ReadTensor(f)
	if err != nil {
		return nil, "", fmt.Errorf("dataset: %s: %w", path, err)
	}
	return t, name, nil
}

// concatRows joins tensors along axis 0 (n rows in all).
func concatRows(parts []*tensor.Tensor, in InputInfo, n int) (*tensor.Tensor, error) {
	if len(parts) == 1 {
		return parts[0], nil
	}
	out, err := tensor.New(in.DType, append(tensor.Shape{n}, in.Shape...))
	if err != nil {
		return nil, err
	}
	row := in.Shape.Size()
	off := 0
	for _, p := range parts {
		m := p.Shape[0] * row
		switch d := out.Data.(type) {
		case []float32:
			copy(d[off:off+m], p.Data.([]float32))
		case []float64:
			copy(d[off:off+m], p.Data.([]float64))
		case []uint16:
			copy(d[off:off+m], p.Data.([]uint16))
		case []int8:
			copy(d[off:off+m], p.Data.([]int8))
		case []uint8:
			copy(d[off:off+m], p.Data.([]uint8))
		case []int16:
			copy(d[off:off+m], p.Data.([]int16))
		case []int32:
			copy(d[off:off+m], p.Data.([]int32))
		case []uint32:
			copy(d[off:off+m], p.Data.([]uint32))
		case []int64:
			copy(d[off:off+m], p.Data.([]int64))
		case []uint64:
			copy(d[off:off+m], p.Data.([]uint64))
		case []bool:
			copy(d[off:off+m], p.Data.([]bool))
		default:
			return nil, fmt.Errorf("unsupported storage %T", d)
		}
		off += m
	}
	return out, nil
}

// pbSets finds the TensorProto sets of a pb: directory.
func pbSets(dir string) ([]pbSet, error) {
	set, ok, err := pbSetIn(dir)
	if err != nil {
		return nil, err
	}
	if ok {
		return []pbSet{set}, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, naturalCompare)
	var sets []pbSet
	for _, name := range names {
		set, ok, err := pbSetIn(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if ok {
			sets = append(sets, set)
		}
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("dataset: %s: no input_0.pb here or in its subdirectories (want DIR/input_0.pb or DIR/test_data_set_0/input_0.pb)", dir)
	}
	return sets, nil
}

// pbSetIn lists dir's input_K.pb files; ok is false when there are none.
// The numbers must run 0, 1, 2, ... without gaps.
func pbSetIn(dir string) (pbSet, bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return pbSet{}, false, fmt.Errorf("dataset: %w", err)
	}
	byK := map[int]string{}
	set := pbSet{dir: dir}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if name == "labels.pb" {
			set.labels = filepath.Join(dir, name)
			continue
		}
		num, ok := strings.CutPrefix(name, "input_")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".pb")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(num)
		if err != nil || k < 0 {
			continue
		}
		byK[k] = filepath.Join(dir, name)
	}
	if len(byK) == 0 {
		return pbSet{}, false, nil
	}
	for k := range len(byK) {
		p, ok := byK[k]
		if !ok {
			return pbSet{}, false, fmt.Errorf("dataset: %s: input_%d.pb is missing (inputs must be numbered 0, 1, 2, ...)", dir, k)
		}
		set.inputs = append(set.inputs, p)
	}
	return set, true, nil
}

// naturalCompare orders strings with embedded numbers by value
// ("set_2" < "set_10").
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitRun returns the length of s's leading run of digits.
func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
