package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/goslim/goslim/autodiff"
	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// ErrStop, returned by a hook, ends training early and cleanly: the
// checkpoint (when configured) is written and Fit returns the result so
// far with a nil error.
var ErrStop = errors.New("train: stop requested")

// Config configures a training run. The JSON form is what config files
// hold (hooks and callbacks are not part of it).
type Config struct {
	// Epochs is the number of passes over the training data.
	Epochs int `json:"epochs"`
	// Optimizer and Schedule pick the update rule and learning rates.
	Optimizer OptimConfig    `json:"optimizer"`
	Schedule  ScheduleConfig `json:"schedule"`
	// DecayAll applies weight decay to every parameter; by default only
	// parameters of rank >= 2 (weights, not biases or BatchNorm scale and
	// shift) are decayed.
	DecayAll bool `json:"decay_all,omitempty"`
	// ClipNorm > 0 clips the global gradient norm, ClipValue > 0 each
	// gradient element.
	ClipNorm  float64 `json:"clip_norm,omitempty"`
	ClipValue float64 `json:"clip_value,omitempty"`
	// LabelSmoothing of the cross-entropy loss.
	LabelSmoothing float64 `json:"label_smoothing,omitempty"`
	// FreezeBatchNorm keeps BatchNorm in inference mode (running
	// statistics are used and not updated).
	FreezeBatchNorm bool `json:"freeze_batchnorm,omitempty"`
	// Seed seeds the loop's random stream (Dropout masks). Data order and
	// augmentation are seeded where the reader is opened.
	Seed uint64 `json:"seed"`
	// Threads and Kernels configure the sessions (0 threads = all cores;
	// runs are bit-identical for a fixed thread count and kernel tier).
	Threads int    `json:"threads,omitempty"`
	Kernels string `json:"kernels,omitempty"`
	// CheckpointDir, when set, receives a checkpoint at the end of every
	// epoch, every CheckpointEvery steps (when > 0), and when training
	// stops early (ErrStop or a cancelled context).
	CheckpointDir   string `json:"checkpoint_dir,omitempty"`
	CheckpointEvery int    `json:"checkpoint_every,omitempty"`
	// Resume continues from the checkpoint in CheckpointDir when there is
	// one (and starts afresh when there is none).
	Resume bool `json:"resume,omitempty"`

	// Loss, when set, builds the scalar loss into b (a clone of the model)
	// from the logits and the int64 labels input; the default is the
	// softmax cross-entropy with LabelSmoothing. Extra graph inputs it adds
	// are fed by Feeds.
	Loss func(b *ir.Builder, logits, labels ir.ValueID) (ir.ValueID, error) `json:"-"`
	// Feeds returns tensors for extra inputs of the loss graph, by name.
	Feeds func(ctx context.Context, b *dataset.Batch) (map[string]*tensor.Tensor, error) `json:"-"`
	// Progress is called after every training step and validation batch.
	Progress func(Progress) `json:"-"`
	// OnStep and OnEpoch are hooks after each step and each epoch
	// (after validation); returning ErrStop ends training cleanly, any
	// other error aborts it.
	OnStep  func(*StepInfo) error   `json:"-"`
	OnEpoch func(*EpochStats) error `json:"-"`
}

// Progress describes where a run is, for progress bars.
type Progress struct {
	// Phase is "train" or "val".
	Phase string
	// Epoch counts from 1 to Epochs.
	Epoch, Epochs int
	// Step and Steps count batches of this phase in this epoch.
	Step, Steps int
	// Loss and Acc are the running mean loss and top-1 accuracy of the
	// epoch's training batches so far.
	Loss, Acc float64
	// LR is the current learning rate.
	LR float64
	// ImagesPerSec is the training throughput of this epoch.
	ImagesPerSec float64
	// Elapsed is the wall time of this process's run; ETA estimates the
	// time left for the whole run.
	Elapsed, ETA time.Duration
}

// StepInfo describes one finished optimizer step.
type StepInfo struct {
	// Step counts optimizer steps from 1 over the run; Epoch from 1.
	Step, Epoch int
	Loss        float64
	// Correct of Batch samples were classified right.
	Correct, Batch int
	LR             float64
	// GradNorm is the global gradient norm before clipping.
	GradNorm float64
}

// EpochStats summarize one epoch.
type EpochStats struct {
	Epoch int     `json:"epoch"`
	Loss  float64 `json:"loss"`
	Acc   float64 `json:"acc"`
	LR    float64 `json:"lr"`
	// Val holds the validation metrics, when there is validation data.
	ValLoss float64 `json:"val_loss,omitempty"`
	ValTop1 float64 `json:"val_top1,omitempty"`
	ValTop5 float64 `json:"val_top5,omitempty"`
	// Seconds of training (without validation) and the throughput.
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
}

// Result is the outcome of Fit.
type Result struct {
	// History holds one entry per finished epoch (also those before a
	// resume).
	History []EpochStats
	// Steps is the number of optimizer steps done in total.
	Steps int
	// Resumed reports that the run continued from a checkpoint.
	Resumed bool
	// Stopped reports an early stop (ErrStop or cancellation).
	Stopped bool
	// Val holds the last validation metrics, or nil.
	Val *Metrics
}

// Trainer trains one model: it holds the training program, the session
// that runs it, the parameter store and the optimizer.
type Trainer struct {
	cfg     Config
	model   *ir.Graph
	prog    *autodiff.Program
	sess    *infer.Session
	store   *Store
	opt     Optimizer
	optName string
	feed    *feeder
	extra   map[string]int // extra loss inputs by name -> position
	pIn     []int          // program input position of each parameter
	sIn     []int          // ... of each state
	seedIn  int            // ... of the Dropout seed, or -1
	logits  int            // program output position of the logits
	grads   []int          // program output position of each gradient
	updates []int          // ... of each state update
	rng     *rand.PCG
}

// New prepares training of model, a classifier with one image input and
// logits N×C as its first output (zoo models qualify). model is not
// modified.
func New(model *ir.Graph, cfg Config) (*Trainer, error) {
	if cfg.Epochs < 1 {
		return nil, fmt.Errorf("train: epochs %d must be at least 1", cfg.Epochs)
	}
	if len(model.Outputs) == 0 {
		return nil, fmt.Errorf("train: the model has no outputs")
	}
	if cfg.LabelSmoothing < 0 || cfg.LabelSmoothing >= 1 {
		return nil, fmt.Errorf("train: label smoothing %v outside [0, 1)", cfg.LabelSmoothing)
	}
	if cfg.CheckpointEvery < 0 {
		return nil, fmt.Errorf("train: checkpoint interval %d is negative", cfg.CheckpointEvery)
	}
	if cfg.Resume && cfg.CheckpointDir == "" {
		return nil, fmt.Errorf("train: resuming needs a checkpoint folder")
	}
	lm := model.Clone()
	b := &ir.Builder{G: lm}
	logits := lm.Outputs[0]
	labels := b.Input("labels", tensor.Int64, -1)
	var loss ir.ValueID
	if cfg.Loss != nil {
		var err error
		if loss, err = cfg.Loss(b, logits, labels); err != nil {
			return nil, err
		}
	} else {
		loss = autodiff.CrossEntropy(b, logits, labels, float32(cfg.LabelSmoothing))
	}
	prog, err := autodiff.Build(lm, loss, autodiff.Options{Outputs: []ir.ValueID{logits}, FreezeBatchNorm: cfg.FreezeBatchNorm})
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, model: model, prog: prog, seedIn: -1, extra: map[string]int{}}
	var params, states []ir.ValueID
	for _, p := range prog.Params {
		params = append(params, p.Value)
	}
	for _, s := range prog.States {
		states = append(states, s.Value)
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("train: the model has no trainable parameters")
	}
	if t.store, err = NewStore(model, params, states); err != nil {
		return nil, err
	}
	decay := make([]bool, len(params))
	for i, id := range params {
		decay[i] = cfg.DecayAll || len(model.Values[id].Const.Shape) >= 2
	}
	if t.opt, err = NewOptimizer(cfg.Optimizer, len(params), decay); err != nil {
		return nil, err
	}
	t.optName = strings.ToLower(cfg.Optimizer.Name)
	if t.optName == "" {
		t.optName = "sgd"
	}
	g := prog.Graph
	skip := map[ir.ValueID]bool{labels: true}
	for _, p := range prog.Params {
		t.pIn = append(t.pIn, prog.InputIndex(p.Input))
		t.grads = append(t.grads, prog.OutputIndex(p.Grad))
		skip[p.Input] = true
	}
	for _, s := range prog.States {
		t.sIn = append(t.sIn, prog.InputIndex(s.Input))
		t.updates = append(t.updates, prog.OutputIndex(s.Update))
		skip[s.Input] = true
	}
	if prog.Seed != ir.NoValue {
		t.seedIn = prog.InputIndex(prog.Seed)
		skip[prog.Seed] = true
	}
	// Model data inputs are fed from the batch; inputs the loss added
	// (beyond labels) from cfg.Feeds.
	for i, id := range g.Inputs {
		if skip[id] || g.Values[id].Const != nil {
			continue
		}
		if int(id) >= len(model.Values) || !model.IsInput(id) {
			t.extra[g.Values[id].Name] = i
			skip[id] = true
		}
	}
	if len(t.extra) > 0 && cfg.Feeds == nil {
		return nil, fmt.Errorf("train: the loss has extra inputs but Config.Feeds is nil")
	}
	if t.feed, err = newFeeder(g, skip); err != nil {
		return nil, err
	}
	t.feed.labels = prog.InputIndex(labels)
	t.logits = prog.OutputIndex(logits)
	if t.logits < 0 || t.feed.labels < 0 {
		return nil, fmt.Errorf("train: the training program lacks the logits or labels")
	}
	for i := range t.pIn {
		if t.pIn[i] < 0 || t.grads[i] < 0 {
			return nil, fmt.Errorf("train: the training program lacks parameter %d", i)
		}
	}
	for i := range t.sIn {
		if t.sIn[i] < 0 || t.updates[i] < 0 {
			return nil, fmt.Errorf("train: the training program lacks state %d", i)
		}
	}
	if t.sess, err = infer.NewSession(g, infer.Options{Threads: cfg.Threads, Kernels: cfg.Kernels}); err != nil {
		return nil, err
	}
	t.rng = rand.NewPCG(cfg.Seed, 0x747261696e)
	return t, nil
}

// Store returns the parameter store.
func (t *Trainer) Store() *Store { return t.store }

// Program returns the training program.
func (t *Trainer) Program() *autodiff.Program { return t.prog }

// Model returns the trained inference model (see Store.Model).
func (t *Trainer) Model() (*ir.Graph, error) { return t.store.Model() }

// Fit trains for cfg.Epochs epochs over trainData (read from the start of
// epoch 0, or from the checkpoint's position when resuming), validating on
// valData (may be nil) after every epoch. The readers' seeds are the
// caller's: a resumed run must open them with the same options.
//
// With one thread and a fixed kernel tier, Fit is deterministic: the same
// inputs give bit-identical parameters, whether or not the run was
// interrupted and resumed.
func (t *Trainer) Fit(ctx context.Context, trainData, valData dataset.Reader) (*Result, error) {
	cfg := t.cfg
	steps := trainData.Len()
	if steps == 0 {
		return nil, fmt.Errorf("train: the training data has no batches")
	}
	sched, err := cfg.Schedule.Build(steps, cfg.Epochs)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var acc epochAcc
	step := 0
	pos := dataset.Position{}
	if cfg.Resume {
		ck, err := loadCheckpoint(cfg.CheckpointDir, t.store, t.opt, t.optName)
		switch {
		case errors.Is(err, errNoCheckpoint):
		case err != nil:
			return nil, err
		default:
			if err := t.rng.UnmarshalBinary(ck.RNG); err != nil {
				return nil, fmt.Errorf("train: checkpoint RNG state: %w", err)
			}
			step, pos, acc, res.History, res.Resumed = ck.Step, ck.Position, ck.Acc, ck.History, true
		}
	}
	if err := trainData.Seek(pos); err != nil {
		return nil, err
	}
	save := func() error {
		if cfg.CheckpointDir == "" {
			return nil
		}
		rng, _ := t.rng.MarshalBinary()
		conf, _ := json.Marshal(cfg)
		ck := &checkpoint{Format: checkpointFormat, Version: checkpointVersion, Step: step,
			Position: trainData.Position(), RNG: rng, Optimizer: t.optName, Acc: acc,
			History: res.History, Config: conf}
		for _, id := range t.store.params {
			ck.Params = append(ck.Params, t.model.Values[id].Name)
		}
		for _, id := range t.store.states {
			ck.States = append(ck.States, t.model.Values[id].Name)
		}
		return saveCheckpoint(cfg.CheckpointDir, ck, t.store, t.opt)
	}
	stop := func(err error) (*Result, error) {
		res.Steps = step
		if serr := save(); serr != nil {
			return nil, serr
		}
		if errors.Is(err, ErrStop) {
			res.Stopped = true
			return res, nil
		}
		return res, err
	}

	start := time.Now()
	doneHere := 0 // steps run by this process, for the ETA
	totalSteps := steps * cfg.Epochs
	params := t.store.tensors(t.store.params)
	progress := func(p Progress) {
		if cfg.Progress == nil {
			return
		}
		p.Epochs = cfg.Epochs
		p.Elapsed = time.Since(start)
		if doneHere > 0 {
			perStep := p.Elapsed.Seconds() / float64(doneHere)
			p.ETA = time.Duration(perStep * float64(totalSteps-step) * float64(time.Second))
		}
		cfg.Progress(p)
	}
	for epoch := pos.Epoch; epoch < cfg.Epochs; epoch++ {
		if trainData.Position().Epoch != epoch {
			if err := trainData.Seek(dataset.Position{Epoch: epoch}); err != nil {
				return nil, err
			}
			acc = epochAcc{}
		}
		epochStart := time.Now()
		baseSeconds := acc.Seconds
		lr := sched.LR(step)
		for {
			if err := ctx.Err(); err != nil {
				acc.Seconds = baseSeconds + time.Since(epochStart).Seconds()
				return stop(err)
			}
			before, rngBefore := trainData.Position(), *t.rng
			b, err := trainData.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return stop(ctx.Err())
				}
				return nil, err
			}
			lr = sched.LR(step)
			info, err := t.step(ctx, &b, params, lr)
			if err != nil {
				if ctx.Err() != nil {
					// The step did not happen: give its batch and random
					// draw back so a resumed run repeats it.
					*t.rng = rngBefore
					if serr := trainData.Seek(before); serr != nil {
						return nil, serr
					}
					return stop(ctx.Err())
				}
				return nil, fmt.Errorf("train: epoch %d step %d: %w", epoch+1, step+1, err)
			}
			step++
			doneHere++
			info.Step, info.Epoch = step, epoch+1
			acc.LossSum += info.Loss * float64(info.Batch)
			acc.Correct += info.Correct
			acc.Seen += info.Batch
			acc.Steps++
			acc.Seconds = baseSeconds + time.Since(epochStart).Seconds()
			progress(Progress{Phase: "train", Epoch: epoch + 1, Step: acc.Steps, Steps: steps,
				Loss: acc.LossSum / float64(acc.Seen), Acc: float64(acc.Correct) / float64(acc.Seen),
				LR: lr, ImagesPerSec: float64(acc.Seen) / max(acc.Seconds, 1e-9)})
			if cfg.OnStep != nil {
				if err := cfg.OnStep(info); err != nil {
					return stop(err)
				}
			}
			if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 {
				if err := save(); err != nil {
					return nil, err
				}
			}
		}
		es := EpochStats{Epoch: epoch + 1, LR: lr, Seconds: acc.Seconds}
		if acc.Seen > 0 {
			es.Loss = acc.LossSum / float64(acc.Seen)
			es.Acc = float64(acc.Correct) / float64(acc.Seen)
			es.ImagesPerSec = float64(acc.Seen) / max(acc.Seconds, 1e-9)
		}
		if valData != nil {
			m, err := t.validate(ctx, valData, func(done, total int) {
				progress(Progress{Phase: "val", Epoch: epoch + 1, Step: done, Steps: total,
					Loss: es.Loss, Acc: es.Acc, LR: lr, ImagesPerSec: es.ImagesPerSec})
			})
			if err != nil {
				if ctx.Err() != nil {
					return stop(ctx.Err())
				}
				return nil, err
			}
			res.Val = m
			es.ValLoss, es.ValTop1, es.ValTop5 = m.Loss, m.Top1, m.Top5
		}
		res.History = append(res.History, es)
		acc = epochAcc{}
		if err := trainData.Seek(dataset.Position{Epoch: epoch + 1}); err != nil {
			return nil, err
		}
		var hookErr error
		if cfg.OnEpoch != nil {
			hookErr = cfg.OnEpoch(&res.History[len(res.History)-1])
		}
		if hookErr != nil {
			return stop(hookErr)
		}
		if err := save(); err != nil {
			return nil, err
		}
	}
	res.Steps = step
	return res, nil
}

// validate evaluates the current parameters on valData.
func (t *Trainer) validate(ctx context.Context, valData dataset.Reader, progress func(done, total int)) (*Metrics, error) {
	g, err := t.store.Model()
	if err != nil {
		return nil, err
	}
	return Evaluate(ctx, g, valData, EvalOptions{Threads: t.cfg.Threads, Kernels: t.cfg.Kernels, Progress: progress})
}

// step runs one forward/backward pass on b and updates the parameters.
func (t *Trainer) step(ctx context.Context, b *dataset.Batch, params []*tensor.Tensor, lr float64) (*StepInfo, error) {
	extra := make([]*tensor.Tensor, len(t.prog.Graph.Inputs))
	for i, pos := range t.pIn {
		extra[pos] = params[i]
	}
	for i, pos := range t.sIn {
		extra[pos] = t.store.Value(t.store.states[i])
	}
	if t.seedIn >= 0 {
		extra[t.seedIn] = tensor.FromInt64(tensor.Shape{}, []int64{int64(t.rng.Uint64() >> 1)})
	}
	if len(t.extra) > 0 {
		feeds, err := t.cfg.Feeds(ctx, b)
		if err != nil {
			return nil, err
		}
		for name, pos := range t.extra {
			f, ok := feeds[name]
			if !ok {
				return nil, fmt.Errorf("Config.Feeds gave no %q", name)
			}
			extra[pos] = f
		}
	}
	in, err := t.feed.inputs(b, extra)
	if err != nil {
		return nil, err
	}
	outs, err := t.sess.RunInputs(ctx, in)
	if err != nil {
		return nil, err
	}
	lt := outs[0]
	if lt.DType != tensor.Float32 || lt.Len() != 1 {
		return nil, fmt.Errorf("loss is %v%v, want a float32 scalar", lt.DType, lt.Shape)
	}
	loss := float64(lt.F32()[0])
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return nil, fmt.Errorf("loss is %v (diverged; try a lower learning rate or --clip-norm)", loss)
	}
	info := &StepInfo{Loss: loss, LR: lr, Batch: b.Len()}
	if n, c, err := logitsShape(outs[t.logits], b.Len()); err == nil && b.Labels != nil {
		lg := outs[t.logits].F32()
		for i := range n {
			if pred, _ := argmaxRank(lg[i*c:(i+1)*c], 0); int64(pred) == b.Labels.I64()[i] {
				info.Correct++
			}
		}
	}
	grads := make([]*tensor.Tensor, len(t.grads))
	for i, pos := range t.grads {
		grads[i] = outs[pos]
	}
	info.GradNorm = ClipGradNorm(grads, t.cfg.ClipNorm)
	ClipGradValue(grads, t.cfg.ClipValue)
	if err := t.opt.Step(params, grads, lr); err != nil {
		return nil, err
	}
	for i, pos := range t.updates {
		if err := t.store.Set(t.store.states[i], outs[pos]); err != nil {
			return nil, err
		}
	}
	return info, nil
}
