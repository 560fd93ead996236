package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

func nnPositive(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 0.25 + float64(r.IntN(16))/8
	}
	return v
}

func TestBatchNormInference(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, shape := range []tensor.Shape{{2, 3, 4, 5}, {3, 4}, {1, 2, 3}, {2, 2, 2, 2, 3}} {
		ch := shape[1]
		size := shape.Size() / shape[0] / ch
		xv := nnRandVals(r, shape.Size())
		sc, b, mean, vr := nnRandVals(r, ch), nnRandVals(r, ch), nnRandVals(r, ch), nnPositive(r, ch)
		eps := float64(float32(1e-3)) // the attribute is a float32
		want := make([]float64, len(xv))
		for i, v := range xv {
			c := i / size % ch
			want[i] = (v-mean[c])/math.Sqrt(vr[c]+eps)*sc[c] + b[c]
		}
		for _, opset := range []int64{7, 9, 14, 15} {
			for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16} {
				pdt := dt
				if opset >= 15 && dt == tensor.Float16 {
					pdt = tensor.Float32 // T1/T2 may differ from T since opset 15
				}
				ps := tensor.Shape{ch}
				in := []*tensor.Tensor{nnTensor(dt, shape, xv), nnTensor(pdt, ps, sc), nnTensor(pdt, ps, b), nnTensor(pdt, ps, mean), nnTensor(pdt, ps, vr)}
				out, err := nnRun("BatchNormalization", opset, ir.Attrs{ir.FloatAttr("epsilon", float32(eps))}, 1, 1, false, in...)
				if err != nil {
					t.Fatalf("opset %d %v: %v", opset, dt, err)
				}
				nnCheck(t, fmt.Sprintf("BatchNormalization %v opset %d %v", shape, opset, dt), out[0], dt, shape, want, nnTol(dt))
			}
		}
	}
}

// TestBatchNormSpatial0 checks opset 7's spatial=0: per-activation
// parameters of shape (C, D1, ...).
func TestBatchNormSpatial0(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	shape := tensor.Shape{2, 3, 2, 2}
	ps := tensor.Shape{3, 2, 2}
	xv := nnRandVals(r, shape.Size())
	sc, b, mean, vr := nnRandVals(r, 12), nnRandVals(r, 12), nnRandVals(r, 12), nnPositive(r, 12)
	want := make([]float64, len(xv))
	for i, v := range xv {
		j := i % 12
		want[i] = (v-mean[j])/math.Sqrt(vr[j]+1e-5)*sc[j] + b[j]
	}
	in := []*tensor.Tensor{nnTensor(tensor.Float32, shape, xv), nnTensor(tensor.Float32, ps, sc), nnTensor(tensor.Float32, ps, b),
		nnTensor(tensor.Float32, ps, mean), nnTensor(tensor.Float32, ps, vr)}
	out, err := nnRun("BatchNormalization", 7, ir.Attrs{ir.IntAttr("spatial", 0)}, 1, 1, false, in...)
	if err != nil {
		t.Fatal(err)
	}
	nnCheck(t, "BatchNormalization spatial=0", out[0], tensor.Float32, shape, want, 1e-5)
	_, err = nnRun("BatchNormalization", 7, nil, 1, 1, false, in...)
	nnWantErr(t, "spatial=1 with per-activation params", err, "does not match 3 channels")
}

func TestBatchNormTraining(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	shape := tensor.Shape{2, 3, 4}
	xv := nnRandVals(r, shape.Size())
	sc, b, mean, vr := nnRandVals(r, 3), nnRandVals(r, 3), nnRandVals(r, 3), nnPositive(r, 3)
	const mom = 0.8
	bm, bv := make([]float64, 3), make([]float64, 3)
	for i, v := range xv {
		bm[i/4%3] += v / 8
	}
	for i, v := range xv {
		d := v - bm[i/4%3]
		bv[i/4%3] += d * d / 8
	}
	want := make([]float64, len(xv))
	for i, v := range xv {
		c := i / 4 % 3
		want[i] = (v-bm[c])/math.Sqrt(bv[c]+1e-5)*sc[c] + b[c]
	}
	runMean, runVar := make([]float64, 3), make([]float64, 3)
	for c := range runMean {
		runMean[c] = mean[c]*mom + bm[c]*(1-mom)
		runVar[c] = vr[c]*mom + bv[c]*(1-mom)
	}
	in := []*tensor.Tensor{nnTensor(tensor.Float32, shape, xv), nnTensor(tensor.Float32, tensor.Shape{3}, sc), nnTensor(tensor.Float32, tensor.Shape{3}, b),
		nnTensor(tensor.Float32, tensor.Shape{3}, mean), nnTensor(tensor.Float32, tensor.Shape{3}, vr)}
	attrs := ir.Attrs{ir.IntAttr("training_mode", 1), ir.FloatAttr("momentum", mom)}
	out, err := nnRun("BatchNormalization", 15, attrs, 3, 1, false, in...)
	if err != nil {
		t.Fatal(err)
	}
	nnCheck(t, "BN training Y", out[0], tensor.Float32, shape, want, 1e-5)
	nnCheck(t, "BN training running_mean", out[1], tensor.Float32, tensor.Shape{3}, runMean, 1e-5)
	nnCheck(t, "BN training running_var", out[2], tensor.Float32, tensor.Shape{3}, runVar, 1e-5)

	// Running statistics without training mode, and old-opset training
	// outputs, are errors.
	_, err = nnRun("BatchNormalization", 15, nil, 3, 1, false, in...)
	nnWantErr(t, "stats without training", err, "training_mode=1")
	_, err = nnRun("BatchNormalization", 9, nil, 5, 1, false, in...)
	nnWantErr(t, "opset 9 outputs", err, "training outputs")
	_, err = nnRun("BatchNormalization", 9, attrs, 1, 1, false, in...)
	nnWantErr(t, "training_mode at opset 9", err, "training_mode is not part of")
}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	tests := []struct {
		shape  tensor.Shape
		axis   int
		scale  tensor.Shape
		bias   bool
		stash  int64
		nOut   int
		dt     tensor.DType
		thread int
	}{
		{tensor.Shape{2, 3, 4}, -1, tensor.Shape{4}, true, 1, 3, tensor.Float32, 1},
		{tensor.Shape{2, 3, 4}, 1, tensor.Shape{3, 4}, false, 1, 1, tensor.Float32, 2},
		{tensor.Shape{2, 3, 4}, 0, tensor.Shape{1, 4}, true, 1, 3, tensor.Float64, 1},
		{tensor.Shape{2, 3, 4}, -2, tensor.Shape{3, 1}, true, 11, 3, tensor.Float32, 1},
		{tensor.Shape{5, 6}, 1, tensor.Shape{6}, true, 1, 2, tensor.Float16, 1},
		{tensor.Shape{64, 300}, 1, tensor.Shape{300}, true, 1, 3, tensor.Float32, 3},
		{tensor.Shape{7}, 0, tensor.Shape{}, true, 1, 3, tensor.Float32, 1},
	}
	for _, tc := range tests {
		x := nnRandVals(r, tc.shape.Size())
		axis := tc.axis
		if axis < 0 {
			axis += len(tc.shape)
		}
		norm := tc.shape[axis:]
		inner := norm.Size()
		outer := tc.shape.Size() / inner
		sv, bv := nnRandVals(r, tc.scale.Size()), nnRandVals(r, tc.scale.Size())
		// Expand Scale/B to the normalized shape by broadcasting.
		sFull, bFull := make([]float64, inner), make([]float64, inner)
		st := bstrides(tc.scale, norm)
		idx := make([]int, len(norm))
		for j := 0; j < inner; j++ {
			o := 0
			for d := range idx {
				o += idx[d] * st[d]
			}
			sFull[j], bFull[j] = sv[o], bv[o]
			nnNextIdx(idx, norm)
		}
		want := make([]float64, len(x))
		means, invs := make([]float64, outer), make([]float64, outer)
		for o := 0; o < outer; o++ {
			row := x[o*inner : (o+1)*inner]
			m, q := 0.0, 0.0
			for _, v := range row {
				m += v / float64(inner)
			}
			for _, v := range row {
				q += (v - m) * (v - m) / float64(inner)
			}
			inv := 1 / math.Sqrt(q+1e-5)
			means[o], invs[o] = m, inv
			for j, v := range row {
				want[o*inner+j] = (v - m) * inv * sFull[j]
				if tc.bias {
					want[o*inner+j] += bFull[j]
				}
			}
		}
		in := []*tensor.Tensor{nnTensor(tc.dt, tc.shape, x), nnTensor(tc.dt, tc.scale, sv)}
		if tc.bias {
			in = append(in, nnTensor(tc.dt, tc.scale, bv))
		}
		attrs := ir.Attrs{ir.IntAttr("axis", int64(tc.axis)), ir.IntAttr("stash_type", tc.stash)}
		out, err := nnRun("LayerNormalization", 17, attrs, tc.nOut, tc.thread, false, in...)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		name := fmt.Sprintf("LayerNormalization %v axis %d %v", tc.shape, tc.axis, tc.dt)
		nnCheck(t, name, out[0], tc.dt, tc.shape, want, nnTol(tc.dt))
		stat := tc.shape.Clone()
		for i := axis; i < len(stat); i++ {
			stat[i] = 1
		}
		sdt := tensor.Float32
		if tc.stash == 11 {
			sdt = tensor.Float64
		}
		if tc.nOut > 1 {
			nnCheck(t, name+" Mean", out[1], sdt, stat, means, 1e-4)
		}
		if tc.nOut > 2 {
			nnCheck(t, name+" InvStdDev", out[2], sdt, stat, invs, 1e-4)
		}
	}
}

func TestLayerNormErrors(t *testing.T) {
	x := nnTensor(tensor.Float32, tensor.Shape{2, 3}, make([]float64, 6))
	_, err := nnRun("LayerNormalization", 17, nil, 1, 1, false, x, nnTensor(tensor.Float32, tensor.Shape{2}, make([]float64, 2)))
	nnWantErr(t, "scale shape", err, "does not broadcast")
	_, err = nnRun("LayerNormalization", 17, ir.Attrs{ir.IntAttr("axis", 2)}, 1, 1, false, x, nnTensor(tensor.Float32, tensor.Shape{3}, make([]float64, 3)))
	nnWantErr(t, "axis", err, "axis 2 out of range")
	_, err = nnRun("LayerNormalization", 16, nil, 1, 1, false, x, nnTensor(tensor.Float32, tensor.Shape{3}, make([]float64, 3)))
	nnWantErr(t, "opset", err, "not supported at opset 16")
	_, err = nnRun("LayerNormalization", 17, ir.Attrs{ir.IntAttr("stash_type", 16)}, 1, 1, false, x, nnTensor(tensor.Float32, tensor.Shape{3}, make([]float64, 3)))
	nnWantErr(t, "stash", err, "stash_type 16")
}
