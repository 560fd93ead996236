package ptq

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// yamlConfig is the JSON example of docs/quantization.md written as YAML,
// with comments and every construct the subset accepts.
const yamlConfig = `# PTQ config for LeNet-5
---
version: 1
calib: mnist:train        # training images, no labels needed
batches: 10
method: percentile
percentile: 99.99
per_channel: true
activations: "uint8"
share_add_scales: TRUE
exclude:
- Softmax
- 'fc#3'
layers:
  conv1: {per_channel: false}
  fc3:
    exclude: true
    reduce_range: ~
bias_correction: true
eval: 'mnist:test'
max_drop: .3
out: lenet.int8.onnx
...
`

func TestYAMLConfig(t *testing.T) {
	c, err := ParseConfig([]byte(yamlConfig), ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := false
	want := DefaultConfig()
	want.Calib, want.Batches, want.Method, want.Percentile = "mnist:train", 10, "percentile", 99.99
	want.Exclude = []string{"Softmax", "fc#3"}
	want.Layers = map[string]LayerConfig{"conv1": {PerChannel: &f}, "fc3": {Exclude: true}}
	want.BiasCorrection, want.Eval, want.Out = true, "mnist:test", "lenet.int8.onnx"
	md := 0.3
	want.MaxDrop = &md
	if string(c.JSON()) != string(want.JSON()) {
		t.Errorf("parsed\n%s\nwant\n%s", c.JSON(), want.JSON())
	}
	// The same config as JSON parses to the same thing.
	j, err := ParseConfig(want.JSON(), ".json")
	if err != nil || string(j.JSON()) != string(c.JSON()) {
		t.Errorf("JSON twin: %v", err)
	}
}

func TestYAMLValues(t *testing.T) {
	for _, c := range []struct {
		src  string
		want any
	}{
		{"a: 1", map[string]any{"a": int64(1)}},
		{"a: -1.5e3", map[string]any{"a": -1500.0}},
		{"a: +.5", map[string]any{"a": 0.5}},
		{"a: 1.", map[string]any{"a": 1.0}},
		{"a: 0x10", map[string]any{"a": "0x10"}},
		{"a: yes", map[string]any{"a": "yes"}},
		{"a: False", map[string]any{"a": false}},
		{"a:", map[string]any{"a": nil}},
		{"a: it's", map[string]any{"a": "it's"}},
		{"a: b#c", map[string]any{"a": "b#c"}},
		{"a: \"x: y # z\"  # comment", map[string]any{"a": "x: y # z"}},
		{"a: 'it''s'", map[string]any{"a": "it's"}},
		{"a: \"tab\\tq\\\"\"", map[string]any{"a": "tab\tq\""}},
		{"\"a b\": 1", map[string]any{"a b": int64(1)}},
		{"a: [1, 'x', [true], {b: c}]", map[string]any{"a": []any{int64(1), "x", []any{true}, map[string]any{"b": "c"}}}},
		{"a: {b: , c: [], d: {}}", map[string]any{"a": map[string]any{"b": nil, "c": []any{}, "d": map[string]any{}}}},
		{"a: {b: http://x}", map[string]any{"a": map[string]any{"b": "http://x"}}},
		{"a:\n  - 1\n  - b: 2\n    c: 3\n  -\n    - x\n  - - y\n    - z", map[string]any{"a": []any{int64(1),
			map[string]any{"b": int64(2), "c": int64(3)}, []any{"x"}, []any{"y", "z"}}}},
		{"a:\n- 1\n- 2\nb: 3", map[string]any{"a": []any{int64(1), int64(2)}, "b": int64(3)}},
		{"a:\n  b:\n    c: 1\n  d: 2\ne: 3", map[string]any{"a": map[string]any{"b": map[string]any{"c": int64(1)}, "d": int64(2)}, "e": int64(3)}},
		{"- a\n- b", []any{"a", "b"}},
		{"\n\n# only a comment line\nx: 1\n\n", map[string]any{"x": int64(1)}},
		{"x: 1\r\ny: 2\r\n", map[string]any{"x": int64(1), "y": int64(2)}},
	} {
		got, err := parseYAML([]byte(c.src))
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %#v, want %#v", c.src, got, c.want)
		}
	}
}

func TestYAMLErrors(t *testing.T) {
	for _, c := range []struct {
		src, want string // want: a substring of the error, with the line
	}{
		{"", "empty"},
		{"a: 1\n\tb: 2", "line 2: tab"},
		{"a: 1\na: 2", "line 2: duplicate key \"a\""},
		{"a: 1\n  b: 2", "line 2: unexpected indentation"},
		{"a:\n  b: 1\n c: 2", "line 3"},
		{"a: &x 1", "line 1: anchors"},
		{"a: *x", "line 1: anchors"},
		{"a: !!int 1", "line 1: tags"},
		{"a: |\n  text", "line 1: block scalars"},
		{"a: >\n  text", "line 1: block scalars"},
		{"a: [1,\n  2]", "line 1: unterminated flow"},
		{"a: \"open", "line 1: unterminated quoted"},
		{"a: 'open", "line 1: unterminated quoted"},
		{"a: b: c", "line 1: a mapping is not allowed"},
		{"? a\n: b", "line 1: complex keys"},
		{"a: 1\n---\nb: 2", "line 2: only one document"},
		{"a: 1\n...\nb: 2", "line 3: content after the end"},
		{"%YAML 1.2\na: 1", "line 1: directives"},
		{"a: .inf", "line 1: .inf is not supported"},
		{"a: 99999999999999999999", "line 1: integer"},
		{"a: [1, , 2]", "line 1: empty value"},
		{"a: {b: 1, b: 2}", "line 1: duplicate key"},
		{"a: [1]]", "line 1: unexpected"},
		{"a: \"x\" y", "line 1: unexpected"},
		{"a: \"\\q\"", "line 1: bad escape"},
		{"- a\nb: 1", "line 2"},
		{"a:\n  - 1\n  b: 2", "line 3"},
		{"a: 1\nplain", "line 2"},
		{"a\nb", "line 2"},
		{"a: 1\n  # fine\n   b", "line 3"},
	} {
		_, err := parseYAML([]byte(c.src))
		if err == nil {
			t.Errorf("%q: no error", c.src)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want it to contain %q", c.src, err, c.want)
		}
	}
	// Config-level errors name the field or the line.
	for _, c := range []struct{ src, want string }{
		{"version: 1\nmethd: kl", "methd"},
		{"version: 1\nbatches: ten", "batches"},
		{"version: 1\nper_channel: yes", "per_channel"},
		{"- version: 1", "mapping of fields"},
		{"version: 1\nlayers:\n  conv1:\n    exclude: true\n    per_chanel: false", "per_chanel"},
		{"version: 1\nmethod: [kl", "line 2"},
		{"method: kl", "version"},
	} {
		_, err := ParseConfig([]byte(c.src), ".yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.src, err, c.want)
		}
	}
	if _, err := ParseConfig([]byte("version: 1"), ".json"); err == nil {
		t.Error("YAML content in a .json file accepted")
	}
}

// FuzzParseYAML: the parser never panics, never loops, and whatever it
// accepts is a JSON-encodable value whose JSON parses back to the same
// value (no NaN/Inf, no non-string keys).
func FuzzParseYAML(f *testing.F) {
	f.Add(yamlConfig)
	for _, s := range []string{"a: [1, {b: 'c'}]", "- - x\n  - y", "a:\n- 1\n- 2", "\"k\": \"v\\n\"", "a: b # c", "a: {", "- : -"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		v, err := parseYAML([]byte(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "YAML") {
				t.Fatalf("error without the YAML prefix: %v", err)
			}
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode %#v: %v", src, v, err)
		}
		var back any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&back); err != nil {
			t.Fatalf("JSON of %q does not parse: %v", src, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Fatalf("JSON of %q is not stable: %s vs %s", src, b, b2)
		}
	})
}
