package int8

import (
	"fmt"
	"unsafe"

	"github.com/goslim/goslim/internal/kernel"
)

// Layout is the memory order of a batch of 8-bit activations.
type Layout uint8

const (
	// NCHW is ONNX's order: per image, C planes of H x W.
	NCHW Layout = iota
	// NHWC is channels-last: per image, H x W pixel rows of C bytes. The
	// INT8 lowering keeps activations in this order between integer ops
	// (a KxK convolution's patch row is then KH runs of KW*C bytes, a 1x1
	// convolution's input is its GEMM operand as it is, and its GEMM
	// output rows are the next layer's input rows).
	NHWC
)

// String returns "NCHW" or "NHWC".
func (l Layout) String() string {
	if l == NHWC {
		return "NHWC"
	}
	return "NCHW"
}

// BatchArgs are the run-time operands of one ConvBatch call.
type BatchArgs struct {
	// N is the number of images; X holds them in layout In (C x H x W
	// values each). When Signed, X holds int8 values (as their bytes)
	// and Zero is an int8 zero point.
	N      int
	X      []uint8
	In     Layout
	Out    Layout
	Signed bool
	Zero   int32
	// Bias is nil or one int32 per output channel; Req requantizes the
	// sums (nil: the output is the int32 sums).
	Bias []int32
	Req  *Requant
	// WS is workspace of at least BatchScratch words.
	WS []int32
	// Threads bounds the parallel workers run through Par (nil or
	// Threads <= 1: the calling goroutine only).
	Threads int
	Par     Parallelizer

	task batchTask // the call's state (the parallel task)
	// The depthwise call's parallel task, per output type (kept here so
	// that threaded calls allocate nothing).
	dwU8  dwTask[uint8]
	dwI8  dwTask[int8]
	dwI32 dwTask[int32]
}

// BatchScratch returns the int32 words of workspace ConvBatch needs for n
// images of shape s in layouts in and out with up to threads workers.
func (cw *ConvWeights) BatchScratch(s *ConvShape, n, threads int, in, out Layout) int {
	if cw.Depthwise() {
		return dwBatchScratch(s, n, threads, in, out)
	}
	return gemmBatchScratch(s, cw, n, threads)
}

// ConvBatch computes n images of a quantized convolution (see Conv for
// the arithmetic) reading X in layout a.In and writing y (n images of
// M x OH x OW values) in layout a.Out. Results equal Conv's on every
// image, bit for bit, for every tier, layout pair and thread count.
//
// GEMM convolutions merge the batch into one GEMM whose rows are the
// output pixels of all images (see conv_nhwc.go): the images are copied
// once into a zero-point-padded channels-last buffer (unless a 1x1
// convolution can multiply the NHWC input itself), the rows are computed
// in blocks split across a.Threads workers through a.Par and each block
// is requantized straight into the output rows. With a long-lived a,
// ConvBatch allocates nothing.
func ConvBatch[T uint8 | int8 | int32](tier kernel.Tier, s *ConvShape, cw *ConvWeights, a *BatchArgs, y []T) error {
	if err := s.check(); err != nil {
		return err
	}
	if a.N < 0 {
		return fmt.Errorf("int8: conv: %d images", a.N)
	}
	if a.In > NHWC || a.Out > NHWC {
		return fmt.Errorf("int8: conv: unknown layout (in %d, out %d; want NCHW or NHWC)", a.In, a.Out)
	}
	if cw.M != s.M || cw.Group != s.Group || cw.Cg*s.Group != s.C || cw.KH != s.KH || cw.KW != s.KW {
		return fmt.Errorf("int8: conv: weights M=%d Cg=%d %dx%d group %d do not match %+v", cw.M, cw.Cg, cw.KH, cw.KW, cw.Group, *s)
	}
	inImg, outImg := s.C*s.H*s.W, s.M*s.OH*s.OW
	if len(a.X) < a.N*inImg || len(y) < a.N*outImg {
		return fmt.Errorf("int8: conv: %d input and %d output values for %d images of %d and %d", len(a.X), len(y), a.N, inImg, outImg)
	}
	if err := checkRunArgs(s, a.Signed, a.Zero, a.Bias, a.Req, y); err != nil {
		return err
	}
	if cw.Depthwise() {
		if need := dwBatchScratch(s, a.N, a.Threads, a.In, a.Out); len(a.WS) < need {
			return fmt.Errorf("int8: conv: workspace of %d words, want %d", len(a.WS), need)
		}
		return convDepthwiseBatch(tier, s, cw, a, y)
	}
	// The call's plan, built once: the workspace must hold it (BatchScratch
	// is the largest plan of any path, so it always does).
	t := &a.task
	path, kind := choosePath(tier, s, cw, a.In, a.Signed, t.goTaps)
	t.pl = newBatchPlan(s, cw, a.N, a.Threads, path, kind)
	if need := t.pl.words(s); len(a.WS) < need {
		return fmt.Errorf("int8: conv: workspace of %d words, want %d", len(a.WS), need)
	}
	if a.N == 0 {
		return nil
	}
	t.tier, t.s, t.cw, t.a = tier, s, cw, a
	t.yb, t.y32 = nil, nil
	switch yt := any(y).(type) {
	case []uint8:
		t.yb = yt[:a.N*outImg]
	case []int8:
		t.yb = bytesOfI8(yt[:a.N*outImg])
	case []int32:
		t.y32 = yt[:a.N*outImg]
	}
	convBatchGemm(t)
	t.s, t.cw, t.a, t.yb, t.y32, t.off, t.buf, t.zrow, t.ws = nil, nil, nil, nil, nil, nil, nil, nil, nil
	return nil
}

// viewT views the first n elements of int32 words w as T values.
func viewT[T uint8 | int8 | int32](w []int32, n int) []T {
	switch any(*new(T)).(type) {
	case int32:
		return any(w[:n]).([]T)
	case uint8:
		return any(bytesOf(w)[:n]).([]T)
	default:
		b := bytesOf(w)[:n]
		return any(int8sOf(b)).([]T)
	}
}

// transposeT writes src (rows x cols, row-major) as dst (cols x rows).
func transposeT[T uint8 | int8 | int32](dst, src []T, rows, cols int) {
	for r := range rows {
		row := src[r*cols : (r+1)*cols]
		for c, v := range row {
			dst[c*rows+r] = v
		}
	}
}

// ToLayout rewrites n images of C x HW 8-bit values from layout from to
// layout to (a copy when they are equal).
func ToLayout(dst, src []uint8, n, c, hw int, from, to Layout) {
	img := c * hw
	for i := range n {
		d, s := dst[i*img:(i+1)*img], src[i*img:(i+1)*img]
		switch {
		case from == to:
			copy(d, s)
		case from == NCHW:
			transposeT(d, s, c, hw)
		default:
			transposeT(d, s, hw, c)
		}
	}
}

// int8sOf views bytes as int8 values.
func int8sOf(b []uint8) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}
