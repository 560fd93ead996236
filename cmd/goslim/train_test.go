package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
)

// tinyNPY writes n 1×12×12 images of 3 classes (noise plus a bright patch
// in the class's column band) as x.npy and y.npy and returns the spec.
func tinyNPY(t *testing.T, n int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*144)
	y := make([]int64, n)
	for i := range n {
		for j := range 144 {
			x[i*144+j] = float32(0.5 * rng.Float64())
		}
		k := rng.IntN(3)
		y[i] = int64(k)
		r0, c0 := rng.IntN(9), 4*k+rng.IntN(1)
		for r := r0; r < r0+4; r++ {
			for c := c0; c < c0+4; c++ {
				x[i*144+r*12+c] += 0.5
			}
		}
	}
	dir := t.TempDir()
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteFile(xp, tensor.FromFloat32(tensor.Shape{n, 1, 12, 12}, x)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(yp, tensor.FromInt64(tensor.Shape{n}, y)); err != nil {
		t.Fatal(err)
	}
	return "npy:" + xp + "," + yp
}

func TestTrainEvalCLI(t *testing.T) {
	data := tinyNPY(t, 96)
	dir := t.TempDir()
	out := filepath.Join(dir, "m.onnx")
	args := []string{"train", "--arch", "lenet:0.5", "--data", data, "--val", data, "--epochs", "3", "--batch", "16",
		"--seed", "3", "--threads", "1", "--optimizer", "adam", "--lr", "0.01", "--preprocess", "symmetric", "--out", out}
	var tr struct {
		Steps   int `json:"steps"`
		History []struct {
			ValTop1 float64 `json:"val_top1"`
		} `json:"history"`
		Val struct {
			Top1 float64 `json:"top1"`
		} `json:"val"`
	}
	goslimJSON(t, &tr, append(args, "--json")...)
	if tr.Steps != 3*6 || len(tr.History) != 3 || tr.Val.Top1 < 0.8 {
		t.Errorf("steps %d, epochs %d, val top1 %v", tr.Steps, len(tr.History), tr.Val.Top1)
	}
	g, err := onnx.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.Meta["goslim.preprocess"], "0.5") {
		t.Errorf("metadata goslim.preprocess = %q", g.Meta["goslim.preprocess"])
	}

	var ev struct {
		Samples   int       `json:"samples"`
		Top1      float64   `json:"top1"`
		Top5      float64   `json:"top5"`
		PerClass  []float64 `json:"per_class"`
		Confusion [][]int   `json:"confusion"`
	}
	goslimJSON(t, &ev, "eval", out, "--data", data, "--json", "--threads", "1")
	if ev.Samples != 96 || ev.Top1 != tr.Val.Top1 || ev.Top5 != 1 || len(ev.PerClass) != 3 || len(ev.Confusion) != 3 {
		t.Errorf("eval: %+v; train's val top1 %v", ev, tr.Val.Top1)
	}
	code, stdout, _ := goslim(t, "eval", out, "--data", data)
	if code != 0 || !strings.Contains(stdout, "top-1") || !strings.Contains(stdout, "confusion matrix") {
		t.Errorf("eval text output: %s", stdout)
	}

	// Same seed, one thread: the same model file, byte for byte.
	out2 := filepath.Join(dir, "m2.onnx")
	args[len(args)-1] = out2
	if code, _, stderr := goslim(t, args...); code != 0 {
		t.Fatalf("second train: %s", stderr)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("two runs with the same seed wrote different models")
	}

	// Fine-tune the trained ONNX file: parameters are found again, the
	// normalization comes from its metadata.
	out3 := filepath.Join(dir, "m3.onnx")
	code, stdout, stderr := goslim(t, "train", "--model", out, "--data", data, "--val", data, "--epochs", "1", "--batch", "16",
		"--threads", "1", "--optimizer", "adam", "--lr", "0.001", "--out", out3, "--json")
	if code != 0 {
		t.Fatalf("fine-tune: exit %d: %s", code, stderr)
	}
	var ft struct {
		Val struct {
			Top1 float64 `json:"top1"`
		} `json:"val"`
		Preprocess string `json:"preprocess"`
	}
	json.Unmarshal([]byte(stdout), &ft)
	if ft.Val.Top1 < 0.8 || !strings.Contains(ft.Preprocess, "0.5") {
		t.Errorf("fine-tuned: val top1 %v, preprocess %q", ft.Val.Top1, ft.Preprocess)
	}
}

func TestTrainConfigAndResume(t *testing.T) {
	data := tinyNPY(t, 64)
	dir := t.TempDir()
	conf := filepath.Join(dir, "run.json")
	os.WriteFile(conf, []byte(`{"version": 1, "arch": "mlp:0.1", "data": "`+data+`", "epochs": 1, "batch": 32,
		"optimizer": "adamw", "lr": 0.01, "seed": 5, "threads": 1}`), 0o644)
	out := filepath.Join(dir, "a.onnx")
	// The flag --epochs 2 wins over the file's 1; batch 32 comes from the file.
	code, stdout, stderr := goslim(t, "train", "--config", conf, "--epochs", "2", "--out", out, "--json",
		"--checkpoint", filepath.Join(dir, "ck"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Steps   int `json:"steps"`
		Options struct {
			Optimizer string `json:"optimizer"`
		} `json:"options"`
	}
	json.Unmarshal([]byte(stdout), &r)
	if r.Steps != 4 || r.Options.Optimizer != "adamw" {
		t.Errorf("steps %d (want 2 epochs of 2), optimizer %q", r.Steps, r.Options.Optimizer)
	}
	if _, err := os.Stat(filepath.Join(dir, "ck", "checkpoint.npz")); err != nil {
		t.Errorf("no checkpoint: %v", err)
	}
	// Resuming a finished run trains nothing more and writes the same model.
	out2 := filepath.Join(dir, "b.onnx")
	code, stdout, stderr = goslim(t, "train", "--config", conf, "--epochs", "2", "--out", out2, "--json",
		"--checkpoint", filepath.Join(dir, "ck"), "--resume")
	if code != 0 || !strings.Contains(stdout, `"resumed": true`) {
		t.Fatalf("resume: exit %d: %s %s", code, stdout, stderr)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("resumed finished run wrote a different model")
	}

	bad := filepath.Join(dir, "bad.json")
	for _, c := range []string{`{"version": 2}`, `{"version": 1, "epoch": 3}`, `{`} {
		os.WriteFile(bad, []byte(c), 0o644)
		if code, _, _ := goslim(t, "train", "--config", bad, "--out", out); code != 2 {
			t.Errorf("config %s: exit %d, want 2", c, code)
		}
	}
}

func TestTrainUsageErrors(t *testing.T) {
	data := tinyNPY(t, 32)
	model := writeLeNet(t)
	for _, args := range [][]string{
		{"train", "--arch", "lenet", "--out", "x.onnx"},                                           // no data
		{"train", "--arch", "lenet", "--data", data},                                              // no out
		{"train", "--data", data, "--out", "x.onnx"},                                              // no arch or model
		{"train", "--arch", "vgg", "--data", data, "--out", filepath.Join(t.TempDir(), "x.onnx")}, // unknown arch
		{"train", "--model", model, "--data", data, "--out", model},                               // overwrite input
		{"train", "--arch", "lenet", "--data", data, "--out", "x.onnx", "--resume"},               // resume without dir
		{"eval", model}, // no data
		{"eval", model, "--data", "nosuch:thing"}, // bad spec
	} {
		if code, _, _ := goslim(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
