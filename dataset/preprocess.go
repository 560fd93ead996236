package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/goslim/goslim/tensor"
)

// MetaPreprocess is the ONNX metadata_props key (ir.Graph.Meta) holding a
// model's input normalization as Preprocess JSON, e.g.
//
//	goslim.preprocess = {"mean":[0.1307],"std":[0.3081]}
//
// goslim writes it when it trains a model; eval, quantize and train read
// it and apply it to the data (images already scaled to [0, 1]) before the
// model sees them. For models made elsewhere the --preprocess flag supplies
// it (and wins over the metadata); see ResolvePreprocess.
const MetaPreprocess = "goslim.preprocess"

// Preprocess is a per-channel input normalization applied to float32
// N×C×... tensors along axis 1:
//
//	y[n][c][...] = (x[n][c][...]*Scale - Mean[c]) / Std[c]
//
// Scale 0 means 1. Mean and Std hold one value per channel, or one value
// for all channels, or are empty (0 and 1). The zero value is the identity.
type Preprocess struct {
	Scale float32   `json:"scale,omitempty"`
	Mean  []float32 `json:"mean,omitempty"`
	Std   []float32 `json:"std,omitempty"`
}

// PreprocessPresets lists the names ParsePreprocess accepts besides JSON.
func PreprocessPresets() []string {
	return []string{"none", "mnist", "fashion-mnist", "cifar10", "imagenet", "symmetric"}
}

// preset returns a named normalization.
func preset(name string) (Preprocess, bool) {
	switch name {
	case "none":
		return Preprocess{}, true
	case "mnist":
		return Preprocess{Mean: []float32{0.1307}, Std: []float32{0.3081}}, true
	case "fashion-mnist":
		return Preprocess{Mean: []float32{0.2860}, Std: []float32{0.3530}}, true
	case "cifar10":
		return Preprocess{Mean: []float32{0.4914, 0.4822, 0.4465}, Std: []float32{0.2470, 0.2435, 0.2616}}, true
	case "imagenet":
		return Preprocess{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}, true
	case "symmetric": // [0, 1] -> [-1, 1]
		return Preprocess{Mean: []float32{0.5}, Std: []float32{0.5}}, true
	}
	return Preprocess{}, false
}

// ParsePreprocess parses a normalization: JSON ({"mean":[...],"std":[...],
// "scale":s}; unknown fields are errors) or a preset name (see
// PreprocessPresets; "" is "none").
func ParsePreprocess(s string) (Preprocess, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Preprocess{}, nil
	}
	if p, ok := preset(strings.ToLower(s)); ok {
		return p, nil
	}
	if !strings.HasPrefix(s, "{") {
		return Preprocess{}, fmt.Errorf("dataset: preprocess %q: want JSON like {\"mean\":[0.5],\"std\":[0.5]} or one of %s",
			s, strings.Join(PreprocessPresets(), ", "))
	}
	var p Preprocess
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Preprocess{}, fmt.Errorf("dataset: preprocess %q: %w", s, err)
	}
	if dec.More() {
		return Preprocess{}, fmt.Errorf("dataset: preprocess %q: text after the JSON object", s)
	}
	if err := p.Validate(0); err != nil {
		return Preprocess{}, err
	}
	return p, nil
}

// PreprocessFromMeta reads MetaPreprocess from model metadata; ok is false
// when the key is absent.
func PreprocessFromMeta(meta map[string]string) (p Preprocess, ok bool, err error) {
	s, ok := meta[MetaPreprocess]
	if !ok {
		return Preprocess{}, false, nil
	}
	p, err = ParsePreprocess(s)
	if err != nil {
		return Preprocess{}, true, fmt.Errorf("dataset: model metadata %s: %w", MetaPreprocess, err)
	}
	return p, true, nil
}

// ResolvePreprocess picks the normalization for a model: the flag when it
// is not empty, else the model's MetaPreprocess, else none.
func ResolvePreprocess(flag string, meta map[string]string) (Preprocess, error) {
	if strings.TrimSpace(flag) != "" {
		return ParsePreprocess(flag)
	}
	p, _, err := PreprocessFromMeta(meta)
	return p, err
}

// SetMeta records p in model metadata under MetaPreprocess (removing the
// key for the identity). meta must not be nil.
func (p Preprocess) SetMeta(meta map[string]string) {
	if p.IsIdentity() {
		delete(meta, MetaPreprocess)
		return
	}
	meta[MetaPreprocess] = p.String()
}

// String returns p as compact JSON ("{}" for the identity).
func (p Preprocess) String() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return "{}" // unreachable: NaN and Inf are refused by Validate
	}
	return strings.TrimSpace(b.String())
}

// IsIdentity reports whether p changes nothing.
func (p Preprocess) IsIdentity() bool {
	if p.Scale != 0 && p.Scale != 1 {
		return false
	}
	for _, m := range p.Mean {
		if m != 0 {
			return false
		}
	}
	for _, s := range p.Std {
		if s != 1 {
			return false
		}
	}
	return true
}

// Validate checks p for data with the given channel count (0: unknown):
// finite values, non-zero Std, and one value or one per channel.
func (p Preprocess) Validate(channels int) error {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	if bad(p.Scale) {
		return fmt.Errorf("dataset: preprocess scale %v is not finite", p.Scale)
	}
	for _, m := range p.Mean {
		if bad(m) {
			return fmt.Errorf("dataset: preprocess mean %v is not finite", p.Mean)
		}
	}
	for _, s := range p.Std {
		if bad(s) || s == 0 {
			return fmt.Errorf("dataset: preprocess std %v has a zero or non-finite value", p.Std)
		}
	}
	if len(p.Mean) > 1 && len(p.Std) > 1 && len(p.Mean) != len(p.Std) {
		return fmt.Errorf("dataset: preprocess has %d means and %d stds", len(p.Mean), len(p.Std))
	}
	if channels > 0 {
		if len(p.Mean) > 1 && len(p.Mean) != channels {
			return fmt.Errorf("dataset: preprocess has %d means for %d channels", len(p.Mean), channels)
		}
		if len(p.Std) > 1 && len(p.Std) != channels {
			return fmt.Errorf("dataset: preprocess has %d stds for %d channels", len(p.Std), channels)
		}
	}
	return nil
}

// Apply normalizes a float32 N×C×... tensor in place.
func (p Preprocess) Apply(t *tensor.Tensor) error {
	if p.IsIdentity() {
		return nil
	}
	if t.DType != tensor.Float32 || t.Rank() < 2 {
		return fmt.Errorf("dataset: preprocess needs a float32 N×C×... tensor, got %v %v", t.DType, t.Shape)
	}
	n, c := t.Shape[0], t.Shape[1]
	if err := p.Validate(c); err != nil {
		return err
	}
	inner := 1
	for _, d := range t.Shape[2:] {
		inner *= d
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	data := t.F32()
	for ch := range c {
		mean, std := perChannel(p.Mean, ch, 0), perChannel(p.Std, ch, 1)
		for i := range n {
			s := data[(i*c+ch)*inner : (i*c+ch+1)*inner]
			if scale == 1 {
				for k, v := range s {
					s[k] = (v - mean) / std
				}
			} else {
				for k, v := range s {
					s[k] = (v*scale - mean) / std
				}
			}
		}
	}
	return nil
}

// perChannel returns v[ch], v[0] when v has one value, or def when empty.
func perChannel(v []float32, ch int, def float32) float32 {
	switch len(v) {
	case 0:
		return def
	case 1:
		return v[0]
	}
	return v[ch]
}
