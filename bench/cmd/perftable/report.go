package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/goslim/goslim/internal/ortoracle"
)

// ratioTarget is the goal for goslim time / ORT time.
const ratioTarget = 1.2

// report is everything one run prints.
type report struct {
	cfg         config
	start       time.Time
	elapsed     time.Duration
	cpu         string
	ncpu        int
	loadStart   string // 1-minute load average when the run started
	loadEnd     string // and when it ended
	commit      string
	tier        string
	kernelsUsed string
	ort         *ortoracle.Oracle
	ortVersion  string
	ortMissing  string          // why ORT was not measured ("" when it was)
	overheadUs  map[int]float64 // binding overhead per thread count
	models      []*loaded
	rows        []row
	sgemm       []sgemmResult
	sgemmTier   string
}

// describeMachine fills in the CPU model and the git commit.
func (r *report) describeMachine() {
	r.cpu = cpuModel()
	r.ncpu = runtime.NumCPU()
	r.commit = gitCommit()
	r.loadStart = loadAvg()
}

// loadAvg returns the 1-minute load average from /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// cpuModel returns the "model name" line of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// gitCommit returns the short HEAD commit, with "+dirty" when the work
// tree has changes, or "" outside a git checkout.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}

// write prints the report as a Markdown section.
func (r *report) write(w io.Writer) {
	title := r.start.UTC().Format("2006-01-02 15:04 MST")
	if r.commit != "" {
		title += ", commit " + r.commit
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "- Machine: %s, %d logical CPUs, %s/%s, %s", r.cpu, r.ncpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
	if r.loadStart != "" {
		fmt.Fprintf(w, "; load average %s at the start, %s at the end (other work on the machine inflates the times)", r.loadStart, r.loadEnd)
	}
	fmt.Fprintf(w, "\n")
	fmt.Fprintf(w, "- goslim: FP32, kernel tier %s", r.tier)
	if r.kernelsUsed != "" {
		fmt.Fprintf(w, " (%s)", r.kernelsUsed)
	}
	if r.cfg.simplify {
		fmt.Fprintf(w, ", models after rewrite.Simplify")
	}
	fmt.Fprintf(w, ", timed with bench.Run\n")
	if r.ort != nil {
		fmt.Fprintf(w, "- ONNX Runtime %s (onnxruntime-node, CPU, graphOptimizationLevel %s, intraOpNumThreads = threads)\n", r.ortVersion, r.cfg.optLevel)
		fmt.Fprintf(w, "- ORT times exclude the Node binding overhead, measured on a 1-element Identity model in every ORT round (right after the model, same settings and clock; median over all rounds) and subtracted:")
		for i, th := range r.cfg.threads {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s %.1f µs at %d thread%s", sep, r.overheadUs[th], th, plural(th))
		}
		fmt.Fprintf(w, "\n")
	} else {
		fmt.Fprintf(w, "- **ONNX Runtime not measured** (%s): goslim columns only.", oneLine(r.ortMissing))
		if r.cfg.ort != "off" && !strings.Contains(r.ortMissing, "npm install") {
			fmt.Fprintf(w, " Install it with\n  `npm install --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0`")
		}
		fmt.Fprintf(w, "\n")
	}
	if r.cfg.cpuTime {
		fmt.Fprintf(w, "- Clock: one-thread rows (clock `cpu`) are timed by CPU time, which excludes the time the shared machine gives to other processes: goslim by the CPU time of the thread running the session (CLOCK_THREAD_CPUTIME_ID; a one-thread session never starts goroutines), ORT by the CPU time of the node process (process.cpuUsage, user + system, all threads) around each session.run. Rows with more threads (clock `wall`) are timed by wall clock and include whatever the load takes from them.\n")
	} else {
		fmt.Fprintf(w, "- Clock: wall time for every row (-cpu-time=false)\n")
	}
	fmt.Fprintf(w, "- Method: %d round%s per row, about %v of timed runs per engine per round", r.cfg.rounds, plural(r.cfg.rounds), r.cfg.roundTime)
	if r.ort != nil {
		fmt.Fprintf(w, ", goslim and ORT alternating (order flipped every round)")
	}
	fmt.Fprintf(w, "; each cell is the median over rounds of the per-round median; run took %s\n\n", r.elapsed.Round(time.Second))

	// The models.
	fmt.Fprintf(w, "| model | input | MMAC/img |")
	if r.ort != nil {
		fmt.Fprintf(w, " max\\|goslim−ORT\\| / max\\|ORT\\| (batch 2) |")
	}
	fmt.Fprintf(w, "\n|---|---|---:|")
	if r.ort != nil {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "\n")
	for _, m := range r.models {
		fmt.Fprintf(w, "| %s | %s | %.2f |", m.label, m.input, float64(m.macs)/1e6)
		if r.ort != nil {
			fmt.Fprintf(w, " %.1e |", m.diff)
		}
		fmt.Fprintf(w, "\n")
	}
	fmt.Fprintf(w, "\n")

	// The timings.
	if r.ort != nil {
		fmt.Fprintf(w, "| model | batch | threads | clock | goslim ms | ORT ms | goslim/ORT | goslim img/s | ORT img/s | goslim GFLOP/s |\n")
		fmt.Fprintf(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	} else {
		fmt.Fprintf(w, "| model | batch | threads | clock | goslim ms | goslim img/s | goslim GFLOP/s |\n")
		fmt.Fprintf(w, "|---|---:|---:|---|---:|---:|---:|\n")
	}
	for _, x := range r.rows {
		gflops := 2 * float64(x.model.macs) * float64(x.batch) / (x.goMs / 1000) / 1e9
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s |", x.model.label, x.batch, x.threads, x.clock, fmtMs(x.goMs))
		if r.ort != nil {
			ratio := x.goMs / x.ortMs
			rs := fmt.Sprintf("%.2f", ratio)
			if ratio > ratioTarget {
				rs = "**" + rs + "**"
			}
			fmt.Fprintf(w, " %s | %s | %s | %s |", fmtMs(x.ortMs), rs, fmtRate(x.batch, x.goMs), fmtRate(x.batch, x.ortMs))
		} else {
			fmt.Fprintf(w, " %s |", fmtRate(x.batch, x.goMs))
		}
		fmt.Fprintf(w, " %.1f |\n", gflops)
	}
	if r.ort != nil {
		fmt.Fprintf(w, "\nRatios above the %.1f target are in bold.\n", ratioTarget)
	}
	if len(r.sgemm) > 0 {
		fmt.Fprintf(w, "\nSGEMM, one thread, kernel tier %s, packing included, thread-CPU time (best of %d rounds):\n\n", r.sgemmTier, sgemmRounds)
		fmt.Fprintf(w, "| M=N=K | GFLOP/s |\n|---:|---:|\n")
		for _, g := range r.sgemm {
			fmt.Fprintf(w, "| %d | %.1f |\n", g.n, g.gflops)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// oneLine collapses whitespace so an error fits a Markdown list item.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fmtMs formats milliseconds with about four significant digits.
func fmtMs(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.2f", ms)
	default:
		return fmt.Sprintf("%.3f", ms)
	}
}

// fmtRate formats images per second for a batch that takes ms.
func fmtRate(batch int, ms float64) string {
	if ms <= 0 {
		return "–"
	}
	v := float64(batch) / (ms / 1000)
	return groupThousands(int64(math.Round(v)))
}

// groupThousands writes 123456 as "123,456".
func groupThousands(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
