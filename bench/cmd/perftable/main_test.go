package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goslim/goslim/internal/ortoracle"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/zoo"
)

// modelsDir writes a zoo LeNet as lenet5.onnx (a stand-in for the
// PyTorch export, so the test needs no python) into a temporary folder.
func modelsDir(t *testing.T) string {
	t.Helper()
	g, err := zoo.LeNet(zoo.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := onnx.WriteFile(filepath.Join(dir, "lenet5.onnx"), g); err != nil {
		t.Fatal(err)
	}
	return dir
}

func perftable(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestGoslimOnly(t *testing.T) {
	dir := modelsDir(t)
	doc := filepath.Join(t.TempDir(), "docs", "performance.md")
	args := []string{"-models", dir, "-only", "lenet5", "-batches", "1,3", "-threads", "1",
		"-rounds", "1", "-round-time", "5ms", "-ort", "off", "-out", doc}
	code, out, errs := perftable(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"ONNX Runtime not measured", "| LeNet-5 | 1 | 1 |", "| LeNet-5 | 3 | 1 |",
		"| model | batch | threads | clock | goslim ms | goslim img/s | goslim GFLOP/s |", "| LeNet-5 | 1 | 1 | cpu |", "SGEMM, one thread", "Machine: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ORT ms") {
		t.Errorf("ORT columns without ORT:\n%s", out)
	}
	// A second run appends a second section under one title.
	if code, _, errs := perftable(t, args...); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "# Performance\n"); n != 1 {
		t.Errorf("title written %d times", n)
	}
	if n := strings.Count(string(b), "\n## "); n != 2 {
		t.Errorf("%d sections, want 2:\n%s", n, b)
	}
}

func TestWithORT(t *testing.T) {
	ortoracle.Require(t)
	dir := modelsDir(t)
	code, out, errs := perftable(t, "-models", dir, "-only", "lenet5", "-batches", "2", "-threads", "1",
		"-rounds", "2", "-round-time", "5ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"| goslim ms | ORT ms | goslim/ORT |", "| LeNet-5 | 2 | 1 |", "Identity model in every ORT round", "ONNX Runtime 1."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The agreement column: goslim and ORT compute the same model.
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "| LeNet-5 | 1x28x28 |") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		d, err := strconv.ParseFloat(strings.TrimSpace(cells[len(cells)-1]), 64)
		if err != nil || d > 1e-4 {
			t.Errorf("goslim and ORT disagree (%v): %s", err, line)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "vgg"},
		{"-threads", "0"},
		{"-batches", "x"},
		{"-rounds", "0"},
		{"-ort", "maybe"},
		{"-ort-opt", "max"},
		{"extra"},
	} {
		if code, _, _ := perftable(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	code, _, errs := perftable(t, "-models", t.TempDir(), "-only", "resnet8", "-ort", "off")
	if code != 2 || !strings.Contains(errs, "gen_models.py") {
		t.Errorf("missing model: exit %d, %q", code, errs)
	}
}

func TestHelpers(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	for v, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := groupThousands(v); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", v, got, want)
		}
	}
	if got, err := parseInts("-x", " 1, 32 "); err != nil || len(got) != 2 || got[1] != 32 {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	if got := fmtRate(32, 2); got != "16,000" {
		t.Errorf("fmtRate = %q", got)
	}
}

// TestSectionBeforeINT8 checks that a new section goes before the INT8
// part of the performance document.
func TestSectionBeforeINT8(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "performance.md")
	if err := os.WriteFile(doc, []byte("# Performance\n\n## old run\n\nx\n\n## INT8\n\ny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := appendSection(doc, []byte("## new run\n\nz\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Performance\n\n## old run\n\nx\n\n## new run\n\nz\n\n## INT8\n\ny\n"
	if string(b) != want {
		t.Fatalf("document:\n%s\nwant:\n%s", b, want)
	}
}
