package int8bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/tensor"
)

// Sampler times runs of one session on fixed inputs. Each run goes through
// Session.RunInto (no allocation) on a goroutine locked to its OS thread,
// so with one thread the thread's CPU time is the run's compute time,
// unaffected by other processes on a loaded machine.
type Sampler struct {
	sess   *infer.Session
	inputs []*tensor.Tensor
	outs   []*tensor.Tensor
	// CPU and Wall hold one sample per timed run.
	CPU, Wall []time.Duration
}

// NewSampler returns a sampler for sess on inputs (graph-input order).
func NewSampler(sess *infer.Session, inputs []*tensor.Tensor) *Sampler {
	outs := make([]*tensor.Tensor, len(sess.Graph().Outputs))
	for i := range outs {
		outs[i] = &tensor.Tensor{}
	}
	return &Sampler{sess: sess, inputs: inputs, outs: outs}
}

// Run does warm untimed runs, then timed runs until at least minRuns are
// done and minTime of wall time has passed (capped at 100000 runs).
func (s *Sampler) Run(ctx context.Context, warm, minRuns int, minTime time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range warm {
		if err := s.sess.RunInto(ctx, s.inputs, s.outs); err != nil {
			return err
		}
	}
	start := time.Now()
	for n := 0; n < minRuns || (time.Since(start) < minTime && n < 100000); n++ {
		c0, w0 := ThreadCPU(), time.Now()
		if err := s.sess.RunInto(ctx, s.inputs, s.outs); err != nil {
			return err
		}
		s.Wall = append(s.Wall, time.Since(w0))
		s.CPU = append(s.CPU, ThreadCPU()-c0)
	}
	return nil
}

// Timing summarizes a sampler's runs.
type Timing struct {
	// CPUMs is the median per-run CPU time of the running thread in
	// milliseconds: the compute time when the session has one thread (0
	// when the OS does not report it).
	CPUMs float64 `json:"cpu_ms"`
	// WallMs is the median wall time, WallMinMs the fastest run.
	WallMs    float64 `json:"wall_ms"`
	WallMinMs float64 `json:"wall_min_ms"`
	Runs      int     `json:"runs"`
}

// Timing returns the medians of the samples so far.
func (s *Sampler) Timing() Timing {
	return Timing{CPUMs: MedianMs(s.CPU), WallMs: MedianMs(s.Wall), WallMinMs: MinMs(s.Wall), Runs: len(s.Wall)}
}

// Ms is the time to compare by: CPU time when measured, else wall time.
func (t Timing) Ms() float64 {
	if t.CPUMs > 0 {
		return t.CPUMs
	}
	return t.WallMs
}

// MedianMs returns the median of d in milliseconds (0 when empty).
func MedianMs(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return float64(m) / 1e6
}

// MinMs returns the smallest of d in milliseconds (0 when empty).
func MinMs(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	return float64(slices.Min(d)) / 1e6
}

// Alternate times several samplers in rounds that take turns (the order
// reverses every round), so load changes hit them alike.
func Alternate(ctx context.Context, ss []*Sampler, rounds, warm, minRuns int, perRound time.Duration) error {
	if rounds < 1 {
		return fmt.Errorf("int8bench: rounds must be at least 1")
	}
	for r := range rounds {
		for i := range ss {
			j := i
			if r%2 == 1 {
				j = len(ss) - 1 - i
			}
			w := 0
			if r == 0 {
				w = warm
			}
			if err := ss[j].Run(ctx, w, minRuns, perRound); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tier returns the kernel tier of the sampler's session.
func (s *Sampler) Tier() string { return s.sess.Tier().String() }
