// Package infer executes ir.Graphs: it compiles a graph into a Session (a
// topological plan, one kernel per node chosen from the kernel table, and
// buffer lifetimes), then runs it on any batch size.
//
// Compiling works on a private copy of the graph: static types are
// inferred, Constant nodes become constants, and groups of nodes are fused
// into internal kernels of domain "goslim" (Conv or Gemm with the
// activation after it, Conv with a residual Add, MatMul with a bias Add,
// elementwise arithmetic with an activation; see fuse.go). The caller's
// graph, and what it exports, stays standard ONNX, and Kernels reports
// every node.
//
// Observers see activations through the value tap (Options.Tap), which is
// called with every value the graph defines, in execution order; a value
// that is tapped (or kept, or a graph output) is never hidden by a fusion.
// infer never imports calibration, PTQ or QAT code.
//
// Steady-state runs allocate nothing: each node's output slot gets the
// same arena buffer and tensor header every run, and RunInto copies the
// results into the caller's tensors (RunInputs and Run return new ones).
// With Threads > 1 kernels split large work over a per-session worker
// pool; with one thread no goroutine is ever started.
package infer

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/goslim/goslim/internal/kernel"
	"github.com/goslim/goslim/internal/ops"
	"github.com/goslim/goslim/ir"
	"github.com/goslim/goslim/rewrite"
	"github.com/goslim/goslim/tensor"
)

// Tap sees a value right after it is computed (graph inputs first). The
// tensor is valid only during the call: copy what must be kept. Returning
// an error aborts the run.
type Tap func(id ir.ValueID, t *tensor.Tensor) error

// Options configure a Session. The zero value is valid.
type Options struct {
	// Threads is the number of goroutines kernels may use (default: the
	// number of CPUs).
	Threads int
	// Kernels forces a kernel tier ("generic", "avx2", "avx512", "vnni",
	// "amx"). Empty means the GOSLIM_KERNELS environment variable, else the
	// best tier this CPU supports.
	Kernels string
	// Tap, when set, is called with every value the graph defines (or only
	// TapValues when that is non-nil). Fusions that would hide a tapped
	// value are not applied.
	Tap       Tap
	TapValues []ir.ValueID
	// Keep lists values whose tensors stay alive after a run (for a backward
	// pass); read them with Session.Value.
	Keep []ir.ValueID
	// Table overrides the kernel table (default ops.NewTable()).
	Table *kernel.Table
	// NoFusion disables the compile-time fusion of node groups (Conv or
	// Gemm with a following activation, Conv with a residual Add, MatMul
	// with a bias Add, elementwise arithmetic with an activation) into
	// internal kernels.
	NoFusion bool
	// NoInt8Lowering disables the INT8 lowering of QDQ patterns into
	// integer kernels (lower_int8.go), leaving DequantizeLinear -> FP32 op
	// -> QuantizeLinear as written; GOSLIM_INT8=off does the same.
	NoInt8Lowering bool
	// NoChannelsLast keeps every 8-bit activation of the INT8 lowering in
	// NCHW layout (no channels-last layout pass, layout_int8.go);
	// GOSLIM_INT8=nchw does the same.
	NoChannelsLast bool
	// StepDone, when set, is called after each step of a run with the
	// index of the graph node the step computes (for a fused or lowered
	// group, its head node). Per-layer profilers use it instead of taps,
	// which would keep the fusion and lowering passes from hiding values
	// and so change what is measured.
	StepDone func(node int)
}

// NodeKernel records which implementation runs a node. Every node of the
// graph has a record, also when fusion computes it inside another node's
// kernel.
type NodeKernel struct {
	Node   int    // index in Graph.Nodes
	Label  string // node name and op
	Op     string
	Kernel string // entry name, e.g. "generic" or "avx512.gemm"; "fused into ..." for absorbed nodes
	Tier   kernel.Tier
	// Fused names the internal op (e.g. "goslim.FusedConv") that runs this
	// node together with the nodes fused into it; empty when not fused.
	Fused string
	// FusedInto is the index of the node whose kernel also computes this
	// node (its value is never materialized), or -1.
	FusedInto int
	// Note says why a node of a quantized (QDQ) pattern stayed in FP32
	// instead of being lowered to an integer kernel; empty otherwise.
	Note string
}

type step struct {
	node    int // index in Graph.Nodes (the head of a fused group)
	k       kernel.Kernel
	ctx     *kernel.Ctx
	in      []*tensor.Tensor
	out     []*tensor.Tensor
	inIDs   []ir.ValueID
	outIDs  []ir.ValueID
	release []ir.ValueID // values whose last use is this step
}

// Session is a compiled graph. Run may be called from several goroutines;
// calls are serialized.
type Session struct {
	g       *ir.Graph
	exec    *ir.Graph // private copy: fused groups replaced by internal nodes
	opts    Options
	tier    kernel.Tier
	steps   []step
	records []NodeKernel
	tapped  []bool
	kept    []bool
	isOut   []bool
	consts  []ir.ValueID // values with a constant tensor (fallback for inputs)
	pool    *kernel.Pool

	mu     sync.Mutex
	arena  *arena
	vals   []*tensor.Tensor
	handle []int
}

// NewSession compiles g. The graph must not be modified afterwards.
func NewSession(g *ir.Graph, opts Options) (*Session, error) {
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	if v, ok := g.Opsets[""]; ok && (v < 7 || v > MaxOpset) {
		return nil, fmt.Errorf("infer: model imports ai.onnx opset %d; goslim supports opsets 7 to %d", v, MaxOpset)
	}
	for id := range g.Values {
		if c := g.Values[id].Const; c != nil && hasNaN(c) {
			return nil, fmt.Errorf("infer: initializer %q contains NaN; the model is broken", g.Values[id].Name)
		}
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.NumCPU()
	}
	var want kernel.Tier
	explicit := false
	if opts.Kernels != "" {
		t, err := kernel.ParseTier(opts.Kernels)
		if err != nil {
			return nil, fmt.Errorf("infer: %w", err)
		}
		want, explicit = t, true
	}
	tier, err := kernel.Resolve(want, explicit)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	table := opts.Table
	if table == nil {
		table = ops.NewTable()
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	s := &Session{g: g, opts: opts, tier: tier, arena: newArena(),
		vals: make([]*tensor.Tensor, len(g.Values)), handle: make([]int, len(g.Values)),
		tapped: make([]bool, len(g.Values)), kept: make([]bool, len(g.Values)), isOut: make([]bool, len(g.Values))}
	for i := range s.handle {
		s.handle[i] = -1
	}
	if opts.Tap != nil {
		if opts.TapValues == nil {
			for i := range s.tapped {
				s.tapped[i] = true
			}
		}
		for _, id := range opts.TapValues {
			if id < 0 || int(id) >= len(g.Values) {
				return nil, fmt.Errorf("infer: tap value id %d out of range", id)
			}
			s.tapped[id] = true
		}
	}
	for _, id := range opts.Keep {
		if id < 0 || int(id) >= len(g.Values) {
			return nil, fmt.Errorf("infer: keep value id %d out of range", id)
		}
		s.kept[id] = true
	}
	for _, id := range g.Outputs {
		s.isOut[id] = true
	}
	// The private copy carries inferred static types (dtype, rank, dims):
	// kernel builders pick their tier-specific entries from them and the
	// fusion pass checks ranks. A graph whose shapes do not infer still
	// compiles; its kernels check shapes when they run.
	if s.exec, err = rewrite.InferShapes(g); err != nil {
		s.exec = g.Clone()
	}
	// Constant nodes whose output no tap waits for become constants of the
	// private copy: they cost nothing per run, and kernels and the fusion
	// pass see their values (PyTorch exports Clip bounds this way).
	folded := make([]bool, len(g.Nodes))
	for ni := range s.exec.Nodes {
		n := &s.exec.Nodes[ni]
		if n.Op != "Constant" || (n.Domain != "" && n.Domain != "ai.onnx") || len(n.Outputs) != 1 || n.Outputs[0] == ir.NoValue {
			continue
		}
		id := n.Outputs[0]
		if t := constantValue(n); t != nil && !s.tapped[id] {
			v := &s.exec.Values[id]
			v.Const = t
			v.Type = ir.Type{DType: t.DType, Ranked: true, Shape: ir.ShapeDims(t.Shape)}
			folded[ni] = true
		}
	}
	// built[h] holds the kernel of the internal node of the fused group
	// headed by node h; absorbedBy[ni] the head of the group that computes
	// node ni (-1 when none); stepAt[ni] the head whose fused step runs at
	// node ni's place in the order.
	type builtKernel struct {
		k kernel.Kernel
		e kernel.Entry
	}
	built := map[int]builtKernel{}
	stepAt := map[int]int{}
	absorbedBy := make([]int, len(g.Nodes))
	for i := range absorbedBy {
		absorbedBy[i] = -1
	}
	protect := func(id ir.ValueID) bool { return s.isOut[id] || s.kept[id] || s.tapped[id] }
	accept := func(f *fusion) bool {
		for _, a := range append([]int{f.head}, f.absorbed...) {
			if _, ok := built[a]; ok || absorbedBy[a] >= 0 {
				return false // already in a lowered group
			}
		}
		if s.exec.Opsets == nil {
			s.exec.Opsets = map[string]int64{}
		}
		if _, ok := s.exec.Opsets[FusedDomain]; !ok {
			s.exec.Opsets[FusedDomain] = 1
		}
		orig := s.exec.Nodes[f.head]
		s.exec.Nodes[f.head] = f.node
		k, e, err := table.Lookup(s.info(f.head, tier))
		if err != nil {
			// No kernel takes the fused node: try another group.
			s.exec.Nodes[f.head] = orig
			return false
		}
		built[f.head] = builtKernel{k, e}
		stepAt[f.at] = f.head
		for _, a := range f.absorbed {
			absorbedBy[a] = f.head
		}
		return true
	}
	notes, err := s.lowerInt8(order, table, tier, protect, accept)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	if !opts.NoFusion {
		planFusions(s.exec, order, protect, accept)
	}
	s.pool = kernel.NewPool(opts.Threads)
	if s.pool != nil {
		runtime.AddCleanup(s, func(p *kernel.Pool) { p.Close() }, s.pool)
	}
	for _, ni := range order {
		n := &g.Nodes[ni]
		if folded[ni] {
			s.records = append(s.records, NodeKernel{Node: ni, Label: n.Label(), Op: n.Op, Kernel: "constant", FusedInto: -1})
			continue
		}
		if h := absorbedBy[ni]; h >= 0 {
			// Heads come before the nodes they absorb in topological order.
			s.records = append(s.records, NodeKernel{Node: ni, Label: n.Label(), Op: n.Op,
				Kernel: "fused into " + g.Nodes[h].Label(), Tier: built[h].e.Tier, FusedInto: h})
		}
		if b, ok := built[ni]; ok {
			s.records = append(s.records, NodeKernel{Node: ni, Label: n.Label(), Op: n.Op, Kernel: b.e.Name, Tier: b.e.Tier,
				Fused: FusedDomain + "." + s.exec.Nodes[ni].Op, FusedInto: -1})
		}
		head, fusedStep := stepAt[ni]
		if !fusedStep && (absorbedBy[ni] >= 0 || built[ni].k != nil) {
			continue // computed by a fused step elsewhere in the order
		}
		var k kernel.Kernel
		if fusedStep {
			k = built[head].k
		} else {
			head = ni
			var e kernel.Entry
			if k, e, err = table.Lookup(s.info(ni, tier)); err != nil {
				return nil, fmt.Errorf("infer: %w", err)
			}
			s.records = append(s.records, NodeKernel{Node: ni, Label: n.Label(), Op: n.Op, Kernel: e.Name, Tier: e.Tier, FusedInto: -1})
		}
		xn := &s.exec.Nodes[head]
		ctx := kernel.NewCtx(xn, opts.Threads, s.arena)
		ctx.Pool = s.pool
		s.steps = append(s.steps, step{node: head, k: k, ctx: ctx,
			in:    make([]*tensor.Tensor, len(xn.Inputs)),
			out:   make([]*tensor.Tensor, len(xn.Outputs)),
			inIDs: xn.Inputs, outIDs: xn.Outputs})
	}
	s.annotateInt8(notes)
	for id := range s.exec.Values {
		if s.exec.Values[id].Const != nil {
			s.consts = append(s.consts, ir.ValueID(id))
		}
	}
	// Lifetimes: a computed value dies after its last reader, unless it is
	// a graph output or kept.
	last := make([]int, len(s.exec.Values))
	for i := range last {
		last[i] = -1
	}
	for si, st := range s.steps {
		for _, in := range st.inIDs {
			if in != ir.NoValue {
				last[in] = si
			}
		}
		for _, o := range st.outIDs {
			if o != ir.NoValue && last[o] < si {
				last[o] = si // unread outputs die right away
			}
		}
	}
	for id, si := range last {
		if si < 0 || s.isOut[id] || s.kept[id] {
			continue
		}
		s.steps[si].release = append(s.steps[si].release, ir.ValueID(id))
	}
	return s, nil
}

// info describes node ni of the execution graph to the kernel table.
func (s *Session) info(ni int, tier kernel.Tier) *kernel.Info {
	g := s.exec
	n := &g.Nodes[ni]
	info := &kernel.Info{Graph: g, Node: n, Opset: g.Opset(n.Domain), Tier: tier,
		Inputs: make([]ir.Type, len(n.Inputs)), Consts: make([]*tensor.Tensor, len(n.Inputs))}
	for i, in := range n.Inputs {
		if in == ir.NoValue {
			continue
		}
		v := &g.Values[in]
		info.Inputs[i] = v.Type
		if v.Const != nil && !g.IsInput(in) {
			info.Consts[i] = v.Const
		}
	}
	return info
}

// MaxOpset is the newest ai.onnx opset goslim accepts.
const MaxOpset = 21

// Graph returns the compiled graph.
func (s *Session) Graph() *ir.Graph { return s.g }

// Tier returns the kernel tier the session compiled for.
func (s *Session) Tier() kernel.Tier { return s.tier }

// Threads returns the thread budget.
func (s *Session) Threads() int { return s.opts.Threads }

// Kernels returns the per-node kernel records in topological order. A
// fused group runs as one step, where all of its inputs are ready.
func (s *Session) Kernels() []NodeKernel { return append([]NodeKernel(nil), s.records...) }

// Run executes the graph on feeds keyed by input name and returns the graph
// outputs keyed by name. Inputs that have a stored initializer may be
// omitted. The returned tensors belong to the caller.
func (s *Session) Run(ctx context.Context, feeds map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	in := make([]*tensor.Tensor, len(s.g.Inputs))
	used := 0
	for i, id := range s.g.Inputs {
		if t, ok := feeds[s.g.Values[id].Name]; ok {
			in[i] = t
			used++
		}
	}
	if used != len(feeds) {
		for name := range feeds {
			id, ok := s.g.ValueByName(name)
			if !ok || !s.g.IsInput(id) {
				return nil, fmt.Errorf("infer: feed %q is not a graph input", name)
			}
		}
	}
	outs, err := s.RunInputs(ctx, in)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tensor.Tensor, len(outs))
	for i, id := range s.g.Outputs {
		res[s.g.Values[id].Name] = outs[i]
	}
	return res, nil
}

// RunInputs is Run with inputs in graph-input order (nil for an input
// that falls back to its initializer) and outputs in graph-output order.
// The outputs are new tensors that belong to the caller.
func (s *Session) RunInputs(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.run(ctx, inputs); err != nil {
		return nil, err
	}
	outs := make([]*tensor.Tensor, len(s.g.Outputs))
	for i, id := range s.g.Outputs {
		outs[i] = detach(s.vals[id])
	}
	s.finish()
	return outs, nil
}

// RunInto is RunInputs without allocation: it copies the graph outputs
// into the caller's tensors outputs[i] (one non-nil tensor per graph
// output), setting their dtype and shape and reusing their storage when it
// has the right type and length (else allocating new storage). Repeated
// calls with inputs of the same shapes allocate nothing once the session
// has warmed up (its first two runs at those shapes).
func (s *Session) RunInto(ctx context.Context, inputs, outputs []*tensor.Tensor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(outputs) != len(s.g.Outputs) {
		return fmt.Errorf("infer: got %d output tensors, the graph has %d outputs", len(outputs), len(s.g.Outputs))
	}
	for i, o := range outputs {
		if o == nil {
			return fmt.Errorf("infer: output tensor %d (%q) is nil", i, s.g.Values[s.g.Outputs[i]].Name)
		}
	}
	if err := s.run(ctx, inputs); err != nil {
		return err
	}
	var err error
	for i, id := range s.g.Outputs {
		if e := copyInto(outputs[i], s.vals[id]); e != nil && err == nil {
			err = fmt.Errorf("infer: output %q: %w", s.g.Values[id].Name, e)
		}
	}
	s.finish()
	return err
}

// run executes the graph. On success the graph outputs are in s.vals and
// hold their buffers until finish; on failure everything is released.
func (s *Session) run(ctx context.Context, inputs []*tensor.Tensor) error {
	if len(inputs) != len(s.g.Inputs) {
		return fmt.Errorf("infer: got %d inputs, the graph has %d", len(inputs), len(s.g.Inputs))
	}
	if err := s.exec1(ctx, inputs); err != nil {
		s.arena.reset()
		clear(s.vals)
		for i := range s.handle {
			s.handle[i] = -1
		}
		return err
	}
	return nil
}

// finish releases the graph outputs' buffers after they were copied out
// and forgets every value that is not kept.
func (s *Session) finish() {
	for _, id := range s.g.Outputs {
		if !s.kept[id] {
			s.arena.release(s.handle[id])
			s.handle[id] = -1
		}
	}
	for id := range s.vals {
		if !s.kept[id] {
			s.vals[id] = nil
		}
	}
}

func (s *Session) exec1(ctx context.Context, inputs []*tensor.Tensor) error {
	g := s.g
	clear(s.vals)
	for i, h := range s.handle {
		// Only kept values of the previous run still hold buffers.
		if h >= 0 {
			s.arena.release(h)
			s.handle[i] = -1
		}
	}
	for _, id := range s.consts {
		s.vals[id] = s.exec.Values[id].Const
	}
	for i, id := range g.Inputs {
		t := inputs[i]
		v := &g.Values[id]
		if t == nil {
			if v.Const == nil {
				return fmt.Errorf("infer: input %q is missing", v.Name)
			}
			t = v.Const
		} else if err := checkFeed(v, t); err != nil {
			return err
		}
		s.vals[id] = t
		if s.tapped[id] {
			if err := s.opts.Tap(id, t); err != nil {
				return err
			}
		}
	}
	for si := range s.steps {
		st := &s.steps[si]
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, id := range st.inIDs {
			if id == ir.NoValue {
				st.in[i] = nil
				continue
			}
			st.in[i] = s.vals[id]
		}
		st.ctx.Begin(st.out)
		err := st.k.Run(st.ctx, st.in, st.out)
		for i, id := range st.outIDs {
			t := st.out[i]
			if t == nil {
				continue
			}
			if id == ir.NoValue || err != nil {
				if st.ctx.AliasOf[i] < 0 {
					s.arena.release(st.ctx.Handles[i])
				}
				continue
			}
			s.vals[id] = t
			if j := st.ctx.AliasOf[i]; j >= 0 {
				h := s.handle[st.inIDs[j]]
				s.arena.retain(h)
				s.handle[id] = h
			} else {
				s.handle[id] = st.ctx.Handles[i]
			}
		}
		if err != nil {
			return err
		}
		for i, id := range st.outIDs {
			if id == ir.NoValue {
				continue
			}
			t := st.out[i]
			if t == nil {
				return st.ctx.Errorf("kernel produced no output %d (%q)", i, g.Values[id].Name)
			}
			if s.tapped[id] {
				if err := s.opts.Tap(id, t); err != nil {
					return err
				}
			}
		}
		for i := range st.in {
			st.in[i] = nil
		}
		for _, id := range st.release {
			s.arena.release(s.handle[id])
			s.handle[id] = -1
			s.vals[id] = nil
		}
		if s.opts.StepDone != nil {
			s.opts.StepDone(st.node)
		}
	}
	return nil
}

// copyInto copies src into dst, reusing dst's storage when it has the
// right type and length.
func copyInto(dst, src *tensor.Tensor) error {
	n := src.Len()
	dst.DType = src.DType
	dst.Shape = append(dst.Shape[:0], src.Shape...)
	if dst.Data == nil || tensor.SliceLen(dst.Data) != n || !sameType(dst.Data, src.Data) {
		d, err := tensor.MakeSlice(src.DType, n)
		if err != nil {
			return err
		}
		dst.Data = d
	}
	switch d := dst.Data.(type) {
	case []float32:
		copy(d, src.Data.([]float32))
	case []float64:
		copy(d, src.Data.([]float64))
	case []uint16:
		copy(d, src.Data.([]uint16))
	case []int8:
		copy(d, src.Data.([]int8))
	case []uint8:
		copy(d, src.Data.([]uint8))
	case []int16:
		copy(d, src.Data.([]int16))
	case []int32:
		copy(d, src.Data.([]int32))
	case []uint32:
		copy(d, src.Data.([]uint32))
	case []int64:
		copy(d, src.Data.([]int64))
	case []uint64:
		copy(d, src.Data.([]uint64))
	case []bool:
		copy(d, src.Data.([]bool))
	default:
		return fmt.Errorf("unsupported storage %T", dst.Data)
	}
	return nil
}

// sameType reports whether two storage slices have the same element type.
func sameType(a, b any) bool {
	switch a.(type) {
	case []float32:
		_, ok := b.([]float32)
		return ok
	case []float64:
		_, ok := b.([]float64)
		return ok
	case []uint16:
		_, ok := b.([]uint16)
		return ok
	case []int8:
		_, ok := b.([]int8)
		return ok
	case []uint8:
		_, ok := b.([]uint8)
		return ok
	case []int16:
		_, ok := b.([]int16)
		return ok
	case []int32:
		_, ok := b.([]int32)
		return ok
	case []uint32:
		_, ok := b.([]uint32)
		return ok
	case []int64:
		_, ok := b.([]int64)
		return ok
	case []uint64:
		_, ok := b.([]uint64)
		return ok
	case []bool:
		_, ok := b.([]bool)
		return ok
	}
	return false
}

// Value returns a kept value (Options.Keep) from the last run, valid until
// the next run.
func (s *Session) Value(id ir.ValueID) *tensor.Tensor {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 0 || int(id) >= len(s.vals) || !s.kept[id] {
		return nil
	}
	return s.vals[id]
}

// constantValue returns the tensor a Constant node defines through its
// value, value_float(s) or value_int(s) attribute, or nil when it has
// anything else (its kernel then reports the problem at run time).
func constantValue(n *ir.Node) *tensor.Tensor {
	if len(n.Attrs) != 1 || len(n.Inputs) != 0 {
		return nil
	}
	var t *tensor.Tensor
	switch at := n.Attrs[0]; at.Name {
	case "value":
		if at.Type == ir.AttrTensor {
			t = at.Tensor
		}
	case "value_float":
		t = &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{}, Data: []float32{at.Float}}
	case "value_floats":
		t = tensor.FromFloat32(tensor.Shape{len(at.Floats)}, append([]float32{}, at.Floats...))
	case "value_int":
		t = tensor.FromInt64(tensor.Shape{}, []int64{at.Int})
	case "value_ints":
		t = tensor.FromInt64(tensor.Shape{len(at.Ints)}, append([]int64{}, at.Ints...))
	}
	if t == nil || t.Check() != nil || hasNaN(t) {
		return nil
	}
	return t
}

func checkFeed(v *ir.Value, t *tensor.Tensor) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("infer: input %q: %w", v.Name, err)
	}
	if v.Type.DType != 0 && t.DType != v.Type.DType {
		return fmt.Errorf("infer: input %q has dtype %v, the model wants %v", v.Name, t.DType, v.Type.DType)
	}
	if v.Type.Ranked {
		if len(t.Shape) != len(v.Type.Shape) {
			return fmt.Errorf("infer: input %q has shape %v, the model wants %v", v.Name, t.Shape, v.Type)
		}
		for i, d := range v.Type.Shape {
			if d.Size >= 0 && int64(t.Shape[i]) != d.Size {
				return fmt.Errorf("infer: input %q has shape %v, the model wants %v", v.Name, t.Shape, v.Type)
			}
		}
	}
	return nil
}

func hasNaN(t *tensor.Tensor) bool {
	switch d := t.Data.(type) {
	case []float32:
		for _, v := range d {
			if v != v {
				return true
			}
		}
	case []float64:
		for _, v := range d {
			if v != v {
				return true
			}
		}
	case []uint16:
		if t.DType == tensor.Float16 {
			for _, v := range d {
				if v&0x7c00 == 0x7c00 && v&0x3ff != 0 {
					return true
				}
			}
		}
	}
	return false
}
