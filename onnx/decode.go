// Package onnx converts between ONNX model files and ir.Graph.
//
// Decode keeps what a faithful round trip needs: node domains, per-domain
// opset imports, ir_version, producer, model and graph doc strings and
// metadata_props. Value IDs are assigned in a canonical order (initializers,
// then the remaining graph inputs, then node outputs in node order), so
// Decode(Encode(g)) reproduces g exactly for any g that Decode made.
package onnx

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx/internal/onnxpb"
	"github.com/goslim/goslim/tensor"
	"google.golang.org/protobuf/proto"
)

// Decode reads a serialized ONNX ModelProto.
func Decode(r io.Reader) (*ir.Graph, error) {
	b, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("onnx: empty input")
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("onnx: not a valid ONNX model (protobuf: %w)", err)
	}
	return fromModel(&m)
}

// ReadFile decodes the model file at path; errors name the file.
func ReadFile(path string) (*ir.Graph, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

func fromModel(m *onnxpb.ModelProto) (*ir.Graph, error) {
	gp := m.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("onnx: model has no graph")
	}
	if len(m.GetFunctions()) > 0 {
		return nil, fmt.Errorf("onnx: model defines %d local functions (first %q); goslim does not support model-local functions", len(m.GetFunctions()), m.GetFunctions()[0].GetName())
	}
	if len(m.GetTrainingInfo()) > 0 {
		return nil, fmt.Errorf("onnx: model carries ONNX training info; goslim does not support it")
	}
	g := &ir.Graph{
		Name:            gp.GetName(),
		Opsets:          map[string]int64{},
		IRVersion:       m.GetIrVersion(),
		ProducerName:    m.GetProducerName(),
		ProducerVersion: m.GetProducerVersion(),
		Domain:          m.GetDomain(),
		ModelVersion:    m.GetModelVersion(),
		Doc:             m.GetDocString(),
		GraphDoc:        gp.GetDocString(),
	}
	for _, os := range m.GetOpsetImport() {
		d := os.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		g.Opsets[d] = os.GetVersion()
	}
	if len(m.GetOpsetImport()) == 0 {
		// IR version 2 models may omit it; ONNX then means opset 1. From IR
		// version 3 on the ONNX checker requires it: a model without one is
		// most likely truncated.
		if m.GetIrVersion() >= 3 {
			return nil, fmt.Errorf("onnx: model with IR version %d has no opset_import (truncated file?)", m.GetIrVersion())
		}
		g.Opsets[""] = 1
	}
	if md := m.GetMetadataProps(); len(md) > 0 {
		g.Meta = make(map[string]string, len(md))
		for _, kv := range md {
			g.Meta[kv.GetKey()] = kv.GetValue()
		}
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, fmt.Errorf("onnx: graph has sparse initializer %q; not supported", gp.GetSparseInitializer()[0].GetValues().GetName())
	}

	ids := map[string]ir.ValueID{}
	define := func(name string, v ir.Value) (ir.ValueID, error) {
		if _, dup := ids[name]; dup {
			return 0, fmt.Errorf("onnx: value %q is defined more than once", name)
		}
		v.Name = name
		id := g.AddValue(v)
		ids[name] = id
		return id, nil
	}
	for _, init := range gp.GetInitializer() {
		if init.GetName() == "" {
			return nil, fmt.Errorf("onnx: initializer without a name")
		}
		t, err := tensorFromProto(init)
		if err != nil {
			return nil, err
		}
		if _, err := define(init.GetName(), ir.Value{Const: t, Doc: init.GetDocString(),
			Type: ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}}); err != nil {
			return nil, err
		}
	}
	for _, in := range gp.GetInput() {
		typ, err := typeFromProto(in)
		if err != nil {
			return nil, err
		}
		if id, ok := ids[in.GetName()]; ok {
			// Old-IR style: an initializer listed as an input, a default value
			// a feed may override.
			if g.IsInput(id) {
				return nil, fmt.Errorf("onnx: graph input %q listed twice", in.GetName())
			}
			if in.GetDocString() != "" {
				g.Values[id].Doc = in.GetDocString()
			}
			g.Inputs = append(g.Inputs, id)
			continue
		}
		id, err := define(in.GetName(), ir.Value{Type: typ, Doc: in.GetDocString()})
		if err != nil {
			return nil, err
		}
		g.Inputs = append(g.Inputs, id)
	}
	for i, np := range gp.GetNode() {
		n := ir.Node{Op: np.GetOpType(), Domain: np.GetDomain(), Name: np.GetName(), Doc: np.GetDocString()}
		if n.Domain == "ai.onnx" {
			n.Domain = ""
		}
		if n.Op == "" {
			return nil, fmt.Errorf("onnx: node %d (%q) has no op_type", i, n.Name)
		}
		if _, ok := g.Opsets[n.Domain]; !ok {
			return nil, fmt.Errorf("onnx: node %s uses domain %q, which the model does not import", n.Label(), n.Domain)
		}
		for _, ap := range np.GetAttribute() {
			a, err := attrFromProto(ap)
			if err != nil {
				return nil, fmt.Errorf("onnx: node %s: %w", n.Label(), err)
			}
			n.Attrs = append(n.Attrs, a)
		}
		for _, on := range np.GetOutput() {
			if on == "" {
				n.Outputs = append(n.Outputs, ir.NoValue)
				continue
			}
			id, err := define(on, ir.Value{})
			if err != nil {
				return nil, fmt.Errorf("onnx: node %s: %w", n.Label(), err)
			}
			n.Outputs = append(n.Outputs, id)
		}
		g.Nodes = append(g.Nodes, n)
	}
	// Inputs are resolved after all outputs are known: ONNX requires
	// topological order, but some exporters break it and Topo repairs that.
	for i, np := range gp.GetNode() {
		n := &g.Nodes[i]
		for _, in := range np.GetInput() {
			if in == "" {
				n.Inputs = append(n.Inputs, ir.NoValue)
				continue
			}
			id, ok := ids[in]
			if !ok {
				return nil, fmt.Errorf("onnx: node %s: input %q is not defined in the graph", n.Label(), in)
			}
			n.Inputs = append(n.Inputs, id)
		}
	}
	for _, vi := range gp.GetValueInfo() {
		id, ok := ids[vi.GetName()]
		if !ok || g.Values[id].Const != nil {
			continue
		}
		typ, err := typeFromProto(vi)
		if err != nil {
			continue // value_info is only a hint
		}
		g.Values[id].Type = typ
		g.Values[id].Doc = vi.GetDocString()
	}
	for _, out := range gp.GetOutput() {
		id, ok := ids[out.GetName()]
		if !ok {
			return nil, fmt.Errorf("onnx: graph output %q is not defined", out.GetName())
		}
		if typ, err := typeFromProto(out); err == nil && g.Values[id].Const == nil {
			g.Values[id].Type = typ
			if d := out.GetDocString(); d != "" {
				g.Values[id].Doc = d
			}
		} else if err != nil {
			return nil, err
		}
		g.Outputs = append(g.Outputs, id)
	}
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return g, nil
}

func typeFromProto(vi *onnxpb.ValueInfoProto) (ir.Type, error) {
	tp := vi.GetType()
	if tp == nil {
		return ir.Type{}, nil
	}
	tt := tp.GetTensorType()
	if tt == nil {
		kind := "non-tensor"
		switch {
		case tp.GetSequenceType() != nil:
			kind = "sequence"
		case tp.GetMapType() != nil:
			kind = "map"
		case tp.GetOptionalType() != nil:
			kind = "optional"
		case tp.GetSparseTensorType() != nil:
			kind = "sparse tensor"
		}
		return ir.Type{}, fmt.Errorf("onnx: value %q has %s type; goslim supports tensors only", vi.GetName(), kind)
	}
	t := ir.Type{DType: tensor.DType(tt.GetElemType())}
	if sh := tt.GetShape(); sh != nil {
		t.Ranked = true
		t.Shape = make([]ir.Dim, len(sh.GetDim()))
		for i, d := range sh.GetDim() {
			switch {
			case d.GetDimParam() != "":
				t.Shape[i] = ir.Dim{Size: -1, Param: d.GetDimParam()}
			case d.Value != nil && d.GetDimValue() >= 0:
				if _, ok := d.Value.(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
					t.Shape[i] = ir.Dim{Size: d.GetDimValue()}
				} else {
					t.Shape[i] = ir.Dim{Size: -1}
				}
			default:
				t.Shape[i] = ir.Dim{Size: -1}
			}
		}
	}
	return t, nil
}

func attrFromProto(ap *onnxpb.AttributeProto) (ir.Attr, error) {
	a := ir.Attr{Name: ap.GetName(), Type: ir.AttrType(ap.GetType()), RefAttrName: ap.GetRefAttrName(), Doc: ap.GetDocString()}
	if a.Type == ir.AttrUndefined {
		// Very old models omit the type; infer it from the field that is set.
		switch {
		case ap.F != nil:
			a.Type = ir.AttrFloat
		case ap.I != nil:
			a.Type = ir.AttrInt
		case ap.S != nil:
			a.Type = ir.AttrString
		case ap.T != nil:
			a.Type = ir.AttrTensor
		case ap.G != nil:
			a.Type = ir.AttrGraph
		case len(ap.Floats) > 0:
			a.Type = ir.AttrFloats
		case len(ap.Ints) > 0:
			a.Type = ir.AttrInts
		case len(ap.Strings) > 0:
			a.Type = ir.AttrStrings
		case len(ap.Tensors) > 0:
			a.Type = ir.AttrTensors
		case len(ap.Graphs) > 0:
			a.Type = ir.AttrGraphs
		}
	}
	switch a.Type {
	case ir.AttrFloat:
		a.Float = ap.GetF()
	case ir.AttrInt:
		a.Int = ap.GetI()
	case ir.AttrString:
		a.String = string(ap.GetS())
	case ir.AttrTensor:
		t, err := tensorFromProto(ap.GetT())
		if err != nil {
			return a, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		a.Tensor = t
	case ir.AttrFloats:
		a.Floats = append([]float32{}, ap.GetFloats()...)
	case ir.AttrInts:
		a.Ints = append([]int64{}, ap.GetInts()...)
	case ir.AttrStrings:
		a.Strings = make([]string, len(ap.GetStrings()))
		for i, s := range ap.GetStrings() {
			a.Strings[i] = string(s)
		}
	case ir.AttrTensors:
		for _, tp := range ap.GetTensors() {
			t, err := tensorFromProto(tp)
			if err != nil {
				return a, fmt.Errorf("attribute %q: %w", a.Name, err)
			}
			a.Tensors = append(a.Tensors, t)
		}
	case ir.AttrGraph:
		b, err := proto.Marshal(ap.GetG())
		if err != nil {
			return a, err
		}
		a.Raw = b
	case ir.AttrGraphs:
		for _, gp := range ap.GetGraphs() {
			b, err := proto.Marshal(gp)
			if err != nil {
				return a, err
			}
			a.RawList = append(a.RawList, b)
		}
	default:
		return a, fmt.Errorf("attribute %q has unsupported type %d", a.Name, a.Type)
	}
	return a, nil
}
