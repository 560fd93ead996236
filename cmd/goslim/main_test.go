package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goslim/goslim/npy"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/tensor"
	"github.com/goslim/goslim/zoo"
)

// goslim runs the CLI in-process and returns exit code, stdout, stderr.
func goslim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeLeNet(t *testing.T) string {
	t.Helper()
	g, err := zoo.LeNet(zoo.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "lenet.onnx")
	if err := onnx.WriteFile(p, g); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInspectJSON(t *testing.T) {
	model := writeLeNet(t)
	code, out, errs := goslim(t, "inspect", model, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"inputs", "outputs", "ops", "params", "macs", "bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks key %q", k)
		}
	}
	// LeNet-5: conv1 6*28*28*25 + conv2 16*10*10*150 + fc 400*120 + 120*84 + 84*10
	if got, want := m["macs"].(float64), float64(117600+240000+48000+10080+840); got != want {
		t.Errorf("macs = %v, want %v", got, want)
	}
	// weights + biases: 150+6 + 2400+16 + 48000+120 + 10080+84 + 840+10
	if got, want := m["params"].(float64), float64(61706); got != want {
		t.Errorf("params = %v, want %v", got, want)
	}
	in := m["inputs"].([]any)[0].(map[string]any)
	if in["name"] != "input" || in["dtype"] != "float32" || in["shape"].([]any)[0] != "N" {
		t.Errorf("input = %v", in)
	}
	out0 := m["outputs"].([]any)[0].(map[string]any)
	if sh := out0["shape"].([]any); len(sh) != 2 || sh[1] != "10" {
		t.Errorf("output = %v", out0)
	}
}

func TestRunWritesNpy(t *testing.T) {
	model := writeLeNet(t)
	dir := t.TempDir()
	x, _ := tensor.New(tensor.Float32, tensor.Shape{2, 1, 28, 28})
	for i := range x.F32() {
		x.F32()[i] = float32(i%13) / 13
	}
	xp := filepath.Join(dir, "x.npy")
	f, _ := os.Create(xp)
	if err := npy.Write(f, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
	outDir := filepath.Join(dir, "out")
	for _, in := range []string{xp, "input=" + xp} {
		code, out, errs := goslim(t, "run", model, "--input", in, "--out", outDir, "--threads", "1")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "threads 1") {
			t.Errorf("output does not state threads: %s", out)
		}
	}
	rf, err := os.Open(filepath.Join(outDir, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	y, err := npy.Read(rf)
	if err != nil {
		t.Fatal(err)
	}
	if !y.Shape.Equal(tensor.Shape{2, 10}) {
		t.Fatalf("output shape %v", y.Shape)
	}
}

func TestBenchJSON(t *testing.T) {
	model := writeLeNet(t)
	code, out, errs := goslim(t, "bench", model, "--batch", "4", "--threads", "1", "--json", "--min-time", "10ms", "--iters", "3", "--warmup", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"median_ms", "p10_ms", "p90_ms", "samples_per_s", "threads", "batch"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks key %q", k)
		}
	}
	if m["threads"].(float64) != 1 || m["batch"].(float64) != 4 || m["median_ms"].(float64) <= 0 {
		t.Errorf("bench JSON %v", m)
	}
}

func TestCLIErrors(t *testing.T) {
	model := writeLeNet(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("this is not a model"), 0o644)
	bad := filepath.Join(dir, "bad.npy")
	os.WriteFile(bad, []byte("\x93NUMPY garbage"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", filepath.Join(dir, "missing.onnx")}, "missing.onnx"},
		{[]string{"inspect", junk}, "junk.onnx"},
		{[]string{"run", model, "--input", bad, "--out", dir}, "bad.npy"},
		{[]string{"run", model, "--input", "other=" + bad, "--out", dir}, "bad.npy"},
		{[]string{"run", model, "--out", dir}, `input "input" is missing`},
		{[]string{"run", model, "--input", "x.txt", "--out", dir}, "x.txt"},
		{[]string{"bench", model, "--batch", "0"}, "--batch"},
		{[]string{"bench", model, "--kernels", "quantum"}, "quantum"},
		{[]string{"nosuchcommand"}, "unknown command"},
	}
	for _, c := range cases {
		code, _, errs := goslim(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errs, c.want)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"logits": "logits", "out:0": "out_0", "a/b c": "a_b_c", "..": "_..", "x.y-z_1": "x.y-z_1"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo times the model")
	}
	code, out, errs := goslim(t, "demo", "--out", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	for _, want := range []string{"LeNet-5", "max |diff| =", "images/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestHW(t *testing.T) {
	code, out, errs := goslim(t, "hw", "--json", "--kernels", "generic")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if m["selected_tier"] != "generic" || m["tiers"].(map[string]any)["generic"] != true {
		t.Fatalf("hw JSON %v", m)
	}
	conv := m["kernels"].(map[string]any)["Conv"].([]any)
	for _, k := range conv {
		if !strings.HasPrefix(k.(string), "generic") {
			t.Fatalf("generic tier ran Conv kernel %v", k)
		}
	}
}
