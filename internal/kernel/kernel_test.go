package kernel

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

func named(name string) Builder {
	return func(*Info) (Kernel, error) {
		return Func(func(c *Ctx, in, out []*tensor.Tensor) error { return errors.New(name) }), nil
	}
}

func lookup(t *testing.T, tb *Table, op string, opset int64, tier Tier) (string, error) {
	t.Helper()
	_, e, err := tb.Lookup(&Info{Node: &ir.Node{Op: op, Name: "n"}, Opset: opset, Tier: tier})
	return e.Name, err
}

func TestLookupPriorityTierOpset(t *testing.T) {
	tb := NewTable()
	tb.Add(Entry{Op: "Conv", Name: "generic", Priority: Generic, Build: named("generic")})
	tb.Add(Entry{Op: "Conv", Name: "typed", Priority: Typed, Build: named("typed")})
	tb.Add(Entry{Op: "Conv", Name: "declines", Priority: Arch + 5, Build: func(*Info) (Kernel, error) { return nil, ErrDecline }})
	tb.Add(Entry{Op: "Conv", Name: "future", Priority: Arch, Tier: TierAMX + 1, Build: named("future")})
	tb.Add(Entry{Op: "Old", Name: "v7", MaxOpset: 12, Build: named("v7")})
	tb.Add(Entry{Op: "Old", Name: "v13", MinOpset: 13, Build: named("v13")})

	if name, err := lookup(t, tb, "Conv", 13, Best()); err != nil || name != "typed" {
		t.Fatalf("got %q, %v; want the typed entry (arch declines, future tier unavailable)", name, err)
	}
	if name, _ := lookup(t, tb, "Old", 11, TierGeneric); name != "v7" {
		t.Fatalf("opset 11 picked %q", name)
	}
	if name, _ := lookup(t, tb, "Old", 17, TierGeneric); name != "v13" {
		t.Fatalf("opset 17 picked %q", name)
	}
	if _, err := lookup(t, tb, "Nope", 13, TierGeneric); err == nil || !strings.Contains(err.Error(), `"n" (Nope): unsupported op Nope`) {
		t.Fatalf("unknown op: %v", err)
	}
	tb.Add(Entry{Op: "OnlyNew", MinOpset: 18, Build: named("x")})
	if _, err := lookup(t, tb, "OnlyNew", 13, TierGeneric); err == nil || !strings.Contains(err.Error(), "not supported at opset 13") {
		t.Fatalf("opset range: %v", err)
	}
	tb.Add(Entry{Op: "Bad", Build: func(i *Info) (Kernel, error) { return nil, i.Errorf("weight rank 3, want 4") }})
	if _, err := lookup(t, tb, "Bad", 13, TierGeneric); err == nil || !strings.Contains(err.Error(), "weight rank 3") {
		t.Fatalf("builder error not reported: %v", err)
	}
}

func TestTiers(t *testing.T) {
	for _, name := range []string{"generic", "avx2", "avx512", "vnni", "amx"} {
		tr, err := ParseTier(name)
		if err != nil || tr.String() != name {
			t.Fatalf("ParseTier(%q) = %v, %v", name, tr, err)
		}
	}
	if _, err := ParseTier("sse2"); err == nil {
		t.Fatal("ParseTier accepted sse2")
	}
	if !TierGeneric.Available() {
		t.Fatal("generic tier must always be available")
	}
	if tr, err := Resolve(TierGeneric, true); err != nil || tr != TierGeneric {
		t.Fatalf("Resolve(generic) = %v, %v", tr, err)
	}
	t.Setenv(EnvTier, "generic")
	if tr, err := Resolve(0, false); err != nil || tr != TierGeneric {
		t.Fatalf("env generic: %v, %v", tr, err)
	}
	t.Setenv(EnvTier, "")
	if tr, _ := Resolve(0, false); tr != Best() {
		t.Fatalf("default tier %v, want best %v", tr, Best())
	}
}

func TestParallelCoversRangeOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 7, 100} {
			hits := make([]int32, n)
			var calls atomic.Int32
			Parallel(threads, n, func(lo, hi int) {
				calls.Add(1)
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads %d n %d: index %d visited %d times", threads, n, i, h)
				}
			}
			if threads == 1 && n > 0 && calls.Load() != 1 {
				t.Fatalf("one thread must make one call, made %d", calls.Load())
			}
		}
	}
}

func TestCtxOutputAndAlias(t *testing.T) {
	c := NewCtx(&ir.Node{Op: "X", Name: "x"}, 1, nil)
	out := make([]*tensor.Tensor, 2)
	c.Begin(out)
	o, err := c.OutputZero(0, tensor.Float32, tensor.Shape{2, 2})
	if err != nil || out[0] != o || o.F32()[3] != 0 {
		t.Fatalf("OutputZero: %v %v", o, err)
	}
	if _, err := c.Output(2, tensor.Float32, tensor.Shape{1}); err == nil {
		t.Fatal("output index out of range accepted")
	}
	if _, err := c.Output(1, tensor.Float32, tensor.Shape{1 << 20, 1 << 20}); err == nil || !strings.Contains(err.Error(), `"x" (X)`) {
		t.Fatalf("huge output: %v", err)
	}
	v, err := c.Alias(1, 0, o, tensor.Shape{4})
	if err != nil || c.AliasOf[1] != 0 || &v.F32()[0] != &o.F32()[0] {
		t.Fatalf("Alias: %v", err)
	}
	if _, err := c.Alias(1, 0, o, tensor.Shape{5}); err == nil {
		t.Fatal("Alias accepted a different element count")
	}
}
