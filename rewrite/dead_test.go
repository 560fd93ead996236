package rewrite_test

import (
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

func TestRemoveDead(t *testing.T) {
	F := tensor.Float32
	b := ir.NewBuilder("dead", 13)
	x := b.Input("x", F, -1, 4)
	unusedIn := b.Input("unused_in", F, 2)
	_ = unusedIn
	unusedConst := b.Const("unused_const", f32(1, 3))
	w := b.Param("w", f32(2, 4, 4))
	deadA := b.Op("Sigmoid", "dead_a", ids{x})
	deadB := b.Op("MatMul", "dead_b", ids{deadA, b.Const("dead_w", f32(3, 4, 4))})
	_ = deadB
	h := b.Op("MatMul", "mm", ids{x, w})
	parts := b.OpN("Split", "split", 2, ids{h}, ir.IntAttr("axis", 1))
	out := b.Op("Relu", "relu", ids{parts[0]})
	b.Output(out)
	g := b.G
	before := g.String()

	d, remap := rewrite.RemoveDead(g)
	if g.String() != before {
		t.Fatal("input graph changed")
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	if len(remap) != len(g.Values) {
		t.Fatalf("map has %d entries for %d values", len(remap), len(g.Values))
	}
	dropped := map[string]bool{"unused_const": true, "dead_a_out": true, "dead_b_out": true, "dead_w": true}
	kept := 0
	for old, nw := range remap {
		name := g.Values[old].Name
		if dropped[name] {
			if nw != ir.NoValue {
				t.Errorf("%q kept as %d", name, nw)
			}
			continue
		}
		if nw == ir.NoValue {
			t.Errorf("%q dropped", name)
			continue
		}
		kept++
		if d.Values[nw].Name != name {
			t.Errorf("%q mapped to %d (%q)", name, nw, d.Values[nw].Name)
		}
	}
	if kept != len(d.Values) {
		t.Errorf("%d values kept, new graph has %d", kept, len(d.Values))
	}
	if len(d.Nodes) != 3 {
		t.Errorf("%d nodes left, want 3 (mm, split, relu):\n%s", len(d.Nodes), d)
	}
	// The unused second Split output stays: Split's output count matters.
	if remap[parts[1]] == ir.NoValue {
		t.Error("unused output of a live node dropped")
	}
	if len(d.Inputs) != 2 || d.Inputs[1] != remap[unusedIn] {
		t.Error("graph inputs changed")
	}
	if d.Outputs[0] != remap[out] {
		t.Error("graph output not remapped")
	}
	if remap[unusedConst] != ir.NoValue || !d.Values[remap[w]].Trainable {
		t.Error("constant handling wrong")
	}
	// Idempotent: a second pass is the identity map.
	d2, remap2 := rewrite.RemoveDead(d)
	for i, v := range remap2 {
		if v != ir.ValueID(i) {
			t.Fatalf("second pass moved value %d to %d", i, v)
		}
	}
	if d2.String() != d.String() {
		t.Error("second pass changed the graph")
	}
}
