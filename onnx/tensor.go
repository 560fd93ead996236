package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/goslim/goslim/onnx/internal/onnxpb"
	"github.com/goslim/goslim/tensor"
	"google.golang.org/protobuf/proto"
)

// MaxFileSize bounds how many bytes Decode and ReadTensor read (2 GiB,
// protobuf's own limit for one message).
const MaxFileSize = 2 << 30

// ReadTensor decodes a serialized ONNX TensorProto (the .pb files of ONNX
// test data sets) and returns the tensor and its name.
func ReadTensor(r io.Reader) (*tensor.Tensor, string, error) {
	b, err := readLimited(r)
	if err != nil {
		return nil, "", err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return nil, "", fmt.Errorf("onnx: not a TensorProto: %w", err)
	}
	t, err := tensorFromProto(&tp)
	if err != nil {
		return nil, "", err
	}
	return t, tp.GetName(), nil
}

// WriteTensor serializes t as an ONNX TensorProto with the given name.
func WriteTensor(w io.Writer, name string, t *tensor.Tensor) error {
	tp, err := tensorToProto(name, t)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(tp)
	if err != nil {
		return fmt.Errorf("onnx: tensor %q: %w", name, err)
	}
	_, err = w.Write(b)
	return err
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("onnx: read: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("onnx: input larger than %d bytes", MaxFileSize)
	}
	return b, nil
}

// tensorFromProto converts a TensorProto, checking that the data it carries
// matches its dims before allocating anything proportional to the dims.
func tensorFromProto(tp *onnxpb.TensorProto) (*tensor.Tensor, error) {
	name := tp.GetName()
	dt := tensor.DType(tp.GetDataType())
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		loc := ""
		for _, kv := range tp.GetExternalData() {
			if kv.GetKey() == "location" {
				loc = kv.GetValue()
			}
		}
		return nil, fmt.Errorf("onnx: tensor %q keeps its data in external file %q; goslim reads self-contained models only (re-save without external data)", name, loc)
	}
	if tp.GetSegment() != nil {
		return nil, fmt.Errorf("onnx: tensor %q is segmented; not supported", name)
	}
	if !dt.Supported() {
		return nil, fmt.Errorf("onnx: tensor %q has unsupported dtype %v", name, dt)
	}
	shape := make(tensor.Shape, len(tp.GetDims()))
	n := int64(1)
	for i, d := range tp.GetDims() {
		if d < 0 {
			return nil, fmt.Errorf("onnx: tensor %q has negative dim %d", name, d)
		}
		if d != 0 && n > tensor.MaxElements/d {
			return nil, fmt.Errorf("onnx: tensor %q dims %v exceed the %d-element limit", name, tp.GetDims(), tensor.MaxElements)
		}
		n *= d
		shape[i] = int(d)
	}
	if n > tensor.MaxElements {
		return nil, fmt.Errorf("onnx: tensor %q dims %v exceed the %d-element limit", name, tp.GetDims(), tensor.MaxElements)
	}
	count := int(n)
	raw := tp.GetRawData()
	have := 0
	switch {
	case raw != nil || (len(tp.GetFloatData())+len(tp.GetInt32Data())+len(tp.GetInt64Data())+len(tp.GetDoubleData())+len(tp.GetUint64Data()) == 0):
		if len(raw)%dt.Size() != 0 {
			return nil, fmt.Errorf("onnx: tensor %q: raw_data of %d bytes is not a multiple of %v's %d bytes", name, len(raw), dt, dt.Size())
		}
		have = len(raw) / dt.Size()
	case dt == tensor.Float32:
		have = len(tp.GetFloatData())
	case dt == tensor.Int64:
		have = len(tp.GetInt64Data())
	case dt == tensor.Float64:
		have = len(tp.GetDoubleData())
	case dt == tensor.Uint32 || dt == tensor.Uint64:
		have = len(tp.GetUint64Data())
	default:
		have = len(tp.GetInt32Data())
	}
	if have != count {
		return nil, fmt.Errorf("onnx: tensor %q: dims %v want %d elements, data has %d", name, tp.GetDims(), count, have)
	}
	data, err := tensor.MakeSlice(dt, count)
	if err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", name, err)
	}
	t := &tensor.Tensor{DType: dt, Shape: shape, Data: data}
	if raw != nil || count == 0 {
		decodeRaw(t, raw)
		return t, nil
	}
	switch d := data.(type) {
	case []float32:
		copy(d, tp.GetFloatData())
	case []float64:
		copy(d, tp.GetDoubleData())
	case []int64:
		copy(d, tp.GetInt64Data())
	case []uint64:
		copy(d, tp.GetUint64Data())
	case []uint32:
		for i, v := range tp.GetUint64Data() {
			d[i] = uint32(v)
		}
	case []int32:
		copy(d, tp.GetInt32Data())
	case []int16:
		for i, v := range tp.GetInt32Data() {
			d[i] = int16(v)
		}
	case []uint16:
		for i, v := range tp.GetInt32Data() {
			d[i] = uint16(v)
		}
	case []int8:
		for i, v := range tp.GetInt32Data() {
			d[i] = int8(v)
		}
	case []uint8:
		for i, v := range tp.GetInt32Data() {
			d[i] = uint8(v)
		}
	case []bool:
		for i, v := range tp.GetInt32Data() {
			d[i] = v != 0
		}
	}
	return t, nil
}

func decodeRaw(t *tensor.Tensor, raw []byte) {
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []uint64:
		for i := range d {
			d[i] = le.Uint64(raw[8*i:])
		}
	case []int32:
		for i := range d {
			d[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []uint32:
		for i := range d {
			d[i] = le.Uint32(raw[4*i:])
		}
	case []int16:
		for i := range d {
			d[i] = int16(le.Uint16(raw[2*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = le.Uint16(raw[2*i:])
		}
	case []int8:
		for i := range d {
			d[i] = int8(raw[i])
		}
	case []uint8:
		copy(d, raw)
	case []bool:
		for i := range d {
			d[i] = raw[i] != 0
		}
	}
}

// tensorToProto encodes t with raw_data (little-endian), as ONNX's own
// tools do.
func tensorToProto(name string, t *tensor.Tensor) (*onnxpb.TensorProto, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", name, err)
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	raw := make([]byte, t.Len()*t.DType.Size())
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			le.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			le.PutUint64(raw[8*i:], math.Float64bits(v))
		}
	case []int64:
		for i, v := range d {
			le.PutUint64(raw[8*i:], uint64(v))
		}
	case []uint64:
		for i, v := range d {
			le.PutUint64(raw[8*i:], v)
		}
	case []int32:
		for i, v := range d {
			le.PutUint32(raw[4*i:], uint32(v))
		}
	case []uint32:
		for i, v := range d {
			le.PutUint32(raw[4*i:], v)
		}
	case []int16:
		for i, v := range d {
			le.PutUint16(raw[2*i:], uint16(v))
		}
	case []uint16:
		for i, v := range d {
			le.PutUint16(raw[2*i:], v)
		}
	case []int8:
		for i, v := range d {
			raw[i] = byte(v)
		}
	case []uint8:
		copy(raw, d)
	case []bool:
		for i, v := range d {
			if v {
				raw[i] = 1
			}
		}
	}
	tp := &onnxpb.TensorProto{Dims: dims, DataType: proto.Int32(int32(t.DType)), RawData: raw}
	if name != "" {
		tp.Name = proto.String(name)
	}
	return tp, nil
}
