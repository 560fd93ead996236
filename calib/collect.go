package calib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Spec says what Collect observes and how.
type Spec struct {
	// Values lists the values to observe. Nil means every float32 value the
	// graph computes: its non-constant inputs and node outputs (values of
	// unknown type are tapped and observed when their tensors turn out to
	// be float32). Listed values must be graph inputs or node outputs,
	// never constants (observe weights directly); a listed value whose
	// tensor is not floating point is an error.
	Values []ir.ValueID
	// Observer returns the range observer factory for a value. Nil means a
	// per-tensor MinMax for every value; a nil Factory (or a factory
	// returning nil) gives that value no range observer, e.g. when only
	// channel means are wanted.
	Observer func(id ir.ValueID) Factory
	// ChannelMeans asks for per-channel means of chosen values along the
	// given axis (bias correction: the Conv and Gemm outputs, axis 1 or -1).
	// These values are observed whether or not they are in Values.
	ChannelMeans map[ir.ValueID]int
	// Batches is the number of batches N to run (100 to 500 is typical).
	// Zero or less means one epoch of the reader (Reader.Len). If the data
	// ends first, Collect stops there and Stats.Batches says how many ran.
	Batches int
	// Threads is the number of goroutines each session's kernels may use
	// (default: the number of CPUs, divided among Workers).
	Threads int
	// Workers is the number of sessions running batches concurrently
	// (default 1). Each has its own observers; they are merged at the end.
	// Merges of MinMax and Histogram are exact; ChannelMean sums may differ
	// in the last bits and MovingAverageMinMax is order-dependent.
	Workers int
	// Kernels forces a kernel tier (see infer.Options.Kernels).
	Kernels string
	// Progress, when set, is called after each batch with the batches done
	// and the total N, and once more with a note when the data ended before
	// N. Calls never overlap; done increases.
	Progress func(done, total int, note string)
}

// Stats is what Collect gathered, keyed by value ID.
type Stats struct {
	// Observers holds each observed value's range observer.
	Observers map[ir.ValueID]Observer
	// Means holds the ChannelMean of each value in Spec.ChannelMeans.
	Means map[ir.ValueID]*ChannelMean
	// Batches and Samples count the data seen.
	Batches, Samples int
}

// Range returns the range a value's observer reports; ok is false when the
// value has no observer or it saw no data.
func (s *Stats) Range(id ir.ValueID) (min, max []float32, ok bool) {
	o := s.Observers[id]
	if o == nil {
		return nil, nil, false
	}
	min, max = o.Range()
	return min, max, min != nil
}

// Values returns the IDs of the values with range observers, sorted.
func (s *Stats) Values() []ir.ValueID {
	ids := make([]ir.ValueID, 0, len(s.Observers))
	for id := range s.Observers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Merge folds another Stats (from the same graph and spec, e.g. another
// machine's share of the data) into s. Observers of values s lacks are
// taken over, not copied: o should not be used afterwards.
func (s *Stats) Merge(o *Stats) error {
	if s.Observers == nil {
		s.Observers = map[ir.ValueID]Observer{}
	}
	if s.Means == nil {
		s.Means = map[ir.ValueID]*ChannelMean{}
	}
	for id, ob := range o.Observers {
		if mine := s.Observers[id]; mine != nil {
			if err := mine.Merge(ob); err != nil {
				return fmt.Errorf("calib: value %d: %w", id, err)
			}
			continue
		}
		s.Observers[id] = ob
	}
	for id, m := range o.Means {
		if mine := s.Means[id]; mine != nil {
			if err := mine.Merge(m); err != nil {
				return fmt.Errorf("calib: value %d: %w", id, err)
			}
			continue
		}
		s.Means[id] = m
	}
	s.Batches += o.Batches
	s.Samples += o.Samples
	return nil
}

// ValueError is the error Collect returns when an observer rejects a value
// (NaN or Inf activations, a wrong dtype, a changing channel count).
type ValueError struct {
	Batch int        // 1-based batch number
	Value ir.ValueID // the value
	Name  string     // its name in the graph
	Err   error      // the observer's error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("calib: batch %d: value %q: %s", e.Batch, e.Name, strings.TrimPrefix(e.Err.Error(), "calib: "))
}

// Unwrap returns the observer's error.
func (e *ValueError) Unwrap() error { return e.Err }

// Collect runs the FP32 graph g over spec.Batches batches from r and folds
// the chosen values into observers through infer's value tap: each tensor
// is observed inside the tap call and nothing of it is kept. It reads r
// from its current position (Reset it first for a reproducible run).
//
// Errors: no batches at all; a batch whose inputs do not match the model
// (unknown or missing input names, listing both sides; dtype or shape; the
// message names the input and the batch); NaN or Inf activations (a *ValueError naming the value and
// the batch, wrapping ErrNonFinite). Constant activations are fine: the
// observers report min == max, and quant.Scheme.ParamsFor widens the range
// to include 0 (an all-zero value gets scale 1).
//
// Memory is bounded whatever N is: per worker, one batch of input data,
// the session's buffers for one run, and the observers' fixed state
// (MinMax 8×C bytes, ChannelMean 24×C bytes, Histogram 16×Bins bytes, 32 KiB
// by default, per value).
func Collect(ctx context.Context, g *ir.Graph, r dataset.Reader, spec Spec) (*Stats, error) {
	if g == nil || r == nil {
		return nil, errors.New("calib: Collect needs a graph and a reader")
	}
	total := spec.Batches
	if total <= 0 {
		total = r.Len()
	}
	if total <= 0 {
		return nil, errors.New("calib: the calibration data has no batches")
	}
	plan, err := newPlan(g, spec)
	if err != nil {
		return nil, err
	}
	workers := max(spec.Workers, 1)
	threads := spec.Threads
	if threads <= 0 && workers > 1 {
		threads = max(1, defaultThreads()/workers)
	}
	ws := make([]*worker, workers)
	for i := range ws {
		w := &worker{plan: plan, obs: make([]Observer, len(g.Values)), means: make([]*ChannelMean, len(g.Values))}
		for _, id := range plan.eager {
			w.obs[id] = plan.newObserver(id)
		}
		for id, ax := range plan.means {
			w.means[id] = NewChannelMean(ax)
		}
		s, err := infer.NewSession(g, infer.Options{Threads: threads, Kernels: spec.Kernels, Tap: w.tap, TapValues: plan.tap})
		if err != nil {
			return nil, fmt.Errorf("calib: %w", err)
		}
		w.sess = s
		ws[i] = w
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		n     int
		batch dataset.Batch
	}
	jobs := make(chan job)
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := w.run(ctx, j.n, j.batch); err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				done++
				if spec.Progress != nil && firstErr == nil {
					spec.Progress(done, total, "")
				}
				mu.Unlock()
			}
		}()
	}
	read := 0
	for read < total {
		b, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(fmt.Errorf("calib: batch %d: %w", read+1, err))
			break
		}
		read++
		select {
		case jobs <- job{read, b}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if read == 0 {
		return nil, errors.New("calib: the calibration data has no batches")
	}
	if read < total && spec.Progress != nil {
		spec.Progress(read, total, fmt.Sprintf("the data ended after %d of %d batches", read, total))
	}
	st := &Stats{Observers: map[ir.ValueID]Observer{}, Means: map[ir.ValueID]*ChannelMean{}}
	for _, w := range ws {
		if err := st.Merge(w.stats()); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// plan is what every worker shares: which values to tap and how.
type plan struct {
	g       *ir.Graph
	factory func(ir.ValueID) Factory
	tap     []ir.ValueID
	eager   []ir.ValueID // values whose observers exist from the start
	lazy    []bool       // observe when the tensor is float32 (default set)
	means   map[ir.ValueID]int
}

func newPlan(g *ir.Graph, spec Spec) (*plan, error) {
	p := &plan{g: g, factory: spec.Observer, lazy: make([]bool, len(g.Values)), means: spec.ChannelMeans}
	if p.factory == nil {
		p.factory = func(ir.ValueID) Factory { return func() Observer { return NewMinMax() } }
	}
	computed := make([]bool, len(g.Values)) // graph inputs and node outputs
	for _, id := range g.Inputs {
		computed[id] = true
	}
	for i := range g.Nodes {
		for _, id := range g.Nodes[i].Outputs {
			if id != ir.NoValue {
				computed[id] = true
			}
		}
	}
	check := func(id ir.ValueID, what string) error {
		if id < 0 || int(id) >= len(g.Values) {
			return fmt.Errorf("calib: %s: value id %d out of range", what, id)
		}
		if !computed[id] {
			return fmt.Errorf("calib: %s: value %q is a constant, not an activation (observe weights directly)", what, g.Values[id].Name)
		}
		return nil
	}
	tapped := make([]bool, len(g.Values))
	if spec.Values == nil {
		for id := range g.Values {
			v := &g.Values[id]
			if !computed[id] || (v.Const != nil && !g.IsInput(ir.ValueID(id))) {
				continue
			}
			if v.Type.DType == tensor.Float32 || v.Type.DType == tensor.Undefined {
				tapped[id], p.lazy[id] = true, true
			}
		}
	} else {
		for _, id := range spec.Values {
			if err := check(id, "Spec.Values"); err != nil {
				return nil, err
			}
			if !tapped[id] {
				tapped[id] = true
				p.eager = append(p.eager, id)
			}
		}
	}
	for id := range spec.ChannelMeans {
		if err := check(id, "Spec.ChannelMeans"); err != nil {
			return nil, err
		}
		tapped[id] = true
	}
	slices.Sort(p.eager)
	p.tap = []ir.ValueID{}
	for id, t := range tapped {
		if t {
			p.tap = append(p.tap, ir.ValueID(id))
		}
	}
	return p, nil
}

// checkNames reports data inputs the model does not have and model inputs
// (without a stored default) the data lacks, listing both sides.
func (p *plan) checkNames(b dataset.Batch) error {
	g := p.g
	for _, in := range b.Inputs {
		if id, ok := g.ValueByName(in.Name); !ok || !g.IsInput(id) {
			return fmt.Errorf("the data has input %q, the model's inputs are %s", in.Name, p.inputNames())
		}
	}
	for _, id := range g.Inputs {
		v := &g.Values[id]
		if v.Const == nil && b.Get(v.Name) == nil {
			return fmt.Errorf("the data has no input %q (data inputs: %s; model inputs: %s)", v.Name, dataNames(b), p.inputNames())
		}
	}
	return nil
}

func (p *plan) inputNames() string {
	var names []string
	for _, id := range p.g.Inputs {
		if p.g.Values[id].Const == nil {
			names = append(names, fmt.Sprintf("%q", p.g.Values[id].Name))
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

func dataNames(b dataset.Batch) string {
	var names []string
	for _, in := range b.Inputs {
		names = append(names, fmt.Sprintf("%q", in.Name))
	}
	return "[" + strings.Join(names, " ") + "]"
}

// newObserver makes a value's range observer, or nil.
func (p *plan) newObserver(id ir.ValueID) Observer {
	f := p.factory(id)
	if f == nil {
		return nil
	}
	return f()
}

// worker owns a session and one set of observers.
type worker struct {
	plan    *plan
	sess    *infer.Session
	obs     []Observer
	means   []*ChannelMean
	started []bool // lazy values whose observer was created
	batch   int
	batches int
	samples int
}

// tap folds one value into its observers.
func (w *worker) tap(id ir.ValueID, t *tensor.Tensor) error {
	p := w.plan
	if p.lazy[id] && t.DType == tensor.Float32 {
		if w.started == nil {
			w.started = make([]bool, len(w.obs))
		}
		if !w.started[id] {
			w.started[id] = true
			w.obs[id] = p.newObserver(id)
		}
	}
	if o := w.obs[id]; o != nil {
		if err := o.Observe(t); err != nil {
			return &ValueError{Batch: w.batch, Value: id, Name: p.g.Values[id].Name, Err: err}
		}
	}
	if m := w.means[id]; m != nil {
		if err := m.Observe(t); err != nil {
			return &ValueError{Batch: w.batch, Value: id, Name: p.g.Values[id].Name, Err: err}
		}
	}
	return nil
}

// run runs one batch (n is its 1-based number).
func (w *worker) run(ctx context.Context, n int, b dataset.Batch) error {
	w.batch = n
	if err := w.plan.checkNames(b); err != nil {
		return fmt.Errorf("calib: batch %d: %w", n, err)
	}
	if _, err := w.sess.Run(ctx, b.Feeds()); err != nil {
		var ve *ValueError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("calib: batch %d: %w", n, err)
	}
	w.batches++
	w.samples += b.Len()
	return nil
}

// stats returns the worker's observers as Stats.
func (w *worker) stats() *Stats {
	st := &Stats{Observers: map[ir.ValueID]Observer{}, Means: map[ir.ValueID]*ChannelMean{},
		Batches: w.batches, Samples: w.samples}
	for id, o := range w.obs {
		if o != nil {
			st.Observers[ir.ValueID(id)] = o
		}
	}
	for id, m := range w.means {
		if m != nil {
			st.Means[ir.ValueID(id)] = m
		}
	}
	return st
}

func defaultThreads() int { return runtime.NumCPU() }
