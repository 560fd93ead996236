package onnx_test

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/onnx/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

// maxHostileAlloc bounds what decoding a small hostile input may allocate.
const maxHostileAlloc = 10 << 20

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// decodeGuarded decodes in, failing the test on a panic (Decode must not
// panic) or when decoding allocates more than limit bytes.
func decodeGuarded(t testing.TB, in []byte, limit uint64) error {
	t.Helper()
	var err error
	alloc := allocated(func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Decode panicked on %d bytes: %v", len(in), r)
			}
		}()
		_, err = onnx.Decode(bytes.NewReader(in))
	})
	if alloc > limit {
		t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(in), alloc, limit)
	}
	return err
}

func tensorType(dims ...int64) *onnxpb.TypeProto {
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dp := &onnxpb.TensorShapeProto_Dimension{}
		if d < 0 {
			dp.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		} else {
			dp.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		sh.Dim = append(sh.Dim, dp)
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
		ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: sh}}}
}

// baseModel is y = x + w with a float32 [2] initializer w: small and valid.
func baseModel() *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("g"),
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), Dims: []int64{2},
				DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: make([]byte, 8)}},
			Input: []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: tensorType(-1, 2)}},
			Node: []*onnxpb.NodeProto{{Name: proto.String("add"), OpType: proto.String("Add"),
				Input: []string{"x", "w"}, Output: []string{"y"}}},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y"), Type: tensorType(-1, 2)}},
		},
	}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBaseModelDecodes(t *testing.T) {
	if err := decodeGuarded(t, marshal(t, baseModel()), maxHostileAlloc); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeHostile feeds malformed and hostile models: each must fail with
// an error naming the culprit, without panicking or allocating much.
func TestDecodeHostile(t *testing.T) {
	f32 := proto.Int32(int32(onnxpb.TensorProto_FLOAT))
	w := func(m *onnxpb.ModelProto) *onnxpb.TensorProto { return m.Graph.Initializer[0] }
	constNode := func(m *onnxpb.ModelProto, tp *onnxpb.TensorProto) {
		at := onnxpb.AttributeProto_TENSOR
		m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: proto.String("c1"), OpType: proto.String("Constant"),
			Output: []string{"c"}, Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: &at, T: tp}}})
	}
	tests := []struct {
		name string
		edit func(m *onnxpb.ModelProto)
		want []string // substrings of the error
	}{
		{"dims 1<<40", func(m *onnxpb.ModelProto) { w(m).Dims = []int64{1 << 40} },
			[]string{`tensor "w"`, "exceed", "element limit"}},
		{"dims 1<<20 x 1<<20", func(m *onnxpb.ModelProto) { w(m).Dims = []int64{1 << 20, 1 << 20} },
			[]string{`tensor "w"`, "exceed"}},
		{"dims overflow int64", func(m *onnxpb.ModelProto) { w(m).Dims = []int64{1 << 40, 1 << 40, 1 << 40} },
			[]string{`tensor "w"`, "exceed"}},
		{"dims 1<<30 with 2 floats", func(m *onnxpb.ModelProto) { w(m).Dims = []int64{1 << 30} },
			[]string{`tensor "w"`, "want 1073741824 elements, data has 2"}},
		{"dims 1<<30 float_data", func(m *onnxpb.ModelProto) {
			w(m).Dims, w(m).RawData, w(m).FloatData = []int64{1 << 30}, nil, []float32{1}
		}, []string{`tensor "w"`, "data has 1"}},
		{"dims 1<<30 no data", func(m *onnxpb.ModelProto) { w(m).Dims, w(m).RawData = []int64{1 << 30}, nil },
			[]string{`tensor "w"`, "data has 0"}},
		{"negative dim", func(m *onnxpb.ModelProto) { w(m).Dims = []int64{-2} },
			[]string{`tensor "w"`, "negative dim -2"}},
		{"raw_data too long", func(m *onnxpb.ModelProto) { w(m).RawData = make([]byte, 12) },
			[]string{`tensor "w"`, "want 2 elements, data has 3"}},
		{"raw_data ragged", func(m *onnxpb.ModelProto) { w(m).RawData = make([]byte, 7) },
			[]string{`tensor "w"`, "raw_data of 7 bytes is not a multiple"}},
		{"string tensor", func(m *onnxpb.ModelProto) {
			w(m).DataType = proto.Int32(int32(onnxpb.TensorProto_STRING))
		}, []string{`tensor "w"`, "unsupported dtype string"}},
		{"unknown dtype", func(m *onnxpb.ModelProto) { w(m).DataType = proto.Int32(99) },
			[]string{`tensor "w"`, "unsupported dtype dtype(99)"}},
		{"external data", func(m *onnxpb.ModelProto) {
			loc := onnxpb.TensorProto_EXTERNAL
			w(m).DataLocation = &loc
			w(m).RawData = nil
			w(m).ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("weights.bin")}}
		}, []string{`tensor "w"`, `external file "weights.bin"`}},
		{"segmented", func(m *onnxpb.ModelProto) {
			w(m).Segment = &onnxpb.TensorProto_Segment{Begin: proto.Int64(0), End: proto.Int64(1)}
		}, []string{`tensor "w"`, "segmented"}},
		{"unnamed initializer", func(m *onnxpb.ModelProto) { w(m).Name = nil },
			[]string{"initializer without a name"}},
		{"hostile Constant value", func(m *onnxpb.ModelProto) {
			constNode(m, &onnxpb.TensorProto{Name: proto.String("big"), Dims: []int64{1 << 20, 1 << 20}, DataType: f32})
		}, []string{`node "c1" (Constant)`, `attribute "value"`, `tensor "big"`, "exceed"}},
		{"Constant value short of data", func(m *onnxpb.ModelProto) {
			constNode(m, &onnxpb.TensorProto{Dims: []int64{1 << 28}, DataType: f32, FloatData: []float32{1, 2}})
		}, []string{`node "c1" (Constant)`, "data has 2"}},
		{"undefined node input", func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input[1] = "nope" },
			[]string{`node "add" (Add)`, `input "nope" is not defined`}},
		{"duplicate initializer", func(m *onnxpb.ModelProto) {
			m.Graph.Initializer = append(m.Graph.Initializer, m.Graph.Initializer[0])
		}, []string{`value "w" is defined more than once`}},
		{"node output shadows input", func(m *onnxpb.ModelProto) { m.Graph.Node[0].Output[0] = "x" },
			[]string{`node "add" (Add)`, `value "x" is defined more than once`}},
		{"two nodes, one output", func(m *onnxpb.ModelProto) {
			m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: proto.String("add2"), OpType: proto.String("Add"),
				Input: []string{"x", "x"}, Output: []string{"y"}})
		}, []string{`node "add2" (Add)`, `value "y" is defined more than once`}},
		{"input listed twice", func(m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, m.Graph.Input[0])
		}, []string{`graph input "x" listed twice`}},
		{"initializer input listed twice", func(m *onnxpb.ModelProto) {
			wi := &onnxpb.ValueInfoProto{Name: proto.String("w"), Type: tensorType(2)}
			m.Graph.Input = append(m.Graph.Input, wi, wi)
		}, []string{`graph input "w" listed twice`}},
		{"unknown attribute type", func(m *onnxpb.ModelProto) {
			at := onnxpb.AttributeProto_AttributeType(99)
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("alpha"), Type: &at}}
		}, []string{`node "add" (Add)`, `attribute "alpha" has unsupported type 99`}},
		{"sparse tensor attribute", func(m *onnxpb.ModelProto) {
			at := onnxpb.AttributeProto_SPARSE_TENSOR
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("sp"), Type: &at}}
		}, []string{`node "add" (Add)`, `attribute "sp" has unsupported type`}},
		{"sequence input", func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{
				SequenceType: &onnxpb.TypeProto_Sequence{ElemType: tensorType(2)}}}
		}, []string{`value "x" has sequence type`}},
		{"optional input", func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_OptionalType{
				OptionalType: &onnxpb.TypeProto_Optional{ElemType: tensorType(2)}}}
		}, []string{`value "x" has optional type`}},
		{"map output", func(m *onnxpb.ModelProto) {
			m.Graph.Output[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_MapType{
				MapType: &onnxpb.TypeProto_Map{KeyType: proto.Int32(7), ValueType: tensorType(2)}}}
		}, []string{`value "y" has map type`}},
		{"no op_type", func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = nil },
			[]string{`node 0 ("add") has no op_type`}},
		{"domain not imported", func(m *onnxpb.ModelProto) { m.Graph.Node[0].Domain = proto.String("com.example") },
			[]string{`node "add" (com.example.Add)`, `domain "com.example"`}},
		{"undefined output", func(m *onnxpb.ModelProto) { m.Graph.Output[0].Name = proto.String("z") },
			[]string{`graph output "z" is not defined`}},
		{"cycle", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Input[0] = "v"
			m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: proto.String("relu"), OpType: proto.String("Relu"),
				Input: []string{"y"}, Output: []string{"v"}})
		}, []string{"cycle through node"}},
		{"no graph", func(m *onnxpb.ModelProto) { m.Graph = nil }, []string{"model has no graph"}},
		{"no opset_import", func(m *onnxpb.ModelProto) { m.OpsetImport = nil },
			[]string{"IR version 8 has no opset_import"}},
		{"local functions", func(m *onnxpb.ModelProto) {
			m.Functions = []*onnxpb.FunctionProto{{Name: proto.String("myfn")}}
		}, []string{`local functions (first "myfn")`}},
		{"sparse initializer", func(m *onnxpb.ModelProto) {
			m.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{Values: &onnxpb.TensorProto{Name: proto.String("sp")}}}
		}, []string{`sparse initializer "sp"`}},
		{"training info", func(m *onnxpb.ModelProto) { m.TrainingInfo = []*onnxpb.TrainingInfoProto{{}} },
			[]string{"training info"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := baseModel()
			tc.edit(m)
			in := marshal(t, m)
			err := decodeGuarded(t, in, maxHostileAlloc)
			if err == nil {
				t.Fatalf("Decode accepted the %d-byte model", len(in))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if len(in) > 400 {
				t.Errorf("hostile input is %d bytes; keep these small", len(in))
			}
		})
	}
}

// TestReadTensorHostile checks ReadTensor's size guards on bare
// TensorProtos (the .pb files of test data sets).
func TestReadTensorHostile(t *testing.T) {
	f32 := proto.Int32(int32(onnxpb.TensorProto_FLOAT))
	tests := []struct {
		name string
		tp   *onnxpb.TensorProto
		want string
	}{
		{"dims 1<<40", &onnxpb.TensorProto{Name: proto.String("t"), Dims: []int64{1 << 40}, DataType: f32, RawData: make([]byte, 4)}, "exceed"},
		{"dims 1<<30 tiny", &onnxpb.TensorProto{Name: proto.String("t"), Dims: []int64{1 << 30}, DataType: f32, RawData: make([]byte, 4)}, "data has 1"},
		{"negative", &onnxpb.TensorProto{Name: proto.String("t"), Dims: []int64{-1}, DataType: f32}, "negative dim"},
	}
	for _, tc := range tests {
		in := marshal(t, tc.tp)
		var err error
		alloc := allocated(func() { _, _, err = onnx.ReadTensor(bytes.NewReader(in)) })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `tensor "t"`) {
			t.Errorf("%s: error %v, want it to name tensor \"t\" and mention %q", tc.name, err, tc.want)
		}
		if alloc > maxHostileAlloc {
			t.Errorf("%s: allocated %d bytes", tc.name, alloc)
		}
	}
}

// TestDecodeTruncated decodes every strict prefix of small models: each
// must fail (a model file cut short is never silently accepted).
func TestDecodeTruncated(t *testing.T) {
	files := []string{"testdata/add.onnx", "testdata/conv_with_strides_padding.onnx", "testdata/if.onnx",
		"testdata/PReLU_2d_multiparam.onnx"}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeGuarded(t, raw, maxHostileAlloc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for n := 0; n < len(raw); n++ {
			if err := decodeGuarded(t, raw[:n], maxHostileAlloc); err == nil {
				t.Errorf("%s: the %d-byte prefix (of %d) decoded without error", file, n, len(raw))
			}
		}
	}
	// Our own encoding too: Encode writes opset_import last (before
	// metadata, which baseModel lacks).
	var buf bytes.Buffer
	g, err := onnx.Decode(bytes.NewReader(marshal(t, baseModel())))
	if err != nil {
		t.Fatal(err)
	}
	if err := onnx.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	for n := 0; n < len(raw); n++ {
		if err := decodeGuarded(t, raw[:n], maxHostileAlloc); err == nil {
			t.Errorf("encoded base model: the %d-byte prefix (of %d) decoded without error", n, len(raw))
		}
	}
}

// TestDecodeRandom feeds random bytes, and models with random bytes
// overwritten, to Decode: errors are fine, panics and big allocations not.
func TestDecodeRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		in := make([]byte, 1+rng.Intn(200))
		rng.Read(in)
		if err := decodeGuarded(t, in, maxHostileAlloc); err == nil {
			t.Errorf("random input %x decoded without error", in)
		}
	}
	seeds, _ := filepath.Glob("testdata/*.onnx")
	for _, file := range seeds {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			in := append([]byte(nil), raw...)
			for k := 0; k < 1+rng.Intn(4); k++ {
				in[rng.Intn(len(in))] = byte(rng.Intn(256))
			}
			decodeGuarded(t, in, maxHostileAlloc+64*uint64(len(in)))
		}
	}
}

// FuzzDecode checks that Decode never panics or allocates far beyond its
// input, and that whatever it accepts encodes and decodes again to a fixed
// point.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.onnx")
	for _, file := range seeds {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(marshal(f, baseModel()))
	f.Fuzz(func(t *testing.T, in []byte) {
		// A 1-byte varint can become an 8-byte int64 twice over (the proto
		// message and the tensor); allow that on top of a fixed budget.
		if err := decodeGuarded(t, in, maxHostileAlloc+64*uint64(len(in))); err != nil {
			return
		}
		g, err := onnx.Decode(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("second Decode failed: %v", err)
		}
		var buf bytes.Buffer
		if err := onnx.Encode(&buf, g); err != nil {
			for _, n := range g.Nodes {
				if n.Domain == "goslim" {
					return // internal ops are refused by design
				}
			}
			t.Fatalf("Encode of a decoded model: %v", err)
		}
		g1, err := onnx.Decode(&buf)
		if err != nil {
			t.Fatalf("Decode(Encode(g)): %v", err)
		}
		// Decode numbers node outputs in file order and Encode writes
		// topological order, so the first round trip may renumber; from
		// then on it must be exact.
		var buf2 bytes.Buffer
		if err := onnx.Encode(&buf2, g1); err != nil {
			t.Fatal(err)
		}
		g2, err := onnx.Decode(&buf2)
		if err != nil {
			t.Fatal(err)
		}
		if d := graphDiff(g1, g2); d != "" {
			t.Fatalf("round trip differs at %s", d)
		}
	})
}
