package ops

import (
	"math"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/tensor"
)

// gradBNShape checks X (N, C, ...) and returns N, C and the per-channel
// inner size.
func gradBNShape(c *kernel.Ctx, x *tensor.Tensor) (n, ch, size int, err error) {
	if x.Rank() < 2 {
		return 0, 0, 0, c.Errorf("input X rank %d, want at least 2 (N, C, ...)", x.Rank())
	}
	return x.Shape[0], x.Shape[1], x.Shape[2:].Size(), nil
}

// gradBNParams reads per-channel float parameters as float64.
func gradBNParams(c *kernel.Ctx, in []*tensor.Tensor, first int, ch int, names ...string) ([][]float64, error) {
	out := make([][]float64, len(names))
	for i, name := range names {
		t, err := need(c, in, first+i, name)
		if err != nil {
			return nil, err
		}
		if out[i], err = bnParam(c, t, name); err != nil {
			return nil, err
		}
		if len(out[i]) != ch {
			return nil, c.Errorf("%s shape %v does not match %d channels", name, t.Shape, ch)
		}
	}
	return out, nil
}

// gradBNTrain is goslim.BatchNormTrain(X, scale, B, mean, var) -> (Y,
// SavedMean, SavedInvStd, NewMean, NewVar), BatchNormalization in training
// mode with attributes epsilon (1e-5) and momentum (0.9). Per channel c
// over M = N*spatial elements:
//
//	mu = mean(X[:, c]), s2 = mean((X[:, c] - mu)^2), inv = 1/sqrt(s2 + epsilon)
//	Y = (X - mu) * inv * scale + B
//	NewMean = momentum*mean + (1-momentum)*mu
//	NewVar  = momentum*var + (1-momentum)*s2*M/(M-1)   (unbiased, as PyTorch; s2 when M = 1)
//
// SavedMean = mu and SavedInvStd = inv (X's dtype) feed BatchNormGrad.
// Statistics are float64; channels run in parallel, each summed in order.
type gradBNTrain struct {
	eps, momentum float64
	// vk is the vector kernel set of the entry's tier (float32 path).
	vk vec.Kernels
}

func gradBuildBNTrain(info *kernel.Info, tier kernel.Tier) (kernel.Kernel, error) {
	a := info.Attrs()
	return &gradBNTrain{eps: float64(a.Float("epsilon", 1e-5)), momentum: float64(a.Float("momentum", 0.9)),
		vk: vec.For(tier)}, nil
}

func (k *gradBNTrain) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	if err := gradFloats(c, x); err != nil {
		return err
	}
	n, ch, size, err := gradBNShape(c, x)
	if err != nil {
		return err
	}
	par, err := gradBNParams(c, in, 1, ch, "scale", "B", "input_mean", "input_var")
	if err != nil {
		return err
	}
	y, err := c.Output(0, x.DType, x.Shape)
	if err != nil {
		return err
	}
	mean := make([]float64, ch)
	inv := make([]float64, ch)
	vr := make([]float64, ch)
	switch x.DType {
	case tensor.Float32:
		gradBNForward32(c, &k.vk, x.F32(), y.F32(), par[0], par[1], mean, vr, inv, n, ch, size, k.eps)
	case tensor.Float64:
		gradBNForward(c, x.F64(), y.F64(), par[0], par[1], mean, vr, inv, n, ch, size, k.eps)
	}
	m := float64(n * size)
	for slot := 1; slot <= 4; slot++ {
		if !nnWants(c, out, slot) {
			continue
		}
		v := make([]float64, ch)
		dt := x.DType
		switch slot {
		case 1:
			copy(v, mean)
		case 2:
			copy(v, inv)
		case 3:
			dt = in[3].DType
			for j := range v {
				v[j] = k.momentum*par[2][j] + (1-k.momentum)*mean[j]
			}
		case 4:
			dt = in[4].DType
			for j := range v {
				s2 := vr[j]
				if m > 1 {
					s2 *= m / (m - 1)
				}
				v[j] = k.momentum*par[3][j] + (1-k.momentum)*s2
			}
		}
		t, err := c.Output(slot, dt, tensor.Shape{ch})
		if err != nil {
			return err
		}
		if err := storeFloat64(c, t, v); err != nil {
			return err
		}
	}
	return nil
}

// gradBNForward computes the batch statistics (two passes, float64) and Y.
func gradBNForward[T Float](c *kernel.Ctx, x, y []T, scale, bias, mean, vr, inv []float64, n, ch, size int, eps float64) {
	m := float64(n * size)
	workers := nnWorkers(c, ch, 6*float64(n*ch*size))
	nnRunWorkers(c, workers, func(wi int) {
		for j := wi; j < ch; j += workers {
			var s float64
			for ni := 0; ni < n; ni++ {
				s += gradSum4(x[(ni*ch+j)*size : (ni*ch+j+1)*size])
			}
			mu := 0.0
			if m > 0 {
				mu = s / m
			}
			var q float64
			for ni := 0; ni < n; ni++ {
				q += gradSumSqDev4(x[(ni*ch+j)*size:(ni*ch+j+1)*size], mu)
			}
			s2 := 0.0
			if m > 0 {
				s2 = q / m
			}
			iv := 1 / math.Sqrt(s2+eps)
			mean[j], vr[j], inv[j] = mu, s2, iv
			a := iv * scale[j]
			b := bias[j] - mu*a
			for ni := 0; ni < n; ni++ {
				xs := x[(ni*ch+j)*size : (ni*ch+j+1)*size]
				ys := y[(ni*ch+j)*size : (ni*ch+j+1)*size]
				ys = ys[:len(xs)]
				for i, v := range xs {
					ys[i] = T(float64(v)*a + b)
				}
			}
		}
	})
}

// gradBNForward32 is gradBNForward for float32 on the tier's vector
// kernels: each row (one image's plane of a channel) is summed in float32
// (Sum, then SumSqD around the mean), the row sums are added in float64,
// and Y = X*a + b is one AXPB per row.
func gradBNForward32(c *kernel.Ctx, vk *vec.Kernels, x, y []float32, scale, bias, mean, vr, inv []float64, n, ch, size int, eps float64) {
	m := float64(n * size)
	workers := nnWorkers(c, ch, 6*float64(n*ch*size))
	run := func(wi int) {
		for j := wi; j < ch; j += workers {
			var s float64
			for ni := 0; ni < n; ni++ {
				s += float64(vk.Sum(x[(ni*ch+j)*size : (ni*ch+j+1)*size]))
			}
			mu := 0.0
			if m > 0 {
				mu = s / m
			}
			var q float64
			for ni := 0; ni < n; ni++ {
				q += float64(vk.SumSqD(x[(ni*ch+j)*size:(ni*ch+j+1)*size], float32(mu)))
			}
			s2 := 0.0
			if m > 0 {
				s2 = q / m
			}
			iv := 1 / math.Sqrt(s2+eps)
			mean[j], vr[j], inv[j] = mu, s2, iv
			a := iv * scale[j]
			b := bias[j] - mu*a
			for ni := 0; ni < n; ni++ {
				lo, hi := (ni*ch+j)*size, (ni*ch+j+1)*size
				vk.AXPB(y[lo:hi], x[lo:hi], float32(a), float32(b))
			}
		}
	}
	if workers <= 1 {
		run(0)
		return
	}
	nnRunWorkers(c, workers, run)
}

// gradBNBackward32 is gradBNBackward for float32 on the tier's vector
// kernels, row by row (one image's plane of a channel) through a row of
// workspace: xc = X - mean, then the row sums of dY and dY*xc (float32
// within a row, float64 across rows), and dX = a*dY + b*xc + c0 with
// a = scale*inv, b = -a*inv*dScale/M, c0 = -a*dB/M.
func gradBNBackward32(c *kernel.Ctx, vk *vec.Kernels, dy, x, dx []float32, scale, mean, inv, sdy, sdyx []float64, n, ch, size int, frozen bool) {
	m := float64(n * size)
	workers := nnWorkers(c, ch, 8*float64(n*ch*size))
	scratch := c.Scratch(workers * 2 * size)
	run := func(wi int) {
		xc, t := scratch[wi*2*size:(wi*2+1)*size], scratch[(wi*2+1)*size:(wi*2+2)*size]
		for j := wi; j < ch; j += workers {
			mu, iv := mean[j], inv[j]
			var s, sx float64
			for ni := 0; ni < n; ni++ {
				lo, hi := (ni*ch+j)*size, (ni*ch+j+1)*size
				vk.SubS(xc, x[lo:hi], float32(mu))
				vk.Mul(t, xc, dy[lo:hi])
				s += float64(vk.Sum(dy[lo:hi]))
				sx += float64(vk.Sum(t))
			}
			sx *= iv
			sdy[j], sdyx[j] = s, sx
			if dx == nil {
				continue
			}
			a := scale[j] * iv
			var b, c0 float64
			if !frozen && m > 0 {
				b, c0 = -a*iv*sx/m, -a*s/m
			}
			for ni := 0; ni < n; ni++ {
				lo, hi := (ni*ch+j)*size, (ni*ch+j+1)*size
				ds := dx[lo:hi]
				if b == 0 && c0 == 0 {
					vk.MulS(ds, dy[lo:hi], float32(a))
					continue
				}
				vk.SubS(xc, x[lo:hi], float32(mu))
				vk.AXPB(t, xc, float32(b), float32(c0))
				vk.MulS(ds, dy[lo:hi], float32(a))
				vk.Add(ds, ds, t)
			}
		}
	}
	if workers <= 1 {
		run(0)
		return
	}
	nnRunWorkers(c, workers, run)
}

// gradSum4 returns the sum of xs in float64, with four interleaved
// partial sums (a fixed order: lanes i%4, added at the end, then the tail).
func gradSum4[T Float](xs []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		v := xs[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	s := (s0 + s1) + (s2 + s3)
	for ; i < len(xs); i++ {
		s += float64(xs[i])
	}
	return s
}

// gradSumSqDev4 returns sum (x - mu)^2 in float64, summed like gradSum4.
func gradSumSqDev4[T Float](xs []T, mu float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		v := xs[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(v[0])-mu, float64(v[1])-mu, float64(v[2])-mu, float64(v[3])-mu
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	s := (s0 + s1) + (s2 + s3)
	for ; i < len(xs); i++ {
		d := float64(xs[i]) - mu
		s += d * d
	}
	return s
}

// gradSumDotDev4 returns sum g and sum g*(x - mu) in float64, summed like
// gradSum4.
func gradSumDotDev4[T Float](g, xs []T, mu float64) (float64, float64) {
	xs = xs[:len(g)]
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(g); i += 4 {
		v := g[i : i+4 : i+4]
		w := xs[i : i+4 : i+4]
		g0, g1, g2, g3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		s0 += g0
		s1 += g1
		s2 += g2
		s3 += g3
		q0 += g0 * (float64(w[0]) - mu)
		q1 += g1 * (float64(w[1]) - mu)
		q2 += g2 * (float64(w[2]) - mu)
		q3 += g3 * (float64(w[3]) - mu)
	}
	s, q := (s0+s1)+(s2+s3), (q0+q1)+(q2+q3)
	for ; i < len(g); i++ {
		s += float64(g[i])
		q += float64(g[i]) * (float64(xs[i]) - mu)
	}
	return s, q
}

// gradBNGrad is goslim.BatchNormGrad(dY, X, scale, mean, inv) -> (dX,
// dScale, dB). Per channel, with xhat = (X - mean) * inv and sums over the
// M = N*spatial elements:
//
//	dB = sum dY,  dScale = sum dY*xhat
//	dX = scale*inv * (dY - dB/M - xhat*dScale/M)     (batch statistics)
//
// With attribute frozen=1 the statistics were constants (inference-form
// BatchNormalization): input 4 is the running variance, inv =
// 1/sqrt(var + epsilon), and dX = scale*inv*dY.
type gradBNGrad struct {
	frozen bool
	eps    float64
	// vk is the vector kernel set of the entry's tier (float32 path).
	vk vec.Kernels
}

func gradBuildBNGrad(info *kernel.Info, tier kernel.Tier) (kernel.Kernel, error) {
	a := info.Attrs()
	return &gradBNGrad{frozen: a.Int("frozen", 0) != 0, eps: float64(a.Float("epsilon", 1e-5)), vk: vec.For(tier)}, nil
}

func (k *gradBNGrad) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, x, err := gradPairIn(c, in, 0, "dY", "X")
	if err != nil {
		return err
	}
	n, ch, size, err := gradBNShape(c, x)
	if err != nil {
		return err
	}
	par, err := gradBNParams(c, in, 2, ch, "scale", "mean", "inv_std")
	if err != nil {
		return err
	}
	scale, mean, inv := par[0], par[1], par[2]
	if k.frozen {
		for j, v := range inv {
			inv[j] = 1 / math.Sqrt(v+k.eps)
		}
	}
	sdy := make([]float64, ch)
	sdyx := make([]float64, ch)
	var dxT *tensor.Tensor
	if nnWants(c, out, 0) {
		if dxT, err = c.Output(0, x.DType, x.Shape); err != nil {
			return err
		}
	}
	switch x.DType {
	case tensor.Float32:
		var dx []float32
		if dxT != nil {
			dx = dxT.F32()
		}
		gradBNBackward32(c, &k.vk, dy.F32(), x.F32(), dx, scale, mean, inv, sdy, sdyx, n, ch, size, k.frozen)
	case tensor.Float64:
		var dx []float64
		if dxT != nil {
			dx = dxT.F64()
		}
		gradBNBackward(c, dy.F64(), x.F64(), dx, scale, mean, inv, sdy, sdyx, n, ch, size, k.frozen)
	}
	for slot, v := range [][]float64{nil, sdyx, sdy} {
		if slot == 0 || !nnWants(c, out, slot) {
			continue
		}
		t, err := c.Output(slot, in[2].DType, tensor.Shape{ch})
		if err != nil {
			return err
		}
		if err := storeFloat64(c, t, v); err != nil {
			return err
		}
	}
	return nil
}

func gradBNBackward[T Float](c *kernel.Ctx, dy, x, dx []T, scale, mean, inv, sdy, sdyx []float64, n, ch, size int, frozen bool) {
	m := float64(n * size)
	workers := nnWorkers(c, ch, 8*float64(n*ch*size))
	nnRunWorkers(c, workers, func(wi int) {
		for j := wi; j < ch; j += workers {
			mu, iv := mean[j], inv[j]
			var s, sx float64
			for ni := 0; ni < n; ni++ {
				lo, hi := (ni*ch+j)*size, (ni*ch+j+1)*size
				a, b := gradSumDotDev4(dy[lo:hi], x[lo:hi], mu)
				s += a
				sx += b
			}
			sx *= iv
			sdy[j], sdyx[j] = s, sx
			if dx == nil {
				continue
			}
			a := scale[j] * iv
			var b, cx float64
			if !frozen && m > 0 {
				b, cx = s/m, sx/m
			}
			for ni := 0; ni < n; ni++ {
				lo, hi := (ni*ch+j)*size, (ni*ch+j+1)*size
				gs := dy[lo:hi]
				xs, ds := x[lo:hi], dx[lo:hi]
				xs, ds = xs[:len(gs)], ds[:len(gs)]
				for i, g := range gs {
					xh := (float64(xs[i]) - mu) * iv
					ds[i] = T(a * (float64(g) - b - xh*cx))
				}
			}
		}
	})
}

// gradLNGrad is goslim.LayerNormGrad(dY, X, Scale, Mean, InvStdDev[, B])
// -> (dX, dScale, dB) with the forward attribute axis. Per row r (the axes
// before axis) with xhat = (X - mean_r)*inv_r, g = dY*Scale over the
// normalized axes (n elements):
//
//	dX = inv_r * (g - mean(g) - xhat*mean(g*xhat))
//	dScale = sum_r dY*xhat,  dB = sum_r dY   (reduced to Scale's and B's shapes)
//
// Rows run in parallel for dX; column blocks for dScale and dB, each
// summed over the rows in order.
type gradLNGrad struct{ axis int64 }

func gradBuildLNGrad(info *kernel.Info) (kernel.Kernel, error) {
	return &gradLNGrad{axis: info.Attrs().Int("axis", -1)}, nil
}

func (k *gradLNGrad) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	dy, err := need(c, in, 0, "dY")
	if err != nil {
		return err
	}
	x, err := need(c, in, 1, "X")
	if err != nil {
		return err
	}
	sc, err := need(c, in, 2, "Scale")
	if err != nil {
		return err
	}
	mt, err := need(c, in, 3, "Mean")
	if err != nil {
		return err
	}
	it, err := need(c, in, 4, "InvStdDev")
	if err != nil {
		return err
	}
	b := opt(in, 5)
	if err := gradFloats(c, dy, x); err != nil {
		return err
	}
	if err := gradSameShape(c, dy, x, "dY", "X"); err != nil {
		return err
	}
	if x.Rank() == 0 {
		return c.Errorf("input X must have rank >= 1")
	}
	axis, err := normAxis(c, k.axis, x.Rank())
	if err != nil {
		return err
	}
	norm := x.Shape[axis:]
	inner := norm.Size()
	outer := x.Shape[:axis].Size()
	scale, err := lnExpand(c, sc, norm, "Scale")
	if err != nil {
		return err
	}
	if mt.Len() != outer || it.Len() != outer {
		return c.Errorf("Mean %v and InvStdDev %v must have %d elements", mt.Shape, it.Shape, outer)
	}
	mean := make([]float64, outer)
	inv := make([]float64, outer)
	for r := range mean {
		mean[r], inv[r] = mt.Float64At(r), it.Float64At(r)
	}
	if nnWants(c, out, 0) {
		dx, err := c.Output(0, x.DType, x.Shape)
		if err != nil {
			return err
		}
		switch x.DType {
		case tensor.Float32:
			gradLNRows(c, dy.F32(), x.F32(), dx.F32(), scale, mean, inv, outer, inner)
		case tensor.Float64:
			gradLNRows(c, dy.F64(), x.F64(), dx.F64(), scale, mean, inv, outer, inner)
		}
	}
	wantS, wantB := nnWants(c, out, 1), nnWants(c, out, 2) && b != nil
	if !wantS && !wantB {
		return nil
	}
	ds := make([]float64, inner)
	db := make([]float64, inner)
	switch x.DType {
	case tensor.Float32:
		gradLNCols(c, dy.F32(), x.F32(), mean, inv, ds, db, outer, inner)
	case tensor.Float64:
		gradLNCols(c, dy.F64(), x.F64(), mean, inv, ds, db, outer, inner)
	}
	for slot, p := range []*tensor.Tensor{nil, sc, b} {
		if slot == 0 || (slot == 1 && !wantS) || (slot == 2 && !wantB) {
			continue
		}
		full := ds
		if slot == 2 {
			full = db
		}
		t, err := c.Output(slot, p.DType, p.Shape.Clone())
		if err != nil {
			return err
		}
		red := full
		if p.Len() != inner {
			red = make([]float64, p.Len())
			st := bstrides(p.Shape, norm)
			idx := make([]int, len(norm))
			for _, v := range full {
				o := 0
				for d := range idx {
					o += idx[d] * st[d]
				}
				red[o] += v
				nnNext(idx, norm)
			}
		}
		if err := storeFloat64(c, t, red); err != nil {
			return err
		}
	}
	return nil
}

func gradLNRows[T Float](c *kernel.Ctx, dy, x, dx []T, scale, mean, inv []float64, outer, inner int) {
	workers := nnWorkers(c, outer, 10*float64(outer)*float64(inner))
	nnRunWorkers(c, workers, func(wi int) {
		for r := wi; r < outer; r += workers {
			lo, hi := r*inner, (r+1)*inner
			xs, gs, ds := x[lo:hi], dy[lo:hi], dx[lo:hi]
			mu, iv := mean[r], inv[r]
			var sg, sgx float64
			for j, g := range gs {
				gv := float64(g) * scale[j]
				sg += gv
				sgx += gv * (float64(xs[j]) - mu) * iv
			}
			n := float64(max(inner, 1))
			a, b := sg/n, sgx/n
			for j, g := range gs {
				xh := (float64(xs[j]) - mu) * iv
				ds[j] = T(iv * (float64(g)*scale[j] - a - xh*b))
			}
		}
	})
}

// gradLNCols sums dY*xhat and dY over the rows per column, in blocks of
// 256 columns.
func gradLNCols[T Float](c *kernel.Ctx, dy, x []T, mean, inv, ds, db []float64, outer, inner int) {
	const blk = 256
	blocks := (inner + blk - 1) / blk
	workers := nnWorkers(c, blocks, 4*float64(outer)*float64(inner))
	nnRunWorkers(c, workers, func(wi int) {
		for u := wi; u < blocks; u += workers {
			j0, j1 := u*blk, min(inner, (u+1)*blk)
			dsb, dbb := ds[j0:j1], db[j0:j1]
			for r := 0; r < outer; r++ {
				mu, iv := mean[r], inv[r]
				xs, gs := x[r*inner+j0:r*inner+j1], dy[r*inner+j0:r*inner+j1]
				for j, g := range gs {
					gv := float64(g)
					dbb[j] += gv
					dsb[j] += gv * (float64(xs[j]) - mu) * iv
				}
			}
		}
	})
}
