package onnx_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/onnx/internal/onnxpb"
	"github.com/goslim/goslim/tensor"
	"google.golang.org/protobuf/proto"
)

// testDataDir is Debian's libonnx-testdata (ONNX's backend test models).
const testDataDir = "/usr/share/libonnx-testdata/data"

var testSuites = []string{"node", "pytorch-converted", "pytorch-operator", "simple"}

func requireTestData(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(testDataDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX backend test data missing at %s (Debian package libonnx-testdata)", testDataDir)
		}
		t.Skipf("ONNX backend test data missing at %s: install Debian package libonnx-testdata", testDataDir)
	}
}

// graphDiff returns "" when a and b are deeply equal, else the path of the
// first difference. It is reflect.DeepEqual except that NaN equals NaN (ONNX
// test models carry NaN constants).
func graphDiff(a, b *ir.Graph) string {
	return diffValues("g", reflect.ValueOf(a), reflect.ValueOf(b))
}

func diffValues(path string, a, b reflect.Value) string {
	if a.IsValid() != b.IsValid() {
		return path + ": one side is missing"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": nil vs non-nil"
			}
			return ""
		}
		return diffValues(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := diffValues(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return path + ": nil vs empty slice"
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d vs %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := diffValues(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return path + ": nil vs empty map"
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d vs %d entries", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := diffValues(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv); d != "" {
				return d
			}
		}
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return fmt.Sprintf("%s: %v vs %v", path, x, y)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if a.Int() != b.Int() {
			return fmt.Sprintf("%s: %v vs %v", path, a.Int(), b.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if a.Uint() != b.Uint() {
			return fmt.Sprintf("%s: %v vs %v", path, a.Uint(), b.Uint())
		}
	case reflect.String:
		if a.String() != b.String() {
			return fmt.Sprintf("%s: %q vs %q", path, a.String(), b.String())
		}
	case reflect.Bool:
		if a.Bool() != b.Bool() {
			return fmt.Sprintf("%s: %v vs %v", path, a.Bool(), b.Bool())
		}
	default:
		return fmt.Sprintf("%s: cannot compare kind %v", path, a.Kind())
	}
	return ""
}

// roundTrip encodes g and decodes the result.
func roundTrip(t *testing.T, g *ir.Graph) (*ir.Graph, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := onnx.Encode(&buf, g); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	b := append([]byte(nil), buf.Bytes()...)
	g2, err := onnx.Decode(&buf)
	if err != nil {
		t.Fatalf("Decode(Encode(g)): %v", err)
	}
	return g2, b
}

// checkRoundTrip decodes a model file's bytes, checks that Decode -> Encode
// -> Decode gives the same graph and that Encode is then a fixed point, and
// compares what the re-encoded model says with the original proto.
func checkRoundTrip(t *testing.T, raw []byte) {
	t.Helper()
	g, err := onnx.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	g2, enc := roundTrip(t, g)
	if d := graphDiff(g, g2); d != "" {
		t.Fatalf("Decode(Encode(g)) differs from g at %s", d)
	}
	_, enc2 := roundTrip(t, g2)
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("Encode is not a fixed point: %d vs %d bytes", len(enc), len(enc2))
	}
	var orig, again onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &orig); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(enc, &again); err != nil {
		t.Fatal(err)
	}
	f1, f2 := factsOf(t, &orig), factsOf(t, &again)
	if d := diffValues("model", reflect.ValueOf(f1), reflect.ValueOf(f2)); d != "" {
		t.Fatalf("the re-encoded model differs from the file at %s", d)
	}
}

// modelFacts is what a faithful round trip must keep of a ModelProto,
// normalized where ONNX allows two spellings ("ai.onnx" and "" domains,
// float_data and raw_data tensors, attribute types left undefined, node
// order that is not topological).
type modelFacts struct {
	IRVersion                          int64
	Producer, ProducerVersion, Domain  string
	ModelVersion                       int64
	Doc, GraphName, GraphDoc           string
	Opsets                             map[string]int64
	Meta                               map[string]string
	Inputs, Outputs                    []string // name and type (initializer inputs: name only)
	ValueInfo                          map[string]string
	Inits                              map[string]*tensor.Tensor
	Nodes                              []string
	AttrTensors                        map[string]*tensor.Tensor
	AttrGraphs                         map[string]string
	NodeCount, InitCount, AttrCountAll int
}

func factsOf(t *testing.T, m *onnxpb.ModelProto) modelFacts {
	t.Helper()
	g := m.GetGraph()
	f := modelFacts{
		IRVersion: m.GetIrVersion(), Producer: m.GetProducerName(), ProducerVersion: m.GetProducerVersion(),
		Domain: m.GetDomain(), ModelVersion: m.GetModelVersion(), Doc: m.GetDocString(),
		GraphName: g.GetName(), GraphDoc: g.GetDocString(),
		Opsets: map[string]int64{}, Meta: map[string]string{}, ValueInfo: map[string]string{},
		Inits: map[string]*tensor.Tensor{}, AttrTensors: map[string]*tensor.Tensor{}, AttrGraphs: map[string]string{},
		NodeCount: len(g.GetNode()), InitCount: len(g.GetInitializer()),
	}
	for _, o := range m.GetOpsetImport() {
		f.Opsets[normDomain(o.GetDomain())] = o.GetVersion()
	}
	for _, kv := range m.GetMetadataProps() {
		f.Meta[kv.GetKey()] = kv.GetValue()
	}
	isInit := map[string]bool{}
	for _, tp := range g.GetInitializer() {
		isInit[tp.GetName()] = true
		f.Inits[tp.GetName()] = protoTensor(t, tp)
	}
	for _, vi := range g.GetInput() {
		if isInit[vi.GetName()] {
			f.Inputs = append(f.Inputs, vi.GetName())
		} else {
			f.Inputs = append(f.Inputs, vi.GetName()+":"+typeString(vi.GetType()))
		}
	}
	isOut := map[string]bool{}
	for _, vi := range g.GetOutput() {
		isOut[vi.GetName()] = true
		f.Outputs = append(f.Outputs, vi.GetName()+":"+typeString(vi.GetType()))
	}
	nodeOut := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			nodeOut[o] = true
		}
	}
	for _, vi := range g.GetValueInfo() {
		if nodeOut[vi.GetName()] && !isOut[vi.GetName()] && vi.GetType().GetTensorType() != nil {
			f.ValueInfo[vi.GetName()] = typeString(vi.GetType())
		}
	}
	for i, n := range g.GetNode() {
		var attrs []string
		for _, a := range n.GetAttribute() {
			f.AttrCountAll++
			key := fmt.Sprintf("%s/%v/%s", n.GetName(), n.GetOutput(), a.GetName())
			switch {
			case a.GetT() != nil:
				f.AttrTensors[key] = protoTensor(t, a.GetT())
			case a.GetG() != nil:
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a.GetG())
				if err != nil {
					t.Fatal(err)
				}
				f.AttrGraphs[key] = string(b)
			}
			for j, sub := range a.GetGraphs() {
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(sub)
				if err != nil {
					t.Fatal(err)
				}
				f.AttrGraphs[fmt.Sprintf("%s[%d]", key, j)] = string(b)
			}
			attrs = append(attrs, fmt.Sprintf("%s=%v|%v|%q|%v|%v|%q|%d|%q", a.GetName(), a.GetF(), a.GetI(), a.GetS(),
				a.GetFloats(), a.GetInts(), a.GetStrings(), len(a.GetTensors()), a.GetDocString()))
		}
		_ = i
		f.Nodes = append(f.Nodes, fmt.Sprintf("%s|%s|%s|%q|%q|%q|%s", n.GetOpType(), normDomain(n.GetDomain()),
			n.GetName(), n.GetInput(), n.GetOutput(), n.GetDocString(), strings.Join(attrs, ",")))
	}
	sort.Strings(f.Nodes) // Encode writes nodes in topological order
	return f
}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// protoTensor decodes a TensorProto through ReadTensor, so float_data and
// raw_data spellings of the same tensor compare equal.
func protoTensor(t *testing.T, tp *onnxpb.TensorProto) *tensor.Tensor {
	t.Helper()
	b, err := proto.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := onnx.ReadTensor(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("tensor %q: %v", tp.GetName(), err)
	}
	return x
}

func typeString(tp *onnxpb.TypeProto) string {
	tt := tp.GetTensorType()
	if tt == nil {
		return "?"
	}
	s := tensor.DType(tt.GetElemType()).String()
	if tt.GetShape() == nil {
		return s + "[*]"
	}
	var dims []string
	for _, d := range tt.GetShape().GetDim() {
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if v.DimValue >= 0 {
				dims = append(dims, fmt.Sprint(v.DimValue))
			} else {
				dims = append(dims, "?")
			}
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			dims = append(dims, v.DimParam)
		default:
			dims = append(dims, "?")
		}
	}
	return s + "[" + strings.Join(dims, ",") + "]"
}

// TestRoundTripBackendModels round-trips every model of ONNX's backend
// tests. Models that goslim refuses by design (sequence and optional
// values) must fail with an error saying so.
func TestRoundTripBackendModels(t *testing.T) {
	requireTestData(t)
	ok, refused := 0, 0
	for _, suite := range testSuites {
		files, err := filepath.Glob(filepath.Join(testDataDir, suite, "*", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			name := suite + "/" + filepath.Base(filepath.Dir(file))
			if _, err := onnx.Decode(bytes.NewReader(raw)); err != nil {
				if msg := err.Error(); strings.Contains(msg, "sequence type") || strings.Contains(msg, "optional type") {
					refused++
					continue
				}
				t.Errorf("%s: %v", name, err)
				continue
			}
			t.Run(name, func(t *testing.T) { checkRoundTrip(t, raw) })
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no models found")
	}
	t.Logf("%d models round-tripped, %d refused (sequence/optional values)", ok, refused)
}

// TestRoundTripTestdata round-trips the small models kept in testdata, so
// the check runs even where the backend test data is not installed.
func TestRoundTripTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.onnx")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata models: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(file), func(t *testing.T) { checkRoundTrip(t, raw) })
	}
}

// richGraph builds a graph that uses every model-level field and several
// domains, doc strings everywhere, and all attribute kinds.
func richGraph() *ir.Graph {
	b := ir.NewBuilder("rich", 17)
	g := b.G
	g.Opsets["com.microsoft"] = 1
	g.Opsets["ai.onnx.ml"] = 3
	g.IRVersion = 8
	g.ProducerName, g.ProducerVersion = "goslim-test", "0.1"
	g.Domain, g.ModelVersion = "org.goslim.test", 42
	g.Doc, g.GraphDoc = "model doc", "graph doc"
	g.Meta = map[string]string{"preprocessing": "scale=1/255", "classes": "cat,dog", "": "empty key"}
	x := b.Input("x", tensor.Float32, -1, 3)
	g.Values[x].Type.Shape = append(g.Values[x].Type.Shape, ir.Dim{Size: -1}) // unnamed unknown dim
	g.Values[x].Type.Shape[1] = ir.Dim{Size: -1, Param: "C"}
	g.Values[x].Doc = "input doc"
	w := b.Param("w", tensor.FromFloat32(tensor.Shape{3}, []float32{1, float32(math.NaN()), -2}))
	g.Values[w].Doc = "weight doc"
	h := b.Op("Mul", "mul", []ir.ValueID{x, w},
		ir.Attr{Name: "f", Type: ir.AttrFloat, Float: 0.5, Doc: "attr doc"},
		ir.Attr{Name: "i", Type: ir.AttrInt, Int: -7},
		ir.Attr{Name: "s", Type: ir.AttrString, String: "text"},
		ir.Attr{Name: "fs", Type: ir.AttrFloats, Floats: []float32{1, 2}},
		ir.Attr{Name: "is", Type: ir.AttrInts, Ints: []int64{3, 4}},
		ir.Attr{Name: "ss", Type: ir.AttrStrings, Strings: []string{"a", ""}},
		ir.Attr{Name: "t", Type: ir.AttrTensor, Tensor: tensor.FromInt64(tensor.Shape{2}, []int64{5, 6})},
		ir.Attr{Name: "ts", Type: ir.AttrTensors, Tensors: []*tensor.Tensor{
			{DType: tensor.Bool, Shape: tensor.Shape{}, Data: []bool{true}},
			{DType: tensor.Float16, Shape: tensor.Shape{1}, Data: []uint16{0x3c00}}}},
	)
	g.Nodes[0].Doc = "node doc"
	g.Values[h].Type = ir.Type{DType: tensor.Float32, Ranked: true, Shape: []ir.Dim{{Size: -1, Param: "N"}, {Size: 3}, {Size: -1}}}
	g.Values[h].Doc = "intermediate doc"
	y := b.Op("Fancy", "ms", []ir.ValueID{h, ir.NoValue, w})
	g.Nodes[1].Domain = "com.microsoft"
	z := b.OpN("Split", "split", 2, []ir.ValueID{y})
	g.Nodes[2].Outputs[1] = ir.NoValue // an omitted optional output
	b.Output(z[0], w)
	g.Values[z[0]].Doc = "output doc"
	g.Values[z[0]].Type = ir.Type{DType: tensor.Float32} // unranked
	return g
}

// TestRoundTripMetadata checks that model metadata, opset imports with
// domains, ir_version, producer and all doc strings survive Encode and
// Decode, and that the encoded proto carries them where ONNX expects them.
func TestRoundTripMetadata(t *testing.T) {
	g := richGraph()
	// Decode numbers values canonically (initializers first), so a built
	// graph comes back renumbered once and is a fixed point from then on.
	g1, enc := roundTrip(t, g)
	if g1.String() != g.String() {
		t.Fatalf("round trip changed the graph:\n%v\nwant\n%v", g1, g)
	}
	g2, _ := roundTrip(t, g1)
	if d := graphDiff(g1, g2); d != "" {
		t.Fatalf("second round trip differs at %s", d)
	}
	for _, name := range []string{"x", "w", "mul_out", "split_out0"} {
		id, _ := g.ValueByName(name)
		id1, _ := g1.ValueByName(name)
		v, v1 := g.Values[id], g1.Values[id1]
		v.Trainable = false // ONNX has no such flag
		if d := diffValues(name, reflect.ValueOf(v), reflect.ValueOf(v1)); d != "" {
			t.Errorf("value changed: %s", d)
		}
	}
	for i := range g.Nodes {
		if d := diffValues("node", reflect.ValueOf(g.Nodes[i].Attrs), reflect.ValueOf(g1.Nodes[i].Attrs)); d != "" || g.Nodes[i].Doc != g1.Nodes[i].Doc || g.Nodes[i].Domain != g1.Nodes[i].Domain {
			t.Errorf("node %d changed: %s", i, d)
		}
	}
	for _, field := range []string{"Opsets", "Meta", "IRVersion", "ProducerName", "ProducerVersion", "Domain", "ModelVersion", "Doc", "GraphDoc", "Name"} {
		a, b := reflect.ValueOf(g).Elem().FieldByName(field), reflect.ValueOf(g1).Elem().FieldByName(field)
		if d := diffValues(field, a, b); d != "" {
			t.Errorf("graph field changed: %s", d)
		}
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	f := factsOf(t, &m)
	want := map[string]int64{"": 17, "com.microsoft": 1, "ai.onnx.ml": 3}
	if !reflect.DeepEqual(f.Opsets, want) {
		t.Errorf("opsets %v, want %v", f.Opsets, want)
	}
	if f.IRVersion != 8 || f.Producer != "goslim-test" || f.ProducerVersion != "0.1" || f.Domain != "org.goslim.test" ||
		f.ModelVersion != 42 || f.Doc != "model doc" || f.GraphDoc != "graph doc" || f.GraphName != "rich" {
		t.Errorf("model fields lost: %+v", f)
	}
	if !reflect.DeepEqual(f.Meta, g.Meta) {
		t.Errorf("metadata %v, want %v", f.Meta, g.Meta)
	}
	gp := m.GetGraph()
	docs := map[string]string{
		"input x":       gp.GetInput()[0].GetDocString(),
		"initializer w": gp.GetInitializer()[0].GetDocString(),
		"output":        gp.GetOutput()[0].GetDocString(),
		"value_info":    gp.GetValueInfo()[0].GetDocString(),
		"node":          gp.GetNode()[0].GetDocString(),
		"attribute":     gp.GetNode()[0].GetAttribute()[0].GetDocString(),
	}
	wantDocs := map[string]string{"input x": "input doc", "initializer w": "weight doc", "output": "output doc",
		"value_info": "intermediate doc", "node": "node doc", "attribute": "attr doc"}
	if !reflect.DeepEqual(docs, wantDocs) {
		t.Errorf("doc strings in the proto: %v, want %v", docs, wantDocs)
	}
	if in := typeString(gp.GetInput()[0].GetType()); in != "float32[N,C,?]" {
		t.Errorf("input type %s, want float32[N,C,?]", in)
	}
}

// oldIRGraph is y = x + b where the initializer b is also listed as a graph
// input, as IR version 3 exporters wrote weights. (infer/oldir_test.go runs
// such a model.)
func oldIRGraph() *ir.Graph {
	b := ir.NewBuilder("old_ir", 9)
	b.G.IRVersion = 3
	x := b.Input("x", tensor.Float32, -1, 2)
	bias := b.Const("b", tensor.FromFloat32(tensor.Shape{2}, []float32{10, 20}))
	b.G.Inputs = append(b.G.Inputs, bias)
	b.Output(b.Op("Add", "add", []ir.ValueID{x, bias}))
	return b.G
}

// TestRoundTripInitializerInputDoc checks the doc string of an initializer
// that is also a graph input (old IR): it lives on the input.
func TestRoundTripInitializerInputDoc(t *testing.T) {
	g := oldIRGraph()
	g.Values[g.Inputs[1]].Doc = "bias, overridable"
	g1, _ := roundTrip(t, g)
	if id, _ := g1.ValueByName("b"); g1.Values[id].Doc != "bias, overridable" || !g1.IsInput(id) {
		t.Fatalf("initializer input b: %+v", g1.Values[id])
	}
	g2, _ := roundTrip(t, g1)
	if d := graphDiff(g1, g2); d != "" {
		t.Fatalf("round trip differs at %s", d)
	}
}
