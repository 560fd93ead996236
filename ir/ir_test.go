package ir

import (
	"strings"
	"testing"

	"github.com/goslim/goslim/tensor"
)

func smallGraph() (*Graph, ValueID, ValueID) {
	b := NewBuilder("g", 13)
	x := b.Input("x", tensor.Float32, -1, 4)
	w := b.Param("w", tensor.FromFloat32(tensor.Shape{4}, []float32{1, 2, 3, 4}))
	a := b.Op("Add", "add", []ValueID{x, w})
	r := b.Op("Relu", "relu", []ValueID{a})
	b.Output(r)
	return b.G, a, r
}

func TestVerifyAndTopo(t *testing.T) {
	g, _, _ := smallGraph()
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	// Reverse the node order: Topo must still put add before relu.
	g.Nodes[0], g.Nodes[1] = g.Nodes[1], g.Nodes[0]
	order, err := g.Topo()
	if err != nil {
		t.Fatal(err)
	}
	if g.Nodes[order[0]].Op != "Add" || g.Nodes[order[1]].Op != "Relu" {
		t.Fatalf("topological order %v", order)
	}
}

func TestVerifyErrors(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(g *Graph, a, r ValueID)
		want   string
	}{
		{"undefined input", func(g *Graph, a, r ValueID) {
			g.Values = append(g.Values, Value{Name: "ghost"})
			g.Nodes[1].Inputs[0] = ValueID(len(g.Values) - 1)
		}, `input "ghost" is never defined`},
		{"defined twice", func(g *Graph, a, r ValueID) { g.Nodes[1].Outputs[0] = a }, "defined twice"},
		{"cycle", func(g *Graph, a, r ValueID) { g.Nodes[0].Inputs[0] = r }, "cycle"},
		{"id out of range", func(g *Graph, a, r ValueID) { g.Nodes[0].Inputs[1] = 99 }, "out of range"},
		{"dup name", func(g *Graph, a, r ValueID) { g.Values[r].Name = g.Values[a].Name }, "share the name"},
		{"bad output", func(g *Graph, a, r ValueID) { g.Outputs[0] = 42 }, "out of range"},
		{"no op", func(g *Graph, a, r ValueID) { g.Nodes[0].Op = "" }, "no op type"},
		{"bad const", func(g *Graph, a, r ValueID) {
			g.Values[1].Const = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{5}, Data: []float32{1}}
		}, `constant "w"`},
	}
	for _, c := range cases {
		g, a, r := smallGraph()
		c.break_(g, a, r)
		err := g.Verify()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Verify() = %v, want error containing %q", c.name, err, c.want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	g, a, _ := smallGraph()
	g.Meta = map[string]string{"k": "v"}
	c := g.Clone()
	c.Nodes[0].Inputs[0] = a
	c.Nodes[0].Attrs = c.Nodes[0].Attrs.Set(IntAttr("axis", 1))
	c.Values[0].Type.Shape[1] = Dim{Size: 9}
	c.Meta["k"] = "changed"
	c.Opsets[""] = 99
	if g.Nodes[0].Inputs[0] == a || g.Nodes[0].Attrs.Has("axis") || g.Values[0].Type.Shape[1].Size != 4 ||
		g.Meta["k"] != "v" || g.Opsets[""] != 13 {
		t.Fatal("changing the clone changed the original")
	}
	if c.Values[1].Const != g.Values[1].Const {
		t.Fatal("constants should be shared, not copied")
	}
}

func TestAttrs(t *testing.T) {
	a := Attrs{IntAttr("group", 2), FloatsAttr("scales", 1, 2), StringAttr("mode", "linear"), IntsAttr("pads", 1, 1)}
	if a.Int("group", 1) != 2 || a.Int("missing", 7) != 7 || a.Str("mode", "") != "linear" {
		t.Fatal("scalar getters")
	}
	if v, ok := a.Ints("pads"); !ok || len(v) != 2 {
		t.Fatal("Ints")
	}
	if _, ok := a.Ints("group"); ok {
		t.Fatal("Ints returned an int attribute")
	}
	if a.Float("group", 5) != 5 {
		t.Fatal("Float must ignore attributes of another type")
	}
	a = a.Without("mode")
	if a.Has("mode") || len(a) != 3 {
		t.Fatal("Without")
	}
}

func TestDumpAndBuilderNames(t *testing.T) {
	g, _, _ := smallGraph()
	s := g.String()
	for _, want := range []string{"input %x: float32[N,4]", "const %w: float32[4]", "%add_out = Add(%x, %w)", "return %relu_out"} {
		if !strings.Contains(s, want) {
			t.Errorf("dump lacks %q:\n%s", want, s)
		}
	}
	b := NewBuilder("n", 13)
	x := b.Input("x", tensor.Float32, 1)
	r1 := b.Op("Relu", "r", []ValueID{x})
	r2 := b.Op("Relu", "r", []ValueID{r1})
	if b.G.Nodes[0].Name == b.G.Nodes[1].Name || b.G.Values[r1].Name == b.G.Values[r2].Name {
		t.Fatal("builder reused a name")
	}
	if err := b.G.Verify(); err != nil {
		t.Fatal(err)
	}
}
