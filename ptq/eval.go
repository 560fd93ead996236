package ptq

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// Metrics describe a candidate model on the evaluation data, against the
// FP32 model.
type Metrics struct {
	// Samples is the number of samples evaluated.
	Samples int `json:"samples"`
	// Top1 is the top-1 accuracy (fraction) when the data has labels, else
	// -1.
	Top1 float64 `json:"top1"`
	// Agreement is the fraction of samples whose top-1 class equals the
	// FP32 model's (first output, N×C).
	Agreement float64 `json:"agreement"`
	// SQNR is the first output's signal-to-quantization-noise ratio against
	// the FP32 output, in dB.
	SQNR float64 `json:"sqnr_db"`
	// MaxAbsErr is the first output's largest |FP32 - candidate|.
	MaxAbsErr float64 `json:"max_abs_err"`
}

// refSet holds evaluation batches and the FP32 model's first output for
// each, so candidates (sensitivity analysis, the max-drop search) are
// compared without rerunning the FP32 model. It keeps the whole set in
// memory: inputs plus first outputs.
type refSet struct {
	g        *ir.Graph
	batches  []dataset.Batch
	ref      []*tensor.Tensor
	labelled bool
	fp32     Metrics
	threads  int
	kernels  string
}

// newRefSet reads up to limit batches (0: one epoch) of r from its start
// and runs the FP32 graph on them.
func newRefSet(ctx context.Context, g *ir.Graph, r dataset.Reader, limit, threads int, kernels string) (*refSet, error) {
	if err := r.Seek(dataset.Position{}); err != nil {
		return nil, err
	}
	sess, err := infer.NewSession(g, infer.Options{Threads: threads, Kernels: kernels})
	if err != nil {
		return nil, err
	}
	s := &refSet{g: g, labelled: true, threads: threads, kernels: kernels}
	total := r.Len()
	if limit > 0 && limit < total {
		total = limit
	}
	for len(s.batches) < total {
		b, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		outs, err := sess.RunInputs(ctx, feedsInOrder(g, b))
		if err != nil {
			return nil, fmt.Errorf("ptq: evaluation batch %d: %w", len(s.batches)+1, err)
		}
		if outs[0].DType != tensor.Float32 {
			return nil, fmt.Errorf("ptq: the model's first output is %v; evaluation needs float32", outs[0].DType)
		}
		s.batches = append(s.batches, b)
		// Clone: an output may sit in a larger arena buffer, which keeping
		// it would pin.
		s.ref = append(s.ref, outs[0].Clone())
		if b.Labels == nil {
			s.labelled = false
		}
	}
	if len(s.batches) == 0 {
		return nil, errors.New("ptq: the evaluation data has no batches")
	}
	m, err := s.evalSession(ctx, sess)
	if err != nil {
		return nil, err
	}
	s.fp32 = *m
	return s, nil
}

// feedsInOrder maps a batch's named inputs to graph-input order (nil for
// inputs the batch lacks: their initializer is used, or the run fails
// naming the input).
func feedsInOrder(g *ir.Graph, b dataset.Batch) []*tensor.Tensor {
	in := make([]*tensor.Tensor, len(g.Inputs))
	for i, id := range g.Inputs {
		in[i] = b.Get(g.Values[id].Name)
		if in[i] == nil && len(g.Inputs) == 1 && len(b.Inputs) == 1 {
			in[i] = b.Inputs[0].Tensor
		}
	}
	return in
}

// graph returns the FP32 graph.
func (s *refSet) graph() *ir.Graph { return s.g }

// eval runs candidate g over the set, with its constant subgraphs folded
// (see foldQDQ).
func (s *refSet) eval(ctx context.Context, g *ir.Graph) (*Metrics, error) {
	sess, err := infer.NewSession(foldQDQ(g), infer.Options{Threads: s.threads, Kernels: s.kernels})
	if err != nil {
		return nil, err
	}
	return s.evalSession(ctx, sess)
}

// foldQDQ returns g with its constant subgraphs evaluated once: the
// DequantizeLinear nodes of int8 weights and int32 biases (and the Mul of
// their scales) become float32 constants holding exactly the values the
// nodes compute ((q - zero point) × scale in float32), so the session sees
// constant weights, packs them once and fuses Conv/Gemm with bias and
// activation, instead of dequantizing every weight on every run (a QDQ
// ResNet-8 evaluated 3.6 times slower than its FP32 model). The function
// is the same; the accumulation order inside a convolution may differ
// from running the unfolded graph, within float32 rounding. On any error
// g itself is returned.
func foldQDQ(g *ir.Graph) *ir.Graph {
	f, err := rewrite.FoldConstants(g, infer.NodeEvaluator(nil))
	if err != nil {
		return g
	}
	f, _ = rewrite.RemoveDead(f)
	return f
}

// Reference is the FP32 side of an evaluation, computed once and reused
// across candidates (the methods table quantizes one model many ways):
// the evaluation batches, the FP32 model's first output on each, and its
// metrics. It keeps the whole evaluation set in memory.
type Reference struct {
	set *refSet
}

// NewReference prepares g (Prepare) and runs it over up to limit batches
// of r (0: one epoch) from its start.
func NewReference(ctx context.Context, g *ir.Graph, r dataset.Reader, limit, threads int, kernels string) (*Reference, error) {
	pg, err := Prepare(g)
	if err != nil {
		return nil, err
	}
	s, err := newRefSet(ctx, pg, r, limit, threads, kernels)
	if err != nil {
		return nil, err
	}
	return &Reference{set: s}, nil
}

// FP32 returns the FP32 model's metrics.
func (r *Reference) FP32() Metrics { return r.set.fp32 }

// Evaluate runs a candidate (a QDQ model of the same FP32 model) over the
// evaluation batches and compares it with FP32.
func (r *Reference) Evaluate(ctx context.Context, q *ir.Graph) (*Metrics, error) {
	return r.set.eval(ctx, q)
}

// Drop returns the top-1 drop of m against FP32 in percentage points
// (accuracy with labels, else disagreement with FP32's top-1).
func (r *Reference) Drop(m *Metrics) float64 { return r.set.drop(m) }

func (s *refSet) evalSession(ctx context.Context, sess *infer.Session) (*Metrics, error) {
	g := sess.Graph()
	var acc diffAccum
	m := &Metrics{Top1: -1}
	ok := 0
	for i, b := range s.batches {
		outs, err := sess.RunInputs(ctx, feedsInOrder(g, b))
		if err != nil {
			return nil, err
		}
		if err := acc.add(s.ref[i], outs[0]); err != nil {
			return nil, fmt.Errorf("ptq: first output: %w", err)
		}
		if s.labelled {
			k, err := correct(outs[0], b.Labels)
			if err != nil {
				return nil, fmt.Errorf("ptq: %w", err)
			}
			ok += k
		}
		m.Samples += b.Len()
	}
	d := acc.result("")
	m.SQNR, m.MaxAbsErr, m.Agreement = d.SQNR, d.MaxAbsErr, d.Top1Agreement
	if s.labelled {
		m.Top1 = float64(ok) / float64(m.Samples)
	}
	return m, nil
}

// drop returns the top-1 drop of m against FP32 in percentage points: the
// accuracy drop with labels, else the share of samples whose top-1 class
// differs from FP32's.
func (s *refSet) drop(m *Metrics) float64 {
	if s.labelled {
		return 100 * (s.fp32.Top1 - m.Top1)
	}
	return 100 * (1 - m.Agreement)
}
