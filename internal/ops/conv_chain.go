package ops

import (
	"math"
	"strconv"
	"strings"

	"github.com/goslim/goslim/internal/asm/vec"
	"github.com/goslim/goslim/internal/fp32"
	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/tensor"
)

// chainCacheBytes is the working set (input and output of the largest
// stage) a ConvChain chunk of images aims at: about the L2 cache of one
// core, so the values between stages are read back from cache.
const chainCacheBytes = 512 << 10

// chainKernel implements goslim.ConvChain (see infer.ConvChain): a chain
// of float32 2-D convolutions, each with its own activation, optionally
// ending with the Add of a residual tensor Z and an activation:
//
//	Y = act(stage_s(...stage_1(X)) + Z)
//
// It runs the chain on chunks of a few images, each stage computed by the
// same float32 code as Conv (so the result equals the unfused nodes bit
// for bit), with the values between stages in per-worker buffers small
// enough to stay in cache. With several threads and at least as many
// images as threads, each thread runs the whole chain on its own images;
// otherwise chunks run one after another, each stage split over the
// threads as Conv splits it.
type chainKernel struct {
	stages   []*convKernel
	residual bool
	act      func(o []float32) // after the residual Add (nil: none)
	vk       vec.Kernels

	plan    []chainStage
	x, y, z []float32
	chunk   int
	workers []chainWorker
	task    chainTask
}

// chainStage is one stage resolved for a call.
type chainStage struct {
	k             *convKernel
	ch, m         int // input and output channels
	inImg, outImg int // elements per image of the stage's input and output
	win           *nnWin
	w, b          []float32
	packed        []*fp32.PackedA
}

// chainWorker is the state of one thread running the chain: its context
// (for scratch space; nil means the caller's), the per-stage convolution
// state and two buffers for the values between stages.
type chainWorker struct {
	ctx *kernel.Ctx
	st  []convState
	buf [2][]float32
}

// chainTask runs the chain over images split evenly among workers.
type chainTask struct {
	k        *chainKernel
	n, per   int
	parallel bool
}

// Run runs workers [lo, hi) (kernel.Task).
func (t *chainTask) Run(lo, hi int) {
	for wi := lo; wi < hi; wi++ {
		w := &t.k.workers[wi]
		i0, i1 := wi*t.per, min(t.n, (wi+1)*t.per)
		for j := i0; j < i1; j += t.k.chunk {
			t.k.runChunk(w.ctx, w, j, min(j+t.k.chunk, i1))
		}
	}
}

// convChainBuilder returns the builder of goslim.ConvChain for the float32
// kernels fk and vector loops vk.
func convChainBuilder(fk fp32.Kernels, vk vec.Kernels) kernel.Builder {
	return func(info *kernel.Info) (kernel.Kernel, error) {
		a := info.Attrs()
		ns := int(a.Int("stages", 0))
		res := a.Int("residual", 0) != 0
		want := 1 + 2*ns
		if res {
			want++
		}
		if ns < 1 || ns > 64 || len(info.Node.Inputs) != want || len(info.Inputs) != want {
			return nil, info.Errorf("ConvChain with %d stages (residual %v) has %d inputs, want %d", ns, res, len(info.Node.Inputs), want)
		}
		if info.Inputs[0].DType != tensor.Float32 {
			return nil, kernel.ErrDecline
		}
		k := &chainKernel{residual: res, vk: vk}
		for i := 0; i < ns; i++ {
			pre := "s" + strconv.Itoa(i) + "_"
			var attrs ir.Attrs
			for _, at := range a {
				if strings.HasPrefix(at.Name, pre) {
					at.Name = at.Name[len(pre):]
					attrs = append(attrs, at)
				}
			}
			node := &ir.Node{Op: "FusedConv", Domain: "goslim", Name: info.Node.Name, Attrs: attrs}
			w := info.Consts[1+2*i]
			if w == nil || w.DType != tensor.Float32 || w.Rank() != 4 {
				return nil, kernel.ErrDecline
			}
			sinfo := &kernel.Info{Graph: info.Graph, Node: node, Opset: info.Graph.Opset(""), Tier: info.Tier,
				Inputs: []ir.Type{{}, info.Inputs[1+2*i], info.Inputs[2+2*i]},
				Consts: []*tensor.Tensor{nil, w, info.Consts[2+2*i]}}
			ck, err := newConvKernel(sinfo, fk)
			if err != nil {
				return nil, err
			}
			if ck.act, err = fusedAct(sinfo, false); err != nil {
				return nil, err
			}
			k.stages = append(k.stages, ck)
		}
		var err error
		k.act, err = ewActRow(a.Str("activation", ""), a.Float("clip_min", float32(math.Inf(-1))),
			a.Float("clip_max", float32(math.Inf(1))), a.Float("activation_alpha", 0.01), vk)
		if err != nil {
			return nil, info.Errorf("%v", err)
		}
		k.plan = make([]chainStage, ns)
		k.workers = []chainWorker{{st: make([]convState, ns)}}
		return k, nil
	}
}

func (k *chainKernel) Run(c *kernel.Ctx, in, out []*tensor.Tensor) error {
	x, err := need(c, in, 0, "X")
	if err != nil {
		return err
	}
	if x.DType != tensor.Float32 || x.Rank() != 4 {
		return c.Errorf("input X is %v %v, want float32 of rank 4", x.DType, x.Shape)
	}
	n, ch := x.Shape[0], x.Shape[1]
	sp := []int(x.Shape[2:])
	seq := &k.workers[0]
	peak := 0
	for i, sk := range k.stages {
		w, err := need(c, in, 1+2*i, "W")
		if err != nil {
			return err
		}
		b := opt(in, 2+2*i)
		if w.DType != tensor.Float32 || w.Rank() != 4 || (b != nil && b.DType != tensor.Float32) {
			return c.Errorf("stage %d: weight %v %v, want float32 of rank 4", i, w.DType, w.Shape)
		}
		m := w.Shape[0]
		if ch != w.Shape[1]*sk.group || m%sk.group != 0 {
			return c.Errorf("stage %d: input has %d channels but weight %v with group %d wants %d", i, ch, w.Shape, sk.group, w.Shape[1]*sk.group)
		}
		if b != nil && (b.Rank() != 1 || b.Shape[0] != m) {
			return c.Errorf("stage %d: bias shape %v, want [%d]", i, b.Shape, m)
		}
		if err := nnCheckLen(c, "kernel_shape", sk.win.kernel, 2); err != nil {
			return err
		}
		if sk.win.kernel != nil && (sk.win.kernel[0] != w.Shape[2] || sk.win.kernel[1] != w.Shape[3]) {
			return c.Errorf("stage %d: kernel_shape %v does not match weight shape %v", i, sk.win.kernel, w.Shape)
		}
		win, err := seq.st[i].window(c, &sk.win, sp, []int(w.Shape[2:]))
		if err != nil {
			return err
		}
		s := &k.plan[i]
		*s = chainStage{k: sk, ch: ch, m: m, win: win, w: w.F32(), inImg: ch * sp[0] * sp[1], outImg: m * win.out[0] * win.out[1]}
		if b != nil {
			s.b = b.F32()
		}
		if w == sk.wConst {
			s.packed = sk.packed
		}
		peak = max(peak, 4*(s.inImg+s.outImg))
		ch, sp = m, win.out
	}
	y, err := c.Output(0, tensor.Float32, seq.st[len(k.stages)-1].outShape(n, ch, sp))
	if err != nil {
		return err
	}
	k.x, k.y, k.z = x.F32(), y.F32(), nil
	if k.residual {
		z, err := need(c, in, len(in)-1, "Z")
		if err != nil {
			return err
		}
		if z.DType != tensor.Float32 || !z.Shape.Equal(y.Shape) {
			return c.Errorf("residual Z is %v %v, want float32 %v", z.DType, z.Shape, y.Shape)
		}
		k.z = z.F32()
	}
	if y.Len() == 0 {
		return nil
	}
	k.chunk = max(1, min(n, chainCacheBytes/max(peak, 1)))
	workers := 1
	if c.Threads > 1 && n >= c.Threads {
		workers = c.Threads
	}
	for len(k.workers) < workers {
		// Later windows are resolved through k.workers[0], which keeps its
		// window cache across the copy.
		k.workers = append(k.workers, chainWorker{st: make([]convState, len(k.stages)), ctx: kernel.NewCtx(c.Node, 1, nil)})
	}
	// Workers resolve their own windows' geometry but share the stage
	// windows resolved above.
	if workers == 1 {
		for j := 0; j < n; j += k.chunk {
			k.runChunk(c, seq, j, min(j+k.chunk, n))
		}
		return nil
	}
	if seq = &k.workers[0]; seq.ctx == nil { // (the append may have moved it)
		seq.ctx = kernel.NewCtx(c.Node, 1, nil)
	}
	per := (n + workers - 1) / workers
	k.task = chainTask{k: k, n: n, per: per}
	c.ParallelTask((n+per-1)/per, &k.task)
	return nil
}

// runChunk runs the chain on images [i0, i1) with worker w's buffers and
// the context c.
func (k *chainKernel) runChunk(c *kernel.Ctx, w *chainWorker, i0, i1 int) {
	cnt := i1 - i0
	last := len(k.plan) - 1
	src := k.x[i0*k.plan[0].inImg : i1*k.plan[0].inImg]
	for si := range k.plan {
		s := &k.plan[si]
		var dst []float32
		if si == last {
			dst = k.y[i0*s.outImg : i1*s.outImg]
		} else {
			b := &w.buf[si%2]
			if need := cnt * s.outImg; cap(*b) < need {
				*b = make([]float32, need)
			}
			dst = (*b)[:cnt*s.outImg]
		}
		st := &w.st[si]
		st.p = convProblem{n: cnt, c: s.ch, m: s.m, g: s.k.group, win: s.win, act: s.k.act, fk: s.k.fk, packed: s.packed}
		convF32(c, st, src, s.w, s.b, dst)
		src = dst
	}
	if k.z != nil {
		img := k.plan[last].outImg
		y := k.y[i0*img : i1*img]
		k.vk.Add(y, y, k.z[i0*img:i1*img])
		if k.act != nil {
			k.act(y)
		}
	}
}
