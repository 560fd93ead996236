package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/train"
	"github.com/goslim/goslim/zoo"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// trainConfigVersion is the version of train config files.
const trainConfigVersion = 1

// trainOptions are the flags of `goslim train`; the JSON names are the
// flag names, so a config file holds the same fields.
type trainOptions struct {
	Version         int     `json:"version"`
	Arch            string  `json:"arch,omitempty"`
	Model           string  `json:"model,omitempty"`
	Data            string  `json:"data,omitempty"`
	Val             string  `json:"val,omitempty"`
	Out             string  `json:"out,omitempty"`
	Epochs          int     `json:"epochs,omitempty"`
	Batch           int     `json:"batch,omitempty"`
	Seed            uint64  `json:"seed"`
	Optimizer       string  `json:"optimizer,omitempty"`
	LR              float64 `json:"lr,omitempty"`
	Momentum        float64 `json:"momentum,omitempty"`
	Nesterov        bool    `json:"nesterov,omitempty"`
	WeightDecay     float64 `json:"weight-decay,omitempty"`
	DecayAll        bool    `json:"decay-all,omitempty"`
	Schedule        string  `json:"schedule,omitempty"`
	MinLR           float64 `json:"min-lr,omitempty"`
	Warmup          float64 `json:"warmup,omitempty"`
	StepEpochs      float64 `json:"step-epochs,omitempty"`
	Gamma           float64 `json:"gamma,omitempty"`
	ClipNorm        float64 `json:"clip-norm,omitempty"`
	ClipValue       float64 `json:"clip-value,omitempty"`
	LabelSmoothing  float64 `json:"label-smoothing,omitempty"`
	CropPad         int     `json:"crop-pad,omitempty"`
	Flip            bool    `json:"flip,omitempty"`
	Preprocess      string  `json:"preprocess,omitempty"`
	Limit           int     `json:"limit,omitempty"`
	Checkpoint      string  `json:"checkpoint,omitempty"`
	CheckpointEvery int     `json:"checkpoint-every,omitempty"`
	Resume          bool    `json:"resume,omitempty"`
	Threads         int     `json:"threads,omitempty"`
	Kernels         string  `json:"kernels,omitempty"`
}

func newTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	o := trainOptions{Version: trainConfigVersion}
	var configFile, progressMode string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "train --arch NAME[:WIDTH] --data SPEC --out MODEL.onnx",
		Short: "Train a zoo architecture (or an ONNX model) on a labelled data set",
		Long: `train builds a zoo architecture (lenet, mlp, resnetN, mobilenetv2, mobilenetv3s; NAME:WIDTH
scales the channels) or loads an ONNX model, trains it with reverse-mode gradients on goslim's own
engine, validates after every epoch, and writes the trained model as a plain ONNX file (BatchNorm in
inference form, input normalization in metadata goslim.preprocess) that ONNX Runtime runs too.

Data specs: ` + "mnist:train|test, fashion-mnist:train|test, npy:X.npy,Y.npy, npz:FILE, idx:IMAGES,LABELS, folder:DIR." + `
With --checkpoint DIR the run saves its full state (parameters, optimizer, random state, data
position) after every epoch and on Ctrl-C or SIGTERM; --resume continues it. With one thread and a fixed
kernel tier, a run is bit-identical for a given seed, interrupted or not.
--config FILE reads a JSON file with the flags' names as fields ("version": 1); flags win.`,
		Example: `  goslim train --arch lenet --data mnist:train --val mnist:test --epochs 5 --seed 1 --out lenet.onnx
  goslim train --arch resnet8 --data fashion-mnist:train --val fashion-mnist:test --epochs 15 \
      --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov --weight-decay 5e-4 --out resnet8.onnx
  goslim train --arch lenet:0.25 --data npy:x.npy,y.npy --epochs 3 --optimizer adam --lr 1e-3 --out tiny.onnx
  goslim train --config run.json --checkpoint ckpt/ --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				if err := loadConfigFile(cmd.Flags(), configFile, &o, trainConfigVersion); err != nil {
					return err
				}
			}
			return runTrain(cmd.Context(), stdout, stderr, o, progressMode, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "JSON config file with the same fields as the flags (flags win)")
	f.StringVar(&o.Arch, "arch", "", "zoo architecture NAME[:WIDTH]: "+strings.Join(zoo.Names(), ", "))
	f.StringVar(&o.Model, "model", "", "start from this ONNX model instead of --arch (never overwritten)")
	f.StringVar(&o.Data, "data", "", "training data spec, e.g. mnist:train")
	f.StringVar(&o.Val, "val", "", "validation data spec, e.g. mnist:test (evaluated after every epoch)")
	f.StringVar(&o.Out, "out", "", "where to write the trained ONNX model")
	f.IntVar(&o.Epochs, "epochs", 5, "epochs")
	f.IntVar(&o.Batch, "batch", 64, "batch size")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of initialization, data order, augmentation and dropout")
	f.StringVar(&o.Optimizer, "optimizer", "sgd", "sgd, adam or adamw")
	f.Float64Var(&o.LR, "lr", 0.05, "base learning rate")
	f.Float64Var(&o.Momentum, "momentum", 0.9, "SGD momentum")
	f.BoolVar(&o.Nesterov, "nesterov", false, "Nesterov momentum (SGD)")
	f.Float64Var(&o.WeightDecay, "weight-decay", 5e-4, "weight decay (L2 for sgd/adam, decoupled for adamw)")
	f.BoolVar(&o.DecayAll, "decay-all", false, "also decay biases and BatchNorm scale/shift")
	f.StringVar(&o.Schedule, "schedule", "cosine", "learning-rate schedule: cosine, step or constant")
	f.Float64Var(&o.MinLR, "min-lr", 0, "final learning rate of the cosine schedule")
	f.Float64Var(&o.Warmup, "warmup", 0, "epochs of linear warm-up (may be fractional)")
	f.Float64Var(&o.StepEpochs, "step-epochs", 0, "step schedule: decay every this many epochs")
	f.Float64Var(&o.Gamma, "gamma", 0.1, "step schedule: decay factor")
	f.Float64Var(&o.ClipNorm, "clip-norm", 0, "clip the global gradient norm to this (0 = off)")
	f.Float64Var(&o.ClipValue, "clip-value", 0, "clip each gradient element to ±this (0 = off)")
	f.Float64Var(&o.LabelSmoothing, "label-smoothing", 0, "label smoothing of the cross-entropy")
	f.IntVar(&o.CropPad, "crop-pad", 0, "augmentation: random crops after zero-padding by this many pixels")
	f.BoolVar(&o.Flip, "flip", false, "augmentation: random horizontal flips")
	f.StringVar(&o.Preprocess, "preprocess", "", "input normalization: "+strings.Join(dataset.PreprocessPresets(), ", ")+
		` or JSON {"mean":[..],"std":[..]} (default: the data set's preset, or the model's metadata)`)
	f.IntVar(&o.Limit, "limit", 0, "use only the first N samples of each data set (0 = all)")
	f.StringVar(&o.Checkpoint, "checkpoint", "", "folder for checkpoints (saved after every epoch and on Ctrl-C or SIGTERM)")
	f.IntVar(&o.CheckpointEvery, "checkpoint-every", 0, "also checkpoint every N steps (0 = per epoch only)")
	f.BoolVar(&o.Resume, "resume", false, "continue from the checkpoint in --checkpoint when there is one")
	f.IntVar(&o.Threads, "threads", 0, "threads (default: number of cores; use 1 for bit-identical runs)")
	f.StringVar(&o.Kernels, "kernels", "", "kernel tier: generic, avx2, avx512, vnni, amx (default: best for this CPU)")
	f.StringVar(&progressMode, "progress", "auto", "progress display: auto (bar on a terminal, else lines), bar, lines, none")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

// loadConfigFile reads a versioned JSON config into dst (a struct whose
// JSON field names are flag names), then re-applies the flags that were
// given on the command line, so flags win over the file.
func loadConfigFile(flags *pflag.FlagSet, path string, dst any, version int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if head.Version != version {
		return fmt.Errorf("config %s: version %d, want %d", path, head.Version, version)
	}
	changed := map[string]string{}
	flags.Visit(func(f *pflag.Flag) { changed[f.Name] = f.Value.String() })
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for name, v := range changed {
		if err := flags.Set(name, v); err != nil {
			return fmt.Errorf("flag --%s: %w", name, err)
		}
	}
	return nil
}

// defaultPreprocess returns the normalization preset of a data spec's
// kind, or "" when there is none.
func defaultPreprocess(spec string) string {
	s, err := dataset.ParseSpec(spec)
	if err != nil {
		return ""
	}
	switch s.Kind {
	case dataset.KindMNIST:
		return "mnist"
	case dataset.KindFashionMNIST:
		return "fashion-mnist"
	}
	return ""
}

// trainResult is the JSON output of `goslim train --json`.
type trainResult struct {
	Out       string             `json:"out"`
	Arch      string             `json:"arch,omitempty"`
	Seed      uint64             `json:"seed"`
	Epochs    int                `json:"epochs"`
	Steps     int                `json:"steps"`
	Resumed   bool               `json:"resumed,omitempty"`
	Stopped   bool               `json:"stopped,omitempty"`
	Seconds   float64            `json:"seconds"`
	History   []train.EpochStats `json:"history"`
	Val       *train.Metrics     `json:"val,omitempty"`
	Options   trainOptions       `json:"options"`
	Preproc   string             `json:"preprocess,omitempty"`
	ParamsCnt int                `json:"params"`
}

func runTrain(ctx context.Context, stdout, stderr io.Writer, o trainOptions, progressMode string, asJSON bool) error {
	switch {
	case o.Data == "":
		return fmt.Errorf("--data SPEC is required")
	case o.Out == "":
		return fmt.Errorf("--out MODEL.onnx is required")
	case (o.Arch == "") == (o.Model == ""):
		return fmt.Errorf("give exactly one of --arch NAME and --model FILE")
	case o.Epochs < 1:
		return fmt.Errorf("--epochs must be at least 1")
	case o.Batch < 1:
		return fmt.Errorf("--batch must be at least 1")
	case o.Resume && o.Checkpoint == "":
		return fmt.Errorf("--resume needs --checkpoint DIR")
	}
	if o.Model != "" {
		a, _ := filepath.Abs(o.Model)
		b, _ := filepath.Abs(o.Out)
		if a == b {
			return fmt.Errorf("--out %s would overwrite the input model", o.Out)
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C and SIGTERM stop after the current step, saving a checkpoint.
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()

	var base *ir.Graph
	meta := map[string]string{}
	if o.Model != "" {
		g, err := loadModel(o.Model)
		if err != nil {
			return err
		}
		base = train.MarkTrainable(g)
		for k, v := range g.Meta {
			meta[k] = v
		}
	}
	ppSpec := o.Preprocess
	if ppSpec == "" && base == nil {
		ppSpec = defaultPreprocess(o.Data)
	}
	pp, err := dataset.ResolvePreprocess(ppSpec, meta)
	if err != nil {
		return err
	}
	dopts := dataset.Options{BatchSize: o.Batch, DropLast: true, Shuffle: true, Seed: o.Seed,
		Augment: dataset.Augment{CropPad: o.CropPad, Flip: o.Flip}, Preprocess: pp, Limit: o.Limit}
	if base != nil {
		c, h, w, ok := imageInput(base)
		if ok {
			dopts.Channels, dopts.Height, dopts.Width = c, h, w
		}
	}
	trainData, err := dataset.Open(o.Data, dopts)
	if err != nil {
		return err
	}
	if trainData.Len() == 0 {
		return fmt.Errorf("--data %s has fewer samples than one batch of %d", o.Data, o.Batch)
	}
	if !trainData.HasLabels() {
		return fmt.Errorf("--data %s has no labels", o.Data)
	}
	if base == nil {
		in := trainData.Inputs()[0]
		if len(in.Shape) != 3 {
			return fmt.Errorf("--data %s: samples are %v, zoo models take C×H×W images", o.Data, in.Shape)
		}
		g, err := zoo.Build(o.Arch, zoo.Options{Classes: trainData.NumClasses(), Seed: o.Seed,
			InC: in.Shape[0], InH: in.Shape[1], InW: in.Shape[2]})
		if err != nil {
			return err
		}
		base = g
	}
	var valData *dataset.Dataset
	if o.Val != "" {
		vo := dataset.Options{BatchSize: max(o.Batch, 256), Preprocess: pp, Limit: o.Limit}
		if valData, err = dataset.Open(o.Val, vo); err != nil {
			return err
		}
		if !valData.HasLabels() {
			return fmt.Errorf("--val %s has no labels", o.Val)
		}
	}

	conf := train.Config{
		Epochs:    o.Epochs,
		Optimizer: train.OptimConfig{Name: o.Optimizer, Momentum: o.Momentum, Nesterov: o.Nesterov, WeightDecay: o.WeightDecay},
		Schedule: train.ScheduleConfig{Name: o.Schedule, LR: o.LR, MinLR: o.MinLR, WarmupEpochs: o.Warmup,
			StepEpochs: o.StepEpochs, Gamma: o.Gamma},
		DecayAll: o.DecayAll, ClipNorm: o.ClipNorm, ClipValue: o.ClipValue, LabelSmoothing: o.LabelSmoothing,
		Seed: o.Seed, Threads: o.Threads, Kernels: o.Kernels,
		CheckpointDir: o.Checkpoint, CheckpointEvery: o.CheckpointEvery, Resume: o.Resume,
	}
	if !strings.EqualFold(o.Optimizer, "sgd") {
		conf.Optimizer.Momentum, conf.Optimizer.Nesterov = 0, false
	}
	draw, err := newTrainProgress(stderr, progressMode)
	if err != nil {
		return err
	}
	conf.Progress = draw.update
	conf.OnEpoch = func(es *train.EpochStats) error {
		draw.epochDone(es, valData != nil)
		return nil
	}
	tr, err := train.New(base, conf)
	if err != nil {
		return err
	}
	start := time.Now()
	var val dataset.Reader
	if valData != nil {
		val = valData
	}
	res, err := tr.Fit(ctx, trainData, val)
	draw.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) && o.Checkpoint != "" && res != nil {
			return fmt.Errorf("interrupted after %d steps; checkpoint saved in %s (continue with --resume)", res.Steps, o.Checkpoint)
		}
		return err
	}
	g, err := tr.Model()
	if err != nil {
		return err
	}
	if g.Meta == nil {
		g.Meta = map[string]string{}
	}
	for k, v := range meta {
		g.Meta[k] = v
	}
	pp.SetMeta(g.Meta)
	prov, _ := json.Marshal(struct {
		Arch, Model, Data string
		Epochs            int
		Seed              uint64
	}{o.Arch, o.Model, o.Data, o.Epochs, o.Seed})
	g.Meta["goslim.train"] = string(prov)
	if err := onnx.WriteFile(o.Out, g); err != nil {
		return err
	}
	nparams := 0
	for _, id := range tr.Store().Params() {
		nparams += tr.Store().Value(id).Len()
	}
	out := trainResult{Out: o.Out, Arch: o.Arch, Seed: o.Seed, Epochs: o.Epochs, Steps: res.Steps,
		Resumed: res.Resumed, Stopped: res.Stopped, Seconds: time.Since(start).Seconds(), History: res.History,
		Val: res.Val, Options: o, ParamsCnt: nparams}
	if !pp.IsIdentity() {
		out.Preproc = pp.String()
	}
	if asJSON {
		return writeJSON(stdout, out)
	}
	what := o.Arch
	if what == "" {
		what = o.Model
	}
	fmt.Fprintf(stdout, "trained %s (%d parameters) for %d epochs, %d steps, in %s\n", what, nparams, len(res.History), res.Steps, time.Since(start).Round(time.Second))
	if res.Val != nil {
		fmt.Fprintf(stdout, "validation: top-1 %.2f%%, top-5 %.2f%%, loss %.4f on %d samples\n", 100*res.Val.Top1, 100*res.Val.Top5, res.Val.Loss, res.Val.Samples)
	}
	fmt.Fprintf(stdout, "saved %s\n", o.Out)
	return nil
}

// imageInput returns C, H, W of a model's first data input when it is a
// float N×C×H×W tensor with known C, H, W.
func imageInput(g *ir.Graph) (c, h, w int, ok bool) {
	for _, id := range g.Inputs {
		v := g.Values[id]
		if v.Const != nil {
			continue
		}
		s := v.Type.Shape
		if !v.Type.Ranked || len(s) != 4 || s[1].Size <= 0 || s[2].Size <= 0 || s[3].Size <= 0 {
			return 0, 0, 0, false
		}
		return int(s[1].Size), int(s[2].Size), int(s[3].Size), true
	}
	return 0, 0, 0, false
}

// trainProgress draws training progress on stderr: a bar per epoch phase
// on a terminal, one line per epoch otherwise.
type trainProgress struct {
	w     io.Writer
	mode  string // "bar", "lines" or "none"
	bar   *progressbar.ProgressBar
	phase string
	epoch int
	last  train.Progress
}

func newTrainProgress(w io.Writer, mode string) (*trainProgress, error) {
	switch mode {
	case "auto":
		mode = "lines"
		if isTerminal(w) {
			mode = "bar"
		}
	case "bar", "lines", "none":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bar, lines or none", mode)
	}
	return &trainProgress{w: w, mode: mode}, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *trainProgress) update(pr train.Progress) {
	p.last = pr
	if p.mode == "lines" && pr.Phase == "train" && pr.Steps >= 20 {
		// A line at every tenth of a long epoch, for logs.
		if tenth := pr.Step * 10 / pr.Steps; tenth != (pr.Step-1)*10/pr.Steps && tenth > 0 && tenth < 10 {
			fmt.Fprintf(p.w, "epoch %d/%d %3d%% (%d/%d): loss %.4f, acc %.2f%%, %.0f img/s, ETA %s\n", pr.Epoch, pr.Epochs,
				10*tenth, pr.Step, pr.Steps, pr.Loss, 100*pr.Acc, pr.ImagesPerSec, fmtDuration(pr.ETA))
		}
	}
	if p.mode != "bar" {
		return
	}
	if p.bar == nil || pr.Phase != p.phase || pr.Epoch != p.epoch {
		p.closeBar()
		p.phase, p.epoch = pr.Phase, pr.Epoch
		p.bar = progressbar.NewOptions(pr.Steps, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(24), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	if pr.Phase == "train" {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d  loss %.4f  acc %5.2f%%  %5.0f img/s  ETA %s", pr.Epoch, pr.Epochs,
			pr.Loss, 100*pr.Acc, pr.ImagesPerSec, fmtDuration(pr.ETA)))
	} else {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d  validating", pr.Epoch, pr.Epochs))
	}
	p.bar.Set(pr.Step)
}

func (p *trainProgress) closeBar() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

// epochDone prints the summary line of an epoch.
func (p *trainProgress) epochDone(es *train.EpochStats, hasVal bool) {
	if p.mode == "none" {
		return
	}
	p.closeBar()
	line := fmt.Sprintf("epoch %d/%d: loss %.4f, acc %.2f%%", es.Epoch, p.last.Epochs, es.Loss, 100*es.Acc)
	if hasVal {
		line += fmt.Sprintf(", val top-1 %.2f%% (loss %.4f)", 100*es.ValTop1, es.ValLoss)
	}
	line += fmt.Sprintf(", lr %.3g, %.1fs, %.0f img/s, ETA %s", es.LR, es.Seconds, es.ImagesPerSec, fmtDuration(p.last.ETA))
	fmt.Fprintln(p.w, line)
}

func (p *trainProgress) finish() { p.closeBar() }

// fmtDuration formats a duration rounded to seconds ("-" when unknown).
func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}
