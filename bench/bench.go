// Package bench times compiled models: warm-up, then timed runs until a
// minimum number of iterations and a minimum time have both passed, and
// summarizes latency percentiles and throughput.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"time"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/internal/cputime"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Options control a measurement.
type Options struct {
	Warmup   int           // untimed runs first (default 3)
	MinIters int           // at least this many timed runs (default 10)
	MinTime  time.Duration // and at least this much timed work (default 1s)
	MaxIters int           // at most this many timed runs (default 100000)
	// CPUTime times each run by the CPU time of the calling thread (locked
	// to it for the measurement) instead of wall time. It excludes the time
	// the machine gives to other processes, so it is the stable measure on
	// a shared machine, but it counts only the calling thread's work: use
	// it with one-thread sessions (which never start goroutines). Where the
	// thread CPU clock is unavailable, Run falls back to wall time and says
	// so in Result.Clock.
	CPUTime bool
}

// Result summarizes a measurement. JSON keys are part of the CLI contract.
type Result struct {
	MedianMs    float64 `json:"median_ms"`
	P10Ms       float64 `json:"p10_ms"`
	P90Ms       float64 `json:"p90_ms"`
	MeanMs      float64 `json:"mean_ms"`
	SamplesPerS float64 `json:"samples_per_s"`
	Threads     int     `json:"threads"`
	Batch       int     `json:"batch"`
	Iters       int     `json:"iters"`
	Kernels     string  `json:"kernels"`
	Clock       string  `json:"clock"` // "wall" or "thread-cpu"
}

// Run times sess on the given inputs (graph-input order). batch is the
// number of samples per run, used for throughput.
func Run(ctx context.Context, sess *infer.Session, inputs []*tensor.Tensor, batch int, o Options) (Result, error) {
	if o.Warmup <= 0 {
		o.Warmup = 3
	}
	if o.MinIters <= 0 {
		o.MinIters = 10
	}
	if o.MinTime <= 0 {
		o.MinTime = time.Second
	}
	if o.MaxIters <= 0 {
		o.MaxIters = 100000
	}
	// RunInto reuses the output tensors: the steady state a serving loop
	// sees, allocating nothing per run.
	outs := make([]*tensor.Tensor, len(sess.Graph().Outputs))
	for i := range outs {
		outs[i] = &tensor.Tensor{}
	}
	for i := 0; i < o.Warmup; i++ {
		if err := sess.RunInto(ctx, inputs, outs); err != nil {
			return Result{}, err
		}
	}
	start := time.Now() // monotonic: a wall-clock step mid-run cannot corrupt samples
	clock := func() time.Duration { return time.Since(start) }
	name := "wall"
	if o.CPUTime {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if _, ok := cputime.Thread(); ok {
			clock = func() time.Duration { d, _ := cputime.Thread(); return d }
			name = "thread-cpu"
		}
	}
	var times []time.Duration
	var total time.Duration
	for len(times) < o.MinIters || (total < o.MinTime && len(times) < o.MaxIters) {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		t0 := clock()
		if err := sess.RunInto(ctx, inputs, outs); err != nil {
			return Result{}, err
		}
		d := clock() - t0
		times = append(times, d)
		total += d
	}
	r := Summarize(times, batch, sess.Threads(), sess.Tier().String())
	r.Clock = name
	return r, nil
}

// Summarize computes percentiles and throughput from run times.
func Summarize(times []time.Duration, batch, threads int, kernels string) Result {
	s := append([]time.Duration(nil), times...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	pct := func(p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(p*float64(len(s)-1)+0.5))]
	}
	var total time.Duration
	for _, d := range s {
		total += d
	}
	r := Result{MedianMs: ms(pct(0.5)), P10Ms: ms(pct(0.1)), P90Ms: ms(pct(0.9)),
		Threads: threads, Batch: batch, Iters: len(s), Kernels: kernels}
	if len(s) > 0 {
		r.MeanMs = ms(total) / float64(len(s))
	}
	if r.MedianMs > 0 {
		r.SamplesPerS = float64(batch) / (r.MedianMs / 1000)
	}
	return r
}

// RandomInputs makes seeded random inputs for every graph input without an
// initializer: the leading symbolic dim becomes batch, other unknown dims
// must be given in shapes (by input name). Floats are uniform in [0, 1);
// integers and bools are zero.
func RandomInputs(g *ir.Graph, batch int, shapes map[string]tensor.Shape, seed uint64) ([]*tensor.Tensor, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]*tensor.Tensor, len(g.Inputs))
	for i, id := range g.Inputs {
		v := &g.Values[id]
		if v.Const != nil {
			continue
		}
		shape, ok := shapes[v.Name]
		if !ok {
			if !v.Type.Ranked {
				return nil, fmt.Errorf("input %q has no declared shape; give one with --shape %s=DxDx...", v.Name, v.Name)
			}
			shape = make(tensor.Shape, len(v.Type.Shape))
			for j, d := range v.Type.Shape {
				switch {
				case d.Size >= 0:
					shape[j] = int(d.Size)
				case j == 0:
					shape[j] = batch
				default:
					return nil, fmt.Errorf("input %q dim %d (%s) is unknown; give the shape with --shape %s=DxDx...", v.Name, j, d, v.Name)
				}
			}
		}
		dt := v.Type.DType
		if dt == tensor.Undefined {
			dt = tensor.Float32
		}
		t, err := tensor.New(dt, shape)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", v.Name, err)
		}
		switch d := t.Data.(type) {
		case []float32:
			for k := range d {
				d[k] = rng.Float32()
			}
		case []float64:
			for k := range d {
				d[k] = rng.Float64()
			}
		case []uint16:
			if dt == tensor.Float16 {
				for k := range d {
					d[k] = tensor.Float32ToHalf(rng.Float32())
				}
			}
		}
		out[i] = t
	}
	return out, nil
}
