// Package tensor holds goslim's tensor type: a dtype, a shape and a flat,
// row-major storage slice. It has no math; kernels live in internal/.
package tensor

import (
	"fmt"
	"math"
	"strings"
)

// DType is an element type. The numeric values follow ONNX's
// TensorProto.DataType so that conversion to and from ONNX is a cast.
type DType int32

// Element types goslim stores. Values match onnx.TensorProto.DataType.
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Uint16    DType = 4
	Int16     DType = 5
	Int32     DType = 6
	Int64     DType = 7
	String    DType = 8
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
	Uint32    DType = 12
	Uint64    DType = 13
	BFloat16  DType = 16
)

var dtypeNames = [...]string{
	Undefined: "undefined", Float32: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Float64: "float64",
	Uint32: "uint32", Uint64: "uint64", 14: "complex64", 15: "complex128", BFloat16: "bfloat16",
}

// String returns the lower-case name of the dtype ("float32", "int64", ...).
func (d DType) String() string {
	if d >= 0 && int(d) < len(dtypeNames) && dtypeNames[d] != "" {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Size returns the storage size of one element in bytes, or 0 for dtypes
// goslim cannot store.
func (d DType) Size() int {
	switch d {
	case Float32, Int32, Uint32:
		return 4
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Int64, Float64, Uint64:
		return 8
	}
	return 0
}

// Supported reports whether goslim can store tensors of this dtype.
func (d DType) Supported() bool {
	switch d {
	case Float32, Uint8, Int8, Uint16, Int16, Int32, Int64, Bool, Float16, Float64, Uint32, Uint64:
		return true
	}
	return false
}

// IsFloat reports whether d is a floating-point dtype.
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 || d == Float16 || d == BFloat16 }

// Shape is a list of dimension sizes. A scalar has an empty shape.
type Shape []int

// Size returns the number of elements (1 for a scalar). It returns -1 if a
// dimension is negative or the product overflows int.
func (s Shape) Size() int {
	n := 1
	for _, d := range s {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt/d {
			return -1
		}
		n *= d
	}
	return n
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape {
	if s == nil {
		return nil
	}
	return append(Shape{}, s...)
}

// String formats the shape as [d0 d1 ...].
func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// Strides returns the row-major element strides of s.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

// Tensor is a dense row-major array. Data holds one of []float32,
// []float64, []uint16 (Float16 and BFloat16 bits), []int8, []uint8,
// []int16, []uint16, []int32, []uint32, []int64, []uint64 or []bool,
// matching DType, with exactly Shape.Size() elements.
type Tensor struct {
	DType DType
	Shape Shape
	Data  any
}

// MaxElements bounds the size of any single tensor goslim allocates (2^31
// elements). It protects against hostile shapes in model files.
const MaxElements = 1 << 31

// New allocates a zero tensor. It returns an error for unsupported dtypes,
// negative dimensions and tensors larger than MaxElements.
func New(dt DType, shape Shape) (*Tensor, error) {
	n := shape.Size()
	if n < 0 || n > MaxElements {
		return nil, fmt.Errorf("tensor: shape %v is invalid or too large", shape)
	}
	data, err := MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: dt, Shape: shape.Clone(), Data: data}, nil
}

// MakeSlice returns a zeroed storage slice of n elements for dt.
func MakeSlice(dt DType, n int) (any, error) {
	switch dt {
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case Float16, BFloat16, Uint16:
		return make([]uint16, n), nil
	case Int8:
		return make([]int8, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	}
	return nil, fmt.Errorf("tensor: unsupported dtype %v", dt)
}

// SliceLen returns the length of a storage slice made by MakeSlice, or -1.
func SliceLen(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []uint16:
		return len(d)
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int16:
		return len(d)
	case []int32:
		return len(d)
	case []uint32:
		return len(d)
	case []int64:
		return len(d)
	case []uint64:
		return len(d)
	case []bool:
		return len(d)
	}
	return -1
}

// storageMatches reports whether data is the slice type for dt.
func storageMatches(dt DType, data any) bool {
	switch data.(type) {
	case []float32:
		return dt == Float32
	case []float64:
		return dt == Float64
	case []uint16:
		return dt == Float16 || dt == BFloat16 || dt == Uint16
	case []int8:
		return dt == Int8
	case []uint8:
		return dt == Uint8
	case []int16:
		return dt == Int16
	case []int32:
		return dt == Int32
	case []uint32:
		return dt == Uint32
	case []int64:
		return dt == Int64
	case []uint64:
		return dt == Uint64
	case []bool:
		return dt == Bool
	}
	return false
}

// Check verifies that Data matches DType and Shape.
func (t *Tensor) Check() error {
	if t == nil {
		return fmt.Errorf("tensor: nil tensor")
	}
	if !storageMatches(t.DType, t.Data) {
		return fmt.Errorf("tensor: storage %T does not hold %v", t.Data, t.DType)
	}
	if n := t.Shape.Size(); n < 0 || n != SliceLen(t.Data) {
		return fmt.Errorf("tensor: shape %v wants %d elements, storage has %d", t.Shape, t.Shape.Size(), SliceLen(t.Data))
	}
	return nil
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return SliceLen(t.Data) }

// Rank returns len(t.Shape).
func (t *Tensor) Rank() int { return len(t.Shape) }

// F32 returns the float32 storage. It panics if the dtype is not Float32.
func (t *Tensor) F32() []float32 { return t.Data.([]float32) }

// F64 returns the float64 storage. It panics if the dtype is not Float64.
func (t *Tensor) F64() []float64 { return t.Data.([]float64) }

// I64 returns the int64 storage. It panics if the dtype is not Int64.
func (t *Tensor) I64() []int64 { return t.Data.([]int64) }

// I32 returns the int32 storage. It panics if the dtype is not Int32.
func (t *Tensor) I32() []int32 { return t.Data.([]int32) }

// I8 returns the int8 storage. It panics if the dtype is not Int8.
func (t *Tensor) I8() []int8 { return t.Data.([]int8) }

// U8 returns the uint8 storage. It panics if the dtype is not Uint8.
func (t *Tensor) U8() []uint8 { return t.Data.([]uint8) }

// Bools returns the bool storage. It panics if the dtype is not Bool.
func (t *Tensor) Bools() []bool { return t.Data.([]bool) }

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
func FromFloat32(shape Shape, data []float32) *Tensor {
	return &Tensor{DType: Float32, Shape: shape, Data: data}
}

// FromInt64 wraps data (not copied) as an int64 tensor of the given shape.
func FromInt64(shape Shape, data []int64) *Tensor {
	return &Tensor{DType: Int64, Shape: shape, Data: data}
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: t.Shape.Clone()}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32(nil), d...)
	case []float64:
		c.Data = append([]float64(nil), d...)
	case []uint16:
		c.Data = append([]uint16(nil), d...)
	case []int8:
		c.Data = append([]int8(nil), d...)
	case []uint8:
		c.Data = append([]uint8(nil), d...)
	case []int16:
		c.Data = append([]int16(nil), d...)
	case []int32:
		c.Data = append([]int32(nil), d...)
	case []uint32:
		c.Data = append([]uint32(nil), d...)
	case []int64:
		c.Data = append([]int64(nil), d...)
	case []uint64:
		c.Data = append([]uint64(nil), d...)
	case []bool:
		c.Data = append([]bool(nil), d...)
	}
	return c
}

// Float64At returns element i converted to float64 (bool as 0/1, float16
// decoded). It is meant for tests, reports and shape-sized data, not hot loops.
func (t *Tensor) Float64At(i int) float64 {
	switch d := t.Data.(type) {
	case []float32:
		return float64(d[i])
	case []float64:
		return d[i]
	case []uint16:
		switch t.DType {
		case Float16:
			return float64(HalfToFloat32(d[i]))
		case BFloat16:
			return float64(math.Float32frombits(uint32(d[i]) << 16))
		}
		return float64(d[i])
	case []int8:
		return float64(d[i])
	case []uint8:
		return float64(d[i])
	case []int16:
		return float64(d[i])
	case []int32:
		return float64(d[i])
	case []uint32:
		return float64(d[i])
	case []int64:
		return float64(d[i])
	case []uint64:
		return float64(d[i])
	case []bool:
		if d[i] {
			return 1
		}
		return 0
	}
	panic("tensor: bad storage")
}

// Int64s returns the elements of an integer tensor as int64 (copied). It is
// meant for shape-like inputs (Reshape shapes, Slice starts, axes).
func (t *Tensor) Int64s() ([]int64, error) {
	out := make([]int64, t.Len())
	switch d := t.Data.(type) {
	case []int64:
		copy(out, d)
	case []int32:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint32:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint64:
		for i, v := range d {
			out[i] = int64(v)
		}
	default:
		if t.DType == Uint16 {
			for i, v := range t.Data.([]uint16) {
				out[i] = int64(v)
			}
			return out, nil
		}
		return nil, fmt.Errorf("tensor: %v is not an integer dtype", t.DType)
	}
	return out, nil
}

// String summarizes the tensor (dtype, shape and up to 8 values).
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v%v{", t.DType, t.Shape)
	n := t.Len()
	for i := 0; i < n && i < 8; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%g", t.Float64At(i))
	}
	if n > 8 {
		b.WriteString(", ...")
	}
	b.WriteByte('}')
	return b.String()
}
