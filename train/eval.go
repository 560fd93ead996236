package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/goslim/goslim/dataset"
	"github.com/goslim/goslim/infer"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// Metrics are a classifier's results on a labelled data set.
type Metrics struct {
	// Samples is the number of images evaluated.
	Samples int `json:"samples"`
	// Top1 and Top5 are accuracies as fractions in [0, 1].
	Top1 float64 `json:"top1"`
	Top5 float64 `json:"top5"`
	// Loss is the mean softmax cross-entropy of the logits.
	Loss float64 `json:"loss"`
	// Classes names the classes when the data set knows them.
	Classes []string `json:"classes,omitempty"`
	// PerClass[c] is the top-1 accuracy over samples of true class c (NaN
	// is reported as -1 for classes without samples).
	PerClass []float64 `json:"per_class"`
	// Confusion[t][p] counts samples of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
	// Seconds is the wall time and ImagesPerSec the throughput.
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
}

// EvalOptions configure Evaluate.
type EvalOptions struct {
	// Threads and Kernels configure the inference session.
	Threads int
	Kernels string
	// Output names the logits output (default: the first graph output).
	Output string
	// Progress, when set, is called after each batch.
	Progress func(done, total int)
}

// Evaluate runs classifier g (logits N×C as its first output, or
// opts.Output) over one epoch of r from its start and returns accuracy,
// loss and the confusion matrix. Batches must carry labels. r is left at
// the end of the epoch.
func Evaluate(ctx context.Context, g *ir.Graph, r dataset.Reader, opts EvalOptions) (*Metrics, error) {
	sess, err := infer.NewSession(g, infer.Options{Threads: opts.Threads, Kernels: opts.Kernels})
	if err != nil {
		return nil, err
	}
	return evaluate(ctx, sess, r, opts)
}

// evaluate is Evaluate with a compiled session.
func evaluate(ctx context.Context, sess *infer.Session, r dataset.Reader, opts EvalOptions) (*Metrics, error) {
	g := sess.Graph()
	out := 0
	if opts.Output != "" {
		out = -1
		for i, id := range g.Outputs {
			if g.Values[id].Name == opts.Output {
				out = i
			}
		}
		if out < 0 {
			return nil, fmt.Errorf("train: the model has no output %q", opts.Output)
		}
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("train: the model has no outputs")
	}
	feed, err := newFeeder(g, nil)
	if err != nil {
		return nil, err
	}
	if err := r.Seek(dataset.Position{Epoch: r.Position().Epoch}); err != nil {
		return nil, err
	}
	start := time.Now()
	m := &Metrics{}
	var lossSum float64
	top5 := 0
	total := r.Len()
	for done := 0; ; done++ {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if b.Labels == nil {
			return nil, fmt.Errorf("train: evaluation data has no labels")
		}
		in, err := feed.inputs(&b, nil)
		if err != nil {
			return nil, err
		}
		outs, err := sess.RunInputs(ctx, in)
		if err != nil {
			return nil, err
		}
		logits := outs[out]
		n, c, err := logitsShape(logits, b.Len())
		if err != nil {
			return nil, err
		}
		if m.Confusion == nil {
			m.Confusion = make([][]int, c)
			for i := range m.Confusion {
				m.Confusion[i] = make([]int, c)
			}
		} else if len(m.Confusion) != c {
			return nil, fmt.Errorf("train: the model gave %d classes, then %d", len(m.Confusion), c)
		}
		lg := logits.F32()
		for i := range n {
			row := lg[i*c : (i+1)*c]
			label := b.Labels.I64()[i]
			if label < 0 || int(label) >= c {
				return nil, fmt.Errorf("train: label %d of sample %d outside the model's %d classes", label, b.Index[i], c)
			}
			pred, rank := argmaxRank(row, int(label))
			m.Confusion[label][pred]++
			if rank < 5 {
				top5++
			}
			lossSum += crossEntropy(row, int(label))
		}
		m.Samples += n
		if opts.Progress != nil {
			opts.Progress(done+1, total)
		}
	}
	if m.Samples == 0 {
		return nil, fmt.Errorf("train: evaluation data is empty")
	}
	correct := 0
	m.PerClass = make([]float64, len(m.Confusion))
	for t, row := range m.Confusion {
		sum := 0
		for _, v := range row {
			sum += v
		}
		correct += row[t]
		m.PerClass[t] = -1
		if sum > 0 {
			m.PerClass[t] = float64(row[t]) / float64(sum)
		}
	}
	if cl, ok := r.(interface{ Classes() []string }); ok && len(cl.Classes()) == len(m.Confusion) {
		m.Classes = cl.Classes()
	}
	m.Top1 = float64(correct) / float64(m.Samples)
	m.Top5 = float64(top5) / float64(m.Samples)
	m.Loss = lossSum / float64(m.Samples)
	m.Seconds = time.Since(start).Seconds()
	if m.Seconds > 0 {
		m.ImagesPerSec = float64(m.Samples) / m.Seconds
	}
	return m, nil
}

// logitsShape checks that t is float32 N×C with N = batch.
func logitsShape(t *tensor.Tensor, batch int) (n, c int, err error) {
	if t.DType != tensor.Float32 || t.Rank() != 2 || t.Shape[0] != batch || t.Shape[1] < 1 {
		return 0, 0, fmt.Errorf("train: model output is %v%v, want float32 logits [%d classes]", t.DType, t.Shape, batch)
	}
	return t.Shape[0], t.Shape[1], nil
}

// argmaxRank returns the index of the largest logit (the first on ties)
// and the rank of label: how many logits are larger than its own, or tie
// with it at a lower index.
func argmaxRank(row []float32, label int) (pred, rank int) {
	for j, v := range row {
		if v > row[pred] {
			pred = j
		}
		if v > row[label] || (v == row[label] && j < label) {
			rank++
		}
	}
	return pred, rank
}

// crossEntropy returns -log softmax(row)[label], computed in float64.
func crossEntropy(row []float32, label int) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = max(mx, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - mx)
	}
	return math.Log(s) + mx - float64(row[label])
}

// feeder maps a batch to the inputs of a graph: data inputs by name (a
// graph with one data input takes a batch's only input whatever its name)
// and, when labels is set, the labels input.
type feeder struct {
	g      *ir.Graph
	data   []int    // graph input positions of data inputs
	names  []string // their names
	labels int      // graph input position of the labels, or -1
}

// newFeeder finds the data inputs of g: graph inputs without an
// initializer, other than the skip values.
func newFeeder(g *ir.Graph, skip map[ir.ValueID]bool) (*feeder, error) {
	f := &feeder{g: g, labels: -1}
	for i, id := range g.Inputs {
		if g.Values[id].Const != nil || skip[id] {
			continue
		}
		f.data = append(f.data, i)
		f.names = append(f.names, g.Values[id].Name)
	}
	if len(f.data) == 0 {
		return nil, fmt.Errorf("train: the model has no data input")
	}
	return f, nil
}

// inputs returns the graph inputs for b in graph-input order, filling
// data inputs (and the labels at f.labels); other positions stay nil or
// take the values of extra, which is indexed by graph-input position.
func (f *feeder) inputs(b *dataset.Batch, extra []*tensor.Tensor) ([]*tensor.Tensor, error) {
	in := make([]*tensor.Tensor, len(f.g.Inputs))
	copy(in, extra)
	for k, pos := range f.data {
		t := b.Get(f.names[k])
		if t == nil && len(f.data) == 1 && len(b.Inputs) == 1 {
			t = b.Inputs[0].Tensor
		}
		if t == nil {
			return nil, fmt.Errorf("train: the batch has no input %q for the model", f.names[k])
		}
		in[pos] = t
	}
	if f.labels >= 0 {
		if b.Labels == nil {
			return nil, fmt.Errorf("train: the training data has no labels")
		}
		in[f.labels] = b.Labels
	}
	return in, nil
}
