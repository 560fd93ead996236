package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/tensor"
)

// CheckpointFile is the name of the checkpoint inside a checkpoint
// folder. It is a NumPy .npz archive (numpy.load reads it): the manifest
// as UTF-8 JSON bytes in "checkpoint.json", parameters in "param/NNNN",
// states in "state/NNNN" and optimizer buffers in "opt/SLOT/NNNN", where
// NNNN is the position in the manifest's name lists.
const CheckpointFile = "checkpoint.npz"

// checkpointFormat and checkpointVersion identify the manifest.
const (
	checkpointFormat  = "goslim.train.checkpoint"
	checkpointVersion = 1
)

// checkpoint is the manifest: everything but the tensors.
type checkpoint struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Step is the number of optimizer steps done.
	Step int `json:"step"`
	// Position is where the training data continues.
	Position dataset.Position `json:"position"`
	// RNG is the loop's PCG state (MarshalBinary).
	RNG []byte `json:"rng"`
	// Optimizer and OptSteps identify the optimizer and its step count.
	Optimizer string `json:"optimizer"`
	OptSteps  int64  `json:"optimizer_steps"`
	// Acc holds the running sums of the unfinished epoch.
	Acc epochAcc `json:"epoch_acc"`
	// History holds the finished epochs.
	History []EpochStats `json:"history"`
	// Params and States name the tensors in store order.
	Params []string `json:"params"`
	States []string `json:"states"`
	// Config is the run's configuration, for the record.
	Config json.RawMessage `json:"config,omitempty"`
}

// epochAcc are the running sums of one epoch.
type epochAcc struct {
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	Steps   int     `json:"steps"`
	Seconds float64 `json:"seconds"`
}

// saveCheckpoint writes ck and the tensors to dir/CheckpointFile
// atomically (a temporary file renamed over the old checkpoint).
func saveCheckpoint(dir string, ck *checkpoint, store *Store, opt Optimizer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	arrays := map[string]*tensor.Tensor{}
	for i, t := range store.tensors(store.params) {
		arrays[fmt.Sprintf("param/%04d", i)] = t
	}
	for i, t := range store.tensors(store.states) {
		arrays[fmt.Sprintf("state/%04d", i)] = t
	}
	slots, steps := opt.Slots()
	ck.OptSteps = steps
	for name, bufs := range slots {
		for i, t := range bufs {
			if t != nil {
				arrays[fmt.Sprintf("opt/%s/%04d", name, i)] = t
			}
		}
	}
	js, err := json.MarshalIndent(ck, "", "  ")
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	arrays["checkpoint.json"] = &tensor.Tensor{DType: tensor.Uint8, Shape: tensor.Shape{len(js)}, Data: js}
	return writeFileAtomic(filepath.Join(dir, CheckpointFile), func(w io.Writer) error { return npy.WriteNPZ(w, arrays) })
}

// errNoCheckpoint reports a folder without a checkpoint.
var errNoCheckpoint = errors.New("train: no checkpoint")

// loadCheckpoint reads dir/CheckpointFile into store and opt (whose
// parameters must match by name, dtype and shape) and returns the
// manifest. It returns an error wrapping errNoCheckpoint when the file
// does not exist.
func loadCheckpoint(dir string, store *Store, opt Optimizer, optName string) (*checkpoint, error) {
	path := filepath.Join(dir, CheckpointFile)
	arrays, err := npy.ReadNPZFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", errNoCheckpoint, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("train: checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	js := arrays["checkpoint.json"]
	if js == nil || js.DType != tensor.Uint8 {
		return nil, bad("no manifest")
	}
	var ck checkpoint
	if err := json.Unmarshal(js.U8(), &ck); err != nil {
		return nil, bad("manifest: %v", err)
	}
	if ck.Format != checkpointFormat || ck.Version != checkpointVersion {
		return nil, bad("format %q version %d, want %q version %d", ck.Format, ck.Version, checkpointFormat, checkpointVersion)
	}
	if ck.Optimizer != optName {
		return nil, bad("made with optimizer %q, this run uses %q", ck.Optimizer, optName)
	}
	g := store.Graph()
	for k, list := range map[string][]string{"param": ck.Params, "state": ck.States} {
		ids := store.params
		if k == "state" {
			ids = store.states
		}
		if len(list) != len(ids) {
			return nil, bad("%d %ss, the model has %d", len(list), k, len(ids))
		}
		for i, id := range ids {
			name := g.Values[id].Name
			if list[i] != name {
				return nil, bad("%s %d is %q, the model has %q", k, i, list[i], name)
			}
			t := arrays[fmt.Sprintf("%s/%04d", k, i)]
			if err := store.Set(id, t); err != nil {
				return nil, bad("%s %q: %v", k, name, err)
			}
		}
	}
	slots, _ := opt.Slots()
	restored := map[string][]*tensor.Tensor{}
	for name, bufs := range slots {
		out := make([]*tensor.Tensor, len(bufs))
		for i := range bufs {
			t := arrays[fmt.Sprintf("opt/%s/%04d", name, i)]
			if t == nil {
				continue
			}
			p := store.Value(store.params[i])
			if t.DType != tensor.Float32 || !t.Shape.Equal(p.Shape) {
				return nil, bad("optimizer buffer %s of %q is %v%v, want float32%v", name, g.Values[store.params[i]].Name, t.DType, t.Shape, p.Shape)
			}
			out[i] = t
		}
		restored[name] = out
	}
	if err := opt.SetSlots(restored, ck.OptSteps); err != nil {
		return nil, bad("%v", err)
	}
	return &ck, nil
}

// writeFileAtomic writes path through a temporary file in the same folder
// and a rename, so readers never see a partial file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("train: writing %s: %w", path, err)
	}
	return nil
}
