package tensor

import (
	"math"
	"testing"
)

func TestHalfRoundTrip(t *testing.T) {
	// Every float16 bit pattern decodes and re-encodes to itself (NaNs stay NaN).
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat32(uint16(h))
		back := Float32ToHalf(f)
		if f != f {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestFloat32ToHalfRounding(t *testing.T) {
	cases := []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00},                 // rounds up to Inf
		{float32(math.Inf(-1)), 0xfc00}, // -Inf
		{1 + 1.0/2048, 0x3c00},          // tie, rounds to even (down)
		{1 + 3.0/2048, 0x3c02},          // tie, rounds to even (up)
		{5.960464477539063e-08, 0x0001}, // smallest subnormal
		{2.980232238769531e-08, 0x0000}, // half of it: tie to even (0)
		{4.470348358154297e-08, 0x0001}, // 0.75 of it rounds up
		{6.097555160522461e-05, 0x03ff}, // largest subnormal
		{float32(math.Copysign(0, -1)), 0x8000},
	}
	for _, c := range cases {
		if got := Float32ToHalf(c.f); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func TestShapeSize(t *testing.T) {
	cases := []struct {
		s    Shape
		want int
	}{
		{Shape{}, 1},
		{Shape{0, 5}, 0},
		{Shape{2, 3, 4}, 24},
		{Shape{-1, 3}, -1},
		{Shape{1 << 40, 1 << 40}, -1},
	}
	for _, c := range cases {
		if got := c.s.Size(); got != c.want {
			t.Errorf("%v.Size() = %d, want %d", c.s, got, c.want)
		}
	}
}

func TestNewAndCheck(t *testing.T) {
	if _, err := New(Float32, Shape{1 << 20, 1 << 20}); err == nil {
		t.Error("New accepted a 2^40-element tensor")
	}
	if _, err := New(String, Shape{2}); err == nil {
		t.Error("New accepted a string tensor")
	}
	x, err := New(Int8, Shape{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Check(); err != nil {
		t.Fatal(err)
	}
	bad := &Tensor{DType: Float32, Shape: Shape{2, 3}, Data: make([]float32, 5)}
	if bad.Check() == nil {
		t.Error("Check accepted 5 elements for shape [2 3]")
	}
	wrong := &Tensor{DType: Int64, Shape: Shape{1}, Data: make([]float32, 1)}
	if wrong.Check() == nil {
		t.Error("Check accepted float32 storage for int64")
	}
	c := x.Clone()
	c.I8()[0] = 7
	if x.I8()[0] != 0 {
		t.Error("Clone shares storage")
	}
}

func TestInt64s(t *testing.T) {
	v, err := (&Tensor{DType: Int32, Shape: Shape{3}, Data: []int32{1, -2, 3}}).Int64s()
	if err != nil || v[1] != -2 {
		t.Fatalf("Int64s = %v, %v", v, err)
	}
	if _, err := FromFloat32(Shape{1}, []float32{1}).Int64s(); err == nil {
		t.Error("Int64s accepted float32")
	}
}
