package ptq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// OutputDiff compares one output of two models over a data set.
type OutputDiff struct {
	// Name is the output's name.
	Name string `json:"name"`
	// Elements is the number of elements compared.
	Elements int `json:"elements"`
	// MaxAbsErr is max |a - b|; MeanAbsErr the mean.
	MaxAbsErr  float64 `json:"max_abs_err"`
	MeanAbsErr float64 `json:"mean_abs_err"`
	// SQNR is 10·log10(Σa² / Σ(a-b)²) in dB, with a the reference (first)
	// model; +Inf when the outputs are equal (reported as 999 in JSON).
	SQNR float64 `json:"sqnr_db"`
	// Top1Agreement is the fraction of rows whose argmax over the last
	// axis agrees, for outputs of rank >= 2 with at least two columns;
	// -1 otherwise.
	Top1Agreement float64 `json:"top1_agreement"`
}

// Comparison is the result of Compare.
type Comparison struct {
	// Samples and Batches count the data compared.
	Samples int `json:"samples"`
	Batches int `json:"batches"`
	// Outputs holds one entry per output of the reference model, in order.
	Outputs []OutputDiff `json:"outputs"`
	// Labelled reports whether the data had labels; then Top1A and Top1B
	// are the top-1 accuracies (fractions) of the first output.
	Labelled bool    `json:"labelled"`
	Top1A    float64 `json:"top1_a,omitempty"`
	Top1B    float64 `json:"top1_b,omitempty"`
}

// diffAccum accumulates OutputDiff statistics.
type diffAccum struct {
	n             int
	sig, noise    float64
	absSum, max   float64
	rows, agree   int
	argmaxCapable bool
}

func (d *diffAccum) add(a, b *tensor.Tensor) error {
	if a.DType != tensor.Float32 || b.DType != tensor.Float32 {
		return fmt.Errorf("outputs are %v and %v; only float32 outputs are compared", a.DType, b.DType)
	}
	if !a.Shape.Equal(b.Shape) {
		return fmt.Errorf("shapes differ: %v vs %v", a.Shape, b.Shape)
	}
	av, bv := a.F32(), b.F32()
	for i, x := range av {
		e := float64(x) - float64(bv[i])
		d.sig += float64(x) * float64(x)
		d.noise += e * e
		e = math.Abs(e)
		d.absSum += e
		if e > d.max || e != e {
			d.max = e
		}
	}
	d.n += len(av)
	if len(a.Shape) >= 2 && a.Shape[len(a.Shape)-1] >= 2 {
		d.argmaxCapable = true
		cols := a.Shape[len(a.Shape)-1]
		for r := 0; r+cols <= len(av); r += cols {
			d.rows++
			if argmax(av[r:r+cols]) == argmax(bv[r:r+cols]) {
				d.agree++
			}
		}
	}
	return nil
}

func (d *diffAccum) result(name string) OutputDiff {
	o := OutputDiff{Name: name, Elements: d.n, MaxAbsErr: d.max, Top1Agreement: -1}
	if d.n > 0 {
		o.MeanAbsErr = d.absSum / float64(d.n)
	}
	o.SQNR = sqnrDB(d.sig, d.noise)
	if d.argmaxCapable && d.rows > 0 {
		o.Top1Agreement = float64(d.agree) / float64(d.rows)
	}
	return o
}

// sqnrDB returns 10·log10(sig/noise), capped at 999 dB for equal outputs.
func sqnrDB(sig, noise float64) float64 {
	if noise == 0 {
		return 999
	}
	if sig == 0 {
		return -999
	}
	return min(999, 10*math.Log10(sig/noise))
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// correct counts rows of logits (first output, N×C) whose argmax equals
// the label.
func correct(logits *tensor.Tensor, labels *tensor.Tensor) (int, error) {
	if logits.DType != tensor.Float32 || len(logits.Shape) != 2 {
		return 0, fmt.Errorf("accuracy needs float32 N×C logits as the first output, got %v %v", logits.DType, logits.Shape)
	}
	ls := labels.I64()
	n, c := logits.Shape[0], logits.Shape[1]
	if len(ls) != n {
		return 0, fmt.Errorf("%d labels for %d rows of logits", len(ls), n)
	}
	v := logits.F32()
	k := 0
	for r := range n {
		if int64(argmax(v[r*c:(r+1)*c])) == ls[r] {
			k++
		}
	}
	return k, nil
}

// CompareOptions configure Compare.
type CompareOptions struct {
	// Batches limits the number of batches (0: one epoch).
	Batches int
	// Threads and Kernels configure the sessions.
	Threads int
	Kernels string
	// Progress is called after each batch.
	Progress func(done, total int, note string)
}

// Compare runs models a (the reference) and b over one epoch of r from its
// start and compares their outputs, matched by name (b must have every
// output of a). With labels it also reports both models' top-1 accuracy on
// the first output.
func Compare(ctx context.Context, a, b *ir.Graph, r dataset.Reader, opts CompareOptions) (*Comparison, error) {
	sa, err := infer.NewSession(a, infer.Options{Threads: opts.Threads, Kernels: opts.Kernels})
	if err != nil {
		return nil, fmt.Errorf("ptq: model A: %w", err)
	}
	sb, err := infer.NewSession(b, infer.Options{Threads: opts.Threads, Kernels: opts.Kernels})
	if err != nil {
		return nil, fmt.Errorf("ptq: model B: %w", err)
	}
	names := make([]string, len(a.Outputs))
	for i, id := range a.Outputs {
		names[i] = a.Values[id].Name
		if id2, ok := b.ValueByName(names[i]); !ok || !slicesContains(b.Outputs, id2) {
			return nil, fmt.Errorf("ptq: model B has no output %q", names[i])
		}
	}
	if err := r.Seek(dataset.Position{}); err != nil {
		return nil, err
	}
	total := r.Len()
	if opts.Batches > 0 && opts.Batches < total {
		total = opts.Batches
	}
	acc := make([]diffAccum, len(names))
	cmp := &Comparison{}
	var okA, okB int
	for cmp.Batches < total {
		batch, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		outA, err := sa.Run(ctx, batch.Feeds())
		if err != nil {
			return nil, fmt.Errorf("ptq: model A: %w", err)
		}
		outB, err := sb.Run(ctx, batch.Feeds())
		if err != nil {
			return nil, fmt.Errorf("ptq: model B: %w", err)
		}
		for i, name := range names {
			if err := acc[i].add(outA[name], outB[name]); err != nil {
				return nil, fmt.Errorf("ptq: output %q: %w", name, err)
			}
		}
		if batch.Labels != nil {
			cmp.Labelled = true
			ka, err := correct(outA[names[0]], batch.Labels)
			if err != nil {
				return nil, fmt.Errorf("ptq: model A: %w", err)
			}
			kb, err := correct(outB[names[0]], batch.Labels)
			if err != nil {
				return nil, fmt.Errorf("ptq: model B: %w", err)
			}
			okA, okB = okA+ka, okB+kb
		}
		cmp.Batches++
		cmp.Samples += batch.Len()
		if opts.Progress != nil {
			opts.Progress(cmp.Batches, total, "compare")
		}
	}
	if cmp.Batches == 0 {
		return nil, errors.New("ptq: the comparison data has no batches")
	}
	for i, name := range names {
		cmp.Outputs = append(cmp.Outputs, acc[i].result(name))
	}
	if cmp.Labelled {
		cmp.Top1A = float64(okA) / float64(cmp.Samples)
		cmp.Top1B = float64(okB) / float64(cmp.Samples)
	}
	return cmp, nil
}

func slicesContains(s []ir.ValueID, v ir.ValueID) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
