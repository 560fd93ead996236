//go:build linux

// Command ptqtable produces the post-training quantization methods table
// of docs/quantization.md: for each model it runs `goslim quantize` once per
// calibration method and per extra (bias correction, CLE, OCS, per-tensor
// weights), each in its own process, and reports the top-1 drop against
// FP32 on the test set, SQNR, file size, calibration time, total time and
// the process's peak resident memory.
//
// It is a development tool:
//
//	go run ./ptq/cmd/ptqtable -models .cache/ptq-models -doc docs/quantization.md
//
// Models it cannot find in -models it trains first with `goslim train`
// (seeded; minutes to an hour on a small machine): LeNet-5 on MNIST and
// ResNet-8 on Fashion-MNIST. The depthwise row (MobileNetV2 width 0.5,
// trained for one step only) reports size only. With -doc the table replaces the
// part of the file between the lines "<!-- ptqtable -->" and
// "<!-- /ptqtable -->"; without it the table goes to stdout.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// model is one row group of the table.
type model struct {
	name, file  string
	calib, eval string
	train       []string // goslim train arguments (without --out)
	sizeOnly    bool     // no evaluation (size only)
}

// variant is one quantize run.
type variant struct {
	label string
	args  []string
}

// report holds the fields of `goslim quantize --json` the table needs.
type report struct {
	Calibration struct {
		Seconds float64 `json:"seconds"`
		Batches int     `json:"batches"`
		Samples int     `json:"samples"`
	} `json:"calibration"`
	FP32 *struct {
		Top1 float64 `json:"top1"`
	} `json:"fp32"`
	Quantized *struct {
		Top1      float64 `json:"top1"`
		SQNR      float64 `json:"sqnr_db"`
		Agreement float64 `json:"agreement"`
	} `json:"quantized"`
	Drop *float64 `json:"top1_drop_points"`
	Size struct {
		FP32  int64   `json:"fp32_bytes"`
		QDQ   int64   `json:"qdq_bytes"`
		Ratio float64 `json:"ratio"`
	} `json:"size"`
	OCS *struct {
		ChannelsAdded int     `json:"channels_added"`
		SizeCost      float64 `json:"size_cost"`
	} `json:"ocs"`
	Seconds float64 `json:"seconds"`
}

// row is one measured run.
type row struct {
	model, variant string
	rep            report
	peakRSS        int64
	wall           time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ptqtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("models", ".cache/ptq-models", "folder of the trained models (trained there when missing)")
	bin := fs.String("goslim", "", "goslim binary (default: built from ./cmd/goslim into the models folder)")
	doc := fs.String("doc", "", "Markdown file whose ptqtable section is replaced (default: print the table)")
	batches := fs.Int("batches", 10, "calibration batches of 32 samples")
	only := fs.String("only", "", "comma-separated model names to run (default all: lenet, resnet8, mobilenetv2)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *bin == "" {
		*bin = filepath.Join(*dir, "goslim")
		build := exec.Command("go", "build", "-o", *bin, "./cmd/goslim")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(stderr, "ptqtable: building goslim:", err)
			return 1
		}
	}
	models := []model{
		{name: "lenet", file: "lenet.onnx", calib: "mnist:train", eval: "mnist:test",
			train: []string{"--arch", "lenet", "--data", "mnist:train", "--val", "mnist:test", "--epochs", "5",
				"--optimizer", "adam", "--lr", "1e-3", "--seed", "1", "--threads", "1"}},
		{name: "resnet8", file: "resnet8.onnx", calib: "fashion-mnist:train", eval: "fashion-mnist:test",
			train: []string{"--arch", "resnet8", "--data", "fashion-mnist:train", "--val", "fashion-mnist:test",
				"--limit", "20000", "--epochs", "3", "--optimizer", "adam", "--lr", "2e-3", "--seed", "1", "--threads", "1"}},
		{name: "mobilenetv2", file: "mobilenetv2.onnx", calib: "fashion-mnist:train", sizeOnly: true},
	}
	var rows []row
	for _, m := range models {
		if *only != "" && !strings.Contains(","+*only+",", ","+m.name+",") {
			continue
		}
		path := filepath.Join(*dir, m.file)
		if _, err := os.Stat(path); err != nil {
			if err := prepareModel(*bin, path, m, stderr); err != nil {
				fmt.Fprintln(stderr, "ptqtable:", err)
				return 1
			}
		}
		for _, v := range variants(m) {
			fmt.Fprintf(stderr, "ptqtable: %s %s\n", m.name, v.label)
			r, err := quantize(*bin, path, m, v, *batches, *dir)
			if err != nil {
				fmt.Fprintln(stderr, "ptqtable:", err)
				return 1
			}
			rows = append(rows, r)
		}
	}
	table := render(rows, *batches)
	if *doc == "" {
		fmt.Fprint(stdout, table)
		return 0
	}
	if err := replaceSection(*doc, table); err != nil {
		fmt.Fprintln(stderr, "ptqtable:", err)
		return 1
	}
	return 0
}

// variants returns the runs of one model.
func variants(m model) []variant {
	if m.sizeOnly {
		return []variant{{"minmax", []string{"--method", "minmax"}}, {"minmax + CLE", []string{"--method", "minmax", "--cle"}},
			{"minmax, per-tensor", []string{"--method", "minmax", "--per-tensor"}}}
	}
	vs := []variant{}
	for _, meth := range []string{"minmax", "avg", "percentile", "kl", "mse"} {
		vs = append(vs, variant{meth, []string{"--method", meth}})
	}
	return append(vs,
		variant{"mse + bias correction", []string{"--method", "mse", "--bias-correction"}},
		variant{"mse + CLE", []string{"--method", "mse", "--cle"}},
		variant{"mse + OCS 0.05", []string{"--method", "mse", "--ocs", "0.05"}},
		variant{"mse + float outputs", []string{"--method", "mse", "--float-outputs"}},
		variant{"percentile + float outputs + bias corr.", []string{"--method", "percentile", "--float-outputs", "--bias-correction"}},
		variant{"minmax, per-tensor weights", []string{"--method", "minmax", "--per-tensor"}},
	)
}

// prepareModel trains a missing model, or builds the untrained zoo one.
func prepareModel(bin, path string, m model, stderr io.Writer) error {
	var args []string
	if m.train != nil {
		fmt.Fprintf(stderr, "ptqtable: training %s (this takes a while)\n", m.name)
		args = append([]string{"train"}, m.train...)
		args = append(args, "--out", path, "--progress", "lines")
	} else {
		// A barely trained zoo model (size only): one epoch of 64 samples is
		// the shortest way through the CLI to a written model file.
		args = []string{"train", "--arch", "mobilenetv2:0.5", "--data", "fashion-mnist:train", "--limit", "64",
			"--epochs", "1", "--seed", "1", "--out", path, "--progress", "none"}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}

// quantize runs one goslim quantize process and reads its report.
func quantize(bin, path string, m model, v variant, batches int, dir string) (row, error) {
	out := filepath.Join(dir, fmt.Sprintf("%s.%s.int8.onnx", m.name, strings.NewReplacer(" ", "_", ",", "", "+", "", ".", "").Replace(v.label)))
	args := []string{"quantize", path, "--calib", m.calib, "--batches", fmt.Sprint(batches),
		"--out", out, "--json", "--progress", "none"}
	if m.eval != "" {
		args = append(args, "--eval", m.eval)
	}
	args = append(args, v.args...)
	cmd := exec.Command(bin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return row{}, fmt.Errorf("%s %s: %v: %s", m.name, v.label, err, se.String())
	}
	r := row{model: m.name, variant: v.label, wall: wall}
	if err := json.Unmarshal(so.Bytes(), &r.rep); err != nil {
		return row{}, fmt.Errorf("%s %s: bad report: %v", m.name, v.label, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.peakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return r, nil
}

// render formats the rows as Markdown.
func render(rows []row, batches int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Calibration: %d batches of 32 training images (no labels used). Evaluation: the full test set.\n", batches)
	fmt.Fprintf(&b, "Drop = FP32 top-1 minus INT8 top-1 in percentage points (negative: INT8 is better). Size = QDQ file / FP32 file.\n")
	fmt.Fprintf(&b, "Calibrate = observing the calibration batches; total = the whole command (calibration, quantization,\n")
	fmt.Fprintf(&b, "bias correction, evaluating FP32 and INT8 on the test set); memory = peak resident set of the process.\n\n")
	b.WriteString("| model | method | FP32 top-1 | INT8 top-1 | drop | SQNR dB | size | calibrate s | total s | peak MB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	best := map[string]float64{}
	for _, r := range rows {
		if r.rep.Drop != nil {
			if d, ok := best[r.model]; !ok || *r.rep.Drop < d {
				best[r.model] = *r.rep.Drop
			}
		}
	}
	for _, r := range rows {
		fp, q, drop, sq := "-", "-", "-", "-"
		if r.rep.FP32 != nil && r.rep.FP32.Top1 >= 0 {
			fp = fmt.Sprintf("%.2f%%", 100*r.rep.FP32.Top1)
		}
		if r.rep.Quantized != nil {
			if r.rep.Quantized.Top1 >= 0 {
				q = fmt.Sprintf("%.2f%%", 100*r.rep.Quantized.Top1)
			}
			sq = fmt.Sprintf("%.1f", r.rep.Quantized.SQNR)
		}
		if r.rep.Drop != nil {
			drop = fmt.Sprintf("%.2f", *r.rep.Drop)
			if *r.rep.Drop == best[r.model] {
				drop = "**" + drop + "**"
			}
		}
		size := fmt.Sprintf("%.1f KB (%.1f%%)", float64(r.rep.Size.QDQ)/1024, 100*r.rep.Size.Ratio)
		if r.rep.OCS != nil {
			size += fmt.Sprintf(", +%d ch", r.rep.OCS.ChannelsAdded)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.2f | %.1f | %.0f |\n", r.model, r.variant, fp, q, drop, sq, size,
			r.rep.Calibration.Seconds, r.wall.Seconds(), float64(r.peakRSS)/(1<<20))
	}
	return b.String()
}

// replaceSection replaces the lines between the ptqtable markers of a file.
func replaceSection(path, table string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const open, end = "<!-- ptqtable -->\n", "<!-- /ptqtable -->"
	i := bytes.Index(src, []byte(open))
	j := bytes.Index(src, []byte(end))
	if i < 0 || j < i {
		return errors.New(path + ": no <!-- ptqtable --> ... <!-- /ptqtable --> section")
	}
	var out bytes.Buffer
	out.Write(src[:i+len(open)])
	out.WriteString(table)
	out.Write(src[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
