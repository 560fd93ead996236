//go:build linux

// Command ptqtable produces the post-training quantization methods table
// of docs/quantization.md: for each model it quantizes once per
// calibration method and per extra (bias correction, CLE, OCS, float
// outputs, per-tensor weights) and reports the top-1 drop against FP32 on
// the full test set, SQNR, file size, calibration time, total time and
// peak memory.
//
// It is a development tool:
//
//	go run ./ptq/cmd/ptqtable -models .cache/ptq-models -doc docs/quantization.md
//
// Everything runs in one process through the ptq library, so the costs
// every row shares are paid once per model: the test set is read and the
// FP32 model run over it once (ptq.NewReference), and each row's QDQ model
// is evaluated with its weight DequantizeLinear nodes folded into
// constants (ptq.Reference.Evaluate), which runs as fast as the FP32
// model. The time column is the row's own work (calibration,
// quantization, bias correction, OCS/CLE, evaluating the QDQ model); peak
// memory is the process's peak resident set during the row (reset between
// rows through /proc/self/clear_refs), which includes the shared
// evaluation set.
//
// Models it cannot find in -models (lenet.onnx, resnet8.onnx) it trains
// first with `goslim train` (seeded; minutes to an hour on a small
// machine): LeNet-5 on MNIST and ResNet-8 on Fashion-MNIST; -lenet and
// -resnet8 name model files elsewhere. The depthwise row (MobileNetV2
// width 0.5, trained for one step only) reports size only. With -doc the
// table replaces the part of the file between the lines "<!-- ptqtable -->"
// and "<!-- /ptqtable -->"; without it the table goes to stdout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/onnx"
	"github.com/goslim/goslim/ptq"
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

// variant is one quantization of a model.
type variant struct {
	label string
	set   func(c *ptq.Config)
}

// row is one measured run.
type row struct {
	model, variant string
	rep            *ptq.Report
	peakRSS        int64
	wall           time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ptqtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("models", ".cache/ptq-models", "folder of the trained models (trained there when missing) and the QDQ outputs")
	lenetPath := fs.String("lenet", "", "LeNet-5 model file (default: MODELS/lenet.onnx)")
	resnetPath := fs.String("resnet8", "", "ResNet-8 model file (default: MODELS/resnet8.onnx)")
	doc := fs.String("doc", "", "Markdown file whose ptqtable section is replaced (default: print the table)")
	batches := fs.Int("batches", 10, "calibration batches of 32 samples")
	threads := fs.Int("threads", 0, "threads per session (default: number of cores)")
	only := fs.String("only", "", "comma-separated model names to run (default all: lenet, resnet8, mobilenetv2)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
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
	ctx := context.Background()
	start := time.Now()
	var rows []row
	for _, m := range models {
		if *only != "" && !strings.Contains(","+*only+",", ","+m.name+",") {
			continue
		}
		path := filepath.Join(*dir, m.file)
		switch {
		case m.name == "lenet" && *lenetPath != "":
			path = *lenetPath
		case m.name == "resnet8" && *resnetPath != "":
			path = *resnetPath
		}
		if _, err := os.Stat(path); err != nil {
			if err := prepareModel(*dir, path, m, stderr); err != nil {
				fmt.Fprintln(stderr, "ptqtable:", err)
				return 1
			}
		}
		rs, err := runModel(ctx, m, path, *dir, *batches, *threads, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "ptqtable:", err)
			return 1
		}
		rows = append(rows, rs...)
	}
	fmt.Fprintf(stderr, "ptqtable: %d rows in %.0f s\n", len(rows), time.Since(start).Seconds())
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

// variants returns the quantizations of one model.
func variants(m model) []variant {
	method := func(meth string, more ...func(*ptq.Config)) func(*ptq.Config) {
		return func(c *ptq.Config) {
			c.Method = meth
			for _, f := range more {
				f(c)
			}
		}
	}
	perTensor := func(c *ptq.Config) { c.PerChannel = false }
	cle := func(c *ptq.Config) { c.CLE = true }
	bias := func(c *ptq.Config) { c.BiasCorrection = true }
	floatOut := func(c *ptq.Config) { c.FloatOutputs = true }
	if m.sizeOnly {
		return []variant{{"minmax", method("minmax")}, {"minmax + CLE", method("minmax", cle)},
			{"minmax, per-tensor", method("minmax", perTensor)}}
	}
	vs := []variant{}
	for _, meth := range []string{"minmax", "avg", "percentile", "kl", "mse"} {
		vs = append(vs, variant{meth, method(meth)})
	}
	return append(vs,
		variant{"mse + bias correction", method("mse", bias)},
		variant{"mse + CLE", method("mse", cle)},
		variant{"mse + OCS 0.05", method("mse", func(c *ptq.Config) { c.OCS = 0.05 })},
		variant{"mse + float outputs", method("mse", floatOut)},
		variant{"kl + float outputs", method("kl", floatOut)},
		variant{"percentile + float outputs + bias corr.", method("percentile", floatOut, bias)},
		variant{"mse + CLE + bias corr. + float outputs", method("mse", cle, bias, floatOut)},
		variant{"minmax, per-tensor weights", method("minmax", perTensor)},
		variant{"mse, per-tensor weights", method("mse", perTensor)},
	)
}

// runModel quantizes one model every way.
func runModel(ctx context.Context, m model, path, dir string, batches, threads int, stderr io.Writer) ([]row, error) {
	g, err := onnx.ReadFile(path)
	if err != nil {
		return nil, err
	}
	calibData, err := openData(g, m.calib, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	var ref *ptq.Reference
	if m.eval != "" {
		evalData, err := openData(g, m.eval, 256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		t0 := time.Now()
		if ref, err = ptq.NewReference(ctx, g, evalData, 0, threads, ""); err != nil {
			return nil, fmt.Errorf("%s: FP32 evaluation: %w", m.name, err)
		}
		fmt.Fprintf(stderr, "ptqtable: %s FP32 top-1 %.2f%% on %d samples (%.1f s)\n", m.name, 100*ref.FP32().Top1,
			ref.FP32().Samples, time.Since(t0).Seconds())
	}
	var rows []row
	for _, v := range variants(m) {
		cfg := ptq.DefaultConfig()
		cfg.Batches = batches
		v.set(cfg)
		resetPeak()
		t0 := time.Now()
		out, err := ptq.Run(ctx, g, cfg, ptq.Options{Calib: calibData, Reference: ref, Threads: threads})
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", m.name, v.label, err)
		}
		wall := time.Since(t0)
		r := row{model: m.name, variant: v.label, rep: out.Report, wall: wall, peakRSS: peakRSS()}
		file := filepath.Join(dir, fmt.Sprintf("%s.%s.int8.onnx", m.name,
			strings.NewReplacer(" ", "_", ",", "", "+", "", ".", "").Replace(v.label)))
		if err := onnx.WriteFile(file, out.Graph); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "ptqtable: %s %s: drop %s, %.1f s\n", m.name, v.label, dropText(r.rep), wall.Seconds())
		rows = append(rows, r)
	}
	return rows, nil
}

// openData opens a data spec for model g: its input name, image size and
// normalization (metadata goslim.preprocess), as goslim quantize does.
func openData(g *ir.Graph, spec string, batch int) (*dataset.Dataset, error) {
	pp, err := dataset.ResolvePreprocess("", g.Meta)
	if err != nil {
		return nil, err
	}
	opts := dataset.Options{BatchSize: batch, Preprocess: pp}
	for _, id := range g.Inputs {
		v := g.Values[id]
		if v.Const != nil {
			continue
		}
		opts.InputName = v.Name
		if s := v.Type.Shape; v.Type.Ranked && len(s) == 4 && s[1].Size > 0 && s[2].Size > 0 && s[3].Size > 0 {
			opts.Channels, opts.Height, opts.Width = int(s[1].Size), int(s[2].Size), int(s[3].Size)
		}
		break
	}
	return dataset.Open(spec, opts)
}

// resetPeak frees what the previous row left and resets the process's
// peak resident set (Linux 4.0+: writing 5 to /proc/self/clear_refs).
func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set in bytes (VmHWM), 0 if
// unknown.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

func dropText(r *ptq.Report) string {
	if r.Drop == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *r.Drop)
}

// prepareModel trains a missing model, or builds the untrained zoo one,
// with a goslim binary built into dir.
func prepareModel(dir, path string, m model, stderr io.Writer) error {
	bin := filepath.Join(dir, "goslim")
	build := exec.Command("go", "build", "-o", bin, "./cmd/goslim")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building goslim: %w", err)
	}
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

// render formats the rows as Markdown.
func render(rows []row, batches int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Calibration: %d batches of 32 training images (no labels used). Evaluation: the full test set.\n", batches)
	fmt.Fprintf(&b, "Drop = FP32 top-1 minus INT8 top-1 in percentage points (negative: INT8 is better). Size = QDQ file / FP32 file.\n")
	fmt.Fprintf(&b, "Calibrate = observing the calibration batches; row s = the row's own work (calibration, CLE/OCS,\n")
	fmt.Fprintf(&b, "quantization, bias correction, evaluating the INT8 model on the test set; the FP32 evaluation is shared);\n")
	fmt.Fprintf(&b, "peak MB = the table process's peak resident set during the row (includes the shared test set).\n\n")
	b.WriteString("| model | method | FP32 top-1 | INT8 top-1 | drop | SQNR dB | size | calibrate s | row s | peak MB |\n")
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
		if r.rep.FP32Metrics != nil && r.rep.FP32Metrics.Top1 >= 0 {
			fp = fmt.Sprintf("%.2f%%", 100*r.rep.FP32Metrics.Top1)
		}
		if r.rep.QuantMetrics != nil {
			if r.rep.QuantMetrics.Top1 >= 0 {
				q = fmt.Sprintf("%.2f%%", 100*r.rep.QuantMetrics.Top1)
			}
			sq = fmt.Sprintf("%.1f", r.rep.QuantMetrics.SQNR)
		}
		if r.rep.Drop != nil {
			drop = fmt.Sprintf("%.2f", *r.rep.Drop)
			if *r.rep.Drop == best[r.model] {
				drop = "**" + drop + "**"
			}
		}
		size := fmt.Sprintf("%.1f KB (%.1f%%)", float64(r.rep.Size.QDQBytes)/1024, 100*r.rep.Size.Ratio)
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
