package ptq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/quant"
	"github.com/goslim/goslim/tensor"
)

// ConfigVersion is the version of the config file format Config reads and
// writes.
const ConfigVersion = 1

// Calibration methods (Config.Method).
const (
	MethodMinMax     = "minmax"
	MethodAvg        = "avg"
	MethodPercentile = "percentile"
	MethodKL         = "kl"
	MethodMSE        = "mse"
)

// Methods lists the calibration methods.
func Methods() []string {
	return []string{MethodMinMax, MethodAvg, MethodPercentile, MethodKL, MethodMSE}
}

// Config holds every knob of post-training quantization. Its JSON form is
// the config file of `goslim quantize --config`: the same fields as the
// flags (flags win), plus per-layer overrides. Start from DefaultConfig:
// the zero value of some fields (PerChannel, ShareAddScales) is not the
// default.
type Config struct {
	// Version is the file format version (ConfigVersion).
	Version int `json:"version"`

	// Calib is the calibration data spec (dataset.ParseSpec), Batches the
	// number of batches to observe (0: all), BatchSize the batch size (0:
	// the dataset default).
	Calib     string `json:"calib,omitempty"`
	Batches   int    `json:"batches,omitempty"`
	BatchSize int    `json:"batch_size,omitempty"`
	// Method picks the range observer: minmax, avg (moving average of
	// per-batch min/max), percentile, kl (entropy) or mse.
	Method string `json:"method"`
	// Percentile is the percentile the "percentile" method keeps (e.g.
	// 99.99).
	Percentile float64 `json:"percentile,omitempty"`

	// PerChannel quantizes weights per output channel (default true),
	// else per tensor.
	PerChannel bool `json:"per_channel"`
	// Activations is the activation type: "uint8" (default) or "int8".
	Activations string `json:"activations"`
	// Symmetric makes activations symmetric (weights always are).
	Symmetric bool `json:"symmetric,omitempty"`
	// ReduceRange quantizes weights to 7 bits (for CPUs without VNNI).
	ReduceRange bool `json:"reduce_range,omitempty"`
	// ShareAddScales gives both inputs of a residual Add one scale
	// (default true), as integer add kernels want.
	ShareAddScales bool `json:"share_add_scales"`
	// FloatOutputs leaves the model's outputs in float: the last layer
	// reads quantized inputs but its output (the logits) is not quantized.
	FloatOutputs bool `json:"float_outputs,omitempty"`
	// Exclude lists node names and op types that stay FP32.
	Exclude []string `json:"exclude,omitempty"`
	// Layers holds per-layer overrides keyed by node name.
	Layers map[string]LayerConfig `json:"layers,omitempty"`

	// OCS is the outlier channel splitting expansion ratio: the fraction
	// of channels that may be added per layer (0: off).
	OCS float64 `json:"ocs,omitempty"`
	// BiasCorrection corrects each layer's bias for the mean error
	// quantization causes, measured on the calibration data.
	BiasCorrection bool `json:"bias_correction,omitempty"`
	// CLE equalizes the weight ranges of consecutive layers (cross-layer
	// equalization) before calibration.
	CLE bool `json:"cle,omitempty"`

	// Eval is the evaluation data spec (labels give accuracy).
	Eval string `json:"eval,omitempty"`
	// Analyze ranks layers by the error quantizing each one alone causes.
	Analyze bool `json:"analyze,omitempty"`
	// MaxDrop, when set, is the largest allowed top-1 drop in percentage
	// points: the worst layers are left in FP32 until the drop fits.
	MaxDrop *float64 `json:"max_drop,omitempty"`
	// Out is the output model path.
	Out string `json:"out,omitempty"`

	// Rules overrides the per-op rules (nil: DefaultRules). Not in files.
	Rules *Rules `json:"-"`

	// skip excludes nodes by index (max-drop search); only, when non-nil,
	// quantizes just these nodes (sensitivity analysis).
	skip map[int]bool
	only map[int]bool
}

// LayerConfig overrides the config for one node.
type LayerConfig struct {
	// Exclude keeps the node in FP32.
	Exclude bool `json:"exclude,omitempty"`
	// PerChannel overrides Config.PerChannel for the node's weights.
	PerChannel *bool `json:"per_channel,omitempty"`
	// ReduceRange overrides Config.ReduceRange for the node's weights.
	ReduceRange *bool `json:"reduce_range,omitempty"`
}

// DefaultConfig returns the defaults: minmax calibration, weights int8
// symmetric per-channel, activations uint8 asymmetric per-tensor, residual
// Add inputs sharing scales, no OCS, CLE or bias correction.
func DefaultConfig() *Config {
	return &Config{Version: ConfigVersion, Method: MethodMinMax, Percentile: 99.99,
		PerChannel: true, Activations: "uint8", ShareAddScales: true}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	d := *c
	d.Exclude = slices.Clone(c.Exclude)
	if c.Layers != nil {
		d.Layers = make(map[string]LayerConfig, len(c.Layers))
		for k, v := range c.Layers {
			d.Layers[k] = v
		}
	}
	if c.MaxDrop != nil {
		v := *c.MaxDrop
		d.MaxDrop = &v
	}
	d.skip = cloneSet(c.skip)
	d.only = cloneSet(c.only)
	return &d
}

func cloneSet(m map[int]bool) map[int]bool {
	if m == nil {
		return nil
	}
	c := make(map[int]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Validate checks the config's values.
func (c *Config) Validate() error {
	if c.Version != ConfigVersion {
		return fmt.Errorf("ptq: config version %d is not supported (want %d)", c.Version, ConfigVersion)
	}
	if !slices.Contains(Methods(), c.Method) {
		return fmt.Errorf("ptq: unknown calibration method %q (want one of %s)", c.Method, strings.Join(Methods(), ", "))
	}
	if c.Method == MethodPercentile && !(c.Percentile > 0 && c.Percentile <= 100) {
		return fmt.Errorf("ptq: percentile %g is outside (0, 100]", c.Percentile)
	}
	if c.Activations != "uint8" && c.Activations != "int8" {
		return fmt.Errorf("ptq: activation type %q is not supported (want uint8 or int8)", c.Activations)
	}
	if c.Batches < 0 || c.BatchSize < 0 {
		return fmt.Errorf("ptq: batches %d and batch size %d must not be negative", c.Batches, c.BatchSize)
	}
	if !(c.OCS >= 0 && c.OCS <= 1) {
		return fmt.Errorf("ptq: OCS expansion ratio %g is outside [0, 1]", c.OCS)
	}
	if c.MaxDrop != nil && !(*c.MaxDrop >= 0 && *c.MaxDrop <= 100) {
		return fmt.Errorf("ptq: max drop %g is outside [0, 100] percentage points", *c.MaxDrop)
	}
	for _, e := range c.Exclude {
		if e == "" {
			return fmt.Errorf("ptq: empty --exclude entry")
		}
	}
	return nil
}

// ReadConfig reads a config file over the defaults. The file is JSON
// (content starting with '{') or YAML (the subset parseYAML documents:
// block mappings and sequences, single-line flow collections, scalars,
// comments); both have the same fields. Unknown fields are errors, so a
// typo cannot silently change a run.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ptq: %w", err)
	}
	c, err := ParseConfig(b, filepath.Ext(path))
	if err != nil {
		return nil, fmt.Errorf("%w (config %s)", err, path)
	}
	return c, nil
}

// ParseConfig parses a config file's content over the defaults: JSON when
// it starts with '{' (after white space), else YAML. ext is the file name's
// extension (".json", ".yaml", ...): a .json file must hold JSON.
func ParseConfig(b []byte, ext string) (*Config, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if strings.EqualFold(ext, ".json") {
			return nil, fmt.Errorf("ptq: config file is not a JSON object")
		}
		v, err := parseYAML(b)
		if err != nil {
			return nil, fmt.Errorf("ptq: config: %w", err)
		}
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("ptq: config: YAML: the document must be a mapping of fields (version: 1, method: ..., ...)")
		}
		if trimmed, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("ptq: config: %w", err)
		}
	}
	c := DefaultConfig()
	c.Version = 0
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("ptq: config: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("ptq: config: trailing data after the JSON object")
	}
	if c.Version == 0 {
		return nil, fmt.Errorf("ptq: config has no \"version\" (want %d)", ConfigVersion)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// JSON returns the config as indented JSON (for reports and to start a
// config file).
func (c *Config) JSON() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

// excluded returns why node n stays FP32 by configuration, or "".
func (c *Config) excluded(ni int, n *ir.Node) string {
	if c.only != nil && !c.only[ni] {
		return "not selected"
	}
	if c.skip[ni] {
		return "left in FP32 by the accuracy search"
	}
	if n.Name != "" {
		if l, ok := c.Layers[n.Name]; ok && l.Exclude {
			return "excluded by layer override"
		}
	}
	for _, e := range c.Exclude {
		if n.Name != "" && e == n.Name {
			return "excluded by name"
		}
		if e == n.Op {
			return "excluded by op type"
		}
	}
	return ""
}

func (c *Config) shareAdd() bool { return c.ShareAddScales }

// ActivationScheme returns the activation scheme: per-tensor, uint8 or
// int8, asymmetric unless Symmetric.
func (c *Config) ActivationScheme() quant.Scheme {
	s := quant.Scheme{DType: tensor.Uint8, Symmetric: c.Symmetric}
	if c.Activations == "int8" {
		s.DType = tensor.Int8
	}
	return s
}

// WeightScheme returns the weight scheme of a node: int8 symmetric narrow
// ([-127, 127], so the range is exactly symmetric), per-channel along axis
// unless per-tensor is configured, 7 bits with ReduceRange.
func (c *Config) WeightScheme(n *ir.Node, axis int) quant.Scheme {
	s := quant.Scheme{DType: tensor.Int8, Symmetric: true, Narrow: true,
		PerChannel: c.PerChannel, ReduceRange: c.ReduceRange}
	if l, ok := c.Layers[n.Name]; ok && n.Name != "" {
		if l.PerChannel != nil {
			s.PerChannel = *l.PerChannel
		}
		if l.ReduceRange != nil {
			s.ReduceRange = *l.ReduceRange
		}
	}
	if s.PerChannel {
		s.Axis = axis
	}
	return s
}

// finite reports whether v is a finite float.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
