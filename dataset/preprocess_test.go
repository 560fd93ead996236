package dataset

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/goslim/goslim/tensor"
)

func TestParsePreprocess(t *testing.T) {
	tests := []struct {
		in   string
		want Preprocess
		str  string
	}{
		{"", Preprocess{}, "{}"},
		{"none", Preprocess{}, "{}"},
		{"MNIST", Preprocess{Mean: []float32{0.1307}, Std: []float32{0.3081}}, `{"mean":[0.1307],"std":[0.3081]}`},
		{"imagenet", Preprocess{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
			`{"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}`},
		{"symmetric", Preprocess{Mean: []float32{0.5}, Std: []float32{0.5}}, `{"mean":[0.5],"std":[0.5]}`},
		{` {"mean": [0.5, 0.25], "std": [2, 4], "scale": 255} `, Preprocess{Scale: 255, Mean: []float32{0.5, 0.25}, Std: []float32{2, 4}},
			`{"scale":255,"mean":[0.5,0.25],"std":[2,4]}`},
		{`{"scale":255}`, Preprocess{Scale: 255}, `{"scale":255}`},
	}
	for _, tt := range tests {
		got, err := ParsePreprocess(tt.in)
		if err != nil {
			t.Errorf("ParsePreprocess(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePreprocess(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("ParsePreprocess(%q).String() = %s, want %s", tt.in, got.String(), tt.str)
		}
		again, err := ParsePreprocess(got.String())
		if err != nil || !reflect.DeepEqual(again, got) && !(got.IsIdentity() && again.IsIdentity()) {
			t.Errorf("%s does not round-trip: %+v, %v", got.String(), again, err)
		}
	}
	for _, in := range []string{
		"imagenet2", `{"mean":[0.5],"sdt":[0.5]}`, `{"std":[0]}`, `{"mean":[1,2],"std":[1,2,3]}`,
		`{"mean":[0.5]} x`, `{"mean":"a"}`, `[0.5]`,
	} {
		if _, err := ParsePreprocess(in); err == nil {
			t.Errorf("ParsePreprocess(%q): no error", in)
		}
	}
}

func TestPreprocessApply(t *testing.T) {
	x := tensor.FromFloat32(tensor.Shape{2, 2, 1, 2}, []float32{0, 1, 0.5, 0.25, 1, 0, 0.75, 1})
	p := Preprocess{Scale: 2, Mean: []float32{1, 0.5}, Std: []float32{0.5, 0.25}}
	if err := p.Apply(x); err != nil {
		t.Fatal(err)
	}
	want := []float32{-2, 2, 2, 0, 2, -2, 4, 6}
	for i, v := range x.F32() {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("Apply = %v, want %v", x.F32(), want)
		}
	}
	// One mean and std for every channel; identity leaves data alone.
	x = tensor.FromFloat32(tensor.Shape{1, 3}, []float32{0, 0.5, 1})
	if err := (Preprocess{Mean: []float32{0.5}, Std: []float32{0.5}}).Apply(x); err != nil || !reflect.DeepEqual(x.F32(), []float32{-1, 0, 1}) {
		t.Errorf("shared mean/std: %v %v", x.F32(), err)
	}
	if err := (Preprocess{}).Apply(tensor.FromInt64(tensor.Shape{1}, []int64{3})); err != nil {
		t.Errorf("identity on int64: %v", err)
	}
	for _, tt := range []struct {
		p Preprocess
		x *tensor.Tensor
	}{
		{Preprocess{Mean: []float32{0.5}}, tensor.FromInt64(tensor.Shape{1, 1}, []int64{3})},
		{Preprocess{Mean: []float32{0.5}}, tensor.FromFloat32(tensor.Shape{3}, []float32{1, 2, 3})},
		{Preprocess{Mean: []float32{0.5, 0.5}}, tensor.FromFloat32(tensor.Shape{1, 3}, []float32{1, 2, 3})},
	} {
		if err := tt.p.Apply(tt.x); err == nil {
			t.Errorf("%+v on %v %v: no error", tt.p, tt.x.DType, tt.x.Shape)
		}
	}
}

func TestPreprocessMeta(t *testing.T) {
	meta := map[string]string{"other": "kept"}
	p := Preprocess{Mean: []float32{0.1307}, Std: []float32{0.3081}}
	p.SetMeta(meta)
	if meta[MetaPreprocess] != `{"mean":[0.1307],"std":[0.3081]}` || meta["other"] != "kept" {
		t.Fatalf("meta = %v", meta)
	}
	got, ok, err := PreprocessFromMeta(meta)
	if err != nil || !ok || !reflect.DeepEqual(got, p) {
		t.Errorf("PreprocessFromMeta = %+v, %v, %v", got, ok, err)
	}
	// The flag wins over the metadata; the metadata over nothing.
	if r, err := ResolvePreprocess("imagenet", meta); err != nil || len(r.Mean) != 3 {
		t.Errorf("flag: %+v %v", r, err)
	}
	if r, err := ResolvePreprocess("", meta); err != nil || !reflect.DeepEqual(r, p) {
		t.Errorf("metadata: %+v %v", r, err)
	}
	if r, err := ResolvePreprocess("", nil); err != nil || !r.IsIdentity() {
		t.Errorf("none: %+v %v", r, err)
	}
	(Preprocess{}).SetMeta(meta)
	if _, ok := meta[MetaPreprocess]; ok {
		t.Error("identity SetMeta kept the key")
	}
	if _, ok, _ := PreprocessFromMeta(meta); ok {
		t.Error("absent key reported present")
	}
	meta[MetaPreprocess] = "{bad"
	if _, _, err := PreprocessFromMeta(meta); err == nil || !strings.Contains(err.Error(), MetaPreprocess) {
		t.Errorf("bad metadata: %v", err)
	}
}
