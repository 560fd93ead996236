package ops

import (
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// TestMatMulIntegerCacheKeyedOnBatch checks that the parameters cached by
// MatMulInteger (a per-batch, per-row constant a_zero_point) are not
// reused for an A with another batch count: a later run with 1 or 4
// batches gets the error a fresh kernel gives, not stale zero points or a
// panic, and the original batch count still runs.
func TestMatMulIntegerCacheKeyedOnBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	a2 := qRand(r, tensor.Uint8, 2, 4, 6)
	b := qRand(r, tensor.Uint8, 6, 3)
	za := qRand(r, tensor.Uint8, 2, 4, 1)
	_, k, ctx := qAllocs(t, nil, "", "MatMulInteger", nil, 1, []int{0}, a2, b, za, nil)
	out := make([]*tensor.Tensor, 1)
	for _, batches := range []int{1, 4} {
		a := qRand(r, tensor.Uint8, batches, 4, 6)
		_, fresh := qRunErr("", "MatMulInteger", 21, nil, kernel.Best(), 1, 1, map[int]bool{1: true, 2: true}, a, b, za, nil)
		ctx.Begin(out)
		err := k.Run(ctx, []*tensor.Tensor{a, b, za, nil}, out)
		if (err == nil) != (fresh == nil) {
			t.Errorf("%d batches after 2: cached kernel error %v, fresh kernel error %v", batches, err, fresh)
		}
		if err == nil {
			t.Errorf("%d batches with a [2,4,1] a_zero_point accepted", batches)
		}
	}
	ctx.Begin(out)
	if err := k.Run(ctx, []*tensor.Tensor{a2, b, za, nil}, out); err != nil {
		t.Fatalf("2 batches again: %v", err)
	}
	want := qRun(t, "", "MatMulInteger", 21, nil, kernel.Best(), 1, 1, map[int]bool{1: true, 2: true}, a2, b, za, nil)[0]
	qSame(t, "2 batches after other counts", out[0], want)
}

// TestQLinearAddChannelsLastBatchBroadcast checks that goslim QLinearAdd
// with channels-last inputs broadcasts over the batch (outermost in both
// layouts) as the NCHW op does.
func TestQLinearAddChannelsLastBatchBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(83, 84))
	a, b := qRand(r, tensor.Uint8, 1, 5, 6, 8), qRand(r, tensor.Uint8, 3, 5, 6, 8)
	in := []*tensor.Tensor{a, qVals(tensor.Float32, 0.02), qVals(tensor.Uint8, 3), b, qVals(tensor.Float32, 0.03), qVals(tensor.Uint8, 200), qVals(tensor.Float32, 0.04), qVals(tensor.Uint8, 9)}
	got := qRun(t, "goslim", "QLinearAdd", 1, qLayoutAttrs(nil, true, true), kernel.Best(), 1, 1, nil, in...)[0]
	want := qRun(t, "com.microsoft", "QLinearAdd", 1, nil, kernel.Best(), 1, 1, nil, in...)[0]
	if !got.Shape.Equal(tensor.Shape{3, 5, 6, 8}) {
		t.Fatalf("shape %v", got.Shape)
	}
	qSame(t, "batch broadcast", got, want)
	bad := qRand(r, tensor.Uint8, 3, 5, 6, 1)
	in[3] = bad
	if _, err := qRunErr("goslim", "QLinearAdd", 1, qLayoutAttrs(nil, true, true), kernel.Best(), 1, 1, nil, in...); err == nil {
		t.Error("channels-last QLinearAdd broadcasting a non-batch dim accepted")
	}
}

// TestQLinearConvThreadedLarge checks a convolution large enough to be
// split across threads (>= qconvMinParallelMACs) against the one-thread
// result, in both layouts: the thread threshold must not leave the
// parallel path untested.
func TestQLinearConvThreadedLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(85, 86))
	for _, xl := range []bool{false, true} {
		shape := []int{4, 32, 24, 24}
		if xl {
			shape = []int{4, 24, 24, 32}
		}
		in := qConvInputs(r, tensor.Uint8, shape, 64, 32, 3, 3)
		if macs := 4 * 64 * 24 * 24 * 32 * 9; macs < qconvMinParallelMACs {
			t.Fatalf("%d MACs: below the parallel threshold", macs)
		}
		attrs := qLayoutAttrs(ir.Attrs{ir.IntsAttr("pads", 1, 1, 1, 1)}, xl, xl)
		one := qRun(t, "goslim", "QLinearConv", 1, attrs, kernel.Best(), 1, 1, map[int]bool{3: true}, in...)[0]
		two := qRun(t, "goslim", "QLinearConv", 1, attrs, kernel.Best(), 2, 1, map[int]bool{3: true}, in...)[0]
		qSame(t, "2 threads vs 1", two, one)
	}
}
