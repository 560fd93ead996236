package ptq

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/calib"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// npyReader writes x (and labels y when non-nil) to .npy files and opens
// them as a dataset.
func npyReader(t *testing.T, x *tensor.Tensor, y []int64, bs int) *dataset.Dataset {
	t.Helper()
	dir := t.TempDir()
	xp := filepath.Join(dir, "x.npy")
	if err := npy.WriteFile(xp, x); err != nil {
		t.Fatal(err)
	}
	spec := "npy:" + xp
	if y != nil {
		yp := filepath.Join(dir, "y.npy")
		if err := npy.WriteFile(yp, tensor.FromInt64(tensor.Shape{len(y)}, y)); err != nil {
			t.Fatal(err)
		}
		spec += "," + yp
	}
	d, err := dataset.Open(spec, dataset.Options{BatchSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// labelsOf returns the FP32 model's own top-1 classes as labels, so
// accuracy-based tests have a perfect FP32 baseline.
func labelsOf(t *testing.T, g *ir.Graph, x *tensor.Tensor) []int64 {
	t.Helper()
	out := runOne(t, g, x)
	n, c := out.Shape[0], out.Shape[1]
	y := make([]int64, n)
	for i := range n {
		y[i] = int64(argmax(out.F32()[i*c : (i+1)*c]))
	}
	return y
}

func TestRunLeNet(t *testing.T) {
	g, err := zoo.Build("lenet", zoo.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(1, 1, 64, 1, 28, 28)
	cal := npyReader(t, x, nil, 16)
	ev := npyReader(t, randTensor(2, 1, 64, 1, 28, 28), labelsOf(t, g, randTensor(2, 1, 64, 1, 28, 28)), 32)
	cfg := DefaultConfig()
	out, err := Run(context.Background(), g, cfg, Options{Calib: cal, Eval: ev, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	rep := out.Report
	if rep.Calibration.Batches != 4 || rep.Calibration.Samples != 64 {
		t.Errorf("calibration %+v", rep.Calibration)
	}
	if rep.FP32Metrics.Top1 != 1 || rep.QuantMetrics == nil || rep.QuantMetrics.SQNR < 20 {
		t.Errorf("metrics fp32 %+v quant %+v", rep.FP32Metrics, rep.QuantMetrics)
	}
	if rep.Size.Ratio > 0.3 {
		t.Errorf("size ratio %.3f", rep.Size.Ratio)
	}
	if rep.Layers != 5 {
		t.Errorf("%d quantized layers, want 5 (2 conv, 3 gemm)", rep.Layers)
	}

	// A shared Reference gives the same report as evaluating in Run.
	ref, err := NewReference(context.Background(), g, ev, 0, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	out2, err := Run(context.Background(), g, cfg, Options{Calib: cal, Reference: ref, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r2 := out2.Report; *r2.FP32Metrics != *rep.FP32Metrics || r2.QuantMetrics.Top1 != rep.QuantMetrics.Top1 ||
		math.Abs(r2.QuantMetrics.SQNR-rep.QuantMetrics.SQNR) > 1e-6 || *r2.Drop != *rep.Drop {
		t.Errorf("with a Reference: fp32 %+v quant %+v, without: fp32 %+v quant %+v", r2.FP32Metrics, r2.QuantMetrics, rep.FP32Metrics, rep.QuantMetrics)
	}

	// The evaluation folds the weight DequantizeLinear nodes: no node with
	// only constant inputs is left, and the outputs match the QDQ graph's.
	f := foldQDQ(out.Graph)
	for _, n := range f.Nodes {
		if n.Op == "DequantizeLinear" && f.Values[n.Inputs[0]].Const != nil {
			t.Errorf("folded graph still dequantizes constant %s", f.Values[n.Inputs[0]].Name)
		}
	}
	x1 := randTensor(3, 1, 4, 1, 28, 28)
	if d := maxRelDiff(runOne(t, out.Graph, x1), runOne(t, f, x1)); d > 1e-5 {
		t.Errorf("folded QDQ graph differs by %g (relative)", d)
	}
}

func TestRunMethodsAndOptions(t *testing.T) {
	g, err := zoo.Build("resnet8", zoo.Options{Seed: 5, InC: 1, InH: 12, InW: 12})
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(3, 1, 32, 1, 12, 12)
	for _, m := range Methods() {
		cfg := DefaultConfig()
		cfg.Method = m
		cfg.Batches = 2
		switch m {
		case MethodPercentile:
			cfg.Percentile = 99.9
		case MethodKL:
			cfg.BiasCorrection = true
		case MethodMSE:
			cfg.CLE, cfg.Activations, cfg.Symmetric = true, "int8", true
		case MethodAvg:
			cfg.PerChannel, cfg.ReduceRange = false, true
		}
		out, err := Run(context.Background(), g, cfg, Options{Calib: npyReader(t, x, nil, 8), Eval: npyReader(t, x, nil, 16), Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if s := out.Report.QuantMetrics.SQNR; s < 12 {
			t.Errorf("%s: SQNR %.1f dB", m, s)
		}
		if m == MethodKL {
			br := out.Report.BiasCorr
			if br == nil || br.Layers == 0 || br.Levels == 0 {
				t.Errorf("bias correction report %+v", br)
			} else if br.MeanAbsError[1] > br.MeanAbsError[0] {
				t.Errorf("bias correction made the mean error worse: %v", br.MeanAbsError)
			}
		}
	}
}

func TestRunBadInput(t *testing.T) {
	g, err := zoo.Build("lenet", zoo.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Wrong shape.
	_, err = Run(ctx, g, DefaultConfig(), Options{Calib: npyReader(t, randTensor(1, 1, 4, 1, 20, 20), nil, 2)})
	if err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong shape: %v", err)
	}
	// Wrong dtype (int32 data).
	x64 := &tensor.Tensor{DType: tensor.Int32, Shape: tensor.Shape{2, 1, 28, 28}, Data: make([]int32, 2*28*28)}
	_, err = Run(ctx, g, DefaultConfig(), Options{Calib: npyReader(t, x64, nil, 2)})
	if err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("wrong dtype: %v", err)
	}
	// NaN data.
	xn := randTensor(1, 1, 2, 1, 28, 28)
	xn.F32()[5] = float32(math.NaN())
	_, err = Run(ctx, g, DefaultConfig(), Options{Calib: npyReader(t, xn, nil, 2)})
	if !errors.Is(err, calib.ErrNonFinite) {
		t.Errorf("NaN data: %v", err)
	}
	// Constant (all-zero) data works: ranges widen to include 0.
	if _, err := Run(ctx, g, DefaultConfig(), Options{Calib: npyReader(t, tensor.FromFloat32(tensor.Shape{2, 1, 28, 28}, make([]float32, 2*28*28)), nil, 2)}); err != nil {
		t.Errorf("constant data: %v", err)
	}
	// Nothing left to quantize.
	nothing := DefaultConfig()
	nothing.Exclude = []string{"Conv", "Gemm"}
	_, err = Run(ctx, g, nothing, Options{Calib: npyReader(t, randTensor(1, 1, 2, 1, 28, 28), nil, 2)})
	if err == nil || !strings.Contains(err.Error(), "no node") {
		t.Errorf("nothing to quantize: %v", err)
	}
	// No calibration data.
	if _, err := Run(ctx, g, DefaultConfig(), Options{}); err == nil {
		t.Error("no calibration data should fail")
	}
	// An already quantized model.
	out, err := Run(ctx, g, DefaultConfig(), Options{Calib: npyReader(t, randTensor(1, 1, 2, 1, 28, 28), nil, 2)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, out.Graph, DefaultConfig(), Options{Calib: npyReader(t, randTensor(1, 1, 2, 1, 28, 28), nil, 2)})
	if err == nil || !strings.Contains(err.Error(), "already quantized") {
		t.Errorf("quantized model: %v", err)
	}
}

func TestRunAnalyzeAndMaxDrop(t *testing.T) {
	g, err := zoo.Build("lenet", zoo.Options{Seed: 7, Width: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(4, 1, 32, 1, 28, 28)
	y := labelsOf(t, g, x)
	cfg := DefaultConfig()
	cfg.Analyze = true
	zero := 0.0
	cfg.MaxDrop = &zero
	cfg.Activations = "int8" // coarser, so some layers matter
	cfg.ReduceRange = true
	out, err := Run(context.Background(), g, cfg, Options{Calib: npyReader(t, x, nil, 16), Eval: npyReader(t, x, y, 16), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep := out.Report
	if len(rep.Sensitivity) != 5 {
		t.Fatalf("sensitivity has %d layers, want 5", len(rep.Sensitivity))
	}
	for i := 1; i < len(rep.Sensitivity); i++ {
		a, b := rep.Sensitivity[i-1], rep.Sensitivity[i]
		if a.Drop < b.Drop || (a.Drop == b.Drop && a.SQNR > b.SQNR) {
			t.Errorf("sensitivity not sorted worst first: %+v then %+v", a, b)
		}
	}
	sr := rep.Search
	if sr == nil || len(sr.Steps) == 0 {
		t.Fatalf("no search report")
	}
	// With everything in FP32 the drop is 0, so the search always succeeds.
	if !sr.Reached || out.GateFailed || *rep.Drop > 0 {
		t.Errorf("search %+v, drop %v", sr, *rep.Drop)
	}
}

// outlierNet is Conv(3->8) -> Relu -> Conv(8->8) -> Relu -> GAP -> Flatten
// -> Gemm(8->4), with planted outliers: output channel 2 of conv1 is 12x
// larger (an activation outlier for conv2's input), and conv2's input
// channel 5 has 10x larger weights (a weight outlier).
func outlierNet(t *testing.T) *ir.Graph {
	t.Helper()
	b := ir.NewBuilder("outliers", 13)
	x := b.Input("input", tensor.Float32, -1, 3, 8, 8)
	w1 := randTensor(1, 0.3, 8, 3, 3, 3)
	for i := 2 * 27; i < 3*27; i++ {
		w1.F32()[i] *= 12
	}
	w2 := randTensor(2, 0.2, 8, 8, 3, 3)
	for o := range 8 {
		for k := range 9 {
			w2.F32()[(o*8+5)*9+k] *= 10
		}
	}
	pads := ir.IntsAttr("pads", 1, 1, 1, 1)
	y := b.Op("Conv", "conv1", []ir.ValueID{x, b.Param("w1", w1), b.Param("b1", randTensor(3, 0.1, 8))}, pads)
	y = b.Op("Relu", "relu1", []ir.ValueID{y})
	y = b.Op("Conv", "conv2", []ir.ValueID{y, b.Param("w2", w2), b.Param("b2", randTensor(4, 0.1, 8))}, pads)
	y = b.Op("Relu", "relu2", []ir.ValueID{y})
	y = b.Op("GlobalAveragePool", "gap", []ir.ValueID{y})
	y = b.Op("Flatten", "flat", []ir.ValueID{y})
	y = b.Op("Gemm", "fc", []ir.ValueID{y, b.Param("w3", randTensor(5, 0.5, 4, 8)), b.Param("b3", randTensor(6, 0.1, 4))}, ir.IntAttr("transB", 1))
	b.Output(y)
	return inferredGraph(t, b)
}

func maxRelDiff(a, b *tensor.Tensor) float64 {
	var scale, d float64
	for i, v := range a.F32() {
		scale = max(scale, math.Abs(float64(v)))
		d = max(d, math.Abs(float64(v)-float64(b.F32()[i])))
	}
	return d / scale
}

func TestOCSKeepsFunctionAndLowersError(t *testing.T) {
	g := outlierNet(t)
	x := randTensor(7, 1, 16, 3, 8, 8)
	for _, perChannel := range []bool{false, true} {
		cal := npyReader(t, x, nil, 8)
		split, rep, err := SplitOutliers(context.Background(), g, OCSOptions{Ratio: 0.25, PerChannel: perChannel, Calib: cal, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.ChannelsAdded == 0 || len(rep.Split) == 0 {
			t.Fatalf("per-channel %v: nothing split: %+v", perChannel, rep)
		}
		var w, a int
		for _, l := range rep.Split {
			w += l.WeightSplits
			a += l.ActivationSplits
			if l.WeightSplits+l.ActivationSplits > 2 {
				t.Errorf("edge %s->%s split %d channels, budget 2", l.Producer, l.Consumer, l.WeightSplits+l.ActivationSplits)
			}
		}
		if a == 0 || (!perChannel && w == 0) {
			t.Errorf("per-channel %v: %d weight and %d activation splits", perChannel, w, a)
		}
		if rep.ParamsAdded == 0 || rep.SizeCost <= 0 {
			t.Errorf("size cost not reported: %+v", rep)
		}
		if err := split.Verify(); err != nil {
			t.Fatal(err)
		}
		want, got := runOne(t, g, x), runOne(t, split, x)
		if d := maxRelDiff(want, got); d > 1e-5 {
			t.Errorf("per-channel %v: OCS changed the FP32 function: max rel diff %g", perChannel, d)
		}
		cfg := DefaultConfig()
		cfg.PerChannel = perChannel
		base := sqnr(want, runOne(t, quantizeForTest(t, g, cfg, x).Graph, x))
		after := sqnr(want, runOne(t, quantizeForTest(t, split, cfg, x).Graph, x))
		t.Logf("per-channel %v: SQNR %.2f dB -> %.2f dB with OCS (%d channels, %+v)", perChannel, base, after, rep.ChannelsAdded, rep.Split)
		if after < base+1 {
			t.Errorf("per-channel %v: OCS did not lower the error: %.2f -> %.2f dB", perChannel, base, after)
		}
	}
}

func TestCLEKeepsFunction(t *testing.T) {
	for _, spec := range []string{"mobilenetv2:0.25", "resnet8", "lenet"} {
		g, err := zoo.Build(spec, zoo.Options{Seed: 9, InC: 1, InH: 28, InW: 28})
		if err != nil {
			t.Fatal(err)
		}
		pg, err := Prepare(g)
		if err != nil {
			t.Fatal(err)
		}
		eq, rep, err := Equalize(pg, CLEOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Pairs) == 0 {
			t.Errorf("%s: no pairs equalized", spec)
			continue
		}
		if rep.SpreadAfter >= rep.SpreadBefore {
			t.Errorf("%s: spread %.2f -> %.2f", spec, rep.SpreadBefore, rep.SpreadAfter)
		}
		x := randTensor(11, 1, 4, 1, 28, 28)
		if d := maxRelDiff(runOne(t, pg, x), runOne(t, eq, x)); d > 1e-5 {
			t.Errorf("%s: CLE changed the function: %g", spec, d)
		}
		t.Logf("%s: %d pairs, %d iterations, spread %.2f -> %.2f", spec, len(rep.Pairs), rep.Iterations, rep.SpreadBefore, rep.SpreadAfter)
	}
}

func TestConfigFile(t *testing.T) {
	c, err := ParseConfig([]byte(`{"version": 1, "method": "percentile", "percentile": 99.9,
		"per_channel": false, "exclude": ["fc"], "layers": {"conv1": {"exclude": true}, "conv2": {"per_channel": true}}}`), ".json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Method != "percentile" || c.PerChannel || c.Activations != "uint8" || !c.ShareAddScales || len(c.Layers) != 2 {
		t.Errorf("parsed %+v", c)
	}
	n := &ir.Node{Name: "conv2", Op: "Conv"}
	if !c.WeightScheme(n, 0).PerChannel {
		t.Error("layer override per_channel ignored")
	}
	if why := c.excluded(0, &ir.Node{Name: "conv1", Op: "Conv"}); why == "" {
		t.Error("layer override exclude ignored")
	}
	for _, bad := range []string{
		`{"method": "minmax"}`,
		`{"version": 2}`,
		`{"version": 1, "methd": "kl"}`,
		`{"version": 1, "method": "bogus"}`,
		`{"version": 1, "ocs": 2}`,
		`{"version": 1} {}`,
		`version: 1`,
	} {
		if _, err := ParseConfig([]byte(bad), ".json"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if c, err := ParseConfig([]byte("version: 1\n"), ".yaml"); err != nil || c.Method != MethodMinMax {
		t.Errorf("yaml: %+v, %v", c, err)
	}
	round, err := ParseConfig(DefaultConfig().JSON(), ".json")
	if err != nil {
		t.Fatal(err)
	}
	if string(round.JSON()) != string(DefaultConfig().JSON()) {
		t.Errorf("round trip:\n%s\n%s", round.JSON(), DefaultConfig().JSON())
	}
}

func TestUpgradeOpset(t *testing.T) {
	g := smallNet(t, 11)
	up, err := UpgradeOpset(g)
	if err != nil || up.Opset("") != 13 || g.Opset("") != 11 {
		t.Fatalf("upgrade: %v", err)
	}
	b := ir.NewBuilder("sq", 11)
	x := b.Input("x", tensor.Float32, 1, 3)
	b.Output(b.Op("Squeeze", "sq", []ir.ValueID{x}, ir.IntsAttr("axes", 0)))
	if _, err := UpgradeOpset(b.G); err == nil {
		t.Error("Squeeze at opset 11 must not be upgraded")
	}
	if _, err := UpgradeOpset(smallNet(t, 10)); err == nil {
		t.Error("opset 10 must not be upgraded")
	}
}

// brokenNet is Gemm(4->8) -> Relu -> Gemm(8->3) where each weight has one
// huge element, so per-tensor int8 weights round every other weight to 0:
// quantizing either layer changes the predictions.
func brokenNet(t *testing.T) *ir.Graph {
	t.Helper()
	b := ir.NewBuilder("broken", 13)
	x := b.Input("input", tensor.Float32, -1, 4)
	w1 := randTensor(1, 1, 4, 8)
	w1.F32()[0] = 1e4
	w2 := randTensor(2, 1, 8, 3)
	w2.F32()[0] = 1e4
	y := b.Op("Gemm", "fc1", []ir.ValueID{x, b.Param("w1", w1)})
	y = b.Op("Relu", "relu", []ir.ValueID{y})
	y = b.Op("Gemm", "fc2", []ir.ValueID{y, b.Param("w2", w2)})
	b.Output(y)
	return inferredGraph(t, b)
}

func TestMaxDropCannot(t *testing.T) {
	g := brokenNet(t)
	x := randTensor(3, 1, 64, 4)
	cfg := DefaultConfig()
	cfg.PerChannel = false
	limit := 0.0
	cfg.MaxDrop = &limit
	out, err := Run(context.Background(), g, cfg, Options{Calib: npyReader(t, x, nil, 16), Eval: npyReader(t, x, labelsOf(t, g, x), 16), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	sr := out.Report.Search
	if !out.GateFailed || sr == nil || sr.Reached || !strings.Contains(sr.Message, "cannot") {
		t.Fatalf("gate %v, search %+v", out.GateFailed, sr)
	}
	if len(sr.Steps) != 2 || len(sr.FP32Layers) > 1 || out.Graph == nil {
		t.Errorf("steps %+v, FP32 layers %v", sr.Steps, sr.FP32Layers)
	}
	if *out.Report.Drop != sr.Steps[len(sr.FP32Layers)].Drop {
		t.Errorf("saved model's drop %v is not the best step's", *out.Report.Drop)
	}
}

// OCS across Flatten (conv -> pool -> flatten -> gemm) and between Gemms
// keeps the function too.
func TestOCSFlattenAndGemm(t *testing.T) {
	g, err := zoo.Build("lenet", zoo.Options{Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := Prepare(g)
	if err != nil {
		t.Fatal(err)
	}
	// Plant outliers: a large output channel in every producer.
	for i := range pg.Nodes {
		n := &pg.Nodes[i]
		if n.Op != "Conv" && n.Op != "Gemm" {
			continue
		}
		w := pg.Values[n.Inputs[1]].Const.Clone()
		for j := 0; j < w.Len()/w.Shape[0]; j++ {
			w.F32()[j] *= 8 // output channel 0 (Conv) / row 0 (Gemm, transB=1)
		}
		pg.Values[n.Inputs[1]].Const = w
	}
	x := randTensor(21, 1, 8, 1, 28, 28)
	split, rep, err := SplitOutliers(context.Background(), pg, OCSOptions{Ratio: 0.5, Calib: npyReader(t, x, nil, 4), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, l := range rep.Split {
		kinds[l.Producer+"->"+l.Consumer] = true
	}
	if len(rep.Split) < 3 {
		t.Errorf("split only %v (edges considered %d)", kinds, rep.Edges)
	}
	if d := maxRelDiff(runOne(t, pg, x), runOne(t, split, x)); d > 1e-5 {
		t.Errorf("OCS changed the function: %g (split %v)", d, kinds)
	}
	if _, err := rewrite.InferShapes(split); err != nil {
		t.Errorf("split graph's declared shapes are inconsistent: %v", err)
	}
}

// relu6Net is a MobileNet-style block: pointwise Conv(4->8) -> Clip(0, 6)
// -> depthwise Conv 3x3 (8) -> Clip(0, 6) -> pointwise Conv(8->4), with
// planted uneven ranges: depthwise channel c's weights are scaled by
// 4^(c-4) (1/256 to 64) and the expand weights are small, so on the test
// data no channel reaches the Clip's bound of 6 except channel 7 after
// the depthwise layer.
func relu6Net(t *testing.T) *ir.Graph { return relu6NetOp(t, "Clip") }

func relu6NetOp(t *testing.T, act string) *ir.Graph {
	t.Helper()
	b := ir.NewBuilder("relu6", 13)
	x := b.Input("input", tensor.Float32, -1, 4, 8, 8)
	dw := randTensor(2, 0.3, 8, 1, 3, 3)
	for c := range 8 {
		for k := range 9 {
			dw.F32()[c*9+k] *= float32(math.Pow(4, float64(c-4)))
		}
	}
	zero, six := b.Const("zero", tensor.FromFloat32(nil, []float32{0})), b.Const("six", tensor.FromFloat32(nil, []float32{6}))
	y := b.Op("Conv", "expand", []ir.ValueID{x, b.Param("w1", randTensor(1, 0.2, 8, 4, 1, 1)), b.Param("b1", randTensor(3, 0.05, 8))})
	if act == "Clip" {
		y = b.Op("Clip", "relu6a", []ir.ValueID{y, zero, six})
	} else {
		y = b.Op("Relu", "relu6a", []ir.ValueID{y})
	}
	y = b.Op("Conv", "dw", []ir.ValueID{y, b.Param("w2", dw), b.Param("b2", randTensor(4, 0.01, 8))},
		ir.IntsAttr("pads", 1, 1, 1, 1), ir.IntAttr("group", 8))
	if act == "Clip" {
		y = b.Op("Clip", "relu6b", []ir.ValueID{y, zero, six})
	} else {
		y = b.Op("Relu", "relu6b", []ir.ValueID{y})
	}
	y = b.Op("Conv", "project", []ir.ValueID{y, b.Param("w3", randTensor(5, 0.3, 4, 8, 1, 1)), b.Param("b3", randTensor(6, 0.05, 4))})
	b.Output(y)
	return inferredGraph(t, b)
}

// TestCLEThroughReLU6: with calibration data, pairs joined by a ReLU6 are
// equalized within the rule's bounds (the function is unchanged on the
// calibration data, saturated channels keep scale 1); without data they
// are skipped.
func TestCLEThroughReLU6(t *testing.T) {
	g := relu6Net(t)
	x := randTensor(7, 1, 32, 4, 8, 8)
	_, rep0, err := Equalize(g, CLEOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep0.Pairs) != 0 || rep0.ClipSkipped != 2 {
		t.Errorf("without data: pairs %v, skipped %d, want none and 2", rep0.Pairs, rep0.ClipSkipped)
	}
	eq, rep, err := EqualizeContext(context.Background(), g, CLEOptions{Calib: npyReader(t, x, nil, 8), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ClipPairs != 2 || len(rep.Pairs) != 2 || rep.ClipSaturated == 0 {
		t.Errorf("with data: %+v", rep)
	}
	if d := maxRelDiff(runOne(t, g, x), runOne(t, eq, x)); d > 1e-5 {
		t.Errorf("CLE through ReLU6 changed the function on the calibration data: %g", d)
	}
	// Per-tensor weights: measured, not asserted. On this net (and on an
	// untrained MobileNetV2) equalizing through ReLU6 within the bounds
	// lowers the SQNR (35.5 -> 33.4 dB) while the Relu twin gains a
	// little (35.9 -> 36.7 dB), which is why Run does not use it.
	sq := func(g *ir.Graph, cle bool) float64 {
		pg, err := Prepare(g)
		if err != nil {
			t.Fatal(err)
		}
		if cle {
			if pg, _, err = EqualizeContext(context.Background(), pg, CLEOptions{Calib: npyReader(t, x, nil, 8), Threads: 1}); err != nil {
				t.Fatal(err)
			}
		}
		cfg := DefaultConfig()
		cfg.PerChannel, cfg.Batches = false, 4
		out, err := Run(context.Background(), pg, cfg, Options{Calib: npyReader(t, x, nil, 8), Eval: npyReader(t, x, nil, 8), Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		return out.Report.QuantMetrics.SQNR
	}
	before, after := sq(g, false), sq(eq, false)
	relu := relu6NetOp(t, "Relu")
	t.Logf("Relu twin: per-tensor SQNR %.1f -> %.1f dB", sq(relu, false), sq(relu, true))
	t.Logf("%+v; per-tensor SQNR %.1f -> %.1f dB", rep, before, after)
}

// TestQDQSizeTarget guards the file-size target: a ResNet-8-like net's QDQ
// file is at most 27% of its FP32 file (26.9% when this test was written).
func TestQDQSizeTarget(t *testing.T) {
	g, err := zoo.Build("resnet8", zoo.Options{Seed: 3, InC: 1, InH: 28, InW: 28})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Batches = 1
	out, err := Run(context.Background(), g, cfg, Options{Calib: npyReader(t, randTensor(8, 1, 4, 1, 28, 28), nil, 4), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Report.Size.Ratio; r > 0.27 {
		t.Errorf("ResNet-8 QDQ file is %.2f%% of the FP32 file, want <= 27%%", 100*r)
	} else {
		t.Logf("ResNet-8 QDQ file: %d of %d bytes (%.2f%%)", out.Report.Size.QDQBytes, out.Report.Size.FP32Bytes, 100*r)
	}
}
