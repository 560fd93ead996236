package fp32

import "math"

// Epilogue flags of tileEp (bits 8..11 hold the activation kind).
const (
	epAlpha   = 1  // multiply the accumulators by alpha
	epLoadC   = 2  // add beta*C (C as found in the output)
	epBeta1   = 4  // with epLoadC: beta is 1, add C
	epRowBias = 8  // add rowBias[r] to row r
	epColBias = 16 // add colBias[j] to column j
	epActBits = 8  // shift of the activation kind
)

// tileEp is the epilogue of one micro-kernel call, read by the assembly
// kernels at fixed offsets (see gen_tile.go; TestTileEpLayout checks
// them).
type tileEp struct {
	flags   uint32
	alpha   float32
	beta    float32
	lo, hi  float32 // Clip bounds
	leak    float32 // LeakyRelu slope
	fix     float32 // Clip: +0 when lo is +0, else -0 (see gen_tile.go)
	_       uint32
	rowBias *float32 // bias of the tile's first row
	colBias *float32 // bias of the tile's first column
}

// actInAsm reports whether the assembly epilogues compute a exactly as
// Act.Apply does. Sigmoid, and Clip with a NaN bound or an upper bound of
// -0, are applied by Act.Apply after the kernel instead.
func actInAsm(a Act) bool {
	switch a.Kind {
	case ActRelu, ActHardSwish, ActLeakyRelu:
		return true
	case ActClip:
		lo, hi := float64(a.Lo), float64(a.Hi)
		return !math.IsNaN(lo) && !math.IsNaN(hi) && math.Float32bits(a.Hi) != 1<<31
	}
	return false
}

// setAct stores activation a in ep.
func (ep *tileEp) setAct(a Act) {
	ep.flags |= uint32(a.Kind) << epActBits
	ep.lo, ep.hi, ep.leak = a.Lo, a.Hi, a.Alpha
	ep.fix = float32(math.Copysign(0, -1))
	if math.Float32bits(a.Lo) == 0 {
		ep.fix = 0
	}
}

// tileGo is the pure-Go twin of the assembly micro-kernels (tileAVX512,
// tileAVX2) and the reference they are tested against. a is a packed A
// strip (k steps of mrPack values), b a packed B strip (k steps of w
// values), c the tile's first element (row stride ldc). For r < mr and
// j < ncols:
//
//	s := sum_{p<k} a[p*mrPack+r] * b[p*w+j]    (in order of p)
//	if flags&epAlpha   { s = alpha*s }
//	if flags&epLoadC   { s = s + beta*c[r*ldc+j] } (s + c[r*ldc+j] with epBeta1)
//	if flags&epRowBias { s = s + rowBias[r] }
//	if flags&epColBias { s = s + colBias[j] }
//	c[r*ldc+j] = act(s)                       (the activation in flags>>8)
//
// The assembly kernels use fused multiply-adds for the sum, so their
// results may differ from tileGo's in the last bits of the sum only.
func tileGo(k int, a []float32, mrPack int, b []float32, w int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	var accBuf [16 * 64]float32
	acc := accBuf[:mr*ncols]
	for p := 0; p < k; p++ {
		ap := a[p*mrPack : p*mrPack+mr]
		bp := b[p*w : p*w+ncols]
		for r, x := range ap {
			row := acc[r*ncols : (r+1)*ncols]
			for j, y := range bp {
				row[j] += x * y
			}
		}
	}
	epilogueGo(acc, ncols, c, ldc, mr, ncols, ep)
}

// epilogueGo applies ep to the mr x ncols accumulators acc (row stride
// lda) and stores them into c (the contract of tileGo).
func epilogueGo(acc []float32, lda int, c []float32, ldc, mr, ncols int, ep *tileEp) {
	f := ep.flags
	var rb, cb []float32
	if f&epRowBias != 0 {
		rb = ptrSlice(ep.rowBias, mr)
	}
	if f&epColBias != 0 {
		cb = ptrSlice(ep.colBias, ncols)
	}
	act := Act{Kind: ActKind(f >> epActBits & 15), Lo: ep.lo, Hi: ep.hi, Alpha: ep.leak}
	for r := 0; r < mr; r++ {
		src := acc[r*lda : r*lda+ncols]
		dst := c[r*ldc : r*ldc+ncols]
		for j, s := range src {
			if f&epAlpha != 0 {
				s = ep.alpha * s
			}
			if f&epLoadC != 0 {
				if f&epBeta1 != 0 {
					s = s + dst[j]
				} else {
					s = s + ep.beta*dst[j]
				}
			}
			if rb != nil {
				s = s + rb[r]
			}
			if cb != nil {
				s = s + cb[j]
			}
			dst[j] = s
		}
		act.Apply(dst)
	}
}

// Generic (pure-Go) micro-kernel geometry: a 2x4 register tile keeps its
// 8 accumulators and 6 operands in registers; larger tiles spill with the
// Go compiler.
const (
	genericMR = 2
	genericNR = 4
)

// tileGeneric is the generic tier's micro-kernel (same contract as tileGo
// with mrPack = 2 and w = 4).
func tileGeneric(k int, a, b, c []float32, ldc, mr, ncols int, ep *tileEp) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	a = a[:2*k]
	b = b[:4*k]
	for len(a) >= 2 && len(b) >= 4 {
		a0, a1 := a[0], a[1]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a = a[2:]
		b = b[4:]
	}
	if mr == 2 && ncols == 4 && ep.flags == 0 {
		r0 := c[0:4:4]
		r1 := c[ldc : ldc+4 : ldc+4]
		r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
		r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
		return
	}
	acc := [8]float32{c00, c01, c02, c03, c10, c11, c12, c13}
	epilogueGo(acc[:], 4, c, ldc, mr, ncols, ep)
}

// tileIndGo is the pure-Go twin of the indirect micro-kernel
// (tileAVX512Ind): tileGo with B row p read unpacked, columns j < 16 from
// b[offs[p]+j] and columns j >= 16 from b2[offs[p]+j-16].
func tileIndGo(k int, a []float32, mrPack int, b, b2 []float32, offs []int32, c []float32, ldc, mr, ncols int, ep *tileEp) {
	pb := make([]float32, k*ncols)
	for p := 0; p < k; p++ {
		o := int(offs[p])
		for j := 0; j < ncols; j++ {
			if j < 16 {
				pb[p*ncols+j] = b[o+j]
			} else {
				pb[p*ncols+j] = b2[o+j-16]
			}
		}
	}
	tileGo(k, a, mrPack, pb, ncols, c, ldc, mr, ncols, ep)
}

// tileInd4Go is the pure-Go twin of tileAVX512Ind4: tileGo with B row p
// read unpacked, column j from b[j/8][offs[p]+j%8].
func tileInd4Go(k int, a []float32, mrPack int, b *[4][]float32, offs []int32, c []float32, ldc, mr, ncols int, ep *tileEp) {
	pb := make([]float32, k*ncols)
	for p := 0; p < k; p++ {
		for j := 0; j < ncols; j++ {
			pb[p*ncols+j] = b[j/8][int(offs[p])+j%8]
		}
	}
	tileGo(k, a, mrPack, pb, ncols, c, ldc, mr, ncols, ep)
}
