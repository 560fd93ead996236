package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Encode writes g as a serialized ONNX ModelProto. Nodes are written in
// topological order, initializers in value-ID order. Internal-domain
// ("goslim") nodes are refused: passes must lower them first.
func Encode(w io.Writer, g *ir.Graph) error {
	m, err := toModel(g)
	if err != nil {
		return err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("onnx: encode: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// WriteFile encodes g to path atomically: it writes a temporary file in the
// same folder and renames it over path only when the write succeeded.
func WriteFile(path string, g *ir.Graph) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := Encode(f, g); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func toModel(g *ir.Graph) (*onnxpb.ModelProto, error) {
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("onnx: encode: %w", err)
	}
	order, _ := g.Topo()
	gp := &onnxpb.GraphProto{}
	if g.Name != "" {
		gp.Name = proto.String(g.Name)
	}
	if g.GraphDoc != "" {
		gp.DocString = proto.String(g.GraphDoc)
	}
	written := make([]bool, len(g.Values))
	for id := range g.Values {
		v := &g.Values[id]
		if v.Const == nil {
			continue
		}
		tp, err := tensorToProto(v.Name, v.Const)
		if err != nil {
			return nil, err
		}
		if v.Doc != "" && !g.IsInput(ir.ValueID(id)) {
			tp.DocString = proto.String(v.Doc)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	for _, id := range g.Inputs {
		vi := valueInfo(&g.Values[id])
		if v := &g.Values[id]; v.Const != nil {
			vi.Type = typeProtoFromTensor(*v)
			if v.Doc != "" {
				// An initializer listed as an input keeps its doc string on
				// the input (Decode reads it from there).
				vi.DocString = proto.String(v.Doc)
			}
		}
		gp.Input = append(gp.Input, vi)
		written[id] = true
	}
	for _, ni := range order {
		n := &g.Nodes[ni]
		if n.Domain == "goslim" {
			return nil, fmt.Errorf("onnx: node %s is internal to goslim and cannot be exported; lower it first", n.Label())
		}
		np := &onnxpb.NodeProto{OpType: proto.String(n.Op)}
		if n.Name != "" {
			np.Name = proto.String(n.Name)
		}
		if n.Domain != "" {
			np.Domain = proto.String(n.Domain)
		}
		if n.Doc != "" {
			np.DocString = proto.String(n.Doc)
		}
		for _, in := range n.Inputs {
			np.Input = append(np.Input, valueName(g, in))
		}
		for _, out := range n.Outputs {
			np.Output = append(np.Output, valueName(g, out))
		}
		for _, a := range n.Attrs {
			ap, err := attrToProto(a)
			if err != nil {
				return nil, fmt.Errorf("onnx: node %s: %w", n.Label(), err)
			}
			np.Attribute = append(np.Attribute, ap)
		}
		gp.Node = append(gp.Node, np)
	}
	for _, id := range g.Outputs {
		gp.Output = append(gp.Output, valueInfo(&g.Values[id]))
		written[id] = true
	}
	for id := range g.Values {
		v := &g.Values[id]
		if written[id] || v.Const != nil || (v.Type.DType == 0 && !v.Type.Ranked) {
			continue
		}
		gp.ValueInfo = append(gp.ValueInfo, valueInfo(v))
	}
	m := &onnxpb.ModelProto{Graph: gp, IrVersion: proto.Int64(g.IRVersion)}
	if g.ProducerName != "" {
		m.ProducerName = proto.String(g.ProducerName)
	}
	if g.ProducerVersion != "" {
		m.ProducerVersion = proto.String(g.ProducerVersion)
	}
	if g.Domain != "" {
		m.Domain = proto.String(g.Domain)
	}
	if g.ModelVersion != 0 {
		m.ModelVersion = proto.Int64(g.ModelVersion)
	}
	if g.Doc != "" {
		m.DocString = proto.String(g.Doc)
	}
	domains := make([]string, 0, len(g.Opsets))
	for d := range g.Opsets {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(g.Opsets[d])})
	}
	keys := make([]string, 0, len(g.Meta))
	for k := range g.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(g.Meta[k])})
	}
	return m, nil
}

func valueName(g *ir.Graph, id ir.ValueID) string {
	if id == ir.NoValue {
		return ""
	}
	return g.Values[id].Name
}

func typeProtoFromTensor(v ir.Value) *onnxpb.TypeProto {
	return typeProto(ir.Type{DType: v.Const.DType, Ranked: true, Shape: ir.ShapeDims(v.Const.Shape)})
}

func valueInfo(v *ir.Value) *onnxpb.ValueInfoProto {
	vi := &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
	if v.Doc != "" && v.Const == nil {
		vi.DocString = proto.String(v.Doc)
	}
	if v.Type.DType != 0 || v.Type.Ranked {
		vi.Type = typeProto(v.Type)
	}
	return vi
}

func typeProto(t ir.Type) *onnxpb.TypeProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(t.DType))}
	if t.Ranked {
		sh := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
		for _, d := range t.Shape {
			dp := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.Size >= 0:
				dp.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
			case d.Param != "":
				dp.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			}
			sh.Dim = append(sh.Dim, dp)
		}
		tt.Shape = sh
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
}

func attrToProto(a ir.Attr) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name)}
	t := onnxpb.AttributeProto_AttributeType(a.Type)
	ap.Type = &t
	if a.RefAttrName != "" {
		ap.RefAttrName = proto.String(a.RefAttrName)
	}
	if a.Doc != "" {
		ap.DocString = proto.String(a.Doc)
	}
	switch a.Type {
	case ir.AttrFloat:
		ap.F = proto.Float32(a.Float)
	case ir.AttrInt:
		ap.I = proto.Int64(a.Int)
	case ir.AttrString:
		ap.S = []byte(a.String)
	case ir.AttrTensor:
		tp, err := tensorToProto("", a.Tensor)
		if err != nil {
			return nil, err
		}
		ap.T = tp
	case ir.AttrFloats:
		ap.Floats = a.Floats
	case ir.AttrInts:
		ap.Ints = a.Ints
	case ir.AttrStrings:
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	case ir.AttrTensors:
		for _, t := range a.Tensors {
			tp, err := tensorToProto("", t)
			if err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	case ir.AttrGraph:
		var gp onnxpb.GraphProto
		if err := proto.Unmarshal(a.Raw, &gp); err != nil {
			return nil, err
		}
		ap.G = &gp
	case ir.AttrGraphs:
		for _, raw := range a.RawList {
			var gp onnxpb.GraphProto
			if err := proto.Unmarshal(raw, &gp); err != nil {
				return nil, err
			}
			ap.Graphs = append(ap.Graphs, &gp)
		}
	default:
		return nil, fmt.Errorf("attribute %q has unsupported type %d", a.Name, a.Type)
	}
	return ap, nil
}
